/* See statefd.h: systemd's file descriptor store, without libsystemd.
 * The wire format is sd_notify(3)'s: one datagram of "KEY=VALUE\n" lines
 * on the AF_UNIX socket named by $NOTIFY_SOCKET ('@' for the abstract
 * namespace), descriptors as SCM_RIGHTS; systemd passes them back as
 * descriptors 3.. with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID
 * (sd_listen_fds(3)).
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
#include <sys/un.h>
#include <unistd.h>

#include "hold-proto.h"

#define LISTEN_FDS_START 3

int statefd_fdstore(int fd, const char *name, char *err, size_t errlen) {
  if (!hold_name_ok(name)) {
    snprintf(err, errlen, "state name '%s': not a valid FDNAME", name);
    return -EINVAL;
  }
  const char *ns = getenv("NOTIFY_SOCKET");
  if (!ns || !*ns) {
    snprintf(err, errlen, "state %s: NOTIFY_SOCKET is not set (not a "
             "systemd service): no descriptor store", name);
    return -ENOENT;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t n = strlen(ns);
  if ((ns[0] != '/' && ns[0] != '@') || n >= sizeof sa.sun_path) {
    snprintf(err, errlen, "state %s: NOTIFY_SOCKET=%s: not a Unix socket "
             "path or @name", name, ns);
    return -EAFNOSUPPORT;
  }
  memcpy(sa.sun_path, ns, n);
  if (ns[0] == '@')
    sa.sun_path[0] = 0;
  /* An abstract name's length is the address's, with no NUL after it. */
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                                (ns[0] == '/'));
  char msg[128];
  snprintf(msg, sizeof msg, "FDSTORE=1\nFDNAME=%s\n", name);
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int r = 0;
  if (s < 0 || connect(s, (struct sockaddr *)&sa, salen))
    r = -errno;
  else
    r = hold_send(s, msg, strlen(msg), fd);
  if (s >= 0)
    close(s);
  if (r)
    snprintf(err, errlen, "state %s: FDSTORE to NOTIFY_SOCKET=%s: %s", name,
             ns, strerror(-r));
  return r;
}

int statefd_listen_fd(const char *name, char *err, size_t errlen) {
  const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
  const char *names = getenv("LISTEN_FDNAMES");
  char *end;
  if (!pid || !fds) {
    snprintf(err, errlen, "state %s: systemd passed no descriptors "
             "(LISTEN_FDS is not set: a first start, or a unit without "
             "FileDescriptorStoreMax=)", name);
    return -ENOENT;
  }
  errno = 0;
  unsigned long p = strtoul(pid, &end, 10);
  if (errno || end == pid || *end || p != (unsigned long)getpid()) {
    snprintf(err, errlen, "state %s: LISTEN_PID=%s is not this process "
             "(%ld): the descriptors are not ours", name, pid,
             (long)getpid());
    return -ENOENT;
  }
  errno = 0;
  unsigned long k = strtoul(fds, &end, 10);
  if (errno || end == fds || *end || k > INT_MAX - LISTEN_FDS_START) {
    snprintf(err, errlen, "state %s: LISTEN_FDS=%s: not a number", name, fds);
    return -EINVAL;
  }
  /* Entries are ':'-separated, one per descriptor, in order. */
  unsigned long i = 0, found = k;
  const char *s = names ? names : "";
  while (names) {
    size_t len = strcspn(s, ":");
    if (found == k && i < k && len == strlen(name) && !strncmp(s, name, len))
      found = i;
    i++;
    if (!s[len])
      break;
    s += len + 1;
  }
  if (names && i != k) {
    snprintf(err, errlen, "state %s: LISTEN_FDNAMES has %lu names for "
             "LISTEN_FDS=%lu", name, i, k);
    return -EINVAL;
  }
  if (found == k) {
    snprintf(err, errlen, "state %s: none of the %lu descriptors systemd "
             "passed is named %s (LISTEN_FDNAMES=%s)", name, k, name,
             names ? names : "(unset)");
    return -ENOENT;
  }
  int fd = LISTEN_FDS_START + (int)found;
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0 || hold_is_memfd(fd)) {
    snprintf(err, errlen, "state %s: descriptor %d from systemd is %s", name,
             fd, fl < 0 ? "not open" : "not a memfd");
    return fl < 0 ? -EBADF : -EINVAL;
  }
  fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
  return fd;
}
