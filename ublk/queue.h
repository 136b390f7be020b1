/* One ublk queue: its io descriptors (mmapped from /dev/ublkcN), a buffer
 * per tag, an io_uring, and the thread that serves it.  The thread fetches
 * every tag, then for each request the kernel hands over runs the engine
 * and commits the result with the next fetch (COMMIT_AND_FETCH_REQ), until
 * the kernel aborts the fetches (device stopped).
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_QUEUE_H
#define TRUENO_UBLK_QUEUE_H

#include <liburing.h>
#include <sched.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "trueno.h"
#include "ublk-uapi.h"
#include "workers.h"

struct ublk_queue {
  int q_id, depth;
  uint32_t buf_bytes;   /* per tag */
  int cdev_fd;          /* /dev/ublkcN */
  bool ioctl_encode;    /* UBLK_U_IO_* opcodes, else legacy numbers */
  struct trueno_store *st;
  cpu_set_t cpus;       /* where the thread runs; empty: anywhere */

  const struct ublksrv_io_desc *descs;
  size_t descs_len;
  char *bufs;           /* depth * buf_bytes */
  struct io_uring ring;
  bool ring_ok;
  bool ring_deferred;   /* DEFER_TASKRUN: enabled by the queue thread */
  pthread_t thread;
  bool started;
  int inflight;         /* commands the kernel holds */

  /* Large requests go to the pool (NULL: all served here); a worker
   * leaves the result in done[] and counts up efd, which the ring reads. */
  struct ublk_workers *pool;
  int pending;          /* tags with the workers */
  int efd;
  uint64_t efd_val;
  bool efd_armed;
  pthread_mutex_t done_lock;
  int ndone;
  unsigned *done_tag;   /* depth entries each */
  int *done_res;

  /* Scheduling policy by how requests come (adapt_policy in queue.c). */
  bool adapt;           /* TRUENO_UBLK_NO_BATCH unset */
  bool batch;           /* SCHED_BATCH now, else SCHED_OTHER */
  unsigned per_wake;    /* requests per wake-up, x16, x16 averaged */
  unsigned wakes;

  int error;            /* first failure of the thread: negative errno */

  /* Called by the thread when it has fetched every tag (status 0) or
   * failed to, and again when it ends; arg is cb_arg. */
  void (*notify)(struct ublk_queue *q, bool ending, void *cb_arg);
  void *cb_arg;
};

/* Makes a zeroed queue safe to free before (or without) init: no
 * descriptor of its own. */
void ublk_queue_clear(struct ublk_queue *q);
/* Maps the descriptors, allocates the buffers and the ring (in the calling
 * thread, so a failure is reported before anything is started). */
int ublk_queue_init(struct ublk_queue *q);
int ublk_queue_start(struct ublk_queue *q);
/* A worker serves tag of q and hands the result back to q's thread. */
void ublk_queue_work(struct ublk_queue *q, unsigned tag);
void ublk_queue_join(struct ublk_queue *q);
/* Unmaps and closes what init made (after join). */
void ublk_queue_free(struct ublk_queue *q);

#endif
