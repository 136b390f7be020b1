/* Keeps a state's pages in RAM between two servers (the supervisor's).
 *
 * A server locks the store it maps (mlockall), but its locks die with
 * it: the state's pages (shmem) become evictable, and the kernel may
 * swap them out to the very device that waits for the next server, who
 * then faults on them and waits for a write that needs it: a deadlock
 * (seen in the VM rig, tests/vm/cases/36-ublk-restart.sh).  So the
 * supervisor maps the state too, locked on fault, and maps (touches)
 * every page the state has, now and then, while its server lives; a page
 * mapped by a locked mapping is not evicted.  Only pages the server made
 * since the last scan are left to chance at its death (the newest, which
 * reclaim takes last).  Holes are never touched: nothing is allocated.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_STATE_PIN_H
#define TRUENO_UBLK_STATE_PIN_H

#include <stddef.h>
#include <stdint.h>

struct state_pin {
  const volatile uint8_t *map; /* NULL: not mapped */
  size_t len;
  unsigned char *vec;         /* mincore's, a byte per page */
};

/* Maps fd's current size, read-only, locked on fault.  0 or -errno. */
int state_pin_open(struct state_pin *p, int fd);
/* Touches each page the state holds in RAM (mincore); returns how many
 * (a read of a page already mapped costs no fault). */
size_t state_pin_scan(struct state_pin *p);
void state_pin_close(struct state_pin *p);

#endif
