/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "param-table.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PARAM_KIND_ENGINE true
#define PARAM_KIND_FRONT false
#define PARAM_DESC(id_, name_, syntax_, fe_, kind_, dump_, help_)             \
  [PARAM_##id_] = {.id = PARAM_##id_,                                         \
                   .name = name_,                                             \
                   .syntax = syntax_,                                         \
                   .front_ends = PARAM_##fe_,                                 \
                   .engine = PARAM_KIND_##kind_,                              \
                   .dump_key = dump_,                                         \
                   .help = help_},
const struct param_desc param_table[PARAM_COUNT] = {
    TRUENO_PARAMS(PARAM_DESC)};

/* The help starts in this column (after the indent). */
#define HELP_COLUMN 20

const struct param_desc *param_find(const char *name) {
  for (size_t i = 0; i < PARAM_COUNT; i++)
    if (!strcmp(name, param_table[i].name))
      return &param_table[i];
  return NULL;
}

/* snprintf at buf + *pos, counting on past len as snprintf does. */
__attribute__((format(printf, 4, 5))) static void
append(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(*pos < len ? buf + *pos : NULL,
                    *pos < len ? len - *pos : 0, fmt, ap);
  va_end(ap);
  if (n > 0)
    *pos += (size_t)n;
}

size_t param_help(char *buf, size_t len, unsigned front_end,
                  const char *indent) {
  size_t pos = 0;
  if (len)
    buf[0] = 0;
  for (size_t i = 0; i < PARAM_COUNT; i++) {
    const struct param_desc *d = &param_table[i];
    if (!(d->front_ends & front_end))
      continue;
    int w = (int)(strlen(d->name) + 1 + strlen(d->syntax));
    /* One space after a short name=SYNTAX (to the column), two after a
     * long one. */
    append(buf, len, &pos, "%s%s=%s%*s", indent, d->name, d->syntax,
           w < HELP_COLUMN ? HELP_COLUMN - w : 2, "");
    for (const char *h = d->help, *nl; *h; h = nl + 1) {
      nl = strchr(h, '\n');
      if (h != d->help)
        append(buf, len, &pos, "%s%*s", indent, HELP_COLUMN, "");
      append(buf, len, &pos, "%.*s\n", nl ? (int)(nl - h) : (int)strlen(h),
             h);
      if (!nl)
        break;
    }
  }
  return pos;
}

size_t param_choices(const struct param_desc *d, char *buf, size_t len) {
  size_t pos = 0;
  if (len)
    buf[0] = 0;
  for (const char *s = d->syntax;; s++) {
    size_t n = strcspn(s, "|");
    size_t word = strcspn(s, "[|");
    if (*s != '<') /* a placeholder (<N>) is no choice */
      append(buf, len, &pos, "%s%.*s", pos ? "," : "", (int)word, s);
    s += n;
    if (!*s)
      break;
  }
  return pos;
}
