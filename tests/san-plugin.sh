#!/usr/bin/env bash
# The plugin built with a sanitizer (TRUENO_SAN=tsan: ThreadSanitizer, make
# check-tsan; asan: ASan+UBSan, make check-asan; each builds it as
# tests/$TRUENO_SAN/nbdkit-trueno-plugin.so, sets TRUENO_PLUGIN), served by
# a real nbdkit with the sanitizer's runtime preloaded (nbdkit itself is not
# instrumented): nbdkit's request threads, the housekeeping thread (stats,
# idle-page recompression, compaction) and the engine under concurrent NBD
# clients.  Any report (a data race; a bad access, undefined behaviour or,
# at exit, a leak with a frame of the plugin's) is a failure; a leak of
# nbdkit's own (no frame of ours: 280 bytes from nbdkit's code, seen in 2
# of about 21 ASan runs, a connection torn down as it exits) is only noted.
# Two servers: fio with several connections writing and verifying while
# pages are recompressed and compacted, then trims; and a memory limit
# that writes run into (ENOSPC) while the server keeps serving.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/functions.sh"
require_cmd fio gcc
require_nbd_python
san=${TRUENO_SAN:-tsan}
case $san in
tsan)
    name=ThreadSanitizer rt=libtsan.so.2
    export TSAN_OPTIONS="log_path=$TMPD/san exitcode=66" ;;
asan)
    name=ASan+UBSan rt=libasan.so.8
    export ASAN_OPTIONS="log_path=$TMPD/san detect_leaks=1 exitcode=67"
    export UBSAN_OPTIONS="log_path=$TMPD/san print_stacktrace=1 halt_on_error=1" ;;
*) fail "TRUENO_SAN must be tsan or asan" ;;
esac
san_rt=$(gcc -print-file-name=$rt)
[ -f "$san_rt" ] || fail "no $name runtime ($rt) for gcc"

sock=$TMPD/nbd.sock
server=
stop_server() {
    [ -n "$server" ] || return 0
    kill -TERM "$server" 2>/dev/null || :
    local rc=0
    wait "$server" || rc=$?
    server=
    # nbdkit exits 0 on SIGTERM; the sanitizers' exit codes are 66, 67
    # (67 too for nbdkit's own leaks, which ours_reported tells apart).
    if [ "$rc" -ne 0 ] && { [ "$rc" -ne 67 ] || ours_reported; }; then
        head -n 60 "$TMPD"/san.* "$TMPD/nbdkit.err" >&2 2>/dev/null || :
        fail "nbdkit under $name exited $rc"
    fi
}

# Succeeds when the sanitizer reported something of ours: any report that
# is not a leak, or a leak with a frame in the plugin (its module, or a
# source file of ours once symbolized).  A leak of nbdkit's alone is noted.
ours_reported() {
    ls "$TMPD"/san.* >/dev/null 2>&1 || return 1
    local ours
    ours=$(awk '
        /^(Direct|Indirect) leak/ { leak = 1; mine = 0; next }
        leak && /^$/ { if (mine) n++; leak = 0; next }
        leak && /trueno\.so\+|(engine|plugin|common|opencl)\/[^ ]*\.[ch]:[0-9]/ { mine = 1 }
        /^SUMMARY: / && !/leaked in/ { n++ }
        END { if (leak && mine) n++; print n + 0 }' "$TMPD"/san.*)
    [ "$ours" -gt 0 ] && return 0
    note "a leak of nbdkit's own, no frame of ours: $(grep -h -m1 'leak of' "$TMPD"/san.*)"
    rm -f "$TMPD"/san.*
    return 1
}
trap 'stop_server; cleanup' EXIT

# start PLUGIN-ARGS...: nbdkit in the foreground of a background job.
start() {
    rm -f "$sock"
    # The plugin preloaded too: nbdkit unloads it before exiting, and a
    # leak check at exit would see its frames as "<unknown module>".
    LD_PRELOAD="$san_rt $TRUENO_PLUGIN" nbdkit -f -U "$sock" "$TRUENO_PLUGIN" "$@" 2>"$TMPD/nbdkit.err" &
    server=$!
    for _ in $(seq 300); do
        [ -S "$sock" ] && return 0
        kill -0 "$server" 2>/dev/null ||
            fail "nbdkit did not start: $(cat "$TMPD/nbdkit.err")"
        sleep 0.1
    done
    fail "nbdkit did not create its socket"
}

no_reports() {
    if ours_reported; then
        head -n 60 "$TMPD"/san.* >&2
        fail "$name reported: $1"
    fi
    ok "no $name report: $1"
}

cat >"$TMPD/job.fio" <<EOF
[global]
ioengine=nbd
uri=nbd+unix:///?socket=$sock
size=16m
offset_increment=16m
numjobs=4
iodepth=8
bssplit=4k/60:64k/30:512/10
$(fio_verify_lines)
[san]
EOF

start size=64M recompress=zstd recompress-idle=1 stats="$TMPD/stats.json" \
    prometheus="$TMPD/san.prom"
tmo 300 fio "$TMPD/job.fio" >"$TMPD/fio.out" 2>&1 ||
    fail "fio failed: $(tail -n 20 "$TMPD/fio.out")"
sleep 3 # idle pages recompressed, the housekeeping thread at work
tmo 120 "$PYTHON" - "$sock" <<'PY' || fail "trims and reads failed"
import nbd, sys
h = nbd.NBD()
h.connect_unix(sys.argv[1])
size = h.get_size()
for off in range(0, size, 2 << 20):  # every other MiB trimmed
    h.trim(1 << 20, off)
for off in range(0, size, 1 << 20):
    h.pread(1 << 20, off)
PY
sleep 3 # compaction after the trims
grep -q '"compactions": [1-9]' "$TMPD/stats.json" ||
    note "no compaction ran (stats: $(head -c 300 "$TMPD/stats.json"))"
grep -q '"zstd_pages": [1-9]' "$TMPD/stats.json" ||
    fail "no page was recompressed: the housekeeping thread did not run"
grep -q '^trueno_pages_recompressed_total{device="san"} [1-9]' "$TMPD/san.prom" ||
    fail "the Prometheus file lacks the recompressed pages: $(grep recompressed "$TMPD/san.prom")"
stop_server
no_reports "4 fio connections writing and verifying, recompression, trims"

start size=64M mem-limit=4M
tmo 300 "$PYTHON" - "$sock" <<'PY' || fail "the server stopped serving at its limit"
import errno, nbd, os, sys, threading
def writer(k, out):
    h = nbd.NBD()
    h.connect_unix(sys.argv[1])
    full = 0
    for i in range(256):
        try:
            h.pwrite(os.urandom(65536), (k * 256 + i) * 65536 % h.get_size())
        except nbd.Error as e:
            if e.errnum != errno.ENOSPC:
                raise
            full += 1
    out[k] = full
out = {}
ts = [threading.Thread(target=writer, args=(k, out)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
assert len(out) == 4 and sum(out.values()) > 0, out
h = nbd.NBD()
h.connect_unix(sys.argv[1])
h.trim(h.get_size(), 0)  # gives the memory back: writes work again
h.pwrite(b"x" * 65536, 0)
assert h.pread(65536, 0) == b"x" * 65536
PY
stop_server
no_reports "4 connections running into the memory limit (ENOSPC), trims"
