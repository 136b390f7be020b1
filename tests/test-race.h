/* Two threads that use a store while the test's own thread runs a pass
 * over it (compaction, recompression): one rewrites the odd pages, so a
 * pass's moves and new writes of the same page must not lose either; one
 * reads the even pages, which nobody writes meanwhile, and each read must
 * return exactly the model.
 * SPDX-License-Identifier: MIT */
#ifndef TRUENO_TEST_RACE_H
#define TRUENO_TEST_RACE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "trueno.h"

struct tc_race {
  struct trueno_store *st;
  const uint8_t *data; /* the rewrites' contents: pages of it */
  uint8_t *model;      /* what the store must hold, kept up to date */
  size_t npages;
  uint64_t seed;
  int ops;            /* writes, and reads, each thread makes at most */
  const char *during; /* the pass, for messages */
  /* Private. */
  int stop;
  pthread_t writer, reader;
};

/* Starts both threads on *r (filled in above "Private"). */
void tc_race_start(struct tc_race *r);
/* Stops both threads and waits for them. */
void tc_race_stop(struct tc_race *r);

#endif
