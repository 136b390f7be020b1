/* See store-state.h.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "store-state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hold-proto.h"
#include "statefd.h"

int store_state_set(struct store_state *s, const char *key,
                    const char *value, char *err, size_t errlen) {
  int is_name = !strcmp(key, "state-name");
  if (is_name && !hold_name_ok(value)) {
    snprintf(err, errlen, "state-name: '%s': 1 to %d letters, digits, '_', "
             "'.' or '-'", value, HOLD_NAME_MAX - 1);
    return -EINVAL;
  }
  if (!is_name && strcmp(value, "systemd") && strncmp(value, "fd:", 3) &&
      value[0] != '/') {
    snprintf(err, errlen, "state: '%s': the absolute path of a trueno-hold "
             "socket, fd:N or systemd", value);
    return -EINVAL;
  }
  *(is_name ? &s->name : &s->spec) = value;
  return 0;
}

int store_state_check(const struct store_state *s, char *err,
                      size_t errlen) {
  if (!s->spec && s->name) {
    snprintf(err, errlen, "state-name: only applies with state=");
    return -EINVAL;
  }
  if (s->spec && !s->name && strncmp(s->spec, "fd:", 3)) {
    snprintf(err, errlen, "state-name: required with state=%s (the name its "
             "keeper holds the state under)", s->spec);
    return -EINVAL;
  }
  return 0;
}

/* Never written: no page of the file holds data (a holder's new memfd,
 * of any size).  A state whose header was zeroed still has its slots and
 * pages, so it is attached, and refused, not taken for new. */
static int state_is_new(int fd) {
  struct stat sb;
  if (fstat(fd, &sb) == 0 && sb.st_size == 0)
    return 1;
  return lseek(fd, 0, SEEK_DATA) < 0 && errno == ENXIO;
}

/* No state kept yet: make one and give it to its keeper before the store
 * is made in it, so that a kill in between leaves the keeper an empty
 * state (new again at the next start), never a store nobody keeps.
 * got: why the keeper had none, said instead when it refuses this one
 * for the same reason (another name, no such socket). */
static int state_make(const struct store_state *s, const char *got, char *err,
                      size_t errlen) {
  char mname[HOLD_NAME_MAX + 16];
  snprintf(mname, sizeof mname, "trueno-state:%s", s->name);
  int fd = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    int r = -errno;
    snprintf(err, errlen, "state: memfd: %s", strerror(-r));
    return r;
  }
  char why[256];
  int r = strcmp(s->spec, "systemd")
              ? statefd_put(s->spec, s->name, fd, why, sizeof why)
              : statefd_fdstore(fd, s->name, why, sizeof why);
  if (r == -ENOENT)
    snprintf(err, errlen, "state=%s: %s", s->spec, got);
  else if (r < 0)
    snprintf(err, errlen, "state=%s: %s, and it refused a new one: %s",
             s->spec, got, why);
  if (r < 0) {
    close(fd);
    return r;
  }
  return fd;
}

/* One server per state: an open file description of our own (reopened
 * through /proc: a holder hands every server the same description, which
 * a lock could not tell apart) with an OFD write lock on byte 0; the kernel drops it when the server exits, killed or not.  Returns
 * the new descriptor (fd is closed), fd itself where /proc is missing
 * (no lock then), or -EBUSY. */
static int state_lock(const struct store_state *s, int fd, char *err,
                      size_t errlen) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int own = open(path, O_RDWR | O_CLOEXEC);
  if (own < 0)
    return fd;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
  if (fcntl(own, F_OFD_SETLK, &fl) < 0) {
    int r = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
    snprintf(err, errlen, "state=%s: state '%s' %s", s->spec,
             s->name ? s->name : s->spec + 3,
             r == -EBUSY ? "is served by another server: stop it first"
                         : strerror(-r));
    close(own);
    close(fd);
    return r;
  }
  close(fd);
  return own;
}

int store_state_take(const struct store_state *s, char *err,
                     size_t errlen) {
  char why[256];
  int fd = statefd_get(s->spec, s->name ? s->name : "", why, sizeof why);
  /* A keeper that holds nothing yet: trueno-hold --empty says ENOENT, as
   * does systemd without the descriptor (the first start). */
  if (fd == -ENOENT && strncmp(s->spec, "fd:", 3))
    fd = state_make(s, why, err, errlen);
  else if (fd < 0)
    snprintf(err, errlen, "state=%s: %s", s->spec, why);
  return fd;
}

int store_state_open(struct store_state *s, struct trueno_config *cfg,
                     struct trueno_store **out, int *attached, char *err,
                     size_t errlen) {
  if (errlen)
    err[0] = 0;
  if (attached)
    *attached = 0;
  s->fd = -1;
  if (!s->spec) {
    cfg->persist = 0;
    return trueno_store_create(cfg, out);
  }
  char why[256];
  int fd = store_state_take(s, err, errlen);
  if (fd >= 0)
    fd = state_lock(s, fd, err, errlen);
  if (fd < 0)
    return fd;
  int r;
  if (state_is_new(fd)) {
    cfg->persist = 1;
    cfg->state_fd = fd;
    r = trueno_store_create(cfg, out);
  } else {
    cfg->persist = 0;
    r = trueno_store_attach(fd, cfg, out, why, sizeof why);
    if (r)
      snprintf(err, errlen, "state=%s: cannot serve state '%s': %s%s",
               s->spec, s->name ? s->name : s->spec + 3,
               why[0] ? why : strerror(-r),
               r == -EUCLEAN ? " (nothing served: stop its keeper to drop "
                               "the state)"
                             : "");
    else if (attached)
      *attached = 1;
  }
  if (r) {
    close(fd);
    return r;
  }
  s->fd = fd;
  return 0;
}

void store_state_close(struct store_state *s, struct trueno_store *st) {
  trueno_store_destroy(st);
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
}
