/* The device behind the offload: see devguard.h.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "devguard.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lz4page.h"

#define PAGE 4096u
#define PROBE_PAGES 16u

enum { WELL, LOST, RETRYING };

struct devguard {
  struct devguard_config cfg;
  char *device, *cache_dir, *extra, *name;
  /* Batches hold it shared while they use dev; the retry thread holds it
   * alone to swap dev. */
  pthread_rwlock_t dev_lock;
  struct trueno_ocl *dev;
  _Atomic int state;
  _Atomic long calls; /* for fault injection */
  pthread_mutex_t lock; /* the thread's wake-ups and stop */
  pthread_cond_t cond;
  int stop;
  unsigned delay_ms;
  pthread_t thread;
};

static void say(struct devguard *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct devguard *g, const char *fmt, ...) {
  if (!g->cfg.log)
    return;
  char msg[512];
  int n = snprintf(msg, sizeof msg, "opencl: %s: ", g->name);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  g->cfg.log(msg);
}

static const char *secs(unsigned ms, char *buf, size_t cap) {
  if (ms % 1000)
    snprintf(buf, cap, "%.3g s", ms / 1000.0);
  else
    snprintf(buf, cap, "%u s", ms / 1000);
  return buf;
}

/* -EIO when the test hook says this device call fails. */
static int injected(struct devguard *g) {
  long c = atomic_fetch_add(&g->calls, 1);
  if (g->cfg.fail_after < 0 || c < g->cfg.fail_after)
    return 0;
  return g->cfg.fail_count < 0 || c < g->cfg.fail_after + g->cfg.fail_count
             ? -EIO
             : 0;
}

/* The first failure of a well device: lost, one line, the thread woken. */
static void lose(struct devguard *g, const char *what, int err) {
  int well = WELL;
  if (!atomic_compare_exchange_strong(&g->state, &well, LOST))
    return;
  pthread_mutex_lock(&g->lock);
  char b[32];
  g->delay_ms = g->cfg.base_ms;
  say(g, "%s failed (%s): the CPU codec takes over, no data lost; retrying "
         "the device in %s",
      what, strerror(-err), secs(g->delay_ms, b, sizeof b));
  pthread_cond_signal(&g->cond);
  pthread_mutex_unlock(&g->lock);
}

int devguard_compress(struct devguard *g, const void *pages, size_t n,
                      unsigned cap, void *dst, uint32_t *off, uint32_t *len) {
  if (atomic_load(&g->state) != WELL)
    return -ENODEV;
  pthread_rwlock_rdlock(&g->dev_lock);
  int r = injected(g);
  if (!r)
    r = g->dev ? trueno_ocl_compress(g->dev, pages, n, cap, dst, off, len)
               : -ENODEV;
  pthread_rwlock_unlock(&g->dev_lock);
  if (r && r != -EINVAL)
    lose(g, "batch compression", r);
  return r;
}

int devguard_decompress(struct devguard *g, const void *src,
                        const uint32_t *off, const uint32_t *len, size_t n,
                        void *pages) {
  if (atomic_load(&g->state) != WELL)
    return -ENODEV;
  pthread_rwlock_rdlock(&g->dev_lock);
  int r = injected(g);
  if (!r)
    r = g->dev ? trueno_ocl_decompress(g->dev, src, off, len, n, pages)
               : -ENODEV;
  pthread_rwlock_unlock(&g->dev_lock);
  if (r && r != -EINVAL)
    lose(g, "batch decompression", r);
  return r;
}

/* A batch through a freshly opened device, every block checked on the
 * CPU: a device that answers but answers wrong is not back. */
static int probe(struct devguard *g, struct trueno_ocl *dev) {
  static const char text[] = "the device is back when this decodes; ";
  uint8_t *pages = malloc(PROBE_PAGES * PAGE * 2), *dst = pages + PROBE_PAGES * PAGE;
  uint8_t one[PAGE];
  uint32_t off[PROBE_PAGES], len[PROBE_PAGES];
  if (!pages)
    return -ENOMEM;
  for (size_t i = 0; i < PROBE_PAGES * PAGE; i++)
    pages[i] = (uint8_t)text[(i + i / PAGE * 7) % (sizeof text - 1)];
  int r = injected(g);
  if (!r)
    r = trueno_ocl_compress(dev, pages, PROBE_PAGES, PAGE, dst, off, len);
  for (unsigned i = 0; !r && i < PROBE_PAGES; i++)
    if (!len[i] || lz4page_decompress(dst + off[i], (int)len[i], one) ||
        memcmp(one, pages + i * PAGE, PAGE))
      r = -EIO;
  free(pages);
  return r;
}

/* Closes the lost device, opens it again and probes it; installs it when
 * it works. */
static int reopen(struct devguard *g, const char **why) {
  pthread_rwlock_wrlock(&g->dev_lock);
  trueno_ocl_close(g->dev);
  g->dev = NULL;
  pthread_rwlock_unlock(&g->dev_lock);
  struct trueno_ocl *dev = NULL;
  int r = trueno_ocl_open(&g->cfg.opt, &dev, why);
  if (!r && (r = probe(g, dev)))
    *why = "the probe batch failed";
  if (r) {
    trueno_ocl_close(dev);
    return r;
  }
  pthread_rwlock_wrlock(&g->dev_lock);
  g->dev = dev;
  pthread_rwlock_unlock(&g->dev_lock);
  return 0;
}

static void deadline(struct timespec *t, unsigned ms) {
  clock_gettime(CLOCK_MONOTONIC, t);
  t->tv_sec += ms / 1000;
  t->tv_nsec += (long)(ms % 1000) * 1000000;
  if (t->tv_nsec >= 1000000000) {
    t->tv_sec++;
    t->tv_nsec -= 1000000000;
  }
}

static void *retry_thread(void *arg) {
  struct devguard *g = arg;
  pthread_mutex_lock(&g->lock);
  while (!g->stop) {
    if (atomic_load(&g->state) != LOST) {
      pthread_cond_wait(&g->cond, &g->lock);
      continue;
    }
    struct timespec t;
    deadline(&t, g->delay_ms);
    int e = 0;
    while (!g->stop && e != ETIMEDOUT)
      e = pthread_cond_timedwait(&g->cond, &g->lock, &t);
    if (g->stop)
      break;
    atomic_store(&g->state, RETRYING);
    say(g, "retrying the device now");
    pthread_mutex_unlock(&g->lock);
    const char *why = "";
    int r = reopen(g, &why);
    pthread_mutex_lock(&g->lock);
    char b[32];
    if (r == 0) {
      say(g, "the device is back: batches go to it again");
      atomic_store(&g->state, WELL);
      continue;
    }
    g->delay_ms = g->delay_ms >= g->cfg.max_ms / 2 ? g->cfg.max_ms
                                                    : g->delay_ms * 2;
    say(g, "the device is still lost (%s: %s): the CPU codec goes on; next "
           "retry in %s",
        why, strerror(-r), secs(g->delay_ms, b, sizeof b));
    atomic_store(&g->state, LOST);
  }
  pthread_mutex_unlock(&g->lock);
  return NULL;
}

static char *dup_or_null(const char *s, int *err) {
  char *d = s ? strdup(s) : NULL;
  if (s && !d)
    *err = -ENOMEM;
  return d;
}

int devguard_start(struct trueno_ocl *dev, const struct devguard_config *cfg,
                   struct devguard **out) {
  struct devguard *g = calloc(1, sizeof *g);
  if (!g)
    return -ENOMEM;
  int r = 0;
  g->cfg = *cfg;
  g->device = dup_or_null(cfg->opt.device, &r);
  g->cache_dir = dup_or_null(cfg->opt.cache_dir, &r);
  g->extra = dup_or_null(cfg->opt.extra_source, &r);
  g->name = dup_or_null(cfg->name ? cfg->name : "device", &r);
  g->cfg.opt.device = g->device;
  g->cfg.opt.cache_dir = g->cache_dir;
  g->cfg.opt.extra_source = g->extra;
  if (!g->cfg.base_ms)
    g->cfg.base_ms = 1000;
  if (!g->cfg.max_ms)
    g->cfg.max_ms = 300000;
  if (g->cfg.max_ms < g->cfg.base_ms)
    g->cfg.max_ms = g->cfg.base_ms;
  g->dev = dev;
  pthread_rwlock_init(&g->dev_lock, NULL);
  pthread_mutex_init(&g->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&g->cond, &ca);
  pthread_condattr_destroy(&ca);
  if (!r)
    r = -pthread_create(&g->thread, NULL, retry_thread, g);
  if (r) {
    g->dev = NULL; /* the caller keeps it */
    g->stop = 1;
    devguard_stop(g);
    return r;
  }
  *out = g;
  return 0;
}

void devguard_stop(struct devguard *g) {
  if (!g)
    return;
  pthread_mutex_lock(&g->lock);
  int started = !g->stop;
  g->stop = 1;
  pthread_cond_signal(&g->cond);
  pthread_mutex_unlock(&g->lock);
  if (started)
    pthread_join(g->thread, NULL);
  trueno_ocl_close(g->dev);
  pthread_rwlock_destroy(&g->dev_lock);
  pthread_mutex_destroy(&g->lock);
  pthread_cond_destroy(&g->cond);
  free(g->device);
  free(g->cache_dir);
  free(g->extra);
  free(g->name);
  free(g);
}
