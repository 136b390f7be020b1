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
#include "state-pin.h"

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
  bool recovery;    /* UBLK_F_USER_RECOVERY: a dead server leaves the device */
  /* recover: said once the device serves again (the log may be on a
   * tmpfs whose pages wait in the swap we are recovering). */
  char recovered[160];
  struct state_pin pin; /* state=: the state's pages this server keeps */
  int depth;        /* the device's queue depth */
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

static double ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
         (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The store, anonymous or in its state.  0 or the exit status. */
static int open_store(struct server *s) {
  const struct ublk_opts *o = s->o;
  struct trueno_config cfg = o->cfg;
  char err[512];
  s->state = o->state;
  int r = store_state_open(&s->state, &cfg, &s->st, NULL, err, sizeof err);
  /* recover: the dead server's lock goes with its last descriptor, which
   * the kernel closes as it exits: 10 s for a server that is still
   * exiting (a live one keeps it). */
  for (int i = 0; r == -EBUSY && o->recover_id >= 0 && i < 2000; i++) {
    usleep(5000);
    s->state = o->state;
    r = store_state_open(&s->state, &cfg, &s->st, NULL, err, sizeof err);
  }
  if (r && err[0])
    return FAIL(s, "%s", err);
  if (r == -ENOSPC)
    return FAIL(s, "mem-limit: too small to hold even the slot table of a %" PRIu64 "-byte device", cfg.size);
  if (r == -ENOMEM)
    return FAIL(s, "invalid size: %" PRIu64 " bytes is too large: no memory for its slot table", cfg.size);
  if (r)
    return FAIL(s, "cannot create the store: %s", strerror(-r));
  /* A swap device's writes must not allocate: its page table comes now. */
  if (o->swap && (r = trueno_store_populate(s->st)))
    return FAIL(s, "swap: %s for the page table of a %" PRIu64 "-byte device (swap=on allocates it up front: 16 bytes per 4 KiB)",
                r == -ENOSPC ? "mem-limit is too small" : strerror(-r), cfg.size);
  return 0;
}

#define RECOVERY_FLAGS (UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE)

/* A new device: ADD_DEV, SET_PARAMS.  0 or the exit status. */
static int add_dev(struct server *s, uint32_t *max_io) {
  const struct ublk_opts *o = s->o;
  int r = open_store(s);
  if (r)
    return r;
  /* With a persistent store (state=) the device outlives its server: the
   * kernel holds its I/O (RECOVERY), and replays what the dead server had
   * taken (REISSUE: a swap-in that failed instead would kill its
   * process), until a new server recovers it (trueno-ublk recover, the
   * supervisor).  Without, a dead server's I/O fails and the disk goes. */
  uint64_t want = o->state.spec ? RECOVERY_FLAGS : 0;
  if (want && s->ctrl.features && (s->ctrl.features & want) != want) {
    report(s, "NOTE this kernel's ublk_drv lacks %s: /dev/ublkbN will not survive its server (state= keeps only the store)",
           s->ctrl.features & UBLK_F_USER_RECOVERY ? "UBLK_F_USER_RECOVERY_REISSUE" : "UBLK_F_USER_RECOVERY (Linux >= 6.0)");
    want = 0;
  }
  struct ublksrv_ctrl_dev_info info = {
      .nr_hw_queues = (uint16_t)s->nq,
      .queue_depth = (uint16_t)o->depth,
      .max_io_buf_bytes = o->max_io,
      .dev_id = (uint32_t)o->id,
      .flags = want,
  };
  r = ublk_ctrl_add(&s->ctrl, &info);
  if (r == -EEXIST)
    return FAIL(s, "ublk device %d exists already (trueno-ublk list; or pick another --id)", o->id);
  if (r)
    return FAIL(s, "UBLK_CMD_ADD_DEV: %s", strerror(-r));
  s->id = (int)info.dev_id;
  report(s, "ID %d", s->id);
  /* A kernel that cannot say its features drops the flags it lacks (or
   * an unprivileged device's): what it kept is what we have. */
  s->recovery = want && (info.flags & want) == want;
  if (want && !s->recovery)
    report(s, "NOTE the kernel refused UBLK_F_USER_RECOVERY%s for ublk%d: /dev/ublkb%d will not survive its server",
           info.flags & UBLK_F_USER_RECOVERY ? "_REISSUE" : "", s->id, s->id);
  /* The kernel caps queues at its CPUs and aligns the buffer size. */
  s->nq = info.nr_hw_queues;
  s->depth = info.queue_depth;
  *max_io = info.max_io_buf_bytes;
  if (*max_io < TRUENO_PAGE_SIZE || *max_io > o->max_io)
    return FAIL(s, "the kernel set a %u-byte I/O buffer size", *max_io);
  struct ublk_params p;
  set_params(s, &p, *max_io);
  if ((r = ublk_ctrl_set_params(&s->ctrl, (uint32_t)s->id, &p)))
    return FAIL(s, "UBLK_CMD_SET_PARAMS: %s", strerror(-r));
  return 0;
}

/* recover ID: the device exists, its server died.  START_USER_RECOVERY
 * (once the kernel has quiesced the device), then the store.  0 or the
 * exit status. */
static int recover_dev(struct server *s, uint32_t *max_io) {
  const struct ublk_opts *o = s->o;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  s->id = o->recover_id;
  struct ublksrv_ctrl_dev_info info;
  int r = ublk_ctrl_info(&s->ctrl, (uint32_t)s->id, &info);
  if (r == -ENODEV)
    return FAIL(s, "no ublk device %d to recover (see: trueno-ublk list)", s->id);
  if (r)
    return FAIL(s, "ublk device %d: UBLK_CMD_GET_DEV_INFO: %s", s->id, strerror(-r));
  if ((info.flags & UBLK_F_USER_RECOVERY) == 0)
    return FAIL(s, "ublk device %d was added without UBLK_F_USER_RECOVERY (no state=): it cannot be recovered, only deleted", s->id);
  struct ublk_params p;
  if ((r = ublk_ctrl_get_params(&s->ctrl, (uint32_t)s->id, &p)))
    return FAIL(s, "ublk device %d: UBLK_CMD_GET_PARAMS: %s", s->id, strerror(-r));
  uint64_t dev_bytes = p.basic.dev_sectors << 9;
  if (o->cfg.size && o->cfg.size != dev_bytes)
    return FAIL(s, "size: --size %" PRIu64 " but ublk device %d has %" PRIu64 " bytes", o->cfg.size, s->id, dev_bytes);
  /* The store first: a state that cannot be served leaves the device
   * as it is, for another try (START_USER_RECOVERY is not undone). */
  struct ublk_opts oc = *o; /* the device's size */
  oc.cfg.size = dev_bytes;
  s->o = &oc;
  r = open_store(s);
  s->o = o;
  if (r)
    return r;
  double t_store = ms_since(&t0);
  /* The kernel says -EBUSY until the dead server's /dev/ublkcN is closed
   * and the device quiesced (its I/O requeued); a live server keeps it
   * so for ever. */
  int waited = 0;
  for (;;) {
    r = ublk_ctrl_start_recovery(&s->ctrl, (uint32_t)s->id);
    if (r != -EBUSY || waited >= 10000)
      break;
    usleep(1000);
    waited++;
  }
  if (r == -EBUSY)
    return FAIL(s, "ublk device %d: UBLK_CMD_START_USER_RECOVERY: still busy after 10 s: is its server alive (pid %d)? (state %s)",
                s->id, info.ublksrv_pid,
                info.state == UBLK_S_DEV_LIVE ? "live" : "quiesced");
  if (r)
    return FAIL(s, "ublk device %d: UBLK_CMD_START_USER_RECOVERY: %s", s->id, strerror(-r));
  report(s, "ID %d", s->id);
  s->recovery = true;
  s->nq = info.nr_hw_queues;
  s->depth = info.queue_depth;
  *max_io = info.max_io_buf_bytes;
  snprintf(s->recovered, sizeof s->recovered,
           "store attached in %.1f ms, recovery started at %.1f ms", t_store,
           ms_since(&t0));
  return 0;
}

/* The kernel notices a dead server when its io_uring is cancelled, but
 * only for a queue with a fetch outstanding: with every tag of a queue
 * in the server's hands (a swap storm), only when a request times out
 * (ublk_timeout: while the server lives the timer is merely reset).
 * The block layer's 30 s would be a 30 s stall of the swap (seen in the
 * VM rig); 1 s bounds it.  Best effort: no sysfs, no change. */
static void short_timeout(int id) {
  char path[96];
  snprintf(path, sizeof path, "/sys/block/ublkb%d/queue/io_timeout", id);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  if (write(fd, "1000", 4) != 4) {
    /* an older kernel: its default stays */
  }
  close(fd);
}

/* stderr to ublkN.log: a new log for a new device; a supervised server
 * appends to its supervisor's. */
static void log_to_file(struct server *s) {
  const struct ublk_opts *o = s->o;
  char log[4096];
  if (ublk_run_file(log, sizeof log, o->run_dir, s->id, "log"))
    return;
  int dfd = safefile_dir(o->run_dir, 0);
  if (dfd < 0)
    return;
  const char *base = strrchr(log, '/') + 1;
  int fd = o->supervised
               ? openat(dfd, base, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)
               : safefile_create_at(dfd, base, 0600);
  close(dfd);
  if (fd >= 0) {
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
}

/* Everything up to a live /dev/ublkbN.  Returns 0 or the exit status. */
static int setup(struct server *s) {
  const struct ublk_opts *o = s->o;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int r;
  /* As the NBD server with swap=on: the kernel may need us to free memory
   * (swap, or writeback of a file system on us). */
  if ((r = guard_io_flusher()))
    return FAIL(s, "prctl(PR_SET_IO_FLUSHER): %s (needs root or CAP_SYS_RESOURCE, Linux >= 5.6)", strerror(-r));
  if ((r = guard_oom_protect()))
    return FAIL(s, "cannot set oom_score_adj to -1000: %s (needs root)", strerror(-r));
  if (o->swap)
    guard_keep_memory();
  if ((r = ublk_ctrl_open(&s->ctrl, NULL)))
    return FAIL(s, "cannot open %s: %s", UBLK_CONTROL_PATH, strerror(-r));
  s->ctrl_ok = true;
  uint32_t max_io = 0;
  r = o->recover_id >= 0 ? recover_dev(s, &max_io) : add_dev(s, &max_io);
  if (r)
    return r;

  if (ublk_run_file(s->pid_file, sizeof s->pid_file, o->run_dir, s->id,
                    o->supervised ? "server.pid" : "pid") ||
      ublk_run_file(s->stats_file, sizeof s->stats_file, o->run_dir, s->id, "json"))
    return FAIL(s, "run directory name too long: %s", o->run_dir);
  /* From now on the daemon's own messages go to ublkN.log. */
  if (s->report_fd >= 0)
    log_to_file(s);

  if ((r = open_cdev(s)))
    return FAIL(s, "cannot open /dev/ublkc%d: %s", s->id, strerror(-r));
  /* One worker per CPU, for the large requests of all queues. */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu > 1 && !getenv("TRUENO_UBLK_NO_WORKERS")) {
    r = ublk_workers_start(&s->pool, (int)(ncpu > 16 ? 16 : ncpu),
                           (unsigned)(s->nq * s->depth));
    if (r) {
      ublk_workers_stop(&s->pool);
      return FAIL(s, "cannot start the worker threads: %s", strerror(-r));
    }
    s->pool_ok = true;
  }
  struct ublk_opts oq = *o; /* the queues use the kernel's sizes */
  oq.max_io = max_io;
  oq.depth = s->depth;
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
  /* START_DEV (END_USER_RECOVERY) waits until every tag of every queue is
   * fetched; then the kernel replays what it held. */
  if (o->recover_id >= 0) {
    if ((r = ublk_ctrl_end_recovery(&s->ctrl, (uint32_t)s->id, (int)getpid())))
      return FAIL(s, "UBLK_CMD_END_USER_RECOVERY: %s", strerror(-r));
    fprintf(stderr, "trueno-ublk: ublk%d: recovered: %s, serving again at %.1f ms\n",
            s->id, s->recovered, ms_since(&t0));
  } else if ((r = ublk_ctrl_start(&s->ctrl, (uint32_t)s->id, (int)getpid()))) {
    return FAIL(s, "UBLK_CMD_START_DEV: %s", strerror(-r));
  }
  s->started = true;
  if (s->recovery)
    short_timeout(s->id);
  char dev[64];
  snprintf(dev, sizeof dev, "/dev/ublkb%d", s->id);
  if ((r = wait_node(dev, 5000)))
    return FAIL(s, "%s did not appear", dev);
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if ((r = safefile_replace(s->pid_file, pid, (size_t)n, 0600)))
    return FAIL(s, "cannot write %s: %s", s->pid_file, strerror(-r));
  /* A persistent store's pages in RAM for as long as we serve, also
   * those this server has not touched yet (an attached store's): one of
   * them swapped out to this device would be read back by a queue thread
   * from itself (state-pin.h).  Now, not before: with the device live, a
   * page still being written out completes. */
  if (s->state.fd >= 0 && state_pin_open(&s->pin, s->state.fd) == 0)
    state_pin_scan(&s->pin);
  report(s, "OK");
  return 0;
}

/* Stops what setup started, in the reverse order. */
static void teardown(struct server *s, bool keep_dev) {
  if (keep_dev)
    s->id = -1; /* neither stopped nor deleted: recover ID serves it */
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
  state_pin_close(&s->pin);
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
                     .state = STORE_STATE_INIT, .depth = o->depth};
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
  sigaddset(&set, SIGUSR2);
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
      if (s.recovery && o->supervised && (sig == SIGUSR2 || sig == SIGHUP)) {
        /* Make way for a successor (the supervisor's upgrade): the
         * housekeeping stops between two steps, the kernel holds and then
         * replays the I/O in flight; the device and the state stay. */
        fprintf(stderr, "trueno-ublk: ublk%d: server %ld leaves the device to its successor\n",
                s.id, (long)getpid());
        guard_refill_stop(s.refill);
        housekeeping_stop(s.housekeeping);
        _exit(UBLK_EXIT_DETACHED);
      }
      if (sig != SIGUSR1 && sig != SIGUSR2)
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
  /* A recovery that failed leaves the device quiesced, its I/O held, for
   * the next try (or del). */
  teardown(&s, status != 0 && o->recover_id >= 0);
  pthread_cond_destroy(&s.cond);
  pthread_mutex_destroy(&s.lock);
  return status;
}
