/* The kernel binary cache: see ocl_cache.h.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "ocl_cache.h"
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t ocl_cache_fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

int ocl_cache_resolve(const char *opt, char *dir, size_t cap) {
  dir[0] = 0;
  if (opt && (!*opt || strcmp(opt, "off") == 0))
    return 0;
  int n;
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (opt)
    n = snprintf(dir, cap, "%s", opt);
  else if (xdg && *xdg == '/') /* the spec: relative ones are invalid */
    n = snprintf(dir, cap, "%s/trueno-zram", xdg);
  else if (home && *home)
    n = snprintf(dir, cap, "%s/.cache/trueno-zram", home);
  else
    return 0;
  if (n < 0 || (size_t)n >= cap) {
    dir[0] = 0;
    return -ENAMETOOLONG;
  }
  return 0;
}

int ocl_cache_mkdir(const char *dir) {
  int fd = safefile_dir(dir, 1);
  if (fd < 0)
    return fd;
  int r = faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) ? -errno : 0;
  close(fd);
  return r;
}

/* The file's name in the directory: a hash of the key. */
static void file_name(const char *key, char *name, size_t cap) {
  uint64_t h = ocl_cache_fnv(OCL_CACHE_FNV_INIT, key, strlen(key));
  snprintf(name, cap, "%016llx.bin", (unsigned long long)h);
}

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* The header for key: magic, key, empty line. */
static char *header(const char *key, size_t *n) {
  char *h = NULL;
  int r = asprintf(&h, "%s%s\n\n", OCL_CACHE_MAGIC, key);
  if (r < 0)
    return NULL;
  *n = (size_t)r;
  return h;
}

/* The file, only if it is ours (the checksum is no defence: anyone can
 * compute it, and the driver runs what it loads). */
static unsigned char *read_all(const char *dir, const char *name, size_t *n,
                               int *err) {
  int dfd = safefile_dir(dir, 0);
  int fd = dfd < 0 ? dfd
                   : openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  *err = fd >= 0 ? 0 : dfd < 0 ? dfd : errno == ELOOP ? -EPERM : -errno;
  if (dfd >= 0)
    close(dfd);
  if (fd < 0)
    return NULL;
  unsigned char *buf = NULL;
  struct stat sb;
  *err = safefile_owned(fd);
  if (*err) {
    close(fd);
    return NULL;
  }
  *err = -EBADMSG;
  if (fstat(fd, &sb) == 0 && sb.st_size > 0 && sb.st_size < (1 << 30) &&
      (buf = malloc((size_t)sb.st_size))) {
    size_t got = 0;
    ssize_t r;
    while (got < (size_t)sb.st_size &&
           ((r = read(fd, buf + got, (size_t)sb.st_size - got)) > 0 ||
            (r < 0 && errno == EINTR)))
      got += r > 0 ? (size_t)r : 0;
    *n = got;
    *err = got == (size_t)sb.st_size ? 0 : -EBADMSG;
  }
  close(fd);
  if (*err) {
    free(buf);
    buf = NULL;
  }
  return buf;
}

int ocl_cache_load(const char *dir, const char *key, unsigned char **bin,
                   size_t *len) {
  char name[64];
  file_name(key, name, sizeof name);
  size_t n = 0, hn = 0;
  int r;
  unsigned char *buf = read_all(dir, name, &n, &r);
  char *h = buf ? header(key, &hn) : NULL;
  if (!buf)
    return r;
  r = -EBADMSG;
  if (h && n >= hn + 16 && memcmp(buf, h, hn) == 0) {
    uint64_t blen = get64(buf + hn), sum = get64(buf + hn + 8);
    const unsigned char *b = buf + hn + 16;
    if (blen && blen == n - hn - 16 &&
        ocl_cache_fnv(OCL_CACHE_FNV_INIT, b, blen) == sum) {
      memmove(buf, b, blen);
      *bin = buf;
      *len = blen;
      buf = NULL;
      r = 0;
    }
  }
  free(h);
  free(buf);
  return r;
}

int ocl_cache_save(const char *dir, const char *key, const void *bin,
                   size_t len) {
  int dfd = safefile_dir(dir, 1);
  if (dfd < 0)
    return dfd;
  char name[64];
  file_name(key, name, sizeof name);
  size_t hn = 0;
  char *h = header(key, &hn);
  unsigned char *buf = h ? malloc(hn + 16 + len) : NULL;
  int r = buf ? 0 : -ENOMEM;
  if (buf) {
    memcpy(buf, h, hn);
    put64(buf + hn, len);
    put64(buf + hn + 8, ocl_cache_fnv(OCL_CACHE_FNV_INIT, bin, len));
    memcpy(buf + hn + 16, bin, len);
    /* Two servers saving at once each write their own temporary file; the
     * last rename wins, and either file is whole. */
    r = safefile_replace_at(dfd, name, buf, hn + 16 + len, 0600);
  }
  free(buf);
  free(h);
  close(dfd);
  return r;
}
