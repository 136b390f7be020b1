/* watchdog PID FILE [STALE_S]: in the VM rig, says where a server that is
 * its own swap device got stuck.  The server rewrites FILE (its stats) every
 * second; when FILE is older than STALE_S seconds (default 6), this prints
 * each of the server's threads (state, wait channel, syscall, kernel stack)
 * and has the kernel print every task's stack (sysrq t), twice at most.
 *
 * It must work when the machine is out of memory and the swap device is
 * stuck, when any allocation may end in reclaim that waits on that device.
 * So it is static, locks its memory, allocates nothing once it watches
 * (no stdio, no malloc, fixed buffers), opens every file it will read
 * before it starts watching, and is an I/O flusher (its own reclaim never
 * writes to swap).  A shell could do none of that.
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

#define MAX_TASKS 64
#define NFILES 4
static const char *const files[NFILES] = {"stat", "wchan", "syscall", "stack"};

static int out = 2;
static char buf[1 << 15];
static struct {
  char tid[16];
  int fd[NFILES];
} tasks[MAX_TASKS];
static int ntasks;

static void say(const char *s) {
  if (write(out, s, strlen(s)) < 0)
    return;
}

/* Reads fd from its start into buf and prints it, each line indented. */
static void show(int fd, const char *indent) {
  if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0)
    return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0)
    return;
  buf[n] = 0;
  for (char *line = buf, *nl; *line; line = nl + 1) {
    nl = strchr(line, '\n');
    if (!nl)
      nl = line + strlen(line) - 1;
    else
      *nl = 0;
    say(indent);
    say(line);
    say("\n");
  }
}

/* Opens (and reads once, so the kernel's buffers exist) every file to be
 * read later: the server's threads are all there once it serves. */
static void open_tasks(int pid) {
  char path[128];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) && ntasks < MAX_TASKS) {
    if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof tasks[0].tid)
      continue;
    memcpy(tasks[ntasks].tid, e->d_name, strlen(e->d_name) + 1);
    for (int i = 0; i < NFILES; i++) {
      snprintf(path, sizeof path, "/proc/%d/task/%.15s/%s", pid,
               tasks[ntasks].tid, files[i]);
      int fd = open(path, O_RDONLY);
      if (fd >= 0 && read(fd, buf, sizeof buf) < 0) {
        close(fd);
        fd = -1;
      }
      tasks[ntasks].fd[i] = fd;
    }
    ntasks++;
  }
  closedir(d);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: watchdog PID FILE [STALE_S]\n");
    return 2;
  }
  int pid = atoi(argv[1]);
  int stale = argc > 3 ? atoi(argv[3]) : 6;
  /* Straight to the console: the case's output goes through a pipe to a
   * process that may be as stuck as the server. */
  int con = open("/dev/console", O_WRONLY | O_NOCTTY);
  if (con >= 0)
    out = con;
  if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0)
    perror("watchdog: PR_SET_IO_FLUSHER");
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
    perror("watchdog: mlockall");
  sleep(2); /* the server's threads have started */
  open_tasks(pid);
  int meminfo = open("/proc/meminfo", O_RDONLY);
  int sysrq = open("/proc/sysrq-trigger", O_WRONLY);
  char line[256];
  snprintf(line, sizeof line, "watchdog: watching %d threads of %d\n", ntasks,
           pid);
  say(line);
  int dumps = 0;
  while (dumps < 2) {
    sleep(1);
    if (kill(pid, 0) != 0)
      return 0;
    struct stat st;
    if (stat(argv[2], &st) != 0)
      continue;
    long age = (long)(time(NULL) - st.st_mtime);
    if (age <= stale)
      continue;
    snprintf(line, sizeof line, "watchdog: %s is %ld s old: server stuck?\n",
             argv[2], age);
    say(line);
    for (int t = 0; t < ntasks; t++) {
      snprintf(line, sizeof line, "watchdog: thread %s\n", tasks[t].tid);
      say(line);
      for (int i = 0; i < NFILES; i++)
        show(tasks[t].fd[i], "    ");
      say("\n");
    }
    show(meminfo, "  meminfo: ");
    if (sysrq >= 0 && write(sysrq, "t", 1) != 1)
      say("watchdog: sysrq t failed\n");
    dumps++;
    sleep(20);
  }
  return 0;
}
