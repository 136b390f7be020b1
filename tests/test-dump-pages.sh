#!/usr/bin/env bash
# scripts/dump-pages on a live process: its anonymous memory comes out as
# whole pages (a 16 MiB buffer of marked pages is found page by page),
# --max-pages samples exactly that many in runs of adjacent pages, a missing process is a clear
# error, and trueno-bench reads the dump.  The dump is 0600 (another
# process's memory), and a symlink planted at OUT is refused, its target
# unchanged.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/functions.sh"
require_python
src=${abs_top_srcdir:-$(dirname "$0")/..}
dump=$src/scripts/dump-pages
bench=${abs_top_builddir:-$(dirname "$0")/..}/trueno-bench
[ -x "$bench" ] || fail "no trueno-bench at $bench"

# 4096 pages, each starting with its own marker, the rest compressible.
"$PYTHON" -c '
import sys, time
pages = [b"TRUENO-DUMP-%08d;" % i + bytes(range(256)) * 15 for i in range(4096)]
buf = bytearray(b"".join(p.ljust(4096, b"x") for p in pages))
print("ready", flush=True)
time.sleep(300)
' >"$TMPD/holder.out" &
holder=$!
trap 'kill $holder 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do
    grep -q ready "$TMPD/holder.out" 2>/dev/null && break
    sleep 0.1
done
grep -q ready "$TMPD/holder.out" || fail "the holder process did not start"

tmo 120 "$PYTHON" "$dump" "$holder" "$TMPD/all.pages" >"$TMPD/log" ||
    fail "dump-pages failed: $(cat "$TMPD/log")"
size=$(stat -c %s "$TMPD/all.pages")
[ $((size % 4096)) -eq 0 ] && [ "$size" -ge $((4096 * 4096)) ] ||
    fail "dump of $size bytes: not whole pages, or less than the buffer"
found=$(grep -ao 'TRUENO-DUMP-[0-9]\{8\};' "$TMPD/all.pages" | sort -u | wc -l)
[ "$found" -ge 4096 ] || fail "only $found of the 4096 marked pages dumped"
ok "all 4096 marked pages dumped ($((size / 4096)) pages in all)"
mode=$(stat -c %a "$TMPD/all.pages")
[ "$mode" = 600 ] || fail "the dump is mode $mode, not 600"
ok "the dump is 0600"

echo "not yours" >"$TMPD/victim" && chmod 600 "$TMPD/victim"
ln -s "$TMPD/victim" "$TMPD/planted.pages"
if "$PYTHON" "$dump" --max-pages 10 "$holder" "$TMPD/planted.pages" \
       >/dev/null 2>"$TMPD/err"; then
    fail "dump-pages wrote through a symlink at OUT"
fi
[ "$(cat "$TMPD/victim")" = "not yours" ] || fail "the symlink's target was overwritten"
grep -q "symlink" "$TMPD/err" || fail "unclear error for a symlink: $(cat "$TMPD/err")"
[ -z "$(ls -A "$TMPD" | grep '^\.dump-pages\.')" ] || fail "temporary file left behind"
ok "a symlink at OUT: $(cat "$TMPD/err")"

tmo 120 "$PYTHON" "$dump" --max-pages 100 "$holder" "$TMPD/some.pages" \
    >/dev/null || fail "dump-pages --max-pages failed"
[ "$(stat -c %s "$TMPD/some.pages")" -eq $((100 * 4096)) ] ||
    fail "--max-pages 100 gave $(stat -c %s "$TMPD/some.pages") bytes"
ok "--max-pages 100: 100 pages"

# Sampling keeps runs of adjacent pages (cold groups judge neighbours):
# with --run 256 the marked pages come out in consecutive runs, with
# --run 1 they are scattered.
adjacent() {
    "$PYTHON" -c '
import re, sys
m = [int(x) for x in re.findall(rb"TRUENO-DUMP-([0-9]{8});", open(sys.argv[1], "rb").read())]
print(sum(1 for a, b in zip(m, m[1:]) if b == a + 1))' "$1"
}
tmo 120 "$PYTHON" "$dump" --max-pages 1024 --run 256 "$holder" "$TMPD/runs.pages" \
    >/dev/null || fail "dump-pages --run 256 failed"
[ "$(stat -c %s "$TMPD/runs.pages")" -eq $((1024 * 4096)) ] ||
    fail "--max-pages 1024 --run 256 gave $(stat -c %s "$TMPD/runs.pages") bytes"
tmo 120 "$PYTHON" "$dump" --max-pages 1024 --run 1 "$holder" "$TMPD/single.pages" \
    >/dev/null || fail "dump-pages --run 1 failed"
runs=$(adjacent "$TMPD/runs.pages") single=$(adjacent "$TMPD/single.pages")
[ "$runs" -ge 200 ] || fail "--run 256: only $runs neighbours kept together"
[ "$single" -lt "$runs" ] || fail "--run 1 kept $single neighbours, --run 256 $runs"
if "$PYTHON" "$dump" --run 0 "$holder" "$TMPD/bad.pages" 2>"$TMPD/err"; then
    fail "--run 0 was accepted"
fi
grep -q -- "--run" "$TMPD/err" || fail "unclear error for --run 0: $(cat "$TMPD/err")"
ok "--run 256 keeps neighbours together ($runs adjacent pairs; --run 1: $single)"

if "$PYTHON" "$dump" 999999999 "$TMPD/none.pages" 2>"$TMPD/err"; then
    fail "dump-pages of a missing process succeeded"
fi
grep -q "no process 999999999" "$TMPD/err" ||
    fail "unclear error for a missing process: $(cat "$TMPD/err")"
ok "a missing process: $(cat "$TMPD/err")"

tmo 300 "$bench" --repeat 1 --codec trueno-lz4,liblz4 "$TMPD/all.pages" \
    >"$TMPD/bench" || fail "trueno-bench on the dump failed"
grep -q '^all.pages *trueno-lz4 ' "$TMPD/bench" || fail "no trueno-lz4 row"
ok "trueno-bench reads the dump"
