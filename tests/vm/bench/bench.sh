# The VM benchmark (tests/vm/run --bench): the same fio workloads and the
# memory ratio on the corpus files against trueno over NBD and over ublk
# (lz4, zstd; attached as trueno-swap attaches) and kernel zram (lz4,
# zstd), in one boot.
# Prints one table between VMBENCH-TABLE-BEGIN/END, and each figure as a
# "VMBENCH-JSON {...}" line, rows for scripts/bench-report (run --report).  The CPU is emulated
# (TCG): only ratios between rows mean anything.  BENCH_REPEAT=N runs the
# fio set N times, rows taking turns (a noisy host then weighs on every
# row alike), and reports the median of each column.
# SPDX-License-Identifier: MIT
case_name=bench
. /opt/trueno/tests/transports/nbd.sh
corpus=/opt/trueno/corpus-full
seq_mib=${BENCH_SEQ_MIB:-128}
rt=${BENCH_RUNTIME:-8}
reps=${BENCH_REPEAT:-1}
say() { echo "bench: $*"; }
json_get() { sed -n "s/.*\"$2\": *\([0-9.eE+-]*\).*/\1/p" "$1" 2>/dev/null | head -1; }

# terse v3 fields: 7 read KiB/s, 8 read IOPS, 18-37 read latency
# percentiles ("50.000000%=123", usec), 48 write KiB/s.  The percentiles are
# of the total latency (--lat_percentiles: submission + completion), not of
# clat alone: zram serves a read inside io_submit (slat), trueno-ublk after
# it returns (clat), so clat alone would leave out zram's work.
fio_run() { # NAME DEV ARGS...
  _n=$1 _d=$2; shift 2
  fio --name="$_n" --filename="$_d" --ioengine=libaio --direct=1 \
      --buffer_compress_percentage=50 --refill_buffers --randrepeat=0 \
      --output-format=terse --terse-version=3 --group_reporting "$@" 2>/tmp/fio.err |
    tail -1
}
field() { echo "$1" | awk -F';' -v f="$2" '{print $f}'; }
pct() { echo "$1" | awk -F';' -v p="$2" '{ for (i = 18; i <= 37; i++) { split($i, a, "="); if (a[1] == p "%") { print a[2]; exit } } }'; }

zram_ready=0
zram_setup() { # ALG
  if [ $zram_ready = 0 ]; then
    for m in zsmalloc lz4_compress lz4hc_compress zram; do
      insmod /lib/modules/$m.ko $( [ $m = zram ] && echo num_devices=1 ) || return 1
    done
    zram_ready=1
  fi
  echo 1 > /sys/block/zram0/reset
  echo "$1" > /sys/block/zram0/comp_algorithm || return 1
  echo "${DEV_SIZE:-1G}" > /sys/block/zram0/disksize || return 1
  DEV=/dev/zram0
}

# The "brd" row: the kernel's RAM disk, no compression, requests served
# where they are submitted: what fio itself reaches here, a ceiling.
brd_setup() {
  [ -b /dev/ram0 ] || insmod /lib/modules/brd.ko rd_nr=1 rd_size=1048576 || return 1
  DEV=/dev/ram0
}

# ublk rows: as transports/ublk.sh attaches (its functions share nbd.sh's
# names, so trueno-swap is called here directly).
ublk_up() { # NAME ALG
  trueno-swap up --transport ublk --name "$1" --size 1G --no-swapon "algorithm=$2" >/dev/null || return 1
  DEV=$(cat /run/trueno/$1.dev)
  STATS=/run/trueno/$1.json
}

# A row may carry environment for its server: ROW+NAME=VALUE[+...] (e.g.
# trueno-ublk-lz4+TRUENO_ISA=scalar), exported from dev_up to dev_down.
dev_up() { # ROW
  _row=${1%%+*} row_env=""
  [ "$_row" = "$1" ] || row_env=$(echo "${1#*+}" | tr + ' ')
  for _kv in $row_env; do export "$_kv"; done
  case "$_row" in
    # A store left to settle: every page idle and grouped (ratio_settled).
    trueno-nbd-settled) transport_up "b$_row" "${DEV_SIZE:-1G}" algorithm=lz4 recompress=zstd \
      recompress-idle=1 group=${BENCH_GROUP:-on} group-idle=1 group-rate=1048576 >/dev/null ;;
    trueno-nbd-*) transport_up "b$_row" "${DEV_SIZE:-1G}" "algorithm=${_row#trueno-nbd-}" >/dev/null ;;
    trueno-ublk-*) ublk_up "b$_row" "${_row#trueno-ublk-}" ;;
    zram-*) zram_setup "${_row#zram-}" ;;
    brd) brd_setup ;;
    *) say "$1: no such row"; return 1 ;;
  esac
}
dev_down() {
  _row=${1%%+*}
  case "$_row" in
    trueno-*) trueno-swap down "b$_row" >/dev/null ;;
    zram-*) echo 1 > /sys/block/zram0/reset ;;
    brd) blkdiscard /dev/ram0 2>/dev/null ;; # frees its pages
  esac
  for _kv in $row_env; do unset "${_kv%%=*}"; done
}
ratio() { # ROW -> orig/mem
  case "$1" in
    brd) echo 1.00 ;; # stores pages as they are
    trueno-*) sleep 2.5; awk -v o="$(json_get "$STATS" orig_data_size)" -v m="$(json_get "$STATS" mem_used_total)" 'BEGIN { printf("%.2f", m > 0 ? o / m : 0) }' ;;
    # zram allocates a 16-byte entry per page of its disksize when the size
    # is set, outside the zsmalloc pages mm_stat counts; trueno's
    # mem_used_total holds its page table (allocated up front too with
    # swap=on, as trueno-swap attaches).  Both rows count their table.
    zram-*) awk -v t="$(( $(cat /sys/block/zram0/disksize) / 4096 * 16 ))" '{ printf("%.2f", $3 > 0 ? $1 / ($3 + t) : 0) }' /sys/block/zram0/mm_stat ;;
  esac
}

# A settled store's ratio: once grouping has stopped finding pages and the
# memory has not gone down for 3 s (compaction follows), at most 300 s.
# Only a fresh stats file counts: the housekeeping thread writes it after
# each step, and under TCG one step can take seconds, during which the
# file stands still as if grouping were over.
ratio_settled() {
  _best=0 _still=0 _w=0 _last=-1 _tlast=
  while [ $_still -lt 3 ] && [ $_w -lt 300 ]; do
    sleep 1; _w=$((_w + 1))
    _t=$(stat -c %y "$STATS" 2>/dev/null)
    _g=$(json_get "$STATS" pages_grouped) _m=$(json_get "$STATS" mem_used_total)
    if [ "$_t" = "$_tlast" ]; then
      continue
    elif [ "${_g:-0}" -gt 0 ] && [ "$_g" = "$_last" ] && [ "$_m" -ge "$_best" ] && [ "$_best" -gt 0 ]; then
      _still=$((_still + 1))
    else
      _still=0
    fi
    _last=$_g _best=$_m _tlast=$_t
  done
  ratio trueno-nbd-settled
}

# vmjson FILE ROW RATIO [|SEQWR|SEQRD|IOPS|P50|P99]: one row for
# scripts/bench-report; "-" figures are left out.
vmjson() {
  echo "$4" | awk -F'|' -v f="$1" -v r="$2" -v rat="$3" '
    function kv(k, v) { return (v ~ /^[0-9.]+$/) ? sprintf(", \"%s\": %s", k, v) : "" }
    { printf("VMBENCH-JSON {\"file\": \"%s\", \"server\": \"%s\"%s%s%s%s%s%s}\n", f, r,
             kv("ratio", rat), kv("seqwrite_mbps", $2), kv("seqread_mbps", $3),
             kv("randread_qd32_iops", $4), kv("randread_qd1_p50_us", $5),
             kv("randread_qd1_p99_us", $6)) }'
}

# median of the numbers on stdin ("-" if none)
median() { sort -n | awk '{ v[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf("%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# Rows may be given with commas (the kernel command line has no spaces).
rows=$(echo "${BENCH_ROWS:-trueno-nbd-lz4 trueno-nbd-zstd trueno-ublk-lz4 trueno-ublk-zstd zram-lz4 zram-zstd}" | tr , ' ')
runs=/tmp/bench.runs out=/tmp/bench.rows
: > $runs
: > $out
for rep in $(seq "$reps"); do
  for row in $rows; do
    say "$row: fio (run $rep of $reps)"
    dev_up "$row" || { say "$row: setup failed"; continue; }
    dmesg -c >/dev/null
    w=$(fio_run sw "$DEV" --rw=write --bs=1M --iodepth=8 --size=${seq_mib}M)
    r=$(fio_run sr "$DEV" --rw=read --bs=1M --iodepth=8 --size=${seq_mib}M)
    q32=$(fio_run rr32 "$DEV" --rw=randread --bs=4k --iodepth=32 --size=${seq_mib}M --time_based --runtime=$rt)
    q1=$(fio_run rr1 "$DEV" --rw=randread --bs=4k --iodepth=1 --size=${seq_mib}M --time_based --runtime=$rt --lat_percentiles=1 --clat_percentiles=0)
    dev_down "$row"
    # A failed write is quick: a row whose device failed I/O is no number.
    e=$(dmesg | grep -c ' error, dev ')
    [ "$e" = 0 ] || { say "$row: the kernel failed $e I/O request(s) (run $rep)"; echo "$row" >> /tmp/bench.failed; }
    printf '%s %s %s %s %s %s\n' "$row" \
      "$(awk -v k="$(field "$w" 48)" 'BEGIN{printf("%.1f", k/1024)}')" \
      "$(awk -v k="$(field "$r" 7)" 'BEGIN{printf("%.1f", k/1024)}')" \
      "$(field "$q32" 8)" "$(pct "$q1" 50.000000)" "$(pct "$q1" 99.000000)" >> $runs
    say "run $rep: $(tail -1 $runs)"
  done
done
for row in $rows; do
  grep -q "^$row " $runs || { echo "$row|setup failed" >> $out; continue; }
  say "$row: corpus"
  dev_up "$row" || continue
  off=0
  for f in $corpus/*.pages; do
    dd if="$f" of="$DEV" bs=1M seek=$off oflag=direct conv=notrunc status=none
    off=$((off + $(stat -c %s "$f") / 1048576))
  done
  sync
  rat=$(ratio "$row")
  dev_down "$row"
  m=""
  for c in 2 3 4 5 6; do
    m="$m|$(awk -v r="$row" -v c=$c '$1 == r { print $c }' $runs | median)"
  done
  if grep -qx "$row" /tmp/bench.failed 2>/dev/null; then
    rat="$rat I/O-ERRORS"
  else
    vmjson "corpus (all files)" "$row" "$rat" "$m"
  fi
  echo "$row$m|$rat" >> $out
  say "$row: $(tail -1 $out)"
done
echo "VMBENCH-TABLE-BEGIN"
printf '%-16s %12s %12s %16s %10s %10s %14s\n' device "seq-wr MB/s" "seq-rd MB/s" "4K rr QD32 IOPS" "QD1 p50us" "QD1 p99us" "mem ratio"
while IFS='|' read -r a b c d e f g; do
  printf '%-16s %12s %12s %16s %10s %10s %14s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"
done < $out
echo "(TCG-emulated CPU, $(nproc) vCPUs: compare rows only.  Median of $reps run(s), rows taking turns; QD1 latency is fio's total latency (submission + completion).  mem ratio = orig_data_size / (mem_used_total, zram: + its 16 B/page table) after writing the corpus files, $(ls $corpus | wc -l) files.)"
# Memory ratio per program (each file alone, its pages in the program's
# address order): kernel zram, trueno per page, and trueno settled, each
# device the file's size (both count a 16-byte entry per page of it).
drows=$(echo "${BENCH_DENSITY_ROWS:-zram-zstd trueno-nbd-zstd trueno-nbd-settled}" | tr , ' ')
dout=/tmp/bench.density
: > $dout
for f in $corpus/*.pages; do
  line=$(basename "$f" .pages)
  DEV_SIZE=$(( ($(stat -c %s "$f") + 1048575) / 1048576 ))M
  for row in $drows; do
    say "$row: density of $line"
    if dev_up "$row"; then
      dd if="$f" of="$DEV" bs=1M oflag=direct status=none
      sync
      case "$row" in
        trueno-nbd-settled) rat=$(ratio_settled) ;;
        *) rat=$(ratio "$row") ;;
      esac
      dev_down "$row"
    else
      rat="-"
    fi
    vmjson "$(basename "$f")" "$row" "$rat" ""
    line="$line|$rat"
  done
  echo "$line" >> $dout
done
unset DEV_SIZE
echo
printf '%-16s' "memory ratio"
for row in $drows; do printf ' %20s' "$row"; done
echo
while IFS='|' read -r name rest; do
  printf '%-16s' "$name"
  echo "$rest" | tr '|' '\n' | while read -r v; do printf ' %20s' "$v"; done
  echo
done < $dout
echo "(Each file alone on a fresh device of its size; settled: lz4 on write, then recompress=zstd and group=on with 1 s idle times, read once grouping has stopped and memory stopped going down.)"
echo "VMBENCH-TABLE-END"
