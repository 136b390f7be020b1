#!/usr/bin/env bash
# The GPU measurement, in one call, on a machine where nothing can be
# installed and nothing reached: run from the repository root with the
# directory scripts/gpu-bundle made here (default .gpu):
#
#   bash opencl/gpu-check.sh [.gpu]          # report in $OUT/gpu.txt
#   bash opencl/gpu-check.sh .gpu kernels    # only page vs coop kernels
#   bash opencl/gpu-check.sh .gpu FILE       # only FILE's settings
#
# FILE: one setting a line, environment assignments (e.g.
# "TRUENO_OCL_KERNEL=coop TRUENO_OCL_QUEUES=2"; an empty line: the
# defaults), each measured on the corpus files at batches of 4096, 16384
# and 65536 pages, 3 repetitions; after a "--", trueno-bench arguments
# instead of "--codec liblz4 --batch 4096 16384 65536" (e.g.
# "TRUENO_OCL_PROFILE=1 -- --codec engine-lz4").
#
# It lists the GPUs (nvidia-smi -L), looks for NVIDIA's OpenCL driver
# (libnvidia-opencl.so*) and the ICDs already registered, writes a vendors
# directory with an nvidia.icd pointing at the driver (OCL_ICD_VENDORS; else
# OCL_ICD_FILENAMES) for the bundled ICD loader, runs clinfo and
# trueno-bench --opencl-list and --opencl-auto (offload=auto's choice),
# then trueno-bench with the CPU rows (trueno-lz4, liblz4), opencl-lz4 at
# batches of 1024, 4096, 16384 and 65536 pages and the engine in 32 MiB
# requests with and without the device, on the corpus files, 3
# repetitions, and the stage times of a 16384-page batch.  Then the two
# compress kernels (TRUENO_OCL_KERNEL=page|coop) side by side at
# 4096..65536 pages, the coop kernel's stage times and shapes (work-items a
# page, table size, page staged in local memory or read from global
# memory), and a sweep of the pipelining (queues, sub-chunk size).  With
# "kernels" as the second argument only the kernels follow the device
# checks, for a quick measurement.  Without an NVIDIA driver it goes on
# with whatever OpenCL platform the system has (PoCL here), and says so.
# Each step has a time limit; the whole stays under 5 minutes.
# SPDX-License-Identifier: MIT
set -uo pipefail
bundle=$(cd "${1:-.gpu}" && pwd) || { echo "gpu-check: no bundle directory ${1:-.gpu}"; exit 1; }
only=${2:-all}
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export PATH="$PATH:/usr/local/nvidia/bin:/usr/local/cuda/bin"
T0=$(date +%s)
left() { echo $((280 - ($(date +%s) - T0))); }
step() { echo; echo "=== [$(($(date +%s) - T0)) s] $*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

main() {
step "machine"
uname -a
grep -m1 'model name' /proc/cpuinfo
nproc
head -2 /etc/os-release 2>/dev/null
ldd --version 2>&1 | head -1
echo "bundle needs $(cat "$bundle/glibc-needed" 2>/dev/null)"

step "nvidia-smi -L"
if command -v nvidia-smi >/dev/null; then
    timeout 30 nvidia-smi -L
    timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current --format=csv
else
    echo "no nvidia-smi on PATH"
fi

step "NVIDIA OpenCL driver (libnvidia-opencl.so*)"
found=()
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu \
         /usr/lib64 /usr/lib /lib/x86_64-linux-gnu /usr/local/cuda/lib64 \
         /usr/local/cuda/compat /usr/local/lib; do
    for f in "$d"/libnvidia-opencl.so*; do
        [ -e "$f" ] && found+=("$f")
    done
done
if [ ${#found[@]} -eq 0 ]; then
    echo "not in the usual directories; searching / (60 s at most)"
    while IFS= read -r f; do found+=("$f"); done < <(
        timeout 60 find / -xdev \( -path /proc -o -path /sys \) -prune -o \
            -name 'libnvidia-opencl.so*' -print 2>/dev/null)
fi
printf '  %s\n' "${found[@]:-none}"
ldconfig -p 2>/dev/null | grep -i -E 'opencl|nvidia-opencl' || echo "  (ldconfig knows no OpenCL library)"
echo "registered ICDs in /etc/OpenCL/vendors:"
if ls -la /etc/OpenCL/vendors 2>/dev/null; then
    for f in /etc/OpenCL/vendors/*.icd; do echo "  $f: $(cat "$f")"; done
else
    echo "  none"
fi

# The driver library: prefer the versioned file's .so.1 name.
nv=""
for f in "${found[@]:-}"; do
    case "$f" in *.so.1) nv=$f; break ;; esac
done
[ -n "$nv" ] || nv=${found[0]:-}
export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -n "$nv" ]; then
    mkdir -p "$tmp/vendors"
    echo "$nv" >"$tmp/vendors/nvidia.icd"
    export OCL_ICD_VENDORS="$tmp/vendors"
    # The driver's own directory may hold what it links (libnvidia-*.so).
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$nv")"
    echo "using NVIDIA's OpenCL ICD: $nv (OCL_ICD_VENDORS=$OCL_ICD_VENDORS)"
    if ! timeout 60 "$bundle/bin/trueno-bench" --opencl-list >/dev/null 2>&1; then
        echo "no platform through OCL_ICD_VENDORS: trying OCL_ICD_FILENAMES=$nv"
        export OCL_ICD_FILENAMES="$nv"
    fi
else
    echo "NVIDIA's OpenCL ICD is NOT present: going on with the system's OpenCL platforms"
fi
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

step "clinfo"
if [ -x "$bundle/bin/clinfo" ]; then
    timeout 60 "$bundle/bin/clinfo" -l
    timeout 60 "$bundle/bin/clinfo" 2>&1 | grep -E -i 'platform name|platform version|device name|device version|driver version|max compute|global memory size|local memory size|max work group size|max memory allocation|preferred work group' | head -40
else
    echo "no clinfo in the bundle"
fi
step "trueno-bench --opencl-list"
timeout 60 "$bundle/bin/trueno-bench" --opencl-list
ocl_ok=$?
[ "$ocl_ok" -eq 0 ] || echo "no OpenCL device: only the CPU rows follow"

step "what offload=auto would choose here (trueno-bench --opencl-auto)"
[ "$ocl_ok" -ne 0 ] || timeout 90 "$bundle/bin/trueno-bench" --opencl-auto

step "corpus"
mkdir -p "$tmp/corpus"
for f in "$bundle"/corpus/*.pages.gz; do
    b=$(basename "$f" .gz)
    if command -v gzip >/dev/null; then
        gzip -dc "$f" >"$tmp/corpus/$b"
    else
        python3 -c 'import gzip, shutil, sys; shutil.copyfileobj(gzip.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$tmp/corpus/$b"
    fi
done
ls -la "$tmp/corpus"
files=("$tmp"/corpus/*.pages)

bench() {
    local secs=$1
    shift
    [ "$(left)" -gt 20 ] || { echo "skipped: out of time"; return; }
    [ "$secs" -lt "$(left)" ] || secs=$(left)
    echo "\$ trueno-bench $*   (limit ${secs} s)"
    timeout -k 5 "$secs" "$bundle/bin/trueno-bench" "$@"
    local rc=$?
    [ "$rc" -eq 0 ] || echo "trueno-bench exit $rc"
}

kernels() {
    step "compress kernels: page vs coop, batches 4096..65536, 3 repetitions (medians)"
    for k in page coop; do
        TRUENO_OCL_KERNEL=$k bench 45 --repeat 3 --codec liblz4 --opencl \
            --batch 4096 16384 65536 "${files[@]}"
    done
    step "coop kernel: stage times of one 16384-page batch"
    TRUENO_OCL_KERNEL=coop TRUENO_OCL_PROFILE=1 bench 30 --repeat 1 \
        --codec trueno-lz4 --opencl --batch 16384 "${files[0]}"
    # work-items a page : table log : page staged in local memory (1) or not
    # (the default: 32:10:0)
    for shape in 32:10:0 32:11:0 32:10:1 64:10:0 16:10:0; do
        IFS=: read -r l hl st <<<"$shape"
        step "coop kernel: $l work-items a page, table 2^$hl, TRUENO_OCL_COOP_STAGE=$st, batch 16384"
        TRUENO_OCL_KERNEL=coop TRUENO_OCL_COOP_L=$l TRUENO_OCL_COOP_HASH_LOG=$hl \
            TRUENO_OCL_COOP_STAGE=$st bench 25 --repeat 3 \
            --codec liblz4 --opencl --batch 16384 "${files[@]}"
    done
}

settings() {
    local line vars args
    while IFS= read -r line <&3; do
        step "settings: ${line:-(defaults)}"
        vars=$line
        args="--codec liblz4 --batch 4096 16384 65536"
        case "$line" in
        *--*) vars=${line%%--*} args=${line#*--} ;;
        esac
        # NAME=VALUE words and trueno-bench arguments: split on purpose.
        # shellcheck disable=SC2086
        (for v in $vars; do export "${v?}"; done
         bench 40 --repeat 3 --opencl $args "${files[@]}")
    done 3<"$only"
}

if [ "$ocl_ok" -eq 0 ] && [ "$only" = kernels ]; then
    kernels
elif [ "$ocl_ok" -eq 0 ] && [ -f "$only" ]; then
    settings
elif [ "$ocl_ok" -eq 0 ]; then
    step "trueno-bench: CPU rows and opencl-lz4 at 1024..65536 pages, 3 repetitions (medians)"
    bench 180 --repeat 3 --codec trueno-lz4,liblz4,engine-lz4 --opencl \
        --batch 1024 4096 16384 65536 "${files[@]}"
    step "stage times of one 16384-page batch (TRUENO_OCL_PROFILE=1)"
    TRUENO_OCL_PROFILE=1 bench 40 --repeat 1 --codec trueno-lz4 --opencl \
        --batch 16384 "${files[0]}"
    kernels
    step "pipelining: queues x pages per sub-chunk, batches 16384 and 65536"
    for qs in 4:4096 1:0 3:8192 4:2048; do
        echo "--- TRUENO_OCL_QUEUES=${qs%:*} TRUENO_OCL_SUBCHUNK=${qs#*:} (0: whole batch)"
        TRUENO_OCL_QUEUES=${qs%:*} TRUENO_OCL_SUBCHUNK=${qs#*:} bench 30 \
            --repeat 3 --codec liblz4 --opencl --batch 16384 65536 "${files[@]}"
    done
else
    step "trueno-bench: CPU rows only"
    bench 60 --repeat 3 --codec trueno-lz4,liblz4 "${files[@]}"
fi
step "done in $(($(date +%s) - T0)) s; report in $OUT/gpu.txt"
}

# The pipeline waits for tee: the report is complete when the script ends.
main 2>&1 | tee "$OUT/gpu.txt"
