/* trueno-nbd supervise: one small process per device that keeps its
 * store's state (a memfd), runs the server as its child on that state
 * (state=fd:N), attaches the device, and when the server dies starts it
 * again on the same state and hands the device the new connections.
 * SIGHUP restarts the server on purpose (an upgrade: the binary and
 * plugin as found on disk now); SIGTERM stops it and exits.  The state
 * lives as long as this process, so it must never wait for swap: its
 * memory is locked and the OOM killer spares it.  trueno-nbd(8) is the
 * manual, docs/persistence.md the design.
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <config.h>

#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "genl.h"
#include "handshake.h"
#include "log-stamp.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57 /* Linux 5.6 */
#endif

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define MAX_CONNS 16
#define MAX_PINS 64
#define HANDSHAKE_MS 10000
#define READY_MS 30000 /* a server that does not listen by then failed */
#define STOP_MS 10000  /* SIGTERM, then SIGKILL */

struct sup {
  /* options */
  const char *sock, *pidfile, *log, *device, *export, *backend;
  char **server; /* argv, NULL-terminated, without state= */
  int attach, foreground, conns, state_fd;
  uint64_t timeout, dead_conn, max_fails, fast_ms;
  /* run time */
  char backend_buf[64], state_arg[32];
  pid_t pid;          /* the server, 0 when none runs */
  int64_t started_ms; /* when it was started */
  uint64_t fails;     /* fast failures in a row */
  int index;          /* the device's, -1 before attaching */
  struct nbd_genl g, watch;
  int report; /* pipe to the parent until ready, else -1 */
  struct pin {
    void *addr;
    size_t len;
  } pins[MAX_PINS]; /* the server's files, kept resident */
  int npins;
  void *ballast;        /* memory held for the next server's start */
  size_t ballast_len;   /* --restart-reserve */
  int64_t retake_at;    /* when to take the ballast back, 0: never */
  void *state_map;      /* the state, mapped to lock what it holds */
  size_t state_len;
  int dead_links;       /* reported dead, not yet replaced */
  int64_t dead_since;   /* when the oldest of them was reported */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line in the log (stderr), with the wall-clock time to the ms. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
  char when[LOG_STAMP_LEN], msg[1024];
  log_stamp(when);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s trueno-nbd supervise[%d]: %s\n", when, (int)getpid(), msg);
  fflush(stderr);
}

/* What an administrator must see even when the log is not looked at
 * (giving up, the kernel refusing a connection): also to the kernel's
 * log, at error level, where the console and journald show it. */
__attribute__((format(printf, 1, 2))) static void shout(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  say("%s", msg);
  int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    dprintf(fd, "<3>trueno-nbd supervise[%d]: %s\n", (int)getpid(), msg);
    close(fd);
  }
}

/* A failure before the device is up: to the log and to the user. */
__attribute__((format(printf, 2, 3))) static int fail_start(struct sup *s, const char *fmt,
                                                             ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  say("error: %s", msg);
  if (s->report >= 0) {
    dprintf(s->report, "E%s\n", msg);
    close(s->report);
    s->report = -1;
  }
  return 1;
}

static int parse_num(const char *opt, const char *v, uint64_t min, uint64_t max,
                     uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-' || n < min || n > max) {
    fprintf(stderr, "trueno-nbd: error: %s: invalid value '%s' (a number from %" PRIu64
            " to %" PRIu64 ")\n", opt, v, min, max);
    return -1;
  }
  *out = n;
  return 0;
}

static int bad(const char *fmt, const char *a) {
  fprintf(stderr, "trueno-nbd: error: ");
  fprintf(stderr, fmt, a);
  fputc('\n', stderr);
  return -1;
}

static int parse(struct sup *s, int argc, char **argv) {
  uint64_t conns = 1, state_fd = UINT64_MAX;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) {
      s->server = argv + i + 1;
      break;
    }
    if (!strcmp(a, "--no-attach")) {
      s->attach = 0;
      continue;
    }
    if (!strcmp(a, "--foreground")) {
      s->foreground = 1;
      continue;
    }
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v)
      return bad("%s needs a value (or unknown option)", a);
    int rc = 0;
    if (!strcmp(a, "--socket"))
      s->sock = v;
    else if (!strcmp(a, "--pidfile"))
      s->pidfile = v;
    else if (!strcmp(a, "--log"))
      s->log = v;
    else if (!strcmp(a, "--device"))
      s->device = v;
    else if (!strcmp(a, "--export"))
      s->export = v;
    else if (!strcmp(a, "--backend")) {
      if (!*v || strlen(v) > 255)
        return bad("--backend: an identity of 1 to 255 bytes, not '%s'", v);
      s->backend = v;
    } else if (!strcmp(a, "--connections"))
      rc = parse_num(a, v, 1, MAX_CONNS, &conns);
    else if (!strcmp(a, "--timeout"))
      rc = parse_num(a, v, 1, 86400, &s->timeout);
    else if (!strcmp(a, "--dead-conn-timeout"))
      rc = parse_num(a, v, 1, 86400, &s->dead_conn);
    else if (!strcmp(a, "--max-fails"))
      rc = parse_num(a, v, 1, 1000, &s->max_fails);
    else if (!strcmp(a, "--fast"))
      rc = parse_num(a, v, 0, 86400, &s->fast_ms);
    else if (!strcmp(a, "--restart-reserve")) {
      uint64_t mib;
      rc = parse_num(a, v, 0, 4096, &mib);
      s->ballast_len = (size_t)mib << 20;
    } else if (!strcmp(a, "--state-fd"))
      rc = parse_num(a, v, 3, INT_MAX, &state_fd);
    else
      return bad("unknown option '%s'", a);
    if (rc)
      return -1;
    i++;
  }
  s->conns = (int)conns;
  s->state_fd = state_fd == UINT64_MAX ? -1 : (int)state_fd;
  s->fast_ms *= 1000;
  if (!s->sock || s->sock[0] != '/')
    return bad("--socket: the absolute path the server listens on%s", s->sock ? "" : " is required");
  if (!s->server || !s->server[0])
    return bad("the server's command goes after '--'%s", "");
  if (!s->foreground && !s->pidfile)
    return bad("--pidfile is required unless --foreground%s", "");
  if (s->attach && !s->dead_conn)
    return bad("--dead-conn-timeout: required to attach (how long requests wait for a restarted server)%s", "");
  if (s->attach && !s->timeout)
    return bad("--timeout: required to attach (requests in flight at a kill are sent again when it expires)%s", "");
  if (s->device && !s->attach)
    return bad("--device: not with --no-attach%s", "");
  if (s->state_fd >= 0 && fcntl(s->state_fd, F_GETFD) < 0)
    return bad("--state-fd: the descriptor is not open%s", "");
  return 0;
}

/* Memory locked (the supervisor runs while swap waits for it), spared by
 * the OOM killer, an I/O flusher (its allocations, the fork of a new
 * server among them, never wait for swap writes that only that server
 * can complete; inherited by the servers it starts); as swap=on does for
 * the server (common/server-guard.c, not linked here: it brings the engine). */
static int guard(struct sup *s) {
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "-1000", 5) != 5)
    say("warning: oom_score_adj -1000: %s", strerror(errno));
  if (fd >= 0)
    close(fd);
  if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) < 0)
    say("warning: PR_SET_IO_FLUSHER: %s", strerror(errno));
  /* All we have now, faulted in; what we map later only as it is
   * touched (the state: mostly holes, never to be filled here). */
  if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0 ||
      mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0) {
    if (s->attach)
      return fail_start(s, "mlockall: %s (a supervisor of swap must be locked)",
                        strerror(errno));
    say("warning: mlockall: %s (not attached: going on)", strerror(errno));
  }
  return 0;
}

static int make_state(struct sup *s) {
  if (s->state_fd < 0) {
    s->state_fd = memfd_create("trueno-state:supervise", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (s->state_fd < 0)
      return fail_start(s, "memfd_create: %s", strerror(errno));
  } else {
    fcntl(s->state_fd, F_SETFD, FD_CLOEXEC);
  }
  snprintf(s->state_arg, sizeof s->state_arg, "state=fd:%d", s->state_fd);
  if (!s->backend) {
    /* Unique to this state: no other supervisor's store passes for it. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(s->backend_buf, sizeof s->backend_buf, "trueno-supervise:%d:%lld.%09ld",
             (int)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
    s->backend = s->backend_buf;
  }
  return 0;
}

/* A server restarted while swap waits for it starts in a machine out of
 * memory, whose only way to free any is the swap it is to serve: its
 * first allocations (nbdkit's heap and threads, the store's attach, the
 * write reserve) spin in reclaim (seen in the VM rig).  So the supervisor
 * holds --restart-reserve MiB, locked, and frees it just before it
 * starts a server; it takes it back once swap flows again. */
static void ballast_take(struct sup *s) {
  if (s->ballast || !s->ballast_len)
    return;
  void *a = mmap(NULL, s->ballast_len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (a != MAP_FAILED && madvise(a, s->ballast_len, MADV_POPULATE_WRITE) < 0) {
    munmap(a, s->ballast_len);
    a = MAP_FAILED;
  }
  if (a == MAP_FAILED) {
    say("warning: cannot hold the %zu MiB restart reserve: %s", s->ballast_len >> 20,
        strerror(errno));
    return;
  }
  s->ballast = a;
}

static void ballast_free(struct sup *s) {
  if (s->ballast)
    munmap(s->ballast, s->ballast_len);
  s->ballast = NULL;
}

/* Locks, in our mapping of the state, every page the state holds (its
 * data ranges; holes stay holes): the server locks them while it runs,
 * but at its death nothing would, and the kernel could swap them out to
 * the device only the next server can serve, which would then fault on
 * its own store.  Done every STATE_SWEEP_MS while a server runs (what it
 * wrote since the last sweep is not covered), never after a death (a
 * page already swapped out would make us wait for the dead device). */
#define STATE_SWEEP_MS 500
static void lock_state(struct sup *s) {
  struct stat sb;
  if (fstat(s->state_fd, &sb) < 0 || sb.st_size <= 0)
    return;
  if ((size_t)sb.st_size != s->state_len) {
    if (s->state_map)
      munmap(s->state_map, s->state_len);
    s->state_map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, s->state_fd, 0);
    if (s->state_map == MAP_FAILED) {
      s->state_map = NULL;
      s->state_len = 0;
      return;
    }
    s->state_len = (size_t)sb.st_size;
  }
  off_t off = 0;
  for (;;) {
    off_t d = lseek(s->state_fd, off, SEEK_DATA);
    if (d < 0)
      break;
    off_t h = lseek(s->state_fd, d, SEEK_HOLE);
    if (h < 0 || h > (off_t)s->state_len)
      h = (off_t)s->state_len;
    madvise((char *)s->state_map + d, (size_t)(h - d), MADV_POPULATE_READ);
    off = h;
  }
}

/* Starts the server: its argv and state=fd:N, our stderr (the log). */
static int spawn(struct sup *s) {
  unlink(s->sock);
  int n = 0;
  while (s->server[n])
    n++;
  char **argv = calloc((size_t)n + 2, sizeof *argv);
  if (!argv)
    return -ENOMEM;
  memcpy(argv, s->server, (size_t)n * sizeof *argv);
  argv[n] = s->state_arg;
  ballast_free(s);
  s->retake_at = now_ms() + 10000;
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    free(argv);
    return -e;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* SIGPIPE stays ignored (as ours): a reply to a connection the
     * kernel shut down must fail, not kill the server. */
    fcntl(s->state_fd, F_SETFD, 0);
    /* Real-time from exec on, as swap=on makes the server later: its
     * start-up allocations may dip into the kernel's reserve. */
    struct sched_param sp = {.sched_priority = 1};
    sched_setscheduler(0, SCHED_RR, &sp);
    execvp(argv[0], argv);
    fprintf(stderr, "trueno-nbd supervise: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  free(argv);
  s->pid = pid;
  s->started_ms = now_ms();
  return 0;
}

/* Reaps the server if it ended: 1 and its status in *ST, else 0. */
static int reap(struct sup *s, int *st) {
  if (!s->pid)
    return 0;
  pid_t r = waitpid(s->pid, st, WNOHANG);
  if (r != s->pid)
    return 0;
  s->pid = 0;
  return 1;
}

/* The server ended (or none runs), without reaping it: its SIGCHLD is
 * what restarts it. */
static int server_gone(struct sup *s) {
  siginfo_t si = {0};
  if (!s->pid)
    return 1;
  return waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid;
}

static const char *how(int st, char *buf, size_t len) {
  if (WIFSIGNALED(st))
    snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
  else
    snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
  return buf;
}

/* Keeps the files the running server maps (nbdkit, its plugin and
 * filters, the libraries) resident and locked in our memory: on a tmpfs
 * root their pages can be swapped out to the very device the server
 * serves, and a restarted server would then wait in exec for a read that
 * only it can answer (seen in the VM rig: nbdkit stuck in
 * load_elf_binary -> shmem_swapin_folio -> nbd_queue_rq).  Each mapping
 * made here is locked and populated by mlockall(MCL_FUTURE).  The new
 * pins are made before the old ones go, so a page in both stays put. */
static void pin_server_files(struct sup *s) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)s->pid);
  FILE *f = fopen(path, "re");
  if (!f)
    return;
  struct pin old[MAX_PINS];
  int nold = s->npins;
  memcpy(old, s->pins, sizeof old);
  s->npins = 0;
  char line[4096], seen[MAX_PINS][256];
  uint64_t bytes = 0;
  while (fgets(line, sizeof line, f) && s->npins < MAX_PINS) {
    char *file = strchr(line, '/');
    if (!file || strstr(line, "(deleted)") || !strncmp(file, "/dev/", 5) ||
        !strncmp(file, "/memfd:", 7))
      continue;
    file[strcspn(file, "\n")] = 0;
    int dup = 0;
    for (int i = 0; i < s->npins && !dup; i++)
      dup = !strncmp(seen[i], file, sizeof seen[i]);
    if (dup)
      continue;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0)
      continue;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
      void *a = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
      if (a != MAP_FAILED)
        madvise(a, (size_t)sb.st_size, MADV_POPULATE_READ);
      if (a != MAP_FAILED) {
        snprintf(seen[s->npins], sizeof seen[0], "%s", file);
        s->pins[s->npins].addr = a;
        s->pins[s->npins++].len = (size_t)sb.st_size;
        bytes += (uint64_t)sb.st_size;
      }
    }
    close(fd);
  }
  fclose(f);
  for (int i = 0; i < nold; i++)
    munmap(old[i].addr, old[i].len);
  say("server %d: %d files it maps kept resident (%" PRIu64 " KiB)", (int)s->pid, s->npins,
      bytes >> 10);
}

/* Until the server answers on its socket: a connection through the
 * handshake (the first of the device's), -1 if the server ended or took
 * longer than READY_MS (said why). */
static int wait_ready(struct sup *s, struct nbd_export *ex) {
  int64_t t0 = now_ms();
  for (;;) {
    int st;
    char b[96];
    if (reap(s, &st)) {
      say("server %s before it listened", how(st, b, sizeof b));
      return -1;
    }
    int fd = nbd_unix_connect(s->sock);
    if (fd >= 0) {
      char err[256];
      if (nbd_handshake(fd, s->export ? s->export : "", HANDSHAKE_MS, ex, err, sizeof err) == 0)
        return fd;
      close(fd);
      say("handshake: %s", err);
      return -1;
    }
    if (now_ms() - t0 > READY_MS) {
      say("server %d did not listen on %s within %d s", (int)s->pid, s->sock, READY_MS / 1000);
      return -1;
    }
    usleep(5000);
  }
}

/* N more connections after FIRST: fds[0..n), 0, or -1 (closed). */
static int open_conns(struct sup *s, int first, int n, int *fds) {
  fds[0] = first;
  for (int i = 1; i < n; i++) {
    struct nbd_export ex;
    char err[256];
    int fd = nbd_unix_connect(s->sock);
    if (fd >= 0 && nbd_handshake(fd, s->export ? s->export : "", HANDSHAKE_MS, &ex, err,
                                 sizeof err) < 0) {
      say("connection %d: handshake: %s", i + 1, err);
      close(fd);
      fd = -1;
    } else if (fd < 0)
      say("connection %d: %s", i + 1, strerror(-fd));
    if (fd < 0) {
      while (i--)
        close(fds[i]);
      return -1;
    }
    fds[i] = fd;
  }
  return 0;
}

static void close_all(int *fds, int n) {
  for (int i = 0; i < n; i++)
    close(fds[i]);
}

/* Drops the link-dead messages queued so far: those of a death already
 * handled. */
static void drain_watch(struct sup *s) {
  if (s->index < 0)
    return;
  for (int i = 0; i < 1000 && nbd_genl_link_dead(&s->watch) != -EAGAIN; i++)
    ;
}

/* Starts the server (again) and, once attached, hands the device its
 * connections; T0 is when the need was seen (for the log).  0, or -1
 * after a failure was counted. */
static int start_and_reconnect(struct sup *s, int64_t t0, const char *why) {
  if (spawn(s) < 0) {
    say("cannot start the server: %s", strerror(errno));
    return -1;
  }
  struct nbd_export ex;
  int first = wait_ready(s, &ex);
  if (first < 0)
    return -1;
  int64_t t1 = now_ms();
  if (s->index < 0) {
    close(first);
    pin_server_files(s);
    say("%s: server %d ready %" PRId64 " ms after it was needed", why, (int)s->pid, t1 - t0);
    return 0;
  }
  int fds[MAX_CONNS];
  if (open_conns(s, first, s->conns, fds) < 0)
    return -1;
  int rc = nbd_genl_reconnect(&s->g, (uint32_t)s->index, fds, s->conns, s->backend);
  close_all(fds, s->conns);
  if (rc < 0) {
    shout("%s: the kernel refused NBD_CMD_RECONFIGURE of /dev/nbd%d: %s", why, s->index,
        strerror(-rc));
    return -1;
  }
  drain_watch(s);
  s->dead_links = 0;
  pin_server_files(s);
  say("%s: server %d ready %" PRId64 " ms, %d connection(s) handed to /dev/nbd%d %" PRId64
      " ms after it was needed",
      why, (int)s->pid, t1 - t0, s->conns, s->index, now_ms() - t0);
  return 0;
}

/* After an unasked death at T0: restarts at once, as long as the server
 * does not keep failing fast; past max_fails it gives up (loudly) and
 * leaves the device to fail its I/O after the dead-connection timeout.
 * The state is kept: SIGHUP tries again. */
static void recover(struct sup *s, int64_t t0, int64_t lived_ms) {
  s->fails = lived_ms < (int64_t)s->fast_ms ? s->fails + 1 : 1;
  while (s->fails <= s->max_fails) {
    if (start_and_reconnect(s, t0, "restart") == 0)
      return;
    if (s->pid) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, NULL, 0);
      s->pid = 0;
    }
    s->fails++;
  }
  shout("GIVING UP: the server failed %" PRIu64 " times in a row, each within %" PRIu64
      " s; %s; the state is kept: SIGHUP (trueno-swap upgrade) tries again",
      s->max_fails, s->fast_ms / 1000,
      s->index >= 0 ? "the device fails its I/O once its dead-connection timeout passes"
                    : "nothing serves");
}

/* Stops the server with SIG (SIGTERM: SIGKILL after STOP_MS). */
static void stop_server(struct sup *s, int sig) {
  if (!s->pid)
    return;
  kill(s->pid, sig);
  int64_t t0 = now_ms();
  int st;
  char b[96];
  while (!reap(s, &st)) {
    if (now_ms() - t0 > STOP_MS) {
      say("server %d still runs %d s after SIGTERM: SIGKILL", (int)s->pid, STOP_MS / 1000);
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &st, 0);
      s->pid = 0;
      break;
    }
    usleep(2000);
  }
  say("server stopped (%s) in %" PRId64 " ms", how(st, b, sizeof b), now_ms() - t0);
  unlink(s->sock);
}

static void upgrade(struct sup *s) {
  int64_t t0 = now_ms();
  /* SIGKILL, not SIGTERM: nbdkit answers the requests in flight at a
   * SIGTERM with ESHUTDOWN, which the kernel fails (a swap-in failed:
   * SIGBUS for its process, seen in the VM rig); after a kill the kernel
   * sends them again at their timeout, and the state is made to survive
   * a kill at any instant. */
  say("upgrade: stopping server %d (SIGKILL)", (int)s->pid);
  stop_server(s, SIGKILL);
  s->fails = 0;
  if (start_and_reconnect(s, t0, "upgrade") == 0) {
    say("upgrade done in %" PRId64 " ms", now_ms() - t0);
    return;
  }
  shout("upgrade failed: the new server did not come up; restarting as after a crash");
  if (s->pid) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
  recover(s, t0, 0);
  say("upgrade %s", s->pid ? "done (after retries)" : "failed");
}

/* The kernel said a link of our device died while the server lives (a
 * request timed out, a send blocked past the timeout, the server closed
 * one connection): one new connection in its place.  0 when handed over
 * (or nothing to do), -EAGAIN to try again shortly: the server may still
 * count the dead connection against its limit until it sees it close. */
static int link_dead(struct sup *s) {
  if (server_gone(s))
    return 0; /* the SIGCHLD that follows restarts it */
  struct nbd_export ex;
  char err[256];
  int fd = nbd_unix_connect(s->sock);
  if (fd < 0 || nbd_handshake(fd, s->export ? s->export : "", HANDSHAKE_MS, &ex, err,
                              sizeof err) < 0) {
    if (fd >= 0)
      close(fd);
    return -EAGAIN;
  }
  int rc = nbd_genl_reconnect(&s->g, (uint32_t)s->index, &fd, 1, s->backend);
  close(fd);
  if (rc < 0)
    shout("link dead: NBD_CMD_RECONFIGURE of /dev/nbd%d: %s", s->index, strerror(-rc));
  return 0;
}

static int attach(struct sup *s, int first, const struct nbd_export *ex) {
  int fds[MAX_CONNS];
  if (open_conns(s, first, s->conns, fds) < 0)
    return fail_start(s, "cannot open %d connections to %s", s->conns, s->sock);
  struct nbd_connect_args a = {
      .index = -1,
      .size = ex->size,
      .block_size = 4096,
      .timeout = s->timeout,
      .dead_conn_timeout = s->dead_conn,
      .server_flags = ex->flags,
      .backend = s->backend,
  };
  if (s->device) {
    const char *d = s->device;
    if (!strncmp(d, "/dev/", 5))
      d += 5;
    char *end;
    long n = strncmp(d, "nbd", 3) ? -1 : strtol(d + 3, &end, 10);
    if (n < 0 || d[3] < '0' || d[3] > '9' || *end)
      return close_all(fds, s->conns), fail_start(s, "--device: '%s' is not /dev/nbdN", s->device);
    a.index = (int)n;
  }
  if (ex->size == 0 || ex->size % 4096)
    return close_all(fds, s->conns),
           fail_start(s, "the export's size %" PRIu64 " is not a multiple of 4096", ex->size);
  uint32_t index;
  int rc = nbd_genl_connect(&s->g, &a, fds, s->conns, &index);
  close_all(fds, s->conns);
  if (rc < 0)
    return fail_start(s, "the kernel refused NBD_CMD_CONNECT%s%s: %s (see dmesg)",
                      s->device ? " of " : "", s->device ? s->device : "", strerror(-rc));
  s->index = (int)index;
  return 0;
}

static int open_netlink(struct sup *s) {
  int rc = nbd_genl_open(&s->g);
  if (rc == 0) {
    rc = nbd_genl_open(&s->watch);
    if (rc == 0)
      rc = nbd_genl_watch(&s->watch);
  }
  if (rc == -ENOENT)
    return fail_start(s, "the kernel has no nbd netlink family (or multicast group): "
                         "load the module (modprobe nbd)");
  if (rc < 0)
    return fail_start(s, "netlink: %s", strerror(-rc));
  return 0;
}

/* Forks; the parent waits for the child's word (the device, or an
 * error) and exits with it; the child goes on, detached. */
static int daemonise(struct sup *s) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid > 0) {
    close(p[1]);
    char buf[1100];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(p[0], buf + len, sizeof buf - 1 - len)) != 0) {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break;
      len += (size_t)n;
    }
    buf[len] = 0;
    if (len && buf[0] == 'O') {
      fputs(buf + 1, stdout);
      exit(0);
    }
    fprintf(stderr, "trueno-nbd supervise: error: %s",
            len ? buf + 1 : "the supervisor died at start (see its log)\n");
    exit(1);
  }
  close(p[0]);
  s->report = p[1];
  setsid();
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    close(null);
  }
  return 0;
}

static int write_pidfile(const char *path) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "we");
  if (!f)
    return -1;
  fprintf(f, "%d\n", (int)getpid());
  if (fclose(f) != 0 || rename(tmp, path) < 0)
    return -1;
  return 0;
}

int supervise_main(int argc, char **argv) {
  struct sup s = {.attach = 1, .max_fails = 5, .fast_ms = 10, .index = -1, .report = -1};
  s.g.fd = s.watch.fd = -1;
  if (parse(&s, argc, argv))
    return 2;
  int logfd = -1;
  if (s.log && (logfd = open(s.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) {
    fprintf(stderr, "trueno-nbd: error: --log: %s: %s\n", s.log, strerror(errno));
    return 1;
  }
  if (!s.foreground && daemonise(&s) < 0) {
    fprintf(stderr, "trueno-nbd supervise: error: fork: %s\n", strerror(errno));
    return 1;
  }
  /* The log is our stderr, and the server's (the parent kept its own). */
  if (logfd >= 0) {
    fflush(stderr);
    dup2(logfd, 2);
    close(logfd);
  }
  if (guard(&s) || make_state(&s))
    return 1;
  if (s.attach && open_netlink(&s))
    return 1;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    return fail_start(&s, "signalfd: %s", strerror(errno));
  if (s.pidfile && write_pidfile(s.pidfile) < 0)
    return fail_start(&s, "--pidfile: %s: %s", s.pidfile, strerror(errno));

  if (spawn(&s) < 0)
    return fail_start(&s, "cannot start %s: %s", s.server[0], strerror(errno));
  struct nbd_export ex;
  int first = wait_ready(&s, &ex);
  if (first < 0) {
    stop_server(&s, SIGTERM);
    if (s.pidfile)
      unlink(s.pidfile);
    return fail_start(&s, "the server did not come up on %s (see the log%s%s)", s.sock,
                      s.log ? " " : "", s.log ? s.log : "");
  }
  if (!s.attach)
    close(first);
  else if (attach(&s, first, &ex)) {
    stop_server(&s, SIGTERM);
    if (s.pidfile)
      unlink(s.pidfile);
    return 1;
  }
  pin_server_files(&s);
  ballast_take(&s);
  s.retake_at = 0;
  char dev[32] = "";
  if (s.index >= 0)
    snprintf(dev, sizeof dev, "/dev/nbd%d", s.index);
  say("up: server %d on %s%s%s (%d connection(s), timeout %" PRIu64 " s, dead-conn-timeout %" PRIu64
      " s, backend %s)", (int)s.pid, s.sock, dev[0] ? ", " : "", dev, s.conns, s.timeout,
      s.dead_conn, s.backend);
  if (s.report >= 0) {
    dprintf(s.report, "O%s\n", dev[0] ? dev : s.sock);
    close(s.report);
    s.report = -1;
  } else if (dev[0])
    printf("%s\n", dev);
  fflush(stdout);

  struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN}, {.fd = s.watch.fd, .events = POLLIN}};
  for (;;) {
    int wait = s.pid ? STATE_SWEEP_MS : -1;
    if (s.retake_at && wait < 0)
      wait = (int)(s.retake_at > now_ms() ? s.retake_at - now_ms() : 0);
    if (s.dead_links)
      wait = 20;
    if (poll(pf, s.index >= 0 ? 2 : 1, wait) < 0 && errno != EINTR)
      break;
    static int64_t swept;
    if (s.pid && !server_gone(&s) && now_ms() - swept >= STATE_SWEEP_MS) {
      lock_state(&s);
      swept = now_ms();
    }
    if (s.retake_at && now_ms() >= s.retake_at && s.pid && !s.dead_links) {
      s.retake_at = 0;
      ballast_take(&s);
    }
    if (pf[1].revents & POLLIN) {
      int idx = nbd_genl_link_dead(&s.watch);
      /* A link that died with its server is SIGCHLD's to handle. */
      if (idx == s.index && !server_gone(&s)) {
        /* Logged once replaced: a write to the log may wait for memory. */
        if (!s.dead_links++)
          s.dead_since = now_ms();
      }
    }
    while (s.dead_links) {
      if (link_dead(&s) == -EAGAIN)
        break;
      s.dead_links--;
      say("link dead (kernel), server %d alive: new connection handed to /dev/nbd%d %" PRId64
          " ms after the report", (int)s.pid, s.index, now_ms() - s.dead_since);
    }
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
      if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
        say("%s: stopping", strsignal((int)si.ssi_signo));
        stop_server(&s, SIGTERM);
        if (s.pidfile)
          unlink(s.pidfile);
        say("stopped; the state is dropped");
        return 0;
      }
      if (si.ssi_signo == SIGHUP) {
        upgrade(&s);
        continue;
      }
      int st;
      char b[96];
      int64_t t0 = now_ms();
      if (reap(&s, &st)) {
        /* Restart first, then log: a write to a log on tmpfs may wait
         * for memory that only the restarted server can free. */
        int64_t lived = t0 - s.started_ms;
        how(st, b, sizeof b);
        recover(&s, t0, lived);
        say("(the server it replaced: %s after %" PRId64 " ms)", b, lived);
      }
    }
  }
  say("poll: %s", strerror(errno));
  return 1;
}
