# vm-ram: 768
# vm-tools: yes
# vm-transports: nbd ublk
# fio verify=crc32c over the whole device, attached as trueno-swap attaches:
# 4 jobs on disjoint quarters, QD 8 (libaio, O_DIRECT), mixed block sizes,
# half-compressible data; lz4 and zstd.  Pass: fio exits 0, zero mismatches.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
size_mib=192
for alg in lz4 zstd; do
  transport_up fio-$alg ${size_mib}M algorithm=$alg || fail "$alg: attach failed"
  say "$alg: $DEV attached"
  q=$((size_mib / 4))
  t0=$(now)
  fio --name=verify --filename="$DEV" --ioengine=libaio --direct=1 \
      --rw=randwrite --bssplit=4k/50:16k/30:64k/15:128k/5 --iodepth=8 \
      --numjobs=4 --size=${q}M --offset_increment=${q}M \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=0 \
      --buffer_compress_percentage=50 --refill_buffers --randrepeat=0 \
      --group_reporting --output-format=terse --terse-version=3 \
      > /tmp/fio-$alg.out 2>&1
  rc=$?
  grep -i -E "verify|error|bad" /tmp/fio-$alg.out | head -20
  [ $rc -eq 0 ] || { cat /tmp/fio-$alg.out | tail -20; dmesg_new; fail "$alg: fio exited $rc (verify mismatch or I/O error)"; }
  # terse v3: field 5 = total errors of the job group.
  errs=$(awk -F';' '{print $5}' /tmp/fio-$alg.out | tail -1)
  [ "${errs:-1}" = 0 ] || fail "$alg: fio reported $errs errors"
  say "$alg: whole ${size_mib} MiB written and verified in $(( $(now) - t0 )) s: $(json_get "$STATS" pages_stored) pages stored, ratio $(json_get "$STATS" ratio)"
  transport_down fio-$alg || fail "$alg: detach failed"
done
pass "crc32c verify over whole device, lz4 and zstd: 0 mismatches"
