/* A pool of 4 KiB pages, and of 2 KiB half pages, carved from 2 MiB
 * anonymous mappings.
 *
 * Why not malloc: the arena and raw pages need page-aligned blocks by the
 * million; glibc's aligned allocations waste up to a page each and never
 * give the memory back in the middle of the heap.  Here a freed page goes
 * back to the kernel (MADV_DONTNEED) unless it is kept in a small cache of
 * resident pages for the next writer, and a mapping with no page in use is
 * unmapped.
 *
 * Half pages exist for the arena: each size class has one partly carved
 * zspage whose last block is partly empty, and halving that block halves the
 * waste, which matters on small stores.  A page split into halves is charged
 * in full while either half is out, so mem_used_total is memory really held.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_PAGEPOOL_H
#define TRUENO_PAGEPOOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "memacct.h"

#define PP_PAGE 4096u
#define PP_HALF 2048u
#define PP_CHUNK_PAGES 512u /* a 2 MiB mapping */
#define PP_CHUNK_BYTES ((size_t)PP_CHUNK_PAGES * PP_PAGE)

struct pp_chunk;
struct pp_half;
struct region;

struct pagepool {
  pthread_mutex_t lock;
  struct memacct *acct;
  LIST_HEAD(, pp_chunk) partial; /* chunks with free pages in their bitmap */
  LIST_HEAD(, pp_chunk) spare;   /* empty chunks kept mapped: one damps
                                    map/unmap churn; more are the reserve
                                    (config pool_reserve) */
  size_t nspare;
  size_t reserve_chunks;      /* spares kept resident ahead of the writes;
                                 when set, writers never map memory */
  pthread_cond_t spare_cond;  /* a refill added spares, or pages came back
                                 while writers wait (pagepool_wait) */
  unsigned waiters;           /* threads in pagepool_wait */
  /* Set when a writer took the reserve below half (or found it empty),
   * signalled on low_cond: for pagepool_wait_low. */
  atomic_bool low;
  pthread_mutex_t low_lock;
  pthread_cond_t low_cond;
  void *cache;                /* resident free pages, linked through page[0] */
  size_t ncache;
  LIST_HEAD(, pp_half) halves; /* free halves whose sibling is in use */
  struct pp_chunk **table;    /* open-addressing map: chunk base -> header */
  size_t table_cap;
  uint64_t nchunks;
  _Atomic uint64_t pages_out; /* pages held by callers, split ones included */
  /* A persistent store's pool (region.h): chunks are slices of the
   * region's pool area (area_map: those in use), freed pages are punched
   * out of its file.  NULL: anonymous mappings. */
  struct region *rg;
  pthread_mutex_t area_lock;
  uint64_t *area_map;
};

/* Maps a reserve of reserve bytes (pool_reserve in trueno.h; 0 = none). */
int pagepool_init(struct pagepool *p, struct memacct *acct, uint64_t reserve);
/* A pool in the region rg.  With adopting set, the area holds a previous
 * process's pages: the caller adopts those in use, then pagepool_adopt_done
 * (which also maps the reserve). */
int pagepool_init_region(struct pagepool *p, struct memacct *acct,
                         uint64_t reserve, struct region *rg, int adopting);
/* Frees the pool.  In a region the pages in use stay (a detach). */
void pagepool_destroy(struct pagepool *p);
/* True when [addr, addr + align) is an align-aligned piece of the
 * region's pool area. */
int pagepool_owns(const struct pagepool *p, const void *addr, size_t align);
/* Attach: marks a page, or a half page, of the area in use; -EUCLEAN when
 * it is outside the area or already in use.  adopt_done: free pages go
 * back to the file, chunks with room on the lists, the reserve is made. */
int pagepool_adopt_page(struct pagepool *p, void *page);
int pagepool_adopt_half(struct pagepool *p, void *half);
void pagepool_adopt_done(struct pagepool *p);
/* One page-aligned 4 KiB page of undefined contents; -ENOSPC at the limit,
 * -ENOMEM when the kernel refuses memory, -EAGAIN when the pool has a
 * reserve and it is used up: it never sleeps, as callers hold locks that
 * readers need.  They drop them, pagepool_wait, and try again. */
int pagepool_alloc(struct pagepool *p, void **page);
/* The end of the wait a writer may make for the reserve (pagepool_wait),
 * from now. */
struct timespec pagepool_wait_deadline(void);
/* Waits, holding no lock of the caller's, until the pool has a page to
 * give (a refill, or pages freed meanwhile): 0, else -ENOMEM once the
 * deadline passes. */
int pagepool_wait(struct pagepool *p, const struct timespec *deadline);
void pagepool_free(struct pagepool *p, void *page);
/* One 2 KiB-aligned half page; same errors.  near, if not NULL, is a half
 * the caller holds: its sibling is preferred when free.  Else, by default,
 * a free half whose sibling is in use (it fills a page already charged);
 * with pack set, the first half of a fresh page instead, so that blocks
 * taken one after another fill whole pages (compaction moves objects out of
 * lone halves that way, rather than into other lone halves). */
int pagepool_alloc_half(struct pagepool *p, void *near, int pack,
                        void **half);
void pagepool_free_half(struct pagepool *p, void *half);
/* True when the other half of half's page is free: half alone keeps a
 * whole page charged. */
int pagepool_half_alone(struct pagepool *p, void *half);
/* Tops the reserve up (trueno_pool_refill): 0 when it is full, else the
 * error that stopped it (-ENOMEM, -ENOSPC at the memory limit). */
int pagepool_refill(struct pagepool *p);
/* Returns once a writer took the reserve below half (or found it empty),
 * else after ms (trueno_pool_wait_low). */
void pagepool_wait_low(struct pagepool *p, unsigned ms);
/* Bytes of chunk bookkeeping, for the stats. */
uint64_t pagepool_overhead(struct pagepool *p);

#endif
