/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* pthread_cond_clockwait */
#include "pagepool.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PP_CACHE_MAX 256u /* 1 MiB of resident free pages at most */

#include "region.h"
#include "trueno.h"

/* Set when a writer took the reserve below half (or found it empty);
 * wakes pagepool_wait_low(), so the refill starts at once instead of at
 * its next timed round, which a burst of writes outruns. */
static void reserve_low(struct pagepool *p) {
  if (atomic_exchange(&p->low, true))
    return; /* already said */
  pthread_mutex_lock(&p->low_lock);
  pthread_cond_signal(&p->low_cond);
  pthread_mutex_unlock(&p->low_lock);
}

/* ns nanoseconds from now on CLOCK_MONOTONIC, the clock every timed wait
 * here uses (pthread_cond_clockwait): a step of the wall clock must not
 * stretch or cut a wait. */
static struct timespec deadline_in(long long ns) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  ns += t.tv_nsec;
  t.tv_sec += (time_t)(ns / 1000000000L);
  t.tv_nsec = (long)(ns % 1000000000L);
  return t;
}

void pagepool_wait_low(struct pagepool *p, unsigned ms) {
  struct timespec t = deadline_in((long long)ms * 1000000L);
  pthread_mutex_lock(&p->low_lock);
  while (!atomic_load(&p->low))
    if (pthread_cond_clockwait(&p->low_cond, &p->low_lock, CLOCK_MONOTONIC,
                               &t) == ETIMEDOUT)
      break;
  atomic_store(&p->low, false);
  pthread_mutex_unlock(&p->low_lock);
}

/* Chunk headers live outside the chunk (a page of header per 2 MiB would be
 * 0.2% of the store); chunks are 2 MiB-aligned so a page finds its header by
 * masking its address and looking the base up in p->table. */
struct pp_chunk {
  LIST_ENTRY(pp_chunk) link; /* on p->partial while nfree > 0, or on
                                p->spare when empty */
  uint8_t *base;
  uint32_t nfree;               /* set bits in free_map */
  uint32_t hint;                /* lowest word that may hold a set bit */
  uint64_t free_map[PP_CHUNK_PAGES / 64];
  uint8_t halves[PP_CHUNK_PAGES]; /* split pages: bit i set = half i out */
};

/* A free half page whose sibling is out: the list lives in the free memory. */
struct pp_half {
  LIST_ENTRY(pp_half) link;
};

static void release_to_chunk(struct pagepool *p, void *page);
static int spare_add(struct pagepool *p);

/* ---- chunk table ---- */

static size_t table_slot(const struct pagepool *p, uintptr_t base) {
  return (size_t)((base / PP_CHUNK_BYTES) * 0x9e3779b97f4a7c15ull) &
         (p->table_cap - 1);
}

static struct pp_chunk *table_find(const struct pagepool *p, void *addr) {
  uintptr_t base = (uintptr_t)addr & ~(uintptr_t)(PP_CHUNK_BYTES - 1);
  for (size_t i = table_slot(p, base);; i = (i + 1) & (p->table_cap - 1))
    if (p->table[i] && (uintptr_t)p->table[i]->base == base)
      return p->table[i];
}

static void table_put(struct pp_chunk **t, size_t cap, struct pp_chunk *c) {
  struct pagepool tmp = {.table = t, .table_cap = cap};
  size_t i = table_slot(&tmp, (uintptr_t)c->base);
  while (t[i])
    i = (i + 1) & (cap - 1);
  t[i] = c;
}

/* Keeps the table at most half full; rebuilt on growth and on removal
 * (removal is rare: a whole 2 MiB chunk emptied). */
static int table_rebuild(struct pagepool *p, size_t cap, struct pp_chunk *add,
                         struct pp_chunk *drop) {
  struct pp_chunk **t = calloc(cap, sizeof *t);
  if (!t)
    return -ENOMEM;
  for (size_t i = 0; i < p->table_cap; i++)
    if (p->table[i] && p->table[i] != drop)
      table_put(t, cap, p->table[i]);
  if (add)
    table_put(t, cap, add);
  free(p->table);
  p->table = t;
  p->table_cap = cap;
  return 0;
}

static uint64_t table_bytes(const struct pagepool *p) {
  return p->table_cap * sizeof *p->table + p->nchunks * sizeof(struct pp_chunk);
}

/* ---- chunks ---- */

/* A free chunk of the region's pool area (its pages are holes). */
static uint8_t *area_take(struct pagepool *p) {
  uint8_t *base = NULL;
  pthread_mutex_lock(&p->area_lock);
  for (uint64_t w = 0; w * 64 < p->rg->pool_chunks; w++) {
    if (p->area_map[w] == ~0ull)
      continue;
    uint64_t i = w * 64 + (uint64_t)__builtin_ctzll(~p->area_map[w]);
    if (i < p->rg->pool_chunks) {
      p->area_map[w] |= 1ull << (i % 64);
      base = p->rg->pool + i * PP_CHUNK_BYTES;
    }
    break;
  }
  pthread_mutex_unlock(&p->area_lock);
  return base;
}

static void area_put(struct pagepool *p, uint8_t *base) {
  uint64_t i = (uint64_t)(base - p->rg->pool) / PP_CHUNK_BYTES;
  pthread_mutex_lock(&p->area_lock);
  p->area_map[i / 64] &= ~(1ull << (i % 64));
  pthread_mutex_unlock(&p->area_lock);
}

/* Maps twice the size and trims, because mmap gives no alignment promise.
 * In a region the chunk is a slice of its pool area. */
static struct pp_chunk *chunk_map(struct pagepool *p) {
  struct pp_chunk *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (p->rg) {
    c->base = area_take(p);
    if (!c->base) {
      free(c);
      return NULL;
    }
    memset(c->free_map, 0xff, sizeof c->free_map);
    c->nfree = PP_CHUNK_PAGES;
    return c;
  }
  size_t len = 2 * PP_CHUNK_BYTES;
  uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    free(c);
    return NULL;
  }
  uintptr_t base = ((uintptr_t)raw + PP_CHUNK_BYTES - 1) &
                   ~(uintptr_t)(PP_CHUNK_BYTES - 1);
  size_t head = base - (uintptr_t)raw;
  if (head)
    munmap(raw, head);
  munmap((uint8_t *)base + PP_CHUNK_BYTES, len - head - PP_CHUNK_BYTES);
#ifdef MADV_NOHUGEPAGE
  /* A huge page would make RSS jump by 2 MiB and split on the first free. */
  madvise((void *)base, PP_CHUNK_BYTES, MADV_NOHUGEPAGE);
#endif
  c->base = (uint8_t *)base;
  memset(c->free_map, 0xff, sizeof c->free_map);
  c->nfree = PP_CHUNK_PAGES;
  return c;
}

/* In a region, keep says the chunk holds pages in use (a detach). */
static void chunk_unmap(struct pagepool *p, struct pp_chunk *c, int keep) {
  if (!p->rg) {
    munmap(c->base, PP_CHUNK_BYTES);
  } else if (!keep) {
    region_punch(p->rg, c->base, PP_CHUNK_BYTES);
    area_put(p, c->base);
  }
  free(c);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older headers lack it */
#endif

/* Pages made resident at once by chunk_take: few enough that RSS runs
 * little ahead of the pages handed out (it shows in the memory ratio of a
 * small store), many enough to spare most page faults. */
#define PP_POPULATE 16

static void *chunk_take(struct pp_chunk *c) {
  for (uint32_t w = c->hint; w < PP_CHUNK_PAGES / 64; w++) {
    if (c->free_map[w]) {
      unsigned bit = (unsigned)__builtin_ctzll(c->free_map[w]);
      uint8_t *page = c->base + ((size_t)w * 64 + bit) * PP_PAGE;
      /* The first of PP_POPULATE free pages: make them resident in one
       * call rather than fault on each one's first write.  Resident pages
       * are skipped; a failure just leaves the faults. */
      if (bit % PP_POPULATE == 0 &&
          (c->free_map[w] >> bit & ((1u << PP_POPULATE) - 1)) ==
              (1u << PP_POPULATE) - 1)
        madvise(page, PP_POPULATE * PP_PAGE, MADV_POPULATE_WRITE);
      c->free_map[w] &= c->free_map[w] - 1;
      c->hint = w;
      c->nfree--;
      return page;
    }
  }
  return NULL; /* unreachable while nfree > 0 */
}

static int pool_init(struct pagepool *p, struct memacct *acct,
                     uint64_t reserve, struct region *rg, int fill) {
  memset(p, 0, sizeof *p);
  if (rg) {
    p->area_map = calloc((rg->pool_chunks + 63) / 64, sizeof *p->area_map);
    if (!p->area_map)
      return -ENOMEM;
    pthread_mutex_init(&p->area_lock, NULL);
    p->rg = rg;
  }
  LIST_INIT(&p->partial);
  LIST_INIT(&p->spare);
  LIST_INIT(&p->halves);
  p->acct = acct;
  p->table_cap = 16;
  int r = memacct_charge(acct, p->table_cap * sizeof *p->table);
  if (r)
    goto fail_area;
  p->table = calloc(p->table_cap, sizeof *p->table);
  r = p->table ? -pthread_mutex_init(&p->lock, NULL) : -ENOMEM;
  if (r)
    goto fail_table;
  r = -pthread_cond_init(&p->spare_cond, NULL);
  if (r)
    goto fail_lock;
  r = -pthread_mutex_init(&p->low_lock, NULL);
  if (r)
    goto fail_cond;
  r = -pthread_cond_init(&p->low_cond, NULL);
  if (r)
    goto fail_low_lock;
  p->reserve_chunks = (size_t)(reserve / PP_CHUNK_BYTES +
                               (reserve % PP_CHUNK_BYTES != 0));
  /* Best effort: a store with less reserve (small mem-limit, little
   * memory) still works, it just tops the reserve up later. */
  while (fill && p->nspare < p->reserve_chunks && spare_add(p) == 0)
    ;
  return 0;
fail_low_lock:
  pthread_mutex_destroy(&p->low_lock);
fail_cond:
  pthread_cond_destroy(&p->spare_cond);
fail_lock:
  pthread_mutex_destroy(&p->lock);
fail_table:
  free(p->table);
  p->table = NULL;
  memacct_uncharge(acct, p->table_cap * sizeof *p->table);
fail_area:
  if (rg) {
    pthread_mutex_destroy(&p->area_lock);
    free(p->area_map);
  }
  return r;
}

int pagepool_init(struct pagepool *p, struct memacct *acct, uint64_t reserve) {
  return pool_init(p, acct, reserve, NULL, 1);
}

int pagepool_init_region(struct pagepool *p, struct memacct *acct,
                         uint64_t reserve, struct region *rg, int adopting) {
  return pool_init(p, acct, reserve, rg, !adopting);
}

void pagepool_destroy(struct pagepool *p) {
  /* Cached pages keep their chunks off the partial list: drain them first,
   * so every chunk whose pages all came back is found below. */
  while (p->cache) {
    void *pg = p->cache;
    p->cache = *(void **)pg;
    release_to_chunk(p, pg);
  }
  p->ncache = 0;
  for (size_t i = 0; i < p->table_cap; i++)
    if (p->table[i])
      chunk_unmap(p, p->table[i], p->table[i]->nfree < PP_CHUNK_PAGES);
  free(p->table);
  free(p->area_map);
  if (p->rg)
    pthread_mutex_destroy(&p->area_lock);
  pthread_cond_destroy(&p->low_cond);
  pthread_mutex_destroy(&p->low_lock);
  pthread_cond_destroy(&p->spare_cond);
  pthread_mutex_destroy(&p->lock);
}

/* Enters a mapped chunk in the table, charging their bookkeeping; caller
 * holds the lock (or owns the pool). */
static int chunk_enter(struct pagepool *p, struct pp_chunk *c) {
  int grow = p->nchunks + 1 > p->table_cap / 2;
  uint64_t meta = sizeof(struct pp_chunk) +
                  (grow ? p->table_cap * sizeof *p->table : 0);
  int r = memacct_charge(p->acct, meta);
  if (r)
    return r;
  if (grow && table_rebuild(p, p->table_cap * 2, NULL, NULL)) {
    memacct_uncharge(p->acct, meta);
    return -ENOMEM;
  }
  table_put(p->table, p->table_cap, c);
  p->nchunks++;
  return 0;
}

/* Maps a chunk and enters it in the table, charging their bookkeeping. */
static int chunk_new(struct pagepool *p, struct pp_chunk **out) {
  struct pp_chunk *c = chunk_map(p);
  if (!c)
    return -ENOMEM;
  int r = chunk_enter(p, c);
  if (r) {
    chunk_unmap(p, c, 0);
    return r;
  }
  *out = c;
  return 0;
}

/* Makes every page of a chunk resident (and, under mlockall, locked)
 * before any write needs them: in one call where the kernel can (5.14),
 * which spares 512 page faults (on an emulated CPU each costs tens of
 * microseconds), else by touching each page. */
static void chunk_touch(struct pp_chunk *c) {
  if (madvise(c->base, PP_CHUNK_BYTES, MADV_POPULATE_WRITE) == 0)
    return;
  for (size_t i = 0; i < PP_CHUNK_PAGES; i++)
    ((volatile uint8_t *)c->base)[i * PP_PAGE] = 0;
}

/* Keeps an empty chunk as a spare, waking writers in pagepool_wait;
 * caller holds the lock (or owns the pool). */
static void spare_push(struct pagepool *p, struct pp_chunk *c) {
  LIST_INSERT_HEAD(&p->spare, c, link);
  p->nspare++;
  pthread_cond_broadcast(&p->spare_cond);
}

/* Maps one more spare chunk, resident. */
static int spare_add(struct pagepool *p) {
  struct pp_chunk *c;
  int r = chunk_new(p, &c);
  if (r)
    return r;
  chunk_touch(c);
  spare_push(p, c);
  return 0;
}

/* The new memory is mapped and touched outside the pool's lock, so the
 * writers never wait for it. */
int pagepool_refill(struct pagepool *p) {
  for (;;) {
    pthread_mutex_lock(&p->lock);
    int want = p->nspare < p->reserve_chunks;
    pthread_mutex_unlock(&p->lock);
    if (!want)
      return 0;
    struct pp_chunk *c = chunk_map(p);
    if (!c)
      return -ENOMEM;
    chunk_touch(c);
    pthread_mutex_lock(&p->lock);
    int r = chunk_enter(p, c);
    if (!r)
      spare_push(p, c);
    pthread_mutex_unlock(&p->lock);
    if (r) {
      chunk_unmap(p, c, 0);
      return r;
    }
  }
}

static struct pp_chunk *spare_take(struct pagepool *p) {
  struct pp_chunk *c = LIST_FIRST(&p->spare);
  if (c) {
    LIST_REMOVE(c, link);
    p->nspare--;
  }
  if (p->reserve_chunks && p->nspare < (p->reserve_chunks + 1) / 2)
    reserve_low(p);
  return c;
}

/* How long a writer waits for the refill thread when the reserve is used
 * up, before it fails with ENOMEM.  The machine may have memory to spare
 * while the refill thread is short of CPU (busy writers, a loaded host):
 * failing at once would turn that into I/O errors. */
#define RESERVE_WAIT_NS (200 * 1000 * 1000L)

struct timespec pagepool_wait_deadline(void) {
  return deadline_in(RESERVE_WAIT_NS);
}

/* Whether a page can be had without mapping memory; caller holds the
 * lock. */
static int page_ready(const struct pagepool *p) {
  return p->cache || !LIST_EMPTY(&p->partial) || !LIST_EMPTY(&p->spare);
}

int pagepool_wait(struct pagepool *p, const struct timespec *deadline) {
  pthread_mutex_lock(&p->lock);
  p->waiters++;
  reserve_low(p);
  int timed_out = 0;
  while (!page_ready(p) && !timed_out)
    timed_out = pthread_cond_clockwait(&p->spare_cond, &p->lock,
                                       CLOCK_MONOTONIC, deadline) == ETIMEDOUT;
  int r = page_ready(p) ? 0 : -ENOMEM;
  p->waiters--;
  pthread_mutex_unlock(&p->lock);
  return r;
}

/* A page from the cache or a chunk, charged; caller holds the lock. */
static int page_get(struct pagepool *p, void **page) {
  int r = memacct_charge(p->acct, PP_PAGE);
  if (r)
    return r;
  void *pg = p->cache;
  if (pg) {
    p->cache = *(void **)pg;
    p->ncache--;
  } else {
    if (LIST_EMPTY(&p->partial)) {
      struct pp_chunk *c = spare_take(p);
      /* With a reserve, a writer never maps fresh memory: that is the
       * refill thread's job (pagepool_refill).  When the reserve is
       * used up the writer waits for it a little outside its locks
       * (pagepool_wait), then the write fails cleanly with ENOMEM instead
       * of blocking on the kernel. */
      if (!c && p->reserve_chunks) {
        reserve_low(p);
        memacct_uncharge(p->acct, PP_PAGE);
        return -EAGAIN;
      } else if (!c) {
        r = chunk_new(p, &c);
        if (r) {
          memacct_uncharge(p->acct, PP_PAGE);
          return r;
        }
      }
      if (c)
        LIST_INSERT_HEAD(&p->partial, c, link);
    }
    struct pp_chunk *c = LIST_FIRST(&p->partial);
    pg = chunk_take(c);
    if (c->nfree == 0)
      LIST_REMOVE(c, link);
  }
  atomic_fetch_add_explicit(&p->pages_out, 1, memory_order_relaxed);
  *page = pg;
  return 0;
}

/* Returns a page to its chunk's bitmap and the memory to the kernel. */
static void release_to_chunk(struct pagepool *p, void *page) {
  /* Fails harmlessly on locked (mlockall) memory.  A shared mapping's
   * pages are the file's: they go back by punching the file. */
  if (p->rg)
    region_punch(p->rg, page, PP_PAGE);
  else
    madvise(page, PP_PAGE, MADV_DONTNEED);
  struct pp_chunk *c = table_find(p, page);
  size_t idx = (size_t)((uint8_t *)page - c->base) / PP_PAGE;
  c->free_map[idx / 64] |= (uint64_t)1 << (idx % 64);
  if (idx / 64 < c->hint)
    c->hint = (uint32_t)(idx / 64);
  if (c->nfree++ == 0) {
    LIST_INSERT_HEAD(&p->partial, c, link);
    pthread_cond_broadcast(&p->spare_cond); /* for pagepool_wait */
  }
  if (c->nfree == PP_CHUNK_PAGES) {
    LIST_REMOVE(c, link);
    if (p->nspare < (p->reserve_chunks ? p->reserve_chunks : 1)) {
      spare_push(p, c);
    } else if (!table_rebuild(p, p->table_cap, NULL, c)) {
      chunk_unmap(p, c, 0);
      p->nchunks--;
      memacct_uncharge(p->acct, sizeof(struct pp_chunk));
    } else {
      /* No memory to rebuild the table: keep the chunk. */
      LIST_INSERT_HEAD(&p->partial, c, link);
    }
  }
}

/* Uncharges a page and keeps it resident or hands it back. */
static void page_put(struct pagepool *p, void *page) {
  atomic_fetch_sub_explicit(&p->pages_out, 1, memory_order_relaxed);
  memacct_uncharge(p->acct, PP_PAGE);
  if (p->ncache < PP_CACHE_MAX) {
    *(void **)page = p->cache;
    p->cache = page;
    p->ncache++;
    if (p->waiters)
      pthread_cond_broadcast(&p->spare_cond); /* for pagepool_wait */
  } else {
    release_to_chunk(p, page);
  }
}

int pagepool_alloc(struct pagepool *p, void **page) {
  pthread_mutex_lock(&p->lock);
  int r = page_get(p, page);
  pthread_mutex_unlock(&p->lock);
  return r;
}

void pagepool_free(struct pagepool *p, void *page) {
  pthread_mutex_lock(&p->lock);
  page_put(p, page);
  pthread_mutex_unlock(&p->lock);
}

/* ---- half pages ---- */

static uint8_t *half_mask(struct pagepool *p, void *half) {
  struct pp_chunk *c = table_find(p, half);
  return &c->halves[(size_t)((uint8_t *)half - c->base) / PP_PAGE];
}

int pagepool_alloc_half(struct pagepool *p, void *near, int pack,
                        void **half) {
  pthread_mutex_lock(&p->lock);
  struct pp_half *h = pack ? NULL : LIST_FIRST(&p->halves);
  if (near) {
    /* The sibling of the caller's previous block, if still free: blocks of
     * one zspage then share pages and a released zspage frees whole pages
     * instead of leaving lone halves charged as pages. */
    uint8_t *sib = (uint8_t *)((uintptr_t)near ^ PP_HALF);
    uintptr_t which = ((uintptr_t)sib / PP_HALF) & 1;
    if (!(*half_mask(p, sib) & (1u << which)))
      h = (struct pp_half *)sib;
  }
  if (h) {
    LIST_REMOVE(h, link);
  } else {
    void *pg;
    int r = page_get(p, &pg);
    if (r) {
      pthread_mutex_unlock(&p->lock);
      return r;
    }
    h = pg;
    struct pp_half *other = (struct pp_half *)((uint8_t *)pg + PP_HALF);
    LIST_INSERT_HEAD(&p->halves, other, link);
  }
  uintptr_t which = ((uintptr_t)h / PP_HALF) & 1;
  *half_mask(p, h) |= (uint8_t)(1u << which);
  pthread_mutex_unlock(&p->lock);
  *half = h;
  return 0;
}

int pagepool_half_alone(struct pagepool *p, void *half) {
  pthread_mutex_lock(&p->lock);
  uintptr_t which = ((uintptr_t)half / PP_HALF) & 1;
  int alone = *half_mask(p, half) == (uint8_t)(1u << which);
  pthread_mutex_unlock(&p->lock);
  return alone;
}

void pagepool_free_half(struct pagepool *p, void *half) {
  pthread_mutex_lock(&p->lock);
  uintptr_t which = ((uintptr_t)half / PP_HALF) & 1;
  uint8_t *mask = half_mask(p, half);
  *mask &= (uint8_t)~(1u << which);
  if (*mask == 0) {
    /* The sibling was free and listed: the page is whole again. */
    uint8_t *page = (uint8_t *)((uintptr_t)half & ~(uintptr_t)(PP_PAGE - 1));
    LIST_REMOVE((struct pp_half *)(page + (which ? 0 : PP_HALF)), link);
    page_put(p, page);
  } else {
    LIST_INSERT_HEAD(&p->halves, (struct pp_half *)half, link);
  }
  pthread_mutex_unlock(&p->lock);
}

uint64_t pagepool_overhead(struct pagepool *p) {
  pthread_mutex_lock(&p->lock);
  uint64_t n = table_bytes(p);
  pthread_mutex_unlock(&p->lock);
  return n;
}

/* ---- attach (pagepool_adopt_*) ---- */

int pagepool_owns(const struct pagepool *p, const void *addr, size_t align) {
  if (!p->rg)
    return 0;
  uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)p->rg->pool;
  return a >= lo && a - lo < p->rg->pool_chunks * PP_CHUNK_BYTES &&
         a % align == 0;
}

/* The chunk holding addr, or NULL when it has no header. */
static struct pp_chunk *table_lookup(const struct pagepool *p, void *addr) {
  uintptr_t base = (uintptr_t)addr & ~(uintptr_t)(PP_CHUNK_BYTES - 1);
  for (size_t i = table_slot(p, base); p->table[i];
       i = (i + 1) & (p->table_cap - 1))
    if ((uintptr_t)p->table[i]->base == base)
      return p->table[i];
  return NULL;
}

/* The header of the chunk holding addr, made when it has none yet. */
static int adopt_chunk(struct pagepool *p, void *addr, struct pp_chunk **out) {
  struct pp_chunk *c = table_lookup(p, addr);
  if (!c) {
    c = calloc(1, sizeof *c);
    if (!c)
      return -ENOMEM;
    c->base = (uint8_t *)((uintptr_t)addr & ~(uintptr_t)(PP_CHUNK_BYTES - 1));
    memset(c->free_map, 0xff, sizeof c->free_map);
    c->nfree = PP_CHUNK_PAGES;
    int r = chunk_enter(p, c);
    if (r) {
      free(c);
      return r;
    }
    uint64_t i = (uint64_t)(c->base - p->rg->pool) / PP_CHUNK_BYTES;
    p->area_map[i / 64] |= 1ull << (i % 64);
  }
  *out = c;
  return 0;
}

/* Takes page idx of c off the free map, charged. */
static void adopt_take(struct pagepool *p, struct pp_chunk *c, size_t idx) {
  c->free_map[idx / 64] &= ~((uint64_t)1 << (idx % 64));
  c->nfree--;
  memacct_force(p->acct, PP_PAGE);
  atomic_fetch_add_explicit(&p->pages_out, 1, memory_order_relaxed);
}

static int page_is_free(const struct pp_chunk *c, size_t idx) {
  return c->free_map[idx / 64] >> (idx % 64) & 1;
}

/* The chunk and page index of a block of len bytes at addr the walk
 * found, its chunk adopted: -EUCLEAN when the pool's area does not hold it. */
static int adopt_locate(struct pagepool *p, void *addr, size_t len,
                        struct pp_chunk **c, size_t *idx) {
  if (!pagepool_owns(p, addr, len))
    return -EUCLEAN;
  int r = adopt_chunk(p, addr, c);
  if (r)
    return r;
  *idx = (size_t)((uint8_t *)addr - (*c)->base) / PP_PAGE;
  return 0;
}

int pagepool_adopt_page(struct pagepool *p, void *page) {
  struct pp_chunk *c;
  size_t idx;
  int r = adopt_locate(p, page, PP_PAGE, &c, &idx);
  if (r)
    return r;
  if (!page_is_free(c, idx))
    return -EUCLEAN; /* two owners */
  adopt_take(p, c, idx);
  return 0;
}

int pagepool_adopt_half(struct pagepool *p, void *half) {
  struct pp_chunk *c;
  size_t idx;
  int r = adopt_locate(p, half, PP_HALF, &c, &idx);
  if (r)
    return r;
  unsigned bit = 1u << (((uintptr_t)half / PP_HALF) & 1);
  if (page_is_free(c, idx))
    adopt_take(p, c, idx);
  else if (!c->halves[idx] || (c->halves[idx] & bit))
    return -EUCLEAN; /* a whole page's, or the half's twice */
  c->halves[idx] |= (uint8_t)bit;
  return 0;
}

void pagepool_adopt_done(struct pagepool *p) {
  struct region *rg = p->rg;
  for (size_t t = 0; t < p->table_cap; t++) {
    struct pp_chunk *c = p->table[t];
    if (!c)
      continue;
    /* Free pages may hold what a previous process left (a page cache,
     * pages written then dropped by the kill): give them back in runs. */
    for (size_t i = 0; i < PP_CHUNK_PAGES;) {
      if (!page_is_free(c, i)) {
        if (c->halves[i] == 1 || c->halves[i] == 2) {
          uint8_t *pg = c->base + i * PP_PAGE;
          struct pp_half *h =
              (struct pp_half *)(pg + (c->halves[i] == 1 ? PP_HALF : 0));
          LIST_INSERT_HEAD(&p->halves, h, link);
        }
        i++;
        continue;
      }
      size_t j = i;
      while (j < PP_CHUNK_PAGES && page_is_free(c, j))
        j++;
      region_punch(rg, c->base + i * PP_PAGE, (j - i) * PP_PAGE);
      i = j;
    }
    c->hint = 0;
    if (c->nfree)
      LIST_INSERT_HEAD(&p->partial, c, link);
  }
  /* Chunks nobody uses: back to the file, in runs. */
  for (uint64_t i = 0; i < rg->pool_chunks;) {
    if (p->area_map[i / 64] >> (i % 64) & 1) {
      i++;
      continue;
    }
    uint64_t j = i;
    while (j < rg->pool_chunks && !(p->area_map[j / 64] >> (j % 64) & 1))
      j++;
    region_punch(rg, rg->pool + i * PP_CHUNK_BYTES, (j - i) * PP_CHUNK_BYTES);
    i = j;
  }
  while (p->nspare < p->reserve_chunks && spare_add(p) == 0)
    ;
}
