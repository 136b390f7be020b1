/* The store's counters and the one place that moves them when a slot
 * changes, so accounting cannot drift from the slots.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_STORE_STATS_H
#define TRUENO_STORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "slots.h"
#include "trueno.h"

/* The STORE and ALG counters of TRUENO_STATS (trueno.h). */
#define STORE_COUNTER_STORE(name) _Atomic uint64_t name;
#define STORE_COUNTER_ALG(name) _Atomic uint64_t name[TRUENO_ALG_COUNT];
#define STORE_COUNTER_GET(name)
#define STORE_COUNTER(name, prom, kind, unit, source, help)                  \
  STORE_COUNTER_##source(name)
struct store_counters {
  TRUENO_STATS(STORE_COUNTER)
  /* Not a statistic of its own: in metadata_bytes. */
  _Atomic uint64_t group_meta_bytes;
};

static inline void store_counter_add(_Atomic uint64_t *c, int64_t d) {
  atomic_fetch_add_explicit(c, (uint64_t)d, memory_order_relaxed);
}

/* Removes old's contribution and adds next's. */
void store_counters_move(struct store_counters *c, const struct slot *old,
                         const struct slot *next);
/* Zeroes every counter but the cumulative (COUNTER) ones: what an
 * attached state keeps of its counters before the walk counts its slots. */
void store_counters_clear_gauges(struct store_counters *c);
/* Fills out's STORE and ALG fields. */
void store_counters_read(struct store_counters *c, struct trueno_stats *out);

#endif
