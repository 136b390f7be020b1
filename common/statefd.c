/* See statefd.h: statefd_get's dispatch and the holder's client side
 * (hold-proto.h).  systemd's side is in statefd-systemd.c.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "statefd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "hold-proto.h"

/* A holder answers at once; one that does not is stuck, not busy. */
#define HOLD_CLIENT_TIMEOUT_S 10

/* Connects to the holder at path after checking its directory and the
 * holder's uid.  The connected socket or -errno (err says why). */
static int hold_connect(const char *path, char *err, size_t errlen) {
  char base[NAME_MAX + 1], why[200];
  int dirfd = hold_open_dir(path, base, sizeof base, 0, 1, 0, why, sizeof why);
  if (dirfd < 0) {
    snprintf(err, errlen, "holder socket %s: %s", path, why);
    return dirfd;
  }
  struct stat sb;
  int r = 0;
  if (fstatat(dirfd, base, &sb, AT_SYMLINK_NOFOLLOW))
    r = -errno;
  else if (!S_ISSOCK(sb.st_mode))
    r = S_ISLNK(sb.st_mode) ? -ELOOP : -ENOTSOCK;
  if (r) {
    snprintf(err, errlen, "holder socket %s: %s%s", path,
             r == -ELOOP ? "a symbolic link, not followed" : strerror(-r),
             r == -ENOENT ? " (is trueno-hold running?)" : "");
    close(dirfd);
    return r;
  }
  struct sockaddr_un sa;
  socklen_t salen;
  int s = -1;
  r = hold_sockaddr(dirfd, base, &sa, &salen);
  if (!r) {
    s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, salen))
      r = -errno;
  }
  close(dirfd);
  if (r) {
    snprintf(err, errlen, "holder socket %s: %s", path, strerror(-r));
    if (s >= 0)
      close(s);
    return r;
  }
  struct timeval tv = {.tv_sec = HOLD_CLIENT_TIMEOUT_S};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  /* A state given to the server is its pages: take it only from our own
   * uid or root, not from whoever bound a socket where we looked. */
  uid_t uid;
  r = hold_peer_uid(s, &uid);
  if (!r && uid != geteuid() && uid != 0)
    r = -EPERM;
  if (r) {
    if (r == -EPERM)
      snprintf(err, errlen,
               "holder socket %s: the holder runs as uid %u, not as uid %u "
               "or root: not trusted", path, (unsigned)uid,
               (unsigned)geteuid());
    else
      snprintf(err, errlen, "holder socket %s: SO_PEERCRED: %s", path,
               strerror(-r));
    close(s);
    return r;
  }
  return s;
}

/* One request to the holder at path; returns the descriptor that came
 * with the reply (or 0 when none came and none was expected). */
static int hold_call(const char *path, uint32_t op, const char *name,
                     int fd, char *err, size_t errlen) {
  if (!hold_name_ok(name)) {
    snprintf(err, errlen, "state name '%s': 1 to %d letters, digits, "
             "'_', '.' or '-'", name, HOLD_NAME_MAX - 1);
    return -EINVAL;
  }
  int s = hold_connect(path, err, errlen);
  if (s < 0)
    return s;
  struct hold_request q;
  memset(&q, 0, sizeof q);
  memcpy(q.magic, HOLD_REQ_MAGIC, sizeof q.magic);
  q.version = HOLD_VERSION;
  q.op = op;
  strcpy(q.name, name);
  struct hold_reply a;
  int got = -1;
  size_t len = 0;
  int r = hold_send(s, &q, sizeof q, fd);
  if (!r)
    r = hold_recv(s, &a, sizeof a, &len, &got);
  if (!r && len != sizeof a) {
    if (got >= 0)
      close(got);
    r = -EBADMSG;
  }
  close(s);
  if (r) {
    snprintf(err, errlen, "holder socket %s: %s%s", path,
             r == -EAGAIN ? "no answer" : strerror(-r),
             r == -EBADMSG ? " (not a trueno-hold of this release?)" : "");
    return r == -EAGAIN ? -ETIMEDOUT : r;
  }
  a.msg[sizeof a.msg - 1] = 0;
  if (memcmp(a.magic, HOLD_REP_MAGIC, sizeof a.magic))
    r = -EPROTO;
  else if (a.status > 0 || a.status < -4095)
    r = -EPROTO;
  if (r || a.status) {
    if (got >= 0)
      close(got);
    if (r)
      snprintf(err, errlen, "holder socket %s: not a trueno-hold", path);
    else
      snprintf(err, errlen, "holder socket %s: %s", path, a.msg);
    return r ? r : a.status;
  }
  if (op == HOLD_GET) {
    if (got < 0 || hold_is_memfd(got)) {
      if (got >= 0)
        close(got);
      snprintf(err, errlen, "holder socket %s: no memfd in the reply", path);
      return -EPROTO;
    }
    return got;
  }
  if (got >= 0)
    close(got);
  return 0;
}

/* "fd:N": an inherited descriptor, checked to be open and a memfd. */
static int inherited_fd(const char *num, char *err, size_t errlen) {
  char *end;
  errno = 0;
  long n = strtol(num, &end, 10);
  if (errno || end == num || *end || n < 0 || n > INT_MAX) {
    snprintf(err, errlen, "state fd:%s: not a descriptor number", num);
    return -EINVAL;
  }
  int fd = (int)n;
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0) {
    snprintf(err, errlen, "state fd:%d: not open", fd);
    return -EBADF;
  }
  if (hold_is_memfd(fd)) {
    snprintf(err, errlen, "state fd:%d: not a memfd", fd);
    return -EINVAL;
  }
  fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
  return fd;
}

int statefd_get(const char *spec, const char *name, char *err,
                size_t errlen) {
  if (!strcmp(spec, "systemd"))
    return statefd_listen_fd(name, err, errlen);
  if (!strncmp(spec, "fd:", 3))
    return inherited_fd(spec + 3, err, errlen);
  if (strchr(spec, '/'))
    return hold_call(spec, HOLD_GET, name, -1, err, errlen);
  snprintf(err, errlen, "state source '%s': 'systemd', 'fd:N' or the path "
           "of a trueno-hold socket", spec);
  return -EINVAL;
}

int statefd_put(const char *sock, const char *name, int fd, char *err,
                size_t errlen) {
  if (hold_is_memfd(fd)) {
    snprintf(err, errlen, "state %s: descriptor %d is not a memfd", name, fd);
    return -EINVAL;
  }
  return hold_call(sock, HOLD_PUT, name, fd, err, errlen);
}
