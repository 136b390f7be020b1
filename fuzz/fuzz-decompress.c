/* libFuzzer target: the lz4page decompressor on arbitrary input.
 *
 * Every supported instruction-set path must give the same verdict and the
 * same page, never touch memory outside its buffers (ASan), and decode
 * every block liblz4 accepts (offset 0 aside) to the page liblz4 makes
 * of it.
 *
 * SPDX-License-Identifier: MIT
 */
#include <lz4.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lz4page.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* liblz4's decoder takes offset 0 (it copies from the output position
 * itself); the format has no such offset and no compressor makes it, and
 * ours refuses it.  Walks the sequences to find one. */
static int has_zero_offset(const uint8_t *p, size_t size) {
  size_t i = 0;
  while (i < size) {
    unsigned token = p[i++];
    size_t lit = token >> 4;
    if (lit == 15) {
      unsigned s;
      do {
        if (i >= size)
          return 0;
        s = p[i++];
        lit += s;
      } while (s == 255);
    }
    if (lit > size - i)
      return 0;
    i += lit;
    if (i == size || size - i < 2)
      return 0;
    if (p[i] == 0 && p[i + 1] == 0)
      return 1;
    i += 2;
    if ((token & 15) == 15) {
      unsigned s;
      do {
        if (i >= size)
          return 0;
        s = p[i++];
      } while (s == 255);
    }
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1u << 16)
    return 0;
  /* Exactly sized heap buffers, so a byte past either end is caught. */
  uint8_t *src = malloc(size ? size : 1);
  uint8_t *page = malloc(LZ4PAGE_SIZE);
  uint8_t *first = malloc(LZ4PAGE_SIZE);
  uint8_t *ref = malloc(LZ4PAGE_SIZE);
  if (size)
    memcpy(src, data, size);
  int r0 = 0, have = 0;
  for (int isa = 0; isa < TRUENO_ISA_COUNT; isa++) {
    if (!trueno_isa_supported((enum trueno_isa)isa))
      continue;
    int r = lz4page_decompress_isa((enum trueno_isa)isa, src, (int)size, page);
    if (r != 0 && r != -1)
      abort();
    if (!have) {
      r0 = r;
      memcpy(first, page, LZ4PAGE_SIZE);
      have = 1;
    } else if (r != r0 || (r == 0 && memcmp(page, first, LZ4PAGE_SIZE)))
      abort(); /* paths disagree */
  }
  int n = LZ4_decompress_safe((const char *)src, (char *)ref, (int)size,
                              LZ4PAGE_SIZE);
  if (n == LZ4PAGE_SIZE && !has_zero_offset(src, size) &&
      (r0 != 0 || memcmp(first, ref, LZ4PAGE_SIZE)))
    abort(); /* a block liblz4 reads as one page, and we do not */
  free(src);
  free(page);
  free(first);
  free(ref);
  return 0;
}
