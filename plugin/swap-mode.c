/* swap=on: the server must not deadlock or be OOM-killed while the kernel
 * swaps to it.
 *
 * - mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) after nbdkit forks into the
 *   background: nbdkit --swap locks memory before it forks, and locks are
 *   not inherited by a fork child, so the daemon would run unlocked.
 *   MCL_ONFAULT keeps untouched mappings (thread stacks, the pool's address
 *   space) from being populated in full; what is touched stays resident.
 * - PR_SET_IO_FLUSHER: our own allocations never wait on I/O to a block
 *   device (which may be us), and writeback throttling is per-device.
 *   Inherited by every thread and by the daemonised child.
 * - oom_score_adj -1000: the OOM killer never picks us.
 * - the engine's page pool keeps a reserve of mapped, pre-touched memory so
 *   a write does not need fresh memory from the kernel while the kernel is
 *   short of it; when the reserve is gone and the kernel refuses memory, the
 *   write fails (ENOMEM: an I/O error the kernel retries) instead of
 *   blocking.
 *
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include "swap-mode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "trueno.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

/* 16 MiB of pool memory kept mapped and resident ahead of the writes. */
#define SWAP_RESERVE (16u << 20)

static int enabled;

int swap_mode_config(const char *value) {
  int b = nbdkit_parse_bool(value);
  if (b == -1) {
    nbdkit_error("swap: expected on or off, not '%s'", value);
    return -1;
  }
  enabled = b;
  return 0;
}

int swap_mode_enabled(void) { return enabled; }

int swap_mode_prepare(void) {
  if (!enabled)
    return 0;
  if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == -1) {
    nbdkit_error("swap: prctl(PR_SET_IO_FLUSHER): %s (needs root or "
                 "CAP_SYS_RESOURCE, Linux >= 5.6)",
                 strerror(errno));
    return -1;
  }
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd == -1 || write(fd, "-1000", 5) != 5) {
    nbdkit_error("swap: cannot set /proc/self/oom_score_adj to -1000: %s "
                 "(needs root or CAP_SYS_RESOURCE)",
                 strerror(errno));
    if (fd != -1)
      close(fd);
    return -1;
  }
  close(fd);
  trueno_set_pool_reserve(SWAP_RESERVE);
  nbdkit_debug("swap: I/O flusher, oom_score_adj -1000, %u MiB reserve",
               SWAP_RESERVE >> 20);
  return 0;
}

int swap_mode_after_fork(void) {
  if (!enabled)
    return 0;
  if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == -1 &&
      (errno != EINVAL || mlockall(MCL_CURRENT | MCL_FUTURE) == -1)) {
    nbdkit_error("swap: mlockall: %s (needs root, or a higher RLIMIT_MEMLOCK)",
                 strerror(errno));
    return -1;
  }
  nbdkit_debug("swap: memory locked");
  return 0;
}
