# vm-ram: 512
# vm-transports: ublk
# trueno-ublk add/del 20 times in a row, each device written and read back:
# no device, server or run file is left behind and memory comes back.  The
# first with prometheus=FILE: 0600, labelled device="ublkbN", its counters
# follow the writes, gone with the device.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
avail() { awk '/MemAvailable/{print int($2/1024)}' /proc/meminfo; }
count_devs() { ls /sys/class/ublk-char 2>/dev/null | wc -l; }
servers() { pidof trueno-ublk | wc -w; }
# 1 MiB of the corpus sample (its files back to back).
cat /opt/trueno/corpus/*.pages | head -c $((1 << 20)) >/tmp/add-del.pages
[ "$(wc -c </tmp/add-del.pages)" -eq $((1 << 20)) ] || fail "corpus sample under 1 MiB"
sync; echo 3 > /proc/sys/vm/drop_caches
m0=$(avail)
t0=$(now)
i=1
prom=/tmp/prom/ublk.prom
mkdir -p /tmp/prom
while [ $i -le 20 ]; do
  extra=
  [ "$i" -gt 1 ] || extra=prometheus=$prom
  dev=$(trueno-ublk add --size 64M algorithm=$( [ $((i % 2)) = 0 ] && echo zstd || echo lz4 ) $extra) ||
    fail "add #$i failed"
  [ -b "$dev" ] || fail "add #$i: $dev is not a block device"
  # Some data through it: a pattern in, the same back.
  dd if=/tmp/add-del.pages of="$dev" bs=64k count=16 oflag=direct status=none ||
    fail "write #$i to $dev failed"
  a=$(md5sum </tmp/add-del.pages)
  b=$(dd if="$dev" bs=64k count=16 iflag=direct status=none | md5sum)
  [ "$a" = "$b" ] || fail "read back #$i from $dev differs"
  id=${dev#/dev/ublkb}
  [ "$i" -gt 1 ] || trueno-ublk list
  if [ "$i" = 1 ]; then
    sample="trueno_pages_written_total{device=\"ublkb$id\"}"
    for _ in $(seq 30); do
      v=$(awk -v s="$sample" '$1 == s { print $2 }' "$prom" 2>/dev/null)
      [ "${v:-0}" -ge 256 ] && break
      sleep 0.1
    done
    [ "${v:-0}" -ge 256 ] || fail "prometheus=: $sample is '$v' 3 s after 256 pages: $(grep -c . "$prom" 2>&1) lines"
    [ "$(stat -c %a "$prom")" = 600 ] || fail "prometheus=: mode $(stat -c %a "$prom")"
    say "prometheus=: $sample $v, $(grep "^trueno_info" "$prom")"
  fi
  trueno-ublk del "$id" >/dev/null || fail "del #$i ($id) failed"
  [ ! -e "$dev" ] || fail "del #$i: $dev still exists"
  [ "$(count_devs)" = 0 ] || fail "del #$i: $(count_devs) ublk devices left: $(ls /sys/class/ublk-char)"
  [ "$(servers)" = 0 ] || fail "del #$i: server still running: $(pidof trueno-ublk)"
  [ ! -e "$prom" ] || fail "del #$i: $prom left behind"
  i=$((i + 1))
done
left=$(ls /run/trueno/ublk 2>/dev/null | wc -l)
[ "$left" = 0 ] || fail "run files left: $(ls /run/trueno/ublk)"
sync; echo 3 > /proc/sys/vm/drop_caches
m1=$(avail)
say "MemAvailable $m0 MiB before, $m1 MiB after 20 add/del"
[ $((m0 - m1)) -le 8 ] || fail "MemAvailable fell by $((m0 - m1)) MiB over 20 add/del (leak?)"
# A bad request fails clearly and leaves nothing.
trueno-ublk add --size 64M --depth 99999 2>/tmp/err && fail "depth 99999 accepted"
grep -q "invalid --depth" /tmp/err || fail "no clear message for a bad depth: $(cat /tmp/err)"
trueno-ublk del 7 2>/tmp/err && fail "del of a missing device succeeded"
grep -q "no ublk device 7" /tmp/err || fail "no clear message for a missing device: $(cat /tmp/err)"
pass "20 add/write/read/del in $(( $(now) - t0 )) s, no device or server left, MemAvailable $m0 -> $m1 MiB"
