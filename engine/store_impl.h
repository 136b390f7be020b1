/* The store's insides, shared by the files of the engine that work on it:
 * store.c (lifecycle, request routing), slot.c (the only code that changes
 * a slot), batch.c, compact.c, maintain.c, recompress.c.
 * Front ends see only trueno.h.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_STORE_IMPL_H
#define TRUENO_STORE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"
#include "codec.h"
#include "gcache.h"
#include "grouping.h"
#include "memacct.h"
#include "metaheap.h"
#include "pagepool.h"
#include "recompress.h"
#include "region.h"
#include "slots.h"
#include "store_stats.h"
#include "trueno.h"
#include "workspace.h"

#define NSTRIPES 1024u

struct trueno_store {
  uint64_t size;
  uint64_t npages;
  enum trueno_algorithm alg;
  const struct trueno_codec *codec;
  int level;
  struct memacct acct;
  /* A persistent store's region (rg = &region), else rg NULL. */
  struct region region;
  struct region *rg;
  struct pagepool pool;
  struct metaheap mh; /* the arena's zspage records */
  struct arena *arena;
  struct slot_table slots;
  /* own_cnt, or in a persistent store the region's (region.h): there the
   * cumulative counters outlive the process, exact even after a kill. */
  struct store_counters *cnt;
  struct store_counters own_cnt;
  struct ws_pool ws;
  pthread_mutex_t compact_lock;
  struct trueno_batch_codec batch; /* compress NULL: none */
  /* The store's clock: seconds since it was made, as of the last
   * recompression step (trueno_maintain takes one a second).  Reads and
   * writes stamp the pages they touch with it (slot.stamp), which is what
   * makes a page idle or not; without a recompressor it stays at 0, so a
   * read never has a stamp to change. */
  struct timespec born;
  _Atomic uint32_t tick;
  struct recompressor recomp;
  struct grouper grouper;
  struct gcache gc;
  _Atomic uint64_t group_serial;
  /* Taken by trueno_maintain for its whole call: callers on several
   * threads take turns over the state below. */
  pthread_mutex_t maintain_lock;
  /* trueno_maintain's alone: compaction under way from call to call;
   * calls in a row that gave back little; waste left when compaction last
   * stopped short (it starts again once the waste has grown past it). */
  int compacting;
  unsigned compact_stalls;
  uint64_t waste_floor;
  pthread_rwlock_t locks[NSTRIPES];
};

/* Persistence (persist.c): the region's settings for cfg, and the walk
 * that makes an attached store's volatile state from its slots. */
struct region_params persist_params(const struct trueno_config *cfg);
int persist_adopt(struct trueno_store *st, char *why, size_t why_len);

static inline pthread_rwlock_t *lock_of(struct trueno_store *st,
                                        uint64_t idx) {
  return &st->locks[idx % NSTRIPES];
}

/* The clock's current value, for a stamp. */
static inline uint32_t store_tick(struct trueno_store *st) {
  return atomic_load_explicit(&st->tick, memory_order_relaxed) &
         SLOT_TICK_MASK;
}
/* Advances the clock to now. */
static inline void store_clock_update(struct trueno_store *st) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t ns = (int64_t)(now.tv_sec - st->born.tv_sec) * 1000000000 +
               (now.tv_nsec - st->born.tv_nsec);
  atomic_store_explicit(&st->tick, (uint32_t)(ns / 1000000000),
                        memory_order_relaxed);
}

#endif
