# vm-ram: 512
# vm-transports: nbd ublk
# trueno-swap itself on the real kernel: two names brought up at once get
# different devices; status (the table, --raw, --watch) with both up as
# swap; up --config from /etc/trueno-swap; the run directory and
# its files root's alone (0700, 0600); two concurrent ups of one name: one
# wins, the other is refused, and down leaves no server behind (4 tries).
# Over nbd also: a connection past --connections is refused (nbdkit's
# limit filter), and down after a crashed server whose pid file now names
# an unrelated live process leaves that process alone.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
run=/run/trueno
[ "$TRANSPORT" = ublk ] && tr="--transport ublk" || tr=""
[ "$TRANSPORT" = ublk ] && comm=trueno-ublk || comm=nbdkit
servers() {
  _n=0
  for _c in /proc/[0-9]*/comm; do
    [ "$(cat "$_c" 2>/dev/null)" = "$comm" ] && _n=$((_n + 1))
  done
  echo $_n
}
mode() { stat -L -c %a "$1"; }

trueno-swap up $tr --name a --size 64M --priority 10 >/tmp/a.out 2>&1 &
pa=$!
trueno-swap up $tr --name b --size 64M --priority 5 >/tmp/b.out 2>&1 &
pb=$!
wait $pa || fail "up a: $(cat /tmp/a.out)"
wait $pb || fail "up b: $(cat /tmp/b.out)"
da=$(cat $run/a.dev) db=$(cat $run/b.dev)
[ "$da" != "$db" ] || fail "a and b both on $da"
grep -q "^$da " /proc/swaps && grep -q "^$db " /proc/swaps || fail "not both swap: $(cat /proc/swaps)"
say "a on $da, b on $db, up at once"

out=$(trueno-swap status 2>&1) || fail "status with two devices up exited $?: $out"
echo "$out"
sa=$(cat $run/a.pid) sb=$(cat $run/b.pid)
out=$(trueno-swap status -r -n -o name,instance,transport,pid,mountpoint,disksize 2>&1) ||
  fail "status -r exited $?: $out"
[ "$out" = "$(printf '%s a %s %s [SWAP] 64M\n%s b %s %s [SWAP] 64M' "$da" "$TRANSPORT" "$sa" "$db" "$TRANSPORT" "$sb")" ] ||
  fail "status -r does not show both as swap: $out"
trueno-swap status --watch 1 --count 2 || fail "status --watch exited $?"
say "status: a and b, [SWAP], their servers"

# up --config: a section of /etc/trueno-swap/*.conf (trueno-swap.conf(5)).
mkdir -p /etc/trueno-swap
cat > /etc/trueno-swap/vm.conf <<EOF
[c]
zram-size = min(ram / 8, 64)
zram-resident-limit = 32
compression-algorithm = zstd(level=3)
swap-priority = 7
transport = $TRANSPORT
EOF
trueno-swap config c || fail "config c exited $?"
trueno-swap up --config c >/tmp/c.out 2>&1 || fail "up --config c: $(cat /tmp/c.out)"
dc=$(cat $run/c.dev)
want=$(( $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 128 ))
want=$(( want - want % 4096 ))
[ "$want" -le 67108864 ] || want=67108864
awk -v d="$dc" '$1 == d && $5 == 7 { f = 1 } END { exit !f }' /proc/swaps ||
  fail "c is not swap with priority 7: $(cat /proc/swaps)"
wait_for 5 sh -c "trueno-swap status -r -n -b -o disksize,algorithm,mem-limit | grep -q '^$want zstd 33554432\$'" ||
  fail "status for c: $(trueno-swap status -r -b -o name,disksize,algorithm,mem-limit)"
trueno-swap down c >/dev/null || fail "down c failed"
rm -rf /etc/trueno-swap
say "up --config c: $dc, $want bytes, zstd, mem-limit 32M, priority 7"

[ "$(mode $run)" = 700 ] || fail "$run is $(mode $run), not 700"
for f in $run/a.dev $run/a.pid $run/a.json $run/a.log $run/a.lock; do
  [ "$(mode "$f")" = 600 ] || fail "$f is $(mode "$f"), not 600"
done
if [ "$TRANSPORT" = ublk ]; then
  [ "$(mode $run/ublk)" = 700 ] || fail "$run/ublk is $(mode $run/ublk), not 700"
  for f in $run/ublk/*; do
    [ "$(mode "$f")" = 600 ] || fail "$f is $(mode "$f"), not 600"
  done
fi
say "run files: $run 700, files 600"

base=$(servers)
for i in 1 2 3 4; do
  trueno-swap up $tr --name r --size 32M --no-swapon >/tmp/r1.out 2>&1 &
  p1=$!
  trueno-swap up $tr --name r --size 32M --no-swapon >/tmp/r2.out 2>&1 &
  p2=$!
  r1=0 r2=0
  wait $p1 || r1=$?
  wait $p2 || r2=$?
  [ $((r1 == 0)) -ne $((r2 == 0)) ] ||
    fail "try $i: two ups of r: exit $r1 and $r2: $(cat /tmp/r1.out /tmp/r2.out)"
  grep -q "already up" /tmp/r1.out /tmp/r2.out || fail "try $i: no 'already up': $(cat /tmp/r1.out /tmp/r2.out)"
  [ "$(servers)" -eq $((base + 1)) ] || fail "try $i: $(servers) servers, expected $((base + 1))"
  trueno-swap down r >/dev/null || fail "try $i: down r failed"
  [ "$(servers)" -eq "$base" ] || fail "try $i: down r left $(($(servers) - base)) server(s) behind"
done
say "two ups of one name at once, 4 times: one up, one refused, down leaves no server"

if [ "$TRANSPORT" = nbd ]; then
  free=""
  for n in 0 1 2 3 4 5 6 7; do
    [ "/dev/nbd$n" = "$da" ] || [ "/dev/nbd$n" = "$db" ] || { free=/dev/nbd$n; break; }
  done
  if timeout 30 nbd-client -unix $run/a.sock "$free" -b 4096 >/tmp/extra.out 2>&1; then
    nbd-client -d "$free" >/dev/null 2>&1
    fail "a second connection to a's server was accepted ($free)"
  fi
  say "a second connection refused: $(tail -1 /tmp/extra.out)"

  trueno-swap up --name c --size 32M --no-swapon >/dev/null || fail "up c failed"
  kill -9 "$(cat $run/c.pid)"
  sleep 1000 &
  victim=$!
  echo $victim > $run/c.pid
  out=$(trueno-swap down c 2>&1) || fail "down c after a crash: $out"
  kill -0 $victim 2>/dev/null || fail "down c killed the unrelated process $victim ($out)"
  kill $victim
  [ ! -e $run/c.pid ] && [ ! -e $run/c.sock ] && [ ! -e $run/c.dev ] ||
    fail "down c left files: $(ls $run)"
  say "crashed server, pid reused: $out"
fi

trueno-swap down a >/dev/null && trueno-swap down b >/dev/null || fail "down a/b failed"
case "$(trueno-swap status)" in *"no trueno devices"*) ;; *) fail "status after down: $(trueno-swap status)" ;; esac
[ "$(servers)" -eq 0 ] || fail "$(servers) servers left after down"
pass "status with swap up, up --config, concurrent ups, root-only run files$([ "$TRANSPORT" = nbd ] && echo ', connection limit, stale pid')"
