#!/usr/bin/env bash
# state= and state-name= (docs/persistence.md): the plugin keeps its store
# in a trueno-hold's memfd.  Pages written through NBD read back after the
# server is killed with SIGKILL and started again on the same state, with
# the same stats (pages_stored, mem_used_total, and the cumulative
# writes and pages_written, which the state keeps), and after an orderly
# stop; the same with a holder started --empty (the server makes the
# state and hands it over) and with an inherited fd:N.  A state started
# with another size= or algorithm= is refused naming the parameter, and
# is still whole afterwards; a second server on a served state is
# refused; a damaged state is refused, never replaced
# by an empty store; bad state parameters are refused by name; --help
# and --dump-plugin show state=.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_nbd_python
require_cmd nbdkit

B=${abs_top_builddir:-$test_dir/..}
HOLD=$B/trueno-hold
[ -x "$HOLD" ] || fail "trueno-hold not built: $HOLD"

S=$TMPD/hold/s.sock
N=$TMPD/n.sock

# hold ARGS...: a holder of state t on $S; sets hold_pid.
hold() {
    tmo 10 "$HOLD" --daemon --pidfile "$TMPD/hold.pid" "$@" "$S" t ||
        fail "trueno-hold $* did not start"
    hold_pid=$(cat "$TMPD/hold.pid")
    exit_pids+=("$hold_pid")
}
unhold() {
    kill "$hold_pid"
    while kill -0 "$hold_pid" 2>/dev/null; do sleep 0.01; done
}

# serve ARGS...: nbdkit in the background on $N with the plugin and ARGS;
# sets server_pid.
serve() {
    rm -f "$TMPD/stats.json"
    nbdkit_serve "$N" "$TMPD/nbdkit.pid" "$TMPD/nbdkit.log" "$TRUENO_PLUGIN" "$@"
    server_pid=$served_pid
}
# stop SIGNAL: stops the server and waits until it is gone.
stop() {
    kill "-$1" "$server_pid"
    while kill -0 "$server_pid" 2>/dev/null; do sleep 0.01; done
}

# io write|verify SEED: 600 pages at random places of the 16 MiB device,
# a third of them same-filled, the rest compressible text; verify reads
# every page of the device: the written ones and zeros elsewhere.
cat >"$TMPD/io.py" <<'EOF2'
import random, sys, nbd
sock, what, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
P, N = 4096, 4096
rng = random.Random(seed)
want = {}
for i in rng.sample(range(N), 600):
    if rng.random() < 0.3:
        want[i] = bytes([i & 255]) * P
    else:
        line = ("page %d of seed %d\n" % (i, seed)).encode()
        want[i] = (line * (P // len(line) + 1))[:P]
h = nbd.NBD()
h.connect_unix(sock)
if what == "write":
    for i, d in want.items():
        h.pwrite(d, i * P)
else:
    bad = 0
    for i in range(0, N, 256):
        got = h.pread(256 * P, i * P)
        for j in range(256):
            if got[j * P:(j + 1) * P] != want.get(i + j, bytes(P)):
                bad += 1
    if bad:
        sys.exit("%d pages differ" % bad)
h.shutdown()
EOF2
io() { tmo 30 "$PYTHON" "$TMPD/io.py" "$N" "$@"; }

# stat KEY: KEY of the stats file, once the housekeeping thread wrote it.
stat() {
    local i
    for i in $(seq 300); do
        [ -s "$TMPD/stats.json" ] && break
        sleep 0.01
    done
    "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
        "$TMPD/stats.json" "$1"
}
# figures: pages_stored, mem_used_total, writes and pages_written, after
# the writes reached the file.
figures() {
    sleep 1.2
    echo "$(stat pages_stored) $(stat mem_used_total) $(stat writes) $(stat pages_written)"
}

ST=(size=16M state="$S" state-name=t stats="$TMPD/stats.json")

# 1. A holder's new memfd: a new store, kept across SIGKILL and SIGTERM.
hold
serve "${ST[@]}"
io write 1
before=$(figures)
stop KILL
serve "${ST[@]}"
io verify 1 || fail "holder: pages lost across a SIGKILL"
after=$(figures)
[ "$before" = "$after" ] ||
    fail "holder: pages_stored, mem_used_total, writes, pages_written $before before the kill, $after after"
stop TERM
serve "${ST[@]}"
io verify 1 || fail "holder: pages lost across an orderly stop"
# A second server on the state while this one runs: refused.
expect_err "state=$S: state 't' is served by another server" \
    nbdkit -f -U "$TMPD/second.sock" "$TRUENO_PLUGIN" "${ST[@]}"
ok "holder: 600 pages read back after SIGKILL and after SIGTERM; pages_stored, mem_used_total, writes, pages_written $before both times"

# 2. Another size= or algorithm=: refused by name, the state left whole.
stop KILL
expect_err "size: 33554432 differs from the state's 16777216" \
    nbdkit -f -U "$N" "$TRUENO_PLUGIN" size=32M state="$S" state-name=t
expect_err "algorithm:" \
    nbdkit -f -U "$N" "$TRUENO_PLUGIN" size=16M algorithm=zstd state="$S" state-name=t
serve "${ST[@]}"
io verify 1 || fail "refusals: the state was changed by a refused start"
ok "refused starts left the state whole"

# 3. Damaged: one byte of the state's header flipped through the holder's
# descriptor; refused, and no empty store served in its place.
stop TERM
memfd=$(for f in /proc/"$hold_pid"/fd/*; do
    case "$(readlink "$f")" in *trueno-state:t*) echo "$f" ;; esac
done)
[ -n "$memfd" ] || fail "no memfd trueno-state:t among the holder's descriptors"
"$PYTHON" - "$memfd" <<'EOF2'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
b = os.pread(fd, 1, 40)
os.pwrite(fd, bytes([b[0] ^ 0x10]), 40)
EOF2
rm -f "$N"
expect_err "state=$S: cannot serve state 't': state: header damaged" \
    nbdkit -f -U "$N" "$TRUENO_PLUGIN" "${ST[@]}"
[ ! -S "$N" ] || fail "damaged: a socket was left, was something served?"
unhold

# 4. trueno-hold --empty: the server makes the state and gives it.
hold --empty
serve "${ST[@]}"
io write 2
stop KILL
serve "${ST[@]}"
io verify 2 || fail "--empty: pages lost across a SIGKILL"
stop TERM
unhold
ok "trueno-hold --empty: the server's new state kept across a SIGKILL"

# 5. fd:N, inherited: the state outlives the server in its parent.
"$PYTHON" - "$TRUENO_PLUGIN" "$N" "$TMPD/io.py" <<'EOF2' || fail "fd:N: $?"
import os, subprocess, sys, time
plugin, sock, io = sys.argv[1:]
fd = os.memfd_create("trueno-state:t", 0)
def serve():
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen(["nbdkit", "-f", "-U", sock, plugin, "size=16M",
                          "state=fd:%d" % fd], pass_fds=[fd])
    while not os.path.exists(sock):
        time.sleep(0.01)
    return p
for step, sig in (("write", 9), ("verify", 15), ("verify", 9)):
    p = serve()
    subprocess.run([sys.executable, io, sock, step, "3"], check=True)
    p.send_signal(sig)
    p.wait()
EOF2
ok "state=fd:N: kept across SIGKILL and SIGTERM"

# 6. Parameters.
nbdkit "$TRUENO_PLUGIN" --dump-plugin | grep -qx trueno_state=socket,fd,systemd ||
    fail "--dump-plugin lacks trueno_state=socket,fd,systemd"
nbdkit "$TRUENO_PLUGIN" --help | grep -q '^state=<SOCKET>|fd:<N>|systemd' ||
    fail "--help lacks state="
expect_err "state-name: required with state=$S" \
    nbdkit -f -U "$N" "$TRUENO_PLUGIN" size=16M state="$S"
expect_err "state-name: only applies with state=" \
    nbdkit -f -U "$N" "$TRUENO_PLUGIN" size=16M state-name=t
expect_err "state-name: 'a/b'" \
    nbdkit -f -U "$N" "$TRUENO_PLUGIN" size=16M state="$S" state-name=a/b
expect_err "state: ''" \
    nbdkit -f -U "$N" "$TRUENO_PLUGIN" size=16M state= state-name=t
expect_err "holder socket $TMPD/none/s.sock" \
    nbdkit -f -U "$N" "$TRUENO_PLUGIN" size=16M state="$TMPD/none/s.sock" state-name=t
ok "done in $(elapsed) s"
