/* The decoded-group cache (gcache.h).
 * SPDX-License-Identifier: MIT */
#include "gcache.h"

#include <stdlib.h>
#include <string.h>

void gcache_init(struct gcache *c, struct memacct *acct, unsigned n,
                 size_t entry_bytes) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->lock, NULL);
  c->acct = acct;
  c->n = n < GCACHE_MAX ? n : GCACHE_MAX;
  c->entry_bytes = entry_bytes;
}

void gcache_destroy(struct gcache *c) {
  for (unsigned i = 0; i < c->n; i++)
    if (c->e[i].data) {
      free(c->e[i].data);
      memacct_uncharge(c->acct, c->entry_bytes);
    }
  pthread_mutex_destroy(&c->lock);
}

int gcache_copy(struct gcache *c, uint64_t serial, size_t off, void *dst,
                size_t len) {
  int hit = 0;
  pthread_mutex_lock(&c->lock);
  for (unsigned i = 0; i < c->n; i++) {
    struct gcache_entry *e = &c->e[i];
    if (e->serial == serial && !e->busy) {
      memcpy(dst, e->data + off, len);
      e->used = ++c->clock;
      hit = 1;
      break;
    }
  }
  pthread_mutex_unlock(&c->lock);
  atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1,
                            memory_order_relaxed);
  return hit;
}

struct gcache_entry *gcache_claim(struct gcache *c) {
  struct gcache_entry *best = NULL;
  pthread_mutex_lock(&c->lock);
  for (unsigned i = 0; i < c->n; i++) {
    struct gcache_entry *e = &c->e[i];
    if (!e->busy && (!best || e->used < best->used))
      best = e;
  }
  if (best) {
    best->busy = 1;
    best->serial = 0;
  }
  pthread_mutex_unlock(&c->lock);
  if (best && !best->data) {
    /* Filled outside the lock: the charge and malloc may be slow. */
    if (memacct_charge(c->acct, c->entry_bytes) == 0) {
      best->data = malloc(c->entry_bytes);
      if (best->data)
        atomic_fetch_add(&c->bytes, c->entry_bytes);
      else
        memacct_uncharge(c->acct, c->entry_bytes);
    }
    if (!best->data) {
      gcache_publish(c, best, 0);
      best = NULL;
    }
  }
  return best;
}

void gcache_publish(struct gcache *c, struct gcache_entry *e,
                    uint64_t serial) {
  pthread_mutex_lock(&c->lock);
  e->serial = serial;
  e->busy = 0;
  e->used = ++c->clock;
  pthread_mutex_unlock(&c->lock);
}
