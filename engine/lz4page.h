/* lz4page: an LZ4 block codec for one 4096-byte page.
 *
 * Output is the LZ4 block format (lz4's doc/lz4_Block_format.md): liblz4's
 * LZ4_decompress_safe decodes every block lz4page_compress makes, and
 * lz4page_decompress decodes every block liblz4 makes for a page.
 *
 * Written for pages, not streams: positions are 12-bit, offsets never need
 * a range check, two hash tables (8-byte sequences for long matches, then
 * 4-byte ones) take 12 KiB of u16 (one L1-resident memset per page), the
 * last match's offset is tried right after each match (memory holds arrays
 * of structures), literals and matches are copied with
 * fixed-size overlapping moves into buffers with slack, short matches are
 * copied without a branch on their length (8-byte moves at offsets of 8 or
 * more, which the store buffer forwards to the next match that reads them;
 * a shuffle makes the pattern below 8), runs of period 1, 2, 4 or 8 are
 * filled 32/64 bytes at a time, and match extension compares two words,
 * then 16/32/64 bytes at a time.  One source (lz4page_impl.h) is compiled
 * once per instruction set; cpu.c picks one at first use.
 *
 * Both directions are bound by the instructions they retire, not by
 * stalls, so the code is shaped to retire fewer (one load and one multiply
 * for both hashes, probes two to a bound check, the token written once);
 * vector compares that lengthen the serial parse are left out, and no
 * parsing shortcut is taken that would put the ratio below liblz4's.
 * Measurements and the variants tried: docs/lz4-codec.md.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_LZ4PAGE_H
#define TRUENO_LZ4PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"

#define LZ4PAGE_SIZE 4096
/* Largest block lz4page_compress can make (LZ4_compressBound(4096)). */
#define LZ4PAGE_BOUND (LZ4PAGE_SIZE + LZ4PAGE_SIZE / 255 + 16)
/* Two tables of u16 positions (12 KiB in all, in L1): 4096 for 4-byte
 * sequences, 2048 for 8-byte ones (a larger one costs more speed than it
 * gains ratio: docs/lz4-codec.md). */
#define LZ4PAGE_HASH_LOG 12
#define LZ4PAGE_HASH8_LOG 11
/* With cap >= LZ4PAGE_DIRECT_CAP the block is written straight into dst;
 * below, into the state's buffer (which has slack) and copied. */
#define LZ4PAGE_SLACK 64
#define LZ4PAGE_DIRECT_CAP (LZ4PAGE_BOUND + LZ4PAGE_SLACK)

struct lz4page_state {
  uint16_t table[1u << LZ4PAGE_HASH_LOG];
  uint16_t table8[1u << LZ4PAGE_HASH8_LOG];
  uint8_t out[LZ4PAGE_BOUND + LZ4PAGE_SLACK];
} __attribute__((aligned(64)));

/* Compresses one page into dst (cap bytes).  Returns the block's length, or
 * 0 when it would not fit in cap (nothing useful is left in dst then).
 * state: any struct lz4page_state, reused from page to page, any content. */
int lz4page_compress(struct lz4page_state *state, const void *page, void *dst,
                     int cap);
/* Decodes a block into exactly 4096 bytes at page.  Returns 0, or -1 when the
 * block is corrupt, truncated, or does not decode to exactly one page; never
 * reads outside src[0..len) nor writes outside page[0..4096). */
int lz4page_decompress(const void *src, int len, void *page);

/* The same, on one instruction-set path (it must be supported: see cpu.h). */
int lz4page_compress_isa(enum trueno_isa isa, struct lz4page_state *state,
                         const void *page, void *dst, int cap);
int lz4page_decompress_isa(enum trueno_isa isa, const void *src, int len,
                           void *page);

/* Per-ISA entry points (lz4page_<isa>.c), behind the dispatch above. */
#define LZ4PAGE_DECLARE(sfx)                                                   \
  int lz4page_compress_##sfx(struct lz4page_state *state, const void *page,    \
                             void *dst, int cap);                              \
  int lz4page_decompress_##sfx(const void *src, int len, void *page);
LZ4PAGE_DECLARE(scalar)
LZ4PAGE_DECLARE(sse)
LZ4PAGE_DECLARE(avx2)
LZ4PAGE_DECLARE(avx512)
LZ4PAGE_DECLARE(neon)
#undef LZ4PAGE_DECLARE

#endif
