/* The supervisor's restart policy (supervise.h), apart so that the unit
 * test can run it anywhere.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_RESTART_H
#define TRUENO_UBLK_RESTART_H

/* A server that ends within UBLK_RESTART_FAST_S of its start failed fast;
 * after UBLK_RESTART_MAX_FAST such in a row the supervisor gives up,
 * leaving the device quiesced (its I/O held) for trueno-ublk recover or
 * del: a server that cannot start is not started for ever. */
#define UBLK_RESTART_FAST_S 5
#define UBLK_RESTART_MAX_FAST 5

/* lived_s: how long each of the last n servers lived, oldest first.
 * The number of fast failures at its end. */
int ublk_restart_fast(const double *lived_s, int n);
/* Whether to give up. */
int ublk_restart_give_up(const double *lived_s, int n);
/* The pause before the next try after fast failures in a row: none
 * after a server that served a while (a kill: at once), then growing. */
unsigned ublk_restart_delay_ms(int fast);

#endif
