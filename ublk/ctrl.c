/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "ctrl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One command, synchronously: the control commands are few and slow
 * (ADD, START and DEL wait in the kernel), a ring of 4 is plenty. */
static int ctrl_cmd(struct ublk_ctrl *c, unsigned nr, uint32_t dev_id,
                    void *buf, uint16_t len, uint64_t data0) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
  if (!sqe)
    return -EBUSY;
  memset(sqe, 0, 2 * sizeof *sqe); /* SQE128: the command is 80 bytes */
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = c->fd;
  sqe->cmd_op = c->ioctl_encode ? TRUENO_UBLK_U_CTRL(nr) : nr;
  if (nr == UBLK_CMD_GET_FEATURES)
    sqe->cmd_op = UBLK_U_CMD_GET_FEATURES; /* never had a legacy number */
  struct ublksrv_ctrl_cmd *cmd = (struct ublksrv_ctrl_cmd *)sqe->cmd;
  cmd->dev_id = dev_id;
  cmd->queue_id = (uint16_t)-1;
  cmd->addr = (uint64_t)(uintptr_t)buf;
  cmd->len = len;
  cmd->data[0] = data0;
  int r = io_uring_submit(&c->ring);
  if (r < 0)
    return r;
  struct io_uring_cqe *cqe;
  do
    r = io_uring_wait_cqe(&c->ring, &cqe);
  while (r == -EINTR);
  if (r < 0)
    return r;
  r = cqe->res;
  io_uring_cqe_seen(&c->ring, cqe);
  return r;
}

int ublk_ctrl_open(struct ublk_ctrl *c, const char *path) {
  memset(c, 0, sizeof *c);
  if (!path)
    path = getenv("TRUENO_UBLK_CONTROL");
  if (!path)
    path = UBLK_CONTROL_PATH;
  c->fd = open(path, O_RDWR | O_CLOEXEC);
  if (c->fd < 0)
    return -errno;
  int r = io_uring_queue_init(4, &c->ring, IORING_SETUP_SQE128);
  if (r) {
    close(c->fd);
    c->fd = -1;
    return r;
  }
  /* Linux >= 6.5 says what it has.  Before that (-EOPNOTSUPP, -EINVAL) the
   * driver knows only the legacy opcodes and the basic features. */
  uint64_t f = 0;
  c->ioctl_encode = true;
  r = ctrl_cmd(c, UBLK_CMD_GET_FEATURES, (uint32_t)-1, &f, UBLK_FEATURES_LEN,
               0);
  if (r == 0) {
    c->features = f;
    c->ioctl_encode = (f & UBLK_F_CMD_IOCTL_ENCODE) != 0;
  } else {
    c->features = 0;
    c->ioctl_encode = false;
  }
  return 0;
}

void ublk_ctrl_close(struct ublk_ctrl *c) {
  if (c->fd < 0)
    return;
  io_uring_queue_exit(&c->ring);
  close(c->fd);
  c->fd = -1;
}

int ublk_ctrl_add(struct ublk_ctrl *c, struct ublksrv_ctrl_dev_info *info) {
  return ctrl_cmd(c, UBLK_CMD_ADD_DEV, info->dev_id, info, sizeof *info, 0);
}

int ublk_ctrl_set_params(struct ublk_ctrl *c, uint32_t id,
                         struct ublk_params *p) {
  p->len = sizeof *p;
  return ctrl_cmd(c, UBLK_CMD_SET_PARAMS, id, p, sizeof *p, 0);
}

int ublk_ctrl_start(struct ublk_ctrl *c, uint32_t id, int server_pid) {
  return ctrl_cmd(c, UBLK_CMD_START_DEV, id, NULL, 0, (uint64_t)server_pid);
}

int ublk_ctrl_stop(struct ublk_ctrl *c, uint32_t id) {
  return ctrl_cmd(c, UBLK_CMD_STOP_DEV, id, NULL, 0, 0);
}

int ublk_ctrl_del(struct ublk_ctrl *c, uint32_t id) {
  return ctrl_cmd(c, UBLK_CMD_DEL_DEV, id, NULL, 0, 0);
}

int ublk_ctrl_queue_affinity(struct ublk_ctrl *c, uint32_t id, uint16_t q,
                             void *cpuset, uint16_t cap) {
  memset(cpuset, 0, cap);
  return ctrl_cmd(c, UBLK_CMD_GET_QUEUE_AFFINITY, id, cpuset, cap, q);
}

int ublk_ctrl_info(struct ublk_ctrl *c, uint32_t id,
                   struct ublksrv_ctrl_dev_info *info) {
  memset(info, 0, sizeof *info);
  return ctrl_cmd(c, UBLK_CMD_GET_DEV_INFO, id, info, sizeof *info, 0);
}

int ublk_ctrl_get_params(struct ublk_ctrl *c, uint32_t id,
                         struct ublk_params *p) {
  memset(p, 0, sizeof *p);
  p->len = sizeof *p;
  return ctrl_cmd(c, UBLK_CMD_GET_PARAMS, id, p, sizeof *p, 0);
}

int ublk_ctrl_start_recovery(struct ublk_ctrl *c, uint32_t id) {
  return ctrl_cmd(c, UBLK_CMD_START_USER_RECOVERY, id, NULL, 0, 0);
}

int ublk_ctrl_end_recovery(struct ublk_ctrl *c, uint32_t id, int server_pid) {
  return ctrl_cmd(c, UBLK_CMD_END_USER_RECOVERY, id, NULL, 0,
                  (uint64_t)server_pid);
}
