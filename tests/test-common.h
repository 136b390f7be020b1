/* Small helpers shared by the engine tests: a CHECK macro that counts,
 * a deterministic PRNG, page predicates and loading of the page corpus.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TEST_COMMON_H
#define TEST_COMMON_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Counters are atomic because the stress test checks from several threads. */
extern _Atomic unsigned long tc_passed;
extern _Atomic unsigned long tc_failed;

void tc_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Counts a pass or prints file:line, the condition and a message.  A failed
 * test keeps going, so one run shows every broken case. */
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (cond)                                                                  \
      atomic_fetch_add(&tc_passed, 1);                                         \
    else                                                                       \
      tc_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                         \
  } while (0)

/* Prints "N passed, M failed" and returns the exit status for main. */
int tc_finish(void);

/* Reads a non-negative integer from the environment, or def if unset. */
unsigned long tc_env_ulong(const char *name, unsigned long def);

/* xorshift64*: fixed seeds make every failure reproducible. */
static inline uint64_t tc_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform enough in [0, n) for test purposes; n > 0. */
static inline uint64_t tc_below(uint64_t *s, uint64_t n) {
  return tc_rand(s) % n;
}

void tc_fill_random(void *buf, size_t len, uint64_t *s);
/* Fills len bytes (a multiple of 8) with one repeated 8-byte word. */
void tc_fill_word(void *buf, size_t len, uint64_t word);
/* True when all 8-byte words of the 4 KiB page are equal (zram's "same"). */
int tc_page_same_filled(const void *page);
int tc_all_zero(const void *buf, size_t len);
/* Index of the first differing byte, or len if equal. */
size_t tc_first_diff(const void *a, const void *b, size_t len);

struct tc_corpus_file {
  char *name;    /* file name without directory */
  uint8_t *data; /* npages * 4096 bytes */
  size_t npages;
  int truncated; /* fewer pages than the file holds were loaded */
  int whole;     /* the whole corpus back to back (tc_corpus_concat) */
};

struct tc_corpus {
  struct tc_corpus_file *files;
  size_t nfiles;
};

/* Loads every *.pages file of the corpus directory: $TRUENO_CORPUS, else
 * the build tree's tests/corpus (next to the test program, or one up).  Exits 1 if the directory or its files are
 * missing: a test that silently skips its data proves nothing.  At most
 * $TRUENO_CORPUS_PAGES pages per file are loaded (for valgrind runs). */
void tc_corpus_load(struct tc_corpus *c);
void tc_corpus_free(struct tc_corpus *c);
/* Every file of the corpus back to back in one malloc'd buffer (free it),
 * *npages its pages: one store holding several programs' memory, as a swap
 * device does, large enough for the density bounds that a single small
 * file's fixed costs (a partly used block per size class) would blur. */
uint8_t *tc_corpus_concat(const struct tc_corpus *c, size_t *npages);
/* True when a file was cut short by TRUENO_CORPUS_PAGES. */
int tc_corpus_truncated(const struct tc_corpus *c);

#endif
