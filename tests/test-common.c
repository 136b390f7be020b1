/* Implementation of the shared test helpers; see test-common.h.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include "test-common.h"

#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trueno.h"

_Atomic unsigned long tc_passed;
_Atomic unsigned long tc_failed;

/* Past this many, failures are only counted: a broken engine should not bury
 * the first (most telling) messages under a million identical ones. */
#define TC_MAX_PRINTED 100

void tc_fail(const char *file, int line, const char *cond, const char *fmt,
             ...) {
  unsigned long n = atomic_fetch_add(&tc_failed, 1);
  if (n >= TC_MAX_PRINTED) {
    if (n == TC_MAX_PRINTED)
      fprintf(stderr, "(further failures are counted, not printed)\n");
    return;
  }
  /* Flushed first so that, in a log holding both streams, the failure
   * follows the progress lines that led to it. */
  fflush(stdout);
  /* One fprintf per line keeps lines whole when threads fail together. */
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s:%d: FAIL: %s: %s\n", file, line, cond, msg);
}

int tc_finish(void) {
  unsigned long p = atomic_load(&tc_passed), f = atomic_load(&tc_failed);
  printf("%lu passed, %lu failed\n", p, f);
  fflush(stdout);
  return f == 0 ? 0 : 1;
}

unsigned long tc_env_ulong(const char *name, unsigned long def) {
  const char *v = getenv(name);
  if (!v || !*v)
    return def;
  char *end;
  errno = 0;
  unsigned long r = strtoul(v, &end, 0);
  if (errno || *end) {
    fprintf(stderr, "bad value for %s: '%s'\n", name, v);
    exit(1);
  }
  return r;
}

void tc_fill_random(void *buf, size_t len, uint64_t *s) {
  uint8_t *p = buf;
  while (len >= 8) {
    uint64_t r = tc_rand(s);
    memcpy(p, &r, 8);
    p += 8;
    len -= 8;
  }
  if (len) {
    uint64_t r = tc_rand(s);
    memcpy(p, &r, len);
  }
}

void tc_fill_word(void *buf, size_t len, uint64_t word) {
  uint8_t *p = buf;
  for (size_t i = 0; i + 8 <= len; i += 8)
    memcpy(p + i, &word, 8);
}

int tc_page_same_filled(const void *page) {
  const uint8_t *p = page;
  uint64_t first, w;
  memcpy(&first, p, 8);
  for (size_t i = 8; i < TRUENO_PAGE_SIZE; i += 8) {
    memcpy(&w, p + i, 8);
    if (w != first)
      return 0;
  }
  return 1;
}

int tc_all_zero(const void *buf, size_t len) {
  const uint8_t *p = buf;
  for (size_t i = 0; i < len; i++)
    if (p[i])
      return 0;
  return 1;
}

size_t tc_first_diff(const void *a, const void *b, size_t len) {
  const uint8_t *x = a, *y = b;
  if (memcmp(x, y, len) == 0)
    return len;
  size_t i = 0;
  while (x[i] == y[i])
    i++;
  return i;
}

static void load_file(struct tc_corpus_file *f, const char *path,
                      size_t max_pages) {
  struct stat sb;
  FILE *fp = fopen(path, "rb");
  if (!fp || fstat(fileno(fp), &sb) != 0) {
    fprintf(stderr, "cannot open corpus file %s: %s\n", path, strerror(errno));
    exit(1);
  }
  if (sb.st_size <= 0 || sb.st_size % TRUENO_PAGE_SIZE) {
    fprintf(stderr, "corpus file %s: size %lld is not whole pages\n", path,
            (long long)sb.st_size);
    exit(1);
  }
  size_t npages = (size_t)sb.st_size / TRUENO_PAGE_SIZE;
  if (max_pages && npages > max_pages) {
    npages = max_pages;
    f->truncated = 1;
  }
  f->data = malloc(npages * TRUENO_PAGE_SIZE);
  if (!f->data || fread(f->data, TRUENO_PAGE_SIZE, npages, fp) != npages) {
    fprintf(stderr, "cannot read corpus file %s\n", path);
    exit(1);
  }
  fclose(fp);
  f->npages = npages;
  const char *slash = strrchr(path, '/');
  f->name = strdup(slash ? slash + 1 : path);
}

static int is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

void tc_corpus_load(struct tc_corpus *c) {
  char dir[4160];
  const char *env = getenv("TRUENO_CORPUS");
  if (env && *env) {
    snprintf(dir, sizeof dir, "%s", env);
  } else {
    /* The build tree's tests/corpus (make unpacks it there), found from
     * this program: tests/NAME, or tests/asan/NAME and the like. */
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
      *slash = '\0';
    snprintf(dir, sizeof dir, "%s/corpus", exe);
    if (!is_dir(dir)) {
      char alt[sizeof dir];
      snprintf(alt, sizeof alt, "%s/../corpus", exe);
      if (is_dir(alt))
        memcpy(dir, alt, sizeof dir);
    }
  }
  if (!is_dir(dir)) {
    fprintf(stderr,
            "corpus directory %s is missing (run make, or set "
            "TRUENO_CORPUS)\n",
            dir);
    exit(1);
  }
  char pattern[4200];
  snprintf(pattern, sizeof pattern, "%s/*.pages", dir);
  glob_t g;
  if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
    fprintf(stderr, "no *.pages files in corpus directory %s\n", dir);
    exit(1);
  }
  size_t max_pages = tc_env_ulong("TRUENO_CORPUS_PAGES", 0);
  c->nfiles = g.gl_pathc;
  c->files = calloc(c->nfiles, sizeof *c->files);
  if (!c->files) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < c->nfiles; i++)
    load_file(&c->files[i], g.gl_pathv[i], max_pages);
  globfree(&g);
}

uint8_t *tc_corpus_concat(const struct tc_corpus *c, size_t *npages) {
  size_t n = 0;
  for (size_t i = 0; i < c->nfiles; i++)
    n += c->files[i].npages;
  uint8_t *buf = malloc(n * TRUENO_PAGE_SIZE);
  if (!buf) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  size_t at = 0;
  for (size_t i = 0; i < c->nfiles; i++) {
    memcpy(buf + at * TRUENO_PAGE_SIZE, c->files[i].data,
           c->files[i].npages * TRUENO_PAGE_SIZE);
    at += c->files[i].npages;
  }
  *npages = n;
  return buf;
}

int tc_corpus_truncated(const struct tc_corpus *c) {
  for (size_t i = 0; i < c->nfiles; i++)
    if (c->files[i].truncated)
      return 1;
  return 0;
}

void tc_corpus_free(struct tc_corpus *c) {
  for (size_t i = 0; i < c->nfiles; i++) {
    free(c->files[i].name);
    free(c->files[i].data);
  }
  free(c->files);
  c->files = NULL;
  c->nfiles = 0;
}
