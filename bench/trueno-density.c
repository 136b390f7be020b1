/* trueno-density: how much memory the engine's store takes for files of
 * 4 KiB pages, per-page zstd against a settled store with cold groups, side
 * by side in one run; and what a read of a grouped page costs.
 *
 *   trueno-density [--group N] [--level L] [--interleave K] [--repeat R]
 *                  FILE...
 *
 * For each FILE (a program's memory, scripts/dump-pages; pages in the
 * file's order, which is the program's address order) and, with
 * --interleave K, for all FILEs' pages interleaved in runs of K pages (as
 * reclaim batches from several programs may land in swap):
 *   per-page  an algorithm=zstd store (level 3: kernel zram's), as written;
 *   settled   an algorithm=lz4 store with recompress=zstd and group=N at
 *             level L, after trueno_group has formed every group it can
 *             (idle time 0) and compaction has run: the state a store
 *             reaches once its pages have gone cold.
 * Memory ratio is bytes stored / mem_used_total (page table, metadata and
 * arena included, as the stats file reports it).  Reported: both ratios,
 * their quotient, the payload ratio, the CPU seconds per GiB that grouping
 * took, metadata bytes per stored page, and the median and p99 latency of
 * single-page reads of random grouped pages (cache of 16 groups) and of
 * the per-page store's pages, medians over R repetitions.  Every page is
 * verified after grouping.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trueno.h"

#define PAGE TRUENO_PAGE_SIZE

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double wall_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n ? v[n / 2] : 0;
}

static uint8_t *load(const char *path, size_t *npages) {
  FILE *f = fopen(path, "rb");
  if (!f || fseek(f, 0, SEEK_END))
    return NULL;
  long sz = ftell(f);
  rewind(f);
  uint8_t *d = sz > 0 ? malloc((size_t)sz) : NULL;
  if (!d || fread(d, 1, (size_t)sz, f) != (size_t)sz) {
    free(d);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *npages = (size_t)sz / PAGE;
  return d;
}

/* Median and p99 of n single-page reads at random pages (fixed seed). */
static void read_latency(struct trueno_store *st, size_t npages, double *p50,
                         double *p99) {
  enum { N = 2000 };
  static double lat[N];
  uint8_t page[PAGE];
  uint64_t s = 12345;
  for (int i = 0; i < N; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t p = (s >> 33) % npages;
    double t = wall_us();
    if (trueno_read(st, page, PAGE, p * PAGE)) {
      fprintf(stderr, "trueno-density: read failed\n");
      exit(1);
    }
    lat[i] = wall_us() - t;
  }
  qsort(lat, N, sizeof *lat, cmp_double);
  *p50 = lat[N / 2];
  *p99 = lat[N * 99 / 100];
}

struct result {
  double per, settled, payload, cpu_gib, meta, rd50, rd99, pp50, pp99;
};

static struct trueno_store *store(const uint8_t *d, size_t np,
                                  const struct trueno_config *c) {
  struct trueno_store *st;
  int r = trueno_store_create(c, &st);
  if (!r)
    r = trueno_store_populate(st);
  if (!r)
    r = trueno_write(st, d, np * PAGE, 0);
  if (r) {
    fprintf(stderr, "trueno-density: store: %s\n", strerror(-r));
    exit(1);
  }
  return st;
}

static double ratio(struct trueno_store *st) {
  struct trueno_stats s;
  trueno_get_stats(st, &s);
  return s.mem_used_total ? (double)s.orig_data_size / s.mem_used_total : 0;
}

static void measure(const uint8_t *d, size_t np, unsigned group, int level,
                    struct result *out) {
  struct trueno_config pc = {.size = np * PAGE,
                             .algorithm = TRUENO_ALG_ZSTD};
  struct trueno_store *per = store(d, np, &pc);
  out->per = ratio(per);
  read_latency(per, np, &out->pp50, &out->pp99);
  trueno_store_destroy(per);

  struct trueno_config gc = {.size = np * PAGE,
                             .recompress = TRUENO_RECOMPRESS_ZSTD,
                             .group_pages = group,
                             .group_level = level};
  struct trueno_store *st = store(d, np, &gc);
  double t = cpu_now();
  int r;
  while ((r = trueno_group(st, 0, UINT64_MAX, UINT64_MAX)) > 0)
    ;
  while ((r = trueno_recompress(st, 0, UINT64_MAX, UINT64_MAX)) > 0)
    ;
  out->cpu_gib = (cpu_now() - t) / ((double)np * PAGE / (1u << 30));
  trueno_compact(st);
  struct trueno_stats s;
  trueno_get_stats(st, &s);
  out->settled = ratio(st);
  out->payload = s.compr_data_size ? (double)s.orig_data_size /
                                         (double)s.compr_data_size
                                   : 0;
  out->meta = (double)s.metadata_bytes / (double)s.pages_stored;
  uint8_t *back = malloc(np * PAGE);
  if (!back || trueno_read(st, back, np * PAGE, 0) ||
      memcmp(back, d, np * PAGE)) {
    fprintf(stderr, "trueno-density: pages differ after grouping\n");
    exit(1);
  }
  free(back);
  read_latency(st, np, &out->rd50, &out->rd99);
  trueno_store_destroy(st);
}

static void report(const char *name, const uint8_t *d, size_t np,
                   unsigned group, int level, int repeat) {
  double v[9][64];
  struct result r;
  for (int i = 0; i < repeat; i++) {
    measure(d, np, group, level, &r);
    double *f = &r.per;
    for (int k = 0; k < 9; k++)
      v[k][i] = f[k];
  }
  double *f = &r.per;
  for (int k = 0; k < 9; k++)
    f[k] = median(v[k], (size_t)repeat);
  printf("| %s | %zu | %.2f | %.2f | %.3f | %.2f | %.1f | %.1f | "
         "%.0f / %.0f | %.0f / %.0f |\n",
         name, np, r.per, r.settled, r.settled / r.per, r.payload, r.cpu_gib,
         r.meta, r.pp50, r.pp99, r.rd50, r.rd99);
}

int main(int argc, char **argv) {
  unsigned group = TRUENO_GROUP_PAGES, inter = 0;
  int level = TRUENO_GROUP_LEVEL, repeat = 1, i = 1;
  for (; i < argc && argv[i][0] == '-'; i += 2) {
    if (i + 1 >= argc)
      goto usage;
    if (!strcmp(argv[i], "--group"))
      group = (unsigned)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--level"))
      level = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--interleave"))
      inter = (unsigned)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--repeat"))
      repeat = atoi(argv[i + 1]);
    else
      goto usage;
  }
  if (i >= argc || repeat < 1 || repeat > 64)
    goto usage;
  int nf = argc - i;
  uint8_t **d = calloc((size_t)nf, sizeof *d);
  size_t *np = calloc((size_t)nf, sizeof *np), total = 0;
  for (int f = 0; f < nf; f++) {
    if (!(d[f] = load(argv[i + f], &np[f])) || !np[f]) {
      fprintf(stderr, "trueno-density: cannot read %s\n", argv[i + f]);
      return 1;
    }
    total += np[f];
  }
  printf("group=%u level %d, medians of %d; latencies: single-page reads, "
         "us\n",
         group, level, repeat);
  printf("| data | pages | per-page zstd | settled | gain | payload ratio | "
         "CPU s/GiB grouped | metadata B/page | per-page read p50 / p99 | "
         "grouped read p50 / p99 |\n|---|---|---|---|---|---|---|---|---|---|"
         "\n");
  for (int f = 0; f < nf; f++) {
    const char *b = strrchr(argv[i + f], '/');
    report(b ? b + 1 : argv[i + f], d[f], np[f], group, level, repeat);
  }
  if (inter && nf > 1) {
    uint8_t *all = malloc(total * PAGE);
    size_t *pos = calloc((size_t)nf, sizeof *pos), k = 0;
    while (k < total)
      for (int f = 0; f < nf; f++)
        for (unsigned j = 0; j < inter && pos[f] < np[f]; j++)
          memcpy(all + k++ * PAGE, d[f] + pos[f]++ * PAGE, PAGE);
    char name[64];
    snprintf(name, sizeof name, "interleaved, runs of %u", inter);
    report(name, all, total, group, level, repeat);
    free(all);
    free(pos);
  }
  return 0;
usage:
  fprintf(stderr, "usage: trueno-density [--group N] [--level L] "
                  "[--interleave K] [--repeat R] FILE...\n");
  return 2;
}
