#!/usr/bin/env bash
# Parameter handling: every bad parameter makes nbdkit refuse to start with a
# message naming the parameter; good parameters start; --dump-plugin and
# --help describe the plugin.
. "$(dirname "$0")/functions.sh"
require_cmd nbdinfo
require_python

# zstd's own level range, from the library the plugin links against.
zstd_levels=$("$PYTHON" - <<'EOF'
import ctypes, ctypes.util
name = ctypes.util.find_library("zstd") or "libzstd.so.1"
z = ctypes.CDLL(name)
print(z.ZSTD_minCLevel(), z.ZSTD_maxCLevel())
EOF
) || fail "cannot query libzstd for its level range"
read -r zmin zmax <<<"$zstd_levels"
note "libzstd level range: $zmin..$zmax"

stats_ok=$TMPD/stats.json

# expect_refused PARAM-NAME ARGS...: nbdkit must exit non-zero before serving,
# and its stderr must name PARAM-NAME.  Problems are collected, so that one
# run lists all of them; the test fails at the end if there were any.
n_refused=0
problems=()
expect_refused() {
    local name=$1 rc=0
    shift
    note "refuses: $* (expect a message naming '$name')"
    trueno_run 30 "$@" -- 'echo SERVED' >"$TMPD/out" 2>"$TMPD/err" || rc=$?
    sed 's/^/    | /' "$TMPD/err"
    if [ "$rc" -eq 0 ] || grep -q SERVED "$TMPD/out"; then
        problems+=("nbdkit started with bad parameters: $* (exit $rc)")
        return 0
    fi
    # nbdkit_parse_size's and nbdkit_absolute_path's own messages ("could not
    # parse size string (abc)", "size cannot be negative (-1)", "cannot convert
    # null or empty path...") do not say which parameter was wrong: ignore the
    # word "size" inside them.
    if ! sed -e 's/parse size string//g' -e 's/size cannot be negative//g' \
            "$TMPD/err" | grep -qiF -- "$name"; then
        problems+=("'$*' refused (exit $rc) but the message does not name '$name': $(tr '\n' ' ' <"$TMPD/err")")
        return 0
    fi
    n_refused=$((n_refused + 1))
}

expect_refused size
expect_refused size algorithm=lz4
expect_refused size size=
expect_refused size size=0
expect_refused size size=abc
expect_refused size size=-1
expect_refused size size=64Q
expect_refused algorithm size=64M algorithm=gzip
expect_refused algorithm size=64M algorithm=
expect_refused algorithm size=64M algorithm=LZ4x
expect_refused level size=64M algorithm=zstd level=abc
expect_refused level size=64M algorithm=zstd level=
expect_refused level size=64M algorithm=zstd level=99
expect_refused level size=64M algorithm=zstd level=$((zmax + 1))
expect_refused level size=64M algorithm=zstd level=$((zmin - 1))
expect_refused level size=64M algorithm=zstd level=0
expect_refused level size=64M algorithm=zstd level=3x
expect_refused level size=64M algorithm=lz4 level=3
expect_refused level size=64M level=3
expect_refused mem-limit size=64M mem-limit=0
expect_refused mem-limit size=64M mem-limit=xyz
expect_refused mem-limit size=64M mem-limit=
expect_refused mem-limit size=64M mem-limit=-5
expect_refused foo size=64M foo=bar
expect_refused stats size=64M stats=/nonexistent-dir/x
expect_refused stats size=64M stats=
mkdir "$TMPD/adir"
expect_refused stats size=64M stats="$TMPD/adir"
expect_refused recompress size=64M recompress=gzip
expect_refused recompress size=64M recompress=
expect_refused recompress size=64M recompress=zstd:
expect_refused recompress size=64M recompress=zstd:0
expect_refused recompress size=64M recompress=zstd:$((zmax + 1))
expect_refused recompress size=64M recompress=lz4hc:13
expect_refused recompress size=64M recompress=off:3
expect_refused recompress-idle size=64M recompress-idle=30
expect_refused recompress-idle size=64M recompress=zstd recompress-idle=0
expect_refused recompress-idle size=64M recompress=zstd recompress-idle=-1
expect_refused recompress-idle size=64M recompress=zstd recompress-idle=1h
expect_refused recompress-rate size=64M recompress-rate=100
expect_refused recompress-rate size=64M recompress=off recompress-rate=100
expect_refused recompress-rate size=64M recompress=zstd recompress-rate=0
expect_refused recompress-rate size=64M recompress=zstd recompress-rate=abc
expect_refused recompress-rate size=64M recompress=zstd recompress-rate=
expect_refused recompress-rate size=64M recompress=zstd recompress-rate=-1
expect_refused recompress-rate size=64M recompress=lz4hc recompress-rate=1048577
expect_refused group size=64M group=1
expect_refused group size=64M group=65
expect_refused group size=64M group=yes
expect_refused group size=64M group=
expect_refused group-level size=64M group-level=3
expect_refused group-level size=64M group=on group-level=0
expect_refused group-level size=64M group=on group-level=99
expect_refused group-idle size=64M group=off group-idle=30
expect_refused group-idle size=64M group=on group-idle=0
expect_refused group-rate size=64M group=16 group-rate=1048577
expect_refused group-cache size=64M group=on group-cache=65
expect_refused group-cache size=64M group=on group-cache=0
expect_refused swap size=64M swap=maybe
expect_refused opencl-cache size=64M opencl-cache=
: >"$TMPD/afile"
expect_refused opencl-cache size=64M opencl-cache="$TMPD/afile"
expect_refused opencl-cache size=64M opencl-cache="$TMPD/afile/sub"
expect_refused allow-unauthenticated size=64M allow-unauthenticated=perhaps
expect_refused overcommit size=64M overcommit=maybe
# A device that could outgrow the machine: more than RAM plus swap.
big=$(awk '/^(MemTotal|SwapTotal):/ { kb += $2 } END { printf "%.0f", kb * 2048 }' /proc/meminfo)
big=$(( big / 4096 * 4096 ))
expect_refused size size=1P
expect_refused size size="$big"
expect_refused size size="$big" mem-limit="$big"
note "$n_refused of $((n_refused + ${#problems[@]})) bad parameter sets refused with a message naming the parameter"

# Values that are valid but may be more than the store can handle: serving
# is fine, and so is refusing, but a refusal must name the parameter.
served_or_refused() {
    local name=$1 rc=0
    shift
    note "serves, or refuses naming '$name': $*"
    trueno_run 60 "$@" -- 'nbdinfo --size "$uri"' >"$TMPD/out" 2>"$TMPD/err" || rc=$?
    sed 's/^/    | /' "$TMPD/out" "$TMPD/err"
    if [ "$rc" -ne 0 ] && ! sed -e 's/parse size string//g' -e 's/size cannot be negative//g' \
            "$TMPD/err" | grep -qiF -- "$name"; then
        problems+=("'$*' refused (exit $rc) but the message does not name '$name': $(tr '\n' ' ' <"$TMPD/err")")
    fi
}
served_or_refused size size=1E
served_or_refused mem-limit size=8G mem-limit=4K

# Good parameters start and serve an export of the right size.
# expect_started SIZE-IN-BYTES ARGS...
n_started=0
expect_started() {
    local want=$1 rc=0 got
    shift
    note "starts: $*"
    trueno_run 30 "$@" -- 'nbdinfo --size "$uri"' >"$TMPD/out" 2>"$TMPD/err" || rc=$?
    [ "$rc" -eq 0 ] || fail "nbdkit failed with good parameters: $* (exit $rc): $(cat "$TMPD/err")"
    got=$(cat "$TMPD/out")
    [ "$got" = "$want" ] || fail "with $*: export size $got, expected $want"
    n_started=$((n_started + 1))
}

expect_started 67108864 size=64M
expect_started 67108864 size=67108864
expect_started 8589934592 size=8G overcommit=yes
expect_started "$big" size="$big" overcommit=yes
expect_started "$big" size="$big" mem-limit=64M
expect_started 1048576 size=1M allow-unauthenticated=yes
expect_started 1048576 size=1M allow-unauthenticated=no overcommit=no
expect_started 1048576 size=1M algorithm=lz4
expect_started 1048576 size=1M algorithm=zstd
expect_started 1048576 size=1M algorithm=zstd level=1
expect_started 1048576 size=1M algorithm=zstd level="$zmax"
expect_started 1048576 size=1M algorithm=zstd level="$zmin"
expect_started 1048576 size=1M algorithm=zstd level=-1
expect_started 1048576 level=5 size=1M algorithm=zstd
expect_started 1048576 size=1M mem-limit=4M
expect_started 1048576 size=1M mem-limit=1G
expect_started 1048576 size=1M recompress=zstd
expect_started 1048576 size=1M recompress=zstd:19 recompress-idle=1
expect_started 1048576 size=1M recompress=lz4hc:12 recompress-idle=3600
expect_started 1048576 size=1M recompress=zstd recompress-rate=1
expect_started 1048576 size=1M recompress=lz4hc recompress-idle=5 recompress-rate=1048576
expect_started 1048576 size=1M algorithm=zstd recompress=lz4hc
expect_started 1048576 size=1M recompress=off
expect_started 1073741824 size=1G algorithm=zstd level=3 mem-limit=16M stats="$stats_ok"
[ -f "$stats_ok" ] || fail "stats=$stats_ok: no stats file written"
expect_started 1048576 size=1M opencl-cache=off
expect_started 1048576 size=1M opencl-cache="$TMPD/kcache/new"
[ -d "$TMPD/kcache/new" ] || fail "opencl-cache=$TMPD/kcache/new: not created"
ok "$n_started good parameter sets started with the right export size"

# A huge sparse device starts, serves and exits promptly: nothing may cost
# time or memory in proportion to the virtual size.
note "size=256T: start, serve, exit within 10 s"
t1=$(date +%s.%N)
trueno_run 120 size=256T overcommit=yes -- 'nbdinfo --size "$uri"' >"$TMPD/out" 2>"$TMPD/err" ||
    problems+=("size=256T failed to serve: $(cat "$TMPD/err")")
secs=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
note "size=256T: served $(cat "$TMPD/out") bytes, nbdkit ran ${secs}s in all"
awk -v s="$secs" 'BEGIN { exit !(s <= 10) }' ||
    problems+=("size=256T: start+serve+exit took ${secs}s (> 10 s): cost grows with the virtual size")

# --dump-plugin
note "nbdkit PLUGIN --dump-plugin"
tmo 30 nbdkit "$TRUENO_PLUGIN" --dump-plugin >"$TMPD/dump" 2>"$TMPD/err" ||
    fail "--dump-plugin failed: $(cat "$TMPD/err")"
sed 's/^/    | /' "$TMPD/dump"
# One request at a time per connection where nbdkit has the reply race
# (before 1.33.10; docs/nbdkit-disconnect.md).
v=$(nbdkit --version | awk '{ print $2 }')
model=$(awk -v v="$v" 'BEGIN { split(v, a, ".");
    print (a[1] == 1 && (a[2] < 33 || (a[2] == 33 && a[3] < 10))) ? "serialize_requests" : "parallel" }')
note "nbdkit $v: expecting thread_model=$model"
for kv in trueno_recompress_rate_default=1024 trueno_recompress_idle_default=120 \
          max_thread_model=parallel thread_model=$model has_thread_model=1 \
          trueno_max_request=67108864 has_pread=1 has_pwrite=1 has_flush=1 has_trim=1 \
          has_zero=1 has_extents=1 has_can_multi_conn=1 has_block_size=1 \
          has_config=1 has_config_complete=1 has_config_help=1; do
    grep -qx -- "$kv" "$TMPD/dump" || fail "--dump-plugin does not show $kv"
done
ok "--dump-plugin: $model, pread/pwrite/flush/trim/zero/extents/multi-conn/block_size"

# config_help, shown by --help after the plugin name
note "nbdkit PLUGIN --help"
tmo 30 nbdkit "$TRUENO_PLUGIN" --help >"$TMPD/help" 2>&1 ||
    fail "--help failed: $(cat "$TMPD/help")"
sed -n '/^plugin:/,$p' "$TMPD/help" | sed 's/^/    | /'
for p in size= algorithm= level= mem-limit= stats= allow-unauthenticated= \
         overcommit=; do
    sed -n '/^plugin:/,$p' "$TMPD/help" | grep -qF -- "$p" ||
        fail "config_help does not mention $p"
done
ok "config_help mentions size, algorithm, level, mem-limit, stats, allow-unauthenticated, overcommit"

if [ ${#problems[@]} -gt 0 ]; then
    printf 'PROBLEM: %s\n' "${problems[@]}" >&2
    fail "${#problems[@]} parameter problem(s) (see PROBLEM lines above)"
fi
ok "all bad parameter sets refused, each naming the parameter; edge sizes handled"

note "passed in $(elapsed)s"
