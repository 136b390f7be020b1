/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "server-guard.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "trueno.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57 /* Linux 5.6; older libc headers lack it */
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4 /* Linux 4.4; older libc headers lack it */
#endif

int guard_io_flusher(void) {
  return prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == -1 ? -errno : 0;
}

int guard_oom_protect(void) {
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd == -1)
    return -errno;
  int r = write(fd, "-1000", 5) == 5 ? 0 : -errno;
  close(fd);
  return r;
}

int guard_realtime(void) {
  struct sched_param sp = {.sched_priority = 1};
  return sched_setscheduler(0, SCHED_RR, &sp) == -1 ? -errno : 0;
}

int guard_lock_memory(void) {
  if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0)
    return 0;
  /* EINVAL: a kernel without MCL_ONFAULT; lock what is mapped now. */
  if (errno == EINVAL && mlockall(MCL_CURRENT | MCL_FUTURE) == 0)
    return 0;
  return -errno;
}

void guard_keep_memory(void) {
  /* One malloc arena: the heap touched ahead below serves every thread
   * (a second arena's memory would be faulted in by the first request that
   * lands in it, under memory pressure). */
  mallopt(M_ARENA_MAX, 1);
  /* Request buffers from the heap, never fresh mmaps; freed heap kept. */
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 1 << 20);
  char *heap = malloc(GUARD_HEAP_AHEAD);
  if (heap) {
    for (size_t i = 0; i < GUARD_HEAP_AHEAD; i += 4096)
      ((volatile char *)heap)[i] = 0;
    free(heap);
  }
}

void guard_touch_stack(void) {
  volatile char pad[128 << 10];
  for (size_t i = 0; i < sizeof pad; i += 4096)
    pad[i] = 0;
}

struct guard_refill {
  struct trueno_store *st;
  pthread_t thread;
  atomic_bool stop;
};

static void *refiller(void *arg) {
  struct guard_refill *g = arg;
  /* Every 5 ms, and at once when writers take the reserve below half: a
   * burst of writes (a 1 MiB request is 256 pages) can use up a timed
   * round's worth before the timer fires. */
  while (!atomic_load(&g->stop)) {
    trueno_pool_refill(g->st);
    trueno_pool_wait_low(g->st, 5);
  }
  return NULL;
}

int guard_refill_start(struct trueno_store *st, struct guard_refill **out) {
  struct guard_refill *g = calloc(1, sizeof *g);
  if (!g)
    return -ENOMEM;
  g->st = st;
  atomic_init(&g->stop, false);
  int r = pthread_create(&g->thread, NULL, refiller, g);
  if (r) {
    free(g);
    return -r;
  }
  *out = g;
  return 0;
}

void guard_refill_stop(struct guard_refill *g) {
  if (!g)
    return;
  atomic_store(&g->stop, true); /* seen within 5 ms */
  pthread_join(g->thread, NULL);
  free(g);
}
