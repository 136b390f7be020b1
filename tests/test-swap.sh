#!/usr/bin/env bash
# trueno-swap's argument and environment checks, and the plugin's swap=
# parameter, on the host (which may have no nbd module and no
# CAP_SYS_RESOURCE).  The real swap tests run in a VM: tests/vm/run.
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
fi
out=$("$ts" status) || fail "status failed"
case "$out" in *"no trueno swap devices"*) ok "status with nothing up" ;; *) fail "status: $out" ;; esac

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
note "passed in $SECONDS s"
