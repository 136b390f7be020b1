/* SPDX-License-Identifier: MIT */
#include "page.h"

#include <string.h>

#include "trueno.h"

#define WORDS (TRUENO_PAGE_SIZE / 8)

bool trueno_page_same_filled(const void *page, uint64_t *word) {
  const uint64_t *w = page;
  uint64_t first = w[0];
  /* Most pages differ early: check the first and last lines before the
   * whole page, then OR the XORs of blocks so the compiler vectorises the
   * loop without a branch per word. */
  if (w[1] != first || w[WORDS - 1] != first)
    return false;
  for (unsigned i = 0; i < WORDS; i += 32) {
    uint64_t acc = 0;
    for (unsigned j = 0; j < 32; j++)
      acc |= w[i + j] ^ first;
    if (acc)
      return false;
  }
  *word = first;
  return true;
}

void trueno_page_fill(void *page, uint64_t word) {
  uint64_t *w = page;
  if (word == 0) {
    memset(page, 0, TRUENO_PAGE_SIZE);
    return;
  }
  for (unsigned i = 0; i < WORDS; i++)
    w[i] = word;
}
