/* Page codecs behind one small table, so a new codec is a new file.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_CODEC_H
#define TRUENO_CODEC_H

#include "trueno.h"

struct trueno_codec {
  const char *name;
  /* Compresses one 4096-byte page into dst (cap bytes).  Returns the
   * compressed length, 0 if it does not fit in cap, or a negative errno. */
  int (*compress)(const void *page, void *dst, int cap, int level);
  /* Decompresses src into exactly 4096 bytes at page; -EIO if src is corrupt
   * or does not decode to exactly one page.  Never reads past src+len or
   * writes past page+4096. */
  int (*decompress)(const void *src, int len, void *page);
};

extern const struct trueno_codec trueno_codec_lz4;
extern const struct trueno_codec trueno_codec_zstd;

const struct trueno_codec *trueno_codec_for(enum trueno_algorithm alg);

#endif
