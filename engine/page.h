/* Page classification.  SPDX-License-Identifier: MIT */
#ifndef TRUENO_PAGE_H
#define TRUENO_PAGE_H

#include <stdbool.h>
#include <stdint.h>

/* True if all 512 8-byte words of the page are equal; *word gets it. */
bool trueno_page_same_filled(const void *page, uint64_t *word);
/* Fills a page with an 8-byte word. */
void trueno_page_fill(void *page, uint64_t word);

#endif
