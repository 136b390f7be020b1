/* Where the arena's zspage descriptors live.
 *
 * Without persistence: the C heap, each record charged by its bytes (as
 * the arena always did).  In a persistent store: cells of pool pages in
 * the region, so the records outlive the process; the pool charges the
 * pages.  A cell page starts with a header (magic, cell size, which cells
 * are in use); at attach the walk marks the cells the slots reach and the
 * rest is free again (meta_adopt).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_METAHEAP_H
#define TRUENO_METAHEAP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "memacct.h"
#include "pagepool.h"

#define MH_CELL 64u
#define MH_CLASSES 16u /* cells of 64 .. 1024 bytes */

struct mh_page;

struct metaheap {
  struct memacct *acct;
  struct pagepool *pool; /* NULL: the C heap */
  pthread_mutex_t lock;
  struct mh_page *partial[MH_CLASSES]; /* pages with free cells */
  struct mh_page *adopted;             /* at attach: pages marked so far */
  uint64_t epoch;                      /* the attach's generation */
};

void meta_init(struct metaheap *mh, struct memacct *acct,
               struct pagepool *pool, uint64_t epoch);
void meta_destroy(struct metaheap *mh);
/* A zeroed record of bytes (<= MH_CLASSES * MH_CELL in a region); -ENOSPC,
 * -ENOMEM, -EAGAIN (the pool's reserve, see pagepool_alloc). */
int meta_alloc(struct metaheap *mh, size_t bytes, void **out);
void meta_free(struct metaheap *mh, void *rec, size_t bytes);

/* Attach.  check: 0 when rec is the start of a cell for bytes on a cell
 * page of the region's pool, else -EUCLEAN.  adopt: marks it in use (and
 * its page in the pool); -EUCLEAN if already marked or the page is the
 * pool's otherwise.  adopt_done: puts pages with free cells on the lists. */
int meta_check(struct metaheap *mh, const void *rec, size_t bytes);
int meta_adopt(struct metaheap *mh, void *rec, size_t bytes);
void meta_adopt_done(struct metaheap *mh);

#endif
