# vm-ram: 768
# vm-tools: yes
# The device outlives its server (issue 19, the transport half): nbdkit's
# file plugin on a file in tmpfs (a store that persists by itself),
# attached with `trueno-nbd connect --timeout 5 --dead-conn-timeout 30
# --backend FILE`; fio randwrite with crc32c verify on the device while
# the server is killed (SIGKILL) 5 times, each time started again on the same file and
# handed to the device with `trueno-nbd reconnect`.  Pass: fio ends
# with no error, every verify good, the kernel logged 5 reconnects and no
# I/O error, the device reads back the file byte for byte.  Measured: kill
# to a new request served, and fio's slowest request (those in flight at the kill wait for their timeout).
# Kills come more than the timeout apart (see below).  fio runs until
# the kills are done and is then stopped (SIGTERM).  Now and then the new
# read waits 60-100 s while fio's I/O flows (6.12, seen in the rig's TCG;
# docs/swap.md): such a read is counted and reported, and fails the case
# only past $stall_max s; the data must be right all the same.
# Then the bound: a device whose server is not restarted fails its I/O
# once its dead-connection timeout (4 s) has passed, not before; and a
# reconnect naming another backend, or none, is refused.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
# requests completed on device $1 (sysfs stat: reads, writes)
# What to look at when fio stops: the device's queue, fio, the kernel.
diag() {
  say "stat $(cat "/sys/block/${DEV#/dev/}/stat") inflight $(cat "/sys/block/${DEV#/dev/}/inflight")"
  tail -15 $d/fio.out
  mount -t debugfs none /sys/kernel/debug 2>/dev/null
  for f in /sys/kernel/debug/block/${DEV#/dev/}/requeue_list \
           /sys/kernel/debug/block/${DEV#/dev/}/hctx0/busy \
           /sys/kernel/debug/block/${DEV#/dev/}/hctx0/dispatch \
           /sys/kernel/debug/block/${DEV#/dev/}/hctx0/state; do
    say "$f: $(head -5 "$f" 2>&1)"
  done
  dmesg | tail -60
}
d=/tmp/reconnect
mkdir -p $d
# serve FILE SOCK: nbdkit's file plugin on SOCK; prints its pid.
serve() {
  rm -f "$2" "$2.pid"
  nbdkit -U "$2" -P "$2.pid" file "$1" || return 1
  wait_for 20 [ -s "$2.pid" ] || return 1
  cat "$2.pid"
}
img=$d/disk.img sock=$d/nbd.sock tmo=5 dead=30 kills=${RECONNECT_KILLS:-5} stall_max=300
dd if=/dev/zero of=$img bs=1M count=0 seek=64 2>/dev/null
pid=$(serve $img $sock) || fail "nbdkit file plugin did not start"
DEV=$(trueno-nbd connect $sock --timeout $tmo --dead-conn-timeout $dead --backend $img) ||
  fail "trueno-nbd connect failed"
say "attached $DEV (timeout $tmo s, dead-conn-timeout $dead s)"
dmesg -c >/dev/null
fio --name=survive --filename="$DEV" --ioengine=libaio --direct=1 --rw=randwrite \
    --bssplit=4k/50:64k/50 --iodepth=8 --size=64M --verify=crc32c \
    --verify_backlog=256 --verify_fatal=1 --verify_state_save=0 \
    --time_based --runtime=900 > $d/fio.out 2>&1 &
fiopid=$!
n=0 worst_new=0 figures="" stalls=0
while [ $n -lt $kills ]; do
  sleep 3
  kill -0 $fiopid 2>/dev/null || break
  t0=$(ms)
  kill -9 "$pid"
  pid=$(serve $img $sock) || fail "nbdkit did not start again after kill $((n + 1))"
  t1=$(ms)
  trueno-nbd reconnect "$DEV" $sock --backend $img || fail "reconnect $((n + 1)) failed"
  t2=$(ms)
  # A new request, past fio's queue: served once the device has the socket.
  timeout $stall_max dd if="$DEV" of=/dev/null bs=4k count=1 skip=$((n * 1000)) \
    iflag=direct 2>/dev/null || { diag; fail "a read after reconnect $((n + 1)) failed"; }
  t3=$(ms)
  n=$((n + 1))
  new=$((t3 - t0))
  [ $new -gt $worst_new ] && worst_new=$new
  [ $new -gt $((tmo * 1000)) ] && stalls=$((stalls + 1))
  figures="$figures $new"
  # Kills come apart by more than the timeout: with two at once (fio's
  # requests from the last kill still waiting for their timeout) the
  # kernel (6.12) was seen to strand requests for good.
  sleep $((tmo + 1))
  say "kill $n: server up $((t1 - t0)) ms, reconnected $((t2 - t0)) ms, new read served $new ms"
done
[ $n -eq $kills ] || fail "only $n of $kills kills before fio ended"
kill -TERM $fiopid
t=$(now)
while kill -0 $fiopid 2>/dev/null; do
  [ $(( $(now) - t )) -le 60 ] || { kill -9 $fiopid; fail "fio did not end"; }
  sleep 1
done
wait $fiopid; rc=$?
grep -E "err=|IOPS|clat \(" $d/fio.out | head -6
slowest=$(sed -n 's/^ *clat (\([um]sec\)):.*max=\([^,]*\),.*/\2 \1/p' $d/fio.out | tr '\n' ' ')
# fio ends with 128 + nothing when stopped by a signal: then its report decides.
if [ $rc -ne 0 ] && ! grep -q "terminating on signal" $d/fio.out; then
  cat $d/fio.out; fail "fio exited $rc across the restarts"
fi
grep -q "err= 0" $d/fio.out || { cat $d/fio.out; fail "fio reported errors"; }
msgs=$(dmesg)
echo "$msgs" | grep -i nbd | sort | uniq -c | sort -rn | head -8
rec=$(echo "$msgs" | grep -c "reconnected socket")
[ "$rec" -eq $kills ] || fail "the kernel logged $rec reconnects, not $kills"
if echo "$msgs" | grep -iE "I/O error|critical"; then
  fail "I/O errors in the kernel log"
fi
# What the device serves is what the new servers wrote to the file.
cmp "$DEV" $img || fail "the device and the file differ"
trueno-nbd disconnect "$DEV" || fail "disconnect failed"
wait_for 10 [ "$(cat "/sys/block/${DEV#/dev/}/size")" = 0 ] || fail "$DEV still sized after disconnect"
kill "$pid" 2>/dev/null

# The bound: no restart, requests fail after the dead-connection timeout.
img2=$d/small.img sock2=$d/small.sock
dd if=/dev/zero of=$img2 bs=1M count=0 seek=16 2>/dev/null
pid2=$(serve $img2 $sock2) || fail "second nbdkit did not start"
DEV2=$(trueno-nbd connect $sock2 --timeout 3 --dead-conn-timeout 4 --backend $img2) ||
  fail "second connect failed"
# Another backend, or none, behind the same socket: refused.
for b in "--backend $img" ""; do
  # shellcheck disable=SC2086 # $b: an option and its value, or nothing
  if out=$(trueno-nbd reconnect "$DEV2" $sock2 $b 2>&1); then
    fail "reconnect of $DEV2 with '$b' accepted"
  fi
  case "$out" in *"connected with another --backend"*) ;; *) fail "reconnect with '$b': $out" ;; esac
done
dd if=/dev/zero of="$DEV2" bs=4k count=16 oflag=direct 2>/dev/null || fail "write to $DEV2 failed"
kill -9 "$pid2"
t0=$(ms)
if timeout 60 dd if="$DEV2" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; then
  fail "a read with the server gone and not restarted succeeded"
fi
el=$(( $(ms) - t0 ))
if [ $el -lt 3000 ] || [ $el -gt 15000 ]; then
  fail "the read failed after $el ms, not after the 4 s dead-connection timeout"
fi
trueno-nbd disconnect "$DEV2" || fail "disconnect of $DEV2 failed"
pass "$kills kills, fio verify 0 errors, device == file; kill -> new read served (ms):$figures (worst $worst_new; $stalls past the timeout); fio's slowest read, write: $slowest; no restart: failed after $el ms (dead-conn 4 s)"
