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
  /* Working memory, made when a step has pages to compress and freed
   * after a step that had none: a settled store does not keep a level-9
   * compression context (~1 MiB) and two frame buffers resident. */
  uint8_t *in;       /* the members' pages */
  uint8_t *out;      /* the frame */
  size_t out_cap;
  void *zstate;      /* zstd context for frames */
};

/* From the store's configuration: -EINVAL for a bad size, level, rate or
 * cache. */
int grouper_init(struct grouper *g, const struct trueno_config *cfg);
void grouper_destroy(struct grouper *g);

#endif
