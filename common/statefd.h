/* A store's state that outlives its server: where the server finds the
 * state's descriptor (a memfd) at start, and where it leaves it for the
 * next server.  Shared by the nbdkit plugin and trueno-ublk;
 * docs/persistence.md is the design.
 *
 * Two keepers, both hold the descriptor while no server runs:
 * - trueno-hold(8), a small process with a Unix socket (hold/);
 * - systemd: the service's file descriptor store (FileDescriptorStoreMax=
 *   in the unit), filled with sd_notify's FDSTORE=1 and given back in
 *   LISTEN_FDS at the service's next start.  No libsystemd: the protocol
 *   is a datagram on $NOTIFY_SOCKET.
 *
 * Every function returns a descriptor (or 0) or a negative errno, and on
 * error writes into err (errlen bytes) a message for the user that says
 * which state and which keeper.  Nothing here keeps state between calls.
 * SPDX-License-Identifier: MIT */
#ifndef TRUENO_STATEFD_H
#define TRUENO_STATEFD_H

#include <stddef.h>

/* The descriptor of the state called name (1 to 63 of [A-Za-z0-9_.-]),
 * from spec:
 *   "systemd"  the descriptor systemd passed in LISTEN_FDS whose
 *              LISTEN_FDNAMES entry is name (LISTEN_PID must be ours);
 *   "fd:N"     descriptor N, inherited (name is not checked);
 *   a path     the socket of a trueno-hold keeping state name (its
 *              directory, owned by us or root and writable by no one
 *              else, and the holder's uid, ours or root, are checked).
 * The descriptor returned is close-on-exec and the caller's; it is a
 * memfd (or another shmem file): a file on disk is refused. */
int statefd_get(const char *spec, const char *name, char *err, size_t errlen);

/* statefd_get("systemd", ...): the descriptor named name among those
 * systemd passed (LISTEN_FDS from descriptor 3, LISTEN_FDNAMES, LISTEN_PID
 * ours); -ENOENT, naming those it has, when there is none so named.  The
 * environment is left as it is. */
int statefd_listen_fd(const char *name, char *err, size_t errlen);

/* Gives fd (a memfd) to the trueno-hold listening on sock as state name:
 * for a server that made its state itself.  The holder refuses it while
 * it keeps a state that is not empty (-EEXIST).  fd stays the caller's. */
int statefd_put(const char *sock, const char *name, int fd, char *err,
                size_t errlen);

/* Stores fd in systemd's descriptor store as name (sd_notify
 * "FDSTORE=1\nFDNAME=name\n" with fd attached, to $NOTIFY_SOCKET: a path
 * or "@abstract").  -ENOENT when NOTIFY_SOCKET is not set (not under
 * systemd).  systemd closes it at once unless the unit sets
 * FileDescriptorStoreMax=; it comes back as statefd_get("systemd", name). */
int statefd_fdstore(int fd, const char *name, char *err, size_t errlen);

#endif
