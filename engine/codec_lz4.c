/* LZ4 through liblz4.  SPDX-License-Identifier: MIT */
#include <errno.h>
#include <lz4.h>
#include <stdlib.h>

#include "codec.h"

static void *lz4_state_new(void) { return malloc((size_t)LZ4_sizeofState()); }

static void lz4_state_free(void *state) { free(state); }

static int lz4_compress(void *state, const void *page, void *dst, int cap,
                        int level) {
  (void)level;
  /* Returns 0 when the output would not fit in cap: the caller stores the
   * page raw, so a failed attempt costs no copy. */
  return LZ4_compress_fast_extState(state, page, dst, TRUENO_PAGE_SIZE, cap,
                                    1);
}

static int lz4_decompress(void *state, const void *src, int len, void *page) {
  (void)state;
  int n = LZ4_decompress_safe(src, page, len, TRUENO_PAGE_SIZE);
  return n == TRUENO_PAGE_SIZE ? 0 : -EIO;
}

const struct trueno_codec trueno_codec_lz4 = {
    .name = "lz4",
    .state_new = lz4_state_new,
    .state_free = lz4_state_free,
    .compress = lz4_compress,
    .decompress = lz4_decompress,
};
