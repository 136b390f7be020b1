/* trueno-nbd supervise: keeps a store's state, runs its server, attaches
 * /dev/nbdN and restarts the server under it (supervise.c).
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_NBD_SUPERVISE_H
#define TRUENO_NBD_SUPERVISE_H

/* The command line after "supervise": the exit status. */
int supervise_main(int argc, char **argv);

#endif
