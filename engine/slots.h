/* The slot table: one 16-byte slot per 4 KiB page of the device.
 *
 * Slots live in chunks of SLOTS_PER_CHUNK, allocated the first time a page
 * in the chunk is written, so a huge sparse device pays only for the top
 * array (8 bytes per 2 MiB of device) until it is used.  A slot's contents
 * are protected by the store's stripe lock for its page; the chunk pointers
 * are published with compare-and-swap and never freed before the table.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_SLOTS_H
#define TRUENO_SLOTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "memacct.h"

enum slot_type {
  SLOT_EMPTY = 0, /* never written or released: reads as zeros */
  SLOT_SAME,      /* val is the word repeated over the page */
  SLOT_COMP,      /* val is an arena handle, len bytes of codec alg */
  SLOT_RAW,       /* val is a pool page holding the page as is */
  SLOT_GROUP,     /* val is a cold group (group.h), len the position */
};

struct slot {
  uint64_t val;
  uint16_t len;  /* payload bytes: compressed length, 4096 for raw; for
                    a group member, its position in the group */
  uint8_t type;  /* enum slot_type */
  uint8_t alg;   /* enum trueno_algorithm, for SLOT_COMP */
  /* The store's clock (seconds) at the page's last read or write, and
   * SLOT_RECOMPRESSED once the idle-page recompressor has been over it
   * (kept or not worth it: it is not tried again until the next write).
   * Readers update it under the read lock, with atomic accesses. */
  uint32_t stamp;
};

#define SLOT_TICK_MASK 0x7fffffffu
#define SLOT_RECOMPRESSED 0x80000000u

_Static_assert(sizeof(struct slot) == 16, "slot metadata budget is 16 bytes");

#define SLOTS_PER_CHUNK 512u

struct slot_table {
  uint64_t npages;
  uint64_t nchunks;
  _Atomic(struct slot *) *chunks;
  /* A persistent store's slots (region.h): chunk i is always at fixed + i *
   * SLOTS_PER_CHUNK, the top array lives in the region too, and neither is
   * ever freed.  NULL: chunks are calloc'd. */
  struct slot *fixed;
  struct memacct *acct;
  _Atomic uint64_t bytes; /* top array and chunks, for the stats */
};

int slots_init(struct slot_table *t, uint64_t npages, struct memacct *acct);
/* A table kept in a region: top (zeroed, or as a previous process left
 * it) and fixed, the chunks' home.  Charges the top array and, with adopt,
 * the chunks already published; -EUCLEAN (*bad: the chunk) when a top
 * entry is not where its chunk lives. */
int slots_init_fixed(struct slot_table *t, uint64_t npages,
                     struct memacct *acct, _Atomic(struct slot *) *top,
                     struct slot *fixed, int adopt, uint64_t *bad);
/* Frees the table; the caller has released every slot's payload. */
void slots_destroy(struct slot_table *t);
/* The slot of page idx, or NULL if its chunk was never allocated (a hole). */
static inline struct slot *slots_peek(struct slot_table *t, uint64_t idx) {
  struct slot *c = atomic_load_explicit(&t->chunks[idx / SLOTS_PER_CHUNK],
                                        memory_order_acquire);
  return c ? &c[idx % SLOTS_PER_CHUNK] : NULL;
}
/* The first page >= idx whose chunk is allocated, or npages: walks skip
 * the unallocated chunks of a huge sparse device whole. */
static inline uint64_t slots_next_used(struct slot_table *t, uint64_t idx) {
  while (idx < t->npages && !slots_peek(t, idx))
    idx = (idx / SLOTS_PER_CHUNK + 1) * SLOTS_PER_CHUNK;
  return idx < t->npages ? idx : t->npages;
}
/* The slot of page idx, allocating its chunk; -ENOSPC / -ENOMEM. */
int slots_get(struct slot_table *t, uint64_t idx, struct slot **out);
/* Allocates and touches every chunk not yet allocated; before any reader
 * or writer runs concurrently. */
int slots_populate(struct slot_table *t);

#endif
