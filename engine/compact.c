/* The compaction driver (compact.h).
 * SPDX-License-Identifier: MIT */
#include "compact.h"

#include <errno.h>

#include "arena.h"
#include "slot.h"
#include "store_impl.h"
#include "workspace.h"

#define PAGE TRUENO_PAGE_SIZE

/* One pass: moves the objects of the zspages arena_compact_begin picks;
 * *none set when it found none.  0 or a negative errno. */
static int compact_pass(struct trueno_store *st, int *none) {
  *none = !arena_compact_begin(st->arena);
  if (*none)
    return 0;
  struct workspace *ws = ws_get(&st->ws);
  int r = ws ? 0 : -ENOMEM;
  /* No back-pointers from objects to slots (they would cost payload
   * bytes): one pass over the allocated slot chunks finds the movers. */
  for (uint64_t i = slots_next_used(&st->slots, 0); !r && i < st->npages;
       i = slots_next_used(&st->slots, i + 1))
    r = slot_compact(st, ws, i, slots_peek(&st->slots, i));
  if (ws)
    ws_put(&st->ws, ws);
  arena_compact_end(st->arena);
  store_counter_add(&st->cnt->compactions, 1);
  return r;
}

int compact_passes(struct trueno_store *st, int passes, int *none) {
  pthread_mutex_lock(&st->compact_lock);
  int r = 0;
  *none = 0;
  for (int pass = 0; !r && !*none && pass < passes; pass++)
    r = compact_pass(st, none);
  pthread_mutex_unlock(&st->compact_lock);
  return r;
}

int trueno_compact(struct trueno_store *st) {
  int none;
  return compact_passes(st, COMPACT_PASSES, &none);
}

uint64_t compact_waste(struct trueno_store *st, uint64_t *ideal) {
  uint64_t pages = atomic_load(&st->pool.pages_out);
  uint64_t raw = atomic_load(&st->cnt->huge_pages);
  uint64_t held = (pages > raw ? pages - raw : 0) * PAGE;
  *ideal = arena_footprint(st->arena);
  return held > *ideal ? held - *ideal : 0;
}

