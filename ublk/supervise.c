/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctrl.h"
#include "restart.h"
#include "log-stamp.h"
#include "pin-mappings.h"
#include "safefile.h"
#include "server-guard.h"
#include "server.h"
#include "state-pin.h"
#include "store-state.h"

struct sup {
  const struct ublk_opts *o;
  int argc;
  char **argv;
  int id;
  int state_fd;
  char spec[32];     /* fd:N, the children's state= */
  char exe[PATH_MAX]; /* this binary's path: an upgrade execs what is there now */
  pid_t child;
  struct timespec child_start;
  struct state_pin pin;
  /* While the device waits for a server, lines wait here: the log may be
   * on a tmpfs whose pages are in that very swap (a write would wait for
   * the server this process is about to start). */
  bool hold_log;
  char pend[8192];
  size_t npend;
  double lived[UBLK_RESTART_MAX_FAST];
  int nlived;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* One line to ublkN.log: UTC time to the millisecond, then the event. */
static void slog(struct sup *s, const char *fmt, ...) {
  char when[LOG_STAMP_LEN], msg[1024];
  log_stamp(when);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char line[1200];
  int n = snprintf(line, sizeof line, "%s trueno-ublk[%ld]: ublk%d: %s\n", when,
                   (long)getpid(), s->id, msg);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof line)
    n = sizeof line - 1;
  if (s->hold_log) {
    if (s->npend + (size_t)n <= sizeof s->pend) {
      memcpy(s->pend + s->npend, line, (size_t)n);
      s->npend += (size_t)n;
    }
    return;
  }
  fputs(line, stderr);
}

/* The lines held, and all to come, to the kernel's log. */
static void log_to_kmsg(struct sup *s) {
  int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  for (char *l = s->pend, *nl; l < s->pend + s->npend; l = nl + 1) {
    nl = memchr(l, '\n', (size_t)(s->pend + s->npend - l));
    if (!nl)
      break;
    if (write(fd, l, (size_t)(nl + 1 - l)) < 0)
      break;
  }
  s->npend = 0;
  s->hold_log = false;
  dup2(fd, STDERR_FILENO);
  close(fd);
}

/* From now until log_release, log lines stay in memory. */
static void log_hold(struct sup *s) { s->hold_log = true; }

static void log_release(struct sup *s) {
  s->hold_log = false;
  if (s->npend)
    fwrite(s->pend, 1, s->npend, stderr);
  s->npend = 0;
  fflush(stderr);
}

/* Appends stderr to ublkN.log (the servers write there too). */
static void log_open(const struct sup *s) {
  char log[PATH_MAX];
  if (ublk_run_file(log, sizeof log, s->o->run_dir, s->id, "log"))
    return;
  int dfd = safefile_dir(s->o->run_dir, 0);
  if (dfd < 0)
    return;
  int fd = openat(dfd, strrchr(log, '/') + 1,
                  O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  close(dfd);
  if (fd >= 0) {
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
}

/* Forks a server: a new device (recover_id -1) or the recovery of ours.
 * Its progress lines come on *rfd. */
static int start_child(struct sup *s, int recover_id, int *rfd) {
  int p[2];
  if (pipe2(p, O_CLOEXEC))
    return -errno;
  pid_t pid = fork();
  if (pid < 0) {
    int r = -errno;
    close(p[0]);
    close(p[1]);
    return r;
  }
  if (pid == 0) {
    close(p[0]);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct ublk_opts o = *s->o;
    o.state.spec = s->spec;
    o.state.name = NULL;
    o.supervised = true;
    o.recover_id = recover_id;
    if (recover_id >= 0)
      o.id = recover_id;
    _exit(ublk_server_run(&o, p[1]));
  }
  close(p[1]);
  s->child = pid;
  clock_gettime(CLOCK_MONOTONIC, &s->child_start);
  *rfd = p[0];
  return 0;
}

/* Reads the child's lines until OK (0), ERR or its end (-1); each is
 * passed on to fwd (-1: none), an ERR also logged. */
static int follow_child(struct sup *s, int rfd, int fwd) {
  char buf[4096];
  size_t len = 0;
  for (;;) {
    char *nl;
    while (!(nl = memchr(buf, '\n', len))) {
      if (len == sizeof buf - 1)
        len = 0;
      ssize_t n = read(rfd, buf + len, sizeof buf - 1 - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      len += (size_t)n;
    }
    size_t l = (size_t)(nl + 1 - buf);
    if (fwd >= 0 && write(fwd, buf, l) < 0) {
      /* add went away: the device is still ours */
    }
    *nl = 0;
    if (!strncmp(buf, "ID ", 3))
      s->id = atoi(buf + 3);
    else if (!strcmp(buf, "OK"))
      return 0;
    else if (!strncmp(buf, "ERR ", 4)) {
      if (fwd < 0)
        slog(s, "the new server failed: %s", buf + 4);
      return -1;
    }
    len -= l;
    memmove(buf, buf + l, len);
  }
}

static void write_pid(struct sup *s) {
  char path[PATH_MAX], pid[32];
  if (ublk_run_file(path, sizeof path, s->o->run_dir, s->id, "pid"))
    return;
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  int r = safefile_replace(path, pid, (size_t)n, 0600);
  if (r)
    slog(s, "cannot write %s: %s", path, strerror(-r));
}

/* Waits for the child; its status, or -1. */
static int reap(struct sup *s) {
  int st;
  pid_t r;
  do
    r = waitpid(s->child, &st, 0);
  while (r < 0 && errno == EINTR);
  s->child = -1;
  return r < 0 ? -1 : st;
}

static const char *how(int st, char *buf, size_t cap) {
  if (WIFSIGNALED(st))
    snprintf(buf, cap, "killed by signal %d", WTERMSIG(st));
  else
    snprintf(buf, cap, "exited with status %d", WEXITSTATUS(st));
  return buf;
}

/* Records how long the child that just ended lived; returns it (s). */
static double record(struct sup *s) {
  double lived = (now_ms() - (double)s->child_start.tv_sec * 1e3 -
                  (double)s->child_start.tv_nsec / 1e6) / 1e3;
  if (s->nlived == UBLK_RESTART_MAX_FAST) {
    memmove(s->lived, s->lived + 1, sizeof s->lived - sizeof s->lived[0]);
    s->nlived--;
  }
  s->lived[s->nlived++] = lived;
  return lived;
}

/* Fast failures in a row, the latest last. */
static int fast_run(const struct sup *s) {
  return ublk_restart_fast(s->lived, s->nlived);
}

/* A successor for the dead server: forked from this process (its code
 * is locked in memory; nothing is read from a disk that may be our swap).
 * Retried while it fails fast, up to the limit.  0: served again. */
static int recover(struct sup *s, double t_dead) {
  for (;;) {
    int rfd, r = start_child(s, s->id, &rfd);
    if (r) {
      slog(s, "cannot fork a server: %s", strerror(-r));
      return -1;
    }
    slog(s, "recovery started: server %ld, %.1f ms after the death was seen",
         (long)s->child, now_ms() - t_dead);
    r = follow_child(s, rfd, -1);
    close(rfd);
    if (r == 0) {
      slog(s, "served again: %.1f ms after the death was seen (server %ld)",
           now_ms() - t_dead, (long)s->child);
      return 0;
    }
    char h[64];
    int st = reap(s);
    double lived = record(s);
    slog(s, "the recovering server %s after %.1f s", how(st, h, sizeof h),
         lived);
    if (ublk_restart_give_up(s->lived, s->nlived))
      return -1;
    usleep(ublk_restart_delay_ms(fast_run(s)) * 1000u);
  }
}

/* Maps the state to keep its pages in RAM (state-pin.h). */
static void pin_state(struct sup *s) {
  int r = state_pin_open(&s->pin, s->state_fd);
  if (r)
    slog(s, "warning: cannot map the state to keep it in RAM: %s: a page of it swapped out to this device while no server runs would stop the recovery",
         strerror(-r));
}

/* SIGHUP: exec the trueno-ublk on disk now as this device's supervisor
 * (same pid, same state descriptor, the child still ours); it asks the
 * old server to leave once it runs.  Returns only if the exec failed. */
static void upgrade(struct sup *s) {
  char id[16], old[16], rd[PATH_MAX + 16], st[48];
  snprintf(id, sizeof id, "%d", s->id);
  snprintf(old, sizeof old, "%ld", (long)s->child);
  snprintf(rd, sizeof rd, "--run-dir=%s", s->o->run_dir);
  char **av = calloc((size_t)s->argc + 8, sizeof *av);
  if (!av)
    return;
  int n = 0;
  av[n++] = s->exe;
  av[n++] = "supervise";
  av[n++] = id;
  av[n++] = old;
  for (int i = 0; i < s->argc; i++) {
    const char *a = s->argv[i];
    if (!strncmp(a, "state=", 6) || !strncmp(a, "state-name=", 11) ||
        !strcmp(a, "--foreground") || !strcmp(a, "-f") ||
        !strncmp(a, "--run-dir=", 10) || !strncmp(a, "--id=", 5))
      continue;
    if ((!strcmp(a, "--run-dir") || !strcmp(a, "--id")) && i + 1 < s->argc) {
      i++;
      continue;
    }
    av[n++] = s->argv[i];
  }
  av[n++] = rd;
  snprintf(st, sizeof st, "state=%s", s->spec);
  av[n++] = st;
  av[n] = NULL;
  fcntl(s->state_fd, F_SETFD, 0);
  slog(s, "upgrade: exec %s", s->exe);
  fflush(stderr);
  execv(s->exe, av);
  int e = errno;
  fcntl(s->state_fd, F_SETFD, FD_CLOEXEC);
  slog(s, "upgrade: cannot exec %s: %s: this version goes on", s->exe,
       strerror(e));
  free(av);
}

static void self_path(struct sup *s) {
  ssize_t n = readlink("/proc/self/exe", s->exe, sizeof s->exe - 1);
  if (n < 0)
    n = 0;
  s->exe[n] = 0;
  /* Replaced on disk since we started: its path is what an upgrade runs. */
  const char *del = " (deleted)";
  size_t dl = strlen(del);
  if ((size_t)n > dl && !strcmp(s->exe + n - dl, del))
    s->exe[n - dl] = 0;
}

int ublk_supervise(const struct ublk_opts *o, int argc, char **argv,
                   int report_fd, int recover_id, pid_t old_server) {
  struct sup s = {.o = o, .argc = argc, .argv = argv, .id = recover_id,
                  .child = -1};
  self_path(&s);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  if (recover_id >= 0)
    log_open(&s);
  /* We run while the swap is dead: nothing of ours may be in it, and the
   * OOM killer must not take the one process that can bring it back. */
  int r = guard_oom_protect();
  /* Its children's allocations never wait for swap I/O (to us) from the
   * fork on; inherited. */
  if (!r)
    r = guard_io_flusher();
  /* On fault for what comes later: the state's mapping (state-pin.h) is
   * sparse. */
  if (!r)
    r = guard_lock_memory();
  guard_touch_stack();
  /* All of our code and libraries resident and locked now, while the
   * swap still works: the server we fork at a death runs it (after an
   * upgrade, a binary nobody has run yet). */
  uint64_t pinned;
  unsigned skipped;
  if (!r)
    pin_file_mappings(&pinned, &skipped);
  if (r) {
    char msg[256];
    int n = snprintf(msg, sizeof msg, "ERR supervisor: oom_score_adj, PR_SET_IO_FLUSHER or mlockall: %s (needs root)\n",
                     strerror(-r));
    if (report_fd >= 0 && write(report_fd, msg, (size_t)n) < 0) {
      /* nobody to tell */
    }
    if (recover_id >= 0)
      slog(&s, "%s", msg + 4);
    return 1;
  }
  char err[512] = "";
  s.state_fd = store_state_take(&o->state, err, sizeof err);
  if (s.state_fd < 0) {
    if (report_fd >= 0) {
      dprintf(report_fd, "ERR %s\n", err);
    } else {
      slog(&s, "%s", err);
    }
    return 1;
  }
  snprintf(s.spec, sizeof s.spec, "fd:%d", s.state_fd);

  if (recover_id < 0) {
    int rfd;
    if ((r = start_child(&s, -1, &rfd))) {
      dprintf(report_fd, "ERR fork: %s\n", strerror(-r));
      return 1;
    }
    r = follow_child(&s, rfd, report_fd);
    close(rfd);
    if (r) {
      int st = reap(&s); /* it removed what it made */
      return WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : 1;
    }
    log_open(&s);
    write_pid(&s);
    close(report_fd);
    pin_state(&s);
    slog(&s, "supervising server %ld (state=%s, %zu pages kept in RAM)",
         (long)s.child, s.spec, state_pin_scan(&s.pin));
  } else {
    /* Upgraded: the old server (still our child) makes way. */
    double t0 = now_ms();
    s.child = old_server;
    pin_state(&s);
    slog(&s, "upgraded supervisor running (%zu pages kept in RAM); asking server %ld to leave",
         state_pin_scan(&s.pin), (long)old_server);
    log_hold(&s);
    if (old_server > 0 && kill(old_server, SIGUSR2) == 0) {
      char h[64];
      int st = reap(&s);
      slog(&s, "old server %ld %s", (long)old_server, how(st, h, sizeof h));
    }
    s.child = -1;
    if (recover(&s, t0))
      goto give_up;
    log_release(&s);
    write_pid(&s);
  }
  struct ublksrv_ctrl_dev_info info = {0};
  struct ublk_ctrl c;
  if (ublk_ctrl_open(&c, NULL) == 0) {
    ublk_ctrl_info(&c, (uint32_t)s.id, &info);
    ublk_ctrl_close(&c);
  }
  bool recovery = info.flags & UBLK_F_USER_RECOVERY;
  if (!recovery)
    slog(&s, "the device has no UBLK_F_USER_RECOVERY: a server that dies is not replaced");

  bool stopping = false;
  for (;;) {
    /* Each second, while the server lives: its newest state pages. */
    struct timespec tick = {1, 0};
    int sig = sigtimedwait(&set, NULL, &tick);
    if (sig < 0) {
      if (errno == EAGAIN && s.child > 0 && !stopping)
        state_pin_scan(&s.pin);
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      slog(&s, "stopping: server %ld stops and deletes the device",
           (long)s.child);
      stopping = true;
      if (s.child > 0)
        kill(s.child, SIGTERM);
      else
        return 0;
      continue;
    }
    if (sig == SIGHUP) {
      if (stopping || !recovery || s.child <= 0) {
        slog(&s, "SIGHUP: no upgrade (%s)", stopping ? "stopping" : !recovery ? "no recovery" : "no server");
        continue;
      }
      upgrade(&s);
      continue;
    }
    /* SIGCHLD */
    int st;
    pid_t p = waitpid(s.child, &st, WNOHANG);
    if (p <= 0)
      continue;
    double t_dead = now_ms();
    s.child = -1;
    log_hold(&s);
    char h[64];
    if (stopping) {
      log_release(&s);
      slog(&s, "server %ld %s: stopped", (long)p, how(st, h, sizeof h));
      return 0;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      /* It stops and deletes the device only when told to, or when the
       * kernel stopped the device (trueno-ublk del of the device). */
      log_release(&s);
      slog(&s, "server %ld exited: the device was stopped", (long)p);
      return 0;
    }
    double lived = record(&s);
    slog(&s, "server %ld %s after %.1f s: recovering", (long)p,
         how(st, h, sizeof h), lived);
    if (!recovery) {
      log_release(&s);
      return 1;
    }
    if (ublk_restart_give_up(s.lived, s.nlived))
      goto give_up;
    if (recover(&s, t_dead))
      goto give_up;
    log_release(&s);
  }
give_up:
  /* The device waits with its I/O held: the log may be in that swap, the
   * kernel's log is not. */
  log_to_kmsg(&s);
  slog(&s, "GIVING UP after %d failures in a row within %d s of their start: /dev/ublkb%d is quiesced, its I/O held; "
       "run: trueno-ublk recover %d state=... (the same parameters), or trueno-ublk del %d",
       fast_run(&s), UBLK_RESTART_FAST_S, s.id, s.id, s.id);
  return 1;
}
