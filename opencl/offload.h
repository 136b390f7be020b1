/* Engine glue for the OpenCL module: wires trueno-ocl to a store's batch
 * hook (trueno_store_set_batch_codec), for any front end (the nbdkit
 * plugin, the ublk adaptor).
 *
 * offload=off: nothing.  offload=opencl: every write request covering at
 * least min_pages whole pages (default 2) is compressed on the device, and
 * the LZ4 pages of every such read request decoded there.  offload=auto:
 * at start, times the device against the CPU codec (calibrate.h) and
 * offloads only requests of at least the smallest size from which the
 * device is faster at every larger size, reads only when it decodes
 * faster too; if it never is, the CPU does everything.
 *
 * Nothing here fails to the caller: no platform, a failed kernel build or
 * an allocation failure each produce one log line and leave the store on
 * the CPU path.  A device that fails later (a lost device, a command that
 * did not complete) puts the store on the CPU path until a retry after a
 * back-off (1 s, doubling to 5 min) finds it working again (devguard.h);
 * one log line for each change of state; no data is lost, the client sees
 * no error.
 *
 * Test hooks (environment): TRUENO_OCL_BAD_KERNEL=1 appends a syntax
 * error to the kernel source (the build fails); TRUENO_OCL_FAIL_AFTER=N
 * makes device calls (batches and the retries' probes) after the first N
 * fail with -EIO, TRUENO_OCL_FAIL_COUNT=M only M of them (default: all);
 * TRUENO_OCL_RETRY_MS=MS is the first back-off.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_OFFLOAD_H
#define TRUENO_OFFLOAD_H

#include <stdint.h>

#include "trueno.h"

enum trueno_offload_mode {
  TRUENO_OFFLOAD_OFF = 0,
  TRUENO_OFFLOAD_AUTO,
  TRUENO_OFFLOAD_OPENCL,
};

int trueno_offload_parse(const char *s, enum trueno_offload_mode *mode);
const char *trueno_offload_mode_name(enum trueno_offload_mode mode);
/* 1 when this build has OpenCL support. */
int trueno_offload_available(void);

struct trueno_offload_config {
  enum trueno_offload_mode mode;
  const char *device;  /* opencl-device=..., see trueno_ocl_options */
  const char *cache_dir; /* opencl-cache=...: NULL default, "off" none */
  uint32_t min_pages;  /* offload=opencl: 0 = 2; auto: ignored */
  void (*log)(const char *msg);
};

struct trueno_offload;

/* For a front end's parameter check: creates the kernel cache directory
 * dir (and its parents) when missing.  0, or -ENOTDIR when it is not a
 * directory, -EACCES when it cannot be written, another negative errno. */
int trueno_offload_cache_prepare(const char *dir);

/* Opens the device, calibrates (auto) and installs the hook on st (an
 * algorithm=lz4 store; others stay on the CPU).  Returns NULL only when
 * out of memory. */
struct trueno_offload *trueno_offload_start(struct trueno_store *st,
                                            const struct trueno_offload_config *cfg);
/* Removes the hook and closes the device; st must still exist. */
void trueno_offload_stop(struct trueno_offload *o);
/* What was chosen, as JSON fields without braces: "offload": "auto",
 * "offload_active": "opencl"|"cpu", "offload_device": "...",
 * "offload_min_pages": N, "offload_reads": "opencl"|"cpu",
 * "offload_reason": "...". */
const char *trueno_offload_json(const struct trueno_offload *o);

#endif
