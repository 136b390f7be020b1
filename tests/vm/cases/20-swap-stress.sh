# vm-ram: 256
# vm-transports: nbd ublk
# Swap stress: our device (trueno-swap up, swap=on) is the only swap of a
# 256 MiB VM; tests/vm/stress allocates 3x the RAM in checksummed pages
# (corpus pages mixed in), touches them in random order for rounds and
# verifies every page.  Pass: 0 corrupt pages, the server never killed,
# done within the time bound, swapoff works and the stats show the memory
# released (trim reached the engine).
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
ram=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)
mib=$(( (ram + 1) * 3 ))         # at least 3x the RAM the kernel has
[ "$mib" -lt 768 ] && mib=768
rounds=${STRESS_ROUNDS:-2}
# The limit stays inside the boot's timeout (tests/vm/run: 1200 s) so a
# crawl ends with a count, not a killed VM; past the budget no new round
# starts, so a loaded machine does fewer rounds rather than fail.
limit=${STRESS_LIMIT:-1000}
budget=${STRESS_BUDGET:-450}
[ "$(awk 'NR>1' /proc/swaps | wc -l)" -eq 0 ] || fail "there is already swap"
# Headroom for the server: kswapd starts early (a 5% gap between the
# watermarks) and a larger min reserve, as docs/swap.md advises.
sysctl -q -w vm.min_free_kbytes=${MIN_FREE_KB:-12288} vm.watermark_scale_factor=${WSF:-500}
# The device is sized to the working set and a little: the kernel discards
# freed swap only by whole 1 MiB clusters, so with random rewrites the store
# holds stale copies of pages up to the size of the device (zram is told
# of every freed slot; NBD is not).
transport_up swap $((mib + 128))M --swap --priority 100 --connections ${CONNS:-2} || fail "trueno-swap up failed"
awk 'NR>1' /proc/swaps
[ "$(awk 'NR>1' /proc/swaps | wc -l)" -eq 1 ] || fail "our device is not the only swap"
say "RAM $ram MiB, working set $mib MiB, $rounds rounds (none started after $budget s), limit $limit s"
adj=$(cat /proc/$SERVER_PID/oom_score_adj)
lck=$(awk '/^VmLck:/{print $2}' /proc/$SERVER_PID/status)
say "server pid $SERVER_PID: oom_score_adj $adj, VmLck $lck kB"
[ "$adj" = -1000 ] || fail "server oom_score_adj is $adj, not -1000"
[ "${lck:-0}" -gt 0 ] || fail "server memory is not locked"
dmesg -c >/dev/null
# Say which tasks hang, and where, if anything does.
sysctl -q -w kernel.sysrq=1 2>/dev/null; sysctl -q -w kernel.hung_task_timeout_secs=15 kernel.hung_task_warnings=20 kernel.hung_task_all_cpu_backtrace=0 2>/dev/null; dmesg -n 7
t0=$(now)
( while sleep 20; do
    echo "progress: $(( $(now) - t0 )) s, swap used $(awk 'NR==2{print int($4/1024)}' /proc/swaps) MiB, free $(awk '/MemFree/{print int($2/1024)}' /proc/meminfo) MiB, store $(json_get "$STATS" mem_used_total) B ratio $(json_get "$STATS" ratio)"
  done ) &
mon=$!
# The server rewrites its stats every second: if it stops, say where each
# of its threads is (a static, locked program: the shell may be in swap).
/opt/trueno/watchdog "$SERVER_PID" "$STATS" 6 &
wd=$!
{ timeout -s KILL $((limit + 60)) /opt/trueno/stress --mib "$mib" --rounds "$rounds" \
    --corpus /opt/trueno/corpus --time-limit "$limit" --round-budget "$budget"
  echo $? >/tmp/stress.rc; } | tee /tmp/stress.out
rc=$(cat /tmp/stress.rc)
done_rounds=$(sed -n 's/^stress: pages .* rounds \([0-9]*\) .*/\1/p' /tmp/stress.out)
kill $mon $wd 2>/dev/null
el=$(( $(now) - t0 ))
kill -0 "$SERVER_PID" 2>/dev/null || { dmesg_new; fail "the server died during the stress run"; }
if dmesg | grep -i -E "killed process|out of memory" | grep -q .; then
  dmesg | grep -i -E "killed process|out of memory"
  dmesg | grep -q -i "killed process.*nbdkit" && fail "the OOM killer killed the server"
fi
[ $rc -eq 0 ] || { dmesg_new; fail "stress exited $rc after $el s (corrupt pages, time limit or killed)"; }
peak=$(json_get "$STATS" mem_used_max)
peak_pages=$(json_get "$STATS" pages_written)
say "stress passed in $el s; store peak $peak B, $(json_get "$STATS" failed_writes) failed writes"
swapoff "$DEV" || fail "swapoff failed"
sleep 3
pages=$(json_get "$STATS" pages_stored)
used=$(json_get "$STATS" mem_used_total)
trimmed=$(json_get "$STATS" pages_trimmed)
say "after swapoff: $pages pages stored, mem_used_total $used B (peak $peak B), $trimmed pages trimmed"
# The kernel discards freed swap by whole clusters (swapon -d): what the
# stress program freed reached the engine as trims and most memory is back.
# Slots in clusters still partly used at swapoff keep their stale copies
# until the device is discarded as a whole (trueno-swap down stops the
# server), which is checked next.
[ "${trimmed:-0}" -gt 0 ] || fail "no page was trimmed: discards did not reach the engine"
[ $(( ${used:-999999999} * 2 )) -le "$peak" ] || fail "after swapoff mem_used_total $used is not below half the peak $peak"
blkdiscard "$DEV" || fail "blkdiscard $DEV failed"
sleep 3
pages2=$(json_get "$STATS" pages_stored)
used2=$(json_get "$STATS" mem_used_total)
say "after blkdiscard: $pages2 pages stored, mem_used_total $used2 B"
[ "${pages2:-999999}" -le 16 ] || fail "after blkdiscard $pages2 pages are still stored"
transport_down swap || fail "trueno-swap down failed"
pass "$mib MiB working set in $ram MiB RAM, ${done_rounds:-?} of $rounds round(s) + verify, 0 corrupt pages, $el s; after swapoff $used of peak $peak B, after blkdiscard $used2 B"
