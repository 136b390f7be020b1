/* libFuzzer target: the cold-group frame decoder (group.c's path: a zstd
 * frame read in arena-object pieces by trueno_zstd_stream_next) on
 * arbitrary bytes.  A damaged frame must be an error, never a write past
 * the group's pages (the output buffer is exactly their size, so ASan sees
 * any overrun) or a read past the pieces; a frame that decodes must fill
 * the pages exactly.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "group.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t want = (size_t)(1 + data[0] % GROUP_MAX_PAGES) * TRUENO_PAGE_SIZE;
  data++;
  size--;
  void *state = trueno_codec_zstd.state_new();
  uint8_t *out = malloc(want);
  if (!state || !out)
    abort();
  int r = trueno_zstd_stream_begin(state);
  size_t done = 0;
  for (size_t at = 0; !r && at < size; at += GROUP_CHUNK) {
    size_t n = size - at < GROUP_CHUNK ? size - at : GROUP_CHUNK;
    /* Each piece in a buffer of its own size, as arena_view gives it. */
    uint8_t *piece = malloc(n);
    if (!piece)
      abort();
    memcpy(piece, data + at, n);
    r = trueno_zstd_stream_next(state, piece, n, out, want, &done);
    free(piece);
    if (done > want)
      abort();
  }
  trueno_codec_zstd.state_free(state);
  free(out);
  return 0;
}
