/* The engine's batch hook (trueno_store_set_batch_codec) with a batch codec
 * on the CPU (lz4page, packed as a device would pack), so the path runs
 * under ASan and valgrind without OpenCL: a store fed through the hook
 * holds exactly the data and the counters of a store that compressed
 * every page itself; requests with unaligned edges; a codec that fails
 * (the engine compresses on the CPU, nothing lost); a codec that flags
 * every page raw; the memory limit (pages before the failing one are new, the
 * rest old); stores that refuse a batch codec.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lz4page.h"
#include "test-common.h"
#include "trueno.h"

#define PG TRUENO_PAGE_SIZE

struct fake {
  int calls, fail, all_raw;
  size_t pages;
};

static int fake_compress(void *ctx, const void *pages, size_t n, unsigned cap,
                         void *dst, uint32_t *off, uint32_t *len) {
  struct fake *f = ctx;
  f->calls++;
  if (f->fail)
    return -EIO;
  static struct lz4page_state state;
  uint8_t *out = dst;
  uint32_t at = 0;
  for (size_t i = 0; i < n; i++) {
    int l = f->all_raw ? 0
                       : lz4page_compress(&state, (const uint8_t *)pages + i * PG,
                                          out + at, (int)cap);
    off[i] = at;
    len[i] = (uint32_t)l;
    at += (uint32_t)l;
  }
  f->pages += n;
  return 0;
}

static struct trueno_store *store(size_t npages, uint64_t limit) {
  struct trueno_config cfg = {.size = (uint64_t)npages * PG,
                              .algorithm = TRUENO_ALG_LZ4,
                              .mem_limit = limit};
  struct trueno_store *st = NULL;
  int r = trueno_store_create(&cfg, &st);
  CHECK(r == 0, "store_create: %d", r);
  return st;
}

/* Writes data in requests of 37 pages from byte 1000 on (edges unaligned),
 * then checks the store's contents. */
static void fill_and_check(struct trueno_store *st, const uint8_t *data,
                           size_t npages, const char *what) {
  size_t len = (npages - 1) * PG, step = 37 * PG;
  for (size_t at = 0; at < len; at += step) {
    size_t n = len - at < step ? len - at : step;
    int r = trueno_write(st, data + at, n, 1000 + at);
    CHECK(r == 0, "%s: write at %zu: %d", what, at, r);
  }
  uint8_t *back = malloc(len);
  CHECK(trueno_read(st, back, len, 1000) == 0, "%s: read", what);
  CHECK(memcmp(back, data, len) == 0, "%s: contents differ", what);
  free(back);
}

/* fill_and_check through a fresh store with batch codec bc; its stats. */
static void run_with(const struct trueno_batch_codec *bc, const uint8_t *data,
                     size_t npages, const char *what, struct trueno_stats *s) {
  struct trueno_store *st = store(npages, 0);
  if (!st)
    return;
  trueno_store_set_batch_codec(st, bc);
  fill_and_check(st, data, npages, what);
  trueno_get_stats(st, s);
  trueno_store_destroy(st);
}

int main(void) {
  struct tc_corpus c;
  tc_corpus_load(&c);
  const struct tc_corpus_file *cf = &c.files[0];
  size_t n = cf->npages < 1024 ? cf->npages : 1024;
  typedef unsigned long long ull;

  struct trueno_stats cpu, bat;
  struct trueno_store *st = store(n, 0);
  fill_and_check(st, cf->data, n, "CPU");
  trueno_get_stats(st, &cpu);
  trueno_store_destroy(st);

  struct fake f = {0};
  struct trueno_batch_codec bc = {.compress = fake_compress, .ctx = &f,
                                  .min_pages = 8};
  st = store(n, 0);
  CHECK(trueno_store_set_batch_codec(st, &bc) == 0, "set batch codec");
  fill_and_check(st, cf->data, n, "batch");
  trueno_get_stats(st, &bat);
  CHECK(f.calls > 0 && bat.offload_pages == f.pages &&
            bat.offload_batches == (ull)f.calls && bat.offload_fallbacks == 0,
        "batch: %d calls, %zu pages; stats %llu batches %llu pages",
        f.calls, f.pages, (ull)bat.offload_batches, (ull)bat.offload_pages);
  CHECK(bat.compr_data_size == cpu.compr_data_size &&
            bat.pages_stored == cpu.pages_stored &&
            bat.same_pages == cpu.same_pages &&
            bat.huge_pages == cpu.huge_pages &&
            bat.pages_written == cpu.pages_written,
        "batch store differs from CPU store: payload %llu vs %llu, pages "
        "%llu vs %llu, same %llu vs %llu, written %llu vs %llu",
        (ull)bat.compr_data_size, (ull)cpu.compr_data_size,
        (ull)bat.pages_stored, (ull)cpu.pages_stored, (ull)bat.same_pages,
        (ull)cpu.same_pages, (ull)bat.pages_written, (ull)cpu.pages_written);
  /* Rewrites through the hook (in-place and moved payloads). */
  fill_and_check(st, cf->data + PG, n - 1, "batch rewrite");
  trueno_store_destroy(st);

  /* A codec that fails: one call per request, the CPU does the rest. */
  f = (struct fake){.fail = 1};
  run_with(&bc, cf->data, n, "failing codec", &bat);
  CHECK(bat.offload_pages == 0 && bat.offload_fallbacks == (ull)f.calls &&
            bat.compr_data_size == cpu.compr_data_size,
        "failing codec: %llu fallbacks for %d calls, payload %llu vs %llu",
        (ull)bat.offload_fallbacks, f.calls, (ull)bat.compr_data_size,
        (ull)cpu.compr_data_size);

  /* Every page flagged raw: stored raw (same-filled ones still same). */
  f = (struct fake){.all_raw = 1};
  run_with(&bc, cf->data, n, "all raw", &bat);
  /* The unaligned edges of each request are compressed on the CPU. */
  CHECK(bat.same_pages == cpu.same_pages &&
            bat.huge_pages + bat.same_pages >= f.pages &&
            bat.huge_pages > cpu.huge_pages,
        "all raw: %llu raw + %llu same, %zu pages through the codec",
        (ull)bat.huge_pages, (ull)bat.same_pages, f.pages);

  /* The memory limit: one 64-page request into a store that can hold
   * few raw pages: -ENOSPC, pages before the failure new, after old. */
  f = (struct fake){.all_raw = 1};
  st = store(256, 0);
  trueno_store_destroy(st);
  st = store(256, 200 * 1024);
  trueno_store_set_batch_codec(st, &bc);
  uint8_t *rnd = malloc(64 * PG), *back = malloc(64 * PG);
  uint64_t seed = 7;
  tc_fill_random(rnd, 64 * PG, &seed);
  int r = trueno_write(st, rnd, 64 * PG, 0);
  CHECK(r == -ENOSPC, "over the limit: %d, want -ENOSPC", r);
  trueno_get_stats(st, &bat);
  CHECK(trueno_read(st, back, 64 * PG, 0) == 0, "read after ENOSPC");
  size_t k = bat.pages_written;
  CHECK(k > 0 && k < 64, "%zu of 64 pages written", k);
  CHECK(memcmp(back, rnd, k * PG) == 0 && tc_all_zero(back + k * PG,
                                                      (64 - k) * PG),
        "after ENOSPC: first %zu pages new, the rest never written", k);
  free(rnd);
  free(back);
  trueno_store_destroy(st);

  /* Refusals. */
  struct trueno_config zc = {.size = 1 << 20, .algorithm = TRUENO_ALG_ZSTD};
  if (trueno_store_create(&zc, &st) == 0) {
    CHECK(trueno_store_set_batch_codec(st, &bc) == -EINVAL, "zstd refuses");
    trueno_store_destroy(st);
  }
  st = store(16, 0);
  struct trueno_batch_codec zero = bc;
  zero.min_pages = 0;
  CHECK(trueno_store_set_batch_codec(st, &zero) == -EINVAL, "min_pages 0");
  CHECK(trueno_store_set_batch_codec(st, NULL) == 0, "remove");
  trueno_store_destroy(st);
  tc_corpus_free(&c);
  return tc_finish();
}
