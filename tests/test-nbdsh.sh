#!/usr/bin/env bash
# NBD protocol semantics through libnbd (python3 "import nbd", as nbdsh does):
# capabilities and block size, extents for unwritten/zero/data pages, trim and
# zero (whole and partial pages, NO_HOLE, FAST_ZERO), FUA and flush, two
# connections sharing one store (multi-conn), and a randomised unaligned
# read/write/trim/zero sequence checked against an in-memory model.
. "$(dirname "$0")/functions.sh"
require_nbd_python

cat >"$TMPD/t.py" <<'EOF'
import os, random, sys
import nbd

uri, alg = sys.argv[1], sys.argv[2]
P = 4096
HOLE, ZERO = nbd.STATE_HOLE, nbd.STATE_ZERO
failures = []

def check(cond, what):
    if cond:
        print("  ok: " + what)
    else:
        print("  FAILED: " + what)
        failures.append(what)

def connect():
    h = nbd.NBD()
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_uri(uri)
    return h

def extents(h, off, length):
    """[(offset, length, flags)] covering [off, off+length), clipped."""
    out = []
    pos, end = off, off + length
    while pos < end:
        got = []
        def cb(ctx, o, entries, err):
            if ctx == nbd.CONTEXT_BASE_ALLOCATION:
                got.append((o, list(entries)))
            return 0
        h.block_status(end - pos, pos, cb)
        assert got, "no base:allocation reply"
        o, entries = got[0]
        assert o == pos, (o, pos)
        for i in range(0, len(entries), 2):
            n, fl = entries[i], entries[i + 1]
            n = min(n, end - pos)
            if n <= 0:
                break
            out.append((pos, n, fl))
            pos += n
    return out

def page_flags(h, first, count):
    """Extent flags of each page in [first, first+count) ("split" if mixed)."""
    res = [set() for _ in range(count)]
    for (o, n, fl) in extents(h, first * P, count * P):
        for p in range(o // P, (o + n - 1) // P + 1):
            if first <= p < first + count:
                res[p - first].add(fl)
    return [s.pop() if len(s) == 1 else "split%s" % sorted(s) for s in res]

def data_page(tag):
    line = ("trueno %s page %d; " % (alg, tag)).encode()
    return (line * (P // len(line) + 1))[:P]

def rnd(n, seed):
    return random.Random(seed).randbytes(n)

h = connect()
size = h.get_size()
print("export size %d" % size)

print("capabilities")
check(h.can_multi_conn(), "can_multi_conn")
check(h.can_flush(), "can_flush")
check(h.can_fua(), "can_fua")
check(h.can_trim(), "can_trim")
check(h.can_zero(), "can_zero")
check(h.can_fast_zero(), "can_fast_zero")
check(h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION), "base:allocation (extents) negotiated")
check(not h.is_read_only(), "writable")
bmin = h.get_block_size(nbd.SIZE_MINIMUM)
bpref = h.get_block_size(nbd.SIZE_PREFERRED)
bmax = h.get_block_size(nbd.SIZE_MAXIMUM)
print("  block sizes: minimum %d preferred %d maximum %d" % (bmin, bpref, bmax))
check(bpref == 4096, "preferred block size is 4096 (got %d)" % bpref)
check(bmin in (0, 1, 512, 4096) and (bmin or 1) <= bpref, "minimum block size sane (got %d)" % bmin)
A = max(bmin, 1)   # alignment for our unaligned tests
# nbdkit refuses reads and writes above 64 MiB: the advertised maximum must
# say so, and a request of exactly that size must be served.
check(bmax == 64 << 20, "maximum block size is nbdkit's 64 MiB (got %d)" % bmax)
check(h.pread(64 << 20, 0) == bytes(64 << 20), "a 64 MiB read is served")

print("never-written space")
fl = extents(h, 0, size)
check(all(f == HOLE | ZERO for (_, _, f) in fl) and sum(n for (_, n, _) in fl) == size,
      "whole fresh export is hole,zero (%d extents)" % len(fl))
check(h.pread(3 * P, 5 * P) == bytes(3 * P), "never-written pages read as zeros")

print("extents of data, zero-filled, same-filled, trimmed and zeroed pages")
# page:  0 data, 1 zeros written, 2 data, 3 untouched, 4 0xAB-filled,
#        5-6 data then trimmed, 7-8 data then zeroed, 9-10 data then zeroed NO_HOLE,
#        11 data then fast-zeroed, 12 data then zeroed with FUA
for p in (0, 2, 5, 6, 7, 8, 9, 10, 11, 12):
    h.pwrite(data_page(p), p * P)
h.pwrite(bytes(P), 1 * P)
h.pwrite(b"\xab" * P, 4 * P)
h.trim(2 * P, 5 * P)
h.zero(2 * P, 7 * P)
h.zero(2 * P, 9 * P, nbd.CMD_FLAG_NO_HOLE)
h.zero(P, 11 * P, nbd.CMD_FLAG_FAST_ZERO)
h.zero(P, 12 * P, nbd.CMD_FLAG_FUA)
got = page_flags(h, 0, 16)
print("  page flags 0..15: %s" % got)
check(got[0] == 0 and got[2] == 0, "data pages are data (flags 0)")
check(got[1] == ZERO, "page written with zero bytes is zero (flags 2, not a hole)")
check(got[3] == HOLE | ZERO, "untouched page is hole,zero")
check(got[4] == 0, "0xAB-filled page is data")
check(got[5] == HOLE | ZERO and got[6] == HOLE | ZERO, "trimmed pages are hole,zero")
check(all(isinstance(f, int) and f & ZERO for f in got[7:13]), "zeroed pages (plain, NO_HOLE, FAST_ZERO, FUA) read as zero in extents")
check(all(f == HOLE | ZERO for f in got[13:16]), "following untouched pages are hole,zero")
check(h.pread(P, 0) == data_page(0) and h.pread(P, 2 * P) == data_page(2), "data pages read back")
check(h.pread(P, P) == bytes(P), "zero-written page reads zeros")
check(h.pread(P, 4 * P) == b"\xab" * P, "same-filled page reads back")
check(h.pread(8 * P, 5 * P) == bytes(8 * P), "trimmed and zeroed pages read as zeros")
# extents asked from the middle of a page
e = extents(h, P // 2, P)
check(e and e[0][2] == 0, "extents from mid-page of a data page start with data")
e = extents(h, 3 * P + 100, 100)
check(e and e[0][2] & ZERO, "extents from mid-page of an unwritten page report zero")

print("partial-page trim and zero")
base = 20 * P
blob = rnd(6 * P, 1)
h.pwrite(blob, base)
model = bytearray(blob)
if A == 1:
    h.trim(100, base + 50); model[50:150] = bytes(100)
    h.zero(5000, base + P + 1000); model[P + 1000:P + 6000] = bytes(5000)
    h.zero(3 * P + 20, base + 2 * P + 4000, nbd.CMD_FLAG_NO_HOLE)
    model[2 * P + 4000:5 * P + 4020] = bytes(3 * P + 20)
else:
    h.trim(A, base + A); model[A:2 * A] = bytes(A)
    h.zero(3 * A, base + P + A); model[P + A:P + 4 * A] = bytes(3 * A)
    h.zero(2 * P + 2 * A, base + 3 * P - A, nbd.CMD_FLAG_NO_HOLE)
    model[3 * P - A:5 * P + A] = bytes(2 * P + 2 * A)
check(h.pread(6 * P, base) == bytes(model), "bytes inside partial trim/zero ranges are zero, bytes outside intact")
got = page_flags(h, 20, 6)
print("  page flags 20..25: %s" % got)
check(got[0] == 0 and got[1] == 0, "partially trimmed/zeroed pages are still data")
check(isinstance(got[3], int) and got[3] & ZERO and isinstance(got[4], int) and got[4] & ZERO,
      "whole pages inside a zero range read as zero in extents")

print("FUA writes and flush")
h.pwrite(data_page(40), 40 * P, nbd.CMD_FLAG_FUA)
h.pwrite(b"fua" * 100, 41 * P + 7, nbd.CMD_FLAG_FUA)
h.flush()
check(h.pread(P, 40 * P) == data_page(40) and h.pread(300, 41 * P + 7) == b"fua" * 100,
      "FUA writes accepted and read back; flush accepted")

print("two connections share one store (multi-conn)")
h2 = connect()
check(h2.can_multi_conn(), "second connection: can_multi_conn")
h.pwrite(data_page(50), 50 * P)
check(h2.pread(P, 50 * P) == data_page(50), "write on connection 1 is read on connection 2")
h2.pwrite(rnd(3 * P + 1, 2)[1:], 51 * P + 1)
check(h.pread(3 * P, 51 * P + 1) == rnd(3 * P + 1, 2)[1:], "unaligned write on connection 2 is read on connection 1")
h2.trim(P, 50 * P)
check(h.pread(P, 50 * P) == bytes(P) and page_flags(h, 50, 1)[0] == HOLE | ZERO,
      "trim on connection 2 seen by connection 1 (zeros, hole,zero)")
h2.flush()

print("large unaligned request")
big = rnd(4 * 1024 * 1024 - 3 * A, 3)
off = 1024 * P + A
if bmax and len(big) > bmax:
    big = big[:bmax - A]
h.pwrite(big, off)
check(h2.pread(len(big), off) == big, "%d-byte write at offset %d reads back" % (len(big), off))

print("randomised sequence against a model")
R = random.Random(12345)
rbase, rlen = 2048 * P, 256 * P
model = bytearray(rlen)
h.zero(rlen, rbase)
hs = (h, h2)
nops = {"pwrite": 0, "trim": 0, "zero": 0, "pread": 0}
mismatch = None
for i in range(1500):
    c = R.choice(hs)
    o = R.randrange(0, rlen // A) * A
    n = R.choice((1, 7, 100, 511, 512, 4095, 4096, 4097, 8192, 3 * P + 5, 40000))
    n = max(A, (n // A) * A)
    n = min(n, rlen - o)
    op = R.choices(("pwrite", "trim", "zero", "pread"), (5, 1, 1, 4))[0]
    nops[op] += 1
    if op == "pwrite":
        if R.random() < 0.3:
            buf = bytes([R.randrange(256)]) * n       # same-filled
        elif R.random() < 0.5:
            buf = R.randbytes(n)                      # incompressible
        else:
            buf = (b"abc%06d" % i) * (n // 9 + 1)     # compressible
            buf = buf[:n]
        c.pwrite(buf, rbase + o, nbd.CMD_FLAG_FUA if R.random() < 0.1 else 0)
        model[o:o + n] = buf
    elif op == "trim":
        c.trim(n, rbase + o)
        model[o:o + n] = bytes(n)
    elif op == "zero":
        c.zero(n, rbase + o, R.choice((0, nbd.CMD_FLAG_NO_HOLE, nbd.CMD_FLAG_FAST_ZERO)))
        model[o:o + n] = bytes(n)
    else:
        if c.pread(n, rbase + o) != bytes(model[o:o + n]):
            mismatch = "op %d: pread(%d, %d) differs from the model" % (i, n, rbase + o)
            break
print("  ops: %s" % nops)
check(mismatch is None, mismatch or "every read matched the model")
check(h.pread(rlen, rbase) == bytes(model) and h2.pread(rlen, rbase) == bytes(model),
      "whole %d-byte region matches the model on both connections" % rlen)
# extents over the region agree with the data: a zero flag means zeros
bad = [(o, n) for (o, n, f) in extents(h, rbase, rlen)
       if f & ZERO and any(model[o - rbase:o - rbase + n])]
check(not bad, "no extent claims zero where there is data (%s)" % bad[:3])

h2.shutdown()
h.shutdown()
if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
EOF

for alg in lz4 zstd; do
    note "algorithm=$alg: libnbd checks on a 64 MiB export"
    trueno_run "$TEST_TIMEOUT" size=64M algorithm="$alg" -- \
        '"$PYTHON" "$TMPD/t.py" "$uri" '"$alg" ||
        fail "algorithm=$alg: libnbd protocol checks failed (exit $?)"
    ok "algorithm=$alg: all libnbd checks passed"
done

# A size that is not a multiple of the page size: either refused (naming
# size) or served exactly, with the last bytes readable and writable.
note "size=10001 (not a multiple of 4096)"
rc=0
cat >"$TMPD/odd.py" <<'EOF'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
assert h.get_size() == 10001, h.get_size()
if max(h.get_block_size(nbd.SIZE_MINIMUM), 1) == 1:
    h.pwrite(b"xyz", 9998)
    assert h.pread(3, 9998) == b"xyz"
    assert h.pread(10001, 0) == bytes(9998) + b"xyz"
    h.zero(2, 9999)
    assert h.pread(3, 9998) == b"x\0\0"
    h.trim(10001 - 8192, 8192)
    assert h.pread(10001, 0) == bytes(10001)
print("  served 10001 bytes; the partial last page is writable")
EOF
trueno_run 30 size=10001 -- '"$PYTHON" "$TMPD/odd.py" "$uri"' >"$TMPD/out" 2>"$TMPD/err" || rc=$?
cat "$TMPD/out"
if [ "$rc" -ne 0 ]; then
    if grep -q Traceback "$TMPD/err" || ! grep -q "size" "$TMPD/err"; then
        fail "size=10001: neither served correctly nor refused naming size: $(cat "$TMPD/err")"
    fi
    ok "size=10001 refused: $(head -n 1 "$TMPD/err")"
else
    ok "size=10001 served exactly"
fi

note "passed in $(elapsed)s"
