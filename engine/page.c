/* SPDX-License-Identifier: MIT */
#include "page.h"

#include <string.h>

#include "trueno.h"

#define WORDS (TRUENO_PAGE_SIZE / 8)

/* Callers pass their own buffers at any alignment: words are read and
 * written through memcpy, which compiles to plain unaligned moves. */
static uint64_t word_at(const unsigned char *p, unsigned i) {
  uint64_t w;
  memcpy(&w, p + 8 * i, 8);
  return w;
}

bool trueno_page_same_filled(const void *page, uint64_t *word) {
  const unsigned char *p = page;
  uint64_t first = word_at(p, 0);
  /* Most pages differ early: check the second and last words before the
   * whole page, then OR the XORs of blocks so the compiler vectorises the
   * loop without a branch per word. */
  if (word_at(p, 1) != first || word_at(p, WORDS - 1) != first)
    return false;
  for (unsigned i = 0; i < WORDS; i += 32) {
    uint64_t acc = 0;
    for (unsigned j = 0; j < 32; j++)
      acc |= word_at(p, i + j) ^ first;
    if (acc)
      return false;
  }
  *word = first;
  return true;
}

void trueno_page_fill(void *page, uint64_t word) {
  unsigned char *p = page;
  if (word == 0) {
    memset(page, 0, TRUENO_PAGE_SIZE);
    return;
  }
  for (unsigned i = 0; i < WORDS; i++)
    memcpy(p + 8 * i, &word, 8);
}
