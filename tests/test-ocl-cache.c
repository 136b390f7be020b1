/* The kernel binary cache of trueno-ocl (opencl/ocl_cache.h) on whatever
 * device the ICD loader offers (PoCL in the test command).
 *
 * The first open builds from source and leaves one file in the cache
 * directory (created, parents too); the second loads it; the kernels of
 * either compress pages that lz4page decodes.  A file flipped in the
 * middle, truncated, or holding a well-formed header over a binary the
 * driver cannot use is ignored: the open builds from source, works, and
 * replaces the file (the next open loads it).  Another kernel source is
 * another key, another file.  "off" caches nothing; the default directory
 * is $XDG_CACHE_HOME/trueno-zram, else $HOME/.cache/trueno-zram; a cache
 * that cannot be written only says so.  A directory or file another user
 * could have written (writable by group or others, or, as root, owned by
 * someone else) is refused: the kernels are built from source and the
 * planted binary, with a checksum anyone can compute, is never loaded.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lz4page.h"
#include "ocl_cache.h"
#include "test-common.h"
#include "trueno_ocl.h"

#define PG 4096u
#define NPAGES 64

static char top[64];

/* The only *.bin file in dir (path into out); returns how many there are. */
static int cache_files(const char *dir, char *out, size_t cap) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".bin") == 0) {
      snprintf(out, cap, "%s/%s", dir, e->d_name);
      n++;
    }
  }
  if (d)
    closedir(d);
  return n;
}

/* Opens with opt, checks where the kernels came from and that they
 * compress; returns trueno_ocl_kernel_cache's answer or -1. */
static int open_and_use(const struct trueno_ocl_options *opt,
                        const char *what, const char *want_note) {
  struct trueno_ocl *o = NULL;
  const char *why = "";
  int r = trueno_ocl_open(opt, &o, &why);
  CHECK(r == 0, "%s: open: %d (%s)", what, r, why);
  if (r)
    return -1;
  const char *note = "";
  int cached = trueno_ocl_kernel_cache(o, &note);
  printf("%s: %s\n", what, note);
  CHECK(strstr(note, want_note), "%s: note '%s' lacks '%s'", what, note,
        want_note);
  static uint8_t pages[NPAGES * PG], dst[NPAGES * PG], back[PG];
  uint32_t off[NPAGES], len[NPAGES];
  for (unsigned i = 0; i < NPAGES * PG; i++)
    pages[i] = (uint8_t)("trueno kernel cache "[(i / 3 + i / PG) % 20]);
  r = trueno_ocl_compress(o, pages, NPAGES, PG, dst, off, len);
  CHECK(r == 0, "%s: compress: %d", what, r);
  for (unsigned i = 0; !r && i < NPAGES; i++) {
    int ok = len[i] && lz4page_decompress(dst + off[i], (int)len[i], back) == 0 &&
             memcmp(back, pages + i * PG, PG) == 0;
    CHECK(ok, "%s: page %u does not round-trip (%u bytes)", what, i, len[i]);
  }
  trueno_ocl_close(o);
  return cached;
}

static long file_size(const char *p) {
  struct stat sb;
  return stat(p, &sb) ? -1 : (long)sb.st_size;
}

/* The whole file into a fresh buffer (*len bytes), or NULL. */
static char *slurp(const char *p, size_t *len) {
  FILE *f = fopen(p, "rb");
  long n = file_size(p);
  char *buf = f && n >= 0 ? malloc((size_t)n + 1) : NULL;
  *len = buf ? fread(buf, 1, (size_t)n, f) : 0;
  if (f)
    fclose(f);
  return buf;
}

/* Rewrites the file's binary as junk under a valid header, length and
 * hash: only the driver can tell. */
static void foreign_binary(const char *path) {
  FILE *f = fopen(path, "rb");
  static char buf[1 << 16];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f)
    fclose(f);
  char *end = memmem(buf, n, "\n\n", 2);
  CHECK(end != NULL, "no header end in %s", path);
  if (!end)
    return;
  size_t hn = (size_t)(end + 2 - buf), blen = 4096;
  unsigned char junk[4096];
  for (size_t i = 0; i < blen; i++)
    junk[i] = (unsigned char)(i * 131 + 7);
  uint64_t sum = ocl_cache_fnv(OCL_CACHE_FNV_INIT, junk, blen);
  f = fopen(path, "wb");
  fwrite(buf, 1, hn, f);
  for (int i = 0; i < 8; i++)
    fputc((int)((blen >> (8 * i)) & 0xff), f);
  for (int i = 0; i < 8; i++)
    fputc((int)((sum >> (8 * i)) & 0xff), f);
  fwrite(junk, 1, blen, f);
  fclose(f);
}

static void damaged(const char *dir, const char *path, const char *how) {
  struct trueno_ocl_options opt = {.cache_dir = dir};
  long size = file_size(path);
  if (strcmp(how, "flipped") == 0) {
    FILE *f = fopen(path, "r+b");
    fseek(f, size / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, size / 2, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
  } else if (strcmp(how, "truncated") == 0) {
    CHECK(truncate(path, size / 2) == 0, "truncate");
  } else {
    foreign_binary(path);
  }
  size_t blen, alen;
  char *bad = slurp(path, &blen);
  char what[64];
  snprintf(what, sizeof what, "%s file", how);
  CHECK(open_and_use(&opt, what, "unusable") == 0,
        "%s: built from source", what);
  /* A rebuild need not give the same bytes, nor the same size (PoCL's
   * binaries differ between builds): the damaged file must be gone, one
   * file left in its place, and the next open must load it. */
  char *now = slurp(path, &alen);
  CHECK(bad && now && (alen != blen || memcmp(bad, now, alen) != 0),
        "%s: file replaced (%zu bytes, was %zu)", what, alen, blen);
  char only[512];
  CHECK(cache_files(dir, only, sizeof only) == 1 && strcmp(only, path) == 0,
        "%s: one file, %s", what, path);
  free(bad);
  free(now);
  snprintf(what, sizeof what, "after the %s file", how);
  CHECK(open_and_use(&opt, what, "from the cache") == 1, "%s: loaded", what);
}

/* A binary someone else could have planted: refused, built from source. */
static void planted(const char *dir, const char *path) {
  struct trueno_ocl_options opt = {.cache_dir = dir};
  CHECK(open_and_use(&opt, "before planting", "from the cache") == 1,
        "before planting: loaded");
  CHECK(chmod(path, 0666) == 0, "chmod %s", path);
  CHECK(open_and_use(&opt, "file writable by others", "refused") == 0,
        "file writable by others: built from source");
  CHECK(open_and_use(&opt, "after the replaced file", "from the cache") == 1,
        "the refused file was replaced by ours");
  CHECK(chmod(dir, 0777) == 0, "chmod %s", dir);
  CHECK(open_and_use(&opt, "dir writable by others", "refused") == 0,
        "dir writable by others: built from source");
  CHECK(chmod(dir, 0700) == 0, "chmod %s", dir);
  if (geteuid() != 0) {
    printf("not root: foreign owners not tried\n");
    return;
  }
  CHECK(chown(path, 65534, 65534) == 0, "chown %s", path);
  CHECK(open_and_use(&opt, "file of another user", "refused") == 0,
        "file of another user: built from source");
  CHECK(chown(dir, 65534, 65534) == 0, "chown %s", dir);
  CHECK(open_and_use(&opt, "dir of another user", "refused") == 0,
        "dir of another user: built from source");
  CHECK(chown(dir, 0, 0) == 0, "chown %s", dir);
  CHECK(open_and_use(&opt, "dir ours again", "from the cache") == 1,
        "dir ours again: loaded");
}

static void defaults(void) {
  char xdg[128], home[128], p[512];
  snprintf(xdg, sizeof xdg, "%s/xdg", top);
  snprintf(home, sizeof home, "%s/home", top);
  setenv("XDG_CACHE_HOME", xdg, 1);
  open_and_use(NULL, "XDG_CACHE_HOME", "cached in");
  snprintf(p, sizeof p, "%s/trueno-zram", xdg);
  CHECK(cache_files(p, p, sizeof p) == 1, "a file under $XDG_CACHE_HOME");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", home, 1);
  open_and_use(NULL, "HOME", "cached in");
  snprintf(p, sizeof p, "%s/.cache/trueno-zram", home);
  CHECK(cache_files(p, p, sizeof p) == 1, "a file under $HOME/.cache");
  struct trueno_ocl_options off = {.cache_dir = "off"};
  CHECK(open_and_use(&off, "off", "no cache") == 0, "off: built");
  snprintf(p, sizeof p, "%s/file", top);
  fclose(fopen(p, "w"));
  struct trueno_ocl_options file = {.cache_dir = p};
  CHECK(open_and_use(&file, "cache dir is a file", "not cached") == 0,
        "cache dir is a file: built");
}

int main(void) {
  snprintf(top, sizeof top, "/tmp/trueno-ocl-cache.XXXXXX");
  CHECK(mkdtemp(top) != NULL, "mkdtemp");
  char dir[128], path[512];
  snprintf(dir, sizeof dir, "%s/a/b", top);
  struct trueno_ocl_options opt = {.cache_dir = dir};
  CHECK(open_and_use(&opt, "first open", "cached in") == 0,
        "first open: built from source");
  CHECK(cache_files(dir, path, sizeof path) == 1, "one file in %s", dir);
  CHECK(open_and_use(&opt, "second open", "from the cache") == 1,
        "second open: from the cache");
  damaged(dir, path, "flipped");
  damaged(dir, path, "truncated");
  damaged(dir, path, "foreign");
  planted(dir, path);
  struct stat sb;
  CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
        "cache file mode %o, not 0600", (unsigned)(sb.st_mode & 0777));
  CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700,
        "cache dir mode %o, not 0700", (unsigned)(sb.st_mode & 0777));
  struct trueno_ocl_options other = {.cache_dir = dir,
                                     .extra_source = "\n/* another */\n"};
  CHECK(open_and_use(&other, "other source", "cached in") == 0,
        "other source: built");
  CHECK(cache_files(dir, path, sizeof path) == 2, "two files in %s", dir);
  defaults();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", top);
  CHECK(system(cmd) == 0, "%s", cmd);
  return tc_finish();
}
