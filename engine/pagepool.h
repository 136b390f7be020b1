/* A pool of 4 KiB pages carved from 2 MiB anonymous mappings.
 *
 * Why not malloc: the arena and raw pages need page-aligned 4 KiB blocks by
 * the million; glibc's aligned allocations waste up to a page each and never
 * give the memory back in the middle of the heap.  Here a freed page is
 * handed back to the kernel (MADV_DONTNEED) unless it is kept in a small
 * cache of resident pages for the next writer, and a chunk with no page in
 * use is unmapped.  Each page handed out is charged to the accounting.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_PAGEPOOL_H
#define TRUENO_PAGEPOOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "memacct.h"

struct pp_chunk;

struct pagepool {
  pthread_mutex_t lock;
  struct memacct *acct;
  struct pp_chunk *partial;  /* chunks with pages free in their bitmap */
  struct pp_chunk *spare;    /* one empty chunk kept to damp map/unmap churn */
  void *cache;               /* resident free pages, linked through page[0] */
  size_t ncache;
  uint64_t nchunks;
  _Atomic uint64_t pages_out; /* pages handed out now */
};

int pagepool_init(struct pagepool *p, struct memacct *acct);
void pagepool_destroy(struct pagepool *p);
/* One 4 KiB page of undefined contents; -ENOSPC at the limit, -ENOMEM when
 * the kernel refuses memory. */
int pagepool_alloc(struct pagepool *p, void **page);
void pagepool_free(struct pagepool *p, void *page);
/* Bytes of mappings the pool holds that are not charged as pages handed out:
 * chunk headers, for the stats. */
uint64_t pagepool_overhead(struct pagepool *p);

#endif
