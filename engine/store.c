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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "batch.h"
#include "classify.h"
#include "codec.h"
#include "page.h"
#include "pagepool.h"
#include "slot.h"
#include "slots.h"
#include "store_impl.h"
#include "store_stats.h"
#include "trueno.h"
#include "workspace.h"

#define PAGE TRUENO_PAGE_SIZE

/* How a store gets its memory: anonymous (no region), a new state in a
 * file, or the state a previous process left in one. */
enum store_origin { ORIGIN_ANON, ORIGIN_NEW, ORIGIN_ATTACH };

static void say(char *why, size_t len, const char *msg) {
  if (why && len)
    snprintf(why, len, "%s", msg);
}

static int store_open(const struct trueno_config *cfg, int fd,
                      enum store_origin origin, struct trueno_store **out,
                      char *why, size_t why_len) {
  if (!cfg || cfg->size == 0 || !trueno_codec_for(cfg->algorithm)) {
    say(why, why_len, !cfg || cfg->size == 0 ? "size: must be > 0"
                                             : "algorithm: unknown");
    return -EINVAL;
  }
  int level = cfg->level ? cfg->level : trueno_zstd_level_default();
  if (level < trueno_zstd_level_min() || level > trueno_zstd_level_max()) {
    say(why, why_len, "level: out of range");
    return -EINVAL;
  }
  if (cfg->size > UINT64_MAX - PAGE) {
    say(why, why_len, "size: too large");
    return -EINVAL;
  }
  struct trueno_store *st = calloc(1, sizeof *st);
  if (!st)
    return -ENOMEM;
  int r = recompressor_init(&st->recomp, cfg);
  if (r) {
    say(why, why_len, "recompress: invalid settings");
    free(st);
    return r;
  }
  r = grouper_init(&st->grouper, cfg);
  if (r) {
    say(why, why_len, "group: invalid settings");
    recompressor_destroy(&st->recomp);
    free(st);
    return r;
  }
  clock_gettime(CLOCK_MONOTONIC, &st->born);
  st->size = cfg->size;
  st->npages = (cfg->size + PAGE - 1) / PAGE;
  st->alg = cfg->algorithm;
  st->codec = trueno_codec_select(cfg->algorithm, cfg->lz4_impl);
  st->level = level;
  /* An attached state is charged as found, then held to the limit. */
  st->acct.limit = origin == ORIGIN_ATTACH ? 0 : cfg->mem_limit;
  gcache_init(&st->gc, &st->acct,
              !cfg->group_pages ? 0
              : cfg->group_cache ? cfg->group_cache
                                 : TRUENO_GROUP_CACHE,
              (size_t)cfg->group_pages * PAGE);
  struct region_params rp = persist_params(cfg);
  uint64_t epoch = 0;
  if (origin == ORIGIN_NEW) {
    r = region_create(fd, &rp, &st->region);
    if (r)
      say(why, why_len, "state: cannot make the state file");
  } else if (origin == ORIGIN_ATTACH) {
    r = region_attach(fd, &rp, &st->region, why, why_len);
  }
  if (r)
    goto fail_st;
  st->cnt = &st->own_cnt;
  if (origin != ORIGIN_ANON) {
    st->rg = &st->region;
    _Static_assert(sizeof(struct store_counters) <= REGION_COUNTERS_BYTES,
                   "the counters fit their part of the header page");
    st->cnt = st->rg->counters;
    /* The cumulative counters go on; the gauges come from the walk. */
    if (origin == ORIGIN_ATTACH)
      store_counters_clear_gauges(st->cnt);
    /* Before anything is adopted: a kill during this attach must not
     * leave marks the next one takes for its own (metaheap.h). */
    epoch = atomic_fetch_add(&st->rg->hdr->generation, 1) + 1;
    memacct_force(&st->acct, region_fixed_bytes(st->rg));
    r = pagepool_init_region(&st->pool, &st->acct, cfg->pool_reserve, st->rg,
                             origin == ORIGIN_ATTACH);
  } else {
    r = pagepool_init(&st->pool, &st->acct, cfg->pool_reserve);
  }
  if (r)
    goto fail_region;
  meta_init(&st->mh, &st->acct, st->rg ? &st->pool : NULL, epoch);
  r = arena_create(&st->pool, &st->acct, &st->mh, &st->arena);
  if (r)
    goto fail_pool;
  if (st->rg) {
    uint64_t bad = 0;
    r = slots_init_fixed(&st->slots, st->npages, &st->acct, st->rg->top,
                         st->rg->slots, origin == ORIGIN_ATTACH, &bad);
    if (r && why && why_len)
      snprintf(why, why_len,
               "state: damaged: slot chunk %llu is not where it belongs",
               (unsigned long long)bad);
  } else {
    r = slots_init(&st->slots, st->npages, &st->acct);
  }
  if (r)
    goto fail_arena;
  if (origin == ORIGIN_ATTACH) {
    r = persist_adopt(st, why, why_len);
    if (r)
      goto fail_slots;
    st->acct.limit = cfg->mem_limit;
  }
  for (unsigned i = 0; i < NSTRIPES; i++)
    pthread_rwlock_init(&st->locks[i], NULL);
  ws_pool_init(&st->ws);
  pthread_mutex_init(&st->compact_lock, NULL);
  pthread_mutex_init(&st->maintain_lock, NULL);
  *out = st;
  return 0;
fail_slots:
  slots_destroy(&st->slots);
fail_arena:
  arena_destroy(st->arena);
fail_pool:
  pagepool_destroy(&st->pool); /* in a region: pages in use stay */
  meta_destroy(&st->mh);
fail_region:
  if (st->rg)
    region_detach(st->rg);
fail_st:
  gcache_destroy(&st->gc);
  grouper_destroy(&st->grouper);
  recompressor_destroy(&st->recomp);
  free(st);
  return r;
}

int trueno_store_create(const struct trueno_config *cfg,
                        struct trueno_store **out) {
  if (cfg && cfg->persist)
    return store_open(cfg, cfg->state_fd, ORIGIN_NEW, out, NULL, 0);
  return store_open(cfg, -1, ORIGIN_ANON, out, NULL, 0);
}

int trueno_store_attach(int fd, const struct trueno_config *cfg,
                        struct trueno_store **out, char *why,
                        size_t why_len) {
  if (why && why_len)
    why[0] = 0;
  return store_open(cfg, fd, ORIGIN_ATTACH, out, why, why_len);
}

uint64_t trueno_store_size(const struct trueno_store *st) { return st->size; }

int trueno_pool_refill(struct trueno_store *st) {
  return pagepool_refill(&st->pool);
}

void trueno_pool_wait_low(struct trueno_store *st, unsigned ms) {
  pagepool_wait_low(&st->pool, ms);
}

/* Frees the store; a persistent one's pages stay in its file, where drop
 * says whether they are thrown away. */
static void store_close(struct trueno_store *st, int drop) {
  /* Only allocated chunks: a huge sparse device must exit fast. */
  for (uint64_t i = slots_next_used(&st->slots, 0); !st->rg && i < st->npages;
       i = slots_next_used(&st->slots, i + 1))
    slot_release(st, slots_peek(&st->slots, i));
  slots_destroy(&st->slots);
  gcache_destroy(&st->gc);
  grouper_destroy(&st->grouper);
  arena_destroy(st->arena);
  pagepool_destroy(&st->pool);
  meta_destroy(&st->mh);
  if (st->rg && drop)
    region_drop(st->rg);
  else if (st->rg)
    region_detach(st->rg);
  for (unsigned i = 0; i < NSTRIPES; i++)
    pthread_rwlock_destroy(&st->locks[i]);
  ws_pool_destroy(&st->ws);
  pthread_mutex_destroy(&st->compact_lock);
  pthread_mutex_destroy(&st->maintain_lock);
  recompressor_destroy(&st->recomp);
  free(st);
}

void trueno_store_destroy(struct trueno_store *st) {
  if (st)
    store_close(st, 0);
}

void trueno_store_drop(struct trueno_store *st) {
  if (st)
    store_close(st, 1);
}

int trueno_store_populate(struct trueno_store *st) {
  return slots_populate(&st->slots);
}

/* The compressibility estimate costs a fraction of a failed LZ4 attempt on
 * an incompressible page, and a failed zstd one costs several times more
 * (docs/measurements.md).  So the estimate runs only while the recent share
 * of raw pages (an exponential average over the pages a workspace
 * compressed, scaled to RAW_SCALE) says it pays: above 1/8 for lz4, 1/32
 * for zstd. */
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
    r = slot_decode(st, ws, s, dst);
  } else {
    r = slot_decode(st, ws, s, ws->page);
    memcpy(dst, ws->page + pofs, plen);
  }
  if (!r)
    slot_stamp_read(st, s);
  pthread_rwlock_unlock(l);
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
    r = slot_install_locked(st, l, ws->buf, s, src, &next, &old);
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
      r = slot_decode(st, ws, s, tmp);
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
    } while (r == -EAGAIN && (r = slot_reserve_wait(st, &deadline)) == 0);
    if (r)
      return r;
  }
  slot_release(st, &old);
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
  slot_swap(st, s, &empty, &old);
  pthread_rwlock_unlock(l);
  slot_release(st, &old);
  if (old.type != SLOT_EMPTY)
    store_counter_add(&st->cnt->pages_trimmed, 1);
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

int trueno_read(struct trueno_store *st, void *buf, uint64_t len,
                uint64_t off) {
  store_counter_add(&st->cnt->reads, 1);
  struct workspace *ws = NULL;
  int r = check_range(st, len, off);
  if (!r && !(ws = ws_get(&st->ws)))
    r = -ENOMEM;
  int batch_ok = 1;
  for (uint64_t done = 0; !r && done < len;) {
    size_t nb = batch_ok ? batch_pages(st, 1, off + done, len - done) : 0;
    if (nb) {
      int cpu;
      r = batch_read(st, ws, (uint8_t *)buf + done, (off + done) / PAGE, nb,
                     &cpu);
      if (!cpu) {
        if (!r) {
          store_counter_add(&st->cnt->pages_read, (int64_t)nb);
          done += (uint64_t)nb * PAGE;
        }
        continue;
      }
      batch_ok = 0; /* no memory for a batch: page by page */
    }
    struct piece p = piece_at(off + done, len - done);
    r = page_read(st, ws, p.idx, (uint8_t *)buf + done, p.pofs, p.plen);
    if (!r)
      store_counter_add(&st->cnt->pages_read, 1);
    done += p.plen;
  }
  if (ws)
    ws_put(&st->ws, ws);
  if (r)
    store_counter_add(&st->cnt->failed_reads, 1);
  return r;
}

int trueno_write(struct trueno_store *st, const void *buf, uint64_t len,
                 uint64_t off) {
  store_counter_add(&st->cnt->writes, 1);
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
      r = batch_write(st, (const uint8_t *)buf + done, (off + done) / PAGE,
                      nb, &wrote, &cpu);
      store_counter_add(&st->cnt->pages_written, (int64_t)wrote);
      done += (uint64_t)wrote * PAGE;
      if (!cpu)
        continue;
      batch_ok = 0; /* the codec failed: the CPU compresses the rest */
    }
    struct piece p = piece_at(off + done, len - done);
    r = page_write(st, ws, p.idx, (const uint8_t *)buf + done, p.pofs,
                   p.plen);
    if (!r)
      store_counter_add(&st->cnt->pages_written, 1);
    done += p.plen;
  }
  if (ws)
    ws_put(&st->ws, ws);
  if (r)
    store_counter_add(&st->cnt->failed_writes, 1);
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
  store_counter_add(&st->cnt->trims, 1);
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
    store_counter_add(&st->cnt->failed_writes, 1);
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

void trueno_get_stats(struct trueno_store *st, struct trueno_stats *out) {
  memset(out, 0, sizeof *out);
  store_counters_read(st->cnt, out);
  out->disksize = st->size;
  out->orig_data_size = out->pages_stored * TRUENO_PAGE_SIZE;
  out->mem_used_total = atomic_load(&st->acct.used);
  out->mem_used_max = atomic_load(&st->acct.max);
  out->mem_limit = st->acct.limit;
  out->arena_pages = atomic_load(&st->pool.pages_out);
  out->metadata_bytes = atomic_load(&st->slots.bytes) +
                        arena_metadata_bytes(st->arena) +
                        pagepool_overhead(&st->pool) +
                        atomic_load(&st->cnt->group_meta_bytes);
  out->group_cache_hits = atomic_load(&st->gc.hits);
  out->group_cache_misses = atomic_load(&st->gc.misses);
  out->group_cache_bytes = atomic_load(&st->gc.bytes);
}
