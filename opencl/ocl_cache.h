/* The kernel binary cache of trueno-ocl: program binaries on disk, one file
 * per build key, so a second start skips the compiler (seconds on some
 * drivers; a lost device reopened by the offload layer wants it fast).
 *
 * The key is text: everything the binary depends on (platform and device
 * names and versions, driver version, build options, a hash of the kernel
 * source).  The file is named by a hash of the key and holds, in order:
 * the line "trueno-ocl-cache 1", the key, an empty line, the binary's
 * length and its FNV-1a 64 hash (8 bytes each, little-endian), the binary.
 * A file whose key, length or hash does not match is ignored (and later
 * replaced): a truncated, corrupt or foreign file is never handed to the
 * driver as ours.  Files are written to a temporary name and renamed.
 * The checksum is no defence against another user: the driver runs what
 * it loads, so a directory or file not owned by the effective uid, or
 * writable by group or others, is refused (-EPERM; safefile.h).
 *
 * No OpenCL here: file I/O and hashing only.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_OCL_CACHE_H
#define TRUENO_OCL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define OCL_CACHE_MAGIC "trueno-ocl-cache 1\n"

uint64_t ocl_cache_fnv(uint64_t h, const void *p, size_t n);
#define OCL_CACHE_FNV_INIT 0xcbf29ce484222325ull

/* The directory for opt: NULL = $XDG_CACHE_HOME/trueno-zram, else
 * $HOME/.cache/trueno-zram (none: off); "" or "off" = off, dir[0] = 0.
 * -ENAMETOOLONG. */
int ocl_cache_resolve(const char *opt, char *dir, size_t cap);
/* Creates dir (0700) and its parents when missing; -ENOTDIR when it is
 * not a directory, -EPERM when it is not ours, -EACCES when it cannot be
 * written, other errnos. */
int ocl_cache_mkdir(const char *dir);
/* The binary stored for key in dir, malloc'd: -ENOENT when there is none,
 * -EPERM when the directory or file is not ours, -EBADMSG when the file is
 * not a whole binary for this key. */
int ocl_cache_load(const char *dir, const char *key, unsigned char **bin,
                   size_t *len);
/* Stores bin for key in dir (created if missing), replacing any file. */
int ocl_cache_save(const char *dir, const char *key, const void *bin,
                   size_t len);

#endif
