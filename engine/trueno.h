/* trueno-zram engine: a store of compressed 4 KiB pages.
 *
 * The one public header of the engine.  Front ends (the nbdkit plugin, the
 * ublk adaptor) see only what is here.  Every function that can fail returns
 * 0 or a negative errno.  All functions taking a store are safe to call from
 * many threads at once.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_H
#define TRUENO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRUENO_PAGE_SIZE 4096u

enum trueno_algorithm {
  TRUENO_ALG_LZ4 = 0,
  TRUENO_ALG_ZSTD = 1,
  TRUENO_ALG_COUNT
};

/* Who compresses algorithm=lz4 pages.  Both write the LZ4 block format and
 * read each other's blocks. */
enum trueno_lz4_impl {
  TRUENO_LZ4_TRUENO = 0, /* the engine's SIMD page codec (default) */
  TRUENO_LZ4_LIBLZ4 = 1, /* liblz4 */
  TRUENO_LZ4_IMPL_COUNT
};

/* Idle-page recompression (trueno_recompress): what a page that has not
 * been read or written for a while is compressed again with, kept when
 * that moves it to a smaller size class. */
enum trueno_recompressor {
  TRUENO_RECOMPRESS_OFF = 0,
  TRUENO_RECOMPRESS_ZSTD,  /* densest; reads of those pages decode zstd */
  TRUENO_RECOMPRESS_LZ4HC, /* LZ4 blocks from liblz4's HC parser: reads
                              stay LZ4-fast */
  TRUENO_RECOMPRESSOR_COUNT
};

struct trueno_config {
  uint64_t size;                  /* device size in bytes, > 0 */
  enum trueno_algorithm algorithm;
  int level;                      /* zstd level; 0 = the engine's default */
  uint64_t mem_limit;             /* bytes; 0 = no limit */
  enum trueno_lz4_impl lz4_impl;  /* algorithm=lz4 only; 0 = ours */
  enum trueno_recompressor recompress; /* 0 = off */
  int recompress_level;           /* 0 = the recompressor's default */
  uint32_t recompress_idle;       /* seconds; 0 = TRUENO_RECOMPRESS_IDLE */
  /* Idle pages trueno_maintain tries per call (it is meant to be called
   * once a second, so: per second); its scan for them covers 64 times as
   * many slots.  0 = TRUENO_RECOMPRESS_RATE; at most
   * TRUENO_RECOMPRESS_RATE_MAX (trueno_store_create: -EINVAL above). */
  uint32_t recompress_rate;
  /* Cold groups (trueno_group): pages per group, 0 = off, else
   * 2..TRUENO_GROUP_PAGES_MAX; the zstd level of their frames (0 =
   * TRUENO_GROUP_LEVEL); seconds without a read or write before a page
   * joins one (0 = TRUENO_RECOMPRESS_IDLE); pages trueno_maintain tries a
   * call (0 = TRUENO_GROUP_RATE, at most TRUENO_RECOMPRESS_RATE_MAX); and
   * decoded groups kept for reads (0 = TRUENO_GROUP_CACHE, at most
   * TRUENO_GROUP_CACHE_MAX).  With groups on, trueno_maintain groups idle
   * pages and recompresses (recompress) those without idle neighbours. */
  uint32_t group_pages;
  int group_level;
  uint32_t group_idle;
  uint32_t group_rate;
  uint32_t group_cache;
  /* Pool memory kept mapped and resident ahead of the writes, in bytes
   * (rounded up to 2 MiB chunks); 0 = none.  See trueno_pool_refill. */
  uint64_t pool_reserve;
  /* Persistence (docs/persistence.md): with persist set,
   * trueno_store_create makes a new state in the shared-memory file
   * state_fd (a memfd; emptied first) and keeps the whole store there, so
   * that trueno_store_attach can serve it in another process after this
   * one exits or is killed.  persist 0: state_fd is not looked at (a
   * zeroed config is an anonymous store). */
  int persist;
  int state_fd;
};

#define TRUENO_GROUP_PAGES_MAX 64u
/* The size "on" stands for in the front ends. */
#define TRUENO_GROUP_PAGES 16u
#define TRUENO_GROUP_LEVEL 9
#define TRUENO_GROUP_RATE 1024u
#define TRUENO_GROUP_CACHE 16u
#define TRUENO_GROUP_CACHE_MAX 64u

#define TRUENO_RECOMPRESS_IDLE 120u
/* Tens of microseconds a page: a few percent of one CPU at most. */
#define TRUENO_RECOMPRESS_RATE 1024u
/* A sanity bound: 4 GiB of pages a call and a scan of 64 Mi slots, already
 * seconds of one CPU per call (docs/measurements.md). */
#define TRUENO_RECOMPRESS_RATE_MAX 1048576u

/* Counters, in the spirit of kernel zram's mm_stat and io_stat: the one
 * list that struct trueno_stats, the store's atomics, trueno_stats_json and
 * trueno_stats_prometheus are made from, so adding a counter is one entry
 * here (and the code that moves it).  A snapshot: each field is read
 * atomically, the set is not.
 *
 *   X(name, prom, kind, unit, source, help)
 *   name    the field of struct trueno_stats and the JSON key
 *   prom    the Prometheus name between "trueno_" and the suffixes the
 *           writer adds: "_bytes" for unit BYTES, "_total" for a COUNTER
 *   kind    COUNTER (only grows while the store lives) or GAUGE
 *   unit    BYTES, PAGES (of 4 KiB) or COUNT (of requests, passes...)
 *   source  STORE: an atomic the store moves (store_stats.h);
 *           ALG: the same, one per algorithm: an array indexed by enum
 *           trueno_algorithm, its name starting "alg_", which the JSON key
 *           replaces with the algorithm's name ("lz4_pages") and Prometheus
 *           with an algorithm label;
 *           GET: computed by trueno_get_stats
 *   help    one line for Prometheus' HELP (no backslash, no newline) */
#define TRUENO_STATS(X)                                                      \
  X(disksize, disksize, GAUGE, BYTES, GET, "Device size")                    \
  X(orig_data_size, orig_data_size, GAUGE, BYTES, GET,                       \
    "Data stored, uncompressed: pages_stored times 4096")                    \
  X(compr_data_size, compr_data_size, GAUGE, BYTES, STORE,                   \
    "Compressed payload: compressed sizes, 4096 for a page stored raw")      \
  X(mem_used_total, mem_used, GAUGE, BYTES, GET,                             \
    "Memory used: arena pages and arena and slot metadata")                  \
  X(mem_limit, mem_limit, GAUGE, BYTES, GET, "Memory limit, 0 for none")     \
  X(mem_used_max, mem_used_max, GAUGE, BYTES, GET, "Peak of memory used")    \
  X(same_pages, same_pages, GAUGE, PAGES, STORE,                             \
    "Same-filled pages, stored without payload")                             \
  X(huge_pages, huge_pages, GAUGE, PAGES, STORE, "Pages stored raw")         \
  X(pages_stored, pages_stored, GAUGE, PAGES, STORE,                         \
    "Pages holding data, same-filled included")                              \
  X(alg_pages, compressed_pages, GAUGE, PAGES, ALG,                          \
    "Compressed pages per algorithm")                                        \
  X(reads, reads, COUNTER, COUNT, STORE, "Read requests")                    \
  X(writes, writes, COUNTER, COUNT, STORE, "Write requests")                 \
  X(trims, trims, COUNTER, COUNT, STORE, "Trim and zero requests")           \
  X(failed_reads, failed_reads, COUNTER, COUNT, STORE,                       \
    "Read requests that failed")                                             \
  X(failed_writes, failed_writes, COUNTER, COUNT, STORE,                     \
    "Write, trim and zero requests that failed")                             \
  X(pages_read, pages_read, COUNTER, PAGES, STORE, "Pages touched by reads") \
  X(pages_written, pages_written, COUNTER, PAGES, STORE,                     \
    "Pages touched by writes")                                               \
  X(pages_trimmed, pages_trimmed, COUNTER, PAGES, STORE,                     \
    "Pages released by trim or zero")                                        \
  X(arena_pages, arena_pages, GAUGE, PAGES, GET,                             \
    "Pages of memory held by the arena")                                     \
  X(metadata_bytes, metadata, GAUGE, BYTES, GET,                             \
    "Slot tables and arena bookkeeping")                                     \
  X(compactions, compactions, COUNTER, COUNT, STORE,                         \
    "Compaction passes that found work")                                     \
  X(pages_compacted, pages_compacted, COUNTER, PAGES, STORE,                 \
    "Compressed pages moved by compaction")                                  \
  X(offload_batches, offload_batches, COUNTER, COUNT, STORE,                 \
    "Write batches the batch codec compressed")                              \
  X(offload_pages, offload_pages, COUNTER, PAGES, STORE,                     \
    "Pages in the write batches the batch codec compressed")                 \
  X(offload_fallbacks, offload_fallbacks, COUNTER, COUNT, STORE,             \
    "Write batches the batch codec failed, compressed on the CPU")           \
  X(offload_read_batches, offload_read_batches, COUNTER, COUNT, STORE,       \
    "Read batches the batch codec decoded")                                  \
  X(offload_read_pages, offload_read_pages, COUNTER, PAGES, STORE,           \
    "Pages in the read batches the batch codec decoded")                     \
  X(offload_read_fallbacks, offload_read_fallbacks, COUNTER, COUNT, STORE,   \
    "Read batches the batch codec failed, decoded on the CPU")               \
  X(pages_recompressed, pages_recompressed, COUNTER, PAGES, STORE,           \
    "Idle pages recompressed and kept so")                                   \
  X(recompress_no_gain, recompress_no_gain, COUNTER, PAGES, STORE,           \
    "Idle pages recompression tried that gained nothing")                    \
  X(groups, groups, GAUGE, COUNT, STORE, "Cold groups (trueno_group)")       \
  X(pages_grouped, pages_grouped, GAUGE, PAGES, STORE,                       \
    "Pages stored in cold groups")                                           \
  X(group_frame_bytes, group_frame, GAUGE, BYTES, STORE,                     \
    "Cold groups' frames, counted in compr_data_size too")                   \
  X(group_dead_bytes, group_dead, GAUGE, BYTES, STORE,                       \
    "Frame bytes of members that left their groups")                         \
  X(group_cache_hits, group_cache_hits, COUNTER, COUNT, GET,                 \
    "Member reads served by the decoded-group cache")                        \
  X(group_cache_misses, group_cache_misses, COUNTER, COUNT, GET,             \
    "Member reads the decoded-group cache did not hold")                     \
  X(group_decodes, group_decodes, COUNTER, COUNT, STORE,                     \
    "Group frames decoded for reads")                                        \
  X(group_cache_bytes, group_cache, GAUGE, BYTES, GET,                       \
    "Memory of the decoded-group cache, counted in mem_used")

#define TRUENO_STATS_FIELD_STORE(name) uint64_t name;
#define TRUENO_STATS_FIELD_GET(name) uint64_t name;
#define TRUENO_STATS_FIELD_ALG(name) uint64_t name[TRUENO_ALG_COUNT];
#define TRUENO_STATS_FIELD(name, prom, kind, unit, source, help)             \
  TRUENO_STATS_FIELD_##source(name)
struct trueno_stats {
  TRUENO_STATS(TRUENO_STATS_FIELD)
};

/* What a page range holds, for NBD extents. */
enum trueno_extent_type {
  TRUENO_EXTENT_HOLE = 0,   /* never written or trimmed: reads as zeros */
  TRUENO_EXTENT_ZERO = 1,   /* stored, all zero bytes */
  TRUENO_EXTENT_DATA = 2,
};

struct trueno_store;

const char *trueno_algorithm_name(enum trueno_algorithm alg);
/* Parses "lz4" or "zstd"; returns -EINVAL for anything else. */
int trueno_algorithm_parse(const char *name, enum trueno_algorithm *alg);
/* Valid zstd levels, and the default used when config.level is 0. */
/* "trueno" or "liblz4"; parse returns -EINVAL for anything else. */
const char *trueno_lz4_impl_name(enum trueno_lz4_impl impl);
int trueno_lz4_impl_parse(const char *name, enum trueno_lz4_impl *impl);
int trueno_zstd_level_min(void);
int trueno_zstd_level_max(void);
int trueno_zstd_level_default(void);
/* "off", "zstd" or "lz4hc", each but off with an optional ":LEVEL".
 * -EINVAL for an unknown name or a malformed level, -ERANGE for a level
 * outside trueno_recompressor_levels (*r is then set, for messages); *level
 * is 0 when none is given. */
int trueno_recompressor_parse(const char *spec, enum trueno_recompressor *r,
                              int *level);
const char *trueno_recompressor_name(enum trueno_recompressor r);
/* The valid levels of a recompressor and the one 0 stands for. */
void trueno_recompressor_levels(enum trueno_recompressor r, int *min,
                                int *max, int *dflt);

int trueno_store_create(const struct trueno_config *cfg,
                        struct trueno_store **out);
/* Frees the store.  A persistent one is detached: its state stays in its
 * file, to be attached again. */
void trueno_store_destroy(struct trueno_store *st);
/* Serves the state a persistent store left in fd (its process exited,
 * destroyed it, or was killed at any instant: every page reads its old or
 * new content, every write acknowledged before reads back).  cfg's size
 * and algorithm must be the state's; the other settings are this
 * process's (persist and state_fd are not looked at), but a state that
 * holds cold groups needs group_pages set.  -EINVAL: not a
 * state, another format, a setting that differs; -EUCLEAN: the state is
 * damaged (nothing is served); -EBUSY: its address is taken in this
 * process.  why (why_len bytes, may be NULL) gets a line that names the
 * parameter or what is wrong, for the caller to print.  One process at a
 * time may serve a state. */
int trueno_store_attach(int fd, const struct trueno_config *cfg,
                        struct trueno_store **out, char *why,
                        size_t why_len);
/* Frees a store and, for a persistent one, empties its state file:
 * nothing is left to attach.  For an anonymous store: destroy. */
void trueno_store_drop(struct trueno_store *st);
/* Allocates the whole page table now (16 bytes per page of the device, as
 * kernel zram does when its size is set), so no write allocates metadata
 * for it later: for a swap device, whose writes may come while the kernel
 * has no memory to give.  Call before the first read or write; charged to
 * the memory limit (-ENOSPC when it does not fit), -ENOMEM. */
int trueno_store_populate(struct trueno_store *st);
uint64_t trueno_store_size(const struct trueno_store *st);

/* Byte-addressed I/O of any offset and length within the device.
 * -EINVAL: out of range.  -ENOSPC: the memory limit would be exceeded; pages
 * written before the failing one keep their new contents, the failing page
 * and those after it keep their old contents.  -EIO: stored data is corrupt. */
int trueno_read(struct trueno_store *st, void *buf, uint64_t len, uint64_t off);
int trueno_write(struct trueno_store *st, const void *buf, uint64_t len,
                 uint64_t off);
/* Whole pages in the range are released (read as zeros afterwards); partial
 * pages at the edges have their bytes in the range zeroed.  At the memory
 * limit an edge may not be zeroable: trim (advisory) then leaves it and
 * succeeds, zero returns -ENOSPC; the whole pages are released either way. */
int trueno_trim(struct trueno_store *st, uint64_t len, uint64_t off);
int trueno_zero(struct trueno_store *st, uint64_t len, uint64_t off);

/* Type of the run of pages starting at byte offset off, and its length in
 * bytes (clipped to len and to the device end).  Never fails for a range
 * inside the device. */
int trueno_extent(struct trueno_store *st, uint64_t len, uint64_t off,
                  enum trueno_extent_type *type, uint64_t *run_len);

/* Moves compressed pages out of sparsely used arena space so it can be given
 * back (frees scatter holes over the arena).  Runs alongside I/O; one pass at
 * a time.  -ENOSPC if the limit stopped it part-way (nothing is lost). */
int trueno_compact(struct trueno_store *st);
/* One step of idle-page recompression with the store's recompressor:
 * examines up to max_slots pages from where the last step stopped (wrapping
 * at the end of the device, once round at most) and recompresses those
 * neither read nor written for min_idle seconds or more (as the store's
 * clock, advanced by each call, tells), trying at most max_tries.  A page is
 * tried once per write.  Runs alongside I/O.  Returns the number of pages
 * recompressed, -EINVAL when the store has no recompressor; when none was
 * and copies could not be stored, -ENOSPC (the memory limit) or -ENOMEM
 * (nothing is lost: a page keeps its old copy and is tried again later). */
int trueno_recompress(struct trueno_store *st, uint32_t min_idle,
                      uint64_t max_slots, uint64_t max_tries);
/* One step of cold grouping: examines the aligned windows of group_pages
 * pages from where the last step stopped, up to max_slots pages (wrapping,
 * once round at most), and compresses the pages of a window neither read
 * nor written for min_idle seconds, two or more, into one zstd frame when
 * that takes less memory than their separate copies; a lone idle page is
 * recompressed (if the store has a recompressor).  Groups that lost half
 * their members or more are formed again (or dissolved).  At most
 * max_tries pages are compressed.  Runs alongside I/O.  Returns the
 * number of groups made, -EINVAL when the store has no groups; when none
 * was made and memory ran out, -ENOSPC or -ENOMEM (nothing is lost). */
int trueno_group(struct trueno_store *st, uint32_t min_idle,
                 uint64_t max_slots, uint64_t max_tries);
/* Housekeeping for front ends to call every second or so: recompresses
 * idle pages a bounded step at a time (when configured: recompress_rate
 * pages tried a call at most) and compacts, from call to call, when the
 * arena holds more than 1/64 beyond the least its objects take. */
int trueno_maintain(struct trueno_store *st);

/* A store with a pool reserve (config pool_reserve) keeps that much memory
 * mapped and resident ahead of its writes, so a write never needs fresh
 * memory from the kernel while the kernel is short of it (swap): with a
 * reserve, writers only use memory already held, and a write that finds the
 * reserve used up waits up to 200 ms for a refill, then fails with -ENOMEM
 * instead of waiting for the kernel.  trueno_pool_refill() tops the store's
 * reserve up; call it from a thread of its own, often.  It returns 0 when
 * the reserve is full, else -ENOMEM or -ENOSPC (the memory limit); a store
 * without a reserve has nothing to refill (0). */
int trueno_pool_refill(struct trueno_store *st);
/* For the refill thread, between refills: returns as soon as a writer took
 * the store's reserve below half (or found it empty), else after ms. */
void trueno_pool_wait_low(struct trueno_store *st, unsigned ms);

/* Batch compression offload (the opencl/ module is one; the engine knows
 * nothing of OpenCL).  A write request covering at least min_pages whole
 * pages of an algorithm=lz4 store hands those pages to compress in one
 * call, then installs the results as it installs pages it compressed
 * itself: same-filled pages are still found on the CPU, a page whose block
 * is longer than cap bytes is stored raw, accounting is the same.
 *
 * compress: n pages (n * 4096 bytes at pages) into standard LZ4 blocks of
 * at most cap bytes: block i at dst + off[i], len[i] bytes, len[i] == 0
 * when it does not fit in cap (stored raw); dst has room for n * cap bytes.
 * Returns 0 or a negative errno; on error the engine compresses those pages
 * on the CPU itself (the client never sees the error, nothing is lost) and
 * counts a fallback.
 *
 * decompress (NULL: reads stay on the CPU): a read request covering at
 * least min_pages whole pages copies the LZ4 blocks of those of its pages
 * that hold one (each under its page's lock, so each page is read whole,
 * as on the CPU path; other pages are decoded on the CPU then and there)
 * and hands them to decompress in one call: n blocks, block i at src +
 * off[i], len[i] bytes (1..cap), into n pages at pages + i * 4096.
 * Returns 0 or a negative errno; on error the engine decodes the copies
 * itself and counts a read fallback. */
/* Pages a batch holds at most, either way: a longer request is cut into
 * batches, so the copies a batch needs stay bounded (~28 MiB of blocks). */
#define TRUENO_BATCH_MAX_PAGES 8192u
struct trueno_batch_codec {
  int (*compress)(void *ctx, const void *pages, size_t n, unsigned cap,
                  void *dst, uint32_t *off, uint32_t *len);
  int (*decompress)(void *ctx, const void *src, const uint32_t *off,
                    const uint32_t *len, size_t n, void *pages);
  void *ctx;
  uint32_t min_pages; /* >= 1 */
};
/* Installs a copy of *bc (NULL removes it).  -EINVAL for a store that is
 * not algorithm=lz4 or min_pages 0.  Call it before I/O starts, or when no
 * request is in flight. */
int trueno_store_set_batch_codec(struct trueno_store *st,
                                 const struct trueno_batch_codec *bc);

void trueno_get_stats(struct trueno_store *st, struct trueno_stats *out);
/* Writes the stats as one JSON object (no trailing newline) into buf.
 * Returns the length it needs, like snprintf. */
int trueno_stats_json(const struct trueno_stats *s, enum trueno_algorithm alg,
                      char *buf, size_t cap);
/* Writes the stats in Prometheus' text exposition format (HELP and TYPE
 * lines; a sample per line, each labelled device="device", and
 * trueno_info{algorithm="..."} 1) into buf.  Returns the length it needs,
 * like snprintf, or -EINVAL for a device label longer than
 * TRUENO_STATS_LABEL_MAX bytes. */
int trueno_stats_prometheus(const struct trueno_stats *s,
                            enum trueno_algorithm alg, const char *device,
                            char *buf, size_t cap);
/* A buffer of TRUENO_STATS_TEXT_MAX bytes holds either text for any
 * counters and a label of up to TRUENO_STATS_LABEL_MAX bytes. */
#define TRUENO_STATS_LABEL_MAX 64
#define TRUENO_STATS_TEXT_MAX 16384

#ifdef __cplusplus
}
#endif
#endif
