/* trueno-hold: keeps a store's state (a memfd) while no server runs, and
 * hands it to the next server over a Unix socket (common/hold-proto.h),
 * so that the store outlives a crash or an upgrade of its server
 * (docs/persistence.md).  One holder, one named state; trueno-hold(8).
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "hold-proto.h"
#include "safefile.h"

/* A client gets this long to send its request: one that does not must
 * not keep the next server waiting. */
#define REQUEST_TIMEOUT_S 5

struct holder {
  const char *name;
  int state;          /* the memfd, or -1 while none is held */
  int dirfd;          /* the socket's directory */
  char base[NAME_MAX + 1];
  int verbose;
};

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("trueno-hold: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void usage(FILE *f) {
  fputs("usage: trueno-hold [--size SIZE | --empty] [--daemon] "
        "[--pidfile FILE] [--verbose] SOCKET NAME\n"
        "Keeps the state NAME (a memfd) and hands it to servers that ask "
        "on SOCKET.\n", f);
}

static int parse_size(const char *s, off_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *s == '-')
    return -EINVAL;
  int shift = 0;
  switch (*end) {
  case 'T': shift += 10; /* fall through */
  case 'G': shift += 10; /* fall through */
  case 'M': shift += 10; /* fall through */
  case 'K': shift += 10; end++; break;
  }
  if (*end || (shift && v > (0x7fffffffffffffffULL >> shift)) ||
      (v << shift) > 0x7fffffffffffffffULL)
    return -EINVAL;
  *out = (off_t)(v << shift);
  return 0;
}

static void reply(int c, int status, int fd, const char *fmt, ...) {
  struct hold_reply a;
  memset(&a, 0, sizeof a);
  memcpy(a.magic, HOLD_REP_MAGIC, sizeof a.magic);
  a.version = HOLD_VERSION;
  a.status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a.msg, sizeof a.msg, fmt, ap);
  va_end(ap);
  int r = hold_send(c, &a, sizeof a, fd);
  if (r)
    say("reply: %s", strerror(-r));
}

static off_t state_size(int fd) {
  struct stat sb;
  return fd >= 0 && !fstat(fd, &sb) ? sb.st_size : 0;
}

/* One connection: one request, one reply. */
static void serve(struct holder *h, int c) {
  uid_t uid;
  int r = hold_peer_uid(c, &uid);
  if (r) {
    say("SO_PEERCRED: %s", strerror(-r));
    return;
  }
  struct timeval tv = {.tv_sec = REQUEST_TIMEOUT_S};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  /* Room for a longer request of a later version: its version is
   * answered, not its length. */
  union {
    struct hold_request q;
    char raw[1024];
  } in;
  struct hold_request q;
  size_t len;
  int fd;
  r = hold_recv(c, &in, sizeof in, &len, &fd);
  if (!r && len < offsetof(struct hold_request, op))
    r = -EBADMSG;
  if (r == -ECONNRESET)
    return; /* connected and went: another holder checking the socket */
  if (r) {
    say("request: %s", r == -EAGAIN ? "none within the time limit"
        : r == -EBADMSG ? "not a request of this protocol" : strerror(-r));
    if (r == -EBADMSG)
      reply(c, -EPROTO, -1, "not a trueno-hold request (protocol %d)",
            HOLD_VERSION);
    return;
  }
  /* The socket's directory already keeps others out; this is the check
   * that holds if it does not (a hard link, a directory made wider).
   * After the request is read: closing on an unread one would reset the
   * connection, and the client would not see why. */
  if (uid != geteuid() && uid != 0) {
    say("refused a client of uid %u", (unsigned)uid);
    reply(c, -EACCES, -1, "uid %u may not ask this holder (uid %u, or root)",
          (unsigned)uid, (unsigned)geteuid());
    if (fd >= 0)
      close(fd);
    return;
  }
  memset(&q, 0, sizeof q);
  memcpy(&q, &in, len < sizeof q ? len : sizeof q);
  q.name[sizeof q.name - 1] = 0;
  if (memcmp(q.magic, HOLD_REQ_MAGIC, sizeof q.magic))
    reply(c, -EPROTO, -1, "not a trueno-hold request");
  else if (q.version != HOLD_VERSION)
    reply(c, -EPROTONOSUPPORT, -1,
          "protocol version %u asked, this holder speaks version %d",
          (unsigned)q.version, HOLD_VERSION);
  else if (len != sizeof q)
    reply(c, -EPROTO, -1, "a request of %zu bytes: version %d's are %zu",
          len, HOLD_VERSION, sizeof q);
  else if (strcmp(q.name, h->name))
    reply(c, -ENOENT, -1, "this holder keeps state '%s', not '%s'", h->name,
          q.name);
  else if (q.op == HOLD_GET) {
    if (h->state < 0)
      reply(c, -ENOENT, -1, "state '%s' is not held yet (no server gave "
            "it)", h->name);
    else {
      reply(c, 0, h->state, "state '%s', %lld bytes", h->name,
            (long long)state_size(h->state));
      if (h->verbose)
        say("gave state '%s' to a client of uid %u", h->name, (unsigned)uid);
    }
  } else if (q.op == HOLD_PUT) {
    if (fd < 0 || hold_is_memfd(fd))
      reply(c, -EINVAL, -1, "PUT of state '%s' without a memfd", h->name);
    else if (state_size(h->state) > 0)
      reply(c, -EEXIST, -1, "state '%s' is held already (%lld bytes): stop "
            "this holder to drop it", h->name,
            (long long)state_size(h->state));
    else {
      if (h->state >= 0)
        close(h->state);
      h->state = fd;
      fd = -1;
      reply(c, 0, -1, "state '%s' held, %lld bytes", h->name,
            (long long)state_size(h->state));
      if (h->verbose)
        say("took state '%s' from a client of uid %u", h->name,
            (unsigned)uid);
    }
  } else
    reply(c, -EOPNOTSUPP, -1, "unknown operation %u", (unsigned)q.op);
  if (fd >= 0)
    close(fd);
}

/* Binds SOCKET in its directory (0700, ours, created if missing): a
 * socket left by a holder that died is replaced, a live one is not. */
static int listen_at(struct holder *h, const char *path) {
  char why[PATH_MAX + 100];
  h->dirfd = hold_open_dir(path, h->base, sizeof h->base, 1, 0, 1, why,
                           sizeof why);
  if (h->dirfd < 0) {
    say("%s", why);
    return -1;
  }
  struct sockaddr_un sa;
  socklen_t salen;
  if (hold_sockaddr(h->dirfd, h->base, &sa, &salen)) {
    say("%s: name too long for a socket", path);
    return -1;
  }
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) {
    say("socket: %s", strerror(errno));
    return -1;
  }
  struct stat sb;
  if (!fstatat(h->dirfd, h->base, &sb, AT_SYMLINK_NOFOLLOW)) {
    if (!S_ISSOCK(sb.st_mode)) {
      say("%s exists and is not a socket: not replaced", path);
      close(s);
      return -1;
    }
    if (!connect(s, (struct sockaddr *)&sa, salen)) {
      say("%s: a holder listens there already", path);
      close(s);
      return -1;
    }
    close(s);
    s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0 || unlinkat(h->dirfd, h->base, 0)) {
      say("%s: cannot replace the stale socket: %s", path, strerror(errno));
      return -1;
    }
  }
  /* The socket itself closed to others too (single-threaded: umask is ours alone). */
  mode_t um = umask(077);
  int b = bind(s, (struct sockaddr *)&sa, salen);
  umask(um);
  if (b || listen(s, 16)) {
    say("%s: %s", path, strerror(errno));
    close(s);
    return -1;
  }
  return s;
}

static volatile sig_atomic_t quit;
static void on_signal(int sig) { quit = sig; }

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"size", required_argument, 0, 's'},
      {"empty", no_argument, 0, 'e'},
      {"daemon", no_argument, 0, 'd'},
      {"pidfile", required_argument, 0, 'p'},
      {"verbose", no_argument, 0, 'v'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  off_t size = 0;
  int empty = 0, daemonize = 0, c;
  const char *pidfile = NULL;
  struct holder h = {.state = -1, .dirfd = -1};
  while ((c = getopt_long(argc, argv, "s:edp:vh", opts, NULL)) != -1)
    switch (c) {
    case 's':
      if (parse_size(optarg, &size)) {
        say("--size %s: bytes, or with K, M, G or T", optarg);
        return 2;
      }
      break;
    case 'e': empty = 1; break;
    case 'd': daemonize = 1; break;
    case 'p': pidfile = optarg; break;
    case 'v': h.verbose = 1; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  if (argc - optind != 2) {
    usage(stderr);
    return 2;
  }
  const char *path = argv[optind];
  h.name = argv[optind + 1];
  if (!hold_name_ok(h.name)) {
    say("state name '%s': 1 to %d letters, digits, '_', '.' or '-'", h.name,
        HOLD_NAME_MAX - 1);
    return 2;
  }
  if (empty && size) {
    say("--empty and --size exclude each other");
    return 2;
  }
  if (!empty) {
    char mname[HOLD_NAME_MAX + 16];
    snprintf(mname, sizeof mname, "trueno-state:%s", h.name);
    h.state = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (h.state < 0 || ftruncate(h.state, size)) {
      say("memfd of %lld bytes: %s", (long long)size, strerror(errno));
      return 1;
    }
  }
  /* Signals are taken in ppoll only, so none is lost between the check
   * and the wait. */
  sigset_t block, none;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGHUP);
  sigprocmask(SIG_BLOCK, &block, &none);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int ls = listen_at(&h, path);
  if (ls < 0)
    return 1;
  if (daemonize) {
    /* The parent returns once the socket listens, so that whoever
     * started it can connect at once. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
      say("fork: %s", strerror(errno));
      return 1;
    }
    if (pid > 0) {
      if (pidfile) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld\n", (long)pid);
        int r = safefile_replace(pidfile, buf, (size_t)n, 0644);
        if (r) {
          say("pidfile %s: %s", pidfile, strerror(-r));
          kill(pid, SIGTERM);
          return 1;
        }
      }
      return 0;
    }
    setsid();
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) {
      dup2(nul, 0);
      dup2(nul, 1);
      close(nul);
    }
  } else if (pidfile) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    int r = safefile_replace(pidfile, buf, (size_t)n, 0644);
    if (r) {
      say("pidfile %s: %s", pidfile, strerror(-r));
      return 1;
    }
  }
  if (h.verbose)
    say("holding state '%s' on %s", h.name, path);
  while (!quit) {
    struct pollfd p = {.fd = ls, .events = POLLIN};
    int n = ppoll(&p, 1, NULL, &none);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      say("poll: %s", strerror(errno));
      break;
    }
    int cl = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (cl < 0)
      continue;
    serve(&h, cl);
    close(cl);
  }
  /* The state goes with the holder: stopping it is how it is dropped. */
  unlinkat(h.dirfd, h.base, 0);
  if (pidfile)
    unlink(pidfile);
  if (h.verbose)
    say("stopped (signal %d): state '%s' dropped", (int)quit, h.name);
  return 0;
}
