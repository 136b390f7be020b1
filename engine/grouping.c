/* Forming cold groups: trueno_group (grouping.h).
 *
 * A step walks aligned windows of the device.  In each, the pages idle for
 * min_idle (and members of groups that lost half their members or more)
 * are candidates; the window is tried when one of them has not been tried
 * since its last write.  Two or more are compressed into one frame, kept
 * when it costs less than their copies; a lone idle page is left to the
 * recompressor.  Each candidate is looked at and decoded under its own
 * lock, one at a time, and flagged (SLOT_RECOMPRESSED); its new value is
 * installed later only if it is unchanged (slot_unchanged), so I/O never
 * waits for a compression.
 *
 * SPDX-License-Identifier: MIT
 */
#include "grouping.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "group.h"
#include "recompress.h"
#include "slot.h"
#include "store_impl.h"
#include "workspace.h"

#define PAGE TRUENO_PAGE_SIZE

int grouper_init(struct grouper *g, const struct trueno_config *cfg) {
  memset(g, 0, sizeof *g);
  if (cfg->group_pages) {
    if (cfg->group_pages < 2 || cfg->group_pages > TRUENO_GROUP_PAGES_MAX ||
        cfg->group_rate > TRUENO_RECOMPRESS_RATE_MAX ||
        cfg->group_cache > TRUENO_GROUP_CACHE_MAX)
      return -EINVAL;
    g->level = cfg->group_level ? cfg->group_level : TRUENO_GROUP_LEVEL;
    if (g->level < trueno_zstd_level_min() ||
        g->level > trueno_zstd_level_max())
      return -EINVAL;
    g->pages = cfg->group_pages;
    g->idle = cfg->group_idle ? cfg->group_idle : TRUENO_RECOMPRESS_IDLE;
    g->rate = cfg->group_rate ? cfg->group_rate : TRUENO_GROUP_RATE;
  }
  pthread_mutex_init(&g->lock, NULL);
  return 0;
}

static void working_memory_free(struct grouper *g) {
  free(g->in);
  free(g->out);
  if (g->zstate)
    trueno_codec_zstd.state_free(g->zstate);
  g->in = g->out = NULL;
  g->zstate = NULL;
}

void grouper_destroy(struct grouper *g) {
  working_memory_free(g);
  pthread_mutex_destroy(&g->lock);
}

/* A page of a window as a step sees it. */
struct member {
  uint64_t idx;
  unsigned bit;    /* idx - the window's base */
  size_t cost;     /* what its copy costs the store now */
  struct slot seen;
};

enum { NOT_CANDIDATE, CANDIDATE, FRESH };

/* What a locked slot is to a step: a group member counts when its group
 * has lost half its members or more (formed again, its dead bytes go). */
static int classify(const struct slot *s, uint32_t now, uint32_t min_idle) {
  uint32_t stamp = __atomic_load_n(&s->stamp, __ATOMIC_RELAXED);
  switch (s->type) {
  case SLOT_COMP:
  case SLOT_RAW:
    if (((now - stamp) & SLOT_TICK_MASK) < min_idle)
      return NOT_CANDIDATE;
    return stamp & SLOT_RECOMPRESSED ? CANDIDATE : FRESH;
  case SLOT_GROUP: {
    const struct group *g = (const struct group *)(uintptr_t)s->val;
    return 2 * atomic_load(&g->live) <= g->nmembers ? FRESH : NOT_CANDIDATE;
  }
  default:
    return NOT_CANDIDATE;
  }
}

static size_t copy_cost(const struct slot *s) {
  switch (s->type) {
  case SLOT_COMP:
    return arena_class_size(s->len);
  case SLOT_RAW:
    return PAGE;
  case SLOT_GROUP: {
    const struct group *g = (const struct group *)(uintptr_t)s->val;
    uint32_t live = atomic_load(&g->live);
    return group_cost(g->frame_len) / (live ? live : 1);
  }
  }
  return 0;
}

/* Stores a lone member of a sparse group as a page of its own (zstd at
 * the groups' level, else raw), so that its group can go. */
static int dissolve(struct trueno_store *st, struct workspace *ws,
                    struct member *m) {
  struct slot *s = slots_peek(&st->slots, m->idx);
  pthread_rwlock_t *l = lock_of(st, m->idx);
  pthread_rwlock_rdlock(l);
  int r = slot_unchanged(s, &m->seen) ? slot_decode(st, ws, s, ws->page)
                                      : -ESTALE;
  pthread_rwlock_unlock(l);
  if (r)
    return r == -ESTALE || r == -EIO ? 0 : r; /* changed, or for reads */
  void *state = ws_codec_state(ws, TRUENO_ALG_ZSTD);
  if (!state)
    return -ENOMEM;
  int n = trueno_codec_zstd.compress(state, ws->page, ws->buf,
                                     (int)sizeof ws->buf, st->grouper.level);
  if (n < 0)
    return n;
  struct slot next = {.type = SLOT_RAW, .len = PAGE};
  if (n > 0)
    next = (struct slot){.type = SLOT_COMP, .alg = TRUENO_ALG_ZSTD,
                         .len = (uint16_t)n};
  r = slot_replace_if(st, m->idx, &m->seen, &next, ws->buf, ws->page);
  return r < 0 ? r : 0;
}

/* A window's one candidate: a page is left to the recompressor (or marked
 * tried), a group member is dissolved. */
static int lone(struct trueno_store *st, struct workspace *ws,
                struct member *m, uint32_t now, uint32_t min_idle) {
  if (m->seen.type == SLOT_GROUP)
    return dissolve(st, ws, m);
  struct slot *s = slots_peek(&st->slots, m->idx);
  if (st->recomp.kind) {
    int r = recompress_page(st, ws, m->idx, s, now, min_idle);
    return r == -EAGAIN ? -ENOMEM : r < 0 ? r : 0;
  }
  pthread_rwlock_t *l = lock_of(st, m->idx);
  pthread_rwlock_wrlock(l);
  if (classify(s, now, min_idle) == FRESH)
    __atomic_fetch_or(&s->stamp, SLOT_RECOMPRESSED, __ATOMIC_RELAXED);
  pthread_rwlock_unlock(l);
  return 0;
}

/* Looks at page idx for a step: a candidate is flagged and decoded into
 * page under its lock.  1 when it is one (m filled), else 0. */
static int take(struct trueno_store *st, struct workspace *ws, uint64_t idx,
                unsigned bit, uint32_t now, uint32_t min_idle, void *page,
                struct member *m) {
  struct slot *s = slots_peek(&st->slots, idx);
  if (!s)
    return 0;
  pthread_rwlock_t *l = lock_of(st, idx);
  pthread_rwlock_wrlock(l);
  int ok = classify(s, now, min_idle) != NOT_CANDIDATE;
  if (ok && s->type != SLOT_GROUP)
    __atomic_fetch_or(&s->stamp, SLOT_RECOMPRESSED, __ATOMIC_RELAXED);
  if (ok) {
    *m = (struct member){idx, bit, copy_cost(s), *s};
    ok = slot_decode(st, ws, s, page) == 0; /* a bad page: for reads */
  }
  pthread_rwlock_unlock(l);
  return ok;
}

/* One window from base.  0 or a negative errno that ends the step; *made
 * counts the groups made, *tried the pages compressed. */
static int window_step(struct trueno_store *st, struct workspace *ws,
                       uint64_t base, uint32_t now, uint32_t min_idle,
                       int *made, uint64_t *tried) {
  struct grouper *gr = &st->grouper;
  uint64_t end = base + gr->pages < st->npages ? base + gr->pages
                                                : st->npages;
  struct member m[TRUENO_GROUP_PAGES_MAX];
  unsigned k = 0, fresh = 0;
  for (uint64_t idx = base; idx < end; idx++) {
    struct slot *s = slots_peek(&st->slots, idx);
    if (!s)
      continue;
    pthread_rwlock_t *l = lock_of(st, idx);
    pthread_rwlock_rdlock(l);
    int c = classify(s, now, min_idle);
    if (c != NOT_CANDIDATE) /* readers may stamp it meanwhile: atomic */
      m[k++] = (struct member){
          idx, (unsigned)(idx - base), 0,
          {s->val, s->len, s->type, s->alg,
           __atomic_load_n(&s->stamp, __ATOMIC_RELAXED)}};
    fresh += c == FRESH;
    pthread_rwlock_unlock(l);
  }
  if (!fresh)
    return 0;
  if (k == 1)
    return lone(st, ws, &m[0], now, min_idle);
  unsigned n = 0;
  for (unsigned j = 0; j < k; j++)
    n += (unsigned)take(st, ws, m[j].idx, m[j].bit, now, min_idle,
                        gr->in + (size_t)n * PAGE, &m[n]);
  *tried += n;
  if (n < 2)
    return 0;
  size_t cost = 0;
  uint64_t mask = 0;
  for (unsigned j = 0; j < n; j++) {
    cost += m[j].cost;
    mask |= 1ull << m[j].bit;
  }
  int len = trueno_zstd_compress_n(gr->zstate, gr->in, (size_t)n * PAGE, gr->out,
                                   gr->out_cap, gr->level);
  if (len < 0)
    return len;
  if (len == 0 || group_cost((size_t)len) >= cost)
    return 0; /* tried: flagged, not tried again until written */
  struct group *g;
  int r = group_make(st, gr->out, (size_t)len, base, mask, &g);
  if (r)
    return r == -EAGAIN ? -ENOMEM : r; /* the reserve is the writers' */
  for (unsigned j = 0; j < n; j++)
    slot_join_group(st, m[j].idx, &m[j].seen, g, j);
  group_put(st, g);
  ++*made;
  return 0;
}

static int working_memory(struct grouper *gr) {
  if (gr->in)
    return 0;
  gr->out_cap = (size_t)gr->pages * PAGE;
  gr->in = malloc(gr->out_cap);
  gr->out = malloc(gr->out_cap);
  gr->zstate = trueno_codec_zstd.state_new();
  if (gr->in && gr->out && gr->zstate)
    return 0;
  working_memory_free(gr);
  return -ENOMEM;
}

int trueno_group(struct trueno_store *st, uint32_t min_idle,
                 uint64_t max_slots, uint64_t max_tries) {
  struct grouper *gr = &st->grouper;
  if (!gr->pages)
    return -EINVAL;
  store_clock_update(st);
  pthread_mutex_lock(&gr->lock);
  /* No recompression step alongside: its "gained nothing" flags a page
   * in place, which slot_unchanged could not tell from ours. */
  pthread_mutex_lock(&st->recomp.lock);
  int r = working_memory(gr), made = 0;
  if (!r && st->recomp.kind)
    r = recompressor_ready(&st->recomp);
  struct workspace *ws = NULL;
  if (!r && !(ws = ws_get(&st->ws)))
    r = -ENOMEM;
  uint32_t now = store_tick(st);
  uint64_t nwin = (st->npages + gr->pages - 1) / gr->pages;
  if (max_slots > st->npages)
    max_slots = st->npages;
  uint64_t w = gr->cursor < nwin ? gr->cursor : 0, tried = 0;
  for (uint64_t seen = 0; !r && seen < max_slots && tried < max_tries;) {
    uint64_t base = w * gr->pages;
    uint64_t used = slots_next_used(&st->slots, base);
    if (used >= base + gr->pages) { /* never written: skip whole */
      uint64_t to = used >= st->npages ? nwin : used / gr->pages;
      seen += (to - w) * gr->pages;
      w = to < nwin ? to : 0;
      continue;
    }
    r = window_step(st, ws, base, now, min_idle, &made, &tried);
    seen += gr->pages;
    if (++w >= nwin)
      w = 0;
  }
  gr->cursor = w;
  if (!tried)
    working_memory_free(gr);
  if (ws)
    ws_put(&st->ws, ws);
  pthread_mutex_unlock(&st->recomp.lock);
  pthread_mutex_unlock(&gr->lock);
  return made ? made : r;
}
