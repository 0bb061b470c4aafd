"""Fixtures that start a real licmon stack (the five programs under
`licmonctl up`) in a temporary folder, and helpers to talk to it the way an
operator and the dashboard service do: licmonctl and HTTP."""
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

BIN = os.environ.get("LICMON_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
BIN = os.path.abspath(BIN)
PROGRAMS = ["ingest", "sessionizer", "aggregator", "alerter", "exporter"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ctl(*args, check=True, input=None, timeout=120, env=None):
    """Runs licmonctl; returns the CompletedProcess."""
    p = subprocess.run([os.path.join(BIN, "licmonctl"), *args], input=input,
                       capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(
            f"licmonctl {' '.join(args)} exited {p.returncode}\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


class Stack:
    def __init__(self, folder, port, env=None):
        self.dir = folder
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env
        self.token = None

    def up(self):
        p = ctl("up", "--dir", self.dir, "--http", f"127.0.0.1:{self.port}",
                "--bin", BIN, env=self.env, timeout=90)
        with open(os.path.join(self.dir, "admin.token")) as f:
            self.token = f.read().strip()
        return p

    def down(self):
        return ctl("down", "--dir", self.dir, check=False, timeout=60)

    def send(self, events, check=True):
        """Sends a list of event dicts (or raw lines) as NDJSON on stdin."""
        lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
        return ctl("send", "--dir", self.dir, "-", input="\n".join(lines) + "\n",
                   check=check)

    def wait(self, timeout=60):
        return ctl("wait", "--dir", self.dir, "--timeout", str(timeout),
                   timeout=timeout + 30)

    def get(self, path, token=None, **kw):
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return requests.get(self.url + path, headers=headers, timeout=30, **kw)

    def put(self, path, body, token=None):
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return requests.put(self.url + path, headers=headers, timeout=30,
                            data=body if isinstance(body, str) else json.dumps(body))

    def metrics(self, program):
        """A program's metrics (its /metrics page) as {name: int}."""
        with open(os.path.join(self.dir, "stack.json")) as f:
            hp = json.load(f)["health"][program]
        text = requests.get(f"http://{hp}/metrics", timeout=5).text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = int(value)
        return out

    def restart(self, program, how=signal.SIGKILL, timeout=30):
        """Kills a program (kill -9 by default) and waits until the supervisor
        has started it again and it answers its health check; its new pid."""
        old = self.pid(program)
        assert old, f"{program} is not running"
        os.kill(old, how)
        with open(os.path.join(self.dir, "stack.json")) as f:
            hp = json.load(f)["health"][program]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            new = self.pid(program)
            if new and new != old:
                try:
                    if requests.get(f"http://{hp}/healthz", timeout=1).status_code == 200:
                        return new
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        pytest.fail(f"the supervisor did not restart {program}")

    def pid(self, program):
        """The pid of a running program of this stack (from /proc)."""
        exe = os.path.join(BIN, f"licmon-{program}")
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                if argv and os.path.basename(argv[0].decode()) == f"licmon-{program}" \
                        and self.dir.encode() in b" ".join(argv):
                    return int(d)
            except OSError:
                continue
        return None


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_reports(folder):
    """Lines of the stack's logs in which a sanitizer reported something."""
    found = []
    logs = os.path.join(folder, "logs")
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        with open(os.path.join(logs, name), errors="replace") as f:
            for line in f:
                if any(m in line for m in SANITIZER_MARKS):
                    found.append(f"{name}: {line.strip()}")
    return found


@contextlib.contextmanager
def running_stack(prefix="lm-", env=None):
    """A stack up in a new folder under /tmp; afterwards it is stopped, its
    logs are checked for sanitizer reports and the folder is removed (kept
    when LICMON_KEEP_TMP is set)."""
    folder = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    s = Stack(folder, free_port(), env=env)
    s.up()
    try:
        yield s
    finally:
        s.down()
        reports = sanitizer_reports(folder)
        if os.environ.get("LICMON_KEEP_TMP") is None:
            shutil.rmtree(folder, ignore_errors=True)
        assert not reports, "sanitizer reports:\n" + "\n".join(reports[:20])


# Debian's libfaketime, under the machine's multiarch folder (x86_64-linux-gnu, aarch64-linux-gnu, ...)
FAKETIME = (glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
            or ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"])[0]


def faketime_env(step_file, **extra):
    """The environment for a stack whose programs read their wall clock
    through libfaketime, shifted by what step_file says ("+0", "+8h", "+14d",
    re-read every second); their boot and monotonic clocks run on."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    return dict(os.environ, LD_PRELOAD=FAKETIME, FAKETIME_TIMESTAMP_FILE=str(step_file),
                FAKETIME_CACHE_DURATION="1", FAKETIME_DONT_FAKE_MONOTONIC="1",
                ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0", **extra)


@pytest.fixture
def stack():
    with running_stack() as s:
        yield s


def wait_for(pred, timeout=20, step=0.05):
    """pred's first true value within timeout seconds, else its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def now_ms():
    return int(time.time() * 1000)


def ev(event_id, kind, user="alice@acme.example", org="acme", ts=None, **extra):
    e = {"event_id": event_id, "org": org, "user": user, "ts": ts or now_ms(), "kind": kind}
    e.update(extra)
    return e
