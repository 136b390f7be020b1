/* Records in the heap or in cells of region pages (metaheap.h).
 * SPDX-License-Identifier: MIT */
#include "metaheap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MH_PAGE 4096u
#define MH_MAGIC 0x6d657461u /* "meta" */

struct mh_page {
  uint32_t magic;
  uint16_t cell;   /* bytes */
  uint16_t ncells; /* after the header */
  uint64_t used;   /* bit i: cell i holds a record */
  uint64_t epoch;  /* the attach that last marked it (meta_adopt) */
  struct mh_page *next, *prev; /* partial list, or the adopted chain */
  uint8_t pad[MH_CELL - 40];
};

_Static_assert(sizeof(struct mh_page) == MH_CELL, "a cell page's header");

void meta_init(struct metaheap *mh, struct memacct *acct,
               struct pagepool *pool, uint64_t epoch) {
  memset(mh, 0, sizeof *mh);
  mh->acct = acct;
  mh->pool = pool;
  mh->epoch = epoch;
  pthread_mutex_init(&mh->lock, NULL);
}

void meta_destroy(struct metaheap *mh) { pthread_mutex_destroy(&mh->lock); }

static unsigned class_of(size_t bytes) {
  return (unsigned)((bytes + MH_CELL - 1) / MH_CELL - 1);
}

static void list_add(struct mh_page **head, struct mh_page *pg) {
  pg->prev = NULL;
  pg->next = *head;
  if (*head)
    (*head)->prev = pg;
  *head = pg;
}

static void list_del(struct mh_page **head, struct mh_page *pg) {
  if (pg->prev)
    pg->prev->next = pg->next;
  else
    *head = pg->next;
  if (pg->next)
    pg->next->prev = pg->prev;
}

static uint64_t all_cells(const struct mh_page *pg) {
  return pg->ncells == 64 ? ~0ull : (1ull << pg->ncells) - 1;
}

int meta_alloc(struct metaheap *mh, size_t bytes, void **out) {
  if (!mh->pool) {
    int r = memacct_charge(mh->acct, bytes);
    if (r)
      return r;
    void *p = calloc(1, bytes);
    if (!p) {
      memacct_uncharge(mh->acct, bytes);
      return -ENOMEM;
    }
    *out = p;
    return 0;
  }
  unsigned k = class_of(bytes);
  if (k >= MH_CLASSES)
    return -EINVAL;
  pthread_mutex_lock(&mh->lock);
  struct mh_page *pg = mh->partial[k];
  if (!pg) {
    void *page;
    int r = pagepool_alloc(mh->pool, &page);
    if (r) {
      pthread_mutex_unlock(&mh->lock);
      return r;
    }
    pg = page;
    memset(pg, 0, sizeof *pg);
    pg->cell = (uint16_t)((k + 1) * MH_CELL);
    pg->ncells = (uint16_t)((MH_PAGE - MH_CELL) / pg->cell);
    pg->epoch = mh->epoch;
    pg->magic = MH_MAGIC; /* last: a half-made header is no cell page */
    list_add(&mh->partial[k], pg);
  }
  unsigned i = (unsigned)__builtin_ctzll(~pg->used);
  pg->used |= 1ull << i;
  if (pg->used == all_cells(pg))
    list_del(&mh->partial[k], pg);
  pthread_mutex_unlock(&mh->lock);
  uint8_t *rec = (uint8_t *)pg + MH_CELL + (size_t)i * pg->cell;
  memset(rec, 0, pg->cell);
  *out = rec;
  return 0;
}

static struct mh_page *page_of(const void *rec) {
  return (struct mh_page *)((uintptr_t)rec & ~(uintptr_t)(MH_PAGE - 1));
}

static unsigned cell_of(const struct mh_page *pg, const void *rec) {
  return (unsigned)(((const uint8_t *)rec - (const uint8_t *)pg - MH_CELL) /
                    pg->cell);
}

void meta_free(struct metaheap *mh, void *rec, size_t bytes) {
  if (!mh->pool) {
    free(rec);
    memacct_uncharge(mh->acct, bytes);
    return;
  }
  struct mh_page *pg = page_of(rec);
  unsigned k = class_of(bytes);
  pthread_mutex_lock(&mh->lock);
  int was_full = pg->used == all_cells(pg);
  pg->used &= ~(1ull << cell_of(pg, rec));
  if (pg->used == 0) {
    if (!was_full)
      list_del(&mh->partial[k], pg);
    pg->magic = 0;
    pagepool_free(mh->pool, pg);
  } else if (was_full) {
    list_add(&mh->partial[k], pg);
  }
  pthread_mutex_unlock(&mh->lock);
}

int meta_check(struct metaheap *mh, const void *rec, size_t bytes) {
  const struct mh_page *pg = page_of(rec);
  if (!mh->pool || !pagepool_owns(mh->pool, pg, MH_PAGE))
    return -EUCLEAN;
  size_t off = (size_t)((const uint8_t *)rec - (const uint8_t *)pg);
  unsigned k = class_of(bytes);
  if (pg->magic != MH_MAGIC || k >= MH_CLASSES ||
      pg->cell != (k + 1) * MH_CELL ||
      pg->ncells != (MH_PAGE - MH_CELL) / pg->cell || off < MH_CELL ||
      (off - MH_CELL) % pg->cell || cell_of(pg, rec) >= pg->ncells)
    return -EUCLEAN;
  return 0;
}

int meta_adopt(struct metaheap *mh, void *rec, size_t bytes) {
  int r = meta_check(mh, rec, bytes);
  if (r)
    return r;
  struct mh_page *pg = page_of(rec);
  if (pg->epoch != mh->epoch) {
    r = pagepool_adopt_page(mh->pool, pg);
    if (r)
      return r;
    pg->epoch = mh->epoch;
    pg->used = 0;
    pg->next = mh->adopted;
    mh->adopted = pg;
  }
  uint64_t bit = 1ull << cell_of(pg, rec);
  if (pg->used & bit)
    return -EUCLEAN;
  pg->used |= bit;
  return 0;
}

void meta_adopt_done(struct metaheap *mh) {
  struct mh_page *pg = mh->adopted, *next;
  for (; pg; pg = next) {
    next = pg->next;
    if (pg->used != all_cells(pg))
      list_add(&mh->partial[class_of(pg->cell)], pg);
  }
  mh->adopted = NULL;
}
