# vm-ram: 256
# vm-transports: ublk
# The ublk server dies under a live swap and comes back (issue 19):
# trueno-swap up --transport ublk --persist is the only swap of a 256 MiB
# VM; tests/vm/stress swaps ~2x the RAM in checksummed pages while the
# server (the supervisor's child) is killed with SIGKILL several times and
# trueno-swap upgrade runs once, onto a trueno-ublk replaced on disk.
# Pass: the stress completes with 0 corrupt pages, no process is killed,
# no I/O error in the kernel log; each kill -> a direct read served again
# is reported.  Then, after swapoff, the supervisor is stopped and its
# server killed: trueno-ublk recover by hand serves the device again, with
# its data.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
ram=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)
mib=$(( (ram + 1) * 2 ))
kills=${RESTART_KILLS:-4}
limit=${STRESS_LIMIT:-400}
[ "$(awk 'NR>1' /proc/swaps | wc -l)" -eq 0 ] || fail "there is already swap"
sysctl -q -w vm.min_free_kbytes=${MIN_FREE_KB:-12288} vm.watermark_scale_factor=${WSF:-500}
trueno-swap up --transport ublk --persist --name rs --size $((mib + 128))M --priority 100 ||
  fail "trueno-swap up --persist failed"
DEV=$(cat /run/trueno/rs.dev)
id=${DEV#/dev/ublkb}
STATS=/run/trueno/rs.json
sup=$(cat /run/trueno/ublk/ublk$id.pid)
# Failures say what the supervisor logged.
die() { echo "--- ublk$id.log"; tail -n 40 /run/trueno/ublk/ublk$id.log; dmesg | tail -n 20; fail "$@"; }
srv() { cat /run/trueno/ublk/ublk$id.server.pid 2>/dev/null; }
[ -n "$(srv)" ] && [ "$(srv)" != "$sup" ] || die "no supervised server (pid files: $(ls /run/trueno/ublk))"
say "device $DEV, supervisor $sup (oom_score_adj $(cat /proc/$sup/oom_score_adj), VmLck $(awk '/^VmLck:/{print $2}' /proc/$sup/status) kB), server $(srv)"
[ "$(cat /proc/$sup/oom_score_adj)" = -1000 ] || die "the supervisor can be OOM-killed"
[ "$(awk '/^VmLck:/{print $2}' /proc/$sup/status)" -gt 0 ] || die "the supervisor's memory is not locked"
trueno-ublk list | grep "ublk$id:" | grep -q live || die "not live: $(trueno-ublk list)"
dmesg -c >/dev/null
sysctl -q -w kernel.sysrq=1 kernel.hung_task_timeout_secs=30 kernel.hung_task_warnings=20 kernel.hung_task_all_cpu_backtrace=0 2>/dev/null; dmesg -n 7

/opt/trueno/stress --mib "$mib" --rounds 2 --corpus /opt/trueno/corpus \
  --time-limit "$limit" --round-budget $((limit / 3)) > /tmp/stress.out 2>&1 &
spid=$!
( while sleep 15; do
    echo "progress: swap used $(awk 'NR==2{print int($4/1024)}' /proc/swaps) MiB, free $(awk '/MemFree/{print int($2/1024)}' /proc/meminfo) MiB, store $(json_get "$STATS" mem_used_total) B, supervisor $(cut -d' ' -f3 /proc/$sup/stat) server $(cut -d' ' -f3 /proc/$(srv)/stat 2>/dev/null)"
  done ) &
mon=$!
# Into swap first: the kills must find pages there.
wait_for 120 sh -c "[ \$(awk 'NR==2{print \$4}' /proc/swaps) -gt 65536 ]" ||
  { cat /tmp/stress.out; die "nothing swapped out within 120 s"; }

# kill_one N: SIGKILL to the server; the time until a direct read of the
# device is served again (ms).  1 MiB reads: busybox dd's buffer is then
# page aligned, as O_DIRECT needs.
figures="" worst=0
kill_one() {
  old=$(srv)
  t0=$(ms)
  kill -9 "$old" || die "kill $1: no server $old"
  timeout 60 dd if="$DEV" of=/dev/null bs=1M count=1 skip=$(( $1 * 3 )) iflag=direct 2>/dev/null ||
    die "kill $1: a read failed or hung (60 s) after the kill"
  el=$(( $(ms) - t0 ))
  wait_for 10 sh -c "[ -n \"\$(cat /run/trueno/ublk/ublk$id.server.pid 2>/dev/null)\" ] && [ \"\$(cat /run/trueno/ublk/ublk$id.server.pid)\" != $old ]" ||
    die "kill $1: no new server pid"
  say "kill $1: server $old killed, read served after $el ms, new server $(srv)"
  figures="$figures $el"
  [ "$el" -le "$worst" ] || worst=$el
}
n=0
while [ $n -lt "$kills" ]; do
  n=$((n + 1))
  kill -0 $spid 2>/dev/null || break
  kill_one $n
  sleep 7 # more than the supervisor's fast-failure window
done
# Live upgrade onto a binary replaced on disk (a new inode, as a package
# upgrade leaves it).
cp /sbin/trueno-ublk /sbin/trueno-ublk.new && mv /sbin/trueno-ublk.new /sbin/trueno-ublk ||
  die "cannot replace /sbin/trueno-ublk"
old=$(srv)
if kill -0 $spid 2>/dev/null; then
  up=$(trueno-swap upgrade rs) || die "trueno-swap upgrade failed: $up"
  say "upgrade: $up"
  [ "$(cat /run/trueno/ublk/ublk$id.pid)" = "$sup" ] || die "the supervisor's pid changed"
  [ "$(srv)" != "$old" ] || die "upgrade: still server $old"
  case "$(readlink /proc/$(srv)/exe)" in *deleted*) die "upgrade: the new server runs the old binary" ;; esac
else
  say "the stress ended before the upgrade: upgrade not tested under load"
fi
wait $spid; rc=$?
kill $mon 2>/dev/null
tail -3 /tmp/stress.out
echo "--- supervisor log"; tail -n 30 /run/trueno/ublk/ublk$id.log
[ $rc -eq 0 ] || { dmesg_new; die "stress exited $rc (corrupt pages, time limit or killed)"; }
if dmesg | grep -i -E "killed process|out of memory|I/O error|blk_update_request|Buffer I/O" | grep -q .; then
  dmesg | grep -i -E "killed process|out of memory|I/O error|blk_update_request|Buffer I/O" | head
  die "the kernel logged I/O errors or killed a process"
fi
[ "$n" -ge 2 ] || die "only $n kill(s) before the stress ended: make it longer"
sorted=$(for f in $figures; do echo "$f"; done | sort -n)
med=$(echo "$sorted" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')

# recover by hand, with no supervisor: write a marker, stop the
# supervisor without stopping the device (SIGKILL), kill the server: the
# device holds its I/O until trueno-ublk recover serves it again.
swapoff "$DEV" || die "swapoff failed"
dd if=/dev/zero of=/tmp/marker bs=1M count=1 2>/dev/null
printf 'trueno-recover-marker' | dd of=/tmp/marker conv=notrunc 2>/dev/null
dd if=/tmp/marker of="$DEV" bs=1M seek=7 oflag=direct conv=notrunc 2>/dev/null ||
  die "marker write failed"
kill -9 "$sup"
old=$(srv)
kill -9 "$old"
sleep 1
trueno-ublk list | grep "ublk$id:" | grep -q quiesced || die "not quiesced after the kill: $(trueno-ublk list)"
( dd if="$DEV" bs=1M skip=7 count=1 iflag=direct 2>/dev/null > /tmp/held.out; echo $? > /tmp/held.rc ) &
sleep 1
[ ! -s /tmp/held.rc ] || die "a read with no server did not wait (rc $(cat /tmp/held.rc))"
t0=$(ms)
TRUENO_UBLK_RUNDIR=/run/trueno/ublk trueno-ublk recover "$id" swap=on \
  state=/run/trueno/hold/rs.sock state-name=rs > /tmp/recover.out 2>&1 ||
  { cat /tmp/recover.out; die "trueno-ublk recover failed"; }
wait_for 20 test -s /tmp/held.rc || die "the held read was not served after recover"
el=$(( $(ms) - t0 ))
[ "$(cat /tmp/held.rc)" = 0 ] || die "the held read failed after recover"
grep -q trueno-recover-marker /tmp/held.out || die "the held read did not return the marker"
say "recover by hand: $(cat /tmp/recover.out), held read served $el ms after it started"
trueno-swap down rs || die "trueno-swap down failed"
[ ! -e "$DEV" ] || die "$DEV still exists after down"
pass "$n kills + 1 upgrade under swap stress ($mib MiB in $ram MiB RAM): 0 corrupt pages, no process killed, no I/O error; kill -> read served (ms):$figures (median $med, max $worst); $up; recover by hand: held read served $el ms after recover started"
