/* Memory accounting and the memory limit.
 *
 * Every byte the store holds on behalf of stored data (arena pages, arena
 * bookkeeping, slot tables) is charged here before it is allocated, so the
 * limit is checked in exactly one place and can never be overshot by a
 * racing writer: the charge itself is the reservation.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_MEMACCT_H
#define TRUENO_MEMACCT_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

struct memacct {
  _Atomic uint64_t used;
  _Atomic uint64_t max;
  uint64_t limit; /* 0 = none; fixed at creation */
};

/* Reserves bytes; -ENOSPC if that would pass the limit (nothing charged). */
static inline int memacct_charge(struct memacct *m, uint64_t bytes) {
  uint64_t cur = atomic_load_explicit(&m->used, memory_order_relaxed);
  uint64_t next;
  do {
    next = cur + bytes;
    if (m->limit && next > m->limit)
      return -ENOSPC;
  } while (!atomic_compare_exchange_weak_explicit(
      &m->used, &cur, next, memory_order_relaxed, memory_order_relaxed));
  uint64_t mx = atomic_load_explicit(&m->max, memory_order_relaxed);
  while (next > mx && !atomic_compare_exchange_weak_explicit(
                          &m->max, &mx, next, memory_order_relaxed,
                          memory_order_relaxed))
    ;
  return 0;
}

/* Charges memory already held (a persistent store's state at attach),
 * past the limit if it must. */
static inline void memacct_force(struct memacct *m, uint64_t bytes) {
  uint64_t next =
      atomic_fetch_add_explicit(&m->used, bytes, memory_order_relaxed) + bytes;
  uint64_t mx = atomic_load_explicit(&m->max, memory_order_relaxed);
  while (next > mx && !atomic_compare_exchange_weak_explicit(
                          &m->max, &mx, next, memory_order_relaxed,
                          memory_order_relaxed))
    ;
}

static inline void memacct_uncharge(struct memacct *m, uint64_t bytes) {
  atomic_fetch_sub_explicit(&m->used, bytes, memory_order_relaxed);
}

#endif
