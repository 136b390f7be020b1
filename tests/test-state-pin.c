/* The supervisor's hold on a state's pages (ublk/state-pin.c), on any
 * host: every page the state has is mapped into a locked mapping, and no
 * hole is filled (a state is sparse: touching its holes would allocate
 * the whole device).
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state-pin.h"
#include "test-common.h"

/* Resident pages of locked mappings (VmLck counts the mappings' sizes). */
static long locked_kb(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "Locked:", 7))
      kb = strtol(line + 7, NULL, 10);
  if (f)
    fclose(f);
  return kb;
}

int main(void) {
  long pg = sysconf(_SC_PAGESIZE);
  int fd = memfd_create("test-state-pin", MFD_CLOEXEC);
  CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
  CHECK(ftruncate(fd, 256 * pg) == 0, "ftruncate");
  struct state_pin p;
  CHECK(state_pin_open(&p, fd) == 0, "open an empty state");
  CHECK(state_pin_scan(&p) == 0, "an empty state has no page to keep");
  char buf[4096];
  memset(buf, 0x5a, sizeof buf);
  /* Pages a server writes after the pin is open. */
  for (int i = 0; i < 12; i++)
    CHECK(pwrite(fd, buf, (size_t)pg, (off_t)(i * 17) * pg) == pg, "pwrite");
  struct stat before, after;
  fstat(fd, &before);
  long lck0 = locked_kb();
  size_t n = state_pin_scan(&p);
  fstat(fd, &after);
  CHECK(n == 12, "scan kept %zu pages, not the 12 written", n);
  CHECK(after.st_blocks == before.st_blocks,
        "the scan allocated: %lld blocks, was %lld",
        (long long)after.st_blocks, (long long)before.st_blocks);
  long lck = locked_kb();
  if (lck0 < 0)
    fprintf(stderr, "note: no /proc/self/smaps_rollup: locks not checked\n");
  else
    CHECK(lck - lck0 >= 12 * pg / 1024,
          "the 12 pages are not in a locked mapping: Locked %ld -> %ld kB",
          lck0, lck);
  /* A hole punched (the engine freeing pages) is not filled again. */
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                  6 * 17 * pg) == 0, "punch");
  n = state_pin_scan(&p);
  CHECK(n == 6, "after the punch: %zu pages kept, not 6", n);
  fstat(fd, &after);
  CHECK(after.st_blocks * 512 == 6 * pg, "the punched pages came back: %lld blocks",
        (long long)after.st_blocks);
  state_pin_close(&p);
  state_pin_close(&p);
  /* An empty file (size 0): nothing to map. */
  int e = memfd_create("empty", MFD_CLOEXEC);
  CHECK(state_pin_open(&p, e) == -ENODATA, "size 0");
  state_pin_close(&p);
  close(e);
  close(fd);
  return tc_finish();
}
