/* The page pool's reserve (swap mode): with a pool_reserve, a
 * store's writers only use memory mapped ahead; when that is used up a
 * write fails at once with -ENOMEM, stored data stays intact, and after
 * trueno_pool_refill(st) writes work again.  A writer that waits for the
 * reserve holds no lock that readers of its stripe need, and pages freed
 * while it waits are its to take.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"
#include "trueno.h"

#define PAGE 4096u
#define RESERVE (4u << 20) /* two 2 MiB chunks */

/* An incompressible page: every page costs a whole pool page. */
static void fill(uint8_t *pg, uint64_t n) {
  uint64_t s = n * 0x9e3779b97f4a7c15ull + 1;
  for (unsigned i = 0; i < PAGE; i += 8) {
    uint64_t v = tc_rand(&s);
    memcpy(pg + i, &v, 8);
  }
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

struct waiter {
  struct trueno_store *st;
  uint64_t idx;
  int r;
  double done_ms;
};

/* Writes a new incompressible page at idx: with the reserve used up, it
 * waits for memory. */
static void *write_new(void *arg) {
  struct waiter *w = arg;
  uint8_t pg[PAGE];
  fill(pg, 777000 + w->idx);
  w->r = trueno_write(w->st, pg, PAGE, w->idx * PAGE);
  w->done_ms = now_ms();
  return NULL;
}

/* A store whose reserve is used up, refill never called: pages [0, *n)
 * hold fill(i). */
static struct trueno_store *exhausted(uint64_t *n) {
  struct trueno_config cfg = {.size = 64u << 20,
                              .algorithm = TRUENO_ALG_LZ4,
                              .pool_reserve = RESERVE};
  struct trueno_store *st;
  CHECK(trueno_store_create(&cfg, &st) == 0, "create");
  uint8_t pg[PAGE];
  for (*n = 0; *n < 16384; ++*n) {
    fill(pg, *n);
    if (trueno_write(st, pg, PAGE, *n * PAGE))
      break;
  }
  return st;
}

static void waits(void) {
  /* A reader of the waiting writer's stripe (1024 stripes: pages n and
   * n % 1024 share one) is served at once, not after the wait. */
  uint64_t n;
  struct trueno_store *st = exhausted(&n);
  uint64_t mate = n % 1024;
  CHECK(mate < n, "%llu pages before the reserve ran out",
        (unsigned long long)n);
  struct waiter w = {.st = st, .idx = n};
  pthread_t t;
  pthread_create(&t, NULL, write_new, &w);
  struct timespec pause = {0, 30 * 1000 * 1000};
  nanosleep(&pause, NULL);
  uint8_t pg[PAGE], back[PAGE];
  CHECK(trueno_read(st, back, PAGE, mate * PAGE) == 0, "read");
  double read_ms = now_ms();
  pthread_join(t, NULL);
  fill(pg, mate);
  CHECK(memcmp(pg, back, PAGE) == 0, "the stripe's page reads back");
  CHECK(w.r == -ENOMEM, "the waiting write failed with ENOMEM (got %d)", w.r);
  CHECK(read_ms < w.done_ms,
        "a read of the stripe waited for the writer's wait (%.0f ms after)",
        read_ms - w.done_ms);
  trueno_store_destroy(st);

  /* A page trimmed while a writer waits is the writer's to take. */
  st = exhausted(&n);
  w = (struct waiter){.st = st, .idx = n};
  pthread_create(&t, NULL, write_new, &w);
  nanosleep(&pause, NULL);
  CHECK(trueno_trim(st, PAGE, 0) == 0, "trim");
  pthread_join(t, NULL);
  CHECK(w.r == 0, "a write waiting while a page was freed got it (got %d)",
        w.r);
  fill(pg, 777000 + n);
  CHECK(trueno_read(st, back, PAGE, n * PAGE) == 0 &&
            memcmp(pg, back, PAGE) == 0,
        "and its page reads back");
  trueno_store_destroy(st);
}

int main(void) {
  struct trueno_config cfg = {.size = 64u << 20,
                              .algorithm = TRUENO_ALG_LZ4,
                              .pool_reserve = RESERVE};
  struct trueno_store *st;
  CHECK(trueno_store_create(&cfg, &st) == 0, "create");
  uint8_t pg[PAGE], back[PAGE];
  uint64_t n = 0;
  int r = 0;
  for (; n < 16384; n++) {
    fill(pg, n);
    r = trueno_write(st, pg, PAGE, n * PAGE);
    if (r)
      break;
  }
  CHECK(r == -ENOMEM, "a write past the reserve fails with ENOMEM (got %d)", r);
  /* About 4 MiB of raw pages fit (less what the arena and the slot table
   * took), never more than the reserve. */
  CHECK(n > 256 && n <= 1024, "%llu pages fitted in a 4 MiB reserve",
        (unsigned long long)n);
  uint64_t failed = n;
  fill(pg, failed);
  CHECK(trueno_write(st, pg, PAGE, failed * PAGE) == -ENOMEM,
        "retry fails again");
  for (uint64_t i = 0; i < failed; i++) {
    fill(pg, i);
    CHECK(trueno_read(st, back, PAGE, i * PAGE) == 0 &&
              memcmp(pg, back, PAGE) == 0,
          "page %llu intact", (unsigned long long)i);
  }
  CHECK(trueno_read(st, back, PAGE, failed * PAGE) == 0, "read failed page");
  static const uint8_t zero[PAGE];
  CHECK(memcmp(back, zero, PAGE) == 0, "the failed page is untouched");

  CHECK(trueno_pool_refill(st) == 0, "refill");
  fill(pg, failed);
  CHECK(trueno_write(st, pg, PAGE, failed * PAGE) == 0,
        "after a refill the write succeeds");
  CHECK(trueno_read(st, back, PAGE, failed * PAGE) == 0 &&
            memcmp(pg, back, PAGE) == 0,
        "and reads back");
  /* Trimming gives pages back to the pool: they are reused, no refill. */
  CHECK(trueno_trim(st, 256 * PAGE, 0) == 0, "trim");
  for (uint64_t i = 0; i < 200; i++) {
    fill(pg, 100000 + i);
    r = trueno_write(st, pg, PAGE, (failed + 1 + i) * PAGE);
    if (r)
      break;
  }
  CHECK(r == 0, "writes after a trim reuse the freed pages (got %d)", r);
  trueno_store_destroy(st);
  waits();
  return tc_finish();
}
