#!/usr/bin/env bash
# trueno-bench on the corpus files, one repetition: every codec it lists
# round-trips every page (a mismatch is an error exit), --json prints one
# well-formed object per file and codec with the documented keys, the table
# prints.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/functions.sh"
require_corpus
require_python
bench=${abs_top_builddir:-$(dirname "$0")/..}/trueno-bench
[ -x "$bench" ] || fail "no trueno-bench at $bench"
files=()
for n in $CORPUS_FILES; do files+=("$TRUENO_CORPUS/$n"); done
f=${files[0]}

tmo 300 "$bench" --repeat 1 --json "${files[@]}" >"$TMPD/out.json" ||
    fail "trueno-bench --json failed"
"$PYTHON" - "$TMPD/out.json" "${files[@]}" <<'PY' || fail "bad --json output"
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pages = {os.path.basename(f): os.path.getsize(f) // 4096 for f in sys.argv[2:]}
want = {"trueno-lz4", "trueno-lz4-scalar", "liblz4", "liblz4-fast",
        "libzstd-1", "libzstd-3", "classify", "engine-lz4", "engine-zstd"}
for name in pages:
    missing = want - {r["codec"] for r in rows if r["file"] == name}
    assert not missing, (name, missing)
for r in rows:
    assert set(r) == {"file", "codec", "pages", "ratio", "compress_mbps",
                      "decompress_mbps"}, r
    assert r["file"] in pages and r["pages"] == pages[r["file"]], r
    assert r["compress_mbps"] > 0, r
    if r["codec"] != "classify":
        assert r["ratio"] > 1 and r["decompress_mbps"] > 0, r
for name in pages:
    lz = {r["codec"]: r for r in rows if r["file"] == name}
    # Same-filled pages count as free in the engine only; raw pages cost it
    # a whole page (measured 0.998-1.004x trueno-lz4's ratio).
    assert lz["engine-lz4"]["ratio"] >= lz["trueno-lz4"]["ratio"] * 0.99, lz
PY
ok "--json: one object per file and codec, documented keys"
tmo 300 "$bench" --repeat 1 --codec trueno-lz4,liblz4 "$f" "$f" \
    >"$TMPD/table" || fail "table run failed"
# The ISA paths this CPU supports, from an all-codec table run on one file.
tmo 300 "$bench" --repeat 1 "$f" "$f" >"$TMPD/all" ||
    fail "table run of all codecs failed"
grep -q '^(geomean) *trueno-lz4 ' "$TMPD/table" || fail "no geomean rows"
sed 's/^/    | /' "$TMPD/table"
if "$bench" --codec no-such-codec "$f" >/dev/null 2>&1; then
    fail "unknown codec accepted"
fi
ok "table, --codec, unknown codec refused"

# No FILE: the *.pages of $TRUENO_CORPUS, else of the build tree's
# tests/corpus beside the program.
tmo 120 "$bench" --repeat 1 --codec liblz4 --json >"$TMPD/nofile.json" ||
    fail "no FILE: run failed"
got=$(sed 's/.*"file": "\([^"]*\)".*/\1/' "$TMPD/nofile.json" | tr '\n' ' ')
[ "$got" = "$CORPUS_FILES " ] || fail "no FILE: read '$got', want '$CORPUS_FILES'"
own=$(dirname "$bench")/tests/corpus
if ls "$own"/*.pages >/dev/null 2>&1; then
    want=$(cd "$own" && ls *.pages | tr '\n' ' ')
    got=$(env -u TRUENO_CORPUS "$bench" --repeat 1 --codec liblz4 --json |
          sed 's/.*"file": "\([^"]*\)".*/\1/' | tr '\n' ' ')
    [ "$got" = "$want" ] || fail "no FILE, no TRUENO_CORPUS: read '$got', want '$want'"
fi
if TRUENO_CORPUS=$TMPD/none "$bench" --repeat 1 >/dev/null 2>"$TMPD/err"; then
    fail "no FILE and no corpus: succeeded"
fi
grep -q 'no \*.pages in' "$TMPD/err" || fail "no FILE and no corpus: $(cat "$TMPD/err")"
ok "no FILE: the corpus's files ($got)"

# TRUENO_ISA forces each path this CPU has, through the engine too.
for isa in $(sed -n 's/^(geomean) *trueno-lz4-\([a-z0-9]*\) .*/\1/p' "$TMPD/all"); do
    TRUENO_ISA=$isa tmo 120 "$bench" --repeat 1 \
        --codec trueno-lz4,engine-lz4 "$f" >"$TMPD/isa" ||
        fail "TRUENO_ISA=$isa: run failed"
    grep -q "^# trueno-lz4 and the engine use the $isa path" "$TMPD/isa" ||
        fail "TRUENO_ISA=$isa not honoured: $(head -1 "$TMPD/isa")"
    note "TRUENO_ISA=$isa: $(head -1 "$TMPD/isa")"
done
ok "TRUENO_ISA forces every supported path"

# --opencl (when built with OpenCL): device rows at two batch sizes and the
# engine rows with and without the device, every page verified.
if "$bench" --opencl-list >"$TMPD/list" 2>&1; then
    tmo 300 "$bench" --repeat 1 --json --codec liblz4,engine-lz4 --opencl --batch 7 64 \
        "$f" >"$TMPD/ocl.json" || fail "trueno-bench --opencl failed"
    "$PYTHON" - "$TMPD/ocl.json" "$f" <<'PY' || fail "bad --opencl output"
import json, os, sys
rows = {r["codec"]: r for r in map(json.loads, open(sys.argv[1]))}
want = {"liblz4", "engine-lz4", "opencl-lz4-b7", "opencl-lz4-b64", "engine-lz4-r8192",
        "engine-lz4-ocl-r8192"}
assert set(rows) == want, set(rows)
n = os.path.getsize(sys.argv[2]) // 4096
assert rows["opencl-lz4-b7"]["pages"] == -(-n // 7) * 7, rows["opencl-lz4-b7"]
# The device compresses as liblz4 does: measured 0.997-1.005x its ratio.
for r in rows.values():
    assert r["ratio"] >= 0.95 * rows["liblz4"]["ratio"] and r["ratio"] > 1, r
    assert r["compress_mbps"] > 0 and r["decompress_mbps"] > 0, r
PY
    tmo 120 "$bench" --opencl-auto >"$TMPD/auto" || fail "--opencl-auto failed"
    grep -q '"offload_active": "\(cpu\|opencl\)"' "$TMPD/auto" || fail "--opencl-auto: $(cat "$TMPD/auto")"
    note "$(head -1 "$TMPD/auto")"
    ok "--opencl: device and engine rows verified; --opencl-auto decides"
else
    note "no OpenCL device: $(cat "$TMPD/list")"
fi

# trueno-density: both stores per file and interleaved, every page verified
# after grouping (a mismatch is an error exit); settled at least as dense
# as per-page zstd on every file (a group is kept only when it saves).
density=${abs_top_builddir:-$(dirname "$0")/..}/trueno-density
[ -x "$density" ] || fail "no trueno-density at $density"
tmo 300 "$density" --group 16 --interleave 8 "${files[@]}" >"$TMPD/density.md" ||
    fail "trueno-density failed"
"$PYTHON" - "$TMPD/density.md" "${#files[@]}" <<'PY' || fail "bad trueno-density table"
import sys
rows = [l.split("|")[1:-1] for l in open(sys.argv[1]) if l.startswith("| ")]
rows = [[c.strip() for c in r] for r in rows if r[0].strip() != "data"]
assert len(rows) == int(sys.argv[2]) + 1, rows  # each file, interleaved
for r in rows:
    per, settled = float(r[2]), float(r[3])
    assert settled >= per * 0.99, r
PY
ok "trueno-density: $(grep -c '^| ' "$TMPD/density.md") rows"
note "passed in $(elapsed)s"
