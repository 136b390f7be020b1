# vm-ram: 768
# vm-tools: yes
# The README's flows, as written (a 256M device instead of 8G: the guest
# has 768 MiB): its "Use" section (the plugin on a Unix socket in a
# root-only directory behind the limit filter, with recompression, groups
# and a stats file; nbd-client -unix, mkswap, swapon) and its quick start
# (trueno-swap up, status, down); then qemu-nbd -c on the server's socket
# with fio verify on it.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
sock=/run/trueno/trueno.sock
mkdir -p -m 0700 /run/trueno || fail "mkdir -p -m 0700 /run/trueno"
nbdkit -P /tmp/readme.pid -U $sock --filter=limit "$TRUENO_PLUGIN" size=256M limit=4 \
       algorithm=lz4 recompress=zstd group=on stats=/run/trueno/trueno.json ||
  fail "nbdkit -U $sock --filter=limit trueno.so size=256M limit=4 ... did not start"
sleep 1
nbd-client -unix $sock /dev/nbd0 -b 4096 -connections 4 ||
  fail "nbd-client -unix $sock /dev/nbd0 -b 4096 -connections 4 failed"
mkswap /dev/nbd0 >/dev/null && swapon /dev/nbd0 || fail "mkswap/swapon /dev/nbd0 failed"
grep -q '^/dev/nbd0 ' /proc/swaps || fail "/dev/nbd0 not in /proc/swaps"
say "README flow: /dev/nbd0 is swap: $(grep '^/dev/nbd0 ' /proc/swaps)"
swapoff /dev/nbd0 || fail "swapoff failed"
nbd-client -d /dev/nbd0 >/dev/null 2>&1 || fail "nbd-client -d failed"

qemu-nbd -c /dev/nbd1 -f raw "nbd+unix:///?socket=$sock" ||
  fail "qemu-nbd -c /dev/nbd1 -f raw nbd+unix:///?socket=$sock failed"
nbd1_up() { [ "$(cat /sys/block/nbd1/size)" != 0 ]; }
wait_for 20 nbd1_up || fail "/dev/nbd1 did not come up"
say "qemu-nbd attached /dev/nbd1: $(( $(cat /sys/block/nbd1/size) / 2048 )) MiB"
fio --name=qverify --filename=/dev/nbd1 --ioengine=libaio --direct=1 \
    --rw=randwrite --bssplit=4k/60:64k/40 --iodepth=4 --numjobs=2 --size=32M \
    --offset_increment=32M --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --buffer_compress_percentage=50 --refill_buffers > /tmp/fio-q.out 2>&1
rc=$?
[ $rc -eq 0 ] || { tail -20 /tmp/fio-q.out; fail "fio verify over qemu-nbd exited $rc"; }
grep -E "WRITE|READ|err=" /tmp/fio-q.out | head -6
qemu-nbd -d /dev/nbd1 >/dev/null || fail "qemu-nbd -d failed"
kill "$(cat /tmp/readme.pid)"
sleep 1

# The quick start.
trueno-swap up --size 256M --priority 100 recompress=zstd group=on ||
  fail "trueno-swap up --size 256M --priority 100 recompress=zstd group=on failed"
out=$(trueno-swap status) || fail "trueno-swap status failed"
echo "$out"
echo "$out" | grep -q '^NAME .*COMP-RATIO' || fail "status: no header"
echo "$out" | grep -q '\[SWAP\]' || fail "status: the device is not swap"
trueno-swap down || fail "trueno-swap down failed"
[ "$(awk 'NR>1' /proc/swaps | wc -l)" -eq 0 ] || fail "swap left after down"
pass "plugin on a Unix socket + nbd-client -unix + mkswap + swapon; qemu-nbd -c + fio verify; trueno-swap up, status, down"
