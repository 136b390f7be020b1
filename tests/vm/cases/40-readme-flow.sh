# vm-ram: 768
# vm-tools: yes
# The README's plain flow, as written: nbdkit on TCP, nbd-client, mkswap,
# swapon; then qemu-nbd -c on the server's NBD URI, with fio verify on it.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
nbdkit -P /tmp/readme.pid "$TRUENO_PLUGIN" size=256M || fail "nbdkit $TRUENO_PLUGIN size=256M did not start"

sleep 1
nbd-client -b 4096 localhost /dev/nbd0 || fail "nbd-client -b 4096 localhost /dev/nbd0 failed"
mkswap /dev/nbd0 >/dev/null && swapon /dev/nbd0 || fail "mkswap/swapon /dev/nbd0 failed"
grep -q '^/dev/nbd0 ' /proc/swaps || fail "/dev/nbd0 not in /proc/swaps"
say "README flow: /dev/nbd0 is swap: $(grep '^/dev/nbd0 ' /proc/swaps)"
swapoff /dev/nbd0 || fail "swapoff failed"
nbd-client -d /dev/nbd0 >/dev/null 2>&1 || fail "nbd-client -d failed"

qemu-nbd -c /dev/nbd1 -f raw nbd://localhost:10809 || fail "qemu-nbd -c /dev/nbd1 -f raw nbd://localhost:10809 failed"
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
pass "nbdkit TCP + nbd-client + mkswap + swapon; qemu-nbd -c + fio verify"
