/* trueno_stats_prometheus: Prometheus' text exposition format (version
 * 0.0.4), as node_exporter's textfile collector reads it.
 * SPDX-License-Identifier: MIT */
#include "stats_desc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A label value with \, " and newline escaped, as the format wants; out
 * holds 2 * TRUENO_STATS_LABEL_MAX + 1 bytes. */
static int escape_label(const char *v, char *out) {
  if (strlen(v) > TRUENO_STATS_LABEL_MAX)
    return -EINVAL;
  size_t n = 0;
  for (; *v; v++) {
    char c = *v == '\n' ? 'n' : *v;
    if (c != *v || c == '\\' || c == '"')
      out[n++] = '\\';
    out[n++] = c;
  }
  out[n] = 0;
  return 0;
}

int trueno_stats_prometheus(const struct trueno_stats *s,
                            enum trueno_algorithm alg, const char *device,
                            char *buf, size_t cap) {
  char dev[2 * TRUENO_STATS_LABEL_MAX + 1];
  if (escape_label(device, dev))
    return -EINVAL;
  struct stats_out o = {.buf = buf, .cap = cap};
  stats_put(&o,
            "# HELP trueno_info The store's compression algorithm.\n"
            "# TYPE trueno_info gauge\n"
            "trueno_info{device=\"%s\",algorithm=\"%s\"} 1\n",
            dev, trueno_algorithm_name(alg));
  for (size_t i = 0; i < stats_ndescs; i++) {
    const struct stats_desc *d = &stats_descs[i];
    char name[128];
    snprintf(name, sizeof name, "trueno_%s%s%s", d->prom,
             d->bytes ? "_bytes" : "", d->counter ? "_total" : "");
    stats_put(&o, "# HELP %s %s.\n# TYPE %s %s\n", name, d->help, name,
              d->counter ? "counter" : "gauge");
    const uint64_t *v = stats_value(s, d);
    if (!d->per_alg) {
      stats_put(&o, "%s{device=\"%s\"} %llu\n", name, dev,
                (unsigned long long)*v);
      continue;
    }
    for (int a = 0; a < TRUENO_ALG_COUNT; a++)
      stats_put(&o, "%s{device=\"%s\",algorithm=\"%s\"} %llu\n", name, dev,
                trueno_algorithm_name((enum trueno_algorithm)a),
                (unsigned long long)v[a]);
  }
  return stats_out_end(&o);
}
