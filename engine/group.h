/* Cold groups: up to GROUP_MAX_PAGES idle pages of one aligned window of
 * the device compressed together as one zstd frame.  Compressing pages
 * together finds the matches between them that per-page compression cannot
 * (see docs/cold-groups.md); reading a member decodes the frame, so groups
 * are for pages that are rarely read: the cold rung of the ladder lz4 on
 * write (hot), per-page recompression of idle pages (warm), groups (cold).
 *
 * A member's slot is SLOT_GROUP: val points to the group, len is the
 * member's position in the frame.  A group is immutable once made: a
 * member that is written, trimmed or zeroed leaves it (its slot gets the
 * new value, the group one live member less); the group is freed with its
 * last reference.  Its frame lives in the arena as a chain of objects
 * (GROUP_CHUNK bytes each but the last), so the arena's classes, the
 * memory limit and compaction serve frames as they serve pages.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_GROUP_H
#define TRUENO_GROUP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "trueno.h"

#define GROUP_MAX_PAGES 64u
#define GROUP_CHUNK ARENA_MAX_OBJ

struct trueno_store;
struct workspace;

struct group {
  /* Names the frame's contents: the decoded-group cache's key.  Never
   * reused; a group moved by compaction keeps it (same contents). */
  uint64_t serial;
  /* References: live members (slots that point here) and holders (the
   * code making or moving it).  The last one frees the group. */
  _Atomic uint32_t refs;
  _Atomic uint32_t live;
  uint32_t frame_len;   /* compressed bytes */
  uint16_t nmembers;    /* pages in the frame */
  uint16_t nchunks;
  uint64_t base;        /* the first page of its window */
  uint64_t mask;        /* members: bit i is page base + i, in frame order */
  _Atomic uint64_t dead; /* frame bytes charged to members that left */
  uint64_t chunks[];    /* arena handles */
};

/* Arena objects a frame of len bytes takes. */
static inline unsigned group_chunks_for(size_t len) {
  return (unsigned)((len + GROUP_CHUNK - 1) / GROUP_CHUNK);
}
/* Bytes a group of nchunks takes outside the arena (its record). */
static inline size_t group_record_bytes(unsigned nchunks) {
  return sizeof(struct group) + nchunks * sizeof(uint64_t);
}
/* What a frame of len bytes costs the store: its arena classes and its
 * record. */
size_t group_cost(size_t len);

/* Stores frame (len bytes, the members' pages in order) as a new group of
 * the pages base + each set bit of mask, with one reference (the maker's)
 * per member plus one; the maker installs the members and drops its own
 * (group_put) when done.  -ENOSPC / -ENOMEM / -EAGAIN (the pool's reserve:
 * the writers'): nothing is kept. */
int group_make(struct trueno_store *st, const void *frame, size_t len,
               uint64_t base, uint64_t mask, struct group **out);
/* A member of g left it, or was never installed: g loses one live member
 * and one reference. */
void group_member_gone(struct trueno_store *st, struct group *g);
/* Drops a reference that is not a member's (the maker's, a mover's). */
void group_put(struct trueno_store *st, struct group *g);
/* Takes a holder's reference (under a member's slot lock). */
void group_get(struct group *g);

/* Member pos of g into page (caller holds the member's slot lock): from
 * the cache of decoded groups, else by decoding the frame.  -EIO when the
 * frame is damaged. */
int group_read(struct trueno_store *st, struct workspace *ws,
               struct group *g, unsigned pos, void *page);
/* Decodes g's whole frame into out (nmembers pages). */
int group_decode(struct workspace *ws, const struct group *g, void *out);

/* True when a chunk of g sits in a zspage compaction isolated. */
int group_isolated(const struct group *g);
/* Compaction: copies g's frame into fresh arena objects as a new group
 * (same serial) and moves every member still in g to it, each under its
 * slot lock.  The caller holds a reference on g.  0 or a negative errno
 * (then nothing moved). */
int group_move(struct trueno_store *st, struct workspace *ws,
               struct group *g);

#endif
