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
#include "group.h"
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
                      arena_layout(),  sizeof(struct region_intent),
                      sizeof(struct store_counters)};
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

/* Room for one more of an array that grows by doubling. */
static int grow(void **arr, size_t n, size_t *cap, size_t size) {
  if (n < *cap)
    return 0;
  size_t c = *cap ? *cap * 2 : 1024;
  void *p = realloc(*arr, c * size);
  if (!p)
    return -ENOMEM;
  *arr = p;
  *cap = c;
  return 0;
}

struct handles {
  uint64_t *h;
  size_t n, cap;
};

static int handles_push(struct handles *hs, uint64_t h) {
  int r = grow((void **)&hs->h, hs->n, &hs->cap, sizeof *hs->h);
  if (!r)
    hs->h[hs->n++] = h;
  return r;
}

/* A cold group's member, as a slot names it. */
struct member {
  uintptr_t g;
  uint64_t idx;
  uint16_t pos;
};

struct members {
  struct member *m;
  size_t n, cap;
};

static int members_push(struct members *ms, struct member m) {
  int r = grow((void **)&ms->m, ms->n, &ms->cap, sizeof *ms->m);
  if (!r)
    ms->m[ms->n++] = m;
  return r;
}

static int cmp_member(const void *x, const void *y) {
  const struct member *a = x, *b = y;
  if (a->g != b->g)
    return a->g < b->g ? -1 : 1;
  return (a->pos > b->pos) - (a->pos < b->pos);
}

/* The page of member pos of a group: the pos-th set bit of its mask. */
static uint64_t member_page(const struct group *g, unsigned pos) {
  uint64_t m = g->mask;
  for (unsigned i = 0; i < pos && m; i++)
    m &= m - 1;
  return g->base + (m ? (unsigned)__builtin_ctzll(m) : 64u);
}

/* One group's record checked, its frame's objects added to hs, its
 * record marked, its references and the counters made from its live
 * members m[0..n) (sorted by position). */
static int adopt_group(struct trueno_store *st, const struct member *m,
                       size_t n, struct handles *hs, uint64_t *serial) {
  struct group *g = (struct group *)m[0].g;
  if (!pagepool_owns(&st->pool, g, sizeof(void *)) ||
      m[0].g % 4096 + sizeof *g > 4096 || g->nchunks == 0 ||
      g->nchunks > group_chunks_for((size_t)GROUP_MAX_PAGES * PAGE))
    return -EUCLEAN;
  size_t rec = group_record_bytes(g->nchunks);
  unsigned nm = (unsigned)__builtin_popcountll(g->mask);
  if (meta_check(&st->mh, g, rec) || g->frame_len == 0 ||
      group_chunks_for(g->frame_len) != g->nchunks || nm != g->nmembers ||
      nm < 2 || g->base >= st->npages || n > nm)
    return -EUCLEAN;
  for (unsigned k = 0; k < g->nchunks; k++) {
    size_t len = k + 1u < g->nchunks
                     ? GROUP_CHUNK
                     : g->frame_len - (size_t)k * GROUP_CHUNK;
    if (arena_adopt_check(st->arena, g->chunks[k], len))
      return -EUCLEAN;
    int r = handles_push(hs, g->chunks[k]);
    if (r)
      return r;
  }
  for (size_t i = 0; i < n; i++)
    if (m[i].pos >= nm || (i && m[i].pos == m[i - 1].pos) ||
        member_page(g, m[i].pos) != m[i].idx)
      return -EUCLEAN;
  int r = meta_adopt(&st->mh, g, rec);
  if (r)
    return r;
  uint32_t share = g->frame_len / g->nmembers;
  atomic_store(&g->live, (uint32_t)n);
  atomic_store(&g->refs, (uint32_t)n);
  atomic_store(&g->dead, (uint64_t)(nm - n) * share);
  store_counter_add(&st->cnt->groups, 1);
  store_counter_add(&st->cnt->group_frame_bytes, g->frame_len);
  store_counter_add(&st->cnt->compr_data_size, g->frame_len);
  store_counter_add(&st->cnt->group_dead_bytes, (int64_t)(nm - n) * share);
  store_counter_add(&st->cnt->group_meta_bytes, (int64_t)rec);
  if (g->serial > *serial)
    *serial = g->serial;
  return 0;
}

static int adopt_groups(struct trueno_store *st, struct members *ms,
                        struct handles *hs, char *why, size_t why_len) {
  if (ms->n)
    qsort(ms->m, ms->n, sizeof *ms->m, cmp_member);
  uint64_t serial = 0;
  for (size_t i = 0; i < ms->n;) {
    size_t j = i + 1;
    while (j < ms->n && ms->m[j].g == ms->m[i].g)
      j++;
    int r = adopt_group(st, ms->m + i, j - i, hs, &serial);
    if (r == -ENOMEM)
      snprintf(why, why_len, "state: no memory to attach");
    else if (r)
      return damaged(why, why_len, ms->m[i].idx,
                     "a cold group's record is not sane");
    if (r)
      return r;
    i = j;
  }
  atomic_store(&st->group_serial, serial);
  return 0;
}

/* Checks one slot, marks what it holds, counts it.  The clock starts
 * again at 0: stamps do too (a page is as idle as if written now). */
static int adopt_slot(struct trueno_store *st, uint64_t idx, struct slot *s,
                      struct handles *hs, struct members *ms, char *why,
                      size_t why_len) {
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
  case SLOT_GROUP:
    if (!st->grouper.pages) {
      snprintf(why, why_len,
               "group: the state holds cold groups (page %llu): attach "
               "with groups on",
               (unsigned long long)idx);
      return -EINVAL;
    }
    if (!pagepool_owns(&st->pool, (void *)(uintptr_t)s->val, sizeof(void *)))
      return damaged(why, why_len, idx, "a cold group outside the region");
    r = members_push(ms, (struct member){s->val, idx, s->len});
    if (r) {
      snprintf(why, why_len, "state: no memory to attach");
      return r;
    }
    break;
  default:
    return damaged(why, why_len, idx, "a slot of unknown type");
  }
  s->stamp &= SLOT_RECOMPRESSED;
  store_counters_move(st->cnt, &empty, s);
  return 0;
}

/* A chunk of slots is used from when its top entry is set (slots.h), and
 * must then hold empty slots: whatever bytes a damaged state left in an
 * unpublished one go. */
static void unpublished_slots_zero(struct trueno_store *st) {
  const size_t bytes = SLOTS_PER_CHUNK * sizeof(struct slot);
  uint64_t n = st->slots.nchunks;
  for (uint64_t i = 0; i < n;) {
    if (atomic_load(&st->rg->top[i])) {
      i++;
      continue;
    }
    uint64_t j = i;
    while (j < n && !atomic_load(&st->rg->top[j]))
      j++;
    region_punch(st->rg, st->rg->slots + i * SLOTS_PER_CHUNK, (j - i) * bytes);
    i = j;
  }
}

int persist_adopt(struct trueno_store *st, char *why, size_t why_len) {
  int r = apply_intents(st, why, why_len);
  if (r)
    return r;
  struct handles hs = {0};
  struct members ms = {0};
  for (uint64_t i = slots_next_used(&st->slots, 0); i < st->npages;
       i = slots_next_used(&st->slots, i + 1)) {
    r = adopt_slot(st, i, slots_peek(&st->slots, i), &hs, &ms, why, why_len);
    if (r)
      break;
  }
  if (!r)
    r = adopt_groups(st, &ms, &hs, why, why_len);
  free(ms.m);
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
  unpublished_slots_zero(st);
  return 0;
}
