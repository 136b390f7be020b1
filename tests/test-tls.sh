#!/usr/bin/env bash
# The export over TCP with TLS required (docs/remote.md): nbdkit on
# 127.0.0.1 with --tls=require, once with a pre-shared key and once with
# X.509 certificates (client certificates verified).  Corpus data copied in
# and back out with nbdcopy is byte-identical; a client without TLS, with the
# wrong key or with a certificate of another CA is refused; nbd-client (the
# kernel client) completes the handshake with its X.509 options and fails
# without them.  With allow-unauthenticated=no (swap=on's default) a TLS
# client is served only when nbdkit authenticates it (PSK or
# --tls-verify-peer), not on an encrypted connection alone.
. "$(dirname "$0")/functions.sh"
require_corpus
require_cmd nbdcopy nbdinfo nbd-client openssl
require_python

# Servers started here run in the background: stop them on the way out.
pids=()
plugin_args=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMPD"
}

# serve TLS-ARGS...: nbdkit serving a 64 MiB export on 127.0.0.1:$port,
# with the plugin parameters in plugin_args; its log (stderr) goes to
# $TMPD/nbdkit.err.  Ready once it has written its pid file.
serve() {
    port=$(free_port)
    rm -f "$TMPD/pid"
    nbdkit -f -i 127.0.0.1 -p "$port" -P "$TMPD/pid" --tls=require "$@" \
        "$TRUENO_PLUGIN" size=64M "${plugin_args[@]}" 2>>"$TMPD/nbdkit.err" &
    pids+=("$!")
    local i
    for i in $(seq 300); do
        [ -s "$TMPD/pid" ] && return 0
        kill -0 "$!" 2>/dev/null || fail "nbdkit $* did not start: $(tail -3 "$TMPD/nbdkit.err")"
        sleep 0.1
    done
    fail "nbdkit $* not ready in 30 s"
}
stop() {
    kill "${pids[-1]}"
    unset 'pids[-1]'
}

# refused WHAT CMD...: CMD fails within 20 s.
refused() {
    local what=$1 rc=0; shift
    timeout -k 5 20 "$@" >"$TMPD/refused.log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "$what: connected, expected a refusal: $*"
    case $rc in 124 | 137) fail "$what: hung instead of being refused: $*" ;; esac
    ok "$what: refused ($(grep -m 1 -i 'error\|nbd_' "$TMPD/refused.log" | cut -c1-100))"
}

# round_trip WHAT URI: two corpus files copied in and back out, unchanged.
round_trip() {
    local what=$1 uri=$2 f src n=0 size
    for f in $CORPUS_FILES; do
        n=$((n + 1))
        [ "$n" -le 2 ] || break
        src=$TRUENO_CORPUS/$f
        size=$(stat -c %s "$src")
        [ "$size" -le $((64 * 1048576)) ] || continue
        rm -f "$TMPD/out"
        tmo "$TEST_TIMEOUT" nbdcopy "$src" "$uri" || fail "$what: nbdcopy $f in failed"
        tmo "$TEST_TIMEOUT" nbdcopy "$uri" "$TMPD/out" || fail "$what: nbdcopy out failed"
        cmp -n "$size" "$src" "$TMPD/out" || fail "$what: $f copied out differs"
        ok "$what: $f ($size bytes) byte-identical through TLS"
    done
}

# --- keys and certificates ------------------------------------------------
# A PSK file is "username:hex-key" lines (nbdkit-tls(1)); private, 0600.
umask 077
psk=$TMPD/keys.psk
printf 'alice:%s\n' "$(openssl rand -hex 32)" >"$psk"
printf 'alice:%s\n' "$(openssl rand -hex 32)" >"$TMPD/wrong.psk"

pki=$TMPD/pki      # the CA, the server's and the client's certificates
other=$TMPD/other  # another CA, and a client certificate it signed
"$test_dir/make-pki" "$pki" || fail "tests/make-pki $pki failed"
"$test_dir/make-pki" "$other" || fail "tests/make-pki $other failed"
umask 022
note "keys made in $(elapsed)s"

# --- PSK ------------------------------------------------------------------
serve --tls-psk="$psk"
round_trip psk "nbds://alice@127.0.0.1:$port/?tls-psk-file=$psk"
refused "psk: client without TLS" nbdinfo "nbd://127.0.0.1:$port"
refused "psk: wrong key" nbdinfo "nbds://alice@127.0.0.1:$port/?tls-psk-file=$TMPD/wrong.psk"
printf 'mallory:%s\n' "$(cut -d: -f2 "$psk")" >"$TMPD/other-user.psk"
refused "psk: unknown user" \
    nbdinfo "nbds://mallory@127.0.0.1:$port/?tls-psk-file=$TMPD/other-user.psk"
stop

# --- X.509, client certificates verified ----------------------------------
serve --tls-certificates="$pki" --tls-verify-peer
round_trip x509 "nbds://127.0.0.1:$port/?tls-certificates=$pki"
refused "x509: client without TLS" nbdinfo "nbd://127.0.0.1:$port"
# A client certificate signed by another CA, the server's CA trusted: the
# server's --tls-verify-peer is what refuses it (checked below without it).
mkdir "$TMPD/stranger" "$TMPD/trusts-other"
cp "$pki/ca-cert.pem" "$other/client-cert.pem" "$other/client-key.pem" "$TMPD/stranger/"
refused "x509: client certificate of another CA" \
    nbdinfo "nbds://127.0.0.1:$port/?tls-certificates=$TMPD/stranger"
# The server must be verified too: a client that trusts another CA stops.
cp "$other/ca-cert.pem" "$pki/client-cert.pem" "$pki/client-key.pem" "$TMPD/trusts-other/"
refused "x509: server certificate of an untrusted CA" \
    nbdinfo "nbds://127.0.0.1:$port/?tls-certificates=$TMPD/trusts-other"

# The kernel client's handshake (-l lists exports: no /dev/nbd needed).
ncl=(-certfile "$pki/client-cert.pem" -keyfile "$pki/client-key.pem"
     -cacertfile "$pki/ca-cert.pem" -tlshostname 127.0.0.1)
tmo 20 nbd-client 127.0.0.1 "$port" -l "${ncl[@]}" >/dev/null 2>&1 ||
    fail "nbd-client -l with its TLS options failed"
ok "x509: nbd-client -certfile -keyfile -cacertfile -tlshostname: handshake done"
refused "x509: nbd-client without TLS" nbd-client 127.0.0.1 "$port" -l
refused "x509: nbd-client without a client certificate" \
    nbd-client 127.0.0.1 "$port" -l -cacertfile "$pki/ca-cert.pem" -tlshostname 127.0.0.1
stop

# Without --tls-verify-peer any client that completes the handshake gets in,
# whatever its certificate: the refusal above was the server's check.
serve --tls-certificates="$pki"
tmo 20 nbdinfo "nbds://127.0.0.1:$port/?tls-certificates=$TMPD/stranger" >/dev/null ||
    fail "x509 without --tls-verify-peer: the stranger's certificate was refused"
ok "x509 without --tls-verify-peer: a certificate of another CA is let in"
stop

# allow-unauthenticated=no, what swap=on implies: an encrypted connection
# is not an authenticated one.  Without --tls-verify-peer nbdkit checks no
# client certificate, so the plugin refuses every TCP client (a client
# with no certificate at all would otherwise read the swap); with it, or
# with a PSK, the clients nbdkit accepted are served.
plugin_args=(allow-unauthenticated=no)
mkdir "$TMPD/ca-only"
cp "$pki/ca-cert.pem" "$TMPD/ca-only/"
serve --tls-certificates="$pki"
refused "allow-unauthenticated=no, no --tls-verify-peer: client without a certificate" \
    nbdinfo "nbds://127.0.0.1:$port/?tls-certificates=$TMPD/ca-only"
refused "allow-unauthenticated=no, no --tls-verify-peer: client with a valid certificate" \
    nbdinfo "nbds://127.0.0.1:$port/?tls-certificates=$pki"
grep -q "refusing a TLS client: nbdkit checks no client key" "$TMPD/nbdkit.err" ||
    fail "the server's log does not say why: $(tail -5 "$TMPD/nbdkit.err")"
ok "the server logs why: $(grep -m 1 -o 'refusing a TLS client[^(]*' "$TMPD/nbdkit.err")"
stop
serve --tls-certificates="$pki" --tls-verify-peer
round_trip "allow-unauthenticated=no, x509 --tls-verify-peer" \
    "nbds://127.0.0.1:$port/?tls-certificates=$pki"
refused "allow-unauthenticated=no, --tls-verify-peer: client without a certificate" \
    nbdinfo "nbds://127.0.0.1:$port/?tls-certificates=$TMPD/ca-only"
stop
serve --tls-psk="$psk"
round_trip "allow-unauthenticated=no, psk" "nbds://alice@127.0.0.1:$port/?tls-psk-file=$psk"
stop
plugin_args=()

note "passed in $(elapsed)s"
