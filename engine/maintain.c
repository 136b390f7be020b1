/* trueno_maintain: the housekeeping policy front ends call every second,
 * which decides when recompression steps and compaction run.
 * SPDX-License-Identifier: MIT */
#include <pthread.h>

#include "compact.h"
#include "store_impl.h"

/* A recompression step per call (about a second apart): a bounded number
 * of pages (the store's rate; tens of microseconds each, so by default
 * housekeeping takes a few percent of one CPU at most), found by a bounded
 * scan: 64 slots a try, so a step on a store of mostly busy or already
 * recompressed pages ends soon too. */
#define RECOMPRESS_SCAN_PER_TRY 64u
/* Waste allowed whatever the store's size: each size class in use keeps a
 * partly carved zspage (up to a block), and a scan of the slot table for a
 * few pages' gain is not worth it. */
#define WASTE_ALLOWED (256u * 1024)
/* Compaction starts when the waste passes 1/WASTE_START of the least the
 * objects take and stops under 1/WASTE_STOP: lower thresholds hold less
 * memory under churn for a little more CPU a call (the sweep that chose
 * them: docs/housekeeping.md). */
#define WASTE_START 64
#define WASTE_STOP 128
#define STALL_PATIENCE 4

/* Where compaction, once started, stops. */
static int waste_low(uint64_t waste, uint64_t ideal) {
  return waste < ideal / WASTE_STOP + WASTE_ALLOWED;
}

static int maintain_locked(struct trueno_store *st);

int trueno_maintain(struct trueno_store *st) {
  pthread_mutex_lock(&st->maintain_lock);
  int r = maintain_locked(st);
  pthread_mutex_unlock(&st->maintain_lock);
  return r;
}

static int maintain_locked(struct trueno_store *st) {
  if (st->grouper.pages)
    trueno_group(st, st->grouper.idle,
                 (uint64_t)st->grouper.rate * RECOMPRESS_SCAN_PER_TRY,
                 st->grouper.rate);
  else if (st->recomp.kind)
    trueno_recompress(st, st->recomp.idle,
                      (uint64_t)st->recomp.rate * RECOMPRESS_SCAN_PER_TRY,
                      st->recomp.rate);
  /* Compaction is decided by what it can give back, not by how the waste
   * came (frees scattered by trims and overwrites, pages recompressed into
   * smaller classes): it starts when the waste passes 1/WASTE_START of
   * the least the objects take, and goes on from call to call until it is
   * under 1/WASTE_STOP, or until it stops paying: a rule based on what
   * ran before leaves waste that no such event announced
   * (docs/housekeeping.md).  With a pool reserve (swap=on)
   * each pass moves a bounded amount (see arena.c), so the waste comes down
   * over several calls. */
  uint64_t ideal, waste = compact_waste(st, &ideal);
  if (!st->compacting) {
    /* After compaction stopped short: from the least waste seen since,
     * so that a store that shrinks is not held to an old, larger floor. */
    if (waste < st->waste_floor)
      st->waste_floor = waste;
    if (waste < ideal / WASTE_START + WASTE_ALLOWED ||
        waste < st->waste_floor + ideal / WASTE_START)
      return 0;
    st->compacting = 1;
    st->compact_stalls = 0;
  }
  /* Passes until the waste is down, at most COMPACT_PASSES a call: a swap
   * device's server shares its CPUs with the workload that is swapping. */
  uint64_t before = waste;
  int r = 0, none = 0;
  for (int pass = 0; !r && !none && pass < COMPACT_PASSES &&
                     !waste_low(waste, ideal);
       pass++) {
    r = compact_passes(st, 1, &none);
    waste = compact_waste(st, &ideal);
  }
  uint64_t gained = before > waste ? before - waste : 0;
  if (waste_low(waste, ideal)) {
    st->compacting = 0;
    st->waste_floor = 0;
  } else if (none || r || (gained < before / 64 &&
                           ++st->compact_stalls >= STALL_PATIENCE)) {
    /* Nothing left to move or no memory to move it, or calls in a
     * row gave back too little: what is left is not for compaction now;
     * try again once the waste has grown past it. */
    st->compacting = 0;
    st->waste_floor = waste;
  } else if (gained >= before / 64) {
    st->compact_stalls = 0;
  }
  return r;
}

