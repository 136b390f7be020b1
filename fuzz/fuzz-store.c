/* libFuzzer target: the engine store driven by arbitrary sequences of
 * requests, checked byte for byte against a model of the device.
 *
 * The input's first bytes choose the store (lz4 ours or liblz4, zstd, a
 * recompressor, cold groups, a memory limit small enough to be reached); the rest is a
 * list of operations: writes of any offset and length (same-filled words,
 * repeats of input bytes, pseudo-random bytes: pages of every kind the
 * store keeps), reads, trims, zeroes, extents, compaction, idle-page
 * recompression and grouping (with no idle time: at once) and
 * housekeeping; for a persistent store (config.persist, in a memfd), a
 * detach and attach (the volatile state thrown away, everything served
 * again from the state: every page as the model says, gauges and
 * cumulative counters as before) and damage (bytes of the header, the
 * counters, the slots, the intent records or the pool's pages flipped,
 * then an attach: refused with -EINVAL or -EUCLEAN, or served
 * consistently: each page reads the same every time or fails with EIO
 * and is trimmed, gauges add up, and the store goes on against a model
 * of what it served).  Every read must give the model's bytes;
 * a write refused with ENOSPC must have written a prefix of whole pages
 * and left the rest as it was (trueno.h), a trim at the limit may leave an
 * edge as it was; the whole device is compared at the end, and ASan's leak
 * check sees the store destroyed.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* memfd_create, SEEK_DATA */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region.h"
#include "trueno.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PG TRUENO_PAGE_SIZE
#define NPAGES 24u
#define DEV ((uint64_t)NPAGES * PG)
#define MAXLEN (4u * PG) /* a request spans up to 4 pages (5 unaligned) */

struct input {
  const uint8_t *p;
  size_t n;
};

static unsigned take(struct input *in, unsigned bytes) {
  unsigned v = 0;
  for (unsigned i = 0; i < bytes; i++) {
    v = v << 8 | (in->n ? *in->p : 0);
    if (in->n) {
      in->p++;
      in->n--;
    }
  }
  return v;
}

/* A range inside the device: byte offset and length, often page-aligned
 * (whole-page paths) and often not (read-modify-write paths). */
static void range(struct input *in, uint64_t *off, uint64_t *len) {
  unsigned k = take(in, 1);
  uint64_t o = take(in, 3) % DEV;
  uint64_t l = 1 + take(in, 2) % (MAXLEN - PG + 17);
  if (k & 1) { /* whole pages */
    o &= ~(uint64_t)(PG - 1);
    l = ((l + PG - 1) & ~(uint64_t)(PG - 1));
  }
  if (o + l > DEV)
    l = DEV - o;
  *off = o;
  *len = l;
}

/* Bytes to write: a same-filled word, input bytes repeated (compressible),
 * pseudo-random (stored raw), or text-like runs. */
static void fill(struct input *in, uint8_t *buf, uint64_t len) {
  unsigned kind = take(in, 1) % 4;
  uint64_t seed = take(in, 4) | 1;
  if (kind == 0) {
    uint64_t w = seed * 0x9E3779B97F4A7C15ull;
    if (seed & 2)
      w = 0;
    for (uint64_t i = 0; i < len; i++)
      buf[i] = (uint8_t)(w >> (8 * (i % 8)));
  } else if (kind == 1 && in->n > 1) {
    size_t m = 1 + take(in, 1) % 64;
    if (m > in->n)
      m = in->n; /* at least 1: n was 2 or more before the take */
    for (uint64_t i = 0; i < len; i++)
      buf[i] = in->p[i % m];
    in->p += m;
    in->n -= m;
  } else if (kind == 2) {
    for (uint64_t i = 0; i < len; i++) {
      seed ^= seed << 13;
      seed ^= seed >> 7;
      seed ^= seed << 17;
      buf[i] = (uint8_t)seed;
    }
  } else {
    for (uint64_t i = 0; i < len; i++)
      buf[i] = (uint8_t)("the quick brown fox "[(i / 3 + seed) % 20] +
                         (i % 97 == 0));
  }
}

static int all_zero(const uint8_t *p, uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    if (p[i])
      return 0;
  return 1;
}

/* After a write refused with ENOSPC: each page the request touched must
 * hold either its new bytes (a prefix of the pages) or its old ones (the
 * rest); the model takes what the store kept. */
static void check_partial(struct trueno_store *st, uint8_t *model,
                          const uint8_t *buf, uint64_t off, uint64_t len) {
  uint8_t page[PG], want[PG];
  int old_seen = 0;
  for (uint64_t p = off / PG; p * PG < off + len; p++) {
    uint64_t a = p * PG > off ? p * PG : off;
    uint64_t b = (p + 1) * PG < off + len ? (p + 1) * PG : off + len;
    if (trueno_read(st, page, PG, p * PG))
      abort();
    memcpy(want, model + p * PG, PG);
    memcpy(want + (a - p * PG), buf + (a - off), b - a);
    if (!old_seen && !memcmp(page, want, PG)) {
      memcpy(model + p * PG, want, PG);
      continue;
    }
    if (memcmp(page, model + p * PG, PG))
      abort(); /* neither the new page nor the old one */
    old_seen = 1;
  }
}

/* Gauges add up: every stored page is of one kind. */
static void check_gauges(const struct trueno_stats *s) {
  uint64_t kinds = s->same_pages + s->huge_pages + s->pages_grouped;
  for (int a = 0; a < TRUENO_ALG_COUNT; a++)
    kinds += s->alg_pages[a];
  if (s->pages_stored > NPAGES || kinds != s->pages_stored ||
      s->orig_data_size != s->pages_stored * PG ||
      s->compr_data_size > (uint64_t)s->pages_stored * PG + s->group_frame_bytes)
    abort();
}

/* What a detach and attach must keep: the gauges the walk rebuilds and
 * the cumulative counters the state holds. */
#define KEPT_STORE(name) || a->name != b->name
#define KEPT_ALG(name)                                                       \
  || memcmp(a->name, b->name, sizeof a->name)
#define KEPT_GET(name)
#define KEPT(name, prom, kind, unit, source, help) KEPT_##source(name)
static void check_kept(const struct trueno_stats *a,
                       const struct trueno_stats *b) {
  if (0 TRUENO_STATS(KEPT))
    abort();
  /* Memory: the pages in use (a detach gives back spare chunks). */
  if (b->mem_used_total > a->mem_used_total + PG)
    abort();
}

static void read_all(struct trueno_store *st, const uint8_t *model) {
  uint8_t *all = malloc(DEV);
  if (!all || trueno_read(st, all, DEV, 0) || memcmp(all, model, DEV))
    abort();
  free(all);
}

/* Throws the store's volatile state away and serves the state again. */
static struct trueno_store *reattach(struct trueno_store *st, int fd,
                                     const struct trueno_config *cfg,
                                     const uint8_t *model) {
  struct trueno_stats before, after;
  trueno_get_stats(st, &before);
  trueno_store_destroy(st);
  char why[256];
  if (trueno_store_attach(fd, cfg, &st, why, sizeof why))
    abort();
  trueno_get_stats(st, &after);
  check_kept(&before, &after);
  check_gauges(&after);
  read_all(st, model);
  return st;
}

/* One byte of the state flipped, at a place the input chooses in a part
 * it chooses: the header, the counters, the slots, the intent records,
 * or any written byte of the pool area (zspage records, cell pages,
 * payloads, group frames). */
static void flip(struct input *in, int fd, const struct region_hdr *h) {
  unsigned sel = take(in, 1) % 8;
  uint64_t pick = take(in, 3), off;
  if (sel == 0)
    off = pick % sizeof *h; /* the generation too, not checksummed */
  else if (sel == 1)
    off = REGION_COUNTERS_OFF + pick % 512;
  else if (sel == 2)
    off = h->slots_off + pick % (NPAGES * 16);
  else if (sel == 3)
    off = h->intents_off + pick % (NPAGES * sizeof(struct region_intent));
  else { /* the pool's written extents */
    uint64_t ext[32][2], total = 0;
    unsigned n = 0;
    off_t at = (off_t)h->pool_off;
    while (n < 32) {
      off_t d = lseek(fd, at, SEEK_DATA);
      if (d < 0)
        break;
      off_t e = lseek(fd, d, SEEK_HOLE);
      if (e <= d)
        break;
      ext[n][0] = (uint64_t)d;
      ext[n][1] = (uint64_t)(e - d);
      total += ext[n][1];
      n++;
      at = e;
    }
    if (!total)
      return;
    pick = (pick << 8 | take(in, 1)) % total;
    unsigned i = 0;
    while (pick >= ext[i][1])
      pick -= ext[i++][1];
    off = ext[i][0] + pick;
  }
  uint8_t b;
  if (pread(fd, &b, 1, (off_t)off) != 1)
    abort();
  b ^= (uint8_t)(1u << take(in, 1) % 8);
  if (pwrite(fd, &b, 1, (off_t)off) != 1)
    abort();
}

/* Damages the detached state and attaches it: refused (then a new store
 * replaces it, all zeros), or served as it reads now, consistently: a
 * page that fails with EIO is trimmed, the rest become the model. */
static struct trueno_store *damage(struct input *in, struct trueno_store *st,
                                   int fd, const struct trueno_config *cfg,
                                   uint8_t *model) {
  trueno_store_destroy(st);
  struct region_hdr h;
  if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
    abort();
  for (unsigned k = 1 + take(in, 1) % 4; k; k--)
    flip(in, fd, &h);
  char why[256];
  int r = trueno_store_attach(fd, cfg, &st, why, sizeof why);
  if (r == -EINVAL || r == -EUCLEAN) {
    if (!why[0] || trueno_store_create(cfg, &st))
      abort();
    memset(model, 0, DEV);
    return st;
  }
  if (r)
    abort();
  struct trueno_stats s;
  trueno_get_stats(st, &s);
  check_gauges(&s);
  uint8_t page[PG];
  for (uint64_t p = 0; p < NPAGES; p++) {
    r = trueno_read(st, page, PG, p * PG);
    if (r == 0) {
      memcpy(model + p * PG, page, PG);
    } else if (r == -EIO) {
      if (trueno_trim(st, PG, p * PG))
        abort();
      memset(model + p * PG, 0, PG);
    } else {
      abort();
    }
  }
  read_all(st, model);
  return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct input in = {data, size};
  unsigned conf = take(&in, 1);
  struct trueno_config cfg = {.size = DEV};
  cfg.algorithm = (conf & 3) == 2 ? TRUENO_ALG_ZSTD : TRUENO_ALG_LZ4;
  cfg.lz4_impl = (conf & 3) == 1 ? TRUENO_LZ4_LIBLZ4 : TRUENO_LZ4_TRUENO;
  cfg.recompress = (conf >> 2) % 3; /* off, zstd, lz4hc */
  cfg.recompress_idle = 1;
  if (conf & 0x40) { /* cold groups of 4 or 8 pages, formed at once */
    cfg.group_pages = conf & 0x80 ? 4 : 8;
    cfg.group_cache = 1 + (conf & 1);
  }
  if (conf & 0x20) /* a limit from 16 to 143 KiB: reached by ~8-60 pages */
    cfg.mem_limit = (16 + (uint64_t)take(&in, 1) % 128) << 10;
  int pfd = -1;
  if (conf & 0x10) { /* persistent: the state in a memfd */
    pfd = memfd_create("fuzz-store", MFD_CLOEXEC);
    if (pfd < 0)
      abort();
    cfg.persist = 1;
    cfg.state_fd = pfd;
  }

  struct trueno_store *st;
  int rc = trueno_store_create(&cfg, &st);
  if (rc == -ENOSPC && cfg.mem_limit) {
    if (pfd >= 0)
      close(pfd);
    return 0; /* a limit below the store's own bookkeeping */
  }
  if (rc)
    abort();
  uint8_t *model = calloc(1, DEV);
  uint8_t *buf = malloc(MAXLEN), *back = malloc(MAXLEN);
  if (!model || !buf || !back)
    abort();

  for (unsigned ops = 0; in.n && ops < 256; ops++) {
    unsigned op = take(&in, 1);
    uint64_t off, len;
    int r;
    /* The top values of the byte: persistence's operations. */
    if (pfd >= 0 && op >= 0xfc) {
      st = damage(&in, st, pfd, &cfg, model);
      continue;
    }
    if (pfd >= 0 && op >= 0xf4) {
      st = reattach(st, pfd, &cfg, model);
      continue;
    }
    switch (op % 10) {
    case 0:
    case 1:
    case 2: /* write */
      range(&in, &off, &len);
      fill(&in, buf, len);
      r = trueno_write(st, buf, len, off);
      if (r == 0)
        memcpy(model + off, buf, len);
      else if (r == -ENOSPC && cfg.mem_limit)
        check_partial(st, model, buf, off, len);
      else
        abort();
      break;
    case 3:
    case 4: /* read */
      range(&in, &off, &len);
      if (trueno_read(st, back, len, off) || memcmp(back, model + off, len))
        abort();
      break;
    case 5: /* trim or zero */
      range(&in, &off, &len);
      if (take(&in, 1) & 1) {
        r = trueno_zero(st, len, off);
        if (r && !(r == -ENOSPC && cfg.mem_limit))
          abort();
      } else if (trueno_trim(st, len, off)) {
        abort();
      }
      /* Whole pages read as zeros now; an edge page either has its bytes
       * in the range zeroed or (at the limit) is as it was. */
      for (uint64_t p = off / PG; p * PG < off + len; p++) {
        uint64_t a = p * PG > off ? p * PG : off;
        uint64_t b = (p + 1) * PG < off + len ? (p + 1) * PG : off + len;
        if (trueno_read(st, back, PG, p * PG))
          abort();
        uint8_t *m = model + p * PG;
        if (all_zero(back + (a - p * PG), b - a) &&
            !memcmp(back, m, a - p * PG) &&
            !memcmp(back + (b - p * PG), m + (b - p * PG), (p + 1) * PG - b))
          memset(m + (a - p * PG), 0, b - a);
        else if (!cfg.mem_limit || b - a == PG || memcmp(back, m, PG))
          abort();
      }
      break;
    case 6: { /* extents: holes and zero runs must read as zeros */
      range(&in, &off, &len);
      enum trueno_extent_type t;
      uint64_t run;
      if (trueno_extent(st, len, off, &t, &run) || run == 0 || run > len)
        abort();
      if (t != TRUENO_EXTENT_DATA &&
          !all_zero(model + off, run))
        abort();
      break;
    }
    case 7:
      r = trueno_compact(st);
      if (r && !(r == -ENOSPC && cfg.mem_limit))
        abort();
      break;
    case 8:
      if (cfg.recompress) {
        r = trueno_recompress(st, 0, NPAGES, NPAGES);
        if (r < 0 && !(r == -ENOSPC && cfg.mem_limit))
          abort();
      }
      if (cfg.group_pages) {
        r = trueno_group(st, 0, NPAGES, NPAGES);
        if (r < 0 && !(r == -ENOSPC && cfg.mem_limit))
          abort();
      }
      break;
    default:
      r = trueno_maintain(st);
      if (r && !(r == -ENOSPC && cfg.mem_limit))
        abort();
      break;
    }
  }

  read_all(st, model);
  struct trueno_stats s;
  trueno_get_stats(st, &s);
  check_gauges(&s);
  if (cfg.mem_limit && s.mem_used_total > cfg.mem_limit)
    abort();
  if (pfd >= 0) /* and what a detach left serves it all again */
    st = reattach(st, pfd, &cfg, model);
  trueno_store_destroy(st);
  if (pfd >= 0)
    close(pfd);
  free(model);
  free(buf);
  free(back);
  return 0;
}
