/* The trueno-ublk server: one store, one ublk device, a thread per queue.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_SERVER_H
#define TRUENO_UBLK_SERVER_H

#include "args.h"

/* Files of device N under the run directory: ublkN.pid, .json, .log. */
int ublk_run_file(char *buf, size_t cap, const char *run_dir, int id,
                  const char *ext);

/* Sets the device up (o->recover_id >= 0: recovers it) and serves it
 * until SIGTERM/SIGINT/SIGHUP or until the kernel stops it; then stops and
 * deletes it.  Progress goes to report_fd as lines: "ID n" once the device
 * is added (recovery started), "NOTE message" (a warning), then "OK" once
 * /dev/ublkbN serves, or "ERR message" (report_fd -1: to stderr).  A
 * recovery that fails leaves the device for another.  Returns the exit
 * status. */
int ublk_server_run(const struct ublk_opts *o, int report_fd);

/* The exit status of a supervised server that left its device to a
 * successor (SIGUSR2, or SIGHUP). */
#define UBLK_EXIT_DETACHED 3

#endif
