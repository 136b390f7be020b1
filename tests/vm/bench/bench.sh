# The VM benchmark (tests/vm/run --bench): the same fio workloads and the
# memory ratio on the corpus files against trueno over NBD and over ublk
# (lz4, zstd; attached as trueno-swap attaches) and kernel zram (lz4,
# zstd), in one boot.
# Prints one table between VMBENCH-TABLE-BEGIN/END.  The CPU is emulated
# (TCG): only ratios between rows mean anything.
# SPDX-License-Identifier: MIT
case_name=bench
. /opt/trueno/tests/transports/nbd.sh
corpus=/opt/trueno/corpus-full
seq_mib=${BENCH_SEQ_MIB:-128}
rt=${BENCH_RUNTIME:-8}
say() { echo "bench: $*"; }
json_get() { sed -n "s/.*\"$2\": *\([0-9.eE+-]*\).*/\1/p" "$1" 2>/dev/null | head -1; }

# terse v3 fields: 7 read KiB/s, 8 read IOPS, 18-37 read clat percentiles
# ("50.000000%=123", usec), 48 write KiB/s.
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
  echo 1G > /sys/block/zram0/disksize || return 1
  DEV=/dev/zram0
}

# ublk rows: as transports/ublk.sh attaches (its functions share nbd.sh's
# names, so trueno-swap is called here directly).
ublk_up() { # NAME ALG
  trueno-swap up --transport ublk --name "$1" --size 1G --no-swapon "algorithm=$2" >/dev/null || return 1
  DEV=$(cat /run/trueno/$1.dev)
  STATS=/run/trueno/$1.json
}

dev_up() { # ROW
  case "$1" in
    trueno-nbd-*) transport_up "b$1" 1G "algorithm=${1#trueno-nbd-}" >/dev/null ;;
    trueno-ublk-*) ublk_up "b$1" "${1#trueno-ublk-}" ;;
    zram-*) zram_setup "${1#zram-}" ;;
  esac
}
dev_down() {
  case "$1" in
    trueno-*) trueno-swap down "b$1" >/dev/null ;;
    zram-*) echo 1 > /sys/block/zram0/reset ;;
  esac
}
ratio() { # ROW -> orig/mem
  case "$1" in
    trueno-*) sleep 2.5; awk -v o="$(json_get "$STATS" orig_data_size)" -v m="$(json_get "$STATS" mem_used_total)" 'BEGIN { printf("%.2f", m > 0 ? o / m : 0) }' ;;
    # zram allocates a 16-byte entry per page of its disksize when the size
    # is set, outside the zsmalloc pages mm_stat counts; trueno's
    # mem_used_total holds its page table (allocated up front too with
    # swap=on, as trueno-swap attaches).  Both rows count their table.
    zram-*) awk -v t="$(( $(cat /sys/block/zram0/disksize) / 4096 * 16 ))" '{ printf("%.2f", $3 > 0 ? $1 / ($3 + t) : 0) }' /sys/block/zram0/mm_stat ;;
  esac
}

rows=${BENCH_ROWS:-"trueno-nbd-lz4 trueno-nbd-zstd trueno-ublk-lz4 trueno-ublk-zstd zram-lz4 zram-zstd"}
out=/tmp/bench.rows
: > $out
for row in $rows; do
  say "$row: fio"
  dev_up "$row" || { say "$row: setup failed"; echo "$row|setup failed" >> $out; continue; }
  w=$(fio_run sw "$DEV" --rw=write --bs=1M --iodepth=8 --size=${seq_mib}M)
  r=$(fio_run sr "$DEV" --rw=read --bs=1M --iodepth=8 --size=${seq_mib}M)
  q32=$(fio_run rr32 "$DEV" --rw=randread --bs=4k --iodepth=32 --size=${seq_mib}M --time_based --runtime=$rt)
  q1=$(fio_run rr1 "$DEV" --rw=randread --bs=4k --iodepth=1 --size=${seq_mib}M --time_based --runtime=$rt)
  dev_down "$row"
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
  printf '%s|%s|%s|%s|%s|%s|%s\n' "$row" \
    "$(awk -v k="$(field "$w" 48)" 'BEGIN{printf("%.1f", k/1024)}')" \
    "$(awk -v k="$(field "$r" 7)" 'BEGIN{printf("%.1f", k/1024)}')" \
    "$(field "$q32" 8)" "$(pct "$q1" 50.000000)" "$(pct "$q1" 99.000000)" "$rat" >> $out
  say "$row: $(tail -1 $out)"
done
echo "VMBENCH-TABLE-BEGIN"
printf '%-16s %12s %12s %16s %10s %10s %14s\n' device "seq-wr MB/s" "seq-rd MB/s" "4K rr QD32 IOPS" "QD1 p50us" "QD1 p99us" "mem ratio"
while IFS='|' read -r a b c d e f g; do
  printf '%-16s %12s %12s %16s %10s %10s %14s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"
done < $out
echo "(TCG-emulated CPU, 2 vCPUs: compare rows only.  mem ratio = orig_data_size / (mem_used_total, zram: + its 16 B/page table) after writing the corpus files, $(ls $corpus | wc -l) files.)"
echo "VMBENCH-TABLE-END"
