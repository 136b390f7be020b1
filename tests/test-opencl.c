/* The OpenCL batch codec (opencl/trueno_ocl.h) on whatever device the ICD
 * loader offers (PoCL, a CPU device, in the test command), and the
 * engine's batch hook.
 *
 * Both compress kernels (TRUENO_OCL_KERNEL=page and coop) are checked
 * alike (and the coop kernel with 128 work-items a page, the page staged
 * in local memory and a 2^12-entry table, on the synthetic pages).  Every page of every corpus file goes through the batch
 * compressor in batches of 1, 7, 64 and 4096 pages (1 and 7 on the first
 * $TRUENO_OCL_SMALL_PAGES pages of each file if set: for valgrind-like
 * slow runs); each block must decode with liblz4's
 * LZ4_decompress_safe and with lz4page_decompress to the original page,
 * and through the device decompressor; the coop kernel's ratio is within
 * 2% of the page kernel's.  Synthetic batches: same-filled,
 * random (flagged raw) and compressible pages, a small cap; pages of
 * every period 1..64 (from the start and after a random prefix); cap
 * boundaries (a block of L bytes at cap L, raw at cap L - 1).  Errors:
 * corrupt blocks (-EBADMSG), a kernel that does not build (-ENOEXEC), a
 * device that does not exist (-ENODEV).  The pipelined path GPUs take
 * (sub-chunks over 3 queues), forced here.  The engine: a store with the
 * device as its batch codec holds exactly what a CPU store holds and reads
 * its LZ4 pages back through the device in one batch, and a codec that
 * fails leaves the engine compressing and decoding on the CPU, data
 * intact.
 * The offload layer (opencl/offload.h) on a store, with device calls made
 * to fail by its test hook (a write batch and a probe; a read batch): the
 * device is lost (one line), retried after the back-off, still lost,
 * retried again and back, each change one log line; batches go to it
 * again after that; the data is intact throughout.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <lz4.h>
#include <pthread.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lz4page.h"
#include "offload.h"
#include "test-common.h"
#include "trueno.h"
#include "trueno_ocl.h"

#define PG 4096u

static struct trueno_ocl *dev;
static const char *kname = "page"; /* the compress kernel under test */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

struct tally {
  size_t pages, raw;
  uint64_t bytes;
};

/* One batch through the device, checked every way.  Returns the number of
 * pages that failed. */
static size_t check_batch(const uint8_t *pages, size_t n, unsigned cap,
                          const char *what, struct tally *t) {
  uint8_t *dst = malloc(n * cap), *back = malloc(n * PG), one[PG];
  uint32_t *off = malloc(n * sizeof *off), *len = malloc(n * sizeof *len);
  size_t bad = 0;
  int r = trueno_ocl_compress(dev, pages, n, cap, dst, off, len);
  CHECK(r == 0, "%s: compress %zu pages: %d", what, n, r);
  if (r)
    goto out;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *pg = pages + i * PG;
    t->pages++;
    if (len[i] == 0) {
      t->raw++;
      t->bytes += PG;
      continue;
    }
    t->bytes += len[i];
    const char *b = (const char *)dst + off[i];
    int ok = len[i] <= cap;
    ok = ok && LZ4_decompress_safe(b, (char *)one, (int)len[i], PG) == PG &&
         memcmp(one, pg, PG) == 0;
    memset(one, 0, PG);
    ok = ok && lz4page_decompress(b, (int)len[i], one) == 0 &&
         memcmp(one, pg, PG) == 0;
    if (!ok && bad++ < 3)
      CHECK(ok, "%s: page %zu of %zu: block of %u bytes does not decode "
                "to the page (liblz4 or lz4page)",
            what, i, n, len[i]);
  }
  r = trueno_ocl_decompress(dev, dst, off, len, n, back);
  CHECK(r == 0, "%s: device decompress of %zu blocks: %d", what, n, r);
  for (size_t i = 0; !r && i < n; i++) {
    if (len[i] && memcmp(back + i * PG, pages + i * PG, PG) != 0 &&
        bad++ < 3)
      CHECK(0, "%s: page %zu: device round trip differs", what, i);
  }
  if (!bad)
    CHECK(1, "%s", what);
out:
  free(dst);
  free(back);
  free(off);
  free(len);
  return bad;
}

/* The ratio per file at batches of 4096, by kernel: coop against page. */
static double ratios[2][16];

/* Pages of the first n of cf that liblz4 cannot fit in a page. */
static size_t liblz4_raw(const struct tc_corpus_file *cf, size_t n) {
  static char buf[PG];
  size_t raw = 0;
  for (size_t p = 0; p < n; p++)
    raw += LZ4_compress_default((const char *)cf->data + p * PG, buf, PG,
                                PG) == 0;
  return raw;
}

static void corpus_batches(const struct tc_corpus *c) {
  static const size_t sizes[] = {1, 7, 64, 4096};
  size_t small = tc_env_ulong("TRUENO_OCL_SMALL_PAGES", SIZE_MAX);
  for (size_t f = 0; f < c->nfiles; f++) {
    const struct tc_corpus_file *cf = &c->files[f];
    for (unsigned s = 0; s < sizeof sizes / sizeof *sizes; s++) {
      size_t b = sizes[s], npages = cf->npages;
      if (b < 64 && npages > small)
        npages = small;
      struct tally t = {0, 0, 0};
      char what[128];
      snprintf(what, sizeof what, "%s: %s, batches of %zu", kname, cf->name,
               b);
      double t0 = now();
      for (size_t p = 0; p < npages; p += b) {
        size_t n = npages - p < b ? npages - p : b;
        check_batch(cf->data + p * PG, n, PG, what, &t);
      }
      double ratio = (double)t.pages * PG / (double)t.bytes;
      printf("%s: %zu pages, %zu raw, ratio %.3f, %.2f s\n", what, t.pages,
             t.raw, ratio, now() - t0);
      if (b == 4096 && f < 16)
        ratios[strcmp(kname, "coop") == 0][f] = ratio;
      CHECK(t.pages == npages, "%s: %zu of %zu pages", what, t.pages, npages);
      /* The pages left raw are those liblz4 cannot fit either, give or
       * take 3 % (on the corpus: the page kernel 2-3 more, coop 5-17 more
       * of 299-464). */
      size_t lraw = liblz4_raw(cf, npages), slack = npages * 3 / 100;
      CHECK(t.raw <= lraw + slack && t.raw + slack >= lraw,
            "%s: %zu of %zu pages raw, liblz4 %zu", what, t.raw, t.pages,
            lraw);
    }
  }
}

static void synthetic(void) {
  enum { N = 48 };
  uint8_t *p = aligned_alloc(64, N * PG);
  uint64_t seed = 42;
  for (int i = 0; i < N; i++) {
    uint8_t *pg = p + (size_t)i * PG;
    switch (i % 4) {
    case 0: /* same-filled */
      tc_fill_word(pg, PG, i % 8 == 0 ? 0 : 0x0101010101010101ull * (uint64_t)i);
      break;
    case 1: /* random */
      tc_fill_random(pg, PG, &seed);
      break;
    case 2: /* text-like */
      for (unsigned k = 0; k < PG; k++)
        pg[k] = (uint8_t)("lorem ipsum dolor sit amet "[(k * 7 + (unsigned)i) % 27]);
      break;
    default: /* mostly random, a compressible tail */
      tc_fill_random(pg, PG, &seed);
      memset(pg + 3580, 'x', PG - 3580);
      break;
    }
  }
  struct tally t = {0, 0, 0};
  char what[64];
  snprintf(what, sizeof what, "%s: synthetic", kname);
  check_batch(p, N, PG, what, &t);
  uint8_t dst[N * PG];
  uint32_t off[N], len[N];
  int r = trueno_ocl_compress(dev, p, N, PG, dst, off, len);
  CHECK(r == 0, "synthetic: %d", r);
  for (int i = 0; !r && i < N; i++) {
    if (i % 4 == 0)
      CHECK(len[i] > 0 && len[i] < 64, "same-filled page %d: %u bytes", i,
            len[i]);
    if (i % 4 == 1)
      CHECK(len[i] == 0, "random page %d: not flagged raw (%u bytes)", i,
            len[i]);
    if (i % 4 == 2)
      CHECK(len[i] > 0 && len[i] < 200, "text page %d: %u bytes", i, len[i]);
  }
  /* With the engine's cap, the mostly random pages come back raw. */
  r = trueno_ocl_compress(dev, p, N, 3584, dst, off, len);
  CHECK(r == 0, "cap 3584: %d", r);
  for (int i = 3; !r && i < N; i += 4)
    CHECK(len[i] == 0, "cap 3584: page %d: %u bytes, not raw", i, len[i]);
  t = (struct tally){0, 0, 0};
  snprintf(what, sizeof what, "%s: synthetic, cap 3584", kname);
  check_batch(p, N, 3584, what, &t);
  snprintf(what, sizeof what, "%s: synthetic, cap 16", kname);
  check_batch(p, N, 16, what, &t);

  /* Corrupt blocks: a bad offset, a truncated block. */
  r = trueno_ocl_compress(dev, p + 2 * PG, 1, PG, dst, off, len);
  CHECK(r == 0 && len[0] > 8, "text page: %d, %u bytes", r, len[0]);
  uint8_t back[PG];
  uint32_t l2 = len[0] - 3;
  r = trueno_ocl_decompress(dev, dst, off, &l2, 1, back);
  CHECK(r == -EBADMSG, "truncated block: %d, want -EBADMSG", r);
  uint8_t junk[64];
  memset(junk, 0xff, sizeof junk);
  uint32_t o0 = 0, l0 = sizeof junk;
  r = trueno_ocl_decompress(dev, junk, &o0, &l0, 1, back);
  CHECK(r == -EBADMSG, "junk block: %d, want -EBADMSG", r);
  free(p);
}

/* Pages of period 1..64 (random bytes repeated), from the start and after
 * a random prefix: the coop kernel's windows of 32 positions see runs
 * shorter and longer than a window, at every phase. */
static void periods(uint8_t *p) {
  uint64_t seed = 7;
  for (unsigned i = 0; i < 128; i++) {
    uint8_t *pg = p + (size_t)i * PG, pat[64];
    unsigned per = i % 64 + 1, pre = i < 64 ? 0 : (i * 37) % 301;
    tc_fill_random(pat, sizeof pat, &seed);
    tc_fill_random(pg, PG, &seed);
    for (unsigned k = pre; k < PG; k++)
      pg[k] = pat[(k - pre) % per];
  }
  struct tally t = {0, 0, 0};
  char what[64];
  snprintf(what, sizeof what, "%s: periods 1..64", kname);
  check_batch(p, 128, PG, what, &t);
  uint8_t *dst = malloc(128 * PG);
  uint32_t off[128], len[128];
  int r = trueno_ocl_compress(dev, p, 128, PG, dst, off, len);
  CHECK(r == 0, "%s: %d", what, r);
  /* Literals for the prefix and the first period, then one long match.
   * After a prefix, the search steps over positions (2 or 3 at a time
   * after 64 misses, as liblz4), so the first match found can be a few
   * periods back and extends backwards only to the prefix. */
  for (unsigned i = 0; !r && i < 128; i++) {
    unsigned per = i % 64 + 1, pre = i < 64 ? 0 : (i * 37) % 301;
    unsigned lim = pre + (pre ? 4 : 1) * per + 64;
    if (len[i] == 0 || len[i] > lim)
      CHECK(0, "%s: page %u: %u bytes, want 1..%u", what, i, len[i], lim);
  }
  free(dst);
}

/* Each page's block of L bytes at cap 4096 comes out the same at cap L,
 * and raw at cap L - 1 (the size checks are the same at every step). */
static void caps(const uint8_t *pages, size_t n, const char *name) {
  uint8_t dst[PG];
  uint32_t off, len, len2;
  size_t bad = 0;
  char what[96];
  snprintf(what, sizeof what, "%s: cap boundaries, %s", kname, name);
  for (size_t i = 0; i < n && bad < 3; i++) {
    const uint8_t *pg = pages + i * PG;
    int ok = trueno_ocl_compress(dev, pg, 1, PG, dst, &off, &len) == 0;
    if (ok && len < 17) /* raw, or no cap below it (16 the least) */
      continue;
    ok = ok && trueno_ocl_compress(dev, pg, 1, len, dst, &off, &len2) == 0 &&
         len2 == len;
    struct tally t = {0, 0, 0};
    ok = ok && check_batch(pg, 1, len, what, &t) == 0 && t.raw == 0;
    ok = ok &&
         trueno_ocl_compress(dev, pg, 1, len - 1, dst, &off, &len2) == 0 &&
         len2 == 0;
    if (!ok && bad++ < 3)
      CHECK(0, "%s: page %zu: %u bytes at cap 4096, not the same at cap %u "
               "or not raw at cap %u",
            what, i, len, len, len - 1);
  }
  CHECK(bad == 0, "%s: %zu pages", what, n);
}

static void errors(void) {
  struct trueno_ocl *o = NULL;
  const char *why = NULL;
  struct trueno_ocl_options bad = {.extra_source = "\n__kernel void x( {\n"};
  int r = trueno_ocl_open(&bad, &o, &why);
  CHECK(r == -ENOEXEC && !o, "bad kernel: %d, want -ENOEXEC", r);
  CHECK(why && strstr(why, "build"), "bad kernel: reason '%s'", why);
  struct trueno_ocl_options nodev = {.device = "no-such-device-anywhere"};
  r = trueno_ocl_open(&nodev, &o, &why);
  CHECK(r == -ENODEV, "no such device: %d, want -ENODEV", r);
  struct trueno_ocl_options first = {.device = "0:0"};
  r = trueno_ocl_open(&first, &o, &why);
  CHECK(r == 0, "device 0:0: %d (%s)", r, why);
  if (!r)
    trueno_ocl_close(o);
  uint8_t pg[PG] = {0}, dst[PG];
  uint32_t off, len;
  CHECK(trueno_ocl_compress(dev, pg, 1, 8, dst, &off, &len) == -EINVAL,
        "cap 8 refused");
}

static int dev_compress(void *ctx, const void *pages, size_t n, unsigned cap,
                        void *dst, uint32_t *off, uint32_t *len) {
  (void)ctx;
  return trueno_ocl_compress(dev, pages, n, cap, dst, off, len);
}

static int dev_decompress(void *ctx, const void *src, const uint32_t *off,
                          const uint32_t *len, size_t n, void *pages) {
  (void)ctx;
  return trueno_ocl_decompress(dev, src, off, len, n, pages);
}

static int failing_decompress(void *ctx, const void *src, const uint32_t *off,
                              const uint32_t *len, size_t n, void *pages) {
  (void)ctx, (void)src, (void)off, (void)len, (void)n, (void)pages;
  return -EIO;
}

static int failing_compress(void *ctx, const void *pages, size_t n,
                            unsigned cap, void *dst, uint32_t *off,
                            uint32_t *len) {
  (void)ctx, (void)pages, (void)n, (void)cap, (void)dst, (void)off, (void)len;
  return -EIO;
}

/* The file written in requests of 64 pages (one unaligned) into a store
 * whose batch codec is codec (NULL: none); returns the stats. */
static void engine_fill(const struct tc_corpus_file *cf,
                        const struct trueno_batch_codec *bc,
                        struct trueno_stats *s) {
  size_t n = cf->npages < 2048 ? cf->npages : 2048;
  struct trueno_config cfg = {.size = (uint64_t)n * PG + PG,
                              .algorithm = TRUENO_ALG_LZ4};
  struct trueno_store *st;
  int r = trueno_store_create(&cfg, &st);
  CHECK(r == 0, "store: %d", r);
  if (r)
    return;
  if (bc)
    CHECK(trueno_store_set_batch_codec(st, bc) == 0, "set batch codec");
  for (size_t p = 0; p < n; p += 64) {
    size_t m = n - p < 64 ? n - p : 64;
    r = trueno_write(st, cf->data + p * PG, m * PG, p * PG);
    CHECK(r == 0, "%s: write at page %zu: %d", cf->name, p, r);
  }
  /* An unaligned request: whole pages in the middle, edges on the CPU. */
  r = trueno_write(st, cf->data + 100, 20 * PG, 100);
  CHECK(r == 0, "unaligned write: %d", r);
  uint8_t *back = malloc(n * PG);
  r = trueno_read(st, back, n * PG, 0);
  CHECK(r == 0, "read: %d", r);
  uint8_t *want = malloc(n * PG);
  memcpy(want, cf->data, n * PG);
  memcpy(want + 100, cf->data + 100, 20 * PG);
  CHECK(memcmp(back, want, n * PG) == 0, "%s: store contents differ",
        cf->name);
  trueno_get_stats(st, s);
  free(back);
  free(want);
  trueno_store_destroy(st);
}

static void engine_hook(const struct tc_corpus *c) {
  const struct tc_corpus_file *cf = &c->files[0];
  struct trueno_stats cpu, gpu, fail;
  engine_fill(cf, NULL, &cpu);
  struct trueno_batch_codec bc = {.compress = dev_compress,
                                  .decompress = dev_decompress,
                                  .min_pages = 4};
  engine_fill(cf, &bc, &gpu);
  typedef unsigned long long ull;
  CHECK(gpu.offload_read_pages == gpu.alg_pages[TRUENO_ALG_LZ4] &&
            gpu.offload_read_batches == 1 && gpu.offload_read_fallbacks == 0,
        "reads: %llu pages decoded on the device of %llu LZ4 pages, %llu "
        "batches, %llu fallbacks",
        (ull)gpu.offload_read_pages, (ull)gpu.alg_pages[TRUENO_ALG_LZ4],
        (ull)gpu.offload_read_batches, (ull)gpu.offload_read_fallbacks);
  CHECK(gpu.offload_pages > 0 && gpu.offload_fallbacks == 0,
        "offloaded %llu pages, %llu fallbacks", (ull)gpu.offload_pages,
        (ull)gpu.offload_fallbacks);
  CHECK(gpu.pages_stored == cpu.pages_stored &&
            gpu.same_pages == cpu.same_pages,
        "device store: %llu pages, %llu same; CPU store: %llu, %llu",
        (ull)gpu.pages_stored, (ull)gpu.same_pages, (ull)cpu.pages_stored,
        (ull)cpu.same_pages);
  printf("engine on %s: payload %llu bytes via the device, %llu via the "
         "CPU\n",
         cf->name, (ull)gpu.compr_data_size, (ull)cpu.compr_data_size);
  bc.compress = failing_compress;
  bc.decompress = failing_decompress;
  engine_fill(cf, &bc, &fail);
  CHECK(fail.offload_read_pages == 0 && fail.offload_read_fallbacks == 1,
        "failing decompress: %llu pages, %llu fallbacks",
        (ull)fail.offload_read_pages, (ull)fail.offload_read_fallbacks);
  CHECK(fail.offload_pages == 0 && fail.offload_fallbacks > 0 &&
            fail.compr_data_size == cpu.compr_data_size,
        "failing codec: %llu offloaded, %llu fallbacks, payload %llu vs %llu",
        (ull)fail.offload_pages, (ull)fail.offload_fallbacks,
        (ull)fail.compr_data_size, (ull)cpu.compr_data_size);
  struct trueno_config zc = {.size = 1 << 20, .algorithm = TRUENO_ALG_ZSTD};
  struct trueno_store *zst;
  if (trueno_store_create(&zc, &zst) == 0) {
    CHECK(trueno_store_set_batch_codec(zst, &bc) == -EINVAL,
          "zstd store refuses a batch codec");
    trueno_store_destroy(zst);
  }
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_lines[16][512];
static int nlog;

static void collect_log(const char *msg) {
  pthread_mutex_lock(&log_lock);
  printf("  log: %s\n", msg);
  if (nlog < 16)
    snprintf(log_lines[nlog++], sizeof log_lines[0], "%s", msg);
  pthread_mutex_unlock(&log_lock);
}

/* Log lines so far that contain what. */
static int logged(const char *what) {
  pthread_mutex_lock(&log_lock);
  int n = 0;
  for (int i = 0; i < nlog; i++)
    n += strstr(log_lines[i], what) != NULL;
  pthread_mutex_unlock(&log_lock);
  return n;
}

/* Device calls fail_after.. fail (fail_count of them) with the
 * requests below (a write of 64 pages, a read of them, in turn; calls
 * counted from 0, the retries' probes counted too): the first failure is
 * lost says, then retries (still_lost of them failing) until it is back;
 * the data is intact throughout and batches go to the device again. */
static void retry(const struct tc_corpus *c, const char *fail_after,
                  const char *fail_count, const char *lost, int still_lost) {
  const struct tc_corpus_file *cf = &c->files[0];
  size_t n = cf->npages < 2048 ? cf->npages : 2048;
  struct trueno_config cfg = {.size = (uint64_t)n * PG,
                              .algorithm = TRUENO_ALG_LZ4};
  struct trueno_store *st;
  if (trueno_store_create(&cfg, &st))
    return;
  nlog = 0;
  setenv("TRUENO_OCL_FAIL_AFTER", fail_after, 1);
  setenv("TRUENO_OCL_FAIL_COUNT", fail_count, 1);
  setenv("TRUENO_OCL_RETRY_MS", "20", 1);
  struct trueno_offload_config oc = {.mode = TRUENO_OFFLOAD_OPENCL,
                                     .min_pages = 4, .log = collect_log};
  struct trueno_offload *o = trueno_offload_start(st, &oc);
  unsetenv("TRUENO_OCL_FAIL_AFTER");
  unsetenv("TRUENO_OCL_FAIL_COUNT");
  unsetenv("TRUENO_OCL_RETRY_MS");
  CHECK(o && strstr(trueno_offload_json(o), "\"offload_active\": \"opencl\""),
        "offload active: %s", o ? trueno_offload_json(o) : "NULL");
  /* Rewrites of the file in requests of 64 pages until the device is back
   * and has taken batches again (or 20 s). */
  struct trueno_stats s = {0};
  uint64_t at_back = 0;
  double t0 = now();
  for (size_t round = 0; now() - t0 < 20; round++) {
    for (size_t p = 0; p < n; p += 64) {
      size_t m = n - p < 64 ? n - p : 64;
      size_t from = (p + round) % (n - m + 1); /* other contents each round */
      int r = trueno_write(st, cf->data + from * PG, m * PG, p * PG);
      CHECK(r == 0, "write during retries: %d", r);
      uint8_t back[64 * PG];
      r = trueno_read(st, back, m * PG, p * PG);
      CHECK(r == 0 && memcmp(back, cf->data + from * PG, m * PG) == 0,
            "round %zu, page %zu: read back differs (%d)", round, p, r);
    }
    trueno_get_stats(st, &s);
    if (logged("the device is back") && !at_back)
      at_back = s.offload_batches;
    if (at_back && s.offload_batches > at_back)
      break;
    usleep(5000);
  }
  typedef unsigned long long ull;
  CHECK(logged(lost) == 1 && logged("failed (") == 1 &&
            logged("retrying the device now") == still_lost + 1 &&
            logged("still lost") == still_lost &&
            logged("the device is back") == 1,
        "log: %d '%s', %d retrying, %d still lost, %d back lines",
        logged(lost), lost, logged("retrying the device now"),
        logged("still lost"), logged("the device is back"));
  CHECK(at_back && s.offload_batches > at_back &&
            s.offload_fallbacks + s.offload_read_fallbacks > 0,
        "after the device came back: %llu batches (%llu when it did), %llu "
        "write and %llu read fallbacks",
        (ull)s.offload_batches, (ull)at_back, (ull)s.offload_fallbacks,
        (ull)s.offload_read_fallbacks);
  trueno_offload_stop(o);
  trueno_store_destroy(st);
}

/* The GPU path on this device: sub-chunks over 3 queues (and over one:
 * batches bigger than a chunk). */
static void pipelined(const struct tc_corpus *c, const char *queues,
                      const char *sub) {
  setenv("TRUENO_OCL_QUEUES", queues, 1);
  setenv("TRUENO_OCL_SUBCHUNK", sub, 1);
  const char *why = "";
  int r = trueno_ocl_open(NULL, &dev, &why);
  CHECK(r == 0, "open with %s queues: %d (%s)", queues, r, why);
  if (r)
    return;
  for (size_t f = 0; f < c->nfiles; f++) {
    struct tally t = {0, 0, 0};
    char what[128];
    snprintf(what, sizeof what, "%s, %s queues, sub-chunks of %s",
             c->files[f].name, queues, sub);
    size_t n = c->files[f].npages < 4096 ? c->files[f].npages : 4096;
    check_batch(c->files[f].data, n, 3584, what, &t);
    CHECK(t.pages == n, "%s: %zu pages", what, t.pages);
  }
  trueno_ocl_close(dev);
}

/* Everything on the blocks of kernel k (coop_l: its work-items a page,
 * NULL for the default; c NULL: the synthetic pages only); 0 when the
 * device opened. */
static int kernel_checks(const struct tc_corpus *c, const char *k,
                         const char *coop_l) {
  kname = k;
  setenv("TRUENO_OCL_KERNEL", k, 1);
  if (coop_l)
    setenv("TRUENO_OCL_COOP_L", coop_l, 1);
  const char *why = "";
  double t0 = now();
  int r = trueno_ocl_open(NULL, &dev, &why);
  unsetenv("TRUENO_OCL_KERNEL");
  unsetenv("TRUENO_OCL_COOP_L");
  CHECK(r == 0, "open: %d (%s)", r, why);
  if (r)
    return r;
  const char *name = trueno_ocl_kernel_name(dev);
  printf("device: %s, kernel %s (open and build %.2f s)\n",
         trueno_ocl_device_name(dev), name, now() - t0);
  CHECK(strncmp(name, k, strlen(k)) == 0, "kernel %s runs, want %s", name, k);
  char shape[32];
  snprintf(shape, sizeof shape, "(%s work-items", coop_l ? coop_l : "");
  CHECK(!coop_l || strstr(name, shape), "kernel %s, want %s", name, shape);
  synthetic();
  uint8_t *p = aligned_alloc(64, 128 * PG);
  periods(p);
  caps(p, 128, "periods");
  free(p);
  for (size_t f = 0; c && f < c->nfiles; f++)
    caps(c->files[f].data, c->files[f].npages < 64 ? c->files[f].npages : 64,
         c->files[f].name);
  if (c)
    corpus_batches(c);
  return 0;
}

int main(void) {
  struct tc_corpus c;
  tc_corpus_load(&c);
  trueno_ocl_list(stdout);
  if (kernel_checks(&c, "coop", NULL) == 0)
    trueno_ocl_close(dev);
  /* Groups of several warps on a GPU, the page staged in local memory
   * and a table of 2^12 entries: the shapes that are not the default
   * (PoCL builds a new shape in ~7 s). */
  setenv("TRUENO_OCL_COOP_STAGE", "1", 1);
  setenv("TRUENO_OCL_COOP_HASH_LOG", "12", 1);
  if (kernel_checks(NULL, "coop", "128") == 0) {
    const char *name = trueno_ocl_kernel_name(dev);
    CHECK(strstr(name, "local memory") && strstr(name, "table 2^12"),
          "TRUENO_OCL_COOP_STAGE=1, TRUENO_OCL_COOP_HASH_LOG=12: %s", name);
    trueno_ocl_close(dev);
  }
  unsetenv("TRUENO_OCL_COOP_STAGE");
  unsetenv("TRUENO_OCL_COOP_HASH_LOG");
  if (kernel_checks(&c, "page", NULL))
    return tc_finish();
  for (size_t f = 0; f < c.nfiles && f < 16; f++)
    CHECK(ratios[1][f] > 0.98 * ratios[0][f],
          "%s: ratio %.3f with the coop kernel, %.3f with the page kernel",
          c.files[f].name, ratios[1][f], ratios[0][f]);
  errors();
  engine_hook(&c);
  trueno_ocl_close(dev);
  /* Calls 2 and 3: a write batch, then the first probe. */
  retry(&c, "2", "2", "batch compression failed", 1);
  /* Call 1: the first read batch. */
  retry(&c, "1", "1", "batch decompression failed", 0);
  pipelined(&c, "3", "100");
  pipelined(&c, "1", "1000");
  setenv("TRUENO_OCL_KERNEL", "coop", 1);
  pipelined(&c, "3", "1000");
  unsetenv("TRUENO_OCL_KERNEL");
  tc_corpus_free(&c);
  return tc_finish();
}
