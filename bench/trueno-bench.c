/* trueno-bench: page codecs side by side on files of 4 KiB pages.
 *
 *   trueno-bench [--json] [--repeat N] [--codec NAME[,NAME...]]...
 *                [--clock wall|cpu] [--opencl [--batch N...]
 *                [--opencl-device P:D|NAME]] [FILE...]
 *   trueno-bench --opencl-list
 *   trueno-bench [--opencl-device P:D|NAME] --opencl-auto
 *
 * With no FILE, the *.pages files of $TRUENO_CORPUS, else of the build
 * tree's test corpus (tests/corpus next to this program, which make
 * unpacks): real process memory, small; pass bigger files for figures.
 *
 * For each file and each codec, every page is compressed on its own and
 * decompressed back; the codecs take turns within each of N repetitions
 * (so drifting machine load hits them alike) and the medians are reported.
 * Every page is verified after each repetition; a mismatch is an error
 * exit.  Throughput is MB (10^6 bytes) of uncompressed data per second;
 * ratio is uncompressed bytes / compressed bytes (same-filled pages count as
 * 0 compressed bytes for the engine codecs only, raw pages as 4096).
 *
 * Codecs: trueno-lz4 (the dispatched path), trueno-lz4-<isa> for each path
 * the CPU supports, liblz4 (LZ4_compress_default / LZ4_decompress_safe),
 * liblz4-fast (acceleration 4), libzstd-1, libzstd-3, classify (the page
 * classifier alone: same-filled check + compressibility estimate; no
 * ratio, no decompression), engine-lz4 and engine-zstd (trueno_write and
 * trueno_read of one page at a time through a store in steady state,
 * single thread).
 *
 * --opencl adds a row per batch size (--batch, default 4096) for the
 * OpenCL batch codec (opencl/trueno_ocl.h): opencl-lz4-bN compresses the
 * file's pages in batches of N (the file's pages repeated to fill whole
 * batches, so the pages column can exceed the file's) and decompresses
 * them back, end to end: from host memory (pinned, as the module
 * allocates it) to host memory, transfers included, raw pages copied back
 * by the host in the timed decompression.  Every block is also decoded
 * with liblz4 and lz4page (untimed) and every page verified.  With
 * engine-lz4 chosen (or all codecs) it also adds engine-lz4-r8192 and
 * engine-lz4-ocl-r8192: the engine with the file written and read in
 * requests of up to 8192 pages (nbdkit's 32 MiB), on the CPU and with the
 * device as the store's batch codec (trueno_store_set_batch_codec),
 * compressing and decoding.
 * The header says which compress kernel ran (TRUENO_OCL_KERNEL=page|coop).
 * --opencl-auto prints what offload=auto would choose on the device.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <lz4.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <config.h>
#if HAVE_OPENCL
#include "offload.h"
#include "trueno_ocl.h"
#endif

#include "classify.h"
#include "lz4page.h"
#include "trueno.h"

#define PAGE 4096
#define SLOT LZ4PAGE_DIRECT_CAP /* output room per page, for every codec */
#define MAX_REPEAT 1000
#define CLASSIFY_PASSES 8

enum kind { K_TRUENO, K_LIBLZ4, K_LIBZSTD, K_CLASSIFY, K_ENGINE, K_OPENCL };

struct codec {
  char name[32];
  enum kind kind;
  int isa;   /* K_TRUENO: -1 dispatched, else the path */
  int level; /* liblz4 acceleration, zstd level, engine algorithm, batch */
  int req;   /* K_ENGINE: pages per write request (0: 1) */
  int dev;   /* K_ENGINE: the OpenCL device as the store's batch codec */
};

struct input {
  const char *path;
  uint8_t *data;
  size_t npages;
};

/* One repetition's result. */
struct run {
  double ctime, dtime; /* seconds */
  uint64_t comp_bytes;
  size_t pages; /* pages timed; 0: the file's */
};

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
  struct timespec t;
  clock_gettime(clock_id, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "trueno-bench: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  exit(1);
}

static int ncodecs;
static struct codec codecs[32];

static void add(const char *name, enum kind k, int isa, int level) {
  struct codec *c = &codecs[ncodecs++];
  snprintf(c->name, sizeof c->name, "%s", name);
  c->kind = k;
  c->isa = isa;
  c->level = level;
}

static void all_codecs(void) {
  add("trueno-lz4", K_TRUENO, -1, 0);
  for (int i = 0; i < TRUENO_ISA_COUNT; i++) {
    if (!trueno_isa_supported((enum trueno_isa)i))
      continue;
    char n[32];
    snprintf(n, sizeof n, "trueno-lz4-%s", trueno_isa_name((enum trueno_isa)i));
    add(n, K_TRUENO, i, 0);
  }
  add("liblz4", K_LIBLZ4, -1, 1);
  add("liblz4-fast", K_LIBLZ4, -1, 4);
  add("libzstd-1", K_LIBZSTD, -1, 1);
  add("libzstd-3", K_LIBZSTD, -1, 3);
  add("classify", K_CLASSIFY, -1, 0);
  add("engine-lz4", K_ENGINE, -1, TRUENO_ALG_LZ4);
  add("engine-zstd", K_ENGINE, -1, TRUENO_ALG_ZSTD);
}

static void load(struct input *in) {
  FILE *f = fopen(in->path, "rb");
  if (!f)
    die("%s: %s", in->path, strerror(errno));
  if (fseek(f, 0, SEEK_END) != 0)
    die("%s: cannot seek%s", in->path, "");
  long sz = ftell(f);
  rewind(f);
  in->npages = sz > 0 ? (size_t)sz / PAGE : 0;
  if (in->npages == 0)
    die("%s: holds no whole 4096-byte page%s", in->path, "");
  in->data = aligned_alloc(64, in->npages * PAGE);
  if (!in->data || fread(in->data, PAGE, in->npages, f) != in->npages)
    die("%s: cannot read%s", in->path, "");
  fclose(f);
}

/* Scratch shared by all runs. */
static uint8_t *comp;  /* npages * SLOT */
static int *lens;      /* compressed length per page */
static uint8_t *back;  /* npages * PAGE */
static struct lz4page_state lzstate;
static void *lz4state;
static ZSTD_CCtx *cctx;
static ZSTD_DCtx *dctx;

#if HAVE_OPENCL
static struct trueno_ocl *dev;
/* Pinned host buffers for the largest batch run: input, blocks, output. */
static uint8_t *ocl_in, *ocl_comp, *ocl_back;
static uint32_t *ocl_off, *ocl_len;
static size_t ocl_max_pages;

/* Pages an opencl-lz4-bN row times on a file of npages pages. */
static size_t ocl_pages(size_t npages, size_t batch) {
  return (npages + batch - 1) / batch * batch;
}

static void *ocl_alloc(size_t bytes) {
  void *p = trueno_ocl_host_alloc(dev, bytes);
  if (!p)
    p = aligned_alloc(64, bytes);
  if (!p)
    die("out of memory for %s%s", "the OpenCL buffers", "");
  return p;
}

/* The store's batch codec in the engine-lz4-ocl rows; the time spent in
 * it, for TRUENO_OCL_PROFILE's split of a row into codec and store. */
static double engine_batch_time;

static int engine_batch(void *ctx, const void *pages, size_t n, unsigned cap,
                        void *dst, uint32_t *off, uint32_t *len) {
  (void)ctx;
  double t0 = now();
  int r = trueno_ocl_compress(dev, pages, n, cap, dst, off, len);
  engine_batch_time += now() - t0;
  return r;
}

static int engine_batch_dec(void *ctx, const void *src, const uint32_t *off,
                            const uint32_t *len, size_t n, void *pages) {
  (void)ctx;
  return trueno_ocl_decompress(dev, src, off, len, n, pages);
}

static void print_line(const char *msg) { printf("%s\n", msg); }

/* What offload=auto chooses on the device (opencl/offload.h). */
static int opencl_auto(const char *device) {
  struct trueno_config cfg = {.size = PAGE, .algorithm = TRUENO_ALG_LZ4};
  struct trueno_store *st;
  if (trueno_store_create(&cfg, &st))
    die("--opencl-auto: cannot create a store%s%s", "", "");
  struct trueno_offload_config oc = {
      .mode = TRUENO_OFFLOAD_AUTO, .device = device, .log = print_line};
  struct trueno_offload *o = trueno_offload_start(st, &oc);
  if (!o)
    die("--opencl-auto: out of memory%s%s", "", "");
  printf("{%s}\n", trueno_offload_json(o));
  trueno_offload_stop(o);
  trueno_store_destroy(st);
  return 0;
}

static void ocl_setup(const char *device, size_t max_pages) {
  const char *why = "";
  struct trueno_ocl_options opt = {.device = device};
  int e = trueno_ocl_open(&opt, &dev, &why);
  if (e)
    die("--opencl: %s (%s)", why, strerror(-e));
  ocl_max_pages = max_pages;
  ocl_in = ocl_alloc(max_pages * PAGE);
  ocl_comp = ocl_alloc(max_pages * PAGE);
  ocl_back = ocl_alloc(max_pages * PAGE);
  ocl_off = malloc(max_pages * sizeof *ocl_off);
  ocl_len = malloc(max_pages * sizeof *ocl_len);
  if (!ocl_off || !ocl_len)
    die("out of memory%s%s", "", "");
}

static struct run run_opencl(const struct input *in, const struct codec *c) {
  struct run r = {0, 0, 0, 0};
  const size_t b = (size_t)c->level, t = ocl_pages(in->npages, b);
  for (size_t p = 0; p < t; p++)
    memcpy(ocl_in + p * PAGE, in->data + (p % in->npages) * PAGE, PAGE);
  memset(ocl_back, 0, t * PAGE);
  double t0 = now();
  for (size_t p = 0; p < t; p += b) {
    int e = trueno_ocl_compress(dev, ocl_in + p * PAGE, b, PAGE,
                                ocl_comp + p * PAGE, ocl_off + p, ocl_len + p);
    if (e)
      die("%s: batch compression failed: %s", c->name, strerror(-e));
  }
  double t1 = now();
  for (size_t p = 0; p < t; p += b) {
    int e = trueno_ocl_decompress(dev, ocl_comp + p * PAGE, ocl_off + p,
                                  ocl_len + p, b, ocl_back + p * PAGE);
    if (e)
      die("%s: batch decompression failed: %s", c->name, strerror(-e));
    for (size_t i = p; i < p + b; i++) /* raw pages: the host copies */
      if (!ocl_len[i])
        memcpy(ocl_back + i * PAGE, ocl_in + i * PAGE, PAGE);
  }
  double t2 = now();
  /* Untimed: every block through both CPU decoders, every page compared. */
  uint8_t one[PAGE];
  for (size_t p = 0; p < t; p++) {
    const uint8_t *want = ocl_in + p * PAGE;
    if (memcmp(ocl_back + p * PAGE, want, PAGE) != 0)
      die("%s: %s: a page differs after the device round trip", in->path,
          c->name);
    if (!ocl_len[p]) {
      r.comp_bytes += PAGE;
      continue;
    }
    const char *blk = (const char *)ocl_comp + (p / b) * b * PAGE + ocl_off[p];
    if (LZ4_decompress_safe(blk, (char *)one, (int)ocl_len[p], PAGE) != PAGE ||
        memcmp(one, want, PAGE) != 0 ||
        lz4page_decompress(blk, (int)ocl_len[p], one) != 0 ||
        memcmp(one, want, PAGE) != 0)
      die("%s: %s: a block does not decode with liblz4 or lz4page", in->path,
          c->name);
    r.comp_bytes += ocl_len[p];
  }
  r.ctime = t1 - t0;
  r.dtime = t2 - t1;
  r.pages = t;
  return r;
}
#endif

static void verify(const struct input *in, const struct codec *c) {
  if (memcmp(back, in->data, in->npages * PAGE) == 0)
    return;
  for (size_t p = 0; p < in->npages; p++) {
    if (memcmp(back + p * PAGE, in->data + p * PAGE, PAGE) != 0) {
      char where[64];
      snprintf(where, sizeof where, "page %zu", p);
      fprintf(stderr, "trueno-bench: %s: %s: ", in->path, c->name);
      die("%s differs after the round trip%s", where, "");
    }
  }
}

/* Each engine codec's store, kept for the file's repetitions: destroying
 * one returns its memory to the kernel, after which, on this project's
 * development VM, the next tens of milliseconds of any code ran up to 2.7x
 * slower at random (no page fault of ours): the codec timed after an
 * engine row paid for it. */
static struct {
  struct trueno_store *st;
  const struct input *in; /* the file it holds */
} kept[sizeof codecs / sizeof *codecs];

static struct trueno_store *engine_store(const struct input *in,
                                         const struct codec *c) {
  size_t k = (size_t)(c - codecs);
  if (kept[k].in == in)
    return kept[k].st;
  if (kept[k].st)
    trueno_store_destroy(kept[k].st);
  struct trueno_config cfg = {.size = (uint64_t)in->npages * PAGE,
                              .algorithm = (enum trueno_algorithm)c->level};
  int e = trueno_store_create(&cfg, &kept[k].st);
  if (e)
    die("%s: cannot create a store: %s", c->name, strerror(-e));
  kept[k].in = in;
  return kept[k].st;
}

static void engine_stores_release(void) {
  for (size_t k = 0; k < sizeof kept / sizeof *kept; k++) {
    if (kept[k].st)
      trueno_store_destroy(kept[k].st);
    kept[k].st = NULL;
    kept[k].in = NULL;
  }
}

static struct run run_codec(const struct input *in, const struct codec *c) {
  struct run r = {0, 0, 0, 0};
  const size_t n = in->npages;
  const uint8_t *src = in->data;
  double t0, t1, t2;
  switch (c->kind) {
  case K_TRUENO:
    t0 = now();
    if (c->isa < 0)
      for (size_t p = 0; p < n; p++)
        lens[p] = lz4page_compress(&lzstate, src + p * PAGE, comp + p * SLOT,
                                   SLOT);
    else
      for (size_t p = 0; p < n; p++)
        lens[p] = lz4page_compress_isa((enum trueno_isa)c->isa, &lzstate,
                                       src + p * PAGE, comp + p * SLOT, SLOT);
    t1 = now();
    if (c->isa < 0) {
      for (size_t p = 0; p < n; p++)
        if (lz4page_decompress(comp + p * SLOT, lens[p], back + p * PAGE))
          die("%s: %s: a block does not decode", in->path, c->name);
    } else {
      for (size_t p = 0; p < n; p++)
        if (lz4page_decompress_isa((enum trueno_isa)c->isa, comp + p * SLOT,
                                   lens[p], back + p * PAGE))
          die("%s: %s: a block does not decode", in->path, c->name);
    }
    t2 = now();
    break;
  case K_LIBLZ4:
    t0 = now();
    if (c->level == 1)
      for (size_t p = 0; p < n; p++)
        lens[p] = LZ4_compress_default((const char *)src + p * PAGE,
                                       (char *)comp + p * SLOT, PAGE, SLOT);
    else
      for (size_t p = 0; p < n; p++)
        lens[p] = LZ4_compress_fast((const char *)src + p * PAGE,
                                    (char *)comp + p * SLOT, PAGE, SLOT,
                                    c->level);
    t1 = now();
    for (size_t p = 0; p < n; p++)
      if (LZ4_decompress_safe((const char *)comp + p * SLOT,
                              (char *)back + p * PAGE, lens[p], PAGE) != PAGE)
        die("%s: %s: a block does not decode", in->path, c->name);
    t2 = now();
    break;
  case K_LIBZSTD:
    t0 = now();
    for (size_t p = 0; p < n; p++) {
      size_t z = ZSTD_compressCCtx(cctx, comp + p * SLOT, SLOT,
                                   src + p * PAGE, PAGE, c->level);
      if (ZSTD_isError(z))
        die("%s: %s: compression failed", in->path, c->name);
      lens[p] = (int)z;
    }
    t1 = now();
    for (size_t p = 0; p < n; p++) {
      size_t z = ZSTD_decompressDCtx(dctx, back + p * PAGE, PAGE,
                                     comp + p * SLOT, (size_t)lens[p]);
      if (z != PAGE)
        die("%s: %s: a block does not decode", in->path, c->name);
    }
    t2 = now();
    break;
  case K_CLASSIFY: {
    /* A pass takes well under a millisecond: time several. */
    unsigned counts[3] = {0, 0, 0};
    t0 = now();
    for (int pass = 0; pass < CLASSIFY_PASSES; pass++) {
      for (size_t p = 0; p < n; p++) {
        uint64_t w;
        counts[trueno_page_classify(src + p * PAGE, &w)]++;
      }
    }
    t1 = now();
    /* Keep the loop: the counts are used. */
    if (counts[0] + counts[1] + counts[2] != n * CLASSIFY_PASSES)
      die("%s: %s: miscounted", in->path, c->name);
    r.ctime = (t1 - t0) / CLASSIFY_PASSES;
    return r;
  }
  case K_OPENCL:
#if HAVE_OPENCL
    return run_opencl(in, c);
#else
    abort();
#endif
  case K_ENGINE: {
    struct trueno_store *st = engine_store(in, c);
    /* Steady state, as a swap device lives: the store already holds data
     * (here each page holds its neighbour's contents, so the timed pass
     * changes most payloads' size class) and the memory it runs on
     * has been faulted in.  A fresh store also pays the kernel's first
     * touch of each arena page, which the timed pass would count. */
    for (size_t p = 0; p < n; p++)
      if (trueno_write(st, src + ((p + 1) % n) * PAGE, PAGE,
                       (uint64_t)p * PAGE))
        die("%s: %s: write failed", in->path, c->name);
#if HAVE_OPENCL
    if (c->dev) {
      struct trueno_batch_codec bc = {.compress = engine_batch,
                                      .decompress = engine_batch_dec,
                                      .min_pages = 1};
      if (trueno_store_set_batch_codec(st, &bc))
        die("%s: %s: the store refuses a batch codec", in->path, c->name);
    }
#endif
    size_t req = c->req > 0 ? (size_t)c->req : 1;
    engine_batch_time = 0;
    t0 = now();
    for (size_t p = 0; p < n; p += req) {
      size_t m = n - p < req ? n - p : req;
      if (trueno_write(st, src + p * PAGE, m * PAGE, (uint64_t)p * PAGE))
        die("%s: %s: write failed", in->path, c->name);
    }
    t1 = now();
    if (c->dev && getenv("TRUENO_OCL_PROFILE"))
      fprintf(stderr, "%s: %s: writes %.2f ms, %.2f ms of them in the "
              "device codec\n", in->path, c->name, (t1 - t0) * 1e3,
              engine_batch_time * 1e3);
    for (size_t p = 0; p < n; p += req) {
      size_t m = n - p < req ? n - p : req;
      if (trueno_read(st, back + p * PAGE, m * PAGE, (uint64_t)p * PAGE))
        die("%s: %s: read failed", in->path, c->name);
    }
    t2 = now();
    struct trueno_stats s;
    trueno_get_stats(st, &s);
    r.comp_bytes = s.compr_data_size;
    if (c->dev && (s.offload_fallbacks || s.offload_read_fallbacks))
      die("%s: %s: the device failed a batch", in->path, c->name);
    verify(in, c);
    r.ctime = t1 - t0;
    r.dtime = t2 - t1;
    return r;
  }
  default:
    abort();
  }
  verify(in, c);
  for (size_t p = 0; p < n; p++) {
    if (lens[p] <= 0)
      die("%s: %s: a page did not compress", in->path, c->name);
    r.comp_bytes += (uint64_t)lens[p];
  }
  r.ctime = t1 - t0;
  r.dtime = t2 - t1;
  return r;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct result {
  double ratio, cmbps, dmbps; /* ratio 0: none; dmbps 0: none */
};

/* The *.pages files of $TRUENO_CORPUS, else of tests/corpus beside this
 * program, as inputs (the paths stay allocated); returns how many. */
static int default_inputs(struct input **inputs) {
  char dir[4160];
  const char *env = getenv("TRUENO_CORPUS");
  if (env && *env) {
    snprintf(dir, sizeof dir, "%s", env);
  } else {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
      *slash = '\0';
    snprintf(dir, sizeof dir, "%s/tests/corpus", exe);
  }
  char pattern[4200];
  snprintf(pattern, sizeof pattern, "%s/*.pages", dir);
  glob_t g;
  if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0)
    die("no FILE given and no *.pages in %s (run make, or set "
        "TRUENO_CORPUS)%s", dir, "");
  *inputs = calloc(g.gl_pathc, sizeof **inputs);
  if (!*inputs)
    die("out of memory%s%s", "", "");
  for (size_t i = 0; i < g.gl_pathc; i++)
    (*inputs)[i].path = strdup(g.gl_pathv[i]);
  int n = (int)g.gl_pathc;
  globfree(&g);
  return n;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: trueno-bench [--json] [--repeat N] [--codec NAME[,NAME...]]"
          "... [--clock wall|cpu]\n"
          "       [--opencl [--batch N...] [--opencl-device P:D|NAME]] "
          "[FILE...]\n"
          "       trueno-bench --opencl-list\n"
          "       trueno-bench [--opencl-device P:D|NAME] --opencl-auto\n"
          "codecs:");
  for (int i = 0; i < ncodecs; i++)
    fprintf(f, " %s", codecs[i].name);
  fprintf(f, "\n");
}

int main(int argc, char **argv) {
  all_codecs();
  bool json = false;
  int repeat = 5;
  bool chosen[32] = {false};
  bool any_chosen = false;
  struct input *inputs = calloc((size_t)argc, sizeof *inputs);
  int ninputs = 0;
  bool opencl = false;
  const char *opencl_device = NULL;
  long batches[16];
  int nbatches = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--opencl") == 0) {
      opencl = true;
    } else if (strcmp(a, "--opencl-device") == 0 && i + 1 < argc) {
      opencl_device = argv[++i];
    } else if (strcmp(a, "--batch") == 0) {
      char *end;
      while (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9') {
        long v = strtol(argv[++i], &end, 10);
        if (*end || v < 1 || v > (1L << 22) || nbatches == 16)
          die("--batch: want up to 16 sizes of 1..4194304 pages, not '%s'%s",
              argv[i], "");
        batches[nbatches++] = v;
      }
      if (!nbatches)
        die("--batch: needs sizes%s%s", "", "");
    } else if (strcmp(a, "--opencl-auto") == 0) {
#if HAVE_OPENCL
      return opencl_auto(opencl_device);
#else
      die("--opencl-auto: built without OpenCL%s%s", "", "");
#endif
    } else if (strcmp(a, "--opencl-list") == 0) {
#if HAVE_OPENCL
      int n = trueno_ocl_list(stdout);
      if (n < 0)
        printf("no OpenCL platform (%s)\n", strerror(-n));
      return n > 0 ? 0 : 1;
#else
      die("--opencl-list: built without OpenCL%s%s", "", "");
#endif
    } else if (strcmp(a, "--json") == 0) {
      json = true;
    } else if (strcmp(a, "--repeat") == 0 && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < 1 || v > MAX_REPEAT)
        die("--repeat: want 1..1000, not '%s'%s", argv[i], "");
      repeat = (int)v;
    } else if (strcmp(a, "--codec") == 0 && i + 1 < argc) {
      char *list = strdup(argv[++i]), *save = NULL;
      for (char *t = strtok_r(list, ",", &save); t;
           t = strtok_r(NULL, ",", &save)) {
        int k;
        for (k = 0; k < ncodecs; k++)
          if (strcmp(t, codecs[k].name) == 0)
            break;
        if (k == ncodecs) {
          usage(stderr);
          die("unknown or unsupported codec '%s'%s", t, "");
        }
        chosen[k] = any_chosen = true;
      }
      free(list);
    } else if (strcmp(a, "--clock") == 0 && i + 1 < argc) {
      const char *v = argv[++i];
      if (strcmp(v, "wall") == 0)
        clock_id = CLOCK_MONOTONIC;
      else if (strcmp(v, "cpu") == 0)
        clock_id = CLOCK_THREAD_CPUTIME_ID;
      else
        die("--clock: wall or cpu, not '%s'%s", v, "");
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (a[0] == '-' && a[1]) {
      usage(stderr);
      die("unknown option '%s'%s", a, "");
    } else {
      inputs[ninputs++].path = a;
    }
  }
  bool own_paths = !ninputs;
  if (own_paths) {
    free(inputs);
    ninputs = default_inputs(&inputs);
  }
  int use[32], nuse = 0;
  for (int k = 0; k < ncodecs; k++)
    if (!any_chosen || chosen[k])
      use[nuse++] = k;
#if HAVE_OPENCL
  if (opencl) {
    if (!nbatches)
      batches[nbatches++] = 4096;
    for (int b = 0; b < nbatches; b++) {
      char n[32];
      snprintf(n, sizeof n, "opencl-lz4-b%ld", batches[b]);
      use[nuse++] = ncodecs;
      add(n, K_OPENCL, -1, (int)batches[b]);
    }
    /* The engine with and without the device, in nbdkit's largest
     * requests (32 MiB), when the engine rows are wanted. */
    bool engine = !any_chosen;
    for (int k = 0; k < ncodecs; k++)
      engine |= chosen[k] && strcmp(codecs[k].name, "engine-lz4") == 0;
    for (int d = 0; engine && d < 2; d++) {
      use[nuse++] = ncodecs;
      add(d ? "engine-lz4-ocl-r8192" : "engine-lz4-r8192", K_ENGINE, -1,
          TRUENO_ALG_LZ4);
      codecs[ncodecs - 1].req = 8192;
      codecs[ncodecs - 1].dev = d;
    }
  }
#else
  if (opencl || opencl_device || nbatches)
    die("--opencl: built without OpenCL (no ocl-icd-opencl-dev at "
        "configure time)%s%s", "", "");
#endif

  size_t maxpages = 0;
  for (int f = 0; f < ninputs; f++) {
    load(&inputs[f]);
    if (inputs[f].npages > maxpages)
      maxpages = inputs[f].npages;
  }
#if HAVE_OPENCL
  if (opencl) {
    size_t most = 0;
    for (int b = 0; b < nbatches; b++) {
      size_t t = ocl_pages(maxpages, (size_t)batches[b]);
      most = t > most ? t : most;
    }
    ocl_setup(opencl_device, most);
    if (!json)
      printf("# opencl device: %s\n# opencl kernel: %s\n",
             trueno_ocl_device_name(dev), trueno_ocl_kernel_name(dev));
  }
#endif
  comp = malloc(maxpages * SLOT);
  lens = malloc(maxpages * sizeof *lens);
  back = aligned_alloc(64, maxpages * PAGE);
  lz4state = malloc((size_t)LZ4_sizeofState());
  cctx = ZSTD_createCCtx();
  dctx = ZSTD_createDCtx();
  if (!comp || !lens || !back || !lz4state || !cctx || !dctx)
    die("out of memory%s%s", "", "");

  struct result *res = calloc((size_t)ninputs * (size_t)nuse, sizeof *res);
  double *ct = calloc((size_t)repeat * (size_t)nuse, sizeof *ct);
  double *dt = calloc((size_t)repeat * (size_t)nuse, sizeof *dt);
  uint64_t *cb = calloc((size_t)nuse, sizeof *cb);
  size_t *np = calloc((size_t)nuse, sizeof *np);
  if (!json)
    printf("# trueno-lz4 and the engine use the %s path\n",
           trueno_isa_name(trueno_isa_active()));
  if (!json)
    printf("%-18s %-20s %7s %8s %12s %12s\n", "file", "codec", "pages",
           "ratio", "comp MB/s", "decomp MB/s");
  for (int f = 0; f < ninputs; f++) {
    const struct input *in = &inputs[f];
    /* One untimed pass warms caches and makes first-use state. */
    for (int u = 0; u < nuse; u++)
      run_codec(in, &codecs[use[u]]);
    for (int r = 0; r < repeat; r++) {
      for (int u = 0; u < nuse; u++) {
        struct run x = run_codec(in, &codecs[use[u]]);
        ct[u * repeat + r] = x.ctime;
        dt[u * repeat + r] = x.dtime;
        cb[u] = x.comp_bytes;
        np[u] = x.pages ? x.pages : in->npages;
      }
    }
    engine_stores_release();
    const char *base = strrchr(in->path, '/');
    base = base ? base + 1 : in->path;
    for (int u = 0; u < nuse; u++) {
      const struct codec *c = &codecs[use[u]];
      double bytes = (double)np[u] * PAGE;
      struct result *o = &res[f * nuse + u];
      double mc = median(ct + u * repeat, repeat);
      double md = median(dt + u * repeat, repeat);
      o->cmbps = mc > 0 ? bytes / mc / 1e6 : 0;
      o->dmbps = md > 0 ? bytes / md / 1e6 : 0;
      o->ratio = c->kind == K_CLASSIFY ? 0
                 : cb[u]               ? bytes / (double)cb[u]
                                       : INFINITY;
      if (json) {
        printf("{\"file\": \"%s\", \"codec\": \"%s\", \"pages\": %zu, ", base,
               c->name, np[u]);
        if (o->ratio > 0 && isfinite(o->ratio))
          printf("\"ratio\": %.4f, ", o->ratio);
        else
          printf("\"ratio\": null, ");
        printf("\"compress_mbps\": %.1f, ", o->cmbps);
        if (c->kind == K_CLASSIFY)
          printf("\"decompress_mbps\": null}\n");
        else
          printf("\"decompress_mbps\": %.1f}\n", o->dmbps);
      } else {
        char rs[16] = "-", ds[16] = "-";
        if (o->ratio > 0)
          snprintf(rs, sizeof rs, "%.3f", o->ratio);
        if (c->kind != K_CLASSIFY)
          snprintf(ds, sizeof ds, "%.0f", o->dmbps);
        printf("%-18s %-20s %7zu %8s %12.0f %12s\n", base, c->name, np[u],
               rs, o->cmbps, ds);
      }
    }
    fflush(stdout);
  }
  if (!json && ninputs > 1) {
    for (int u = 0; u < nuse; u++) {
      const struct codec *c = &codecs[use[u]];
      double lr = 0, lc = 0, ld = 0;
      for (int f = 0; f < ninputs; f++) {
        const struct result *o = &res[f * nuse + u];
        lr += o->ratio > 0 ? log(o->ratio) : 0;
        lc += log(o->cmbps > 0 ? o->cmbps : 1);
        ld += log(o->dmbps > 0 ? o->dmbps : 1);
      }
      char rs[16] = "-", ds[16] = "-";
      if (c->kind != K_CLASSIFY) {
        snprintf(rs, sizeof rs, "%.3f", exp(lr / ninputs));
        snprintf(ds, sizeof ds, "%.0f", exp(ld / ninputs));
      }
      printf("%-18s %-20s %7s %8s %12.0f %12s\n", "(geomean)", c->name, "",
             rs, exp(lc / ninputs), ds);
    }
  }
  ZSTD_freeCCtx(cctx);
  ZSTD_freeDCtx(dctx);
  free(lz4state);
  free(comp);
  free(lens);
  free(back);
  free(res);
  free(ct);
  free(dt);
  free(cb);
  free(np);
#if HAVE_OPENCL
  if (dev) {
    trueno_ocl_host_free(dev, ocl_in);
    trueno_ocl_host_free(dev, ocl_comp);
    trueno_ocl_host_free(dev, ocl_back);
    free(ocl_off);
    free(ocl_len);
    trueno_ocl_close(dev);
  }
#endif
  for (int f = 0; f < ninputs; f++) {
    free(inputs[f].data);
    if (own_paths)
      free((char *)inputs[f].path);
  }
  free(inputs);
  return 0;
}
