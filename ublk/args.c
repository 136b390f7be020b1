/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "args.h"

#include "engine-params.h"
#include "param-table.h"
#include "prometheus.h"

#include <errno.h>
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

/* key=value: the engine parameters both front ends share
 * (common/engine-params.c), then this front end's own. */
static int parse_param(struct engine_params *p, struct ublk_opts *o,
                       const char *key, const char *v, char *err,
                       size_t errlen) {
  int r = engine_params_set(p, key, v, err, errlen);
  if (r != -ENOENT)
    return r;
  const struct param_desc *d = param_find(key);
  switch (d ? d->id : PARAM_COUNT) {
  case PARAM_PROMETHEUS:
    if (!*v)
      return param_error(err, errlen, "prometheus: needs a file name");
    o->prometheus = v;
    return 0;
  case PARAM_PROMETHEUS_MODE:
    return prometheus_mode_parse(v, &o->prometheus_mode, err, errlen);
  case PARAM_MEM_LIMIT:
    if (ublk_parse_size(v, &p->cfg.mem_limit) || !p->cfg.mem_limit)
      return param_error(err, errlen, "mem-limit: invalid size '%s'", v);
    return 0;
  case PARAM_STATE:
  case PARAM_STATE_NAME:
    return store_state_set(&o->state, key, v, err, errlen);
  case PARAM_SIZE: /* the plugin's; here an option */
    return param_error(err, errlen, "size: use --size");
  default:
    return param_error(err, errlen, "unknown parameter '%s'", key);
  }
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

static int parse_opts(int argc, char **argv, struct ublk_opts *o,
                      bool recover, char *err, size_t errlen) {
  memset(o, 0, sizeof *o);
  o->recover_id = -1;
  /* Engine parameters and --size go here, into o at the end. */
  struct engine_params ep;
  engine_params_init(&ep);
  o->depth = UBLK_DEFAULT_DEPTH;
  o->id = -1;
  o->max_io = UBLK_DEFAULT_MAX_IO;
  o->prometheus_mode = PROMETHEUS_MODE_DEFAULT;
  o->state = (struct store_state)STORE_STATE_INIT;
  o->run_dir = getenv("TRUENO_UBLK_RUNDIR");
  if (!o->run_dir || !*o->run_dir)
    o->run_dir = UBLK_DEFAULT_RUN_DIR;
  bool size_given = false;
  bool depth_given = false, max_io_given = false;
  for (int i = 0; i < argc; i++) {
    bool missing = false;
    const char *v;
    long l;
    if ((v = opt_value(argc, argv, &i, "--size", &missing))) {
      if (ublk_parse_size(v, &ep.cfg.size))
        return param_error(err, errlen, "invalid size '%s': use a number with an optional K, M, G or T suffix, e.g. 8G", v);
      if (!ep.cfg.size)
        return param_error(err, errlen, "invalid size '%s': must be greater than zero", v);
      /* The device's logical block is a page. */
      if (ep.cfg.size % TRUENO_PAGE_SIZE)
        return param_error(err, errlen, "invalid size '%s': must be a multiple of 4096 bytes", v);
      size_given = true;
    } else if ((v = opt_value(argc, argv, &i, "--queues", &missing))) {
      if (engine_params_parse_long(v, 1, UBLK_MAX_QUEUES, &l))
        return param_error(err, errlen, "invalid --queues '%s': 1..%d", v, UBLK_MAX_QUEUES);
      o->queues = (int)l;
    } else if ((v = opt_value(argc, argv, &i, "--depth", &missing))) {
      if (engine_params_parse_long(v, 1, UBLK_MAX_QUEUE_DEPTH_ARG, &l))
        return param_error(err, errlen, "invalid --depth '%s': 1..%d", v, UBLK_MAX_QUEUE_DEPTH_ARG);
      o->depth = (int)l;
      depth_given = true;
    } else if ((v = opt_value(argc, argv, &i, "--max-io", &missing))) {
      uint64_t b;
      if (ublk_parse_size(v, &b) || b < TRUENO_PAGE_SIZE || b > UBLK_MAX_IO_LIMIT ||
          b % TRUENO_PAGE_SIZE)
        return param_error(err, errlen, "invalid --max-io '%s': 4K..1M, a multiple of 4K", v);
      o->max_io = (uint32_t)b;
      max_io_given = true;
    } else if ((v = opt_value(argc, argv, &i, "--id", &missing))) {
      if (engine_params_parse_long(v, 0, 1 << 20, &l))
        return param_error(err, errlen, "invalid --id '%s': a device number, 0 or more", v);
      o->id = (int)l;
    } else if ((v = opt_value(argc, argv, &i, "--run-dir", &missing))) {
      if (!*v)
        return param_error(err, errlen, "--run-dir needs a directory");
      o->run_dir = v;
    } else if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f")) {
      o->foreground = true;

    } else if (missing) {
      return param_error(err, errlen, "%s needs a value", argv[i]);
    } else if (argv[i][0] != '-' && strchr(argv[i], '=')) {
      char key[32];
      const char *eq = strchr(argv[i], '=');
      size_t kl = (size_t)(eq - argv[i]);
      if (kl >= sizeof key)
        return param_error(err, errlen, "unknown parameter '%.*s'", (int)kl, argv[i]);
      memcpy(key, argv[i], kl);
      key[kl] = 0;
      int r = parse_param(&ep, o, key, eq + 1, err, errlen);
      if (r)
        return r;
    } else {
      return param_error(err, errlen, "unknown option '%s' (engine parameters are key=value)", argv[i]);
    }
  }
  if (!size_given && !recover)
    return param_error(err, errlen, "--size is required, e.g. --size 8G");
  if (recover && !o->state.spec)
    return param_error(err, errlen, "state: required by recover (the state the dead server's store is kept in: state=SOCKET state-name=NAME, fd:N or systemd)");
  if (o->prometheus_mode != PROMETHEUS_MODE_DEFAULT && !o->prometheus)
    return param_error(err, errlen, "prometheus-mode: only applies with prometheus=FILE");
  int r = engine_params_check(&ep, err, errlen);
  if (!r)
    r = store_state_check(&o->state, err, errlen);
  if (r)
    return r;
  o->cfg = ep.cfg;
  o->swap = ep.swap;
  /* swap=on touches every request buffer ahead (see server.c): smaller
   * defaults keep that memory small. */
  if (o->swap && !depth_given)
    o->depth = UBLK_SWAP_DEPTH;
  if (o->swap && !max_io_given)
    o->max_io = UBLK_SWAP_MAX_IO;
  return 0;
}

int ublk_parse_add(int argc, char **argv, struct ublk_opts *o, char *err,
                   size_t errlen) {
  return parse_opts(argc, argv, o, false, err, errlen);
}

int ublk_parse_recover(int argc, char **argv, struct ublk_opts *o, char *err,
                       size_t errlen) {
  long id;
  if (argc < 1 || argv[0][0] == '-' || strchr(argv[0], '=')) {
    memset(o, 0, sizeof *o);
    return param_error(err, errlen, "recover: which device? trueno-ublk recover ID state=... (see: trueno-ublk list)");
  }
  if (engine_params_parse_long(argv[0], 0, 1 << 20, &id)) {
    memset(o, 0, sizeof *o);
    return param_error(err, errlen, "invalid device id '%s': a number (see: trueno-ublk list)", argv[0]);
  }
  int r = parse_opts(argc - 1, argv + 1, o, true, err, errlen);
  o->recover_id = (int)id;
  o->id = (int)id;
  return r;
}
