"""The chaos test's machinery, shared by its short form (tests/integration/
test_chaos.py, in `make test`) and its long form (tests/soak/, `make soak`):
a real stack under `licmonctl up`, one ordered `licmonctl send` per org, a
seeded kill -9 driver, a snapshot of every HTTP API answer, and the
comparisons (chaos run against a run without kills, both against the
workload's own model). See chaos_workload.py for why the comparison is
valid."""
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from zoneinfo import ZoneInfo

import requests

from chaos_workload import ORGS, Workload

PROGRAMS = ["ingest", "sessionizer", "aggregator", "alerter", "exporter"]
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


def bin_dir():
    b = os.environ.get("LICMON_BIN") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "build", "bin")
    return os.path.abspath(b)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(*a):
    print(*a, flush=True)


class Stack:
    """A stack under `licmonctl up` in its own folder."""

    def __init__(self, folder, name):
        self.dir = folder
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bin = bin_dir()
        self.token = None
        self.session = requests.Session()

    def ctl(self, *args, timeout=120, check=True):
        p = subprocess.run([os.path.join(self.bin, "licmonctl"), *args], capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"[{self.name}] licmonctl {' '.join(args)} exited "
                                 f"{p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def up(self):
        self.ctl("up", "--dir", self.dir, "--http", f"127.0.0.1:{self.port}", "--bin", self.bin,
                 timeout=180)
        with open(os.path.join(self.dir, "admin.token")) as f:
            self.token = f.read().strip()

    def down(self):
        return self.ctl("down", "--dir", self.dir, check=False, timeout=90)

    def request(self, method, path, body=None, tries=120):
        """An API call that rides out an exporter being restarted: connection
        errors and 5xx other than 501 are retried for up to about a minute."""
        headers = {"Authorization": f"Bearer {self.token}"}
        last = None
        for _ in range(tries):
            try:
                r = self.session.request(method, self.url + path, headers=headers, timeout=60,
                                         data=None if body is None else json.dumps(body))
                if r.status_code < 500 or r.status_code == 501:
                    return r
                last = f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.5)
        raise AssertionError(f"[{self.name}] {method} {path}: no answer: {last}")

    def pid(self, program):
        exe = f"licmon-{program}"
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                if argv and os.path.basename(argv[0].decode()) == exe and \
                        self.dir.encode() in argv:
                    with open(f"/proc/{d}/stat") as f:
                        if f.read().split(") ")[1].split()[0] == "Z":
                            continue
                    return int(d)
            except (OSError, IndexError):
                continue
        return None

    def logs(self):
        out = {}
        d = os.path.join(self.dir, "logs")
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), errors="replace") as f:
                out[name] = f.read().splitlines()
        return out

    def problems(self):
        """Sanitizer reports, and fatal / panic log lines (a clean restart
        never needs one)."""
        found = []
        for name, lines in self.logs().items():
            for line in lines:
                if any(m in line for m in SANITIZER_MARKS) or \
                        '"level":"panic"' in line or '"level":"fatal"' in line:
                    found.append(f"{name}: {line.strip()[:400]}")
        return found

    def restarts(self):
        n = {}
        for line in self.logs().get("supervisor.log", []):
            m = re.search(r'"child":"([a-z]+)".*restarting in', line)
            if m:
                n[m.group(1)] = n.get(m.group(1), 0) + 1
        return n


def proc_age_s(pid):
    """Seconds since process pid started, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            start = int(f.read().split(") ")[1].split()[19])
        with open("/proc/uptime") as f:
            up = float(f.read().split()[0])
        return up - start / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            v = f.read().split(") ")[1].split()
        return int(v[11]) + int(v[12])
    except (OSError, IndexError, ValueError):
        return None


class KillDriver(threading.Thread):
    """kill -9 of seeded random programs at seeded random moments. The plan
    names every program at least twice. Each item is one of:
      running - whenever its delay is up;
      busy    - once the program is seen using CPU (it is applying, writing,
                answering), waiting up to 3 s for that;
      startup - kills it, waits for the supervisor to start it again, and
                kills the new process within its first 300 ms (while it opens
                its database and recovers): two kills.
    Runs until the plan is done (the stream may be over by then: the stages
    are still catching up)."""

    def __init__(self, stack, rng, kills, delay=(0.3, 2.5)):
        super().__init__(daemon=True)
        self.stack, self.rng = stack, rng
        plan = PROGRAMS * 2
        plan += [rng.choice(PROGRAMS) for _ in range(max(0, kills - len(plan)))]
        rng.shuffle(plan)
        self.plan = [(p, rng.choices(["running", "busy", "startup"], [3, 4, 3])[0])
                     for p in plan]
        self.delay = delay
        self.log = []  # (seconds since start, program, pid, kind, process age s)
        self.error = None
        self.stop = threading.Event()

    def _wait_pid(self, program, not_pid=None, timeout=60):
        end = time.time() + timeout
        while time.time() < end and not self.stop.is_set():
            p = self.stack.pid(program)
            if p and p != not_pid:
                return p
            time.sleep(0.01)
        return None

    def _wait_busy(self, pid, timeout=3.0):
        """True once pid used CPU within a 20 ms window."""
        end = time.time() + timeout
        last = cpu_ticks(pid)
        while last is not None and time.time() < end:
            time.sleep(0.02)
            now = cpu_ticks(pid)
            if now is None:
                return False
            if now > last:
                return True
            last = now
        return False

    def _kill(self, program, pid, kind, t0):
        age = proc_age_s(pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.log.append((round(time.time() - t0, 2), program, pid, kind,
                         None if age is None else round(age, 2)))
        return True

    def run(self):
        t0 = time.time()
        try:
            for program, kind in self.plan:
                if self.stop.wait(self.rng.uniform(*self.delay)):
                    return
                pid = self._wait_pid(program)
                if not pid:
                    raise AssertionError(f"{program} did not come back within 60 s")
                how = "running"
                if kind == "busy":
                    how = "busy" if self._wait_busy(pid) else "running"
                if not self._kill(program, pid, how, t0):
                    continue
                if kind == "startup":
                    new = self._wait_pid(program, not_pid=pid)
                    if not new:
                        raise AssertionError(f"{program} was not restarted within 60 s")
                    time.sleep(self.rng.uniform(0.0, 0.3))
                    self._kill(program, new, "startup", t0)
        except Exception as e:  # reported by the test
            self.error = e

    def summary(self):
        by = {}
        for _, p, _, kind, _ in self.log:
            d = by.setdefault(p, {})
            d[kind] = d.get(kind, 0) + 1
        return by


def send_all(stack, workload, batch, duration=0.0):
    """Starts one ordered `licmonctl send -` per org, fed on stdin by a thread
    that spreads the org's events over `duration` seconds (0: as fast as the
    sender takes them), so that kills fall while the stream flows. Returns
    {org: (Popen, feeder thread)}."""
    procs = {}
    for org, evs in workload.events.items():
        out = open(os.path.join(stack.dir, f"send-{org}.out"), "w+")
        err = open(os.path.join(stack.dir, f"send-{org}.err"), "w+")
        p = subprocess.Popen(
            [os.path.join(stack.bin, "licmonctl"), "send", "--dir", stack.dir, "--batch",
             str(batch), "--timeout-ms", "4000", "--retries", "100000", "-"],
            stdin=subprocess.PIPE, stdout=out, stderr=err, text=True)
        p.outfiles = (out, err)
        lines = [json.dumps(e, separators=(",", ":")) + "\n" for e in evs]

        def feed(p=p, lines=lines):
            # waves: every 2 s a share of the stream at full speed, so the
            # stages work hard part of the time and kills find them busy
            waves = max(1, int(duration / 2))
            t0 = time.time()
            try:
                for w in range(waves):
                    lag = t0 + duration * w / waves - time.time()
                    if lag > 0:
                        time.sleep(lag)
                    a, b = len(lines) * w // waves, len(lines) * (w + 1) // waves
                    p.stdin.write("".join(lines[a:b]))
                    p.stdin.flush()
                p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        th = threading.Thread(target=feed, daemon=True)
        th.start()
        procs[org] = (p, th)
    return procs


def collect_sends(procs, workload, timeout):
    """Waits for the senders; checks every event was acknowledged (accepted
    once, or reported as a duplicate of itself after a resend)."""
    totals = {}
    end = time.time() + timeout
    for org, (p, th) in procs.items():
        th.join(timeout=max(1, end - time.time()))
        p.wait(timeout=max(1, end - time.time()))
        for f in p.outfiles:
            f.seek(0)
        out, err = (f.read() for f in p.outfiles)
        for f in p.outfiles:
            f.close()
        assert p.returncode == 0, f"send {org} exited {p.returncode}: {err[-2000:]}"
        m = re.search(r"accepted (\d+), duplicate (\d+), rejected (\d+)", out)
        assert m, out
        acc, dup, rej = map(int, m.groups())
        n = len(workload.events[org])
        assert rej == 0 and acc + dup == n, (org, acc, dup, rej, n, err[-2000:])
        totals[org] = {"accepted": acc, "duplicate": dup,
                       "resends": err.count("resending")}
    return totals


def hour_sample(workload, org, rng, n):
    """(date, hour) pairs for minute queries: busy local hours, the DST hours
    of the change day, and the hour of the sentinel."""
    tz = ZoneInfo(ORGS[org]["settings"]["timezone"])
    evs = workload.events[org]
    seen = []
    for e in evs:
        t = dt.datetime.fromtimestamp(e["ts"] / 1000, tz)
        key = (t.date().isoformat(), t.hour)
        if not seen or seen[-1] != key:
            seen.append(key)
    picks = set(rng.sample(seen, min(n, len(seen))))
    picks.add(seen[-1])
    return sorted(picks)


def snapshot(stack, workload, rng_seed, minute_hours=6):
    """Every API answer the comparison looks at, keyed by request path.
    Answers that depend on the wall clock lose those fields
    (session_length_s). A 501 (endpoint not served yet) is kept as such."""
    rng = random.Random(rng_seed)
    snap = {}

    def get(path):
        r = stack.request("GET", path)
        if r.status_code == 501:
            snap[path] = "501"
            return None
        assert r.status_code == 200, f"[{stack.name}] GET {path}: {r.status_code} {r.text[:300]}"
        if r.headers.get("Content-Type", "").startswith("application/x-ndjson"):
            body = [json.loads(x) for x in r.text.splitlines() if x.strip()]
        else:
            body = r.json()
        snap[path] = body
        return body

    for org in ORGS:
        base = f"/v1/orgs/{org}"
        dates = workload.local_dates(org)
        first, last = dates[0].isoformat(), dates[-1].isoformat()
        get(f"{base}/licenses")
        cur = get(f"{base}/current")
        if cur is not None:
            for s in cur.get("sessions", []):
                s.pop("session_length_s", None)
            cur["sessions"] = sorted(cur.get("sessions", []),
                                     key=lambda s: (s.get("session_id") or "", s.get("user")))
        types = workload.types(org) + ["all"]
        hours = hour_sample(workload, org, rng, minute_hours)
        for t in types:
            if get(f"{base}/usage?type={t}&granularity=day&from={first}&to={last}") is None:
                continue
            for d in dates:
                get(f"{base}/usage?type={t}&granularity=hour&date={d.isoformat()}")
            for d, h in hours:
                get(f"{base}/usage?type={t}&granularity=minute&date={d}&hour={h}")
        for t in types:
            if get(f"{base}/stats?type={t}&from={first}&to={last}") is None:
                break
        ses = get(f"{base}/sessions?from={first}&to={last}")
        if isinstance(ses, dict) and "sessions" in ses:
            ses = ses["sessions"]
        if isinstance(ses, list):
            snap[f"{base}/sessions?from={first}&to={last}"] = sorted(
                ses, key=lambda s: (s.get("session_id") or "", s.get("user") or ""))
    return snap


def diff(a, b, path="", out=None, limit=40):
    """Differences between two JSON values, as readable lines."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'reference' if k in a else 'chaos'}")
            else:
                diff(a[k], b[k], f"{path}.{k}", out, limit)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items in the reference, {len(b)} after chaos")
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out, limit)
    elif a != b:
        out.append(f"{path}: reference {json.dumps(a)[:200]} != chaos {json.dumps(b)[:200]}")
    return out


def ms(v):
    """An API instant (RFC 3339, or a label like 2026-10-25T11:00+01:00) in ms."""
    if v in (None, ""):
        return None
    if isinstance(v, (int, float)):
        return int(v)
    return int(round(dt.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000))


ROW_FIELDS = ("peak", "in_use_end", "users", "logins", "logouts", "user_timeouts",
              "license_timeouts", "denials", "denied_users", "downgrades", "downgraded_users")
SESSION_FIELDS = ("user", "license_type", "requested_type", "start", "last_activity", "end",
                  "end_reason", "user_inactivity_s", "license_inactivity_s",
                  "license_released_at", "license_tail_s")


def check_model(snap, workload):
    """The pipeline's answers against the workload's own model
    (chaos_workload.UserModel and Workload.row): every field of every usage
    row (day, hour and minute), every session record, the seats and the
    sessions open at the end, the denial and downgrade cards. This is what
    "every acknowledged event applied exactly once" means in numbers: one
    login lost or doubled changes a count, a peak or a session. Returns
    (problems, what was checked)."""
    problems, checked = [], {}

    def bad(msg):
        if len(problems) < 60:
            problems.append(msg)

    def tick(what, n=1):
        checked[what] = checked.get(what, 0) + n

    for org in ORGS:
        base = f"/v1/orgs/{org}"
        dates = workload.local_dates(org)
        first, last = dates[0].isoformat(), dates[-1].isoformat()
        lic = snap.get(f"{base}/licenses")
        if isinstance(lic, dict):
            tick("licenses answers")
            want = workload.holding(org)
            got = {r["type"]: r["in_use"] for r in lic["licenses"] if r["in_use"]}
            if got != want or lic.get("in_use_all") != sum(want.values()):
                bad(f"{org} /licenses in_use {got} (all {lic.get('in_use_all')}) != model {want}")
        ses = snap.get(f"{base}/sessions?from={first}&to={last}")
        recs = workload.session_records(org, [s["session_id"] for s in ses]
                                        if isinstance(ses, list) else None)
        cur = snap.get(f"{base}/current")
        if isinstance(cur, dict):
            tick("current answers")
            want = {sid: r for sid, r in recs.items() if r["end_reason"] == "open"}
            got = {s["session_id"]: s for s in cur["sessions"]}
            if set(got) != set(want):
                bad(f"{org} /current {len(got)} sessions != model {len(want)}: "
                    f"{sorted(set(got) ^ set(want))[:4]}")
            for sid in set(got) & set(want):
                g, w = got[sid], want[sid]
                if (g["user"], g["license_type"], ms(g["login"]), ms(g["last_activity"])) != \
                        (w["user"], w["license_type"], w["start"], w["last_activity"]):
                    bad(f"{org} /current {sid}: {g} != model {w}")
        for path, body in snap.items():
            if not path.startswith(f"{base}/usage?") or not isinstance(body, dict):
                continue
            typ = re.search(r"type=([a-z_0-9]+)", path).group(1)
            for row in body.get("rows", []):
                if "minute" in row:
                    t0 = ms(row["minute"])
                    t1 = t0 + 60000
                    kind = "minute rows"
                elif "hour" in row:
                    t0 = ms(row["hour"])
                    t1 = t0 + 3600000
                    kind = "hour rows"
                else:
                    t0, t1 = workload.day_bounds(org, row["date"])
                    kind = "day rows"
                tick(kind)
                want = workload.row(org, typ, t0, t1)
                diffs = {k: (row.get(k), want[k]) for k in ROW_FIELDS
                         if k in row and row[k] != want[k]}
                if diffs:
                    bad(f"{org}/{typ} {kind[:-5]} {row.get('minute') or row.get('hour') or row['date']}:"
                        f" (got, model) {diffs}")
        for path, body in snap.items():
            if not path.startswith(f"{base}/stats?") or not isinstance(body, dict):
                continue
            typ = re.search(r"type=([a-z_0-9]+)", path).group(1)
            tick("stats cards")
            t0, _ = workload.day_bounds(org, first)
            _, t1 = workload.day_bounds(org, last)
            w = workload.row(org, typ, t0, t1)
            days = [workload.row(org, typ, *workload.day_bounds(org, d.isoformat()))
                    for d in dates]
            got = (body["users_denied"]["users"], body["users_denied"]["events"],
                   body["users_downgraded"]["users"], body["users_downgraded"]["events"],
                   body["peak_usage"]["value"])
            want = (w["denied_users"], w["denials"], w["downgraded_users"], w["downgrades"],
                    max(d["peak"] for d in days))
            if got != want:
                bad(f"{org}/{typ} stats (denied users, denials, downgraded users, downgrades, "
                    f"peak) {got} != model {want}")
        if isinstance(ses, list):
            tick("session records", len(ses))
            got = {s["session_id"]: s for s in ses}
            if set(got) != set(recs):
                bad(f"{org} /sessions: {len(got)} records, model {len(recs)}; ids only in the "
                    f"answer {sorted(set(got) - set(recs))[:3]}, only in the model "
                    f"{sorted(set(recs) - set(got))[:3]}")
            for sid in sorted(set(got) & set(recs)):
                g, w = got[sid], recs[sid]
                for k in SESSION_FIELDS:
                    gv = g.get(k)
                    if k in ("start", "last_activity", "end", "license_released_at"):
                        gv = ms(gv)
                    if k == "requested_type":
                        gv = gv or None
                    if k in w and gv != w[k]:
                        bad(f"{org} session {sid} {k}: {gv} != model {w[k]}")
    return problems, checked


def run(workload, folder, name, kills=0, seed=0, batch=500, minute_hours=6, keep=False,
        duration=0.0, send_timeout=1800, wait_timeout=1800):
    """One run of the workload on a fresh stack (kill -9 when kills > 0).
    Returns a dict with the snapshot and what happened."""
    stack = Stack(folder, name)
    res = {"name": name, "dir": folder}
    t0 = time.time()
    driver = None
    try:
        stack.up()
        for org in ORGS:
            r = stack.request("PUT", f"/v1/orgs/{org}/settings", workload.settings(org))
            assert r.status_code == 200, f"settings {org}: {r.status_code} {r.text}"
        ts = time.time()
        procs = send_all(stack, workload, batch, duration)
        if kills:
            mean = max(0.5, duration / kills) if duration else 1.4
            driver = KillDriver(stack, random.Random(seed), kills, delay=(0.1, 2 * mean - 0.1))
            driver.start()
        res["sends"] = collect_sends(procs, workload, send_timeout)
        res["send_s"] = round(time.time() - ts, 1)
        if driver:
            driver.join(timeout=600)
            assert not driver.is_alive(), "the kill driver did not finish"
            assert driver.error is None, f"kill driver: {driver.error}"
        stack.ctl("wait", "--dir", folder, "--timeout", str(wait_timeout),
                  timeout=wait_timeout + 60)
        res["pipeline_s"] = round(time.time() - ts, 1)
        tq = time.time()
        res["snapshot"] = snapshot(stack, workload, seed, minute_hours)
        res["query_s"] = round(time.time() - tq, 1)
        if driver:
            res["kills"] = driver.log
            res["kill_summary"] = driver.summary()
            res["restarts"] = stack.restarts()
    finally:
        if driver and driver.is_alive():
            driver.stop.set()
            driver.join(timeout=30)
        stack.down()
        res["problems"] = stack.problems()
        res["total_s"] = round(time.time() - t0, 1)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return res


def chaos_round(events, kills, seed=None, before=1, after=2, minute_hours=6, batch=200,
                duration=20.0, keep=False):
    """The whole test: the workload, a reference run and a chaos run (one
    after the other: the machine is small), then the comparisons. Returns
    (problems, report lines)."""
    seed = seed if seed is not None else int(os.environ.get("LICMON_CHAOS_SEED") or
                                             random.SystemRandom().getrandbits(32))
    report = [f"chaos seed {seed} (LICMON_CHAOS_SEED={seed} repeats this input and kill plan)"]
    say(report[0])
    w = Workload(seed, events, before, after)
    report.append(f"workload: {w.total()} events, {len(ORGS)} orgs, local days {w.first} .. "
                  f"{w.last}; " + ", ".join(f"{o} {len(w.events[o])}" for o in ORGS))
    say(report[-1])
    root = tempfile.mkdtemp(prefix="lm-chaos-", dir="/tmp")
    problems = []
    try:
        ref = run(w, os.path.join(root, "ref"), "reference", 0, seed, batch, minute_hours, keep)
        report.append(f"reference: sent in {ref['send_s']} s, applied in {ref['pipeline_s']} s, "
                      f"{len(ref['snapshot'])} answers in {ref['query_s']} s")
        say(report[-1])
        got = run(w, os.path.join(root, "chaos"), "chaos", kills, seed, batch, minute_hours,
                  keep, duration=duration)
        report.append(f"chaos: sent in {got['send_s']} s, applied in {got['pipeline_s']} s; "
                      f"{len(got['kills'])} kills: {got['kill_summary']}; supervisor restarts "
                      f"{got['restarts']}; resends {sum(s['resends'] for s in got['sends'].values())}"
                      f", duplicates {sum(s['duplicate'] for s in got['sends'].values())}")
        say(report[-1])
        for k in got["kills"]:
            say(f"  kill at {k[0]:7.2f} s: {k[1]:<11} pid {k[2]:<7} {k[3]:<8} age {k[4]} s")
        for r in (ref, got):
            if r["problems"]:
                problems.append(f"{r['name']} logs: " + "\n  ".join(r["problems"][:10]))
        pending = sorted({re.sub(r"\?.*", "", p).split("/")[-1]
                          for p, v in ref["snapshot"].items() if v == "501"})
        if pending:
            report.append(f"not served yet (501), so not compared: {', '.join(pending)}")
            say(report[-1])
        d = diff(ref["snapshot"], got["snapshot"])
        compared = sum(1 for v in ref["snapshot"].values() if v != "501")
        report.append(f"compared {compared} API answers: {len(d)} differences")
        say(report[-1])
        if d:
            problems.append("chaos run differs from the reference:\n  " + "\n  ".join(d))
        for r in (ref, got):
            mp, checked = check_model(r["snapshot"], w)
            if r is ref:
                report.append("checked against the model: " +
                              ", ".join(f"{n} {k}" for k, n in checked.items()))
                say(report[-1])
            if mp:
                problems.append(f"{r['name']} against the model:\n  " + "\n  ".join(mp[:30]))
        ks = got["kill_summary"]
        short = [p for p in PROGRAMS if sum(ks.get(p, {}).values()) < 2]
        if short:
            problems.append(f"programs killed fewer than twice: {short}")
        rs = got["restarts"]
        nk = len(got["kills"])
        if sum(rs.values()) < nk:
            problems.append(f"the supervisor logged {sum(rs.values())} restarts for {nk} kills")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            report.append(f"kept {root}")
    for p in problems:
        say(p[:6000])
    return problems, report
