/* SPDX-License-Identifier: MIT */
#include "arena.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define PAGE 4096u
#define BLOCK PP_HALF /* zspages grow by half pages: see pagepool.h */
#define NCLASSES (ARENA_MAX_OBJ / ARENA_ALIGN)
#define MAX_ZSPAGE_PAGES 8u
#define FREE_END 0xffffu

struct zspage {
  LIST_ENTRY(zspage) link; /* on the class's partial list when not full */
  LIST_ENTRY(zspage) all;  /* on the class's list of every zspage */
  /* The class's index, not a pointer: a persistent store's descriptors
   * outlive the process (metaheap.h); the size follows from it. */
  uint8_t cls;
  uint16_t inuse;    /* objects allocated */
  uint16_t carved;   /* objects [0, carved) were handed out at least once */
  uint16_t freelist; /* first free object below carved, FREE_END if none */
  uint16_t nblocks;  /* blocks present: those reached by carved objects */
  uint8_t isolated;  /* a compaction source: off every list of the class but
                        the isolated one, gets no new objects */
  uint8_t *blocks[];
};

LIST_HEAD(zs_list, zspage);

struct size_class {
  pthread_mutex_t lock;
  uint32_t size;
  uint16_t pages_per_zspage;
  uint16_t objs_per_zspage;
  uint32_t footprint; /* bytes of pages an object takes in a full zspage */
  struct zs_list partial;  /* zspages with room */
  struct zs_list isolated; /* compaction sources */
  struct zs_list all;      /* every zspage, for compaction to look over */
};

struct arena {
  struct pagepool *pool;
  struct memacct *acct;
  struct metaheap *mh;
  _Atomic uint64_t meta_bytes;
  _Atomic uint64_t footprint; /* of the live objects: see arena_footprint */
  _Atomic int packing; /* a compaction is moving objects: see zspage_take */
  struct size_class classes[NCLASSES];
};

/* Fewest pages whose tail waste is near the best achievable, since a larger
 * zspage is less likely to ever empty and go back to the pool. */
static uint16_t pick_pages(uint32_t size) {
  uint32_t best = PAGE;
  for (uint32_t k = 1; k <= MAX_ZSPAGE_PAGES; k++) {
    uint32_t w = (k * PAGE % size) * PAGE / (k * PAGE); /* waste per page */
    if (w < best)
      best = w;
  }
  for (uint32_t k = 1; k <= MAX_ZSPAGE_PAGES; k++)
    if ((k * PAGE % size) * PAGE / (k * PAGE) <= best + PAGE / 256)
      return (uint16_t)k;
  return MAX_ZSPAGE_PAGES;
}

int arena_create(struct pagepool *pool, struct memacct *acct,
                 struct metaheap *mh, struct arena **out) {
  struct arena *a = calloc(1, sizeof *a);
  if (!a)
    return -ENOMEM;
  a->pool = pool;
  a->acct = acct;
  a->mh = mh;
  for (uint32_t i = 0; i < NCLASSES; i++) {
    struct size_class *c = &a->classes[i];
    pthread_mutex_init(&c->lock, NULL);
    LIST_INIT(&c->partial);
    LIST_INIT(&c->isolated);
    LIST_INIT(&c->all);
    c->size = (i + 1) * ARENA_ALIGN;
    c->pages_per_zspage = pick_pages(c->size);
    c->objs_per_zspage = (uint16_t)(c->pages_per_zspage * PAGE / c->size);
    c->footprint = c->pages_per_zspage * PAGE / c->objs_per_zspage;
  }
  *out = a;
  return 0;
}

void arena_destroy(struct arena *a) {
  for (uint32_t i = 0; i < NCLASSES; i++)
    pthread_mutex_destroy(&a->classes[i].lock);
  free(a);
}

static uint64_t handle_make(struct zspage *zs, uint16_t idx) {
  return ((uint64_t)(uintptr_t)zs << 16) | idx;
}

static struct zspage *handle_zspage(uint64_t h) {
  return (struct zspage *)(uintptr_t)(h >> 16);
}

static uint32_t zs_size(const struct zspage *zs) {
  return ((uint32_t)zs->cls + 1) * ARENA_ALIGN;
}

static struct size_class *zs_class(struct arena *a, const struct zspage *zs) {
  return &a->classes[zs->cls];
}

static uint8_t *obj_at(struct zspage *zs, uint32_t off) {
  return zs->blocks[off / BLOCK] + off % BLOCK;
}

/* Objects straddle blocks (up to three for the largest class): these copy
 * between an object and a flat buffer, block by block. */
static size_t block_run(uint32_t off, size_t len) {
  size_t n = BLOCK - off % BLOCK;
  return n < len ? n : len;
}

static void obj_write(struct zspage *zs, uint32_t off, const uint8_t *src,
                      size_t len) {
  for (size_t n; len; off += (uint32_t)n, src += n, len -= n)
    memcpy(obj_at(zs, off), src, n = block_run(off, len));
}

static void obj_read(struct zspage *zs, uint32_t off, uint8_t *dst,
                     size_t len) {
  for (size_t n; len; off += (uint32_t)n, dst += n, len -= n)
    memcpy(dst, obj_at(zs, off), n = block_run(off, len));
}

/* The list a zspage is on: isolated, partial (has room), or none (full). */
static struct zs_list *list_of(struct size_class *c, struct zspage *zs) {
  if (zs->isolated)
    return &c->isolated;
  return zs->inuse < c->objs_per_zspage ? &c->partial : NULL;
}

static size_t zspage_bytes(const struct size_class *c) {
  return sizeof(struct zspage) +
         c->pages_per_zspage * (PAGE / BLOCK) * sizeof(uint8_t *);
}

static void zspage_release(struct arena *a, struct zspage *zs) {
  LIST_REMOVE(zs, all);
  for (uint16_t i = 0; i < zs->nblocks; i++)
    pagepool_free_half(a->pool, zs->blocks[i]);
  size_t bytes = zspage_bytes(zs_class(a, zs));
  meta_free(a->mh, zs, bytes);
  atomic_fetch_sub_explicit(&a->meta_bytes, bytes, memory_order_relaxed);
}

static int zspage_new(struct arena *a, struct size_class *c,
                      struct zspage **out) {
  size_t bytes = zspage_bytes(c);
  struct zspage *zs;
  int r = meta_alloc(a->mh, bytes, (void **)&zs);
  if (r)
    return r;
  /* Handles keep the pointer in 48 bits; user space addresses fit. */
  if ((uintptr_t)zs >> 48) {
    meta_free(a->mh, zs, bytes);
    return -ENOMEM;
  }
  atomic_fetch_add_explicit(&a->meta_bytes, bytes, memory_order_relaxed);
  zs->cls = (uint8_t)(c - a->classes);
  zs->freelist = FREE_END;
  LIST_INSERT_HEAD(&c->partial, zs, link);
  LIST_INSERT_HEAD(&c->all, zs, all);
  *out = zs;
  return 0;
}

/* Takes a free object index from zs; caller holds the class lock. */
static int zspage_take(struct arena *a, struct zspage *zs, uint16_t *idx) {
  struct size_class *c = zs_class(a, zs);
  if (zs->freelist != FREE_END) {
    *idx = zs->freelist;
    /* The link lives in the free object's first two bytes; objects start on
     * ARENA_ALIGN boundaries, so those never straddle a page. */
    memcpy(&zs->freelist, obj_at(zs, (uint32_t)*idx * c->size), 2);
    return 0;
  }
  uint32_t end = ((uint32_t)zs->carved + 1) * c->size;
  while ((uint32_t)zs->nblocks * BLOCK < end) {
    void *blk;
    int r = pagepool_alloc_half(
        a->pool, zs->nblocks ? zs->blocks[zs->nblocks - 1] : NULL,
        atomic_load_explicit(&a->packing, memory_order_relaxed), &blk);
    if (r)
      return r;
    zs->blocks[zs->nblocks++] = blk;
  }
  *idx = zs->carved++;
  return 0;
}

int arena_store(struct arena *a, const void *data, size_t len,
                uint64_t *handle) {
  if (len == 0 || len > ARENA_MAX_OBJ)
    return -EINVAL;
  struct size_class *c = &a->classes[arena_class_size(len) / ARENA_ALIGN - 1];
  pthread_mutex_lock(&c->lock);
  struct zspage *zs = LIST_FIRST(&c->partial);
  int r = 0;
  if (!zs)
    r = zspage_new(a, c, &zs);
  uint16_t idx = 0;
  if (!r)
    r = zspage_take(a, zs, &idx);
  if (r) {
    if (zs && zs->inuse == 0) {
      LIST_REMOVE(zs, link);
      zspage_release(a, zs);
    }
    pthread_mutex_unlock(&c->lock);
    return r;
  }
  if (++zs->inuse == c->objs_per_zspage)
    LIST_REMOVE(zs, link);
  pthread_mutex_unlock(&c->lock);
  atomic_fetch_add_explicit(&a->footprint, c->footprint, memory_order_relaxed);

  /* The object is ours alone until the handle is published: copy unlocked. */
  obj_write(zs, (uint32_t)idx * c->size, data, len);
  *handle = handle_make(zs, idx);
  return 0;
}

int arena_fits(uint64_t handle, size_t len) {
  uint32_t size = zs_size(handle_zspage(handle));
  return len <= size && len + ARENA_ALIGN > size;
}

void arena_overwrite(uint64_t handle, const void *data, size_t len) {
  struct zspage *zs = handle_zspage(handle);
  obj_write(zs, (uint32_t)(handle & 0xffff) * zs_size(zs), data, len);
}

const void *arena_view(uint64_t handle, size_t len, void *bounce) {
  struct zspage *zs = handle_zspage(handle);
  uint32_t off = (uint32_t)(handle & 0xffff) * zs_size(zs);
  if (off % BLOCK + len <= BLOCK)
    return obj_at(zs, off);
  obj_read(zs, off, bounce, len);
  return bounce;
}

void arena_free(struct arena *a, uint64_t handle) {
  struct zspage *zs = handle_zspage(handle);
  struct size_class *c = zs_class(a, zs);
  uint16_t idx = (uint16_t)(handle & 0xffff);
  pthread_mutex_lock(&c->lock);
  memcpy(obj_at(zs, (uint32_t)idx * c->size), &zs->freelist, 2);
  zs->freelist = idx;
  struct zs_list *before = list_of(c, zs);
  zs->inuse--;
  struct zs_list *after = zs->inuse ? list_of(c, zs) : NULL;
  if (before != after) {
    if (before)
      LIST_REMOVE(zs, link);
    if (after)
      LIST_INSERT_HEAD(after, zs, link);
  }
  if (zs->inuse == 0)
    zspage_release(a, zs);
  pthread_mutex_unlock(&c->lock);
  atomic_fetch_sub_explicit(&a->footprint, c->footprint, memory_order_relaxed);
}

uint64_t arena_metadata_bytes(struct arena *a) {
  return atomic_load_explicit(&a->meta_bytes, memory_order_relaxed);
}

uint64_t arena_footprint(struct arena *a) {
  return atomic_load_explicit(&a->footprint, memory_order_relaxed);
}


/* Of zs's blocks: how many sit alone on their page, and how many pages
 * hold two of them. */
static void block_pairing(struct arena *a, const struct zspage *zs,
                          unsigned *alone, unsigned *pairs) {
  *alone = *pairs = 0;
  for (uint16_t i = 0; i < zs->nblocks; i++) {
    if (pagepool_half_alone(a->pool, zs->blocks[i])) {
      ++*alone;
      continue;
    }
    uint8_t *sib = (uint8_t *)((uintptr_t)zs->blocks[i] ^ PP_HALF);
    for (uint16_t j = i + 1; j < zs->nblocks; j++)
      *pairs += zs->blocks[j] == sib;
  }
}

/* Page-level fragmentation: blocks are half pages, and a page stays
 * charged while either half is in use.  After many frees (a store that
 * shrinks, pages recompressed into smaller classes) many pages are held by
 * one lone half each, which moving objects between zspages of a class does
 * not fix.  A zspage with an eighth or more of its blocks alone on their
 * page becomes a source too: its objects go to blocks packed into fresh
 * pages, and its blocks' pages come free, within *budget bytes of objects.
 * Not one packed already (all its blocks paired on their pages but maybe
 * the last): a copy would be the same, and a settled store would move on
 * every pass, for nothing.
 * So does a zspage that frees more pages (its lone blocks, and pages both
 * of whose halves it holds) than its objects take: one too sparse for the
 * class's other zspages to take in, which the class rule leaves: stores
 * that shrank by trims give back much more memory with it
 * (docs/housekeeping.md).
 * Caller holds the class lock. */
static size_t isolate_lonely(struct arena *a, struct size_class *c,
                             uint64_t *budget) {
  size_t n = 0;
  struct zspage *zs;
  LIST_FOREACH(zs, &c->all, all) {
    uint64_t bytes = (uint64_t)zs->inuse * c->size;
    if (zs->isolated || !zs->nblocks || bytes > *budget)
      continue;
    unsigned alone, pairs;
    block_pairing(a, zs, &alone, &pairs);
    int lonely = alone * 8 >= zs->nblocks && zs->nblocks - 2 * pairs > 1;
    if (!lonely && alone + pairs <= (bytes + PAGE - 1) / PAGE)
      continue;
    if (list_of(c, zs))
      LIST_REMOVE(zs, link);
    zs->isolated = 1;
    LIST_INSERT_HEAD(&c->isolated, zs, link);
    *budget -= bytes;
    n++;
  }
  return n;
}

/* Compaction.  Within each class, the emptiest partial zspages become
 * sources while the other partial zspages have room for all their objects;
 * the caller moves every object of a source (arena_store of a copy, then
 * arena_free of the old handle), which empties the sources and gives their
 * blocks back.  Sources get no new objects while isolated. */
size_t arena_compact_begin(struct arena *a) {
  size_t nsrc = 0;
  /* Moving a lonely zspage's objects takes fresh pages before its own come
   * free (they do when its last object leaves).  With a pool reserve (swap)
   * those pages come from the writers' reserve: a pass moves at most a
   * quarter of it. */
  uint64_t budget = a->pool->reserve_chunks
                        ? (uint64_t)a->pool->reserve_chunks * PP_CHUNK_BYTES / 4
                        : UINT64_MAX;
  for (uint32_t i = 0; i < NCLASSES; i++) {
    struct size_class *c = &a->classes[i];
    pthread_mutex_lock(&c->lock);
    for (;;) {
      /* Room left in the other partial zspages, and the emptiest one.  The
       * sources' own objects are not subtracted: those that find no room
       * go to fresh, densely filled zspages, which still packs the class. */
      uint32_t room = 0;
      struct zspage *emptiest = NULL, *zs;
      LIST_FOREACH(zs, &c->partial, link) {
        room += c->objs_per_zspage - zs->inuse;
        if (!emptiest || zs->inuse < emptiest->inuse)
          emptiest = zs;
      }
      if (!emptiest || (LIST_FIRST(&c->partial) == emptiest &&
                        !LIST_NEXT(emptiest, link)))
        break; /* fewer than two partial zspages: nothing to gain */
      room -= c->objs_per_zspage - emptiest->inuse;
      if (emptiest->inuse > room)
        break;
      LIST_REMOVE(emptiest, link);
      emptiest->isolated = 1;
      LIST_INSERT_HEAD(&c->isolated, emptiest, link);
      nsrc++;
    }
    nsrc += isolate_lonely(a, c, &budget);
    pthread_mutex_unlock(&c->lock);
  }
  /* Objects moved now go to whole fresh pages, not to other lone halves. */
  atomic_store(&a->packing, nsrc > 0);
  return nsrc;
}

int arena_is_isolated(uint64_t handle) {
  /* Set and cleared only between begin and end, which the caller orders
   * around its reads of slots. */
  return handle_zspage(handle)->isolated;
}

void arena_compact_end(struct arena *a) {
  for (uint32_t i = 0; i < NCLASSES; i++) {
    struct size_class *c = &a->classes[i];
    pthread_mutex_lock(&c->lock);
    while (!LIST_EMPTY(&c->isolated)) {
      struct zspage *zs = LIST_FIRST(&c->isolated);
      LIST_REMOVE(zs, link);
      zs->isolated = 0;
      struct zs_list *l = list_of(c, zs); /* a full one is on no list */
      if (l)
        LIST_INSERT_HEAD(l, zs, link);
    }
    pthread_mutex_unlock(&c->lock);
  }
  atomic_store(&a->packing, 0);
}

/* ---- attach ---- */

uint64_t arena_layout(void) {
  return (uint64_t)sizeof(struct zspage) << 32 | MAX_ZSPAGE_PAGES << 16 |
         NCLASSES;
}

int arena_adopt_check(struct arena *a, uint64_t handle, size_t len) {
  struct zspage *zs = handle_zspage(handle);
  if (!pagepool_owns(a->pool, zs, sizeof(void *)) ||
      (uintptr_t)zs % PAGE + sizeof *zs > PAGE || zs->cls >= NCLASSES)
    return -EUCLEAN;
  struct size_class *c = zs_class(a, zs);
  if (meta_check(a->mh, zs, zspage_bytes(c)) ||
      (handle & 0xffff) >= c->objs_per_zspage || len == 0 ||
      len > ARENA_MAX_OBJ || arena_class_size(len) != c->size)
    return -EUCLEAN;
  return 0;
}

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return a < b ? -1 : a > b;
}

/* One zspage's live objects, idx[0..n) ascending: its blocks and record
 * marked in use, its counts and free list made again. */
static int adopt_zspage(struct arena *a, struct zspage *zs,
                        const uint64_t *h, size_t n) {
  struct size_class *c = zs_class(a, zs);
  uint16_t carved = (uint16_t)((h[n - 1] & 0xffff) + 1);
  uint32_t need = ((uint32_t)carved * c->size + BLOCK - 1) / BLOCK;
  if (zs->nblocks < need ||
      zs->nblocks > c->pages_per_zspage * (PAGE / BLOCK))
    return -EUCLEAN;
  for (uint32_t b = 0; b < need; b++) {
    int r = pagepool_adopt_half(a->pool, zs->blocks[b]);
    if (r)
      return r;
  }
  int r = meta_adopt(a->mh, zs, zspage_bytes(c));
  if (r)
    return r;
  zs->nblocks = (uint16_t)need; /* blocks past the live objects: free */
  zs->carved = carved;
  zs->inuse = (uint16_t)n;
  zs->isolated = 0;
  zs->freelist = FREE_END;
  size_t k = n;
  for (int idx = carved - 1; idx >= 0; idx--) {
    if (k && (h[k - 1] & 0xffff) == (uint64_t)idx) {
      k--;
      continue;
    }
    memcpy(obj_at(zs, (uint32_t)idx * c->size), &zs->freelist, 2);
    zs->freelist = (uint16_t)idx;
  }
  LIST_INSERT_HEAD(&c->all, zs, all);
  if (zs->inuse < c->objs_per_zspage)
    LIST_INSERT_HEAD(&c->partial, zs, link);
  atomic_fetch_add(&a->meta_bytes, zspage_bytes(c));
  atomic_fetch_add(&a->footprint, (uint64_t)n * c->footprint);
  return 0;
}

int arena_adopt(struct arena *a, uint64_t *handles, size_t n) {
  if (n)
    qsort(handles, n, sizeof *handles, cmp_u64);
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && handles[j] >> 16 == handles[i] >> 16) {
      if (handles[j] == handles[j - 1])
        return -EUCLEAN; /* two pages, one object */
      j++;
    }
    int r = adopt_zspage(a, handle_zspage(handles[i]), handles + i, j - i);
    if (r)
      return r;
    i = j;
  }
  return 0;
}
