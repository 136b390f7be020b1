#!/usr/bin/env bash
# mem-limit: with a 4 MiB limit, writing incompressible pages one by one must
# eventually fail with ENOSPC; the server keeps serving, everything written
# before reads back intact, the failed page keeps its old contents, and after
# trimming half of what was written new writes succeed again.  The stats file
# shows the failed writes and a memory use never above the limit.
. "$(dirname "$0")/functions.sh"
require_nbd_python

limit=$((4 * 1024 * 1024))
pages=4096                    # 16 MiB of random data to offer
head -c $((pages * 4096)) /dev/urandom >"$TMPD/random"
stats=$TMPD/stats.json

cat >"$TMPD/t.py" <<'EOF'
import errno, sys
import nbd

uri, datafile, limit, pages = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
P = 4096
data = open(datafile, "rb").read()
page = lambda i: data[i * P:(i + 1) * P]
failures = []

def enospc(e):
    # libnbd's python binding gives errno as a name ("ENOSPC") in some
    # versions and as a number in others.
    return e.errno in (errno.ENOSPC, "ENOSPC")

def check(cond, what):
    print(("  ok: " if cond else "  FAILED: ") + what)
    if not cond:
        failures.append(what)

h = nbd.NBD()
h.connect_uri(uri)

# The page at 'victim' holds old data that the failing write must not destroy:
# write it first, at the far end of the export.
victim_off = h.get_size() - P
old = b"old contents " * 315 + b"x"
old = (old + bytes(P))[:P]
h.pwrite(old, victim_off)

n_ok = None
err = None
for i in range(pages):
    try:
        h.pwrite(page(i), i * P)
    except nbd.Error as e:
        n_ok, err = i, e
        break
check(n_ok is not None, "a write failed before %d incompressible pages (%d MiB) were stored under a %d-byte limit"
      % (pages, pages * P >> 20, limit))
if n_ok is None:
    sys.exit(1)
print("  %d pages (%d KiB) written before the first failure: %s" % (n_ok, n_ok * 4, err))
check(enospc(err), "the error is ENOSPC (got errno %r, %s)" % (err.errno, err.string))
check(n_ok * P <= limit, "no more than the limit was accepted (%d bytes)" % (n_ok * P))
check(n_ok * P >= limit // 2, "at least half the limit was usable (%d of %d bytes)" % (n_ok * P, limit))

# Still full (nothing was freed): retrying the same write fails the same way.
for attempt in range(4):
    try:
        h.pwrite(page(n_ok), n_ok * P)
        check(False, "retry %d of the failed write succeeded although nothing was freed" % attempt)
        break
    except nbd.Error as e:
        check(enospc(e), "retry %d of the failed write: ENOSPC again (errno %r)" % (attempt, e.errno))

# Overwriting a stored page with new incompressible data while full: it may
# succeed (in place) or fail with ENOSPC, but the page must be wholly old or
# wholly new.
try:
    h.pwrite(page(pages - 1), victim_off)
    victim_now = page(pages - 1)
    print("  overwrite of a stored page while full succeeded")
except nbd.Error as e:
    check(enospc(e), "overwrite of a stored page while full: ENOSPC (errno %r)" % e.errno)
    victim_now = old
    print("  overwrite of a stored page while full failed with ENOSPC")

# What the first n_ok pages should hold from here on.
model = bytearray(data[:n_ok * P])
expect = lambda i: bytes(model[i * P:(i + 1) * P])

# Releasing data needs no room: a zero-filled pwrite, WRITE_ZEROES and TRIM
# over stored pages must succeed while full, including ranges that start and
# end inside a page (whose edges are zeroed, not released).  The unaligned
# ones go first, while not a byte has been freed yet; their edge pages stay
# incompressible after zeroing a few bytes.
half = n_ok // 2
ops = (
    ("NBD trim of the last 96 bytes of a page, 2 whole pages, 96 bytes", None, lambda o, n: h.trim(n, o), (half + 10) * P + 4000, 2 * P + 192),
    ("NBD zero of the last 96 bytes of a page, 2 whole pages, 96 bytes", None, lambda o, n: h.zero(n, o), (half + 20) * P + 4000, 2 * P + 192),
    ("NBD zero of 100 bytes inside a page", None, lambda o, n: h.zero(n, o), (half + 30) * P + 2000, 100),
    ("pwrite of a zero-filled page", n_ok - 1, lambda o, n: h.pwrite(bytes(n), o), (n_ok - 1) * P, P),
    ("NBD zero of a whole stored page", None, lambda o, n: h.zero(n, o), (n_ok - 2) * P, P),
    ("NBD trim of a whole stored page", None, lambda o, n: h.trim(n, o), (n_ok - 3) * P, P),
)
for what, _, fn, o, n in ops:
    try:
        fn(o, n)
        model[o:o + n] = bytes(n)
        check(True, what + " while full succeeds")
    except nbd.Error as e:
        check(False, what + " while full succeeds (got %s)" % e)
        model[o:o + n] = h.pread(n, o)      # go on from what is there
        unreleased = [p for p in range(-(-o // P), (o + n) // P) if h.pread(P, p * P) != bytes(P)]
        if unreleased:
            check(False, "  ... and whole pages inside the failed range were not released: %s" % unreleased)

# Server still serving: a new connection works, data intact.
h2 = nbd.NBD()
h2.connect_uri(uri)
bad = [i for i in range(n_ok) if h2.pread(P, i * P) != expect(i)]
check(not bad, "all %d pages written before the failure read back intact on a new connection (bad: %s)"
      % (n_ok, bad[:5]))
check(h2.pread(P, victim_off) == victim_now, "page written before filling up is wholly old or wholly new as reported")
check(h.pread(P, n_ok * P) == bytes(P), "the page whose write failed kept its old contents (zeros)")
# Failed writes must not have left partial data in the following pages either.
check(h.pread(8 * P, (n_ok + 1) * P) == bytes(8 * P), "pages after the failed one untouched")

# A failed multi-page write: pages before the failing one may be stored, the
# rest keep old contents; every page is either all-old or all-new.
multi_off = (n_ok + 100) * P
try:
    h.pwrite(data[:16 * P], multi_off)
    print("  16-page write while full succeeded (unexpected but allowed if memory was freed)")
except nbd.Error as e:
    check(enospc(e), "multi-page write while full fails with ENOSPC (errno %r)" % e.errno)
got = h.pread(16 * P, multi_off)
mixed = [j for j in range(16) if got[j * P:(j + 1) * P] not in (page(j), bytes(P))]
check(not mixed, "after a failed multi-page write every page is wholly old or wholly new (bad: %s)" % mixed)
h.trim(16 * P, multi_off)

# Trim the first half of what was written; new writes must succeed again.
h.trim(half * P, 0)
check(h.pread(half * P, 0) == bytes(half * P), "trimmed half reads as zeros")
more = half // 2
try:
    for i in range(more):
        h.pwrite(page(pages - 1 - i), (n_ok + i) * P)
    ok_after = True
except nbd.Error as e:
    ok_after = False
    print("  write %d of %d after the trim failed: %s" % (i, more, e))
check(ok_after, "after trimming %d pages, %d new incompressible pages can be written" % (half, more))
check(all(h2.pread(P, (n_ok + i) * P) == page(pages - 1 - i) for i in range(more)),
      "pages written after the trim read back")
check(all(h2.pread(P, i * P) == expect(i) for i in range(half, n_ok)), "the untrimmed half is still intact")
h.flush()
h2.shutdown()
h.shutdown()
if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
EOF

note "size=64M mem-limit=$limit: incompressible pages until ENOSPC"
export stats limit pages
trueno_run "$TEST_TIMEOUT" size=64M mem-limit="$limit" stats="$stats" -- \
    '"$PYTHON" "$TMPD/t.py" "$uri" "$TMPD/random" "$limit" "$pages"' ||
    fail "mem-limit behaviour wrong (exit $?)"
ok "ENOSPC at the limit, data intact, server kept serving, trim made room again"

note "final stats file"
[ -f "$stats" ] || fail "no stats file $stats after exit"
"$PYTHON" - "$stats" "$limit" <<'EOF' || fail "stats after hitting the limit are wrong"
import json, sys
s = json.load(open(sys.argv[1]))
limit = int(sys.argv[2])
keys = ("failed_writes", "mem_used_total", "mem_limit", "mem_used_max")
print("    " + ", ".join("%s=%s" % (k, s.get(k)) for k in keys))
bad = []
if s.get("mem_limit") != limit: bad.append("mem_limit %r, expected %d" % (s.get("mem_limit"), limit))
if not s.get("failed_writes", 0) > 0: bad.append("failed_writes not > 0")
if not s.get("mem_used_total", limit + 1) <= limit: bad.append("mem_used_total > mem_limit")
if not s.get("mem_used_max", limit + 1) <= limit: bad.append("mem_used_max > mem_limit")
if bad:
    print("    " + "; ".join(bad))
    sys.exit(1)
EOF
ok "stats: failed_writes > 0, mem_used_total and mem_used_max <= mem_limit"

# Concurrent writers against the limit: 16 MiB of the corpus (about 8 MiB
# compressed) written over 4 connections with 32 requests in flight each
# (what nbdcopy does) into a store limited to 3 MiB.  Writes must fail
# with ENOSPC, the limit must hold at every moment (mem_used_max), and
# every page must read back as either the corpus page or zeros.  (Not nbdcopy itself: it drops its connections
# on the first error with requests in flight, and nbdkit 1.32 then
# sometimes aborts in raw_send_socket, "Assertion `sock >= 0' failed", while
# another thread replies: a server bug, not ours, seen 4 times in 150 runs.
# These writers wait for every reply before they hang up.)
require_corpus
src=$TMPD/data
corpus_data $((16 << 20)) "$src"
climit=$((3 * 1024 * 1024))
cstats=$TMPD/cstats.json
out=$TMPD/out
cat >"$TMPD/cw.py" <<'EOF'
import errno, sys, threading
import nbd

uri, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
REQ, CONNS, DEPTH = 128 * 1024, 4, 32
chunks = [(o, data[o:o + REQ]) for o in range(0, len(data), REQ)]
enospc, other = [], []

def writer(k):
    h = nbd.NBD()
    h.connect_uri(uri)
    def done(off, err):
        if err.value:
            (enospc if err.value == errno.ENOSPC else other).append((off, err.value))
            err.value = 0  # expected at the limit: keep going
        return 1
    for off, buf in chunks[k::CONNS]:
        while h.aio_in_flight() >= DEPTH:
            h.poll(-1)
        h.aio_pwrite(buf, off, completion=lambda err, off=off: done(off, err))
    while h.aio_in_flight() > 0:
        h.poll(-1)
    h.shutdown()

ts = [threading.Thread(target=writer, args=(k,)) for k in range(CONNS)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if other:
    print("writes failed, but not with ENOSPC: %s" % other[:5])
    sys.exit(2)
if not enospc:
    print("writing %d bytes into a 3 MiB store never failed with ENOSPC" % len(data))
    sys.exit(1)
h = nbd.NBD()
h.connect_uri(uri)
with open(out, "wb") as f:
    for o in range(0, len(data), REQ):
        f.write(h.pread(min(REQ, len(data) - o), o))
h.shutdown()
print("    %d of %d requests failed with ENOSPC" % (len(enospc), len(chunks)))
EOF
export src out PYTHON TMPD
note "mem-limit=$climit: 4 connections x 32 requests in flight of $(basename "$src") until ENOSPC"
trueno_run "$TEST_TIMEOUT" size=64M algorithm=lz4 mem-limit="$climit" stats="$cstats" -- \
    '"$PYTHON" "$TMPD/cw.py" "$uri" "$src" "$out"' \
    2>"$TMPD/nbdkit.err" || { cat "$TMPD/nbdkit.err" >&2; fail "concurrent writers at the limit (exit $?)"; }
"$PYTHON" - "$src" "$out" "$cstats" "$climit" <<'EOF' || fail "concurrent writers at the limit: wrong data or stats"
import json, sys
P = 4096
src, out = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
s = json.load(open(sys.argv[3]))
limit = int(sys.argv[4])
n = len(src) // P
stored = sum(1 for i in range(n) if out[i * P:(i + 1) * P] == src[i * P:(i + 1) * P] and any(src[i * P:(i + 1) * P]))
bad = [i for i in range(n) if out[i * P:(i + 1) * P] not in (src[i * P:(i + 1) * P], bytes(P))]
print("    %d corpus pages stored before ENOSPC; failed_writes=%d mem_used_total=%d mem_used_max=%d mem_limit=%d"
      % (stored, s["failed_writes"], s["mem_used_total"], s["mem_used_max"], s["mem_limit"]))
errs = []
if bad: errs.append("%d pages neither the corpus page nor zeros (first: %s)" % (len(bad), bad[:5]))
if any(out[n * P:]): errs.append("data beyond the copied range")
if s["failed_writes"] <= 0: errs.append("failed_writes not > 0")
if s["mem_used_max"] > limit: errs.append("mem_used_max %d exceeds the limit %d" % (s["mem_used_max"], limit))
if s["mem_used_total"] > limit: errs.append("mem_used_total exceeds the limit")
if stored == 0: errs.append("nothing was stored")
if errs:
    print("    " + "\n    ".join(errs))
    sys.exit(1)
EOF
ok "concurrent writers: ENOSPC, limit held (mem_used_max <= mem_limit), every page whole"

note "passed in $(elapsed)s"
