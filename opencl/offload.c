/* Engine glue for the OpenCL module: see offload.h.
 * SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl_cache.h"
#include "offload.h"
#if HAVE_OPENCL
#include "calibrate.h"
#include "devguard.h"
#include "trueno_ocl.h"
#endif

struct trueno_offload {
  struct trueno_store *st;
  struct trueno_offload_config cfg;
#if HAVE_OPENCL
  struct trueno_ocl *dev; /* until the guard takes it */
  struct devguard *guard;
#endif
  int active;       /* the hook is installed */
  uint32_t min_pages;
  int reads;        /* reads of >= min_pages decode on the device too */
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
           "\"offload_reads\": \"%s\", \"offload_reason\": \"%s\"",
           trueno_offload_mode_name(o->cfg.mode),
           o->active ? "opencl" : "cpu", dev, o->active ? o->min_pages : 0,
           o->active && o->reads ? "opencl" : "cpu", why);
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

static int batch_decompress(void *ctx, const void *src, const uint32_t *off,
                            const uint32_t *len, size_t n, void *pages) {
  struct trueno_offload *o = ctx;
  return devguard_decompress(o->guard, src, off, len, n, pages);
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
      .compress = batch_compress,
      .decompress = o->reads ? batch_decompress : NULL,
      .ctx = o,
      .min_pages = o->min_pages};
  if (trueno_store_set_batch_codec(o->st, &bc) == 0) {
    o->active = 1;
    return;
  }
  decide(o, "opencl: only algorithm=lz4 stores can offload: the CPU "
            "compresses");
  devguard_stop(o->guard);
  o->guard = NULL;
}

/* offload=auto: the device's timings decide; one line says what. */
static uint32_t calibrate(struct trueno_offload *o, const char *kernels) {
  struct calibration c;
  offload_calibrate(o->dev, &c);
  if (c.err) {
    decide(o, "opencl: %s: calibration failed (%s): offload=auto uses the "
              "CPU codec",
           o->device, strerror(-c.err));
    return 0;
  }
  o->reads = c.reads;
  if (c.min_pages)
    decide(o, "opencl: offload=auto chose the device %s for writes%s of >= "
              "%u pages (MB/s device/CPU, end to end: %s; %s)",
           o->device, c.reads ? " and reads" : "", c.min_pages, c.table,
           kernels);
  else
    decide(o, "opencl: offload=auto chose the CPU codec: the device %s is "
              "not faster (MB/s device/CPU, end to end: %s; %s)",
           o->device, c.table, kernels);
  return c.min_pages;
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
      o->reads = 1;
      decide(o, "opencl: offload=opencl on %s for writes and reads of >= %u "
                "pages (%s)",
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
