#!/usr/bin/env bash
# offload=off|auto|opencl through the plugin, on whatever OpenCL device the
# ICD loader offers (PoCL in the test command).  Every corpus file copied in
# and out with nbdcopy is byte-identical with offload=opencl (and the stats
# file shows the pages went through the device, both ways: compressed on
# the way in, decoded on the way out), with offload=auto (which
# logs and reports what it chose), and on each forced fallback path, which
# must log exactly one line and keep serving on the CPU:
#   no platform       OCL_ICD_VENDORS pointing at an empty directory
#   build failure     TRUENO_OCL_BAD_KERNEL=1 (a syntax error appended)
#   lost device       TRUENO_OCL_FAIL_AFTER=2 (device calls after the 2nd
#                     fail, the retries too: the CPU does the rest)
# and a device that comes back (TRUENO_OCL_FAIL_COUNT=2: calls 3 and 4
# fail): the offload retries it after TRUENO_OCL_RETRY_MS, logs each change
# of state once and sends batches to it again.
# The kernel binary cache (opencl-cache=DIR): the first server builds the
# kernels and saves them, the next ones load them; a damaged cache file
# is rebuilt and replaced, the data still byte-identical.
# Built without OpenCL, every mode must fall back the same way.
. "$(dirname "$0")/functions.sh"
require_corpus
require_cmd nbdcopy
require_python

have_opencl=$(nbdkit "$TRUENO_PLUGIN" --dump-plugin | sed -n 's/^trueno_opencl=//p')
note "plugin built with OpenCL: $have_opencl"
mkdir -p "$TMPD/empty-vendors"
# 24 MiB of the corpus: batches enough for a device lost and back.
bulk=$TMPD/bulk.pages
corpus_data $((24 << 20)) "$bulk"

# run NAME FILE PARAMS... : nbdcopy FILE (a corpus file's name, or a path)
# in and out, byte-identical; leaves the server's log in $TMPD/NAME.log
# ($log while it runs) and its stats in $TMPD/NAME.json.  With $between
# set: FILE copied in, then the commands in $between, then in again and
# out.
run() {
    local name=$1 f=$2
    shift 2
    local src=$f out=$TMPD/out log=$TMPD/$name.log
    case $f in /*) ;; *) src=$TRUENO_CORPUS/$f ;; esac
    local fsize
    fsize=$(stat -c %s "$src")
    rm -f "$out"
    export src out
    export log
    trueno_run "$TEST_TIMEOUT" size="$fsize" stats="$TMPD/$name.json" "$@" -- "
        set -e
        ${between:+nbdcopy \"\$src\" \"\$uri\"; $between}
        nbdcopy \"\$src\" \"\$uri\"
        nbdcopy \"\$uri\" \"\$out\"
    " 2>"$log" || { cat "$log"; fail "$name $f: nbdkit/nbdcopy failed (exit $?)"; }
    cmp "$src" "$out" || fail "$name $f: data copied out differs from the corpus file"
}

# field NAME KEY: a field of the final stats snapshot.
field() {
    "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
        "$TMPD/$1.json" "$2"
}

# one_line NAME PATTERN: the log holds exactly one offload line, matching.
one_line() {
    local n
    n=$(grep -c 'opencl:' "$TMPD/$1.log" || :)
    [ "$n" -eq 1 ] || { cat "$TMPD/$1.log"; fail "$1: $n offload log lines, want 1"; }
    grep -q "$2" "$TMPD/$1.log" || { cat "$TMPD/$1.log"; fail "$1: log line does not say '$2'"; }
    note "$1: log: $(grep 'opencl:' "$TMPD/$1.log" | sed 's/^.*opencl:/opencl:/')"
}

kcache=$TMPD/kcache
if [ "$have_opencl" = yes ]; then
    first=1
    for f in $CORPUS_FILES; do
        run opencl "$f" offload=opencl opencl-cache="$kcache"
        if [ "$first" = 1 ]; then want="kernels built, cached in $kcache"
        else want="kernels from the cache in $kcache"; fi
        grep -qF "$want" "$TMPD/opencl.log" || { cat "$TMPD/opencl.log"; fail "opencl $f: log does not say '$want'"; }
        first=0
        [ "$(field opencl offload_active)" = opencl ] || fail "offload=opencl: not active"
        pages=$(field opencl offload_pages)
        fb=$(field opencl offload_fallbacks)
        [ "$pages" -gt 0 ] && [ "$fb" -eq 0 ] ||
            fail "offload=opencl $f: $pages pages offloaded, $fb fallbacks"
        [ "$(field opencl offload_reads)" = opencl ] || fail "offload=opencl: reads not offloaded"
        rpages=$(field opencl offload_read_pages)
        rfb=$(field opencl offload_read_fallbacks)
        lz4=$(field opencl lz4_pages)
        # nbdcopy reads the whole file in requests of many pages: nearly
        # every LZ4 page is decoded on the device.
        [ "$rpages" -gt $((lz4 / 2)) ] && [ "$rfb" -eq 0 ] ||
            fail "offload=opencl $f: $rpages of $lz4 LZ4 pages decoded on the device, $rfb fallbacks"
        ok "offload=opencl $f: byte-identical, $pages pages compressed and $rpages decoded on $(field opencl offload_device)"
    done
    one_line opencl "offload=opencl on"

    bin=$(ls "$kcache"/*.bin)
    size=$(stat -c %s "$bin")
    printf 'garbage' | dd of="$bin" bs=1 seek=$((size / 2)) conv=notrunc status=none
    cp "$bin" "$TMPD/damaged.bin"
    run damaged "$(corpus_file 2)" offload=opencl opencl-cache="$kcache"
    one_line damaged "the cached binary was unusable"
    [ "$(field damaged offload_pages)" -gt 0 ] || fail "damaged cache: nothing offloaded"
    # Not its size: PoCL's binary can grow by the kernels it compiled for
    # other work-group sizes meanwhile (its own cache, shared with
    # test-opencl running beside us).
    ! cmp -s "$bin" "$TMPD/damaged.bin" || fail "damaged cache: file not replaced"
    ok "damaged cache file: rebuilt and replaced, byte-identical on the device"

    run auto "$bulk" offload=auto opencl-cache="$kcache"
    one_line auto "offload=auto chose"
    ok "offload=auto: byte-identical; chose $(field auto offload_active), min pages $(field auto offload_min_pages)"

    OCL_ICD_VENDORS=$TMPD/empty-vendors run noplat "$(corpus_file 2)" offload=opencl
    one_line noplat "falls back to the CPU codec"
    [ "$(field noplat offload_active)" = cpu ] || fail "no platform: offload still active"
    ok "no platform: one log line, byte-identical on the CPU"

    TRUENO_OCL_BAD_KERNEL=1 run badkernel "$(corpus_file 3)" offload=opencl
    one_line badkernel "kernel build failed"
    [ "$(field badkernel offload_active)" = cpu ] || fail "bad kernel: offload still active"
    ok "kernel build failure: one log line, byte-identical on the CPU"

    TRUENO_OCL_FAIL_AFTER=2 TRUENO_OCL_RETRY_MS=50 run lost "$bulk" offload=opencl opencl-cache="$kcache"
    grep -q "offload=opencl on" "$TMPD/lost.log" || fail "lost: device not used at first"
    n=$(grep -c 'batch compression failed' "$TMPD/lost.log" || :)
    [ "$n" -eq 1 ] || { cat "$TMPD/lost.log"; fail "lost device: $n log lines, want 1"; }
    ! grep -q 'the device is back' "$TMPD/lost.log" || fail "lost device: came back"
    [ "$(field lost offload_pages)" -gt 0 ] && [ "$(field lost offload_fallbacks)" -gt 0 ] ||
        fail "lost device: $(field lost offload_pages) offloaded, $(field lost offload_fallbacks) fallbacks"
    ok "lost device: one log line, the CPU took over, byte-identical; retries: $(grep -c 'retrying the device now' "$TMPD/lost.log" || :)"

    # Device calls 3 and 4 fail (a batch, the first retry's probe); the
    # second retry brings the device back; the file goes in again after.
    between='for i in $(seq 200); do grep -q "the device is back" "$log" && break; sleep 0.05; done' \
    TRUENO_OCL_FAIL_AFTER=2 TRUENO_OCL_FAIL_COUNT=2 TRUENO_OCL_RETRY_MS=20 \
        run recover "$bulk" offload=opencl opencl-cache="$kcache"
    for want in 'batch compression failed:1' 'retrying the device now:2' 'still lost:1' 'the device is back:1'; do
        n=$(grep -c "${want%:*}" "$TMPD/recover.log" || :)
        [ "$n" -eq "${want##*:}" ] || { cat "$TMPD/recover.log"; fail "recover: $n lines say '${want%:*}', want ${want##*:}"; }
    done
    b=$(field recover offload_batches)
    [ "$b" -gt 2 ] && [ "$(field recover offload_fallbacks)" -gt 0 ] ||
        fail "recover: $b batches on the device (2 before it was lost), $(field recover offload_fallbacks) fallbacks"
    ok "device lost and back: lost, retrying, still lost, retrying, back (a line each); $b batches on the device, byte-identical"
else
    for mode in auto opencl; do
        run "no-$mode" "$bulk" offload=$mode
        one_line "no-$mode" "no OpenCL support"
        ok "offload=$mode without OpenCL: one log line, byte-identical on the CPU"
    done
fi

run off "$(corpus_file 2)" offload=off
! grep -q 'opencl:' "$TMPD/off.log" || fail "offload=off: logged something"
[ "$(field off offload_pages)" -eq 0 ] || fail "offload=off: pages offloaded"
ok "offload=off: byte-identical, nothing offloaded"

if nbdkit "$TRUENO_PLUGIN" size=1M offload=sometimes --run true 2>"$TMPD/bad.log"; then
    fail "offload=sometimes accepted"
fi
grep -q "offload: unknown mode" "$TMPD/bad.log" || fail "offload=sometimes: unclear message"
ok "offload=sometimes refused with a message"
note "passed in $(elapsed)s"
