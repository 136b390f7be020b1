#!/usr/bin/env bash
# stats=FILE: the file appears within ~2 s of start, is one valid JSON object
# with the documented keys, is never seen half-written, follows the writes
# while the server runs, and holds the final counters after the server exits.
# As root, in a directory another user can write: that user's symlinks at
# the stats file's name and at the temporary name the writer once used
# (FILE.tmp.PID) do not make the server write through them; the file is
# 0600.
. "$(dirname "$0")/functions.sh"
require_nbd_python
require_python

cat >"$TMPD/t.py" <<'EOF'
import json, os, sys, time
import nbd

uri, stats, alg, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
P = 4096
KEYS = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit",
        "mem_used_max", "same_pages", "huge_pages", "pages_stored", "lz4_pages",
        "zstd_pages", "reads", "writes", "trims", "failed_reads", "failed_writes")
failures = []

def check(cond, what):
    print(("  ok: " if cond else "  FAILED: ") + what)
    if not cond:
        failures.append(what)

def load():
    with open(stats) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError as e:
        raise SystemExit("  FAILED: stats file is not valid JSON (%s): %r" % (e, text[:200]))

def page(i):
    line = ("stats test %s page %d\n" % (alg, i)).encode()
    return (line * (P // len(line) + 1))[:P]

# 1. appears within 2 s of the server being ready
t0 = time.monotonic()
while not os.path.exists(stats) and time.monotonic() - t0 < 2.0:
    time.sleep(0.05)
check(os.path.exists(stats), "stats file appeared within 2 s (%.2f s)" % (time.monotonic() - t0))
if not os.path.exists(stats):
    sys.exit(1)
s0 = load()
check(isinstance(s0, dict), "stats file is one JSON object")
missing = [k for k in KEYS if k not in s0]
check(not missing, "all documented keys present (missing: %s)" % missing)
check(all(isinstance(s0.get(k), int) and s0.get(k) >= 0 for k in KEYS if k in s0),
      "counters are non-negative integers")
check(s0.get("pages_stored") == 0 and s0.get("writes") == 0, "fresh store: no pages, no writes")
check(s0.get("mem_limit") == 0, "no mem-limit given: mem_limit is 0 (got %r)" % s0.get("mem_limit"))

# 2. writes are reflected within ~2.5 s; the file is never seen torn
h = nbd.NBD()
h.connect_uri(uri)
for i in range(n):
    h.pwrite(page(i), i * P)
h.pwrite(bytes(P), n * P)                 # a zero-filled page
h.pwrite(b"\x5a" * P, (n + 1) * P)        # a same-filled page
h.pread(P, 0)
h.flush()
deadline = time.monotonic() + 2.5
reads = 0
while True:
    s = load()                            # raises on a torn / partial file
    reads += 1
    if s.get("writes", 0) >= n + 2 or time.monotonic() > deadline:
        break
    time.sleep(0.01)
print("  read and parsed the stats file %d times while waiting" % reads)
check(s.get("writes", 0) >= n + 2, "running server's stats show the %d writes (writes=%r)" % (n + 2, s.get("writes")))
check(s.get("pages_stored", 0) >= n, "running server's stats show >= %d pages stored (got %r)" % (n, s.get("pages_stored")))

# 3. the last writes, just before exit: only the exit-time write can show them
for i in range(n + 2, n + 2 + 10):
    h.pwrite(page(i), i * P)
h.trim(P, 3 * P)                          # one page released
h.shutdown()
if failures:
    sys.exit(1)
EOF

for alg in lz4 zstd; do
    stats=$TMPD/stats-$alg/stats.json
    mkdir -p "$(dirname "$stats")"
    n=100
    note "algorithm=$alg: stats=FILE while serving ($n distinct compressible pages, 1 zero, 1 same-filled)"
    trueno_run "$TEST_TIMEOUT" size=64M algorithm="$alg" stats="$stats" -- \
        '"$PYTHON" "$TMPD/t.py" "$uri" '"'$stats' $alg $n" ||
        fail "algorithm=$alg: stats while serving wrong (exit $?)"
    ok "algorithm=$alg: stats file appears, parses, follows the writes"

    note "algorithm=$alg: stats after the server exited"
    "$PYTHON" -m json.tool "$stats" >/dev/null || fail "algorithm=$alg: final stats file is not valid JSON"
    leftovers=$(cd "$(dirname "$stats")" && ls -A | grep -vx stats.json || :)
    [ -z "$leftovers" ] || fail "algorithm=$alg: files left next to the stats file: $leftovers"
    "$PYTHON" - "$stats" "$alg" "$n" <<'EOF' || fail "algorithm=$alg: final stats wrong"
import json, sys
s = json.load(open(sys.argv[1]))
alg, n = sys.argv[2], int(sys.argv[3])
P = 4096
print("    " + json.dumps(s, sort_keys=True))
# Pages holding data at exit: n + 10 distinct compressible pages, minus the
# trimmed one, plus the 0x5a same-filled page; the zero-filled page may or may
# not count as stored (it is same-filled with 0).
data = n + 10 - 1
bad = []
def want(cond, what):
    if not cond:
        bad.append(what)
want(s["pages_stored"] in (data + 1, data + 2), "pages_stored %d, expected %d (or %d with the zero page)" % (s["pages_stored"], data + 1, data + 2))
want(s["orig_data_size"] == s["pages_stored"] * P, "orig_data_size %d != pages_stored * 4096" % s["orig_data_size"])
want(s["writes"] == n + 2 + 10, "writes %d, expected %d" % (s["writes"], n + 12))
want(s["reads"] >= 1, "reads %d, expected >= 1" % s["reads"])
want(s["trims"] >= 1, "trims %d, expected >= 1" % s["trims"])
want(s["failed_writes"] == 0 and s["failed_reads"] == 0, "failed counters not 0")
same = s["pages_stored"] - data       # the same-filled pages
want(s["same_pages"] == same, "same_pages %d, expected %d" % (s["same_pages"], same))
comp = s["lz4_pages"] if alg == "lz4" else s["zstd_pages"]
other = s["zstd_pages"] if alg == "lz4" else s["lz4_pages"]
want(comp == data, "%s_pages %d, expected %d (distinct compressible pages)" % (alg, comp, data))
want(other == 0, "pages of the other algorithm: %d" % other)
want(s["huge_pages"] == 0, "huge_pages %d, expected 0 (all pages compress)" % s["huge_pages"])
want(0 < s["compr_data_size"] < data * P // 4, "compr_data_size %d not well below %d" % (s["compr_data_size"], data * P))
want(s["mem_used_total"] > 0 and s["mem_used_max"] >= s["mem_used_total"], "mem_used_total/max inconsistent")
want(s["mem_limit"] == 0, "mem_limit %d, expected 0" % s["mem_limit"])
if bad:
    print("    " + "\n    ".join(bad))
    sys.exit(1)
EOF
    ok "algorithm=$alg: final stats reflect every write (pages_stored, writes, per-algorithm counts)"
done

# A server stopped by SIGTERM (how a service manager stops it) also writes
# its final counters.
note "stats after SIGTERM"
sock=$TMPD/sock
pidf=$TMPD/pid
tstats=$TMPD/stats-term/stats.json
mkdir -p "$(dirname "$tstats")"
nbdkit -f -U "$sock" -P "$pidf" "$TRUENO_PLUGIN" size=64M stats="$tstats" 2>"$TMPD/nbdkit.err" &
bgpid=$!
for _ in $(seq 100); do [ -S "$sock" ] && [ -s "$pidf" ] && break; sleep 0.1; done
[ -S "$sock" ] || { kill "$bgpid" 2>/dev/null || :; fail "nbdkit did not start: $(cat "$TMPD/nbdkit.err")"; }
cat >"$TMPD/w.py" <<'EOF'
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i in range(int(sys.argv[2])):
    h.pwrite((b"sigterm page %d " % i) * 200 + bytes(4096 - 200 * len(b"sigterm page %d " % i)), i * 4096)
h.shutdown()
EOF
n=37
tmo 60 "$PYTHON" "$TMPD/w.py" "nbd+unix:///?socket=$sock" "$n" || { kill "$bgpid" 2>/dev/null || :; fail "writes to the background server failed"; }
[ -f "$tstats" ] || { kill "$bgpid" 2>/dev/null || :; fail "no stats file while the background server runs"; }
before=$(stat -c '%i %.9Y' "$tstats")
kill -TERM "$bgpid"
rc=0
tmo 30 bash -c "while kill -0 $bgpid 2>/dev/null; do sleep 0.1; done" || rc=$?
[ "$rc" -eq 0 ] || { kill -KILL "$bgpid" 2>/dev/null || :; fail "nbdkit did not exit within 30 s of SIGTERM"; }
wait "$bgpid" || :
after=$(stat -c '%i %.9Y' "$tstats")
[ "$before" != "$after" ] || fail "stats file not rewritten at exit after SIGTERM (inode/mtime unchanged: $after)"
"$PYTHON" - "$tstats" "$n" <<'EOF' || fail "stats after SIGTERM do not show the final counters"
import json, sys
s = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
print("    pages_stored=%s writes=%s" % (s.get("pages_stored"), s.get("writes")))
sys.exit(0 if s.get("pages_stored") == n and s.get("writes") == n else 1)
EOF
ok "SIGTERM: final stats file shows all $n pages and writes"

if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    note "stats= in a directory another user writes, with their symlinks"
    chmod 711 "$TMPD"
    pub=$TMPD/pub secret=$TMPD/secret
    mkdir "$pub" && chmod 777 "$pub"
    echo "root only" >"$secret" && chmod 600 "$secret"
    as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
    as_nobody ln -s "$secret" "$pub/stats.json" ||
        fail "nobody could not plant a symlink in $pub"
    nbdkit -f -U "$TMPD/sock2" "$TRUENO_PLUGIN" size=64M stats="$pub/stats.json" \
        2>"$TMPD/nbdkit2.err" &
    bgpid=$!
    for _ in $(seq 100); do [ -S "$TMPD/sock2" ] && break; sleep 0.1; done
    # Once running: the temporary name the writer once used, then two
    # seconds of writes.
    as_nobody ln -sf "$secret" "$pub/stats.json.tmp.$bgpid" ||
        fail "nobody could not plant a symlink in $pub"
    sleep 2.5
    kill -TERM "$bgpid" 2>/dev/null || :
    wait "$bgpid" || :
    [ "$(cat "$secret")" = "root only" ] ||
        fail "the root-only file was overwritten through a symlink: $(head -c 80 "$secret")"
    [ -f "$pub/stats.json" ] && [ ! -L "$pub/stats.json" ] ||
        fail "no stats file in place of the planted symlink: $(cat "$TMPD/nbdkit2.err")"
    "$PYTHON" -m json.tool "$pub/stats.json" >/dev/null || fail "stats file in $pub is not JSON"
    mode=$(stat -c '%a %U' "$pub/stats.json")
    [ "$mode" = "600 root" ] || fail "stats file is '$mode', not '600 root'"
    ok "planted symlinks not followed; the stats file is root's, 0600"
fi

note "passed in $(elapsed)s"
