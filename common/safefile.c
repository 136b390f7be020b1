/* See safefile.h.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int dir_is_ours(int fd) {
  struct stat sb;
  if (fstat(fd, &sb))
    return -errno;
  if (!S_ISDIR(sb.st_mode))
    return -ENOTDIR;
  if (sb.st_uid != geteuid())
    return -EPERM;
  if ((sb.st_mode & (S_IWGRP | S_IWOTH)) && !(sb.st_mode & S_ISVTX))
    return -EPERM;
  return 0;
}

int safefile_dir(const char *dir, int create) {
  char p[PATH_MAX];
  if (!*dir)
    return -ENOENT;
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
    return -ENAMETOOLONG;
  for (char *s = p + 1; create && *s; s++)
    if (*s == '/') {
      *s = 0;
      if (mkdir(p, 0755) && errno != EEXIST)
        return -errno;
      *s = '/';
    }
  if (create && mkdir(p, 0700) && errno != EEXIST)
    return -errno;
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r = dir_is_ours(fd);
  if (r) {
    close(fd);
    return r;
  }
  return fd;
}

int safefile_owned(int fd) {
  struct stat sb;
  if (fstat(fd, &sb))
    return -errno;
  if (!S_ISREG(sb.st_mode))
    return -EINVAL;
  if (sb.st_uid != geteuid() || (sb.st_mode & (S_IWGRP | S_IWOTH)))
    return -EPERM;
  return 0;
}

/* A new file under an unguessable name in dirfd, for writing. */
static int temp_at(int dirfd, const char *name, char *tmp, size_t cap,
                   mode_t mode) {
  for (int tries = 0; tries < 100; tries++) {
    unsigned long long rnd;
    if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
      return -EIO;
    if (snprintf(tmp, cap, ".%.200s.%016llx.tmp", name, rnd) >= (int)cap)
      return -ENAMETOOLONG;
    int fd = openat(dirfd, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    mode);
    if (fd >= 0 || errno != EEXIST)
      return fd >= 0 ? fd : -errno;
  }
  return -EEXIST;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *b = p;
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? -errno : -EIO;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

int safefile_replace_at(int dirfd, const char *name, const void *buf,
                        size_t n, mode_t mode) {
  char tmp[256];
  int fd = temp_at(dirfd, name, tmp, sizeof tmp, mode);
  if (fd < 0)
    return fd;
  /* The umask may have widened nothing, but mode is what we promise. */
  int r = fchmod(fd, mode) ? -errno : 0;
  if (!r)
    r = write_all(fd, buf, n);
  if (close(fd) && !r)
    r = -errno;
  if (!r && renameat(dirfd, tmp, dirfd, name))
    r = -errno;
  if (r)
    unlinkat(dirfd, tmp, 0);
  return r;
}

/* Opens path's directory; *base points at its last component. */
static int open_parent(const char *path, const char **base) {
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX];
  if (!slash) {
    snprintf(dir, sizeof dir, ".");
    *base = path;
  } else {
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    if (len >= sizeof dir)
      return -ENAMETOOLONG;
    memcpy(dir, path, len);
    dir[len] = 0;
    *base = slash + 1;
  }
  if (!**base)
    return -EISDIR;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int safefile_replace(const char *path, const void *buf, size_t n,
                     mode_t mode) {
  const char *base;
  int dfd = open_parent(path, &base);
  if (dfd < 0)
    return dfd;
  int r = safefile_replace_at(dfd, base, buf, n, mode);
  close(dfd);
  return r;
}

int safefile_check_dir_of(const char *path) {
  const char *base;
  int dfd = open_parent(path, &base);
  if (dfd < 0)
    return dfd;
  struct stat sb;
  int r = 0;
  if (fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode))
    r = -EISDIR;
  char tmp[256];
  int fd = r ? r : temp_at(dfd, base, tmp, sizeof tmp, 0600);
  if (fd >= 0) {
    close(fd);
    unlinkat(dfd, tmp, 0);
  }
  close(dfd);
  return fd < 0 ? fd : 0;
}

int safefile_create_at(int dirfd, const char *name, mode_t mode) {
  if (unlinkat(dirfd, name, 0) && errno != ENOENT)
    return -errno;
  int fd = openat(dirfd, name,
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0)
    return -errno;
  if (fchmod(fd, mode)) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}
