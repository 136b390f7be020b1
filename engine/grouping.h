/* Forming cold groups (group.h): the engine side of trueno_group, run a
 * bounded step at a time by trueno_maintain.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_GROUPING_H
#define TRUENO_GROUPING_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "trueno.h"

struct grouper {
  uint32_t pages;    /* per group; 0: off */
  int level;
  uint32_t idle, rate;
  pthread_mutex_t lock; /* one step at a time */
  uint64_t cursor;   /* the next window a step examines */
  uint8_t *in;       /* the members' pages, made on first use */
  uint8_t *out;      /* the frame */
  size_t out_cap;
};

/* From the store's configuration: -EINVAL for a bad size, level, rate or
 * cache. */
int grouper_init(struct grouper *g, const struct trueno_config *cfg);
void grouper_destroy(struct grouper *g);

#endif
