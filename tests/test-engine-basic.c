/* The engine's contract, case by case: same-filled and raw pages, sub-page
 * I/O against a plain reference buffer, range checks, trim and zero,
 * extents, the memory limit, the counters and the JSON form of the stats.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"
#include "trueno.h"

#define PG TRUENO_PAGE_SIZE

static const enum trueno_algorithm algs[] = {TRUENO_ALG_LZ4, TRUENO_ALG_ZSTD};

/* A store and a byte-for-byte reference of what it must hold. */
struct dev {
  struct trueno_store *st;
  uint8_t *ref;
  uint64_t size;
  const char *label;
};

static int dev_open(struct dev *d, uint64_t size, enum trueno_algorithm alg,
                    uint64_t mem_limit) {
  struct trueno_config cfg = {
      .size = size, .algorithm = alg, .mem_limit = mem_limit};
  d->size = size;
  d->label = trueno_algorithm_name(alg);
  d->st = NULL;
  d->ref = calloc(1, size);
  int rc = trueno_store_create(&cfg, &d->st);
  CHECK(rc == 0 && d->st, "%s: store_create(size %" PRIu64 ") = %d", d->label,
        size, rc);
  if (!d->ref) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return rc == 0 ? 0 : -1;
}

static void dev_close(struct dev *d) {
  trueno_store_destroy(d->st);
  free(d->ref);
}

/* Writes through the engine and, on success, into the reference. */
static int dev_write(struct dev *d, const void *buf, uint64_t len,
                     uint64_t off) {
  int rc = trueno_write(d->st, buf, len, off);
  if (rc == 0)
    memcpy(d->ref + off, buf, len);
  return rc;
}

static int dev_release(struct dev *d, uint64_t len, uint64_t off, int zero) {
  int rc = zero ? trueno_zero(d->st, len, off) : trueno_trim(d->st, len, off);
  if (rc == 0)
    memset(d->ref + off, 0, len);
  return rc;
}

/* Reads [off, off+len) and compares it to the reference. */
static void dev_check(struct dev *d, uint64_t len, uint64_t off,
                      const char *what) {
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf)
    exit(1);
  memset(buf, 0x5a, len);
  int rc = trueno_read(d->st, buf, len, off);
  CHECK(rc == 0, "%s %s: read(len %" PRIu64 ", off %" PRIu64 ") = %d", d->label,
        what, len, off, rc);
  size_t i = tc_first_diff(buf, d->ref + off, len);
  CHECK(i == len,
        "%s %s: read(len %" PRIu64 ", off %" PRIu64 ") differs at device "
        "byte %" PRIu64 ": got 0x%02x want 0x%02x",
        d->label, what, len, off, off + i, i < len ? buf[i] : 0,
        i < len ? d->ref[off + i] : 0);
  free(buf);
}

static void dev_check_all(struct dev *d, const char *what) {
  dev_check(d, d->size, 0, what);
}

static struct trueno_stats stats_of(struct dev *d) {
  struct trueno_stats s;
  trueno_get_stats(d->st, &s);
  return s;
}

/* The header defines mem_used_total as arena pages plus metadata. */
static void check_mem_identity(const struct trueno_stats *s, const char *what) {
  CHECK(s->mem_used_total == s->arena_pages * PG + s->metadata_bytes,
        "%s: mem_used_total %" PRIu64 " != arena_pages %" PRIu64
        " * 4096 + metadata_bytes %" PRIu64,
        what, s->mem_used_total, s->arena_pages, s->metadata_bytes);
}

static void expect_extent(struct dev *d, uint64_t len, uint64_t off,
                          enum trueno_extent_type want, uint64_t want_run,
                          const char *what) {
  enum trueno_extent_type t = (enum trueno_extent_type)99; /* unset */
  uint64_t run = 0;
  int rc = trueno_extent(d->st, len, off, &t, &run);
  CHECK(rc == 0 && t == want && run == want_run,
        "%s %s: extent(len %" PRIu64 ", off %" PRIu64
        ") = %d, type %d run %" PRIu64 "; want type %d run %" PRIu64,
        d->label, what, len, off, rc, (int)t, run, (int)want, want_run);
}

/* Text-like contents that every codec compresses well. */
static void fill_text(uint8_t *page, unsigned seed) {
  size_t n = 0;
  while (n < PG) {
    char line[64];
    int k = snprintf(line, sizeof line, "line %u: the quick brown fox %u\n",
                     seed, (unsigned)(n * 7 % 1000));
    size_t c = (size_t)k < PG - n ? (size_t)k : PG - n;
    memcpy(page + n, line, c);
    n += c;
  }
}

static void test_algorithm_names(void) {
  enum trueno_algorithm a = TRUENO_ALG_COUNT;
  CHECK(trueno_algorithm_parse("lz4", &a) == 0 && a == TRUENO_ALG_LZ4,
        "parse(\"lz4\") gave %d", (int)a);
  CHECK(trueno_algorithm_parse("zstd", &a) == 0 && a == TRUENO_ALG_ZSTD,
        "parse(\"zstd\") gave %d", (int)a);
  static const char *const bad[] = {"",      "lz",   "lz4x", "zst",
                                    "zstd ", "gzip", "lzo"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK(trueno_algorithm_parse(bad[i], &a) == -EINVAL,
          "parse(\"%s\") was accepted", bad[i]);
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
    const char *n = trueno_algorithm_name(algs[i]);
    CHECK(n && trueno_algorithm_parse(n, &a) == 0 && a == algs[i],
          "name/parse round trip of %d", (int)algs[i]);
  }
}

static void test_create_rejects(void) {
  struct trueno_store *st = NULL;
  struct trueno_config cfg = {.size = 0, .algorithm = TRUENO_ALG_LZ4};
  CHECK(trueno_store_create(&cfg, &st) == -EINVAL, "size 0 accepted");
  cfg.size = 16 * PG;
  cfg.algorithm = TRUENO_ALG_COUNT;
  CHECK(trueno_store_create(&cfg, &st) == -EINVAL, "bad algorithm accepted");

  int lo = trueno_zstd_level_min(), hi = trueno_zstd_level_max();
  int def = trueno_zstd_level_default();
  CHECK(lo <= def && def <= hi && def != 0, "default level %d not in [%d, %d]",
        def, lo, hi);
  cfg.algorithm = TRUENO_ALG_ZSTD;
  cfg.level = hi + 1;
  CHECK(trueno_store_create(&cfg, &st) == -EINVAL, "level %d accepted", hi + 1);
  if (lo > INT_MIN) {
    cfg.level = lo - 1;
    CHECK(trueno_store_create(&cfg, &st) == -EINVAL, "level %d accepted",
          lo - 1);
  }
  /* The extremes themselves are valid. */
  int levels[] = {lo, hi, 3};
  for (size_t i = 0; i < 3; i++) {
    cfg.level = levels[i];
    st = NULL;
    int rc = trueno_store_create(&cfg, &st);
    CHECK(rc == 0 && st, "level %d rejected: %d", levels[i], rc);
    if (rc == 0) {
      CHECK(trueno_store_size(st) == 16 * PG, "store_size %" PRIu64,
            trueno_store_size(st));
      trueno_store_destroy(st);
    }
  }
}

/* Same-filled pages cost no payload, whatever the repeated word. */
static void test_same_pages(enum trueno_algorithm alg) {
  struct dev d;
  if (dev_open(&d, 16 * PG, alg, 0))
    return;
  static const uint64_t words[] = {0, ~0ULL, 0x0123456789abcdefULL};
  uint8_t page[PG];
  for (size_t i = 0; i < 3; i++) {
    tc_fill_word(page, PG, words[i]);
    CHECK(dev_write(&d, page, PG, i * PG) == 0, "%s: same write %zu", d.label,
          i);
  }
  struct trueno_stats s = stats_of(&d);
  CHECK(s.same_pages == 3 && s.pages_stored == 3,
        "%s: same %" PRIu64 " stored %" PRIu64 ", want 3 and 3", d.label,
        s.same_pages, s.pages_stored);
  CHECK(s.compr_data_size == 0 && s.huge_pages == 0 && s.alg_pages[alg] == 0,
        "%s: same pages have payload: compr %" PRIu64, d.label,
        s.compr_data_size);
  dev_check_all(&d, "same pages");
  expect_extent(&d, PG, 0, TRUENO_EXTENT_ZERO, PG, "zero page");
  expect_extent(&d, 3 * PG, PG, TRUENO_EXTENT_DATA, 2 * PG, "0xff and word");

  /* One odd byte and the page is no longer same-filled. */
  tc_fill_word(page, PG, words[2]);
  page[PG - 1] ^= 1;
  CHECK(dev_write(&d, page, PG, 3 * PG) == 0, "%s: near-same write", d.label);
  s = stats_of(&d);
  CHECK(s.same_pages == 3 && s.pages_stored == 4,
        "%s: near-same page counted as same (%" PRIu64 ")", d.label,
        s.same_pages);
  /* A sub-page write that makes a data page same-filled again. */
  CHECK(dev_write(&d, &words[2], 8, 4 * PG - 8) == 0, "%s: sub-page write",
        d.label);
  s = stats_of(&d);
  CHECK(s.same_pages == 4, "%s: page became same-filled, same_pages %" PRIu64,
        d.label, s.same_pages);
  dev_check_all(&d, "same pages after edits");
  dev_close(&d);
}

/* Incompressible data is stored raw: exactly one page of payload. */
static void test_random_raw(enum trueno_algorithm alg) {
  struct dev d;
  if (dev_open(&d, 8 * PG, alg, 0))
    return;
  uint64_t seed = 0x1234567;
  uint8_t page[PG];
  tc_fill_random(page, PG, &seed);
  CHECK(dev_write(&d, page, PG, 2 * PG) == 0, "%s: random write", d.label);
  struct trueno_stats s = stats_of(&d);
  CHECK(s.huge_pages == 1 && s.compr_data_size == PG && s.alg_pages[alg] == 0 &&
            s.pages_stored == 1,
        "%s: random page: huge %" PRIu64 " compr %" PRIu64 " alg %" PRIu64,
        d.label, s.huge_pages, s.compr_data_size, s.alg_pages[alg]);
  fill_text(page, 1);
  CHECK(dev_write(&d, page, PG, 3 * PG) == 0, "%s: text write", d.label);
  s = stats_of(&d);
  CHECK(s.alg_pages[alg] == 1 && s.compr_data_size > PG &&
            s.compr_data_size < 2 * PG,
        "%s: text page: alg %" PRIu64 " compr %" PRIu64, d.label,
        s.alg_pages[alg], s.compr_data_size);
  dev_check_all(&d, "raw and compressed");
  dev_close(&d);
}

/* Unaligned requests against the reference, on every kind of page. */
static void test_subpage(enum trueno_algorithm alg) {
  struct dev d;
  if (dev_open(&d, 64 * PG, alg, 0))
    return;
  uint64_t seed = 0xabcdef;
  uint8_t buf[4 * PG];
  /* Give pages 8..15 each kind of content: text, random, same, hole. */
  for (unsigned p = 8; p < 16; p++) {
    uint8_t page[PG];
    switch (p % 4) {
    case 0:
      fill_text(page, p);
      break;
    case 1:
      tc_fill_random(page, PG, &seed);
      break;
    case 2:
      tc_fill_word(page, PG, 0x1111111111111111ULL * p);
      break;
    default:
      continue;
    }
    CHECK(dev_write(&d, page, PG, (uint64_t)p * PG) == 0, "setup page %u", p);
  }
  struct {
    uint64_t off, len;
  } req[] = {
      {0, 1},                         /* one byte into a hole */
      {5000, 1},                      /* one byte mid-page */
      {PG - 1, 511},                  /* 511 bytes from offset 4095 */
      {10 * PG + 1234, 2 * PG + 100}, /* spans 3 pages, starts mid-page */
      {8 * PG + 17, 3 * PG},          /* spans 4 pages of mixed kinds */
      {12 * PG + 4000, 200},          /* across a text/random boundary */
      {14 * PG + 8, 8},               /* an aligned word inside a same page */
      {64 * PG - 1, 1},               /* the last byte of the device */
      {60 * PG + 3, 4 * PG - 3},      /* runs to the device end */
  };
  for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
    char what[64];
    snprintf(what, sizeof what, "sub-page request %zu", i);
    dev_check(&d, req[i].len, req[i].off, what); /* read before */
    tc_fill_random(buf, req[i].len, &seed);
    if (i % 3 == 2)
      fill_text(buf, (unsigned)i); /* compressible, and a partial copy */
    int rc = dev_write(&d, buf, req[i].len, req[i].off);
    CHECK(rc == 0, "%s %s: write = %d", d.label, what, rc);
    dev_check(&d, req[i].len, req[i].off, what);
    dev_check(&d, req[i].len + 2 < d.size - req[i].off ? req[i].len + 2 : 1,
              req[i].off, what);
    dev_check_all(&d, what);
  }
  dev_close(&d);

  /* A device whose last page is partial. */
  if (dev_open(&d, 10000, alg, 0))
    return;
  tc_fill_random(buf, 10000, &seed);
  CHECK(dev_write(&d, buf, 10000, 0) == 0, "%s: 10000-byte write", d.label);
  dev_check_all(&d, "10000-byte device");
  uint8_t b = 0x42;
  CHECK(dev_write(&d, &b, 1, 9999) == 0, "%s: last byte write", d.label);
  dev_check(&d, 10000 - 2 * PG, 2 * PG, "partial last page");
  dev_check(&d, 1, 9999, "last byte");
  CHECK(dev_release(&d, 10000 - 2 * PG, 2 * PG, 0) == 0, "%s: trim tail",
        d.label);
  dev_check_all(&d, "tail trimmed");
  /* The short last page was covered entirely; whether that releases it
   * (HOLE) or stores zeros (ZERO) the header leaves open: both read zero. */
  enum trueno_extent_type t = TRUENO_EXTENT_DATA;
  uint64_t run = 0;
  int rc = trueno_extent(d.st, 10000 - 2 * PG, 2 * PG, &t, &run);
  CHECK(rc == 0 && t != TRUENO_EXTENT_DATA && run == 10000 - 2 * PG,
        "%s: extent of trimmed last page = %d, type %d run %" PRIu64, d.label,
        rc, (int)t, run);
  expect_extent(&d, 10000, 0, TRUENO_EXTENT_DATA, 2 * PG, "10000 bytes");
  dev_close(&d);
}

/* Callers' buffers need no alignment: page-sized requests from and into
 * odd addresses, for every kind of page (run under UBSan to see why). */
static void test_unaligned_buffers(enum trueno_algorithm alg) {
  struct dev d;
  if (dev_open(&d, 8 * PG, alg, 0))
    return;
  static uint8_t src[4 * PG + 16], dst[4 * PG + 16];
  uint8_t *s = src + 1, *t = dst + 3;
  uint64_t seed = 0xa11;
  tc_fill_word(s, PG, 0x0123456789abcdefULL); /* same-filled */
  memset(s + PG, 0, PG);                      /* zero */
  fill_text(s + 2 * PG, 3);                   /* compressible */
  tc_fill_random(s + 3 * PG, PG, &seed);      /* raw */
  CHECK(dev_write(&d, s, 4 * PG, 0) == 0, "%s: unaligned source", d.label);
  for (unsigned k = 0; k < 4; k++)
    CHECK(dev_write(&d, s + k * PG, PG, (4 + k) * PG) == 0,
          "%s: unaligned page %u", d.label, k);
  int rc = trueno_read(d.st, t, 4 * PG, 4 * PG);
  CHECK(rc == 0 && memcmp(t, d.ref + 4 * PG, 4 * PG) == 0,
        "%s: read into an unaligned buffer = %d", d.label, rc);
  for (unsigned k = 0; k < 4; k++) {
    rc = trueno_read(d.st, t, PG, (uint64_t)k * PG);
    CHECK(rc == 0 && memcmp(t, d.ref + k * PG, PG) == 0,
          "%s: page %u into an unaligned buffer = %d", d.label, k, rc);
  }
  dev_close(&d);
}

static void test_out_of_range(enum trueno_algorithm alg) {
  struct dev d;
  if (dev_open(&d, 10000, alg, 0))
    return;
  uint8_t buf[2 * PG] = {0};
  struct {
    uint64_t off, len;
  } bad[] = {
      {10000, 1},
      {9999, 2},
      {0, 10001},
      {20000, PG},
      {UINT64_MAX, 1},
      {UINT64_MAX - 1, 4},
      {4096, UINT64_MAX - 100},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t off = bad[i].off, len = bad[i].len;
    /* Reads and writes use a real buffer only when len fits it. */
    void *p = len <= sizeof buf ? buf : NULL;
    if (p) {
      CHECK(trueno_read(d.st, p, len, off) == -EINVAL,
            "%s: read off %" PRIu64 " len %" PRIu64, d.label, off, len);
      CHECK(trueno_write(d.st, p, len, off) == -EINVAL,
            "%s: write off %" PRIu64 " len %" PRIu64, d.label, off, len);
    }
    CHECK(trueno_trim(d.st, len, off) == -EINVAL,
          "%s: trim off %" PRIu64 " len %" PRIu64, d.label, off, len);
    CHECK(trueno_zero(d.st, len, off) == -EINVAL,
          "%s: zero off %" PRIu64 " len %" PRIu64, d.label, off, len);
    enum trueno_extent_type t;
    uint64_t run;
    CHECK(trueno_extent(d.st, len, off, &t, &run) == -EINVAL,
          "%s: extent off %" PRIu64 " len %" PRIu64, d.label, off, len);
  }
  struct trueno_stats s = stats_of(&d);
  CHECK(s.pages_stored == 0, "%s: a rejected request stored pages", d.label);
  dev_check_all(&d, "after rejected requests");
  dev_close(&d);
}

/* Trim (zero == 0) or zero (zero == 1): whole pages released, edges zeroed. */
static void test_release(enum trueno_algorithm alg, int zero) {
  const char *op = zero ? "zero" : "trim";
  struct dev d;
  if (dev_open(&d, 32 * PG, alg, 0))
    return;
  uint64_t seed = 0x77;
  uint8_t page[PG];
  /* The baseline is taken once bookkeeping that outlives the data (slot
   * tables, pool headers) exists: write a page of each kind, release it. */
  fill_text(page, 99);
  CHECK(dev_write(&d, page, PG, 0) == 0, "warm-up");
  tc_fill_random(page, PG, &seed);
  CHECK(dev_write(&d, page, PG, PG) == 0, "warm-up");
  CHECK(dev_release(&d, 2 * PG, 0, zero) == 0, "warm-up");
  uint64_t base = stats_of(&d).mem_used_total;
  for (unsigned p = 0; p < 24; p++) {
    if (p % 2)
      tc_fill_random(page, PG, &seed);
    else
      fill_text(page, p);
    CHECK(dev_write(&d, page, PG, (uint64_t)p * PG) == 0, "setup %u", p);
  }
  struct trueno_stats s = stats_of(&d);
  CHECK(s.pages_stored == 24 && s.mem_used_total > base,
        "%s: 24 pages stored: %" PRIu64, d.label, s.pages_stored);

  /* Releasing whole pages gives their memory back. */
  CHECK(dev_release(&d, 16 * PG, 0, zero) == 0, "%s %s 16 pages", d.label, op);
  s = stats_of(&d);
  CHECK(s.pages_stored == 8, "%s %s: pages_stored %" PRIu64 " want 8", d.label,
        op, s.pages_stored);
  expect_extent(&d, 32 * PG, 0, TRUENO_EXTENT_HOLE, 16 * PG, op);
  dev_check_all(&d, op);

  /* A range with partial pages at both ends. */
  CHECK(dev_release(&d, 2 * PG, 16 * PG + 100, zero) == 0, "%s partial %s",
        d.label, op);
  s = stats_of(&d);
  CHECK(s.pages_stored == 7, "%s partial %s: pages_stored %" PRIu64 " want 7",
        d.label, op, s.pages_stored);
  expect_extent(&d, PG, 17 * PG, TRUENO_EXTENT_HOLE, PG, "released middle");
  expect_extent(&d, PG, 16 * PG, TRUENO_EXTENT_DATA, PG, "zeroed tail");
  expect_extent(&d, PG, 18 * PG, TRUENO_EXTENT_DATA, PG, "zeroed head");
  /* Inside one page, and over a hole (which must stay a hole). */
  CHECK(dev_release(&d, 10, 20 * PG + 4000, zero) == 0, "%s %s 10 bytes",
        d.label, op);
  CHECK(dev_release(&d, 100, 5 * PG + 7, zero) == 0, "%s %s in hole", d.label,
        op);
  expect_extent(&d, PG, 5 * PG, TRUENO_EXTENT_HOLE, PG, "hole after release");
  dev_check_all(&d, "partial release");

  CHECK(dev_release(&d, d.size, 0, zero) == 0, "%s %s all", d.label, op);
  s = stats_of(&d);
  CHECK(s.pages_stored == 0 && s.compr_data_size == 0 && s.huge_pages == 0 &&
            s.same_pages == 0 && s.alg_pages[alg] == 0,
        "%s %s all: stored %" PRIu64 " compr %" PRIu64, d.label, op,
        s.pages_stored, s.compr_data_size);
  /* "Drops back": what the pages cost is returned, not kept in reserve. */
  CHECK(s.mem_used_total <= base && s.arena_pages == 0,
        "%s %s all: mem_used_total %" PRIu64 " did not drop back to %" PRIu64
        " (arena_pages %" PRIu64 ")",
        d.label, op, s.mem_used_total, base, s.arena_pages);
  check_mem_identity(&s, d.label);
  expect_extent(&d, d.size, 0, TRUENO_EXTENT_HOLE, d.size, "all released");
  dev_check_all(&d, "all released");
  dev_close(&d);
}

static void test_extents(enum trueno_algorithm alg) {
  struct dev d;
  if (dev_open(&d, 16 * PG, alg, 0))
    return;
  /* hole hole zero zero data data data hole same(0xff) hole... */
  uint8_t page[3 * PG];
  memset(page, 0, sizeof page);
  CHECK(dev_write(&d, page, 2 * PG, 2 * PG) == 0, "zero pages");
  fill_text(page, 4);
  fill_text(page + PG, 5);
  fill_text(page + 2 * PG, 6);
  CHECK(dev_write(&d, page, 3 * PG, 4 * PG) == 0, "data pages");
  memset(page, 0xff, PG);
  CHECK(dev_write(&d, page, PG, 8 * PG) == 0, "0xff page");

  expect_extent(&d, d.size, 0, TRUENO_EXTENT_HOLE, 2 * PG, "leading hole");
  expect_extent(&d, d.size - 2 * PG, 2 * PG, TRUENO_EXTENT_ZERO, 2 * PG,
                "zero pages");
  expect_extent(&d, d.size - 4 * PG, 4 * PG, TRUENO_EXTENT_DATA, 3 * PG,
                "data pages");
  expect_extent(&d, d.size - 8 * PG, 8 * PG, TRUENO_EXTENT_DATA, PG,
                "0xff page is data");
  expect_extent(&d, d.size - 9 * PG, 9 * PG, TRUENO_EXTENT_HOLE, 7 * PG,
                "trailing hole");
  /* Clipping to len, and runs from an offset inside a page. */
  expect_extent(&d, 100, 9 * PG, TRUENO_EXTENT_HOLE, 100, "clipped to len");
  expect_extent(&d, 2 * PG, 4 * PG, TRUENO_EXTENT_DATA, 2 * PG, "clipped data");
  expect_extent(&d, d.size - 4 * PG - 100, 4 * PG + 100, TRUENO_EXTENT_DATA,
                3 * PG - 100, "from mid-page");
  expect_extent(&d, 1, d.size - 1, TRUENO_EXTENT_HOLE, 1, "last byte");
  dev_close(&d);
}

/* Contents for the memory-limit test: incompressible pages (stored raw,
 * from the page pool) or half-random ones (compressed, in the arena), so
 * both allocation paths meet the limit. */
static void fill_limit_page(uint8_t *page, int compressible, uint64_t *seed) {
  tc_fill_random(page, PG, seed);
  if (compressible)
    memset(page + PG / 2, 0, PG / 2);
}

/* Trim or zero of [off, off+len) at the memory limit: whole pages are
 * released either way, and an edge page that cannot be re-encoded is left
 * as it was (trim still succeeds, zero fails with -ENOSPC). */
static void release_at_limit(struct dev *d, uint64_t len, uint64_t off,
                             int zero) {
  const char *op = zero ? "zero" : "trim";
  uint64_t p0 = off / PG, p1 = (off + len + PG - 1) / PG;
  uint64_t n = (p1 - p0) * PG;
  uint8_t *got = malloc(n);
  if (!got)
    exit(1);
  int rc = zero ? trueno_zero(d->st, len, off) : trueno_trim(d->st, len, off);
  CHECK(rc == 0 || (zero && rc == -ENOSPC), "%s: %s at the limit = %d",
        d->label, op, rc);
  CHECK(trueno_read(d->st, got, n, p0 * PG) == 0, "%s: read", d->label);
  for (uint64_t p = p0; p < p1; p++) {
    uint64_t a = p == p0 ? off - p * PG : 0;
    uint64_t b = p == p1 - 1 ? off + len - p * PG : PG;
    const uint8_t *g = got + (p - p0) * PG, *old = d->ref + p * PG;
    int whole = a == 0 && b == PG;
    int zeroed = tc_all_zero(g + a, b - a);
    int kept = memcmp(g + a, old + a, b - a) == 0;
    CHECK(whole ? zeroed : (zeroed || kept),
          "%s: %s at the limit: page %" PRIu64 " bytes [%" PRIu64 ", %" PRIu64
          ") neither zeroed nor kept",
          d->label, op, p, a, b);
    CHECK(memcmp(g, old, a) == 0 && memcmp(g + b, old + b, PG - b) == 0,
          "%s: %s at the limit changed page %" PRIu64 " outside the range",
          d->label, op, p);
    if (rc == 0 && !whole && !zeroed)
      CHECK(!zero, "%s: zero succeeded but left page %" PRIu64, d->label, p);
  }
  memcpy(d->ref + p0 * PG, got, n);
  free(got);
}

/* Fills a store until the limit stops a write, then checks what the header
 * promises at the limit. */
static void test_mem_limit(enum trueno_algorithm alg, int compressible) {
  enum { NP = 256 };
  const uint64_t limit = 256 * 1024;
  const char *kind = compressible ? "compressed" : "raw";
  struct dev d;
  if (dev_open(&d, NP * PG, alg, limit))
    return;
  uint8_t page[3 * PG], first[PG];
  /* Each page first holds a distinct same-filled pattern, which costs no
   * payload, so the page whose write fails has known old contents. */
  for (unsigned p = 0; p < NP; p++) {
    tc_fill_word(page, PG, 0x5a5a000000000000ULL | p);
    CHECK(dev_write(&d, page, PG, (uint64_t)p * PG) == 0, "pattern %u", p);
  }
  uint64_t seed = 0x99;
  unsigned fail_at = NP;
  for (unsigned p = 0; p < NP; p++) {
    fill_limit_page(page, compressible, &seed);
    if (p == 0)
      memcpy(first, page, PG);
    int rc = dev_write(&d, page, PG, (uint64_t)p * PG);
    struct trueno_stats s = stats_of(&d);
    CHECK(s.mem_used_total <= limit,
          "%s %s: mem_used_total %" PRIu64 " over the limit", d.label, kind,
          s.mem_used_total);
    if (rc == -ENOSPC) {
      fail_at = p;
      break;
    }
    CHECK(rc == 0, "%s %s: write %u = %d", d.label, kind, p, rc);
  }
  CHECK(fail_at > 8 && fail_at < NP - 8, "%s %s: first -ENOSPC at page %u",
        d.label, kind, fail_at);
  printf("%s: limit %" PRIu64 " KiB reached after %u %s pages\n", d.label,
         limit / 1024, fail_at, kind);
  if (fail_at <= 8 || fail_at >= NP - 8) {
    dev_close(&d);
    return;
  }
  struct trueno_stats s = stats_of(&d);
  CHECK((compressible ? s.alg_pages[alg] : s.huge_pages) == fail_at,
        "%s %s: %u pages written, alg_pages %" PRIu64 " huge %" PRIu64, d.label,
        kind, fail_at, s.alg_pages[alg], s.huge_pages);
  CHECK(s.failed_writes == 1, "%s %s: failed_writes %" PRIu64 " want 1",
        d.label, kind, s.failed_writes);
  CHECK(s.mem_limit == limit && s.mem_used_max <= limit &&
            s.mem_used_max >= s.mem_used_total,
        "%s %s: limit %" PRIu64 " max %" PRIu64 " used %" PRIu64, d.label, kind,
        s.mem_limit, s.mem_used_max, s.mem_used_total);
  dev_check_all(&d, "at the limit");

  /* A multi-page write at the limit: a prefix of it may land, the rest
   * keeps its old contents. */
  for (int k = 0; k < 3; k++)
    fill_limit_page(page + k * PG, compressible, &seed);
  uint64_t off = (uint64_t)fail_at * PG;
  int rc = trueno_write(d.st, page, 3 * PG, off);
  CHECK(rc == -ENOSPC, "%s %s: 3-page write at the limit = %d", d.label, kind,
        rc);
  uint8_t got[3 * PG];
  CHECK(trueno_read(d.st, got, 3 * PG, off) == 0, "%s: read", d.label);
  int k = 0;
  while (k < 3 && memcmp(got + k * PG, page + k * PG, PG) == 0)
    k++;
  CHECK(k < 3, "%s %s: a failed write stored all its pages", d.label, kind);
  CHECK(memcmp(got + k * PG, d.ref + off + k * PG, (3 - k) * PG) == 0,
        "%s %s: pages %d.. of a failed write lost their old contents", d.label,
        kind, k);
  memcpy(d.ref + off, page, k * PG);
  CHECK(stats_of(&d).failed_writes == 2, "%s: failed_writes", d.label);

  /* Same-filled writes need no payload, so they still work. */
  tc_fill_word(page, PG, 0x0123456789abcdefULL);
  rc = dev_write(&d, page, PG, (uint64_t)(NP - 1) * PG);
  CHECK(rc == 0, "%s %s: same-filled write at the limit = %d", d.label, kind,
        rc);
  dev_check_all(&d, "after failed writes");

  /* A raw page overwritten by another incompressible page reuses its
   * payload in place: no memory needed, so it works at the limit too. */
  if (!compressible) {
    fill_limit_page(page, 0, &seed);
    rc = dev_write(&d, page, PG, 1 * PG);
    CHECK(rc == 0, "%s: raw overwrite at the limit = %d", d.label, rc);
    dev_check_all(&d, "after a raw overwrite at the limit");
  }

  /* Ranges whose edges are a written page and a same-filled one. */
  release_at_limit(&d, 2 * PG, (uint64_t)(fail_at - 2) * PG + 100, 0);
  release_at_limit(&d, 2 * PG, (uint64_t)(fail_at - 6) * PG + 100, 1);
  dev_check_all(&d, "after releases at the limit");

  /* Trimming pages makes room again.  The page written back is page 0's
   * old contents: same size, so a size-class arena has room for it in the
   * space its trim freed. */
  CHECK(dev_release(&d, 4 * PG, 0, 0) == 0, "%s: trim", d.label);
  rc = dev_write(&d, first, PG, (uint64_t)(fail_at + 3) * PG);
  CHECK(rc == 0, "%s %s: write after trim = %d", d.label, kind, rc);
  s = stats_of(&d);
  CHECK(s.mem_used_total <= limit && s.mem_used_max <= limit &&
            s.mem_used_max >= s.mem_used_total,
        "%s %s: used %" PRIu64 " max %" PRIu64, d.label, kind, s.mem_used_total,
        s.mem_used_max);
  dev_check_all(&d, "after trim at the limit");
  dev_close(&d);
}

/* A known sequence of requests and the counters it must produce. */
static void test_counters(enum trueno_algorithm alg) {
  struct dev d;
  if (dev_open(&d, 64 * PG, alg, 0))
    return;
  uint64_t seed = 0x42;
  uint8_t buf[4 * PG];
  tc_fill_random(buf, sizeof buf, &seed);
  /* writes: 4 requests touching 1 + 3 + 2 + 2 pages */
  CHECK(dev_write(&d, buf, PG, 0) == 0, "w1");
  CHECK(dev_write(&d, buf, 3 * PG, PG) == 0, "w2");
  CHECK(dev_write(&d, buf, 10, 5 * PG + 4090) == 0, "w3");
  CHECK(dev_write(&d, buf, PG, 10 * PG + 1) == 0, "w4");
  /* reads: 4 requests touching 1 + 2 + 2 + 4 pages (holes count too) */
  CHECK(trueno_read(d.st, buf, 1, 0) == 0, "r1");
  CHECK(trueno_read(d.st, buf, 2 * PG, 0) == 0, "r2");
  CHECK(trueno_read(d.st, buf, PG, 100) == 0, "r3");
  CHECK(trueno_read(d.st, buf, 4 * PG, 20 * PG) == 0, "r4");
  struct trueno_stats s = stats_of(&d);
  uint64_t peak = s.mem_used_total;
  /* trims: 2 requests releasing 1 + 2 stored pages */
  CHECK(dev_release(&d, PG, 0, 0) == 0, "t1");
  CHECK(dev_release(&d, 2 * PG, PG, 1) == 0, "t2");

  s = stats_of(&d);
  CHECK(s.writes == 4 && s.reads == 4 && s.trims == 2,
        "%s: writes %" PRIu64 " reads %" PRIu64 " trims %" PRIu64
        ", want 4 4 2",
        d.label, s.writes, s.reads, s.trims);
  CHECK(s.pages_written == 8 && s.pages_read == 9 && s.pages_trimmed == 3,
        "%s: pages written %" PRIu64 " read %" PRIu64 " trimmed %" PRIu64
        ", want 8 9 3",
        d.label, s.pages_written, s.pages_read, s.pages_trimmed);
  CHECK(s.failed_reads == 0 && s.failed_writes == 0, "%s: failures", d.label);
  /* Stored: pages 3, 5, 6, 10, 11. */
  CHECK(s.pages_stored == 5 && s.orig_data_size == 5 * PG,
        "%s: pages_stored %" PRIu64 " want 5", d.label, s.pages_stored);
  CHECK(s.same_pages + s.huge_pages + s.alg_pages[alg] == 5,
        "%s: page kinds do not add up", d.label);
  CHECK(s.mem_used_max >= peak && s.mem_used_max >= s.mem_used_total,
        "%s: mem_used_max %" PRIu64 " below peak %" PRIu64, d.label,
        s.mem_used_max, peak);
  CHECK(s.disksize == 64 * PG && s.mem_limit == 0, "%s: disksize", d.label);
  check_mem_identity(&s, d.label);
  dev_check_all(&d, "counters");
  dev_close(&d);
}

/* Finds "key": in a flat JSON object and parses the number after it. */
static int json_u64(const char *js, const char *key, uint64_t *v) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(js, pat);
  if (!p)
    return -1;
  p += strlen(pat);
  while (*p == ' ')
    p++;
  if (*p++ != ':')
    return -1;
  while (*p == ' ')
    p++;
  if (*p < '0' || *p > '9')
    return -1;
  char *end;
  *v = strtoull(p, &end, 10);
  return *end == ',' || *end == '}' || *end == ' ' ? 0 : -1;
}

static void test_stats_json(enum trueno_algorithm alg) {
  struct dev d;
  if (dev_open(&d, 16 * PG, alg, 1 << 20))
    return;
  uint8_t page[PG];
  fill_text(page, 9);
  CHECK(dev_write(&d, page, PG, 0) == 0, "json setup");
  tc_fill_word(page, PG, 7);
  CHECK(dev_write(&d, page, PG, PG) == 0, "json setup");
  struct trueno_stats s = stats_of(&d);

  int n = trueno_stats_json(&s, alg, NULL, 0);
  CHECK(n > 2, "%s: stats_json needs %d bytes", d.label, n);
  if (n <= 2) {
    dev_close(&d);
    return;
  }
  char *js = malloc((size_t)n + 1);
  CHECK(trueno_stats_json(&s, alg, js, (size_t)n + 1) == n, "length");
  CHECK(strlen(js) == (size_t)n, "%s: strlen %zu != %d", d.label, strlen(js),
        n);
  CHECK(js[0] == '{' && js[n - 1] == '}', "%s: not an object: %s", d.label, js);
  /* Flat: no nested object or array anywhere. */
  CHECK(!strchr(js + 1, '{') && !strchr(js, '['), "%s: not flat: %s", d.label,
        js);
  struct {
    const char *key;
    uint64_t want;
  } f[] = {
      {"orig_data_size", s.orig_data_size},
      {"compr_data_size", s.compr_data_size},
      {"mem_used_total", s.mem_used_total},
      {"pages_stored", s.pages_stored},
  };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    uint64_t v = 0;
    CHECK(json_u64(js, f[i].key, &v) == 0 && v == f[i].want,
          "%s: \"%s\" is %" PRIu64 " want %" PRIu64 " in %s", d.label, f[i].key,
          v, f[i].want, js);
  }
  /* Truncation behaves like snprintf: a terminated prefix. */
  char small[10];
  CHECK(trueno_stats_json(&s, alg, small, sizeof small) == n &&
            strlen(small) == sizeof small - 1 &&
            memcmp(small, js, sizeof small - 1) == 0,
        "%s: truncated output", d.label);
  free(js);
  dev_close(&d);
}

/* trueno_store_populate: the whole page table at once (16 bytes a page),
 * charged to the limit, and the store works as before. */
static void test_populate(enum trueno_algorithm alg) {
  struct dev d;
  const uint64_t size = 3 << 20; /* 768 pages: two slot chunks, one partial */
  if (dev_open(&d, size, alg, 0))
    return;
  struct trueno_stats before, after;
  trueno_get_stats(d.st, &before);
  CHECK(trueno_store_populate(d.st) == 0, "%s: populate failed", d.label);
  trueno_get_stats(d.st, &after);
  CHECK(after.metadata_bytes - before.metadata_bytes == 2 * 512 * 16,
        "%s: populate added %" PRIu64 " bytes of metadata, not 2 chunks",
        d.label, after.metadata_bytes - before.metadata_bytes);
  CHECK(after.pages_stored == 0, "%s: populate stored pages", d.label);
  dev_check_all(&d, "populated, empty");
  uint8_t page[PG];
  for (size_t i = 0; i < PG; i++)
    page[i] = (uint8_t)(i * 7 / 5);
  CHECK(dev_write(&d, page, PG, size - PG) == 0, "%s: write after populate",
        d.label);
  CHECK(trueno_store_populate(d.st) == 0, "%s: populate twice", d.label);
  dev_check_all(&d, "populated, written");
  dev_close(&d);

  /* A limit below the table: -ENOSPC, nothing else changes. */
  if (dev_open(&d, 64 << 20, alg, 64 << 10))
    return;
  CHECK(trueno_store_populate(d.st) == -ENOSPC,
        "%s: populate under a 64 KiB limit did not fail with ENOSPC", d.label);
  dev_check_all(&d, "populate refused");
  dev_close(&d);
}

int main(void) {
  test_algorithm_names();
  test_create_rejects();
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
    test_same_pages(algs[i]);
    test_populate(algs[i]);
    test_random_raw(algs[i]);
    test_subpage(algs[i]);
    test_unaligned_buffers(algs[i]);
    test_out_of_range(algs[i]);
    test_release(algs[i], 0);
    test_release(algs[i], 1);
    test_extents(algs[i]);
    test_mem_limit(algs[i], 0);
    test_mem_limit(algs[i], 1);
    test_counters(algs[i]);
    test_stats_json(algs[i]);
  }
  return tc_finish();
}
