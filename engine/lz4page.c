/* lz4page and classifier dispatch.  SPDX-License-Identifier: MIT */
#include "lz4page.h"

#include "classify.h"

struct isa_ops {
  int (*compress)(struct lz4page_state *, const void *, void *, int);
  int (*decompress)(const void *, int, void *);
  bool (*same_filled)(const void *, uint64_t *);
};

#define OPS(sfx)                                                               \
  {lz4page_compress_##sfx, lz4page_decompress_##sfx,                           \
   trueno_page_same_filled_##sfx}

static const struct isa_ops ops[TRUENO_ISA_COUNT] = {
    [TRUENO_ISA_SCALAR] = OPS(scalar),
#if defined(__x86_64__)
    [TRUENO_ISA_SSE] = OPS(sse),
    [TRUENO_ISA_AVX2] = OPS(avx2),
    [TRUENO_ISA_AVX512] = OPS(avx512),
#elif defined(__aarch64__)
    [TRUENO_ISA_NEON] = OPS(neon),
#endif
};

/* Unsupported paths fall back to scalar, so a bad isa never crashes. */
static const struct isa_ops *ops_for(enum trueno_isa isa) {
  return trueno_isa_supported(isa) && ops[isa].compress ? &ops[isa]
                                                        : &ops[0];
}

int lz4page_compress(struct lz4page_state *state, const void *page, void *dst,
                     int cap) {
  return ops_for(trueno_isa_active())->compress(state, page, dst, cap);
}

int lz4page_decompress(const void *src, int len, void *page) {
  return ops_for(trueno_isa_active())->decompress(src, len, page);
}

int lz4page_compress_isa(enum trueno_isa isa, struct lz4page_state *state,
                         const void *page, void *dst, int cap) {
  return ops_for(isa)->compress(state, page, dst, cap);
}

int lz4page_decompress_isa(enum trueno_isa isa, const void *src, int len,
                           void *page) {
  return ops_for(isa)->decompress(src, len, page);
}

bool trueno_page_same_filled_simd(const void *page, uint64_t *word) {
  return ops_for(trueno_isa_active())->same_filled(page, word);
}

bool trueno_page_same_filled_isa(enum trueno_isa isa, const void *page,
                                 uint64_t *word) {
  return ops_for(isa)->same_filled(page, word);
}
