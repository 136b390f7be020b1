/* pin_file_mappings (common/pin-mappings.c) faults in the program's own
 * file pages, and leaves a shared mapping of a memfd alone: a persistent
 * store's state is such a mapping, sparse (twice the device plus 16 MiB
 * of address space), and faulting it in would fill the memfd with pages
 * and, under swap=on, lock them (docs/persistence.md).
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pin-mappings.h"
#include "test-common.h"

int main(void) {
  const size_t len = 64u << 20;
  int fd = memfd_create("trueno-state:test", MFD_CLOEXEC);
  CHECK(fd >= 0 && ftruncate(fd, (off_t)len) == 0, "memfd");
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED, "mmap");
  ((char *)p)[0] = 1; /* one page written: the store's header, say */
  uint64_t bytes;
  unsigned failed;
  CHECK(pin_file_mappings(&bytes, &failed) == 0, "pin_file_mappings");
  CHECK(bytes > 0, "the program's own pages were pinned (%llu bytes)",
        (unsigned long long)bytes);
  struct stat sb;
  CHECK(fstat(fd, &sb) == 0 && (uint64_t)sb.st_blocks * 512 <= 4096 * 16,
        "the shared memfd mapping was left sparse: %llu bytes allocated",
        (unsigned long long)sb.st_blocks * 512);
  munmap(p, len);
  close(fd);
  return tc_finish();
}
