/* The ublk control device (/dev/ublk-control): adding, starting, stopping
 * and deleting devices with io_uring URING_CMD (128-byte SQEs).
 * Every function returns 0 (or a count) or a negative errno.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_CTRL_H
#define TRUENO_UBLK_CTRL_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "ublk-uapi.h"

#define UBLK_CONTROL_PATH "/dev/ublk-control"

struct ublk_ctrl {
  int fd;
  struct io_uring ring;
  uint64_t features;  /* UBLK_F_* the driver has; 0 when it cannot say */
  bool ioctl_encode;  /* send UBLK_U_* opcodes (else the legacy numbers) */
};

/* Opens the control device (path NULL: UBLK_CONTROL_PATH, or
 * $TRUENO_UBLK_CONTROL) and asks for the driver's features.  -ENOENT: the
 * module is not loaded; -EACCES/-EPERM: not root. */
int ublk_ctrl_open(struct ublk_ctrl *c, const char *path);
void ublk_ctrl_close(struct ublk_ctrl *c);

/* info: nr_hw_queues, queue_depth, max_io_buf_bytes, dev_id (-1U: any)
 * and flags in; what the kernel made of them out (dev_id, flags). */
int ublk_ctrl_add(struct ublk_ctrl *c, struct ublksrv_ctrl_dev_info *info);
int ublk_ctrl_set_params(struct ublk_ctrl *c, uint32_t id,
                         struct ublk_params *p);
/* Waits until every queue has fetched (the queue threads must run). */
int ublk_ctrl_start(struct ublk_ctrl *c, uint32_t id, int server_pid);
int ublk_ctrl_stop(struct ublk_ctrl *c, uint32_t id);
/* Waits until the server has closed /dev/ublkcN. */
int ublk_ctrl_del(struct ublk_ctrl *c, uint32_t id);
/* The CPUs whose requests go to queue q (a cpu_set_t of cap bytes). */
int ublk_ctrl_queue_affinity(struct ublk_ctrl *c, uint32_t id, uint16_t q,
                             void *cpuset, uint16_t cap);
int ublk_ctrl_info(struct ublk_ctrl *c, uint32_t id,
                   struct ublksrv_ctrl_dev_info *info);
int ublk_ctrl_get_params(struct ublk_ctrl *c, uint32_t id,
                         struct ublk_params *p);
/* User recovery (a device added with UBLK_F_USER_RECOVERY whose server
 * died): start refuses (-EBUSY) until the dead server's /dev/ublkcN is
 * closed and the kernel has quiesced the device; end waits until every
 * queue of the new server has fetched, then the kernel replays what it
 * had queued. */
int ublk_ctrl_start_recovery(struct ublk_ctrl *c, uint32_t id);
int ublk_ctrl_end_recovery(struct ublk_ctrl *c, uint32_t id, int server_pid);

#endif
