/* Changing slots (slot.h).
 * SPDX-License-Identifier: MIT */
#include "slot.h"

#include <errno.h>
#include <string.h>

#include "arena.h"
#include "codec.h"
#include "group.h"
#include "page.h"
#include "pagepool.h"
#include "region.h"
#include "store_impl.h"
#include "workspace.h"

#define PAGE TRUENO_PAGE_SIZE

void slot_release(struct trueno_store *st, const struct slot *s) {
  if (s->type == SLOT_COMP)
    arena_free(st->arena, s->val);
  else if (s->type == SLOT_RAW)
    pagepool_free(&st->pool, (void *)(uintptr_t)s->val);
  else if (s->type == SLOT_GROUP)
    group_member_gone(st, (struct group *)(uintptr_t)s->val);
}

void slot_stamp_read(struct trueno_store *st, struct slot *s) {
  uint32_t old = __atomic_load_n(&s->stamp, __ATOMIC_RELAXED);
  uint32_t now = (old & SLOT_RECOMPRESSED) | store_tick(st);
  if (old != now) /* no store, no dirty cache line, when nothing changed */
    __atomic_store_n(&s->stamp, now, __ATOMIC_RELAXED);
}

/* A persistent store's slot cannot change in one store (16 bytes, and no
 * cmpxchg16b on every CPU we serve): its stripe's intent record holds the
 * new value while the slot may be half written, and an attach after a
 * kill writes it again (docs/persistence.md).  A kill lands between two
 * instructions, and every store made before it reaches the shared file:
 * only the compiler's order matters, hence the signal fences. */
static void slot_commit(struct trueno_store *st, struct slot *s,
                        const struct slot *next) {
  uint64_t idx = (uint64_t)(s - st->rg->slots);
  struct region_intent *in = &st->rg->intents[idx % NSTRIPES];
  in->next = *next;
  atomic_store_explicit(&in->idx1, idx + 1, memory_order_release);
  atomic_signal_fence(memory_order_seq_cst);
  *s = *next;
  atomic_signal_fence(memory_order_seq_cst);
  atomic_store_explicit(&in->idx1, 0, memory_order_release);
}

void slot_swap(struct trueno_store *st, struct slot *s,
               const struct slot *next, struct slot *old) {
  *old = *s;
  if (st->rg)
    slot_commit(st, s, next);
  else
    *s = *next;
  store_counters_move(st->cnt, old, next);
}

/* In place (same class) the write cannot fail at the memory limit, and
 * the arena does not churn.  Not in a persistent store: a kill in the
 * middle of the copy would leave a page that is neither old nor new. */
int slot_install(struct trueno_store *st, const void *payload, struct slot *s,
                 const void *page, struct slot *next, struct slot *old) {
  int r = 0, in_place = !st->rg;
  next->stamp = store_tick(st); /* new contents: not recompressed yet */
  if (in_place && next->type == SLOT_RAW && s->type == SLOT_RAW) {
    memcpy((void *)(uintptr_t)s->val, page, PAGE);
    next->val = s->val;
    slot_swap(st, s, next, old);
    old->type = SLOT_EMPTY; /* the payload lives on in the slot */
    return 0;
  }
  if (in_place && next->type == SLOT_COMP && s->type == SLOT_COMP &&
      arena_fits(s->val, next->len)) {
    arena_overwrite(s->val, payload, next->len);
    next->val = s->val;
    slot_swap(st, s, next, old);
    old->type = SLOT_EMPTY;
    return 0;
  }
  if (next->type == SLOT_COMP) {
    r = arena_store(st->arena, payload, next->len, &next->val);
  } else if (next->type == SLOT_RAW) {
    void *raw;
    r = pagepool_alloc(&st->pool, &raw);
    if (!r) {
      memcpy(raw, page, PAGE);
      next->val = (uintptr_t)raw;
    }
  }
  if (!r)
    slot_swap(st, s, next, old);
  return r;
}

int slot_reserve_wait(struct trueno_store *st, struct timespec *deadline) {
  if (deadline->tv_sec == 0 && deadline->tv_nsec == 0)
    *deadline = pagepool_wait_deadline();
  return pagepool_wait(&st->pool, deadline);
}

int slot_install_locked(struct trueno_store *st, pthread_rwlock_t *l,
                        const void *payload, struct slot *s, const void *page,
                        struct slot *next, struct slot *old) {
  struct timespec deadline = {0};
  int r;
  do {
    pthread_rwlock_wrlock(l);
    r = slot_install(st, payload, s, page, next, old);
    pthread_rwlock_unlock(l);
  } while (r == -EAGAIN && (r = slot_reserve_wait(st, &deadline)) == 0);
  return r;
}

int slot_decode(struct trueno_store *st, struct workspace *ws,
                const struct slot *s, void *page) {
  switch (s->type) {
  case SLOT_EMPTY:
    memset(page, 0, PAGE);
    return 0;
  case SLOT_SAME:
    trueno_page_fill(page, s->val);
    return 0;
  case SLOT_RAW:
    memcpy(page, (const void *)(uintptr_t)s->val, PAGE);
    return 0;
  case SLOT_COMP: {
    const struct trueno_codec *c = trueno_codec_for(s->alg);
    if (!c || s->len == 0 || s->len > ARENA_MAX_OBJ)
      return -EIO;
    void *state = ws_codec_state(ws, (enum trueno_algorithm)s->alg);
    if (!state)
      return -ENOMEM;
    const void *src = arena_view(s->val, s->len, ws->buf);
    return c->decompress(state, src, s->len, page);
  }
  case SLOT_GROUP:
    return group_read(st, ws, (struct group *)(uintptr_t)s->val, s->len, page);
  }
  return -EIO;
}

int slot_compact(struct trueno_store *st, struct workspace *ws, uint64_t idx,
                 struct slot *s) {
  pthread_rwlock_t *l = lock_of(st, idx);
  pthread_rwlock_wrlock(l);
  if (s->type == SLOT_GROUP) {
    struct group *g = (struct group *)(uintptr_t)s->val;
    int moving = group_isolated(g);
    if (moving)
      group_get(g); /* alive while its members move */
    pthread_rwlock_unlock(l);
    if (!moving)
      return 0;
    int r = group_move(st, ws, g);
    group_put(st, g);
    return r;
  }
  if (s->type != SLOT_COMP || !arena_is_isolated(s->val)) {
    pthread_rwlock_unlock(l);
    return 0;
  }
  uint64_t old = s->val, fresh;
  const void *obj = arena_view(old, s->len, ws->buf);
  int r = arena_store(st->arena, obj, s->len, &fresh);
  if (r == -EAGAIN)
    r = -ENOMEM; /* the reserve is the writers' */
  if (!r) /* one 8-byte store: a kill sees the old or the new handle */
    __atomic_store_n(&s->val, fresh, __ATOMIC_RELAXED);
  pthread_rwlock_unlock(l);
  if (!r) {
    arena_free(st->arena, old);
    store_counter_add(&st->cnt->pages_compacted, 1);
  }
  return r;
}

int slot_unchanged(const struct slot *s, const struct slot *seen) {
  return s->type == seen->type && s->val == seen->val &&
         s->len == seen->len && s->alg == seen->alg &&
         (seen->type == SLOT_GROUP ||
          (__atomic_load_n(&s->stamp, __ATOMIC_RELAXED) & SLOT_RECOMPRESSED));
}

int slot_join_group(struct trueno_store *st, uint64_t idx,
                    const struct slot *seen, struct group *g, unsigned pos) {
  struct slot *s = slots_peek(&st->slots, idx);
  pthread_rwlock_t *l = lock_of(st, idx);
  struct slot next = {.val = (uintptr_t)g, .len = (uint16_t)pos,
                      .type = SLOT_GROUP, .alg = TRUENO_ALG_ZSTD},
              old;
  pthread_rwlock_wrlock(l);
  int same = s && slot_unchanged(s, seen);
  if (same) {
    next.stamp = __atomic_load_n(&s->stamp, __ATOMIC_RELAXED);
    slot_swap(st, s, &next, &old);
  }
  pthread_rwlock_unlock(l);
  if (same)
    slot_release(st, &old);
  else
    group_member_gone(st, g);
  return same;
}

int slot_move_member(struct trueno_store *st, uint64_t idx,
                     struct group *from, unsigned pos, struct group *to) {
  struct slot *s = slots_peek(&st->slots, idx);
  pthread_rwlock_t *l = lock_of(st, idx);
  pthread_rwlock_wrlock(l);
  int mine = s && s->type == SLOT_GROUP && s->val == (uintptr_t)from &&
             s->len == pos;
  if (mine) /* same page, same contents: no accounting; one 8-byte store,
              so a kill sees one group or the other */
    __atomic_store_n(&s->val, (uint64_t)(uintptr_t)to, __ATOMIC_RELAXED);
  pthread_rwlock_unlock(l);
  group_member_gone(st, mine ? from : to);
  return mine;
}

int slot_replace_if(struct trueno_store *st, uint64_t idx,
                    const struct slot *seen, struct slot *next,
                    const void *payload, const void *page) {
  struct slot *s = slots_peek(&st->slots, idx), old;
  pthread_rwlock_t *l = lock_of(st, idx);
  pthread_rwlock_wrlock(l);
  int r = s && slot_unchanged(s, seen) ? 1 : 0;
  if (r) {
    uint32_t stamp = __atomic_load_n(&s->stamp, __ATOMIC_RELAXED);
    r = slot_install(st, payload, s, page, next, &old);
    if (!r) {
      s->stamp = stamp; /* the same contents: as idle as before */
      r = 1;
    }
  }
  pthread_rwlock_unlock(l);
  if (r == 1)
    slot_release(st, &old);
  return r;
}
