/* offload=auto's measurement: see calibrate.h.
 * SPDX-License-Identifier: MIT */
#include "calibrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "lz4page.h"
#include "trueno.h"

#define PAGE TRUENO_PAGE_SIZE
#define ARENA_CAP ARENA_MAX_OBJ /* what the engine asks of a batch */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Memory-like pages: pointer arrays, small integers, text, zero runs, and
 * one page in eight random, from a fixed seed. */
static void synth_pages(uint8_t *p, size_t n) {
  static const char *const words[] = {"the ",    "page ",  "memory ", "swap ",
                                      "struct ", "int ",   "return ", "0x",
                                      "value ",  "node ",  "\n\t",    "{ ",
                                      "} ",      "error ", "list ",   "key "};
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i++) {
    uint8_t *pg = p + i * PAGE;
    size_t k = 0;
    while (k < PAGE) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      unsigned kind = (unsigned)(s >> 60) & 7u, run = 64 + (unsigned)(s >> 40) % 448;
      if (i % 8 == 7)
        kind = 7;
      for (unsigned j = 0; j < run && k < PAGE; j++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint8_t b;
        switch (kind) {
        case 0: case 1: /* pointers: 0x00007fxxxxxxxxx8 */
          b = (k & 7) >= 6 ? 0 : (k & 7) == 5 ? 0x7f : (k & 7) == 0 ? (uint8_t)((s >> 56) & 0xf8) : (uint8_t)(s >> 56);
          break;
        case 2: /* small integers */
          b = (k & 3) ? 0 : (uint8_t)((s >> 58) & 15);
          break;
        case 3: /* zeros */
          b = 0;
          break;
        case 7: /* random */
          b = (uint8_t)(s >> 56);
          break;
        default: { /* text */
          const char *w = words[(s >> 56) & 15];
          size_t l = strlen(w);
          for (size_t q = 0; q < l && k < PAGE; q++)
            pg[k++] = (uint8_t)w[q];
          continue;
        }
        }
        pg[k++] = b;
      }
    }
  }
}

static const uint32_t cal_sizes[] = {8192, 2048, 512, 128, 32};

/* Best of three runs, seconds. */
static double time_device(struct trueno_ocl *dev, const uint8_t *pages,
                          size_t n, uint8_t *dst, uint32_t *off,
                          uint32_t *len, int *err) {
  double best = 1e9;
  for (int rep = 0; rep < 3 && !*err; rep++) {
    double t0 = now();
    *err = trueno_ocl_compress(dev, pages, n, ARENA_CAP, dst, off, len);
    double t = now() - t0;
    if (rep && t < best) /* the first run warms up */
      best = t;
  }
  return best;
}

static double time_cpu(const uint8_t *pages, size_t n, uint8_t *dst) {
  static struct lz4page_state state;
  double best = 1e9;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now();
    for (size_t i = 0; i < n; i++)
      lz4page_compress(&state, pages + i * PAGE, dst + i * ARENA_CAP,
                       ARENA_CAP);
    double t = now() - t0;
    if (rep && t < best)
      best = t;
  }
  return best;
}

/* Decoding the blocks of n pages (block i at dst + off[i], len[i] bytes;
 * 0 = raw, copied as the engine would) into out, best of three, seconds:
 * on the device (*dd) and on the CPU (*dc). */
static void time_decode(struct trueno_ocl *dev, const uint8_t *pages,
                        size_t n, const uint8_t *dst, const uint32_t *off,
                        const uint32_t *len, uint8_t *out, double *dd,
                        double *dc, int *err) {
  *dd = *dc = 1e9;
  for (int rep = 0; rep < 3 && !*err; rep++) {
    double t0 = now();
    *err = trueno_ocl_decompress(dev, dst, off, len, n, out);
    for (size_t i = 0; i < n; i++)
      if (!len[i])
        memcpy(out + i * PAGE, pages + i * PAGE, PAGE);
    double t1 = now();
    for (size_t i = 0; !*err && i < n; i++) {
      if (!len[i])
        memcpy(out + i * PAGE, pages + i * PAGE, PAGE);
      else if (lz4page_decompress(dst + off[i], (int)len[i], out + i * PAGE))
        *err = -EBADMSG;
    }
    double t2 = now();
    if (rep && t1 - t0 < *dd) /* the first run warms up */
      *dd = t1 - t0;
    if (rep && t2 - t1 < *dc)
      *dc = t2 - t1;
  }
}

void offload_calibrate(struct trueno_ocl *dev, struct calibration *c) {
  size_t n = cal_sizes[0];
  memset(c, 0, sizeof *c);
  uint8_t *pages = malloc(n * PAGE), *dst = malloc(n * ARENA_CAP);
  uint8_t *out = malloc(n * PAGE);
  uint32_t *off = malloc(n * 2 * sizeof *off);
  size_t tl = 0;
  int err = pages && dst && out && off ? 0 : -ENOMEM, reads = 1;
  if (!err)
    synth_pages(pages, n);
  for (unsigned i = 0; !err && i < sizeof cal_sizes / sizeof *cal_sizes; i++) {
    size_t m = cal_sizes[i];
    double dd, dc, td = time_device(dev, pages, m, dst, off, off + n, &err);
    time_decode(dev, pages, m, dst, off, off + n, out, &dd, &dc, &err);
    double tc = time_cpu(pages, m, dst); /* over the device's blocks */
    if (err)
      break;
    double mb = (double)m * PAGE / 1e6;
    tl += (size_t)snprintf(c->table + tl, sizeof c->table - tl,
                           "%s%zu: %.0f/%.0f (decode %.0f/%.0f)",
                           i ? ", " : "", m, mb / td, mb / tc, mb / dd,
                           mb / dc);
    if (tl >= sizeof c->table)
      tl = sizeof c->table - 1;
    if (td >= tc)
      break;
    c->min_pages = (uint32_t)m;
    reads = reads && dd < dc;
  }
  free(pages);
  free(dst);
  free(out);
  free(off);
  c->err = err;
  c->reads = !err && c->min_pages && reads;
  if (err)
    c->min_pages = 0;
}
