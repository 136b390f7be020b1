/* SPDX-License-Identifier: MIT */
#include "slots.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (SLOTS_PER_CHUNK * sizeof(struct slot))

int slots_init(struct slot_table *t, uint64_t npages, struct memacct *acct) {
  t->npages = npages;
  t->nchunks = (npages + SLOTS_PER_CHUNK - 1) / SLOTS_PER_CHUNK;
  t->acct = acct;
  uint64_t top = t->nchunks * sizeof *t->chunks;
  int r = memacct_charge(acct, top);
  if (r)
    return r;
  t->chunks = calloc(t->nchunks, sizeof *t->chunks);
  if (!t->chunks) {
    memacct_uncharge(acct, top);
    return -ENOMEM;
  }
  atomic_init(&t->bytes, top);
  return 0;
}

int slots_init_fixed(struct slot_table *t, uint64_t npages,
                     struct memacct *acct, _Atomic(struct slot *) *top,
                     struct slot *fixed, int adopt, uint64_t *bad) {
  t->npages = npages;
  t->nchunks = (npages + SLOTS_PER_CHUNK - 1) / SLOTS_PER_CHUNK;
  t->acct = acct;
  t->chunks = top;
  t->fixed = fixed;
  uint64_t bytes = t->nchunks * sizeof *t->chunks;
  for (uint64_t i = 0; adopt && i < t->nchunks; i++) {
    struct slot *c = atomic_load(&top[i]);
    if (c && c != fixed + i * SLOTS_PER_CHUNK) {
      *bad = i;
      return -EUCLEAN;
    }
    bytes += c ? CHUNK_BYTES : 0;
  }
  /* The memory is there already: charged past the limit, if it must. */
  memacct_force(acct, bytes);
  atomic_init(&t->bytes, bytes);
  return 0;
}

void slots_destroy(struct slot_table *t) {
  if (t->fixed) {
    memacct_uncharge(t->acct, atomic_load(&t->bytes));
    return; /* the region's */
  }
  for (uint64_t i = 0; i < t->nchunks; i++) {
    struct slot *c = atomic_load(&t->chunks[i]);
    if (c) {
      free(c);
      memacct_uncharge(t->acct, CHUNK_BYTES);
    }
  }
  free(t->chunks);
  memacct_uncharge(t->acct, t->nchunks * sizeof *t->chunks);
}

int slots_get(struct slot_table *t, uint64_t idx, struct slot **out) {
  struct slot *s = slots_peek(t, idx);
  if (s) {
    *out = s;
    return 0;
  }
  int r = memacct_charge(t->acct, CHUNK_BYTES);
  if (r)
    return r;
  struct slot *fresh =
      t->fixed ? t->fixed + (idx / SLOTS_PER_CHUNK) * SLOTS_PER_CHUNK
               : calloc(SLOTS_PER_CHUNK, sizeof *fresh);
  if (!fresh) {
    memacct_uncharge(t->acct, CHUNK_BYTES);
    return -ENOMEM;
  }
  struct slot *expected = NULL;
  _Atomic(struct slot *) *cell = &t->chunks[idx / SLOTS_PER_CHUNK];
  if (atomic_compare_exchange_strong_explicit(cell, &expected, fresh,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
    atomic_fetch_add_explicit(&t->bytes, CHUNK_BYTES, memory_order_relaxed);
  } else {
    /* Another writer published the chunk first: use theirs. */
    if (!t->fixed)
      free(fresh);
    memacct_uncharge(t->acct, CHUNK_BYTES);
  }
  *out = slots_peek(t, idx);
  return 0;
}

int slots_populate(struct slot_table *t) {
  for (uint64_t i = 0; i < t->nchunks; i++) {
    if (slots_peek(t, i * SLOTS_PER_CHUNK))
      continue; /* in use: already resident, and its slots are not ours */
    struct slot *s;
    int r = slots_get(t, i * SLOTS_PER_CHUNK, &s);
    if (r)
      return r;
    /* calloc may hand out fresh heap without writing it: touch it, so the
     * chunk is resident (and locked, under mlockall) from now on.  Nobody
     * else uses the table yet, and a new chunk's slots are empty: zeros. */
    memset(s, 0, CHUNK_BYTES);
  }
  return 0;
}
