/* A size-class arena for compressed pages, in the spirit of zsmalloc.
 *
 * Objects of up to ARENA_MAX_OBJ bytes are rounded up to a multiple of
 * ARENA_ALIGN and packed into "zspages": up to 8 pages' worth of 2 KiB
 * blocks from the pool holding objects of one class back to back, objects
 * straddling block boundaries.  Blocks of a zspage are taken from the pool
 * only when the first object reaching them is carved, so a class's last,
 * partly filled zspage wastes at most one partly used block.  An empty
 * zspage goes back to the pool.
 *
 * A handle names an object; it stays valid until arena_free.  Reading an
 * object needs no lock (the caller's slot lock keeps it alive).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_ARENA_H
#define TRUENO_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "metaheap.h"
#include "pagepool.h"

#define ARENA_ALIGN 32u
#define ARENA_MAX_OBJ 3584u

struct arena;

/* Descriptors of zspages come from mh (metaheap.h). */
int arena_create(struct pagepool *pool, struct memacct *acct,
                 struct metaheap *mh, struct arena **out);
/* All objects must have been freed. */
void arena_destroy(struct arena *a);
/* Allocates an object of len (1..ARENA_MAX_OBJ) bytes holding a copy of data.
 * -ENOSPC at the memory limit, -ENOMEM when memory cannot be had. */
int arena_store(struct arena *a, const void *data, size_t len,
                uint64_t *handle);
/* The object's bytes, contiguous: a pointer into the arena, or bounce (of at
 * least len bytes) filled with a copy when the object straddles pages. */
const void *arena_view(uint64_t handle, size_t len, void *bounce);
void arena_free(struct arena *a, uint64_t handle);
/* The size of the class an object of len (1..ARENA_MAX_OBJ) bytes takes:
 * what it costs in the arena. */
static inline size_t arena_class_size(size_t len) {
  return (len + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}
/* True if len bytes belong in the handle's size class: then the object can
 * be overwritten in place (the caller excludes readers of it). */
int arena_fits(uint64_t handle, size_t len);
void arena_overwrite(uint64_t handle, const void *data, size_t len);
/* Compaction: begin picks sources (sparse zspages whose objects fit in the
 * class's other zspages) and returns how many; the caller then moves every
 * object whose handle arena_is_isolated reports (store a copy, repoint the
 * slot, free the old handle); end returns sources not emptied to service.
 * One compaction at a time. */
size_t arena_compact_begin(struct arena *a);
int arena_is_isolated(uint64_t handle);
void arena_compact_end(struct arena *a);
/* Bytes of pages the live objects would take packed into full zspages of
 * their classes: the least the arena can hold them in, what compaction
 * works towards.  The rest of its pages is waste: partly used zspages,
 * half pages alone on a page, a class's last zspage partly carved. */
uint64_t arena_footprint(struct arena *a);
/* Attach of a persistent store (metaheap.h, docs/persistence.md): check
 * says whether a slot's handle and length name an object of a zspage
 * record in the region (-EUCLEAN if not); adopt takes every live handle
 * (sorted here) and rebuilds the zspages, their lists and the accounting
 * from them, marking their blocks and records in use: -EUCLEAN when two
 * slots share an object or a zspage's blocks are not sane. */
/* What a persistent store's format depends on here (zspage records). */
uint64_t arena_layout(void);
int arena_adopt_check(struct arena *a, uint64_t handle, size_t len);
int arena_adopt(struct arena *a, uint64_t *handles, size_t n);
/* Bytes of zspage bookkeeping now allocated. */
uint64_t arena_metadata_bytes(struct arena *a);

#endif
