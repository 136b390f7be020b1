# vm-ram: 768
# vm-tools: yes
# vm-transports: ublk
# trueno-ublk built with ThreadSanitizer, then with ASan+UBSan (make
# tests/tsan/trueno-ublk tests/asan/trueno-ublk): what `make check-tsan` and
# `make check-asan` cannot reach on a host without ublk_drv -- two queue
# threads, the workers that take large requests, the housekeeping thread
# (stats every second, idle-page recompression, compaction) and the
# reserve's refill thread (swap=on) serving real I/O -- under concurrent
# writes, reads, discards and stats readers, then a memory limit that two
# writers run into.  Each server runs in the foreground as our child, so
# its exit status is seen (the sanitizers' leak and race checks run at
# exit).  Pass: the data verifies, every server exits 0 at del, and no
# sanitizer wrote a report (log_path=/tmp/san).
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
# 2 MiB of the corpus sample (its files back to back).
SIDE=/tmp/san-side.pages
cat /opt/trueno/corpus/*.pages | head -c $((2 << 20)) >$SIDE
[ "$(wc -c <$SIDE)" -eq $((2 << 20)) ] || fail "corpus sample under 2 MiB"
R=/run/trueno/ublk
rm -f /tmp/san.*
export TSAN_OPTIONS="log_path=/tmp/san exitcode=66"
# ASan's quarantine of freed memory (256 MiB by default) would be locked
# (the server locks what it touches): keep it small.
export ASAN_OPTIONS="log_path=/tmp/san detect_leaks=1 abort_on_error=1 quarantine_size_mb=16"
export UBSAN_OPTIONS="log_path=/tmp/san print_stacktrace=1 halt_on_error=1"

reports() {
  ls /tmp/san.* >/dev/null 2>&1 || return 1
  head -n 80 /tmp/san.*
}
# Any failure shows what the sanitizers wrote first (a server they stopped
# shows up as a failed request).
fail() {
  reports
  echo "VMTEST $case_name FAIL $*"
  exit 1
}
# start ARGS...: a sanitized server in the foreground of a background job;
# sets DEV, ID, PID and STATS once its device exists.
start() {
  "$T" add --foreground --size 64M --queues 2 "$@" 2>/tmp/server.err &
  PID=$!
  wait_for 120 grep -q '^OK' /tmp/server.err || {
    cat /tmp/server.err; reports
    # A server that dies while the kernel starts its device (a sanitizer
    # stopping it at the partition scan's first read) leaves 6.12's
    # START_DEV waiting on I/O no one will serve: its io_uring worker and
    # any `trueno-ublk del` hang for good.  End the boot here, the result
    # written to the console itself (init's reader of our output would not
    # get to it before the power is off).
    printf 'VMTEST %s FAIL %s: trueno-ublk add %s did not come up\nVMTEST-DONE\n' \
      "$case_name" "$SAN" "$*" > /dev/console
    poweroff -n -f # no sync: it would wait on the device too
  }
  ID=$(sed -n 's/^ID //p' /tmp/server.err)
  DEV=/dev/ublkb$ID STATS=$R/ublk$ID.json
  grep -q "lib${SAN}" "/proc/$PID/maps" || fail "$SAN: server $PID runs without the sanitizer"
  say "$SAN: $DEV: server $PID $*"
}
# stop: del, then the server's exit status (0, or the sanitizer's).
stop() {
  trueno-ublk del "$ID" >/dev/null || fail "$SAN: del of $DEV failed"
  wait "$PID"; rc=$?
  [ "$rc" -eq 0 ] || { cat /tmp/server.err; fail "$SAN: server exited $rc"; }
}
settled() {
  [ "$(json_get "$STATS" zstd_pages)" -gt 1000 ] 2>/dev/null &&
    [ "$(json_get "$STATS" pages_compacted)" -gt 0 ] 2>/dev/null
}
md5() { dd if="$DEV" bs=1M count="$1" iflag=direct status=none | md5sum; }

for SAN in tsan asan; do
  T=/opt/trueno/$SAN/trueno-ublk
  [ -x "$T" ] || fail "no $T in the image"

  # ---- 1: swap=on, lz4 recompressed to zstd when idle ---------------------
  start swap=on algorithm=lz4 recompress=zstd recompress-idle=1
  t0=$(now)
  # fio on the first 48 MiB (4 jobs on quarters, requests up to 256 KiB for
  # the workers, 3 passes each rewriting and verifying its quarter), while
  # corpus pages are written, read back and discarded at 48-64 MiB, fio's
  # pages are read in 1 MiB requests and the stats are read.
  fio --name=san --filename="$DEV" --ioengine=libaio --direct=1 \
      --rw=randwrite --bssplit=4k/40:16k/30:128k/20:256k/10 --iodepth=8 \
      --numjobs=4 --size=12M --offset_increment=12M --loops=3 \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=0 \
      --buffer_compress_percentage=50 --refill_buffers \
      --group_reporting --output-format=terse --terse-version=3 \
      > /tmp/fio-san.out 2>&1 &
  fiopid=$!
  side=0
  while kill -0 $fiopid 2>/dev/null; do
    dd if=$SIDE of="$DEV" bs=64k count=32 seek=768 oflag=direct \
       status=none || fail "$SAN: side write failed"
    a=$(md5sum <$SIDE)
    b=$(dd if="$DEV" bs=64k count=32 skip=768 iflag=direct status=none | md5sum)
    [ "$a" = "$b" ] || fail "$SAN: side read back differs (round $side)"
    dd if="$DEV" of=/dev/null bs=1M count=16 skip=$((side % 3 * 16)) \
       iflag=direct status=none || fail "$SAN: large read failed"
    blkdiscard -o $((52 << 20)) -l $((4 << 20)) "$DEV" || fail "$SAN: discard failed"
    trueno-ublk list >/dev/null || fail "$SAN: list failed"
    json_get "$STATS" pages_stored >/dev/null
    side=$((side + 1))
  done
  wait $fiopid; rc=$?
  [ $rc -eq 0 ] || { tail -20 /tmp/fio-san.out; fail "$SAN: fio exited $rc"; }
  errs=$(awk -F';' '{print $5}' /tmp/fio-san.out | tail -1)
  [ "${errs:-1}" = 0 ] || fail "$SAN: fio reported $errs errors"
  say "$SAN: fio wrote and verified 48 MiB 3 times in $(( $(now) - t0 )) s beside $side side rounds"
  sum=$(md5 48)
  # Idle pages go to zstd and the store is compacted after: wait for both.
  wait_for 120 settled ||
    fail "$SAN: no idle pages recompressed and compacted in 120 s: $(cat "$STATS")"
  sleep 3
  [ "$(md5 48)" = "$sum" ] || fail "$SAN: data changed across recompression"
  say "$SAN: $(json_get "$STATS" zstd_pages) zstd pages; $(json_get "$STATS" pages_compacted) pages compacted; $(json_get "$STATS" mem_used_total) bytes"
  stop

  # ---- 2: a memory limit two writers run into ------------------------------
  start algorithm=zstd mem-limit=4M
  writers=
  for h in 0 1; do
    dd if=/dev/urandom of="$DEV" bs=64k count=256 seek=$((h * 256)) oflag=direct \
       status=none 2>/dev/null &
    writers="$writers $!"
  done
  wait $writers # (not a bare wait: the server is a job too)
  sleep 1.2 # the stats file is rewritten every second
  fw=$(json_get "$STATS" failed_writes)
  [ "${fw:-0}" -gt 0 ] || fail "$SAN: no write failed past mem-limit=4M: $(cat "$STATS")"
  dd if="$DEV" of=/dev/null bs=1M count=32 iflag=direct status=none ||
    fail "$SAN: reads failed at the limit"
  blkdiscard "$DEV" || fail "$SAN: discard at the limit failed"
  dd if=$SIDE of="$DEV" bs=64k count=16 oflag=direct status=none ||
    fail "$SAN: write after the discard failed"
  say "$SAN: $fw writes failed at the limit; reads went on; writes work after the discard"
  stop
done

ls /tmp/san.* >/dev/null 2>&1 && fail "a sanitizer reported (above)"
pass "ThreadSanitizer and ASan+UBSan builds: no report, every server exited 0 (2 queues, workers, housekeeping, recompression, compaction, reserve, limit)"
