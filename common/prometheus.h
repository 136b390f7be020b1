/* The Prometheus file (prometheus=FILE): the engine's counters in the text
 * exposition format (trueno_stats_prometheus), for node_exporter's textfile
 * collector, which reads every *.prom file in its directory.  Replaced
 * atomically as the stats file is (safefile.h); its samples carry a device
 * label the front end chooses.
 * SPDX-License-Identifier: MIT */
#ifndef TRUENO_PROMETHEUS_H
#define TRUENO_PROMETHEUS_H

#include <stddef.h>
#include <sys/types.h>

#include "trueno.h"

/* Private by default, like the stats file; node_exporter, when it runs as
 * another user, needs prometheus-mode=0644. */
#define PROMETHEUS_MODE_DEFAULT 0600

/* prometheus-mode=: an octal mode within 0644 that keeps 0600 (0600, 0640,
 * 0644...).  0, or -EINVAL with a message naming the parameter in err. */
int prometheus_mode_parse(const char *v, mode_t *mode, char *err,
                          size_t errlen);
/* A device label: 1 to TRUENO_STATS_LABEL_MAX of A-Z a-z 0-9 _ . : @ + -.
 * 0, or -EINVAL with a message naming key in err. */
int prometheus_label_check(const char *key, const char *label, char *err,
                           size_t errlen);
/* The label a file implies: its base name without ".prom".  0, or -EINVAL
 * (with a message for key in err) when that is no valid label. */
int prometheus_label_of_path(const char *key, const char *path, char *buf,
                             size_t cap, char *err, size_t errlen);
/* Writes s to path.  0 or a negative errno. */
int prometheus_write(const char *path, mode_t mode,
                     const struct trueno_stats *s, enum trueno_algorithm alg,
                     const char *device);

#endif
