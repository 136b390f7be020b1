/* Page codecs behind one small table, so a new codec is a new file.
 *
 * Codec state (liblz4's hash table, zstd's contexts) is not per thread:
 * nbdkit runs dozens of threads on a few CPUs, and per-thread state would
 * cost more resident memory than a small store holds.  State lives in the
 * store's workspaces instead (workspace.h), created on first use.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_CODEC_H
#define TRUENO_CODEC_H

#include <stddef.h>

#include "trueno.h"

struct trueno_codec {
  const char *name;
  /* Creates and frees the codec's state; NULL from state_new is -ENOMEM. */
  void *(*state_new)(void);
  void (*state_free)(void *state);
  /* Compresses one 4096-byte page into dst (cap bytes).  Returns the
   * compressed length, 0 if it does not fit in cap, or a negative errno. */
  int (*compress)(void *state, const void *page, void *dst, int cap,
                  int level);
  /* Decompresses src into exactly 4096 bytes at page; -EIO if src is corrupt
   * or does not decode to exactly one page.  Never reads past src+len or
   * writes past page+4096. */
  int (*decompress)(void *state, const void *src, int len, void *page);
};

/* LZ4 has two implementations that read each other's blocks and share one
 * state type: ours (lz4page.h, the default) and liblz4's. */
extern const struct trueno_codec trueno_codec_lz4_trueno;
extern const struct trueno_codec trueno_codec_lz4_liblz4;
extern const struct trueno_codec trueno_codec_zstd;
/* Only for idle-page recompression: its blocks are stored as algorithm lz4. */
extern const struct trueno_codec trueno_codec_lz4hc;
int trueno_lz4hc_level_min(void);
int trueno_lz4hc_level_max(void);

/* zstd over any length, with the page codec's state and frame format (cold
 * groups: several pages in one frame).  compress_n: the length, 0 when it
 * does not fit in cap, or a negative errno.  A frame is decoded in pieces:
 * stream_begin, then stream_next for each piece in order, each adding to
 * *done (bytes of dst written; never more than want); -EIO for a corrupt
 * frame or one that holds more than want bytes. */
int trueno_zstd_compress_n(void *state, const void *src, size_t len,
                           void *dst, size_t cap, int level);
int trueno_zstd_stream_begin(void *state);
int trueno_zstd_stream_next(void *state, const void *src, size_t len,
                            void *dst, size_t want, size_t *done);

/* The default codec of an algorithm (for lz4: ours); NULL if unknown.
 * Decoding a stored page with it is always right. */
const struct trueno_codec *trueno_codec_for(enum trueno_algorithm alg);
/* The codec a store configured with alg and lz4_impl compresses with. */
const struct trueno_codec *trueno_codec_select(enum trueno_algorithm alg,
                                               enum trueno_lz4_impl impl);

#endif
