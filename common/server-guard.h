/* What a server needs to survive being the kernel's block device (swap, or
 * a file system under memory pressure): shared by the nbdkit plugin
 * (swap=on) and trueno-ublk.  Each function returns 0 or a negative errno;
 * the caller says what failed, in its own way (nbdkit_error, stderr).
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_SERVER_GUARD_H
#define TRUENO_SERVER_GUARD_H

#include <stddef.h>

#include "trueno.h"

/* 16 MiB of pool memory kept mapped and resident ahead of the writes: the
 * store's pool_reserve (trueno.h) as swap. */
#define GUARD_POOL_RESERVE (16u << 20)
/* Heap grown and touched ahead for request buffers and bookkeeping. */
#define GUARD_HEAP_AHEAD (8u << 20)

/* PR_SET_IO_FLUSHER: our allocations never wait on I/O to a block device
 * (which may be us); inherited by threads and fork children. */
int guard_io_flusher(void);
/* oom_score_adj -1000: the OOM killer never picks us. */
int guard_oom_protect(void);
/* SCHED_RR priority 1 for the calling thread and the threads it creates
 * afterwards: a real-time task's allocations may use half of the kernel's
 * min-watermark reserve instead of waiting in reclaim. */
int guard_realtime(void);
/* mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT), plain MCL_FUTURE where the
 * kernel has no MCL_ONFAULT.  Call it in the process that serves (a fork
 * child does not inherit memory locks). */
int guard_lock_memory(void);
/* malloc tuned to keep what it has, heap grown and touched ahead: with the
 * store's pool reserve, serving a request then never faults in fresh
 * memory.  Process-wide (malloc is). */
void guard_keep_memory(void);
/* Touches the calling thread's stack (the top 128 KiB) so that, under
 * mlockall(MCL_ONFAULT), it is resident and locked before the thread
 * first serves a request while the kernel is short of memory. */
void guard_touch_stack(void);
/* The thread that keeps a store's pool reserve topped up: every 5 ms, and
 * at once when writers take it below half (it may wait for memory; the
 * writers do not).  One per store.  start: 0 and *out, or a negative
 * errno.  stop: joins and frees it (no-op on NULL); before the store is
 * destroyed. */
struct guard_refill;
int guard_refill_start(struct trueno_store *st, struct guard_refill **out);
void guard_refill_stop(struct guard_refill *g);

#endif
