/* Page classifier.  SPDX-License-Identifier: MIT */
#include "classify.h"

#include <string.h>

#include "lz4page.h"

/* The estimate: a histogram of 512 sampled bytes (8 of every 64: one word
 * per cache line, at a position that moves from line to line so that arrays
 * of structures are not sampled at one field only), and from it the number
 * of pairs of equal sampled bytes, sum c*(c-1)/2.  Bytes drawn uniformly at
 * random give 512*511/2/256 ~ 511 pairs; data LZ4 can shrink by 1/8 has
 * repeats, skewed byte values or runs, and many more.  Pages at or under
 * RAW_PAIRS are stored raw.  The threshold leaves a wide margin: on the
 * corpus it keeps every page that compresses (see tests/test-lz4page.c,
 * which checks the stored size against always compressing). */
#define SAMPLE_WORDS 64
#define RAW_PAIRS 700

bool trueno_page_worth_compressing(const void *page) {
  const uint8_t *p = page;
  /* Four histograms, one per byte lane pair, so increments of equal bytes
   * do not wait on each other. */
  uint16_t h[4][256];
  memset(h, 0, sizeof h);
  for (unsigned i = 0; i < SAMPLE_WORDS; i++) {
    uint64_t w;
    memcpy(&w, p + i * 64 + (i * 24 & 56), 8);
    h[0][w & 255]++;
    h[1][w >> 8 & 255]++;
    h[2][w >> 16 & 255]++;
    h[3][w >> 24 & 255]++;
    h[0][w >> 32 & 255]++;
    h[1][w >> 40 & 255]++;
    h[2][w >> 48 & 255]++;
    h[3][w >> 56]++;
  }
  uint32_t sq = 0;
  for (unsigned b = 0; b < 256; b++) {
    uint32_t c = (uint32_t)h[0][b] + h[1][b] + h[2][b] + h[3][b];
    sq += c * c;
  }
  uint32_t pairs = (sq - SAMPLE_WORDS * 8) / 2;
  return pairs > RAW_PAIRS;
}

enum trueno_page_class trueno_page_classify(const void *page, uint64_t *word) {
  if (trueno_page_same_filled_simd(page, word))
    return TRUENO_PAGE_SAME;
  return trueno_page_worth_compressing(page) ? TRUENO_PAGE_COMPRESS
                                             : TRUENO_PAGE_RAW;
}
