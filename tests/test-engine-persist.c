/* Persistent stores (docs/persistence.md): a store kept in a memfd is
 * detached (trueno_store_destroy) and attached again, and must serve every
 * byte it held, with the same stats; the state of another size or
 * algorithm, or a damaged one, is refused with a message (-EINVAL,
 * -EUCLEAN), never served and never a crash; a dropped state is gone.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* memfd_create */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region.h"
#include "test-common.h"
#include "trueno.h"

#define PG TRUENO_PAGE_SIZE

static int new_memfd(void) {
  int fd = memfd_create("trueno-test-state", MFD_CLOEXEC);
  if (fd < 0) {
    perror("memfd_create");
    exit(1);
  }
  return fd;
}

static struct trueno_config config(uint64_t npages, enum trueno_algorithm alg,
                                   int fd) {
  return (struct trueno_config){.size = npages * PG,
                                .algorithm = alg,
                                .persist = 1,
                                .state_fd = fd};
}

static struct trueno_store *attach(int fd, const struct trueno_config *cfg,
                                   const char *what) {
  struct trueno_store *st = NULL;
  char why[256];
  int r = trueno_store_attach(fd, cfg, &st, why, sizeof why);
  CHECK(r == 0 && st, "%s: attach = %d (%s)", what, r, why);
  return r ? NULL : st;
}

static void check_contents(struct trueno_store *st, const uint8_t *ref,
                           size_t npages, const char *what) {
  size_t len = npages * PG;
  uint8_t *buf = malloc(len);
  memset(buf, 0xa5, len);
  int r = trueno_read(st, buf, len, 0);
  CHECK(r == 0, "%s: read = %d", what, r);
  size_t d = tc_first_diff(buf, ref, len);
  CHECK(d == len, "%s: contents differ at byte %zu (page %zu)", what, d,
        d / PG);
  free(buf);
}

/* Attaches, checks every byte against ref, then detaches (or drops). */
static void attach_check(int fd, const struct trueno_config *cfg,
                         const uint8_t *ref, size_t npages, const char *what,
                         int drop) {
  struct trueno_store *st = attach(fd, cfg, what);
  if (!st)
    return;
  check_contents(st, ref, npages, what);
  if (drop)
    trueno_store_drop(st);
  else
    trueno_store_destroy(st);
}

/* The stats a walk rebuilds must be what the store counted while
 * writing; memory is what the pages in use take (a detach gives back the
 * spare chunk, the partly used tail blocks of zspages). */
static void check_stats(const struct trueno_stats *a,
                        const struct trueno_stats *b, const char *what) {
  CHECK(a->pages_stored == b->pages_stored,
        "%s: pages_stored %" PRIu64 " then %" PRIu64, what, a->pages_stored,
        b->pages_stored);
  CHECK(a->same_pages == b->same_pages && a->huge_pages == b->huge_pages,
        "%s: same %" PRIu64 "/%" PRIu64 " huge %" PRIu64 "/%" PRIu64, what,
        a->same_pages, b->same_pages, a->huge_pages, b->huge_pages);
  CHECK(a->compr_data_size == b->compr_data_size,
        "%s: compr_data_size %" PRIu64 " then %" PRIu64, what,
        a->compr_data_size, b->compr_data_size);
  for (int i = 0; i < TRUENO_ALG_COUNT; i++)
    CHECK(a->alg_pages[i] == b->alg_pages[i], "%s: alg %d pages", what, i);
  CHECK(b->mem_used_total <= a->mem_used_total + PG &&
            b->mem_used_total + (512u << 10) >= a->mem_used_total,
        "%s: mem_used %" PRIu64 " then %" PRIu64, what, a->mem_used_total,
        b->mem_used_total);
}

/* The cumulative counters (reads, writes...) go on across an attach: b's
 * are a's. */
#define SAME_COUNTER_COUNTER_STORE(name)                                     \
  CHECK(a->name == b->name, "%s: " #name " %" PRIu64 " then %" PRIu64, what, \
        a->name, b->name);
#define SAME_COUNTER_COUNTER_GET(name)
#define SAME_COUNTER_GAUGE_STORE(name)
#define SAME_COUNTER_GAUGE_ALG(name)
#define SAME_COUNTER_GAUGE_GET(name)
#define SAME_COUNTER(name, prom, kind, unit, source, help)                   \
  SAME_COUNTER_##kind##_##source(name)
static void check_cumulative(const struct trueno_stats *a,
                             const struct trueno_stats *b, const char *what) {
  TRUENO_STATS(SAME_COUNTER)
}

/* Writes ref (npages) into a new persistent store page by page in a
 * shuffled order, over an earlier version of every third page and with
 * trims, then detaches and attaches twice, checking contents and stats. */
static void round_trip(const uint8_t *ref, size_t npages,
                       enum trueno_algorithm alg, const char *label) {
  char what[160];
  snprintf(what, sizeof what, "%s/%s", label, trueno_algorithm_name(alg));
  int fd = new_memfd();
  struct trueno_config cfg = config(npages, alg, fd);
  struct trueno_store *st = NULL;
  int r = trueno_store_create(&cfg, &st);
  CHECK(r == 0, "%s: create = %d", what, r);
  if (r) {
    close(fd);
    return;
  }
  uint64_t seed = 42 + npages;
  size_t *order = malloc(npages * sizeof *order);
  for (size_t i = 0; i < npages; i++)
    order[i] = i;
  for (size_t i = npages; i > 1; i--) {
    size_t j = tc_below(&seed, i), t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  uint8_t junk[PG];
  for (size_t k = 0; k < npages; k++) {
    size_t i = order[k];
    if (i % 3 == 0) { /* an older version first, freed by the overwrite */
      tc_fill_random(junk, PG, &seed);
      memcpy(junk, ref + (i ^ 1) * PG, PG / 2);
      trueno_write(st, junk, PG, (uint64_t)i * PG);
    }
    if (i % 7 == 1)
      trueno_write(st, ref + ((i + 5) % npages) * PG, PG, (uint64_t)i * PG);
    if (i % 11 == 2)
      trueno_trim(st, PG, (uint64_t)i * PG);
    r = trueno_write(st, ref + i * PG, PG, (uint64_t)i * PG);
    if (r)
      break;
  }
  free(order);
  CHECK(r == 0, "%s: writes = %d", what, r);
  check_contents(st, ref, npages, what);
  struct trueno_stats before, after, again;
  trueno_get_stats(st, &before);
  trueno_store_destroy(st);

  st = attach(fd, &cfg, what);
  if (st) {
    trueno_get_stats(st, &after);
    check_stats(&before, &after, what);
    check_cumulative(&before, &after, what);
    check_contents(st, ref, npages, what);
    trueno_store_destroy(st);
  }
  st = attach(fd, &cfg, what);
  if (st) {
    trueno_get_stats(st, &again);
    CHECK(again.mem_used_total == after.mem_used_total,
          "%s: mem_used %" PRIu64 " at the first attach, %" PRIu64
          " at the second",
          what, after.mem_used_total, again.mem_used_total);
    check_stats(&before, &again, what);
    /* The check_contents read after the first attach counted. */
    CHECK(again.reads == before.reads + 1 &&
              again.pages_read == before.pages_read + npages,
          "%s: reads %" PRIu64 " then %" PRIu64, what, before.reads,
          again.reads);
    /* Served as a store: overwrite half, trim some, detach, attach. */
    uint8_t *ref2 = malloc(npages * PG);
    memcpy(ref2, ref, npages * PG);
    uint64_t nw = 0, nt = 0;
    for (size_t i = 0; i < npages; i += 2, nw++) {
      memcpy(ref2 + i * PG, ref + ((i * 7 + 3) % npages) * PG, PG);
      CHECK(trueno_write(st, ref2 + i * PG, PG, i * PG) == 0, "%s: write",
            what);
    }
    for (size_t i = 1; i < npages; i += 5, nt++) {
      memset(ref2 + i * PG, 0, PG);
      CHECK(trueno_trim(st, PG, i * PG) == 0, "%s: trim", what);
    }
    struct trueno_stats served, last;
    trueno_get_stats(st, &served);
    CHECK(served.writes == again.writes + nw &&
              served.trims == again.trims + nt,
          "%s: writes %" PRIu64 " + %" PRIu64 " = %" PRIu64, what,
          again.writes, nw, served.writes);
    trueno_store_destroy(st);
    st = attach(fd, &cfg, what);
    if (st) {
      trueno_get_stats(st, &last);
      check_cumulative(&served, &last, what);
      check_contents(st, ref2, npages, what);
      trueno_store_drop(st);
    }
    free(ref2);
  }
  /* Dropped: nothing to attach. */
  char why[256];
  r = trueno_store_attach(fd, &cfg, &st, why, sizeof why);
  CHECK(r == -EINVAL, "%s: attach after drop = %d", what, r);
  close(fd);
}

/* ---- refusals ---- */

static void test_settings(void) {
  int fd = new_memfd();
  struct trueno_config cfg = config(256, TRUENO_ALG_LZ4, fd);
  struct trueno_store *st = NULL;
  CHECK(trueno_store_create(&cfg, &st) == 0, "create");
  uint8_t page[PG];
  uint64_t seed = 7;
  tc_fill_random(page, PG / 4, &seed);
  memset(page + PG / 4, 0, PG - PG / 4);
  trueno_write(st, page, PG, 0);
  trueno_store_destroy(st);

  char why[256] = "";
  struct trueno_config other = cfg;
  other.size *= 2;
  int r = trueno_store_attach(fd, &other, &st, why, sizeof why);
  CHECK(r == -EINVAL && !strncmp(why, "size:", 5),
        "another size: %d (%s)", r, why);
  other = cfg;
  other.algorithm = TRUENO_ALG_ZSTD;
  r = trueno_store_attach(fd, &other, &st, why, sizeof why);
  CHECK(r == -EINVAL && !strncmp(why, "algorithm:", 10),
        "another algorithm: %d (%s)", r, why);
  /* Volatile settings may change: a limit, a recompressor, a reserve. */
  other = cfg;
  other.mem_limit = 64u << 20;
  other.recompress = TRUENO_RECOMPRESS_ZSTD;
  other.pool_reserve = 4u << 20;
  st = attach(fd, &other, "other volatile settings");
  if (st) {
    uint8_t back[PG];
    CHECK(trueno_read(st, back, PG, 0) == 0 && !memcmp(back, page, PG),
          "page 0 after attach with a reserve");
    trueno_store_destroy(st);
  }
  /* Two processes' worth in one: the address is taken while attached. */
  st = attach(fd, &cfg, "first");
  struct trueno_store *st2 = NULL;
  r = trueno_store_attach(fd, &cfg, &st2, why, sizeof why);
  CHECK(r == -EBUSY, "second attach in one process = %d (%s)", r, why);
  trueno_store_destroy(st);
  /* A limit below the state's own bookkeeping: refused, nothing leaked
   * (the pool's area map once was, under ASan and valgrind). */
  other = cfg;
  other.mem_limit = 16u << 10;
  int fd3 = new_memfd();
  other.state_fd = fd3;
  r = trueno_store_create(&other, &st);
  CHECK(r == -ENOSPC, "a 16 KiB limit: create = %d", r);
  close(fd3);
  /* Not a state: an empty file, garbage. */
  int fd2 = new_memfd();
  r = trueno_store_attach(fd2, &cfg, &st, why, sizeof why);
  CHECK(r == -EINVAL, "empty file: %d (%s)", r, why);
  CHECK(ftruncate(fd2, 1 << 20) == 0, "ftruncate");
  r = trueno_store_attach(fd2, &cfg, &st, why, sizeof why);
  CHECK(r == -EINVAL, "zeroed file: %d (%s)", r, why);
  close(fd2);
  close(fd);
}

static struct region_hdr read_hdr(int fd) {
  struct region_hdr h;
  if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
    memset(&h, 0, sizeof h);
  return h;
}

static void poke(int fd, uint64_t off, const void *p, size_t n) {
  if (pwrite(fd, p, n, (off_t)off) != (ssize_t)n)
    perror("pwrite");
}

static void peek(int fd, uint64_t off, void *p, size_t n) {
  if (pread(fd, p, n, (off_t)off) != (ssize_t)n)
    perror("pread");
}

/* A state of npages with compressible, raw and same-filled pages. */
static int damage_fixture(size_t npages, uint8_t *ref) {
  int fd = new_memfd();
  struct trueno_config cfg = config(npages, TRUENO_ALG_LZ4, fd);
  struct trueno_store *st = NULL;
  CHECK(trueno_store_create(&cfg, &st) == 0, "create");
  uint64_t seed = 99;
  for (size_t i = 0; i < npages; i++) {
    uint8_t *p = ref + i * PG;
    memset(p, 0, PG);
    if (i % 4 == 0)
      tc_fill_random(p, PG, &seed); /* raw */
    else if (i % 4 == 1)
      tc_fill_word(p, PG, i * 0x0101010101010101ull); /* same */
    else
      tc_fill_random(p, 64 + (i % 23) * 40, &seed); /* compressible */
    trueno_write(st, p, PG, i * PG);
  }
  trueno_store_destroy(st);
  return fd;
}

/* The damage fixture's state detached, with what a case needs to damage
 * it and attach it again. */
struct fixture {
  size_t npages;
  uint8_t *ref; /* its contents */
  int fd;
  struct region_hdr h;
  struct trueno_config cfg;
};

static struct fixture fixture_make(size_t npages) {
  struct fixture fx = {.npages = npages, .ref = malloc(npages * PG)};
  fx.fd = damage_fixture(npages, fx.ref);
  fx.h = read_hdr(fx.fd);
  fx.cfg = config(npages, TRUENO_ALG_LZ4, fx.fd);
  return fx;
}

static void fixture_free(struct fixture *fx) {
  free(fx->ref);
  close(fx->fd);
}

static struct slot slot_at(int fd, const struct region_hdr *h, uint64_t i) {
  struct slot s;
  peek(fd, h->slots_off + i * sizeof s, &s, sizeof s);
  return s;
}

static void set_slot(int fd, const struct region_hdr *h, uint64_t i,
                     const struct slot *s) {
  poke(fd, h->slots_off + i * sizeof *s, s, sizeof *s);
}

/* Attaches a damaged copy: must refuse with expect (or, for random
 * damage, expect 0 meaning "refuse or serve without crashing"). */
static void try_attach(int fd, size_t npages, int expect, const char *what) {
  struct trueno_config cfg = config(npages, TRUENO_ALG_LZ4, fd);
  struct trueno_store *st = NULL;
  char why[256] = "";
  int r = trueno_store_attach(fd, &cfg, &st, why, sizeof why);
  if (expect) {
    CHECK(r == expect && why[0], "%s: attach = %d want %d (%s)", what, r,
          expect, why);
  } else {
    CHECK(r == 0 || r == -EUCLEAN, "%s: attach = %d (%s)", what, r, why);
  }
  if (!r) {
    uint8_t *buf = malloc(npages * PG);
    for (size_t i = 0; i < npages; i++)
      trueno_read(st, buf + i * PG, PG, i * PG); /* may be -EIO */
    free(buf);
    trueno_store_destroy(st);
  }
}

static void test_damage(void) {
  const size_t npages = 512;
  uint8_t *ref = malloc(npages * PG);
  int fd = damage_fixture(npages, ref);
  struct region_hdr h = read_hdr(fd);
  uint8_t hdr[PG];
  peek(fd, 0, hdr, PG);

  /* The header, byte by byte where it is checked. */
  uint8_t b = hdr[0] ^ 0x20;
  poke(fd, 0, &b, 1);
  try_attach(fd, npages, -EINVAL, "magic");
  poke(fd, 0, hdr, PG);
  uint32_t v = REGION_VERSION + 1;
  poke(fd, offsetof(struct region_hdr, version), &v, sizeof v);
  try_attach(fd, npages, -EINVAL, "version");
  poke(fd, 0, hdr, PG);
  for (size_t off = 12; off < offsetof(struct region_hdr, generation);
       off++) {
    b = hdr[off] ^ (uint8_t)(1u << (off % 8));
    poke(fd, off, &b, 1);
    char what[64];
    snprintf(what, sizeof what, "header byte %zu", off);
    try_attach(fd, npages, -EUCLEAN, what);
    poke(fd, off, hdr + off, 1);
  }
  try_attach(fd, npages, 0, "header restored");

  /* Slots: each kind of lie. */
  struct slot raw = slot_at(fd, &h, 0), same = slot_at(fd, &h, 1),
              comp = slot_at(fd, &h, 2), comp2 = slot_at(fd, &h, 3);
  CHECK(raw.type == 3 && same.type == 1 && comp.type == 2 && comp2.type == 2,
        "fixture slot types %d %d %d %d", raw.type, same.type, comp.type,
        comp2.type);
  struct {
    uint64_t idx;
    struct slot s;
    const char *what;
  } lies[] = {
      {1, {same.val, 0, 9, 0, 0}, "unknown type"},
      {0, {raw.val + 8, PG, 3, 0, 0}, "raw page unaligned"},
      {0, {raw.val + (1ull << 44), PG, 3, 0, 0}, "raw page outside"},
      {0, {(comp.val >> 16) & ~0xfffull, PG, 3, 0, 0}, "raw page on a record"},
      {4, {raw.val, PG, 3, 0, 0}, "raw page twice"},
      {3, comp, "one object for two pages"},
      {2, {comp.val, comp.len, 2, 7, 0}, "unknown algorithm"},
      {2, {comp.val, 0, 2, 0, 0}, "zero length"},
      {2, {comp.val, 4000, 2, 0, 0}, "length over the largest object"},
      {2, {comp.val, (uint16_t)(comp.len + 64), 2, 0, 0}, "wrong class"},
      {2, {comp.val ^ (1ull << 20), comp.len, 2, 0, 0}, "handle moved"},
      {2, {comp.val | 0xff00, comp.len, 2, 0, 0}, "object index too big"},
      {2, {raw.val << 16, comp.len, 2, 0, 0}, "handle on a raw page"},
      {2, {0, comp.len, 2, 0, 0}, "null handle"},
  };
  for (size_t k = 0; k < sizeof lies / sizeof *lies; k++) {
    struct slot keep = slot_at(fd, &h, lies[k].idx);
    set_slot(fd, &h, lies[k].idx, &lies[k].s);
    try_attach(fd, npages, -EUCLEAN, lies[k].what);
    set_slot(fd, &h, lies[k].idx, &keep);
  }
  /* A group member in a store attached without groups: a setting. */
  struct slot keep = slot_at(fd, &h, 1), grp = {same.val, 0, 4, 0, 0};
  set_slot(fd, &h, 1, &grp);
  try_attach(fd, npages, -EINVAL, "a group slot, groups off");
  set_slot(fd, &h, 1, &keep);
  /* A slot chunk pointer elsewhere; an intent record out of range. */
  uint64_t top0;
  peek(fd, h.top_off, &top0, 8);
  uint64_t bad = top0 + 16;
  poke(fd, h.top_off, &bad, 8);
  try_attach(fd, npages, -EUCLEAN, "slot chunk pointer");
  poke(fd, h.top_off, &top0, 8);
  uint64_t idx1 = npages + 5;
  poke(fd, h.intents_off + (idx1 - 1) % 1024 * sizeof(struct region_intent),
       &idx1, 8);
  try_attach(fd, npages, -EUCLEAN, "intent out of range");
  idx1 = 0;
  poke(fd, h.intents_off + (npages + 4) % 1024 * sizeof(struct region_intent),
       &idx1, 8);

  /* Undamaged again: served in full. */
  struct trueno_config cfg = config(npages, TRUENO_ALG_LZ4, fd);
  attach_check(fd, &cfg, ref, npages, "restored", 0);

  /* Random bytes of the slots and of zspage records: refused or served,
   * never a crash (contents may then be wrong: a flipped length still
   * names a valid object). */
  uint64_t seed = 2026;
  uint8_t *slots = malloc(npages * 16);
  peek(fd, h.slots_off, slots, npages * 16);
  unsigned rounds = (unsigned)tc_env_ulong("TRUENO_DAMAGE_ROUNDS", 300);
  for (unsigned k = 0; k < rounds; k++) {
    uint64_t off = h.slots_off + tc_below(&seed, npages * 16);
    uint8_t x = (uint8_t)(1u << tc_below(&seed, 8));
    peek(fd, off, &b, 1);
    b ^= x;
    poke(fd, off, &b, 1);
    try_attach(fd, npages, 0, "random slot byte");
    b ^= x;
    poke(fd, off, &b, 1);
  }
  /* The records: flip bytes of the page a compressed slot's zspage
   * record is on. */
  uint64_t rec_page = ((comp.val >> 16) & ~0xfffull) - h.base;
  uint8_t *page = malloc(PG);
  peek(fd, rec_page, page, PG);
  for (unsigned k = 0; k < rounds; k++) {
    uint64_t off = rec_page + tc_below(&seed, PG);
    uint8_t x = (uint8_t)(1u << tc_below(&seed, 8));
    peek(fd, off, &b, 1);
    b ^= x;
    poke(fd, off, &b, 1);
    try_attach(fd, npages, 0, "random record byte");
    poke(fd, rec_page, page, PG); /* an attach rewrites free lists */
  }
  free(page);
  free(slots);
  free(ref);
  close(fd);
}

/* A slot chunk whose top entry a damaged state lost: its pages are holes,
 * and when a write publishes the chunk again, no old slot comes back. */
static void test_lost_chunk(void) {
  struct fixture fx = fixture_make(512);
  uint64_t zero = 0;
  poke(fx.fd, fx.h.top_off, &zero, 8);
  struct trueno_store *st = attach(fx.fd, &fx.cfg, "lost chunk");
  if (st) {
    memset(fx.ref, 0, fx.npages * PG);
    check_contents(st, fx.ref, fx.npages, "lost chunk: holes");
    tc_fill_word(fx.ref + 7 * PG, PG, 0x77);
    CHECK(trueno_write(st, fx.ref + 7 * PG, PG, 7 * PG) == 0, "write");
    check_contents(st, fx.ref, fx.npages, "lost chunk, published again");
    trueno_store_destroy(st);
  }
  fixture_free(&fx);
}

/* A kill between the two halves of a slot's store: the intent record
 * holds the new value, and the attach writes it again. */
static void test_intent(void) {
  struct fixture fx = fixture_make(512);
  const uint64_t idx = 2, word = 0x1111222233334444ull;
  struct slot old = slot_at(fx.fd, &fx.h, idx);
  CHECK(old.type == 2, "page 2 is compressed");
  struct region_intent in = {.next = {.val = word, .type = 1}};
  atomic_init(&in.idx1, idx + 1);
  uint64_t rec = fx.h.intents_off + idx % 1024 * sizeof in;
  poke(fx.fd, rec, &in, sizeof in);
  poke(fx.fd, fx.h.slots_off + idx * sizeof old, &word, 8); /* half of it */
  tc_fill_word(fx.ref + idx * PG, PG, word);
  struct trueno_store *st = attach(fx.fd, &fx.cfg, "intent");
  if (st) {
    check_contents(st, fx.ref, fx.npages, "intent replayed");
    trueno_store_destroy(st);
  }
  uint64_t idx1;
  peek(fx.fd, rec, &idx1, 8);
  CHECK(idx1 == 0, "intent record cleared");
  attach_check(fx.fd, &fx.cfg, fx.ref, fx.npages, "after the replay", 0);
  fixture_free(&fx);
}

/* Cold groups in a persistent store: made, partly overwritten, moved by
 * compaction, then detached and attached with their counts. */
static void test_groups(const uint8_t *data, size_t npages) {
  int fd = new_memfd();
  struct trueno_config cfg = config(npages, TRUENO_ALG_LZ4, fd);
  cfg.group_pages = TRUENO_GROUP_PAGES;
  cfg.recompress = TRUENO_RECOMPRESS_ZSTD;
  struct trueno_store *st = NULL;
  CHECK(trueno_store_create(&cfg, &st) == 0, "groups: create");
  if (!st)
    return;
  uint8_t *ref = malloc(npages * PG);
  memcpy(ref, data, npages * PG);
  CHECK(trueno_write(st, ref, npages * PG, 0) == 0, "groups: write");
  int made = trueno_group(st, 0, npages, npages);
  int r;
  CHECK(made > 0, "groups: %d made", made);
  for (size_t i = 3; i < npages; i += 9) { /* members leave their groups */
    memcpy(ref + i * PG, data + ((i * 5) % npages) * PG, PG);
    trueno_write(st, ref + i * PG, PG, i * PG);
  }
  for (size_t i = 5; i < npages; i += 31) {
    memset(ref + i * PG, 0, PG);
    trueno_trim(st, PG, i * PG);
  }
  trueno_compact(st);
  struct trueno_stats before, after;
  trueno_get_stats(st, &before);
  CHECK(before.groups > 0 && before.group_dead_bytes > 0,
        "groups: %" PRIu64 " groups, %" PRIu64 " dead bytes", before.groups,
        before.group_dead_bytes);
  trueno_store_destroy(st);

  char why[256];
  /* Lies about members, refused with groups on. */
  struct region_hdr h = read_hdr(fd);
  uint64_t gi = 0;
  struct slot gs = {0}, cs = {0};
  for (uint64_t i = 0; i < npages && (!gs.type || !cs.type); i++) {
    struct slot x = slot_at(fd, &h, i);
    if (x.type == 4 && !gs.type)
      gs = x, gi = i;
    if (x.type == 2 && !cs.type)
      cs = x;
  }
  CHECK(gs.type == 4 && cs.type == 2, "groups: a member and a page found");
  struct slot lies[] = {
      {gs.val, 63, 4, gs.alg, 0},                    /* position */
      {gs.val, (uint16_t)(gs.len ^ 1), 4, gs.alg, 0}, /* another page's */
      {cs.val >> 16, 0, 4, 0, 0},                    /* a zspage record */
      {gs.val + 64, gs.len, 4, gs.alg, 0},           /* not a record */
      {gs.val + (1ull << 42), gs.len, 4, gs.alg, 0},  /* outside */
  };
  for (size_t k = 0; k < sizeof lies / sizeof *lies; k++) {
    set_slot(fd, &h, gi, &lies[k]);
    r = trueno_store_attach(fd, &cfg, &st, why, sizeof why);
    CHECK(r == -EUCLEAN, "group lie %zu: attach = %d (%s)", k, r, why);
    if (!r)
      trueno_store_destroy(st);
    set_slot(fd, &h, gi, &gs);
  }
  struct trueno_config off = cfg;
  off.group_pages = 0;
  r = trueno_store_attach(fd, &off, &st, why, sizeof why);
  CHECK(r == -EINVAL && !strncmp(why, "group:", 6),
        "groups off: %d (%s)", r, why);
  st = attach(fd, &cfg, "groups");
  if (st) {
    trueno_get_stats(st, &after);
    check_stats(&before, &after, "groups");
    CHECK(after.groups == before.groups &&
              after.pages_grouped == before.pages_grouped &&
              after.group_frame_bytes == before.group_frame_bytes &&
              after.group_dead_bytes == before.group_dead_bytes,
          "groups: %" PRIu64 "/%" PRIu64 " groups, %" PRIu64 "/%" PRIu64
          " grouped, %" PRIu64 "/%" PRIu64 " dead",
          before.groups, after.groups, before.pages_grouped,
          after.pages_grouped, before.group_dead_bytes,
          after.group_dead_bytes);
    check_contents(st, ref, npages, "groups");
    /* Served: regroup after more writes, detach, attach. */
    for (size_t i = 0; i < npages; i += 4)
      trueno_write(st, ref + i * PG, PG, i * PG);
    trueno_group(st, 0, npages, npages);
    trueno_compact(st);
    trueno_store_destroy(st);
    attach_check(fd, &cfg, ref, npages, "groups, again", 1);
  }
  free(ref);
  close(fd);
}

int main(void) {
  struct tc_corpus corpus;
  tc_corpus_load(&corpus);
  for (size_t f = 0; f < corpus.nfiles; f++)
    for (int alg = 0; alg < TRUENO_ALG_COUNT; alg++)
      round_trip(corpus.files[f].data, corpus.files[f].npages,
                 (enum trueno_algorithm)alg, corpus.files[f].name);
  size_t n = 1024;
  uint8_t *ref = malloc(n * PG);
  uint64_t seed = 5;
  for (size_t i = 0; i < n; i++)
    tc_fill_word(ref + i * PG, PG, i % 3 ? i * 0x9e3779b97f4a7c15ull : 0);
  round_trip(ref, n, TRUENO_ALG_LZ4, "same-filled");
  tc_fill_random(ref, n * PG, &seed);
  round_trip(ref, n, TRUENO_ALG_ZSTD, "random");
  free(ref);
  size_t whole;
  uint8_t *all = tc_corpus_concat(&corpus, &whole);
  test_groups(all, whole);
  free(all);
  tc_corpus_free(&corpus);
  test_settings();
  test_damage();
  test_intent();
  test_lost_chunk();
  return tc_finish();
}
