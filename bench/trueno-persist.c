/* trueno-persist: what keeping a store in a memfd costs (docs/persistence.md).
 *
 *   trueno-persist [--gib G] [--alg lz4|zstd] FILE
 *
 * Fills a store of G GiB (default 1) with FILE's 4 KiB pages over and over
 * (scripts/dump-pages), once anonymous and once persistent, each page
 * written once and then a tenth of them again; reports for both the
 * write time and mem_used_total, for the persistent one also the memory
 * its file really holds (fstat's blocks), then detaches it and reports the
 * time trueno_store_attach takes and that every page reads back.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trueno.h"

#define PAGE TRUENO_PAGE_SIZE

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint8_t *load(const char *path, size_t *npages) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  *npages = (size_t)len / PAGE;
  uint8_t *p = malloc(*npages * PAGE);
  if (p && fread(p, PAGE, *npages, f) != *npages) {
    free(p);
    p = NULL;
  }
  fclose(f);
  return p;
}

/* Page i of the device: page i mod n of the file. */
static double fill(struct trueno_store *st, const uint8_t *data, size_t n,
                   uint64_t npages) {
  double t0 = now();
  for (uint64_t i = 0; i < npages; i++)
    if (trueno_write(st, data + (i % n) * PAGE, PAGE, i * PAGE)) {
      fprintf(stderr, "write of page %llu failed\n", (unsigned long long)i);
      exit(1);
    }
  for (uint64_t i = 0; i < npages; i += 10) /* overwrites: frees */
    trueno_write(st, data + ((i + 1) % n) * PAGE, PAGE, i * PAGE);
  return now() - t0;
}

static int verify(struct trueno_store *st, const uint8_t *data, size_t n,
                  uint64_t npages) {
  uint8_t page[PAGE];
  for (uint64_t i = 0; i < npages; i++) {
    const uint8_t *want = data + ((i % 10 ? i : i + 1) % n) * PAGE;
    if (trueno_read(st, page, PAGE, i * PAGE) || memcmp(page, want, PAGE))
      return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  double gib = 1;
  enum trueno_algorithm alg = TRUENO_ALG_LZ4;
  int i = 1;
  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    if (!strcmp(argv[i], "--gib"))
      gib = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--alg") &&
             trueno_algorithm_parse(argv[i + 1], &alg) == 0)
      ;
    else
      break;
  }
  if (i + 1 != argc) {
    fprintf(stderr, "usage: trueno-persist [--gib G] [--alg A] FILE\n");
    return 2;
  }
  size_t n;
  uint8_t *data = load(argv[i], &n);
  if (!data || !n) {
    fprintf(stderr, "%s: cannot read pages\n", argv[i]);
    return 1;
  }
  uint64_t npages = (uint64_t)(gib * (1 << 30)) / PAGE;
  struct trueno_config cfg = {.size = npages * PAGE, .algorithm = alg};
  struct trueno_store *st;
  struct trueno_stats s;

  if (trueno_store_create(&cfg, &st))
    return 1;
  double t_anon = fill(st, data, n, npages);
  trueno_get_stats(st, &s);
  uint64_t anon_used = s.mem_used_total;
  trueno_store_destroy(st);

  int fd = memfd_create("trueno-persist", MFD_CLOEXEC);
  cfg.persist = 1;
  cfg.state_fd = fd;
  if (fd < 0 || trueno_store_create(&cfg, &st))
    return 1;
  double t_pers = fill(st, data, n, npages);
  trueno_get_stats(st, &s);
  uint64_t pers_used = s.mem_used_total;
  struct stat sb;
  fstat(fd, &sb);
  uint64_t file_bytes = (uint64_t)sb.st_blocks * 512;
  double t0 = now();
  trueno_store_destroy(st);
  double t_detach = now() - t0;
  fstat(fd, &sb);
  uint64_t file_detached = (uint64_t)sb.st_blocks * 512;

  char why[256];
  t0 = now();
  int r = trueno_store_attach(fd, &cfg, &st, why, sizeof why);
  double t_attach = now() - t0;
  if (r) {
    fprintf(stderr, "attach: %s\n", why);
    return 1;
  }
  trueno_get_stats(st, &s);
  fstat(fd, &sb);
  int ok = verify(st, data, n, npages) == 0;
  printf("%s, %.2f GiB of %s (%zu pages repeated), %s\n", argv[i], gib,
         argv[i], n, trueno_algorithm_name(alg));
  printf("anonymous:  write %.2f s, mem_used %llu\n", t_anon,
         (unsigned long long)anon_used);
  printf("persistent: write %.2f s, mem_used %llu, file holds %llu "
         "(%+lld bytes, %+.3f %% of anonymous mem_used)\n",
         t_pers, (unsigned long long)pers_used,
         (unsigned long long)file_bytes,
         (long long)(file_bytes - anon_used),
         100.0 * ((double)file_bytes - (double)anon_used) / (double)anon_used);
  printf("detach %.3f s (file then %llu); attach %.3f s: mem_used %llu, "
         "file %llu, every page %s\n",
         t_detach, (unsigned long long)file_detached, t_attach,
         (unsigned long long)s.mem_used_total,
         (unsigned long long)((uint64_t)sb.st_blocks * 512),
         ok ? "read back" : "NOT read back");
  trueno_store_drop(st);
  close(fd);
  free(data);
  return ok ? 0 : 1;
}
