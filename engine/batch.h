/* The batch path: whole-page runs of a request handed to the batch codec
 * (trueno_store_set_batch_codec) in one call, each way.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_BATCH_H
#define TRUENO_BATCH_H

#include <stddef.h>
#include <stdint.h>

struct trueno_store;
struct workspace;

/* Whole pages from byte pos of a request with remaining bytes left, when
 * they are enough for the batch codec (its compress or, reading, its
 * decompress); else 0. */
size_t batch_pages(const struct trueno_store *st, int reading, uint64_t pos,
                   uint64_t remaining);
/* Reads n whole pages from page idx into dst through the batch codec:
 * 0 or a negative errno; *cpu set, and nothing read, when there is no
 * memory for the batch (the caller reads the pages one by one). */
int batch_read(struct trueno_store *st, struct workspace *ws, uint8_t *dst,
               uint64_t idx, size_t n, int *cpu);
/* Compresses n whole pages through the batch codec and installs them:
 * 0 or the first install error (pages before it hold their new contents,
 * it and those after it their old ones); *written counts the pages
 * installed.  *cpu set, and nothing installed, when the codec failed:
 * the caller compresses the pages itself. */
int batch_write(struct trueno_store *st, const uint8_t *src, uint64_t idx,
                size_t n, size_t *written, int *cpu);

#endif
