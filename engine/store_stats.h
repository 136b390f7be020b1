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

struct store_counters {
  _Atomic uint64_t compr_data_size, same_pages, huge_pages, pages_stored;
  _Atomic uint64_t alg_pages[TRUENO_ALG_COUNT];
  _Atomic uint64_t reads, writes, trims, failed_reads, failed_writes;
  _Atomic uint64_t pages_read, pages_written, pages_trimmed;
  _Atomic uint64_t compactions, pages_compacted;
  _Atomic uint64_t offload_batches, offload_pages, offload_fallbacks;
  _Atomic uint64_t offload_read_batches, offload_read_pages;
  _Atomic uint64_t offload_read_fallbacks;
  _Atomic uint64_t pages_recompressed, recompress_no_gain;
  _Atomic uint64_t groups, pages_grouped, group_frame_bytes;
  _Atomic uint64_t group_dead_bytes, group_meta_bytes, group_decodes;
};

static inline void store_counter_add(_Atomic uint64_t *c, int64_t d) {
  atomic_fetch_add_explicit(c, (uint64_t)d, memory_order_relaxed);
}

/* Removes old's contribution and adds next's. */
void store_counters_move(struct store_counters *c, const struct slot *old,
                         const struct slot *next);
void store_counters_read(struct store_counters *c, struct trueno_stats *out);

#endif
