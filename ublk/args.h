/* trueno-ublk's command line: sizes, engine parameters and options, parsed
 * without side effects so the unit test can run anywhere.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_UBLK_ARGS_H
#define TRUENO_UBLK_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store-state.h"
#include "trueno.h"

#define UBLK_DEFAULT_DEPTH 128
#define UBLK_MAX_QUEUES 64
/* Per-tag buffer: the largest request the kernel sends us. */
#define UBLK_DEFAULT_MAX_IO (256u << 10)
#define UBLK_MAX_QUEUE_DEPTH_ARG 4096 /* the kernel's 12-bit tags */
#define UBLK_MAX_IO_LIMIT (1u << 20)
/* With swap=on: 2 queues x 32 x 128 KiB = 8 MiB held resident. */
#define UBLK_SWAP_DEPTH 32
#define UBLK_SWAP_MAX_IO (128u << 10)
#define UBLK_DEFAULT_RUN_DIR "/run/trueno/ublk"

struct ublk_opts {
  struct trueno_config cfg; /* --size, mem-limit, engine-params.h */
  int queues;               /* 0: one per online CPU */
  int depth;
  int id;                   /* -1: the first free */
  uint32_t max_io;
  bool swap;                /* swap=on: engine reserve, malloc keeps memory */
  bool foreground;
  const char *run_dir;
  const char *prometheus;   /* prometheus=FILE, NULL: none */
  mode_t prometheus_mode;   /* prometheus-mode= */
  struct store_state state; /* state=, state-name= (into argv) */
  /* recover ID: serve device id (it exists, its server died) instead of
   * adding one; -1: add.  The queues, depth and buffer size are the
   * device's; --size, when not given, too. */
  int recover_id;
  /* Run by trueno-ublk's supervisor (supervise.h), never set by a user: the
   * server leaves ublkN.pid to it (its own pid goes to ublkN.server.pid),
   * appends to ublkN.log and, on SIGUSR2, exits without deleting the
   * device, for a successor to recover it. */
  bool supervised;
};

/* "123", "512K", "8G", "1T", "4MiB" (binary units).  0 or -EINVAL. */
int ublk_parse_size(const char *s, uint64_t *out);

/* argv of `add` (after the word "add").  0, or -EINVAL with a message for
 * the user in err. */
int ublk_parse_add(int argc, char **argv, struct ublk_opts *o, char *err,
                   size_t errlen);
/* argv of `recover` (after the word "recover"): ID, then add's options,
 * all optional; state= is required (what is recovered is the store). */
int ublk_parse_recover(int argc, char **argv, struct ublk_opts *o, char *err,
                       size_t errlen);

#endif
