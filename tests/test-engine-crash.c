/* A persistent store killed at any instant (docs/persistence.md): a child
 * attaches to the state and, on two threads, writes random pages
 * (incompressible, compressible, same-filled) and trims, while one of
 * them also compacts, recompresses and makes cold groups; it tells the
 * parent over a pipe what it is about to write and what was acknowledged.
 * The parent SIGKILLs it at a random instant, attaches, and checks that
 * every acknowledged write reads back, that every page reads its old or
 * its new content, and that the stats match the pages; then a new child
 * goes on from the attached state.  TRUENO_CRASH_ROUNDS kills (default
 * 60) for each algorithm.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* memfd_create */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"
#include "trueno.h"

#define PG TRUENO_PAGE_SIZE
#define NPAGES 2048u
#define MAX_RUN 4u

enum { MSG_READY, MSG_BEGIN, MSG_ACK };

struct msg {
  uint32_t type, page, n, pad;
  uint64_t ver; /* of the first page; page + i gets ver + i */
};

/* A version's content, made again from its number: kind by hash, bytes
 * from a PRNG seeded by it.  Version 0 (never written) and trims read as
 * zeros. */
static int is_trim(uint64_t ver) { return ver && ver % 13 == 5; }

static void content(uint64_t ver, uint8_t *page) {
  if (ver == 0 || is_trim(ver)) {
    memset(page, 0, PG);
    return;
  }
  uint64_t seed = ver * 0x9e3779b97f4a7c15ull + 1;
  switch (ver % 4) {
  case 0: /* same-filled, now and then zeros */
    tc_fill_word(page, PG, ver % 3 ? tc_rand(&seed) : 0);
    break;
  case 1: /* incompressible: stored raw */
    tc_fill_random(page, PG, &seed);
    break;
  default: /* compressible, of many sizes: many arena classes */
    memset(page, 0, PG);
    tc_fill_random(page, 16 + tc_below(&seed, 3000), &seed);
  }
}

static enum trueno_algorithm alg;

static struct trueno_config config(int fd) {
  return (struct trueno_config){.size = (uint64_t)NPAGES * PG,
                                .algorithm = alg,
                                .recompress = TRUENO_RECOMPRESS_ZSTD,
                                .group_pages = TRUENO_GROUP_PAGES,
                                .persist = 1,
                                .state_fd = fd};
}

static void send_msg(int wfd, uint32_t type, uint32_t page, uint32_t n,
                     uint64_t ver) {
  struct msg m = {type, page, n, 0, ver};
  if (write(wfd, &m, sizeof m) != (ssize_t)sizeof m)
    _exit(3);
}

/* A writer thread of the child: NWRITERS of them, writer t owning the
 * blocks of 64 pages whose number is t modulo NWRITERS, so that a page
 * has one write in flight at most.  Versions are unique over the whole
 * run: the round and the writer in the top bits.  Writer 0 also compacts,
 * recompresses and groups, alongside the others' writes. */
#define NWRITERS 2u
#define BLOCK 64u

struct writer {
  struct trueno_store *st;
  int wfd;
  unsigned round, t;
};

static void *writer(void *arg) {
  const struct writer *w = arg;
  struct trueno_store *st = w->st;
  uint64_t seed = w->round * 7919 + w->t * 104729 + 17;
  uint64_t ver = ((uint64_t)w->round + 1) << 32 | (uint64_t)w->t << 31;
  uint8_t *buf = malloc((size_t)MAX_RUN * PG);
  for (uint64_t op = 0;; op++) {
    uint32_t n = tc_below(&seed, 4) ? 1 : 1 + (uint32_t)tc_below(&seed, MAX_RUN);
    uint32_t block =
        (uint32_t)tc_below(&seed, NPAGES / BLOCK / NWRITERS) * NWRITERS + w->t;
    uint32_t page = block * BLOCK + (uint32_t)tc_below(&seed, BLOCK - n + 1);
    /* A run is all trims or all writes: else a single page. */
    ver++;
    int trim = is_trim(ver);
    for (uint32_t i = 1; i < n; i++)
      if (is_trim(ver + i) != trim)
        n = 1;
    send_msg(w->wfd, MSG_BEGIN, page, n, ver);
    int r;
    if (trim) {
      r = trueno_trim(st, (uint64_t)n * PG, (uint64_t)page * PG);
    } else {
      for (uint32_t i = 0; i < n; i++)
        content(ver + i, buf + (size_t)i * PG);
      r = trueno_write(st, buf, (uint64_t)n * PG, (uint64_t)page * PG);
    }
    if (r)
      _exit(4);
    send_msg(w->wfd, MSG_ACK, page, n, ver);
    ver += n - 1;
    if (w->t)
      continue;
    if (op % 97 == 50)
      trueno_compact(st);
    if (op % 89 == 40)
      trueno_recompress(st, 0, 256, 32);
    if (op % 83 == 30)
      trueno_group(st, 0, 512, 128);
  }
  return NULL;
}

/* The child: attaches and writes until killed. */
static void child(int fd, int wfd, unsigned round) {
  struct trueno_config cfg = config(fd);
  struct trueno_store *st;
  char why[256];
  if (trueno_store_attach(fd, &cfg, &st, why, sizeof why)) {
    fprintf(stderr, "child %u: %s\n", round, why);
    _exit(2);
  }
  send_msg(wfd, MSG_READY, 0, 0, 0);
  struct writer w[NWRITERS];
  pthread_t tid;
  for (unsigned t = 0; t < NWRITERS; t++) {
    w[t] = (struct writer){st, wfd, round, t};
    if (t && pthread_create(&tid, NULL, writer, &w[t]))
      _exit(5);
  }
  writer(&w[0]);
}

struct model {
  uint64_t cur[NPAGES];     /* acknowledged (or found) version */
  uint64_t pending[NPAGES]; /* in flight at the kill, else UINT64_MAX */
  unsigned long acks, in_flight_new;
  uint64_t groups_max; /* cold groups found at an attach, at most */
};

static void apply(struct model *m, const struct msg *g) {
  for (uint32_t i = 0; i < g->n && g->page + i < NPAGES; i++) {
    if (g->type == MSG_BEGIN)
      m->pending[g->page + i] = g->ver + i;
    else if (g->type == MSG_ACK) {
      m->acks += i == 0;
      m->cur[g->page + i] = g->ver + i;
      m->pending[g->page + i] = UINT64_MAX;
    }
  }
}

/* Reads what the pipe has, into the model; 1 at end of file. */
static int drain(int rfd, struct model *m, int *ready, int wait_ms) {
  struct pollfd p = {rfd, POLLIN, 0};
  if (poll(&p, 1, wait_ms) <= 0)
    return 0;
  struct msg g[256];
  ssize_t n = read(rfd, g, sizeof g);
  if (n <= 0)
    return 1;
  for (ssize_t i = 0; i < n / (ssize_t)sizeof *g; i++) {
    if (g[i].type == MSG_READY)
      *ready = 1;
    apply(m, &g[i]);
  }
  return 0;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Attaches in the parent and checks every page against the model; the
 * page found becomes the model's current version. */
static void verify(int fd, struct model *m, unsigned round) {
  struct trueno_config cfg = config(fd);
  struct trueno_store *st;
  char why[256];
  int r = trueno_store_attach(fd, &cfg, &st, why, sizeof why);
  CHECK(r == 0, "round %u: attach = %d (%s)", round, r, why);
  if (r)
    exit(tc_finish());
  uint8_t got[PG], want[PG];
  uint64_t stored = 0;
  unsigned bad = 0;
  for (uint32_t i = 0; i < NPAGES; i++) {
    r = trueno_read(st, got, PG, (uint64_t)i * PG);
    content(m->cur[i], want);
    int old_ok = r == 0 && !memcmp(got, want, PG), new_ok = 0;
    if (m->pending[i] != UINT64_MAX) {
      content(m->pending[i], want);
      new_ok = r == 0 && !memcmp(got, want, PG);
      if (new_ok && !old_ok) {
        m->cur[i] = m->pending[i];
        m->in_flight_new++;
      }
      if (new_ok && old_ok) {
        /* Same bytes (zeros): the extent tells a trim from a page. */
        enum trueno_extent_type t;
        uint64_t len;
        trueno_extent(st, PG, (uint64_t)i * PG, &t, &len);
        int hole = t == TRUENO_EXTENT_HOLE;
        int cur_hole = !m->cur[i] || is_trim(m->cur[i]);
        if (hole != cur_hole)
          m->cur[i] = m->pending[i];
      }
      m->pending[i] = UINT64_MAX;
    }
    if (!old_ok && !new_ok && bad++ < 5)
      CHECK(0, "round %u: page %u reads neither version %" PRIx64
               " nor the one in flight (read %d)",
            round, i, m->cur[i], r);
    stored += m->cur[i] && !is_trim(m->cur[i]);
  }
  CHECK(bad == 0, "round %u: %u pages wrong", round, bad);
  struct trueno_stats s;
  trueno_get_stats(st, &s);
  /* A trim in flight may have reached the page or not: either reads as
   * zeros, but only one of them is a stored page.  So count from what
   * was found where it matters. */
  CHECK(s.pages_stored == stored || bad,
        "round %u: pages_stored %" PRIu64 ", the model says %" PRIu64, round,
        s.pages_stored, stored);
  if (s.groups > m->groups_max)
    m->groups_max = s.groups;
  CHECK(s.mem_used_total >= s.compr_data_size,
        "round %u: mem_used %" PRIu64 " < payload %" PRIu64, round,
        s.mem_used_total, s.compr_data_size);
  trueno_store_destroy(st);
}

/* One state of algorithm a, killed rounds times. */
static void run(unsigned rounds) {
  int fd = memfd_create("trueno-crash-state", 0);
  if (fd < 0) {
    perror("memfd_create");
    exit(1);
  }
  struct trueno_config cfg = config(fd);
  struct trueno_store *st;
  CHECK(trueno_store_create(&cfg, &st) == 0, "create");
  trueno_store_destroy(st);
  struct model *m = calloc(1, sizeof *m);
  memset(m->pending, 0xff, sizeof m->pending);
  uint64_t seed = 1234 + alg;
  double t0 = now();
  for (unsigned round = 0; round < rounds; round++) {
    int p[2];
    if (pipe(p)) {
      perror("pipe");
      exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      child(fd, p[1], round);
    }
    close(p[1]);
    /* Most kills land among the writes; one in eight during the attach
     * (a kill there must leave the state as it was). */
    int ready = 0, eof = 0;
    double delay = (1 + tc_below(&seed, 30)) / 1000.0, start = now();
    int early = tc_below(&seed, 8) == 0;
    if (early) {
      while (!eof && now() < start + tc_below(&seed, 3000) / 1e6)
        eof = drain(p[0], m, &ready, 0);
    } else {
      while (!eof && !ready && now() < start + 10.0)
        eof = drain(p[0], m, &ready, 1);
      for (start = now(); !eof && now() < start + delay;)
        eof = drain(p[0], m, &ready, 1);
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
          "round %u: child ended with status %d", round, status);
    while (!drain(p[0], m, &ready, 0))
      ;
    close(p[0]);
    verify(fd, m, round);
  }
  printf("%s: %u kills in %.1f s, %lu writes acknowledged, %lu pages found "
         "with the write in flight at the kill, up to %" PRIu64
         " cold groups\n",
         trueno_algorithm_name(alg), rounds, now() - t0, m->acks,
         m->in_flight_new, m->groups_max);
  CHECK(m->groups_max > 0 || rounds < 20, "no cold group was ever made");
  free(m);
  close(fd);
}

int main(void) {
  unsigned rounds = (unsigned)tc_env_ulong("TRUENO_CRASH_ROUNDS", 60);
  for (alg = 0; alg < TRUENO_ALG_COUNT; alg++)
    run(rounds);
  return tc_finish();
}
