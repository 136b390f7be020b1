/* LZ4 through liblz4.  SPDX-License-Identifier: MIT */
#include <errno.h>
#include <lz4.h>

#include "codec.h"

static int lz4_compress(const void *page, void *dst, int cap, int level) {
  (void)level;
  /* Returns 0 when the output would not fit in cap: the caller stores the
   * page raw, so a failed attempt costs no copy. */
  return LZ4_compress_default(page, dst, TRUENO_PAGE_SIZE, cap);
}

static int lz4_decompress(const void *src, int len, void *page) {
  int n = LZ4_decompress_safe(src, page, len, TRUENO_PAGE_SIZE);
  return n == TRUENO_PAGE_SIZE ? 0 : -EIO;
}

const struct trueno_codec trueno_codec_lz4 = {
    .name = "lz4",
    .compress = lz4_compress,
    .decompress = lz4_decompress,
};
