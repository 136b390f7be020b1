/* The parameter table (common/param-table.h) against what users read and
 * what the parsers take: each front end's man page has an =item for each
 * of its parameters and none for a parameter it does not take; the real
 * `nbdkit PLUGIN --help` and `trueno-ublk --help` list each of them; the
 * shared parser takes exactly the ENGINE ones.
 *
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-params.h"
#include "param-table.h"
#include "test-common.h"

static const char *env_or(const char *name, const char *def) {
  const char *v = getenv(name);
  return v && *v ? v : def;
}

/* All of stream f, NUL-terminated; NULL on a read error. */
static char *slurp(FILE *f) {
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len < 2048) {
      char *b = realloc(buf, cap *= 2);
      if (!b)
        free(buf);
      buf = b;
    }
  }
  if (buf)
    buf[len] = 0;
  return buf;
}

/* Each name=value parameter the man page documents: its =item lines'
 * B<name=...>, space-separated, with a space on either side. */
static char *pod_items(const char *path) {
  FILE *f = fopen(path, "r");
  CHECK(f, "cannot open %s: %s", path, strerror(errno));
  if (!f)
    return NULL;
  char *text = slurp(f);
  fclose(f);
  char *items = calloc(1, text ? strlen(text) + 2 : 1);
  if (!text || !items) {
    free(text);
    return items;
  }
  strcpy(items, " ");
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "=item", 5))
      continue;
    char *b = strstr(line, "B<");
    if (!b)
      continue;
    size_t n = strspn(b + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
    if (n && b[2 + n] == '=') {
      strncat(items, b + 2, n);
      strcat(items, " ");
    }
  }
  free(text);
  return items;
}

static void check_pod(const char *path, unsigned front_end) {
  char *items = pod_items(path);
  if (!items)
    return;
  for (size_t i = 0; i < PARAM_COUNT; i++) {
    const struct param_desc *d = &param_table[i];
    char word[64];
    snprintf(word, sizeof word, " %s ", d->name);
    if (d->front_ends & front_end)
      CHECK(strstr(items, word), "%s has no =item B<%s=...>", path, d->name);
    else
      CHECK(!strstr(items, word), "%s documents %s=, which it does not take",
            path, d->name);
  }
  /* And nothing the table lacks. */
  for (char *w = strtok(items, " "); w; w = strtok(NULL, " ")) {
    const struct param_desc *d = param_find(w);
    CHECK(d, "%s documents %s=, which is not in param-table.h", path, w);
  }
  free(items);
}

/* Whether text has name= as a word: at the start of a line or after a
 * blank. */
static int lists(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *at = strstr(text, name); at; at = strstr(at + 1, name))
    if ((at == text || at[-1] == '\n' || at[-1] == ' ') && at[n] == '=')
      return 1;
  return 0;
}

/* Runs cmd and checks that its output after the first line starting with
 * from (all of it when from is NULL) lists front_end's parameters. */
static void check_help(const char *cmd, const char *from,
                       unsigned front_end) {
  FILE *p = popen(cmd, "r");
  CHECK(p, "cannot run %s", cmd);
  if (!p)
    return;
  char *out = slurp(p);
  int st = pclose(p);
  CHECK(out && st == 0, "%s: exit status %d", cmd, st);
  if (!out)
    return;
  const char *text = out;
  if (from) {
    const char *at = strstr(out, from);
    while (at && at != out && at[-1] != '\n')
      at = strstr(at + 1, from);
    CHECK(at, "%s: no line starting '%s' in:\n%s", cmd, from, out);
    text = at ? at : "";
  }
  for (size_t i = 0; i < PARAM_COUNT; i++) {
    const struct param_desc *d = &param_table[i];
    if (d->front_ends & front_end)
      CHECK(lists(text, d->name), "%s does not list %s=", cmd, d->name);
  }
  free(out);
}

/* The table itself, and the shared parser against it. */
static void check_table(void) {
  for (size_t i = 0; i < PARAM_COUNT; i++) {
    const struct param_desc *d = &param_table[i];
    CHECK(d->id == (enum param_id)i && param_find(d->name) == d,
          "%s: entry %zu, found as another", d->name, i);
    CHECK(d->front_ends && d->syntax[0] && d->help[0] &&
              d->help[strlen(d->help) - 1] == '.',
          "%s: front ends, syntax or help (a sentence) missing", d->name);
    /* Shared parser, so both front ends. */
    CHECK(!d->engine || d->front_ends == PARAM_BOTH,
          "%s: an engine parameter that only one front end takes", d->name);
    CHECK(!d->dump_key || strchr(d->syntax, '|'),
          "%s: a --dump-plugin key without choices", d->name);
    struct engine_params p;
    engine_params_init(&p);
    char err[256] = "";
    /* An empty value is wrong for each of them: -EINVAL naming the
     * parameter, never taken; -ENOENT for the front ends' own. */
    int r = engine_params_set(&p, d->name, "", err, sizeof err);
    if (d->engine)
      CHECK(r == -EINVAL && !strncmp(err, d->name, strlen(d->name)) &&
                err[strlen(d->name)] == ':',
            "engine_params_set(%s=): %d '%s': no case in engine-params.c?",
            d->name, r, err);
    else
      CHECK(r == -ENOENT, "engine_params_set(%s=): %d, not a front end's",
            d->name, r);
  }
  char err[256];
  struct engine_params p;
  engine_params_init(&p);
  CHECK(engine_params_set(&p, "no-such", "1", err, sizeof err) == -ENOENT,
        "an unknown key");
  CHECK(!param_find("no-such") && !param_find(""), "param_find of unknowns");

  char buf[64];
  CHECK(param_choices(&param_table[PARAM_RECOMPRESS], buf, sizeof buf) ==
                strlen("off,zstd,lz4hc") &&
            !strcmp(buf, "off,zstd,lz4hc"),
        "choices of recompress: '%s'", buf);
  /* Cut as snprintf cuts, with the whole length returned. */
  char small[8];
  size_t whole = param_help(NULL, 0, PARAM_PLUGIN, "");
  CHECK(param_help(small, sizeof small, PARAM_PLUGIN, "") == whole &&
            strlen(small) == sizeof small - 1,
        "param_help cut: %zu, '%s'", whole, small);
}

int main(void) {
  const char *src = env_or("abs_top_srcdir", ".");
  const char *build = env_or("abs_top_builddir", ".");
  char path[4096], plugin[4096], cmd[8192];

  check_table();

  snprintf(path, sizeof path, "%s/plugin/nbdkit-trueno-plugin.pod", src);
  check_pod(path, PARAM_PLUGIN);
  snprintf(path, sizeof path, "%s/ublk/trueno-ublk.pod", src);
  check_pod(path, PARAM_UBLK);

  snprintf(plugin, sizeof plugin, "%s/trueno.so", build);
  snprintf(cmd, sizeof cmd, "nbdkit '%s' --help 2>&1",
           env_or("TRUENO_PLUGIN", plugin));
  check_help(cmd, "plugin:", PARAM_PLUGIN);
#ifdef TEST_UBLK
  snprintf(cmd, sizeof cmd, "'%s/trueno-ublk' --help 2>&1", build);
  check_help(cmd, NULL, PARAM_UBLK);
#endif
  return tc_finish();
}
