/* Who may connect: swap holds every process's memory, secrets included, so
 * a swap=on server by default serves only root over a Unix socket or a
 * TLS-authenticated client (nbdkit --tls=require with a PSK, or with
 * certificates and --tls-verify-peer).  allow-unauthenticated= says
 * otherwise explicitly, either way, with or without swap=on.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_CLIENT_ACCESS_H
#define TRUENO_CLIENT_ACCESS_H

#include <stdbool.h>

/* allow-unauthenticated=yes|no (nbdkit_parse_bool's spellings).  0, or -1
 * after nbdkit_error. */
int client_access_config(const char *value);
/* Once all parameters are known: whether clients are checked (no unless
 * allow-unauthenticated=no, or swap=on without allow-unauthenticated=yes). */
void client_access_complete(bool swap);
/* In .open: 0 if the connecting client may be served, else -1 after
 * nbdkit_error saying why. */
int client_access_check(void);

#endif
