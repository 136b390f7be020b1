/* SPDX-License-Identifier: MIT */
#include "codec.h"

#include <errno.h>
#include <string.h>

static const struct trueno_codec *const codecs[TRUENO_ALG_COUNT] = {
    [TRUENO_ALG_LZ4] = &trueno_codec_lz4_trueno,
    [TRUENO_ALG_ZSTD] = &trueno_codec_zstd,
};

const struct trueno_codec *trueno_codec_for(enum trueno_algorithm alg) {
  return (unsigned)alg < TRUENO_ALG_COUNT ? codecs[alg] : NULL;
}

const char *trueno_algorithm_name(enum trueno_algorithm alg) {
  const struct trueno_codec *c = trueno_codec_for(alg);
  return c ? c->name : "unknown";
}

int trueno_algorithm_parse(const char *name, enum trueno_algorithm *alg) {
  for (unsigned i = 0; i < TRUENO_ALG_COUNT; i++) {
    if (strcmp(name, codecs[i]->name) == 0) {
      *alg = (enum trueno_algorithm)i;
      return 0;
    }
  }
  return -EINVAL;
}

const struct trueno_codec *trueno_codec_select(enum trueno_algorithm alg,
                                               enum trueno_lz4_impl impl) {
  if (alg == TRUENO_ALG_LZ4 && impl == TRUENO_LZ4_LIBLZ4)
    return &trueno_codec_lz4_liblz4;
  return trueno_codec_for(alg);
}

static const char *const lz4_impl_names[TRUENO_LZ4_IMPL_COUNT] = {
    [TRUENO_LZ4_TRUENO] = "trueno",
    [TRUENO_LZ4_LIBLZ4] = "liblz4",
};

const char *trueno_lz4_impl_name(enum trueno_lz4_impl impl) {
  return (unsigned)impl < TRUENO_LZ4_IMPL_COUNT ? lz4_impl_names[impl]
                                                : "unknown";
}

int trueno_lz4_impl_parse(const char *name, enum trueno_lz4_impl *impl) {
  for (unsigned i = 0; i < TRUENO_LZ4_IMPL_COUNT; i++) {
    if (strcmp(name, lz4_impl_names[i]) == 0) {
      *impl = (enum trueno_lz4_impl)i;
      return 0;
    }
  }
  return -EINVAL;
}
