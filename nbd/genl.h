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
  uint32_t mcast; /* the id of the nbd multicast group (link dead), or 0 */
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

/* NBD_CMD_CONNECT with the NFDS connections FDS (their handshakes done):
 * 0 and the device's index in *INDEX, or -errno. */
int nbd_genl_connect(struct nbd_genl *g, const struct nbd_connect_args *a,
                     const int *fds, int nfds, uint32_t *index);
/* NBD_CMD_RECONFIGURE handing the NFDS connections FDS to device INDEX;
 * BACKEND (or NULL) must be the one it was connected with.  The kernel
 * puts each in place of a dead connection and drops, silently, those for
 * which none is dead (6.12: -ENOSPC, answered as success). */
int nbd_genl_reconnect(struct nbd_genl *g, uint32_t index, const int *fds,
                       int nfds, const char *backend);
/* NBD_CMD_DISCONNECT of device INDEX. */
int nbd_genl_disconnect(struct nbd_genl *g, uint32_t index);

/* Joins the nbd multicast group on G's socket (once open), so that the
 * kernel's NBD_CMD_LINK_DEAD (a connection of a device died: its server
 * closed it or a request timed out) arrives there.  Use a socket of its
 * own for that, not one for requests. */
int nbd_genl_watch(struct nbd_genl *g);
/* Reads one message from a watching socket without waiting: the index of
 * the device whose link died, -EAGAIN for nothing to read, -ENOMSG for
 * another message, or -errno. */
int nbd_genl_link_dead(struct nbd_genl *g);

#endif
