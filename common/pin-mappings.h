/* Pins the pages of this process's file-backed mappings in memory.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_PIN_MAPPINGS_H
#define TRUENO_PIN_MAPPINGS_H

#include <stdint.h>

/* Faults in every readable file-backed mapping (the program, its shared
 * libraries, the plugin; shared ones, data such as a persistent store's
 * state, are left alone), writable private ones as private copies, so that
 * under mlockall(MCL_FUTURE | MCL_ONFAULT) they are locked and the server
 * never waits for a page of its own code.  Sets *bytes to what was faulted
 * in.  0, or a negative errno when /proc/self/maps cannot be read; a
 * mapping that cannot be faulted in is skipped and counted in *failed. */
int pin_file_mappings(uint64_t *bytes, unsigned *failed);

#endif
