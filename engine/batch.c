/* The batch path (batch.h).
 * SPDX-License-Identifier: MIT */
#include "batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "codec.h"
#include "page.h"
#include "slot.h"
#include "store_impl.h"
#include "workspace.h"

#define PAGE TRUENO_PAGE_SIZE

size_t batch_pages(const struct trueno_store *st, int reading,
                          uint64_t pos, uint64_t remaining) {
  if ((reading ? !st->batch.decompress : !st->batch.compress) || pos % PAGE)
    return 0;
  uint64_t n = remaining / PAGE;
  if (n > TRUENO_BATCH_MAX_PAGES)
    n = TRUENO_BATCH_MAX_PAGES;
  return n >= st->batch.min_pages ? (size_t)n : 0;
}

/* Blocks copied out of the store for one batch decode: block k (len[k]
 * bytes at blocks + off[k]) is page at[k] of the request. */
struct gathered {
  uint8_t *blocks;
  uint32_t *off, *len, *at;
  size_t k;
};

/* Reads page idx into page: an LZ4 block is copied into g (to decode in
 * the batch), anything else decoded now.  Under the page's read lock, as
 * page_read: the copy is the page as it was at one moment. */
static int gather_page(struct trueno_store *st, struct workspace *ws,
                       uint64_t idx, uint8_t *page, uint32_t i,
                       struct gathered *g) {
  struct slot *s = slots_peek(&st->slots, idx);
  if (!s) {
    memset(page, 0, PAGE);
    return 0;
  }
  pthread_rwlock_t *l = lock_of(st, idx);
  int r = 0;
  pthread_rwlock_rdlock(l);
  if (s->type == SLOT_COMP && s->alg == TRUENO_ALG_LZ4 && s->len &&
      s->len <= ARENA_MAX_OBJ) {
    uint32_t at = g->k ? g->off[g->k - 1] + g->len[g->k - 1] : 0;
    memcpy(g->blocks + at, arena_view(s->val, s->len, ws->buf), s->len);
    g->off[g->k] = at;
    g->len[g->k] = s->len;
    g->at[g->k++] = i;
  } else {
    r = slot_decode(st, ws, s, page);
  }
  if (!r)
    slot_stamp_read(st, s);
  pthread_rwlock_unlock(l);
  return r;
}

/* The gathered blocks into their pages of dst: by the codec in one call
 * (straight into dst when every page is one of them), else, or when it
 * fails, one by one on the CPU. */
static int decode_gathered(struct trueno_store *st, struct workspace *ws,
                           struct gathered *g, uint8_t *dst, size_t n) {
  uint8_t *pages = g->k == n ? dst : malloc(g->k * PAGE);
  int r = pages ? st->batch.decompress(st->batch.ctx, g->blocks, g->off,
                                       g->len, g->k, pages)
                : -ENOMEM;
  if (!r) {
    store_counter_add(&st->cnt->offload_read_batches, 1);
    store_counter_add(&st->cnt->offload_read_pages, (int64_t)g->k);
    for (size_t j = 0; pages != dst && j < g->k; j++)
      memcpy(dst + (size_t)g->at[j] * PAGE, pages + j * PAGE, PAGE);
  } else {
    store_counter_add(&st->cnt->offload_read_fallbacks, 1);
    const struct trueno_codec *c = trueno_codec_for(TRUENO_ALG_LZ4);
    void *state = ws_codec_state(ws, TRUENO_ALG_LZ4);
    r = state ? 0 : -ENOMEM;
    for (size_t j = 0; !r && j < g->k; j++)
      r = c->decompress(state, g->blocks + g->off[j], (int)g->len[j],
                        dst + (size_t)g->at[j] * PAGE);
  }
  if (pages != dst)
    free(pages);
  return r;
}

int batch_read(struct trueno_store *st, struct workspace *ws,
                      uint8_t *dst, uint64_t idx, size_t n, int *cpu) {
  struct gathered g = {.blocks = malloc(n * ARENA_MAX_OBJ),
                       .off = malloc(n * 3 * sizeof(uint32_t))};
  *cpu = !g.blocks || !g.off;
  if (*cpu) {
    free(g.blocks);
    free(g.off);
    return 0;
  }
  g.len = g.off + n;
  g.at = g.len + n;
  int r = 0;
  for (size_t i = 0; !r && i < n; i++)
    r = gather_page(st, ws, idx + i, dst + i * PAGE, (uint32_t)i, &g);
  if (!r && g.k)
    r = decode_gathered(st, ws, &g, dst, n);
  free(g.blocks);
  free(g.off);
  return r;
}

int trueno_store_set_batch_codec(struct trueno_store *st,
                                 const struct trueno_batch_codec *bc) {
  if (bc && (st->alg != TRUENO_ALG_LZ4 || !bc->compress || !bc->min_pages))
    return -EINVAL;
  static const struct trueno_batch_codec none;
  st->batch = bc ? *bc : none;
  return 0;
}

/* Installs page idx from a batch: its block (len bytes at payload; 0 =
 * raw) unless the CPU finds it same-filled. */
static int batch_install(struct trueno_store *st, uint64_t idx,
                         const uint8_t *page, const void *payload,
                         uint32_t len) {
  struct slot *s, next = {0}, old;
  int r = slots_get(&st->slots, idx, &s);
  if (r)
    return r;
  if (trueno_page_same_filled(page, &next.val)) {
    next.type = SLOT_SAME;
  } else if (len == 0) {
    next.type = SLOT_RAW;
    next.len = PAGE;
  } else {
    next.type = SLOT_COMP;
    next.alg = (uint8_t)st->alg;
    next.len = (uint16_t)len;
  }
  r = slot_install_locked(st, lock_of(st, idx), payload, s, page, &next, &old);
  if (!r)
    slot_release(st, &old);
  return r;
}

/* Whether the codec's blocks all lie within the n * cap bytes it was
 * given: one that says otherwise is not believed. */
static int blocks_inside(const uint32_t *off, size_t n, unsigned cap) {
  for (size_t i = 0; i < n; i++)
    if (off[n + i] && off[n + i] <= cap && off[i] > n * cap - off[n + i])
      return 0;
  return 1;
}

int batch_write(struct trueno_store *st, const uint8_t *src,
                       uint64_t idx, size_t n, size_t *written, int *cpu) {
  const unsigned cap = ARENA_MAX_OBJ;
  *written = 0;
  uint8_t *dst = malloc(n * cap);
  uint32_t *off = malloc(n * 2 * sizeof *off);
  int r = dst && off ? 0 : -ENOMEM;
  if (!r)
    r = st->batch.compress(st->batch.ctx, src, n, cap, dst, off, off + n);
  *cpu = r || !blocks_inside(off, n, cap);
  if (*cpu) {
    store_counter_add(&st->cnt->offload_fallbacks, 1);
    free(dst);
    free(off);
    return 0;
  }
  store_counter_add(&st->cnt->offload_batches, 1);
  store_counter_add(&st->cnt->offload_pages, (int64_t)n);
  for (size_t i = 0; !r && i < n; i++) {
    uint32_t len = off[n + i] <= cap ? off[n + i] : 0;
    r = batch_install(st, idx + i, src + i * PAGE, dst + off[i], len);
    if (!r)
      ++*written;
  }
  free(dst);
  free(off);
  return r;
}

