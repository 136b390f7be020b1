#!/usr/bin/env bash
# prometheus=FILE: the engine's counters for node_exporter's textfile
# collector.  Bad prometheus=, prometheus-mode= and name= values are refused
# before serving, naming the parameter; served, the file appears within
# ~2 s, is 0600 (prometheus-mode=0644: 0644), is never read half-written,
# follows nbdcopy's writes (the same numbers as the JSON stats file), labels
# its samples with the device (name=, else the file's name) and the
# algorithm, holds the final counters after SIGTERM, leaves no temporary
# file, and replaces a symlink planted at its name instead of writing
# through it.  `promtool check metrics` (Debian's prometheus package)
# accepts every file written; without promtool the rest still runs, then
# the test is a skip (exit 77), which scripts/test turns into a failure.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_nbd_python
require_cmd nbdcopy awk stat
have_promtool=
command -v promtool >/dev/null 2>&1 && have_promtool=1

# value FILE SAMPLE: the value of the sample line "SAMPLE value" ('' if none).
value() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }

promcheck() {
    [ -n "$have_promtool" ] || return 0
    local out
    out=$(promtool check metrics <"$1" 2>&1) ||
        fail "promtool check metrics rejects $1: $out"
}

# --- refusals, before serving --------------------------------------------
run_bad() { nbdkit -U - "$TRUENO_PLUGIN" size=1M "$@" --run true; }
expect_err "prometheus: cannot write beside $TMPD/none/t.prom" \
    run_bad prometheus="$TMPD/none/t.prom"
expect_err "prometheus: cannot write beside $TMPD" run_bad prometheus="$TMPD"
expect_err "prometheus: needs a file name" run_bad prometheus=
expect_err "prometheus-mode: '0666' is not an octal mode" \
    run_bad prometheus="$TMPD/t.prom" prometheus-mode=0666
expect_err "prometheus-mode: '0400'" run_bad prometheus="$TMPD/t.prom" prometheus-mode=0400
expect_err "prometheus-mode: 'rw'" run_bad prometheus="$TMPD/t.prom" prometheus-mode=rw
expect_err "name: 'a\"b' is not a device label" \
    run_bad prometheus="$TMPD/t.prom" 'name=a"b'
expect_err "name: only applies with prometheus=FILE" run_bad name=swap0
expect_err "prometheus-mode: only applies with prometheus=FILE" \
    run_bad prometheus-mode=0644
expect_err "prometheus: the file name 'a b.prom' is no device label" \
    run_bad prometheus="$TMPD/a b.prom"
[ -z "$(ls -A "$TMPD")" ] || fail "refused runs left files: $(ls -A "$TMPD")"
help=$(nbdkit "$TRUENO_PLUGIN" --help)
for k in prometheus= prometheus-mode= name=; do
    case "$help" in *"$k"*) ;; *) fail "--help does not list $k" ;; esac
done
nbdkit "$TRUENO_PLUGIN" --dump-plugin | grep -qx trueno_prometheus=yes ||
    fail "--dump-plugin lacks trueno_prometheus=yes"
ok "--help lists prometheus=, prometheus-mode=, name=; --dump-plugin says trueno_prometheus=yes"

# --- served -----------------------------------------------------------------
# serve DIR ARGS...: a background nbdkit on DIR/sock, ready.
serve() {
    local dir=$1; shift
    nbdkit -f -U "$dir/sock" -P "$dir/pid" "$TRUENO_PLUGIN" size=64M "$@" \
        2>"$dir/nbdkit.err" &
    bgpid=$!
    for _ in $(seq 100); do [ -S "$dir/sock" ] && [ -s "$dir/pid" ] && break; sleep 0.1; done
    [ -S "$dir/sock" ] || { kill "$bgpid" 2>/dev/null || :; fail "nbdkit did not start: $(cat "$dir/nbdkit.err")"; }
}
stop() {
    kill -TERM "$bgpid"
    local rc=0
    tmo 30 bash -c "while kill -0 $bgpid 2>/dev/null; do sleep 0.1; done" || rc=$?
    [ "$rc" -eq 0 ] || { kill -KILL "$bgpid" 2>/dev/null || :; fail "nbdkit did not exit within 30 s of SIGTERM"; }
    wait "$bgpid" || :
}
# settle FILE: returns once FILE has been replaced twice (a snapshot taken
# after whatever came before the call); fails after 3 s.
settle() {
    local ino n=0
    ino=$(stat -c %i "$1")
    for _ in $(seq 60); do
        sleep 0.05
        [ "$(stat -c %i "$1")" = "$ino" ] && continue
        ino=$(stat -c %i "$1")
        n=$((n + 1))
        [ "$n" -lt 2 ] || return 0
    done
    fail "$1 not rewritten within 3 s"
}

for alg in lz4 zstd; do
    d=$TMPD/$alg
    mkdir -p "$d/out"
    prom=$d/out/trueno-$alg.prom json=$d/out/stats.json
    note "algorithm=$alg: prometheus=FILE beside stats=FILE, label from the file name"
    serve "$d" algorithm="$alg" prometheus="$prom" stats="$json"
    for _ in $(seq 40); do [ -f "$prom" ] && break; sleep 0.05; done
    [ -f "$prom" ] || fail "no $prom 2 s after start"
    mode=$(stat -c %a "$prom")
    [ "$mode" = 600 ] || fail "mode $mode, not 600"
    promcheck "$prom"
    dev="device=\"trueno-$alg\""
    [ "$(value "$prom" "trueno_info{$dev,algorithm=\"$alg\"}")" = 1 ] ||
        fail "no trueno_info{$dev,algorithm=\"$alg\"} 1 in: $(head -5 "$prom")"
    [ "$(value "$prom" "trueno_pages_written_total{$dev}")" = 0 ] ||
        fail "a fresh store has written pages: $(grep pages_written "$prom")"
    [ "$(value "$prom" "trueno_disksize_bytes{$dev}")" = $((64 << 20)) ] ||
        fail "disksize: $(grep disksize "$prom")"
    ok "algorithm=$alg: 0600, fresh counters, the labels"

    # 4 MiB of the corpus: 1024 pages in, and the file is re-read while the
    # server replaces it: every read is whole (as many TYPE lines).
    require_corpus
    corpus_data $((4 << 20)) "$d/data"
    types=$(grep -c '^# TYPE ' "$prom")
    ( for _ in $(seq 50); do
          n=$(grep -c '^# TYPE ' "$prom" || :)
          [ "$n" = "$types" ] || { echo "torn read: $n TYPE lines of $types"; exit 1; }
          sleep 0.02
      done ) &
    reader=$!
    tmo 60 nbdcopy "$d/data" "nbd+unix:///?socket=$d/sock" ||
        fail "nbdcopy into the server failed"
    wait "$reader" || fail "the file was read half-written"
    settle "$prom"
    pw=$(value "$prom" "trueno_pages_written_total{$dev}")
    written=$(value "$prom" "trueno_writes_total{$dev}")
    stored=$(value "$prom" "trueno_pages_stored{$dev}")
    comp=$(value "$prom" "trueno_compressed_pages{$dev,algorithm=\"$alg\"}")
    used=$(value "$prom" "trueno_mem_used_bytes{$dev}")
    trimmed=$(value "$prom" "trueno_pages_trimmed_total{$dev}")
    # nbdcopy sends the corpus' zero pages as zero requests, not writes.
    [ "$pw" -gt 900 ] && [ "$pw" -le 1024 ] && [ "$written" -gt 0 ] &&
        [ "$stored" -gt 0 ] && [ "$comp" -gt 0 ] &&
        [ "$comp" -le "$stored" ] && [ "$used" -gt 0 ] ||
        fail "counters after the writes: pages written $pw, writes $written, stored $stored, compressed $comp, mem_used $used"
    promcheck "$prom"
    # The JSON stats file, written from the same snapshot, agrees.
    "$PYTHON" - "$json" "$alg" "$written" "$stored" "$comp" "$pw" <<'PY' ||
import json, sys
s = json.load(open(sys.argv[1]))
want = {"writes": int(sys.argv[3]), "pages_stored": int(sys.argv[4]),
        sys.argv[2] + "_pages": int(sys.argv[5]),
        "pages_written": int(sys.argv[6])}
bad = {k: (s.get(k), v) for k, v in want.items() if s.get(k) != v}
sys.exit("json (got, want): %r" % bad if bad else 0)
PY
        fail "the JSON stats file and the Prometheus file disagree"
    ok "algorithm=$alg: $pw pages written, $stored stored ($comp compressed), mem_used $used; as in the JSON"

    # After SIGTERM: the final counters, nothing else left in the directory.
    tmo 30 "$PYTHON" -c '
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1])
h.pwrite((b"last pages " * 2979)[:32768], 0); h.trim(4096 * 8, 0); h.shutdown()' \
        "nbd+unix:///?socket=$d/sock" || fail "trim failed"
    stop
    [ "$(value "$prom" "trueno_trims_total{$dev}")" -ge 1 ] ||
        fail "the final file lacks the last trim: $(grep trims "$prom")"
    [ "$(value "$prom" "trueno_pages_trimmed_total{$dev}")" = $((trimmed + 8)) ] ||
        fail "the final file lacks the trimmed pages: $(grep pages_trimmed "$prom")"
    promcheck "$prom"
    left=$(cd "$d/out" && ls -A | grep -vx -e "trueno-$alg.prom" -e stats.json || :)
    [ -z "$left" ] || fail "left beside the files: $left"
    ok "algorithm=$alg: final counters after SIGTERM, no temporary file left"
done

# name=, prometheus-mode=0644, and a symlink at the file's name.
d=$TMPD/named
mkdir -p "$d/out"
echo "not metrics" >"$d/victim"
ln -s "$d/victim" "$d/out/m.prom"
serve "$d" prometheus="$d/out/m.prom" prometheus-mode=0644 name=swap0
sleep 1.5
[ "$(cat "$d/victim")" = "not metrics" ] ||
    fail "written through the symlink: $(head -c 80 "$d/victim")"
[ -f "$d/out/m.prom" ] && [ ! -L "$d/out/m.prom" ] ||
    fail "the symlink was not replaced by the file"
mode=$(stat -c %a "$d/out/m.prom")
[ "$mode" = 644 ] || fail "prometheus-mode=0644: mode $mode"
[ "$(value "$d/out/m.prom" 'trueno_info{device="swap0",algorithm="lz4"}')" = 1 ] ||
    fail "name=swap0: $(grep '^trueno_info' "$d/out/m.prom")"
promcheck "$d/out/m.prom"
stop
ok "name=swap0 labels the samples; prometheus-mode=0644; a planted symlink is replaced, not followed"

if [ -z "$have_promtool" ]; then
    [ -z "${TRUENO_TEST_NO_SKIP:-}" ] ||
        fail "promtool not found (install Debian's prometheus package: scripts/deps test)"
    note "SKIP: promtool not found: everything but promtool's check passed"
    exit 77
fi
[ -n "$have_promtool" ] && note "promtool check metrics accepted every file"
note "passed in $(elapsed)s"
