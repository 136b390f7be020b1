/* LZ4 page kernel, cooperative: one work-group of COOP_L work-items per
 * page (appended to lz4page.cl, whose constants and helpers it uses).
 *
 * One work-item per page leaves a GPU with a few warps per multiprocessor
 * at 16384-page batches, each stalled on its own dependent loads: the page
 * kernel is latency-bound.  Here the work-items of a group ("lanes") work
 * on one page together, so a batch is COOP_L times as many work-items and
 * the serial chain of each page is COOP_L times shorter.  The block is the
 * page kernel's format exactly (greedy matching, same limits, same slot,
 * same raw flag), so lz4_scan, lz4_pack and every decoder take it as is.
 *
 * One hash table a page in local memory: 2^COOP_HASH_LOG 32-bit positions
 * (local atomics are 32-bit).  A search step probes a window of COOP_L
 * positions, lane j at ip + j * step: its hash, its table entry, a 4-byte
 * check; and the window's own earlier positions, which are not in the
 * table yet (without them a run of period < COOP_L would find nothing in
 * its first window): each lane claims a bucket of 64 with an atomic
 * minimum of its lane number, and takes the first lane of its bucket as
 * its candidate when their 4 bytes agree: one claim a lane, where comparing
 * every lane with every earlier one took a third of the kernel
 * (docs/opencl.md).  The
 * first lane that matches wins, as the serial loop would have stopped
 * there; the positions up to it go into the table, stored at the start of
 * the next window, behind the barrier that the bucket claims need anyway.
 * With no winner ip moves past the window, and step grows every 64 probes
 * as in liblz4.  A match is extended backwards and forwards by all lanes
 * at once (a byte or a word each, the first mismatch wins), then the lanes
 * write the sequence: lane 0 the token and offset, the others the length
 * bytes and literals, a byte each.
 *
 * Reductions go through local memory with barriers (no sub-group
 * extension needed): control flow around every barrier is uniform, since
 * every lane computes the same ip, anchor and output length from the same
 * reduced values.  Racing table stores are atomic maxima (the newest
 * position, the serial order's last store) and the reductions minima, so
 * a page gives the same block on every run, whatever the order the device
 * runs the lanes in (the tests' cap boundaries rely on it).
 *
 * Build options: -DCOOP_L=n (the work-group size, a power of two >= 4),
 * -DCOOP_HASH_LOG=n (8..12), -DCOOP_STAGE=1 (the page staged in local
 * memory; by default it is read from global memory, through the cache:
 * 4 KiB less local memory a group, so more groups a multiprocessor).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef COOP_L
#define COOP_L 32
#endif
#ifndef COOP_HASH_LOG
#define COOP_HASH_LOG 10
#endif
#ifndef COOP_STAGE
#define COOP_STAGE 0
#endif
#define COOP_HSIZE (1u << COOP_HASH_LOG)
#define COOP_WB 64u /* buckets of a window's positions */
#define NONE 0xffffffffu
#if COOP_STAGE
#define PAGE_AS __local
#else
#define PAGE_AS __global
#endif

uint coop_hash(uint v) { return (v * 2654435761u) >> (32 - COOP_HASH_LOG); }

/* 4 bytes at byte i of the page (i <= 4092: word 1024 is padding, staged;
 * the host pads the pages' buffer). */
uint lrd32(PAGE_AS const uint *w, uint i) {
  uint s = (i & 3u) * 8u, a = w[i >> 2];
  return s ? (a >> s) | (w[(i >> 2) + 1] << (32u - s)) : a;
}

uint lrd8(PAGE_AS const uint *w, uint i) {
  return (w[i >> 2] >> ((i & 3u) * 8u)) & 0xffu;
}

/* The group's minimum of x (NONE: no candidate) after one barrier.  Three
 * slots used in turn: reduction k resets the slot of reduction k - 1
 * (= k + 2), which every lane read before the barrier of reduction k and
 * none touches again before the barrier of reduction k + 1. */
uint group_min(volatile __local uint *slots, uint *k, uint x) {
  volatile __local uint *s = slots + *k;
  if (x != NONE)
    atomic_min(s, x);
  barrier(CLK_LOCAL_MEM_FENCE);
  uint r = *s;
  if (get_local_id(0) == 0)
    slots[(*k + 2u) % 3u] = NONE;
  *k = (*k + 1u) % 3u;
  return r;
}

/* A length's extra bytes (n >= 15), a lane a byte; returns the new end. */
uint coop_len(__global uchar *d, uint o, uint n, uint lid) {
  n -= 15u;
  uint cnt = n / 255u + 1u;
  for (uint k = lid; k < cnt; k += COOP_L)
    d[o + k] = k + 1u < cnt ? 255u : n % 255u;
  return o + cnt;
}

/* A sequence at d + o: lit literals from page byte from, then (when
 * off != 0) the match; returns the new end (the same in every lane). */
uint coop_emit(__global uchar *d, uint o, PAGE_AS const uint *page,
               uint from, uint lit, uint off, uint ml, uint lid) {
  if (lid == 0)
    d[o] = (min(lit, 15u) << 4) | (off ? min(ml, 15u) : 0u);
  o++;
  if (lit >= 15u)
    o = coop_len(d, o, lit, lid);
  for (uint k = lid; k < lit; k += COOP_L)
    d[o + k] = lrd8(page, from + k);
  o += lit;
  if (!off)
    return o;
  if (lid == 0) {
    d[o] = off & 0xffu;
    d[o + 1] = off >> 8;
  }
  o += 2u;
  return ml >= 15u ? coop_len(d, o, ml, lid) : o;
}

/* Bytes the match at mp (source ref) extends backwards over the pending
 * literals from anchor. */
uint coop_back(PAGE_AS const uint *page, uint mp, uint ref, uint anchor,
               volatile __local uint *red, uint *rk, uint lid) {
  uint lim = min(mp - anchor, ref);
  /* Most matches do not extend: decided without a barrier. */
  if (lim == 0 || lrd8(page, mp - 1u) != lrd8(page, ref - 1u))
    return 0;
  for (uint base = 0;; base += COOP_L) {
    uint k = base + lid, stop = k;
    if (k < lim && lrd8(page, mp - 1u - k) == lrd8(page, ref - 1u - k))
      stop = NONE;
    uint s = group_min(red, rk, stop);
    if (s != NONE)
      return s;
  }
}

/* Bytes from fp that equal those from fq (fq < fp), at most rem. */
uint coop_forward(PAGE_AS const uint *page, uint fp, uint fq, uint rem,
                  volatile __local uint *red, uint *rk, uint lid) {
  uint x = lrd32(page, fp) ^ lrd32(page, fq);
  if (x) /* a short match: decided without a barrier */
    return min(ctz32(x) >> 3, rem);
  for (uint base = 4;; base += 4u * COOP_L) {
    uint k = base + 4u * lid, stop = rem;
    if (k < rem) {
      x = lrd32(page, fp + k) ^ lrd32(page, fq + k);
      stop = x ? k + (ctz32(x) >> 3) : NONE;
    }
    uint s = group_min(red, rk, stop);
    if (s != NONE)
      return min(s, rem);
  }
}

__kernel __attribute__((reqd_work_group_size(COOP_L, 1, 1))) void
lz4_compress_coop(__global const uint *in, __global uint *slots,
                  __global uint *lens, uint n, uint cap) {
  /* The table: 32-bit positions, since local atomics are 32-bit; declared
   * as uint4 so that clearing takes 16-byte stores, as is the page. */
  __local uint4 tab4[COOP_HSIZE / 4u];
  __local uint *tab = (__local uint *)tab4;
  /* A window's first lane in each bucket of its hashes: two sets, used by
   * windows in turn, so that one window's resets never race the next
   * window's claims (no barrier between them). */
  __local uint first[2][COOP_WB];
  __local uint vv[COOP_L]; /* each lane's 4 bytes */
#if COOP_STAGE
  __local uint4 page4[PAGE / 16u + 1u]; /* a word of padding after it */
  __local uint *page = (__local uint *)page4;
#endif
  volatile __local uint red[3];
  uint gid = get_group_id(0), lid = get_local_id(0);
  if (gid >= n) /* the whole group: no barrier is left waiting */
    return;
#if COOP_STAGE
  __global const uint4 *src =
      (__global const uint4 *)in + (size_t)gid * (PAGE / 16u);
  for (uint i = lid; i < PAGE / 16u; i += COOP_L)
    page4[i] = src[i];
  if (lid == 0)
    page[PAGE / 4u] = 0;
#else
  __global const uint *page = in + (size_t)gid * (PAGE / 4u);
#endif
  for (uint i = lid; i < COOP_HSIZE / 4u; i += COOP_L)
    tab4[i] = (uint4)(0);
  for (uint i = lid; i < 2u * COOP_WB; i += COOP_L)
    first[i / COOP_WB][i % COOP_WB] = NONE;
  if (lid == 0)
    red[0] = red[1] = red[2] = NONE;
  barrier(CLK_LOCAL_MEM_FENCE);
  __global uchar *dst = (__global uchar *)slots + (size_t)gid * SLOT;
  uint rk = 0, anchor = 0, ip = 0, out = 0, probes = 1u << 6, win = 0;
  /* Table stores a window leaves to the next one's first phase: a
   * position (NONE: none) at a hash, and lane 0's after a match. */
  uint ins_h = 0, ins_p = NONE, end_h = 0, end_p = NONE;
  int raw = 0;
  while (ip <= MATCH_START_MAX) {
    uint step = probes >> 6, p = ip + lid * step;
    int ok = p <= MATCH_START_MAX;
    uint v = ok ? lrd32(page, p) : 0u, h = ok ? coop_hash(v) : 0u;
    uint b = h & (COOP_WB - 1u);
    __local uint *fb = first[win & 1u];
    /* Racing stores resolved by the largest position: the serial order's
     * last store, whatever order the lanes run in. */
    if (ins_p != NONE)
      atomic_max(&tab[ins_h], ins_p);
    if (end_p != NONE)
      atomic_max(&tab[end_h], end_p);
    ins_p = end_p = NONE;
    vv[lid] = v;
    if (ok)
      atomic_min(&fb[b], lid);
    barrier(CLK_LOCAL_MEM_FENCE); /* the stores and claims, before reads */
    uint cand = ok ? tab[h] : NONE;
    if (cand >= p || lrd32(page, cand) != v)
      cand = NONE;
    /* The window's own earlier positions, newer than the table's: the
     * first lane of our bucket, if its 4 bytes are ours.  (A bucket shared
     * with other bytes hides that match; the table has it from the next
     * window on.) */
    if (ok) {
      uint f = fb[b];
      if (f < lid && vv[f] == v)
        cand = ip + f * step;
    }
    /* The first lane with a match, and its match (12 bits) with it. */
    uint r = group_min(red, &rk, cand != NONE ? lid << 12 | cand : NONE);
    if (ok) /* every lane read its bucket before group_min's barrier */
      fb[b] = NONE;
    win++;
    uint w = r == NONE ? NONE : r >> 12;
    /* The window's positions up to the winner (all without one). */
    if (ok && lid <= w) {
      ins_h = h;
      ins_p = p;
    }
    if (w == NONE) {
      ip += COOP_L * step;
      probes += COOP_L;
      continue;
    }
    /* The match: extended both ways, then written. */
    uint mp = ip + w * step, ref = r & (PAGE - 1u);
    uint back = coop_back(page, mp, ref, anchor, red, &rk, lid);
    uint end = mp + MINMATCH +
               coop_forward(page, mp + MINMATCH, ref + MINMATCH,
                            MATCH_END_MAX - mp - MINMATCH, red, &rk, lid);
    mp -= back;
    ref -= back;
    uint lit = mp - anchor, ml = end - mp - MINMATCH;
    if (out + 1u + extra_len(lit) + lit + 2u + extra_len(ml) > cap) {
      raw = 1;
      break;
    }
    out = coop_emit(dst, out, page, anchor, lit, mp - ref, ml, lid);
    ip = anchor = end;
    probes = 1u << 6;
    /* As the page kernel: the position 2 before the match's end. */
    if (lid == 0 && ip - 2u <= MATCH_START_MAX) {
      end_h = coop_hash(lrd32(page, ip - 2u));
      end_p = ip - 2u;
    }
  }
  uint lit = PAGE - anchor;
  if (!raw && out + 1u + extra_len(lit) + lit > cap)
    raw = 1;
  if (!raw)
    out = coop_emit(dst, out, page, anchor, lit, 0, 0, lid);
  if (lid == 0)
    lens[gid] = raw ? 0u : out;
}
