/* SPDX-License-Identifier: MIT */
#include "page.h"

#include <string.h>

#include "classify.h"
#include "trueno.h"

#define WORDS (TRUENO_PAGE_SIZE / 8)

/* The vector versions, one per instruction set, live in lz4page_impl.h. */
bool trueno_page_same_filled(const void *page, uint64_t *word) {
  return trueno_page_same_filled_simd(page, word);
}

void trueno_page_fill(void *page, uint64_t word) {
  unsigned char *p = page;
  if (word == 0) {
    memset(page, 0, TRUENO_PAGE_SIZE);
    return;
  }
  /* Any alignment: words are written through memcpy. */
  for (unsigned i = 0; i < WORDS; i++)
    memcpy(p + 8 * i, &word, 8);
}
