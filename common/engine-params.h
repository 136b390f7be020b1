/* The engine parameters both front ends accept (those of param-table.h
 * marked ENGINE): one parser, so the plugin and trueno-ublk take the same
 * spellings and word their refusals alike.  Sizes (size=, mem-limit=) stay with each front end:
 * the plugin parses them as nbdkit does.  No side effects, no nbdkit: the
 * unit tests run it anywhere.
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_ENGINE_PARAMS_H
#define TRUENO_ENGINE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "trueno.h"

struct engine_params {
  struct trueno_config cfg;
  /* swap=on: the front end guards the server (server-guard.c), and the
   * store keeps a pool reserve (cfg.pool_reserve = GUARD_POOL_RESERVE). */
  bool swap;
  /* Given explicitly: engine_params_check refuses them when they cannot
   * apply, rather than silently ignoring what the user asked for. */
  bool level_given, lz4_impl_given, recompress_idle_given,
      recompress_rate_given;
  const char *group_tuning; /* a group-* parameter given, for the check */
};

/* The defaults: algorithm=lz4, everything else the engine's default. */
void engine_params_init(struct engine_params *p);
/* key=value.  0: taken; -ENOENT: not an engine parameter (the caller tries
 * its own); -EINVAL: a bad value, with a message in err that starts with
 * the parameter's name ("level: ..."). */
int engine_params_set(struct engine_params *p, const char *key,
                      const char *value, char *err, size_t errlen);
/* The rules between parameters, once all are set: level only with zstd,
 * lz4-impl only with lz4, recompress-idle and recompress-rate only with a
 * recompressor.  0, or -EINVAL with a message in err. */
int engine_params_check(const struct engine_params *p, char *err,
                        size_t errlen);

/* A whole decimal number in [min, max] and nothing after it.  0 or
 * -EINVAL. */
int engine_params_parse_long(const char *s, long min, long max, long *out);

/* Formats a message for the user into err; returns -EINVAL, for
 * `return param_error(...)` where a value is refused. */
int param_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
