/* A server that is its own swap device must never fault on a page that is
 * only in swap: the fault would wait for a read from the server itself.
 * Anonymous memory is covered by mlockall: with MCL_ONFAULT a page stays
 * resident once touched, and an untouched one is zero-filled, never read
 * back.  File pages are not covered: code and data of the program and its
 * libraries that have not run yet are faulted in from the page cache on
 * first use, and when the file lives on tmpfs (an initramfs root, a live
 * system) its pages are themselves swapped out, to us.  Faulting all of
 * them in at start, under MCL_ONFAULT, locks them: a few MiB of code.
 *
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include "pin-mappings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Kernels before 5.14 have no MADV_POPULATE_*: touch each page instead.
 * A read maps a file page; a private writable page is then copied on the
 * first write, which needs a free page but never a read from swap. */
static void touch_pages(const volatile unsigned char *p, size_t len,
                        size_t pg) {
  for (size_t off = 0; off < len; off += pg)
    (void)p[off];
}

static int pin_one(void *lo, size_t len, int writable_private, size_t pg) {
  int advice = writable_private ? MADV_POPULATE_WRITE : MADV_POPULATE_READ;
  if (madvise(lo, len, advice) == 0)
    return 0;
  if (errno != EINVAL)
    return -errno;
  touch_pages(lo, len, pg);
  return 0;
}

int pin_file_mappings(uint64_t *bytes, unsigned *failed) {
  *bytes = 0;
  *failed = 0;
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f)
    return -errno;
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi, off, ino;
    char perms[8], dev[32];
    if (sscanf(line, "%lx-%lx %7s %lx %31s %lu", &lo, &hi, perms, &off, dev,
               &ino) != 6)
      continue;
    /* Anonymous memory (ino 0: heap, stacks, [vdso]) is mlockall's; an
     * unreadable mapping is a guard region.  Device mappings are skipped:
     * their pages are not page cache. */
    if (ino == 0 || perms[0] != 'r' || strstr(line, " /dev/"))
      continue;
    /* A shared mapping is data, not code: a persistent store's state (a
     * memfd, mostly holes) is one, and faulting it in would fill it. */
    if (perms[3] == 's')
      continue;
    int writable_private = perms[1] == 'w' && perms[3] == 'p';
    if (pin_one((void *)lo, hi - lo, writable_private, pg))
      (*failed)++;
    else
      *bytes += hi - lo;
  }
  fclose(f);
  return 0;
}
