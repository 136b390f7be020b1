/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "size-check.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/sysinfo.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

static bool overcommit;

int size_check_config(const char *value) {
  int r = nbdkit_parse_bool(value);
  if (r == -1) {
    nbdkit_error("overcommit: expected yes or no, not '%s'", value);
    return -1;
  }
  overcommit = r;
  return 0;
}

int size_check(uint64_t size, uint64_t mem_limit) {
  if (overcommit)
    return 0;
  /* What the store may come to hold: the whole device, or less if
   * mem-limit caps it. */
  uint64_t most = mem_limit && mem_limit < size ? mem_limit : size;
  struct sysinfo si;
  if (sysinfo(&si) == -1) {
    nbdkit_error("size: cannot read the machine's memory (sysinfo: %s); "
                 "overcommit=yes skips this check",
                 strerror(errno));
    return -1;
  }
  uint64_t unit = si.mem_unit ? si.mem_unit : 1;
  uint64_t total = ((uint64_t)si.totalram + si.totalswap) * unit;
  if (most > total) {
    nbdkit_error("size: %" PRIu64 " bytes is more than this machine's RAM "
                 "plus swap (%" PRIu64 " bytes): filled with data that "
                 "does not compress, the store would exhaust memory; give "
                 "a smaller size, a mem-limit below that, or overcommit=yes "
                 "if that is meant",
                 size, total);
    return -1;
  }
  return 0;
}
