#!/usr/bin/env bash
# scripts/bench-report: a short real scripts/bench-nbd --report run on one
# corpus file writes report.md with the three tables holding numbers and
# three SVG charts that parse as XML and plot every system; on a hand-made
# rows file the known figures reach the tables; malformed or empty rows
# are a clear error.  scripts/bench-recovery on a small store: a row of
# figures, every kill followed by a correct read.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/functions.sh"
require_corpus
require_python
require_cmd gnuplot nbdkit nbdcopy fio
scripts=$test_dir/../scripts
# The smallest corpus file: the run stays short.
f=$(ls -S "$TRUENO_CORPUS"/*.pages | tail -1)

# --no-zram: a test must not reset the host's zram0.  trueno-lz4-state
# (a persistent store, its pages a memfd's) is opt-in: named with the rest.
servers=trueno-lz4,trueno-zstd,trueno-cold,memory,memory-zstd,trueno-lz4-state
tmo 300 "$scripts/bench-nbd" --repeat 1 --runtime 1 --no-zram \
    --servers "$servers" --report "$TMPD/real" "$f" \
    >"$TMPD/real.txt" 2>"$TMPD/real.err" ||
    fail "bench-nbd --report failed: $(tail -3 "$TMPD/real.err")"
grep -q "^| $(basename "$f") | trueno-lz4 | [0-9]" "$TMPD/real.txt" ||
    fail "bench-nbd's text table changed: $(head -3 "$TMPD/real.txt")"
grep -q "^  $(basename "$f") trueno-lz4-state: copy_mbps [0-9.]*x" \
    "$TMPD/real.txt" ||
    fail "no state= summary: $(tail -3 "$TMPD/real.txt")"
# The same store in shared memory must cost about the same memory: its
# pages are RssShmem, which the ratio counted as nothing before.
"$PYTHON" - "$TMPD/real/rows.jsonl" <<'PY' || fail "memory ratio of trueno-lz4-state"
import json, sys
rows = {r["server"]: r for r in map(json.loads, open(sys.argv[1]))}
anon, state = rows["trueno-lz4"]["ratio"], rows["trueno-lz4-state"]["ratio"]
print(f"memory ratio: trueno-lz4 {anon:.2f}, trueno-lz4-state {state:.2f}")
sys.exit(not 0.8 * anon <= state <= 1.25 * anon)
PY

# check_report DIR SERVERS: every table row holds a number per system,
# each SVG parses and has one plotted series a system, drawn.
check_report() {
    "$PYTHON" - "$@" <<'PY'
import re, sys, xml.etree.ElementTree as ET
d, servers = sys.argv[1], sys.argv[2].split(",")
md = open(f"{d}/report.md").read()
for title in ("## Memory ratio per data set", "## IOPS per workload",
              "## Latency percentiles"):
    assert title in md, title
    sec = md.split(title, 1)[1].split("\n## ", 1)[0]
    rows = [l.split("|")[1:-1] for l in sec.splitlines() if l.startswith("| ")]
    head, body = [c.strip() for c in rows[0]], rows[1:]
    assert body, (title, "no rows")
    if title.startswith("## Latency"):
        assert head[2:] == ["p50", "p90", "p99", "p99.9"], head
        assert {r[1].strip() for r in body} == set(servers), body
    else:
        assert head[1:] == servers, (title, head)
    for r in body:
        nums = [c.strip() for c in r[1:] if re.fullmatch(r" *[0-9.]+ *", c)]
        assert nums and all(float(n) > 0 for n in nums), (title, r)
ns = "{http://www.w3.org/2000/svg}"
for chart in ("ratio", "iops", "latency"):
    root = ET.parse(f"{d}/{chart}.svg").getroot()
    assert root.tag == ns + "svg", root.tag
    texts = {t.text.strip() for t in root.iter(ns + "text") if t.text}
    assert set(servers) <= texts, (chart, set(servers) - texts)
    plots = [g for g in root.iter(ns + "g")
             if g.get("id", "").startswith("gnuplot_plot")]
    assert len(plots) >= len(servers), (chart, len(plots))
    for g in plots:  # the key's sample (2 points) and a bar or a line
        pts = sum(len(re.findall(r"[0-9.]+,[0-9.]+", p.get("d", "")))
                  for p in g.iter(ns + "path"))
        assert pts >= 4, (chart, g.get("id"), pts)
PY
}
check_report "$TMPD/real" "$servers" ||
    fail "bad report from bench-nbd --report"
ok "bench-nbd --report: $(grep -c '^| ' "$TMPD/real/report.md") table rows, 3 charts"

# Recovery after SIGKILL: its own check of every first read, a table row.
tmo 120 "$scripts/bench-recovery" --gib 0.02 --repeat 2 "$f" \
    >"$TMPD/rec.txt" 2>"$TMPD/rec.err" ||
    fail "bench-recovery failed: $(tail -3 "$TMPD/rec.err")"
grep -Eq '^\| 0.02 \| [0-9.]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9.]+ \| [0-9]+ \| [0-9]+ \|$' \
    "$TMPD/rec.txt" || fail "bench-recovery's table: $(cat "$TMPD/rec.txt")"
ok "bench-recovery: $(tail -1 "$TMPD/rec.txt")"

# Known figures in, the same figures out (medians over the data sets).
mkdir "$TMPD/known"
cat >"$TMPD/known/rows.jsonl" <<'JSON'
{"file": "a.pages", "server": "sys-a", "ratio": 2.5, "randread_qd1_iops": 1000, "randread_qd1_p50_us": 12.5, "randread_qd1_p90_us": 20, "randread_qd1_p99_us": 40, "randread_qd1_p99_9_us": 900}
{"file": "b.pages", "server": "sys-a", "ratio": 3.75, "randread_qd1_iops": 3000, "randread_qd1_p50_us": 12.5, "randread_qd1_p90_us": 20, "randread_qd1_p99_us": 40, "randread_qd1_p99_9_us": 900}
{"file": "a.pages", "server": "sys-b", "ratio": 1.25, "randread_qd1_iops": 5000, "randread_qd1_p50_us": 7.5, "randread_qd1_p90_us": 8, "randread_qd1_p99_us": 9, "randread_qd1_p99_9_us": 150}
{"file": "b.pages", "server": "sys-b", "ratio": 0.5, "randread_qd1_iops": 5000, "randread_qd1_p50_us": 7.5, "randread_qd1_p90_us": 8, "randread_qd1_p99_us": 9, "randread_qd1_p99_9_us": 150}
JSON
tmo 60 "$scripts/bench-report" "$TMPD/known" >/dev/null || fail "bench-report on known rows failed"
check_report "$TMPD/known" sys-a,sys-b || fail "bad report from known rows"
for want in '| a.pages | 2.50 | 1.25 |' '| b.pages | 3.75 | 0.50 |' \
            '| randread_qd1 | 2000 | 5000 |' \
            '| randread_qd1 | sys-a | 12.5 | 20.0 | 40.0 | 900 |' \
            '| randread_qd1 | sys-b | 7.5 | 8.0 | 9.0 | 150 |'; do
    grep -qF "$want" "$TMPD/known/report.md" ||
        fail "known rows: no '$want' in: $(cat "$TMPD/known/report.md")"
done
ok "known rows: the figures reach the tables"

# Bad input: a clear error naming the line, no report.
mkdir "$TMPD/bad"
head -1 "$TMPD/known/rows.jsonl" >"$TMPD/bad/rows.jsonl"
echo '{"file": "a.pages", "server": "x", "ratio": 2.5' >>"$TMPD/bad/rows.jsonl"
expect_err 'rows.jsonl:2: not a JSON object' "$scripts/bench-report" "$TMPD/bad"
echo '{"file": "a.pages", "server": "x", "ratio": "fast"}' >"$TMPD/bad/rows.jsonl"
expect_err '"ratio" is not a non-negative number' "$scripts/bench-report" "$TMPD/bad"
echo '{"server": "x", "ratio": 1}' >"$TMPD/bad/rows.jsonl"
expect_err 'rows.jsonl:1: no "file" string' "$scripts/bench-report" "$TMPD/bad"
: >"$TMPD/bad/rows.jsonl"
expect_err 'rows.jsonl: no rows' "$scripts/bench-report" "$TMPD/bad"
expect_err 'cannot read' "$scripts/bench-report" "$TMPD/none"
[ ! -e "$TMPD/bad/report.md" ] || fail "a report written from bad rows"
note "passed in $(elapsed)s"
