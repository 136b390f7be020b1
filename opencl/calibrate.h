/* offload=auto's measurement: the device against the CPU codec (one
 * thread, as the engine compresses a request) on a synthetic batch of
 * memory-like pages at 8192 pages (nbdkit's largest request, 32 MiB),
 * 2048, 512, 128 and 32, end to end (host memory in and out, transfers
 * included).  Writes go to the device from the smallest size from which it
 * compresses faster at every larger size; reads too when, at each of those
 * sizes, it also decodes faster (the CPU decoder is several times faster
 * than its encoder, so reads may well stay on the CPU).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_CALIBRATE_H
#define TRUENO_CALIBRATE_H

#include <stdint.h>

#include "trueno_ocl.h"

struct calibration {
  int err;            /* 0 or the device's error: the CPU does everything */
  uint32_t min_pages; /* 0: the device is never faster */
  int reads;          /* reads of >= min_pages decode on the device */
  /* "SIZE: dev/cpu (decode dev/cpu), ..." in MB/s, for the log line. */
  char table[400];
};

void offload_calibrate(struct trueno_ocl *dev, struct calibration *out);

#endif
