/* Worker threads that serve the large requests of every queue, so one
 * submitter (which the kernel maps to one queue) still gets its data
 * compressed on several CPUs.  Small requests are served by the queue
 * thread itself: a hand-off would cost more than it saves.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_WORKERS_H
#define TRUENO_UBLK_WORKERS_H

#include <pthread.h>
#include <stdbool.h>

struct ublk_queue;

/* Requests of at least this many bytes go to the workers. */
#define UBLK_OFFLOAD_MIN (64u << 10)

struct ublk_job {
  struct ublk_queue *q;
  unsigned tag;
};

struct ublk_workers {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct ublk_job *jobs; /* ring of cap: every tag of every queue fits */
  unsigned cap, head, count;
  bool stop;
  int n;
  pthread_t *threads;
};

/* n threads, room for cap jobs.  0 or a negative errno. */
int ublk_workers_start(struct ublk_workers *w, int n, unsigned cap);
void ublk_workers_push(struct ublk_workers *w, struct ublk_queue *q,
                       unsigned tag);
/* Joins the threads (after the queues have ended) and frees the pool. */
void ublk_workers_stop(struct ublk_workers *w);

#endif
