/* The lz4page codec and the page classifier, on every instruction-set path
 * this CPU supports (scalar, SSE4.2, AVX2, AVX-512 on x86-64):
 *
 * - differential against liblz4 both ways, on every corpus page and on
 *   generated pages (zeros, short runs, repeating patterns of every period
 *   1..64, random bytes, text, pages of mixed halves): our blocks decode
 *   with LZ4_decompress_safe, liblz4's blocks (default, fast with
 *   accelerations, HC levels) decode with ours;
 * - every path makes byte-identical blocks (one deterministic parse);
 * - capacities: a block that does not fit in cap is 0, one that does is
 *   the same block;
 * - damaged blocks (every truncation, bit flips, garbage) are refused or
 *   decoded within bounds, the same way on every path (ASan and valgrind
 *   runs of this test check the bounds);
 * - the ratio is at least liblz4's (within 0.5 %);
 * - same-filled detection agrees with a plain loop on every path, and the
 *   compressibility estimate costs under 1 % of stored size on each corpus
 *   file while sending random pages straight to raw.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "lz4page.h"
#include "test-common.h"

/* The AArch64 build (make check-neon: cross-compiled, run under qemu-user)
 * has no liblz4 for the target: there the paths are checked against each
 * other and against the originals, and liblz4 is checked on x86-64. */
#ifndef TEST_NO_LIBLZ4
#include <lz4.h>
#include <lz4hc.h>
#define HAVE_LIBLZ4 1
#else
#define HAVE_LIBLZ4 0
static int LZ4_decompress_safe(const char *s, char *d, int n, int cap) {
  (void)s, (void)d, (void)n;
  return cap;
}
static int LZ4_compress_default(const char *s, char *d, int n, int cap) {
  (void)s, (void)d, (void)n, (void)cap;
  return 0;
}
static int LZ4_compress_fast(const char *s, char *d, int n, int cap, int a) {
  (void)a;
  return LZ4_compress_default(s, d, n, cap);
}
static int LZ4_compress_HC(const char *s, char *d, int n, int cap, int l) {
  (void)l;
  return LZ4_compress_default(s, d, n, cap);
}
#endif

#define PAGE LZ4PAGE_SIZE
#define ENGINE_CAP 3584

static struct lz4page_state state;
static enum trueno_isa isas[TRUENO_ISA_COUNT];
static int nisas;

static const char *name_of(int i) { return trueno_isa_name(isas[i]); }

/* Our block of page on every path: identical, decodable by liblz4 and by
 * every path of ours.  Returns the block length (full capacity). */
static int check_page(const uint8_t *page, const char *what) {
  static uint8_t ref[LZ4PAGE_DIRECT_CAP], blk[LZ4PAGE_DIRECT_CAP];
  static uint8_t back[PAGE];
  int n0 = 0;
  for (int i = 0; i < nisas; i++) {
    int n = lz4page_compress_isa(isas[i], &state, page, blk, sizeof blk);
    CHECK(n > 0 && n <= LZ4PAGE_BOUND, "%s: %s: compress gave %d", what,
          name_of(i), n);
    if (n <= 0)
      return 0;
    if (i == 0) {
      n0 = n;
      memcpy(ref, blk, (size_t)n);
      if (HAVE_LIBLZ4) {
        int d = LZ4_decompress_safe((const char *)blk, (char *)back, n, PAGE);
        CHECK(d == PAGE && memcmp(back, page, PAGE) == 0,
              "%s: liblz4 cannot decode our block (%d)", what, d);
      }
    } else {
      CHECK(n == n0 && memcmp(blk, ref, (size_t)n) == 0,
            "%s: %s block differs from %s's", what, name_of(i), name_of(0));
    }
  }
  for (int i = 0; i < nisas; i++) {
    memset(back, 0x5a, PAGE);
    int r = lz4page_decompress_isa(isas[i], ref, n0, back);
    CHECK(r == 0 && memcmp(back, page, PAGE) == 0,
          "%s: %s decode of our block: %d", what, name_of(i), r);
  }
  return n0;
}

/* A block made by someone else must decode to page on every path. */
static void check_foreign(const uint8_t *page, const char *blk, int n,
                          const char *what) {
  static uint8_t back[PAGE];
  if (!HAVE_LIBLZ4)
    return;
  for (int i = 0; i < nisas; i++) {
    memset(back, 0x5a, PAGE);
    int r = lz4page_decompress_isa(isas[i], blk, n, back);
    CHECK(r == 0 && memcmp(back, page, PAGE) == 0,
          "%s: %s cannot decode it: %d", what, name_of(i), r);
  }
}

/* Capacities around the block's size, and the engine's. */
static void check_caps(const uint8_t *page, int full, const char *what) {
  static uint8_t blk[LZ4PAGE_DIRECT_CAP];
  int caps[] = {full, full - 1, full + 1, ENGINE_CAP, 1, 64};
  for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
    int cap = caps[c];
    if (cap <= 0)
      continue;
    for (int i = 0; i < nisas; i++) {
      /* A guard past cap catches a write beyond it. */
      memset(blk, 0xee, sizeof blk);
      int n = lz4page_compress_isa(isas[i], &state, page, blk, cap);
      int want = full <= cap ? full : 0;
      CHECK(n == want, "%s: %s: cap %d gave %d, want %d", what, name_of(i),
            cap, n, want);
      if (cap < (int)sizeof blk)
        CHECK(blk[cap] == 0xee, "%s: %s wrote past cap %d", what,
              name_of(i), cap);
    }
  }
}

/* Damaged versions of a block: refused or decoded within bounds, with the
 * same verdict and page on every path. */
static void check_damage(const uint8_t *blk, int n, uint64_t *rng,
                         const char *what) {
  static uint8_t back[PAGE], first[PAGE];
  uint8_t *copy = malloc((size_t)n + 1);
  /* Every truncation, in an exactly sized buffer. */
  for (int len = 0; len < n; len++) {
    uint8_t *t = malloc(len ? (size_t)len : 1);
    memcpy(t, blk, (size_t)len);
    for (int i = 0; i < nisas; i++) {
      int r = lz4page_decompress_isa(isas[i], t, len, back);
      CHECK(r == -1, "%s: %s decoded a block cut to %d of %d bytes", what,
            name_of(i), len, n);
    }
    free(t);
  }
  for (int k = 0; k < 64; k++) {
    memcpy(copy, blk, (size_t)n);
    int flips = 1 + (int)tc_below(rng, 4);
    for (int f = 0; f < flips; f++)
      copy[tc_below(rng, (uint64_t)n)] ^= (uint8_t)(1u << tc_below(rng, 8));
    int r0 = 0;
    for (int i = 0; i < nisas; i++) {
      int r = lz4page_decompress_isa(isas[i], copy, n, back);
      CHECK(r == 0 || r == -1, "%s: bad return %d", what, r);
      if (i == 0) {
        r0 = r;
        memcpy(first, back, PAGE);
      } else {
        CHECK(r == r0 && (r != 0 || memcmp(back, first, PAGE) == 0),
              "%s: %s and %s disagree on a damaged block", what, name_of(i),
              name_of(0));
      }
    }
  }
  free(copy);
}

static void check_all(const uint8_t *page, const char *what, uint64_t *rng,
                      int damage) {
  int n = check_page(page, what);
  if (!n)
    return;
  check_caps(page, n, what);
  static char lb[LZ4PAGE_BOUND + 64];
  int ln = LZ4_compress_default((const char *)page, lb, PAGE, sizeof lb);
  check_foreign(page, lb, ln, what);
  for (int acc = 2; acc <= 64; acc *= 2) {
    ln = LZ4_compress_fast((const char *)page, lb, PAGE, sizeof lb, acc);
    check_foreign(page, lb, ln, what);
  }
  int levels[] = {1, 4, 9, 12};
  for (int l = 0; l < 4; l++) {
    ln = LZ4_compress_HC((const char *)page, lb, PAGE, sizeof lb, levels[l]);
    check_foreign(page, lb, ln, what);
  }
  if (damage) {
    static uint8_t blk[LZ4PAGE_DIRECT_CAP];
    int m = lz4page_compress(&state, page, blk, sizeof blk);
    check_damage(blk, m, rng, what);
  }
}

static const char text[] =
    "It is a truth universally acknowledged, that a single man in possession "
    "of a good fortune, must be in want of a wife.\n#include <stdio.h>\n"
    "int main(void) { return printf(\"%d\\n\", 42) < 0; }\n";

static void fill_text(uint8_t *p, size_t len, uint64_t *rng) {
  size_t i = 0;
  while (i < len) {
    size_t start = tc_below(rng, sizeof text - 1);
    size_t n = 1 + tc_below(rng, 40);
    for (size_t k = 0; k < n && i < len; k++)
      p[i++] = (uint8_t)text[(start + k) % (sizeof text - 1)];
  }
}

static void generated_pages(void) {
  static uint8_t page[PAGE];
  char what[96];
  uint64_t rng = 12345;

  memset(page, 0, PAGE);
  check_all(page, "zeros", &rng, 1);
  memset(page, 0xab, PAGE);
  check_all(page, "0xab-filled", &rng, 0);

  /* Short runs of random length and byte. */
  for (int v = 0; v < 4; v++) {
    size_t i = 0;
    while (i < PAGE) {
      size_t n = 1 + tc_below(&rng, v == 0 ? 4 : v == 1 ? 12 : 40);
      uint8_t b = (uint8_t)tc_rand(&rng);
      for (size_t k = 0; k < n && i < PAGE; k++)
        page[i++] = b;
    }
    snprintf(what, sizeof what, "short runs %d", v);
    check_all(page, what, &rng, v == 0);
  }
  /* Every period 1..64, from a random base, at offsets that put the end of
   * the page at every phase. */
  for (int period = 1; period <= 64; period++) {
    uint8_t base[64];
    tc_fill_random(base, sizeof base, &rng);
    for (int i = 0; i < PAGE; i++)
      page[i] = base[(i + period / 2) % period];
    snprintf(what, sizeof what, "period %d", period);
    check_all(page, what, &rng, period % 16 == 1);
    /* The pattern after random bytes, and random bytes after it. */
    tc_fill_random(page, 1000 + (size_t)period, &rng);
    snprintf(what, sizeof what, "random then period %d", period);
    check_all(page, what, &rng, 0);
  }
  for (int k = 0; k < 8; k++) {
    tc_fill_random(page, PAGE, &rng);
    snprintf(what, sizeof what, "random %d", k);
    check_all(page, what, &rng, k == 0);
    fill_text(page, PAGE, &rng);
    snprintf(what, sizeof what, "text %d", k);
    check_all(page, what, &rng, k == 0);
  }
  /* Mixed halves (and quarters). */
  for (int k = 0; k < 6; k++) {
    uint8_t *h[2] = {page, page + PAGE / 2};
    for (int j = 0; j < 2; j++) {
      int kind = (k + j * (1 + k / 3)) % 3;
      if (kind == 0)
        tc_fill_random(h[j], PAGE / 2, &rng);
      else if (kind == 1)
        memset(h[j], 0, PAGE / 2);
      else
        fill_text(h[j], PAGE / 2, &rng);
    }
    snprintf(what, sizeof what, "mixed halves %d", k);
    check_all(page, what, &rng, 1);
  }
  /* A page of 8-byte pointers and small integers, like a heap. */
  for (int i = 0; i < PAGE; i += 8) {
    uint64_t w = tc_below(&rng, 4) ? 0x00007f3a12000000ull +
                                         tc_below(&rng, 1 << 16) * 16
                                   : tc_below(&rng, 300);
    memcpy(page + i, &w, 8);
  }
  check_all(page, "heap words", &rng, 1);
  /* Pure garbage as blocks: refused or in bounds, same on every path. */
  for (int k = 0; k < 2000; k++) {
    uint8_t g[64];
    int len = 1 + (int)tc_below(&rng, sizeof g);
    tc_fill_random(g, (size_t)len, &rng);
    if (k & 1)
      g[0] = (uint8_t)(g[0] | 0xf0);
    int r0 = 0;
    for (int i = 0; i < nisas; i++) {
      int r = lz4page_decompress_isa(isas[i], g, len, page);
      if (i == 0)
        r0 = r;
      CHECK(r == r0, "garbage %d: paths disagree", k);
    }
  }
}

static void corpus_pages(const struct tc_corpus *c) {
  static char lb[LZ4PAGE_BOUND + 64];
  uint64_t rng = 99;
  char what[160];
  for (size_t f = 0; f < c->nfiles; f++) {
    const struct tc_corpus_file *cf = &c->files[f];
    uint64_t ours = 0, theirs = 0, always = 0, classified = 0;
    size_t raw = 0, skipped = 0;
    for (size_t p = 0; p < cf->npages; p++) {
      const uint8_t *page = cf->data + p * PAGE;
      snprintf(what, sizeof what, "%s page %zu", cf->name, p);
      int n = check_page(page, what);
      ours += (uint64_t)n;
      int ln = LZ4_compress_default((const char *)page, lb, PAGE, sizeof lb);
      theirs += (uint64_t)ln;
      check_foreign(page, lb, ln, what);
      if (p % 8 == 0) {
        ln = LZ4_compress_fast((const char *)page, lb, PAGE, sizeof lb, 4);
        check_foreign(page, lb, ln, what);
      }
      if (p % 32 == 0) {
        ln = LZ4_compress_HC((const char *)page, lb, PAGE, sizeof lb,
                             p % 64 ? 9 : 12);
        check_foreign(page, lb, ln, what);
        check_caps(page, n, what);
      }
      if (p % 512 == 0) {
        static uint8_t blk[LZ4PAGE_DIRECT_CAP];
        int m = lz4page_compress(&state, page, blk, sizeof blk);
        check_damage(blk, m, &rng, what);
      }
      /* Stored size as the engine would: same-filled pages cost nothing,
       * pages over ENGINE_CAP are raw. */
      uint64_t word;
      if (trueno_page_same_filled_simd(page, &word))
        continue;
      uint64_t stored = n <= ENGINE_CAP ? (uint64_t)n : PAGE;
      raw += n > ENGINE_CAP;
      always += stored;
      if (trueno_page_worth_compressing(page)) {
        classified += stored;
      } else {
        classified += PAGE;
        skipped++;
      }
    }
    double ratio = (double)cf->npages * PAGE / (double)ours;
    double lratio = theirs ? (double)cf->npages * PAGE / (double)theirs : 0;
    printf("%s: %zu pages, ratio %.4f (liblz4 %.4f); raw %zu, classifier "
           "skips %zu, stored %+.3f %%\n",
           cf->name, cf->npages, ratio, lratio, raw, skipped,
           100.0 * ((double)classified - (double)always) / (double)always);
    if (HAVE_LIBLZ4)
      CHECK(ratio >= lratio * 0.995, "%s: ratio %.4f below liblz4's %.4f",
            cf->name, ratio, lratio);
    CHECK((double)classified <= (double)always * 1.01,
          "%s: classifier costs %.3f %% of stored size", cf->name,
          100.0 * ((double)classified - (double)always) / (double)always);
  }
}

static void classifier(void) {
  static uint8_t page[PAGE];
  uint64_t rng = 4242, word;
  for (int i = 0; i < nisas; i++) {
    for (int fill = 0; fill < 3; fill++) {
      uint64_t w = fill == 0 ? 0 : fill == 1 ? 0x0101010101010101ull
                                             : 0xdeadbeef00c0ffeeull;
      tc_fill_word(page, PAGE, w);
      word = 1;
      CHECK(trueno_page_same_filled_isa(isas[i], page, &word) && word == w,
            "%s: same-filled page %d not seen", name_of(i), fill);
      CHECK(trueno_page_worth_compressing(page), "same-filled looks raw");
      /* One byte different anywhere: not same-filled. */
      for (int pos = 0; pos < PAGE; pos += 1 + (int)tc_below(&rng, 13)) {
        page[pos] ^= 0x40;
        CHECK(!trueno_page_same_filled_isa(isas[i], page, &word),
              "%s: page with byte %d changed seen as same-filled",
              name_of(i), pos);
        page[pos] ^= 0x40;
      }
      page[PAGE - 1] ^= 1;
      CHECK(!trueno_page_same_filled_isa(isas[i], page, &word),
            "%s: last byte changed", name_of(i));
    }
  }
  int raw = 0;
  for (int k = 0; k < 200; k++) {
    tc_fill_random(page, PAGE, &rng);
    raw += !trueno_page_worth_compressing(page);
  }
  CHECK(raw == 200, "only %d of 200 random pages estimated incompressible",
        raw);
  fill_text(page, PAGE, &rng);
  CHECK(trueno_page_worth_compressing(page), "text estimated incompressible");
  CHECK(trueno_page_classify(page, &word) == TRUENO_PAGE_COMPRESS, "classify");
  memset(page, 0, PAGE);
  CHECK(trueno_page_classify(page, &word) == TRUENO_PAGE_SAME && word == 0,
        "classify zeros");
  tc_fill_random(page, PAGE, &rng);
  CHECK(trueno_page_classify(page, &word) == TRUENO_PAGE_RAW,
        "classify random");
}

/* Random words with a small number (an offset, a time: 4-7 zero bytes)
 * every stride bytes, and, when skewed, the low byte of each word a
 * multiple of 32, as fio's "random" buffers are (scramble_buffers stamps
 * every 64 bytes; its generator leaves low bits clear: 1-6 of them on the
 * pages of one run, 5 here). */
static void stamped_page(uint8_t *page, size_t stride, bool skewed,
                         uint64_t *rng) {
  tc_fill_random(page, PAGE, rng);
  if (skewed)
    for (size_t i = 0; i < PAGE; i += 8)
      page[i] &= 0xe0;
  for (size_t i = tc_below(rng, stride / 8) * 8; i < PAGE; i += stride) {
    uint64_t v = tc_below(rng, 1ull << (8 + tc_below(rng, 25)));
    memcpy(page + i, &v, 8);
  }
}

/* fio's default buffers: LZ4 cannot shrink them to ENGINE_CAP, and the
 * estimate must see that rather than take the stamps' zeros and the
 * low bytes' skew for a compressible page (each such page cost a failed
 * LZ4 attempt, most of a raw write's time through nbdkit). */
static void classifier_stamped(void) {
  static uint8_t page[PAGE], blk[LZ4PAGE_DIRECT_CAP];
  uint64_t rng = 4711;
  unsigned raw = 0;
  for (unsigned k = 0; k < 512; k++) {
    stamped_page(page, 64, k & 1, &rng);
    int n = lz4page_compress(&state, page, blk, sizeof blk);
    CHECK(n == 0 || n > ENGINE_CAP, "stamped page %u compresses to %d", k, n);
    raw += !trueno_page_worth_compressing(page);
  }
  printf("stamped pages: %u of 512 estimated raw\n", raw);
  CHECK(raw >= 507, "only %u of 512 stamped pages estimated raw", raw);
}

/* Synthetic pages that LZ4 shrinks to ENGINE_CAP or less must never be
 * estimated raw, wherever their redundancy lies: in a run of zeros
 * anywhere (the estimate's cheap "raw" answer looks at half the page),
 * in small integers, in repeated text, in stamped fields among random words
 * (every 8-64 bytes: the estimate counts lone fields apart) or in sparse
 * noise on zeros. */
static void classifier_synthetic(void) {
  static uint8_t page[PAGE], blk[LZ4PAGE_DIRECT_CAP];
  uint64_t rng = 777;
  unsigned tried = 0;
  for (unsigned kind = 0; kind < 5; kind++) {
    for (unsigned k = 0; k < 256; k++) {
      if (kind == 0) {
        /* Random bytes with one run of zeros of 640-1024 bytes. */
        tc_fill_random(page, PAGE, &rng);
        size_t len = 640 + tc_below(&rng, 385);
        memset(page + tc_below(&rng, PAGE - len + 1), 0, len);
      } else if (kind == 1) {
        /* Little-endian integers below 2^(8 + k % 16). */
        for (unsigned i = 0; i < PAGE / 4; i++) {
          uint32_t v = (uint32_t)tc_below(&rng, 1u << (8 + k % 16));
          memcpy(page + 4 * i, &v, 4);
        }
      } else if (kind == 2) {
        /* A random phrase of 64-512 bytes, repeated. */
        size_t n = 64 + tc_below(&rng, 449);
        tc_fill_random(page, n, &rng);
        for (size_t i = n; i < PAGE; i++)
          page[i] = page[i - n];
      } else if (kind == 3) {
        stamped_page(page, 8 + 8 * (k % 8), k & 8, &rng);
      } else {
        /* Zeros with 1-300 random bytes here and there. */
        memset(page, 0, PAGE);
        for (unsigned i = 1 + tc_below(&rng, 300); i; i--)
          page[tc_below(&rng, PAGE)] = (uint8_t)(1 + tc_below(&rng, 255));
      }
      int n = lz4page_compress(&state, page, blk, sizeof blk);
      if (n <= 0 || n > ENGINE_CAP)
        continue;
      tried++;
      CHECK(trueno_page_worth_compressing(page),
            "kind %u page %u compresses to %d but is estimated raw", kind, k,
            n);
    }
  }
  CHECK(tried >= 800, "only %u synthetic pages compressed", tried);
}

int main(void) {
  for (int i = 0; i < TRUENO_ISA_COUNT; i++)
    if (trueno_isa_supported((enum trueno_isa)i))
      isas[nisas++] = (enum trueno_isa)i;
  printf("paths:");
  for (int i = 0; i < nisas; i++)
    printf(" %s", name_of(i));
  printf(" (dispatched: %s)\n", trueno_isa_name(trueno_isa_active()));
  for (int i = 0; i < TRUENO_ISA_COUNT; i++) {
    enum trueno_isa back = TRUENO_ISA_COUNT;
    CHECK(trueno_isa_parse(trueno_isa_name((enum trueno_isa)i), &back) == 0 &&
              back == (enum trueno_isa)i,
          "isa name %d parses back", i);
  }
  enum trueno_isa none;
  CHECK(trueno_isa_parse("pentium", &none) == -EINVAL,
        "an unknown isa name is -EINVAL");
  CHECK(isas[0] == TRUENO_ISA_SCALAR, "scalar path missing");

  generated_pages();
  classifier();
  classifier_synthetic();
  classifier_stamped();
  struct tc_corpus c;
  tc_corpus_load(&c);
  corpus_pages(&c);
  tc_corpus_free(&c);
  return tc_finish();
}
