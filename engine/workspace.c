/* SPDX-License-Identifier: MIT */
#include "workspace.h"

#include <stdlib.h>
#include <unistd.h>

#include "codec.h"

void ws_pool_init(struct ws_pool *p) {
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->freed, NULL);
  p->free = NULL;
  p->count = 0;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  /* One per CPU, and one for a thread preempted while holding one. */
  p->max = (unsigned)(cpus > 1 ? cpus : 1) + 1;
}

void ws_pool_destroy(struct ws_pool *p) {
  while (p->free) {
    struct workspace *ws = p->free;
    p->free = ws->next;
    for (int i = 0; i < TRUENO_ALG_COUNT; i++)
      if (ws->state[i])
        trueno_codec_for((enum trueno_algorithm)i)->state_free(ws->state[i]);
    free(ws);
  }
  pthread_cond_destroy(&p->freed);
  pthread_mutex_destroy(&p->lock);
}

struct workspace *ws_get(struct ws_pool *p) {
  pthread_mutex_lock(&p->lock);
  while (!p->free && p->count >= p->max)
    pthread_cond_wait(&p->freed, &p->lock);
  struct workspace *ws = p->free;
  if (ws) {
    p->free = ws->next;
  } else if ((ws = calloc(1, sizeof *ws))) {
    p->count++;
  }
  pthread_mutex_unlock(&p->lock);
  return ws;
}

void ws_put(struct ws_pool *p, struct workspace *ws) {
  pthread_mutex_lock(&p->lock);
  ws->next = p->free;
  p->free = ws;
  pthread_cond_signal(&p->freed);
  pthread_mutex_unlock(&p->lock);
}

void *ws_codec_state(struct workspace *ws, enum trueno_algorithm alg) {
  if (!ws->state[alg])
    ws->state[alg] = trueno_codec_for(alg)->state_new();
  return ws->state[alg];
}
