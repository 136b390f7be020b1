/* Two stores in one process, each with a pool reserve of its own
 * (pool_reserve): each keeps its own reserve mapped and resident, a refill
 * of one tops up that one alone, and the refill signal of one
 * (trueno_pool_wait_low) wakes when its reserve is taken below half, not
 * when the other's is.  The reserve used to be one setting for the whole
 * process, refilled and signalled for all stores at once.
 * SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"
#include "trueno.h"
/* Internals, to count a pool's spare chunks. */
#include "store_impl.h"

#define PAGE 4096u
#define CHUNK (2u << 20)
#define RESERVE_A (4 * CHUNK)
#define RESERVE_B (2 * CHUNK + 1) /* rounds up to 3 chunks */

static size_t spares(struct trueno_store *st) {
  pthread_mutex_lock(&st->pool.lock);
  size_t n = st->pool.nspare;
  pthread_mutex_unlock(&st->pool.lock);
  return n;
}

static uint64_t chunks(struct trueno_store *st) {
  pthread_mutex_lock(&st->pool.lock);
  uint64_t n = st->pool.nchunks;
  pthread_mutex_unlock(&st->pool.lock);
  return n;
}

/* Resident memory of the process, from /proc/self/statm. */
static uint64_t rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
      res = 0;
    fclose(f);
  }
  return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static struct trueno_store *create(uint64_t reserve) {
  struct trueno_config cfg = {.size = 64u << 20,
                              .algorithm = TRUENO_ALG_LZ4,
                              .pool_reserve = reserve};
  struct trueno_store *st = NULL;
  int r = trueno_store_create(&cfg, &st);
  CHECK(r == 0, "create with a %llu-byte reserve: %d",
        (unsigned long long)reserve, r);
  return st;
}

/* Writes incompressible pages from *next on until the store's spares are
 * fewer than want: each page stored raw takes a whole pool page. */
static void take_until(struct trueno_store *st, size_t want, uint64_t *next) {
  uint8_t pg[PAGE];
  uint64_t s = 0x5eed + *next;
  for (unsigned i = 0; i < 8 * 512 && spares(st) >= want; i++, ++*next) {
    tc_fill_random(pg, PAGE, &s);
    int r = trueno_write(st, pg, PAGE, *next * PAGE);
    CHECK(r == 0, "write page %llu: %d", (unsigned long long)*next, r);
    if (r)
      return;
  }
  CHECK(spares(st) < want, "writes took the reserve below %zu spares", want);
}

struct waiter {
  struct trueno_store *st;
  unsigned ms;
  double took;
};

static void *wait_low(void *arg) {
  struct waiter *w = arg;
  double t0 = now_s();
  trueno_pool_wait_low(w->st, w->ms);
  w->took = now_s() - t0;
  return NULL;
}

int main(void) {
  uint64_t before = rss();
  struct trueno_store *a = create(RESERVE_A);
  uint64_t grew = rss() - before;
  struct trueno_store *b = create(RESERVE_B);
  if (!a || !b)
    return tc_finish();
  CHECK(spares(a) == 4 && a->pool.reserve_chunks == 4,
        "store A keeps its 4 chunks (%zu spares)", spares(a));
  CHECK(spares(b) == 3 && b->pool.reserve_chunks == 3,
        "store B keeps its 3 chunks (%zu spares)", spares(b));
  CHECK(grew >= RESERVE_A, "store A's reserve is resident (RSS +%llu KiB)",
        (unsigned long long)(grew >> 10));
  printf("  RSS grew by %llu KiB for A's %u KiB reserve\n",
         (unsigned long long)(grew >> 10), RESERVE_A >> 10);

  /* A's writers take its reserve below half (fewer than 2 of 4): A's
   * waiter wakes at once, B's sleeps its full second. */
  struct waiter wa = {.st = a, .ms = 20000}, wb = {.st = b, .ms = 1000};
  pthread_t ta, tb;
  CHECK(pthread_create(&ta, NULL, wait_low, &wa) == 0, "thread");
  CHECK(pthread_create(&tb, NULL, wait_low, &wb) == 0, "thread");
  uint64_t next_a = 0, next_b = 0;
  take_until(a, 2, &next_a);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  printf("  A's waiter woke after %.3f s, B's after %.3f s\n", wa.took,
         wb.took);
  CHECK(wa.took < 10, "A's wait-low woke when A's reserve ran low (%.3f s)",
        wa.took);
  CHECK(wb.took >= 0.9, "B's wait-low slept through A's low reserve "
        "(%.3f s)", wb.took);
  CHECK(spares(b) == 3, "B's reserve untouched by A's writes (%zu)",
        spares(b));

  /* Refilling A tops up A alone. */
  uint64_t b_chunks = chunks(b);
  CHECK(trueno_pool_refill(a) == 0, "refill A");
  CHECK(spares(a) == 4, "A's reserve is full again (%zu)", spares(a));
  CHECK(spares(b) == 3 && chunks(b) == b_chunks,
        "refilling A left B alone (%zu spares)", spares(b));

  /* And the other way round: B runs low, wakes B's waiter, and its refill
   * leaves A as it is. */
  wb = (struct waiter){.st = b, .ms = 20000};
  wa = (struct waiter){.st = a, .ms = 1000};
  CHECK(pthread_create(&ta, NULL, wait_low, &wa) == 0, "thread");
  CHECK(pthread_create(&tb, NULL, wait_low, &wb) == 0, "thread");
  take_until(b, 2, &next_b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CHECK(wb.took < 10, "B's wait-low woke (%.3f s)", wb.took);
  CHECK(wa.took >= 0.9, "A's wait-low slept through B's low reserve "
        "(%.3f s)", wa.took);
  uint64_t a_chunks = chunks(a);
  CHECK(trueno_pool_refill(b) == 0, "refill B");
  CHECK(spares(b) == 3, "B's reserve is full again (%zu)", spares(b));
  CHECK(spares(a) == 4 && chunks(a) == a_chunks,
        "refilling B left A alone (%zu spares)", spares(a));

  /* A store without a reserve has nothing to refill. */
  struct trueno_store *c = create(0);
  if (c) {
    CHECK(trueno_pool_refill(c) == 0 && spares(c) == 0,
          "no reserve: refill maps nothing (%zu spares)", spares(c));
    trueno_store_destroy(c);
  }
  trueno_store_destroy(b);
  trueno_store_destroy(a);
  return tc_finish();
}
