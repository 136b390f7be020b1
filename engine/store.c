/* The page store: one data path for every front end.
 *
 * A request is split into pages.  Each page is guarded by a stripe of a
 * table of rwlocks (adjacent pages fall in different stripes).  A
 * whole-page write compresses before taking the lock; under it, the payload
 * is written over the old one when the size class matches, else into a new
 * one; the old payload is freed after the lock is dropped.  Readers hold the
 * read lock while they decompress, so a payload is never freed or
 * overwritten under a reader; a batch read (the batch codec's decompress)
 * copies each page's block out under that lock instead and decodes the
 * copies after, so each page is still read whole, as one of its versions.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "classify.h"
#include "codec.h"
#include "page.h"
#include "pagepool.h"
#include "slots.h"
#include "store_impl.h"
#include "store_stats.h"
#include "trueno.h"
#include "workspace.h"

#define PAGE TRUENO_PAGE_SIZE

int trueno_store_create(const struct trueno_config *cfg,
                        struct trueno_store **out) {
  if (!cfg || cfg->size == 0 || !trueno_codec_for(cfg->algorithm))
    return -EINVAL;
  int level = cfg->level ? cfg->level : trueno_zstd_level_default();
  if (level < trueno_zstd_level_min() || level > trueno_zstd_level_max())
    return -EINVAL;
  if (cfg->size > UINT64_MAX - PAGE)
    return -EINVAL;
  struct trueno_store *st = calloc(1, sizeof *st);
  if (!st)
    return -ENOMEM;
  int r = recompressor_init(&st->recomp, cfg);
  if (r) {
    free(st);
    return r;
  }
  clock_gettime(CLOCK_MONOTONIC, &st->born);
  st->size = cfg->size;
  st->npages = (cfg->size + PAGE - 1) / PAGE;
  st->alg = cfg->algorithm;
  st->codec = trueno_codec_select(cfg->algorithm, cfg->lz4_impl);
  st->level = level;
  st->acct.limit = cfg->mem_limit;
  r = pagepool_init(&st->pool, &st->acct);
  if (r)
    goto fail_st;
  r = arena_create(&st->pool, &st->acct, &st->arena);
  if (r)
    goto fail_pool;
  r = slots_init(&st->slots, st->npages, &st->acct);
  if (r)
    goto fail_arena;
  for (unsigned i = 0; i < NSTRIPES; i++)
    pthread_rwlock_init(&st->locks[i], NULL);
  ws_pool_init(&st->ws);
  pthread_mutex_init(&st->compact_lock, NULL);
  pthread_mutex_init(&st->maintain_lock, NULL);
  *out = st;
  return 0;
fail_arena:
  arena_destroy(st->arena);
fail_pool:
  pagepool_destroy(&st->pool);
fail_st:
  recompressor_destroy(&st->recomp);
  free(st);
  return r;
}

uint64_t trueno_store_size(const struct trueno_store *st) { return st->size; }

void store_payload_release(struct trueno_store *st, const struct slot *s) {
  if (s->type == SLOT_COMP)
    arena_free(st->arena, s->val);
  else if (s->type == SLOT_RAW)
    pagepool_free(&st->pool, (void *)(uintptr_t)s->val);
}

void trueno_store_destroy(struct trueno_store *st) {
  if (!st)
    return;
  /* Only allocated chunks: a huge sparse device must exit fast. */
  for (uint64_t i = slots_next_used(&st->slots, 0); i < st->npages;
       i = slots_next_used(&st->slots, i + 1))
    store_payload_release(st, slots_peek(&st->slots, i));
  slots_destroy(&st->slots);
  arena_destroy(st->arena);
  pagepool_destroy(&st->pool);
  for (unsigned i = 0; i < NSTRIPES; i++)
    pthread_rwlock_destroy(&st->locks[i]);
  ws_pool_destroy(&st->ws);
  pthread_mutex_destroy(&st->compact_lock);
  pthread_mutex_destroy(&st->maintain_lock);
  recompressor_destroy(&st->recomp);
  free(st);
}

void store_clock_update(struct trueno_store *st) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t ns = (int64_t)(now.tv_sec - st->born.tv_sec) * 1000000000 +
               (now.tv_nsec - st->born.tv_nsec);
  atomic_store_explicit(&st->tick, (uint32_t)(ns / 1000000000),
                        memory_order_relaxed);
}

/* Notes a read of a locked slot (many readers may do so at once). */
static void slot_stamp_read(struct trueno_store *st, struct slot *s) {
  uint32_t old = __atomic_load_n(&s->stamp, __ATOMIC_RELAXED);
  uint32_t now = (old & SLOT_RECOMPRESSED) | store_tick(st);
  if (old != now) /* no store, no dirty cache line, when nothing changed */
    __atomic_store_n(&s->stamp, now, __ATOMIC_RELAXED);
}

int trueno_store_populate(struct trueno_store *st) {
  return slots_populate(&st->slots);
}

/* The compressibility estimate costs ~0.2 us a page; a failed LZ4 attempt
 * on an incompressible page ~1.3 us, a failed zstd one several times more.
 * So the estimate runs only while the recent share of raw pages (an
 * exponential average over the pages a workspace compressed, scaled to
 * RAW_SCALE) says it pays: above 1/8 for lz4, 1/32 for zstd. */
#define RAW_SCALE 4096u
static const uint32_t estimate_above[TRUENO_ALG_COUNT] = {
    [TRUENO_ALG_LZ4] = RAW_SCALE / 8,
    [TRUENO_ALG_ZSTD] = RAW_SCALE / 32,
};

static void raw_score_note(struct workspace *ws, int raw) {
  ws->raw_score += (raw ? RAW_SCALE / 16 : 0) - ws->raw_score / 16;
}

/* Classifies and compresses a page: out gets its type, length and, for a
 * same-filled page, its word; a compressed payload is left in ws->buf. */
static int page_compress(struct trueno_store *st, struct workspace *ws,
                         const void *page, struct slot *out) {
  memset(out, 0, sizeof *out);
  if (trueno_page_same_filled(page, &out->val)) {
    out->type = SLOT_SAME;
    return 0;
  }
  out->type = SLOT_RAW;
  out->len = PAGE;
  if (ws->raw_score > estimate_above[st->alg] &&
      !trueno_page_worth_compressing(page)) {
    raw_score_note(ws, 1);
    return 0;
  }
  /* A page whose compressed form would exceed ARENA_MAX_OBJ saves too
   * little to pay for decompression: the codec gives up and we store raw. */
  void *state = ws_codec_state(ws, st->alg);
  if (!state)
    return -ENOMEM;
  int n = st->codec->compress(state, page, ws->buf, (int)sizeof ws->buf,
                              st->level);
  if (n < 0)
    return n;
  raw_score_note(ws, n == 0);
  if (n > 0) {
    out->type = SLOT_COMP;
    out->alg = (uint8_t)st->alg;
    out->len = (uint16_t)n;
  }
  return 0;
}

void store_slot_swap(struct trueno_store *st, struct slot *s,
                      const struct slot *next, struct slot *old) {
  *old = *s;
  *s = *next;
  store_counters_move(&st->cnt, old, next);
}

/* Puts next (from page_compress of page, its compressed payload at
 * payload) into the locked slot s, writing the payload over the old one
 * when that has the same size class (no allocation: overwrites cannot fail
 * at the memory limit, and the arena does not churn), else into a new
 * payload.  *old gets what the caller must release once the lock is
 * dropped. */
static int slot_install(struct trueno_store *st, const void *payload,
                        struct slot *s, const void *page, struct slot *next,
                        struct slot *old) {
  int r = 0;
  next->stamp = store_tick(st); /* new contents: not recompressed yet */
  if (next->type == SLOT_RAW && s->type == SLOT_RAW) {
    memcpy((void *)(uintptr_t)s->val, page, PAGE);
    next->val = s->val;
    store_slot_swap(st, s, next, old);
    old->type = SLOT_EMPTY; /* the payload lives on in the slot */
    return 0;
  }
  if (next->type == SLOT_COMP && s->type == SLOT_COMP &&
      arena_fits(s->val, next->len)) {
    arena_overwrite(s->val, payload, next->len);
    next->val = s->val;
    store_slot_swap(st, s, next, old);
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
    store_slot_swap(st, s, next, old);
  return r;
}

int store_page_decode(struct workspace *ws, const struct slot *s,
                       void *page) {
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
  }
  return -EIO;
}

static int page_read(struct trueno_store *st, struct workspace *ws,
                     uint64_t idx, uint8_t *dst, uint32_t pofs,
                     uint32_t plen) {
  struct slot *s = slots_peek(&st->slots, idx);
  if (!s) {
    memset(dst, 0, plen);
    return 0;
  }
  pthread_rwlock_t *l = lock_of(st, idx);
  int r;
  pthread_rwlock_rdlock(l);
  if (plen == PAGE) {
    r = store_page_decode(ws, s, dst);
  } else {
    r = store_page_decode(ws, s, ws->page);
    memcpy(dst, ws->page + pofs, plen);
  }
  if (!r)
    slot_stamp_read(st, s);
  pthread_rwlock_unlock(l);
  return r;
}

/* After an install found the pool's reserve used up (-EAGAIN, swap mode):
 * waits for the refill or for pages freed meanwhile, holding no lock, so
 * readers and writers of the stripe go on.  *deadline starts zeroed and
 * is set on the first wait: one request waits RESERVE_WAIT at most.
 * 0: try the install again; else -ENOMEM. */
static int reserve_wait(struct trueno_store *st, struct timespec *deadline) {
  if (deadline->tv_sec == 0 && deadline->tv_nsec == 0)
    *deadline = pagepool_wait_deadline();
  return pagepool_wait(&st->pool, deadline);
}

/* slot_install under the page's write lock l, waiting for the reserve
 * (reserve_wait) outside it as long as that gives memory back.  For a
 * whole new page only: a read-modify-write must read the page again. */
static int install_locked(struct trueno_store *st, pthread_rwlock_t *l,
                          const void *payload, struct slot *s,
                          const void *page, struct slot *next,
                          struct slot *old) {
  struct timespec deadline = {0};
  int r;
  do {
    pthread_rwlock_wrlock(l);
    r = slot_install(st, payload, s, page, next, old);
    pthread_rwlock_unlock(l);
  } while (r == -EAGAIN && (r = reserve_wait(st, &deadline)) == 0);
  return r;
}

/* Writes plen bytes at pofs of page idx; src NULL writes zeros. */
static int page_write(struct trueno_store *st, struct workspace *ws,
                      uint64_t idx, const uint8_t *src, uint32_t pofs,
                      uint32_t plen) {
  struct slot *s;
  int r;
  if (src) {
    r = slots_get(&st->slots, idx, &s);
    if (r)
      return r;
  } else if (!(s = slots_peek(&st->slots, idx))) {
    return 0; /* zeroing part of a hole changes nothing */
  }
  pthread_rwlock_t *l = lock_of(st, idx);
  struct slot next, old;
  if (plen == PAGE && src) {
    /* Compress before locking: the lock is held only to install. */
    r = page_compress(st, ws, src, &next);
    if (r)
      return r;
    r = install_locked(st, l, ws->buf, s, src, &next, &old);
    if (r)
      return r;
  } else {
    /* Read-modify-write must be atomic against other writers of the page:
     * after a wait for memory the page is read again. */
    uint8_t *tmp = ws->page;
    struct timespec deadline = {0};
    do {
      pthread_rwlock_wrlock(l);
      if (!src && s->type == SLOT_EMPTY) {
        pthread_rwlock_unlock(l);
        return 0;
      }
      r = store_page_decode(ws, s, tmp);
      if (!r) {
        if (src)
          memcpy(tmp + pofs, src, plen);
        else
          memset(tmp + pofs, 0, plen);
        r = page_compress(st, ws, tmp, &next);
      }
      if (!r)
        r = slot_install(st, ws->buf, s, tmp, &next, &old);
      pthread_rwlock_unlock(l);
    } while (r == -EAGAIN && (r = reserve_wait(st, &deadline)) == 0);
    if (r)
      return r;
  }
  store_payload_release(st, &old);
  return 0;
}

static void page_discard(struct trueno_store *st, uint64_t idx) {
  struct slot *s = slots_peek(&st->slots, idx);
  if (!s)
    return;
  static const struct slot empty;
  struct slot old;
  pthread_rwlock_t *l = lock_of(st, idx);
  pthread_rwlock_wrlock(l);
  store_slot_swap(st, s, &empty, &old);
  pthread_rwlock_unlock(l);
  store_payload_release(st, &old);
  if (old.type != SLOT_EMPTY)
    store_counter_add(&st->cnt.pages_trimmed, 1);
}

static int check_range(const struct trueno_store *st, uint64_t len,
                       uint64_t off) {
  return off <= st->size && len <= st->size - off ? 0 : -EINVAL;
}

/* The part of a request that falls in one page. */
struct piece {
  uint64_t idx;
  uint32_t pofs, plen;
};

static struct piece piece_at(uint64_t pos, uint64_t remaining) {
  struct piece p = {pos / PAGE, (uint32_t)(pos % PAGE),
                    PAGE - (uint32_t)(pos % PAGE)};
  if (p.plen > remaining)
    p.plen = (uint32_t)remaining;
  return p;
}

/* Whole pages from byte pos of a request with remaining bytes left, when
 * they are enough for the batch codec (its compress or, reading, its
 * decompress); else 0. */
static size_t batch_pages(const struct trueno_store *st, int reading,
                          uint64_t pos, uint64_t remaining) {
  if ((reading ? !st->batch.decompress : !st->batch.compress) || pos % PAGE)
    return 0;
  uint64_t n = remaining / PAGE;
  if (n > TRUENO_BATCH_MAX_PAGES)
    n = TRUENO_BATCH_MAX_PAGES;
  return n >= st->batch.min_pages ? (size_t)n : 0;
}

/* Blocks copied out of the store for one batch decode: block k (len[k]
 * bytes at blocks + off[k]) is page at[k] of the request. */
struct gathered {
  uint8_t *blocks;
  uint32_t *off, *len, *at;
  size_t k;
};

/* Reads page idx into page: an LZ4 block is copied into g (to decode in
 * the batch), anything else decoded now.  Under the page's read lock, as
 * page_read: the copy is the page as it was at one moment. */
static int gather_page(struct trueno_store *st, struct workspace *ws,
                       uint64_t idx, uint8_t *page, uint32_t i,
                       struct gathered *g) {
  struct slot *s = slots_peek(&st->slots, idx);
  if (!s) {
    memset(page, 0, PAGE);
    return 0;
  }
  pthread_rwlock_t *l = lock_of(st, idx);
  int r = 0;
  pthread_rwlock_rdlock(l);
  if (s->type == SLOT_COMP && s->alg == TRUENO_ALG_LZ4 && s->len &&
      s->len <= ARENA_MAX_OBJ) {
    uint32_t at = g->k ? g->off[g->k - 1] + g->len[g->k - 1] : 0;
    memcpy(g->blocks + at, arena_view(s->val, s->len, ws->buf), s->len);
    g->off[g->k] = at;
    g->len[g->k] = s->len;
    g->at[g->k++] = i;
  } else {
    r = store_page_decode(ws, s, page);
  }
  if (!r)
    slot_stamp_read(st, s);
  pthread_rwlock_unlock(l);
  return r;
}

/* The gathered blocks into their pages of dst: by the codec in one call
 * (straight into dst when every page is one of them), else, or when it
 * fails, one by one on the CPU. */
static int decode_gathered(struct trueno_store *st, struct workspace *ws,
                           struct gathered *g, uint8_t *dst, size_t n) {
  uint8_t *pages = g->k == n ? dst : malloc(g->k * PAGE);
  int r = pages ? st->batch.decompress(st->batch.ctx, g->blocks, g->off,
                                       g->len, g->k, pages)
                : -ENOMEM;
  if (!r) {
    store_counter_add(&st->cnt.offload_read_batches, 1);
    store_counter_add(&st->cnt.offload_read_pages, (int64_t)g->k);
    for (size_t j = 0; pages != dst && j < g->k; j++)
      memcpy(dst + (size_t)g->at[j] * PAGE, pages + j * PAGE, PAGE);
  } else {
    store_counter_add(&st->cnt.offload_read_fallbacks, 1);
    const struct trueno_codec *c = trueno_codec_for(TRUENO_ALG_LZ4);
    void *state = ws_codec_state(ws, TRUENO_ALG_LZ4);
    r = state ? 0 : -ENOMEM;
    for (size_t j = 0; !r && j < g->k; j++)
      r = c->decompress(state, g->blocks + g->off[j], (int)g->len[j],
                        dst + (size_t)g->at[j] * PAGE);
  }
  if (pages != dst)
    free(pages);
  return r;
}

/* Reads n whole pages from page idx into dst through the batch codec:
 * 0 or a negative errno; *cpu set, and nothing read, when there is no
 * memory for the batch (the caller reads the pages one by one). */
static int read_batch(struct trueno_store *st, struct workspace *ws,
                      uint8_t *dst, uint64_t idx, size_t n, int *cpu) {
  struct gathered g = {.blocks = malloc(n * ARENA_MAX_OBJ),
                       .off = malloc(n * 3 * sizeof(uint32_t))};
  *cpu = !g.blocks || !g.off;
  if (*cpu) {
    free(g.blocks);
    free(g.off);
    return 0;
  }
  g.len = g.off + n;
  g.at = g.len + n;
  int r = 0;
  for (size_t i = 0; !r && i < n; i++)
    r = gather_page(st, ws, idx + i, dst + i * PAGE, (uint32_t)i, &g);
  if (!r && g.k)
    r = decode_gathered(st, ws, &g, dst, n);
  free(g.blocks);
  free(g.off);
  return r;
}

int trueno_read(struct trueno_store *st, void *buf, uint64_t len,
                uint64_t off) {
  store_counter_add(&st->cnt.reads, 1);
  struct workspace *ws = NULL;
  int r = check_range(st, len, off);
  if (!r && !(ws = ws_get(&st->ws)))
    r = -ENOMEM;
  int batch_ok = 1;
  for (uint64_t done = 0; !r && done < len;) {
    size_t nb = batch_ok ? batch_pages(st, 1, off + done, len - done) : 0;
    if (nb) {
      int cpu;
      r = read_batch(st, ws, (uint8_t *)buf + done, (off + done) / PAGE, nb,
                     &cpu);
      if (!cpu) {
        if (!r) {
          store_counter_add(&st->cnt.pages_read, (int64_t)nb);
          done += (uint64_t)nb * PAGE;
        }
        continue;
      }
      batch_ok = 0; /* no memory for a batch: page by page */
    }
    struct piece p = piece_at(off + done, len - done);
    r = page_read(st, ws, p.idx, (uint8_t *)buf + done, p.pofs, p.plen);
    if (!r)
      store_counter_add(&st->cnt.pages_read, 1);
    done += p.plen;
  }
  if (ws)
    ws_put(&st->ws, ws);
  if (r)
    store_counter_add(&st->cnt.failed_reads, 1);
  return r;
}

int trueno_store_set_batch_codec(struct trueno_store *st,
                                 const struct trueno_batch_codec *bc) {
  if (bc && (st->alg != TRUENO_ALG_LZ4 || !bc->compress || !bc->min_pages))
    return -EINVAL;
  static const struct trueno_batch_codec none;
  st->batch = bc ? *bc : none;
  return 0;
}

/* Installs page idx from a batch: its block (len bytes at payload; 0 =
 * raw) unless the CPU finds it same-filled. */
static int batch_install(struct trueno_store *st, uint64_t idx,
                         const uint8_t *page, const void *payload,
                         uint32_t len) {
  struct slot *s, next = {0}, old;
  int r = slots_get(&st->slots, idx, &s);
  if (r)
    return r;
  if (trueno_page_same_filled(page, &next.val)) {
    next.type = SLOT_SAME;
  } else if (len == 0) {
    next.type = SLOT_RAW;
    next.len = PAGE;
  } else {
    next.type = SLOT_COMP;
    next.alg = (uint8_t)st->alg;
    next.len = (uint16_t)len;
  }
  r = install_locked(st, lock_of(st, idx), payload, s, page, &next, &old);
  if (!r)
    store_payload_release(st, &old);
  return r;
}

/* Whether the codec's blocks all lie within the n * cap bytes it was
 * given: one that says otherwise is not believed. */
static int blocks_inside(const uint32_t *off, size_t n, unsigned cap) {
  for (size_t i = 0; i < n; i++)
    if (off[n + i] && off[n + i] <= cap && off[i] > n * cap - off[n + i])
      return 0;
  return 1;
}

/* Compresses n whole pages through the batch codec and installs them:
 * 0 or the first install error (pages before it hold their new contents,
 * it and those after it their old ones); *written counts the pages
 * installed.  *cpu set, and nothing installed, when the codec failed:
 * the caller compresses the pages itself. */
static int write_batch(struct trueno_store *st, const uint8_t *src,
                       uint64_t idx, size_t n, size_t *written, int *cpu) {
  const unsigned cap = ARENA_MAX_OBJ;
  *written = 0;
  uint8_t *dst = malloc(n * cap);
  uint32_t *off = malloc(n * 2 * sizeof *off);
  int r = dst && off ? 0 : -ENOMEM;
  if (!r)
    r = st->batch.compress(st->batch.ctx, src, n, cap, dst, off, off + n);
  *cpu = r || !blocks_inside(off, n, cap);
  if (*cpu) {
    store_counter_add(&st->cnt.offload_fallbacks, 1);
    free(dst);
    free(off);
    return 0;
  }
  store_counter_add(&st->cnt.offload_batches, 1);
  store_counter_add(&st->cnt.offload_pages, (int64_t)n);
  for (size_t i = 0; !r && i < n; i++) {
    uint32_t len = off[n + i] <= cap ? off[n + i] : 0;
    r = batch_install(st, idx + i, src + i * PAGE, dst + off[i], len);
    if (!r)
      ++*written;
  }
  free(dst);
  free(off);
  return r;
}

int trueno_write(struct trueno_store *st, const void *buf, uint64_t len,
                 uint64_t off) {
  store_counter_add(&st->cnt.writes, 1);
  struct workspace *ws = NULL;
  int r = check_range(st, len, off);
  if (!r && !(ws = ws_get(&st->ws)))
    r = -ENOMEM;
  int batch_ok = 1;
  for (uint64_t done = 0; !r && done < len;) {
    size_t nb = batch_ok ? batch_pages(st, 0, off + done, len - done) : 0;
    size_t wrote;
    if (nb) {
      int cpu;
      r = write_batch(st, (const uint8_t *)buf + done, (off + done) / PAGE,
                      nb, &wrote, &cpu);
      store_counter_add(&st->cnt.pages_written, (int64_t)wrote);
      done += (uint64_t)wrote * PAGE;
      if (!cpu)
        continue;
      batch_ok = 0; /* the codec failed: the CPU compresses the rest */
    }
    struct piece p = piece_at(off + done, len - done);
    r = page_write(st, ws, p.idx, (const uint8_t *)buf + done, p.pofs,
                   p.plen);
    if (!r)
      store_counter_add(&st->cnt.pages_written, 1);
    done += p.plen;
  }
  if (ws)
    ws_put(&st->ws, ws);
  if (r)
    store_counter_add(&st->cnt.failed_writes, 1);
  return r;
}

/* Trim and zero both release whole pages and zero partial edges: a
 * released page reads as zeros, which is what either request promises.
 * Whole pages go first, so that at the memory limit the edges (which must
 * store a new copy of their page before the old one is freed) find the
 * memory the whole pages gave back.  Trim is advisory in NBD: an edge that
 * cannot be zeroed is left as it was and the trim still succeeds. */
static int release_range(struct trueno_store *st, uint64_t len, uint64_t off,
                         int strict) {
  store_counter_add(&st->cnt.trims, 1);
  int r = check_range(st, len, off);
  struct piece edges[2];
  int nedges = 0;
  for (uint64_t done = 0; !r && done < len;) {
    struct piece p = piece_at(off + done, len - done);
    if (p.plen == PAGE)
      page_discard(st, p.idx);
    else
      edges[nedges++] = p; /* at most the first and the last piece */
    done += p.plen;
  }
  struct workspace *ws = NULL;
  if (!r && nedges && !(ws = ws_get(&st->ws)))
    r = -ENOMEM;
  for (int i = 0; !r && i < nedges; i++) {
    r = page_write(st, ws, edges[i].idx, NULL, edges[i].pofs, edges[i].plen);
    if (r == -ENOSPC && !strict)
      r = 0;
  }
  if (ws)
    ws_put(&st->ws, ws);
  if (r)
    store_counter_add(&st->cnt.failed_writes, 1);
  return r;
}

int trueno_trim(struct trueno_store *st, uint64_t len, uint64_t off) {
  return release_range(st, len, off, 0);
}

int trueno_zero(struct trueno_store *st, uint64_t len, uint64_t off) {
  return release_range(st, len, off, 1);
}

static enum trueno_extent_type page_extent(struct trueno_store *st,
                                           uint64_t idx) {
  struct slot *s = slots_peek(&st->slots, idx);
  if (!s)
    return TRUENO_EXTENT_HOLE;
  pthread_rwlock_t *l = lock_of(st, idx);
  pthread_rwlock_rdlock(l);
  enum trueno_extent_type t = s->type == SLOT_EMPTY ? TRUENO_EXTENT_HOLE
                              : s->type == SLOT_SAME && s->val == 0
                                  ? TRUENO_EXTENT_ZERO
                                  : TRUENO_EXTENT_DATA;
  pthread_rwlock_unlock(l);
  return t;
}

int trueno_extent(struct trueno_store *st, uint64_t len, uint64_t off,
                  enum trueno_extent_type *type, uint64_t *run_len) {
  int r = check_range(st, len, off);
  if (r || len == 0)
    return r ? r : -EINVAL;
  uint64_t end = off + len;
  uint64_t idx = off / PAGE;
  enum trueno_extent_type t = page_extent(st, idx);
  uint64_t pos = (idx + 1) * PAGE;
  while (pos < end) {
    idx = pos / PAGE;
    /* A chunk never allocated is one long hole: skip it whole. */
    if (t == TRUENO_EXTENT_HOLE && idx % SLOTS_PER_CHUNK == 0 &&
        !slots_peek(&st->slots, idx)) {
      pos += (uint64_t)SLOTS_PER_CHUNK * PAGE;
      continue;
    }
    if (page_extent(st, idx) != t)
      break;
    pos += PAGE;
  }
  *type = t;
  *run_len = (pos < end ? pos : end) - off;
  return 0;
}

/* Moves the objects of page idx out of isolated zspages; returns -ENOSPC
 * and the like when a copy cannot be stored (the page keeps its object). */
static int page_compact(struct trueno_store *st, struct workspace *ws,
                        uint64_t idx, struct slot *s) {
  pthread_rwlock_t *l = lock_of(st, idx);
  pthread_rwlock_wrlock(l);
  if (s->type != SLOT_COMP || !arena_is_isolated(s->val)) {
    pthread_rwlock_unlock(l);
    return 0;
  }
  uint64_t old = s->val, fresh;
  const void *obj = arena_view(old, s->len, ws->buf);
  int r = arena_store(st->arena, obj, s->len, &fresh);
  if (r == -EAGAIN)
    r = -ENOMEM; /* the reserve is the writers' */
  if (!r)
    s->val = fresh;
  pthread_rwlock_unlock(l);
  if (!r) {
    arena_free(st->arena, old);
    store_counter_add(&st->cnt.pages_compacted, 1);
  }
  return r;
}

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
    r = page_compact(st, ws, i, slots_peek(&st->slots, i));
  if (ws)
    ws_put(&st->ws, ws);
  arena_compact_end(st->arena);
  store_counter_add(&st->cnt.compactions, 1);
  return r;
}

/* Emptying zspages that held lone half pages leaves other halves alone on
 * their pages: after a large shrink (measured after recompressing the
 * corpus) it takes 3-5 passes to converge, and the first two may free
 * nothing (their objects move into fresh pages as fast as they free
 * others).  Passes go on while they find sources, up to COMPACT_PASSES. */
#define COMPACT_PASSES 6

/* Up to passes passes; stops at one that finds nothing to move (*none
 * set) or fails.  0 or a negative errno. */
static int compact_passes(struct trueno_store *st, int passes, int *none) {
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

/* Bytes of the arena's pages beyond what its objects would take packed
 * (arena_footprint): what compaction can give back.  *ideal: that least. */
static uint64_t arena_waste(struct trueno_store *st, uint64_t *ideal) {
  uint64_t pages = atomic_load(&st->pool.pages_out);
  uint64_t raw = atomic_load(&st->cnt.huge_pages);
  uint64_t held = (pages > raw ? pages - raw : 0) * PAGE;
  *ideal = arena_footprint(st->arena);
  return held > *ideal ? held - *ideal : 0;
}

/* A recompression step per call (about a second apart): a bounded number
 * of pages (the store's rate; ~10-40 us each, so by default housekeeping
 * takes a few percent of one CPU at most), found by a bounded scan: 64
 * slots a try, so a step on a store of mostly busy or already recompressed
 * pages ends soon too. */
#define RECOMPRESS_SCAN_PER_TRY 64u
/* Waste allowed whatever the store's size: each size class in use keeps a
 * partly carved zspage (up to a block), and a scan of the slot table for a
 * few pages' gain is not worth it. */
#define WASTE_ALLOWED (256u * 1024)
/* Compaction starts when the waste passes 1/WASTE_START of the least the
 * objects take and stops under 1/WASTE_STOP.  Swept on a churn of 0.5 %
 * of the pages trimmed or rewritten a call (60000 and 200000 corpus pages,
 * 200 calls): 1/64 and 1/128 hold 1.059x and 1.055x the payload against
 * 1.077x and 1.067x for 1/32 and 1/64, for ~0.5 ms more of one CPU a call;
 * 1/16 starts held 1.081x and 1.067x. */
#define WASTE_START 64
#define WASTE_STOP 128
#define STALL_PATIENCE 4

/* Where compaction, once started, stops. */
static int waste_low(uint64_t waste, uint64_t ideal) {
  return waste < ideal / WASTE_STOP + WASTE_ALLOWED;
}

static int maintain_locked(struct trueno_store *st);

int trueno_maintain(struct trueno_store *st) {
  pthread_mutex_lock(&st->maintain_lock);
  int r = maintain_locked(st);
  pthread_mutex_unlock(&st->maintain_lock);
  return r;
}

static int maintain_locked(struct trueno_store *st) {
  if (st->recomp.kind)
    trueno_recompress(st, st->recomp.idle,
                      (uint64_t)st->recomp.rate * RECOMPRESS_SCAN_PER_TRY,
                      st->recomp.rate);
  /* Compaction is decided by what it can give back, not by how the waste
   * came (frees scattered by trims and overwrites, pages recompressed into
   * smaller classes): it starts when the waste passes 1/WASTE_START of
   * the least the objects take, and goes on from call to call until it is
   * under 1/WASTE_STOP, or until it stops paying.  (It was decided by
   * history: after a run of recompression steps had ended, until calls
   * freed little, else by slack grown since the last pass.  A CI run of
   * the VM's idle-recompress case left a store at 1.29x its payload that
   * way, where compaction reaches 1.08x.)  With a pool reserve (swap=on)
   * each pass moves a bounded amount (see arena.c), so the waste comes down
   * over several calls. */
  uint64_t ideal, waste = arena_waste(st, &ideal);
  if (!st->compacting) {
    /* After compaction stopped short: from the least waste seen since,
     * so that a store that shrinks is not held to an old, larger floor. */
    if (waste < st->waste_floor)
      st->waste_floor = waste;
    if (waste < ideal / WASTE_START + WASTE_ALLOWED ||
        waste < st->waste_floor + ideal / WASTE_START)
      return 0;
    st->compacting = 1;
    st->compact_stalls = 0;
  }
  /* Passes until the waste is down, at most COMPACT_PASSES a call: a swap
   * device's server shares its CPUs with the workload that is swapping. */
  uint64_t before = waste;
  int r = 0, none = 0;
  for (int pass = 0; !r && !none && pass < COMPACT_PASSES &&
                     !waste_low(waste, ideal);
       pass++) {
    r = compact_passes(st, 1, &none);
    waste = arena_waste(st, &ideal);
  }
  uint64_t gained = before > waste ? before - waste : 0;
  if (waste_low(waste, ideal)) {
    st->compacting = 0;
    st->waste_floor = 0;
  } else if (none || r || (gained < before / 64 &&
                           ++st->compact_stalls >= STALL_PATIENCE)) {
    /* Nothing left to move or no memory to move it, or calls in a
     * row gave back too little: what is left is not for compaction now;
     * try again once the waste has grown past it. */
    st->compacting = 0;
    st->waste_floor = waste;
  } else if (gained >= before / 64) {
    st->compact_stalls = 0;
  }
  return r;
}

void trueno_get_stats(struct trueno_store *st, struct trueno_stats *out) {
  memset(out, 0, sizeof *out);
  store_counters_read(&st->cnt, out);
  out->disksize = st->size;
  out->orig_data_size = out->pages_stored * TRUENO_PAGE_SIZE;
  out->mem_used_total = atomic_load(&st->acct.used);
  out->mem_used_max = atomic_load(&st->acct.max);
  out->mem_limit = st->acct.limit;
  out->arena_pages = atomic_load(&st->pool.pages_out);
  out->metadata_bytes = atomic_load(&st->slots.bytes) +
                        arena_metadata_bytes(st->arena) +
                        pagepool_overhead(&st->pool);
}
