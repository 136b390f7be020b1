/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* pthread_cond_clockwait */
#include "housekeeping.h"
#include "prometheus.h"
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct housekeeping {
  struct housekeeping_files files;
  struct trueno_store *st;
  enum trueno_algorithm alg;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stop;
};

int stats_file_check(const char *path) {
  return safefile_check_dir_of(path);
}

static int write_json(const struct housekeeping *h,
                      const struct trueno_stats *s) {
  char json[TRUENO_STATS_TEXT_MAX];
  int n = trueno_stats_json(s, h->alg, json, sizeof json);
  if (n < 0 || n >= (int)sizeof json - 1)
    return -EOVERFLOW;
  const char *extra = h->files.stats_extra;
  if (extra && *extra) {
    n--; /* over the closing brace */
    n += snprintf(json + n, sizeof json - (size_t)n, ", %s}", extra);
    if (n >= (int)sizeof json - 1)
      return -EOVERFLOW;
  }
  json[n++] = '\n';
  /* Readers must never see a half-written file; and the directory may be
   * /tmp, where a predictable temporary name is another user's to take. */
  return safefile_replace(h->files.stats, json, (size_t)n, 0600);
}

/* Both files from one snapshot. */
static void write_once(const struct housekeeping *h) {
  if (!h->files.stats && !h->files.prometheus)
    return;
  struct trueno_stats s;
  trueno_get_stats(h->st, &s);
  if (h->files.stats)
    write_json(h, &s);
  if (h->files.prometheus)
    prometheus_write(h->files.prometheus, h->files.prometheus_mode, &s,
                     h->alg, h->files.device);
}

static void *housekeeper(void *arg) {
  struct housekeeping *h = arg;
  pthread_mutex_lock(&h->lock);
  while (!h->stop) {
    pthread_mutex_unlock(&h->lock);
    trueno_maintain(h->st);
    write_once(h);
    pthread_mutex_lock(&h->lock);
    /* A second on the monotonic clock: a step back of the wall clock
     * would stall the stats and the store's maintenance. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 1;
    while (!h->stop && pthread_cond_clockwait(&h->cond, &h->lock,
                                             CLOCK_MONOTONIC,
                                             &ts) != ETIMEDOUT)
      ;
  }
  pthread_mutex_unlock(&h->lock);
  return NULL;
}

int housekeeping_start(const struct housekeeping_files *files,
                       struct trueno_store *st, enum trueno_algorithm alg,
                       struct housekeeping **out) {
  struct housekeeping *h = calloc(1, sizeof *h);
  if (!h)
    return -ENOMEM;
  h->files = *files;
  h->st = st;
  h->alg = alg;
  int r = pthread_mutex_init(&h->lock, NULL);
  if (r)
    goto fail;
  if ((r = pthread_cond_init(&h->cond, NULL)))
    goto fail_lock;
  if ((r = pthread_create(&h->thread, NULL, housekeeper, h)))
    goto fail_cond;
  *out = h;
  return 0;
fail_cond:
  pthread_cond_destroy(&h->cond);
fail_lock:
  pthread_mutex_destroy(&h->lock);
fail:
  free(h);
  return -r;
}

void housekeeping_stop(struct housekeeping *h) {
  if (!h)
    return;
  pthread_mutex_lock(&h->lock);
  h->stop = true;
  pthread_cond_signal(&h->cond);
  pthread_mutex_unlock(&h->lock);
  pthread_join(h->thread, NULL);
  write_once(h);
  pthread_cond_destroy(&h->cond);
  pthread_mutex_destroy(&h->lock);
  free(h);
}
