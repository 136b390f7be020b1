/* watchdog PID FILE [STALE_S]: in the VM rig, says where a server that is
 * its own swap device got stuck.  The server rewrites FILE (its stats) every
 * second; when FILE is older than STALE_S seconds (default 6), this prints
 * each of the server's threads (state, wait channel, syscall, kernel stack)
 * and asks the kernel for its blocked tasks (sysrq w), twice at most.
 *
 * It must keep running while the machine is out of memory and the swap
 * device is stuck, so it is static, locks all its memory, and forks
 * nothing (a shell would have to exec binaries whose pages may be in swap).
 *
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];

/* Copies a /proc file to stdout, each line indented. */
static void show(const char *path, const char *indent) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return;
  buf[n] = 0;
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
    printf("%s%s\n", indent, line);
}

static void dump(int pid) {
  char path[512];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) {
    printf("watchdog: server %d is gone\n", pid);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    printf("watchdog: thread %s\n", e->d_name);
    const char *what[] = {"stat", "wchan", "syscall", "stack"};
    for (size_t i = 0; i < sizeof what / sizeof *what; i++) {
      snprintf(path, sizeof path, "/proc/%d/task/%s/%s", pid, e->d_name,
               what[i]);
      show(path, "    ");
    }
  }
  closedir(d);
  show("/proc/meminfo", "  meminfo: ");
  int fd = open("/proc/sysrq-trigger", O_WRONLY);
  if (fd >= 0) {
    if (write(fd, "w", 1) != 1)
      perror("watchdog: sysrq");
    close(fd);
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: watchdog PID FILE [STALE_S]\n");
    return 2;
  }
  int pid = atoi(argv[1]);
  int stale = argc > 3 ? atoi(argv[3]) : 6;
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
    perror("watchdog: mlockall");
  /* Straight to the console: the case's output goes through a pipe to a
   * process that may be as stuck as the server. */
  if (!freopen("/dev/console", "w", stdout))
    perror("watchdog: /dev/console");
  setvbuf(stdout, NULL, _IOLBF, 0);
  int dumps = 0;
  while (dumps < 2) {
    sleep(1);
    if (kill(pid, 0) != 0)
      return 0;
    struct stat st;
    if (stat(argv[2], &st) != 0)
      continue;
    long age = (long)(time(NULL) - st.st_mtime);
    if (age > stale) {
      printf("watchdog: %s is %ld s old: server %d stuck?\n", argv[2], age,
             pid);
      dump(pid);
      dumps++;
      sleep(10);
    }
  }
  return 0;
}
