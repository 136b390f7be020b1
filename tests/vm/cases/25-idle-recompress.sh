# vm-ram: 256
# vm-transports: nbd ublk
# Idle-page recompression under a real kernel's swap: trueno-swap up with
# recompress=zstd; tests/vm/stress fills 1.5x the RAM (half of it corpus
# pages) and holds it untouched, so the swapped-out pages go idle and the
# server recompresses them; then every page is read back and verified.
# Pass: 0 corrupt pages, pages recompressed, the payload per page 10 %
# down and the store's memory not up, the server alive.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
ram=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)
mib=$(( ram * 3 / 2 ))
limit=${STRESS_LIMIT:-900}
sysctl -q -w vm.min_free_kbytes=${MIN_FREE_KB:-12288} vm.watermark_scale_factor=${WSF:-500}
transport_up rec $((mib + 128))M --swap --priority 100 recompress=zstd recompress-idle=3 ||
  fail "trueno-swap up failed"
[ "$(awk 'NR>1' /proc/swaps | wc -l)" -eq 1 ] || fail "our device is not the only swap"
hold=/tmp/hold.$$
log=/tmp/stress.$$
/opt/trueno/stress --mib "$mib" --rounds 0 --corpus /opt/trueno/corpus --corpus-every 2 \
  --hold-file "$hold" --time-limit "$limit" >"$log" 2>&1 &
sp=$!
wait_for "$limit" grep -q holding "$log" || { cat "$log"; fail "stress never filled its pages"; }
t0=$(now)
mem0=$(json_get "$STATS" mem_used_total)
pay0=$(json_get "$STATS" compr_data_size)
stored=$(( $(json_get "$STATS" pages_stored) - $(json_get "$STATS" same_pages) ))
say "filled $mib MiB in $ram MiB RAM: $stored pages in swap, mem_used_total $mem0 B, payload $(json_get "$STATS" compr_data_size) B"
# Wait for the recompressor to go over at least 90 % of them (a page
# recompressed or found not worth it), at most 300 s.
tried() { echo $(( $(json_get "$STATS" pages_recompressed) + $(json_get "$STATS" recompress_no_gain) )); }
enough() { [ "$(tried)" -ge $(( stored * 9 / 10 )) ]; }
wait_for 300 enough || say "only $(tried) of $stored pages tried in 300 s"
# The compactions that follow a finished run of steps (with swap=on's pool
# reserve each moves a bounded amount, so they go on from second to
# second): wait until memory has not gone down for 10 s, at most 120 s.
best=$(json_get "$STATS" mem_used_total) still=0 waited=0
while [ $still -lt 10 ] && [ $waited -lt 120 ]; do
  sleep 2; waited=$((waited + 2))
  m=$(json_get "$STATS" mem_used_total)
  if [ "${m:-0}" -lt "$best" ]; then best=$m still=0; else still=$((still + 2)); fi
done
mem1=$(json_get "$STATS" mem_used_total)
rec=$(json_get "$STATS" pages_recompressed)
zp=$(json_get "$STATS" zstd_pages)
say "after $(( $(now) - t0 )) s: $(( $(json_get "$STATS" pages_stored) - $(json_get "$STATS" same_pages) )) pages stored, payload $(json_get "$STATS" compr_data_size) B, $(json_get "$STATS" compactions) compactions moved $(json_get "$STATS" pages_compacted); $rec recompressed, $(json_get "$STATS" recompress_no_gain) no gain, $zp zstd pages, mem_used_total $mem0 -> $mem1 B"
touch "$hold"
wait $sp
rc=$?
cat "$log" | tail -3
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died"
[ $rc -eq 0 ] || { dmesg_new; fail "stress exited $rc (corrupt pages or time limit)"; }
[ "${rec:-0}" -ge $(( stored / 2 )) ] || fail "only $rec of $stored idle pages recompressed"
[ "${zp:-0}" -gt 0 ] || fail "no zstd pages"
# Per stored page (more pages come out while it holds): the payload must
# shrink by 10 %; the store's memory follows as far as compaction under
# swap=on gets (it moves a bounded amount a pass: 1.5-24 % seen), and must
# not grow.
pp0=$(( pay0 / stored )) pp1=$(( $(json_get "$STATS" compr_data_size) / ($(json_get "$STATS" pages_stored) - $(json_get "$STATS" same_pages)) ))
say "payload per page $pp0 -> $pp1 B"
[ $(( pp1 * 100 )) -le $(( pp0 * 90 )) ] || fail "payload per page $pp0 -> $pp1 B: not 10 % down"
[ $(( ${mem1:-0} * 100 )) -le $(( mem0 * 102 )) ] || fail "mem_used_total $mem0 -> $mem1: went up"
transport_down rec || fail "trueno-swap down failed"
pass "$stored pages swapped out and held: $rec recompressed to zstd, payload per page $pp0 -> $pp1 B, mem_used_total $mem0 -> $mem1 B, all $mib MiB verified"
