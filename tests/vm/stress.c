/* Swap stress: allocates a working set larger than RAM in pages that each
 * carry a checksum of their content, touches them in random order for
 * several rounds (rewriting some), and verifies every page.  Run inside the
 * test VM with the device under test as the only swap.
 *
 * Every page starts with a header: a magic word, the page's index, its
 * generation (bumped on each rewrite) and a 64-bit hash of the rest of the
 * page.  The body is, by a hash of the index: a real memory page from the
 * corpus (TRUENO_CORPUS or --corpus DIR, *.pages files), or synthetic
 * text-like data padded with zeros (so the whole set compresses well
 * enough to fit in the RAM it is swapped out of).
 *
 * Usage: stress [--mib N] [--rounds R] [--corpus DIR] [--seed S] [--hold-file F]
 *               [--corpus-every K] [--time-limit SEC] [--round-budget SEC]
 * Prints progress and a final "stress: pages N corrupt M rounds R ..." line;
 * exits 0 only when no page is corrupt and it finished within the time
 * limit.  With --round-budget, no new round starts after SEC seconds: a
 * slow machine does fewer rounds (at least one) and still verifies.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define MAGIC 0x7472756e6f707373ull /* "trunopss" */

struct hdr {
  uint64_t magic;
  uint64_t index;
  uint64_t gen;
  uint64_t sum;
};

static uint8_t *corpus;
static size_t corpus_pages;

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static uint64_t page_sum(const uint8_t *pg) {
  const uint64_t *w = (const uint64_t *)(pg + sizeof(struct hdr));
  size_t n = (PAGE - sizeof(struct hdr)) / 8;
  uint64_t h = 0x9e3779b97f4a7c15ull, g = 0;
  for (size_t i = 0; i < n; i++) {
    h = (h ^ w[i]) * 0x100000001b3ull;
    g += w[i] ^ (uint64_t)i;
  }
  return mix(h ^ mix(g));
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned corpus_every = 16;

/* Deterministic content of page idx at generation gen. */
static void fill(uint8_t *pg, uint64_t idx, uint64_t gen) {
  uint64_t r = mix(idx * 0x9e3779b97f4a7c15ull + gen + 1);
  uint8_t *body = pg + sizeof(struct hdr);
  size_t blen = PAGE - sizeof(struct hdr);
  if (corpus_pages && r % corpus_every == 0) {
    memcpy(body, corpus + (r >> 8) % corpus_pages * PAGE, blen);
    /* Make it this page's own: stamp a few words. */
    for (size_t i = 0; i < 4; i++)
      memcpy(body + ((r >> (16 + 8 * i)) & 0x1f8) + i * 1024 % blen, &r, 8);
  } else {
    static const char *words[] = {"alloc", "page", "swap", "kernel", "queue",
                                  "trueno", "block", "flush", "zero", "map",
                                  "thread", "lock", "write", "read", "node",
                                  "value"};
    size_t used = 32 + (size_t)(r % 160), p = 0;
    uint64_t s = r;
    while (p < used) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      int n = snprintf((char *)body + p, blen - p, "%s=%u ",
                       words[(s >> 33) & 15], (unsigned)(s >> 50) & 1023);
      if (n <= 0 || (size_t)n >= blen - p)
        break;
      p += (size_t)n;
    }
    memset(body + p, 0, blen - p);
  }
  struct hdr h = {MAGIC, idx, gen, 0};
  memcpy(pg, &h, sizeof h);
  h.sum = page_sum(pg);
  memcpy(pg, &h, sizeof h);
}

/* 0 = good; otherwise says what is wrong. */
static const char *check(const uint8_t *pg, uint64_t idx, uint64_t gen) {
  struct hdr h;
  memcpy(&h, pg, sizeof h);
  if (h.magic != MAGIC)
    return "bad magic";
  if (h.index != idx)
    return "wrong page (index)";
  if (h.gen != gen)
    return "stale page (generation)";
  if (h.sum != page_sum(pg))
    return "checksum mismatch";
  return NULL;
}

static void load_corpus(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "stress: corpus %s: %s\n", dir, strerror(errno));
    exit(2);
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 7 || strcmp(e->d_name + n - 6, ".pages"))
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
      fprintf(stderr, "stress: %s: %s\n", path, strerror(errno));
      exit(2);
    }
    size_t np = (size_t)sb.st_size / PAGE;
    corpus = realloc(corpus, (corpus_pages + np) * PAGE);
    if (!corpus) {
      perror("stress: realloc");
      exit(2);
    }
    size_t got = 0, want = np * PAGE;
    while (got < want) {
      ssize_t r = read(fd, corpus + corpus_pages * PAGE + got, want - got);
      if (r <= 0) {
        fprintf(stderr, "stress: read %s failed\n", path);
        exit(2);
      }
      got += (size_t)r;
    }
    close(fd);
    corpus_pages += np;
  }
  closedir(d);
  if (!corpus_pages) {
    fprintf(stderr, "stress: no *.pages files in %s\n", dir);
    exit(2);
  }
}

/* --hold-file: the pages stay untouched (idle, in swap) until the file
 * exists, then the final verify reads them all back. */
static void wait_for_file(const char *path, double t0, uint64_t limit) {
  printf("stress: holding until %s exists, %.1f s\n", path, now() - t0);
  fflush(stdout);
  while (access(path, F_OK) != 0) {
    if (limit && now() - t0 > (double)limit)
      break; /* the verify's time check ends it */
    usleep(200 * 1000);
  }
  printf("stress: hold over, %.1f s\n", now() - t0);
  fflush(stdout);
}

int main(int argc, char **argv) {
  uint64_t mib = 768, rounds = 3, seed = 1, limit = 0, budget = 0;
  const char *cdir = getenv("TRUENO_CORPUS"), *hold = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      fprintf(stderr, "stress: %s needs a value\n", a);
      return 2;
    }
    if (!strcmp(a, "--mib"))
      mib = strtoull(v, NULL, 0);
    else if (!strcmp(a, "--rounds"))
      rounds = strtoull(v, NULL, 0);
    else if (!strcmp(a, "--seed"))
      seed = strtoull(v, NULL, 0);
    else if (!strcmp(a, "--time-limit"))
      limit = strtoull(v, NULL, 0);
    else if (!strcmp(a, "--round-budget"))
      budget = strtoull(v, NULL, 0);
    else if (!strcmp(a, "--corpus"))
      cdir = v;
    else if (!strcmp(a, "--hold-file"))
      hold = v;
    else if (!strcmp(a, "--corpus-every"))
      corpus_every = (unsigned)strtoul(v, NULL, 0);
    else {
      fprintf(stderr, "stress: unknown argument %s\n", a);
      return 2;
    }
    i++;
  }
  if (!mib || !corpus_every) {
    fprintf(stderr, "stress: --mib and --corpus-every must be > 0\n");
    return 2;
  }
  if (cdir && *cdir)
    load_corpus(cdir);

  size_t npages = (size_t)(mib * 1024 * 1024 / PAGE);
  uint8_t *mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  uint32_t *gen = calloc(npages, sizeof *gen);
  uint32_t *order = malloc(npages * sizeof *order);
  if (mem == MAP_FAILED || !gen || !order) {
    perror("stress: allocation");
    return 2;
  }
  madvise(mem, npages * PAGE, MADV_NOHUGEPAGE);
  double t0 = now();
  printf("stress: %zu pages (%" PRIu64 " MiB), %" PRIu64 " rounds, %zu corpus "
         "pages (1 in %u)\n",
         npages, mib, rounds, corpus_pages, corpus_every);
  fflush(stdout);

  for (size_t i = 0; i < npages; i++)
    fill(mem + i * PAGE, i, 0);
  printf("stress: filled in %.1f s\n", now() - t0);
  fflush(stdout);

  uint64_t bad = 0, rng = mix(seed) | 1, done = 0;
  for (uint64_t r = 0; r <= rounds; r++) {
    int last = r == rounds;
    if (last && hold)
      wait_for_file(hold, t0, limit);
    for (size_t i = 0; i < npages; i++)
      order[i] = (uint32_t)i;
    if (!last) /* the final check goes in address order */
      for (size_t i = npages - 1; i > 0; i--) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t j = rng % (i + 1);
        uint32_t t = order[i];
        order[i] = order[j], order[j] = t;
      }
    uint64_t rewritten = 0, bad_round = 0;
    double next_note = now() + 30;
    for (size_t k = 0; k < npages; k++) {
      /* A note every 30 s tells a slow machine from a stuck one; the time
       * limit is checked here too, so a crawl ends with a count. */
      if (k % 1024 == 0 && now() > next_note) {
        next_note = now() + 30;
        printf("stress: %s %" PRIu64 ": %zu of %zu pages, %.1f s\n",
               last ? "verify" : "round", r, k, npages, now() - t0);
        fflush(stdout);
        if (limit && now() - t0 > (double)limit) {
          printf("stress: pages %zu corrupt %" PRIu64 " TIMEOUT in %s %" PRIu64
                 " after %zu pages, %.1f s (limit %" PRIu64 " s)\n",
                 npages, bad, last ? "verify" : "round", r, k, now() - t0,
                 limit);
          return 1;
        }
      }
      size_t i = order[k];
      uint8_t *pg = mem + i * PAGE;
      const char *why = check(pg, i, gen[i]);
      if (why) {
        if (bad < 20)
          fprintf(stderr, "stress: page %zu (round %" PRIu64 "): %s\n", i, r,
                  why);
        bad++, bad_round++;
        fill(pg, i, gen[i]); /* repair, so one fault is counted once */
      }
      /* Rewrite a third of the pages each round: they must go out again. */
      if (!last && mix(i ^ (r << 40) ^ seed) % 3 == 0) {
        gen[i]++;
        fill(pg, i, gen[i]);
        rewritten++;
      }
    }
    printf("stress: %s %" PRIu64 ": %" PRIu64 " rewritten, %" PRIu64
           " corrupt, %.1f s\n",
           last ? "verify" : "round", r, rewritten, bad_round, now() - t0);
    fflush(stdout);
    if (limit && now() - t0 > (double)limit) {
      printf("stress: pages %zu corrupt %" PRIu64 " TIMEOUT after %.1f s "
             "(limit %" PRIu64 " s)\n",
             npages, bad, now() - t0, limit);
      return 1;
    }
    if (!last && ++done < rounds && budget && now() - t0 > (double)budget) {
      printf("stress: round budget of %" PRIu64 " s spent after %" PRIu64
             " round(s): verifying now\n",
             budget, done);
      fflush(stdout);
      r = rounds - 1;
    }
  }
  printf("stress: pages %zu corrupt %" PRIu64 " rounds %" PRIu64
         " seconds %.1f\n",
         npages, bad, done, now() - t0);
  return bad ? 1 : 0;
}
