/* A stand-in server for tests/test-hold.sh: takes a state's descriptor
 * through common/statefd.h as trueno's front ends will, and reads or
 * writes its mapping.
 *   statefd-client get SPEC NAME write OFF TEXT   writes, says "written",
 *                                                 then waits to be killed
 *   statefd-client get SPEC NAME read OFF LEN     prints the bytes
 *   statefd-client put SOCK NAME SIZE TEXT        a new memfd to the holder
 *   statefd-client fdstore NAME SIZE TEXT         a new memfd to systemd
 * Before its action, get prints "ino=N size=S" (the same inode is the same
 * state).  Errors: the library's message on stderr, exit 1.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "statefd.h"

static int die(const char *what, const char *err) {
  fprintf(stderr, "statefd-client: %s: %s\n", what, err);
  return 1;
}

static int new_memfd(const char *name, off_t size, const char *text) {
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, size) ||
      pwrite(fd, text, strlen(text), 0) != (ssize_t)strlen(text)) {
    perror("statefd-client: memfd");
    exit(1);
  }
  return fd;
}

int main(int argc, char **argv) {
  char err[512];
  if (argc == 7 && !strcmp(argv[1], "get")) {
    int fd = statefd_get(argv[2], argv[3], err, sizeof err);
    if (fd < 0)
      return die("get", err);
    struct stat sb;
    fstat(fd, &sb);
    printf("ino=%lu size=%lld\n", (unsigned long)sb.st_ino,
           (long long)sb.st_size);
    off_t off = atoll(argv[5]);
    size_t len = !strcmp(argv[4], "write") ? strlen(argv[6])
                                           : (size_t)atol(argv[6]);
    if (off + (off_t)len > sb.st_size)
      return die("get", "the state is smaller than the request");
    char *m = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
      return die("mmap", "failed");
    if (!strcmp(argv[4], "write")) {
      /* A store to the mapping, as the engine's: nothing flushed, nothing
       * unmapped before the kill. */
      memcpy(m + off, argv[6], len);
      printf("written\n");
      fflush(stdout);
      for (;;)
        pause();
    }
    fwrite(m + off, 1, len, stdout);
    putchar('\n');
    return 0;
  }
  if (argc == 6 && !strcmp(argv[1], "put")) {
    int fd = new_memfd("test-put", atoll(argv[4]), argv[5]);
    if (statefd_put(argv[2], argv[3], fd, err, sizeof err))
      return die("put", err);
    printf("put\n");
    return 0;
  }
  if (argc == 5 && !strcmp(argv[1], "fdstore")) {
    int fd = new_memfd("test-fdstore", atoll(argv[3]), argv[4]);
    if (statefd_fdstore(fd, argv[2], err, sizeof err))
      return die("fdstore", err);
    printf("stored\n");
    return 0;
  }
  fprintf(stderr, "usage: see tests/statefd-client.c\n");
  return 2;
}
