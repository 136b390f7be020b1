/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "engine-params.h"

#include "param-table.h"
#include "server-guard.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* recompress-idle's largest value, where a long can hold it. */
#define IDLE_MAX (LONG_MAX < UINT32_MAX ? LONG_MAX : (long)UINT32_MAX)

void engine_params_init(struct engine_params *p) {
  memset(p, 0, sizeof *p);
  p->cfg.algorithm = TRUENO_ALG_LZ4;
}

int engine_params_parse_long(const char *s, long min, long max, long *out) {
  if (!s || !*s)
    return -EINVAL;
  errno = 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < min || v > max)
    return -EINVAL;
  *out = v;
  return 0;
}

int param_error(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

static int set_algorithm(struct engine_params *p, const char *v, char *err,
                         size_t errlen) {
  if (trueno_algorithm_parse(v, &p->cfg.algorithm))
    return param_error(
        err, errlen, "algorithm: unknown algorithm '%s' (use lz4 or zstd)", v);
  return 0;
}

static int set_level(struct engine_params *p, const char *v, char *err,
                     size_t errlen) {
  int min = trueno_zstd_level_min(), max = trueno_zstd_level_max();
  long l;
  if (engine_params_parse_long(v, LONG_MIN, LONG_MAX, &l))
    return param_error(
        err, errlen,
        "level: '%s' is not a number (zstd levels are %d..%d, not 0)", v, min,
        max);
  /* 0 is zstd's own "default" and would hide a typo: refuse it. */
  if (l < min || l > max || !l)
    return param_error(
        err, errlen,
        "level: '%s' is out of range: zstd levels are %d..%d, not 0", v, min,
        max);
  p->cfg.level = (int)l;
  p->level_given = true;
  return 0;
}

static int set_lz4_impl(struct engine_params *p, const char *v, char *err,
                        size_t errlen) {
  if (trueno_lz4_impl_parse(v, &p->cfg.lz4_impl))
    return param_error(err, errlen,
                       "lz4-impl: unknown implementation '%s' (use trueno or "
                       "liblz4)",
                       v);
  p->lz4_impl_given = true;
  return 0;
}

static int set_recompress(struct engine_params *p, const char *v, char *err,
                          size_t errlen) {
  int r = trueno_recompressor_parse(v, &p->cfg.recompress,
                                    &p->cfg.recompress_level);
  if (r == -ERANGE) {
    /* The parser has set the recompressor, for its level range. */
    int min, max, dflt;
    trueno_recompressor_levels(p->cfg.recompress, &min, &max, &dflt);
    p->cfg.recompress = TRUENO_RECOMPRESS_OFF;
    return param_error(
        err, errlen,
        "recompress: level out of range in '%s' (levels %d..%d, not 0)", v,
        min, max);
  }
  if (r)
    return param_error(err, errlen,
                       "recompress: unknown recompressor '%s' (use off, "
                       "zstd[:LEVEL] or lz4hc[:LEVEL])",
                       v);
  return 0;
}

/* A count from 1 to max for key, and that it was given (0 would stand for
 * the default: a user who writes it means something else). */
static int parse_count(const char *key, const char *v, long max,
                       const char *unit, uint32_t *out, bool *given,
                       char *err, size_t errlen) {
  long n;
  if (engine_params_parse_long(v, 1, max, &n))
    return param_error(err, errlen,
                       "%s: expected a number of %s from 1 to %ld, not '%s'",
                       key, unit, max, v);
  *out = (uint32_t)n;
  *given = true;
  return 0;
}

static int set_recompress_idle(struct engine_params *p, const char *v,
                               char *err, size_t errlen) {
  return parse_count("recompress-idle", v, IDLE_MAX, "seconds",
                     &p->cfg.recompress_idle, &p->recompress_idle_given, err,
                     errlen);
}

static int set_recompress_rate(struct engine_params *p, const char *v,
                               char *err, size_t errlen) {
  return parse_count("recompress-rate", v, TRUENO_RECOMPRESS_RATE_MAX,
                     "pages", &p->cfg.recompress_rate,
                     &p->recompress_rate_given, err, errlen);
}

static int set_group(struct engine_params *p, const char *v, char *err,
                     size_t errlen) {
  long n;
  if (!strcmp(v, "off")) {
    p->cfg.group_pages = 0;
  } else if (!strcmp(v, "on")) {
    p->cfg.group_pages = TRUENO_GROUP_PAGES;
  } else if (engine_params_parse_long(v, 2, TRUENO_GROUP_PAGES_MAX, &n) == 0) {
    p->cfg.group_pages = (uint32_t)n;
  } else {
    return param_error(err, errlen,
                       "group: expected off, on or a number of pages from 2 "
                       "to %u, not '%s'",
                       TRUENO_GROUP_PAGES_MAX, v);
  }
  return 0;
}

static int set_group_level(struct engine_params *p, const char *v, char *err,
                           size_t errlen) {
  long l;
  int min = trueno_zstd_level_min(), max = trueno_zstd_level_max();
  if (engine_params_parse_long(v, min, max, &l) || !l)
    return param_error(err, errlen,
                       "group-level: expected a zstd level from %d to %d, "
                       "not 0, not '%s'",
                       min, max, v);
  p->cfg.group_level = (int)l;
  p->group_tuning = "group-level";
  return 0;
}

static int set_group_count(struct engine_params *p, const char *key,
                           const char *v, long max, const char *unit,
                           uint32_t *out, char *err, size_t errlen) {
  bool given;
  int r = parse_count(key, v, max, unit, out, &given, err, errlen);
  if (!r)
    p->group_tuning = key;
  return r;
}

/* nbdkit_parse_bool's spellings, so swap= reads the same in both front
 * ends. */
static int set_swap(struct engine_params *p, const char *v, char *err,
                    size_t errlen) {
  static const char *const on[] = {"on", "1", "yes", "y", "true", "t"};
  static const char *const off[] = {"off", "0", "no", "n", "false", "f"};
  for (size_t i = 0; i < sizeof on / sizeof *on; i++) {
    if (!strcasecmp(v, on[i]) || !strcasecmp(v, off[i])) {
      p->swap = !strcasecmp(v, on[i]);
      p->cfg.pool_reserve = p->swap ? GUARD_POOL_RESERVE : 0;
      return 0;
    }
  }
  return param_error(err, errlen, "swap: expected on or off, not '%s'", v);
}

int engine_params_set(struct engine_params *p, const char *key,
                      const char *value, char *err, size_t errlen) {
  const struct param_desc *d = param_find(key);
  if (!d || !d->engine)
    return -ENOENT;
  switch (d->id) {
  case PARAM_ALGORITHM:
    return set_algorithm(p, value, err, errlen);
  case PARAM_LEVEL:
    return set_level(p, value, err, errlen);
  case PARAM_LZ4_IMPL:
    return set_lz4_impl(p, value, err, errlen);
  case PARAM_RECOMPRESS:
    return set_recompress(p, value, err, errlen);
  case PARAM_RECOMPRESS_IDLE:
    return set_recompress_idle(p, value, err, errlen);
  case PARAM_RECOMPRESS_RATE:
    return set_recompress_rate(p, value, err, errlen);
  case PARAM_SWAP:
    return set_swap(p, value, err, errlen);
  case PARAM_GROUP:
    return set_group(p, value, err, errlen);
  case PARAM_GROUP_LEVEL:
    return set_group_level(p, value, err, errlen);
  case PARAM_GROUP_IDLE:
    return set_group_count(p, "group-idle", value, IDLE_MAX, "seconds",
                           &p->cfg.group_idle, err, errlen);
  case PARAM_GROUP_RATE:
    return set_group_count(p, "group-rate", value, TRUENO_RECOMPRESS_RATE_MAX,
                           "pages", &p->cfg.group_rate, err, errlen);
  case PARAM_GROUP_CACHE:
    return set_group_count(p, "group-cache", value, TRUENO_GROUP_CACHE_MAX,
                           "groups", &p->cfg.group_cache, err, errlen);
  default:
    return -ENOENT;
  }
}

int engine_params_check(const struct engine_params *p, char *err,
                        size_t errlen) {
  if (p->level_given && p->cfg.algorithm != TRUENO_ALG_ZSTD)
    return param_error(err, errlen, "level: only applies to algorithm=zstd");
  if (p->lz4_impl_given && p->cfg.algorithm != TRUENO_ALG_LZ4)
    return param_error(err, errlen, "lz4-impl: only applies to algorithm=lz4");
  const char *needs = NULL;
  if (p->recompress_idle_given)
    needs = "recompress-idle";
  else if (p->recompress_rate_given)
    needs = "recompress-rate";
  if (needs && p->cfg.recompress == TRUENO_RECOMPRESS_OFF)
    return param_error(err, errlen,
                       "%s: only applies with recompress=zstd or lz4hc", needs);
  if (p->group_tuning && !p->cfg.group_pages)
    return param_error(err, errlen, "%s: only applies with group=on or group=N",
                       p->group_tuning);
  return 0;
}
