# Shared helpers for the trueno-zram protocol tests.  Sourced (not run) by
# every tests/test-*.sh script.
#
# Environment (all optional):
#   TRUENO_PLUGIN   path of the built plugin (default: $abs_top_builddir/trueno.so,
#                   else <dir of this file>/../trueno.so)
#   TRUENO_CORPUS   directory holding the *.pages corpus files (default: the
#                   build tree's tests/corpus, $abs_top_builddir/tests/corpus,
#                   else <dir of this file>/corpus; make unpacks it there)
#   PYTHON          a Python 3 interpreter that can "import nbd" (default: the
#                   first of python3 on PATH, /usr/bin/python3 that can)
#   TEST_TIMEOUT    per-command time limit in seconds (default 120)
#
# A missing plugin, corpus file or tool is a failure (exit 1), never a skip;
# the one exception, promtool in test-prometheus.sh, is a failure too under
# scripts/test (TRUENO_TEST_NO_SKIP=1), which installs it.

set -euo pipefail

test_name=$(basename "$0" .sh)
test_dir=$(cd "$(dirname "$0")" && pwd)
: "${TEST_TIMEOUT:=120}"

fail() {
    echo "FAIL: $test_name: $*" >&2
    exit 1
}

note() {
    echo "$test_name: $*"
}

ok() {
    echo "$test_name: ok: $*"
}

# expect_err WANT CMD...: CMD fails and its stderr contains WANT.
expect_err() {
    local want=$1 out rc=0; shift
    out=$("$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" -ne 0 ] || fail "succeeded, expected failure: $*"
    case "$out" in *"$want"*) ;; *) fail "$*: expected '$want' in: $out" ;; esac
    ok "$* -> $want"
}

require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 ||
            fail "required tool '$c' not found on PATH"
    done
}

# Run a command under a time limit.  The limit is a failure, reported as such.
tmo() {
    local secs=$1 rc=0
    shift
    timeout -k 10 "$secs" "$@" || rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        fail "timed out after ${secs}s: $*"
    fi
    return "$rc"
}

# --- the plugin -----------------------------------------------------------
if [ -z "${TRUENO_PLUGIN:-}" ]; then
    if [ -n "${abs_top_builddir:-}" ]; then
        TRUENO_PLUGIN=$abs_top_builddir/trueno.so
    else
        TRUENO_PLUGIN=$test_dir/../trueno.so
    fi
fi
[ -f "$TRUENO_PLUGIN" ] || fail "plugin not found: $TRUENO_PLUGIN (set TRUENO_PLUGIN)"
# nbdkit treats an argument without a slash as a plugin *name*: make it a path.
TRUENO_PLUGIN=$(cd "$(dirname "$TRUENO_PLUGIN")" && pwd)/$(basename "$TRUENO_PLUGIN")
export TRUENO_PLUGIN

require_cmd nbdkit timeout cmp

# --- the corpus -------------------------------------------------------------
: "${TRUENO_CORPUS:=${abs_top_builddir:-$test_dir/..}/tests/corpus}"
# require_corpus sets CORPUS_FILES: the names of every *.pages file there
# (at least one), in sorted order.
CORPUS_FILES=
require_corpus() {
    local f
    [ -d "$TRUENO_CORPUS" ] ||
        fail "corpus directory not found: $TRUENO_CORPUS (run make, or set TRUENO_CORPUS)"
    TRUENO_CORPUS=$(cd "$TRUENO_CORPUS" && pwd)
    export TRUENO_CORPUS
    CORPUS_FILES=
    for f in "$TRUENO_CORPUS"/*.pages; do
        [ -f "$f" ] || continue
        [ -s "$f" ] || fail "corpus file empty: $f"
        CORPUS_FILES="$CORPUS_FILES${CORPUS_FILES:+ }${f##*/}"
    done
    [ -n "$CORPUS_FILES" ] ||
        fail "no *.pages file in $TRUENO_CORPUS (run make, or set TRUENO_CORPUS)"
}

# corpus_file N: the Nth corpus file's path (from 1), counting round again
# when there are fewer files.
corpus_file() {
    local files
    read -r -a files <<<"$CORPUS_FILES"
    echo "$TRUENO_CORPUS/${files[($1 - 1) % ${#files[@]}]}"
}

# corpus_data BYTES OUT: BYTES bytes of corpus pages into OUT, every file
# back to back, again from the first when they run out (a bigger input than
# one file, of every kind of data in the corpus).
corpus_data() {
    local f
    : >"$2"
    while [ "$(stat -c %s "$2")" -lt "$1" ]; do
        for f in $CORPUS_FILES; do cat "$TRUENO_CORPUS/$f"; done >>"$2"
    done
    truncate -s "$1" "$2"
}

# --- Python with libnbd -----------------------------------------------------
# nbdsh runs "python3 -m nbd" from PATH, which is not always the interpreter
# python3-libnbd was installed for, so find one that can import nbd and run
# "$PYTHON -m nbd" (= nbdsh) or "$PYTHON script.py" ourselves.
require_nbd_python() {
    local p
    for p in ${PYTHON:+"$PYTHON"} python3 /usr/bin/python3; do
        # From /, and asking for nbd.NBD: run in the source tree, "import
        # nbd" alone finds its nbd/ directory (a namespace package) and
        # takes an interpreter without libnbd for one with it.
        if command -v "$p" >/dev/null 2>&1 &&
            (cd / && "$p" -c 'import nbd; nbd.NBD') 2>/dev/null; then
            [ -z "${PYTHON:-}" ] || [ "$p" = "$PYTHON" ] ||
                note "PYTHON=$PYTHON cannot import nbd; using $p"
            PYTHON=$(command -v "$p")
            export PYTHON
            return 0
        fi
    done
    fail "no python3 that can 'import nbd' (install python3-libnbd, or set PYTHON)"
}

# Any python3 for JSON parsing.
require_python() {
    if [ -z "${PYTHON:-}" ]; then
        if command -v python3 >/dev/null 2>&1; then PYTHON=$(command -v python3)
        elif [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3
        else fail "python3 not found"
        fi
    fi
    export PYTHON
}

# --- scratch directory --------------------------------------------------------
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/$test_name.XXXXXX")
export TMPD
# Processes a test started in the background (holders, daemonised
# servers): killed at exit, pass or fail.
exit_pids=()
cleanup() {
    local p
    for p in "${exit_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# nbdkit_serve SOCK PIDFILE LOG ARGS...: nbdkit daemonised on the Unix
# socket SOCK with ARGS (its messages appended to LOG); waits until its
# child has written PIDFILE and made SOCK (up to 10 s: the parent may
# return first) and sets served_pid.  The server is killed at exit.
nbdkit_serve() {
    local sock=$1 pidf=$2 log=$3 i
    shift 3
    rm -f "$sock" "$pidf"
    tmo 10 nbdkit -U "$sock" -P "$pidf" "$@" >>"$log" 2>&1 ||
        fail "nbdkit $* did not start: $(tail -3 "$log")"
    for i in $(seq 1000); do
        [ -s "$pidf" ] && [ -S "$sock" ] && break
        sleep 0.01
    done
    served_pid=$(cat "$pidf" 2>/dev/null) ||
        fail "nbdkit $* wrote no pid file within 10 s"
    [ -S "$sock" ] || fail "nbdkit $* made no socket within 10 s"
    exit_pids+=("$served_pid")
}

# Start a captive nbdkit on a private Unix socket serving the plugin.
#   trueno_run SECS PLUGIN-ARGS... -- RUN-COMMAND
# The run command sees $uri, $unixsocket, $nbd as described in nbdkit-captive(1).
# Returns the exit status of the run command (or nbdkit's if it failed to start).
trueno_run() {
    local secs=$1
    shift
    local args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        args+=("$1")
        shift
    done
    [ $# -ge 2 ] || fail "trueno_run: missing -- RUN-COMMAND"
    shift
    tmo "$secs" nbdkit -U - "$TRUENO_PLUGIN" "${args[@]}" --run "$1"
}

# The lines of a fio job section that writes compressible data at random
# and reads every byte back (crc32c), stopping at the first mismatch.
fio_verify_lines() {
    cat <<'EOF'
rw=randwrite
blockalign=512
verify=crc32c
verify_fatal=1
do_verify=1
verify_state_save=0
buffer_compress_percentage=60
refill_buffers=1
EOF
}

# Start time, for the summary line.
T0=$(date +%s.%N)
elapsed() {
    awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
