#!/usr/bin/env bash
# trueno-bench on one corpus file, one repetition: every codec it lists
# round-trips every page (a mismatch is an error exit), --json prints one
# well-formed object per codec with the documented keys, the table prints.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/functions.sh"
require_corpus
require_python
bench=${abs_top_builddir:-$(dirname "$0")/..}/trueno-bench
[ -x "$bench" ] || fail "no trueno-bench at $bench"
f=$TRUENO_CORPUS/gcc-sqlite.pages

tmo 300 "$bench" --repeat 1 --json "$f" >"$TMPD/out.json" ||
    fail "trueno-bench --json failed"
"$PYTHON" - "$TMPD/out.json" <<'PY' || fail "bad --json output"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = [r["codec"] for r in rows]
want = {"trueno-lz4", "trueno-lz4-scalar", "liblz4", "liblz4-fast",
        "libzstd-1", "libzstd-3", "classify", "engine-lz4", "engine-zstd"}
missing = want - set(names)
assert not missing, missing
for r in rows:
    assert set(r) == {"file", "codec", "pages", "ratio", "compress_mbps",
                      "decompress_mbps"}, r
    assert r["file"] == "gcc-sqlite.pages" and r["pages"] == 6144, r
    assert r["compress_mbps"] > 0, r
    if r["codec"] != "classify":
        assert r["ratio"] > 1 and r["decompress_mbps"] > 0, r
lz = {r["codec"]: r for r in rows}
# Same-filled pages count as free in the engine only.
assert lz["engine-lz4"]["ratio"] >= lz["trueno-lz4"]["ratio"] * 0.99
PY
ok "--json: one object per codec, documented keys"
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
    "$PYTHON" - "$TMPD/ocl.json" <<'PY' || fail "bad --opencl output"
import json, sys
rows = {r["codec"]: r for r in map(json.loads, open(sys.argv[1]))}
want = {"liblz4", "engine-lz4", "opencl-lz4-b7", "opencl-lz4-b64", "engine-lz4-r8192",
        "engine-lz4-ocl-r8192"}
assert set(rows) == want, set(rows)
assert rows["opencl-lz4-b7"]["pages"] == 6146, rows["opencl-lz4-b7"]
for r in rows.values():
    assert r["ratio"] > 2 and r["compress_mbps"] > 0 and r["decompress_mbps"] > 0, r
PY
    tmo 120 "$bench" --opencl-auto >"$TMPD/auto" || fail "--opencl-auto failed"
    grep -q '"offload_active": "\(cpu\|opencl\)"' "$TMPD/auto" || fail "--opencl-auto: $(cat "$TMPD/auto")"
    note "$(head -1 "$TMPD/auto")"
    ok "--opencl: device and engine rows verified; --opencl-auto decides"
else
    note "no OpenCL device: $(cat "$TMPD/list")"
fi
note "passed in $(elapsed)s"
