/* trueno_stats_json: the stats file's format, which scripts and tools read
 * by key (keep the keys).
 * SPDX-License-Identifier: MIT */
#include "stats_desc.h"

int trueno_stats_json(const struct trueno_stats *s, enum trueno_algorithm alg,
                      char *buf, size_t cap) {
  struct stats_out o = {.buf = buf, .cap = cap};
  stats_put(&o, "{\"algorithm\": \"%s\"", trueno_algorithm_name(alg));
  for (size_t i = 0; i < stats_ndescs; i++) {
    const struct stats_desc *d = &stats_descs[i];
    const uint64_t *v = stats_value(s, d);
    if (!d->per_alg) {
      stats_put(&o, ", \"%s\": %llu", d->name, (unsigned long long)*v);
      continue;
    }
    /* "alg_pages" -> "lz4_pages", "zstd_pages" */
    for (int a = 0; a < TRUENO_ALG_COUNT; a++)
      stats_put(&o, ", \"%s%s\": %llu",
                trueno_algorithm_name((enum trueno_algorithm)a),
                d->name + 3, (unsigned long long)v[a]);
  }
  /* Ratio as zram users read it: data held per byte of memory used. */
  double ratio = s->mem_used_total
                     ? (double)s->orig_data_size / (double)s->mem_used_total
                     : 0.0;
  stats_put(&o, ", \"ratio\": %.4f}", ratio);
  return stats_out_end(&o);
}
