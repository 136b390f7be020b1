/* The one home of the code that changes a slot: installing a page's new
 * value, releasing the old payload, decoding what a slot holds, moving a
 * payload for compaction.  Everything that changes a slot (the I/O paths,
 * the batch path, compaction, recompression) goes through here, so the
 * accounting (store_counters_move) and the payload's lifetime cannot drift
 * from the slots.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_SLOT_H
#define TRUENO_SLOT_H

#include <pthread.h>
#include <time.h>

#include "slots.h"

struct trueno_store;
struct workspace;

/* Writes the page a slot holds into page; caller holds the slot's lock. */
int slot_decode(struct trueno_store *st, struct workspace *ws,
                const struct slot *s, void *page);
/* Notes a read of a locked slot (many readers may do so at once). */
void slot_stamp_read(struct trueno_store *st, struct slot *s);
/* Replaces a locked slot's value and accounts for the transition; *old
 * gets the value it had (its payload is the caller's to release). */
void slot_swap(struct trueno_store *st, struct slot *s,
               const struct slot *next, struct slot *old);
/* Frees a slot's payload; the slot must already be unreachable. */
void slot_release(struct trueno_store *st, const struct slot *s);

/* Puts next (a page's classification: its payload at payload, the page
 * itself at page) into the locked slot s, overwriting the old payload in
 * place when it has the same size class, else storing a new one.  *old
 * gets what the caller must release once the lock is dropped.  -EAGAIN:
 * the pool's reserve is used up (see slot_reserve_wait). */
int slot_install(struct trueno_store *st, const void *payload, struct slot *s,
                 const void *page, struct slot *next, struct slot *old);
/* slot_install under the page's write lock l, waiting for the reserve
 * outside it as long as that gives memory back.  For a whole new page
 * only: a read-modify-write must read the page again after a wait. */
int slot_install_locked(struct trueno_store *st, pthread_rwlock_t *l,
                        const void *payload, struct slot *s, const void *page,
                        struct slot *next, struct slot *old);
/* After an install returned -EAGAIN: waits, holding no lock, for the
 * reserve's refill or pages freed meanwhile.  *deadline starts zeroed and
 * is set on the first wait.  0: try again; else -ENOMEM. */
int slot_reserve_wait(struct trueno_store *st, struct timespec *deadline);

/* Compaction: moves the payload of page idx (its slot s) out of an
 * isolated zspage.  0 (moved or nothing to move), or -ENOSPC and the like
 * when a copy cannot be stored (the page keeps its payload). */
int slot_compact(struct trueno_store *st, struct workspace *ws, uint64_t idx,
                 struct slot *s);

/* Cold groups (group.h).  A slot someone looked at (seen) is unchanged
 * when it holds the same value and, for a page, still has the flag
 * SLOT_RECOMPRESSED the looker set under the lock: every write clears it,
 * so an in-place overwrite (same handle) is seen too. */
struct group;
int slot_unchanged(const struct slot *s, const struct slot *seen);
/* Makes page idx member pos of g if its slot is unchanged since seen, and
 * releases its old value: 1; else g loses that member: 0. */
int slot_join_group(struct trueno_store *st, uint64_t idx,
                    const struct slot *seen, struct group *g, unsigned pos);
/* Points member pos of from (page idx) to to, a copy of from: 1; if the
 * page is no longer that member, to loses it: 0.  Either way the member
 * is gone from one of them. */
int slot_move_member(struct trueno_store *st, uint64_t idx,
                     struct group *from, unsigned pos, struct group *to);
/* Installs next (see slot_install) in page idx if its slot is unchanged
 * since seen, keeping its stamp, and releases the old value: 1; 0 when it
 * changed; or a negative errno (nothing changed). */
int slot_replace_if(struct trueno_store *st, uint64_t idx,
                    const struct slot *seen, struct slot *next,
                    const void *payload, const void *page);

#endif
