/* trueno-ublk's queue set-up and tear-down on any host (no ublk_drv): a
 * queue whose init fails early, or that was never initialised, is freed
 * without closing a descriptor it never opened (descriptor 0 above all,
 * which a zeroed queue's eventfd field would name).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"
#include "test-common.h"

static int fd0_open(void) { return fcntl(0, F_GETFD) != -1; }

int main(void) {
  /* Descriptor 0 is ours to watch: /dev/null, whatever stdin was. */
  int nul = open("/dev/null", O_RDONLY);
  CHECK(nul >= 0 && dup2(nul, 0) == 0, "/dev/null as descriptor 0");
  if (nul > 0)
    close(nul);

  /* As server.c's calloc leaves it: init fails at the first mmap (no
   * /dev/ublkcN), then the server's tear-down frees it. */
  struct ublk_queue *q = calloc(1, sizeof *q);
  q->depth = 4;
  q->buf_bytes = 4096;
  q->cdev_fd = -1;
  int r = ublk_queue_init(q);
  CHECK(r == -EBADF, "init without a device: %d", r);
  ublk_queue_free(q);
  CHECK(fd0_open(), "freeing a queue whose init failed closed descriptor 0");
  ublk_queue_free(q);
  CHECK(fd0_open(), "freeing it twice closed descriptor 0");

  /* Queues after the one that failed were never initialised: cleared,
   * then freed by the same tear-down. */
  struct ublk_queue *never = calloc(1, sizeof *never);
  ublk_queue_clear(never);
  ublk_queue_free(never);
  CHECK(fd0_open(), "freeing a never-initialised queue closed descriptor 0");
  free(q);
  free(never);
  return tc_finish();
}
