/* Every key=value parameter of the front ends, in one table: its name,
 * value syntax, one-line help, which front ends take it and who parses it.
 * The plugin's config_help and --dump-plugin choices, trueno-ublk's usage
 * and both front ends' dispatch come from it, and test-param-docs checks
 * the man pages against it.  A new parameter is one line here, its case in
 * the parser (engine-params.c, or the front end's) and its man page text.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_PARAM_TABLE_H
#define TRUENO_PARAM_TABLE_H

#include <stdbool.h>
#include <stddef.h>

/* X(ID, name, value syntax, front ends, parser, --dump-plugin key, help).
 * Front ends: PLUGIN, UBLK or BOTH.  Parser: ENGINE (engine_params_set,
 * the same for both) or FRONT (each front end's own).  The --dump-plugin
 * key, when not NULL, prints trueno_KEY= with the syntax's choices
 * ("off|zstd[:N]" gives "off,zstd").  A '\n' in the help continues it on
 * an indented line. */
#define TRUENO_PARAMS(X)                                                      \
  X(SIZE, "size", "<SIZE>", PLUGIN, FRONT, NULL,                              \
    "(required) Virtual device size, e.g. 8G.")                               \
  X(ALGORITHM, "algorithm", "lz4|zstd", BOTH, ENGINE, "algorithms",           \
    "Compression algorithm (default lz4).")                                   \
  X(LEVEL, "level", "<N>", BOTH, ENGINE, NULL, "zstd level (default 3).")     \
  X(LZ4_IMPL, "lz4-impl", "trueno|liblz4", BOTH, ENGINE, "lz4_impls",         \
    "LZ4 implementation (default trueno).")                                   \
  X(MEM_LIMIT, "mem-limit", "<SIZE>", BOTH, FRONT, NULL,                      \
    "Memory the store may use; writes past it: ENOSPC.")                      \
  X(RECOMPRESS, "recompress", "off|zstd[:N]|lz4hc[:N]", BOTH, ENGINE,         \
    "recompress", "Recompress idle pages (default off).")                     \
  X(RECOMPRESS_IDLE, "recompress-idle", "<S>", BOTH, ENGINE, NULL,            \
    "Seconds without a read or write first (120).")                           \
  X(RECOMPRESS_RATE, "recompress-rate", "<N>", BOTH, ENGINE, NULL,            \
    "Idle pages tried per second (1024).")                                    \
  X(GROUP, "group", "off|on|<N>", BOTH, ENGINE, "group",                     \
    "Cold groups: idle pages compressed N at a\n"                            \
    "time in one zstd frame (default off; on: 16).")                          \
  X(GROUP_LEVEL, "group-level", "<N>", BOTH, ENGINE, NULL,                    \
    "zstd level of the groups' frames (9).")                                  \
  X(GROUP_IDLE, "group-idle", "<S>", BOTH, ENGINE, NULL,                      \
    "Seconds without a read or write first (120).")                           \
  X(GROUP_RATE, "group-rate", "<N>", BOTH, ENGINE, NULL,                      \
    "Idle pages grouped per second at most (1024).")                          \
  X(GROUP_CACHE, "group-cache", "<N>", BOTH, ENGINE, NULL,                    \
    "Decoded groups kept for reads (16).")                                    \
  X(STATS, "stats", "<FILE>", PLUGIN, FRONT, NULL,                            \
    "Write engine counters as JSON every second.")                            \
  X(PROMETHEUS, "prometheus", "<FILE>", BOTH, FRONT, NULL,                  \
    "Write them for Prometheus (node_exporter's\n"                           \
    "textfile collector) every second.")                                     \
  X(PROMETHEUS_MODE, "prometheus-mode", "0600|0640|0644", BOTH, FRONT, NULL, \
    "Its mode (default 0600; 0644 to share).")                               \
  X(NAME, "name", "<NAME>", PLUGIN, FRONT, NULL,                             \
    "Its device label (default: FILE's name\nwithout .prom).")               \
  X(OFFLOAD, "offload", "off|auto|opencl", PLUGIN, FRONT, "offload",          \
    "Batch compression of large writes on an\n"                               \
    "OpenCL device (default off; auto: when faster).")                        \
  X(OPENCL_DEVICE, "opencl-device", "<P:D|NAME>", PLUGIN, FRONT, NULL,        \
    "Which OpenCL device (default: first GPU).")                              \
  X(OFFLOAD_MIN_PAGES, "offload-min-pages", "<N>", PLUGIN, FRONT, NULL,       \
    "offload=opencl: smallest write offloaded (2).")                          \
  X(OPENCL_CACHE, "opencl-cache", "<DIR>|off", PLUGIN, FRONT, NULL,           \
    "Kernel binary cache (default\n$XDG_CACHE_HOME/trueno-zram).")            \
  X(SWAP, "swap", "on|off", BOTH, ENGINE, NULL,                               \
    "Serve as swap: lock memory, I/O flusher, no OOM kill.")                  \
  X(ALLOW_UNAUTHENTICATED, "allow-unauthenticated", "yes|no", PLUGIN, FRONT,  \
    "allow_unauthenticated",                                                  \
    "Serve clients that are neither root over\n"                              \
    "a Unix socket nor TLS (default: no with swap=on).")                      \
  X(OVERCOMMIT, "overcommit", "yes", PLUGIN, FRONT, NULL,                     \
    "Allow a size (or mem-limit) beyond RAM plus swap.")                      \
  X(STATE, "state", "<SOCKET>|fd:<N>|systemd", BOTH, FRONT, NULL,             \
    "Keep the store in a state that outlives the\n"                          \
    "server (a trueno-hold socket): attached at start.")                     \
  X(STATE_NAME, "state-name", "<NAME>", BOTH, FRONT, NULL,                    \
    "The name its keeper holds the state under.")

#define PARAM_ENUM(id, ...) PARAM_##id,
enum param_id { TRUENO_PARAMS(PARAM_ENUM) PARAM_COUNT };
#undef PARAM_ENUM

/* Which front ends take a parameter. */
#define PARAM_PLUGIN 1u /* nbdkit-trueno-plugin */
#define PARAM_UBLK 2u   /* trueno-ublk */
#define PARAM_BOTH (PARAM_PLUGIN | PARAM_UBLK)

struct param_desc {
  enum param_id id;
  const char *name;
  const char *syntax;
  unsigned front_ends; /* PARAM_PLUGIN, PARAM_UBLK */
  bool engine;         /* parsed by engine_params_set */
  const char *dump_key;
  const char *help;
};

/* Indexed by enum param_id. */
extern const struct param_desc param_table[PARAM_COUNT];

/* The parameter called name, or NULL. */
const struct param_desc *param_find(const char *name);

/* The help lines of front_end's parameters, "name=SYNTAX  help", each
 * after indent, into buf as snprintf does: returns the length of the whole
 * text, which was cut if it is len or more. */
size_t param_help(char *buf, size_t len, unsigned front_end,
                  const char *indent);

/* The choices of d's syntax, comma-separated ("off|zstd[:N]" gives
 * "off,zstd"), into buf as param_help does. */
size_t param_choices(const struct param_desc *d, char *buf, size_t len);

#endif
