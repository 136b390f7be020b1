/* See hold-proto.h.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "hold-proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int hold_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n >= HOLD_NAME_MAX)
    return 0;
  for (const char *s = name; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
      return 0;
  return 1;
}

int hold_open_dir(const char *path, char *base, size_t basecap, int create,
                  int root_ok, int strict, char *err, size_t errlen) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  const char *b = slash ? slash + 1 : path;
  if (!*b || !strcmp(b, ".") || !strcmp(b, "..")) {
    snprintf(err, errlen, "%s: not a socket's name", path);
    return -EINVAL;
  }
  if (snprintf(base, basecap, "%s", b) >= (int)basecap) {
    snprintf(err, errlen, "%s: name too long for a socket", path);
    return -ENAMETOOLONG;
  }
  if (!slash)
    strcpy(dir, ".");
  else if (slash == path)
    strcpy(dir, "/");
  else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >=
           (int)sizeof dir) {
    snprintf(err, errlen, "%s: path too long", path);
    return -ENAMETOOLONG;
  }
  if (create && mkdir(dir, 0700) && errno != EEXIST) {
    int e = errno;
    snprintf(err, errlen, "cannot create %s: %s", dir, strerror(e));
    return -e;
  }
  int fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    struct stat lsb;
    if (e == ENOTDIR && !lstat(dir, &lsb) && S_ISLNK(lsb.st_mode))
      snprintf(err, errlen, "%s is a symbolic link: not followed", dir);
    else
      snprintf(err, errlen, "%s: %s", dir, strerror(e));
    return -e;
  }
  struct stat sb;
  if (fstat(fd, &sb)) {
    int e = errno;
    close(fd);
    snprintf(err, errlen, "%s: %s", dir, strerror(e));
    return -e;
  }
  if (sb.st_uid != geteuid() && !(root_ok && sb.st_uid == 0)) {
    close(fd);
    snprintf(err, errlen,
             "%s belongs to uid %u, not to uid %u%s: not trusted", dir,
             (unsigned)sb.st_uid, (unsigned)geteuid(),
             root_ok ? " or root" : "");
    return -EPERM;
  }
  if (sb.st_mode & (strict ? 077 : 022)) {
    close(fd);
    snprintf(err, errlen, "%s has mode %04o: %s", dir,
             (unsigned)(sb.st_mode & 07777),
             strict ? "the holder's directory must be 0700"
                    : "others may write in it: not trusted");
    return -EPERM;
  }
  return fd;
}

int hold_sockaddr(int dirfd, const char *base, void *addr, socklen_t *len) {
  struct sockaddr_un *a = addr;
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  int n = snprintf(a->sun_path, sizeof a->sun_path, "/proc/self/fd/%d/%s",
                   dirfd, base);
  if (n < 0 || n >= (int)sizeof a->sun_path)
    return -ENAMETOOLONG;
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

int hold_send(int sock, const void *msg, size_t n, int fd) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } c;
  struct iovec iov = {.iov_base = (void *)msg, .iov_len = n};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    memset(&c, 0, sizeof c);
    mh.msg_control = c.buf;
    mh.msg_controllen = sizeof c.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  ssize_t r;
  do
    r = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return -errno;
  return (size_t)r == n ? 0 : -EMSGSIZE;
}

int hold_recv(int sock, void *msg, size_t cap, size_t *len, int *fd) {
  union {
    char buf[CMSG_SPACE(4 * sizeof(int))];
    struct cmsghdr align;
  } c;
  struct iovec iov = {.iov_base = msg, .iov_len = cap};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = c.buf, .msg_controllen = sizeof c.buf};
  *fd = -1;
  *len = 0;
  ssize_t r;
  do
    r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return -errno;
  int bad = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  *len = (size_t)r;
  /* Take every descriptor that came, so none leaks; more than one is an
   * error in this protocol. */
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int f;
      memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof f);
      if (*fd < 0)
        *fd = f;
      else {
        close(f);
        bad = 1;
      }
    }
  }
  if (r == 0 && !bad)
    return -ECONNRESET;
  if (bad) {
    if (*fd >= 0)
      close(*fd);
    *fd = -1;
    return r == 0 ? -ECONNRESET : -EBADMSG;
  }
  return 0;
}

int hold_peer_uid(int sock, uid_t *uid) {
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len))
    return -errno;
  *uid = cr.uid;
  return 0;
}

int hold_is_memfd(int fd) {
  struct stat sb;
  if (fstat(fd, &sb) || !S_ISREG(sb.st_mode))
    return -EINVAL;
  /* Only shmem files (memfd, tmpfs) know seals: a file on disk would put
   * the store's pages on that disk. */
  return fcntl(fd, F_GET_SEALS) < 0 ? -EINVAL : 0;
}
