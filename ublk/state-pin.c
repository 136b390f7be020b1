/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <config.h>

#include "state-pin.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int state_pin_open(struct state_pin *p, int fd) {
  p->map = NULL;
  p->vec = NULL;
  struct stat sb;
  if (fstat(fd, &sb))
    return -errno;
  if (sb.st_size <= 0)
    return -ENODATA;
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  p->len = ((size_t)sb.st_size + pg - 1) / pg * pg;
  void *m = mmap(NULL, p->len, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (m == MAP_FAILED)
    return -errno;
  /* On fault only: a plain lock would fault in, and so allocate, every
   * hole of the sparse state. */
  if (mlock2(m, p->len, MLOCK_ONFAULT)) {
    int r = -errno;
    munmap(m, p->len);
    return r;
  }
  p->vec = malloc(p->len / pg);
  if (!p->vec) {
    munmap(m, p->len);
    return -ENOMEM;
  }
  p->map = m;
  return 0;
}

size_t state_pin_scan(struct state_pin *p) {
  if (!p->map)
    return 0;
  size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = 0;
  if (mincore((void *)p->map, p->len, p->vec))
    return 0;
  for (size_t i = 0; i < p->len / pg; i++)
    if (p->vec[i] & 1) {
      (void)p->map[i * pg];
      n++;
    }
  return n;
}

void state_pin_close(struct state_pin *p) {
  if (p->map)
    munmap((void *)p->map, p->len);
  free(p->vec);
  p->map = NULL;
  p->vec = NULL;
}
