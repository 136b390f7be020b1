/* A small cache of decoded groups (group.h), so that swap readahead and
 * sequential reads of a group's members decode its frame once.  Entries
 * are keyed by a group's serial (never reused), so an entry can never be
 * stale: a group's contents do not change, and a member that changed no
 * longer reads through its old group.  Its memory is charged to the
 * store's accounting when an entry is first filled; at the memory limit
 * reads decode into a buffer of their own instead.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_GCACHE_H
#define TRUENO_GCACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "memacct.h"

#define GCACHE_MAX 64u

struct gcache_entry {
  uint64_t serial; /* 0: empty, or being filled */
  uint64_t used;   /* the cache's clock at its last hit: LRU */
  int busy;        /* being filled by a decoder */
  uint8_t *data;
};

struct gcache {
  pthread_mutex_t lock;
  struct memacct *acct;
  unsigned n;          /* entries; 0 = no cache */
  size_t entry_bytes;  /* a whole group's pages */
  uint64_t clock;
  _Atomic uint64_t bytes, hits, misses;
  struct gcache_entry e[GCACHE_MAX];
};

void gcache_init(struct gcache *c, struct memacct *acct, unsigned n,
                 size_t entry_bytes);
void gcache_destroy(struct gcache *c);
/* Copies len bytes at off of the group serial into dst if cached: 1, else
 * 0 (a miss). */
int gcache_copy(struct gcache *c, uint64_t serial, size_t off, void *dst,
                size_t len);
/* An entry to decode into, taken from the others (the least recently
 * used one not being filled), or NULL (none free, or no memory for it). */
struct gcache_entry *gcache_claim(struct gcache *c);
/* Ends a claim: the entry now holds group serial (0: it holds nothing). */
void gcache_publish(struct gcache *c, struct gcache_entry *e,
                    uint64_t serial);

#endif
