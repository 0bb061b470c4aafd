#!/usr/bin/env python3
"""End-to-end benchmarks on a real local stack. Prints numbers; asserts
nothing about time (the machine is shared and noisy).

  ingest: events/s acknowledged by one `licmonctl send` of a file (journal synced)
  pipeline: events/s from the first send until `licmonctl wait` returns
"""
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(os.environ.get("LICMON_BIN", "build/bin"))
N = int(os.environ.get("LICMON_BENCH_EVENTS", "200000"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ctl(*args, **kw):
    return subprocess.run([os.path.join(BIN, "licmonctl"), *args], check=True,
                          capture_output=True, text=True, **kw)


def make_events(path, n, users=5000, types=("creator", "reviewer", "stakeholder")):
    rnd = random.Random(42)
    t = int(time.time() * 1000) - 3 * 86400 * 1000
    state = {}
    with open(path, "w") as f:
        for i in range(n):
            u = f"user{rnd.randrange(users):05d}@bench.example"
            t += rnd.randrange(0, 40)
            if u not in state:
                kind, lt = "login", rnd.choice(types)
                state[u] = lt
            else:
                r = rnd.random()
                kind = "logout" if r < 0.1 else "activity"
                lt = None
                if kind == "logout":
                    del state[u]
            e = {"event_id": f"b{i}", "org": "bench", "user": u, "ts": t, "kind": kind}
            if lt:
                e["license_type"] = lt
            f.write(json.dumps(e) + "\n")


def main():
    folder = tempfile.mkdtemp(prefix="lm-bench-", dir="/tmp")
    try:
        data = os.path.join(folder, "events.ndjson")
        make_events(data, N)
        ctl("up", "--dir", folder, "--http", f"127.0.0.1:{free_port()}", "--bin", BIN)
        t0 = time.perf_counter()
        out = ctl("send", "--dir", folder, data, timeout=600)
        t1 = time.perf_counter()
        ctl("wait", "--dir", folder, "--timeout", "600", timeout=700)
        t2 = time.perf_counter()
        print(f"ingest: {N} events acknowledged in {t1 - t0:.2f} s = {N / (t1 - t0):,.0f} events/s"
              f" ({out.stdout.strip()})")
        print(f"pipeline: {N} events applied by every stage in {t2 - t0:.2f} s = "
              f"{N / (t2 - t0):,.0f} events/s end to end")
    finally:
        subprocess.run([os.path.join(BIN, "licmonctl"), "down", "--dir", folder],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
