/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "workers.h"

#include <errno.h>
#include <stdlib.h>

#include "queue.h"
#include "server-guard.h"

static void *worker_main(void *arg) {
  struct ublk_workers *w = arg;
  guard_touch_stack();
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->count && !w->stop)
      pthread_cond_wait(&w->cond, &w->lock);
    if (!w->count)
      break; /* stopping, nothing left */
    struct ublk_job j = w->jobs[w->head];
    w->head = (w->head + 1) % w->cap;
    w->count--;
    pthread_mutex_unlock(&w->lock);
    ublk_queue_work(j.q, j.tag);
    pthread_mutex_lock(&w->lock);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

int ublk_workers_start(struct ublk_workers *w, int n, unsigned cap) {
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  w->cap = cap;
  w->head = w->count = 0;
  w->stop = false;
  w->n = 0;
  w->jobs = calloc(cap, sizeof *w->jobs);
  w->threads = calloc((size_t)n, sizeof *w->threads);
  if (!w->jobs || !w->threads)
    return -ENOMEM;
  for (; w->n < n; w->n++) {
    int r = pthread_create(&w->threads[w->n], NULL, worker_main, w);
    if (r)
      return -r;
  }
  return 0;
}

void ublk_workers_push(struct ublk_workers *w, struct ublk_queue *q,
                       unsigned tag) {
  pthread_mutex_lock(&w->lock);
  /* Never full: each tag is pushed at most once until it is done. */
  w->jobs[(w->head + w->count) % w->cap] = (struct ublk_job){q, tag};
  w->count++;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

void ublk_workers_stop(struct ublk_workers *w) {
  if (!w->threads && !w->jobs)
    return;
  pthread_mutex_lock(&w->lock);
  w->stop = true;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
  for (int i = 0; i < w->n; i++)
    pthread_join(w->threads[i], NULL);
  free(w->threads);
  free(w->jobs);
  w->threads = NULL;
  w->jobs = NULL;
  pthread_cond_destroy(&w->cond);
  pthread_mutex_destroy(&w->lock);
}
