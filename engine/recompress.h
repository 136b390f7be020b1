/* Idle-page recompression: the engine side of trueno_recompress.
 *
 * Swap and RAM-disk pages are mostly cold: written once, read rarely or
 * never.  The fast codec that stored them is the right choice while they
 * are hot; once a page has not been read or written for a while, a denser
 * encoding (zstd, or liblz4's HC parser, whose blocks the fast LZ4 decoder
 * still reads) saves memory for a slower read that may never come.  Kernel
 * zram's recompress does the same on request; here the housekeeping thread
 * does it a bounded step at a time.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_RECOMPRESS_H
#define TRUENO_RECOMPRESS_H

#include <pthread.h>
#include <stdint.h>

#include "trueno.h"

struct trueno_codec;

struct recompressor {
  enum trueno_recompressor kind; /* TRUENO_RECOMPRESS_OFF: none */
  int level;
  uint32_t idle;                 /* seconds without a read or write */
  uint32_t rate;                 /* pages trueno_maintain tries a call */
  const struct trueno_codec *codec;
  enum trueno_algorithm alg;     /* what its pages decode with */
  void *state;                   /* codec state, made on first use */
  pthread_mutex_t lock;          /* one step at a time */
  uint64_t cursor;               /* the next slot a step examines */
};

/* From the store's configuration: -EINVAL for a bad recompressor, level
 * or rate. */
int recompressor_init(struct recompressor *r, const struct trueno_config *cfg);
void recompressor_destroy(struct recompressor *r);
/* Makes the codec state a step needs; 0 or -ENOMEM.  Under r->lock. */
int recompressor_ready(struct recompressor *r);

struct trueno_store;
struct workspace;
struct slot;
/* Tries page idx (its slot s), under r->lock with the state ready: 1 if
 * it was recompressed, 0 if not (not idle, gained nothing), or a negative
 * errno when the new copy could not be stored. */
int recompress_page(struct trueno_store *st, struct workspace *ws,
                    uint64_t idx, struct slot *s, uint32_t now,
                    uint32_t min_idle);

#endif
