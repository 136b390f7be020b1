/* Idle-page recompression (recompress.h, trueno_recompress).
 * SPDX-License-Identifier: MIT */
#include "recompress.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "slot.h"
#include "store_impl.h"

static const char *const names[TRUENO_RECOMPRESSOR_COUNT] = {
    [TRUENO_RECOMPRESS_OFF] = "off",
    [TRUENO_RECOMPRESS_ZSTD] = "zstd",
    [TRUENO_RECOMPRESS_LZ4HC] = "lz4hc",
};

const char *trueno_recompressor_name(enum trueno_recompressor r) {
  return (unsigned)r < TRUENO_RECOMPRESSOR_COUNT ? names[r] : "unknown";
}

void trueno_recompressor_levels(enum trueno_recompressor r, int *min,
                                int *max, int *dflt) {
  switch (r) {
  case TRUENO_RECOMPRESS_ZSTD:
    *min = trueno_zstd_level_min();
    *max = trueno_zstd_level_max();
    *dflt = trueno_zstd_level_default();
    return;
  case TRUENO_RECOMPRESS_LZ4HC:
    *min = trueno_lz4hc_level_min();
    *max = trueno_lz4hc_level_max();
    /* liblz4's default: higher levels gain little for much more time. */
    *dflt = 9;
    return;
  default:
    *min = *max = *dflt = 0;
  }
}

int trueno_recompressor_parse(const char *spec, enum trueno_recompressor *r,
                              int *level) {
  const char *colon = strchr(spec, ':');
  size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
  for (unsigned i = 0; i < TRUENO_RECOMPRESSOR_COUNT; i++) {
    if (strlen(names[i]) != n || strncmp(spec, names[i], n))
      continue;
    int lv = 0;
    if (colon) {
      char *end;
      errno = 0;
      long v = strtol(colon + 1, &end, 10);
      if (i == TRUENO_RECOMPRESS_OFF || end == colon + 1 || *end || errno ||
          v < INT_MIN || v > INT_MAX)
        return -EINVAL;
      int min, max, dflt;
      trueno_recompressor_levels((enum trueno_recompressor)i, &min, &max,
                                 &dflt);
      if (v == 0 || v < min || v > max) {
        *r = (enum trueno_recompressor)i; /* for the caller's message */
        return -ERANGE;
      }
      lv = (int)v;
    }
    *r = (enum trueno_recompressor)i;
    *level = lv;
    return 0;
  }
  return -EINVAL;
}

int recompressor_init(struct recompressor *r, const struct trueno_config *cfg) {
  memset(r, 0, sizeof *r);
  if (cfg->recompress_rate > TRUENO_RECOMPRESS_RATE_MAX)
    return -EINVAL;
  r->kind = cfg->recompress;
  switch (r->kind) {
  case TRUENO_RECOMPRESS_OFF:
    break;
  case TRUENO_RECOMPRESS_ZSTD:
    r->codec = &trueno_codec_zstd;
    r->alg = TRUENO_ALG_ZSTD;
    break;
  case TRUENO_RECOMPRESS_LZ4HC:
    r->codec = &trueno_codec_lz4hc;
    r->alg = TRUENO_ALG_LZ4;
    break;
  default:
    return -EINVAL;
  }
  int min, max, dflt;
  trueno_recompressor_levels(r->kind, &min, &max, &dflt);
  r->level = cfg->recompress_level ? cfg->recompress_level : dflt;
  if (r->kind && (r->level < min || r->level > max))
    return -EINVAL;
  r->idle = cfg->recompress_idle ? cfg->recompress_idle
                                 : TRUENO_RECOMPRESS_IDLE;
  r->rate = cfg->recompress_rate ? cfg->recompress_rate
                                 : TRUENO_RECOMPRESS_RATE;
  pthread_mutex_init(&r->lock, NULL);
  return 0;
}

int recompressor_ready(struct recompressor *r) {
  if (!r->state && !(r->state = r->codec->state_new()))
    return -ENOMEM;
  return 0;
}

void recompressor_destroy(struct recompressor *r) {
  if (r->state)
    r->codec->state_free(r->state);
  pthread_mutex_destroy(&r->lock);
}

/* Whether a locked (or about to be locked) slot is worth a try now. */
static int idle_candidate(const struct slot *s, uint32_t stamp, uint32_t now,
                          uint32_t min_idle) {
  if (s->type != SLOT_COMP && s->type != SLOT_RAW)
    return 0;
  if (stamp & SLOT_RECOMPRESSED)
    return 0;
  return ((now - stamp) & SLOT_TICK_MASK) >= min_idle;
}

/* A new copy saves memory only if it lands in a smaller arena class than
 * the old one: the largest length that does. */
static int gain_cap(const struct slot *s) {
  if (s->type == SLOT_RAW)
    return ARENA_MAX_OBJ;
  return (int)arena_class_size(s->len) - (int)ARENA_ALIGN;
}

/* The whole of it runs under the page's write lock: a
 * write could otherwise replace the page between our decode and install
 * (and an in-place overwrite keeps the handle, so we could not tell).  It
 * holds up only requests for this page's stripe, for one compression.
 * Returns 1 if the page was recompressed, 0 if not, or a negative errno
 * when the new copy could not be stored. */
int recompress_page(struct trueno_store *st, struct workspace *ws,
                    uint64_t idx, struct slot *s, uint32_t now,
                    uint32_t min_idle) {
  struct recompressor *rc = &st->recomp;
  pthread_rwlock_t *l = lock_of(st, idx);
  pthread_rwlock_wrlock(l);
  uint32_t stamp = __atomic_load_n(&s->stamp, __ATOMIC_RELAXED);
  if (!idle_candidate(s, stamp, now, min_idle)) {
    pthread_rwlock_unlock(l);
    return 0;
  }
  int cap = gain_cap(s), n = 0;
  int r = cap > 0 ? slot_decode(st, ws, s, ws->page) : 0;
  if (!r && cap > 0)
    n = rc->codec->compress(rc->state, ws->page, ws->buf, cap, rc->level);
  /* A page that does not decode is left for reads to report. */
  struct slot old = {0};
  int kept = 0;
  if (r == 0 && n > 0) {
    struct slot next = *s;
    r = arena_store(st->arena, ws->buf, (size_t)n, &next.val);
    if (!r) {
      next.type = SLOT_COMP;
      next.alg = (uint8_t)rc->alg;
      next.len = (uint16_t)n;
      next.stamp = stamp | SLOT_RECOMPRESSED;
      slot_swap(st, s, &next, &old);
      kept = 1;
    }
  } else if (r == 0 && n < 0) {
    /* The codec failed (no memory for its work): not this page's fault,
     * so it stays a candidate for a later step. */
    pthread_rwlock_unlock(l);
    return 0;
  } else {
    __atomic_store_n(&s->stamp, stamp | SLOT_RECOMPRESSED, __ATOMIC_RELAXED);
    r = 0;
  }
  pthread_rwlock_unlock(l);
  if (kept) {
    slot_release(st, &old);
    store_counter_add(&st->cnt->pages_recompressed, 1);
    return 1;
  }
  if (!r)
    store_counter_add(&st->cnt->recompress_no_gain, 1);
  return r;
}

/* Pages in a row that find no room before a step gives up. */
#define ENOSPC_TRIES 64

int trueno_recompress(struct trueno_store *st, uint32_t min_idle,
                      uint64_t max_slots, uint64_t max_tries) {
  struct recompressor *rc = &st->recomp;
  if (!rc->kind)
    return -EINVAL;
  store_clock_update(st);
  pthread_mutex_lock(&rc->lock);
  int r = recompressor_ready(rc), done = 0, full = 0;
  struct workspace *ws = NULL;
  if (!r && !(ws = ws_get(&st->ws)))
    r = -ENOMEM;
  uint32_t now = store_tick(st);
  if (max_slots > st->npages) /* once round at most */
    max_slots = st->npages;
  uint64_t i = rc->cursor < st->npages ? rc->cursor : 0;
  for (uint64_t seen = 0; !r && seen < max_slots && max_tries;) {
    /* Chunks never written are skipped whole (and count as seen). */
    uint64_t used = slots_next_used(&st->slots, i);
    seen += used - i;
    if (used == st->npages) {
      i = 0;
      continue;
    }
    i = used;
    struct slot *s = slots_peek(&st->slots, i); /* its chunk is used */
    /* A first look under the read lock: most slots are not candidates,
     * and readers of the stripe need not wait for those. */
    pthread_rwlock_t *l = lock_of(st, i);
    pthread_rwlock_rdlock(l);
    int cand = s && idle_candidate(s, __atomic_load_n(&s->stamp,
                                                      __ATOMIC_RELAXED),
                                   now, min_idle);
    pthread_rwlock_unlock(l);
    if (cand) {
      max_tries--;
      r = recompress_page(st, ws, i, s, now, min_idle);
      if (r > 0) {
        done++;
        r = 0;
        full = 0;
      } else if (r == -EAGAIN) {
        /* The pool's reserve is used up: it is the writers', not ours. */
        r = 0;
        max_tries = 0;
      } else if (r == -ENOSPC && ++full < ENOSPC_TRIES) {
        /* At the limit, where recompression helps most: a smaller size
         * class may still have room, and each page moved out of a raw
         * page frees a whole one.  Go on for a while. */
        r = 0;
      }
    }
    seen++;
    if (++i >= st->npages)
      i = 0;
  }
  rc->cursor = i;
  if (ws)
    ws_put(&st->ws, ws);
  pthread_mutex_unlock(&rc->lock);
  return done ? done : r;
}
