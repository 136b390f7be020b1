/* Two housekeeping threads (common/housekeeping.c) on two stores of one
 * process, each with its own stats file: both files are written, each
 * with its own store's counters and extra fields, while both run and once
 * more when each stops.  The thread used to be one for the process.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "housekeeping.h"
#include "test-common.h"
#include "trueno.h"

#define PAGE 4096u

struct side {
  struct trueno_store *st;
  struct housekeeping *hk;
  char path[256];
  const char *extra;
  unsigned pages;
};

/* The file's text, NUL-terminated, in buf; 0 when it cannot be read. */
static size_t slurp(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, len - 1, f);
  fclose(f);
  buf[n] = 0;
  return n;
}

/* Whether the stats file at path says pages_stored is pages. */
static int says(const char *path, unsigned pages) {
  char text[8192], want[64];
  if (!slurp(path, text, sizeof text))
    return 0;
  snprintf(want, sizeof want, "\"pages_stored\": %u,", pages);
  return strstr(text, want) != NULL;
}

static void start(struct side *s, const char *dir, const char *name) {
  struct trueno_config cfg = {.size = 16u << 20, .algorithm = TRUENO_ALG_LZ4};
  CHECK(trueno_store_create(&cfg, &s->st) == 0, "create");
  uint8_t pg[PAGE];
  for (unsigned i = 0; i < s->pages; i++) {
    memset(pg, 0, sizeof pg);
    snprintf((char *)pg, sizeof pg, "page %u of %s", i, name);
    CHECK(trueno_write(s->st, pg, PAGE, (uint64_t)i * PAGE) == 0, "write");
  }
  snprintf(s->path, sizeof s->path, "%s/%s.json", dir, name);
  struct housekeeping_files files = {.stats = s->path,
                                     .stats_extra = s->extra};
  int r = housekeeping_start(&files, s->st, TRUENO_ALG_LZ4, &s->hk);
  CHECK(r == 0, "housekeeping_start for %s: %d", name, r);
}

int main(void) {
  char dir[] = "/tmp/test-housekeeping-XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0, "mkdtemp");
    return tc_finish();
  }
  struct side a = {.extra = "\"side\": \"a\"", .pages = 3};
  struct side b = {.extra = "\"side\": \"b\"", .pages = 5};
  start(&a, dir, "a");
  start(&b, dir, "b");

  /* Both threads write their first snapshot at once. */
  for (int i = 0; i < 500 && !(says(a.path, 3) && says(b.path, 5)); i++)
    usleep(10000);
  CHECK(says(a.path, 3), "store A's file has A's 3 pages");
  CHECK(says(b.path, 5), "store B's file has B's 5 pages");

  /* A stops first, with its final snapshot; B keeps running and its final
   * snapshot is its own. */
  uint8_t pg[PAGE];
  memset(pg, 7, sizeof pg);
  CHECK(trueno_write(a.st, pg, PAGE, 3 * PAGE) == 0, "write");
  housekeeping_stop(a.hk);
  CHECK(says(a.path, 4), "A's final snapshot has A's 4 pages");
  CHECK(trueno_write(b.st, pg, PAGE, 5 * PAGE) == 0, "write");
  housekeeping_stop(b.hk);
  CHECK(says(b.path, 6), "B's final snapshot has B's 6 pages");
  housekeeping_stop(NULL); /* a no-op */

  char text[8192];
  CHECK(slurp(a.path, text, sizeof text) && strstr(text, "\"side\": \"a\""),
        "A's file carries A's extra fields");
  CHECK(slurp(b.path, text, sizeof text) && strstr(text, "\"side\": \"b\""),
        "B's file carries B's extra fields");
  struct stat sa, sb;
  CHECK(stat(a.path, &sa) == 0 && (sa.st_mode & 0777) == 0600 &&
            stat(b.path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
        "both files are 0600");

  trueno_store_destroy(a.st);
  trueno_store_destroy(b.st);
  unlink(a.path);
  unlink(b.path);
  rmdir(dir);
  return tc_finish();
}
