#!/usr/bin/python3
# The client of tests/test-restart.sh: writes and reads random runs of
# 4 KiB blocks through NBD on a Unix socket, with several requests in
# flight, and keeps a model of the device: for each block the content of
# its last acknowledged write, and, for writes in flight when the
# connection broke, their content as well (either may have landed).  When
# the connection breaks (its server killed or stopped) it reconnects as
# soon as a server listens again and reads the whole device back: every
# block must hold a content the model allows; anything else is counted
# lost.  The driver tells it to stop by creating --stop; it then drains,
# verifies once more and prints one JSON line of figures.  SIGUSR1 asks it
# to hand over (an upgrade): it drains, disconnects, and reconnects and
# verifies as after a break.
#
# A block written with tag T holds (T, block number) repeated, so a block
# from another write, another place or nowhere is told from the right one.
# Tag 0 is the device's content when the client first connected.
#
# Exit: 0 nothing lost, 3 something lost (the figures say what), 1 the
# server did not come back or another error.
# SPDX-License-Identifier: MIT
import argparse
import json
import os
import random
import signal
import struct
import sys
import time

import nbd

P = 4096
CHUNK = 1 << 20               # verification reads

ap = argparse.ArgumentParser()
ap.add_argument("--socket", required=True)
ap.add_argument("--stop", required=True, help="file whose creation stops it")
ap.add_argument("--status", required=True,
                help="a line is appended here at each connection")
ap.add_argument("--depth", type=int, default=8, help="requests in flight")
ap.add_argument("--max-blocks", type=int, default=8,
                help="blocks per request, at most")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--reconnect-timeout", type=float, default=20.0)
args = ap.parse_args()
rng = random.Random(args.seed)


def pattern(tag, blk):
    return struct.pack("<QQ", tag, blk) * (P // 16)


class Broken(Exception):
    """The connection is gone: reconnect and verify."""


class Handover(Exception):
    """Asked to leave (SIGUSR1, an upgrade): drained and disconnected."""


handover = False


def on_usr1(_sig, _frame):
    global handover
    handover = True


signal.signal(signal.SIGUSR1, on_usr1)


class Model:
    def __init__(self, init):
        self.init = init                       # the first content, as read
        self.nblk = len(init) // P
        self.cur = [0] * self.nblk             # last acknowledged tag
        self.maybe = {}                        # blk -> tags in flight at a break
        self.raw = {}                          # blk -> bytes (lost, then kept)
        self.next_tag = 1

    def expected(self, blk, tag):
        if tag == 0:
            return self.init[blk * P:(blk + 1) * P]
        if tag < 0:
            return self.raw[blk]
        return pattern(tag, blk)

    def allowed(self, blk):
        return [self.cur[blk]] + sorted(self.maybe.get(blk, ()))

    def match(self, blk, data):
        """The allowed tag data is, or None."""
        for t in self.allowed(blk):
            if data == self.expected(blk, t):
                return t
        return None


stats = {"connections": 0, "breaks": 0, "writes_acked": 0, "reads_checked": 0,
         "blocks_written": 0, "in_flight_at_break": 0, "handovers": 0, "verifies": 0,
         "lost": 0, "lost_initial": 0, "lost_older": 0, "lost_foreign": 0,
         "lost_in_reads": 0}
reconnect_ms, verify_ms, served_ms = [], [], []
status_fd = os.open(args.status, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def announce():
    """Tells the driver a connection is up ("up N"; "left N" after the Nth
    handover): it kills only after that."""
    stats["connections"] += 1
    os.write(status_fd, b"up %d\n" % stats["connections"])


def connect(deadline, tell=True):
    while True:
        h = nbd.NBD()
        try:
            h.connect_unix(args.socket)
            if tell:
                announce()
            return h
        except nbd.Error:
            del h
            if time.monotonic() > deadline:
                raise SystemExit("restart-client: no server on %s for %.0f s"
                                 % (args.socket, args.reconnect_timeout))
            time.sleep(0.002)


def classify_loss(m, blk, data):
    stats["lost"] += 1
    if data == m.init[blk * P:(blk + 1) * P]:
        stats["lost_initial"] += 1
    else:
        tag, b = struct.unpack_from("<QQ", data)
        if b == blk and 0 < tag < m.next_tag and data == pattern(tag, blk):
            stats["lost_older"] += 1
        else:
            stats["lost_foreign"] += 1
    if stats["lost"] <= 5:
        print("restart-client: block %d: allowed tags %s, read %s" %
              (blk, m.allowed(blk), data[:16].hex()), file=sys.stderr)


def settle(m, blk, data):
    """What was read is now what the block holds."""
    t = m.match(blk, data)
    if t is None:
        classify_loss(m, blk, data)
        m.raw[blk] = bytes(data)
        t = -1
    m.cur[blk] = t
    m.maybe.pop(blk, None)


def verify(h, m):
    """Reads the whole device; raises Broken if the connection goes."""
    t0 = time.monotonic()
    try:
        for off in range(0, m.nblk * P, CHUNK):
            n = min(CHUNK, m.nblk * P - off)
            data = h.pread(n, off)
            for i in range(n // P):
                blk = off // P + i
                d = data[i * P:(i + 1) * P]
                if m.maybe.get(blk) or d != m.expected(blk, m.cur[blk]):
                    settle(m, blk, d)
    except nbd.Error as e:
        raise Broken(e)
    stats["verifies"] += 1
    verify_ms.append((time.monotonic() - t0) * 1000)


def run_io(h, m, stopping):
    """Requests until the stop file appears (drained) or a break."""
    inflight = {}                               # cookie -> (kind, blk, n, tag, buf)
    busy = bytearray(m.nblk)
    global handover
    try:
        while True:
            if handover and not inflight:
                # Every request answered: leave as a client does
                # (NBD_CMD_DISC), and come back to the next server.
                handover = False
                h.shutdown()
                raise Handover()
            if stopping() or handover:
                if not inflight:
                    return
            else:
                for _ in range(4 * args.depth):
                    if len(inflight) >= args.depth:
                        break
                    n = rng.randint(1, args.max_blocks)
                    blk = rng.randrange(0, m.nblk - n + 1)
                    if any(busy[blk:blk + n]):
                        continue
                    busy[blk:blk + n] = b"\1" * n
                    if rng.random() < 0.6:
                        tag = m.next_tag
                        m.next_tag += 1
                        buf = b"".join(pattern(tag, b) for b in range(blk, blk + n))
                        c = h.aio_pwrite(buf, blk * P)
                        inflight[c] = ("w", blk, n, tag, buf)
                    else:
                        buf = nbd.Buffer(n * P)
                        c = h.aio_pread(buf, blk * P)
                        inflight[c] = ("r", blk, n, 0, buf)
            h.poll(1000)
            for c in list(inflight):
                if not h.aio_command_completed(c):
                    continue
                kind, blk, n, tag, buf = inflight.pop(c)
                busy[blk:blk + n] = b"\0" * n
                if kind == "w":
                    stats["writes_acked"] += 1
                    stats["blocks_written"] += n
                    for b in range(blk, blk + n):
                        m.cur[b] = tag
                        m.maybe.pop(b, None)
                else:
                    data = buf.to_bytearray()
                    stats["reads_checked"] += 1
                    for i in range(n):
                        b = blk + i
                        d = data[i * P:(i + 1) * P]
                        if d != m.expected(b, m.cur[b]):
                            stats["lost_in_reads"] += 1
                            settle(m, b, bytes(d))
    except nbd.Error as e:
        # Every write not acknowledged may or may not have landed.
        for kind, blk, n, tag, _ in inflight.values():
            if kind == "w":
                stats["in_flight_at_break"] += 1
                for b in range(blk, blk + n):
                    m.maybe.setdefault(b, set()).add(tag)
        raise Broken(e)


def main():
    stop = lambda: os.path.exists(args.stop)
    t_start = time.monotonic()
    # The driver does not kill before the first announce: the first
    # content is read whole.
    h = connect(time.monotonic() + args.reconnect_timeout, tell=False)
    size = h.get_size()
    if size < P * args.max_blocks or size % P or size > (64 << 20):
        raise SystemExit("restart-client: device of %d bytes: not a multiple "
                         "of 4096 from %d to 64 MiB" % (size, P * args.max_blocks))
    m = Model(bytes(h.pread(size, 0)))
    announce()
    while True:
        try:
            run_io(h, m, stop)
            verify(h, m)
            break
        except (Broken, Handover) as e:
            kind = "handovers" if isinstance(e, Handover) else "breaks"
        # Out of the except clause: its traceback holds the old handle,
        # and with it the old connection, which an old server stopping
        # gracefully waits for.
        t_break = time.monotonic()
        stats[kind] += 1
        del h
        if kind == "handovers":
            os.write(status_fd, b"left %d\n" % stats["handovers"])
        while True:
            h = connect(time.monotonic() + args.reconnect_timeout)
            t_conn = time.monotonic()
            try:
                verify(h, m)
                break
            except Broken:
                # Killed again while verifying: the allowed sets stay.
                stats["breaks"] += 1
            del h
        reconnect_ms.append((t_conn - t_break) * 1000)
        served_ms.append((time.monotonic() - t_break) * 1000)
    h.shutdown()

    def summary(xs):
        if not xs:
            return None
        xs = sorted(xs)
        return {"median": round(xs[len(xs) // 2], 1),
                "p90": round(xs[int(len(xs) * 0.9)], 1),
                "max": round(xs[-1], 1)}
    stats.update({"device_bytes": size, "seconds": round(time.monotonic() - t_start, 1),
                  "reconnect_ms": summary(reconnect_ms),
                  "verify_ms": summary(verify_ms),
                  "served_again_ms": summary(served_ms)})
    print(json.dumps(stats))
    return 3 if stats["lost"] else 0


sys.exit(main())
