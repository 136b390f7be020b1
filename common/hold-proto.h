/* The holder's protocol: what trueno-hold (hold/) and its clients
 * (statefd.c) say to each other over its Unix socket.  Internal to the
 * two; servers use statefd.h.
 *
 * A SOCK_SEQPACKET socket: one request, one reply, each one message, on a
 * connection of its own.  Both start with a magic and the sender's
 * protocol version, so a holder and a server of different releases say
 * which versions they speak instead of misreading each other; version 1
 * is below.  Fields are in host order: the socket is local.
 *
 *   request {magic "TRUENOHQ", version, op, name}  (PUT: the fd attached)
 *   reply   {magic "TRUENOHR", version, status, message} (GET: the fd)
 *
 * status is 0 or a negative errno; message says what happened in words
 * fit for the user (who asked for which state, what the holder keeps).
 * Every later version keeps {magic, version} first, whatever follows, so
 * that a holder answers a version it does not speak with the one it does.
 * SPDX-License-Identifier: MIT */
#ifndef TRUENO_HOLD_PROTO_H
#define TRUENO_HOLD_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define HOLD_VERSION 1
#define HOLD_REQ_MAGIC "TRUENOHQ"
#define HOLD_REP_MAGIC "TRUENOHR"
/* A state's name: 1 to 63 of [A-Za-z0-9_.-] (trueno-swap's device
 * names), so that it is also a valid systemd FDNAME. */
#define HOLD_NAME_MAX 64

enum hold_op {
  HOLD_GET = 1, /* the state's fd, or an error */
  HOLD_PUT = 2, /* take this fd as the state (only while it holds none,
                   or an empty one) */
};

struct hold_request {
  char magic[8];
  uint32_t version;
  uint32_t op;
  char name[HOLD_NAME_MAX];
};

struct hold_reply {
  char magic[8];
  uint32_t version;
  int32_t status;
  char msg[240];
};

/* 1 if name is a valid state name, else 0. */
int hold_name_ok(const char *name);
/* Splits path into its directory, opened (O_PATH, the last component not
 * followed: a symlink is refused), and its last component, copied into
 * base.  owner_ok: the directory's owner must be geteuid() or, with
 * root_ok, root; strict: no access at all for group and others (0700),
 * else only no write access.  With create, a missing directory is made
 * 0700 (its parent must exist).  Returns the directory's fd or a negative
 * errno, and says why in err. */
int hold_open_dir(const char *path, char *base, size_t basecap, int create,
                  int root_ok, int strict, char *err, size_t errlen);
/* "/proc/self/fd/DIRFD/BASE" into sun_path: bind and connect through the
 * directory already checked, not through its path again. */
int hold_sockaddr(int dirfd, const char *base, void *addr, socklen_t *len);
/* One message, with fd (>= 0) attached as SCM_RIGHTS.  0 or -errno. */
int hold_send(int sock, const void *msg, size_t n, int fd);
/* One message of at most cap bytes, its length in *len, its fd
 * (close-on-exec) in *fd or -1.  0 or -errno: -EBADMSG for a longer
 * message or more than one descriptor, -ECONNRESET at end of file. */
int hold_recv(int sock, void *msg, size_t cap, size_t *len, int *fd);
/* The peer's uid (SO_PEERCRED) in *uid: 0 or -errno. */
int hold_peer_uid(int sock, uid_t *uid);
/* 0 if fd is a memfd (or another shmem file: sealable), else -EINVAL. */
int hold_is_memfd(int fd);

#endif
