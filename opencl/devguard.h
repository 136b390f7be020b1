/* The device behind the offload: its calls, losing it, getting it back.
 *
 * Every batch goes through devguard_compress or devguard_decompress.
 * While the device is well they call it; the first call that fails puts
 * it in the lost state (one log line), and every call after that fails at
 * once with -ENODEV, so the engine does the work on the CPU (the client
 * sees no error, nothing is lost).  A thread of ours then retries the
 * device after a back-off (base_ms, doubling up to max_ms): it closes the
 * old context, opens the device again (the kernel cache makes that quick)
 * and compresses a probe batch whose blocks must decode to the pages.  If
 * that works the device is back and takes batches again, else it stays
 * lost until the next retry.  One log line for each change of state:
 * lost, retrying, still lost (with the next delay), back.
 *
 * Fault injection for tests: device calls (batches and probes, counted
 * from 0) number fail_after to fail_after + fail_count - 1 fail with -EIO
 * without reaching the device (fail_after < 0: none; fail_count < 0: all
 * from fail_after on).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_DEVGUARD_H
#define TRUENO_DEVGUARD_H

#include <stddef.h>
#include <stdint.h>

#include "trueno_ocl.h"

struct devguard_config {
  struct trueno_ocl_options opt; /* to open the device again; copied */
  const char *name;              /* for log lines; copied */
  void (*log)(const char *msg);  /* NULL: silent */
  unsigned base_ms, max_ms;      /* back-off; 0: 1 s and 5 min */
  long fail_after, fail_count;   /* fault injection, see above */
};

struct devguard;

/* Takes dev (open, working) and starts the retry thread.  -ENOMEM, or
 * pthread_create's error. */
int devguard_start(struct trueno_ocl *dev, const struct devguard_config *cfg,
                   struct devguard **out);
/* Stops the thread and closes the device. */
void devguard_stop(struct devguard *g);

/* trueno_ocl_compress and trueno_ocl_decompress through the guard. */
int devguard_compress(struct devguard *g, const void *pages, size_t n,
                      unsigned cap, void *dst, uint32_t *off, uint32_t *len);
int devguard_decompress(struct devguard *g, const void *src,
                        const uint32_t *off, const uint32_t *len, size_t n,
                        void *pages);

#endif
