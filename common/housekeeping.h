/* The front ends' background thread, one per store: once a second it lets
 * the engine do its housekeeping (compaction) and writes the engine's
 * counters to the stats file as JSON (0600) and to the Prometheus file
 * (prometheus.h), each atomically (a temporary file under a random name,
 * then rename: see safefile.h); once more at exit.
 * SPDX-License-Identifier: MIT */
#ifndef TRUENO_HOUSEKEEPING_H
#define TRUENO_HOUSEKEEPING_H

#include <sys/types.h>

#include "trueno.h"

/* Where the counters go.  Every string must outlive the thread. */
struct housekeeping_files {
  const char *stats;       /* the JSON stats file; NULL: none */
  const char *stats_extra; /* more JSON fields, without braces; NULL: none */
  const char *prometheus;  /* the Prometheus file; NULL: none */
  mode_t prometheus_mode;
  const char *device;      /* the Prometheus device label */
};

/* Checks that the file's directory is writable, so a bad stats= (or
 * prometheus=) parameter is refused at start-up rather than failing
 * silently later.  Returns 0 or a negative errno. */
int stats_file_check(const char *path);
struct housekeeping;
/* Starts the store's thread: 0 and *out, or a negative errno. */
int housekeeping_start(const struct housekeeping_files *files,
                       struct trueno_store *st, enum trueno_algorithm alg,
                       struct housekeeping **out);
/* Stops the thread, writes the final snapshot and frees it (no-op on
 * NULL); before the store is destroyed. */
void housekeeping_stop(struct housekeeping *h);

#endif
