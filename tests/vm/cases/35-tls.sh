# vm-ram: 512
# vm-tools: yes
# The export over TCP with TLS (docs/remote.md), server and kernel client
# both in the guest over its loopback: nbdkit --tls=require with X.509
# certificates (client certificates verified, tests/make-pki made them on
# the host), nbd-client -certfile -keyfile -cacertfile -tlshostname on
# /dev/nbd0, fio randwrite verify=crc32c on the device: 0 errors.  Clients
# without TLS or without a client certificate are refused.  Then the server
# dies: I/O fails within the nbd timeout instead of hanging.  The plugin
# checks clients as under swap=on (allow-unauthenticated=no): the kernel's
# client is served because nbdkit verified its certificate.
# SPDX-License-Identifier: MIT
. "$TRUENO_VM_LIB"
pki=/opt/trueno/tls
port=10809 tmo=10 dev=/dev/nbd0
tls="-certfile $pki/client-cert.pem -keyfile $pki/client-key.pem -cacertfile $pki/ca-cert.pem -tlshostname 127.0.0.1"
[ -f $pki/server-key.pem ] || fail "no certificates in $pki (tests/make-pki on the host)"
nbdkit -i 127.0.0.1 -p $port -P /tmp/tls.pid --tls=require \
    --tls-certificates=$pki --tls-verify-peer "$TRUENO_PLUGIN" size=64M \
    allow-unauthenticated=no ||
  fail "nbdkit --tls=require did not start"
spid=$(cat /tmp/tls.pid)

# Refused: no TLS at all, and TLS without a client certificate.
nbd-client 127.0.0.1 $port /dev/nbd1 -b 4096 -timeout $tmo > /tmp/plain.out 2>&1 &&
  fail "nbd-client without TLS attached /dev/nbd1"
say "no TLS: refused ($(tail -n 1 /tmp/plain.out))"
nbd-client 127.0.0.1 $port /dev/nbd1 -b 4096 -timeout $tmo -cacertfile $pki/ca-cert.pem \
    -tlshostname 127.0.0.1 > /tmp/nocert.out 2>&1 &&
  fail "nbd-client without a client certificate attached /dev/nbd1"
say "no client certificate: refused ($(tail -n 1 /tmp/nocert.out))"

# Not -swap: over TLS the kernel cannot keep receiving under memory
# pressure (nbd-client(8), docs/remote.md); this is a plain block device.
# shellcheck disable=SC2086 # $tls is a list of options
nbd-client 127.0.0.1 $port $dev -b 4096 -timeout $tmo $tls > /tmp/attach.out 2>&1 ||
  { cat /tmp/attach.out; fail "nbd-client with TLS could not attach $dev"; }
size=$(blockdev --getsize64 $dev)
[ "$size" = $((64 << 20)) ] || fail "$dev is $size bytes, expected 64 MiB"
say "$dev attached over TLS ($size bytes); its TLS proxy: nbd-client pid $(pidof nbd-client)"

t0=$(now)
fio --name=tls --filename=$dev --ioengine=libaio --direct=1 \
    --rw=randwrite --bssplit=4k/50:16k/30:64k/20 --iodepth=8 --size=48M \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=0 \
    --buffer_compress_percentage=50 --refill_buffers --randrepeat=0 \
    --output-format=terse --terse-version=3 > /tmp/fio-tls.out 2>&1
rc=$?
[ $rc -eq 0 ] || { tail -20 /tmp/fio-tls.out; dmesg_new; fail "fio exited $rc over TLS"; }
errs=$(awk -F';' '{print $5}' /tmp/fio-tls.out | tail -1)
[ "${errs:-1}" = 0 ] || fail "fio reported $errs errors"
# terse v3: field 48 = write KiB/s.
say "48 MiB written and verified over TLS in $(( $(now) - t0 )) s (write $(awk -F';' '{print $48}' /tmp/fio-tls.out | tail -1) KiB/s)"

# The server gone: nbd-client's TLS proxy sees the end of the connection and
# exits, and the kernel's next request fails at once; one in flight on the
# dead connection waits for the timeout (measured: 0 s; 10 s in a run that
# attached with -swap).  Either way within the timeout, 3x for the margin.
kill -9 "$spid"
t1=$(now)
if timeout 120 dd if=$dev of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; then
  fail "a read after the server died succeeded"
fi
el=$(( $(now) - t1 ))
[ $el -le $((tmo * 3)) ] || fail "a read after the server died took $el s (timeout $tmo s)"
say "server killed: a read failed after $el s"
nbd-client -d $dev >/dev/null 2>&1
pass "fio verify over TLS: 0 errors; no-TLS and no-certificate clients refused; dead server: I/O error in $el s"
