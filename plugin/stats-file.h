/* Writes the engine's counters to a file as JSON, atomically (temporary
 * file + rename), once a second from a background thread and once more at
 * exit.  SPDX-License-Identifier: MIT */
#ifndef TRUENO_STATS_FILE_H
#define TRUENO_STATS_FILE_H

#include "trueno.h"

/* Checks that the file's directory is writable, so a bad stats= parameter
 * is refused at start-up rather than failing silently later.  Returns 0 or
 * a negative errno. */
int stats_file_check(const char *path);
/* Starts the writer thread.  Returns 0 or a negative errno. */
int stats_file_start(const char *path, struct trueno_store *st,
                     enum trueno_algorithm alg);
/* Stops the thread (if started) and writes the final snapshot. */
void stats_file_stop(void);

#endif
