#!/usr/bin/env bash
# fio over NBD: several jobs, each on its own connection and its own part of a
# 256 MiB export, queue depth 8, mixed block sizes down to 512 bytes (so most
# writes are not page aligned), random writes then crc32c verification of
# everything written.  fio must exit 0 and report no errors.
. "$(dirname "$0")/functions.sh"
require_cmd fio
require_python
fio --enghelp=nbd >/dev/null 2>&1 || fail "this fio has no nbd ioengine (fio --enghelp=nbd)"

xsize=$((256 * 1024 * 1024))
jobs=4
part=$((xsize / jobs))

cat >"$TMPD/job.fio" <<EOF
[global]
ioengine=nbd
uri=\${NBD_URI}
size=$part
offset_increment=$part
numjobs=$jobs
iodepth=8
bssplit=4k/50:8k/20:64k/20:512/10
$(fio_verify_lines)
randrepeat=0
group_reporting=0

[trueno]
EOF

for alg in lz4 zstd; do
    json=$TMPD/fio-$alg.json
    note "algorithm=$alg: fio $jobs jobs x $((part / 1048576)) MiB, iodepth 8, bssplit 4k/8k/64k/512, randwrite + verify=crc32c"
    export json
    rc=0
    trueno_run 180 size="$xsize" algorithm="$alg" -- '
        NBD_URI="$uri" fio --output-format=json --output="$json" "$TMPD/job.fio"
    ' 2>"$TMPD/fio.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$TMPD/fio.err" >&2
        grep -E '"error"|verify|bad' "$json" 2>/dev/null | head -n 20 >&2 || :
        fail "algorithm=$alg: fio exited $rc"
    fi
    grep -qi "verify.*bad\|bad magic\|crc32c: verify failed" "$TMPD/fio.err" &&
        fail "algorithm=$alg: fio reported verify failures: $(head -n 5 "$TMPD/fio.err")"
    "$PYTHON" - "$json" "$jobs" "$part" <<'EOF' || fail "algorithm=$alg: fio results wrong (see above)"
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text[text.index("{"):])       # fio may print notes before the JSON
jobs, part = int(sys.argv[2]), int(sys.argv[3])
bad = []
if len(d["jobs"]) != jobs:
    bad.append("expected %d jobs, got %d" % (jobs, len(d["jobs"])))
tw = tr = 0
for j in d["jobs"]:
    w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
    tw += w
    tr += r
    if j["error"] != 0:
        bad.append("job %s: error %d" % (j["jobname"], j["error"]))
    if w != part:
        bad.append("job %s wrote %d bytes, expected %d" % (j["jobname"], w, part))
    if r != w:
        bad.append("job %s verified (read) %d bytes of %d written" % (j["jobname"], r, w))
    if j.get("total_err", 0):
        bad.append("job %s: total_err %d" % (j["jobname"], j["total_err"]))
elapsed = max(j["job_runtime"] for j in d["jobs"]) / 1000.0
print("    wrote %d MiB, verified %d MiB, %.1f s per job" % (tw >> 20, tr >> 20, elapsed))
if bad:
    print("    " + "\n    ".join(bad))
    sys.exit(1)
EOF
    ok "algorithm=$alg: fio exit 0, no errors, every written byte verified"
done

# Interleaved sub-page writers: job k writes the 512-byte sectors k, k+8,
# k+16, ... (rw=write:3584 skips the other 7 sectors), so all 8 jobs, each on
# its own connection with 8 requests in flight, write into every 4 KiB page at
# the same time.  A read-modify-write of a page that is not serialised loses
# other jobs' sectors.  After all jobs finish, a second fio pass re-reads and
# verifies every sector (verify_only), catching sectors clobbered after their
# own job had already verified them.
isize=$((16 * 1024 * 1024))
cat >"$TMPD/interleave.fio" <<EOF
[global]
ioengine=nbd
uri=\${NBD_URI}
size=$isize
io_size=$((isize / 8))
bs=512
rw=write:3584
iodepth=8
verify=crc32c
verify_fatal=1
verify_state_save=0
buffer_compress_percentage=50
refill_buffers=1
EOF
for k in 0 1 2 3 4 5 6 7; do
    printf '[sector%d]\noffset=%d\n' "$k" $((k * 512)) >>"$TMPD/interleave.fio"
done
for alg in lz4 zstd; do
    json=$TMPD/il-$alg.json
    json2=$TMPD/il-$alg-verify.json
    note "algorithm=$alg: 8 jobs writing interleaved 512-byte sectors of the same pages, then verify_only"
    export json json2
    rc=0
    trueno_run 180 size=$((isize + 4096)) algorithm="$alg" -- '
        NBD_URI="$uri" fio --output-format=json --output="$json" "$TMPD/interleave.fio" || exit 1
        NBD_URI="$uri" fio --verify_only --output-format=json --output="$json2" "$TMPD/interleave.fio" || exit 2
    ' 2>"$TMPD/fio.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        head -n 20 "$TMPD/fio.err" >&2
        fail "algorithm=$alg: interleaved sub-page writers: fio failed in pass $rc (lost or corrupted sectors)"
    fi
    "$PYTHON" - "$json" "$json2" "$isize" <<'EOF' || fail "algorithm=$alg: interleaved fio results wrong"
import json, sys
def load(f):
    t = open(f).read()
    return json.loads(t[t.index("{"):])
a, b, isize = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
w = sum(j["write"]["io_bytes"] for j in a["jobs"])
r1 = sum(j["read"]["io_bytes"] for j in a["jobs"])
r2 = sum(j["read"]["io_bytes"] for j in b["jobs"])
errs = [j["error"] for j in a["jobs"] + b["jobs"] if j["error"]]
print("    wrote %d KiB in 512-byte sectors, verified %d KiB during the run and %d KiB afterwards"
      % (w >> 10, r1 >> 10, r2 >> 10))
bad = errs or w != isize or r1 != w or r2 != w
sys.exit(1 if bad else 0)
EOF
    ok "algorithm=$alg: no sector lost by concurrent sub-page writes"
done

note "passed in $(elapsed)s"
