/* trueno-ocl: batch LZ4 page compression on an OpenCL device.
 *
 * The one public header of the opencl/ module.  N pages (any N >= 1; big
 * batches are cut into chunks the device can hold) become N independent
 * blocks of the standard LZ4 block format, which liblz4 and the engine's
 * lz4page decoder read; N blocks decode back into N pages.  The kernels
 * (opencl/lz4page.cl and lz4coop.cl, built into the library as a string;
 * a page a work-item or a page a work-group) are compiled at
 * run time with clBuildProgram once per device: the program binary is kept
 * in a cache directory (options.cache_dir) and loaded from there on later
 * opens; a binary the driver refuses is rebuilt from source and replaced.
 *
 * Every function that can fail returns 0 or a negative errno: -ENODEV no
 * platform or no matching device, -ENOEXEC the kernels did not build,
 * -ENOMEM an allocation failed (host or device), -EIO the device failed
 * (lost, or a command did not complete), -EBADMSG a block did not decode.
 * A context is safe to use from many threads (calls are serialised).
 *
 * engine glue (opencl/offload.h) wires this to the engine's batch hook.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_OCL_H
#define TRUENO_OCL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct trueno_ocl;

struct trueno_ocl_options {
  /* Which device: NULL or "" = the first GPU of any platform, else the
   * first device; "P:D" = device D of platform P (indices as
   * trueno_ocl_list prints them); anything else = the first device whose
   * platform or device name contains it (case-insensitive). */
  const char *device;
  /* Test hook: text appended to the kernel source (a bad kernel makes the
   * build fail). */
  const char *extra_source;
  /* The kernel binary cache: NULL = $XDG_CACHE_HOME/trueno-zram, else
   * $HOME/.cache/trueno-zram; "" or "off" = none.  Created when missing;
   * a cache that cannot be read or written only costs a source build. */
  const char *cache_dir;
};

/* Opens the device and builds the kernels.  *why (when not NULL) gets a
 * static or internal string saying what failed, for one log line. */
int trueno_ocl_open(const struct trueno_ocl_options *opt,
                    struct trueno_ocl **out, const char **why);
void trueno_ocl_close(struct trueno_ocl *o);
/* "platform / device", for logs and benchmark output. */
const char *trueno_ocl_device_name(const struct trueno_ocl *o);
/* Which compress kernel runs: "page (one work-item a page)" or "coop (N
 * work-items a page)" (TRUENO_OCL_KERNEL=page|coop, see ocl.c). */
const char *trueno_ocl_kernel_name(const struct trueno_ocl *o);
/* 1 when the kernels came from the binary cache, 0 when they were built
 * from source.  *note (when not NULL): one line for logs, e.g. "kernels
 * from the cache" or "kernels built, cached in DIR" or why not. */
int trueno_ocl_kernel_cache(const struct trueno_ocl *o, const char **note);
/* Prints every platform and device ("P:D platform / device, type") to f;
 * returns the number of devices or a negative errno. */
int trueno_ocl_list(FILE *f);

/* Compresses n pages (n * 4096 bytes at pages) into LZ4 blocks of at most
 * cap bytes each (cap 16..4096): block i is at dst + off[i], len[i] bytes,
 * back to back; len[i] == 0 flags a page that does not compress below cap
 * (kept raw: nothing of it is in dst).  dst has room for n * cap bytes. */
int trueno_ocl_compress(struct trueno_ocl *o, const void *pages, size_t n,
                        unsigned cap, void *dst, uint32_t *off,
                        uint32_t *len);
/* Decodes n blocks (block i at src + off[i], len[i] bytes) into n pages at
 * pages + i * 4096.  len[i] == 0 marks a raw page: its 4096 bytes in pages
 * are left for the caller to fill (their contents are unspecified after the
 * call).  -EBADMSG when any block is corrupt. */
int trueno_ocl_decompress(struct trueno_ocl *o, const void *src,
                          const uint32_t *off, const uint32_t *len, size_t n,
                          void *pages);

/* Host memory the device transfers to and from fastest (pinned: an
 * ALLOC_HOST_PTR buffer, mapped); NULL when none can be made (use malloc).
 * Free it with trueno_ocl_host_free before closing the context. */
void *trueno_ocl_host_alloc(struct trueno_ocl *o, size_t bytes);
void trueno_ocl_host_free(struct trueno_ocl *o, void *p);

#ifdef __cplusplus
}
#endif
#endif
