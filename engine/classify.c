/* Page classifier.  SPDX-License-Identifier: MIT */
#include "classify.h"

#include <string.h>

#include "lz4page.h"

/* The estimate: bytes sampled from the page (8 of every 64: one word per
 * cache line, at a position that moves from line to line so that arrays of
 * structures are not sampled at one field only) go into four byte
 * histograms (by byte lane, so increments of equal bytes do not wait on
 * each other), counting pairs of equal bytes as they come.  Data LZ4 can
 * shrink by 1/8 has repeats, skewed byte values or runs, and many pairs;
 * bytes drawn uniformly at random have few.  Measured over 20000 random
 * pages: at most 24 pairs after 16 words, at most 176 after 64.
 *
 * Almost every page of real memory compresses, so the first 16 words
 * decide most pages (more than EARLY_PAIRS: worth a try); only
 * pages that look random there are sampled on to 64 words and stored raw
 * at RAW_PAIRS or fewer.  On the corpus this keeps every page that
 * compresses but a handful (tests/test-lz4page.c checks the stored size
 * against always compressing: +0.01 %). */
#define EARLY_WORDS 16
#define EARLY_PAIRS 40
#define SAMPLE_WORDS 64
#define RAW_PAIRS 220

bool trueno_page_worth_compressing(const void *page) {
  const uint8_t *p = page;
  uint8_t h[4][256]; /* at most 2 * SAMPLE_WORDS = 128 per histogram */
  memset(h, 0, sizeof h);
  unsigned pairs = 0;
  for (unsigned i = 0; i < SAMPLE_WORDS; i++) {
    uint64_t w;
    memcpy(&w, p + i * 64 + (i * 24 & 56), 8);
    pairs += h[0][w & 255]++;
    pairs += h[1][w >> 8 & 255]++;
    pairs += h[2][w >> 16 & 255]++;
    pairs += h[3][w >> 24 & 255]++;
    pairs += h[0][w >> 32 & 255]++;
    pairs += h[1][w >> 40 & 255]++;
    pairs += h[2][w >> 48 & 255]++;
    pairs += h[3][w >> 56]++;
    /* Pairs only grow, so answering as soon as they pass EARLY_PAIRS
     * decides as a look at all EARLY_WORDS would: a page of small values
     * gets there in 4 words. */
    if (i < EARLY_WORDS && pairs > EARLY_PAIRS)
      return true;
  }
  return pairs > RAW_PAIRS;
}

enum trueno_page_class trueno_page_classify(const void *page, uint64_t *word) {
  if (trueno_page_same_filled_simd(page, word))
    return TRUENO_PAGE_SAME;
  return trueno_page_worth_compressing(page) ? TRUENO_PAGE_COMPRESS
                                             : TRUENO_PAGE_RAW;
}
