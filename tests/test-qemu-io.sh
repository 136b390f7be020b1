#!/usr/bin/env bash
# qemu-io and qemu-img against the export: patterns written at unaligned
# offsets and lengths (inside a page, across page boundaries, several pages
# from offset 4095), write-zeroes and discard, read back with -P over a fresh
# connection and compared with the same operations applied to a local raw
# file; then qemu-img convert/compare of a corpus file in and out.
. "$(dirname "$0")/functions.sh"
require_corpus
require_cmd qemu-io qemu-img

P=4096
xsize=$((1024 * 1024))

# Writes: "qemu-io command" lines.  Offsets deliberately odd.
writes=(
    "write -P 0x11 1 511"                             # inside page 0
    "write -P 0x22 4000 200"                          # across the 0/1 boundary
    "write -P 0x33 4095 12288"                        # 3 pages' worth from 4095
    "write -P 0x44 $((16 * P - 2)) 4"                 # 2 bytes each side of a boundary
    "write -P 0x55 $((32 * P + 1)) $((P - 2))"        # all of a page but its first and last byte
    "write -P 0x66 $((48 * P - 1)) $((2 * P + 2))"    # 1 byte, 2 whole pages, 1 byte
    "write -P 0x77 $((60 * P)) $((4 * P))"            # 4 aligned pages ...
    "write -z $((60 * P + 7)) 5000"                   # ... then unaligned write-zeroes inside them
    "write -P 0x88 $((80 * P)) $((4 * P))"            # 4 aligned pages ...
    "discard $((81 * P)) $P"                          # ... then discard one whole page
    "write -P 0x99 $((100 * P + 123)) 1"              # a single byte
    "write -P 0xaa $((xsize - 700)) 700"              # the last bytes of the export
    "write -P 0xbb $((120 * P + 2048)) $((P))"        # half a page each side
    "write -P 0xcc $((120 * P + 2000)) 100"           # overwrite inside the previous write
)

# Reads expected after those writes, checked with read -P.
reads=(
    "read -P 0 0 1"
    "read -P 0x11 1 511"
    "read -P 0 512 3488"
    "read -P 0x22 4000 95"
    "read -P 0x33 4095 12288"
    "read -P 0 16383 1"
    "read -P 0 $((16 * P - 3)) 1"
    "read -P 0x44 $((16 * P - 2)) 4"
    "read -P 0 $((16 * P + 2)) 1"
    "read -P 0 $((32 * P)) 1"
    "read -P 0x55 $((32 * P + 1)) $((P - 2))"
    "read -P 0 $((33 * P - 1)) 1"
    "read -P 0x66 $((48 * P - 1)) $((2 * P + 2))"
    "read -P 0x77 $((60 * P)) 7"
    "read -P 0 $((60 * P + 7)) 5000"
    "read -P 0x77 $((60 * P + 5007)) $((4 * P - 5007))"
    "read -P 0x88 $((80 * P)) $P"
    "read -P 0 $((81 * P)) $P"
    "read -P 0x88 $((82 * P)) $((2 * P))"
    "read -P 0 $((100 * P + 122)) 1"
    "read -P 0x99 $((100 * P + 123)) 1"
    "read -P 0 $((100 * P + 124)) 1"
    "read -P 0xaa $((xsize - 700)) 700"
    "read -P 0 $((120 * P)) 2000"
    "read -P 0xcc $((120 * P + 2000)) 100"
    "read -P 0xbb $((120 * P + 2100)) $((P - 52))"
    "read -P 0 $((121 * P + 2048)) 2048"
)

qargs() {
    local c
    for c in "$@"; do printf -- '-c\n%s\n' "$c"; done
}

# Reference image: the same writes applied to a local raw file.
ref=$TMPD/ref.img
truncate -s "$xsize" "$ref"
mapfile -t wargs < <(qargs "${writes[@]}")
mapfile -t rargs < <(qargs "${reads[@]}")
tmo 60 qemu-io -f raw "${wargs[@]}" "$ref" >"$TMPD/log" 2>&1 ||
    fail "qemu-io on a local file failed (test bug?): $(cat "$TMPD/log")"
tmo 60 qemu-io -f raw "${rargs[@]}" "$ref" >"$TMPD/log" 2>&1 ||
    fail "read -P expectations do not hold on a local file (test bug): $(grep -i fail "$TMPD/log")"

for alg in lz4 zstd; do
    note "algorithm=$alg: ${#writes[@]} unaligned writes/zeroes/discards, then ${#reads[@]} read -P checks"
    printf '%s\0' "${wargs[@]}" >"$TMPD/wargs"
    printf '%s\0' "${rargs[@]}" >"$TMPD/rargs"
    export ref
    rc=0
    trueno_run "$TEST_TIMEOUT" size="$xsize" algorithm="$alg" -- '
        set -e
        xargs -0 -a "$TMPD/wargs" qemu-io -f raw "$uri" >"$TMPD/w.log" 2>&1 ||
            { echo "qemu-io writes failed:"; cat "$TMPD/w.log"; exit 1; }
        # A fresh connection for the reads.
        xargs -0 -a "$TMPD/rargs" qemu-io -f raw "$uri" >"$TMPD/r.log" 2>&1 ||
            { echo "qemu-io read -P failed:"; grep -i -B1 fail "$TMPD/r.log"; exit 2; }
        qemu-img compare -f raw -F raw "$ref" "$uri" ||
            { echo "qemu-img compare with the reference image failed"; exit 3; }
    ' || rc=$?
    [ "$rc" -eq 0 ] || fail "algorithm=$alg: unaligned I/O (exit $rc)"
    grep -qi "verification failed" "$TMPD/r.log" && fail "algorithm=$alg: pattern verification failed"
    ok "algorithm=$alg: unaligned writes read back exactly; export equals the reference image"
done

# qemu-img convert in and out, qemu-img compare.
alg=zstd
for f in $CORPUS_FILES; do
    alg=$([ $alg = lz4 ] && echo zstd || echo lz4) # each file, lz4 and zstd in turn
    src=$TRUENO_CORPUS/$f
    fsize=$(stat -c %s "$src")
    out=$TMPD/out.img
    rm -f "$out"
    export src out
    note "algorithm=$alg: qemu-img convert $f in, compare, convert out"
    trueno_run "$TEST_TIMEOUT" size="$fsize" algorithm="$alg" -- '
        set -e
        qemu-img convert -n -f raw -O raw "$src" "$uri"
        qemu-img compare -f raw -F raw "$src" "$uri"
        qemu-img convert -f raw -O raw "$uri" "$out"
    ' || fail "algorithm=$alg $f: qemu-img convert/compare failed (exit $?)"
    cmp "$src" "$out" || fail "algorithm=$alg $f: converted out image differs from the corpus file"
    ok "algorithm=$alg $f: qemu-img compare identical, converted copy byte-identical"
done

note "passed in $(elapsed)s"
