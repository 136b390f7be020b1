/* libFuzzer target: pages built from arbitrary input through the lz4page
 * compressor.
 *
 * The input is tiled over a page (so short inputs make the repetitive pages
 * LZ4 is for); its first byte picks the output capacity.  Every supported
 * path must make the same block (a deterministic parse), the block must fit
 * the capacity or be 0 exactly when it cannot, and both our decompressor and
 * liblz4's must give the page back.  liblz4's own block for the page must
 * decode with ours.
 *
 * SPDX-License-Identifier: MIT
 */
#include <lz4.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lz4page.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct lz4page_state st;
  if (size == 0)
    return 0;
  uint8_t *page = malloc(LZ4PAGE_SIZE);
  uint8_t *back = malloc(LZ4PAGE_SIZE);
  for (size_t i = 0; i < LZ4PAGE_SIZE; i++)
    page[i] = data[i % size];
  /* Capacities: the engine's 3584, a full bound, or a small one. */
  int cap = data[0] < 128 ? 3584 : data[0] < 192 ? LZ4PAGE_DIRECT_CAP
                                                 : 16 + data[0] * 8;
  uint8_t *full = malloc(LZ4PAGE_DIRECT_CAP);
  int nfull = lz4page_compress_isa(TRUENO_ISA_SCALAR, &st, page, full,
                                   LZ4PAGE_DIRECT_CAP);
  if (nfull <= 0 || nfull > LZ4PAGE_BOUND)
    abort();
  uint8_t *dst = malloc((size_t)cap), *first = malloc((size_t)cap);
  int n0 = -1;
  for (int isa = 0; isa < TRUENO_ISA_COUNT; isa++) {
    if (!trueno_isa_supported((enum trueno_isa)isa))
      continue;
    int n = lz4page_compress_isa((enum trueno_isa)isa, &st, page, dst, cap);
    if (n < 0 || n > cap || (n == 0) != (nfull > cap))
      abort();
    if (n && (n != nfull || memcmp(dst, full, (size_t)n)))
      abort(); /* paths made different blocks */
    if (n0 < 0) {
      n0 = n;
      memcpy(first, dst, (size_t)n);
    }
    if (n) {
      memset(back, 0xa5, LZ4PAGE_SIZE);
      if (lz4page_decompress_isa((enum trueno_isa)isa, dst, n, back) != 0 ||
          memcmp(back, page, LZ4PAGE_SIZE))
        abort();
      if (LZ4_decompress_safe((const char *)dst, (char *)back, n,
                              LZ4PAGE_SIZE) != LZ4PAGE_SIZE ||
          memcmp(back, page, LZ4PAGE_SIZE))
        abort(); /* liblz4 cannot read our block */
    }
  }
  /* liblz4's block, at an acceleration picked by the input. */
  char *lb = malloc((size_t)LZ4_compressBound(LZ4PAGE_SIZE));
  int ln = LZ4_compress_fast((const char *)page, lb, LZ4PAGE_SIZE,
                             LZ4_compressBound(LZ4PAGE_SIZE),
                             1 + data[size - 1] % 8);
  uint8_t *lexact = malloc((size_t)ln);
  memcpy(lexact, lb, (size_t)ln);
  if (lz4page_decompress(lexact, ln, back) != 0 ||
      memcmp(back, page, LZ4PAGE_SIZE))
    abort(); /* we cannot read liblz4's block */
  free(lexact);
  free(lb);
  free(dst);
  free(first);
  free(full);
  free(page);
  free(back);
  return 0;
}
