#!/usr/bin/env python3
"""End-to-end benchmarks on the real programs. Prints numbers; asserts
nothing about time (the machine is shared and noisy).

  ingest       events/s acknowledged by one `licmonctl send` of a file (journal synced)
  pipeline     events/s from the first send until `licmonctl wait` returns (all stages)
  sessionizer  journal records/s through the sessionizer alone (catching up on a journal,
               committing its state): a realistic mix and the all-new-logins worst case,
               and its RSS with 1,000,000 open sessions
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


def rss_mb(pid, field="VmRSS"):
    """A process's resident memory in MB (VmHWM: its peak so far)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
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


def sessionizer_catch_up(folder, data):
    """Journals `data` through a lone ingest, then times a fresh sessionizer
    catching up on that journal (state committed with each fetch). Returns
    (seconds, (RSS MB when caught up, peak RSS MB, RSS MB 3 s later), CPU seconds of
    the sessionizer)."""
    hp_i, hp_s = free_port(), free_port()
    logs = open(os.path.join(folder, "bench.log"), "a")
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
            time.sleep(0.02)
            try:
                applied = metric(hp_s, "licmon_stage_applied_journal_seq") or 0
            except OSError:
                pass
        t1 = time.perf_counter()
        with open(f"/proc/{sess.pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        rss = rss_mb(sess.pid)
        time.sleep(3)  # settled: RocksDB has flushed what the catch-up left in memtables
        return t1 - t0, (rss, rss_mb(sess.pid, "VmHWM"), rss_mb(sess.pid)), cpu
    finally:
        for p in (sess, ingest):
            if p:
                p.terminate()
                p.wait(30)
        logs.close()


def bench_sessionizer(folder):
    """Two journals: a realistic mix (5,000 users logging in, active, logging
    out: most events touch a user already open), and the worst case, every
    event the login of a new user (each one a new session, a new hold, two
    session records out and a new saved state), which also leaves 1,000,000
    sessions open for the memory number."""
    for name, make, what in (
            ("mixed", make_mixed, "journaled events of the mixed workload"),
            ("logins", make_logins, "logins of new users (worst case)")):
        sub = os.path.join(folder, name)
        os.makedirs(sub)
        data = os.path.join(sub, name + ".ndjson")
        make(data, SESSIONS)
        secs, rss, cpu = sessionizer_catch_up(sub, data)
        print(f"sessionizer: {SESSIONS:,} {what} applied in {secs:.2f} s = "
              f"{SESSIONS / secs:,.0f} events/s ({SESSIONS / cpu:,.0f} per CPU second of the "
              "sessionizer, RocksDB threads included)")
    print(f"sessionizer: {SESSIONS:,} open sessions in {rss[2]:.0f} MB RSS "
          f"({rss[2] * 1024 * 1024 / SESSIONS:.0f} bytes per session); {rss[0]:.0f} MB when it "
          f"had just caught up, peak {rss[1]:.0f} MB")


def bench_exporter_stack(folder):
    """The exporter on a real stack with a year of history: GET usage of 365
    days at a fixed 1,000 requests/s (bench_exporter's open-loop client,
    latency counted from when each request was due) and at full speed
    (wrk --latency), and the export of that year as csv and xlsx."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    subprocess.run(["sh", os.path.join(root, "tools", "install-deps.sh"),
                    os.path.join(root, "tools", "deps-bench.txt")], check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ctl("up", "--dir", folder, "--http", f"127.0.0.1:{port}", "--bin", BIN)
    try:
        ctl("settings", "--dir", folder, "bench", "--set", json.dumps({
            "timezone": "Europe/Berlin",
            "licenses": [{"type": "creator", "owned": 50}, {"type": "reviewer", "owned": 20}]}))
        rnd = random.Random(7)
        day0 = int(time.time() * 1000) - 364 * 86400 * 1000
        events = []
        for d in range(365):
            for k in range(rnd.randrange(20, 60)):
                t = day0 + d * 86400 * 1000 + rnd.randrange(6, 18) * 3600 * 1000 + k * 1000
                u = f"user{rnd.randrange(400):03d}@bench.example"
                events.append({"event_id": f"x{d}-{k}", "org": "bench", "user": u, "ts": t,
                               "kind": "login", "license_type": rnd.choice(["creator", "reviewer"])})
                events.append({"event_id": f"y{d}-{k}", "org": "bench", "user": u,
                               "ts": t + rnd.randrange(5, 240) * 60000, "kind": "logout"})
        events.sort(key=lambda e: e["ts"])
        data = os.path.join(folder, "year.ndjson")
        with open(data, "w") as f:
            for e in events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
        ctl("send", "--dir", folder, data, timeout=900)
        ctl("wait", "--dir", folder, "--timeout", "900", timeout=1000)
        with open(os.path.join(folder, "admin.token")) as f:
            token = f.read().strip()
        path = "/v1/orgs/bench/usage?period=365d&type=creator"
        loadgen = os.path.join(BIN, "..", "bench", "bench_exporter")
        if os.path.exists(loadgen):
            out = subprocess.run([loadgen, "--url", url, "--token", token, "--path", path,
                                  "--rate", "1000", "--seconds", "10"],
                                 capture_output=True, text=True, timeout=120)
            print(out.stdout.strip() or out.stderr.strip())
        wrk = subprocess.run(["wrk", "--latency", "-t", "2", "-c", "8", "-d", "10s", "-H",
                              f"Authorization: Bearer {token}", url + path],
                             capture_output=True, text=True, timeout=60)
        lat = re.search(r"Latency Distribution\s+((?:\s*\d+%\s+\S+\n)+)", wrk.stdout)
        rps = re.search(r"Requests/sec:\s+(\S+)", wrk.stdout)
        print("exporter: wrk GET usage 365 days, 8 connections, as fast as it goes: "
              f"{rps.group(1) if rps else '?'} requests/s; latency "
              + (", ".join(" ".join(x.split()) for x in lat.group(1).strip().splitlines())
                 if lat else wrk.stdout.strip()))
        n = len(events) // 2
        for fmt in ("csv", "xlsx"):
            req = urllib.request.Request(f"{url}/v1/orgs/bench/export?format={fmt}&period=365d",
                                         headers={"Authorization": f"Bearer {token}"})
            t0 = time.perf_counter()
            size = len(urllib.request.urlopen(req, timeout=600).read())
            print(f"exporter: real stack export {fmt} of a year ({n:,} sessions): "
                  f"{time.perf_counter() - t0:.2f} s, {size / 1e6:.1f} MB")
    finally:
        subprocess.run([os.path.join(BIN, "licmonctl"), "down", "--dir", folder],
                       capture_output=True)


def main():
    """Runs every benchmark, or those named on the command line (stack,
    sessionizer, exporter_stack)."""
    only = sys.argv[1:]
    for fn in (bench_stack, bench_sessionizer, bench_exporter_stack):
        if only and fn.__name__[len("bench_"):] not in only:
            continue
        folder = tempfile.mkdtemp(prefix="lm-bench-", dir="/tmp")
        try:
            fn(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
