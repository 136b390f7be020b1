/* SPDX-License-Identifier: MIT */
#include "codec.h"

#include <errno.h>
#include <string.h>

static const struct trueno_codec *const codecs[TRUENO_ALG_COUNT] = {
    [TRUENO_ALG_LZ4] = &trueno_codec_lz4,
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
