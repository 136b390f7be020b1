/* trueno-ublk's argument parsing (ublk/args.c), on any host: sizes, engine
 * parameters, options, and the message each mistake gets.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "restart.h"
#include "server-guard.h"
#include "test-common.h"

/* Parses a space-separated command line; returns the parser's result and
 * leaves its message in err. */
static int parse(const char *line, struct ublk_opts *o, char *err, size_t cap) {
  static char buf[512];
  char *argv[32];
  int argc = 0;
  snprintf(buf, sizeof buf, "%s", line);
  for (char *t = strtok(buf, " "); t && argc < 32; t = strtok(NULL, " "))
    argv[argc++] = t;
  err[0] = 0;
  return ublk_parse_add(argc, argv, o, err, cap);
}

/* The same for `recover`. */
static int parse_recover(const char *line, struct ublk_opts *o, char *err,
                         size_t cap) {
  static char buf[512];
  char *argv[32];
  int argc = 0;
  snprintf(buf, sizeof buf, "%s", line);
  for (char *t = strtok(buf, " "); t && argc < 32; t = strtok(NULL, " "))
    argv[argc++] = t;
  err[0] = 0;
  return ublk_parse_recover(argc, argv, o, err, cap);
}

static void expect_recover_err(const char *line, const char *want) {
  struct ublk_opts o;
  char err[512];
  int r = parse_recover(line, &o, err, sizeof err);
  CHECK(r == -EINVAL && strstr(err, want), "recover '%s': r=%d err='%s', want '%s'",
        line, r, err, want);
}

static void expect_err(const char *line, const char *want) {
  struct ublk_opts o;
  char err[512];
  int r = parse(line, &o, err, sizeof err);
  CHECK(r == -EINVAL && strstr(err, want), "'%s': r=%d err='%s', want '%s'",
        line, r, err, want);
}

int main(void) {
  uint64_t v;
  CHECK(ublk_parse_size("4096", &v) == 0 && v == 4096, "plain");
  CHECK(ublk_parse_size("8G", &v) == 0 && v == 8ull << 30, "8G");
  CHECK(ublk_parse_size("512k", &v) == 0 && v == 512ull << 10, "512k");
  CHECK(ublk_parse_size("2MiB", &v) == 0 && v == 2ull << 20, "2MiB");
  CHECK(ublk_parse_size("1T", &v) == 0 && v == 1ull << 40, "1T");
  CHECK(ublk_parse_size("1 G", &v) == -EINVAL, "space");
  CHECK(ublk_parse_size("G", &v) == -EINVAL, "no digits");
  CHECK(ublk_parse_size("-1", &v) == -EINVAL, "negative");
  CHECK(ublk_parse_size("8X", &v) == -EINVAL, "bad unit");
  CHECK(ublk_parse_size("8Gx", &v) == -EINVAL, "trailing");
  CHECK(ublk_parse_size("99999999999999999999", &v) == -EINVAL, "overflow");
  CHECK(ublk_parse_size("17179869184T", &v) == -EINVAL, "overflow by unit");
  CHECK(ublk_parse_size(NULL, &v) == -EINVAL, "NULL");

  struct ublk_opts o;
  char err[512];
  CHECK(parse("--size 8G", &o, err, sizeof err) == 0, "minimal: %s", err);
  CHECK(o.cfg.size == 8ull << 30 && o.cfg.algorithm == TRUENO_ALG_LZ4 &&
            o.depth == UBLK_DEFAULT_DEPTH && o.queues == 0 && o.id == -1 &&
            !o.swap && !o.foreground && o.max_io == UBLK_DEFAULT_MAX_IO &&
            o.cfg.pool_reserve == 0,
        "defaults");
  CHECK(parse("--size=1G --queues 4 --depth=64 --id 3 algorithm=zstd level=-5 "
              "mem-limit=512M swap=on --foreground --run-dir /tmp/x",
              &o, err, sizeof err) == 0,
        "all options: %s", err);
  CHECK(o.cfg.size == 1ull << 30 && o.queues == 4 && o.depth == 64 &&
            o.id == 3 && o.cfg.algorithm == TRUENO_ALG_ZSTD &&
            o.cfg.level == -5 && o.cfg.mem_limit == 512ull << 20 && o.swap &&
            o.foreground && !strcmp(o.run_dir, "/tmp/x"),
        "all options parsed");
  CHECK(parse("--size 4K lz4-impl=liblz4 swap=off", &o, err, sizeof err) == 0 &&
            o.cfg.lz4_impl == TRUENO_LZ4_LIBLZ4 && !o.swap,
        "lz4-impl: %s", err);

  CHECK(parse("--size 4K recompress=zstd:9 recompress-idle=30", &o, err,
              sizeof err) == 0 &&
            o.cfg.recompress == TRUENO_RECOMPRESS_ZSTD &&
            o.cfg.recompress_level == 9 && o.cfg.recompress_idle == 30,
        "recompress: %s", err);
  CHECK(parse("--size 4K recompress=lz4hc recompress-rate=4096", &o, err,
              sizeof err) == 0 &&
            o.cfg.recompress == TRUENO_RECOMPRESS_LZ4HC &&
            o.cfg.recompress_rate == 4096,
        "recompress-rate: %s", err);
  CHECK(parse("--size 4K recompress=zstd", &o, err, sizeof err) == 0 &&
            o.cfg.recompress_rate == 0,
        "recompress-rate default: %s", err);
  CHECK(parse("--size 4K recompress=zstd recompress-rate=1048576", &o, err,
              sizeof err) == 0 &&
            o.cfg.recompress_rate == TRUENO_RECOMPRESS_RATE_MAX,
        "recompress-rate max: %s", err);
  CHECK(parse("--size 4K group=on group-level=5 group-idle=7 group-rate=99 "
              "group-cache=3",
              &o, err, sizeof err) == 0 &&
            o.cfg.group_pages == TRUENO_GROUP_PAGES &&
            o.cfg.group_level == 5 && o.cfg.group_idle == 7 &&
            o.cfg.group_rate == 99 && o.cfg.group_cache == 3,
        "group: %s", err);
  CHECK(parse("--size 4K group=16", &o, err, sizeof err) == 0 &&
            o.cfg.group_pages == 16,
        "group=16: %s", err);
  expect_err("--size 1G group=1", "group: expected off, on or a number");
  expect_err("--size 1G group-idle=5",
             "group-idle: only applies with group=");
  expect_err("--size 1G recompress-rate=5",
             "recompress-rate: only applies with recompress=");
  expect_err("--size 1G recompress=off recompress-rate=5",
             "recompress-rate: only applies with recompress=");
  expect_err("--size 1G recompress=zstd recompress-rate=0",
             "recompress-rate: expected a number of pages from 1 to 1048576, not '0'");
  expect_err("--size 1G recompress=zstd recompress-rate=abc",
             "not 'abc'");
  expect_err("--size 1G recompress=zstd recompress-rate=1048577",
             "not '1048577'");
  expect_err("--size 1G recompress=zstd recompress-rate=",
             "recompress-rate: expected");
  /* swap= takes nbdkit_parse_bool's spellings, as the plugin does; on
   * gives the store its pool reserve. */
  const char *on[] = {"on", "1", "yes", "Y", "true", "ON"};
  for (size_t i = 0; i < sizeof on / sizeof *on; i++) {
    char line[64];
    snprintf(line, sizeof line, "--size 4K swap=%s", on[i]);
    CHECK(parse(line, &o, err, sizeof err) == 0 && o.swap &&
              o.cfg.pool_reserve == GUARD_POOL_RESERVE,
          "%s: %s", line, err);
    snprintf(line, sizeof line, "--size 4K swap=on swap=%s",
             i % 2 ? "off" : "No");
    CHECK(parse(line, &o, err, sizeof err) == 0 && !o.swap &&
              o.cfg.pool_reserve == 0,
          "%s: %s", line, err);
  }
  CHECK(parse("--size 4K", &o, err, sizeof err) == 0 && !o.prometheus &&
            o.prometheus_mode == 0600,
        "no prometheus file, mode 0600: %s", err);
  CHECK(parse("--size 4K prometheus=/x/ublk.prom prometheus-mode=0644", &o,
              err, sizeof err) == 0 &&
            o.prometheus && !strcmp(o.prometheus, "/x/ublk.prom") &&
            o.prometheus_mode == 0644,
        "prometheus=, prometheus-mode=: %s", err);
  CHECK(parse("--size 4K prometheus-mode=640 prometheus=p.prom", &o, err,
              sizeof err) == 0 && o.prometheus_mode == 0640,
        "prometheus-mode=640: %s", err);
  expect_err("--size 1G prometheus=", "prometheus: needs a file name");
  expect_err("--size 1G prometheus=p prometheus-mode=0666", "prometheus-mode:");
  expect_err("--size 1G prometheus=p prometheus-mode=0400", "prometheus-mode:");
  expect_err("--size 1G prometheus=p prometheus-mode=rw", "prometheus-mode:");
  expect_err("--size 1G prometheus-mode=0644", "prometheus-mode: only applies with prometheus=FILE");
  expect_err("--size 1G recompress=gzip", "unknown recompressor 'gzip'");
  expect_err("--size 1G recompress=lz4hc:13", "recompress: level out of range");
  expect_err("--size 1G recompress-idle=5", "only applies with recompress=");
  expect_err("--size 1G recompress=zstd recompress-idle=0", "recompress-idle:");
  expect_err("", "--size is required");
  expect_err("--size", "--size needs a value");
  expect_err("--size foo", "invalid size 'foo'");
  expect_err("--size 0", "must be greater than zero");
  expect_err("--size 1000", "multiple of 4096");
  expect_err("--size 1G --queues 0", "invalid --queues '0'");
  expect_err("--size 1G --queues 65", "invalid --queues '65'");
  expect_err("--size 1G --depth 4097", "invalid --depth '4097'");
  expect_err("--size 1G --depth x", "invalid --depth 'x'");
  expect_err("--size 1G --id -2", "invalid --id '-2'");
  expect_err("--size 1G algorithm=lz5", "unknown algorithm 'lz5'");
  expect_err("--size 1G level=3", "only applies to algorithm=zstd");
  expect_err("--size 1G algorithm=zstd level=0", "not 0");
  expect_err("--size 1G algorithm=zstd level=99", "out of range");
  expect_err("--size 1G algorithm=zstd lz4-impl=liblz4", "only applies to algorithm=lz4");
  expect_err("--size 1G mem-limit=lots", "mem-limit: invalid size");
  expect_err("--size 1G swap=maybe", "expected on or off");
  expect_err("--size 1G size=2G", "use --size");
  expect_err("--size 1G colour=blue", "unknown parameter 'colour'");
  expect_err("--size 1G --bogus", "unknown option '--bogus'");
  expect_err("--size 1G --run-dir=", "--run-dir needs a directory");
  expect_err("--size 1G --max-io 2M", "invalid --max-io");
  expect_err("--size 1G --max-io 6000", "invalid --max-io");
  CHECK(parse("--size 1G swap=on", &o, err, sizeof err) == 0 && o.depth == UBLK_SWAP_DEPTH &&
            o.max_io == UBLK_SWAP_MAX_IO,
        "swap=on defaults");
  CHECK(parse("--size 1G swap=on --depth 8 --max-io 64K", &o, err, sizeof err) == 0 &&
            o.depth == 8 && o.max_io == 64u << 10,
        "swap=on, given");
  /* state=, state-name= (common/store-state.c, the plugin's too). */
  CHECK(parse("--size 1G state=/run/h/s.sock state-name=swap", &o, err,
              sizeof err) == 0 &&
            !strcmp(o.state.spec, "/run/h/s.sock") &&
            !strcmp(o.state.name, "swap") && o.state.fd == -1,
        "state=: %s", err);
  CHECK(parse("--size 1G state=fd:5", &o, err, sizeof err) == 0 &&
            !strcmp(o.state.spec, "fd:5") && !o.state.name,
        "state=fd:N needs no name: %s", err);
  CHECK(parse("--size 1G", &o, err, sizeof err) == 0 && !o.state.spec &&
            o.state.fd == -1,
        "no state=");
  expect_err("--size 1G state=/run/h/s.sock", "state-name: required");
  expect_err("--size 1G state=systemd", "state-name: required");
  expect_err("--size 1G state-name=swap", "state-name: only applies with state=");
  expect_err("--size 1G state=h/s.sock state-name=swap", "state: 'h/s.sock'");
  expect_err("--size 1G state=/h/s.sock state-name=a/b", "state-name: 'a/b'");
  CHECK(o.recover_id == -1 && !o.supervised, "add: not a recovery");

  /* recover ID: everything but state= is optional (the size, queues and
   * depth are the device's). */
  CHECK(parse_recover("3 state=/run/h/s.sock state-name=swap swap=on", &o,
                      err, sizeof err) == 0 &&
            o.recover_id == 3 && o.id == 3 && o.cfg.size == 0 && o.swap &&
            !strcmp(o.state.spec, "/run/h/s.sock") && !o.supervised,
        "recover: %s", err);
  CHECK(parse_recover("0 --size 1G state=fd:4 algorithm=zstd", &o, err,
                      sizeof err) == 0 &&
            o.recover_id == 0 && o.cfg.size == 1ull << 30 &&
            o.cfg.algorithm == TRUENO_ALG_ZSTD,
        "recover with --size: %s", err);
  expect_recover_err("", "recover: which device?");
  expect_recover_err("state=fd:4", "recover: which device?");
  expect_recover_err("--size 1G", "recover: which device?");
  expect_recover_err("x state=fd:4", "invalid device id 'x'");
  expect_recover_err("1", "state: required by recover");
  expect_recover_err("1 swap=on", "state: required by recover");
  expect_recover_err("1 state=fd:4 colour=blue", "unknown parameter 'colour'");
  expect_recover_err("1 state=/h/s.sock", "state-name: required");

  /* The supervisor's restart policy (restart.h): kills of servers that
   * served a while never add up; servers that fail at once do. */
  double lived[8] = {3600, 20, 30, 6, 7};
  CHECK(ublk_restart_fast(lived, 5) == 0 && !ublk_restart_give_up(lived, 5),
        "kills of serving servers are not failures");
  double fast[8] = {3600, 0.1, 0.2, 0.1, 0.3};
  CHECK(ublk_restart_fast(fast, 5) == 4 && !ublk_restart_give_up(fast, 5),
        "4 fast failures: one more try");
  double fast5[8] = {0.1, 0.2, 0.1, 0.3, 1};
  CHECK(ublk_restart_give_up(fast5, 5), "5 fast failures: give up");
  double mixed[8] = {0.1, 0.2, 60, 0.3, 1};
  CHECK(ublk_restart_fast(mixed, 5) == 2 && !ublk_restart_give_up(mixed, 5),
        "a server that served resets the count");
  CHECK(ublk_restart_delay_ms(0) == 0 && ublk_restart_delay_ms(1) == 0,
        "the first restart is at once");
  CHECK(ublk_restart_delay_ms(2) == 100 && ublk_restart_delay_ms(3) == 200 &&
            ublk_restart_delay_ms(30) == 2000,
        "then growing, at most 2 s");
  return tc_finish();
}
