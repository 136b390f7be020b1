/* The trueno-ublk server: one store, one ublk device, a thread per queue.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_SERVER_H
#define TRUENO_UBLK_SERVER_H

#include "args.h"

/* Files of device N under the run directory: ublkN.pid, .json, .log. */
int ublk_run_file(char *buf, size_t cap, const char *run_dir, int id,
                  const char *ext);

/* Sets the device up and serves it until SIGTERM/SIGINT/SIGHUP or until the
 * kernel stops it; then stops and deletes it.  Progress goes to report_fd
 * as lines: "ID n" once the device is added, then "OK" once /dev/ublkbN
 * exists, or "ERR message" (report_fd -1: to stderr).  Returns the exit
 * status. */
int ublk_server_run(const struct ublk_opts *o, int report_fd);

#endif
