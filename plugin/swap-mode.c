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
 *   used up fails at once with ENOMEM (an I/O error: the kernel keeps the
 *   page and writes it again later) instead of blocking.
 * - malloc keeps what it has: request buffers come from the heap, never
 *   fresh mmaps, and the freed heap is not given back, so serving a request
 *   does not fault in new pages (under memory pressure each such fault can
 *   stall for 100 ms in reclaim that may not write to swap: the server then
 *   crawls and the kernel's nbd requests time out).  The heap is grown and
 *   touched ahead by SWAP_HEAP_AHEAD.
 *
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include "swap-mode.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "pin-mappings.h"
#include "trueno.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

/* 16 MiB of pool memory kept mapped and resident ahead of the writes. */
#define SWAP_RESERVE (16u << 20)
/* Heap grown and touched ahead for request buffers and bookkeeping. */
#define SWAP_HEAP_AHEAD (8u << 20)

static int enabled;

int swap_mode_config(const char *value) {
  int b = nbdkit_parse_bool(value);
  if (b == -1) {
    nbdkit_error("swap: expected on or off, not '%s'", value);
    return -1;
  }
  enabled = b;
  return 0;
}

int swap_mode_enabled(void) { return enabled; }

int swap_mode_prepare(void) {
  if (!enabled)
    return 0;
  if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == -1) {
    nbdkit_error("swap: prctl(PR_SET_IO_FLUSHER): %s (needs root or "
                 "CAP_SYS_RESOURCE, Linux >= 5.6)",
                 strerror(errno));
    return -1;
  }
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd == -1 || write(fd, "-1000", 5) != 5) {
    nbdkit_error("swap: cannot set /proc/self/oom_score_adj to -1000: %s "
                 "(needs root or CAP_SYS_RESOURCE)",
                 strerror(errno));
    if (fd != -1)
      close(fd);
    return -1;
  }
  close(fd);
  trueno_set_pool_reserve(SWAP_RESERVE);
  /* One malloc arena: the heap touched ahead below serves every thread
   * (a second arena's memory would be faulted in by the first request that
   * lands in it, under memory pressure). */
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 1 << 20);
  char *heap = malloc(SWAP_HEAP_AHEAD);
  if (heap) {
    for (size_t i = 0; i < SWAP_HEAP_AHEAD; i += 4096)
      ((volatile char *)heap)[i] = 0;
    free(heap);
  }
  nbdkit_debug("swap: I/O flusher, oom_score_adj -1000, %u MiB reserve",
               SWAP_RESERVE >> 20);
  return 0;
}

static pthread_t refill_thread;
static bool refill_running, refill_stop;
static pthread_mutex_t refill_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t refill_cond = PTHREAD_COND_INITIALIZER;

static void *refiller(void *arg) {
  (void)arg;
  pthread_mutex_lock(&refill_lock);
  while (!refill_stop) {
    pthread_mutex_unlock(&refill_lock);
    trueno_pool_refill();
    pthread_mutex_lock(&refill_lock);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 5 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    if (!refill_stop)
      pthread_cond_timedwait(&refill_cond, &refill_lock, &ts);
  }
  pthread_mutex_unlock(&refill_lock);
  return NULL;
}

void swap_mode_stop(void) {
  if (!refill_running)
    return;
  pthread_mutex_lock(&refill_lock);
  refill_stop = true;
  pthread_cond_signal(&refill_cond);
  pthread_mutex_unlock(&refill_lock);
  pthread_join(refill_thread, NULL);
  refill_running = false;
}

int swap_mode_after_fork(void) {
  if (!enabled)
    return 0;
  int r = pthread_create(&refill_thread, NULL, refiller, NULL);
  if (r) {
    nbdkit_error("swap: cannot start the reserve thread: %s", strerror(r));
    return -1;
  }
  refill_running = true;
  /* Real-time from here on, for this thread and the threads it creates (the
   * connection workers, housekeeping; not the refill thread above): the
   * kernel lets a real-time task's allocations dip into half of the
   * min-watermark reserve before it must reclaim.  Our few kernel
   * allocations (socket buffers for replies, the stats file) then succeed
   * while every other task waits in reclaim for swap writes, which only we
   * can complete; otherwise an allocation of ours, which may not write to
   * swap (I/O flusher), waits forever for memory that only swap can free. */
  struct sched_param sp = {.sched_priority = 1};
  if (sched_setscheduler(0, SCHED_RR, &sp) == -1)
    nbdkit_error("swap: sched_setscheduler(SCHED_RR): %s (needs root or "
                 "CAP_SYS_NICE); going on without the memory reserve",
                 strerror(errno));
  if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == -1 &&
      (errno != EINVAL || mlockall(MCL_CURRENT | MCL_FUTURE) == -1)) {
    nbdkit_error("swap: mlockall: %s (needs root, or a higher RLIMIT_MEMLOCK)",
                 strerror(errno));
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
