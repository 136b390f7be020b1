# vm-ram: 256
# vm-transports: nbd ublk
# Cold groups under a real kernel's swap: trueno-swap up with
# algorithm=zstd (every page stored as per-page zstd, as kernel zram with
# zstd stores it) and group=32 (not on's 16: on this data, with little
# locality, the larger windows keep the gain well clear of the 5 %
# below); tests/vm/stress fills 1.5x the RAM (a
# third of it corpus pages) and holds it untouched, so the swapped-out
# pages go idle and the server groups them in the order the kernel laid
# them out; then every page is read back and verified.
# Pass: 0 corrupt pages, most pages grouped, memory per stored page 5 %
# below what per-page zstd took in the same boot (the stress program's
# pages: a third corpus pages picked at random, so with little locality,
# two thirds short lines of words), dead frame bytes under
# half the frame bytes, the server alive.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
ram=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)
mib=$(( ram * 3 / 2 ))
limit=${STRESS_LIMIT:-900}
idle=30
sysctl -q -w vm.min_free_kbytes=${MIN_FREE_KB:-12288} vm.watermark_scale_factor=${WSF:-500}
transport_up grp $((mib + 128))M --swap --priority 100 algorithm=zstd \
  group=32 group-idle=$idle group-rate=16384 || fail "trueno-swap up failed"
[ "$(awk 'NR>1' /proc/swaps | wc -l)" -eq 1 ] || fail "our device is not the only swap"
hold=/tmp/hold.$$
log=/tmp/stress.$$
/opt/trueno/stress --mib "$mib" --rounds 0 --corpus /opt/trueno/corpus --corpus-every 3 \
  --hold-file "$hold" --time-limit "$limit" >"$log" 2>&1 &
sp=$!
wait_for "$limit" grep -q holding "$log" || { cat "$log"; fail "stress never filled its pages"; }
snap() { cp "$STATS" "/tmp/snap.$1"; }
val() { json_get "/tmp/snap.$1" "$2"; }
held() { echo $(( $(val "$1" pages_stored) - $(val "$1" same_pages) )); }
# From where the count of stored pages has settled (before the first pages
# are $idle s idle): per-page zstd's memory.
snap a; last=$(held a) n=0 same=0
while [ $n -lt 20 ] && [ $same -lt 3 ]; do
  sleep 1; snap a; now_=$(held a)
  if [ "$now_" -eq "$last" ]; then same=$((same + 1)); else same=0; fi
  last=$now_ n=$((n + 1))
done
t0=$(now)
s0=$(held a) mem0=$(val a mem_used_total) pay0=$(val a compr_data_size)
[ "$(val a pages_grouped)" -eq 0 ] || say "note: $(val a pages_grouped) pages grouped already"
say "filled $mib MiB in $ram MiB RAM: $s0 pages in swap, per-page zstd: mem_used_total $mem0 B, payload $pay0 B"
# Until grouping has stopped finding pages and memory has not gone down
# for 10 s (compaction follows the per-page copies grouping frees), at
# most 300 s.
snap b; best=$(val b mem_used_total) still=0 waited=0 g_last=$(val b pages_grouped)
while [ $still -lt 10 ] && [ $waited -lt 300 ]; do
  sleep 2; waited=$((waited + 2))
  snap b; g_now=$(val b pages_grouped) m=$(val b mem_used_total)
  if [ "${m:-0}" -lt "$best" ]; then
    best=$m still=0
  elif [ "$g_now" -ne "$g_last" ] || [ "$g_now" -eq 0 ]; then
    still=0
  else
    still=$((still + 2))
  fi
  g_last=$g_now
done
snap b
s1=$(held b) mem1=$(val b mem_used_total) pay1=$(val b compr_data_size)
grp=$(val b pages_grouped) ng=$(val b groups) fb=$(val b group_frame_bytes) db=$(val b group_dead_bytes)
meta=$(val b metadata_bytes)
pp0=$(( pay0 / s0 )) pp1=$(( pay1 / s1 )) mp0=$(( mem0 / s0 )) mp1=$(( mem1 / s1 ))
say "after $(( $(now) - t0 )) s: $s1 pages stored, $grp in $ng groups (frames $fb B, dead $db B); per stored page: payload $pp0 -> $pp1 B, memory $mp0 -> $mp1 B (mem_used_total $mem0 -> $mem1 B), metadata $(( meta / s1 )) B; $(val b compactions) compactions moved $(val b pages_compacted)"
touch "$hold"
wait $sp
rc=$?
tail -3 "$log"
snap c
say "read back: $(val c group_decodes) frames decoded, $(val c group_cache_hits) cache hits"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died"
[ $rc -eq 0 ] || { dmesg_new; fail "stress exited $rc (corrupt pages or time limit)"; }
[ "${grp:-0}" -ge $(( s1 / 2 )) ] || fail "only $grp of $s1 idle pages grouped"
[ $(( db * 2 )) -le "$fb" ] || fail "dead frame bytes $db over half of $fb"
[ $(( mp1 * 100 )) -le $(( mp0 * 95 )) ] || fail "memory per page $mp0 -> $mp1 B: not 5 % below per-page zstd"
transport_down grp || fail "trueno-swap down failed"
pass "$s0 pages swapped out and held: $grp grouped; per page payload $pp0 -> $pp1 B, memory $mp0 -> $mp1 B against per-page zstd; all $mib MiB verified"
