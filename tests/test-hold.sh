#!/usr/bin/env bash
# trueno-hold and common/statefd.h, with tests/statefd-client standing in
# for a server: a state (memfd) handed to a client that writes into its
# mapping and is killed with SIGKILL reaches the next client with the
# bytes; requests by the wrong name, from another uid, through a symbolic
# link or a directory others can enter, and of another protocol version
# are refused; a stale socket is replaced, a live one is not; a state
# given by a server (put) is kept; systemd's descriptor store (FDSTORE=1
# to a fake $NOTIFY_SOCKET) and LISTEN_FDS/LISTEN_FDNAMES at restart.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_python

B=${abs_top_builddir:-$test_dir/..}
HOLD=$B/trueno-hold
CLIENT=$B/tests/statefd-client
[ -x "$HOLD" ] || fail "trueno-hold not built: $HOLD"
[ -x "$CLIENT" ] || fail "statefd-client not built: $CLIENT (make check builds it)"

# hold PIDFILE ARGS...: a holder in the background, listening on return.
hold() {
    local pidfile=$1; shift
    tmo 10 "$HOLD" --daemon --pidfile "$pidfile" "$@" ||
        fail "trueno-hold $* did not start"
    exit_pids+=("$(cat "$pidfile")")
}

# expect_out WANT CMD...: CMD succeeds and its stdout contains WANT.
expect_out() {
    local want=$1 out; shift
    out=$("$@") || fail "$*: failed"
    case "$out" in *"$want"*) ;; *) fail "$*: expected '$want' in: $out" ;; esac
    ok "$* -> $want"
}

run=$TMPD/run
sock=$run/swap.sock

# --- a state survives the client that wrote it -----------------------------
hold "$TMPD/h1.pid" --size 1M "$sock" swapA
[ "$(stat -c %a "$run")" = 700 ] || fail "socket directory not 0700"
case "$(stat -c %a "$sock")" in ?00) ;; *) fail "socket open to others: $(stat -c %a "$sock")" ;; esac
"$CLIENT" get "$sock" swapA write 8192 "acknowledged-before-the-kill" \
    >"$TMPD/a.out" &
apid=$!
for _ in $(seq 100); do grep -q written "$TMPD/a.out" && break; sleep 0.05; done
grep -q written "$TMPD/a.out" || fail "first client did not write"
kill -9 "$apid"
wait "$apid" 2>/dev/null || true
out=$("$CLIENT" get "$sock" swapA read 8192 28) || fail "second client failed"
ino_a=$(sed -n 's/^ino=\([0-9]*\).*/\1/p' "$TMPD/a.out")
ino_b=$(echo "$out" | sed -n 's/^ino=\([0-9]*\).*/\1/p')
[ -n "$ino_a" ] && [ "$ino_a" = "$ino_b" ] ||
    fail "not the same state: inode '$ino_a' then '$ino_b'"
echo "$out" | grep -qx "acknowledged-before-the-kill" ||
    fail "the bytes of the killed client are gone: $out"
ok "client killed with SIGKILL after writing; the next one got the same memfd (inode $ino_a) and its bytes"

# --- refusals --------------------------------------------------------------
expect_err "this holder keeps state 'swapA', not 'swapB'" \
    "$CLIENT" get "$sock" swapB read 0 1
expect_err "state name 'a b'" "$CLIENT" get "$sock" "a b" read 0 1
expect_err "a holder listens there already" "$HOLD" "$sock" swapA
ln -s "$sock" "$TMPD/link.sock"
expect_err "a symbolic link, not followed" \
    "$CLIENT" get "$TMPD/link.sock" swapA read 0 1
ln -s "$run" "$TMPD/linkdir"
expect_err "is a symbolic link: not followed" "$HOLD" "$TMPD/linkdir/x.sock" swapA
mkdir -m 755 "$TMPD/wide"
expect_err "has mode 0755: the holder's directory must be 0700" \
    "$HOLD" "$TMPD/wide/x.sock" swapA
: >"$TMPD/wide/file"
chmod 700 "$TMPD/wide"
expect_err "exists and is not a socket" "$HOLD" "$TMPD/wide/file" swapA
expect_err "'systemd', 'fd:N' or the path" "$CLIENT" get nowhere swapA read 0 1

# A request of another protocol version gets the holder's version back.
"$PYTHON" - "$sock" <<'EOF' || fail "protocol version check"
import socket, struct, sys
def ask(req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    s.send(req)
    rep = s.recv(4096)
    assert len(rep) == 256 and rep[:8] == b"TRUENOHR", rep
    ver, status = struct.unpack("=Ii", rep[8:16])
    return ver, status, rep[16:].split(b"\0")[0].decode()

# A later version's request, of the same size or longer: its version is
# answered.
for extra in (b"", b"x" * 200):
    ver, status, msg = ask(b"TRUENOHQ" + struct.pack("=II", 2, 1) +
                           b"swapA".ljust(64, b"\0") + extra)
    assert ver == 1 and status < 0 and "speaks version 1" in msg, (ver, status, msg)
    print("test-hold: ok: version 2 asked (%d bytes) -> %s" % (80 + len(extra), msg))
ver, status, msg = ask(b"TRUENOHQ" + struct.pack("=II", 1, 1) + b"swapA")
assert status < 0 and "a request of 21 bytes" in msg, msg
print("test-hold: ok: version 1, 21 bytes ->", msg)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(b"GET swapA please")
rep = s.recv(4096)
assert struct.unpack("=i", rep[12:16])[0] < 0, rep
print("test-hold: ok: a short request ->", rep[16:].split(b"\0")[0].decode())
EOF

# --- another uid ------------------------------------------------------------
# The 0700 directory keeps other users from the socket; the holder's own
# check (SO_PEERCRED) is for when it does not: reach the same socket
# through a hard link in a directory they can enter, the socket's mode
# widened (connecting needs write access to it).
uid_checks() {
    require_cmd setpriv
    nobody=$(id -u nobody 2>/dev/null) || fail "no user 'nobody' for the uid checks"
    nogroup=$(id -g nobody)
    asnobody() { setpriv --reuid="$nobody" --regid="$nogroup" --clear-groups "$@"; }
    chmod 711 "$TMPD"
    mkdir -m 755 "$TMPD/pub"
    cp "$CLIENT" "$HOLD" "$TMPD/pub/"
    ln "$sock" "$TMPD/pub/swap.sock"
    chmod 777 "$TMPD/pub/swap.sock"
    asnobody "$TMPD/pub/statefd-client" get "$run/swap.sock" swapA read 0 1 \
        2>"$TMPD/nobody.err" && fail "uid $nobody went through the 0700 directory"
    grep -q "Permission denied" "$TMPD/nobody.err" ||
        fail "uid $nobody, 0700 directory: $(cat "$TMPD/nobody.err")"
    ok "uid $nobody cannot reach the socket in the 0700 directory"
    expect_err "uid $nobody may not ask this holder" \
        asnobody "$TMPD/pub/statefd-client" get "$TMPD/pub/swap.sock" swapA read 0 1
    # And a server does not take a state from a holder of another uid.
    install -d -m 700 -o "$nobody" -g "$nogroup" "$TMPD/pub/nh"
    asnobody "$TMPD/pub/trueno-hold" --daemon --pidfile "$TMPD/pub/nh/pid" \
        --size 4096 "$TMPD/pub/nh/h.sock" swapA || fail "holder as uid $nobody"
    exit_pids+=("$(cat "$TMPD/pub/nh/pid")")
    expect_err "belongs to uid $nobody, not to uid 0 or root: not trusted" \
        "$CLIENT" get "$TMPD/pub/nh/h.sock" swapA read 0 1
    ln "$TMPD/pub/nh/h.sock" "$TMPD/pub/nh.sock"
    expect_err "the holder runs as uid $nobody, not as uid 0 or root" \
        "$CLIENT" get "$TMPD/pub/nh.sock" swapA read 0 1
}
if [ "$(id -u)" -eq 0 ]; then
    uid_checks
else
    # Becoming another user needs root; the rest runs as any user.
    note "SKIPPED the other-uid checks: not root (setpriv cannot become nobody)"
fi

# --- a stale socket, and a state a server gives -----------------------------
kill -9 "$(cat "$TMPD/h1.pid")"
sleep 0.1
expect_err "Connection refused" "$CLIENT" get "$sock" swapA read 0 1
hold "$TMPD/h2.pid" --empty "$sock" swapA
ok "a holder took the place of one killed with SIGKILL"
expect_err "state 'swapA' is not held yet" "$CLIENT" get "$sock" swapA read 0 1
expect_out put "$CLIENT" put "$sock" swapA 65536 "made-by-the-server"
expect_out "made-by-the-server" "$CLIENT" get "$sock" swapA read 0 18
expect_err "state 'swapA' is held already (65536 bytes)" \
    "$CLIENT" put "$sock" swapA 4096 "another"
kill "$(cat "$TMPD/h2.pid")"
for _ in $(seq 50); do [ -e "$sock" ] || break; sleep 0.05; done
[ ! -e "$sock" ] || fail "holder stopped with SIGTERM left its socket"
ok "SIGTERM: holder stopped, socket removed"

# --- systemd: FDSTORE and LISTEN_FDS ------------------------------------------
# statefd-client stores a memfd with FDSTORE=1 into a fake systemd, exits
# (the service died); "systemd" starts it again with the descriptor in
# LISTEN_FDS, as it does for a unit with FileDescriptorStoreMax=.
# A file that is no memfd: one not on tmpfs (where it would pass as one).
disk=
for f in "$test_dir/test-hold.sh" /etc/passwd; do
    case $(stat -f -c %T "$f") in tmpfs|ramfs) ;; *) disk=$f; break ;; esac
done
[ -n "$disk" ] || note "SKIPPED the 'not a memfd' checks: no file here off tmpfs"
"$PYTHON" - "$CLIENT" "$TMPD" "$disk" <<'EOF' || fail "systemd descriptor store"
import array, fcntl, os, socket, sys
client, tmpd, disk_file = sys.argv[1:4]

def ok(what):
    print("test-hold: ok:", what)

def recv_store(s):
    msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(4 * 4))
    fds = array.array("i")
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % 4])
    return msg, list(fds)

def start(fds, names, args, pid_ok=True, extra_env=None):
    """A child with fds at 3.. and LISTEN_* set, as systemd starts a
    service; returns (exit status, output)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            # Out of the way first: a source may sit where another goes.
            high = [fcntl.fcntl(f, fcntl.F_DUPFD, 100) for f in fds]
            for i, f in enumerate(high):
                os.dup2(f, 3 + i)
            os.dup2(w, 1)
            os.dup2(w, 2)
            env = dict(os.environ)
            for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
                env.pop(k, None)
            if fds:
                env["LISTEN_FDS"] = str(len(fds))
                env["LISTEN_PID"] = str(os.getpid() if pid_ok else 1)
                if names is not None:
                    env["LISTEN_FDNAMES"] = names
            env.update(extra_env or {})
            os.execve(args[0], args, env)
        finally:
            os._exit(127)
    os.close(w)
    out = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        out += b
    os.close(r)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st), out.decode()

def memfd(text):
    fd = os.memfd_create("other")
    os.ftruncate(fd, 4096)
    os.pwrite(fd, text, 0)
    return fd

for kind in ("path", "abstract"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if kind == "path":
        addr = os.path.join(tmpd, "notify")
        s.bind(addr)
        ns = addr
    else:
        s.bind("\0trueno-test-hold-%d" % os.getpid())
        ns = "@trueno-test-hold-%d" % os.getpid()
    rc, out = start([], None, [client, "fdstore", "swapA", "65536",
                               "stored-state"], extra_env={"NOTIFY_SOCKET": ns})
    assert rc == 0, out
    msg, fds = recv_store(s)
    assert msg == b"FDSTORE=1\nFDNAME=swapA\n", msg
    assert len(fds) == 1, fds
    fd = fds[0]
    assert os.readlink("/proc/self/fd/%d" % fd).startswith("/memfd:"), \
        os.readlink("/proc/self/fd/%d" % fd)
    assert os.fstat(fd).st_size == 65536 and os.pread(fd, 12, 0) == b"stored-state"
    ok("FDSTORE over a %s NOTIFY_SOCKET: %r with a 64 KiB memfd" % (kind, msg))
    s.close()

# The restart: the state at 4, another descriptor at 3.
other = memfd(b"other")
rc, out = start([other, fd], "other:swapA",
                [client, "get", "systemd", "swapA", "read", "0", "12"])
assert rc == 0 and "stored-state" in out, out
ok("LISTEN_FDS=2 LISTEN_FDNAMES=other:swapA: the state came back at fd 4")

def refused(fds, names, want, pid_ok=True):
    rc, out = start(fds, names, [client, "get", "systemd", "swapA", "read",
                                 "0", "1"], pid_ok)
    assert rc == 1 and want in out, (rc, out)
    ok("LISTEN_FDNAMES=%s%s -> %s" % (names, "" if pid_ok else ", LISTEN_PID=1",
                                      want))

refused([other], "other", "none of the 1 descriptors systemd passed is named swapA")
refused([fd], "swapA", "is not this process", pid_ok=False)
refused([fd], "swapA:x", "has 2 names for LISTEN_FDS=1")
refused([], None, "LISTEN_FDS is not set")
if disk_file:
    disk = os.open(disk_file, os.O_RDONLY)
    refused([disk], "swapA", "descriptor 3 from systemd is not a memfd")
rc, out = start([], None, [client, "fdstore", "swapA", "4096", "x"])
assert rc == 1 and "NOTIFY_SOCKET is not set" in out, out
ok("FDSTORE without NOTIFY_SOCKET -> refused, saying so")

# fd:N, inherited without systemd.
rc, out = start([other, fd], None, [client, "get", "fd:4", "any", "read", "0", "12"])
assert rc == 0 and "stored-state" in out, out
ok("fd:4 inherited: the state")
if disk_file:
    rc, out = start([disk], None, [client, "get", "fd:3", "any", "read", "0", "1"])
    assert rc == 1 and "fd:3: not a memfd" in out, out
    ok("fd:3 on a disk file -> not a memfd")
EOF

note "passed in $SECONDS s"
