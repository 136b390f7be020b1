/* The lz4page codec and the page classifier, written once and compiled once
 * per instruction set: each lz4page_<isa>.c defines LZ4P_SFX and one of
 * LZ4P_SCALAR, LZ4P_SSE, LZ4P_AVX2, LZ4P_AVX512, LZ4P_NEON, then includes
 * this file.  Everything here is static except the FN(...) entry points.
 *
 * LZ4 block format: a block is a series of sequences, each a token (high
 * nibble literal count, low nibble match length - 4; 15 means more length
 * bytes follow, 255 meaning "add and continue"), the literals, a 2-byte
 * little-endian offset and the extra match length bytes.  The last sequence
 * has only literals.  The last 5 bytes are literals and the last match
 * starts at least 12 bytes before the end.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <string.h>

#include "classify.h"
#include "lz4page.h"

#if defined(LZ4P_SSE) || defined(LZ4P_AVX2) || defined(LZ4P_AVX512)
#include <immintrin.h>
#define LZ4P_X86 1
#endif
#ifdef LZ4P_NEON
#include <arm_neon.h>
#endif

#define LZ4P_CAT2(a, b) a##_##b
#define LZ4P_CAT(a, b) LZ4P_CAT2(a, b)
#define FN(name) LZ4P_CAT(name, LZ4P_SFX)

#define MINMATCH 4
#define LASTLITERALS 5
#define MFLIMIT 12
/* After 2^SKIP_TRIGGER failed probes in a row the search steps 2 bytes,
 * then 3, ...: sooner than liblz4 (6), which pays on text and other
 * literal-heavy pages for little ratio (docs/lz4-codec.md). */
#define SKIP_TRIGGER 5

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef uint8_t u8;

static inline uint32_t rd32(const u8 *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint64_t rd64(const u8 *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline unsigned rd16(const u8 *p) {
  return (unsigned)p[0] | (unsigned)p[1] << 8;
}
static inline void wr16(u8 *p, unsigned v) {
  p[0] = (u8)v;
  p[1] = (u8)(v >> 8);
}

/* ---- copies ----------------------------------------------------------- */

/* Copies exactly W bytes.  16 on every vector path: wider moves that read
 * bytes written a moment ago by narrower ones stall on store forwarding,
 * and most sequences are short (32-byte moves were slower). */
#if defined(LZ4P_X86)
#define W 16
static inline void copyw(u8 *d, const u8 *s) {
  _mm_storeu_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
}
#elif defined(LZ4P_NEON)
#define W 16
static inline void copyw(u8 *d, const u8 *s) { vst1q_u8(d, vld1q_u8(s)); }
#else
#define W 8
static inline void copyw(u8 *d, const u8 *s) {
  uint64_t v = rd64(s);
  memcpy(d, &v, 8);
}
#endif

/* Copies n bytes in W-byte steps: may read and write up to W-1 bytes past
 * the end.  Source and destination at least W apart (or not overlapping). */
static inline void wildcopy(u8 *d, const u8 *s, size_t n) {
  u8 *const e = d + n;
  do {
    copyw(d, s);
    d += W;
    s += W;
  } while (d < e);
}

/* Copies 8 bytes. */
static inline void copy8(u8 *d, const u8 *s) {
  uint64_t v = rd64(s);
  memcpy(d, &v, 8);
}

/* Copies 16 bytes. */
static inline void copy16(u8 *d, const u8 *s) {
#if defined(LZ4P_X86)
  _mm_storeu_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
#elif defined(LZ4P_NEON)
  vst1q_u8(d, vld1q_u8(s));
#else
  copyw(d, s);
  copyw(d + 8, s + 8);
#endif
}

#if defined(LZ4P_X86) || defined(LZ4P_NEON)
/* pat_idx[k][i] = i % k: a shuffle that repeats the first k bytes
 * (0 < k < 16).  pat_dist[k]: the least multiple of k that is 16 or more. */
static const u8 pat_idx[16][16] __attribute__((aligned(16))) = {
#define R(o)                                                                   \
  {0 % o, 1 % o, 2 % o, 3 % o, 4 % o, 5 % o, 6 % o, 7 % o,                     \
   8 % o, 9 % o, 10 % o, 11 % o, 12 % o, 13 % o, 14 % o, 15 % o}
    {0},   R(1),  R(2),  R(3),  R(4),  R(5),  R(6),  R(7), R(8),
    R(9), R(10), R(11), R(12), R(13), R(14), R(15)
#undef R
};
static const u8 pat_dist[16] = {0,  16, 16, 18, 16, 20, 18, 21,
                                16, 18, 20, 22, 24, 26, 28, 30};

static inline void store_pattern16(u8 *d, const u8 *s, size_t k) {
#if defined(LZ4P_NEON)
  vst1q_u8(d, vqtbl1q_u8(vld1q_u8(s), vld1q_u8(pat_idx[k])));
#else
  _mm_storeu_si128(
      (__m128i *)d,
      _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)s),
                       _mm_load_si128((const __m128i *)pat_idx[k])));
#endif
}

/* A match of at most 32 bytes at an offset below 16, without a branch:
 * the first 16 bytes through a shuffle, the next 16 from a multiple of off
 * at least 16 back, now all written.  Writes 32 bytes; reads from d - off
 * on. */
static inline void short_match(u8 *d, const u8 *s, size_t off) {
  store_pattern16(d, s, off);
  copy16(d + 16, d + 16 - pat_dist[off]);
}
#endif

/* A match copy: n bytes from d - off to d, the regions may overlap (off < n
 * repeats a pattern).  May write up to 64 bytes past d + n. */
static inline void match_copy_wild(u8 *d, const u8 *s, size_t n) {
  size_t off = (size_t)(d - s);
  u8 *const e = d + n;
  if (off >= W) {
    wildcopy(d, s, n);
    return;
  }
#if defined(LZ4P_X86) || defined(LZ4P_NEON)
  /* off < 16: shuffle the first off bytes into a 16-byte pattern and store
   * it every 16 - 16 % off bytes, where the pattern's phase repeats. */
  size_t step = 16 - 16 % off;
#if defined(LZ4P_NEON)
  uint8x16_t p = vqtbl1q_u8(vld1q_u8(s), vld1q_u8(pat_idx[off]));
  do {
    vst1q_u8(d, p);
    d += step;
  } while (d < e);
#else
  __m128i p = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)s),
                               _mm_load_si128((const __m128i *)pat_idx[off]));
#if defined(LZ4P_AVX512)
  if (step == 16) { /* periods 1, 2, 4, 8: whole cache lines at a time */
    __m512i p4 = _mm512_broadcast_i32x4(p);
    do {
      _mm512_storeu_si512(d, p4);
      d += 64;
    } while (d < e);
    return;
  }
#elif defined(LZ4P_AVX2)
  if (step == 16) {
    __m256i p2 = _mm256_broadcastsi128_si256(p);
    do {
      _mm256_storeu_si256((__m256i *)d, p2);
      d += 32;
    } while (d < e);
    return;
  }
#endif
  do {
    _mm_storeu_si128((__m128i *)d, p);
    d += step;
  } while (d < e);
#endif
#else
  /* Scalar: 8 bytes one at a time, then 8-byte copies from a distance that
   * is a multiple of off and at least 8. */
  for (int i = 0; i < 8; i++)
    d[i] = s[i];
  size_t d2 = off * ((8 + off - 1) / off);
  s = d + 8 - d2;
  d += 8;
  while (d < e) {
    copyw(d, s);
    d += 8;
    s += 8;
  }
#endif
}

/* ---- match length ----------------------------------------------------- */

static inline unsigned ctz64(uint64_t v) {
  return (unsigned)__builtin_ctzll(v);
}

/* Number of equal bytes at p and m, stopping at limit (p < limit, m < p). */
static inline size_t count_match(const u8 *p, const u8 *m, const u8 *limit) {
  const u8 *const start = p;
  /* Most matches end within 16 bytes (half within 8): word compares answer
   * those sooner than a vector compare, whose mask takes longer to reach a
   * branch (two words first rather than one: docs/lz4-codec.md). */
  for (int i = 0; i < 2 && LIKELY(p + 8 <= limit); i++) {
    uint64_t x = rd64(p) ^ rd64(m);
    if (x)
      return (size_t)(p - start) + ctz64(x) / 8;
    p += 8;
    m += 8;
  }
#if defined(LZ4P_AVX512)
  while (LIKELY(p + 64 <= limit)) {
    uint64_t ne = _mm512_cmpneq_epi8_mask(_mm512_loadu_si512(p),
                                          _mm512_loadu_si512(m));
    if (ne)
      return (size_t)(p - start) + ctz64(ne);
    p += 64;
    m += 64;
  }
#elif defined(LZ4P_AVX2)
  while (LIKELY(p + 32 <= limit)) {
    __m256i a = _mm256_loadu_si256((const __m256i *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)m);
    uint32_t eq = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, b));
    if (eq != 0xffffffffu)
      return (size_t)(p - start) + (unsigned)__builtin_ctz(~eq);
    p += 32;
    m += 32;
  }
#elif defined(LZ4P_SSE)
  while (LIKELY(p + 16 <= limit)) {
    __m128i a = _mm_loadu_si128((const __m128i *)p);
    __m128i b = _mm_loadu_si128((const __m128i *)m);
    unsigned eq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, b));
    if (eq != 0xffffu)
      return (size_t)(p - start) + (unsigned)__builtin_ctz(~eq);
    p += 16;
    m += 16;
  }
#elif defined(LZ4P_NEON)
  while (LIKELY(p + 16 <= limit)) {
    uint8x16_t ne = vmvnq_u8(vceqq_u8(vld1q_u8(p), vld1q_u8(m)));
    /* 4 bits per byte. */
    uint64_t bits = vget_lane_u64(
        vreinterpret_u64_u8(vshrn_n_u16(vreinterpretq_u16_u8(ne), 4)), 0);
    if (bits)
      return (size_t)(p - start) + ctz64(bits) / 4;
    p += 16;
    m += 16;
  }
#endif
  while (p + 8 <= limit) {
    uint64_t x = rd64(p) ^ rd64(m);
    if (x)
      return (size_t)(p - start) + ctz64(x) / 8;
    p += 8;
    m += 8;
  }
  while (p < limit && *p == *m) {
    p++;
    m++;
  }
  return (size_t)(p - start);
}

/* Number of equal bytes just before p and m, at most lim. */
static inline size_t count_back(const u8 *p, const u8 *m, size_t lim) {
  size_t n = 0;
  while (lim >= 8) {
    uint64_t x = rd64(p - 8) ^ rd64(m - 8);
    if (x)
      return n + (unsigned)__builtin_clzll(x) / 8;
    n += 8;
    p -= 8;
    m -= 8;
    lim -= 8;
  }
  while (lim && p[-1] == m[-1]) {
    n++;
    p--;
    m--;
    lim--;
  }
  return n;
}

/* ---- compressor ------------------------------------------------------- */

/* Two tables, probed at each position: 8-byte sequences (long matches,
 * tried first) and 4-byte ones.  In memory pages of structures and pointers
 * the 8-byte table finds the longer match that the 4-byte table, where
 * frequent 4-byte values evict each other, misses; the ratio it gains is
 * worth its cost in speed (docs/lz4-codec.md).  The short hash stays at 4
 * bytes: 5 is faster but puts the ratio on text pages below liblz4's.
 *
 * Both hashes come from one product: its low 32 bits depend only on the
 * low 4 bytes of v, its high bits on all 8. */
#define HASH_MUL 0xCF1BBCDCB7A56463ull
#define HASH2(v, h4, h8)                                                       \
  do {                                                                         \
    uint64_t pr_ = (v)*HASH_MUL;                                               \
    (h4) = (size_t)((uint32_t)pr_ >> (32 - LZ4PAGE_HASH_LOG));                 \
    (h8) = (size_t)(pr_ >> (64 - LZ4PAGE_HASH8_LOG));                          \
  } while (0)
static inline size_t hash8(const u8 *p) {
  return (size_t)((rd64(p) * HASH_MUL) >> (64 - LZ4PAGE_HASH8_LOG));
}

static inline u8 *put_length(u8 *op, size_t n) {
  for (; n >= 255; n -= 255)
    *op++ = 255;
  *op++ = (u8)n;
  return op;
}

int FN(lz4page_compress)(struct lz4page_state *st, const void *page,
                         void *dst, int cap) {
  const u8 *const base = page;
  const u8 *const iend = base + LZ4PAGE_SIZE;
  const u8 *const mflimit = iend - MFLIMIT; /* last position a match starts */
  const u8 *const matchlimit = iend - LASTLITERALS;
  if (cap <= 0)
    return 0;
  u8 *const ostart = cap >= LZ4PAGE_DIRECT_CAP ? (u8 *)dst : st->out;
  u8 *op = ostart;
  u8 *const ocap = ostart + cap;
  uint16_t *const tab = st->table;
  const u8 *ip = base, *anchor = base, *match;
  u8 *token;
  size_t rep = 1; /* the last match's offset */

  /* Every slot holds position 0: that inserts the first position. */
  memset(tab, 0, sizeof st->table);
  uint16_t *const t8 = st->table8;
  memset(t8, 0, sizeof st->table8);
  ip++;

  for (;;) {
    /* Find a match: probe each position (the 8-byte table, then the
     * 4-byte table), stepping further after a run of misses.  The
     * compressor spends most of its time retiring instructions (~3.9 a
     * cycle, lz4page.h), about a third of them here, so the search runs
     * as few as it can: the next position's 8 bytes are loaded once and
     * hashed while this one is checked, the first 2^SKIP_TRIGGER positions
     * are probed two to a bound check, and the last offset is tried only
     * after a match. */
    {
      uint64_t fv = rd64(ip); /* the bytes at the position to probe */
      size_t h, h8;
      HASH2(fv, h, h8);
#define PROBE(next)                                                            \
  do {                                                                         \
    const uint64_t cv = fv;                                                    \
    fv = rd64(next);                                                           \
    match = base + tab[h];                                                     \
    const u8 *m8 = base + t8[h8];                                              \
    tab[h] = (uint16_t)(ip - base);                                            \
    t8[h8] = (uint16_t)(ip - base);                                            \
    HASH2(fv, h, h8);                                                          \
    if (rd64(m8) == cv) {                                                      \
      match = m8;                                                              \
      goto found;                                                              \
    }                                                                          \
    if (rd32(match) == (uint32_t)cv)                                           \
      goto found;                                                              \
  } while (0)
      /* PROBE(next) checks ip and loads next, so next <= mflimit. */
      const u8 *const lim1 = mflimit - ip > (1 << SKIP_TRIGGER)
                                 ? ip + (1 << SKIP_TRIGGER)
                                 : mflimit;
      while (LIKELY(ip + 2 <= lim1)) {
        PROBE(ip + 1);
        ip++;
        PROBE(ip + 1);
        ip++;
      }
      if (ip + 1 <= lim1) {
        PROBE(ip + 1);
        ip++;
      }
      /* Then steps of 2, 3, ... (2^SKIP_TRIGGER probes each). */
      const u8 *fip = ip;
      unsigned step = 1, attempts = 2u << SKIP_TRIGGER;
      for (;;) {
        ip = fip;
        fip += step;
        step = attempts++ >> SKIP_TRIGGER;
        if (UNLIKELY(fip > mflimit))
          goto last_literals;
        PROBE(fip);
      }
#undef PROBE
    }
  found:
    /* Extend backwards over the pending literals (most often none). */
    if (ip > anchor && match > base && ip[-1] == match[-1]) {
      size_t lim = (size_t)(ip - anchor), ml = (size_t)(match - base);
      size_t back = count_back(ip, match, lim < ml ? lim : ml);
      ip -= back;
      match -= back;
    }
    unsigned tok; /* the token, written once its match length is known */
    {
      size_t lit = (size_t)(ip - anchor);
      token = op++;
      if (lit >= 15) {
        tok = 15 << 4;
        op = put_length(op, lit - 15);
      } else {
        tok = (unsigned)(lit << 4);
      }
      /* ip <= iend - 12, so W-byte steps could read past the page only
       * when W > 12 and the literals end near it. */
      if (LIKELY(ip + W <= iend))
        wildcopy(op, anchor, lit);
      else
        memcpy(op, anchor, lit);
      op += lit;
      /* The state's buffer has room for any block: give up only here. */
      if (UNLIKELY(op > ocap))
        return 0;
    }
    for (;;) {
      rep = (size_t)(ip - match);
      wr16(op, (unsigned)rep);
      op += 2;
      size_t ml = count_match(ip + MINMATCH, match + MINMATCH, matchlimit);
      ip += MINMATCH + ml;
      if (ml >= 15) {
        *token = (u8)(tok + 15);
        op = put_length(op, ml - 15);
      } else {
        *token = (u8)(tok + ml);
      }
      anchor = ip;
      if (UNLIKELY(ip > mflimit))
        goto last_literals;
      /* Insert a position inside the match into the 8-byte table, then
       * try one right here: the tables, then the last match's offset
       * (structures repeat at a stride).  Inserting it into the 4-byte
       * table too, as liblz4 does, or trying the last offset at every
       * position of the search costs speed for (next to) no ratio
       * (docs/lz4-codec.md). */
      const uint64_t v = rd64(ip);
      size_t h, h8;
      HASH2(v, h, h8);
      match = base + tab[h];
      tab[h] = (uint16_t)(ip - base);
      t8[hash8(ip - 2)] = (uint16_t)(ip - 2 - base);
      const u8 *m8 = base + t8[h8];
      t8[h8] = (uint16_t)(ip - base);
      if (rd64(m8) == v) {
        match = m8;
      } else if (rd32(match) != (uint32_t)v) {
        if (rd32(ip - rep) != (uint32_t)v)
          break;
        match = ip - rep;
      }
      token = op++;
      tok = 0;
    }
    ip++;
  }

last_literals: {
  size_t lit = (size_t)(iend - anchor);
  if (op - ostart + 1 + (ptrdiff_t)(lit + lit / 255) > cap)
    return 0;
  token = op++;
  if (lit >= 15) {
    *token = 15 << 4;
    op = put_length(op, lit - 15);
  } else {
    *token = (u8)(lit << 4);
  }
  memcpy(op, anchor, lit);
  op += lit;
}
  {
    int n = (int)(op - ostart);
    if (n > cap)
      return 0;
    if (ostart != dst)
      memcpy(dst, ostart, (size_t)n);
    return n;
  }
}

/* ---- decompressor ----------------------------------------------------- */

/* Reads the bytes of a length past 15; SIZE_MAX when the input ends or the
 * length passes a page. */
static inline size_t get_length(const u8 **ipp, const u8 *iend) {
  const u8 *ip = *ipp;
  size_t n = 0;
  unsigned s;
  do {
    if (UNLIKELY(ip >= iend))
      return SIZE_MAX;
    s = *ip++;
    n += s;
    if (UNLIKELY(n > LZ4PAGE_SIZE))
      return SIZE_MAX;
  } while (s == 255);
  *ipp = ip;
  return n;
}

/* Margins of the fast loop: with this much input and output left, a
 * sequence with short lengths is copied with fixed-size moves. */
#define FAST_IN 32
#define FAST_OUT 128

int FN(lz4page_decompress)(const void *src, int len, void *page) {
  const u8 *ip = src;
  if (len <= 0)
    return -1;
  const u8 *const iend = ip + len;
  u8 *op = page;
  u8 *const ostart = op;
  u8 *const oend = op + LZ4PAGE_SIZE;

  /* The fast loop.  The last sequence of a valid block ends its input, so
   * it is always left to the careful loop below; a sequence whose long
   * literal run reaches a margin is handed over from its token. */
  if (len > FAST_IN) {
    const u8 *const ilimit = iend - FAST_IN;
    u8 *const olimit = oend - FAST_OUT;
    while (ip < ilimit && op < olimit) {
      const u8 *const seq = ip;
      unsigned token = *ip++;
      size_t lit = token >> 4;
      if (LIKELY(lit != 15)) {
        copy16(op, ip); /* ip + 16 < iend, op + 16 < oend */
        op += lit;
        ip += lit;
      } else {
        size_t x = get_length(&ip, iend);
        if (x == SIZE_MAX)
          return -1;
        lit += x;
        if ((size_t)(iend - ip) < lit + FAST_IN ||
            (size_t)(oend - op) < lit + FAST_OUT) {
          ip = seq;
          break;
        }
        wildcopy(op, ip, lit);
        op += lit;
        ip += lit;
      }
      /* At least FAST_IN - 15 input bytes are left: the offset is there. */
      size_t off = rd16(ip);
      ip += 2;
      size_t ml = token & 15;
      const u8 *m = op - off;
      /* off - 1 wraps for off == 0: one compare rejects both. */
      if (UNLIKELY(off - 1 >= (size_t)(op - ostart)))
        return -1;
      /* A long match's first length byte is added after a branch, not
       * without one: that would put two more operations between one token
       * and the next: faster on the corpus, slower on other memory
       * (docs/lz4-codec.md). */
      if (LIKELY(ml != 15)) {
        /* At most 18 bytes; op is FAST_OUT - 16 or more from the end.
         * Offsets of 8 or more take three 8-byte moves on every path, not
         * 16-byte ones: a match often reads output written a moment ago,
         * which an 8-byte load takes from one 8-byte store while a 16-byte
         * load straddles two and waits for them to reach the cache. */
        if (LIKELY(off >= 8)) {
          copy8(op, m);
          copy8(op + 8, m + 8);
          copy8(op + 16, m + 16);
        } else {
#if defined(LZ4P_X86) || defined(LZ4P_NEON)
          short_match(op, m, off);
#else
          match_copy_wild(op, m, ml + MINMATCH);
#endif
        }
        op += ml + MINMATCH;
        continue;
      }
      size_t x = get_length(&ip, iend);
      if (x == SIZE_MAX)
        return -1;
      ml += x + MINMATCH;
      if (UNLIKELY(ml > (size_t)(oend - op)))
        return -1;
      if (LIKELY((size_t)(oend - op) >= ml + 64)) {
        match_copy_wild(op, m, ml);
        op += ml;
      } else {
        u8 *const e = op + ml;
        if (oend - op > 64 + 16) {
          size_t n = (size_t)(oend - op) - 64;
          match_copy_wild(op, m, n);
          op += n;
        }
        for (; op < e; op++)
          *op = op[-(ptrdiff_t)off];
      }
    }
  }

  for (;;) {
    if (UNLIKELY(ip >= iend))
      return -1;
    unsigned token = *ip++;
    size_t lit = token >> 4;
    if (lit == 15) {
      size_t x = get_length(&ip, iend);
      if (x == SIZE_MAX)
        return -1;
      lit += x;
    }
    if (UNLIKELY(lit > (size_t)(iend - ip) || lit > (size_t)(oend - op)))
      return -1;
    /* Wide copies while both buffers have room past the literals. */
    if (LIKELY((size_t)(iend - ip) >= lit + W &&
               (size_t)(oend - op) >= lit + W))
      wildcopy(op, ip, lit);
    else
      memcpy(op, ip, lit);
    op += lit;
    ip += lit;
    if (ip == iend) /* the last sequence: literals only */
      return op == oend ? 0 : -1;
    if (UNLIKELY(iend - ip < 2))
      return -1;
    size_t off = rd16(ip);
    ip += 2;
    size_t ml = token & 15;
    if (ml == 15) {
      size_t x = get_length(&ip, iend);
      if (x == SIZE_MAX)
        return -1;
      ml += x;
    }
    ml += MINMATCH;
    if (UNLIKELY(off == 0 || off > (size_t)(op - ostart) ||
                 ml > (size_t)(oend - op)))
      return -1;
    if (LIKELY((size_t)(oend - op) >= ml + 64)) {
      match_copy_wild(op, op - off, ml);
      op += ml;
    } else {
      /* Near the end of the page (often a long zero run): wide copies up
       * to 64 bytes before it, then byte by byte. */
      u8 *const e = op + ml;
      if (oend - op > 64 + 16) {
        size_t n = (size_t)(oend - op) - 64;
        match_copy_wild(op, op - off, n);
        op += n;
      }
      for (; op < e; op++)
        *op = op[-(ptrdiff_t)off];
    }
  }
}

/* ---- page classifier -------------------------------------------------- */

bool FN(trueno_page_same_filled)(const void *page, uint64_t *word) {
  const u8 *p = page;
  uint64_t first = rd64(p);
  /* Most pages differ early: the second and last words first. */
  if (rd64(p + 8) != first || rd64(p + LZ4PAGE_SIZE - 8) != first)
    return false;
#if defined(LZ4P_AVX512)
  __m512i f = _mm512_set1_epi64((long long)first);
  for (unsigned i = 0; i < LZ4PAGE_SIZE; i += 512) {
    __m512i acc = _mm512_setzero_si512();
    for (unsigned j = 0; j < 512; j += 64)
      acc = _mm512_or_si512(acc, _mm512_xor_si512(
                                     _mm512_loadu_si512(p + i + j), f));
    if (_mm512_test_epi64_mask(acc, acc))
      return false;
  }
#elif defined(LZ4P_AVX2)
  __m256i f = _mm256_set1_epi64x((long long)first);
  for (unsigned i = 0; i < LZ4PAGE_SIZE; i += 256) {
    __m256i acc = _mm256_setzero_si256();
    for (unsigned j = 0; j < 256; j += 32)
      acc = _mm256_or_si256(
          acc, _mm256_xor_si256(
                   _mm256_loadu_si256((const __m256i *)(p + i + j)), f));
    if (!_mm256_testz_si256(acc, acc))
      return false;
  }
#elif defined(LZ4P_SSE)
  __m128i f = _mm_set1_epi64x((long long)first);
  for (unsigned i = 0; i < LZ4PAGE_SIZE; i += 128) {
    __m128i acc = _mm_setzero_si128();
    for (unsigned j = 0; j < 128; j += 16)
      acc = _mm_or_si128(
          acc,
          _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + i + j)), f));
    if (!_mm_testz_si128(acc, acc))
      return false;
  }
#elif defined(LZ4P_NEON)
  uint64x2_t f = vdupq_n_u64(first);
  for (unsigned i = 0; i < LZ4PAGE_SIZE; i += 128) {
    uint64x2_t acc = vdupq_n_u64(0);
    for (unsigned j = 0; j < 128; j += 16)
      acc = vorrq_u64(acc,
                      veorq_u64(vreinterpretq_u64_u8(vld1q_u8(p + i + j)), f));
    if (vmaxvq_u32(vreinterpretq_u32_u64(acc)))
      return false;
  }
#else
  for (unsigned i = 0; i < LZ4PAGE_SIZE; i += 256) {
    uint64_t acc = 0;
    for (unsigned j = 0; j < 256; j += 8)
      acc |= rd64(p + i + j) ^ first;
    if (acc)
      return false;
  }
#endif
  *word = first;
  return true;
}
