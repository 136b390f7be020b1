# What the Python parts of the shell tests share: check() prints and
# records a result, load_stats() reads the server's stats file (written
# once a second, replaced atomically: retried while it is not there yet).
# SPDX-License-Identifier: MIT
import json
import time

failures = []


def check(cond, what):
    print(("  ok: " if cond else "  FAILED: ") + what)
    if not cond:
        failures.append(what)


def load_stats(path):
    for _ in range(50):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.1)
    raise SystemExit("  FAILED: no stats file")


def status():
    return 1 if failures else 0
