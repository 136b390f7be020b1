/* The front ends' background thread: once a second it lets the engine do its
 * housekeeping (compaction) and writes the engine's counters to the stats
 * file as JSON (0600), atomically (a temporary file under a random name,
 * then rename: see safefile.h); once more at exit.
 * SPDX-License-Identifier: MIT */
#ifndef TRUENO_HOUSEKEEPING_H
#define TRUENO_HOUSEKEEPING_H

#include "trueno.h"

/* Checks that the file's directory is writable, so a bad stats= parameter
 * is refused at start-up rather than failing silently later.  Returns 0 or
 * a negative errno. */
int stats_file_check(const char *path);
/* Starts the thread; path NULL: no stats file.  extra (NULL: none): more
 * JSON fields for the stats object, without braces; it must outlive the
 * thread.  0 or a negative errno. */
int housekeeping_start(const char *path, struct trueno_store *st,
                       enum trueno_algorithm alg, const char *extra);
/* Stops the thread (if started) and writes the final snapshot. */
void housekeeping_stop(void);

#endif
