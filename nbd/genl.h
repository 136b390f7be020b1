/* The kernel nbd driver's generic-netlink interface (linux/nbd-netlink.h)
 * over a raw netlink socket: connect a device to a socket, hand a device
 * whose connection died a new one, disconnect.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_NBD_GENL_H
#define TRUENO_NBD_GENL_H

#include <stdint.h>

struct nbd_genl {
  int fd;
  uint16_t family;
  uint32_t seq;
};

struct nbd_connect_args {
  int index;                  /* -1: the kernel picks a free device */
  uint64_t size;              /* bytes */
  uint64_t block_size;        /* bytes */
  uint64_t timeout;           /* seconds per request; 0: the kernel's */
  uint64_t dead_conn_timeout; /* seconds requests wait for a reconnect */
  uint64_t server_flags;      /* the export's transmission flags */
  uint64_t client_flags;      /* NBD_CFLAG_* */
  const char *backend;        /* identity a reconnect must repeat, or NULL */
};

/* Opens the socket and resolves the "nbd" family: 0, -ENOENT when the
 * nbd module is not loaded, or -errno. */
int nbd_genl_open(struct nbd_genl *g);
void nbd_genl_close(struct nbd_genl *g);

/* NBD_CMD_CONNECT with SOCKFD (its handshake done): 0 and the device's
 * index in *INDEX, or -errno. */
int nbd_genl_connect(struct nbd_genl *g, const struct nbd_connect_args *a,
                     int sockfd, uint32_t *index);
/* NBD_CMD_RECONFIGURE handing SOCKFD to device INDEX; BACKEND (or NULL)
 * must be the one it was connected with. */
int nbd_genl_reconnect(struct nbd_genl *g, uint32_t index, int sockfd,
                       const char *backend);
/* NBD_CMD_DISCONNECT of device INDEX. */
int nbd_genl_disconnect(struct nbd_genl *g, uint32_t index);

#endif
