/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "client-access.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

static int allow = -1; /* not given */
static bool enforced;
static bool tls_authenticates; /* nbdkit checks a TLS client's key/cert */

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

/* nbdkit_is_tls() says a connection is encrypted, not that the client
 * proved who it is: with --tls-certificates and no --tls-verify-peer any
 * client that trusts the server's certificate completes the handshake.
 * nbdkit 1.32 gives plugins no way to ask, so read its own command line:
 * a PSK (--tls-psk) or --tls-verify-peer authenticates the client.  Its
 * options come before the plugin, whose key=value parameters never start
 * with "--".  An unreadable command line counts as no authentication. */
static bool nbdkit_authenticates_tls(void) {
  char buf[16384];
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return false;
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 &&
         (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
    n += (size_t)r;
  close(fd);
  buf[n] = '\0';
  for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
    const char *a = buf + i;
    if (strcmp(a, "--tls-verify-peer") == 0 || strcmp(a, "--tls-psk") == 0 ||
        strncmp(a, "--tls-psk=", 10) == 0)
      return true;
  }
  return false;
}

void client_access_complete(bool swap) {
  enforced = allow == -1 ? swap : !allow;
  tls_authenticates = enforced && nbdkit_authenticates_tls();
}

int client_access_check(void) {
  if (!enforced)
    return 0;
  /* TLS: served when nbdkit checked the client's key or certificate. */
  if (nbdkit_is_tls() == 1) {
    if (tls_authenticates)
      return 0;
    nbdkit_error("refusing a TLS client: nbdkit checks no client key or "
                 "certificate (add --tls-verify-peer to --tls-certificates, "
                 "or use --tls-psk=FILE), and the device may hold any "
                 "process's memory (allow-unauthenticated=yes to serve "
                 "anyone)");
    return -1;
  }
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
