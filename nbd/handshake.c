/* NBD fixed-newstyle handshake, client side (NBD protocol, doc/proto.md):
 * the server's greeting, our flags, NBD_OPT_GO, its NBD_REP_INFO replies
 * until NBD_REP_ACK.  No structured replies or extended headers are
 * negotiated: the kernel expects simple replies.
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include "handshake.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NBD_MAGIC_INIT 0x4e42444d41474943ULL  /* "NBDMAGIC" */
#define NBD_MAGIC_OPT 0x49484156454f5054ULL   /* "IHAVEOPT" */
#define NBD_MAGIC_REPLY 0x0003e889045565a9ULL /* option replies */
#define NBD_HS_FIXED_NEWSTYLE 1u
#define NBD_HS_NO_ZEROES 2u
#define NBD_OPT_GO 7u
#define NBD_REP_ACK 1u
#define NBD_REP_INFO 3u
#define NBD_REP_ERR 0x80000000u
#define NBD_INFO_EXPORT 0u
#define NBD_MAX_REPLY 4096u /* longer replies are skipped unread */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return rc;
}

int nbd_unix_connect(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path)
    return -ENAMETOOLONG;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* Reads exactly N bytes; -ETIMEDOUT when the server goes quiet, -EPIPE on
 * EOF. */
static int read_full(int fd, void *buf, size_t n, int timeout_ms) {
  char *p = buf;
  while (n > 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, timeout_ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if (r == 0)
      return -ETIMEDOUT;
    ssize_t got = read(fd, p, n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return -errno;
    if (got == 0)
      return -EPIPE;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t put = send(fd, p, n, MSG_NOSIGNAL);
    if (put < 0 && errno == EINTR)
      continue;
    if (put < 0)
      return -errno;
    p += put;
    n -= (size_t)put;
  }
  return 0;
}

static const char *rep_err_name(uint32_t t) {
  switch (t & ~NBD_REP_ERR) {
  case 1: return "unsupported option";
  case 2: return "refused by policy";
  case 3: return "invalid request";
  case 4: return "unsupported on this platform";
  case 5: return "TLS required";
  case 6: return "no such export";
  case 7: return "server shutting down";
  case 8: return "block size negotiation required";
  case 9: return "request too big";
  default: return "unknown error";
  }
}

static int send_go(int fd, const char *name) {
  uint32_t nlen = (uint32_t)strlen(name);
  char buf[16 + 4 + 4096 + 2];
  if (nlen > 4096)
    return -ENAMETOOLONG;
  uint64_t magic = htobe64(NBD_MAGIC_OPT);
  uint32_t opt = htobe32(NBD_OPT_GO), len = htobe32(4 + nlen + 2);
  uint32_t nl = htobe32(nlen);
  uint16_t ninfo = 0; /* NBD_INFO_EXPORT comes anyway */
  size_t off = 0;
  memcpy(buf + off, &magic, 8), off += 8;
  memcpy(buf + off, &opt, 4), off += 4;
  memcpy(buf + off, &len, 4), off += 4;
  memcpy(buf + off, &nl, 4), off += 4;
  memcpy(buf + off, name, nlen), off += nlen;
  memcpy(buf + off, &ninfo, 2), off += 2;
  return write_full(fd, buf, off);
}

int nbd_handshake(int fd, const char *name, int timeout_ms,
                  struct nbd_export *ex, char *err, size_t errlen) {
  unsigned char greet[18];
  int rc = read_full(fd, greet, sizeof greet, timeout_ms);
  if (rc < 0)
    return fail(err, errlen, rc, "reading the server's greeting: %s", strerror(-rc));
  uint64_t m1, m2;
  uint16_t hflags;
  memcpy(&m1, greet, 8);
  memcpy(&m2, greet + 8, 8);
  memcpy(&hflags, greet + 16, 2);
  if (be64toh(m1) != NBD_MAGIC_INIT)
    return fail(err, errlen, -EPROTO, "not an NBD server (bad greeting magic)");
  if (be64toh(m2) != NBD_MAGIC_OPT)
    return fail(err, errlen, -EPROTO, "server speaks oldstyle NBD, not newstyle");
  hflags = be16toh(hflags);
  if (!(hflags & NBD_HS_FIXED_NEWSTYLE))
    return fail(err, errlen, -EPROTO, "server lacks fixed newstyle negotiation");
  uint32_t cflags = htobe32(hflags & (NBD_HS_FIXED_NEWSTYLE | NBD_HS_NO_ZEROES));
  if ((rc = write_full(fd, &cflags, 4)) < 0 || (rc = send_go(fd, name)) < 0)
    return fail(err, errlen, rc, "sending NBD_OPT_GO: %s", strerror(-rc));

  int have_info = 0;
  for (;;) {
    unsigned char hdr[20];
    if ((rc = read_full(fd, hdr, sizeof hdr, timeout_ms)) < 0)
      return fail(err, errlen, rc, "reading the reply to NBD_OPT_GO: %s", strerror(-rc));
    uint64_t magic;
    uint32_t opt, type, len;
    memcpy(&magic, hdr, 8);
    memcpy(&opt, hdr + 8, 4);
    memcpy(&type, hdr + 12, 4);
    memcpy(&len, hdr + 16, 4);
    type = be32toh(type);
    len = be32toh(len);
    if (be64toh(magic) != NBD_MAGIC_REPLY || be32toh(opt) != NBD_OPT_GO)
      return fail(err, errlen, -EPROTO, "malformed reply to NBD_OPT_GO");
    if (len > NBD_MAX_REPLY)
      return fail(err, errlen, -EPROTO, "reply to NBD_OPT_GO too long (%u bytes)", len);
    unsigned char data[NBD_MAX_REPLY + 1];
    if (len > 0 && (rc = read_full(fd, data, len, timeout_ms)) < 0)
      return fail(err, errlen, rc, "reading the reply to NBD_OPT_GO: %s", strerror(-rc));
    if (type & NBD_REP_ERR) {
      data[len] = '\0';
      return fail(err, errlen, type == (NBD_REP_ERR | 6) ? -ENOENT : -ECONNREFUSED,
                  "server refused export '%s': %s%s%.*s", name, rep_err_name(type),
                  len ? ": " : "", (int)len, (const char *)data);
    }
    if (type == NBD_REP_ACK)
      break;
    if (type != NBD_REP_INFO || len < 2)
      return fail(err, errlen, -EPROTO, "unexpected reply %u to NBD_OPT_GO", type);
    uint16_t info;
    memcpy(&info, data, 2);
    if (be16toh(info) != NBD_INFO_EXPORT)
      continue; /* block sizes, names: the kernel gets its own */
    if (len != 12)
      return fail(err, errlen, -EPROTO, "NBD_INFO_EXPORT of %u bytes, not 12", len);
    uint64_t size;
    uint16_t tflags;
    memcpy(&size, data + 2, 8);
    memcpy(&tflags, data + 10, 2);
    ex->size = be64toh(size);
    ex->flags = be16toh(tflags);
    have_info = 1;
  }
  if (!have_info)
    return fail(err, errlen, -EPROTO, "server acknowledged NBD_OPT_GO without NBD_INFO_EXPORT");
  return 0;
}
