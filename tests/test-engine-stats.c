/* TRUENO_STATS (trueno.h), struct trueno_stats and the two text writers
 * agree: every field is in the table and every table entry is in the JSON
 * (under its historic key, in the historic order) and in the Prometheus
 * text (HELP, TYPE, a sample, a name by Prometheus' conventions), with the
 * field's value; the worst case fits TRUENO_STATS_TEXT_MAX; a real store's
 * counters come out in both.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"
#include "trueno.h"

/* Every field set to a value of its own, through the field names. */
static uint64_t next_value;
#define SET_STORE(name) s->name = next_value++ * 1000003u + 7u;
#define SET_GET(name) SET_STORE(name)
#define SET_ALG(name)                                                        \
  for (int a = 0; a < TRUENO_ALG_COUNT; a++)                                 \
    SET_STORE(name[a])
#define SET(name, prom, kind, unit, source, help) SET_##source(name)
static size_t fill(struct trueno_stats *s, uint64_t first) {
  next_value = first;
  TRUENO_STATS(SET)
  return (size_t)(next_value - first);
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

/* The keys scripts, tests and the status tools read, in the file's order
 * (new counters may come after them, before "ratio"). */
static const char *const json_keys[] = {
    "algorithm", "disksize", "orig_data_size", "compr_data_size",
    "mem_used_total", "mem_limit", "mem_used_max", "same_pages",
    "huge_pages", "pages_stored", "lz4_pages", "zstd_pages", "reads",
    "writes", "trims", "failed_reads", "failed_writes", "pages_read",
    "pages_written", "pages_trimmed", "arena_pages", "metadata_bytes",
    "compactions", "pages_compacted", "offload_batches", "offload_pages",
    "offload_fallbacks", "offload_read_batches", "offload_read_pages",
    "offload_read_fallbacks", "pages_recompressed", "recompress_no_gain"};

static void test_json(const struct trueno_stats *s, size_t nvalues) {
  char buf[TRUENO_STATS_TEXT_MAX];
  int n = trueno_stats_json(s, TRUENO_ALG_ZSTD, buf, sizeof buf);
  CHECK(n > 0 && (size_t)n == strlen(buf), "json length %d", n);
  CHECK(!strncmp(buf, "{\"algorithm\": \"zstd\", ", 22), "starts %.30s", buf);
  const char *ratio = strstr(buf, ", \"ratio\": ");
  CHECK(ratio && buf[n - 1] == '}' && !strchr(ratio + 1, ','),
        "ratio last: %s", ratio ? ratio : "(none)");
  /* One key per value, plus algorithm and ratio. */
  CHECK(count(buf, "\": ") == nvalues + 2, "%zu keys for %zu values",
        count(buf, "\": "), nvalues);
  char want[256];
#define JSON_STORE(name)                                                     \
  snprintf(want, sizeof want, "\"%s\": %llu,", #name,                        \
           (unsigned long long)s->name);                                     \
  CHECK(count(buf, want) == 1, "json lacks %s", want);
#define JSON_GET(name) JSON_STORE(name)
#define JSON_ALG(name)                                                       \
  for (int a = 0; a < TRUENO_ALG_COUNT; a++) {                               \
    snprintf(want, sizeof want, "\"%s%s\": %llu,",                           \
             trueno_algorithm_name((enum trueno_algorithm)a), #name + 3,     \
             (unsigned long long)s->name[a]);                                \
    CHECK(count(buf, want) == 1, "json lacks %s", want);                     \
  }
#define JSON(name, prom, kind, unit, source, help) JSON_##source(name)
  TRUENO_STATS(JSON)
  const char *at = buf;
  for (size_t i = 0; i < sizeof json_keys / sizeof json_keys[0]; i++) {
    snprintf(want, sizeof want, "\"%s\": ", json_keys[i]);
    const char *p = strstr(at, want);
    CHECK(p, "key %s missing or out of order", json_keys[i]);
    at = p ? p : at;
  }
}

/* The Prometheus name the table's entry promises. */
#define PROM_BYTES "_bytes"
#define PROM_PAGES ""
#define PROM_COUNT ""
#define PROM_COUNTER "_total"
#define PROM_GAUGE ""
#define TYPE_COUNTER "counter"
#define TYPE_GAUGE "gauge"

static void check_metric(const char *buf, const char *name, const char *type,
                         bool bytes, const char *labels, uint64_t v) {
  size_t len = strlen(name);
  bool total = len > 6 && !strcmp(name + len - 6, "_total");
  CHECK(total == !strcmp(type, "counter"),
        "%s: _total on counters only", name);
  CHECK(!bytes || strstr(name, "_bytes"), "%s: bytes without _bytes", name);
  CHECK(strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == len,
        "%s: not snake_case", name);
  char want[512];
  snprintf(want, sizeof want, "# TYPE %s %s\n", name, type);
  CHECK(count(buf, want) == 1, "one TYPE line for %s", name);
  snprintf(want, sizeof want, "# HELP %s ", name);
  CHECK(count(buf, want) == 1, "one HELP line for %s", name);
  snprintf(want, sizeof want, "\n%s{%s} %llu\n", name, labels,
           (unsigned long long)v);
  CHECK(count(buf, want) == 1, "prometheus lacks %s", want + 1);
}

static void test_prometheus(const struct trueno_stats *s, size_t nvalues) {
  char buf[TRUENO_STATS_TEXT_MAX];
  int n = trueno_stats_prometheus(s, TRUENO_ALG_LZ4, "swap0", buf, sizeof buf);
  CHECK(n > 0 && (size_t)n == strlen(buf) && buf[n - 1] == '\n',
        "prometheus length %d", n);
  CHECK(strstr(buf, "\ntrueno_info{device=\"swap0\",algorithm=\"lz4\"} 1\n"),
        "trueno_info names the algorithm");
  /* Every sample line: the values and trueno_info. */
  size_t lines = count(buf, "\n") - 2 * count(buf, "\n# TYPE ");
  CHECK(lines == nvalues + 1, "%zu samples for %zu values", lines, nvalues);
  char name[128], labels[256];
#define PROM_SCALAR(name_, prom, kind, unit)                                 \
  snprintf(name, sizeof name, "trueno_%s%s%s", #prom, PROM_##unit,           \
           PROM_##kind);                                                     \
  check_metric(buf, name, TYPE_##kind, !strcmp(#unit, "BYTES"),              \
               "device=\"swap0\"", s->name_);
#define PROM_STORE(name_, prom, kind, unit) PROM_SCALAR(name_, prom, kind, unit)
#define PROM_GET(name_, prom, kind, unit) PROM_SCALAR(name_, prom, kind, unit)
#define PROM_ALG(name_, prom, kind, unit)                                    \
  snprintf(name, sizeof name, "trueno_%s%s%s", #prom, PROM_##unit,           \
           PROM_##kind);                                                     \
  for (int a = 0; a < TRUENO_ALG_COUNT; a++) {                               \
    snprintf(labels, sizeof labels, "device=\"swap0\",algorithm=\"%s\"",     \
             trueno_algorithm_name((enum trueno_algorithm)a));               \
    char want[512];                                                          \
    snprintf(want, sizeof want, "\n%s{%s} %llu\n", name, labels,             \
             (unsigned long long)s->name_[a]);                               \
    CHECK(count(buf, want) == 1, "prometheus lacks %s", want + 1);           \
  }                                                                          \
  snprintf(labels, sizeof labels, "# TYPE %s %s\n", name, TYPE_##kind);      \
  CHECK(count(buf, labels) == 1, "one TYPE line for %s", name);
#define PROM(name_, prom, kind, unit, source, help)                          \
  PROM_##source(name_, prom, kind, unit)
  TRUENO_STATS(PROM)
}

/* Every value at its widest and a label all escapes: both fit. */
static void test_bounds(void) {
  struct trueno_stats s;
  memset(&s, 0xff, sizeof s);
  s.mem_used_total = 1; /* the largest ratio */
  char label[TRUENO_STATS_LABEL_MAX + 2];
  memset(label, '"', sizeof label - 1);
  label[sizeof label - 1] = 0;
  char buf[TRUENO_STATS_TEXT_MAX];
  CHECK(trueno_stats_prometheus(&s, TRUENO_ALG_LZ4, label, buf, sizeof buf) ==
            -EINVAL,
        "a label over TRUENO_STATS_LABEL_MAX is refused");
  label[TRUENO_STATS_LABEL_MAX] = 0;
  int p = trueno_stats_prometheus(&s, TRUENO_ALG_ZSTD, label, buf, sizeof buf);
  CHECK(p > 0 && p < TRUENO_STATS_TEXT_MAX, "prometheus worst case %d", p);
  /* Too small a buffer: cut and terminated, the length still whole. */
  char small[100];
  int q = trueno_stats_prometheus(&s, TRUENO_ALG_ZSTD, label, small,
                                  sizeof small);
  CHECK(q == p && strlen(small) == sizeof small - 1 &&
            strncmp(small, buf, sizeof small - 1) == 0,
        "truncated prometheus %d", q);
  int j = trueno_stats_json(&s, TRUENO_ALG_ZSTD, buf, sizeof buf);
  CHECK(j > 0 && j < TRUENO_STATS_TEXT_MAX, "json worst case %d", j);
  printf("worst case: prometheus %d bytes, json %d bytes (of %d)\n", p, j,
         TRUENO_STATS_TEXT_MAX);
}

/* A real store: what it counted comes out in both writers. */
static void test_store(void) {
  struct trueno_config cfg = {.size = 1 << 20};
  struct trueno_store *st;
  CHECK(trueno_store_create(&cfg, &st) == 0, "store");
  char page[TRUENO_PAGE_SIZE];
  for (unsigned i = 0; i < 3; i++) {
    memset(page, 'a' + (int)i, sizeof page);
    snprintf(page, 16, "page %u", i);
    CHECK(trueno_write(st, page, sizeof page, (uint64_t)i * sizeof page) == 0,
          "write %u", i);
  }
  struct trueno_stats s;
  trueno_get_stats(st, &s);
  char buf[TRUENO_STATS_TEXT_MAX];
  trueno_stats_prometheus(&s, TRUENO_ALG_LZ4, "t", buf, sizeof buf);
  CHECK(strstr(buf, "\ntrueno_pages_written_total{device=\"t\"} 3\n") &&
            strstr(buf, "\ntrueno_compressed_pages{device=\"t\",algorithm="
                        "\"lz4\"} 3\n") &&
            strstr(buf, "\ntrueno_disksize_bytes{device=\"t\"} 1048576\n"),
        "a store's counters in prometheus:\n%s", buf);
  trueno_stats_json(&s, TRUENO_ALG_LZ4, buf, sizeof buf);
  CHECK(strstr(buf, "\"pages_written\": 3,") && strstr(buf, "\"lz4_pages\": 3,"),
        "a store's counters in json: %s", buf);
  trueno_store_destroy(st);
}

int main(void) {
  struct trueno_stats s;
  memset(&s, 0, sizeof s);
  size_t nvalues = fill(&s, 1);
  /* Each field is a table entry's: none outside it. */
  CHECK(sizeof s == nvalues * sizeof(uint64_t), "struct of %zu bytes, %zu "
        "values in the table", sizeof s, nvalues);
  test_json(&s, nvalues);
  test_prometheus(&s, nvalues);
  test_bounds();
  test_store();
  return tc_finish();
}
