# vm-ram: 768
# vm-tools: yes
# vm-transports: nbd ublk
# Kill the server (SIGKILL) while fio runs on the device (a plain block
# device, not swap): the kernel must fail the I/O within the nbd timeout
# instead of hanging, and the VM must stay alive.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
tmo=10
transport_up kill 128M --timeout $tmo || fail "attach failed"
fio --name=victim --filename="$DEV" --ioengine=libaio --direct=1 --rw=randrw \
    --bs=4k --iodepth=8 --numjobs=2 --time_based --runtime=300 \
    > /tmp/fio-kill.out 2>&1 &
fiopid=$!
sleep 5
kill -0 $fiopid 2>/dev/null || { cat /tmp/fio-kill.out; fail "fio did not start"; }
t0=$(now)
kill -9 "$SERVER_PID"
say "server $SERVER_PID killed"
# fio must end (with errors) within the timeout plus a margin.
bound=$((tmo * 3 + 10))
while kill -0 $fiopid 2>/dev/null; do
  if [ $(( $(now) - t0 )) -gt $bound ]; then
    kill -9 $fiopid 2>/dev/null
    dmesg_new
    fail "I/O still hanging $bound s after the server was killed"
  fi
  sleep 0.5
done
wait $fiopid; rc=$?
el=$(( $(now) - t0 ))
tail -5 /tmp/fio-kill.out
[ $rc -ne 0 ] || fail "fio exited 0: no I/O error after the server died?"
# New I/O fails fast too.
t1=$(now)
if timeout 60 dd if="$DEV" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; then
  fail "a read after the server died succeeded"
fi
el2=$(( $(now) - t1 ))
[ $el2 -le $((tmo * 3)) ] || fail "a read after the server died took $el2 s"
dmesg | grep -i nbd | tail -5
trueno-swap down kill >/dev/null 2>&1
echo alive > /tmp/alive && [ "$(cat /tmp/alive)" = alive ] || fail "VM not usable"
pass "fio got I/O errors $el s after SIGKILL (timeout $tmo s), next read failed in $el2 s, VM alive"
