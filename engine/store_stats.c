/* SPDX-License-Identifier: MIT */
#include "store_stats.h"

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

#define READ_STORE(name) out->name = atomic_load(&c->name);
#define READ_ALG(name)                                                       \
  for (int i = 0; i < TRUENO_ALG_COUNT; i++)                                 \
    out->name[i] = atomic_load(&c->name[i]);
#define READ_GET(name)
#define READ(name, prom, kind, unit, source, help) READ_##source(name)

void store_counters_read(struct store_counters *c, struct trueno_stats *out) {
  TRUENO_STATS(READ)
}

#define CLEAR_GAUGE_STORE(name) atomic_store(&c->name, 0);
#define CLEAR_GAUGE_ALG(name)                                                \
  for (int i = 0; i < TRUENO_ALG_COUNT; i++)                                 \
    atomic_store(&c->name[i], 0);
#define CLEAR_GAUGE_GET(name)
#define CLEAR_COUNTER_STORE(name)
#define CLEAR_COUNTER_ALG(name)
#define CLEAR_COUNTER_GET(name)
#define CLEAR(name, prom, kind, unit, source, help) CLEAR_##kind##_##source(name)

void store_counters_clear_gauges(struct store_counters *c) {
  TRUENO_STATS(CLEAR)
  atomic_store(&c->group_meta_bytes, 0);
}
