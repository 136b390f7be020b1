#!/usr/bin/env bash
# group=: through a real nbdkit, idle pages are compressed together in
# cold groups by the housekeeping thread (the stats file shows it, memory
# goes down), pages read all along stay out of them, members are read
# back one by one and in runs, rewritten and trimmed; every byte reads back
# as the model says, with nbdcopy.
. "$(dirname "$0")/functions.sh"
require_corpus
require_cmd nbdcopy
require_nbd_python
require_python

cat >"$TMPD/t.py" <<'PY'
import os, random, subprocess, sys, time
import nbd

uri, stats, src, out, model_out = sys.argv[1:6]
P = 4096
sys.path.insert(0, os.environ["TESTS_DIR"])
from checks import check, load_stats, status

def load():
    return load_stats(stats)

model = bytearray(open(src, "rb").read())
npages = len(model) // P
subprocess.run(["nbdcopy", src, uri], check=True)
h = nbd.NBD()
h.connect_uri(uri)
hot = h.pread(256 * P, 0)          # the first MiB: read all along
time.sleep(1.2)
s0 = load()
stored = s0["pages_stored"] - s0["same_pages"]
t0, s, last, still = time.monotonic(), s0, -1, 0
while time.monotonic() - t0 < 60:
    if h.pread(256 * P, 0) != hot:
        check(False, "the hot MiB reads back the same while others are grouped")
        break
    s = load()
    # Done when grouping has stopped moving for a second and a half.
    still = still + 1 if s["pages_grouped"] == last and last > 0 else 0
    last = s["pages_grouped"]
    if still >= 6:
        break
    time.sleep(0.25)
print("  %d stored pages: %d in %d groups (frames %d bytes) in %.1f s; "
      "mem_used_total %d -> %d" % (stored, s["pages_grouped"], s["groups"],
      s["group_frame_bytes"], time.monotonic() - t0, s0["mem_used_total"],
      s["mem_used_total"]))
check(s["groups"] > 0 and s["pages_grouped"] > stored // 2,
      "most idle pages were grouped")
check(s["pages_grouped"] <= stored - 256,
      "pages read all along stayed out of groups")
check(s["mem_used_total"] < s0["mem_used_total"] * 0.8,
      "memory went down below 0.8 of lz4's: %d -> %d"
      % (s0["mem_used_total"], s["mem_used_total"]))
# Members: a run (decoded once per group), then random pages.
run = h.pread(64 * P, 512 * P)
check(run == bytes(model[512 * P:576 * P]), "a run of members reads back")
for _ in range(200):
    p = random.randrange(npages)
    if h.pread(P, p * P) != bytes(model[p * P:(p + 1) * P]):
        check(False, "member %d reads back" % p)
        break
time.sleep(1.3)  # the stats file is written once a second
s1 = load()
check(s1["group_cache_hits"] > 0 and s1["group_decodes"] > 0,
      "reads went through the group cache (%d hits, %d decodes)"
      % (s1["group_cache_hits"], s1["group_decodes"]))
# Rewrites, partial writes and trims of members take them out of groups.
random.seed(7)
for _ in range(300):
    p = random.randrange(256, npages)
    k = random.randrange(3)
    if k == 0:
        data = os.urandom(P)
        h.pwrite(data, p * P)
        model[p * P:(p + 1) * P] = data
    elif k == 1:
        o = random.randrange(P - 100)
        h.pwrite(b"x" * 100, p * P + o)
        model[p * P + o:p * P + o + 100] = b"x" * 100
    else:
        h.trim(P, p * P)
        model[p * P:(p + 1) * P] = bytes(P)
time.sleep(1.3)
s2 = load()
check(s2["group_dead_bytes"] > 0, "members left their groups (%d dead bytes)"
      % s2["group_dead_bytes"])
h.shutdown()
open(model_out, "wb").write(model)
subprocess.run(["nbdcopy", uri, out], check=True)
sys.exit(status())
PY

src=$TMPD/src
# 20 MiB of the corpus: structures, text, numbers, raw pages.
corpus_data $((20 << 20)) "$src"
fsize=$(stat -c %s "$src")
stats=$TMPD/stats.json out=$TMPD/out model=$TMPD/model
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
export stats out src model TMPD PYTHON TESTS_DIR PYTHONDONTWRITEBYTECODE=1
note "group=16 group-idle=2 recompress=zstd: $fsize bytes in, grouped, changed, out again"
trueno_run 150 size="$fsize" group=16 group-idle=2 group-rate=8192 \
    recompress=zstd recompress-idle=2 stats="$stats" -- \
    '"$PYTHON" "$TMPD/t.py" "$uri" "$stats" "$src" "$out" "$model"' ||
    fail "group: failed (exit $?)"
cmp "$model" "$out" || fail "group: data read back differs from the model"
ok "group: all passed in $(elapsed) s"
