/* Cold groups: records, frames, reads (group.h).
 * SPDX-License-Identifier: MIT */
#include "group.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "gcache.h"
#include "slot.h"
#include "store_impl.h"
#include "workspace.h"

#define PAGE TRUENO_PAGE_SIZE

size_t group_cost(size_t len) {
  unsigned n = group_chunks_for(len);
  size_t tail = len - (size_t)(n - 1) * GROUP_CHUNK;
  return (size_t)(n - 1) * arena_class_size(GROUP_CHUNK) +
         arena_class_size(tail) + group_record_bytes(n);
}

/* Bytes of chunk k of a frame of len bytes in n chunks. */
static size_t chunk_len_of(size_t len, unsigned n, unsigned k) {
  return k + 1 < n ? GROUP_CHUNK : len - (size_t)k * GROUP_CHUNK;
}

static size_t chunk_len(const struct group *g, unsigned k) {
  return chunk_len_of(g->frame_len, g->nchunks, k);
}

static void group_free(struct trueno_store *st, struct group *g) {
  for (unsigned k = 0; k < g->nchunks; k++)
    arena_free(st->arena, g->chunks[k]);
  store_counter_add(&st->cnt->groups, -1);
  store_counter_add(&st->cnt->group_frame_bytes, -(int64_t)g->frame_len);
  store_counter_add(&st->cnt->compr_data_size, -(int64_t)g->frame_len);
  store_counter_add(&st->cnt->group_dead_bytes, -(int64_t)atomic_load(&g->dead));
  size_t rec = group_record_bytes(g->nchunks);
  store_counter_add(&st->cnt->group_meta_bytes, -(int64_t)rec);
  meta_free(&st->mh, g, rec);
}

void group_get(struct group *g) {
  atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void group_put(struct trueno_store *st, struct group *g) {
  if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
    group_free(st, g);
}

void group_member_gone(struct trueno_store *st, struct group *g) {
  /* The member's share of the frame is dead until the group goes. */
  uint32_t share = g->frame_len / g->nmembers;
  atomic_fetch_add_explicit(&g->dead, share, memory_order_relaxed);
  store_counter_add(&st->cnt->group_dead_bytes, share);
  atomic_fetch_sub_explicit(&g->live, 1, memory_order_relaxed);
  group_put(st, g);
}

/* A record for a frame of len bytes in fresh arena objects copied from
 * the pieces get_piece gives (frame bytes [k * GROUP_CHUNK, ...) for
 * chunk k), charged to the accounting; refs and live still 0. */
static int group_alloc(struct trueno_store *st, size_t len, uint16_t nmembers,
                       const void *(*get_piece)(void *, unsigned, size_t),
                       void *arg, struct group **out) {
  unsigned n = group_chunks_for(len);
  size_t rec = group_record_bytes(n);
  struct group *g;
  /* In the region in a persistent store (metaheap.h): members' slots
   * point here across processes. */
  int r = meta_alloc(&st->mh, rec, (void **)&g);
  if (r)
    return r;
  g->frame_len = (uint32_t)len;
  g->nmembers = nmembers;
  for (; g->nchunks < n; g->nchunks++) {
    unsigned k = g->nchunks;
    size_t clen = chunk_len_of(len, n, k);
    r = arena_store(st->arena, get_piece(arg, k, clen), clen, &g->chunks[k]);
    if (r)
      break;
  }
  if (r) {
    for (unsigned k = 0; k < g->nchunks; k++)
      arena_free(st->arena, g->chunks[k]);
    meta_free(&st->mh, g, rec);
    return r;
  }
  store_counter_add(&st->cnt->groups, 1);
  store_counter_add(&st->cnt->group_frame_bytes, (int64_t)len);
  store_counter_add(&st->cnt->compr_data_size, (int64_t)len);
  store_counter_add(&st->cnt->group_meta_bytes, (int64_t)rec);
  *out = g;
  return 0;
}

static const void *piece_of_buffer(void *arg, unsigned k, size_t len) {
  (void)len;
  return (const uint8_t *)arg + (size_t)k * GROUP_CHUNK;
}

int group_make(struct trueno_store *st, const void *frame, size_t len,
               uint64_t base, uint64_t mask, struct group **out) {
  unsigned n = (unsigned)__builtin_popcountll(mask);
  struct group *g;
  int r = group_alloc(st, len, (uint16_t)n, piece_of_buffer, (void *)frame,
                      &g);
  if (r)
    return r;
  g->serial = atomic_fetch_add(&st->group_serial, 1) + 1;
  g->base = base;
  g->mask = mask;
  atomic_store(&g->live, n);
  atomic_store(&g->refs, n + 1);
  *out = g;
  return 0;
}

int group_decode(struct workspace *ws, const struct group *g, void *out) {
  size_t want = (size_t)g->nmembers * PAGE, done = 0;
  void *state = ws_codec_state(ws, TRUENO_ALG_ZSTD);
  if (!state)
    return -ENOMEM;
  int r = trueno_zstd_stream_begin(state);
  for (unsigned k = 0; !r && k < g->nchunks; k++) {
    size_t clen = chunk_len(g, k);
    const void *src = arena_view(g->chunks[k], clen, ws->buf);
    r = trueno_zstd_stream_next(state, src, clen, out, want, &done);
  }
  return r ? r : done == want ? 0 : -EIO;
}

int group_read(struct trueno_store *st, struct workspace *ws,
               struct group *g, unsigned pos, void *page) {
  if (pos >= g->nmembers)
    return -EIO;
  if (gcache_copy(&st->gc, g->serial, (size_t)pos * PAGE, page, PAGE))
    return 0;
  struct gcache_entry *e = gcache_claim(&st->gc);
  uint8_t *buf = e ? e->data : malloc((size_t)g->nmembers * PAGE);
  if (!buf)
    return -ENOMEM;
  store_counter_add(&st->cnt->group_decodes, 1);
  int r = group_decode(ws, g, buf);
  if (!r)
    memcpy(page, buf + (size_t)pos * PAGE, PAGE);
  if (e)
    gcache_publish(&st->gc, e, r ? 0 : g->serial);
  else
    free(buf);
  return r;
}

int group_isolated(const struct group *g) {
  for (unsigned k = 0; k < g->nchunks; k++)
    if (arena_is_isolated(g->chunks[k]))
      return 1;
  return 0;
}

struct move_src {
  const struct group *g;
  void *bounce;
};

static const void *piece_of_group(void *arg, unsigned k, size_t len) {
  struct move_src *m = arg;
  return arena_view(m->g->chunks[k], len, m->bounce);
}

int group_move(struct trueno_store *st, struct workspace *ws,
               struct group *g) {
  struct move_src src = {g, ws->buf};
  struct group *to;
  int r = group_alloc(st, g->frame_len, g->nmembers, piece_of_group, &src,
                      &to);
  if (r)
    return r == -EAGAIN ? -ENOMEM : r; /* the reserve is the writers' */
  to->serial = g->serial;
  to->base = g->base;
  to->mask = g->mask;
  atomic_store(&to->live, to->nmembers);
  atomic_store(&to->refs, to->nmembers + 1u);
  unsigned pos = 0;
  for (uint64_t m = g->mask; m; m &= m - 1, pos++)
    slot_move_member(st, g->base + (unsigned)__builtin_ctzll(m), g, pos, to);
  store_counter_add(&st->cnt->pages_compacted, atomic_load(&to->live));
  group_put(st, to);
  return 0;
}
