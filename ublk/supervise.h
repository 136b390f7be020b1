/* trueno-ublk's supervisor: the small parent of the server of a device
 * with a persistent store (state=).  It keeps the state's memfd and hands
 * it to its child as state=fd:N; when the child dies unasked it forks a
 * successor that recovers the device at once (UBLK_F_USER_RECOVERY: the
 * kernel holds the I/O meanwhile and replays what was in flight), so
 * swap on /dev/ublkbN outlives a crash.  It locks its memory and cannot
 * be picked by the OOM killer: it runs while the swap is dead.
 *   SIGTERM, SIGINT: the child stops and deletes the device, then it exits.
 *   SIGHUP: live upgrade: it execs the trueno-ublk on disk now, which
 *     asks the old child to leave (SIGUSR2) and recovers with a new one.
 * Each event goes to ublkN.log with the time and the milliseconds taken.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_SUPERVISE_H
#define TRUENO_UBLK_SUPERVISE_H

#include <sys/types.h>

#include "args.h"

/* o: add's options (o->state set, o->run_dir absolute); argv/argc: add's
 * arguments, given again to the next supervisor at an upgrade.
 * recover_id -1: a new device, whose progress goes to report_fd as
 * ublk_server_run's lines; else the device of an upgraded supervisor,
 * whose old server old_server is asked to leave first.  Returns the exit
 * status. */
int ublk_supervise(const struct ublk_opts *o, int argc, char **argv,
                   int report_fd, int recover_id, pid_t old_server);

#endif
