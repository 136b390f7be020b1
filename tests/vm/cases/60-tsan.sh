# vm-ram: 768
# vm-tools: yes
# vm-transports: ublk
# trueno-ublk built with ThreadSanitizer (make tests/tsan/trueno-ublk): the
# threads `make check-tsan` cannot reach on a host without ublk_drv -- two
# queue threads, the workers that take large requests, the housekeeping
# thread (stats every second, idle-page recompression, compaction) and the
# reserve's refill thread (swap=on) -- under concurrent writes, reads,
# discards and stats readers, then a memory limit that two writers run into.
# Pass: the data verifies, both servers exit at del, and the sanitizer
# (log_path=/tmp/tsan) reported nothing.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
T=/opt/trueno/tsan/trueno-ublk
C=/opt/trueno/corpus # 512 pages (2 MiB) of each file
[ -x "$T" ] || fail "no $T in the image"
rm -f /tmp/tsan.*
export TSAN_OPTIONS="log_path=/tmp/tsan exitcode=66"

reports() {
  ls /tmp/tsan.* >/dev/null 2>&1 || return 1
  head -n 80 /tmp/tsan.*
}
# start ARGS...: a sanitized server; sets DEV and PID.
start() {
  DEV=$("$T" add --size 64M --queues 2 "$@") || {
    reports; cat /run/trueno/ublk/*.log 2>/dev/null | tail -20
    fail "trueno-ublk (ThreadSanitizer) add $* failed"
  }
  PID=$(cat "/run/trueno/ublk/ublk${DEV#/dev/ublkb}.pid")
  STATS=/run/trueno/ublk/ublk${DEV#/dev/ublkb}.json
  grep -q libtsan "/proc/$PID/maps" || fail "server $PID runs without the sanitizer"
  say "$DEV: server $PID (ThreadSanitizer) $*"
}
stop() {
  trueno-ublk del "${DEV#/dev/ublkb}" >/dev/null || fail "del of $DEV failed"
  wait_for 60 gone || fail "server $PID still up after del"
}
# Gone, or a zombie not yet reaped by init.
gone() { [ ! -e "/proc/$PID" ] || grep -q ') Z' "/proc/$PID/stat" 2>/dev/null; }
settled() {
  [ "$(json_get "$STATS" zstd_pages)" -gt 1000 ] 2>/dev/null &&
    [ "$(json_get "$STATS" pages_compacted)" -gt 0 ] 2>/dev/null
}
md5() { dd if="$DEV" bs=1M count="$1" iflag=direct status=none | md5sum; }

# ---- 1: swap=on, lz4 recompressed to zstd when idle -----------------------
start swap=on algorithm=lz4 recompress=zstd recompress-idle=1
t0=$(now)
# fio on the first 48 MiB (4 jobs on quarters, requests up to 256 KiB for
# the workers, 3 passes each rewriting and verifying its quarter), while
# corpus pages are written, read back and discarded at 48-64 MiB, fio's
# pages are read in 1 MiB requests and the stats are read.
fio --name=tsan --filename="$DEV" --ioengine=libaio --direct=1 \
    --rw=randwrite --bssplit=4k/40:16k/30:128k/20:256k/10 --iodepth=8 \
    --numjobs=4 --size=12M --offset_increment=12M --loops=3 \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=0 \
    --buffer_compress_percentage=50 --refill_buffers \
    --group_reporting --output-format=terse --terse-version=3 \
    > /tmp/fio-tsan.out 2>&1 &
fiopid=$!
side=0 list=0
while kill -0 $fiopid 2>/dev/null; do
  dd if=$C/gcc-sqlite.pages of="$DEV" bs=64k count=32 seek=768 oflag=direct \
     status=none || fail "side write failed"
  a=$(dd if=$C/gcc-sqlite.pages bs=64k count=32 status=none | md5sum)
  b=$(dd if="$DEV" bs=64k count=32 skip=768 iflag=direct status=none | md5sum)
  [ "$a" = "$b" ] || fail "side read back differs (round $side)"
  dd if="$DEV" of=/dev/null bs=1M count=16 skip=$((side % 3 * 16)) \
     iflag=direct status=none || fail "large read failed"
  blkdiscard -o $((52 << 20)) -l $((4 << 20)) "$DEV" || fail "discard failed"
  trueno-ublk list >/dev/null || fail "list failed"
  json_get "$STATS" pages_stored >/dev/null
  side=$((side + 1))
done
wait $fiopid; rc=$?
[ $rc -eq 0 ] || { tail -20 /tmp/fio-tsan.out; reports; fail "fio exited $rc"; }
errs=$(awk -F';' '{print $5}' /tmp/fio-tsan.out | tail -1)
[ "${errs:-1}" = 0 ] || fail "fio reported $errs errors"
say "fio wrote and verified 48 MiB 3 times in $(( $(now) - t0 )) s beside $side side rounds"
sum=$(md5 48)
# Idle pages go to zstd and the store is compacted after: wait for both.
wait_for 120 settled ||
  fail "no idle pages recompressed and compacted in 120 s: $(cat "$STATS")"
sleep 3
[ "$(md5 48)" = "$sum" ] || fail "data changed across recompression"
say "recompressed: $(json_get "$STATS" zstd_pages) zstd pages; $(json_get "$STATS" pages_compacted) pages compacted; $(json_get "$STATS" mem_used_total) bytes"
stop

# ---- 2: a memory limit two writers run into --------------------------------
start algorithm=zstd mem-limit=4M
for h in 0 1; do
  dd if=/dev/urandom of="$DEV" bs=64k count=256 seek=$((h * 256)) oflag=direct \
     status=none 2>/dev/null &
done
wait
sleep 1.2 # the stats file is rewritten every second
fw=$(json_get "$STATS" failed_writes)
[ "${fw:-0}" -gt 0 ] || fail "no write failed past mem-limit=4M: $(cat "$STATS")"
dd if="$DEV" of=/dev/null bs=1M count=32 iflag=direct status=none || fail "reads failed at the limit"
blkdiscard "$DEV" || fail "discard at the limit failed"
dd if=$C/python-ast.pages of="$DEV" bs=64k count=16 oflag=direct status=none ||
  fail "write after the discard failed"
say "$fw writes failed at the limit; reads went on; writes work after the discard"
stop

if reports; then
  fail "ThreadSanitizer reported (above)"
fi
pass "no ThreadSanitizer report: 2 queues, workers, housekeeping, recompression, compaction, reserve, limit"
