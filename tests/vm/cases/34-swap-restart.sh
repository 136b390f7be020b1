# vm-ram: 256
# vm-transports: nbd
# Swap whose server dies and is upgraded under it (issue 19):
# `trueno-swap up --persist` (trueno-nbd supervise: the store's state in
# its memfd, nbdkit its child, /dev/nbdN attached with --timeout 5 and a
# dead-connection timeout) is the only swap of a 256 MiB VM; tests/vm/stress
# runs 2x the RAM of checksummed pages, 1 round + verify; in the middle
# the server is killed with SIGKILL $kills times (kills more than the
# timeout apart: docs/swap.md) and upgraded once (`trueno-swap upgrade`).
# After each, a 4 KiB direct read of the device times kill -> served.
# Pass: the stress completes with 0 corrupt pages, no process killed, no
# I/O error in the kernel log, every read served, the supervisor
# restarted the server $kills times and upgraded it once.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
ram=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)
mib=$(( ram * 2 ))
kills=${RESTART_KILLS:-3} tmo=5 gap=${RESTART_GAP:-12}
[ "$(awk 'NR>1' /proc/swaps | wc -l)" -eq 0 ] || fail "there is already swap"
sysctl -q -w vm.min_free_kbytes=${MIN_FREE_KB:-12288} vm.watermark_scale_factor=${WSF:-500}
transport_up swap $((mib + 128))M --swap --timeout $tmo --persist --priority 100 \
  --connections ${CONNS:-2} || fail "trueno-swap up --persist failed"
sup=$(cat /run/trueno/sup/swap.pid) || fail "no supervisor pid file"
log=/run/trueno/swap.log
say "device $DEV, supervisor $sup (VmLck $(awk '/^VmLck:/{print $2}' /proc/$sup/status) kB, oom_score_adj $(cat /proc/$sup/oom_score_adj)), server $SERVER_PID"
[ "$(cat /proc/$sup/oom_score_adj)" = -1000 ] || fail "supervisor oom_score_adj is not -1000"
[ "$(awk '/^VmLck:/{print $2}' /proc/$sup/status)" -gt 0 ] || fail "supervisor memory not locked"
[ "$(awk '/^VmLck:/{print $2}' /proc/$SERVER_PID/status)" -gt 0 ] || fail "server memory not locked (nbdkit -f)"
dmesg -c >/dev/null
# The supervisor's log as it comes (its events and the server's errors).
# (tail itself: a filter between would hold them in its buffer).
tail -f "$log" &
tailpid=$!
# The case's output is a pipe the rig reads to its end: whatever runs in
# the background must be gone when the case exits, pass or fail, or the
# boot waits for its timeout.
bg=$tailpid
trap 'kill $bg 2>/dev/null' EXIT
dmesg -n 7
# If the supervisor or the server stops, where their threads are (static,
# locked: works while swap is stuck).
/opt/trueno/watchdog "$sup" "$STATS" 8 &
bg="$bg $!"
/opt/trueno/watchdog "$SERVER_PID" "$STATS" 8 &
bg="$bg $!"
t0=$(now)
/opt/trueno/stress --mib "$mib" --rounds 1 --corpus /opt/trueno/corpus \
  --time-limit 600 --round-budget 120 > /tmp/stress.out 2>&1 &
spid=$!
# read_ms T0 N: a 4 KiB direct read of the device; ms since T0.
read_ms() {
  timeout 120 dd if="$DEV" of=/dev/null bs=4k count=1 skip=$((1000 + $2 * 4099)) \
    iflag=direct 2>/dev/null || { diag; fail "read after event $2 failed"; }
  echo $(( $(ms) - $1 ))
}
# What to look at when something stops: swap, the device, the log.
diag() {
  say "swap used $(awk 'NR==2{print int($4/1024)}' /proc/swaps) MiB, free $(awk '/MemFree/{print int($2/1024)}' /proc/meminfo) MiB; stat $(cat /sys/block/${DEV#/dev/}/stat); inflight $(cat /sys/block/${DEV#/dev/}/inflight)"
  tail -3 /tmp/stress.out
  tail -15 "$log"
  dmesg | tail -30
}
# Into swap first: the kills hit a store with pages in it.
i=0
while [ "$(awk 'NR==2{print $4}' /proc/swaps)" -lt 32768 ]; do
  i=$((i + 1))
  [ $((i % 10)) -ne 0 ] || say "$i s: swap used $(awk 'NR==2{print int($4/1024)}' /proc/swaps) MiB, free $(awk '/MemFree/{print int($2/1024)}' /proc/meminfo) MiB; $(tail -1 /tmp/stress.out)"
  [ $i -le 180 ] || { diag; fail "less than 32 MiB in swap after 180 s"; }
  kill -0 $spid 2>/dev/null || { diag; fail "stress ended before the kills"; }
  sleep 1
done
figures="" n=0
while [ $n -lt $kills ]; do
  kill -0 $spid 2>/dev/null || break
  old=$(cat /run/trueno/swap.pid)
  used=$(awk 'NR==2{print int($4/1024)}' /proc/swaps)
  t=$(ms)
  kill -9 "$old"
  n=$((n + 1))
  r=$(read_ms $t $n)
  figures="$figures $r"
  say "kill $n (server $old, $used MiB in swap): a new read served after $r ms"
  sleep $gap
done
[ $n -eq $kills ] || fail "the stress ended after $n of $kills kills"
old=$(cat /run/trueno/swap.pid)
t=$(ms)
trueno-swap upgrade swap || { tail -20 "$log"; fail "trueno-swap upgrade failed"; }
up=$(read_ms $t $((kills + 1)))
say "upgrade (server $old -> $(cat /run/trueno/swap.pid)): a new read served after $up ms"
wait $spid; rc=$?
el=$(( $(now) - t0 ))
cat /tmp/stress.out | tail -3
grep "trueno-nbd supervise" "$log" | sed 's/^[^ ]* //' | tail -20
msgs=$(dmesg)
echo "$msgs" | grep -i nbd | sort | uniq -c | sort -rn | head -8
if echo "$msgs" | grep -i -E "killed process|out of memory" | grep -q .; then
  echo "$msgs" | grep -i -E "killed process|out of memory"
  fail "a process was killed"
fi
if echo "$msgs" | grep -iE "I/O error|critical|Read-error|Write-error"; then
  fail "I/O errors in the kernel log"
fi
[ $rc -eq 0 ] || { diag; fail "stress exited $rc (corrupt pages, time limit or killed) after $el s"; }
restarts=$(grep -c "restart: server .* handed to" "$log")
[ "$restarts" -ge $kills ] || fail "the supervisor logged $restarts restarts, not $kills"
grep -q "upgrade done" "$log" || fail "no 'upgrade done' in the supervisor's log"
kill -0 "$sup" || fail "the supervisor died"
swapoff "$DEV" || fail "swapoff failed"
transport_down swap || fail "trueno-swap down failed"
! kill -0 "$sup" 2>/dev/null || fail "down left the supervisor running"
sorted=$(echo $figures | tr ' ' '\n' | sort -n)
med=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
pass "$mib MiB stress in $ram MiB RAM, 0 corrupt pages, $el s; $kills kills + 1 upgrade under swap: kill -> read served (ms):$figures (median $med, max $(echo "$sorted" | tail -1)); upgrade -> served $up ms; $(grep -c "link dead" "$log") link-dead reconnects"
