/* SPDX-License-Identifier: MIT */
#include "store_stats.h"

#include <stdio.h>

static void contribute(struct store_counters *c, const struct slot *s,
                       int64_t sign) {
  switch (s->type) {
  case SLOT_EMPTY:
    return;
  case SLOT_SAME:
    store_counter_add(&c->same_pages, sign);
    break;
  case SLOT_RAW:
    store_counter_add(&c->huge_pages, sign);
    store_counter_add(&c->compr_data_size, sign * TRUENO_PAGE_SIZE);
    break;
  case SLOT_COMP:
    store_counter_add(&c->alg_pages[s->alg], sign);
    store_counter_add(&c->compr_data_size, sign * s->len);
    break;
  case SLOT_GROUP: /* its frame's bytes count with the group */
    store_counter_add(&c->pages_grouped, sign);
    break;
  }
  store_counter_add(&c->pages_stored, sign);
}

void store_counters_move(struct store_counters *c, const struct slot *old,
                         const struct slot *next) {
  contribute(c, old, -1);
  contribute(c, next, 1);
}

void store_counters_read(struct store_counters *c, struct trueno_stats *out) {
  out->pages_stored = atomic_load(&c->pages_stored);
  out->orig_data_size = out->pages_stored * TRUENO_PAGE_SIZE;
  out->compr_data_size = atomic_load(&c->compr_data_size);
  out->same_pages = atomic_load(&c->same_pages);
  out->huge_pages = atomic_load(&c->huge_pages);
  for (int i = 0; i < TRUENO_ALG_COUNT; i++)
    out->alg_pages[i] = atomic_load(&c->alg_pages[i]);
  out->reads = atomic_load(&c->reads);
  out->writes = atomic_load(&c->writes);
  out->trims = atomic_load(&c->trims);
  out->failed_reads = atomic_load(&c->failed_reads);
  out->failed_writes = atomic_load(&c->failed_writes);
  out->pages_read = atomic_load(&c->pages_read);
  out->pages_written = atomic_load(&c->pages_written);
  out->pages_trimmed = atomic_load(&c->pages_trimmed);
  out->compactions = atomic_load(&c->compactions);
  out->pages_compacted = atomic_load(&c->pages_compacted);
  out->offload_batches = atomic_load(&c->offload_batches);
  out->offload_pages = atomic_load(&c->offload_pages);
  out->offload_fallbacks = atomic_load(&c->offload_fallbacks);
  out->offload_read_batches = atomic_load(&c->offload_read_batches);
  out->offload_read_pages = atomic_load(&c->offload_read_pages);
  out->offload_read_fallbacks = atomic_load(&c->offload_read_fallbacks);
  out->pages_recompressed = atomic_load(&c->pages_recompressed);
  out->recompress_no_gain = atomic_load(&c->recompress_no_gain);
  out->groups = atomic_load(&c->groups);
  out->pages_grouped = atomic_load(&c->pages_grouped);
  out->group_frame_bytes = atomic_load(&c->group_frame_bytes);
  out->group_dead_bytes = atomic_load(&c->group_dead_bytes);
  out->group_decodes = atomic_load(&c->group_decodes);
}

int trueno_stats_json(const struct trueno_stats *s, enum trueno_algorithm alg,
                      char *buf, size_t cap) {
  /* Ratio as zram users read it: data held per byte of memory used. */
  double ratio = s->mem_used_total
                     ? (double)s->orig_data_size / (double)s->mem_used_total
                     : 0.0;
  return snprintf(
      buf, cap,
      "{\"algorithm\": \"%s\", \"disksize\": %llu, \"orig_data_size\": %llu, "
      "\"compr_data_size\": %llu, \"mem_used_total\": %llu, "
      "\"mem_limit\": %llu, \"mem_used_max\": %llu, \"same_pages\": %llu, "
      "\"huge_pages\": %llu, \"pages_stored\": %llu, \"lz4_pages\": %llu, "
      "\"zstd_pages\": %llu, \"reads\": %llu, \"writes\": %llu, "
      "\"trims\": %llu, \"failed_reads\": %llu, \"failed_writes\": %llu, "
      "\"pages_read\": %llu, \"pages_written\": %llu, "
      "\"pages_trimmed\": %llu, \"arena_pages\": %llu, "
      "\"metadata_bytes\": %llu, \"compactions\": %llu, "
      "\"pages_compacted\": %llu, \"offload_batches\": %llu, "
      "\"offload_pages\": %llu, \"offload_fallbacks\": %llu, "
      "\"offload_read_batches\": %llu, \"offload_read_pages\": %llu, "
      "\"offload_read_fallbacks\": %llu, "
      "\"pages_recompressed\": %llu, \"recompress_no_gain\": %llu, "
      "\"groups\": %llu, \"pages_grouped\": %llu, "
      "\"group_frame_bytes\": %llu, \"group_dead_bytes\": %llu, "
      "\"group_cache_hits\": %llu, \"group_cache_misses\": %llu, "
      "\"group_decodes\": %llu, \"group_cache_bytes\": %llu, "
      "\"ratio\": %.4f}",
      trueno_algorithm_name(alg), (unsigned long long)s->disksize,
      (unsigned long long)s->orig_data_size,
      (unsigned long long)s->compr_data_size,
      (unsigned long long)s->mem_used_total, (unsigned long long)s->mem_limit,
      (unsigned long long)s->mem_used_max, (unsigned long long)s->same_pages,
      (unsigned long long)s->huge_pages, (unsigned long long)s->pages_stored,
      (unsigned long long)s->alg_pages[TRUENO_ALG_LZ4],
      (unsigned long long)s->alg_pages[TRUENO_ALG_ZSTD],
      (unsigned long long)s->reads, (unsigned long long)s->writes,
      (unsigned long long)s->trims, (unsigned long long)s->failed_reads,
      (unsigned long long)s->failed_writes, (unsigned long long)s->pages_read,
      (unsigned long long)s->pages_written,
      (unsigned long long)s->pages_trimmed,
      (unsigned long long)s->arena_pages,
      (unsigned long long)s->metadata_bytes,
      (unsigned long long)s->compactions,
      (unsigned long long)s->pages_compacted,
      (unsigned long long)s->offload_batches,
      (unsigned long long)s->offload_pages,
      (unsigned long long)s->offload_fallbacks,
      (unsigned long long)s->offload_read_batches,
      (unsigned long long)s->offload_read_pages,
      (unsigned long long)s->offload_read_fallbacks,
      (unsigned long long)s->pages_recompressed,
      (unsigned long long)s->recompress_no_gain,
      (unsigned long long)s->groups, (unsigned long long)s->pages_grouped,
      (unsigned long long)s->group_frame_bytes,
      (unsigned long long)s->group_dead_bytes,
      (unsigned long long)s->group_cache_hits,
      (unsigned long long)s->group_cache_misses,
      (unsigned long long)s->group_decodes,
      (unsigned long long)s->group_cache_bytes, ratio);
}
