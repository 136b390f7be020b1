/* nbdkit-trueno-plugin: a compressed RAM disk over NBD.
 *
 * Only the nbdkit callbacks live here; every one hands off to the engine
 * (engine/trueno.h), which owns the data path.
 *
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "client-access.h"
#include "engine-params.h"
#include "housekeeping.h"
#include "offload.h"
#include "param-table.h"
#include "prometheus.h"
#include "size-check.h"
#include "store-state.h"
#include "swap-mode.h"
#include "trueno.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* nbdkit before 1.33.10 (upstream commit 9d82aa4f) aborts when a client
 * hangs up while two worker threads of its connection hold replies: the
 * second sends on the socket the first closed (docs/nbdkit-disconnect.md).
 * One request at a time per connection has no second worker; connections
 * still run in parallel (multi-conn). */
#if NBDKIT_VERSION_MAJOR == 1 &&                                            \
    (NBDKIT_VERSION_MINOR < 33 ||                                          \
     (NBDKIT_VERSION_MINOR == 33 && NBDKIT_VERSION_MICRO < 10))
#define NBDKIT_SEND_RACE 1
#endif

/* The largest read or write nbdkit accepts (its MAX_REQUEST_SIZE, 64 MiB
 * in 1.32); each one in flight is a buffer of that size. */
#define MAX_REQUEST (64u << 20)

/* The engine's configuration (cfg) and swap=: common/engine-params.c. */
static struct engine_params params;
static struct trueno_config *const cfg = &params.cfg;
static int size_given;
static char *stats_path;
static char *prom_path;
static mode_t prom_mode = PROMETHEUS_MODE_DEFAULT;
static int prom_mode_given;
/* The Prometheus device label: name=, else prom_path's base name. */
static char prom_device[TRUENO_STATS_LABEL_MAX + 1];
static int name_given;
static struct trueno_store *store;
/* state=, state-name=: the store outlives this server (store-state.h). */
static struct store_state state = STORE_STATE_INIT;
static char *state_path; /* state=, made absolute */
static enum trueno_offload_mode offload_mode = TRUENO_OFFLOAD_OFF;
static char *opencl_device;
static char *opencl_cache; /* NULL: the default directory */
static uint32_t offload_min_pages;
static struct trueno_offload *offload;
static struct housekeeping *housekeeping;

/* --help's parameter lines, from param-table.h.  nbdkit copies the plugin
 * struct before it calls load, and calls load before it prints them: the
 * pointer is fixed, load writes the text (test-param-docs checks it is all
 * there). */
static char config_help[4096];

/* nbdkit serves each connection with many threads and glibc gives each
 * thread its own malloc arena (up to 8 per CPU), keeping freed request
 * buffers resident in them: that costs more memory than a small store
 * holds.  A compressed RAM disk is only worth running if it is dense, so cap
 * the arenas, map large request buffers (a fixed threshold also stops glibc
 * from raising it after each free) and give freed heap tops back early. */
static void plugin_load(void) {
  engine_params_init(&params);
  param_help(config_help, sizeof config_help, PARAM_PLUGIN, "");
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

/* An orderly exit detaches a persistent store: its state stays with its
 * keeper for the next server. */
static void plugin_unload(void) {
  store_state_close(&state, store);
  free(state_path);
  free(stats_path);
  free(prom_path);
  free(opencl_device);
  free(opencl_cache);
}

static int parse_positive_size(const char *key, const char *value,
                               uint64_t *out) {
  int64_t v = nbdkit_parse_size(value);
  if (v == -1) {
    /* nbdkit has said what is wrong with the value; say whose it is. */
    nbdkit_error("%s: invalid size '%s'", key, value);
    return -1;
  }
  if (v <= 0) {
    nbdkit_error("%s: must be greater than zero: %s", key, value);
    return -1;
  }
  *out = (uint64_t)v;
  return 0;
}

/* stats=FILE, prometheus=FILE: a file the housekeeping thread writes. */
static int file_param(const char *key, const char *value, char **path) {
  if (!*value) {
    nbdkit_error("%s: needs a file name", key);
    return -1;
  }
  free(*path);
  /* nbdkit may chdir("/") when it daemonises. */
  *path = nbdkit_absolute_path(value);
  return *path ? 0 : -1;
}

static int plugin_config(const char *key, const char *value) {
  char err[256];
  int r = engine_params_set(&params, key, value, err, sizeof err);
  if (r != -ENOENT) {
    if (r)
      nbdkit_error("%s", err);
    return r ? -1 : 0;
  }
  const struct param_desc *d = param_find(key);
  switch (d && (d->front_ends & PARAM_PLUGIN) ? d->id : PARAM_COUNT) {
  case PARAM_SIZE:
    size_given = 1;
    return parse_positive_size(key, value, &cfg->size);
  case PARAM_MEM_LIMIT:
    return parse_positive_size(key, value, &cfg->mem_limit);
  case PARAM_OFFLOAD:
    if (trueno_offload_parse(value, &offload_mode)) {
      nbdkit_error("offload: unknown mode '%s' (use off, auto or opencl)",
                   value);
      return -1;
    }
    return 0;
  case PARAM_OPENCL_DEVICE:
    free(opencl_device);
    opencl_device = strdup(value);
    return opencl_device ? 0 : -1;
  case PARAM_OPENCL_CACHE:
    if (!*value) {
      nbdkit_error("opencl-cache: needs a directory or off");
      return -1;
    }
    free(opencl_cache);
    /* nbdkit may chdir("/") when it daemonises. */
    opencl_cache = strcmp(value, "off") == 0 ? strdup(value)
                                             : nbdkit_absolute_path(value);
    return opencl_cache ? 0 : -1;
  case PARAM_OFFLOAD_MIN_PAGES:
    if (nbdkit_parse_uint32_t("offload-min-pages", value,
                              &offload_min_pages) == -1)
      return -1;
    if (offload_min_pages == 0) {
      nbdkit_error("offload-min-pages: must be at least 1");
      return -1;
    }
    return 0;
  case PARAM_ALLOW_UNAUTHENTICATED:
    return client_access_config(value);
  case PARAM_OVERCOMMIT:
    return size_check_config(value);
  case PARAM_STATS:
    return file_param(key, value, &stats_path);
  case PARAM_PROMETHEUS:
    return file_param(key, value, &prom_path);
  case PARAM_PROMETHEUS_MODE:
    prom_mode_given = 1;
    if (prometheus_mode_parse(value, &prom_mode, err, sizeof err)) {
      nbdkit_error("%s", err);
      return -1;
    }
    return 0;
  case PARAM_STATE:
    /* nbdkit may chdir("/") when it daemonises. */
    if (value[0] && value[0] != '/' && strcmp(value, "systemd") &&
        strncmp(value, "fd:", 3)) {
      free(state_path);
      if (!(state_path = nbdkit_absolute_path(value)))
        return -1;
      value = state_path;
    }
    /* fall through */
  case PARAM_STATE_NAME:
    if (store_state_set(&state, key, value, err, sizeof err)) {
      nbdkit_error("%s", err);
      return -1;
    }
    return 0;
  case PARAM_NAME:
    name_given = 1;
    if (prometheus_label_check(key, value, err, sizeof err)) {
      nbdkit_error("%s", err);
      return -1;
    }
    snprintf(prom_device, sizeof prom_device, "%s", value);
    return 0;
  default:
    nbdkit_error("unknown parameter '%s'", key);
    return -1;
  }
}

static int prometheus_complete(void) {
  if (!prom_path) {
    if (prom_mode_given || name_given) {
      nbdkit_error("%s: only applies with prometheus=FILE",
                   name_given ? "name" : "prometheus-mode");
      return -1;
    }
    return 0;
  }
  char err[256];
  if (!name_given &&
      prometheus_label_of_path("prometheus", prom_path, prom_device,
                               sizeof prom_device, err, sizeof err)) {
    nbdkit_error("%s", err);
    return -1;
  }
  int r = stats_file_check(prom_path);
  if (r) {
    nbdkit_error("prometheus: cannot write beside %s: %s", prom_path,
                 strerror(-r));
    return -1;
  }
  return 0;
}

static int plugin_config_complete(void) {
  if (!size_given) {
    nbdkit_error("size: parameter is required, e.g. size=8G");
    return -1;
  }
  char err[256];
  if (engine_params_check(&params, err, sizeof err) ||
      store_state_check(&state, err, sizeof err)) {
    nbdkit_error("%s", err);
    return -1;
  }
  if (size_check(cfg->size, cfg->mem_limit) == -1)
    return -1;
  swap_mode_set(params.swap);
  client_access_complete(params.swap);
  if (opencl_cache && strcmp(opencl_cache, "off") != 0) {
    int r = trueno_offload_cache_prepare(opencl_cache);
    if (r) {
      nbdkit_error("opencl-cache: cannot use %s as the kernel cache: %s",
                   opencl_cache, strerror(-r));
      return -1;
    }
  }
  if (stats_path) {
    int r = stats_file_check(stats_path);
    if (r) {
      nbdkit_error("stats: cannot write beside %s: %s", stats_path,
                   strerror(-r));
      return -1;
    }
  }
  return prometheus_complete();
}

static void plugin_dump_plugin(void) {
  for (size_t i = 0; i < PARAM_COUNT; i++) {
    const struct param_desc *d = &param_table[i];
    char choices[128];
    if (d->dump_key && (d->front_ends & PARAM_PLUGIN) &&
        param_choices(d, choices, sizeof choices) < sizeof choices)
      printf("trueno_%s=%s\n", d->dump_key, choices);
  }
  printf("trueno_zstd_levels=%d..%d\n", trueno_zstd_level_min(),
         trueno_zstd_level_max());
  printf("trueno_zstd_level_default=%d\n", trueno_zstd_level_default());
  printf("trueno_page_size=%u\n", TRUENO_PAGE_SIZE);
  printf("trueno_recompress_idle_default=%u\n", TRUENO_RECOMPRESS_IDLE);
  printf("trueno_recompress_rate_default=%u\n", TRUENO_RECOMPRESS_RATE);
  printf("trueno_recompress_rate_max=%u\n", TRUENO_RECOMPRESS_RATE_MAX);
  printf("trueno_group_pages_max=%u\n", TRUENO_GROUP_PAGES_MAX);
  printf("trueno_group_pages_on=%u\n", TRUENO_GROUP_PAGES);
  printf("trueno_group_level_default=%d\n", TRUENO_GROUP_LEVEL);
  printf("trueno_swap_mode=yes\n");
  printf("trueno_swap_serves=root-unix,tls\n");
  printf("trueno_max_request=%u\n", MAX_REQUEST);
  printf("trueno_prometheus=yes\n");
  /* state=: socket, fd or systemd (store-state.h). */
  printf("trueno_state=socket,fd,systemd\n");
  printf("trueno_opencl=%s\n", trueno_offload_available() ? "yes" : "no");
}

static int plugin_get_ready(void) {
  swap_mode_prepare();
  char err[512];
  int attached;
  int r = store_state_open(&state, cfg, &store, &attached, err, sizeof err);
  if (r && err[0])
    nbdkit_error("%s", err);
  else if (r == -ENOSPC)
    nbdkit_error("mem-limit: too small to hold even the slot table of a "
                 "%" PRIu64 "-byte device",
                 cfg->size);
  else if (r == -ENOMEM)
    nbdkit_error("size: %" PRIu64 " bytes is too large: no memory for its "
                 "slot table",
                 cfg->size);
  else if (r)
    nbdkit_error("cannot create the store: %s", strerror(-r));
  if (r)
    return -1;
  if (state.spec)
    nbdkit_debug("state: %s state '%s' of %s", attached ? "attached" : "new",
                 state.name ? state.name : state.spec, state.spec);
  /* A swap device's writes must not allocate: its page table comes now. */
  if (swap_mode_enabled() && (r = trueno_store_populate(store))) {
    nbdkit_error("swap: %s for the page table of a %" PRIu64 "-byte device "
                 "(swap=on allocates it up front: 16 bytes per 4 KiB)",
                 r == -ENOSPC ? "mem-limit is too small" : strerror(-r),
                 cfg->size);
    return -1;
  }
  if (swap_mode_enabled())
    nbdkit_debug("swap: page table of %" PRIu64 " pages allocated",
                 cfg->size / TRUENO_PAGE_SIZE);
  return swap_mode_protect();
}

/* The offload's decisions and fallbacks: one line each.  nbdkit has no
 * warning level; its error level is the one always shown (or logged). */
static void offload_log(const char *msg) { nbdkit_error("%s", msg); }

/* Threads must start after nbdkit forks into the background. */
static int plugin_after_fork(void) {
  if (swap_mode_after_fork(store) == -1)
    return -1;
  /* OpenCL runtimes start threads: after the fork, never before. */
  struct trueno_offload_config oc = {.mode = offload_mode,
                                     .device = opencl_device,
                                     .cache_dir = opencl_cache,
                                     .min_pages = offload_min_pages,
                                     .log = offload_log};
  offload = trueno_offload_start(store, &oc);
  if (!offload) {
    nbdkit_error("offload: out of memory");
    return -1;
  }
  struct housekeeping_files files = {
      .stats = stats_path,
      .stats_extra = trueno_offload_json(offload),
      .prometheus = prom_path,
      .prometheus_mode = prom_mode,
      .device = prom_device,
  };
  int r = housekeeping_start(&files, store, cfg->algorithm, &housekeeping);
  if (r) {
    nbdkit_error("cannot start the housekeeping thread: %s", strerror(-r));
    return -1;
  }
  return 0;
}

static void plugin_cleanup(void) {
  swap_mode_stop();
  housekeeping_stop(housekeeping);
  housekeeping = NULL;
  trueno_offload_stop(offload);
  offload = NULL;
}

static int plugin_thread_model(void) {
#ifdef NBDKIT_SEND_RACE
  return NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS;
#else
  return NBDKIT_THREAD_MODEL_PARALLEL;
#endif
}

static void *plugin_open(int readonly) {
  (void)readonly;
  if (client_access_check() == -1)
    return NULL;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t plugin_get_size(void *h) {
  (void)h;
  return (int64_t)cfg->size;
}

static int plugin_block_size(void *h, uint32_t *minimum, uint32_t *preferred,
                             uint32_t *maximum) {
  (void)h;
  *minimum = 1;
  *preferred = TRUENO_PAGE_SIZE;
  *maximum = MAX_REQUEST;
  return 0;
}

static int plugin_yes(void *h) {
  (void)h;
  return 1;
}

static int plugin_no(void *h) {
  (void)h;
  return 0;
}

/* The store is RAM: FUA and flush have nothing to wait for. */
static int plugin_can_fua(void *h) {
  (void)h;
  return NBDKIT_FUA_NATIVE;
}

static int engine_result(int r) {
  if (r == 0)
    return 0;
  nbdkit_set_error(-r);
  if (r != -ENOSPC)
    nbdkit_error("%s", strerror(-r));
  return -1;
}

static int plugin_pread(void *h, void *buf, uint32_t count, uint64_t offset,
                        uint32_t flags) {
  (void)h;
  (void)flags;
  return engine_result(trueno_read(store, buf, count, offset));
}

static int plugin_pwrite(void *h, const void *buf, uint32_t count,
                         uint64_t offset, uint32_t flags) {
  (void)h;
  (void)flags;
  return engine_result(trueno_write(store, buf, count, offset));
}

static int plugin_flush(void *h, uint32_t flags) {
  (void)h;
  (void)flags;
  return 0;
}

static int plugin_trim(void *h, uint32_t count, uint64_t offset,
                       uint32_t flags) {
  (void)h;
  (void)flags;
  return engine_result(trueno_trim(store, count, offset));
}

/* Zeroing releases pages, which is as fast as it gets: fast-zero is always
 * honoured and may_trim changes nothing. */
static int plugin_zero(void *h, uint32_t count, uint64_t offset,
                       uint32_t flags) {
  (void)h;
  (void)flags;
  return engine_result(trueno_zero(store, count, offset));
}

static int plugin_extents(void *h, uint32_t count, uint64_t offset,
                          uint32_t flags, struct nbdkit_extents *extents) {
  (void)h;
  uint64_t end = offset + count;
  while (offset < end) {
    enum trueno_extent_type t;
    uint64_t len;
    int r = trueno_extent(store, end - offset, offset, &t, &len);
    if (r)
      return engine_result(r);
    uint32_t type = 0;
    if (t == TRUENO_EXTENT_HOLE)
      type = NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
    else if (t == TRUENO_EXTENT_ZERO)
      type = NBDKIT_EXTENT_ZERO;
    if (nbdkit_add_extent(extents, offset, len, type) == -1)
      return -1;
    offset += len;
    if (flags & NBDKIT_FLAG_REQ_ONE)
      break;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
    .name = "trueno",
    .version = PACKAGE_VERSION,
    .longname = "trueno-zram compressed RAM disk",
    .description = "A compressed RAM disk: pages kept as LZ4/ZSTD in RAM.",
    .magic_config_key = "size",
    .load = plugin_load,
    .unload = plugin_unload,
    .config = plugin_config,
    .config_complete = plugin_config_complete,
    .config_help = config_help,
    .dump_plugin = plugin_dump_plugin,
    .get_ready = plugin_get_ready,
    .after_fork = plugin_after_fork,
    .cleanup = plugin_cleanup,
    .thread_model = plugin_thread_model,
    .open = plugin_open,
    .get_size = plugin_get_size,
    .block_size = plugin_block_size,
    .can_multi_conn = plugin_yes,
    .can_trim = plugin_yes,
    .can_zero = plugin_yes,
    .can_fast_zero = plugin_yes,
    .can_flush = plugin_yes,
    .can_extents = plugin_yes,
    .can_fua = plugin_can_fua,
    .is_rotational = plugin_no,
    .pread = plugin_pread,
    .pwrite = plugin_pwrite,
    .flush = plugin_flush,
    .trim = plugin_trim,
    .zero = plugin_zero,
    .extents = plugin_extents,
    .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
