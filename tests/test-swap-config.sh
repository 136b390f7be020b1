#!/usr/bin/env bash
# trueno-swap.conf(5) and the systemd generator on the host: the sizes as
# expressions of this machine's RAM, each key's up argument, the generator's
# links (run as systemd runs it, into a directory, with the config
# directory overridden) and systemd-analyze verify on the unit they name;
# malformed files (an unknown key, a bad expression, a bad number, an
# unknown algorithm...) are errors naming file, line and key, and make no
# unit for their section while the others still get theirs; up --config
# refuses a missing or malformed section.  The VM's swap-helper case runs
# up --config for real.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
top=$test_dir/..
ts=$top/scripts/trueno-swap
[ -x "$ts" ] || fail "no $ts"
conf=$TMPD/conf
mkdir -p "$conf"
export TRUENO_SWAP_CONFDIR=$conf TRUENO_SWAP_RUNDIR=$TMPD/run

# This machine's MemTotal, in bytes, and the expected device sizes.
ram=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024))
round() { echo $(($1 - $1 % 4096)); }
half=$(round $((ram / 2)))
[ "$half" -le 4294967296 ] || half=4294967296
eighth=$(round $((ram / 8)))
# up's --size as the config prints it: M when whole MiB, else K.
sz() { if [ $(($1 % 1048576)) -eq 0 ]; then echo "$(($1 / 1048576))M"; else echo "$(($1 / 1024))K"; fi; }

cat >"$conf/10-main.conf" <<'EOF'
# The defaults of zram-generator, spelled out.
[main]
zram-size = min(ram / 2, 4096)
zram-resident-limit = ram / 8
compression-algorithm = zstd(level=3)
recompress = zstd(level=9)
recompress-idle = 60
recompress-rate = 2048
swap-priority = 50
transport = nbd
connections = 2
persist = no
dead-conn-timeout = 30
parameters = lz4-impl=trueno overcommit=yes

; Sections, comments with ';', odd spacing, CRLF line ends.
[spill]
zram-size=2 * (100 + 28) - -0
transport = ublk
queues = 2
depth = 64
persist = yes
swap-priority=-1
compression-algorithm = zstd( level = -5 )
recompress = lz4hc(level=12)
cold-groups = 16
EOF
printf '[crlf]\r\nzram-size = max(1.5, min(ram, 1.25))\r\n' >"$conf/20-crlf.conf"
cat >"$conf/30-defaults.conf" <<'EOF'
[defaults]
host-memory-limit = none
EOF

out=$("$ts" config 2>"$TMPD/err") || fail "config exited $?: $(cat "$TMPD/err")"
[ ! -s "$TMPD/err" ] || fail "config printed errors: $(cat "$TMPD/err")"
printf '%s\n' "$out"
want="main: trueno-swap up --name main --size $(sz "$half") --priority 50 --transport nbd --connections 2 --dead-conn-timeout 30 mem-limit=$eighth algorithm=zstd level=3 recompress=zstd:9 recompress-idle=60 recompress-rate=2048 lz4-impl=trueno overcommit=yes
spill: trueno-swap up --name spill --size 256M --transport ublk --queues 2 --depth 64 --persist --priority -1 algorithm=zstd level=-5 recompress=lz4hc:12 group=16
crlf: trueno-swap up --name crlf --size 1536K
defaults: trueno-swap up --name defaults --size $(sz "$half")"
[ "$out" = "$want" ] || fail "config printed:
$out
expected:
$want"
ok "config: every key's up argument, sizes from MemTotal ($((ram / 1048576)) MiB)"
# The same under busybox sh and awk (the VM's, and small systems').
if command -v busybox >/dev/null; then
    mkdir -p "$TMPD/bb"
    ln -s "$(command -v busybox)" "$TMPD/bb/awk"
    out=$(PATH=$TMPD/bb:$PATH busybox sh "$ts" config 2>&1) || fail "busybox: config exited $?: $out"
    [ "$out" = "$want" ] || fail "busybox: config printed:
$out"
    ok "the same under busybox sh and awk"
fi

# host-memory-limit: below this machine's RAM, no device (not an error).
printf '[small]\nhost-memory-limit = 16\n' >"$conf/40-small.conf"
out=$("$ts" config small 2>&1) || fail "config small: $out"
case "$out" in *"[small]: not set up: RAM "*"above host-memory-limit 16"*) ;; *) fail "host-memory-limit: $out" ;; esac
ok "host-memory-limit below RAM: no device ($out)"
rm "$conf/40-small.conf"

# The generator, as systemd runs it (three directories), and the unit.
gen=$TMPD/gen
mkdir -p "$gen"/{normal,early,late}
"$ts" generate --unit /lib/systemd/system/trueno-swap@.service \
    "$gen/normal" "$gen/early" "$gen/late" || fail "generate exited $?"
links=$(cd "$gen/normal/swap.target.wants" && ls)
[ "$links" = "$(printf 'trueno-swap@crlf.service\ntrueno-swap@defaults.service\ntrueno-swap@main.service\ntrueno-swap@spill.service')" ] ||
    fail "generate made: $links"
[ "$(readlink "$gen/normal/swap.target.wants/trueno-swap@main.service")" = /lib/systemd/system/trueno-swap@.service ] ||
    fail "link target: $(readlink "$gen/normal/swap.target.wants/trueno-swap@main.service")"
[ -z "$(ls -A "$gen/early" "$gen/late" | grep -v ':$' | grep .)" ] || fail "wrote into the early or late directory"
ok "generate: one swap.target.wants link per section"
# The installed generator (make substitutes the paths) runs trueno-swap.
g=${abs_top_builddir:-$top}/trueno-swap-generator
[ -x "$g" ] || fail "no $g (make builds it)"
rm -rf "$gen/normal"; mkdir "$gen/normal"
TRUENO_SWAP=$ts "$g" "$gen/normal" "$gen/early" "$gen/late" || fail "$g exited $?"
[ -L "$gen/normal/swap.target.wants/trueno-swap@spill.service" ] || fail "$g made no link"
case "$(readlink "$gen/normal/swap.target.wants/trueno-swap@spill.service")" in
    /*/trueno-swap@.service) ok "trueno-swap-generator: links to $(readlink "$gen/normal/swap.target.wants/trueno-swap@spill.service")" ;;
    *) fail "trueno-swap-generator's link: $(readlink "$gen/normal/swap.target.wants/trueno-swap@spill.service")" ;;
esac
# No config directory, or no file in it: nothing, and no error.
TRUENO_SWAP_CONFDIR=$TMPD/none "$ts" generate "$TMPD/none-out" || fail "generate without a config directory failed"
[ ! -e "$TMPD/none-out" ] || fail "generate without a config made $(ls -R "$TMPD/none-out")"
ok "no config directory: no unit, exit 0"

# systemd-analyze verify on an instance of the unit the links name.
if command -v systemd-analyze >/dev/null; then
    u=$TMPD/units
    mkdir -p "$u"
    sed "s|@sbindir@|$top/scripts|g" "$top/scripts/trueno-swap@.service.in" >"$u/trueno-swap@.service"
    ln -s trueno-swap@.service "$u/trueno-swap@main.service"
    # It warns about a bad line without failing: any output is a failure.
    out=$(cd "$u" && SYSTEMD_UNIT_PATH=$u: systemd-analyze verify --man=no trueno-swap@main.service 2>&1) ||
        fail "systemd-analyze verify trueno-swap@main.service: $out"
    [ -z "$out" ] || fail "systemd-analyze verify trueno-swap@main.service: $out"
    ok "systemd-analyze verify trueno-swap@main.service: clean"
else
    note "systemd-analyze not found: the unit is not verified here"
fi

# Malformed files.  Each holds a good section and a bad one: the error
# names file, line and key; the bad section gets no unit, the good one does.
bad() { # KEY VALUE WANT
    local d=$TMPD/bad out rc=0
    rm -rf "$d" "$TMPD/badgen"; mkdir -p "$d" "$TMPD/badgen"
    printf '[good]\nzram-size = 64\n\n[broken]\nrecompress-rate = 100\n%s = %s\n' "$1" "$2" >"$d/x.conf"
    out=$(TRUENO_SWAP_CONFDIR=$d "$ts" generate "$TMPD/badgen" 2>&1) || rc=$?
    [ "$rc" -eq 1 ] || fail "$1 = $2: generate exited $rc: $out"
    case "$out" in
        *"$d/x.conf:6: $1: "*"$3"*"[broken] ($d/x.conf:4): not set up"*) ;;
        *) fail "$1 = $2: expected '$d/x.conf:6: $1: $3' in: $out" ;;
    esac
    [ ! -e "$TMPD/badgen/swap.target.wants/trueno-swap@broken.service" ] ||
        fail "$1 = $2: a unit for the broken section"
    [ -L "$TMPD/badgen/swap.target.wants/trueno-swap@good.service" ] ||
        fail "$1 = $2: no unit for the good section"
    ok "$1 = $2: $(echo "$out" | head -1)"
}
bad frobnicate 1 "unknown key"
bad zram-size "min(ram / 2, 4096" "invalid expression 'min(ram / 2, 4096': expected ')' at the end"
bad zram-size "ram / 0" "division by zero"
bad zram-size "ram * 2 + swap" "unknown name 'swap'"
bad zram-size "system(\"reboot\")" "unknown name 'system'"
bad zram-size '$(reboot)' "unexpected '\$'"
bad zram-size "1 2" "unexpected '2'"
bad zram-size "min(ram)" "expected ','"
bad zram-size "0.5" "at least 1 MiB"
bad zram-size "" "empty expression"
bad zram-resident-limit "ram - 2 * ram" "is negative"
bad swap-priority high "invalid number 'high': an integer from -1 to 32767"
bad swap-priority 32768 "invalid number '32768'"
bad recompress-idle 1.5 "invalid number '1.5'"
bad compression-algorithm lzo "unknown algorithm 'lzo' (one of: lz4 zstd)"
bad compression-algorithm "zstd(level=99)" "invalid level 99 for zstd"
bad compression-algorithm "zstd(speed=3)" "invalid parameters '(speed=3)'"
bad compression-algorithm "lz4(level=3)" "invalid level 3 for lz4"
bad recompress lz4 "unknown algorithm 'lz4' (one of: off zstd lz4hc)"
bad transport tcp "invalid transport 'tcp': nbd or ublk"
bad persist maybe "invalid value 'maybe': yes or no"
bad dead-conn-timeout 0 "invalid number '0'"
bad recompress-rate 5 "set twice (also line 5)"
bad parameters "swap=off" "swap= is set by trueno-swap"
bad parameters "algorithm=zstd;reboot" "invalid parameter 'algorithm=zstd;reboot'"
bad cold-groups "groups" "invalid value 'groups': off, on or a number"

# Errors outside a section: no unit from that file, others unaffected.
d=$TMPD/file
mkdir -p "$d" "$TMPD/filegen"
printf 'zram-size = 64\n[a]\nzram-size = 64\n' >"$d/1.conf"
printf '[b]\nzram-size = 64\n[a]\n[bad name]\nno equals sign\n' >"$d/2.conf"
printf '[c]\nzram-size = 64\n' >"$d/3.conf"
rc=0; out=$(TRUENO_SWAP_CONFDIR=$d "$ts" generate "$TMPD/filegen" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "generate with errors exited $rc"
for w in "$d/1.conf:1: zram-size: outside a [NAME] section" \
         "$d/2.conf:3: section [a] is also at $d/1.conf:2" \
         "$d/2.conf:4: invalid section name 'bad name'" \
         "$d/2.conf:5: no equals sign: expected KEY = VALUE"; do
    case "$out" in *"$w"*) ;; *) fail "expected '$w' in: $out" ;; esac
done
[ "$(ls "$TMPD/filegen/swap.target.wants")" = "trueno-swap@c.service" ] ||
    fail "units made: $(ls "$TMPD/filegen/swap.target.wants"): only c's expected"
ok "errors outside sections, a section twice: only the clean file's unit"
# The environment file trueno-swap@.service read before: said so.
printf 'TRUENO_SWAP_ARGS=--size 8G --priority 100\n' >"$d/4.conf"
rc=0; out=$(TRUENO_SWAP_CONFDIR=$d "$ts" config 2>&1) || rc=$?
case "$out" in *"$d/4.conf:1: TRUENO_SWAP_ARGS: the old environment file: write a [NAME] section"*) ;; *) fail "old file: $out" ;; esac
ok "the old TRUENO_SWAP_ARGS file: a message that says what to do"

# up --config: a missing section, a broken one, options after it win;
# all refused before anything starts (no root needed to see it).
expect_err "no [nosuch] section in $conf/*.conf" "$ts" up --config nosuch
expect_err "--config needs a section name" "$ts" up --config
cp "$TMPD/bad/x.conf" "$conf/50-broken.conf"
out=$("$ts" up --config broken 2>&1) && fail "up --config broken succeeded"
case "$out" in
    *"50-broken.conf:6: cold-groups: invalid value 'groups'"*"[broken]: not set up (above)"*) ;;
    *) fail "up --config broken: $out" ;;
esac
case "$out" in *"10-main.conf"*) fail "up --config broken reported other files' sections: $out" ;; esac
ok "up --config broken: its errors only, refused"
expect_err "invalid size 'foo'" "$ts" up --config main --size foo
expect_err "invalid priority 'high'" "$ts" up --config=spill --priority high
expect_err "stats= is set by trueno-swap" "$ts" up --config main stats=/tmp/x
note "passed in $SECONDS s"
