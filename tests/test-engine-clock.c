/* The engine's timed waits do not follow the wall clock: with
 * CLOCK_REALTIME an hour off (a step by NTP or an admin), a 50 ms
 * trueno_pool_wait_low still returns after about 50 ms (before it waited an
 * hour).  The test defines
 * clock_gettime itself, so the engine (linked in) reads the skewed wall
 * clock; the kernel's waits keep the true one.
 * SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"
#include "trueno.h"

static _Atomic long skew_s;

int clock_gettime(clockid_t id, struct timespec *t) {
  int r = (int)syscall(SYS_clock_gettime, id, t);
  if (!r && id == CLOCK_REALTIME)
    t->tv_sec += atomic_load(&skew_s);
  return r;
}

static double now_s(void) {
  struct timespec t;
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static _Atomic int done;

static void *waiter(void *arg) {
  trueno_pool_wait_low(arg, 50);
  atomic_store(&done, 1);
  return NULL;
}

int main(void) {
  /* The engine reads the wall clock an hour ahead of the kernel's, as if
   * the clock was stepped back an hour right after the deadline was taken:
   * a deadline on it lies an hour ahead. */
  atomic_store(&skew_s, 3600);
  struct trueno_config cfg = {.size = 1u << 20, .pool_reserve = 2u << 20};
  struct trueno_store *st;
  CHECK(trueno_store_create(&cfg, &st) == 0, "create");
  pthread_t t;
  double t0 = now_s();
  CHECK(pthread_create(&t, NULL, waiter, st) == 0, "thread");
  while (!atomic_load(&done) && now_s() - t0 < 5)
    usleep(10000);
  double took = now_s() - t0;
  printf("  trueno_pool_wait_low(50) with the wall clock stepped: %.3f s\n",
         took);
  CHECK(atomic_load(&done), "a 50 ms wait still waits after 5 s");
  if (atomic_load(&done)) {
    pthread_join(t, NULL);
    trueno_store_destroy(st);
  } else {
    pthread_detach(t); /* it still uses the store */
  }
  return tc_finish();
}
