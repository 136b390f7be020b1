/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ublk_parse_size(const char *s, uint64_t *out) {
  if (!s || *s < '0' || *s > '9')
    return -EINVAL;
  errno = 0;
  char *end;
  unsigned long long n = strtoull(s, &end, 10);
  if (errno)
    return -EINVAL;
  unsigned shift = 0;
  if (*end) {
    const char *u = "KMGT", *p;
    int c = end[0] & ~0x20; /* upper case; 0 for ' ', which strchr finds */
    if (!c || !(p = strchr(u, c)))
      return -EINVAL;
    shift = 10 * (unsigned)(p - u + 1);
    end++;
    if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B"))
      return -EINVAL;
  }
  if (shift && n > (UINT64_MAX >> shift))
    return -EINVAL;
  *out = (uint64_t)n << shift;
  return 0;
}

int ublk_parse_int(const char *s, long min, long max, long *out) {
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

static int bad(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

/* Engine parameters, spelled as the plugin spells them. */
static int parse_param(struct ublk_opts *o, const char *key, const char *v,
                       bool *level_given, bool *impl_given, char *err,
                       size_t errlen) {
  if (!strcmp(key, "algorithm")) {
    if (trueno_algorithm_parse(v, &o->cfg.algorithm))
      return bad(err, errlen, "algorithm: unknown algorithm '%s' (use lz4 or zstd)", v);
    return 0;
  }
  if (!strcmp(key, "level")) {
    long l;
    if (ublk_parse_int(v, trueno_zstd_level_min(), trueno_zstd_level_max(), &l) || !l)
      return bad(err, errlen, "level: '%s' is out of range: zstd levels are %d..%d, not 0",
                 v, trueno_zstd_level_min(), trueno_zstd_level_max());
    o->cfg.level = (int)l;
    *level_given = true;
    return 0;
  }
  if (!strcmp(key, "mem-limit")) {
    if (ublk_parse_size(v, &o->cfg.mem_limit) || !o->cfg.mem_limit)
      return bad(err, errlen, "mem-limit: invalid size '%s'", v);
    return 0;
  }
  if (!strcmp(key, "lz4-impl")) {
    if (trueno_lz4_impl_parse(v, &o->cfg.lz4_impl))
      return bad(err, errlen, "lz4-impl: unknown implementation '%s' (use trueno or liblz4)", v);
    *impl_given = true;
    return 0;
  }
  if (!strcmp(key, "recompress")) {
    int r = trueno_recompressor_parse(v, &o->cfg.recompress,
                                      &o->cfg.recompress_level);
    if (r == -ERANGE) {
      int min, max, dflt;
      trueno_recompressor_levels(o->cfg.recompress, &min, &max, &dflt);
      return bad(err, errlen, "recompress: level out of range in '%s' (levels %d..%d, not 0)",
                 v, min, max);
    }
    if (r)
      return bad(err, errlen, "recompress: unknown recompressor '%s' (use off, zstd[:LEVEL] or lz4hc[:LEVEL])", v);
    return 0;
  }
  if (!strcmp(key, "recompress-idle")) {
    long s;
    if (ublk_parse_int(v, 1, UINT32_MAX, &s))
      return bad(err, errlen, "recompress-idle: '%s' is not a number of seconds from 1", v);
    o->cfg.recompress_idle = (uint32_t)s;
    return 0;
  }
  if (!strcmp(key, "swap")) {
    if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "yes"))
      o->swap = true;
    else if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "no"))
      o->swap = false;
    else
      return bad(err, errlen, "swap: expected on or off, not '%s'", v);
    return 0;
  }
  if (!strcmp(key, "size"))
    return bad(err, errlen, "size: use --size");
  return bad(err, errlen, "unknown parameter '%s'", key);
}

/* --opt VALUE or --opt=VALUE; NULL if argv[*i] is not --opt. */
static const char *opt_value(int argc, char **argv, int *i, const char *name,
                             bool *missing) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n))
    return NULL;
  if (a[n] == '=')
    return a + n + 1;
  if (a[n])
    return NULL;
  if (*i + 1 >= argc) {
    *missing = true;
    return NULL;
  }
  return argv[++*i];
}

int ublk_parse_add(int argc, char **argv, struct ublk_opts *o, char *err,
                   size_t errlen) {
  memset(o, 0, sizeof *o);
  o->cfg.algorithm = TRUENO_ALG_LZ4;
  o->depth = UBLK_DEFAULT_DEPTH;
  o->id = -1;
  o->max_io = UBLK_DEFAULT_MAX_IO;
  o->run_dir = getenv("TRUENO_UBLK_RUNDIR");
  if (!o->run_dir || !*o->run_dir)
    o->run_dir = UBLK_DEFAULT_RUN_DIR;
  bool size_given = false, level_given = false, impl_given = false;
  bool depth_given = false, max_io_given = false;
  for (int i = 0; i < argc; i++) {
    bool missing = false;
    const char *v;
    long l;
    if ((v = opt_value(argc, argv, &i, "--size", &missing))) {
      if (ublk_parse_size(v, &o->cfg.size))
        return bad(err, errlen, "invalid size '%s': use a number with an optional K, M, G or T suffix, e.g. 8G", v);
      if (!o->cfg.size)
        return bad(err, errlen, "invalid size '%s': must be greater than zero", v);
      /* The device's logical block is a page. */
      if (o->cfg.size % TRUENO_PAGE_SIZE)
        return bad(err, errlen, "invalid size '%s': must be a multiple of 4096 bytes", v);
      size_given = true;
    } else if ((v = opt_value(argc, argv, &i, "--queues", &missing))) {
      if (ublk_parse_int(v, 1, UBLK_MAX_QUEUES, &l))
        return bad(err, errlen, "invalid --queues '%s': 1..%d", v, UBLK_MAX_QUEUES);
      o->queues = (int)l;
    } else if ((v = opt_value(argc, argv, &i, "--depth", &missing))) {
      if (ublk_parse_int(v, 1, UBLK_MAX_QUEUE_DEPTH_ARG, &l))
        return bad(err, errlen, "invalid --depth '%s': 1..%d", v, UBLK_MAX_QUEUE_DEPTH_ARG);
      o->depth = (int)l;
      depth_given = true;
    } else if ((v = opt_value(argc, argv, &i, "--max-io", &missing))) {
      uint64_t b;
      if (ublk_parse_size(v, &b) || b < TRUENO_PAGE_SIZE || b > UBLK_MAX_IO_LIMIT ||
          b % TRUENO_PAGE_SIZE)
        return bad(err, errlen, "invalid --max-io '%s': 4K..1M, a multiple of 4K", v);
      o->max_io = (uint32_t)b;
      max_io_given = true;
    } else if ((v = opt_value(argc, argv, &i, "--id", &missing))) {
      if (ublk_parse_int(v, 0, 1 << 20, &l))
        return bad(err, errlen, "invalid --id '%s': a device number, 0 or more", v);
      o->id = (int)l;
    } else if ((v = opt_value(argc, argv, &i, "--run-dir", &missing))) {
      if (!*v)
        return bad(err, errlen, "--run-dir needs a directory");
      o->run_dir = v;
    } else if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f")) {
      o->foreground = true;
    } else if (missing) {
      return bad(err, errlen, "%s needs a value", argv[i]);
    } else if (argv[i][0] != '-' && strchr(argv[i], '=')) {
      char key[32];
      const char *eq = strchr(argv[i], '=');
      size_t kl = (size_t)(eq - argv[i]);
      if (kl >= sizeof key)
        return bad(err, errlen, "unknown parameter '%.*s'", (int)kl, argv[i]);
      memcpy(key, argv[i], kl);
      key[kl] = 0;
      int r = parse_param(o, key, eq + 1, &level_given, &impl_given, err, errlen);
      if (r)
        return r;
    } else {
      return bad(err, errlen, "unknown option '%s' (engine parameters are key=value)", argv[i]);
    }
  }
  if (!size_given)
    return bad(err, errlen, "--size is required, e.g. --size 8G");
  /* swap=on touches every request buffer ahead (see server.c): smaller
   * defaults keep that memory small. */
  if (o->swap && !depth_given)
    o->depth = UBLK_SWAP_DEPTH;
  if (o->swap && !max_io_given)
    o->max_io = UBLK_SWAP_MAX_IO;
  if (level_given && o->cfg.algorithm != TRUENO_ALG_ZSTD)
    return bad(err, errlen, "level: only applies to algorithm=zstd");
  if (impl_given && o->cfg.algorithm != TRUENO_ALG_LZ4)
    return bad(err, errlen, "lz4-impl: only applies to algorithm=lz4");
  if (o->cfg.recompress_idle && o->cfg.recompress == TRUENO_RECOMPRESS_OFF)
    return bad(err, errlen, "recompress-idle: only applies with recompress=zstd or lz4hc");
  return 0;
}
