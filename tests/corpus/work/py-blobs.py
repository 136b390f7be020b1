# The py-blobs workload: CPython holding nearly incompressible data, as a
# cache of compressed files and encrypted records would: generated text
# compressed with zlib, lzma and bz2, and seeded random bytes, keyed by
# name with small metadata tuples.  Prints "ready" once built, then keeps
# checksumming the blobs.  Everything comes from a seeded PRNG.
# SPDX-License-Identifier: MIT
import bz2
import lzma
import random
import sys
import zlib

rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
total = int(sys.argv[2]) if len(sys.argv) > 2 else 64 << 20
SYL = [rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") +
       rng.choice(["", "n", "r", "s"]) for _ in range(400)]


def text(n):
    words = [rng.choice(SYL) + rng.choice(SYL) for _ in range(n // 5)]
    return " ".join(words).encode()


cache = {}
held = 0
i = 0
while held < total:
    kind = rng.choice(["zlib", "lzma", "bz2", "random", "random"])
    n = int(rng.expovariate(1 / 12000)) + 200
    if kind == "random":
        blob = rng.randbytes(n)
    else:
        raw = text(n * 3)
        blob = (zlib.compress(raw, 6) if kind == "zlib" else
                lzma.compress(raw) if kind == "lzma" else bz2.compress(raw))
    cache[f"obj/{i:06d}.{kind}"] = (kind, len(blob), zlib.crc32(blob), blob)
    held += len(blob)
    i += 1
print("ready", len(cache), held, flush=True)
while True:
    for k, v in cache.items():
        zlib.crc32(v[3])
