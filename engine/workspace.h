/* Scratch space for one page operation: buffers and codec state.
 *
 * A store keeps a stack of workspaces; an operation takes one and gives it
 * back.  Their number is capped at a few per CPU, so scratch memory follows
 * the CPUs, not nbdkit's thread count (16 threads per connection: per-thread
 * codec state or stack buffers would stay resident, ~24 KiB each).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_WORKSPACE_H
#define TRUENO_WORKSPACE_H

#include <pthread.h>
#include <stdint.h>

#include "arena.h"
#include "trueno.h"

struct workspace {
  struct workspace *next;
  void *state[TRUENO_ALG_COUNT]; /* codec state, created on first use */
  uint32_t raw_score; /* recent share of raw pages, see page_compress */
  uint8_t page[TRUENO_PAGE_SIZE];
  uint8_t buf[ARENA_MAX_OBJ]; /* compressed output / straddling object */
};

struct ws_pool {
  pthread_mutex_t lock;
  pthread_cond_t freed;
  struct workspace *free;
  unsigned count, max; /* made so far, and the cap */
};

void ws_pool_init(struct ws_pool *p);
void ws_pool_destroy(struct ws_pool *p);
/* Waits while max workspaces are out (a thread on a CPU gets one back
 * within one page operation); NULL when memory is short. */
struct workspace *ws_get(struct ws_pool *p);
void ws_put(struct ws_pool *p, struct workspace *ws);
/* The codec state for alg in ws, creating it; NULL when memory is short. */
void *ws_codec_state(struct workspace *ws, enum trueno_algorithm alg);

#endif
