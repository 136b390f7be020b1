/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "queue.h"

#include "server-guard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* user_data of the eventfd read (tags are below 4096). */
#define EFD_TAG UINT64_MAX

static size_t page_round(size_t n) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  return (n + pg - 1) / pg * pg;
}

void ublk_queue_clear(struct ublk_queue *q) { q->efd = -1; }

int ublk_queue_init(struct ublk_queue *q) {
  /* Before anything can fail: a failed init is freed, and 0 is a
   * descriptor. */
  ublk_queue_clear(q);
  q->descs_len = page_round((size_t)q->depth * sizeof(struct ublksrv_io_desc));
  /* Queue q's descriptors sit at q times the area of the deepest queue. */
  off_t off = (off_t)q->q_id * (off_t)page_round(TRUENO_UBLK_MAX_DESC_BYTES);
  void *d = mmap(NULL, q->descs_len, PROT_READ, MAP_SHARED | MAP_POPULATE,
                 q->cdev_fd, UBLKSRV_CMD_BUF_OFFSET + off);
  if (d == MAP_FAILED)
    return -errno;
  q->descs = d;
  /* Touched only as requests use them: memory follows the I/O sizes. */
  void *b = mmap(NULL, (size_t)q->depth * q->buf_bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (b == MAP_FAILED) {
    int r = -errno;
    ublk_queue_free(q);
    return r;
  }
  q->bufs = b;
  /* DEFER_TASKRUN (6.1): the kernel's completions wait as task work until
   * the queue thread asks for events, so a request arriving while it works
   * neither interrupts it nor wakes it early; the ring then belongs to one
   * submitting thread (SINGLE_ISSUER), the queue thread, which enables it
   * (R_DISABLED until then).  Older kernels refuse the flags: COOP_TASKRUN
   * (5.19), then plain. */
  int r = -EINVAL;
  q->ring_deferred = !getenv("TRUENO_UBLK_NO_DEFER");
  if (q->ring_deferred) {
    r = io_uring_queue_init((unsigned)q->depth, &q->ring,
                            IORING_SETUP_SINGLE_ISSUER |
                                IORING_SETUP_DEFER_TASKRUN |
                                IORING_SETUP_R_DISABLED);
    q->ring_deferred = r == 0;
  }
  if (r == -EINVAL)
    r = io_uring_queue_init((unsigned)q->depth, &q->ring,
                            IORING_SETUP_COOP_TASKRUN);
  if (r == -EINVAL)
    r = io_uring_queue_init((unsigned)q->depth, &q->ring, 0);
  if (r) {
    ublk_queue_free(q);
    return r;
  }
  q->ring_ok = true;
  pthread_mutex_init(&q->done_lock, NULL);
  if (q->pool) {
    q->efd = eventfd(0, EFD_CLOEXEC);
    q->done_tag = calloc((size_t)q->depth, sizeof *q->done_tag);
    q->done_res = calloc((size_t)q->depth, sizeof *q->done_res);
    if (q->efd < 0 || !q->done_tag || !q->done_res) {
      r = q->efd < 0 ? -errno : -ENOMEM;
      ublk_queue_free(q);
      return r;
    }
  }
  return 0;
}

void ublk_queue_free(struct ublk_queue *q) {
  if (q->ring_ok) {
    io_uring_queue_exit(&q->ring);
    pthread_mutex_destroy(&q->done_lock);
  }
  q->ring_ok = false;
  if (q->efd >= 0)
    close(q->efd);
  q->efd = -1;
  free(q->done_tag);
  free(q->done_res);
  q->done_tag = NULL;
  q->done_res = NULL;
  if (q->bufs)
    munmap(q->bufs, (size_t)q->depth * q->buf_bytes);
  q->bufs = NULL;
  if (q->descs)
    munmap((void *)q->descs, q->descs_len);
  q->descs = NULL;
}

static char *tag_buf(struct ublk_queue *q, unsigned tag) {
  return q->bufs + (size_t)tag * q->buf_bytes;
}

/* FETCH_REQ or COMMIT_AND_FETCH_REQ for tag; result is the commit's. */
static int queue_cmd(struct ublk_queue *q, unsigned nr, unsigned tag,
                     int result) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
  if (!sqe) {
    /* Cannot happen with a ring of depth entries (one command per tag),
     * but submitting frees the queue if it ever does. */
    io_uring_submit(&q->ring);
    sqe = io_uring_get_sqe(&q->ring);
    if (!sqe)
      return -EBUSY;
  }
  memset(sqe, 0, sizeof *sqe);
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = q->cdev_fd;
  sqe->cmd_op = q->ioctl_encode ? TRUENO_UBLK_U_IO(nr) : nr;
  sqe->user_data = tag;
  struct ublksrv_io_cmd *cmd = (struct ublksrv_io_cmd *)sqe->cmd;
  cmd->q_id = (uint16_t)q->q_id;
  cmd->tag = (uint16_t)tag;
  cmd->result = result;
  cmd->addr = (uint64_t)(uintptr_t)tag_buf(q, tag);
  q->inflight++;
  return 0;
}

/* The engine serves one request: bytes done (reads, writes), 0 (others)
 * or a negative errno, which the kernel turns into the request's status. */
static int serve(struct ublk_queue *q, unsigned tag) {
  const struct ublksrv_io_desc *iod = &q->descs[tag];
  uint64_t off = iod->start_sector << 9;
  uint64_t len = (uint64_t)iod->nr_sectors << 9;
  int r;
  switch (ublksrv_get_op(iod)) {
  case UBLK_IO_OP_READ:
    if (len > q->buf_bytes)
      return -EIO;
    r = trueno_read(q->st, tag_buf(q, tag), len, off);
    return r ? r : (int)len;
  case UBLK_IO_OP_WRITE:
    if (len > q->buf_bytes)
      return -EIO;
    r = trueno_write(q->st, tag_buf(q, tag), len, off);
    return r ? r : (int)len;
  case UBLK_IO_OP_FLUSH:
    return 0; /* RAM: nothing is ever pending */
  case UBLK_IO_OP_DISCARD:
    return trueno_trim(q->st, len, off);
  case UBLK_IO_OP_WRITE_ZEROES:
    return trueno_zero(q->st, len, off);
  default:
    return -EOPNOTSUPP;
  }
}

void ublk_queue_work(struct ublk_queue *q, unsigned tag) {
  int res = serve(q, tag);
  pthread_mutex_lock(&q->done_lock);
  q->done_tag[q->ndone] = tag;
  q->done_res[q->ndone++] = res;
  pthread_mutex_unlock(&q->done_lock);
  uint64_t one = 1;
  if (write(q->efd, &one, sizeof one) != sizeof one) {
    /* cannot fail: the counter is far from overflowing */
  }
}

/* Waits (in the ring) for the workers to say they finished something. */
static void arm_efd(struct ublk_queue *q) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
  if (!sqe) {
    io_uring_submit(&q->ring);
    sqe = io_uring_get_sqe(&q->ring);
  }
  if (!sqe) {
    q->error = -EBUSY;
    return;
  }
  io_uring_prep_read(sqe, q->efd, &q->efd_val, sizeof q->efd_val, 0);
  sqe->user_data = EFD_TAG;
  q->efd_armed = true;
}

/* Commits what the workers finished. */
static void collect(struct ublk_queue *q) {
  q->efd_armed = false;
  pthread_mutex_lock(&q->done_lock);
  for (int i = 0; i < q->ndone; i++) {
    int r = queue_cmd(q, UBLK_IO_COMMIT_AND_FETCH_REQ, q->done_tag[i],
                      q->done_res[i]);
    if (r && !q->error)
      q->error = r;
    q->pending--;
  }
  q->ndone = 0;
  pthread_mutex_unlock(&q->done_lock);
  if (q->pending > 0)
    arm_efd(q);
}

static bool offload(const struct ublk_queue *q, unsigned tag) {
  const struct ublksrv_io_desc *iod = &q->descs[tag];
  unsigned op = ublksrv_get_op(iod);
  return q->pool && (op == UBLK_IO_OP_READ || op == UBLK_IO_OP_WRITE) &&
         ((uint64_t)iod->nr_sectors << 9) >= UBLK_OFFLOAD_MIN;
}

static void complete(struct ublk_queue *q, const struct io_uring_cqe *cqe) {
  if (cqe->user_data == EFD_TAG) {
    collect(q);
    return;
  }
  unsigned tag = (unsigned)cqe->user_data;
  q->inflight--;
  if (cqe->res == UBLK_IO_RES_ABORT)
    return; /* the device is going away: this tag is not fetched again */
  if (cqe->res < 0 || tag >= (unsigned)q->depth) {
    if (!q->error)
      q->error = cqe->res < 0 ? cqe->res : -EPROTO;
    return;
  }
  if (offload(q, tag)) {
    q->pending++;
    if (!q->efd_armed)
      arm_efd(q);
    ublk_workers_push(q->pool, q, tag);
    return;
  }
  int r = queue_cmd(q, UBLK_IO_COMMIT_AND_FETCH_REQ, tag, serve(q, tag));
  if (r && !q->error)
    q->error = r;
}

/* Requests per wake-up, averaged over the last ~16 wake-ups, x16. */
#define PER_WAKE_ONE 16u

/* While requests come one at a time (queue depth 1: the submitter waits
 * for each), SCHED_OTHER: a request preempts its submitter on this CPU and
 * is served before the submitter even sleeps, which leaves the scheduler
 * nothing to move (woken, it may be put on an idle CPU: on an emulated
 * CPU that IPI is ~100 us).  While they come several at a time,
 * SCHED_BATCH: a request does not preempt its submitter; we run when it
 * blocks (or at the next tick) and serve all it queued meanwhile, one
 * wake-up and two context switches for the lot, not for each request
 * (docs/measurements.md).  Under SCHED_OTHER a
 * deep queue still shows ~2 per wake-up, hence the thresholds. */
static void adapt_policy(struct ublk_queue *q, unsigned nreq) {
  q->per_wake += nreq * PER_WAKE_ONE - q->per_wake / 16;
  if (++q->wakes % 16)
    return;
  unsigned avg = q->per_wake / 16; /* x16 */
  bool batch = q->batch ? avg >= PER_WAKE_ONE * 9 / 8
                        : avg >= PER_WAKE_ONE * 5 / 4;
  if (batch == q->batch)
    return;
  q->batch = batch;
  sched_setscheduler(0, batch ? SCHED_BATCH : SCHED_OTHER,
                     &(struct sched_param){0});
}

/* Starts a ring made with R_DISABLED; its submitter is the caller from now
 * on.  (liburing 2.3 declares io_uring_enable_rings but does not export
 * it.) */
static int ring_enable(struct io_uring *ring) {
  if (syscall(__NR_io_uring_register, ring->ring_fd,
              IORING_REGISTER_ENABLE_RINGS, NULL, 0))
    return -errno;
  return 0;
}

static void *queue_main(void *arg) {
  struct ublk_queue *q = arg;
  int r = 0;
  /* On the CPUs that submit to this queue, the kernel hands a request
   * over without waking another CPU (with an emulated or busy CPU that
   * wake-up is what the tail latency is made of). */
  if (CPU_COUNT(&q->cpus))
    pthread_setaffinity_np(pthread_self(), sizeof q->cpus, &q->cpus);
  q->adapt = !getenv("TRUENO_UBLK_NO_BATCH");
  guard_touch_stack();
  if (q->ring_deferred)
    r = ring_enable(&q->ring);
  for (int t = 0; t < q->depth && !r; t++)
    r = queue_cmd(q, UBLK_IO_FETCH_REQ, (unsigned)t, 0);
  if (!r) {
    r = io_uring_submit(&q->ring);
    r = r < 0 ? r : 0;
  }
  /* A refused fetch completes at once; a good one stays with the kernel
   * until a request comes, which cannot happen before START_DEV. */
  struct io_uring_cqe *cqe;
  if (!r && q->ring_deferred)
    io_uring_get_events(&q->ring); /* run what the kernel deferred */
  while (!r && io_uring_peek_cqe(&q->ring, &cqe) == 0) {
    if (cqe->res < 0)
      r = cqe->res;
    io_uring_cqe_seen(&q->ring, cqe);
    q->inflight--;
  }
  q->error = r;
  q->notify(q, false, q->cb_arg);
  /* Until the kernel has aborted every fetch and the workers have
   * nothing of ours.  (An eventfd read still armed is cancelled when the
   * ring is torn down.) */
  while (!q->error && (q->inflight > 0 || q->pending > 0)) {
    r = io_uring_submit_and_wait(&q->ring, 1);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      q->error = r;
      break;
    }
    unsigned head, n = 0, nreq = 0;
    io_uring_for_each_cqe(&q->ring, head, cqe) {
      nreq += cqe->user_data != EFD_TAG;
      complete(q, cqe);
      n++;
    }
    io_uring_cq_advance(&q->ring, n);
    if (nreq && q->adapt)
      adapt_policy(q, nreq);
  }
  q->notify(q, true, q->cb_arg);
  return NULL;
}

int ublk_queue_start(struct ublk_queue *q) {
  int r = pthread_create(&q->thread, NULL, queue_main, q);
  if (r)
    return -r;
  q->started = true;
  return 0;
}

void ublk_queue_join(struct ublk_queue *q) {
  if (q->started)
    pthread_join(q->thread, NULL);
  q->started = false;
}
