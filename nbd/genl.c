/* Generic netlink for the nbd driver, without libnl: each request is one
 * message built in a buffer, answered by an optional reply (CONNECT's
 * NBD_ATTR_INDEX) and the ack or error we ask for with NLM_F_ACK.
 * SPDX-License-Identifier: MIT
 */
#include <config.h>

#include "genl.h"

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG_MAX 1024

struct msg {
  union {
    struct nlmsghdr nh;
    char buf[MSG_MAX];
  } u;
};

static void msg_init(struct msg *m, uint16_t type, uint8_t cmd, uint8_t version) {
  memset(m, 0, sizeof *m);
  m->u.nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
  m->u.nh.nlmsg_type = type;
  m->u.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  struct genlmsghdr *gh = NLMSG_DATA(&m->u.nh);
  gh->cmd = cmd;
  gh->version = version;
}

/* Appends an attribute; returns its offset (for nests). */
static size_t put(struct msg *m, uint16_t type, const void *data, size_t len) {
  size_t off = NLMSG_ALIGN(m->u.nh.nlmsg_len);
  struct nlattr *a = (struct nlattr *)(m->u.buf + off);
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  if (len)
    memcpy((char *)a + NLA_HDRLEN, data, len);
  m->u.nh.nlmsg_len = (uint32_t)(off + NLA_ALIGN(a->nla_len));
  return off;
}

static void put_u32(struct msg *m, uint16_t type, uint32_t v) { put(m, type, &v, 4); }
static void put_u64(struct msg *m, uint16_t type, uint64_t v) { put(m, type, &v, 8); }
static void put_str(struct msg *m, uint16_t type, const char *s) {
  put(m, type, s, strlen(s) + 1);
}
static void nest_end(struct msg *m, size_t off) {
  struct nlattr *a = (struct nlattr *)(m->u.buf + off);
  a->nla_len = (uint16_t)(m->u.nh.nlmsg_len - off);
}

/* NBD_ATTR_SOCKETS { NBD_SOCK_ITEM { NBD_SOCK_FD fd } ... }, one item
 * per connection. */
static void put_sockets(struct msg *m, const int *fds, int n) {
  size_t socks = put(m, NBD_ATTR_SOCKETS, NULL, 0);
  for (int i = 0; i < n; i++) {
    size_t item = put(m, NBD_SOCK_ITEM, NULL, 0);
    put_u32(m, NBD_SOCK_FD, (uint32_t)fds[i]);
    nest_end(m, item);
  }
  nest_end(m, socks);
}

/* Looks for attribute TYPE among those from P to END. */
static const struct nlattr *find_in(const char *p, const char *end, uint16_t type) {
  while (p + NLA_HDRLEN <= end) {
    const struct nlattr *a = (const struct nlattr *)p;
    if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end)
      break;
    if ((a->nla_type & NLA_TYPE_MASK) == type)
      return a;
    p += NLA_ALIGN(a->nla_len);
  }
  return NULL;
}

/* Looks for attribute TYPE among those of a genl message's payload. */
static const struct nlattr *find_attr(const struct nlmsghdr *nh, uint16_t type) {
  return find_in((const char *)NLMSG_DATA(nh) + GENL_HDRLEN,
                 (const char *)nh + nh->nlmsg_len, type);
}

/* The id of multicast group NAME in a CTRL_CMD_GETFAMILY reply, or 0:
 * CTRL_ATTR_MCAST_GROUPS { n { CTRL_ATTR_MCAST_GRP_NAME, _ID } ... }. */
static uint32_t mcast_group(const struct nlmsghdr *nh, const char *name) {
  const struct nlattr *gs = find_attr(nh, CTRL_ATTR_MCAST_GROUPS);
  if (!gs)
    return 0;
  const char *p = (const char *)gs + NLA_HDRLEN, *end = (const char *)gs + gs->nla_len;
  while (p + NLA_HDRLEN <= end) {
    const struct nlattr *g = (const struct nlattr *)p;
    if (g->nla_len < NLA_HDRLEN || p + g->nla_len > end)
      break;
    const char *in = p + NLA_HDRLEN, *gend = p + g->nla_len;
    const struct nlattr *n = find_in(in, gend, CTRL_ATTR_MCAST_GRP_NAME);
    const struct nlattr *id = find_in(in, gend, CTRL_ATTR_MCAST_GRP_ID);
    if (n && id && id->nla_len >= NLA_HDRLEN + 4 &&
        strncmp((const char *)n + NLA_HDRLEN, name, n->nla_len - NLA_HDRLEN) == 0) {
      uint32_t v;
      memcpy(&v, (const char *)id + NLA_HDRLEN, 4);
      return v;
    }
    p += NLA_ALIGN(g->nla_len);
  }
  return 0;
}

/* Sends M and reads until its ack or error.  A reply message's attribute
 * WANT (if nonzero), WANT_LEN bytes, is copied to OUT; with WANT_LEN 0, a
 * GETFAMILY reply's id of the nbd multicast group goes to g->mcast. */
static int transact(struct nbd_genl *g, struct msg *m, uint16_t want, void *out,
                    size_t want_len) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  m->u.nh.nlmsg_seq = ++g->seq;
  if (sendto(g->fd, m->u.buf, m->u.nh.nlmsg_len, 0, (struct sockaddr *)&kernel,
             sizeof kernel) < 0)
    return -errno;
  for (;;) {
    union {
      struct nlmsghdr nh;
      char buf[8192];
    } r;
    ssize_t n = recv(g->fd, r.buf, sizeof r.buf, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    for (struct nlmsghdr *nh = &r.nh; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
      if (nh->nlmsg_seq != g->seq)
        continue;
      if (nh->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(nh);
        return e->error; /* 0: the ack */
      }
      if (nh->nlmsg_type == GENL_ID_CTRL && m->u.nh.nlmsg_type == GENL_ID_CTRL)
        g->mcast = mcast_group(nh, NBD_GENL_MCAST_GROUP_NAME);
      if (want && nh->nlmsg_type == m->u.nh.nlmsg_type) {
        const struct nlattr *a = find_attr(nh, want);
        if (a && a->nla_len >= NLA_HDRLEN + want_len)
          memcpy(out, (const char *)a + NLA_HDRLEN, want_len);
      }
    }
  }
}

int nbd_genl_open(struct nbd_genl *g) {
  g->seq = 0;
  g->family = 0;
  g->mcast = 0;
  g->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  if (g->fd < 0)
    return -errno;
  struct sockaddr_nl me = {.nl_family = AF_NETLINK};
  if (bind(g->fd, (struct sockaddr *)&me, sizeof me) < 0) {
    int e = errno;
    nbd_genl_close(g);
    return -e;
  }
  struct msg m;
  msg_init(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
  put_str(&m, CTRL_ATTR_FAMILY_NAME, NBD_GENL_FAMILY_NAME);
  uint16_t id = 0;
  int rc = transact(g, &m, CTRL_ATTR_FAMILY_ID, &id, sizeof id);
  if (rc == 0 && id == 0)
    rc = -ENOENT;
  if (rc < 0) {
    nbd_genl_close(g);
    return rc;
  }
  g->family = id;
  return 0;
}

void nbd_genl_close(struct nbd_genl *g) {
  if (g->fd >= 0)
    close(g->fd);
  g->fd = -1;
}

int nbd_genl_connect(struct nbd_genl *g, const struct nbd_connect_args *a,
                     const int *fds, int nfds, uint32_t *index) {
  struct msg m;
  msg_init(&m, g->family, NBD_CMD_CONNECT, NBD_GENL_VERSION);
  if (a->index >= 0)
    put_u32(&m, NBD_ATTR_INDEX, (uint32_t)a->index);
  put_u64(&m, NBD_ATTR_SIZE_BYTES, a->size);
  put_u64(&m, NBD_ATTR_BLOCK_SIZE_BYTES, a->block_size);
  if (a->timeout)
    put_u64(&m, NBD_ATTR_TIMEOUT, a->timeout);
  put_u64(&m, NBD_ATTR_DEAD_CONN_TIMEOUT, a->dead_conn_timeout);
  put_u64(&m, NBD_ATTR_SERVER_FLAGS, a->server_flags);
  put_u64(&m, NBD_ATTR_CLIENT_FLAGS, a->client_flags);
  if (a->backend)
    put_str(&m, NBD_ATTR_BACKEND_IDENTIFIER, a->backend);
  put_sockets(&m, fds, nfds);
  uint32_t idx = UINT32_MAX;
  int rc = transact(g, &m, NBD_ATTR_INDEX, &idx, sizeof idx);
  if (rc < 0)
    return rc;
  if (idx == UINT32_MAX)
    return -EPROTO; /* connected, but the kernel did not say where */
  *index = idx;
  return 0;
}

int nbd_genl_reconnect(struct nbd_genl *g, uint32_t index, const int *fds,
                       int nfds, const char *backend) {
  struct msg m;
  msg_init(&m, g->family, NBD_CMD_RECONFIGURE, NBD_GENL_VERSION);
  put_u32(&m, NBD_ATTR_INDEX, index);
  if (backend)
    put_str(&m, NBD_ATTR_BACKEND_IDENTIFIER, backend);
  put_sockets(&m, fds, nfds);
  return transact(g, &m, 0, NULL, 0);
}

int nbd_genl_disconnect(struct nbd_genl *g, uint32_t index) {
  struct msg m;
  msg_init(&m, g->family, NBD_CMD_DISCONNECT, NBD_GENL_VERSION);
  put_u32(&m, NBD_ATTR_INDEX, index);
  return transact(g, &m, 0, NULL, 0);
}

int nbd_genl_watch(struct nbd_genl *g) {
  if (!g->mcast)
    return -ENOENT;
  uint32_t grp = g->mcast;
  if (setsockopt(g->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof grp) < 0)
    return -errno;
  return 0;
}

int nbd_genl_link_dead(struct nbd_genl *g) {
  union {
    struct nlmsghdr nh;
    char buf[8192];
  } r;
  ssize_t n = recv(g->fd, r.buf, sizeof r.buf, MSG_DONTWAIT);
  if (n < 0)
    return -errno;
  int found = -ENOMSG;
  for (struct nlmsghdr *nh = &r.nh; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
    const struct genlmsghdr *gh = NLMSG_DATA(nh);
    if (nh->nlmsg_type != g->family || gh->cmd != NBD_CMD_LINK_DEAD)
      continue;
    const struct nlattr *a = find_attr(nh, NBD_ATTR_INDEX);
    uint32_t idx;
    if (a && a->nla_len >= NLA_HDRLEN + 4) {
      memcpy(&idx, (const char *)a + NLA_HDRLEN, 4);
      found = (int)(idx & 0x7fffffff);
    }
  }
  return found;
}
