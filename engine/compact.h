/* The compaction driver: passes that move the payloads of sparsely used
 * zspages (arena_compact_begin's picks) so their pages go back.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_COMPACT_H
#define TRUENO_COMPACT_H

#include <stdint.h>

struct trueno_store;

/* Emptying zspages that held lone half pages leaves other halves alone on
 * their pages: it can take several passes to converge, and the first ones
 * may free nothing (their objects move into fresh pages as fast as they
 * free others).  Passes go on while they find sources, up to this. */
#define COMPACT_PASSES 6

/* Up to passes passes, one compaction at a time; stops at one that finds
 * nothing to move (*none set) or fails.  0 or a negative errno. */
int compact_passes(struct trueno_store *st, int passes, int *none);
/* Bytes of the arena's pages beyond what its objects would take packed
 * (arena_footprint): what compaction can give back.  *ideal: that least. */
uint64_t compact_waste(struct trueno_store *st, uint64_t *ideal);

#endif
