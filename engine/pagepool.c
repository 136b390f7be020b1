/* SPDX-License-Identifier: MIT */
#include "pagepool.h"

#include <string.h>
#include <sys/mman.h>

#define PP_PAGE 4096u
#define PP_CHUNK_PAGES 512u
#define PP_CHUNK_BYTES ((size_t)PP_CHUNK_PAGES * PP_PAGE)
#define PP_CACHE_MAX 256u /* 1 MiB of resident free pages at most */

/* Lives in the first page of its 2 MiB-aligned chunk, so a page finds its
 * chunk by masking its address: no lookup structure to grow or lock. */
struct pp_chunk {
  struct pp_chunk *prev, *next; /* on p->partial while nfree > 0 */
  uint32_t nfree;               /* set bits in free_map */
  uint32_t hint;                /* lowest word that may hold a set bit */
  uint64_t free_map[PP_CHUNK_PAGES / 64];
};

static struct pp_chunk *chunk_of(void *page) {
  return (struct pp_chunk *)((uintptr_t)page & ~(uintptr_t)(PP_CHUNK_BYTES - 1));
}

static void list_del(struct pagepool *p, struct pp_chunk *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    p->partial = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void list_add(struct pagepool *p, struct pp_chunk *c) {
  c->prev = NULL;
  c->next = p->partial;
  if (p->partial)
    p->partial->prev = c;
  p->partial = c;
}

/* Maps twice the size and trims, because mmap gives no alignment promise. */
static struct pp_chunk *chunk_map(void) {
  size_t len = 2 * PP_CHUNK_BYTES;
  uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return NULL;
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
  struct pp_chunk *c = (struct pp_chunk *)base;
  memset(c, 0, sizeof *c);
  memset(c->free_map, 0xff, sizeof c->free_map);
  c->free_map[0] &= ~(uint64_t)1; /* page 0 holds this header */
  c->nfree = PP_CHUNK_PAGES - 1;
  return c;
}

static void release_to_chunk(struct pagepool *p, void *page);

int pagepool_init(struct pagepool *p, struct memacct *acct) {
  memset(p, 0, sizeof *p);
  p->acct = acct;
  return -pthread_mutex_init(&p->lock, NULL);
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
  struct pp_chunk *c = p->partial;
  while (c) {
    struct pp_chunk *next = c->next;
    munmap(c, PP_CHUNK_BYTES);
    c = next;
  }
  if (p->spare)
    munmap(p->spare, PP_CHUNK_BYTES);
  pthread_mutex_destroy(&p->lock);
}

static void *chunk_take(struct pp_chunk *c) {
  for (uint32_t w = c->hint; w < PP_CHUNK_PAGES / 64; w++) {
    if (c->free_map[w]) {
      unsigned bit = (unsigned)__builtin_ctzll(c->free_map[w]);
      c->free_map[w] &= c->free_map[w] - 1;
      c->hint = w;
      c->nfree--;
      return (uint8_t *)c + ((size_t)w * 64 + bit) * PP_PAGE;
    }
  }
  return NULL; /* unreachable while nfree > 0 */
}

int pagepool_alloc(struct pagepool *p, void **page) {
  int r = memacct_charge(p->acct, PP_PAGE);
  if (r)
    return r;
  pthread_mutex_lock(&p->lock);
  void *pg = p->cache;
  if (pg) {
    p->cache = *(void **)pg;
    p->ncache--;
  } else {
    if (!p->partial) {
      struct pp_chunk *c = p->spare;
      p->spare = NULL;
      if (!c) {
        /* The header page is charged for as long as the chunk exists. */
        r = memacct_charge(p->acct, PP_PAGE);
        if (!r && !(c = chunk_map())) {
          memacct_uncharge(p->acct, PP_PAGE);
          r = -ENOMEM;
        }
        if (r) {
          pthread_mutex_unlock(&p->lock);
          memacct_uncharge(p->acct, PP_PAGE);
          return r;
        }
        p->nchunks++;
      }
      list_add(p, c);
    }
    struct pp_chunk *c = p->partial;
    pg = chunk_take(c);
    if (c->nfree == 0)
      list_del(p, c);
  }
  pthread_mutex_unlock(&p->lock);
  atomic_fetch_add_explicit(&p->pages_out, 1, memory_order_relaxed);
  *page = pg;
  return 0;
}

/* Returns a page to its chunk's bitmap and the memory to the kernel. */
static void release_to_chunk(struct pagepool *p, void *page) {
  /* Fails harmlessly on locked (mlockall) memory. */
  madvise(page, PP_PAGE, MADV_DONTNEED);
  struct pp_chunk *c = chunk_of(page);
  size_t idx = ((uintptr_t)page - (uintptr_t)c) / PP_PAGE;
  c->free_map[idx / 64] |= (uint64_t)1 << (idx % 64);
  if (idx / 64 < c->hint)
    c->hint = (uint32_t)(idx / 64);
  if (c->nfree++ == 0)
    list_add(p, c);
  if (c->nfree == PP_CHUNK_PAGES - 1) {
    list_del(p, c);
    if (!p->spare) {
      p->spare = c;
    } else {
      munmap(c, PP_CHUNK_BYTES);
      p->nchunks--;
      memacct_uncharge(p->acct, PP_PAGE);
    }
  }
}

void pagepool_free(struct pagepool *p, void *page) {
  atomic_fetch_sub_explicit(&p->pages_out, 1, memory_order_relaxed);
  memacct_uncharge(p->acct, PP_PAGE);
  pthread_mutex_lock(&p->lock);
  if (p->ncache < PP_CACHE_MAX) {
    *(void **)page = p->cache;
    p->cache = page;
    p->ncache++;
  } else {
    release_to_chunk(p, page);
  }
  pthread_mutex_unlock(&p->lock);
}

uint64_t pagepool_overhead(struct pagepool *p) {
  pthread_mutex_lock(&p->lock);
  uint64_t n = p->nchunks;
  pthread_mutex_unlock(&p->lock);
  return n * PP_PAGE;
}
