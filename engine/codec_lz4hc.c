/* liblz4's HC (high compression) parser, for idle-page recompression: it
 * searches much harder than the fast parsers for smaller blocks
 * (docs/measurements.md), and they are plain LZ4 blocks, so reads of the
 * pages it did stay as fast as any LZ4 read.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <lz4hc.h>
#include <stdlib.h>

#include "codec.h"
#include "lz4page.h"

static void *lz4hc_state_new(void) {
  return malloc((size_t)LZ4_sizeofStateHC());
}

static void lz4hc_state_free(void *state) { free(state); }

static int lz4hc_compress(void *state, const void *page, void *dst, int cap,
                          int level) {
  return LZ4_compress_HC_extStateHC(state, page, dst, TRUENO_PAGE_SIZE, cap,
                                    level);
}

static int lz4hc_decompress(void *state, const void *src, int len,
                            void *page) {
  (void)state;
  return lz4page_decompress(src, len, page) == 0 ? 0 : -EIO;
}

int trueno_lz4hc_level_min(void) { return 1; }
int trueno_lz4hc_level_max(void) { return LZ4HC_CLEVEL_MAX; }

const struct trueno_codec trueno_codec_lz4hc = {
    .name = "lz4hc",
    .state_new = lz4hc_state_new,
    .state_free = lz4hc_state_free,
    .compress = lz4hc_compress,
    .decompress = lz4hc_decompress,
};
