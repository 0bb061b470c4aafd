#!/usr/bin/env python3
"""End-to-end benchmarks on the real programs. Prints numbers; asserts
nothing about time (the machine is shared and noisy).

  ingest       events/s acknowledged by one `licmonctl send` of a file (journal synced)
  pipeline     events/s from the first send until `licmonctl wait` returns (all stages)
  sessionizer  journal records/s through the sessionizer alone (catching up on a journal
               of logins, committing its state), and its RSS with 1,000,000 open sessions
"""
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = os.path.abspath(os.environ.get("LICMON_BIN", "build/bin"))
N = int(os.environ.get("LICMON_BENCH_EVENTS", "200000"))
SESSIONS = int(os.environ.get("LICMON_BENCH_SESSIONS", "1000000"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ctl(*args, **kw):
    return subprocess.run([os.path.join(BIN, "licmonctl"), *args], check=True,
                          capture_output=True, text=True, **kw)


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_mixed(path, n, users=5000, types=("creator", "reviewer", "stakeholder")):
    rnd = random.Random(42)
    t = int(time.time() * 1000) - 3 * 86400 * 1000
    state = set()
    with open(path, "w") as f:
        for i in range(n):
            u = f"user{rnd.randrange(users):05d}@bench.example"
            t += rnd.randrange(0, 40)
            e = {"event_id": f"b{i}", "org": "bench", "user": u, "ts": t}
            if u not in state:
                e.update(kind="login", license_type=rnd.choice(types))
                state.add(u)
            elif rnd.random() < 0.1:
                e["kind"] = "logout"
                state.discard(u)
            else:
                e["kind"] = "activity"
            f.write(json.dumps(e, separators=(",", ":")) + "\n")


def make_logins(path, n):
    t = int(time.time() * 1000) - 3600 * 1000
    with open(path, "w") as f:
        for i in range(n):
            f.write('{"event_id":"s%d","org":"bench","user":"user%07d@bench.example",'
                    '"ts":%d,"kind":"login","license_type":"creator"}\n' % (i, i, t + i // 1000))


def bench_stack(folder):
    data = os.path.join(folder, "events.ndjson")
    make_mixed(data, N)
    ctl("up", "--dir", folder, "--http", f"127.0.0.1:{free_port()}", "--bin", BIN)
    try:
        t0 = time.perf_counter()
        out = ctl("send", "--dir", folder, data, timeout=900)
        t1 = time.perf_counter()
        ctl("wait", "--dir", folder, "--timeout", "900", timeout=1000)
        t2 = time.perf_counter()
    finally:
        subprocess.run([os.path.join(BIN, "licmonctl"), "down", "--dir", folder],
                       capture_output=True)
    print(f"ingest: {N} events acknowledged in {t1 - t0:.2f} s = {N / (t1 - t0):,.0f} events/s"
          f" ({out.stdout.strip()})")
    print(f"pipeline: {N} events applied by every stage in {t2 - t0:.2f} s = "
          f"{N / (t2 - t0):,.0f} events/s end to end")


def bench_sessionizer(folder):
    data = os.path.join(folder, "logins.ndjson")
    make_logins(data, SESSIONS)
    hp_i, hp_s = free_port(), free_port()
    logs = open(os.path.join(folder, "bench.log"), "w")
    ingest = subprocess.Popen([os.path.join(BIN, "licmon-ingest"), "--dir", folder,
                               "--health", f"127.0.0.1:{hp_i}"], stderr=logs)
    sess = None
    try:
        time.sleep(0.5)
        ctl("send", "--dir", folder, "--batch", "10000", data, timeout=1800)
        head = metric(hp_i, "licmon_ingest_journal_head_seq")
        t0 = time.perf_counter()
        sess = subprocess.Popen([os.path.join(BIN, "licmon-sessionizer"), "--dir", folder,
                                 "--health", f"127.0.0.1:{hp_s}"], stderr=logs)
        applied = 0
        while applied < head:
            time.sleep(0.05)
            try:
                applied = metric(hp_s, "licmon_stage_applied_journal_seq") or 0
            except OSError:
                pass
        t1 = time.perf_counter()
        rss = rss_mb(sess.pid)
        print(f"sessionizer: {SESSIONS} journaled events ({head} group commits) applied in "
              f"{t1 - t0:.2f} s = {SESSIONS / (t1 - t0):,.0f} events/s "
              "(state committed with each fetch)")
        print(f"sessionizer: {SESSIONS:,} open sessions in {rss:.0f} MB RSS "
              f"({rss * 1024 * 1024 / SESSIONS:.0f} bytes per session)")
    finally:
        for p in (sess, ingest):
            if p:
                p.terminate()
                p.wait(30)
        logs.close()


def main():
    for fn in (bench_stack, bench_sessionizer):
        folder = tempfile.mkdtemp(prefix="lm-bench-", dir="/tmp")
        try:
            fn(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
