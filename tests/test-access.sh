#!/usr/bin/env bash
# Who is served: swap=on (or allow-unauthenticated=no) serves only root over
# a Unix socket or TLS-authenticated clients, since swap holds every
# process's memory.  Root over Unix is served; a non-root Unix client
# (setpriv to nobody) and a TCP client without TLS are refused with a
# message saying why; allow-unauthenticated=yes and no parameter at all
# (without swap=on) serve them; TLS with a pre-shared key (nbdkit
# --tls=require --tls-psk) gives an identical nbdcopy round trip, and a
# client with a wrong key is refused.  The checks run with
# allow-unauthenticated=no; where swap=on can run (root with
# CAP_SYS_RESOURCE), the refusals are checked again with swap=on alone.
# As root the non-root client is setpriv's nobody; run as another user,
# the test's own uid is the one refused and root's service goes unchecked.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/functions.sh"
require_cmd nbdinfo nbdcopy
require_corpus
require_python

# The client must be able to reach the socket for the plugin to be the one
# that refuses it: a directory anyone may traverse, a socket anyone may
# open (nbdkit makes it 0755: the run commands open it up).
pub=$TMPD/pub
mkdir -m 0711 "$pub"
chmod 0711 "$TMPD"
# (--run's command is run by /bin/sh: a word list, not a function)
if [ "$(id -u)" -eq 0 ]; then
    require_cmd setpriv
    nobody="setpriv --reuid=nobody --regid=nogroup --clear-groups"
    uid=$(id -u nobody)
else
    nobody="" uid=$(id -u)
fi
export nobody

# serve NAME NBDKIT-ARGS... -- RUN: nbdkit with a captive --run; nbdkit's stderr in $TMPD/NAME.err, the run's output
# in $TMPD/NAME.out.  Returns the run command's status.
serve() {
    local name=$1 args=() rc=0
    shift
    while [ "$1" != "--" ]; do args+=("$1"); shift; done
    shift
    rm -f "$sock"
    tmo 60 nbdkit "${args[@]}" --run "$1" \
        >"$TMPD/$name.out" 2>"$TMPD/$name.err" || rc=$?
    return "$rc"
}

# refused NAME WANT: the run failed and nbdkit said WANT.
refused() {
    grep -qF -- "$2" "$TMPD/$1.err" ||
        fail "$1: expected '$2' from nbdkit, got: $(cat "$TMPD/$1.err" "$TMPD/$1.out")"
    ok "$1: refused: $(grep -m1 -oF -- "$2" "$TMPD/$1.err")"
}

sock=$pub/nbd.sock
export sock

# What turns the checks on: allow-unauthenticated=no here, and swap=on
# alone where this host lets swap=on run.
policy=allow-unauthenticated=no

# Root over the Unix socket: served.
if [ "$(id -u)" -eq 0 ]; then
serve root-unix -U "$sock" "$TRUENO_PLUGIN" size=64M "$policy" -- \
    'nbdinfo --size "nbd+unix:///?socket=$sock"' ||
    fail "root over a Unix socket was not served: $(cat "$TMPD/root-unix.err")"
[ "$(cat "$TMPD/root-unix.out")" = 67108864 ] ||
    fail "root over a Unix socket: size $(cat "$TMPD/root-unix.out")"
ok "root over a Unix socket served"
else
    note "not root: root over a Unix socket is not checked"
fi

# nobody over the same socket: refused by the plugin.
serve nobody-unix -U "$sock" "$TRUENO_PLUGIN" size=64M "$policy" -- \
    'chmod 0777 "$sock" && $nobody nbdinfo --size "nbd+unix:///?socket=$sock"' &&
    fail "uid $uid was served with $policy"
refused nobody-unix "refusing uid $uid over the Unix socket"

# ... unless explicitly allowed (so the refusal above was the plugin's).
serve nobody-allowed -U "$sock" "$TRUENO_PLUGIN" size=64M \
    allow-unauthenticated=yes -- \
    'chmod 0777 "$sock" && $nobody nbdinfo --size "nbd+unix:///?socket=$sock"' ||
    fail "allow-unauthenticated=yes: nobody not served: $(cat "$TMPD/nobody-allowed.err")"
ok "allow-unauthenticated=yes serves nobody over the Unix socket"

# By default (no swap=on) a non-root client is served as before.
serve nobody-noswap -U "$sock" "$TRUENO_PLUGIN" size=64M -- \
    'chmod 0777 "$sock" && $nobody nbdinfo --size "nbd+unix:///?socket=$sock"' ||
    fail "without swap=on, nobody not served: $(cat "$TMPD/nobody-noswap.err")"
ok "by default, without swap=on, a non-root Unix client is served"

# TCP on 127.0.0.1 without TLS: refused.
port=$(free_port)
export port
serve tcp-plain -i 127.0.0.1 -p "$port" "$TRUENO_PLUGIN" size=64M "$policy" -- \
    'nbdinfo --size "nbd://127.0.0.1:$port"' &&
    fail "a TCP client without TLS was served with $policy"
refused tcp-plain "refusing a network client without TLS"

# TLS with a pre-shared key: an nbdcopy round trip, byte-identical.
psk=$TMPD/keys.psk
bad=$TMPD/bad.psk
"$PYTHON" -c 'import os; print("alice:" + os.urandom(32).hex())' >"$psk"
"$PYTHON" -c 'import os; print("alice:" + os.urandom(32).hex())' >"$bad"
chmod 0600 "$psk" "$bad"
corpus_data $((8 << 20)) "$TMPD/in"
export psk bad TMPD
port=$(free_port)
serve tls -i 127.0.0.1 -p "$port" --tls=require --tls-psk="$psk" \
    "$TRUENO_PLUGIN" size=64M "$policy" -- '
    u="nbds://alice@127.0.0.1:$port/?tls-psk-file=$psk"
    nbdcopy "$TMPD/in" "$u" &&
    nbdcopy --synchronous "$u" - | head -c 8M >"$TMPD/back"' ||
    fail "TLS-PSK round trip failed: $(cat "$TMPD/tls.err" "$TMPD/tls.out")"
cmp "$TMPD/in" "$TMPD/back" || fail "TLS-PSK: data came back different"
ok "TLS with a pre-shared key: nbdcopy in and out, identical (8 MiB)"

# A wrong key: the TLS handshake fails, nothing is served.
port=$(free_port)
serve tls-bad -i 127.0.0.1 -p "$port" --tls=require --tls-psk="$psk" \
    "$TRUENO_PLUGIN" size=64M "$policy" -- \
    'nbdinfo --size "nbds://alice@127.0.0.1:$port/?tls-psk-file=$bad"' &&
    fail "a client with the wrong pre-shared key was served"
grep -qi "tls\|handshake\|psk" "$TMPD/tls-bad.err" "$TMPD/tls-bad.out" ||
    fail "wrong key: no TLS error: $(cat "$TMPD/tls-bad.err" "$TMPD/tls-bad.out")"
ok "a client with the wrong pre-shared key is refused"

# swap=on alone: the same refusals, where swap=on can run here.
rc=0
nbdkit -U - "$TRUENO_PLUGIN" size=64M swap=on --run true \
    >"$TMPD/probe.out" 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then
    policy=swap=on
    serve swap-nobody -U "$sock" "$TRUENO_PLUGIN" size=64M "$policy" -- \
        'chmod 0777 "$sock" && $nobody nbdinfo --size "nbd+unix:///?socket=$sock"' &&
        fail "uid $uid was served with swap=on"
    refused swap-nobody "refusing uid $uid over the Unix socket"
    port=$(free_port)
    serve swap-tcp -i 127.0.0.1 -p "$port" "$TRUENO_PLUGIN" size=64M \
        "$policy" -- 'nbdinfo --size "nbd://127.0.0.1:$port"' &&
        fail "a TCP client without TLS was served with swap=on"
    refused swap-tcp "refusing a network client without TLS"
    serve swap-root -U "$sock" "$TRUENO_PLUGIN" size=64M "$policy" -- \
        'nbdinfo --size "nbd+unix:///?socket=$sock"' ||
        fail "swap=on: root over a Unix socket not served: $(cat "$TMPD/swap-root.err")"
    ok "swap=on: root over a Unix socket served"
else
    grep -q "swap: " "$TMPD/probe.out" ||
        fail "swap=on failed for another reason: $(cat "$TMPD/probe.out")"
    note "swap=on cannot run here ($(grep -m1 -o 'swap: [^(]*' "$TMPD/probe.out")): its default is checked with allow-unauthenticated=no only"
fi

note "passed in $SECONDS s"
