/* state=SPEC and state-name=NAME of the front ends: the store kept in a
 * state (a memfd) that outlives the server (docs/persistence.md).  The
 * plugin and trueno-ublk open their store here, so both take the same
 * spellings and refuse alike.
 * SPDX-License-Identifier: MIT */
#ifndef TRUENO_STORE_STATE_H
#define TRUENO_STORE_STATE_H

#include <stddef.h>

#include "trueno.h"

/* The strings are the caller's (argv, nbdkit's config values) and must
 * live as long as this. */
struct store_state {
  const char *spec; /* state=: a trueno-hold socket, "fd:N" or "systemd"; NULL: off */
  const char *name; /* state-name= */
  int fd;           /* the state's descriptor while the store is open, else -1 */
};
#define STORE_STATE_INIT {.spec = NULL, .name = NULL, .fd = -1}

/* key is "state" or "state-name" (the caller matched it); value is kept,
 * not copied.  A socket's path must be absolute (nbdkit may chdir, the
 * daemon does).  0, or -EINVAL with a message naming the parameter in
 * err. */
int store_state_set(struct store_state *s, const char *key,
                    const char *value, char *err, size_t errlen);
/* Once all parameters are set: state-name is needed with a socket or
 * systemd (the keeper checks it), and only with state=.  0 or -EINVAL. */
int store_state_check(const struct store_state *s, char *err, size_t errlen);

/* The store: anonymous without state=; with it, a new store made in the
 * state when the state has never been written (a holder's new memfd, or
 * none yet: then this server makes the memfd and hands it to the holder,
 * or to systemd's descriptor store), else the state attached.  cfg's
 * persist and state_fd are set here.  A state that cannot be attached is
 * refused (the engine's reason in err, after "state=SPEC"), never replaced
 * by an empty store.  A state another server has open is refused
 * (-EBUSY): each server locks its state while it is open.  On error err says why, or is empty when
 * trueno_store_create failed (its errno is returned for the caller to
 * word: -ENOSPC, -ENOMEM).  *attached (may be NULL) says which. */
int store_state_open(struct store_state *s, struct trueno_config *cfg,
                     struct trueno_store **out, int *attached, char *err,
                     size_t errlen);
/* The state's descriptor alone (O_CLOEXEC), got from its keeper or made
 * and given to it as store_state_open does, for a process that keeps it
 * and passes it on as state=fd:N (trueno-ublk's supervisor).  Returns it,
 * or a negative errno with the reason in err. */
int store_state_take(const struct store_state *s, char *err,
                     size_t errlen);
/* Detaches the store (a persistent one's state stays) and closes the
 * state's descriptor. */
void store_state_close(struct store_state *s, struct trueno_store *st);

#endif
