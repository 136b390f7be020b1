#!/usr/bin/env bash
# nbdcopy round trip: every corpus file, with each algorithm, copied into the
# export and back out is byte-identical.  Then extents: unwritten space is
# reported as hole/zero and nbdcopy does not read it.
. "$(dirname "$0")/functions.sh"
require_corpus
require_cmd nbdcopy nbdinfo
require_python

# Round trips.  The export is a little larger than the file, so the copy back
# out also checks that the unwritten tail reads as zeros.
for alg in lz4 zstd; do
    for f in $CORPUS_FILES; do
        src=$TRUENO_CORPUS/$f
        fsize=$(stat -c %s "$src")
        xsize=$((fsize + 1048576))
        out=$TMPD/out
        rm -f "$out"
        note "algorithm=$alg: nbdcopy $f ($fsize bytes) in and out of a $xsize-byte export"
        export src out
        trueno_run "$TEST_TIMEOUT" size="$xsize" algorithm="$alg" -- '
            set -e
            nbdcopy "$src" "$uri"
            nbdcopy "$uri" "$out"
        ' || fail "algorithm=$alg $f: nbdcopy failed (exit $?)"
        osize=$(stat -c %s "$out")
        [ "$osize" -eq "$xsize" ] || fail "algorithm=$alg $f: copied out $osize bytes, expected $xsize"
        cmp -n "$fsize" "$src" "$out" ||
            fail "algorithm=$alg $f: data copied out differs from the corpus file"
        cmp -n 1048576 -i "0:$fsize" /dev/zero "$out" ||
            fail "algorithm=$alg $f: unwritten tail of the export does not read as zeros"
        ok "algorithm=$alg $f: byte-identical"
    done
done

# Sparse and zero regions.  Export of 64 MiB:
#   [0, 24M)   corpus data
#   [24M, 32M) zero bytes sent as ordinary writes (zero-filled pages)
#   [32M, 64M) never written
# nbdinfo --map must report [24M, 32M) as "zero" (type 2) and [32M, 64M) as
# "hole,zero" (type 3); nbdcopy out of the export must not read [32M, 64M).
src=$TMPD/data
xsize=$((64 * 1048576))
zoff=$((24 * 1048576))
zlen=$((8 * 1048576))
holeoff=$((zoff + zlen))
in=$TMPD/in
corpus_data "$zoff" "$src"
{ cat "$src"; head -c "$zlen" /dev/zero; } >"$in"
[ "$(stat -c %s "$in")" -eq "$holeoff" ] || fail "sparse: input is not $holeoff bytes"
map=$TMPD/map
log=$TMPD/log
out=$TMPD/out
rm -f "$out"
export in map out log
note "sparse: 24 MiB of corpus data, 8 MiB of written zeros, 32 MiB never written"
tmo "$TEST_TIMEOUT" nbdkit -U - --filter=log "$TRUENO_PLUGIN" \
    size="$xsize" logfile="$log" --run '
    set -e
    # --sparse=0 turns off nbdcopy zero detection: the zero bytes arrive as
    # ordinary writes and the plugin itself must notice zero-filled pages.
    nbdcopy --sparse=0 "$in" "$uri"
    nbdinfo --map "$uri" >"$map"
    wc -l <"$log" >"$TMPD/mark"
    nbdcopy "$uri" "$out"
' || fail "sparse: nbdkit/nbdcopy failed (exit $?)"
tail -n 4 "$map" | sed "s/^/    | /"
cmp -n "$zoff" "$src" "$out" || fail "sparse: data region differs after copy out"
cmp -n $((xsize - zoff)) -i "0:$zoff" /dev/zero "$out" ||
    fail "sparse: zero/unwritten region does not read as zeros"

# Check the map (offset length type description per line) and the reads the
# copy out made (log filter lines after the mark; nbdcopy may use several
# connections, so take them all).
"$PYTHON" - "$map" $zoff $holeoff $xsize "$log" "$(cat "$TMPD/mark")" <<'EOF' ||
import re, sys
mapf, zoff, holeoff, xsize, log, mark = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5], int(sys.argv[6])
bad = []
covered = {2: 0, 3: 0}
for line in open(mapf):
    off, length, typ = (int(x) for x in line.split()[:3])
    for lo, hi, want in ((zoff, holeoff, 2), (holeoff, xsize, 3)):
        s, e = max(off, lo), min(off + length, hi)
        if e > s:
            if typ != want:
                bad.append("bytes [%d, %d) have type %d, expected %d" % (s, e, typ, want))
            else:
                covered[want] += e - s
if covered[2] != holeoff - zoff or covered[3] != xsize - holeoff:
    bad.append("map does not cover the zero/hole regions: %r" % covered)
if bad:
    print("MAP: " + "\n     ".join(bad))
    sys.exit(1)
print("    map: [%d, %d) zero, [%d, %d) hole,zero" % (zoff, holeoff, holeoff, xsize))

total = 0
for i, line in enumerate(open(log)):
    if i < mark or " Read " not in line:
        continue
    m = re.search(r"offset=(0x[0-9a-fA-F]+) count=(0x[0-9a-fA-F]+)", line)
    o, c = int(m.group(1), 16), int(m.group(2), 16)
    total += c
    if o + c > holeoff:
        bad.append("read offset=%d count=%d reaches into the unwritten region" % (o, c))
print("    copy out read %d bytes in total (export %d, data %d)" % (total, xsize, zoff))
if bad:
    print("READS: " + "\n       ".join(bad[:10]))
    sys.exit(2)
EOF
    fail "sparse: extents wrong, or nbdcopy read unwritten space instead of skipping it"
ok "sparse: map shows written zeros as zero, unwritten space as hole,zero; nbdcopy skipped it"

note "passed in $(elapsed)s"
