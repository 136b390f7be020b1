/* ZSTD through libzstd.  SPDX-License-Identifier: MIT
 *
 * Frames are written without magic number, content size, checksum or dict
 * ID: for a 4 KiB page those fields cost about 1% of the payload and the
 * slot already records the algorithm and the length. */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_format / ZSTD_f_zstd1_magicless */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "codec.h"

struct zstd_state {
  ZSTD_CCtx *c;
  ZSTD_DCtx *d;
};

static void zstd_state_free(void *state) {
  struct zstd_state *s = state;
  if (!s)
    return;
  ZSTD_freeCCtx(s->c);
  ZSTD_freeDCtx(s->d);
  free(s);
}

/* The contexts (~72 KiB and ~94 KiB) are made on first use: a workspace
 * that only ever compresses never pays for a decompression context. */
static void *zstd_state_new(void) {
  return calloc(1, sizeof(struct zstd_state));
}

static ZSTD_CCtx *cctx_of(struct zstd_state *s) {
  if (s->c)
    return s->c;
  ZSTD_CCtx *c = ZSTD_createCCtx();
  if (!c || ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_format,
                                                ZSTD_f_zstd1_magicless)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0))) {
    ZSTD_freeCCtx(c);
    return NULL;
  }
  return s->c = c;
}

static ZSTD_DCtx *dctx_of(struct zstd_state *s) {
  if (s->d)
    return s->d;
  ZSTD_DCtx *d = ZSTD_createDCtx();
  if (!d || ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_format,
                                                ZSTD_f_zstd1_magicless))) {
    ZSTD_freeDCtx(d);
    return NULL;
  }
  return s->d = d;
}

static int zstd_compress(void *state, const void *page, void *dst, int cap,
                         int level) {
  ZSTD_CCtx *c = cctx_of(state);
  if (!c)
    return -ENOMEM;
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  size_t n = ZSTD_compress2(c, dst, (size_t)cap, page, TRUENO_PAGE_SIZE);
  if (ZSTD_isError(n))
    return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? 0 : -EIO;
  return (int)n;
}

static int zstd_decompress(void *state, const void *src, int len, void *page) {
  ZSTD_DCtx *d = dctx_of(state);
  if (!d)
    return -ENOMEM;
  size_t n = ZSTD_decompressDCtx(d, page, TRUENO_PAGE_SIZE, src, (size_t)len);
  return !ZSTD_isError(n) && n == TRUENO_PAGE_SIZE ? 0 : -EIO;
}

int trueno_zstd_compress_n(void *state, const void *src, size_t len,
                           void *dst, size_t cap, int level) {
  ZSTD_CCtx *c = cctx_of(state);
  if (!c)
    return -ENOMEM;
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  size_t n = ZSTD_compress2(c, dst, cap, src, len);
  if (ZSTD_isError(n))
    return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? 0 : -EIO;
  return n > INT32_MAX ? -EIO : (int)n;
}

int trueno_zstd_stream_begin(void *state) {
  ZSTD_DCtx *d = dctx_of(state);
  if (!d)
    return -ENOMEM;
  ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
  return 0;
}

int trueno_zstd_stream_next(void *state, const void *src, size_t len,
                            void *dst, size_t want, size_t *done) {
  ZSTD_inBuffer in = {src, len, 0};
  ZSTD_outBuffer out = {dst, want, *done};
  while (in.pos < in.size) {
    size_t r = ZSTD_decompressStream(((struct zstd_state *)state)->d, &out,
                                     &in);
    if (ZSTD_isError(r))
      return -EIO;
    if (out.pos == out.size && in.pos < in.size) {
      /* Full output: input left over is corrupt unless it is only the
       * frame's end, which one more call with no room would take. */
      r = ZSTD_decompressStream(((struct zstd_state *)state)->d, &out, &in);
      if (ZSTD_isError(r) || in.pos < in.size)
        return -EIO;
    }
  }
  *done = out.pos;
  return 0;
}

int trueno_zstd_level_min(void) { return ZSTD_minCLevel(); }
int trueno_zstd_level_max(void) { return ZSTD_maxCLevel(); }
/* Kernel zram's zstd level: algorithm=zstd is the density choice (lz4 is the
 * speed one), and level 3 stores a little more than 1 for a little speed
 * (docs/measurements.md). */
int trueno_zstd_level_default(void) { return 3; }

const struct trueno_codec trueno_codec_zstd = {
    .name = "zstd",
    .state_new = zstd_state_new,
    .state_free = zstd_state_free,
    .compress = zstd_compress,
    .decompress = zstd_decompress,
};
