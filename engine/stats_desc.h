/* TRUENO_STATS (trueno.h) as an array the text writers walk, and the
 * appender they write with.
 * SPDX-License-Identifier: MIT */
#ifndef TRUENO_STATS_DESC_H
#define TRUENO_STATS_DESC_H

#include <stdbool.h>
#include <stddef.h>

#include "trueno.h"

struct stats_desc {
  const char *name, *prom, *help;
  bool counter;     /* else a gauge */
  bool bytes;       /* unit BYTES: Prometheus' name ends in _bytes */
  bool per_alg;     /* source ALG: TRUENO_ALG_COUNT values */
  size_t offset;    /* of the field in struct trueno_stats */
};

extern const struct stats_desc stats_descs[];
extern const size_t stats_ndescs;

/* The field's values: one, or TRUENO_ALG_COUNT for per_alg. */
static inline const uint64_t *stats_value(const struct trueno_stats *s,
                                          const struct stats_desc *d) {
  return (const uint64_t *)(const void *)((const char *)s + d->offset);
}

/* snprintf into buf at len, counting what did not fit, so the writer can
 * return the length it needs as snprintf does. */
struct stats_out {
  char *buf;
  size_t cap, len;
};
void stats_put(struct stats_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* snprintf's result for the text: the length, or -EOVERFLOW past INT_MAX. */
int stats_out_end(const struct stats_out *o);

#endif
