/* The client side of the NBD fixed-newstyle handshake (NBD_OPT_GO), done
 * before the connected socket is handed to the kernel, which only speaks
 * the transmission phase.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_NBD_HANDSHAKE_H
#define TRUENO_NBD_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

struct nbd_export {
  uint64_t size;  /* bytes */
  uint16_t flags; /* transmission flags (NBD_FLAG_*) */
};

/* Connects a stream socket to the Unix socket PATH: the fd, or -errno. */
int nbd_unix_connect(const char *path);

/* Negotiates export NAME ("" = the default) on connected FD with
 * NBD_OPT_GO, waiting at most TIMEOUT_MS for each reply.  0 with *EX set,
 * or -errno with ERR (ERRLEN bytes) saying what failed. */
int nbd_handshake(int fd, const char *name, int timeout_ms,
                  struct nbd_export *ex, char *err, size_t errlen);

#endif
