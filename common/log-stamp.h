/* SPDX-License-Identifier: MIT */
#ifndef TRUENO_LOG_STAMP_H
#define TRUENO_LOG_STAMP_H

#include <stddef.h>

/* The wall-clock time, UTC, to the millisecond ("2026-12-04T12:21:11.020Z"),
 * as the supervisors' logs start each line. */
#define LOG_STAMP_LEN 48
void log_stamp(char buf[LOG_STAMP_LEN]);

#endif
