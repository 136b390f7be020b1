/* The engine's batch hook (trueno_store_set_batch_codec) with a batch codec
 * on the CPU (lz4page, packed as a device would pack), so the path runs
 * under ASan and valgrind without OpenCL: a store fed through the hook
 * holds exactly the data and the counters of a store that compressed
 * every page itself; requests with unaligned edges; a codec that fails
 * (the engine compresses on the CPU, nothing lost); a codec whose
 * offsets point past its output (not believed: the CPU compresses); a
 * request longer than TRUENO_BATCH_MAX_PAGES (cut into batches); a codec
 * that flags every page raw; the memory limit (pages before the failing one are new, the
 * rest old); stores that refuse a batch codec.
 *
 * Batch reads (the codec's decompress): reads of every shape hold what
 * was written, whole-page runs of >= min_pages go to the codec in one
 * call with only the LZ4 pages' blocks (same-filled, raw, never written
 * and trimmed pages decoded on the CPU), shorter ones stay on the CPU; a
 * decompress that fails leaves the CPU decoding the copies (counted as a
 * read fallback); readers batch-reading while writers rewrite and trim
 * the same pages always see each page whole, as one of its versions.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lz4page.h"
#include "test-common.h"
#include "trueno.h"

#define PG TRUENO_PAGE_SIZE

struct fake {
  int calls, fail, all_raw, lie;
  size_t pages, max_n;
  /* Reads may run in many threads. */
  _Atomic int dec_calls, dec_fail, dec_bad;
  _Atomic size_t dec_pages;
};

static int fake_decompress(void *ctx, const void *src, const uint32_t *off,
                           const uint32_t *len, size_t n, void *pages) {
  struct fake *f = ctx;
  f->dec_calls++;
  if (f->dec_fail)
    return -EIO;
  for (size_t i = 0; i < n; i++) {
    /* Only blocks: never an empty or over-long one. */
    if (len[i] == 0 || len[i] > 3584 ||
        lz4page_decompress((const uint8_t *)src + off[i], (int)len[i],
                           (uint8_t *)pages + i * PG) != 0) {
      f->dec_bad++;
      return -EBADMSG;
    }
  }
  f->dec_pages += n;
  return 0;
}

static int fake_compress(void *ctx, const void *pages, size_t n, unsigned cap,
                         void *dst, uint32_t *off, uint32_t *len) {
  struct fake *f = ctx;
  f->calls++;
  if (n > f->max_n)
    f->max_n = n;
  if (f->fail)
    return -EIO;
  static struct lz4page_state state;
  uint8_t *out = dst;
  uint32_t at = 0;
  for (size_t i = 0; i < n; i++) {
    int l = f->all_raw ? 0
                       : lz4page_compress(&state, (const uint8_t *)pages + i * PG,
                                          out + at, (int)cap);
    off[i] = at;
    len[i] = (uint32_t)l;
    at += (uint32_t)l;
  }
  if (f->lie && n) { /* a block past the end of dst */
    off[n - 1] = (uint32_t)(n * cap);
    len[n - 1] = len[n - 1] ? len[n - 1] : 1;
  }
  f->pages += n;
  return 0;
}

static struct trueno_store *store(size_t npages, uint64_t limit) {
  struct trueno_config cfg = {.size = (uint64_t)npages * PG,
                              .algorithm = TRUENO_ALG_LZ4,
                              .mem_limit = limit};
  struct trueno_store *st = NULL;
  int r = trueno_store_create(&cfg, &st);
  CHECK(r == 0, "store_create: %d", r);
  return st;
}

/* Writes data in requests of 37 pages from byte 1000 on (edges unaligned),
 * then checks the store's contents. */
static void fill_and_check(struct trueno_store *st, const uint8_t *data,
                           size_t npages, const char *what) {
  size_t len = (npages - 1) * PG, step = 37 * PG;
  for (size_t at = 0; at < len; at += step) {
    size_t n = len - at < step ? len - at : step;
    int r = trueno_write(st, data + at, n, 1000 + at);
    CHECK(r == 0, "%s: write at %zu: %d", what, at, r);
  }
  uint8_t *back = malloc(len);
  CHECK(trueno_read(st, back, len, 1000) == 0, "%s: read", what);
  CHECK(memcmp(back, data, len) == 0, "%s: contents differ", what);
  free(back);
}

/* fill_and_check through a fresh store with batch codec bc; its stats. */
static void run_with(const struct trueno_batch_codec *bc, const uint8_t *data,
                     size_t npages, const char *what, struct trueno_stats *s) {
  struct trueno_store *st = store(npages, 0);
  if (!st)
    return;
  trueno_store_set_batch_codec(st, bc);
  fill_and_check(st, data, npages, what);
  trueno_get_stats(st, s);
  trueno_store_destroy(st);
}

/* Page i of the mixed set: LZ4 (text), same-filled, raw (random), never
 * written, trimmed, in turn. */
enum { MIX_TEXT, MIX_SAME, MIX_RAW, MIX_HOLE, MIX_TRIM, MIX_KINDS };

static void mixed_page(uint8_t *pg, size_t i, uint64_t *seed) {
  switch (i % MIX_KINDS) {
  case MIX_TEXT:
    for (unsigned k = 0; k < PG; k++)
      pg[k] = (uint8_t)("batch reads of lz4 pages "[(k + i) % 25]);
    break;
  case MIX_SAME:
    tc_fill_word(pg, PG, 0x0101010101010101ull * (i & 0xff));
    break;
  case MIX_RAW:
    tc_fill_random(pg, PG, seed);
    break;
  default:
    memset(pg, 0, PG);
  }
}

/* Reads [from, from + len) in requests of req bytes; checks the contents
 * against want. */
static void read_check(struct trueno_store *st, const uint8_t *want,
                       size_t from, size_t len, size_t req, const char *what) {
  uint8_t *back = malloc(req);
  for (size_t at = from; at < from + len; at += req) {
    size_t n = from + len - at < req ? from + len - at : req;
    memset(back, 0xee, n);
    int r = trueno_read(st, back, n, at);
    CHECK(r == 0 && memcmp(back, want + at, n) == 0,
          "%s: read of %zu bytes at %zu: %d, differs at %zu", what, n, at, r,
          tc_first_diff(back, want + at, n));
  }
  free(back);
}

static void batch_reads(void) {
  enum { N = 500 };
  typedef unsigned long long ull;
  uint8_t *want = malloc(N * PG);
  uint64_t seed = 11;
  size_t text = 0;
  for (size_t i = 0; i < N; i++) {
    mixed_page(want + i * PG, i, &seed);
    text += i % MIX_KINDS == MIX_TEXT;
  }
  struct fake f = {0};
  struct trueno_batch_codec bc = {.compress = fake_compress,
                                  .decompress = fake_decompress,
                                  .ctx = &f, .min_pages = 8};
  struct trueno_store *st = store(N, 0);
  CHECK(trueno_store_set_batch_codec(st, &bc) == 0, "set batch codec");
  for (size_t i = 0; i < N; i++) {
    int k = (int)(i % MIX_KINDS);
    if (k != MIX_HOLE)
      CHECK(trueno_write(st, want + i * PG, PG, i * PG) == 0, "write %zu", i);
    if (k == MIX_TRIM)
      CHECK(trueno_trim(st, PG, i * PG) == 0, "trim %zu", i);
  }
  struct trueno_stats s;
  read_check(st, want, 0, N * PG, N * PG, "one read of everything");
  trueno_get_stats(st, &s);
  CHECK(f.dec_calls == 1 && f.dec_pages == text &&
            s.offload_read_batches == 1 && s.offload_read_pages == text &&
            s.offload_read_fallbacks == 0 && s.pages_read == N,
        "one read: %d calls, %zu of %zu text pages; stats %llu batches, %llu "
        "pages, %llu fallbacks, %llu pages read",
        f.dec_calls, (size_t)f.dec_pages, text, (ull)s.offload_read_batches,
        (ull)s.offload_read_pages, (ull)s.offload_read_fallbacks,
        (ull)s.pages_read);
  /* Requests of 8 pages (batched), 7 (not) and unaligned ones (the whole
   * pages inside them batched, the edges on the CPU). */
  int calls = f.dec_calls;
  read_check(st, want, 0, N * PG, 8 * PG, "8-page reads");
  CHECK(f.dec_calls > calls, "8-page reads batched");
  calls = f.dec_calls;
  read_check(st, want, 0, N * PG, 7 * PG, "7-page reads");
  CHECK(f.dec_calls == calls, "7-page reads not batched");
  read_check(st, want, 100, N * PG - 200, 20 * PG + 300, "unaligned reads");
  CHECK(f.dec_calls > calls && f.dec_bad == 0, "unaligned reads batched");
  /* A decompress that fails: the engine decodes the copies. */
  f.dec_fail = 1;
  trueno_get_stats(st, &s);
  uint64_t fb = s.offload_read_fallbacks;
  read_check(st, want, 0, N * PG, 64 * PG, "failing decompress");
  trueno_get_stats(st, &s);
  CHECK(s.offload_read_fallbacks > fb && s.failed_reads == 0,
        "failing decompress: %llu fallbacks, %llu failed reads",
        (ull)(s.offload_read_fallbacks - fb), (ull)s.failed_reads);
  trueno_store_destroy(st);
  free(want);
}

/* Concurrent batch reads and rewrites.  Page content: a header (page,
 * version) and a body made from it, compressible or (one version in 5)
 * random; a trimmed page reads as zeros. */
#define RACE_PAGES 256
struct race {
  struct trueno_store *st;
  uint64_t seed;
  unsigned long ops;
  _Atomic int *stop;
};

static void version_page(uint8_t *pg, uint64_t idx, uint64_t ver) {
  uint64_t seed = idx * 1000003 + ver + 1;
  if (ver % 5 == 4) {
    tc_fill_random(pg, PG, &seed);
  } else {
    for (unsigned k = 0; k < PG; k++)
      pg[k] = (uint8_t)('a' + (k / 16 + idx + ver) % 7);
  }
  memcpy(pg, &idx, 8);
  memcpy(pg + 8, &ver, 8);
}

static void *race_writer(void *arg) {
  struct race *w = arg;
  uint8_t *buf = malloc(16 * PG);
  for (unsigned long op = 0; op < w->ops; op++) {
    uint64_t n = 1 + tc_below(&w->seed, 16);
    uint64_t at = tc_below(&w->seed, RACE_PAGES - n + 1);
    if (tc_below(&w->seed, 8) == 0) {
      CHECK(trueno_trim(w->st, n * PG, at * PG) == 0, "race trim");
      continue;
    }
    for (uint64_t i = 0; i < n; i++)
      version_page(buf + i * PG, at + i, tc_rand(&w->seed) & 0xffff);
    CHECK(trueno_write(w->st, buf, n * PG, at * PG) == 0, "race write");
  }
  free(buf);
  atomic_fetch_add(w->stop, 1);
  return NULL;
}

static void *race_reader(void *arg) {
  struct race *w = arg;
  uint8_t *buf = malloc(64 * PG), want[PG];
  while (atomic_load(w->stop) < 2) {
    uint64_t n = 17 + tc_below(&w->seed, 48);
    uint64_t at = tc_below(&w->seed, RACE_PAGES - n + 1);
    int r = trueno_read(w->st, buf, n * PG, at * PG);
    CHECK(r == 0, "race read: %d", r);
    for (uint64_t i = 0; !r && i < n; i++) {
      const uint8_t *pg = buf + i * PG;
      uint64_t idx, ver;
      memcpy(&idx, pg, 8);
      memcpy(&ver, pg + 8, 8);
      if (tc_all_zero(pg, PG))
        continue;
      version_page(want, idx, ver);
      if (idx != at + i || memcmp(pg, want, PG) != 0) {
        CHECK(0, "race: page %llu read torn (header says page %llu "
                 "version %llu)",
              (unsigned long long)(at + i), (unsigned long long)idx,
              (unsigned long long)ver);
        break;
      }
    }
  }
  free(buf);
  return NULL;
}

static void batch_read_race(void) {
  struct fake f = {0};
  struct trueno_batch_codec bc = {.compress = fake_compress,
                                  .decompress = fake_decompress,
                                  .ctx = &f, .min_pages = 17};
  struct trueno_store *st = store(RACE_PAGES, 0);
  bc.compress = NULL;
  CHECK(trueno_store_set_batch_codec(st, &bc) == -EINVAL,
        "decompress alone refused");
  /* Writes (<= 16 pages) stay on the CPU: fake_compress is not
   * thread-safe; reads (>= 17) go through the codec. */
  bc.compress = fake_compress;
  CHECK(trueno_store_set_batch_codec(st, &bc) == 0, "set batch codec");
  _Atomic int stop = 0;
  unsigned long ops = tc_env_ulong("TRUENO_STRESS_OPS", 20000) / 4;
  struct race w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (struct race){.st = st, .seed = 99 + (uint64_t)i, .ops = ops,
                         .stop = &stop};
    pthread_create(&th[i], NULL, i < 2 ? race_writer : race_reader, &w[i]);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  CHECK(f.dec_calls > 0 && f.dec_bad == 0 && f.calls == 0,
        "race: %d batch reads, %d bad, %d write batches", (int)f.dec_calls,
        (int)f.dec_bad, f.calls);
  printf("race: %d batch reads of %zu pages\n", (int)f.dec_calls,
         (size_t)f.dec_pages);
  trueno_store_destroy(st);
}

int main(void) {
  struct tc_corpus c;
  tc_corpus_load(&c);
  const struct tc_corpus_file *cf = &c.files[0];
  size_t n = cf->npages < 1024 ? cf->npages : 1024;
  typedef unsigned long long ull;

  struct trueno_stats cpu, bat;
  struct trueno_store *st = store(n, 0);
  fill_and_check(st, cf->data, n, "CPU");
  trueno_get_stats(st, &cpu);
  trueno_store_destroy(st);

  struct fake f = {0};
  struct trueno_batch_codec bc = {.compress = fake_compress, .ctx = &f,
                                  .min_pages = 8};
  st = store(n, 0);
  CHECK(trueno_store_set_batch_codec(st, &bc) == 0, "set batch codec");
  fill_and_check(st, cf->data, n, "batch");
  trueno_get_stats(st, &bat);
  CHECK(f.calls > 0 && bat.offload_pages == f.pages &&
            bat.offload_batches == (ull)f.calls && bat.offload_fallbacks == 0,
        "batch: %d calls, %zu pages; stats %llu batches %llu pages",
        f.calls, f.pages, (ull)bat.offload_batches, (ull)bat.offload_pages);
  CHECK(bat.compr_data_size == cpu.compr_data_size &&
            bat.pages_stored == cpu.pages_stored &&
            bat.same_pages == cpu.same_pages &&
            bat.huge_pages == cpu.huge_pages &&
            bat.pages_written == cpu.pages_written,
        "batch store differs from CPU store: payload %llu vs %llu, pages "
        "%llu vs %llu, same %llu vs %llu, written %llu vs %llu",
        (ull)bat.compr_data_size, (ull)cpu.compr_data_size,
        (ull)bat.pages_stored, (ull)cpu.pages_stored, (ull)bat.same_pages,
        (ull)cpu.same_pages, (ull)bat.pages_written, (ull)cpu.pages_written);
  /* Rewrites through the hook (in-place and moved payloads). */
  fill_and_check(st, cf->data + PG, n - 1, "batch rewrite");
  trueno_store_destroy(st);

  /* A codec that fails: one call per request, the CPU does the rest. */
  f = (struct fake){.fail = 1};
  run_with(&bc, cf->data, n, "failing codec", &bat);
  CHECK(bat.offload_pages == 0 && bat.offload_fallbacks == (ull)f.calls &&
            bat.compr_data_size == cpu.compr_data_size,
        "failing codec: %llu fallbacks for %d calls, payload %llu vs %llu",
        (ull)bat.offload_fallbacks, f.calls, (ull)bat.compr_data_size,
        (ull)cpu.compr_data_size);

  /* A codec whose offsets point past its output is not believed: the CPU
   * compresses those batches, and under ASan nothing is read out of
   * bounds. */
  f = (struct fake){.lie = 1};
  run_with(&bc, cf->data, n, "lying codec", &bat);
  CHECK(bat.offload_pages == 0 && bat.offload_fallbacks == (ull)f.calls &&
            bat.compr_data_size == cpu.compr_data_size,
        "lying codec: %llu fallbacks for %d calls, payload %llu vs %llu",
        (ull)bat.offload_fallbacks, f.calls, (ull)bat.compr_data_size,
        (ull)cpu.compr_data_size);

  /* A request longer than a batch is cut into batches of at most
   * TRUENO_BATCH_MAX_PAGES (bounded copies; block offsets fit 32 bits). */
  {
    size_t big = TRUENO_BATCH_MAX_PAGES + 100;
    uint8_t *data = malloc(big * PG), *got = malloc(big * PG);
    for (size_t i = 0; i < big; i++)
      memcpy(data + i * PG, cf->data + (i % n) * PG, PG);
    f = (struct fake){0};
    st = store(big, 0);
    trueno_store_set_batch_codec(st, &bc);
    CHECK(trueno_write(st, data, big * PG, 0) == 0, "big write");
    CHECK(trueno_read(st, got, big * PG, 0) == 0 &&
              memcmp(got, data, big * PG) == 0,
          "big write reads back");
    CHECK(f.calls == 2 && f.max_n == TRUENO_BATCH_MAX_PAGES,
          "big write: %d calls, the largest of %zu pages", f.calls, f.max_n);
    trueno_store_destroy(st);
    free(data);
    free(got);
  }

  /* Every page flagged raw: stored raw (same-filled ones still same). */
  f = (struct fake){.all_raw = 1};
  run_with(&bc, cf->data, n, "all raw", &bat);
  /* The unaligned edges of each request are compressed on the CPU. */
  CHECK(bat.same_pages == cpu.same_pages &&
            bat.huge_pages + bat.same_pages >= f.pages &&
            bat.huge_pages > cpu.huge_pages,
        "all raw: %llu raw + %llu same, %zu pages through the codec",
        (ull)bat.huge_pages, (ull)bat.same_pages, f.pages);

  /* The memory limit: one 64-page request into a store that can hold
   * few raw pages: -ENOSPC, pages before the failure new, after old. */
  f = (struct fake){.all_raw = 1};
  st = store(256, 0);
  trueno_store_destroy(st);
  st = store(256, 200 * 1024);
  trueno_store_set_batch_codec(st, &bc);
  uint8_t *rnd = malloc(64 * PG), *back = malloc(64 * PG);
  uint64_t seed = 7;
  tc_fill_random(rnd, 64 * PG, &seed);
  int r = trueno_write(st, rnd, 64 * PG, 0);
  CHECK(r == -ENOSPC, "over the limit: %d, want -ENOSPC", r);
  trueno_get_stats(st, &bat);
  CHECK(trueno_read(st, back, 64 * PG, 0) == 0, "read after ENOSPC");
  size_t k = bat.pages_written;
  CHECK(k > 0 && k < 64, "%zu of 64 pages written", k);
  CHECK(memcmp(back, rnd, k * PG) == 0 && tc_all_zero(back + k * PG,
                                                      (64 - k) * PG),
        "after ENOSPC: first %zu pages new, the rest never written", k);
  free(rnd);
  free(back);
  trueno_store_destroy(st);

  /* Refusals. */
  struct trueno_config zc = {.size = 1 << 20, .algorithm = TRUENO_ALG_ZSTD};
  if (trueno_store_create(&zc, &st) == 0) {
    CHECK(trueno_store_set_batch_codec(st, &bc) == -EINVAL, "zstd refuses");
    trueno_store_destroy(st);
  }
  st = store(16, 0);
  struct trueno_batch_codec zero = bc;
  zero.min_pages = 0;
  CHECK(trueno_store_set_batch_codec(st, &zero) == -EINVAL, "min_pages 0");
  CHECK(trueno_store_set_batch_codec(st, NULL) == 0, "remove");
  trueno_store_destroy(st);
  batch_reads();
  batch_read_race();
  tc_corpus_free(&c);
  return tc_finish();
}
