/* LZ4 page kernels: one work-item per 4096-byte page.
 *
 * lz4_compress: each page into one block of the standard LZ4 block format
 * (lz4's doc/lz4_Block_format.md: the last 5 bytes are literals, the last
 * match starts at least 12 bytes before the end), greedy matching through a
 * hash table of 16-bit positions in local memory (a work-group's tables
 * interleaved), written a word at a time into a fixed slot of SLOT bytes
 * per page; len 0 when the block would not fit in cap bytes
 * (the page is kept raw).  lz4_scan: the exclusive prefix sum of the lengths
 * (one work-group).  lz4_pack: copies the blocks back to back, so only the
 * compressed bytes cross the bus.  lz4_decompress: a bounds-checked decoder
 * (a corrupt block sets its status to -1, never writes outside its page).
 *
 * Build options: -DHASH_LOG=n (table of 2^n entries per work-item),
 * -DSLOT=bytes.  Pages are read as aligned 32-bit words (little-endian
 * devices only; the host checks).
 *
 * SPDX-License-Identifier: MIT
 */
#define PAGE 4096u
#define MINMATCH 4u
#define MFLIMIT 12u
#define LASTLITERALS 5u
#ifndef HASH_LOG
#define HASH_LOG 10
#endif
#ifndef SLOT
#define SLOT 4096u
#endif
#define HSIZE (1u << HASH_LOG)
#define MATCH_START_MAX (PAGE - MFLIMIT) /* last match starts at or before */
#define MATCH_END_MAX (PAGE - LASTLITERALS)

/* 4 bytes at byte position i of the page (i <= 4088). */
uint rd32(__global const uint *w, uint i) {
  ulong x = (ulong)w[i >> 2] | ((ulong)w[(i >> 2) + 1] << 32);
  return (uint)(x >> ((i & 3u) * 8u));
}

uchar rd8(__global const uint *w, uint i) {
  return (uchar)(w[i >> 2] >> ((i & 3u) * 8u));
}

uint hash4(uint v) { return (v * 2654435761u) >> (32 - HASH_LOG); }

uint ctz32(uint x) { return popcount((x & (0u - x)) - 1u); }

/* Bytes a length field of n beyond its nibble takes. */
uint extra_len(uint n) { return n >= 15u ? (n - 15u) / 255u + 1u : 0u; }

/* Output through a 32-bit accumulator: whole aligned words are stored (a
 * quarter of the stores of byte writes; the slot is word-aligned). */
typedef struct {
  __global uint *w;
  uint n;   /* bytes written */
  uint acc; /* the pending bytes of word n / 4 */
} writer;

void put8(writer *b, uint v) {
  uint k = b->n & 3u;
  b->acc |= (v & 0xffu) << (k * 8u);
  b->n++;
  if (k == 3u) {
    b->w[(b->n >> 2) - 1u] = b->acc;
    b->acc = 0;
  }
}

void put32(writer *b, uint v) {
  uint k = b->n & 3u;
  if (k == 0) {
    b->w[b->n >> 2] = v;
  } else {
    b->w[b->n >> 2] = b->acc | (v << (k * 8u));
    b->acc = v >> (32u - k * 8u);
  }
  b->n += 4u;
}

void flush(writer *b) {
  if (b->n & 3u)
    b->w[b->n >> 2] = b->acc;
}

void put_len(writer *b, uint n) {
  n -= 15u;
  while (n >= 255u) {
    put8(b, 255u);
    n -= 255u;
  }
  put8(b, n);
}

/* n literals from page position from (words past the page end are read:
 * the host pads the buffer). */
void put_literals(writer *b, __global const uint *w, uint from,
                         uint n) {
  uint k = 0;
  for (; k + 4u <= n; k += 4u)
    put32(b, rd32(w, from + k));
  for (; k < n; k++)
    put8(b, rd8(w, from + k));
}

void put_sequence_head(writer *b, uint lit, uint ml) {
  put8(b, ((lit < 15u ? lit : 15u) << 4) | (ml < 15u ? ml : 15u));
  if (lit >= 15u)
    put_len(b, lit);
}

/* The hash tables of a work-group are interleaved (entry h of work-item l
 * at h * WG + l): work-items in step touch different banks. */
#define TAB(h) tables[(h) * wg + lid]

__kernel void lz4_compress(__global const uint *in, __global uint *slots,
                           __global uint *lens, uint n, uint cap,
                           __local ushort *tables) {
  uint gid = get_global_id(0);
  if (gid >= n)
    return;
  uint lid = get_local_id(0), wg = get_local_size(0);
  __global const uint *w = in + (size_t)gid * (PAGE / 4);
  writer out = {slots + (size_t)gid * (SLOT / 4), 0, 0};
  for (uint i = 0; i < HSIZE; i++)
    TAB(i) = 0;
  uint anchor = 0, ip = 1;
  TAB(hash4(rd32(w, 0))) = 0;
  for (;;) {
    /* Find a match: step grows after 64 misses, as liblz4 does. */
    uint ref, v, miss = 1u << 6;
    for (;;) {
      if (ip > MATCH_START_MAX)
        goto last;
      v = rd32(w, ip);
      uint h = hash4(v);
      ref = TAB(h);
      TAB(h) = (ushort)ip;
      if (ref < ip && rd32(w, ref) == v)
        break;
      ip += miss++ >> 6;
    }
    /* Extend backwards over pending literals, then forwards. */
    while (ip > anchor && ref > 0 && rd8(w, ip - 1) == rd8(w, ref - 1)) {
      ip--;
      ref--;
    }
    uint p = ip + MINMATCH, q = ref + MINMATCH;
    for (;;) {
      if (p + 4u > MATCH_END_MAX) {
        while (p < MATCH_END_MAX && rd8(w, p) == rd8(w, q)) {
          p++;
          q++;
        }
        break;
      }
      uint x = rd32(w, p) ^ rd32(w, q);
      if (x) {
        p += ctz32(x) >> 3;
        break;
      }
      p += 4u;
      q += 4u;
    }
    uint lit = ip - anchor, ml = p - ip - MINMATCH;
    if (out.n + 1u + extra_len(lit) + lit + 2u + extra_len(ml) > cap)
      goto raw;
    put_sequence_head(&out, lit, ml);
    put_literals(&out, w, anchor, lit);
    uint off = ip - ref;
    put8(&out, off);
    put8(&out, off >> 8);
    if (ml >= 15u)
      put_len(&out, ml);
    ip = p;
    anchor = ip;
    if (ip - 2u <= MATCH_START_MAX)
      TAB(hash4(rd32(w, ip - 2u))) = (ushort)(ip - 2u);
  }
last : {
  uint lit = PAGE - anchor;
  if (out.n + 1u + extra_len(lit) + lit > cap)
    goto raw;
  put_sequence_head(&out, lit, 0);
  put_literals(&out, w, anchor, lit);
  flush(&out);
  lens[gid] = out.n;
  return;
}
raw:
  lens[gid] = 0;
}

/* Exclusive prefix sum of lens[0..n) into offs[0..n], offs[n] the total.
 * One work-group of WG (a power of two) work-items, each summing a run. */
__kernel void lz4_scan(__global const uint *lens, __global uint *offs, uint n,
                       __local uint *sums) {
  uint lid = get_local_id(0), wg = get_local_size(0);
  uint per = (n + wg - 1u) / wg;
  uint lo = min(n, lid * per), hi = min(n, lo + per);
  uint s = 0;
  for (uint i = lo; i < hi; i++)
    s += lens[i];
  sums[lid] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint d = 1; d < wg; d <<= 1) {
    uint t = lid >= d ? sums[lid - d] : 0u;
    barrier(CLK_LOCAL_MEM_FENCE);
    sums[lid] += t;
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  uint acc = sums[lid] - s; /* exclusive */
  for (uint i = lo; i < hi; i++) {
    offs[i] = acc;
    acc += lens[i];
  }
  if (lid == wg - 1u)
    offs[n] = sums[lid];
}

/* One work-group per page copies its block to offs[page]. */
__kernel void lz4_pack(__global const uchar *slots, __global const uint *lens,
                       __global const uint *offs, __global uchar *packed) {
  uint page = get_group_id(0);
  uint len = lens[page];
  __global const uchar *src = slots + (size_t)page * SLOT;
  __global uchar *dst = packed + offs[page];
  for (uint i = get_local_id(0); i < len; i += get_local_size(0))
    dst[i] = src[i];
}

/* Adds a length's extra bytes (255 means more follow) to *n; 0 when the
 * block ends first or the length passes a page. */
int get_len(__global const uchar *s, uint *ip, uint len, uint *n) {
  uint b;
  do {
    if (*ip >= len)
      return 0;
    b = s[(*ip)++];
    *n += b;
  } while (b == 255u && *n < PAGE + 255u);
  return 1;
}

/* Decodes block i (src + offs[i], lens[i] bytes; lens[i] == 0: a raw page,
 * left alone) into pages + i * 4096; status[i] 0 or -1 (corrupt). */
__kernel void lz4_decompress(__global const uchar *src,
                             __global const uint *offs,
                             __global const uint *lens, uint n,
                             __global uchar *pages, __global int *status) {
  uint gid = get_global_id(0);
  if (gid >= n)
    return;
  uint len = lens[gid];
  if (len == 0) {
    status[gid] = 0;
    return;
  }
  __global const uchar *s = src + offs[gid];
  __global uchar *d = pages + (size_t)gid * PAGE;
  uint ip = 0, op = 0;
  for (;;) {
    if (ip >= len)
      goto bad;
    uint token = s[ip++];
    uint lit = token >> 4;
    if (lit == 15u && !get_len(s, &ip, len, &lit))
      goto bad;
    if (lit > len - ip || lit > PAGE - op)
      goto bad;
    for (uint k = 0; k < lit; k++)
      d[op + k] = s[ip + k];
    ip += lit;
    op += lit;
    if (ip == len)
      break;
    if (len - ip < 2u)
      goto bad;
    uint off = (uint)s[ip] | ((uint)s[ip + 1] << 8);
    ip += 2u;
    if (off == 0 || off > op)
      goto bad;
    uint ml = token & 15u;
    if (ml == 15u && !get_len(s, &ip, len, &ml))
      goto bad;
    ml += MINMATCH;
    if (ml > PAGE - op)
      goto bad;
    for (uint k = 0; k < ml; k++)
      d[op + k] = d[op + k - off];
    op += ml;
  }
  status[gid] = op == PAGE ? 0 : -1;
  return;
bad:
  status[gid] = -1;
}
