/* SPDX-License-Identifier: MIT */
#include "prometheus.h"

#include "engine-params.h"
#include "safefile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int prometheus_mode_parse(const char *v, mode_t *mode, char *err,
                          size_t errlen) {
  char *end;
  unsigned long m = strtoul(v, &end, 8);
  /* Nobody else may write it, nor anyone run it; the owner reads and
   * writes it. */
  if (!*v || *end || (m & ~0644ul) || (m & 0600) != 0600)
    return param_error(err, errlen,
                       "prometheus-mode: '%s' is not an octal mode from 0600 "
                       "to 0644 (e.g. 0644 for a node_exporter running as "
                       "another user)", v);
  *mode = (mode_t)m;
  return 0;
}

int prometheus_label_check(const char *key, const char *label, char *err,
                           size_t errlen) {
  size_t n = strlen(label);
  if (n < 1 || n > TRUENO_STATS_LABEL_MAX ||
      strspn(label, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789_.:@+-") != n)
    return param_error(err, errlen,
                       "%s: '%s' is not a device label (1 to %d letters, "
                       "digits and _ . : @ + -)", key, label,
                       TRUENO_STATS_LABEL_MAX);
  return 0;
}

int prometheus_label_of_path(const char *key, const char *path, char *buf,
                             size_t cap, char *err, size_t errlen) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  if (n > 5 && !strcmp(base + n - 5, ".prom"))
    n -= 5;
  if (n >= cap)
    n = cap - 1; /* too long: prometheus_label_check refuses it */
  memcpy(buf, base, n);
  buf[n] = 0;
  if (prometheus_label_check(key, buf, err, errlen) == 0)
    return 0;
  return param_error(err, errlen,
                     "%s: the file name '%s' is no device label (1 to %d "
                     "letters, digits and _ . : @ + - before .prom): give "
                     "name=", key, base, TRUENO_STATS_LABEL_MAX);
}

int prometheus_write(const char *path, mode_t mode,
                     const struct trueno_stats *s, enum trueno_algorithm alg,
                     const char *device) {
  char text[TRUENO_STATS_TEXT_MAX];
  int n = trueno_stats_prometheus(s, alg, device, text, sizeof text);
  if (n < 0)
    return n;
  if (n >= (int)sizeof text)
    return -EOVERFLOW;
  /* node_exporter must never read a half-written file: a temporary file
   * under a random name (the directory may be shared), then rename. */
  return safefile_replace(path, text, (size_t)n, mode);
}
