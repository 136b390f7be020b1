/* The region: a store's whole persistent state in one shared-memory file
 * (a memfd), mapped MAP_SHARED at the same address in every process that
 * attaches to it, so the engine's pointers stay valid across processes
 * (docs/persistence.md).
 *
 * Layout, each part page-aligned:
 *   header      magic, format version, layout fingerprint, the store's
 *               persistent settings, the address; checksummed; the
 *               store's counters in the page's second half
 *   intents     one record per lock stripe: the slot being written
 *   slot top    the slot table's chunk pointers (slots.h)
 *   slots       every slot chunk at a fixed place, used when published
 *   pool area   2 MiB chunks handed out by the page pool (pagepool.h)
 *
 * Nothing here is process-wide: a process may hold several regions.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_REGION_H
#define TRUENO_REGION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "slots.h"

#define REGION_MAGIC "TRUENOST"
/* Bump on any change of what the region holds or how (the layout
 * fingerprint catches changed structure sizes and constants too). */
#define REGION_VERSION 2u

/* A slot change in progress (slot_swap): idx1 is the page index plus one
 * while the slot may be half written, 0 otherwise. */
struct region_intent {
  _Atomic uint64_t idx1;
  uint64_t pad;
  struct slot next;
};

struct region_hdr {
  char magic[8];
  uint32_t version;
  uint32_t hdr_bytes;
  uint64_t layout; /* fingerprint of structure sizes and constants */
  uint64_t base;   /* the address every process maps it at */
  uint64_t len;
  uint64_t size;      /* device bytes */
  uint32_t algorithm; /* enum trueno_algorithm */
  uint32_t nstripes;
  uint64_t npages;
  uint64_t intents_off, top_off, slots_off, pool_off, pool_chunks;
  uint64_t check; /* FNV-1a of every byte before it */
  /* Not checksummed: rewritten at each attach (a kill between two header
   * stores must not make the state unreadable). */
  _Atomic uint64_t generation;
};

/* The header page's second half: the store's counters (store_stats.h),
 * moved in place by every request, so not checksummed. */
#define REGION_COUNTERS_OFF 2048u
#define REGION_COUNTERS_BYTES 2048u

struct region {
  uint8_t *base;
  size_t len;
  int fd; /* our own duplicate of the caller's */
  struct region_hdr *hdr;
  void *counters; /* REGION_COUNTERS_BYTES at REGION_COUNTERS_OFF */
  struct region_intent *intents;
  _Atomic(struct slot *) *top;
  struct slot *slots;
  uint8_t *pool;
  uint64_t pool_chunks;
};

/* What a region is made for, and must match at attach. */
struct region_params {
  uint64_t size; /* device bytes */
  int algorithm;
  uint32_t nstripes;
  uint64_t layout; /* the engine's structure sizes and constants */
};

/* Makes a fresh region in fd (emptied first).  -EINVAL, -ENOMEM, or the
 * errno of the failing call. */
int region_create(int fd, const struct region_params *p, struct region *rg);
/* Maps the region fd holds, checking its header against p; on failure why
 * (why_len bytes) says what is wrong: -EINVAL (not a state, another
 * format, a setting that differs), -EUCLEAN (damaged), -EBUSY (its
 * address is taken in this process). */
int region_attach(int fd, const struct region_params *p, struct region *rg,
                  char *why, size_t why_len);
/* Unmaps; the state stays in the file. */
void region_detach(struct region *rg);
/* Unmaps and empties the file: nothing is left to attach. */
void region_drop(struct region *rg);
/* Gives the memory of [addr, addr + len) back (FALLOC_FL_PUNCH_HOLE: it
 * reads as zeros after). */
void region_punch(struct region *rg, void *addr, size_t len);
/* Bytes of the header and the intent records: charged to the store. */
uint64_t region_fixed_bytes(const struct region *rg);

#endif
