/* trueno-nbd: attaches /dev/nbdN to an NBD server on a Unix socket through
 * the kernel's netlink interface, so that the device outlives its server:
 * with a dead-connection timeout the kernel holds requests while a new
 * server starts, and `reconnect` hands it the new connection.
 *
 *   trueno-nbd connect SOCK [--device /dev/nbdN] [--timeout S]
 *                           [--dead-conn-timeout S] [--block-size N]
 *                           [--export NAME] [--backend ID]
 *   trueno-nbd reconnect /dev/nbdN SOCK [--export NAME] [--backend ID]
 *   trueno-nbd disconnect /dev/nbdN
 *   trueno-nbd probe SOCK [--export NAME]
 *   trueno-nbd supervise --socket SOCK ... -- SERVER [ARGS...]  (supervise.c)
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/nbd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "genl.h"
#include "handshake.h"
#include "supervise.h"

static const char *prog = "trueno-nbd";
#define HANDSHAKE_MS 10000

/* Prints the error; 1, the exit status for it. */
__attribute__((format(printf, 1, 2))) static int die(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: error: %s\n", prog, msg);
  return 1;
}
/* The same for a bad command line: 2. */
#define bad_args(...) ((void)die(__VA_ARGS__), 2)

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s connect SOCK [--device /dev/nbdN] [--timeout S]\n"
          "                  [--dead-conn-timeout S] [--block-size N] [--export NAME]\n"
          "                  [--backend ID]\n"
          "       %s reconnect /dev/nbdN SOCK [--export NAME] [--backend ID]\n"
          "       %s disconnect /dev/nbdN\n"
          "       %s probe SOCK [--export NAME]\n"
          "       %s supervise --socket SOCK --pidfile FILE [--log FILE]\n"
          "                  [--device /dev/nbdN | --no-attach] [--connections N]\n"
          "                  [--timeout S] [--dead-conn-timeout S] [--backend ID]\n"
          "                  [--export NAME] [--state-fd N] [--max-fails K] [--fast S]\n"
          "                  [--restart-reserve MIB]\n"
          "                  [--foreground] -- SERVER [ARGS...]\n",
          prog, prog, prog, prog, prog);
}

/* "/dev/nbdN" or "nbdN": N, or -EINVAL. */
static int parse_device(const char *s) {
  if (strncmp(s, "/dev/", 5) == 0)
    s += 5;
  if (strncmp(s, "nbd", 3) != 0 || s[3] < '0' || s[3] > '9')
    return -EINVAL;
  char *end;
  errno = 0;
  long n = strtol(s + 3, &end, 10);
  if (errno || *end || n < 0 || n > INT_MAX / 2)
    return -EINVAL;
  return (int)n;
}

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *v) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || n > max)
    return die("%s: invalid value '%s' (a number up to %" PRIu64 ")", opt, s, max);
  *v = n;
  return 0;
}

struct opts {
  const char *pos[2];
  int npos;
  const char *device, *export, *backend;
  uint64_t timeout, dead_conn, block_size;
};

static int parse_opts(int argc, char **argv, struct opts *o) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 0;
    if (a[0] != '-' || a[1] == '\0') {
      if (o->npos == 2)
        return die("unexpected argument '%s'", a);
      o->pos[o->npos++] = a;
      continue;
    }
    if (!v)
      return die("%s needs a value", a);
    if (strcmp(a, "--device") == 0)
      o->device = v;
    else if (strcmp(a, "--export") == 0)
      o->export = v;
    else if (strcmp(a, "--backend") == 0) {
      if (!*v || strlen(v) > 255)
        return die("--backend: an identity of 1 to 255 bytes, not '%s'", v);
      o->backend = v;
    }
    else if (strcmp(a, "--timeout") == 0)
      rc = parse_u64(a, v, 86400, &o->timeout);
    else if (strcmp(a, "--dead-conn-timeout") == 0)
      rc = parse_u64(a, v, 86400, &o->dead_conn);
    else if (strcmp(a, "--block-size") == 0) {
      rc = parse_u64(a, v, 65536, &o->block_size);
      if (!rc && (o->block_size < 512 || (o->block_size & (o->block_size - 1))))
        rc = die("--block-size: %s is not a power of two from 512 to 65536", v);
    } else
      return die("unknown option '%s'", a);
    if (rc)
      return rc;
    i++;
  }
  return 0;
}

/* Connects to SOCK and negotiates: the fd, or -1 after saying why. */
static int open_export(const char *sock, const char *name, struct nbd_export *ex) {
  int fd = nbd_unix_connect(sock);
  if (fd < 0) {
    die("cannot connect to %s: %s", sock, strerror(-fd));
    return -1;
  }
  char err[512];
  int rc = nbd_handshake(fd, name, HANDSHAKE_MS, ex, err, sizeof err);
  if (rc < 0) {
    close(fd);
    die("handshake with %s: %s", sock, err);
    return -1;
  }
  if (ex->size == 0) {
    close(fd);
    die("handshake with %s: the export is empty (size 0)", sock);
    return -1;
  }
  return fd;
}

static int open_genl(struct nbd_genl *g) {
  int rc = nbd_genl_open(g);
  if (rc == -ENOENT)
    return die("the kernel has no nbd netlink family: load the module (modprobe nbd)");
  if (rc < 0)
    return die("netlink: %s", strerror(-rc));
  return 0;
}

static int cmd_probe(struct opts *o) {
  if (o->npos != 1)
    return bad_args("probe needs one socket");
  struct nbd_export ex;
  int fd = open_export(o->pos[0], o->export ? o->export : "", &ex);
  if (fd < 0)
    return 1;
  close(fd);
  printf("size=%" PRIu64 " flags=0x%04x%s\n", ex.size, ex.flags,
         ex.flags & NBD_FLAG_READ_ONLY ? " read-only" : "");
  return 0;
}

static int cmd_connect(struct opts *o) {
  if (o->npos != 1)
    return bad_args("connect needs one socket");
  struct nbd_connect_args a = {
      .index = -1,
      .block_size = o->block_size ? o->block_size : 4096,
      .timeout = o->timeout,
      .dead_conn_timeout = o->dead_conn,
      .backend = o->backend,
  };
  if (o->device && (a.index = parse_device(o->device)) < 0)
    return die("--device: '%s' is not /dev/nbdN", o->device);
  struct nbd_genl g;
  if (open_genl(&g))
    return 1;
  struct nbd_export ex;
  int fd = open_export(o->pos[0], o->export ? o->export : "", &ex);
  if (fd < 0)
    return nbd_genl_close(&g), 1;
  if (ex.size % a.block_size) {
    close(fd);
    nbd_genl_close(&g);
    return die("export size %" PRIu64 " is not a multiple of the block size %" PRIu64,
               ex.size, a.block_size);
  }
  a.size = ex.size;
  a.server_flags = ex.flags;
  uint32_t index;
  int rc = nbd_genl_connect(&g, &a, &fd, 1, &index);
  close(fd); /* the kernel holds its own reference */
  nbd_genl_close(&g);
  if (rc == -EBUSY)
    return die("%s is in use", o->device);
  if (rc < 0)
    return die("the kernel refused NBD_CMD_CONNECT%s%s: %s (see dmesg)",
               o->device ? " of " : "", o->device ? o->device : "", strerror(-rc));
  printf("/dev/nbd%" PRIu32 "\n", index);
  return 0;
}

/* The device's size in bytes from sysfs, or -errno. */
static int64_t device_size(int index) {
  char path[64];
  snprintf(path, sizeof path, "/sys/block/nbd%d/size", index);
  FILE *f = fopen(path, "re");
  if (!f)
    return -errno;
  unsigned long long sectors;
  int n = fscanf(f, "%llu", &sectors);
  fclose(f);
  return n == 1 ? (int64_t)(sectors * 512) : -EIO;
}

/* The index of device NAME, with G open: 0, or 1 after saying why. */
static int open_device(const char *name, struct nbd_genl *g, int *index) {
  if ((*index = parse_device(name)) < 0)
    return die("'%s' is not /dev/nbdN", name);
  return open_genl(g);
}

static int cmd_reconnect(struct opts *o) {
  if (o->npos != 2)
    return bad_args("reconnect needs a device and a socket");
  int index;
  struct nbd_genl g;
  if (open_device(o->pos[0], &g, &index))
    return 1;
  struct nbd_export ex;
  int fd = open_export(o->pos[1], o->export ? o->export : "", &ex);
  if (fd < 0)
    return nbd_genl_close(&g), 1;
  /* Another export behind the same device would be silent corruption. */
  int64_t have = device_size(index);
  if (have >= 0 && (uint64_t)have != ex.size) {
    close(fd);
    nbd_genl_close(&g);
    return die("%s has %" PRId64 " bytes but the export on %s has %" PRIu64,
               o->pos[0], have, o->pos[1], ex.size);
  }
  int rc = nbd_genl_reconnect(&g, (uint32_t)index, &fd, 1, o->backend);
  close(fd);
  nbd_genl_close(&g);
  if (rc == -EINVAL)
    return die("the kernel refused NBD_CMD_RECONFIGURE of %s: not connected, or "
               "connected with another --backend (see dmesg)", o->pos[0]);
  if (rc < 0)
    return die("the kernel refused NBD_CMD_RECONFIGURE of %s: %s (not connected with "
               "%s connect? see dmesg)", o->pos[0], strerror(-rc), prog);
  return 0;
}

static int cmd_disconnect(struct opts *o) {
  if (o->npos != 1)
    return bad_args("disconnect needs a device");
  int index;
  struct nbd_genl g;
  if (open_device(o->pos[0], &g, &index))
    return 1;
  int rc = nbd_genl_disconnect(&g, (uint32_t)index);
  nbd_genl_close(&g);
  if (rc < 0)
    return die("the kernel refused NBD_CMD_DISCONNECT of %s: %s", o->pos[0], strerror(-rc));
  return 0;
}

static const struct {
  const char *name;
  int (*run)(struct opts *o);
} commands[] = {
    {"connect", cmd_connect},
    {"reconnect", cmd_reconnect},
    {"disconnect", cmd_disconnect},
    {"probe", cmd_probe},
};

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "supervise"))
    return supervise_main(argc - 2, argv + 2);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp(cmd, commands[i].name) != 0)
      continue;
    struct opts o = {0};
    return parse_opts(argc - 2, argv + 2, &o) ? 2 : commands[i].run(&o);
  }
  usage(stderr);
  return argc > 1 ? bad_args("unknown command '%s'", cmd) : 2;
}
