/* swap=on: what the server needs to survive being the kernel's swap device.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_SWAP_MODE_H
#define TRUENO_SWAP_MODE_H

#include <stdbool.h>
#include <stdint.h>

#include "trueno.h"

/* swap= as common/engine-params.c parsed it, before swap_mode_prepare. */
void swap_mode_set(bool on);
int swap_mode_enabled(void);
/* Before the store is created (main thread, before nbdkit forks): tunes
 * malloc to keep what it has (swap=on gave the store its pool reserve:
 * engine-params.c). */
void swap_mode_prepare(void);
/* Once the store and its page table exist: marks the process an I/O
 * flusher and shields it from the OOM killer.  Not before: a page table
 * too large for the machine must meet the OOM killer as any other
 * allocation does, not push it onto other processes.  0 or -1 after
 * nbdkit_error. */
int swap_mode_protect(void);
/* In the (possibly daemonised) server after fork: locks all memory and
 * starts the thread that keeps the store's reserve topped up. */
int swap_mode_after_fork(struct trueno_store *st);
/* Stops that thread (before the store is destroyed). */
void swap_mode_stop(void);

#endif
