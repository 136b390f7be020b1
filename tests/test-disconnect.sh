#!/usr/bin/env bash
# A client that hangs up with replies still pending must not take the server
# down: the kernel's nbd driver does exactly that when its timeout fires or
# on `nbd-client -d`.  nbdkit 1.32 aborts (connections.c: raw_send_socket:
# Assertion `sock >= 0') when, with several worker threads on one
# connection, one thread's reply fails and another sends next; see
# docs/nbdkit-disconnect.md.  Over a Unix socket and over TCP on
# 127.0.0.1: write a pattern, let abusive clients queue reads and close
# without reading, again and again, then check on a fresh connection that
# the server still serves every page intact.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_nbd_python

cat >"$TMPD/abuse.py" <<'EOF'
import os, socket, struct, sys, time
import nbd

uri = sys.argv[1]
kind, target, rounds, nreq, reqlen = os.environ["ABUSE"].split()
rounds, nreq, reqlen = int(rounds), int(nreq), int(reqlen)
P = 4096
PAT_PAGES = 1024                      # 4 MiB of pattern at the start

def page(i):
    return struct.pack("<Q", i * 2654435761) * (P // 8)

def connect():
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(target)
    else:
        host, port = target.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    s.settimeout(10)
    return s

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("server closed during the handshake")
        b += c
    return b

# How long each client waits before it hangs up: the crash needs a reply
# that fails while another is queued behind it, which depends on how far
# the server got; a spread of delays hits it on Unix and TCP alike.
DELAYS = (0.0, 0.01, 0.03, 0.1, 0.2)

def abusive_client(delay):
    """Fixed newstyle handshake (NBD_OPT_EXPORT_NAME, simple replies), nreq
    reads of reqlen bytes, then close without reading a single reply."""
    s = connect()
    hello = recv_exact(s, 18)
    assert hello[:16] == b"NBDMAGICIHAVEOPT", hello
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    s.sendall(b"IHAVEOPT" + struct.pack(">II", 1, 0))  # EXPORT_NAME ""
    size, _flags = struct.unpack(">QH", recv_exact(s, 10))
    reqs = b"".join(
        struct.pack(">IHHQQI", 0x25609513, 0, 0, i,
                    (i * reqlen) % (size - reqlen + 1), reqlen)
        for i in range(nreq))
    s.sendall(reqs)
    # Let the server's threads pick the requests up and start replying.
    time.sleep(delay)
    s.close()

h = nbd.NBD()
h.connect_uri(uri)
for i in range(PAT_PAGES):
    h.pwrite(page(i), i * P)
h.shutdown()

for r in range(rounds):
    abusive_client(DELAYS[r % len(DELAYS)])
    # The server must still be there after each one.
    h = nbd.NBD()
    h.connect_uri(uri)
    got = h.pread(P, ((r * 7) % PAT_PAGES) * P)
    assert got == page((r * 7) % PAT_PAGES), "page %d changed" % ((r * 7) % PAT_PAGES)
    h.shutdown()

h = nbd.NBD()
h.connect_uri(uri)
data = h.pread(PAT_PAGES * P, 0)
for i in range(PAT_PAGES):
    assert data[i * P:(i + 1) * P] == page(i), "page %d changed" % i
h.shutdown()
print("%s: %d abusive clients (%d reads of %d bytes each, closed unread); "
      "every page intact" % (kind, rounds, nreq, reqlen))
EOF

# run_case NAME NBDKIT-LISTEN-ARGS... -- ABUSE-ARGS...
run_case() {
    local name=$1 listen=() rc=0
    shift
    while [ "$1" != "--" ]; do listen+=("$1"); shift; done
    shift
    ABUSE="$*" tmo 120 nbdkit "${listen[@]}" "$TRUENO_PLUGIN" size=64M \
        --run '"$PYTHON" "$TMPD/abuse.py" "$uri"' \
        >"$TMPD/$name.out" 2>"$TMPD/$name.err" || rc=$?
    sed 's/^/    | /' "$TMPD/$name.out"
    if [ "$rc" -ne 0 ] || grep -q "Assertion" "$TMPD/$name.err"; then
        { grep -v "Broken pipe\|Connection reset" "$TMPD/$name.err" || true; } |
            tail -8 | sed 's/^/    ! /' >&2
        fail "$name: the server did not survive clients that hang up (exit $rc)"
    fi
    ok "$name: server survived and every page is intact"
}

# The run command reads its arguments from $ABUSE.
export TMPD PYTHON
sock=$TMPD/nbd.sock
note "Unix socket: 40 clients, 4 reads of 256 KiB each, closed unread"
run_case unix -U "$sock" -- unix "$sock" 40 4 262144

port=$(free_port)
note "TCP 127.0.0.1:$port: 12 clients, 8 reads of 32 MiB each, closed unread"
run_case tcp -i 127.0.0.1 -p "$port" -- tcp "127.0.0.1:$port" 12 8 33554432

note "passed in $SECONDS s"
