/* Page classifier: same-filled pages (vector compares) and a cheap
 * compressibility estimate, so pages LZ4 would not shrink enough are stored
 * raw without a compression attempt.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_CLASSIFY_H
#define TRUENO_CLASSIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"

enum trueno_page_class {
  TRUENO_PAGE_SAME = 0,     /* all 512 8-byte words equal */
  TRUENO_PAGE_RAW = 1,      /* estimated not to compress: store raw */
  TRUENO_PAGE_COMPRESS = 2, /* worth a compression attempt */
};

/* True if all 512 8-byte words of the page are equal; *word gets it.
 * Dispatched by CPU (cpu.h). */
bool trueno_page_same_filled_simd(const void *page, uint64_t *word);
bool trueno_page_same_filled_isa(enum trueno_isa isa, const void *page,
                                 uint64_t *word);

/* False when a sample of the page's bytes is so evenly spread that the page
 * would almost surely not compress to 3584 bytes (7/8 of a page).  Cheaper
 * for a page that looks compressible than for one that does not
 * (docs/measurements.md).
 * Never false for a same-filled page. */
bool trueno_page_worth_compressing(const void *page);

/* Both: SAME (and *word), RAW or COMPRESS. */
enum trueno_page_class trueno_page_classify(const void *page, uint64_t *word);

#define CLASSIFY_DECLARE(sfx)                                                  \
  bool trueno_page_same_filled_##sfx(const void *page, uint64_t *word);
CLASSIFY_DECLARE(scalar)
CLASSIFY_DECLARE(sse)
CLASSIFY_DECLARE(avx2)
CLASSIFY_DECLARE(avx512)
CLASSIFY_DECLARE(neon)
#undef CLASSIFY_DECLARE

#endif
