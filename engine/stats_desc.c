/* SPDX-License-Identifier: MIT */
#include "stats_desc.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#define IS_COUNTER_COUNTER true
#define IS_COUNTER_GAUGE false
#define IS_BYTES_BYTES true
#define IS_BYTES_PAGES false
#define IS_BYTES_COUNT false
#define IS_ALG_STORE false
#define IS_ALG_GET false
#define IS_ALG_ALG true
#define DESC(name_, prom_, kind, unit, source, help_)                        \
  {.name = #name_,                                                           \
   .prom = #prom_,                                                           \
   .help = help_,                                                            \
   .counter = IS_COUNTER_##kind,                                             \
   .bytes = IS_BYTES_##unit,                                                 \
   .per_alg = IS_ALG_##source,                                               \
   .offset = offsetof(struct trueno_stats, name_)},

const struct stats_desc stats_descs[] = {TRUENO_STATS(DESC)};
const size_t stats_ndescs = sizeof stats_descs / sizeof stats_descs[0];

void stats_put(struct stats_out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    o->len += (size_t)n;
}

int stats_out_end(const struct stats_out *o) {
  return o->len > INT_MAX ? -EOVERFLOW : (int)o->len;
}
