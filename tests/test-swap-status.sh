#!/usr/bin/env bash
# trueno-swap status, zramctl's table, against a real nbdkit serving the
# plugin with stats= into a run directory laid out as trueno-swap lays it
# (no kernel device: NAME.dev names one), beside a trueno-ublk device's
# files: the columns and their values against the stats file (--bytes,
# --raw, --output, --json, human sizes), each device once (a trueno-swap
# ublk device is not listed again as trueno-ublk's), the server's pid
# while it runs and "-" once it is gone, and --watch's rates while a
# client writes.  The VM's swap-helper case shows it on real swap.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_python
require_corpus
require_cmd nbdcopy
ts=$test_dir/../scripts/trueno-swap
[ -x "$ts" ] || fail "no $ts"
run=$TMPD/run
mkdir -m 700 -p "$run/ublk"
export TRUENO_SWAP_RUNDIR=$run
unset TRUENO_UBLK_RUNDIR

pid="" cpid=""
cleanup() {
    local p
    for p in $pid $cpid; do
        kill "$p" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    rm -rf "$TMPD"
}

# Device a: nbdkit as trueno-swap starts it (without swap=on, which needs
# privileges this test may not have).
nbdkit_serve "$run/a.sock" "$run/a.pid" "$run/a.log" --filter=limit "$TRUENO_PLUGIN" \
    size=64M algorithm=zstd stats="$run/a.json" limit=2
pid=$served_pid
echo /dev/nbd15 >"$run/a.dev"
echo 2 >"$run/a.conf"
corpus_data $((8 * 1048576)) "$TMPD/data"
tmo 60 nbdcopy "$TMPD/data" "nbd+unix:///?socket=$run/a.sock" || fail "nbdcopy failed"
for _ in $(seq 50); do
    [ "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pages_written"])' "$run/a.json")" -ge 2048 ] && break
    sleep 0.1
done

# Device c: one page of text, compressed to less than 1 KiB.
nbdkit_serve "$run/c.sock" "$run/c.pid" "$run/c.log" --filter=limit "$TRUENO_PLUGIN" \
    size=1M stats="$run/c.json" limit=2
cpid=$served_pid
echo /dev/nbd14 >"$run/c.dev"
"$PYTHON" -c 'import sys; sys.stdout.write(("trueno-swap status test\n" * 200)[:4096])' >"$TMPD/page"
tmo 60 nbdcopy "$TMPD/page" "nbd+unix:///?socket=$run/c.sock" || fail "nbdcopy to c failed"
kill "$cpid"
for _ in $(seq 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
cpid=""

out=$("$ts" status) || fail "status exited $?"
printf '%s\n' "$out"
head=$(printf '%s\n' "$out" | head -1)
[ "$(echo $head)" = "NAME INSTANCE TRANSPORT ALGORITHM DISKSIZE DATA COMPR TOTAL COMP-RATIO STREAMS PID MOUNTPOINT" ] ||
    fail "default columns: $head"
row=$(printf '%s\n' "$out" | grep '^/dev/nbd15 ') || fail "no row for a"
set -- $row
[ "$1 $2 $3 $4 $5 ${10} ${11}" = "/dev/nbd15 a nbd zstd 64M 2 $pid" ] ||
    fail "a's row: $row (pid $pid)"
ok "default table: a on /dev/nbd15, nbd, zstd, 64M, 2 streams, pid $pid"

# trueno-ublk's own device (its files as trueno-ublk writes them, the
# figures a real server wrote, its server gone), and a trueno-swap ublk
# device whose files are trueno-ublk's, linked: each listed once.
cp "$run/a.json" "$run/ublk/ublk3.json"
echo 999999999 >"$run/ublk/ublk3.pid"
# A device with a supervisor: its server's pid file is no device of its own.
echo 999999998 >"$run/ublk/ublk3.server.pid"
cp "$run/a.json" "$run/ublk/ublk5.json"
echo /dev/ublkb5 >"$run/b.dev"
echo ublk >"$run/b.transport"
ln -s ublk/ublk5.json "$run/b.json"
out=$("$ts" status -r -n -o name,instance,transport,pid) || fail "status -r -n exited $?"
[ "$out" = "$(printf '/dev/nbd15 a nbd %s\n/dev/ublkb5 b ublk -\n/dev/nbd14 c nbd -\n/dev/ublkb3 ublk3 ublk -' "$pid")" ] ||
    fail "status -r -n -o name,instance,transport,pid:
$out"
ok "a, b (trueno-swap over ublk), c and ublk3 (trueno-ublk's, ublk3.server.pid not a device), once each"

# Values against the stats file, the server stopped (its final figures).
kill "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
pid=""
"$ts" status -J -b -o all >"$TMPD/b.json" || fail "status -J -b exited $?"
"$ts" status --json --output-all >"$TMPD/h.json" || fail "status --json exited $?"
"$ts" status --raw --bytes -o all >"$TMPD/raw" || fail "status --raw exited $?"
"$ts" status -o NAME,data,Comp-Ratio,+ >/dev/null 2>&1 && fail "an empty column name was accepted"
"$ts" status -o +migrated >"$TMPD/plus" || fail "status -o +migrated exited $?"
expect_err "unknown column 'NOPE'" "$ts" status -o name,nope
expect_err "unknown option '--frob'" "$ts" status --frob
expect_err "invalid --watch interval '0.01'" "$ts" status --watch 0.01
# The same under busybox sh and awk (the VM's, and small systems').
if command -v busybox >/dev/null; then
    mkdir -p "$TMPD/bb"
    ln -s "$(command -v busybox)" "$TMPD/bb/awk"
    PATH=$TMPD/bb:$PATH busybox sh "$ts" status -J -b -o all >"$TMPD/bb.json" ||
        fail "busybox: status -J exited $?"
    cmp "$TMPD/b.json" "$TMPD/bb.json" || fail "busybox: status -J -b -o all differs: $(diff "$TMPD/b.json" "$TMPD/bb.json")"
    ok "the same JSON under busybox sh and awk"
fi
"$PYTHON" -m json.tool "$TMPD/b.json" >/dev/null || fail "status -J -b is not JSON: $(cat "$TMPD/b.json")"
"$PYTHON" -m json.tool "$TMPD/h.json" >/dev/null || fail "status -J is not JSON: $(cat "$TMPD/h.json")"
"$PYTHON" - "$run/a.json" "$TMPD/b.json" "$TMPD/h.json" "$TMPD/raw" <<'EOF' || fail "values differ (above)"
import json, sys
st = json.load(open(sys.argv[1]))
b = {d["instance"]: d for d in json.load(open(sys.argv[2]))["truenodevices"]}
h = {d["instance"]: d for d in json.load(open(sys.argv[3]))["truenodevices"]}
raw = open(sys.argv[4]).read().split("\n")
bad = []
def check(cond, what):
    print(("  ok: " if cond else "  FAILED: ") + what)
    if not cond:
        bad.append(what)
def human(v):
    if v < 1024:
        return "%dB" % v
    i = 0
    while v >= 1024 and i < 6:
        v /= 1024; i += 1
    s = "%.1f" % v
    return (s[:-2] if s.endswith(".0") else s) + "KMGTPE"[i - 1]
cols = {"disksize": "disksize", "data": "orig_data_size", "compr": "compr_data_size",
        "total": "mem_used_total", "mem-limit": "mem_limit", "mem-used": "mem_used_max"}
nums = {"zero-pages": "same_pages", "migrated": "pages_compacted",
        "recompressed": "pages_recompressed"}
check(st["pages_stored"] > 1000 and st["orig_data_size"] > st["compr_data_size"] > 0,
      "the server stored and compressed the corpus (%d pages)" % st["pages_stored"])
a = b["a"]
for c, k in list(cols.items()) + list(nums.items()):
    check(a[c] == st[k], "--bytes --json %s = %s (%r)" % (c, k, a[c]))
for c, k in cols.items():
    check(h["a"][c] == human(st[k]), "--json %s = %r (%d bytes)" % (c, h["a"][c], st[k]))
# c: sizes under 1 KiB, in bytes.
sc = json.load(open(sys.argv[1].replace("a.json", "c.json")))
check(0 < sc["compr_data_size"] < 1024, "c's page compressed below 1 KiB (%d)" % sc["compr_data_size"])
for c, k in cols.items():
    check(h["c"][c] == human(sc[k]), "c: --json %s = %r (%d bytes)" % (c, h["c"][c], sc[k]))
check(a["comp-ratio"] == round(st["ratio"], 2), "comp-ratio %r = ratio %r" % (a["comp-ratio"], st["ratio"]))
check(a["algorithm"] == "zstd" and a["transport"] == "nbd" and a["name"] == "/dev/nbd15",
      "algorithm, transport, name")
check(a["pid"] is None, "pid null once the server is gone")
check(a["streams"] == 2, "streams 2 (the connections)")
check(a["mountpoint"] is None, "mountpoint null (not swap)")
check(a["grouped"] == st["pages_grouped"], "grouped = pages_grouped (%r)" % a["grouped"])
check(a["in/s"] is None, "no rates without --watch")
check(b["ublk3"]["name"] == "/dev/ublkb3" and b["ublk3"]["data"] == st["orig_data_size"],
      "ublk3 from trueno-ublk's run directory")
check(sorted(b) == ["a", "b", "c", "ublk3"], "four devices: %s" % sorted(b))
head = raw[0].split(" ")
row = dict(zip(head, next(l for l in raw if l.startswith("/dev/nbd15 ")).split(" ")))
check(len(head) == 21 and head[:12] == ["NAME", "DISKSIZE", "DATA", "COMPR", "ALGORITHM",
      "STREAMS", "ZERO-PAGES", "TOTAL", "MEM-LIMIT", "MEM-USED", "MIGRATED", "COMP-RATIO"],
      "--raw -o all: zramctl's columns first, then trueno's (%s)" % " ".join(head[12:]))
check(all(len(l.split(" ")) == len(head) for l in raw if l),
      "--raw: every line has a field per column")
for c, k in list(cols.items()) + list(nums.items()):
    check(row[c.upper()] == str(st[k]), "--raw --bytes %s = %s" % (c.upper(), row[c.upper()]))
sys.exit(1 if bad else 0)
EOF
[ "$(head -1 "$TMPD/plus" | tr -s ' ')" = "NAME INSTANCE TRANSPORT ALGORITHM DISKSIZE DATA COMPR TOTAL COMP-RATIO STREAMS PID MOUNTPOINT MIGRATED" ] ||
    fail "-o +migrated: $(head -1 "$TMPD/plus")"
ok "--json, --bytes, --raw, --output match the stats file"

# --watch: rates while a client writes (the stats change once a second).
nbdkit_serve "$run/a.sock" "$run/a.pid" "$run/a.log" --filter=limit "$TRUENO_PLUGIN" \
    size=64M stats="$run/a.json" limit=2
pid=$served_pid
( for _ in $(seq 10); do
      nbdcopy "$TMPD/data" "nbd+unix:///?socket=$run/a.sock" || exit 1
      sleep 0.3
  done ) &
writer=$!
tmo 30 "$ts" status --watch 1 --count 4 -o instance,data,in/s,out/s,recomp/s >"$TMPD/watch" ||
    fail "status --watch exited $?"
wait "$writer" || fail "the writer failed"
cat "$TMPD/watch"
[ "$(grep -c '^INSTANCE ' "$TMPD/watch")" -eq 4 ] || fail "--count 4: $(grep -c '^INSTANCE ' "$TMPD/watch") tables"
rates=$(awk '$1 == "a" { print $3 }' "$TMPD/watch" | tr '\n' ' ')
set -- $rates
[ "$1" = - ] || fail "the first table has a rate: $rates"
shift
max=0
for r in "$@"; do
    case "$r" in ''|*[!0-9]*) fail "IN/S not a number: $rates" ;; esac
    [ "$r" -le "$max" ] || max=$r
done
# 2048 pages a copy, up to 3 copies a second.
[ "$max" -ge 1000 ] && [ "$max" -le 20000 ] || fail "IN/S $rates: expected up to ~6000 pages/s"
ok "--watch 1 --count 4: IN/S $rates"
note "passed in $SECONDS s"
