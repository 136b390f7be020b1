/* swap=on: the server must not deadlock or be OOM-killed while the kernel
 * swaps to it.
 *
 * - mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) after nbdkit forks into the
 *   background: nbdkit --swap locks memory before it forks, and locks are
 *   not inherited by a fork child, so the daemon would run unlocked.
 *   MCL_ONFAULT, because nbdkit has a 192 MiB .bss it barely touches: what
 *   is touched stays resident.  A fault while the kernel is out of memory
 *   waits for reclaim, reclaim waits for swap writes, and the swap writes
 *   wait for us: so what the write path needs is touched ahead (below).
 * - the program's and its libraries' file pages are faulted in and so
 *   locked too (pin-mappings.c): on a tmpfs root they could otherwise be
 *   swapped out to us, and the first run of a cold code path would wait
 *   for a read from ourselves.
 * - PR_SET_IO_FLUSHER: our own allocations never wait on I/O to a block
 *   device (which may be us), and writeback throttling is per-device.
 *   Inherited by every thread and by the daemonised child.
 * - oom_score_adj -1000: the OOM killer never picks us.
 * - SCHED_RR priority 1 for the threads that serve requests: the kernel
 *   gives a real-time task's allocations half of the min-watermark reserve
 *   (see swap_mode_after_fork).
 * - the engine's page pool keeps a reserve of mapped, pre-touched memory so
 *   a write never needs fresh memory from the kernel while the kernel is
 *   short of it; a thread of ours tops the reserve up every few ms (it may
 *   wait for memory; the writers do not).  A write that finds the reserve
 *   used up waits up to 200 ms for it, then fails with ENOMEM (an I/O
 *   error: the kernel keeps the page and writes it again later) instead of
 *   blocking on the kernel.
 * - malloc keeps what it has: request buffers come from the heap, never
 *   fresh mmaps, and the freed heap is not given back, so serving a request
 *   does not fault in new pages (under memory pressure each such fault can
 *   stall for 100 ms in reclaim that may not write to swap: the server then
 *   crawls and the kernel's nbd requests time out).  The heap is grown and
 *   touched ahead by GUARD_HEAP_AHEAD.
 *
 * The mechanisms live in common/server-guard.c (trueno-ublk uses them too);
 * here is what nbdkit needs: when to call them and how to report failure.
 *
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include "swap-mode.h"

#include <inttypes.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "pin-mappings.h"
#include "server-guard.h"

static int enabled;
static struct guard_refill *refill;

void swap_mode_set(bool on) { enabled = on; }

int swap_mode_enabled(void) { return enabled; }

void swap_mode_prepare(void) {
  if (enabled)
    guard_keep_memory();
}

int swap_mode_protect(void) {
  if (!enabled)
    return 0;
  int r = guard_io_flusher();
  if (r) {
    nbdkit_error("swap: prctl(PR_SET_IO_FLUSHER): %s (needs root or "
                 "CAP_SYS_RESOURCE, Linux >= 5.6)",
                 strerror(-r));
    return -1;
  }
  r = guard_oom_protect();
  if (r) {
    nbdkit_error("swap: cannot set /proc/self/oom_score_adj to -1000: %s "
                 "(needs root or CAP_SYS_RESOURCE)",
                 strerror(-r));
    return -1;
  }
  nbdkit_debug("swap: I/O flusher, oom_score_adj -1000, %u MiB reserve",
               GUARD_POOL_RESERVE >> 20);
  return 0;
}

void swap_mode_stop(void) {
  guard_refill_stop(refill);
  refill = NULL;
}

int swap_mode_after_fork(struct trueno_store *st) {
  if (!enabled)
    return 0;
  /* Real-time from here on, for this thread and the threads it creates (the
   * reserve refill, the connection workers, housekeeping): the
   * kernel lets a real-time task's allocations dip into half of the
   * min-watermark reserve before it must reclaim.  Our few kernel
   * allocations (socket buffers for replies, the stats file) then succeed
   * while every other task waits in reclaim for swap writes, which only we
   * can complete; otherwise an allocation of ours, which may not write to
   * swap (I/O flusher), waits forever for memory that only swap can free.
   * The refill thread is real-time too, or busy real-time writers would
   * starve it and find the reserve empty; what it maps under pressure
   * holds compressed swap pages, each freeing more than it costs. */
  int r = guard_realtime();
  if (r)
    nbdkit_error("swap: sched_setscheduler(SCHED_RR): %s (needs root or "
                 "CAP_SYS_NICE); going on without the memory reserve",
                 strerror(-r));
  r = guard_refill_start(st, &refill);
  if (r) {
    nbdkit_error("swap: cannot start the reserve thread: %s", strerror(-r));
    return -1;
  }
  r = guard_lock_memory();
  if (r) {
    nbdkit_error("swap: mlockall: %s (needs root, or a higher RLIMIT_MEMLOCK)",
                 strerror(-r));
    return -1;
  }
  /* Our code must never be only in swap: see pin-mappings.c. */
  uint64_t pinned;
  unsigned failed;
  int p = pin_file_mappings(&pinned, &failed);
  if (p)
    nbdkit_error("swap: cannot read /proc/self/maps to lock the code in "
                 "memory: %s",
                 strerror(-p));
  else
    nbdkit_debug("swap: memory locked, %" PRIu64 " KiB of code and data "
                 "files faulted in (%u mappings skipped)",
                 pinned >> 10, failed);
  return 0;
}
