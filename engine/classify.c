/* Page classifier.  SPDX-License-Identifier: MIT */
#include "classify.h"

#include <string.h>

#include "lz4page.h"
#include "trueno.h"

/* The estimate: bytes sampled from the page (8 of every 64: one word per
 * cache line, at a position that moves from line to line, with a period
 * of 64 lines and not 8-byte aligned, so that arrays of structures are not
 * sampled at one field only and a byte position with few values (the low
 * byte of every word of fio's buffers) spreads over the lanes) go into four
 * byte histograms (by byte lane, so increments of equal bytes do not wait on
 * each other), counting pairs of equal bytes as they come.  Data LZ4 can
 * shrink by 1/8 has repeats, skewed byte values or runs, and many pairs;
 * bytes drawn uniformly at random have few.  Measured over 20000 random
 * pages: at most 24 pairs after 16 words, at most 176 after 64.
 *
 * Almost every page of real memory compresses, so the first 16 words
 * (lines 0-15) decide most pages (more than EARLY_PAIRS: worth a try).
 * Pages that look random there go on with 16 lines spread over the rest
 * of the page (every third line from 16), so that 32 words see all of it
 * at half density: random pages have at most 60 pairs there (100000
 * pages), and RAW_PAIRS_HALF or fewer is raw unless the page repeats its
 * last word, which decides a random page for about half the cost of 64
 * words.  Pages in between are sampled on, over the remaining lines, to
 * 64 words and stored raw at RAW_PAIRS or fewer without a repeat.  On
 * the corpus this keeps every page that compresses but a handful
 * (tests/test-lz4page.c checks the stored size against always
 * compressing: +0.01 %, and synthetic compressible pages). */
#define EARLY_WORDS 16
#define EARLY_PAIRS 40
#define HALF_WORDS 32
#define RAW_PAIRS_HALF 64
#define SAMPLE_WORDS 64
#define RAW_PAIRS 220
#define RAW_FIELDS_HALF 6
#define RAW_FIELDS 12

/* The i-th line sampled: 0-15, then 16, 19, ... 61, then the others. */
static const uint8_t line_order[SAMPLE_WORDS] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 19, 22, 25, 28, 31, 34, 37, 40, 43, 46, 49, 52, 55, 58, 61,
    17, 18, 20, 21, 23, 24, 26, 27, 29, 30, 32, 33, 35, 36, 38, 39,
    41, 42, 44, 45, 47, 48, 50, 51, 53, 54, 56, 57, 59, 60, 62, 63,
};

/* True if w, the word at off, holds four or more zero bytes and the word
 * after it (before it, at the page's end) does not: a short field of
 * zeros among other bytes, such as the offsets and times fio stamps into
 * its "random" buffers every 64 bytes.  LZ4 gains 3-4 bytes on such a
 * field, so their zeros must not count as the skew of a compressible
 * page; counted apart, they decide only when they are a fifth of the
 * words or more (LZ4 then gains 1/8 of the page from them alone). */
static inline unsigned zero_bytes(uint64_t w) {
  const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
  uint64_t z = ~(((w & low7) + low7) | w | low7); /* 0x80 where 0 */
  return (unsigned)(((z >> 7) * 0x0101010101010101ull) >> 56);
}

static bool isolated_field(const uint8_t *p, unsigned off, uint64_t w) {
  /* Most words of a random page have no zero byte: one test decides. */
  if (!((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull))
    return false;
  if (zero_bytes(w) < 4)
    return false;
  uint64_t n;
  memcpy(&n, p + (off + 16 <= TRUENO_PAGE_SIZE ? off + 8 : off - 8), 8);
  return zero_bytes(n) < 4;
}

/* True if the page's last 8 bytes occur earlier in it: a page that
 * repeats a phrase of random bytes has no skew for the histograms to see,
 * but LZ4 finds its repeats.  memchr scans with vector instructions. */
static bool repeats_last_word(const uint8_t *p) {
  const uint8_t *last = p + TRUENO_PAGE_SIZE - 8;
  for (const uint8_t *s = p; (s = memchr(s, *last, (size_t)(last - s)));
       s++)
    if (!memcmp(s, last, 8))
      return true;
  return false;
}

bool trueno_page_worth_compressing(const void *page) {
  const uint8_t *p = page;
  uint8_t h[4][256]; /* at most 2 * SAMPLE_WORDS = 128 per histogram */
  memset(h, 0, sizeof h);
  unsigned pairs = 0, fields = 0;
  for (unsigned i = 0; i < SAMPLE_WORDS; i++) {
    unsigned l = line_order[i];
    unsigned off = l * 64 + ((l * 24 + (l >> 3) * 8) & 56) + ((l * 3 + 1) & 7);
    uint64_t w;
    memcpy(&w, p + off, 8);
    if (isolated_field(p, off, w)) {
      fields++;
    } else {
      pairs += h[0][w & 255]++;
      pairs += h[1][w >> 8 & 255]++;
      pairs += h[2][w >> 16 & 255]++;
      pairs += h[3][w >> 24 & 255]++;
      pairs += h[0][w >> 32 & 255]++;
      pairs += h[1][w >> 40 & 255]++;
      pairs += h[2][w >> 48 & 255]++;
      pairs += h[3][w >> 56]++;
    }
    /* Pairs only grow, so answering as soon as they pass EARLY_PAIRS
     * decides as a look at all EARLY_WORDS would: a page of small values
     * gets there in 4 words. */
    if (i < EARLY_WORDS && pairs > EARLY_PAIRS)
      return true;
    if (i == HALF_WORDS - 1 && pairs <= RAW_PAIRS_HALF &&
        fields <= RAW_FIELDS_HALF)
      return repeats_last_word(p);
  }
  return pairs > RAW_PAIRS || fields > RAW_FIELDS || repeats_last_word(p);
}

enum trueno_page_class trueno_page_classify(const void *page, uint64_t *word) {
  if (trueno_page_same_filled_simd(page, word))
    return TRUENO_PAGE_SAME;
  return trueno_page_worth_compressing(page) ? TRUENO_PAGE_COMPRESS
                                             : TRUENO_PAGE_RAW;
}
