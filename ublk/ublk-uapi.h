/* The kernel's ublk UAPI (linux/ublk_cmd.h) plus what older headers lack.
 *
 * Debian 12's linux-libc-dev is 6.1; kernels since 6.3-6.5 added the
 * ioctl-encoded opcodes (UBLK_U_*), UBLK_F_CMD_IOCTL_ENCODE, GET_FEATURES
 * and more.  What we use and the 6.1 header lacks is defined here, with the
 * kernel's values (include/uapi/linux/ublk_cmd.h); each is probed at run
 * time, never assumed.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_UAPI_H
#define TRUENO_UBLK_UAPI_H

#include <linux/ioctl.h>
#include <linux/ublk_cmd.h>

/* Linux 6.5: returns the driver's UBLK_F_* set (8 bytes). Only ever sent
 * ioctl-encoded. */
#ifndef UBLK_CMD_GET_FEATURES
#define UBLK_CMD_GET_FEATURES 0x13
#endif
#ifndef UBLK_FEATURES_LEN
#define UBLK_FEATURES_LEN 8
#endif

/* Linux 6.3: opcodes encoded like ioctls ('u', nr, argument struct).
 * Kernels built without CONFIG_BLKDEV_UBLK_LEGACY_OPCODES accept only
 * these; older kernels only the bare numbers. */
#ifndef UBLK_F_CMD_IOCTL_ENCODE
#define UBLK_F_CMD_IOCTL_ENCODE (1ULL << 6)
#endif
#ifndef UBLK_U_CMD_GET_FEATURES
#define UBLK_U_CMD_GET_FEATURES \
  _IOR('u', UBLK_CMD_GET_FEATURES, struct ublksrv_ctrl_cmd)
#endif
#define TRUENO_UBLK_U_CTRL(nr) _IOWR('u', (nr), struct ublksrv_ctrl_cmd)
#define TRUENO_UBLK_U_IO(nr) _IOWR('u', (nr), struct ublksrv_io_cmd)

/* The io descriptor area of queue q is mmapped from /dev/ublkcN at
 * q * (the area of a queue of the largest depth), rounded to pages. */
#define TRUENO_UBLK_MAX_DESC_BYTES \
  (UBLK_MAX_QUEUE_DEPTH * sizeof(struct ublksrv_io_desc))

#endif
