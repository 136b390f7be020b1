/* Engine glue for the OpenCL module: see offload.h.
 * SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "lz4page.h"
#include "ocl_cache.h"
#include "offload.h"
#if HAVE_OPENCL
#include "devguard.h"
#include "trueno_ocl.h"
#endif

#define PAGE TRUENO_PAGE_SIZE
#define ARENA_CAP ARENA_MAX_OBJ /* what the engine asks of a batch */

struct trueno_offload {
  struct trueno_store *st;
  struct trueno_offload_config cfg;
#if HAVE_OPENCL
  struct trueno_ocl *dev; /* until the guard takes it */
  struct devguard *guard;
#endif
  int active;       /* the hook is installed */
  uint32_t min_pages;
  char device[160];
  char reason[2048];
  char json[5120];
};

static const char *const mode_names[] = {"off", "auto", "opencl"};

int trueno_offload_parse(const char *s, enum trueno_offload_mode *mode) {
  for (unsigned i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
    if (strcmp(s, mode_names[i]) == 0) {
      *mode = (enum trueno_offload_mode)i;
      return 0;
    }
  }
  return -EINVAL;
}

const char *trueno_offload_mode_name(enum trueno_offload_mode mode) {
  return (unsigned)mode < 3 ? mode_names[mode] : "unknown";
}

int trueno_offload_available(void) { return HAVE_OPENCL; }

int trueno_offload_cache_prepare(const char *dir) {
  return ocl_cache_mkdir(dir);
}

static void say(struct trueno_offload *o, const char *msg) {
  if (o->cfg.log)
    o->cfg.log(msg);
}

/* Keeps the reason and logs it as one line. */
static void decide(struct trueno_offload *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void decide(struct trueno_offload *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->reason, sizeof o->reason, fmt, ap);
  va_end(ap);
  say(o, o->reason);
}

static void json_escape(char *dst, size_t cap, const char *s) {
  size_t j = 0;
  for (; *s && j + 2 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      dst[j++] = '\\';
    dst[j++] = c < 32 ? ' ' : (char)c;
  }
  dst[j] = 0;
}

static void make_json(struct trueno_offload *o) {
  char dev[2 * sizeof o->device], why[2 * sizeof o->reason];
  json_escape(dev, sizeof dev, o->device);
  json_escape(why, sizeof why, o->reason);
  snprintf(o->json, sizeof o->json,
           "\"offload\": \"%s\", \"offload_active\": \"%s\", "
           "\"offload_device\": \"%s\", \"offload_min_pages\": %u, "
           "\"offload_reason\": \"%s\"",
           trueno_offload_mode_name(o->cfg.mode),
           o->active ? "opencl" : "cpu", dev, o->active ? o->min_pages : 0,
           why);
}

const char *trueno_offload_json(const struct trueno_offload *o) {
  return o->json;
}

#if HAVE_OPENCL
static int batch_compress(void *ctx, const void *pages, size_t n,
                          unsigned cap, void *dst, uint32_t *off,
                          uint32_t *len) {
  struct trueno_offload *o = ctx;
  return devguard_compress(o->guard, pages, n, cap, dst, off, len);
}

static long env_long(const char *name, long def) {
  const char *v = getenv(name);
  return v && *v ? strtol(v, NULL, 10) : def;
}

/* The device goes behind the guard: failures fall back to the CPU and
 * the device is retried (devguard.h). */
static int guard_device(struct trueno_offload *o,
                        const struct trueno_ocl_options *opt) {
  struct devguard_config gc = {
      .opt = *opt,
      .name = o->device,
      .log = o->cfg.log,
      .base_ms = (unsigned)env_long("TRUENO_OCL_RETRY_MS", 0),
      .fail_after = env_long("TRUENO_OCL_FAIL_AFTER", -1),
      .fail_count = env_long("TRUENO_OCL_FAIL_COUNT", -1),
  };
  int r = devguard_start(o->dev, &gc, &o->guard);
  if (!r)
    o->dev = NULL;
  return r;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Puts the device behind its guard and the guard on the store. */
static void install(struct trueno_offload *o,
                    const struct trueno_ocl_options *opt) {
  int r = guard_device(o, opt);
  if (r) {
    decide(o, "opencl: cannot start the device's retry thread (%s): the "
              "CPU codec compresses",
           strerror(-r));
    return;
  }
  struct trueno_batch_codec bc = {
      .compress = batch_compress, .ctx = o, .min_pages = o->min_pages};
  if (trueno_store_set_batch_codec(o->st, &bc) == 0) {
    o->active = 1;
    return;
  }
  decide(o, "opencl: only algorithm=lz4 stores can offload: the CPU "
            "compresses");
  devguard_stop(o->guard);
  o->guard = NULL;
}

/* Memory-like pages: pointer arrays, small integers, text, zero runs, and
 * one page in eight random, from a fixed seed. */
static void synth_pages(uint8_t *p, size_t n) {
  static const char *const words[] = {"the ",    "page ",  "memory ", "swap ",
                                      "struct ", "int ",   "return ", "0x",
                                      "value ",  "node ",  "\n\t",    "{ ",
                                      "} ",      "error ", "list ",   "key "};
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i++) {
    uint8_t *pg = p + i * PAGE;
    size_t k = 0;
    while (k < PAGE) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      unsigned kind = (unsigned)(s >> 60) & 7u, run = 64 + (unsigned)(s >> 40) % 448;
      if (i % 8 == 7)
        kind = 7;
      for (unsigned j = 0; j < run && k < PAGE; j++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint8_t b;
        switch (kind) {
        case 0: case 1: /* pointers: 0x00007fxxxxxxxxx8 */
          b = (k & 7) >= 6 ? 0 : (k & 7) == 5 ? 0x7f : (k & 7) == 0 ? (uint8_t)((s >> 56) & 0xf8) : (uint8_t)(s >> 56);
          break;
        case 2: /* small integers */
          b = (k & 3) ? 0 : (uint8_t)((s >> 58) & 15);
          break;
        case 3: /* zeros */
          b = 0;
          break;
        case 7: /* random */
          b = (uint8_t)(s >> 56);
          break;
        default: { /* text */
          const char *w = words[(s >> 56) & 15];
          size_t l = strlen(w);
          for (size_t q = 0; q < l && k < PAGE; q++)
            pg[k++] = (uint8_t)w[q];
          continue;
        }
        }
        pg[k++] = b;
      }
    }
  }
}

static const uint32_t cal_sizes[] = {8192, 2048, 512, 128, 32};

/* Best of three runs, seconds. */
static double time_device(struct trueno_offload *o, const uint8_t *pages,
                          size_t n, uint8_t *dst, uint32_t *off,
                          uint32_t *len, int *err) {
  double best = 1e9;
  for (int rep = 0; rep < 3 && !*err; rep++) {
    double t0 = now();
    *err = trueno_ocl_compress(o->dev, pages, n, ARENA_CAP, dst, off, len);
    double t = now() - t0;
    if (rep && t < best) /* the first run warms up */
      best = t;
  }
  return best;
}

static double time_cpu(const uint8_t *pages, size_t n, uint8_t *dst) {
  static struct lz4page_state state;
  double best = 1e9;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now();
    for (size_t i = 0; i < n; i++)
      lz4page_compress(&state, pages + i * PAGE, dst + i * ARENA_CAP,
                       ARENA_CAP);
    double t = now() - t0;
    if (rep && t < best)
      best = t;
  }
  return best;
}

/* offload=auto: the smallest calibrated size from which the device wins at
 * every larger one, or 0. */
static uint32_t calibrate(struct trueno_offload *o, const char *kernels) {
  size_t n = cal_sizes[0];
  uint8_t *pages = malloc(n * PAGE), *dst = malloc(n * ARENA_CAP);
  uint32_t *off = malloc(n * 2 * sizeof *off);
  uint32_t chosen = 0;
  char table[200] = "";
  size_t tl = 0;
  int err = pages && dst && off ? 0 : -ENOMEM;
  if (!err)
    synth_pages(pages, n);
  for (unsigned i = 0; !err && i < sizeof cal_sizes / sizeof *cal_sizes; i++) {
    size_t m = cal_sizes[i];
    double td = time_device(o, pages, m, dst, off, off + n, &err);
    double tc = time_cpu(pages, m, dst);
    if (err)
      break;
    tl += (size_t)snprintf(table + tl, sizeof table - tl, "%s%zu: %.0f/%.0f",
                           i ? ", " : "", m, m * PAGE / td / 1e6,
                           m * PAGE / tc / 1e6);
    if (tl >= sizeof table)
      tl = sizeof table - 1;
    if (td >= tc)
      break;
    chosen = (uint32_t)m;
  }
  free(pages);
  free(dst);
  free(off);
  if (err) {
    decide(o, "opencl: %s: calibration failed (%s): offload=auto uses the "
              "CPU codec",
           o->device, strerror(-err));
    return 0;
  }
  if (chosen)
    decide(o, "opencl: offload=auto chose the device %s for writes of >= %u "
              "pages (MB/s device/CPU, end to end: %s; %s)",
           o->device, chosen, table, kernels);
  else
    decide(o, "opencl: offload=auto chose the CPU codec: the device %s is "
              "not faster (MB/s device/CPU, end to end: %s; %s)",
           o->device, table, kernels);
  return chosen;
}
#endif

struct trueno_offload *trueno_offload_start(
    struct trueno_store *st, const struct trueno_offload_config *cfg) {
  struct trueno_offload *o = calloc(1, sizeof *o);
  if (!o)
    return NULL;
  o->st = st;
  o->cfg = *cfg;
  o->cfg.device = NULL; /* the caller's strings may not outlive us */
  o->cfg.cache_dir = NULL;
  snprintf(o->device, sizeof o->device, "none");
  if (cfg->mode == TRUENO_OFFLOAD_OFF) {
    snprintf(o->reason, sizeof o->reason, "offload=off");
    make_json(o);
    return o;
  }
#if HAVE_OPENCL
  const char *bad = getenv("TRUENO_OCL_BAD_KERNEL");
  struct trueno_ocl_options opt = {
      .device = cfg->device,
      .cache_dir = cfg->cache_dir,
      .extra_source = bad && *bad == '1' ? "\n__kernel void broken( {\n" : NULL,
  };
  const char *why = "";
  int r = trueno_ocl_open(&opt, &o->dev, &why);
  if (r) {
    o->dev = NULL;
    decide(o, "opencl: %s (%s): offload=%s falls back to the CPU codec",
           why, strerror(-r), trueno_offload_mode_name(cfg->mode));
  } else {
    snprintf(o->device, sizeof o->device, "%s",
             trueno_ocl_device_name(o->dev));
    const char *kernels = "";
    trueno_ocl_kernel_cache(o->dev, &kernels);
    if (cfg->mode == TRUENO_OFFLOAD_AUTO) {
      o->min_pages = calibrate(o, kernels);
    } else {
      o->min_pages = cfg->min_pages ? cfg->min_pages : 2;
      decide(o, "opencl: offload=opencl on %s for writes of >= %u pages (%s)",
             o->device, o->min_pages, kernels);
    }
    if (o->min_pages)
      install(o, &opt);
    if (!o->active) {
      trueno_ocl_close(o->dev);
      o->dev = NULL;
    }
  }
#else
  decide(o, "opencl: this build has no OpenCL support: offload=%s falls "
            "back to the CPU codec",
         trueno_offload_mode_name(cfg->mode));
#endif
  make_json(o);
  return o;
}

void trueno_offload_stop(struct trueno_offload *o) {
  if (!o)
    return;
  if (o->active)
    trueno_store_set_batch_codec(o->st, NULL);
#if HAVE_OPENCL
  devguard_stop(o->guard);
  trueno_ocl_close(o->dev);
#endif
  free(o);
}
