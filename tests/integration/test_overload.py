"""Overload: producers sending far faster than the pipeline drains. What must
hold (ARCHITECTURE.md, "Delivery and state"): memory stays bounded, nothing
is dropped, and the excess waits somewhere durable instead.

Where the excess waits, by design: ingest acknowledges a batch once it is in
the journal (RocksDB, on disk), whatever the stages behind it are doing; the
sessionizer, aggregator and alerter pull pages of their upstream's log only
after committing the previous one. So a backlog is journal on disk, never a
queue in memory, and the producers' acks are paced by ingest's own work
(validation, the duplicate index, one fsync per group), not by the stages'
lag: acks do not slow down when the stages fall behind, the journal grows
on disk, not in memory — until it holds --max-backlog-mb (default 4 GB) that
the sessionizer has not applied; then ingest stops reading producers and
their acks wait (tests/integration/test_backlog.py).
What a producer can make a program hold in memory is what ingest lets sit in
its receive queue, and the size of one group commit, which becomes one
journal chunk that every stage then handles in one piece.

Producers, written against the producer protocol of README.md with pyzmq
(events encoded by hand as protobuf), each event moving a seat (login,
switch, logout: the stages' most expensive kind):
  - well-behaved: 4 connections, at most 4 unacknowledged batches each (as
    `licmonctl send` does), 1,000 events a batch, as fast as acks come;
  - greedy: one connection that sends every batch at once without waiting
    for any ack (a misbehaving or hostile producer), small frames, then big
    ones (3.5 MB, 10,000 events of long ids).
Every program's RSS is sampled all along and printed with the ack rate, the
ack latency, the backlog and the journal size. The tests assert a generous
RSS bound for every program, that every event was acknowledged and accepted
once, that every stage applied the whole journal, and that the usage rows
count every login and logout exactly once."""
import os
import re
import threading
import time

import pytest
import requests
import zmq

from conftest import PROGRAMS
from pbwire import field_bytes, field_varint, fields

RSS_LIMIT_MB = 768  # any program, any producer: generous (RocksDB memtables alone take 128)
BIG_FRAMES_INGEST_LIMIT_MB = 400  # ingest while a greedy producer queues 210 MB of big frames
ASAN_FACTOR = 2.5  # under AddressSanitizer (make test SANITIZE=1): shadow, redzones, quarantine


def asan_factor(pid):
    """ASAN_FACTOR when the program runs under AddressSanitizer, else 1."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return ASAN_FACTOR if "libasan" in f.read() else 1
    except OSError:
        return 1


def encode_event(event_id, org, user, ts, kind, license_type=None):
    b = field_bytes(1, event_id.encode()) + field_bytes(2, org.encode()) + \
        field_bytes(3, user.encode()) + field_varint(4, ts) + field_varint(5, kind)
    if license_type:
        b += field_bytes(6, license_type.encode())
    return b


def encode_batch(batch_id, events):
    return field_varint(1, batch_id) + b"".join(field_bytes(2, e) for e in events)


def decode_ack(data):
    """{field number: value} of a BatchAck's varint fields (1-4) and its
    error (6)."""
    out = {}
    for num, v in fields(data):
        if isinstance(v, int):
            out[num] = v
        elif num == 6:
            out[6] = v.decode(errors="replace")
    return out


def make_batches(org, n_events, batch, users, t0, pad=""):
    """Batches of events of org in time order, heavy on what costs the stages
    most (every event moves a seat): users log in with one type, switch to
    another, log out, round-robin over `users` users; every user ends
    logged out. Returns (batches, number of logins, number of logouts)."""
    types = ("creator", "reviewer")
    evs, ts, logins, logouts, open_ = [], t0, 0, 0, set()
    for k in range(n_events):
        u, step = k % users, (k // users) % 3
        if k >= n_events - users and step != 2:
            step = 2  # the last round logs everybody out
        eid, user = f"{org}-{k}-{pad[:100]}", f"u{u}{pad}"
        if step == 2:
            evs.append(encode_event(eid, org, user, ts, 3))
            logouts += u in open_  # else an orphan: nothing to end
            open_.discard(u)
        else:
            evs.append(encode_event(eid, org, user, ts, 1, types[step]))
            logins += 1
            open_.add(u)
        ts += 7
    return [evs[i:i + batch] for i in range(0, len(evs), batch)], logins, logouts


class Producer(threading.Thread):
    """Sends its batches over one DEALER with at most `window` unacknowledged
    (0: all at once); records ack times."""

    def __init__(self, endpoint, batches, window, first_id):
        super().__init__(daemon=True)
        self.endpoint, self.window = endpoint, window
        self.frames = [encode_batch(first_id + i, b) for i, b in enumerate(batches)]
        self.first_id = first_id
        self.n_events = sum(len(b) for b in batches)
        self.acks = []      # (time acked, latency s, accepted, duplicate, rejected)
        self.error = None

    def run(self):
        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)  # the greedy one queues everything at once
        s.connect(self.endpoint)
        sent_at = {}
        nxt, done = 0, 0
        try:
            while done < len(self.frames):
                while nxt < len(self.frames) and (self.window == 0 or
                                                  nxt - done < self.window):
                    sent_at[self.first_id + nxt] = time.time()
                    s.send(self.frames[nxt], copy=False)
                    nxt += 1
                if not s.poll(300000):
                    raise AssertionError("no ack for 300 s")
                a = decode_ack(s.recv())
                if a.get(6):
                    raise AssertionError(f"batch refused: {a[6]}")
                now = time.time()
                self.acks.append((now, now - sent_at.pop(a.get(1, 0), now), a.get(2, 0),
                                  a.get(3, 0), a.get(4, 0)))
                done += 1
        except Exception as e:
            self.error = e
        finally:
            s.close()


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
        return int(m.group(1)) / 1024 if m else None
    except OSError:
        return None


def du_mb(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total / 1e6


def metric(stack, program, name):
    import json
    with open(os.path.join(stack.dir, "stack.json")) as f:
        hp = json.load(f)["health"][program]
    text = requests.get(f"http://{hp}/metrics", timeout=10).text
    m = re.search(r"^" + re.escape(name) + r"\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else None


class Sampler(threading.Thread):
    def __init__(self, stack, pids):
        super().__init__(daemon=True)
        self.stack, self.pids = stack, pids
        self.samples = []  # (t, {program: rss MB}, journal MB)
        self.factor = max(asan_factor(pid) for pid in pids.values())
        self.stop = threading.Event()

    def run(self):
        t0 = time.time()
        while not self.stop.wait(0.25):
            self.samples.append((time.time() - t0,
                                 {p: rss_mb(pid) for p, pid in self.pids.items()},
                                 du_mb(os.path.join(self.stack.dir, "data", "ingest"))))

    def peak(self, program):
        return max((s[1][program] or 0) for s in self.samples)


def run_overload(stack, producers, label):
    pids = {p: stack.pid(p) for p in PROGRAMS}
    assert all(pids.values()), pids
    base = {p: rss_mb(pid) for p, pid in pids.items()}
    sampler = Sampler(stack, pids)
    sampler.start()
    t0 = time.time()
    for p in producers:
        p.start()
    for p in producers:
        p.join(timeout=900)
        assert not p.is_alive(), f"{label}: a producer did not finish"
        assert p.error is None, f"{label}: {p.error}"
    t_acked = time.time() - t0
    lag_at_ack = stage_lag(stack)
    head = lag_at_ack["journal head"]
    stack.wait(timeout=600)
    t_applied = time.time() - t0
    sampler.stop.set()
    sampler.join()
    # every pid is the one we started with: nothing was restarted (OOM, crash)
    assert {p: stack.pid(p) for p in PROGRAMS} == pids, f"{label}: a program was restarted"
    n = sum(p.n_events for p in producers)
    acc = sum(a[2] for p in producers for a in p.acks)
    dup = sum(a[3] for p in producers for a in p.acks)
    rej = sum(a[4] for p in producers for a in p.acks)
    lat = sorted(a[1] for p in producers for a in p.acks)
    print(f"\n== overload, {label}: {n} events in {sum(len(p.frames) for p in producers)} "
          f"batches over {len(producers)} connection(s)")
    print(f"   all acknowledged after {t_acked:.1f} s ({n / t_acked:,.0f} events/s acked), "
          f"all applied by every stage after {t_applied:.1f} s ({n / t_applied:,.0f} events/s)")
    print(f"   ack latency: median {lat[len(lat) // 2] * 1000:.0f} ms, "
          f"p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")
    print(f"   backlog when the last ack came: {lag_at_ack}")
    print(f"   journal on disk: peak {max(s[2] for s in sampler.samples):.0f} MB")
    # ack rate over time, per 2 s
    times = sorted(a[0] - t0 for p in producers for a in p.acks)
    evs_per = n / max(1, len(times))
    buckets = {}
    for t in times:
        buckets[int(t // 2)] = buckets.get(int(t // 2), 0) + evs_per
    print("   acked events/s per 2 s: " +
          " ".join(f"{v / 2:,.0f}" for _, v in sorted(buckets.items())[:30]))
    mid = sampler.samples[len(sampler.samples) // 2][1]
    if sampler.factor != 1:
        print(f"   (AddressSanitizer build: RSS limits x {sampler.factor})")
    print("   RSS MB (start -> middle -> peak -> end):")
    for p in PROGRAMS:
        print(f"     {p:<12} {base[p]:7.1f} -> {mid[p] or 0:7.1f} -> {sampler.peak(p):7.1f} -> "
              f"{sampler.samples[-1][1][p] or 0:7.1f}")
    assert acc == n and dup == 0 and rej == 0, (label, acc, dup, rej, n)
    for prog in ("sessionizer", "aggregator", "alerter"):
        applied = metric(stack, prog, "licmon_stage_applied_journal_seq")
        assert applied is not None and applied >= head, (prog, applied, head)
    return sampler


def stage_lag(stack):
    head = metric(stack, "ingest", "licmon_ingest_journal_head_seq")
    out = {"journal head": head}
    for prog in ("sessionizer", "aggregator", "alerter"):
        a = metric(stack, prog, "licmon_stage_applied_journal_seq")
        out[prog] = head - a if a is not None and head is not None else None
    return out


def producer_endpoint(stack):
    import json
    with open(os.path.join(stack.dir, "stack.json")) as f:
        return json.load(f)["producer"]


def check_counts(stack, org, logins, logouts, t0, t1):
    """Every login and logout of org counted exactly once, nobody left holding."""
    import datetime as dt
    d0 = dt.datetime.fromtimestamp(t0 / 1000, dt.timezone.utc).date().isoformat()
    d1 = dt.datetime.fromtimestamp(t1 / 1000, dt.timezone.utc).date().isoformat()
    lic = stack.get(f"/v1/orgs/{org}/licenses").json()
    assert lic["in_use_all"] == 0, (org, lic)
    r = stack.get(f"/v1/orgs/{org}/usage?type=all&granularity=day&from={d0}&to={d1}")
    if r.status_code == 501:
        return
    rows = r.json()["rows"]
    got = (sum(x["logins"] for x in rows), sum(x["logouts"] for x in rows))
    assert got == (logins, logouts), (org, got, (logins, logouts))


def test_overload_memory_bounded_nothing_dropped(stack):
    ep = producer_endpoint(stack)
    t0 = int(time.time() * 1000) - 3 * 86400000
    n_per, users = int(os.environ.get("LICMON_OVERLOAD_EVENTS", "250000")), 2000
    # well-behaved: four connections, four batches in flight each
    made = [make_batches(f"fast{i}", n_per, 1000, users, t0) for i in range(4)]
    prods = [Producer(ep, m[0], 4, 1 + i * 10 ** 6) for i, m in enumerate(made)]
    s1 = run_overload(stack, prods, "well-behaved producers (4 x window 4)")
    for i, m in enumerate(made):
        check_counts(stack, f"fast{i}", m[1], m[2], t0, t0 + 7 * n_per)
    # greedy: everything at once on one connection, no waiting for acks
    g = make_batches("greedy", n_per * 2, 5000, users, t0)
    s2 = run_overload(stack, [Producer(ep, g[0], 0, 9 * 10 ** 6)],
                      "one greedy producer (no window), 200 KB frames")
    check_counts(stack, "greedy", g[1], g[2], t0, t0 + 14 * n_per)
    for s in (s1, s2):
        for p in PROGRAMS:
            assert s.peak(p) < RSS_LIMIT_MB * s.factor, f"{p} peaked at {s.peak(p):.0f} MB"


def test_greedy_producer_with_big_frames_keeps_ingest_small(stack):
    """A producer that queues 60 frames of 3.5 MB (210 MB) without waiting
    for acks must not make ingest hold them all in memory: ingest should stop
    reading a connection that has a few frames waiting (TCP pushes back on
    the producer), and keep each group commit (one journal chunk, handled in
    one piece by every stage) to a few MB."""
    ep = producer_endpoint(stack)
    t0 = int(time.time() * 1000) - 3 * 86400000
    batches, logins, logouts = make_batches("big", 600000, 10000, 500, t0, pad="x" * 200)
    s = run_overload(stack, [Producer(ep, batches, 0, 1)], "one greedy producer, 3.5 MB frames")
    check_counts(stack, "big", logins, logouts, t0, t0 + 7 * 600000)
    with open(os.path.join(stack.dir, "logs", "sessionizer.log")) as f:
        retries = f.read().count("reconnecting")
    print(f"   the sessionizer's fetches of the journal timed out {retries} times")
    assert s.peak("ingest") < BIG_FRAMES_INGEST_LIMIT_MB * s.factor, \
        f"ingest peaked at {s.peak('ingest'):.0f} MB while a producer queued 210 MB"
    for p in PROGRAMS:
        assert s.peak(p) < RSS_LIMIT_MB * s.factor, f"{p} peaked at {s.peak(p):.0f} MB"
