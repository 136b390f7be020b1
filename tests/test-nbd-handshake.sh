#!/usr/bin/env bash
# trueno-nbd's own NBD handshake (newstyle, NBD_OPT_GO) against real
# servers, stopping before the kernel (`probe`: no nbd module needed):
# the export's size and flags from nbdkit's memory plugin (read-write and
# read-only) and from the trueno plugin; and its errors, each naming what
# failed: no socket, a server that hangs up or speaks no NBD, an export the
# server refuses, bad arguments.  The VM case `reconnect` attaches through
# the kernel.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_python
tn=${abs_top_builddir:-$test_dir/..}/trueno-nbd
[ -x "$tn" ] || fail "no $tn"

pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMPD"
}
# serve NAME ARGS...: nbdkit on $TMPD/NAME.sock, in the background.
serve() {
    local name=$1; shift
    nbdkit_serve "$TMPD/$name.sock" "$TMPD/$name.pid" "$TMPD/$name.log" "$@"
    pids+=("$served_pid")
}

serve mem memory 64M
out=$(tmo 30 "$tn" probe "$TMPD/mem.sock")
case "$out" in
    "size=67108864 flags=0x"*) ok "memory 64M: $out" ;;
    *) fail "memory 64M: probe printed '$out'" ;;
esac
# HAS_FLAGS, and nothing read-only.
flags=$(( ${out#*flags=} ))
if [ $((flags & 1)) -ne 1 ] || [ $((flags & 2)) -ne 0 ]; then fail "flags $flags"; fi

serve ro -r memory 1M
out=$(tmo 30 "$tn" probe "$TMPD/ro.sock")
case "$out" in
    "size=1048576 flags="*" read-only") ok "read-only: $out" ;;
    *) fail "read-only export: probe printed '$out'" ;;
esac

serve trueno "$TRUENO_PLUGIN" size=32M
out=$(tmo 30 "$tn" probe "$TMPD/trueno.sock")
case "$out" in
    "size=33554432 flags="*) ok "trueno 32M: $out" ;;
    *) fail "trueno plugin: probe printed '$out'" ;;
esac

# An export name the server does not have.
serve named --filter=exportname memory 1M exportname=disk exportname-strict=true
tmo 30 "$tn" probe "$TMPD/named.sock" --export disk >/dev/null ||
    fail "named export 'disk' refused"
expect_err "server refused export 'other'" tmo 30 "$tn" probe "$TMPD/named.sock" --export other

# Not NBD at all, and a server that hangs up at once.
cat >"$TMPD/fake.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(4)
open(sys.argv[1] + ".ready", "w").close()
while True:
    c, _ = s.accept()
    if sys.argv[2] == "http":
        c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    c.close()
PY
for kind in http hangup; do
    "$PYTHON" "$TMPD/fake.py" "$TMPD/$kind.sock" "$kind" &
    pids+=("$!")
    for _ in $(seq 100); do [ -e "$TMPD/$kind.sock.ready" ] && break; sleep 0.1; done
done
expect_err "handshake with $TMPD/http.sock: not an NBD server" tmo 30 "$tn" probe "$TMPD/http.sock"
expect_err "reading the server's greeting" tmo 30 "$tn" probe "$TMPD/hangup.sock"
expect_err "cannot connect to $TMPD/none.sock: No such file" "$tn" probe "$TMPD/none.sock"

# Arguments.
expect_err "--timeout: invalid value 'x'" "$tn" connect "$TMPD/mem.sock" --timeout x
expect_err "--dead-conn-timeout: invalid value '-1'" "$tn" connect "$TMPD/mem.sock" --dead-conn-timeout -1
expect_err "--block-size: 1000 is not a power of two" "$tn" connect "$TMPD/mem.sock" --block-size 1000
expect_err "--backend: an identity of 1 to 255 bytes" "$tn" connect "$TMPD/mem.sock" --backend ""
expect_err "'nbdx' is not /dev/nbdN" "$tn" reconnect nbdx "$TMPD/mem.sock"
expect_err "'/dev/sda' is not /dev/nbdN" "$tn" disconnect /dev/sda
expect_err "--device needs a value" "$tn" connect "$TMPD/mem.sock" --device
expect_err "unknown command 'attach'" "$tn" attach "$TMPD/mem.sock"
expect_err "reconnect needs a device and a socket" "$tn" reconnect /dev/nbd0
note "passed in $(elapsed) s"
