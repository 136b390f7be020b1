/* The kernel binary cache: see ocl_cache.h.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "ocl_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
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
  char p[4096];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
    return -ENAMETOOLONG;
  /* Each parent in turn, as mkdir -p. */
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s)
      continue;
    char c = *s;
    *s = 0;
    if (mkdir(p, 0700) && errno != EEXIST)
      return -errno;
    *s = c;
    if (!c)
      break;
  }
  struct stat sb;
  if (stat(dir, &sb))
    return -errno;
  if (!S_ISDIR(sb.st_mode))
    return -ENOTDIR;
  return access(dir, W_OK | X_OK) ? -errno : 0;
}

static int file_path(const char *dir, const char *key, char *path,
                     size_t cap) {
  uint64_t h = ocl_cache_fnv(OCL_CACHE_FNV_INIT, key, strlen(key));
  int n = snprintf(path, cap, "%s/%016llx.bin", dir, (unsigned long long)h);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
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

static unsigned char *read_all(const char *path, size_t *n, int *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    *err = -errno;
    return NULL;
  }
  unsigned char *buf = NULL;
  struct stat sb;
  *err = -EBADMSG;
  if (fstat(fileno(f), &sb) == 0 && sb.st_size > 0 &&
      sb.st_size < (1 << 30) && (buf = malloc((size_t)sb.st_size))) {
    *n = fread(buf, 1, (size_t)sb.st_size, f);
    *err = *n == (size_t)sb.st_size ? 0 : -EBADMSG;
  }
  fclose(f);
  if (*err) {
    free(buf);
    buf = NULL;
  }
  return buf;
}

int ocl_cache_load(const char *dir, const char *key, unsigned char **bin,
                   size_t *len) {
  char path[4200];
  int r = file_path(dir, key, path, sizeof path);
  size_t n = 0, hn = 0;
  unsigned char *buf = r ? NULL : read_all(path, &n, &r);
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

static int write_all(int fd, const void *p, size_t n) {
  const unsigned char *b = p;
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

int ocl_cache_save(const char *dir, const char *key, const void *bin,
                   size_t len) {
  char path[4200], tmp[4300];
  int r = ocl_cache_mkdir(dir);
  if (!r)
    r = file_path(dir, key, path, sizeof path);
  if (r)
    return r;
  /* Two servers (or two opens in one) saving at once each write their
   * own temporary file; the last rename wins, and either file is whole. */
  static _Atomic unsigned seq;
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
           atomic_fetch_add(&seq, 1));
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  size_t hn = 0;
  char *h = header(key, &hn);
  unsigned char lens[16];
  put64(lens, len);
  put64(lens + 8, ocl_cache_fnv(OCL_CACHE_FNV_INIT, bin, len));
  r = h ? 0 : -ENOMEM;
  if (!r)
    r = write_all(fd, h, hn);
  if (!r)
    r = write_all(fd, lens, sizeof lens);
  if (!r)
    r = write_all(fd, bin, len);
  if (close(fd) && !r)
    r = -errno;
  if (!r && rename(tmp, path))
    r = -errno;
  if (r)
    unlink(tmp);
  free(h);
  return r;
}
