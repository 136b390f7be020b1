#!/usr/bin/env bash
# trueno-nbd supervise without a kernel device (--no-attach: serves on its
# socket, attaches nothing), driving the real plugin and nbdkit:
#   - bad arguments are refused, each message naming the parameter;
#   - a server that never comes up: the start fails and says so;
#   - under load from tests/restart-client.py (random 4 KiB writes and
#     reads, 8 in flight, every acknowledged write remembered), the server
#     child is killed with SIGKILL 20 times: the supervisor starts it again
#     on the state it keeps (a memfd, state=fd:N) and the client, which
#     reconnects and reads the whole store back each time, finds 0 lost;
#   - 5 upgrades (SIGHUP) under the same load: 0 lost;
#   - a server that keeps failing: the supervisor gives up after
#     --max-fails, says so, keeps the state, and a SIGHUP once the server
#     is fixed serves it again with every byte.
# The kernel half (the device reconnected) is the VM rig's swap-restart.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_nbd_python
require_cmd nbdkit
tn=${abs_top_builddir:-$test_dir/..}/trueno-nbd
[ -x "$tn" ] || fail "no $tn"

sup_pid=
client_pid=
cleanup_sup() {
    [ -z "$client_pid" ] || kill -9 "$client_pid" 2>/dev/null || true
    [ -z "$sup_pid" ] || kill -TERM "$sup_pid" 2>/dev/null || true
    sleep 0.2
    pkill_children
    cleanup
}
# Only what this test started: the supervisor's children, by parent pid.
pkill_children() {
    local p
    [ -n "$sup_pid" ] || return 0
    for p in $(ps -o pid= --ppid "$sup_pid" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    kill -9 "$sup_pid" 2>/dev/null || true
}
trap cleanup_sup EXIT

# --- refusals -------------------------------------------------------------
s=$TMPD/r.sock
srv=(-- nbdkit -f -U "$s" "$TRUENO_PLUGIN" size=8M)
expect_err "--socket" "$tn" supervise --no-attach --pidfile "$TMPD/p" "${srv[@]}"
expect_err "--socket" "$tn" supervise --no-attach --socket rel.sock --pidfile "$TMPD/p" "${srv[@]}"
expect_err "after '--'" "$tn" supervise --no-attach --socket "$s" --pidfile "$TMPD/p"
expect_err "--pidfile" "$tn" supervise --no-attach --socket "$s" "${srv[@]}"
expect_err "--connections: invalid value '0'" "$tn" supervise --no-attach --socket "$s" \
    --pidfile "$TMPD/p" --connections 0 "${srv[@]}"
expect_err "--connections: invalid value '17'" "$tn" supervise --no-attach --socket "$s" \
    --pidfile "$TMPD/p" --connections 17 "${srv[@]}"
expect_err "--timeout: required" "$tn" supervise --socket "$s" --pidfile "$TMPD/p" \
    --dead-conn-timeout 30 "${srv[@]}"
expect_err "--dead-conn-timeout: required" "$tn" supervise --socket "$s" --pidfile "$TMPD/p" \
    --timeout 5 "${srv[@]}"
expect_err "--dead-conn-timeout: invalid value 'x'" "$tn" supervise --socket "$s" \
    --pidfile "$TMPD/p" --timeout 5 --dead-conn-timeout x "${srv[@]}"
expect_err "--device: not with --no-attach" "$tn" supervise --no-attach --socket "$s" \
    --pidfile "$TMPD/p" --device /dev/nbd0 "${srv[@]}"
expect_err "--state-fd: the descriptor is not open" "$tn" supervise --no-attach --socket "$s" \
    --pidfile "$TMPD/p" --state-fd 99 "${srv[@]}"
expect_err "--max-fails: invalid value '0'" "$tn" supervise --no-attach --socket "$s" \
    --pidfile "$TMPD/p" --max-fails 0 "${srv[@]}"
expect_err "unknown option '--bogus'" "$tn" supervise --no-attach --socket "$s" \
    --pidfile "$TMPD/p" --bogus 1 "${srv[@]}"
expect_err "--backend: an identity" "$tn" supervise --no-attach --socket "$s" \
    --pidfile "$TMPD/p" --backend "" "${srv[@]}"
# A server that exits at once: the start fails, naming the socket.
expect_err "did not come up on $s" tmo 30 "$tn" supervise --no-attach --socket "$s" \
    --pidfile "$TMPD/p" --log "$TMPD/r.log" -- false
[ ! -e "$TMPD/p" ] || fail "a failed start left its pid file"

# --- kills and upgrades under load ----------------------------------------
# start_sup ARGS... -- SERVER...: the supervisor, daemonised in $d on
# $sock; sets sup_pid.
start_sup() {
    tmo 30 "$tn" supervise --no-attach --socket "$sock" --pidfile "$d/sup.pid" \
        --log "$d/log" "$@" >/dev/null || { cat "$d/log" >&2; fail "supervise did not start"; }
    sup_pid=$(cat "$d/sup.pid")
}
# wait_client WHAT N: the client said "WHAT" N times (up: connected).
wait_client() {
    local i n
    for i in $(seq 2000); do
        n=$(grep -c "^$1 " "$d/status" || true)
        [ "$n" -ge "$2" ] && return 0
        kill -0 "$client_pid" 2>/dev/null || { cat "$d/client.err" >&2; fail "the client exited"; }
        sleep 0.01
    done
    fail "the client did not say '$1 $2' within 20 s"
}
# count WHAT: lines of the supervisor's log with WHAT.
count() { grep -c -- "$1" "$d/log" || true; }
# wait_log WHAT N: the log has N lines with WHAT.
wait_log() {
    local i
    for i in $(seq 2000); do
        [ "$(count "$1")" -ge "$2" ] && return 0
        sleep 0.01
    done
    tail -5 "$d/log" >&2
    fail "the log did not say '$1' $2 times within 20 s"
}
field() { "$PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$result" "$1"; }

# load NAME KILLS UPGRADES SERVER...: the client on a supervised SERVER
# killed KILLS times, then upgraded UPGRADES times; sets rc and result
# and leaves the supervisor stopped.  --fast 0: kills this close together
# are not the crash loop --max-fails is for (the last part).
load() {
    local name=$1 kills=$2 upgrades=$3 round=0 i
    shift 3
    d=$TMPD/$name
    mkdir -p "$d"
    sock=$d/nbd.sock
    start_sup --fast 0 -- "$@"
    lck=$(awk '/^VmLck:/{print $2}' "/proc/$sup_pid/status")
    : >"$d/status"
    "$PYTHON" "$test_dir/restart-client.py" --socket "$sock" --stop "$d/stop" \
        --status "$d/status" --seed "$RANDOM" >"$d/client.out" 2>"$d/client.err" &
    client_pid=$!
    for i in $(seq "$kills"); do
        round=$((round + 1))
        wait_client up "$round"
        sleep "$(printf '0.%03d' $((RANDOM % 150)))"
        kill -9 "$(cat "$d/srv.pid")" || fail "$name: kill $i: no server"
        wait_log "restart: server" "$i"
    done
    for i in $(seq "$upgrades"); do
        round=$((round + 1))
        wait_client up "$round"
        sleep "0.$((RANDOM % 9 + 1))"
        kill -HUP "$sup_pid"
        wait_log "upgrade done" "$i"
    done
    wait_client up $((round + 1))
    : >"$d/stop"
    rc=0
    tmo 60 bash -c "while kill -0 $client_pid 2>/dev/null; do sleep 0.05; done"
    wait "$client_pid" || rc=$?
    client_pid=
    result=$(tail -1 "$d/client.out")
    note "$name: client: $result"
    kill -TERM "$sup_pid"
    tmo 20 bash -c "while kill -0 $sup_pid 2>/dev/null; do sleep 0.05; done"
    grep -q "stopped; the state is dropped" "$d/log" || fail "$name: SIGTERM: no 'stopped' in the log"
    [ ! -e "$d/sup.pid" ] || fail "$name: SIGTERM left the pid file"
    sup_pid=
}

kills=20 upgrades=5
load state $kills $upgrades nbdkit -f -U "$TMPD/state/nbd.sock" -P "$TMPD/state/srv.pid" \
    "$TRUENO_PLUGIN" size=8M
[ "${lck:-0}" -gt 0 ] || fail "the supervisor's memory is not locked (VmLck $lck kB)"
[ "$rc" -eq 0 ] && [ "$(field lost)" -eq 0 ] || {
    sed 's/^/    ! /' "$d/client.err" >&2
    fail "$(field lost) blocks lost across $kills kills and $upgrades upgrades (client exit $rc)"
}
[ "$(field breaks)" -ge $((kills + upgrades)) ] ||
    fail "$kills kills and $upgrades upgrades, but the client saw $(field breaks) breaks"
ready=$(sed -n 's/.*restart: server [0-9]* ready \([0-9]*\) ms.*/\1/p' "$d/log" | sort -n)
ok "$kills kills, $upgrades upgrades: $(field breaks) breaks, $(field writes_acked) writes acknowledged, 0 lost; supervisor VmLck $lck kB; kill -> server ready (ms) median $(echo "$ready" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') max $(echo "$ready" | tail -1); SIGTERM stopped both"

# The negative control: a server that drops the state= it is given
# (bash -c without "$@") starts empty after each kill; the client must
# say so.
load nostate 3 0 bash -c 'exec nbdkit -f -U "$0/nbd.sock" -P "$0/srv.pid" "$1" size=8M' \
    "$TMPD/nostate" "$TRUENO_PLUGIN"
[ "$rc" -eq 3 ] && [ "$(field lost)" -gt 0 ] ||
    fail "nostate: a server without the state lost nothing across 3 kills"
ok "nostate (negative control): without state=fd:N the client found $(field lost) blocks lost"

# --- giving up, and the state kept ----------------------------------------
d=$TMPD/giveup
mkdir -p "$d"
sock=$d/nbd.sock
# The server comes up once; each later start fails while $d/broken exists.
start_sup --max-fails 3 -- bash -c '[ ! -e "$0/broken" ] || exit 1; touch "$0/broken"
    exec nbdkit -f -U "$0/nbd.sock" -P "$0/srv.pid" "$1" size=8M "$2"' "$d" "$TRUENO_PLUGIN"
"$PYTHON" - "$sock" <<'EOF' || fail "write before the kill failed"
import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
h.pwrite(b"kept" * 1024, 4096 * 7); h.flush(); h.shutdown()
EOF
kill -9 "$(cat "$d/srv.pid")"
wait_log "GIVING UP" 1
[ "$(count "before it listened")" -eq 3 ] ||
    fail "$(count "before it listened") failed starts, not --max-fails 3"
kill -0 "$sup_pid" || fail "the supervisor exited when it gave up (the state with it)"
ok "gave up after 3 fast failures, loudly: $(grep "GIVING UP" "$d/log" | sed 's/.*GIVING/GIVING/')"
rm -f "$d/broken"
kill -HUP "$sup_pid"
wait_log "upgrade done" 1
"$PYTHON" - "$sock" <<'EOF' || fail "the state was not kept across giving up"
import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
assert h.pread(4096, 4096 * 7) == b"kept" * 1024, "block 7 differs"
h.shutdown()
EOF
ok "SIGHUP after the fix: served again, the block written before the kill intact"
note "passed in $(elapsed) s"
