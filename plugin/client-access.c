/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "client-access.h"

#include <inttypes.h>
#include <sys/socket.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

static int allow = -1; /* not given */
static bool enforced;

int client_access_config(const char *value) {
  int r = nbdkit_parse_bool(value);
  if (r == -1) {
    nbdkit_error("allow-unauthenticated: expected yes or no, not '%s'",
                 value);
    return -1;
  }
  allow = r;
  return 0;
}

void client_access_complete(bool swap) {
  enforced = allow == -1 ? swap : !allow;
}

int client_access_check(void) {
  if (!enforced)
    return 0;
  /* TLS: nbdkit has checked the client's key or certificate already. */
  if (nbdkit_is_tls() == 1)
    return 0;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (nbdkit_peer_name((struct sockaddr *)&ss, &len) == -1) {
    nbdkit_error("refusing a client whose address is unknown: only root "
                 "over a Unix socket or TLS clients are served "
                 "(allow-unauthenticated=yes to serve anyone)");
    return -1;
  }
  if (ss.ss_family != AF_UNIX) {
    nbdkit_error("refusing a network client without TLS: the device may "
                 "hold any process's memory (swap); use nbdkit "
                 "--tls=require (e.g. --tls-psk=FILE), a Unix socket for "
                 "root, or allow-unauthenticated=yes");
    return -1;
  }
  /* SO_PEERCRED: who opened the connection, as the kernel saw it. */
  int64_t uid = nbdkit_peer_uid();
  if (uid != 0) {
    if (uid >= 0)
      nbdkit_error("refusing uid %" PRId64 " over the Unix socket: only "
                   "root is served there, or TLS clients "
                   "(allow-unauthenticated=yes to serve anyone)",
                   uid);
    else
      nbdkit_error("refusing a Unix socket client whose uid is unknown "
                   "(allow-unauthenticated=yes to serve anyone)");
    return -1;
  }
  return 0;
}
