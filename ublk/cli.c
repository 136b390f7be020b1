/* trueno-ublk: the engine as a kernel block device (/dev/ublkbN) over ublk.
 *
 *   trueno-ublk add --size 8G [--queues N] [--depth D] [--id N]
 *                   [--run-dir DIR] [--foreground] [engine params...]
 *   trueno-ublk recover ID [--foreground] state=... [engine params...]
 *   trueno-ublk upgrade ID
 *   trueno-ublk del ID|all
 *   trueno-ublk list
 *
 * With state= (a persistent store) add starts a supervisor (supervise.h)
 * that restarts a server that dies; recover serves a device whose server
 * died by hand; upgrade has the supervisor run the binary now on disk.
 * add forks a server that sets the device up and, once /dev/ublkbN exists,
 * tells this process, which prints the device and returns; the server stays
 * (pid file, stats JSON under the run directory) until `del`.
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "ctrl.h"
#include "engine-params.h"
#include "housekeeping.h"
#include "param-table.h"
#include "safefile.h"
#include "server.h"
#include "supervise.h"

static const char *prog = "trueno-ublk";

static int die(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: error: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 1;
}

static void usage(FILE *f) {
  char params[4096];
  param_help(params, sizeof params, PARAM_UBLK, "  ");
  fprintf(f,
          "usage: %s add --size SIZE [--queues N] [--depth D] [--max-io SIZE] [--id N]\n"
          "                   [--run-dir DIR] [--foreground] [param=value...]\n"
          "       %s recover ID [--foreground] state=... [param=value...]\n"
          "       %s upgrade ID\n"
          "       %s del ID|all\n"
          "       %s list\n"
          "parameters:\n%s",
          prog, prog, prog, prog, prog, params);
}

static const char *run_dir(void) {
  const char *d = getenv("TRUENO_UBLK_RUNDIR");
  return d && *d ? d : UBLK_DEFAULT_RUN_DIR;
}

/* Root, and the driver loaded: what every command needs first. */
static int open_control(struct ublk_ctrl *c) {
  if (geteuid() != 0)
    return die("must be run as root (ublk devices are made through %s)",
               UBLK_CONTROL_PATH);
  const char *path = getenv("TRUENO_UBLK_CONTROL");
  if (!path)
    path = UBLK_CONTROL_PATH;
  int r = ublk_ctrl_open(c, path);
  if (r == -ENOENT || r == -ENODEV || r == -ENXIO)
    return die("ublk_drv not loaded: %s is missing (run: modprobe ublk_drv; "
               "it needs a kernel built with CONFIG_BLK_DEV_UBLK, Linux >= 6.0)",
               path);
  if (r == -EACCES || r == -EPERM)
    return die("cannot open %s: %s (run as root)", path, strerror(-r));
  if (r == -ENOSYS || r == -EINVAL)
    return die("this kernel has no usable io_uring with 128-byte SQEs "
               "(Linux >= 6.0 is needed): %s", strerror(-r));
  if (r)
    return die("cannot open %s: %s", path, strerror(-r));
  return 0;
}

/* Reads the server's report lines until "OK", "ERR ..." or the end. */
static int wait_server(int fd, pid_t child, bool recovering) {
  char buf[4096];
  size_t len = 0;
  int id = -1;
  for (;;) {
    char *nl;
    while (!(nl = memchr(buf, '\n', len))) {
      if (len == sizeof buf - 1)
        len = 0;
      ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        goto died;
      len += (size_t)n;
    }
    *nl = 0;
    if (!strncmp(buf, "ID ", 3))
      id = atoi(buf + 3);
    else if (!strncmp(buf, "NOTE ", 5))
      fprintf(stderr, "%s: warning: %s\n", prog, buf + 5);
    else if (!strcmp(buf, "OK")) {
      printf("/dev/ublkb%d\n", id);
      return 0;
    } else if (!strncmp(buf, "ERR ", 4)) {
      waitpid(child, NULL, 0); /* it removes what it made */
      return die("%s", buf + 4);
    }
    len -= (size_t)(nl + 1 - buf);
    memmove(buf, nl + 1, len);
  }
died:;
  int st = 0;
  waitpid(child, &st, 0);
  if (id >= 0 && !recovering) {
    /* It died without cleaning up: remove its device (a device being
     * recovered stays, for the next try). */
    struct ublk_ctrl c;
    if (ublk_ctrl_open(&c, NULL) == 0) {
      ublk_ctrl_stop(&c, (uint32_t)id);
      ublk_ctrl_del(&c, (uint32_t)id);
      ublk_ctrl_close(&c);
    }
  }
  if (WIFSIGNALED(st))
    return die("the server was killed by signal %d during setup",
               WTERMSIG(st));
  return die("the server exited during setup (status %d)", WEXITSTATUS(st));
}

static int daemonize(struct ublk_opts *o, int argc, char **argv);

/* The run directory, made root's alone, as an absolute path in abs. */
static int prepare_run_dir(struct ublk_opts *o, char *abs) {
  /* Root writes its pid, stats and log files there: the directory must be
   * root's alone (safefile.h). */
  int r = safefile_dir(o->run_dir, 1);
  if (r == -EPERM)
    return die("run directory %s refused: it is not owned by this user or "
               "is writable by others (TRUENO_UBLK_RUNDIR)", o->run_dir);
  if (r < 0)
    return die("cannot create %s: %s", o->run_dir, strerror(-r));
  close(r);
  if (!realpath(o->run_dir, abs))
    return die("cannot resolve %s: %s", o->run_dir, strerror(errno));
  o->run_dir = abs; /* the server works from / */
  return 0;
}

static int cmd_add(int argc, char **argv) {
  struct ublk_opts o;
  char err[512];
  if (ublk_parse_add(argc, argv, &o, err, sizeof err))
    return die("%s", err);
  char prom[PATH_MAX], cwd[PATH_MAX];
  if (o.prometheus) {
    int n = o.prometheus[0] == '/'
                ? snprintf(prom, sizeof prom, "%s", o.prometheus)
            : getcwd(cwd, sizeof cwd)
                ? snprintf(prom, sizeof prom, "%s/%s", cwd, o.prometheus)
                : -1;
    if (n < 0 || n >= (int)sizeof prom)
      return die("prometheus: cannot resolve %s", o.prometheus);
    int e = stats_file_check(prom);
    if (e)
      return die("prometheus: cannot write beside %s: %s", prom, strerror(-e));
    o.prometheus = prom;
  }
  struct ublk_ctrl c;
  if (open_control(&c))
    return 1;
  ublk_ctrl_close(&c); /* the server opens its own */
  char abs[PATH_MAX];
  if (prepare_run_dir(&o, abs))
    return 1;
  if (o.foreground)
    return ublk_server_run(&o, -1);
  return daemonize(&o, argc, argv);
}

/* Forks the server (with a persistent store of a new device: its
 * supervisor), which reports until /dev/ublkbN serves, then stays. */
static int daemonize(struct ublk_opts *o, int argc, char **argv) {
  int p[2];
  if (pipe2(p, O_CLOEXEC))
    return die("pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    return die("fork: %s", strerror(errno));
  if (pid == 0) {
    close(p[0]);
    setsid();
    if (chdir("/")) {
      /* stays where it is */
    }
    /* Nothing of the caller's stays open: $(trueno-ublk add) returns. */
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, STDIN_FILENO);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      if (null > STDERR_FILENO)
        close(null);
    }
    if (o->state.spec && o->recover_id < 0)
      _exit(ublk_supervise(o, argc, argv, p[1], -1, 0));
    _exit(ublk_server_run(o, p[1]));
  }
  close(p[1]);
  int r = wait_server(p[0], pid, o->recover_id >= 0);
  close(p[0]);
  return r;
}

/* A number from the stats JSON, or -1. */
static double json_num(const char *json, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(json, k);
  return p ? strtod(p + strlen(k), NULL) : -1;
}

static const char *human(double b, char *buf, size_t cap) {
  const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (b >= 1024 && i < 4) {
    b /= 1024;
    i++;
  }
  snprintf(buf, cap, "%.1f %s", b, u[i]);
  return buf;
}

/* ublkN.pid: the server's, or its supervisor's (then the server's is in
 * ublkN.server.pid). */
static long read_pid_ext(int id, const char *ext) {
  char path[PATH_MAX];
  if (ublk_run_file(path, sizeof path, run_dir(), id, ext))
    return -1;
  FILE *f = fopen(path, "r");
  long pid = -1;
  if (f) {
    if (fscanf(f, "%ld", &pid) != 1)
      pid = -1;
    fclose(f);
  }
  return pid;
}

static long read_pid(int id) { return read_pid_ext(id, "pid"); }

/* pid is a live trueno-ublk (not a zombie, not a recycled pid). */
static int is_server(long pid) {
  if (pid <= 0)
    return 0;
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *close_paren = strrchr(buf, ')');
  return strstr(buf, "(trueno-ublk)") && close_paren && close_paren[1] == ' ' &&
         close_paren[2] != 'Z' && close_paren[2] != 'X';
}

/* Device ids the driver has, from sysfs (the class of /dev/ublkcN). */
static int list_ids(int *ids, int cap) {
  DIR *d = opendir("/sys/class/ublk-char");
  if (!d)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap)
    if (!strncmp(e->d_name, "ublkc", 5))
      ids[n++] = atoi(e->d_name + 5);
  closedir(d);
  for (int i = 1; i < n; i++) /* a few: insertion sort */
    for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
      int t = ids[j];
      ids[j] = ids[j - 1];
      ids[j - 1] = t;
    }
  return n;
}

static int in_swaps(int id) {
  char want[64], line[512];
  snprintf(want, sizeof want, "/dev/ublkb%d ", id);
  FILE *f = fopen("/proc/swaps", "r");
  int found = 0;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, want, strlen(want)))
      found = 1;
  if (f)
    fclose(f);
  return found;
}

static void remove_files(int id) {
  const char *ext[] = {"pid", "server.pid", "json", "log"};
  char path[PATH_MAX];
  for (int i = 0; i < 4; i++)
    if (!ublk_run_file(path, sizeof path, run_dir(), id, ext[i]))
      unlink(path);
}

static int wait_exit(long pid, int ms) {
  for (int i = 0; i < ms / 20 && is_server(pid); i++)
    usleep(20000);
  return !is_server(pid);
}

static int del_one(struct ublk_ctrl *c, int id) {
  struct ublksrv_ctrl_dev_info info;
  int r = ublk_ctrl_info(c, (uint32_t)id, &info);
  if (r == -ENODEV)
    return die("no ublk device %d (see: trueno-ublk list)", id);
  if (r)
    return die("ublk device %d: UBLK_CMD_GET_DEV_INFO: %s", id, strerror(-r));
  if (in_swaps(id))
    return die("/dev/ublkb%d is active swap: swapoff it first", id);
  long pid = read_pid(id);
  if (!is_server(pid))
    pid = info.ublksrv_pid;
  if (is_server(pid)) {
    /* The server stops and deletes its device itself, then exits. */
    kill((pid_t)pid, SIGTERM);
    if (!wait_exit(pid, 30000)) {
      fprintf(stderr, "%s: server %ld did not stop in 30 s: killing it\n",
              prog, pid);
      kill((pid_t)pid, SIGKILL);
      wait_exit(pid, 10000);
    }
  }
  /* A server that died (or never answered) left the device: remove it. */
  r = ublk_ctrl_stop(c, (uint32_t)id);
  if (r && r != -ENODEV)
    return die("ublk device %d: UBLK_CMD_STOP_DEV: %s", id, strerror(-r));
  r = ublk_ctrl_del(c, (uint32_t)id);
  if (r && r != -ENODEV)
    return die("ublk device %d: UBLK_CMD_DEL_DEV: %s", id, strerror(-r));
  remove_files(id);
  printf("ublk%d: deleted\n", id);
  return 0;
}

static int cmd_del(int argc, char **argv) {
  if (argc != 1)
    return die("usage: %s del ID|all", prog);
  long id = -1;
  if (strcmp(argv[0], "all") && engine_params_parse_long(argv[0], 0, INT_MAX, &id))
    return die("invalid device id '%s': a number (see: trueno-ublk list) or all",
               argv[0]);
  struct ublk_ctrl c;
  if (open_control(&c))
    return 1;
  int rc = 0;
  if (id >= 0) {
    rc = del_one(&c, (int)id);
  } else {
    int ids[1024], n = list_ids(ids, 1024);
    for (int i = 0; i < n; i++)
      rc |= del_one(&c, ids[i]);
  }
  ublk_ctrl_close(&c);
  return rc;
}

static int cmd_recover(int argc, char **argv) {
  struct ublk_opts o;
  char err[512];
  if (ublk_parse_recover(argc, argv, &o, err, sizeof err))
    return die("%s", err);
  struct ublk_ctrl c;
  if (open_control(&c))
    return 1;
  ublk_ctrl_close(&c);
  char abs[PATH_MAX];
  if (prepare_run_dir(&o, abs))
    return 1;
  if (o.foreground)
    return ublk_server_run(&o, -1);
  return daemonize(&o, 0, NULL);
}

/* supervise ID OLDPID ARGS: the supervisor of an upgrade (supervise.h
 * execs it); not for users. */
static int cmd_supervise(int argc, char **argv) {
  long id, old;
  struct ublk_opts o;
  char err[512];
  if (argc < 2 || engine_params_parse_long(argv[0], 0, INT_MAX, &id) ||
      engine_params_parse_long(argv[1], 0, INT_MAX, &old))
    return die("supervise: used by trueno-ublk upgrade only");
  if (ublk_parse_add(argc - 2, argv + 2, &o, err, sizeof err) ||
      !o.state.spec)
    return die("supervise: %s", err[0] ? err : "no state=");
  return ublk_supervise(&o, argc - 2, argv + 2, -1, (int)id, (pid_t)old);
}

static double mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* upgrade ID: SIGHUP to the device's supervisor, then waits until a new
 * server serves the device. */
static int cmd_upgrade(int argc, char **argv) {
  long id;
  if (argc != 1 || engine_params_parse_long(argv[0], 0, INT_MAX, &id))
    return die("usage: %s upgrade ID (see: trueno-ublk list)", prog);
  struct ublk_ctrl c;
  if (open_control(&c))
    return 1;
  struct ublksrv_ctrl_dev_info info;
  int r = ublk_ctrl_info(&c, (uint32_t)id, &info);
  if (r) {
    ublk_ctrl_close(&c);
    return die(r == -ENODEV ? "no ublk device %ld (see: trueno-ublk list)"
                            : "ublk device %ld: UBLK_CMD_GET_DEV_INFO failed", id);
  }
  long sup = read_pid((int)id), old = read_pid_ext((int)id, "server.pid");
  if (!(info.flags & UBLK_F_USER_RECOVERY) || !is_server(sup) || sup == old ||
      !is_server(old)) {
    ublk_ctrl_close(&c);
    return die("ublk%ld has no supervisor to upgrade it: only a device added "
               "with state= has one (trueno-ublk list)", id);
  }
  double t0 = mono_ms();
  kill((pid_t)sup, SIGHUP);
  for (;;) {
    long now = read_pid_ext((int)id, "server.pid");
    if (now != old && is_server(now) &&
        ublk_ctrl_info(&c, (uint32_t)id, &info) == 0 &&
        info.state == UBLK_S_DEV_LIVE && info.ublksrv_pid == now) {
      printf("ublk%ld: upgraded: server %ld -> %ld, served again after %.0f ms\n",
             id, old, now, mono_ms() - t0);
      break;
    }
    if (!is_server(sup) || mono_ms() - t0 > 60000) {
      ublk_ctrl_close(&c);
      char log[PATH_MAX];
      ublk_run_file(log, sizeof log, run_dir(), (int)id, "log");
      return die("ublk%ld: no new server after %.0f s (see %s)", id,
                 (mono_ms() - t0) / 1e3, log);
    }
    usleep(10000);
  }
  ublk_ctrl_close(&c);
  return 0;
}

static int cmd_list(void) {
  struct ublk_ctrl c;
  if (open_control(&c))
    return 1;
  int ids[1024], n = list_ids(ids, 1024);
  if (!n)
    printf("no ublk devices (add one with: trueno-ublk add --size 8G)\n");
  for (int i = 0; i < n; i++) {
    struct ublksrv_ctrl_dev_info info;
    if (ublk_ctrl_info(&c, (uint32_t)ids[i], &info))
      continue;
    long pid = read_pid(ids[i]);
    const char *state = info.state == UBLK_S_DEV_LIVE       ? "live"
                        : info.state == UBLK_S_DEV_QUIESCED ? "quiesced"
                                                            : "dead";
    printf("ublk%d: /dev/ublkb%d %s, %u queues x %u, server %s (pid %ld)\n",
           ids[i], ids[i], state, info.nr_hw_queues, info.queue_depth,
           is_server(pid) ? "running" : "NOT RUNNING", pid);
    char path[PATH_MAX], json[4096];
    if (ublk_run_file(path, sizeof path, run_dir(), ids[i], "json"))
      continue;
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    size_t len = fread(json, 1, sizeof json - 1, f);
    fclose(f);
    json[len] = 0;
    char a[32], b[32], d[32], m[32];
    printf("  size %s, stored %s in %s of memory, ratio %.2f, %.0f pages; "
           "peak %s\n",
           human(json_num(json, "disksize"), d, sizeof d),
           human(json_num(json, "orig_data_size"), a, sizeof a),
           human(json_num(json, "mem_used_total"), b, sizeof b),
           json_num(json, "ratio"), json_num(json, "pages_stored"),
           human(json_num(json, "mem_used_max"), m, sizeof m));
  }
  ublk_ctrl_close(&c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "add"))
    return cmd_add(argc - 2, argv + 2);
  if (!strcmp(cmd, "del"))
    return cmd_del(argc - 2, argv + 2);
  if (!strcmp(cmd, "recover"))
    return cmd_recover(argc - 2, argv + 2);
  if (!strcmp(cmd, "upgrade"))
    return cmd_upgrade(argc - 2, argv + 2);
  if (!strcmp(cmd, "supervise"))
    return cmd_supervise(argc - 2, argv + 2);
  if (!strcmp(cmd, "list"))
    return argc == 2 ? cmd_list() : die("usage: %s list", prog);
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  usage(stderr);
  return die("unknown command '%s'", cmd);
}
