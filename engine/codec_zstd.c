/* ZSTD through libzstd.  SPDX-License-Identifier: MIT
 *
 * Frames are written without magic number, content size, checksum or dict
 * ID: for a 4 KiB page those fields cost about 1% of the payload and the
 * slot already records the algorithm and the length. */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_format / ZSTD_f_zstd1_magicless */
#include <errno.h>
#include <pthread.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "codec.h"

/* Contexts are per thread (nbdkit calls us from many) and freed when the
 * thread exits. */
static pthread_key_t cctx_key, dctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void free_cctx(void *p) { ZSTD_freeCCtx(p); }
static void free_dctx(void *p) { ZSTD_freeDCtx(p); }

static void make_keys(void) {
  pthread_key_create(&cctx_key, free_cctx);
  pthread_key_create(&dctx_key, free_dctx);
}

static ZSTD_CCtx *thread_cctx(void) {
  pthread_once(&keys_once, make_keys);
  ZSTD_CCtx *c = pthread_getspecific(cctx_key);
  if (!c && (c = ZSTD_createCCtx())) {
    ZSTD_CCtx_setParameter(c, ZSTD_c_format, ZSTD_f_zstd1_magicless);
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0);
    pthread_setspecific(cctx_key, c);
  }
  return c;
}

static ZSTD_DCtx *thread_dctx(void) {
  pthread_once(&keys_once, make_keys);
  ZSTD_DCtx *d = pthread_getspecific(dctx_key);
  if (!d && (d = ZSTD_createDCtx())) {
    ZSTD_DCtx_setParameter(d, ZSTD_d_format, ZSTD_f_zstd1_magicless);
    pthread_setspecific(dctx_key, d);
  }
  return d;
}

static int zstd_compress(const void *page, void *dst, int cap, int level) {
  ZSTD_CCtx *c = thread_cctx();
  if (!c)
    return -ENOMEM;
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  size_t n = ZSTD_compress2(c, dst, (size_t)cap, page, TRUENO_PAGE_SIZE);
  if (ZSTD_isError(n))
    return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? 0 : -EIO;
  return (int)n;
}

static int zstd_decompress(const void *src, int len, void *page) {
  ZSTD_DCtx *d = thread_dctx();
  if (!d)
    return -ENOMEM;
  size_t n = ZSTD_decompressDCtx(d, page, TRUENO_PAGE_SIZE, src, (size_t)len);
  return !ZSTD_isError(n) && n == TRUENO_PAGE_SIZE ? 0 : -EIO;
}

int trueno_zstd_level_min(void) { return ZSTD_minCLevel(); }
int trueno_zstd_level_max(void) { return ZSTD_maxCLevel(); }
int trueno_zstd_level_default(void) { return 1; }

const struct trueno_codec trueno_codec_zstd = {
    .name = "zstd",
    .compress = zstd_compress,
    .decompress = zstd_decompress,
};
