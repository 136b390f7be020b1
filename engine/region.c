/* The region (region.h).
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* fallocate, MAP_FIXED_NOREPLACE */
#include "region.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pagepool.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define RG_PAGE 4096u
/* Where regions go: far below the kernel's default mmap area (libraries,
 * thread stacks, malloc's arenas, which ASLR moves from run to run) and
 * above ASan's shadow, so the next process finds the address free. */
#define RG_HINT 0x200000000000ull
#define RG_HINT_STEP (1ull << 40)
#define RG_HINT_TRIES 16

static uint64_t round_up(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

static uint64_t fnv1a(const void *p, size_t n) {
  const uint8_t *b = p;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

static uint64_t hdr_check(const struct region_hdr *h) {
  return fnv1a(h, offsetof(struct region_hdr, check));
}

static void say(char *why, size_t len, const char *fmt, ...) {
  if (!why || !len)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
}

/* The layout of a store of p's size: offsets and the pool's chunks.  The
 * pool area holds twice the device (raw pages, half-used zspages and the
 * arena's bookkeeping fit many times over) and is only address space until
 * written: the file is sparse. */
static void plan(const struct region_params *p, struct region_hdr *h) {
  uint64_t npages = (p->size + RG_PAGE - 1) / RG_PAGE;
  uint64_t nchunks = (npages + SLOTS_PER_CHUNK - 1) / SLOTS_PER_CHUNK;
  memcpy(h->magic, REGION_MAGIC, sizeof h->magic);
  h->version = REGION_VERSION;
  h->hdr_bytes = sizeof *h;
  h->layout = p->layout;
  h->size = p->size;
  h->algorithm = (uint32_t)p->algorithm;
  h->nstripes = p->nstripes;
  h->npages = npages;
  h->intents_off = RG_PAGE;
  h->top_off = h->intents_off +
               round_up((uint64_t)p->nstripes * sizeof(struct region_intent),
                        RG_PAGE);
  h->slots_off = h->top_off + round_up(nchunks * sizeof(void *), RG_PAGE);
  uint64_t slots_end =
      h->slots_off + nchunks * SLOTS_PER_CHUNK * sizeof(struct slot);
  h->pool_off = round_up(slots_end, PP_CHUNK_BYTES);
  h->pool_chunks = 2 * round_up(p->size, PP_CHUNK_BYTES) / PP_CHUNK_BYTES + 8;
  h->len = h->pool_off + h->pool_chunks * PP_CHUNK_BYTES;
}

static void fill(struct region *rg, uint8_t *base, size_t len, int fd) {
  rg->base = base;
  rg->len = len;
  rg->fd = fd;
  rg->hdr = (struct region_hdr *)base;
  rg->counters = base + REGION_COUNTERS_OFF;
  rg->intents = (struct region_intent *)(base + rg->hdr->intents_off);
  rg->top = (_Atomic(struct slot *) *)(base + rg->hdr->top_off);
  rg->slots = (struct slot *)(base + rg->hdr->slots_off);
  rg->pool = base + rg->hdr->pool_off;
  rg->pool_chunks = rg->hdr->pool_chunks;
}

/* Address space for len bytes, 2 MiB-aligned (pool chunks are found by
 * masking), reserved PROT_NONE: at a hint if one is free, else anywhere. */
static uint8_t *reserve(size_t len) {
  size_t span = len + PP_CHUNK_BYTES;
  uint8_t *raw = MAP_FAILED;
  for (int i = 0; i < RG_HINT_TRIES && raw == MAP_FAILED; i++) {
    void *want = (void *)(uintptr_t)(RG_HINT + i * RG_HINT_STEP);
    /* A plain hint: the kernel takes it when the range is free (and
     * ThreadSanitizer drops hints outside its application ranges). */
    raw = mmap(want, span, PROT_NONE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw != MAP_FAILED && raw != want) {
      munmap(raw, span);
      raw = MAP_FAILED;
    }
  }
  if (raw == MAP_FAILED)
    raw = mmap(NULL, span, PROT_NONE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return NULL;
  uintptr_t base = ((uintptr_t)raw + PP_CHUNK_BYTES - 1) &
                   ~(uintptr_t)(PP_CHUNK_BYTES - 1);
  if (base > (uintptr_t)raw)
    munmap(raw, base - (uintptr_t)raw);
  munmap((uint8_t *)base + len, (uintptr_t)raw + span - base - len);
  return (uint8_t *)base;
}

int region_create(int fd, const struct region_params *p, struct region *rg) {
  struct region_hdr h = {0};
  plan(p, &h);
  if (h.len > (uint64_t)SIZE_MAX / 2 || h.len > (uint64_t)INT64_MAX)
    return -EINVAL;
  int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup_fd < 0)
    return -errno;
  int r = 0;
  if (ftruncate(dup_fd, 0) || ftruncate(dup_fd, (off_t)h.len)) {
    r = -errno;
    goto fail;
  }
  uint8_t *base = reserve(h.len);
  if (!base) {
    r = -ENOMEM;
    goto fail;
  }
  if (mmap(base, h.len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
           dup_fd, 0) == MAP_FAILED) {
    r = -errno;
    munmap(base, h.len);
    goto fail;
  }
  h.base = (uintptr_t)base;
  h.check = hdr_check(&h);
  memcpy(base, &h, sizeof h);
  fill(rg, base, h.len, dup_fd);
  return 0;
fail:
  close(dup_fd);
  return r;
}

/* Checks a header read from the file against what this engine and the
 * caller's settings expect. */
static int hdr_valid(const struct region_hdr *h, const struct region_params *p,
                     uint64_t file_len, char *why, size_t why_len) {
  if (memcmp(h->magic, REGION_MAGIC, sizeof h->magic)) {
    say(why, why_len, "state: not a trueno store state (bad magic)");
    return -EINVAL;
  }
  if (h->version != REGION_VERSION) {
    say(why, why_len,
        "state: of format %u, this trueno reads %u: start a new state, "
        "the stored pages are lost",
        h->version, REGION_VERSION);
    return -EINVAL;
  }
  if (h->check != hdr_check(h)) {
    say(why, why_len, "state: header damaged (checksum)");
    return -EUCLEAN;
  }
  if (h->layout != p->layout || h->hdr_bytes != sizeof *h ||
      h->nstripes != p->nstripes) {
    say(why, why_len,
        "state: made by a trueno of another layout: start a new state, "
        "the stored pages are lost");
    return -EINVAL;
  }
  if (h->size != p->size) {
    say(why, why_len,
        "size: %llu differs from the state's %llu: give the state's size",
        (unsigned long long)p->size, (unsigned long long)h->size);
    return -EINVAL;
  }
  if (h->algorithm != (uint32_t)p->algorithm) {
    say(why, why_len, "algorithm: differs from the state's");
    return -EINVAL;
  }
  struct region_hdr want = {0};
  plan(p, &want);
  if (h->len != want.len || h->pool_off != want.pool_off ||
      h->slots_off != want.slots_off || h->top_off != want.top_off ||
      h->intents_off != want.intents_off || h->npages != want.npages ||
      h->pool_chunks != want.pool_chunks || h->base % PP_CHUNK_BYTES ||
      h->base == 0 || h->base + h->len < h->base) {
    say(why, why_len, "state: header damaged (layout)");
    return -EUCLEAN;
  }
  if (file_len < h->len) {
    say(why, why_len, "state: file of %llu bytes, its header says %llu",
        (unsigned long long)file_len, (unsigned long long)h->len);
    return -EUCLEAN;
  }
  return 0;
}

int region_attach(int fd, const struct region_params *p, struct region *rg,
                  char *why, size_t why_len) {
  struct stat sb;
  struct region_hdr h;
  if (fstat(fd, &sb)) {
    int e = errno;
    say(why, why_len, "state: %s", strerror(e));
    return -e;
  }
  if ((uint64_t)sb.st_size < sizeof h) {
    say(why, why_len, "state: empty or too short to hold a store");
    return -EINVAL;
  }
  ssize_t n = pread(fd, &h, sizeof h, 0);
  if (n != (ssize_t)sizeof h) {
    int e = n < 0 ? errno : EIO;
    say(why, why_len, "state: cannot read its header: %s", strerror(e));
    return -e;
  }
  int r = hdr_valid(&h, p, (uint64_t)sb.st_size, why, why_len);
  if (r)
    return r;
  int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup_fd < 0) {
    r = -errno;
    say(why, why_len, "state: %s", strerror(-r));
    return r;
  }
  void *want = (void *)(uintptr_t)h.base;
  void *got = mmap(want, h.len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED_NOREPLACE, dup_fd, 0);
  if (got != want) {
    r = got == MAP_FAILED ? -errno : -EBUSY;
    if (got != MAP_FAILED)
      munmap(got, h.len);
    if (r == -EEXIST)
      r = -EBUSY;
    say(why, why_len,
        "state: its address %p is taken in this process (%s): the "
        "pages cannot be served here",
        want, strerror(-r));
    close(dup_fd);
    return r;
  }
  /* What is mapped must be what was checked: nobody else writes it. */
  if (memcmp(got, &h, offsetof(struct region_hdr, check) + 8)) {
    munmap(got, h.len);
    close(dup_fd);
    say(why, why_len, "state: header changed while attaching");
    return -EUCLEAN;
  }
  fill(rg, got, h.len, dup_fd);
  return 0;
}

void region_detach(struct region *rg) {
  munmap(rg->base, rg->len);
  close(rg->fd);
  rg->base = NULL;
}

void region_drop(struct region *rg) {
  munmap(rg->base, rg->len);
  if (ftruncate(rg->fd, 0)) {
    /* Nothing better to do: the caller closing the memfd frees it. */
  }
  close(rg->fd);
  rg->base = NULL;
}

void region_punch(struct region *rg, void *addr, size_t len) {
  /* Works on locked (mlockall) pages, unlike MADV_REMOVE; a failure
   * leaves the memory held, never wrong data (the page is free). */
  fallocate(rg->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            (off_t)((uint8_t *)addr - rg->base), (off_t)len);
}

uint64_t region_fixed_bytes(const struct region *rg) {
  return rg->hdr->top_off;
}
