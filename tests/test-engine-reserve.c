/* The page pool's reserve (swap mode): with trueno_set_pool_reserve(), a
 * store's writers only use memory mapped ahead; when that is used up a
 * write fails at once with -ENOMEM, stored data stays intact, and after
 * trueno_pool_refill() writes work again.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"
#include "trueno.h"

#define PAGE 4096u

/* An incompressible page: every page costs a whole pool page. */
static void fill(uint8_t *pg, uint64_t n) {
  uint64_t s = n * 0x9e3779b97f4a7c15ull + 1;
  for (unsigned i = 0; i < PAGE; i += 8) {
    uint64_t v = tc_rand(&s);
    memcpy(pg + i, &v, 8);
  }
}

int main(void) {
  trueno_set_pool_reserve(4u << 20); /* two 2 MiB chunks */
  struct trueno_config cfg = {.size = 64u << 20, .algorithm = TRUENO_ALG_LZ4};
  struct trueno_store *st;
  CHECK(trueno_store_create(&cfg, &st) == 0, "create");
  uint8_t pg[PAGE], back[PAGE];
  uint64_t n = 0;
  int r = 0;
  for (; n < 16384; n++) {
    fill(pg, n);
    r = trueno_write(st, pg, PAGE, n * PAGE);
    if (r)
      break;
  }
  CHECK(r == -ENOMEM, "a write past the reserve fails with ENOMEM (got %d)", r);
  /* About 4 MiB of raw pages fit (less what the arena and the slot table
   * took), never more than the reserve. */
  CHECK(n > 256 && n <= 1024, "%llu pages fitted in a 4 MiB reserve",
        (unsigned long long)n);
  uint64_t failed = n;
  fill(pg, failed);
  CHECK(trueno_write(st, pg, PAGE, failed * PAGE) == -ENOMEM,
        "retry fails again");
  for (uint64_t i = 0; i < failed; i++) {
    fill(pg, i);
    CHECK(trueno_read(st, back, PAGE, i * PAGE) == 0 &&
              memcmp(pg, back, PAGE) == 0,
          "page %llu intact", (unsigned long long)i);
  }
  CHECK(trueno_read(st, back, PAGE, failed * PAGE) == 0, "read failed page");
  static const uint8_t zero[PAGE];
  CHECK(memcmp(back, zero, PAGE) == 0, "the failed page is untouched");

  trueno_pool_refill();
  fill(pg, failed);
  CHECK(trueno_write(st, pg, PAGE, failed * PAGE) == 0,
        "after a refill the write succeeds");
  CHECK(trueno_read(st, back, PAGE, failed * PAGE) == 0 &&
            memcmp(pg, back, PAGE) == 0,
        "and reads back");
  /* Trimming gives pages back to the pool: they are reused, no refill. */
  CHECK(trueno_trim(st, 256 * PAGE, 0) == 0, "trim");
  for (uint64_t i = 0; i < 200; i++) {
    fill(pg, 100000 + i);
    r = trueno_write(st, pg, PAGE, (failed + 1 + i) * PAGE);
    if (r)
      break;
  }
  CHECK(r == 0, "writes after a trim reuse the freed pages (got %d)", r);
  trueno_store_destroy(st);
  trueno_set_pool_reserve(0);
  return tc_finish();
}
