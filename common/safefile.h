/* Files written by a server that may run as root, in directories others may
 * reach (/tmp, a cache under $HOME, /run): never through a symlink, never
 * under a name another user can guess and take first, private (0600/0700).
 * Every function returns 0 (or a descriptor) or a negative errno.
 * SPDX-License-Identifier: MIT */
#ifndef TRUENO_SAFEFILE_H
#define TRUENO_SAFEFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Opens dir (O_DIRECTORY) and checks that it is ours: owned by the
 * effective uid and not writable by group or others, unless it has the
 * sticky bit (as /tmp: others cannot remove or rename our files).  With
 * create, missing components are made (the last 0700, parents 0755).
 * -EPERM for a directory that is not ours. */
int safefile_dir(const char *dir, int create);
/* The same check for an open file: a regular file owned by the effective
 * uid, not writable by group or others (-EPERM otherwise). */
int safefile_owned(int fd);
/* Replaces dirfd/name with buf atomically: a new file under a random name
 * (O_EXCL|O_NOFOLLOW) in the same directory, written, then renamed over
 * name (a symlink at name is replaced, not followed). */
int safefile_replace_at(int dirfd, const char *name, const void *buf,
                        size_t n, mode_t mode);
/* The same for a path: its directory need not be ours (a stats file in
 * /tmp); the temporary name is still unguessable and the rename atomic. */
int safefile_replace(const char *path, const void *buf, size_t n,
                     mode_t mode);
/* Checks that a file can be made in path's directory (a random name,
 * created and removed). */
int safefile_check_dir_of(const char *path);
/* A new, empty file dirfd/name for writing (a log): whatever was at name
 * (a file, a symlink) is removed first, then O_CREAT|O_EXCL|O_NOFOLLOW.
 * Only in a directory safefile_dir accepted.  Returns the descriptor. */
int safefile_create_at(int dirfd, const char *name, mode_t mode);

#endif
