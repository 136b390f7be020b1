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

static struct {
  struct housekeeping_files files;
  struct trueno_store *st;
  enum trueno_algorithm alg;
  pthread_t thread;
  bool running;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stop;
} sf = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

int stats_file_check(const char *path) {
  return safefile_check_dir_of(path);
}

static int write_json(const struct trueno_stats *s) {
  char json[TRUENO_STATS_TEXT_MAX];
  int n = trueno_stats_json(s, sf.alg, json, sizeof json);
  if (n < 0 || n >= (int)sizeof json - 1)
    return -EOVERFLOW;
  const char *extra = sf.files.stats_extra;
  if (extra && *extra) {
    n--; /* over the closing brace */
    n += snprintf(json + n, sizeof json - (size_t)n, ", %s}", extra);
    if (n >= (int)sizeof json - 1)
      return -EOVERFLOW;
  }
  json[n++] = '\n';
  /* Readers must never see a half-written file; and the directory may be
   * /tmp, where a predictable temporary name is another user's to take. */
  return safefile_replace(sf.files.stats, json, (size_t)n, 0600);
}

/* Both files from one snapshot. */
static void write_once(void) {
  if (!sf.files.stats && !sf.files.prometheus)
    return;
  struct trueno_stats s;
  trueno_get_stats(sf.st, &s);
  if (sf.files.stats)
    write_json(&s);
  if (sf.files.prometheus)
    prometheus_write(sf.files.prometheus, sf.files.prometheus_mode, &s,
                     sf.alg, sf.files.device);
}

static void *housekeeper(void *arg) {
  (void)arg;
  pthread_mutex_lock(&sf.lock);
  while (!sf.stop) {
    pthread_mutex_unlock(&sf.lock);
    trueno_maintain(sf.st);
    write_once();
    pthread_mutex_lock(&sf.lock);
    /* A second on the monotonic clock: a step back of the wall clock
     * would stall the stats and the store's maintenance. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 1;
    while (!sf.stop && pthread_cond_clockwait(&sf.cond, &sf.lock,
                                              CLOCK_MONOTONIC,
                                              &ts) != ETIMEDOUT)
      ;
  }
  pthread_mutex_unlock(&sf.lock);
  return NULL;
}

int housekeeping_start(const struct housekeeping_files *files,
                       struct trueno_store *st, enum trueno_algorithm alg) {
  sf.files = *files;
  sf.st = st;
  sf.alg = alg;
  sf.stop = false;
  int r = pthread_create(&sf.thread, NULL, housekeeper, NULL);
  if (r)
    return -r;
  sf.running = true;
  return 0;
}

void housekeeping_stop(void) {
  if (!sf.running)
    return;
  pthread_mutex_lock(&sf.lock);
  sf.stop = true;
  pthread_cond_signal(&sf.cond);
  pthread_mutex_unlock(&sf.lock);
  pthread_join(sf.thread, NULL);
  sf.running = false;
  write_once();
}
