/* Concurrent requests against one store, checked against reference models.
 *
 * Phase 1: each thread owns a contiguous region of the device and is the
 * only one to write, trim or zero there, so it can keep an exact model of
 * its region while the others read anywhere.  The first half of a region
 * is "sealed": it only ever holds whole self-checking pages (a header with
 * the page index and a checksum of the rest) or zeros, so a reader from any
 * thread can tell a consistent page from a torn one.  The second half takes
 * anything: sub-page writes of corpus bytes, same-filled words, random bytes,
 * partial trims.  Phase 2: every thread writes and reads the same few pages,
 * where only the engine's locking keeps pages whole.  Phase 3: the threads
 * share a few pages again, each writing and zeroing only its own quarter of
 * every page: an engine whose read-modify-write of a partial page is not
 * atomic loses other threads' bytes, which the exact models catch.
 *
 * TRUENO_STRESS_OPS sets the operations per thread and phase (default
 * 50000; use a few hundred under valgrind).
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test-common.h"
#include "trueno.h"

#define PG TRUENO_PAGE_SIZE
#define NTHREADS 4
#define NPAGES 2048u
#define REGION (NPAGES / NTHREADS) /* pages owned by one thread */
#define SEALED (REGION / 2)        /* the sealed half comes first */
#define HAMMER_PAGES 8u            /* phase 2 shares pages [0, 8) */
#define STRIPED0 HAMMER_PAGES      /* phase 3 shares the next 8 pages */
#define STRIPE (PG / NTHREADS)     /* bytes of each page a thread owns */
#define MAXSPAN 3u /* requests touch 1..3 pages (4 if unaligned) */
#define MAGIC 0x5452534bu

static struct trueno_store *store;
static const uint8_t **corpus_pages; /* every corpus page, for contents */
static size_t ncorpus_pages;
static unsigned long ops_per_thread;
static uint8_t striped_model[HAMMER_PAGES * PG]; /* phase 3's pages */

struct worker {
  pthread_t th;
  unsigned id;
  uint64_t seed;
  uint8_t *model; /* REGION pages: what this thread's region must hold */
  uint64_t seq;   /* versions of this thread's sealed pages */
  unsigned long reads, writes, trims; /* requests made, for the counters */
};

/* A word-at-a-time hash: cheap enough to run on every page read. */
static uint64_t page_hash(const uint8_t *page) {
  uint64_t h = 0xcbf29ce484222325ULL, w;
  for (size_t i = 24; i < PG; i += 8) {
    memcpy(&w, page + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  memcpy(&w, page, 8); /* magic and index */
  h = (h ^ w) * 0x100000001b3ULL;
  memcpy(&w, page + 8, 8); /* version */
  return (h ^ w) * 0x100000001b3ULL;
}

/* Header: u32 magic, u32 page index, u64 version, u64 hash of the rest. */
static void seal_page(struct worker *w, uint8_t *page, uint64_t idx) {
  switch (tc_below(&w->seed, 4)) {
  case 0: /* real memory: mostly compressible */
    memcpy(page, corpus_pages[tc_below(&w->seed, ncorpus_pages)], PG);
    break;
  case 1: /* incompressible: stored raw */
    tc_fill_random(page, PG, &w->seed);
    break;
  case 2: /* sparse: compresses to almost nothing */
    memset(page, 0, PG);
    for (int i = 0; i < 8; i++) {
      uint64_t r = tc_rand(&w->seed);
      memcpy(page + 24 + tc_below(&w->seed, (PG - 32) / 8) * 8, &r, 8);
    }
    break;
  default: /* a corpus page with random bytes sprinkled in */
    memcpy(page, corpus_pages[tc_below(&w->seed, ncorpus_pages)], PG);
    for (int i = 0; i < 64; i++)
      page[tc_below(&w->seed, PG)] = (uint8_t)tc_rand(&w->seed);
  }
  uint32_t magic = MAGIC, pidx = (uint32_t)idx;
  uint64_t ver = ((uint64_t)w->id << 48) | ++w->seq;
  memcpy(page, &magic, 4);
  memcpy(page + 4, &pidx, 4);
  memcpy(page + 8, &ver, 8);
  uint64_t h = page_hash(page);
  memcpy(page + 16, &h, 8);
}

/* A sealed page is whole if it is one self-checking version for its index.
 * Zeros (never written, trimmed) and, where allowed, any same-filled page
 * are whole too; a mix of two versions is not. */
static int page_whole(const uint8_t *page, uint64_t idx, int same_ok) {
  if (same_ok ? tc_page_same_filled(page) : tc_all_zero(page, PG))
    return 1;
  uint32_t magic, pidx;
  uint64_t h;
  memcpy(&magic, page, 4);
  memcpy(&pidx, page + 4, 4);
  memcpy(&h, page + 16, 8);
  return magic == MAGIC && pidx == (uint32_t)idx && h == page_hash(page);
}

static uint64_t region_start(unsigned id) { return (uint64_t)id * REGION; }

static int is_sealed(uint64_t idx) { return idx % REGION < SEALED; }

/* Fills buf with len bytes for device offset off: corpus bytes, a repeated
 * word aligned to the device (so whole pages come out same-filled), random
 * bytes or zeros. */
static void fill_free(struct worker *w, uint8_t *buf, uint64_t len,
                      uint64_t off) {
  switch (tc_below(&w->seed, 4)) {
  case 0:
    for (uint64_t i = 0; i < len; i += PG) {
      const uint8_t *src = corpus_pages[tc_below(&w->seed, ncorpus_pages)];
      memcpy(buf + i, src, len - i < PG ? len - i : PG);
    }
    break;
  case 1: {
    uint64_t word = tc_below(&w->seed, 2)
                        ? tc_rand(&w->seed)
                        : 0x0101010101010101ULL * tc_below(&w->seed, 256);
    for (uint64_t i = 0; i < len; i++)
      buf[i] = (uint8_t)(word >> (8 * ((off + i) % 8)));
    break;
  }
  case 2:
    tc_fill_random(buf, len, &w->seed);
    break;
  default:
    memset(buf, 0, len);
  }
}

/* Checks a read of [off, off+len): own bytes exactly, others' sealed pages
 * (when wholly inside the read) for tearing. */
static void check_read(struct worker *w, const uint8_t *buf, uint64_t len,
                       uint64_t off) {
  uint64_t own0 = region_start(w->id) * PG, own1 = own0 + (uint64_t)REGION * PG;
  uint64_t a = off > own0 ? off : own0, b = off + len < own1 ? off + len : own1;
  if (a < b) {
    size_t d = tc_first_diff(buf + (a - off), w->model + (a - own0), b - a);
    CHECK(d == b - a,
          "thread %u: read(len %" PRIu64 ", off %" PRIu64 ") differs from "
          "its model at device byte %" PRIu64,
          w->id, len, off, a + d);
  }
  for (uint64_t p = (off + PG - 1) / PG; (p + 1) * PG <= off + len; p++) {
    if (p / REGION == w->id || !is_sealed(p))
      continue;
    CHECK(page_whole(buf + (p * PG - off), p, 0),
          "thread %u: torn page %" PRIu64 " (sealed, owner %" PRIu64 ")", w->id,
          p, p / REGION);
  }
}

static void do_read(struct worker *w, uint8_t *buf, uint64_t len,
                    uint64_t off) {
  int rc = trueno_read(store, buf, len, off);
  w->reads++;
  CHECK(rc == 0, "thread %u: read(len %" PRIu64 ", off %" PRIu64 ") = %d",
        w->id, len, off, rc);
  if (rc == 0)
    check_read(w, buf, len, off);
}

static void do_write(struct worker *w, const uint8_t *buf, uint64_t len,
                     uint64_t off) {
  int rc = trueno_write(store, buf, len, off);
  w->writes++;
  CHECK(rc == 0, "thread %u: write(len %" PRIu64 ", off %" PRIu64 ") = %d",
        w->id, len, off, rc);
  memcpy(w->model + (off - region_start(w->id) * PG), buf, len);
}

static void do_release(struct worker *w, uint64_t len, uint64_t off) {
  int zero = (int)tc_below(&w->seed, 2);
  int rc = zero ? trueno_zero(store, len, off) : trueno_trim(store, len, off);
  w->trims++;
  CHECK(rc == 0, "thread %u: %s(len %" PRIu64 ", off %" PRIu64 ") = %d", w->id,
        zero ? "zero" : "trim", len, off, rc);
  memset(w->model + (off - region_start(w->id) * PG), 0, len);
}

/* Extents of the own region: a HOLE or ZERO run must read as zeros. */
static void do_extent(struct worker *w) {
  uint64_t base = region_start(w->id) * PG, size = (uint64_t)REGION * PG;
  uint64_t off = tc_below(&w->seed, size);
  uint64_t len = 1 + tc_below(&w->seed, size - off);
  enum trueno_extent_type t;
  uint64_t run = 0;
  int rc = trueno_extent(store, len, base + off, &t, &run);
  CHECK(rc == 0 && run > 0 && run <= len,
        "thread %u: extent(len %" PRIu64 ", off %" PRIu64 ") = %d run %" PRIu64,
        w->id, len, base + off, rc, run);
  if (rc == 0 && run <= len && t != TRUENO_EXTENT_DATA)
    CHECK(tc_all_zero(w->model + off, run),
          "thread %u: extent type %d over non-zero bytes at %" PRIu64, w->id,
          (int)t, base + off);
}

/* A range of 1..MAXSPAN pages' worth of bytes inside [lo, hi) pages; whole
 * pages if aligned. */
static void pick_range(struct worker *w, uint64_t lo, uint64_t hi, int aligned,
                       uint64_t *len, uint64_t *off) {
  if (aligned) {
    uint64_t p = lo + tc_below(&w->seed, hi - lo);
    uint64_t n = 1 + tc_below(&w->seed, MAXSPAN);
    if (p + n > hi)
      n = hi - p;
    *off = p * PG;
    *len = n * PG;
  } else {
    uint64_t o = lo * PG + tc_below(&w->seed, (hi - lo) * PG);
    uint64_t l = 1 + tc_below(&w->seed, MAXSPAN * PG);
    if (o + l > hi * PG)
      l = hi * PG - o;
    *off = o;
    *len = l;
  }
}

static void *phase1(void *arg) {
  struct worker *w = arg;
  uint8_t buf[(MAXSPAN + 1) * PG];
  uint64_t r0 = region_start(w->id);
  for (unsigned long i = 0; i < ops_per_thread; i++) {
    uint64_t len, off, pick = tc_below(&w->seed, 100);
    if (pick < 30) { /* any bytes of the own region */
      pick_range(w, r0, r0 + REGION, 0, &len, &off);
      do_read(w, buf, len, off);
    } else if (pick < 45) { /* whole pages anywhere */
      pick_range(w, 0, NPAGES, 1, &len, &off);
      do_read(w, buf, len, off);
    } else if (pick < 65) { /* self-checking pages into the sealed half */
      pick_range(w, r0, r0 + SEALED, 1, &len, &off);
      for (uint64_t p = 0; p < len / PG; p++)
        seal_page(w, buf + p * PG, off / PG + p);
      do_write(w, buf, len, off);
    } else if (pick < 85) { /* anything into the free half */
      pick_range(w, r0 + SEALED, r0 + REGION, tc_below(&w->seed, 4) == 0, &len,
                 &off);
      fill_free(w, buf, len, off);
      do_write(w, buf, len, off);
    } else if (pick < 90) {
      pick_range(w, r0, r0 + SEALED, 1, &len, &off);
      do_release(w, len, off);
    } else if (pick < 97) {
      pick_range(w, r0 + SEALED, r0 + REGION, 0, &len, &off);
      do_release(w, len, off);
    } else {
      do_extent(w);
    }
  }
  return NULL;
}

/* Everyone on pages [0, HAMMER_PAGES): whole-page writes of self-checking or
 * same-filled pages, trims, and reads that must never see a torn page. */
static void *phase2(void *arg) {
  struct worker *w = arg;
  uint8_t buf[2 * PG];
  for (unsigned long i = 0; i < ops_per_thread; i++) {
    uint64_t p = tc_below(&w->seed, HAMMER_PAGES);
    uint64_t n = p + 1 < HAMMER_PAGES ? 1 + tc_below(&w->seed, 2) : 1;
    uint64_t pick = tc_below(&w->seed, 100);
    int rc;
    if (pick < 40) {
      for (uint64_t k = 0; k < n; k++)
        seal_page(w, buf + k * PG, p + k);
      rc = trueno_write(store, buf, n * PG, p * PG);
      w->writes++;
    } else if (pick < 50) {
      tc_fill_word(buf, n * PG, tc_rand(&w->seed));
      rc = trueno_write(store, buf, n * PG, p * PG);
      w->writes++;
    } else if (pick < 55) {
      rc = tc_below(&w->seed, 2) ? trueno_trim(store, n * PG, p * PG)
                                 : trueno_zero(store, n * PG, p * PG);
      w->trims++;
    } else {
      rc = trueno_read(store, buf, n * PG, p * PG);
      w->reads++;
      for (uint64_t k = 0; rc == 0 && k < n; k++)
        CHECK(page_whole(buf + k * PG, p + k, 1),
              "thread %u: torn shared page %" PRIu64, w->id, p + k);
    }
    CHECK(rc == 0, "thread %u: shared-page request (kind %" PRIu64 ") = %d",
          w->id, pick, rc);
  }
  return NULL;
}

/* Sub-page requests inside the own quarter of the shared pages. */
static void *phase3(void *arg) {
  struct worker *w = arg;
  uint8_t buf[STRIPE];
  for (unsigned long i = 0; i < ops_per_thread; i++) {
    uint64_t p = tc_below(&w->seed, HAMMER_PAGES);
    uint64_t o = w->id * STRIPE + tc_below(&w->seed, STRIPE);
    uint64_t len = 1 + tc_below(&w->seed, (w->id + 1) * STRIPE - o);
    uint64_t off = (STRIPED0 + p) * PG + o;
    uint8_t *model = striped_model + p * PG + o;
    uint64_t pick = tc_below(&w->seed, 100);
    int rc;
    if (pick < 45) {
      fill_free(w, buf, len, off);
      rc = trueno_write(store, buf, len, off);
      w->writes++;
      if (rc == 0)
        memcpy(model, buf, len);
    } else if (pick < 55) {
      rc = tc_below(&w->seed, 2) ? trueno_trim(store, len, off)
                                 : trueno_zero(store, len, off);
      w->trims++;
      if (rc == 0)
        memset(model, 0, len);
    } else {
      rc = trueno_read(store, buf, len, off);
      w->reads++;
      size_t d = rc ? 0 : tc_first_diff(buf, model, len);
      CHECK(rc || d == len,
            "thread %u: own bytes of shared page %" PRIu64
            " lost: device byte %" PRIu64,
            w->id, STRIPED0 + p, off + d);
    }
    CHECK(rc == 0, "thread %u: striped request (kind %" PRIu64 ") = %d", w->id,
          pick, rc);
  }
  return NULL;
}

static void run_threads(struct worker *ws, void *(*fn)(void *)) {
  for (unsigned i = 0; i < NTHREADS; i++)
    if (pthread_create(&ws[i].th, NULL, fn, &ws[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(1);
    }
  for (unsigned i = 0; i < NTHREADS; i++)
    pthread_join(ws[i].th, NULL);
}

/* The counters must equal the requests made: no increment lost to a race. */
static void check_counters(const struct worker *ws, unsigned long extra_reads,
                           const char *what) {
  unsigned long r = extra_reads, wr = 0, t = 0;
  for (unsigned i = 0; i < NTHREADS; i++) {
    r += ws[i].reads;
    wr += ws[i].writes;
    t += ws[i].trims;
  }
  struct trueno_stats s;
  trueno_get_stats(store, &s);
  CHECK(s.reads == r && s.writes == wr && s.trims == t,
        "%s: reads %" PRIu64 " writes %" PRIu64 " trims %" PRIu64
        ", want %lu %lu %lu",
        what, s.reads, s.writes, s.trims, r, wr, t);
  CHECK(s.failed_reads == 0 && s.failed_writes == 0,
        "%s: failed reads %" PRIu64 " writes %" PRIu64, what, s.failed_reads,
        s.failed_writes);
}

/* After phase 1: contents, extents and page-kind counts versus the models. */
static void check_final(struct worker *ws, enum trueno_algorithm alg) {
  uint8_t *buf = malloc((size_t)REGION * PG);
  if (!buf)
    exit(1);
  uint64_t nonsame = 0, same_nonzero = 0, same_any = 0;
  for (unsigned i = 0; i < NTHREADS; i++) {
    uint64_t off = region_start(i) * PG, len = (uint64_t)REGION * PG;
    int rc = trueno_read(store, buf, len, off);
    size_t d = tc_first_diff(buf, ws[i].model, len);
    CHECK(rc == 0 && d == len,
          "final: region %u = %d, differs at device byte %" PRIu64, i, rc,
          off + d);
    for (uint64_t p = 0; p < REGION; p++) {
      const uint8_t *pg = ws[i].model + p * PG;
      if (!tc_page_same_filled(pg))
        nonsame++;
      else {
        same_any++;
        same_nonzero += !tc_all_zero(pg, 8);
      }
    }
  }
  /* Walk the extents of the whole device. */
  for (uint64_t off = 0; off < (uint64_t)NPAGES * PG;) {
    enum trueno_extent_type t;
    uint64_t run = 0;
    int rc = trueno_extent(store, (uint64_t)NPAGES * PG - off, off, &t, &run);
    CHECK(rc == 0 && run > 0 && run % PG == 0,
          "final: extent at %" PRIu64 " = %d run %" PRIu64, off, rc, run);
    if (rc || run == 0 || run % PG)
      break;
    for (uint64_t p = off / PG; p < (off + run) / PG; p++) {
      const uint8_t *pg = ws[p / REGION].model + (p % REGION) * PG;
      CHECK((t == TRUENO_EXTENT_DATA) == !tc_all_zero(pg, PG),
            "final: page %" PRIu64 " has extent type %d", p, (int)t);
    }
    off += run;
  }
  struct trueno_stats s;
  trueno_get_stats(store, &s);
  /* A page that is not same-filled must hold a payload; a non-zero
   * same-filled page must be a same page; a zero page may be a hole. */
  CHECK(s.alg_pages[alg] + s.huge_pages == nonsame,
        "final: compressed %" PRIu64 " + raw %" PRIu64 " != %" PRIu64
        " pages with data",
        s.alg_pages[alg], s.huge_pages, nonsame);
  CHECK(s.same_pages >= same_nonzero && s.same_pages <= same_any,
        "final: same_pages %" PRIu64 " not in [%" PRIu64 ", %" PRIu64 "]",
        s.same_pages, same_nonzero, same_any);
  CHECK(s.pages_stored == s.alg_pages[alg] + s.huge_pages + s.same_pages &&
            s.orig_data_size == s.pages_stored * PG,
        "final: stored %" PRIu64 " orig %" PRIu64, s.pages_stored,
        s.orig_data_size);
  CHECK(s.compr_data_size >= s.huge_pages * PG &&
            s.compr_data_size <= (s.huge_pages + s.alg_pages[alg]) * PG &&
            s.mem_used_total >= s.compr_data_size &&
            s.mem_used_max >= s.mem_used_total,
        "final: compr %" PRIu64 " mem_used %" PRIu64 " max %" PRIu64,
        s.compr_data_size, s.mem_used_total, s.mem_used_max);
  free(buf);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void stress(enum trueno_algorithm alg) {
  struct trueno_config cfg = {.size = (uint64_t)NPAGES * PG, .algorithm = alg};
  int rc = trueno_store_create(&cfg, &store);
  CHECK(rc == 0, "%s: store_create = %d", trueno_algorithm_name(alg), rc);
  if (rc)
    return;
  struct worker ws[NTHREADS];
  memset(ws, 0, sizeof ws);
  for (unsigned i = 0; i < NTHREADS; i++) {
    ws[i].id = i;
    ws[i].seed = 0x9e3779b97f4a7c15ULL * (i + 1) + alg;
    ws[i].model = calloc(REGION, PG);
    if (!ws[i].model)
      exit(1);
  }
  double t0 = now();
  run_threads(ws, phase1);
  double t1 = now();
  check_counters(ws, 0, "phase 1");
  check_final(ws, alg);
  unsigned long extra = NTHREADS; /* check_final's region reads */

  run_threads(ws, phase2);
  double t2 = now();
  uint8_t buf[HAMMER_PAGES * PG];
  rc = trueno_read(store, buf, sizeof buf, 0);
  extra++;
  CHECK(rc == 0, "phase 2: final read = %d", rc);
  for (uint64_t p = 0; p < HAMMER_PAGES; p++)
    CHECK(page_whole(buf + p * PG, p, 1), "phase 2: page %" PRIu64 " torn", p);
  check_counters(ws, extra, "phase 2");

  /* Phase 3 starts from zeros on its pages. */
  rc = trueno_trim(store, HAMMER_PAGES * PG, STRIPED0 * PG);
  CHECK(rc == 0, "phase 3: trim = %d", rc);
  memset(striped_model, 0, sizeof striped_model);
  run_threads(ws, phase3);
  double t3 = now();
  rc = trueno_read(store, buf, sizeof buf, STRIPED0 * PG);
  size_t d = tc_first_diff(buf, striped_model, sizeof buf);
  CHECK(rc == 0 && d == sizeof buf,
        "phase 3: shared pages = %d, differ at device byte %" PRIu64, rc,
        STRIPED0 * PG + d);
  ws[0].trims++; /* the trim and the read above */
  extra++;
  check_counters(ws, extra, "phase 3");
  printf("%s: %d threads x %lu ops: phase 1 %.2f s, phase 2 %.2f s, "
         "phase 3 %.2f s\n",
         trueno_algorithm_name(alg), NTHREADS, ops_per_thread, t1 - t0, t2 - t1,
         t3 - t2);
  for (unsigned i = 0; i < NTHREADS; i++)
    free(ws[i].model);
  trueno_store_destroy(store);
  store = NULL;
}

int main(void) {
  ops_per_thread = tc_env_ulong("TRUENO_STRESS_OPS", 50000);
  struct tc_corpus c;
  tc_corpus_load(&c);
  for (size_t i = 0; i < c.nfiles; i++)
    ncorpus_pages += c.files[i].npages;
  corpus_pages = malloc(ncorpus_pages * sizeof *corpus_pages);
  if (!corpus_pages)
    exit(1);
  for (size_t i = 0, k = 0; i < c.nfiles; i++)
    for (size_t p = 0; p < c.files[i].npages; p++)
      corpus_pages[k++] = c.files[i].data + p * PG;

  stress(TRUENO_ALG_LZ4);
  stress(TRUENO_ALG_ZSTD);

  free(corpus_pages);
  tc_corpus_free(&c);
  return tc_finish();
}
