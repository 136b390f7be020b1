#!/usr/bin/env bash
# trueno-swap's argument and environment checks, and the plugin's swap=
# parameter, on the host (which may have no nbd module and no
# CAP_SYS_RESOURCE): reserved keys anywhere, sizes that would overflow,
# status with devices, down with a stale pid file naming an unrelated live
# process (left alone), the name's lock, the run directory's owner and mode.
# The real swap tests run in a VM: tests/vm/run (swap-helper: concurrent
# up, the connection limit, status with swap up).
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
ts=$test_dir/../scripts/trueno-swap
[ -x "$ts" ] || fail "no $ts"
export TRUENO_SWAP_RUNDIR=$TMPD/run

expect_err "invalid size 'foo'" "$ts" up --size foo
expect_err "invalid size '0'" "$ts" up --size 0
expect_err "multiple of 4096" "$ts" up --size 1000
expect_err "invalid priority" "$ts" up --priority high
expect_err "invalid name" "$ts" up --name '../x'
expect_err "unknown option" "$ts" up --bogus
expect_err "unknown command" "$ts" frobnicate
expect_err "set by trueno-swap" "$ts" up swap=off
# Every key=value, not only the first.
expect_err "swap= is set by trueno-swap" "$ts" up algorithm=zstd swap=off
expect_err "stats= is set by trueno-swap" "$ts" up algorithm=zstd mem-limit=1G stats=/tmp/x
# 16777216T is 2^64 bytes: it wrapped to 0.
expect_err "invalid size '16777216T': too large" "$ts" up --size 16777216T
expect_err "too large" "$ts" up --size 99999999999999999999G
if command -v setpriv >/dev/null; then
    expect_err "must be run as root" setpriv --reuid=65534 --regid=65534 --clear-groups "$ts" up --size 1G
fi
if [ "$(id -u)" -eq 0 ]; then
    expect_err "nbd-client not found" env NBD_CLIENT=/nonexistent/nbd-client "$ts" up --size 64M
    if [ ! -d /sys/module/nbd ] && [ ! -e /sys/block/nbd0 ]; then
        expect_err "modprobe nbd" "$ts" up --size 64M
    else
        note "nbd module present: the 'modprobe nbd' message is not checked here"
    fi
    expect_err "is not up" "$ts" down nosuch
    expect_err "is not up" "$ts" upgrade nosuch
    expect_err "invalid name" "$ts" upgrade '../x'
    # A device without --persist has no server to replace it under the
    # live swap (its pages die with the server).
    mkdir -p -m 0700 "$TRUENO_SWAP_RUNDIR"
    echo /dev/ublkb9 >"$TRUENO_SWAP_RUNDIR/np.dev"
    echo ublk >"$TRUENO_SWAP_RUNDIR/np.transport"
    expect_err "was not started with --persist" "$ts" upgrade np
    rm -f "$TRUENO_SWAP_RUNDIR/np.dev" "$TRUENO_SWAP_RUNDIR/np.transport"
fi
expect_err "usage: trueno-swap upgrade [NAME|all]" "$ts" upgrade a b
expect_err "invalid dead-conn-timeout '0'" "$ts" up --persist --dead-conn-timeout 0
out=$("$ts" status) || fail "status failed"
case "$out" in *"no trueno devices"*) ok "status with nothing up" ;; *) fail "status: $out" ;; esac

# status with something up (here: the files a crashed server left; a
# real server's figures: test-swap-status).
mkdir -p "$TRUENO_SWAP_RUNDIR"
echo /dev/nbd7 >"$TRUENO_SWAP_RUNDIR/one.dev"
echo /dev/nbd8 >"$TRUENO_SWAP_RUNDIR/two.dev"
out=$("$ts" status -r -o name,instance,transport,pid 2>&1) || fail "status with devices: $out"
[ "$out" = "$(printf 'NAME INSTANCE TRANSPORT PID\n/dev/nbd7 one nbd -\n/dev/nbd8 two nbd -')" ] ||
    fail "status with devices: $out"
ok "status with two devices, servers not running"
rm -f "$TRUENO_SWAP_RUNDIR"/*.dev

if [ "$(id -u)" -eq 0 ]; then
    # A stale pid file naming an unrelated live process: down leaves it be.
    sleep 1000 &
    victim=$!
    echo "$victim" >"$TRUENO_SWAP_RUNDIR/stale.pid"
    : >"$TRUENO_SWAP_RUNDIR/stale.sock"
    out=$("$ts" down stale 2>&1) || fail "down with a stale pid file: $out"
    sleep 0.3
    kill -0 "$victim" 2>/dev/null || fail "down killed the unrelated process $victim"
    kill "$victim"; wait "$victim" 2>/dev/null || :
    [ ! -e "$TRUENO_SWAP_RUNDIR/stale.pid" ] && [ ! -e "$TRUENO_SWAP_RUNDIR/stale.sock" ] ||
        fail "stale pid or socket file left: $(ls "$TRUENO_SWAP_RUNDIR")"
    ok "down with a stale pid file: the unrelated process lives, files removed ($out)"

    # down waits for an up or down of the same name (the name's lock).
    echo /dev/nbd9 >"$TRUENO_SWAP_RUNDIR/busy.dev"
    flock "$TRUENO_SWAP_RUNDIR/busy.lock" sleep 2 &
    holder=$!
    sleep 0.3
    t0=$(date +%s%N)
    "$ts" down busy >/dev/null 2>&1
    t1=$(date +%s%N)
    wait "$holder"
    [ $(( (t1 - t0) / 1000000 )) -ge 1000 ] ||
        fail "down did not wait for the name's lock ($(( (t1 - t0) / 1000000 )) ms)"
    ok "down waits for the name's lock"

    # The run directory is root's alone (the VM's swap-helper case checks
    # that up makes it 0700), its files 0600.
    mode=$(stat -c %a "$TRUENO_SWAP_RUNDIR/stale.lock")
    [ "$mode" = 600 ] || fail "lock file mode $mode, not 600"
    mkdir -m 777 "$TMPD/open"
    echo /dev/nbd9 >"$TMPD/open/x.dev"
    expect_err "writable by group or others" env TRUENO_SWAP_RUNDIR="$TMPD/open" "$ts" down x
    mkdir "$TMPD/theirs" && chown nobody "$TMPD/theirs"
    echo /dev/nbd9 >"$TMPD/theirs/x.dev"
    expect_err "not by us: refused" env TRUENO_SWAP_RUNDIR="$TMPD/theirs" "$ts" down x
    ln -s "$TMPD/theirs" "$TMPD/link"
    expect_err "is a symlink: refused" env TRUENO_SWAP_RUNDIR="$TMPD/link" "$ts" down x
fi

# The plugin's swap= parameter.
out=$(nbdkit "$TRUENO_PLUGIN" size=1M swap=maybe 2>&1) && fail "swap=maybe accepted"
case "$out" in *"swap:"*) ok "swap=maybe refused naming swap" ;; *) fail "swap=maybe: $out" ;; esac
nbdkit "$TRUENO_PLUGIN" --help | grep -q '^swap=on' || fail "--help does not list swap="
nbdkit "$TRUENO_PLUGIN" --dump-plugin | grep -q '^trueno_swap_mode=yes' || fail "--dump-plugin: no trueno_swap_mode"
ok "--help and --dump-plugin list swap mode"
# swap=on either runs locked, OOM-proof, or (no CAP_SYS_RESOURCE here) is
# refused with a message that says why.
rc=0
out=$(tmo 60 nbdkit -U - "$TRUENO_PLUGIN" size=64M swap=on --run '
    p=$PPID
    adj=$(cat /proc/$p/oom_score_adj)
    lck=$(awk "/^VmLck:/{print \$2}" /proc/$p/status)
    echo "adj=$adj lck=$lck"
    [ "$adj" = -1000 ] && [ "$lck" -gt 0 ]' 2>&1) || rc=$?
if [ "$rc" -eq 0 ]; then
    ok "swap=on: oom_score_adj -1000 and memory locked ($out)"
else
    case "$out" in
        *"swap: prctl(PR_SET_IO_FLUSHER)"*|*"swap: cannot set /proc/self/oom_score_adj"*|*"swap: mlockall"*)
            ok "swap=on refused here, clearly: $(echo "$out" | grep -m1 'swap:')" ;;
        *) fail "swap=on: $out" ;;
    esac
fi
# The page table (16 bytes per 4 KiB page, allocated up front under
# swap=on) comes before the server is made OOM-proof: a table the machine
# cannot afford must meet the OOM killer itself, not push it onto others.
# nbdkit -v shows the order (here or where swap=on is refused, after it).
tmo 60 nbdkit -v -U - "$TRUENO_PLUGIN" size=256M swap=on --run true \
    >"$TMPD/order" 2>&1 || true
pt=$(awk '/swap: page table of 65536 pages allocated/ { print NR; exit }' "$TMPD/order")
guard=$(awk '/swap: (I\/O flusher, oom_score_adj|prctl\(PR_SET_IO_FLUSHER\)|cannot set \/proc\/self\/oom_score_adj)/ { print NR; exit }' "$TMPD/order")
[ -n "$pt" ] || fail "swap=on: no 'page table allocated' line: $(grep 'swap' "$TMPD/order")"
[ -n "$guard" ] || fail "swap=on: no OOM protection line: $(grep 'swap' "$TMPD/order")"
[ "$pt" -lt "$guard" ] ||
    fail "swap=on: the page table was allocated after the server became OOM-proof"
ok "swap=on: page table allocated (line $pt) before the OOM protection (line $guard)"

# With --persist a trueno-hold per NAME keeps the store (state=,
# docs/persistence.md):
# state= and state-name= are trueno-swap's own; a failed up stops the
# holder it started; down stops a holder a dead server left.
expect_err "state= is set by trueno-swap" "$ts" up state=/x
expect_err "state-name= is set by trueno-swap" "$ts" up algorithm=zstd state-name=x
B=${abs_top_builddir:-$test_dir/..}
export TRUENO_HOLD=$B/trueno-hold TRUENO_UBLK=$B/trueno-ublk
if [ "$(id -u)" -eq 0 ] && [ -x "$TRUENO_HOLD" ] && [ -x "$TRUENO_UBLK" ]; then
    R=$TRUENO_SWAP_RUNDIR
    # holders NAME: the processes serving NAME's holder socket.
    holders() {
        local p
        for p in /proc/[0-9]*; do
            tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF "$R/hold/$1.sock" &&
                echo "${p#/proc/}"
        done
        return 0
    }
    expect_err "ublk_drv not loaded" env TRUENO_UBLK_CONTROL="$TMPD/no-ublk-control" \
        "$ts" up --persist --transport ublk --size 64M --name h1
    [ -z "$(holders h1)" ] && [ ! -e "$R/hold/h1.pid" ] ||
        fail "a failed up left its holder running: $(holders h1)"
    ok "a failed up stopped the holder it started"
    tmo 10 "$TRUENO_HOLD" --daemon --pidfile "$R/hold/h2.pid" "$R/hold/h2.sock" h2 ||
        fail "trueno-hold did not start"
    hp=$(cat "$R/hold/h2.pid")
    exit_pids+=("$hp")
    expect_err "still has a holder" "$ts" up --persist --transport ublk --size 64M --name h2
    tmo 20 "$ts" down h2 >/dev/null || fail "down h2 failed"
    ! kill -0 "$hp" 2>/dev/null || fail "down left the holder $hp running"
    ok "down stopped the holder of a server that had died"
    tmo 10 "$TRUENO_HOLD" --daemon --pidfile "$R/hold/h3.pid" "$R/hold/h3.sock" h3 ||
        fail "trueno-hold did not start"
    hp=$(cat "$R/hold/h3.pid")
    exit_pids+=("$hp")
    tmo 20 "$ts" down all >/dev/null || fail "down all failed"
    ! kill -0 "$hp" 2>/dev/null || fail "down all left the holder $hp running"
    ok "down all stopped a holder left alone"
else
    note "skipped the holder cases (not root, or trueno-hold/trueno-ublk not built)"
fi

# --persist over nbd: a supervisor per NAME (trueno-nbd supervise, its
# pid in RUNDIR/sup/NAME.pid).  Without the nbd module here, one started
# by hand with --no-attach and a device file standing in for the device:
# upgrade restarts its server (SIGHUP) and says so; down stops it; a NAME
# up without a supervisor is refused an upgrade.
export TRUENO_NBD=$B/trueno-nbd
if [ "$(id -u)" -eq 0 ] && [ -x "$TRUENO_NBD" ]; then
    R=$TRUENO_SWAP_RUNDIR
    mkdir -p "$R/sup"
    tmo 30 "$TRUENO_NBD" supervise --no-attach --socket "$R/s4.sock" --pidfile "$R/sup/s4.pid" \
        --log "$R/s4.log" -- nbdkit -f -U "$R/s4.sock" -P "$R/s4.pid" "$TRUENO_PLUGIN" size=8M \
        >/dev/null || fail "supervise did not start"
    sp=$(cat "$R/sup/s4.pid")
    exit_pids+=("$sp")
    echo /dev/nbd99 >"$R/s4.dev"
    old=$(cat "$R/s4.pid")
    out=$(tmo 60 "$ts" upgrade s4) || fail "upgrade s4: $out"
    case "$out" in *"s4: upgraded: upgrade done in"*) ;; *) fail "upgrade s4 said: $out" ;; esac
    new=$(cat "$R/s4.pid")
    [ "$new" != "$old" ] && kill -0 "$new" || fail "upgrade s4: the server is still $old"
    ok "upgrade: server $old replaced by $new ($out)"
    echo /dev/nbd98 >"$R/s5.dev"
    expect_err "has no supervisor" "$ts" upgrade s5
    rm -f "$R/s5.dev"
    tmo 30 "$ts" down s4 >/dev/null 2>&1 || fail "down s4 failed"
    ! kill -0 "$sp" 2>/dev/null || fail "down left the supervisor $sp running"
    ! kill -0 "$new" 2>/dev/null || fail "down left the server $new running"
    [ ! -e "$R/sup/s4.pid" ] && [ ! -e "$R/s4.dev" ] || fail "down left s4's files"
    ok "down stopped the supervisor and its server"
else
    note "skipped the supervisor cases (not root, or trueno-nbd not built)"
fi
note "passed in $SECONDS s"
