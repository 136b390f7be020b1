#!/usr/bin/env bash
# What a client can make the server hold outside mem-limit: nbdkit's request
# buffers (up to 64 MiB each) and its threads.  With one request at a time
# per connection (the plugin's thread model on nbdkit < 1.33.10) a
# connection holds at most one buffer and one thread; nbdkit's limit filter
# bounds the connections.  Checks, on a server with mem-limit=16M:
# - 100 idle connections (handshake done) cost at most ~one thread each;
# - two clients each queueing 8 reads of 64 MiB without reading a reply
#   grow its RSS by at most 3 x 64 MiB;
# - with --filter=limit limit=8, 20 clients get 8 connections, the others
#   are refused, and the threads stay near 8;
# - the server answers a fresh client afterwards.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_nbd_python

cat >"$TMPD/bounds.py" <<'EOF'
import os, socket, struct, sys, time
import nbd

sock, pidfile, mode = sys.argv[1:4]
with open(pidfile) as f:
    pid = int(f.read())       # the server (--run's command is its parent's)
MiB = 1 << 20

def status(key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)

def client():
    """A raw NBD client past the handshake (fixed newstyle, EXPORT_NAME);
    None if the server refused it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(sock)
        b = b""
        while len(b) < 18:
            c = s.recv(18 - len(b))
            if not c:
                raise EOFError
            b += c
        s.sendall(struct.pack(">I", 3) + b"IHAVEOPT" + struct.pack(">II", 1, 0))
        b = b""
        while len(b) < 10:
            c = s.recv(10 - len(b))
            if not c:
                raise EOFError
            b += c
    except (EOFError, OSError):
        s.close()
        return None
    return s

def settle(key, secs=3.0):
    """The largest value of a /proc status field over secs."""
    most, end = 0, time.time() + secs
    while time.time() < end:
        most = max(most, status(key))
        time.sleep(0.05)
    return most

def fresh_read():
    h = nbd.NBD()
    h.connect_unix(sock)
    assert h.pread(4096, 0) == bytes(4096)
    h.shutdown()

failures = []
def check(cond, what):
    print(("  ok: " if cond else "  FAILED: ") + what)
    if not cond:
        failures.append(what)

base_rss, base_thr = status("VmRSS"), status("Threads")
print("  baseline: RSS %d KiB, %d threads" % (base_rss, base_thr))

if mode == "plain":
    # Idle connections (stop at the first refusal: the server may be gone).
    cs = []
    for _ in range(100):
        cs.append(client())
        if not cs[-1]:
            break
    check(len(cs) == 100 and all(cs), "100 idle connections accepted")
    thr = settle("Threads", 1.0)
    check(thr - base_thr <= 100 + 8,
          "100 idle connections: %d threads more (at most ~1 each)" % (thr - base_thr))
    for s in cs:
        if s:
            s.close()
    time.sleep(0.5)
    # Queued 64 MiB reads that nobody reads back.
    cs = []
    for _ in range(2):
        s = client()
        assert s, "refused"
        s.sendall(b"".join(struct.pack(">IHHQQI", 0x25609513, 0, 0, i,
                                       i * 64 * MiB, 64 * MiB)
                           for i in range(8)))
        cs.append(s)
    rss = settle("VmRSS")
    grew = (rss - base_rss) // 1024
    check(grew <= 3 * 64, "2 clients x 8 unread 64 MiB reads: RSS grew %d MiB "
          "(at most 192: one buffer per connection)" % grew)
    for s in cs:
        s.close()
    time.sleep(0.5)
else:
    n = int(mode)
    cs = [client() for _ in range(20)]
    got = sum(1 for s in cs if s)
    check(got == n, "limit=%d: %d of 20 connections served" % (n, got))
    thr = settle("Threads", 1.0)
    check(thr - base_thr <= n + 8,
          "limit=%d: %d threads more" % (n, thr - base_thr))
    for s in cs:
        if s:
            s.close()
    time.sleep(0.5)

if client() is None:
    check(False, "a fresh client is served afterwards")
else:
    fresh_read()
    check(True, "a fresh client is served afterwards")
sys.exit(1 if failures else 0)
EOF

sock=$TMPD/nbd.sock
export sock TMPD PYTHON

note "mem-limit=16M: 100 idle connections, unread 64 MiB reads"
tmo 120 nbdkit -U "$sock" -P "$TMPD/pid" "$TRUENO_PLUGIN" size=1G \
    mem-limit=16M --run '"$PYTHON" "$TMPD/bounds.py" "$sock" "$TMPD/pid" plain' \
    2>"$TMPD/plain.err" ||
    fail "request buffers or threads not bounded per connection"
ok "one buffer and about one thread per connection"

rm -f "$sock" "$TMPD/pid"
note "--filter=limit limit=8: 20 clients"
tmo 120 nbdkit -U "$sock" -P "$TMPD/pid" --filter=limit "$TRUENO_PLUGIN" \
    size=1G mem-limit=16M limit=8 \
    --run '"$PYTHON" "$TMPD/bounds.py" "$sock" "$TMPD/pid" 8' \
    2>"$TMPD/limit.err" ||
    fail "--filter=limit limit=8 did not bound the connections"
grep -q "limit: too many clients" "$TMPD/limit.err" ||
    fail "--filter=limit: no refusal logged: $(cat "$TMPD/limit.err")"
ok "--filter=limit limit=8 bounds connections and threads"

note "passed in $SECONDS s"
