/* Attaching to a persistent store's state: the intent records are written
 * again, then one walk over the slots checks every value and rebuilds what
 * only the previous process held (pool bitmaps and free lists, zspage
 * counts and lists, accounting).  Nothing the walk does not reach is in
 * use: pages a kill left between allocation and slot, or between slot and
 * free, go back to the file.  See docs/persistence.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "arena.h"
#include "codec.h"
#include "metaheap.h"
#include "pagepool.h"
#include "region.h"
#include "slots.h"
#include "store_impl.h"
#include "store_stats.h"

#define PAGE TRUENO_PAGE_SIZE

struct region_params persist_params(const struct trueno_config *cfg) {
  /* Everything the region's bytes depend on: a build that differs in any
   * of them reads another format. */
  uint64_t layout = (uint64_t)sizeof(struct slot) * 0x9e3779b97f4a7c15ull;
  uint64_t parts[] = {SLOTS_PER_CHUNK, PP_CHUNK_BYTES, PP_PAGE, PP_HALF,
                      ARENA_ALIGN,     ARENA_MAX_OBJ,  MH_CELL, NSTRIPES,
                      arena_layout(),  sizeof(struct region_intent)};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
    layout = (layout ^ parts[i]) * 0x100000001b3ull;
  return (struct region_params){.size = cfg->size,
                                .algorithm = (int)cfg->algorithm,
                                .nstripes = NSTRIPES,
                                .layout = layout};
}

static int damaged(char *why, size_t why_len, uint64_t idx, const char *what) {
  if (why && why_len)
    snprintf(why, why_len, "state: damaged at page %llu: %s",
             (unsigned long long)idx, what);
  return -EUCLEAN;
}

/* Slot changes a kill interrupted: their new values, written again. */
static int apply_intents(struct trueno_store *st, char *why, size_t why_len) {
  for (unsigned i = 0; i < NSTRIPES; i++) {
    struct region_intent *in = &st->rg->intents[i];
    uint64_t idx1 = atomic_load(&in->idx1);
    if (!idx1)
      continue;
    uint64_t idx = idx1 - 1;
    if (idx >= st->npages || idx % NSTRIPES != i)
      return damaged(why, why_len, idx, "an intent record out of range");
    struct slot *s = slots_peek(&st->slots, idx);
    if (!s)
      return damaged(why, why_len, idx, "an intent record for no slot");
    *s = in->next;
    atomic_store(&in->idx1, 0);
  }
  return 0;
}

struct handles {
  uint64_t *h;
  size_t n, cap;
};

static int handles_push(struct handles *hs, uint64_t h) {
  if (hs->n == hs->cap) {
    size_t cap = hs->cap ? hs->cap * 2 : 4096;
    uint64_t *p = realloc(hs->h, cap * sizeof *p);
    if (!p)
      return -ENOMEM;
    hs->h = p;
    hs->cap = cap;
  }
  hs->h[hs->n++] = h;
  return 0;
}

/* Checks one slot, marks what it holds, counts it.  The clock starts
 * again at 0: stamps do too (a page is as idle as if written now). */
static int adopt_slot(struct trueno_store *st, uint64_t idx, struct slot *s,
                      struct handles *hs, char *why, size_t why_len) {
  static const struct slot empty;
  int r = 0;
  switch (s->type) {
  case SLOT_EMPTY:
  case SLOT_SAME:
    break;
  case SLOT_RAW:
    if (s->len != PAGE)
      return damaged(why, why_len, idx, "a raw page of the wrong length");
    if (pagepool_adopt_page(&st->pool, (void *)(uintptr_t)s->val))
      return damaged(why, why_len, idx,
                     "a raw page outside the pool, or another's");
    break;
  case SLOT_COMP:
    if (s->alg >= TRUENO_ALG_COUNT || !trueno_codec_for(s->alg))
      return damaged(why, why_len, idx, "an unknown algorithm");
    if (arena_adopt_check(st->arena, s->val, s->len))
      return damaged(why, why_len, idx,
                     "a compressed page whose object is not in the arena");
    r = handles_push(hs, s->val);
    if (r) {
      snprintf(why, why_len, "state: no memory to attach");
      return r;
    }
    break;
  default: /* SLOT_GROUP too: a persistent store has no groups */
    return damaged(why, why_len, idx, "a slot of unknown type");
  }
  s->stamp &= SLOT_RECOMPRESSED;
  store_counters_move(&st->cnt, &empty, s);
  return 0;
}

int persist_adopt(struct trueno_store *st, char *why, size_t why_len) {
  int r = apply_intents(st, why, why_len);
  if (r)
    return r;
  struct handles hs = {0};
  for (uint64_t i = slots_next_used(&st->slots, 0); i < st->npages;
       i = slots_next_used(&st->slots, i + 1)) {
    r = adopt_slot(st, i, slots_peek(&st->slots, i), &hs, why, why_len);
    if (r)
      break;
  }
  if (!r) {
    r = arena_adopt(st->arena, hs.h, hs.n);
    if (r == -ENOMEM)
      snprintf(why, why_len, "state: no memory to attach");
    else if (r)
      snprintf(why, why_len,
               "state: damaged: compressed pages share an object, or a "
               "zspage record is not sane");
  }
  free(hs.h);
  if (r)
    return r;
  meta_adopt_done(&st->mh);
  pagepool_adopt_done(&st->pool);
  return 0;
}
