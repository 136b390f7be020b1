/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctrl.h"
#include "housekeeping.h"
#include "pin-mappings.h"
#include "queue.h"
#include "safefile.h"
#include "server-guard.h"

int ublk_run_file(char *buf, size_t cap, const char *run_dir, int id,
                  const char *ext) {
  int n = snprintf(buf, cap, "%s/ublk%d.%s", run_dir, id, ext);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

struct server {
  const struct ublk_opts *o;
  int report_fd;
  struct trueno_store *st;
  struct store_state state; /* o->state, with the state's descriptor */
  struct housekeeping *housekeeping;
  struct guard_refill *refill; /* swap=on */
  struct ublk_ctrl ctrl;
  bool ctrl_ok;
  int id;           /* -1 until added */
  bool started;
  int cdev_fd;
  int nq;
  struct ublk_queue *qs;
  struct ublk_workers pool;
  bool pool_ok;
  pthread_t main_thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int ready, ended;
  char pid_file[4096], stats_file[4096];
  char device[32]; /* ublkbN */
};

static void report(struct server *s, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof line - 2)
    n = sizeof line - 2;
  line[n++] = '\n';
  int fd = s->report_fd >= 0 ? s->report_fd : STDERR_FILENO;
  if (write(fd, line, (size_t)n) < 0) {
    /* nobody to tell */
  }
}

#define FAIL(s, ...) (report((s), "ERR " __VA_ARGS__), 1)

static void queue_notify(struct ublk_queue *q, bool ending, void *arg) {
  struct server *s = arg;
  (void)q;
  pthread_mutex_lock(&s->lock);
  if (ending)
    s->ended++;
  else
    s->ready++;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
  /* Wakes the main thread's sigwait: a queue that ends stops the server. */
  if (ending)
    pthread_kill(s->main_thread, SIGUSR1);
}

static int open_cdev(struct server *s) {
  char path[64];
  snprintf(path, sizeof path, "/dev/ublkc%d", s->id);
  /* devtmpfs creates the node as the driver adds it; udev, where there is
   * one, may still be settling its permissions: wait a little. */
  for (int i = 0; i < 500; i++) {
    s->cdev_fd = open(path, O_RDWR | O_CLOEXEC);
    if (s->cdev_fd >= 0)
      return 0;
    if (errno != ENOENT && errno != EACCES)
      break;
    usleep(10000);
  }
  return -errno;
}

static int wait_node(const char *path, int ms) {
  struct stat sb;
  for (int i = 0; i < ms / 10; i++) {
    if (stat(path, &sb) == 0 && S_ISBLK(sb.st_mode))
      return 0;
    usleep(10000);
  }
  return -ETIMEDOUT;
}

static int setup_queues(struct server *s) {
  s->qs = calloc((size_t)s->nq, sizeof *s->qs);
  if (!s->qs)
    return -ENOMEM;
  /* teardown frees every queue, also those after one whose init failed. */
  for (int i = 0; i < s->nq; i++)
    ublk_queue_clear(&s->qs[i]);
  for (int i = 0; i < s->nq; i++) {
    struct ublk_queue *q = &s->qs[i];
    q->q_id = i;
    q->depth = s->o->depth;
    q->buf_bytes = s->o->max_io;
    q->cdev_fd = s->cdev_fd;
    q->ioctl_encode = s->ctrl.ioctl_encode;
    q->st = s->st;
    q->notify = queue_notify;
    q->pool = s->pool_ok ? &s->pool : NULL;
    q->cb_arg = s;
    int r = ublk_queue_init(q);
    if (r)
      return r;
    if (!getenv("TRUENO_UBLK_NO_AFFINITY") &&
        ublk_ctrl_queue_affinity(&s->ctrl, (uint32_t)s->id, (uint16_t)i,
                                 &q->cpus, sizeof q->cpus))
      CPU_ZERO(&q->cpus); /* run anywhere */
  }
  return 0;
}

static void set_params(const struct server *s, struct ublk_params *p,
                       uint32_t max_io) {
  memset(p, 0, sizeof *p);
  p->types = UBLK_PARAM_TYPE_BASIC | UBLK_PARAM_TYPE_DISCARD;
  /* Pages are the engine's unit: 4 KiB logical blocks mean the kernel
   * never sends a partial page (no read-modify-write). */
  p->basic.logical_bs_shift = 12;
  p->basic.physical_bs_shift = 12;
  p->basic.io_min_shift = 12;
  p->basic.io_opt_shift = 12;
  p->basic.max_sectors = max_io >> 9;
  p->basic.dev_sectors = s->o->cfg.size >> 9;
  /* No volatile cache: the kernel sends no flushes.  Discards of whole
   * pages release memory: swapon -d and blkdiscard send them. */
  p->discard.discard_granularity = TRUENO_PAGE_SIZE;
  p->discard.max_discard_sectors = UINT32_MAX >> 9 & ~7u;
  p->discard.max_write_zeroes_sectors = UINT32_MAX >> 9 & ~7u;
  p->discard.max_discard_segments = 1;
}

/* Everything up to a live /dev/ublkbN.  Returns 0 or the exit status. */
static int setup(struct server *s) {
  const struct ublk_opts *o = s->o;
  int r;
  /* As the NBD server with swap=on: the kernel may need us to free memory
   * (swap, or writeback of a file system on us). */
  if ((r = guard_io_flusher()))
    return FAIL(s, "prctl(PR_SET_IO_FLUSHER): %s (needs root or CAP_SYS_RESOURCE, Linux >= 5.6)", strerror(-r));
  if ((r = guard_oom_protect()))
    return FAIL(s, "cannot set oom_score_adj to -1000: %s (needs root)", strerror(-r));
  if (o->swap)
    guard_keep_memory();
  struct trueno_config cfg = o->cfg;
  char err[512];
  s->state = o->state;
  r = store_state_open(&s->state, &cfg, &s->st, NULL, err, sizeof err);
  if (r && err[0])
    return FAIL(s, "%s", err);
  if (r == -ENOSPC)
    return FAIL(s, "mem-limit: too small to hold even the slot table of a %" PRIu64 "-byte device", o->cfg.size);
  if (r == -ENOMEM)
    return FAIL(s, "invalid size: %" PRIu64 " bytes is too large: no memory for its slot table", o->cfg.size);
  if (r)
    return FAIL(s, "cannot create the store: %s", strerror(-r));
  /* A swap device's writes must not allocate: its page table comes now. */
  if (o->swap && (r = trueno_store_populate(s->st)))
    return FAIL(s, "swap: %s for the page table of a %" PRIu64 "-byte device (swap=on allocates it up front: 16 bytes per 4 KiB)",
                r == -ENOSPC ? "mem-limit is too small" : strerror(-r), o->cfg.size);

  if ((r = ublk_ctrl_open(&s->ctrl, NULL)))
    return FAIL(s, "cannot open %s: %s", UBLK_CONTROL_PATH, strerror(-r));
  s->ctrl_ok = true;
  struct ublksrv_ctrl_dev_info info = {
      .nr_hw_queues = (uint16_t)s->nq,
      .queue_depth = (uint16_t)o->depth,
      .max_io_buf_bytes = o->max_io,
      .dev_id = (uint32_t)o->id,
      /* No UBLK_F_USER_RECOVERY*: when the server dies, the kernel must
       * fail the I/O and remove the disk, not queue it for a successor. */
      .flags = 0,
  };
  r = ublk_ctrl_add(&s->ctrl, &info);
  if (r == -EEXIST)
    return FAIL(s, "ublk device %d exists already (trueno-ublk list; or pick another --id)", o->id);
  if (r)
    return FAIL(s, "UBLK_CMD_ADD_DEV: %s", strerror(-r));
  s->id = (int)info.dev_id;
  report(s, "ID %d", s->id);
  /* The kernel caps queues at its CPUs and aligns the buffer size. */
  s->nq = info.nr_hw_queues;
  uint32_t max_io = info.max_io_buf_bytes;
  if (max_io < TRUENO_PAGE_SIZE || max_io > o->max_io)
    return FAIL(s, "the kernel set a %u-byte I/O buffer size", max_io);

  if (ublk_run_file(s->pid_file, sizeof s->pid_file, o->run_dir, s->id, "pid") ||
      ublk_run_file(s->stats_file, sizeof s->stats_file, o->run_dir, s->id, "json"))
    return FAIL(s, "run directory name too long: %s", o->run_dir);
  if (s->report_fd >= 0) {
    /* From now on the daemon's own messages go to ublkN.log. */
    char log[4096];
    ublk_run_file(log, sizeof log, o->run_dir, s->id, "log");
    int dfd = safefile_dir(o->run_dir, 0);
    int fd = dfd < 0 ? -1 : safefile_create_at(dfd, strrchr(log, '/') + 1, 0600);
    if (dfd >= 0)
      close(dfd);
    if (fd >= 0) {
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
  }

  struct ublk_params p;
  set_params(s, &p, max_io);
  if ((r = ublk_ctrl_set_params(&s->ctrl, (uint32_t)s->id, &p)))
    return FAIL(s, "UBLK_CMD_SET_PARAMS: %s", strerror(-r));
  if ((r = open_cdev(s)))
    return FAIL(s, "cannot open /dev/ublkc%d: %s", s->id, strerror(-r));
  /* One worker per CPU, for the large requests of all queues. */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu > 1 && !getenv("TRUENO_UBLK_NO_WORKERS")) {
    r = ublk_workers_start(&s->pool, (int)(ncpu > 16 ? 16 : ncpu),
                           (unsigned)(s->nq * o->depth));
    if (r) {
      ublk_workers_stop(&s->pool);
      return FAIL(s, "cannot start the worker threads: %s", strerror(-r));
    }
    s->pool_ok = true;
  }
  struct ublk_opts oq = *o; /* the queues use the kernel's buffer size */
  oq.max_io = max_io;
  s->o = &oq;
  r = setup_queues(s);
  s->o = o;
  if (r)
    return FAIL(s, "setting up the queues: %s", strerror(-r));

  /* The label node_exporter's own disk metrics give the device. */
  snprintf(s->device, sizeof s->device, "ublkb%d", s->id);
  struct housekeeping_files files = {.stats = s->stats_file,
                                     .prometheus = o->prometheus,
                                     .prometheus_mode = o->prometheus_mode,
                                     .device = s->device};
  if ((r = housekeeping_start(&files, s->st, o->cfg.algorithm,
                              &s->housekeeping)))
    return FAIL(s, "cannot start the housekeeping thread: %s", strerror(-r));
  if (o->swap && (r = guard_refill_start(s->st, &s->refill)))
    return FAIL(s, "cannot start the reserve thread: %s", strerror(-r));
  if ((r = guard_lock_memory()))
    return FAIL(s, "mlockall: %s (needs root, or a higher RLIMIT_MEMLOCK)", strerror(-r));
  /* Our code must never be only in swap (pin-mappings.c): a cold code path
   * on a tmpfs root would wait for a read from ourselves. */
  uint64_t pinned;
  unsigned skipped;
  if ((r = pin_file_mappings(&pinned, &skipped)))
    return FAIL(s, "cannot read /proc/self/maps to lock the code in memory: %s", strerror(-r));
  /* The kernel copies each request into (or out of) its tag's buffer in
   * our task.  A first touch there, while the kernel is short of memory
   * and waiting for swap writes to us, would wait for reclaim that waits
   * for us: as swap, every buffer is resident (and locked) before we
   * start. */
  for (int i = 0; o->swap && i < s->nq; i++)
    for (size_t b = 0; b < (size_t)s->qs[i].depth * s->qs[i].buf_bytes; b += 4096)
      ((volatile char *)s->qs[i].bufs)[b] = 0;

  for (int i = 0; i < s->nq; i++)
    if ((r = ublk_queue_start(&s->qs[i])))
      return FAIL(s, "cannot start queue thread %d: %s", i, strerror(-r));
  pthread_mutex_lock(&s->lock);
  while (s->ready < s->nq)
    pthread_cond_wait(&s->cond, &s->lock);
  pthread_mutex_unlock(&s->lock);
  for (int i = 0; i < s->nq; i++)
    if (s->qs[i].error)
      return FAIL(s, "queue %d: fetching requests: %s", i, strerror(-s->qs[i].error));
  /* START_DEV waits until every tag of every queue is fetched. */
  if ((r = ublk_ctrl_start(&s->ctrl, (uint32_t)s->id, (int)getpid())))
    return FAIL(s, "UBLK_CMD_START_DEV: %s", strerror(-r));
  s->started = true;
  char dev[64];
  snprintf(dev, sizeof dev, "/dev/ublkb%d", s->id);
  if ((r = wait_node(dev, 5000)))
    return FAIL(s, "%s did not appear", dev);
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if ((r = safefile_replace(s->pid_file, pid, (size_t)n, 0600)))
    return FAIL(s, "cannot write %s: %s", s->pid_file, strerror(-r));
  report(s, "OK");
  return 0;
}

/* Stops what setup started, in the reverse order. */
static void teardown(struct server *s) {
  if (s->id >= 0 && s->ctrl_ok) {
    /* Aborts every fetch: the queue threads end. */
    int r = ublk_ctrl_stop(&s->ctrl, (uint32_t)s->id);
    if (r && r != -ENODEV)
      fprintf(stderr, "trueno-ublk: UBLK_CMD_STOP_DEV: %s\n", strerror(-r));
  }
  for (int i = 0; s->qs && i < s->nq; i++)
    ublk_queue_join(&s->qs[i]);
  if (s->pool_ok)
    ublk_workers_stop(&s->pool);
  s->pool_ok = false;
  for (int i = 0; s->qs && i < s->nq; i++)
    ublk_queue_free(&s->qs[i]);
  free(s->qs);
  s->qs = NULL;
  if (s->cdev_fd >= 0)
    close(s->cdev_fd);
  s->cdev_fd = -1;
  /* DEL_DEV waits until /dev/ublkcN is closed: rings and mappings are. */
  if (s->id >= 0 && s->ctrl_ok) {
    int r = ublk_ctrl_del(&s->ctrl, (uint32_t)s->id);
    if (r && r != -ENODEV)
      fprintf(stderr, "trueno-ublk: UBLK_CMD_DEL_DEV: %s\n", strerror(-r));
  }
  if (s->ctrl_ok)
    ublk_ctrl_close(&s->ctrl);
  guard_refill_stop(s->refill);
  s->refill = NULL;
  housekeeping_stop(s->housekeeping);
  s->housekeeping = NULL;
  store_state_close(&s->state, s->st); /* a persistent store is detached */
  if (s->pid_file[0])
    unlink(s->pid_file);
  if (s->stats_file[0])
    unlink(s->stats_file);
  /* A device that is gone has no metrics: node_exporter must not go on
   * reporting its last ones. */
  if (s->device[0] && s->o->prometheus)
    unlink(s->o->prometheus);
}

int ublk_server_run(const struct ublk_opts *o, int report_fd) {
  struct server s = {.o = o, .report_fd = report_fd, .id = -1, .cdev_fd = -1,
                     .state = STORE_STATE_INIT};
  pthread_mutex_init(&s.lock, NULL);
  pthread_cond_init(&s.cond, NULL);
  s.main_thread = pthread_self();
  s.nq = o->queues ? o->queues : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (s.nq < 1)
    s.nq = 1;
  if (s.nq > UBLK_MAX_QUEUES)
    s.nq = UBLK_MAX_QUEUES;
  /* Every thread inherits this mask: the signals are taken by sigwait. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  int status = setup(&s);
  if (status == 0) {
    if (s.report_fd >= 0)
      close(s.report_fd);
    s.report_fd = -1;
    for (;;) {
      int sig;
      if (sigwait(&set, &sig))
        continue;
      if (sig != SIGUSR1)
        break; /* asked to stop */
      pthread_mutex_lock(&s.lock);
      int ended = s.ended;
      pthread_mutex_unlock(&s.lock);
      if (ended)
        break; /* a queue ended: the kernel stopped us, or it failed */
    }
    for (int i = 0; i < s.nq; i++)
      if (s.qs[i].error)
        fprintf(stderr, "trueno-ublk: queue %d: %s\n", i, strerror(-s.qs[i].error));
  }
  teardown(&s);
  pthread_cond_destroy(&s.cond);
  pthread_mutex_destroy(&s.lock);
  return status;
}
