#!/usr/bin/env bash
# The kill harness of issue 19, for any NBD server on a Unix socket: while
# tests/restart-client.py writes and reads random runs of 4 KiB blocks
# (8 in flight) and remembers every acknowledged write, the server is
# killed with SIGKILL at random instants and started again with the same
# command; after each restart the client reconnects and reads the whole
# device back: every acknowledged write must be there (a write in flight
# at the kill may read old or new), and nothing else.
#
# In make check, with 8 MiB devices:
#   - `nbdkit file` on a file in $TMPD, killed 50 times: its data outlives
#     its process, so 0 lost is required;
#   - the same server upgraded 20 times: the old one's socket is
#     removed, the client (SIGUSR1) finishes its requests and
#     disconnects, the old server is stopped with SIGTERM and exits, a
#     new one starts and the client reconnects: the order a store in one
#     memfd needs, as two servers must never serve it at once; no
#     request may fail;
#   - `nbdkit file`, killed 3 times, one 4 KiB block of its file
#     overwritten while it is down: the client must find that block;
#   - the same with the file as it was at the 1st kill put back at the
#     2nd: the client must find blocks back to an older content;
#   - `nbdkit memory`, killed 3 times, the negative control: it loses
#     everything, and the test requires the client to say so;
#   - the trueno plugin with its state in a trueno-hold (state=),
#     killed 50 times and then upgraded 20 times on the same state:
#     0 lost, every handover clean;
#   - the trueno plugin without state=, killed 3 times, the second
#     negative control: its store dies with its process.
#
# Any other server: set TRUENO_RESTART_SERVER to its command, one command
# that stays in the foreground (it is run with `exec`, so its PID is the
# server's), serving on "$sock" (set by the harness); $TMPD is a scratch
# directory that outlives the server.  Only that server is then run, and
# 0 lost is required.  The persistent store, for example:
#
#   trueno-hold --daemon --pidfile "$d/hold.pid" "$d/hold/s.sock" t
#   TRUENO_RESTART_SERVER='nbdkit -f -U "$sock" ./trueno.so size=8M \
#       state='"$d"'/hold/s.sock state-name=t' \
#     tests/test-restart.sh
#
# TRUENO_RESTART_KILLS (default 50) and TRUENO_RESTART_MODE (kill or
# upgrade, default kill) go with it.  The client's figures (reconnect and verification times) are
# printed as JSON.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_nbd_python
require_cmd nbdkit

server_pid=
client_pid=
cleanup_restart() {
    [ -z "$server_pid" ] || kill -9 "$server_pid" 2>/dev/null || true
    [ -z "$client_pid" ] || kill -9 "$client_pid" 2>/dev/null || true
    cleanup
}
trap cleanup_restart EXIT

# start_server DIR SOCK: the command, in the background, listening on SOCK
# on return; sets server_pid.
start_server() {
    local dir=$1 s=$2 i
    rm -f "$s"
    sock=$s bash -c "exec $server_cmd" >>"$dir/server.log" 2>&1 &
    server_pid=$!
    for i in $(seq 1000); do
        [ -S "$s" ] && return 0
        kill -0 "$server_pid" 2>/dev/null ||
            { tail -5 "$dir/server.log" >&2; fail "$name: the server exited at start"; }
        sleep 0.005
    done
    fail "$name: the server did not listen on $s within 5 s"
}

# wait_client DIR WHAT N: until the client has said "WHAT" N times (up:
# connected, left: disconnected for a handover).
wait_client() {
    local i n
    for i in $(seq 2000); do
        n=$(grep -c "^$2 " "$1/status" || true)
        [ "$n" -ge "$3" ] && return 0
        kill -0 "$client_pid" 2>/dev/null || {
            cat "$1/client.err" >&2
            fail "$name: the client exited (waiting for '$2 $3')"
        }
        sleep 0.005
    done
    fail "$name: the client did not say '$2 $3' within 10 s"
}

# harness NAME MODE ROUNDS COMMAND: runs the client against COMMAND's
# server, killed (MODE kill) or upgraded (MODE upgrade) ROUNDS times;
# sets rc (the client's exit status) and result (its JSON line).
harness() {
    name=$1
    local mode=$2 rounds=$3 dir=$TMPD/$1 i old t0 ms
    server_cmd=$4
    mkdir -p "$dir"
    local s=$dir/nbd.sock
    t0=$(date +%s.%N)
    start_server "$dir" "$s"
    : >"$dir/status"
    "$PYTHON" "$test_dir/restart-client.py" --socket "$s" \
        --stop "$dir/stop" --status "$dir/status" --seed "$RANDOM" \
        >"$dir/client.out" 2>"$dir/client.err" &
    client_pid=$!
    for i in $(seq "$rounds"); do
        wait_client "$dir" up "$i"
        # A random instant: in the verification after the reconnect (it
        # takes some 20 ms), or under random I/O.
        ms=$((${min_ms:-0} + RANDOM % 150))
        sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
        if [ "$mode" = kill ]; then
            kill -9 "$server_pid"
            wait "$server_pid" 2>/dev/null || true
            [ -z "${while_down:-}" ] || eval "$while_down"
            start_server "$dir" "$s"
        else
            # The old server's socket goes, the client finishes its
            # requests and leaves, the old server is stopped (SIGTERM)
            # and exits, then the new one starts: two never serve the
            # same state at once (docs/persistence.md).
            old=$server_pid
            rm -f "$s"
            kill -USR1 "$client_pid"
            wait_client "$dir" left "$i"
            kill -TERM "$old"
            tmo 10 bash -c "while kill -0 $old 2>/dev/null; do sleep 0.005; done"
            wait "$old" 2>/dev/null || true
            start_server "$dir" "$s"
        fi
    done
    wait_client "$dir" up $((rounds + 1))
    : >"$dir/stop"
    rc=0
    tmo 60 bash -c "while kill -0 $client_pid 2>/dev/null; do sleep 0.05; done"
    wait "$client_pid" || rc=$?
    client_pid=
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    result=$(tail -1 "$dir/client.out")
    note "$name: $rounds ${mode}s in $(awk -v a="$t0" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", b - a }') s: $result"
    [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || {
        cat "$dir/client.err" >&2
        fail "$name: the client failed (exit $rc)"
    }
}

# field KEY: an integer field of $result.
field() {
    "$PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' \
        "$result" "$1"
}

# expect_intact NAME MODE ROUNDS: 0 lost, and every round was a break.
expect_intact() {
    [ "$rc" -eq 0 ] && [ "$(field lost)" -eq 0 ] || {
        sed 's/^/    ! /' "$TMPD/$1/client.err" >&2
        fail "$1: $(field lost) blocks lost"
    }
    [ $(($(field breaks) + $(field handovers))) -ge "$3" ] ||
        fail "$1: $3 ${2}s but the client saw $(field breaks) breaks and $(field handovers) handovers"
    ok "$1: $3 ${2}s, $(field breaks) breaks, $(field handovers) handovers, $(field writes_acked) writes acknowledged, $(field in_flight_at_break) in flight at a break, 0 lost"
}

# expect_clean NAME: an upgrade failed no request.
expect_clean() {
    [ "$(field breaks)" -eq 0 ] && [ "$(field in_flight_at_break)" -eq 0 ] ||
        fail "$1: $(field breaks) connections broke, $(field in_flight_at_break) requests in flight"
    ok "$1: every handover clean (no request failed)"
}

if [ -n "${TRUENO_RESTART_SERVER:-}" ]; then
    rounds=${TRUENO_RESTART_KILLS:-50}
    mode=${TRUENO_RESTART_MODE:-kill}
    harness custom "$mode" "$rounds" "$TRUENO_RESTART_SERVER"
    expect_intact custom "$mode" "$rounds"
    [ "$mode" = kill ] || expect_clean custom
    note "passed in $(elapsed) s"
    exit 0
fi

truncate -s 8M "$TMPD/disk.img"
harness file-kill kill 50 'nbdkit -f -U "$sock" file "$TMPD/disk.img"'
expect_intact file-kill kill 50

harness file-upgrade upgrade 20 'nbdkit -f -U "$sock" file "$TMPD/disk.img"'
expect_intact file-upgrade upgrade 20
expect_clean file-upgrade

# The harness finds one block: changed behind the client's back (random
# bytes written into the file while the server is down, at the 2nd kill).
truncate -s 8M "$TMPD/tamper.img"
while_down='[ "$i" -ne 2 ] || dd if=/dev/urandom of="$TMPD/tamper.img" bs=4096 \
    seek=1000 count=1 conv=notrunc status=none'
harness file-tamper kill 3 'nbdkit -f -U "$sock" file "$TMPD/tamper.img"'
while_down=
[ "$rc" -eq 3 ] && [ "$(field lost)" -eq 1 ] && [ "$(field lost_foreign)" -eq 1 ] ||
    fail "file-tamper: one block overwritten, the client found $(field lost) lost"
ok "file-tamper: the one block overwritten while the server was down was found"

# And acknowledged writes undone: the file as it was at the 1st kill put
# back at the 2nd, as a store that lost its latest writes would serve.
truncate -s 8M "$TMPD/rollback.img"
while_down='case $i in 1) cp "$TMPD/rollback.img" "$TMPD/rollback.old" ;;
    2) cp "$TMPD/rollback.old" "$TMPD/rollback.img" ;; esac'
# (at least 100 ms of writes after each reconnect: some to undo)
min_ms=100
harness file-rollback kill 3 'nbdkit -f -U "$sock" file "$TMPD/rollback.img"'
min_ms=
while_down=
[ "$rc" -eq 3 ] && [ "$(field lost)" -gt 0 ] && [ "$(field lost_foreign)" -eq 0 ] ||
    fail "file-rollback: writes undone, the client found $(field lost) lost ($(field lost_foreign) foreign)"
ok "file-rollback: $(field lost) blocks back to an older content found"

# The negative control: a server whose data dies with it.
harness memory-kill kill 3 'nbdkit -f -U "$sock" memory 8M'
[ "$rc" -eq 3 ] && [ "$(field lost)" -gt 0 ] ||
    fail "memory-kill: nbdkit memory lost its data and the client did not see it"
ok "memory-kill (negative control): the client found $(field lost) blocks lost ($(field lost_initial) back to their first content)"

# trueno with its state in a trueno-hold (state=, issue 19): killed 50
# times, then upgraded 20 times, on one state: nothing lost.
HOLD=${abs_top_builddir:-$test_dir/..}/trueno-hold
[ -x "$HOLD" ] || fail "trueno-hold not built: $HOLD"
tmo 10 "$HOLD" --daemon --pidfile "$TMPD/hold.pid" "$TMPD/hold/t.sock" t ||
    fail "trueno-hold did not start"
exit_pids+=("$(cat "$TMPD/hold.pid")")
trueno_state='nbdkit -f -U "$sock" "$TRUENO_PLUGIN" size=8M state="$TMPD/hold/t.sock" state-name=t'
harness trueno-kill kill 50 "$trueno_state"
expect_intact trueno-kill kill 50
harness trueno-upgrade upgrade 20 "$trueno_state"
expect_intact trueno-upgrade upgrade 20
expect_clean trueno-upgrade

# The negative control for trueno: without state= its store dies with
# its process, and the client must say so.
harness trueno-anon-kill kill 3 'nbdkit -f -U "$sock" "$TRUENO_PLUGIN" size=8M'
[ "$rc" -eq 3 ] && [ "$(field lost)" -gt 0 ] ||
    fail "trueno-anon-kill: trueno.so without state= lost nothing across 3 kills"
ok "trueno-anon-kill (negative control): without state= the store dies with its process ($(field lost) blocks lost)"

note "passed in $(elapsed) s"
