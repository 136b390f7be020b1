/* See test-race.h.
 * SPDX-License-Identifier: MIT */
#include "test-race.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

#define PAGE 4096u

static int stopped(struct tc_race *r) {
  return __atomic_load_n(&r->stop, __ATOMIC_RELAXED);
}

static void *rewrite(void *arg) {
  struct tc_race *r = arg;
  uint64_t x = r->seed;
  for (int n = 0; n < r->ops && !stopped(r); n++) {
    size_t p = tc_below(&x, r->npages / 2) * 2 + 1;
    size_t from = tc_below(&x, r->npages);
    int e = trueno_write(r->st, r->data + from * PAGE, PAGE, p * PAGE);
    CHECK(e == 0, "write of page %zu during %s: %d", p, r->during, e);
    memcpy(r->model + p * PAGE, r->data + from * PAGE, PAGE);
  }
  return NULL;
}

static void *reread(void *arg) {
  struct tc_race *r = arg;
  uint8_t page[PAGE];
  for (int n = 0; n < r->ops && !stopped(r); n++) {
    size_t p = ((size_t)n * 7919 % (r->npages / 2)) * 2;
    int e = trueno_read(r->st, page, PAGE, p * PAGE);
    CHECK(e == 0 && memcmp(page, r->model + p * PAGE, PAGE) == 0,
          "page %zu read during %s: r=%d or contents differ", p, r->during,
          e);
  }
  return NULL;
}

void tc_race_start(struct tc_race *r) {
  r->stop = 0;
  if (pthread_create(&r->writer, NULL, rewrite, r) ||
      pthread_create(&r->reader, NULL, reread, r)) {
    fprintf(stderr, "test-race: cannot start a thread\n");
    abort(); /* no test result is worth anything without them */
  }
}

void tc_race_stop(struct tc_race *r) {
  __atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
  pthread_join(r->writer, NULL);
  pthread_join(r->reader, NULL);
}
