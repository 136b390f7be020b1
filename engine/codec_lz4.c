/* LZ4: our page codec (lz4page.h, the default) or liblz4.  Both write the
 * LZ4 block format, so either decodes what the other stored, and both use
 * one state type: a store may switch implementation, and a workspace's
 * state serves either.  SPDX-License-Identifier: MIT */
#include <errno.h>
#include <lz4.h>
#include <stdlib.h>

#include "codec.h"
#include "lz4page.h"

struct lz4_state {
  struct lz4page_state page; /* lz4page's hash table and output buffer */
  void *lib;                 /* liblz4's state, made on first use */
};

static void *lz4_state_new(void) {
  struct lz4_state *s = aligned_alloc(64, sizeof *s);
  if (s)
    s->lib = NULL;
  return s;
}

static void lz4_state_free(void *state) {
  struct lz4_state *s = state;
  if (s)
    free(s->lib);
  free(s);
}

static int liblz4_compress(void *state, const void *page, void *dst, int cap,
                           int level) {
  struct lz4_state *s = state;
  (void)level;
  if (!s->lib && !(s->lib = malloc((size_t)LZ4_sizeofState())))
    return -ENOMEM;
  /* Returns 0 when the output would not fit in cap: the caller stores the
   * page raw, so a failed attempt costs no copy. */
  return LZ4_compress_fast_extState(s->lib, page, dst, TRUENO_PAGE_SIZE, cap,
                                    1);
}

static int liblz4_decompress(void *state, const void *src, int len,
                             void *page) {
  (void)state;
  int n = LZ4_decompress_safe(src, page, len, TRUENO_PAGE_SIZE);
  return n == TRUENO_PAGE_SIZE ? 0 : -EIO;
}

static int lz4page_codec_compress(void *state, const void *page, void *dst,
                                  int cap, int level) {
  struct lz4_state *s = state;
  (void)level;
  return lz4page_compress(&s->page, page, dst, cap);
}

static int lz4page_codec_decompress(void *state, const void *src, int len,
                                    void *page) {
  (void)state;
  return lz4page_decompress(src, len, page) == 0 ? 0 : -EIO;
}

const struct trueno_codec trueno_codec_lz4_liblz4 = {
    .name = "lz4",
    .state_new = lz4_state_new,
    .state_free = lz4_state_free,
    .compress = liblz4_compress,
    .decompress = liblz4_decompress,
};

const struct trueno_codec trueno_codec_lz4_trueno = {
    .name = "lz4",
    .state_new = lz4_state_new,
    .state_free = lz4_state_free,
    .compress = lz4page_codec_compress,
    .decompress = lz4page_codec_decompress,
};
