/* size= against the machine: a store that may grow larger than RAM plus
 * swap could take all of it (under swap=on the server is OOM-proof, so
 * everything else would be killed first), which nobody should get by a
 * typo (size=1P for 1T).  A compressed swap device larger than RAM is
 * common: mem-limit= bounds it, or overcommit=yes says it is meant.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_SIZE_CHECK_H
#define TRUENO_SIZE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

/* overcommit=yes|no (nbdkit_parse_bool's spellings).  0, or -1 after
 * nbdkit_error. */
int size_check_config(const char *value);
/* 0 if what the store may hold (size, or mem-limit if lower; mem_limit 0:
 * none) fits in RAM plus swap (sysinfo), or overcommit=yes was given; else
 * -1 after nbdkit_error naming size. */
int size_check(uint64_t size, uint64_t mem_limit);

#endif
