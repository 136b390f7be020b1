#!/usr/bin/env bash
# trueno-ublk's command line on the host, which may have no ublk_drv (the
# real device tests run in a VM: tests/vm/run): every error says clearly
# what is wrong, and nothing is left running.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
tu=${abs_top_builddir:-$test_dir/..}/trueno-ublk
[ -x "$tu" ] || fail "no $tu (configure found no liburing?)"
export TRUENO_UBLK_RUNDIR=$TMPD/run

expect_err "--size is required" "$tu" add
expect_err "invalid size '8X'" "$tu" add --size 8X
expect_err "multiple of 4096" "$tu" add --size 1000
expect_err "unknown algorithm" "$tu" add --size 1G algorithm=lz5
# Checked before anything needs root or the driver.
expect_err "prometheus: cannot write beside $TMPD/none/u.prom" "$tu" add --size 1G prometheus="$TMPD/none/u.prom"
expect_err "prometheus: cannot write beside" "$tu" add --size 1G prometheus="$TMPD"
expect_err "prometheus-mode: '0666'" "$tu" add --size 1G prometheus=p.prom prometheus-mode=0666
expect_err "unknown command 'frob'" "$tu" frob
expect_err "invalid device id 'x'" "$tu" del x
expect_err "usage" "$tu" del
# recover and upgrade: refused before anything needs the driver.
expect_err "recover: which device?" "$tu" recover
expect_err "recover: which device?" "$tu" recover state=fd:3
expect_err "invalid device id 'x'" "$tu" recover x state=fd:3
expect_err "state: required by recover" "$tu" recover 0
expect_err "state-name: required with state=$TMPD/h.sock" "$tu" recover 0 state="$TMPD/h.sock"
expect_err "usage: trueno-ublk upgrade ID" "$tu" upgrade
expect_err "usage: trueno-ublk upgrade ID" "$tu" upgrade x
# The driver is missing: $TRUENO_UBLK_CONTROL names a control device that
# does not exist (as on a host without the module).
if [ "$(id -u)" -eq 0 ]; then
    export TRUENO_UBLK_CONTROL=$TMPD/no-ublk-control
    expect_err "ublk_drv not loaded" "$tu" add --size 8G
    expect_err "modprobe ublk_drv" "$tu" add --size 8G
    expect_err "modprobe ublk_drv" "$tu" list
    expect_err "modprobe ublk_drv" "$tu" del all
    expect_err "modprobe ublk_drv" "$tu" recover 0 state=fd:0
    expect_err "modprobe ublk_drv" "$tu" upgrade 0
    unset TRUENO_UBLK_CONTROL
    if [ ! -e /dev/ublk-control ]; then
        # As a user would run it on this host.
        expect_err "ublk_drv not loaded: /dev/ublk-control is missing (run: modprobe ublk_drv" "$tu" add --size 8G
    else
        note "this host has /dev/ublk-control: the real message is not checked"
    fi
    [ ! -e "$TMPD/run" ] || [ -z "$(ls -A "$TMPD/run")" ] || fail "run files left: $(ls "$TMPD/run")"
fi
if command -v setpriv >/dev/null; then
    expect_err "must be run as root" setpriv --reuid=65534 --regid=65534 --clear-groups "$tu" add --size 1G
fi
out=$("$tu" --help) || fail "--help failed"
case "$out" in *"trueno-ublk add --size SIZE"*"recover ID"*"upgrade ID"*"prometheus=<FILE>"*) ok "--help" ;; *) fail "--help: $out" ;; esac
pgrep -x trueno-ublk >/dev/null && fail "a trueno-ublk process is left running"
note "passed in $SECONDS s"
