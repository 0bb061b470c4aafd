"""Backpressure at ingest: a journal the sessionizer has not applied is a
backlog, and ingest stops taking producers' batches while it is over
--max-backlog-mb. Producers then wait for their acknowledgements (nothing
is refused or dropped); when the sessionizer catches up the batches are
taken again and every event ends up journaled exactly once. The bound also
holds across an ingest restart: the backlog is counted again from the
journal when it opens.

ingest and the sessionizer run on their own here (no supervisor), so the
test decides when the sessionizer starts."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import requests

from conftest import BIN, ctl, free_port, now_ms, sanitizer_reports

EVENTS = 40000


def metric(port, name):
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def wait_for(what, fn, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if fn():
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start(folder, program, port, *args):
    log = open(os.path.join(folder, "logs", f"{program}.log"), "a")
    return subprocess.Popen([os.path.join(BIN, f"licmon-{program}"), "--dir", folder,
                             "--health", f"127.0.0.1:{port}", *args], stderr=log, stdout=log)


def stop(p, sig=signal.SIGTERM):
    if p and p.poll() is None:
        p.send_signal(sig)
        p.wait(30)


def test_ingest_holds_producers_while_the_backlog_is_over_its_bound():
    folder = tempfile.mkdtemp(prefix="lm-backlog-", dir="/tmp")
    os.makedirs(os.path.join(folder, "logs"))
    data = os.path.join(folder, "events.ndjson")
    t0 = now_ms() - 3600 * 1000
    with open(data, "w") as f:
        for i in range(EVENTS):
            # long user ids make the journal grow quickly past 1 MB
            f.write(json.dumps({"event_id": f"e{i}", "org": "acme",
                                "user": f"user{i % 500:03d}-{'x' * 60}@acme.example",
                                "ts": t0 + i, "kind": "login" if i < 500 else "activity",
                                "license_type": "creator"}) + "\n")
    hp_i, hp_s = free_port(), free_port()
    ingest = start(folder, "ingest", hp_i, "--max-backlog-mb", "1")
    sess = sender = None
    try:
        wait_for("ingest", lambda: metric(hp_i, "licmon_ingest_producers_paused") is not None)
        sender = subprocess.Popen([os.path.join(BIN, "licmonctl"), "send", "--dir", folder,
                                   "--batch", "500", "--timeout-ms", "1000", "--retries", "1000",
                                   data], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        wait_for("producers paused", lambda: metric(hp_i, "licmon_ingest_producers_paused") == 1)
        accepted = 'licmon_ingest_events_total{result="accepted"}'
        held = metric(hp_i, accepted)
        assert held < EVENTS
        time.sleep(3)
        # nothing more is taken while paused: the producer waits, its send goes on
        assert metric(hp_i, accepted) == held
        assert metric(hp_i, "licmon_ingest_backlog_bytes") > 1 << 20
        assert sender.poll() is None

        # an ingest restart counts the backlog again from the journal
        held = metric(hp_i, accepted)
        stop(ingest, signal.SIGKILL)
        ingest = start(folder, "ingest", hp_i, "--max-backlog-mb", "1")
        wait_for("ingest after restart",
                 lambda: metric(hp_i, "licmon_ingest_producers_paused") == 1)
        assert metric(hp_i, "licmon_ingest_backlog_bytes") > 1 << 20

        # the sessionizer drains the backlog: batches are taken again, all of them
        sess = start(folder, "sessionizer", hp_s)
        out, err = sender.communicate(timeout=240)
        assert sender.returncode == 0, err
        counts = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", out)}
        assert counts.get("accepted", 0) + counts.get("duplicate", 0) == EVENTS, out
        assert counts.get("rejected", 0) == 0, out
        # journaled exactly once: what the first ingest took, and the rest after the restart
        assert metric(hp_i, accepted) == EVENTS - held
        # the last batches may have put the backlog over the bound again: it
        # drains, and with it goes the pause
        wait_for("backlog drained", lambda: metric(hp_i, "licmon_ingest_backlog_bytes") == 0)
        wait_for("producers resumed",
                 lambda: metric(hp_i, "licmon_ingest_producers_paused") == 0, timeout=5)
        with open(os.path.join(folder, "logs", "ingest.log")) as f:
            log = f.read()
        assert "is over --max-backlog-mb 1: producers wait" in log
        assert "taking producers' batches again" in log
    finally:
        if sender and sender.poll() is None:
            sender.kill()
        stop(sess)
        stop(ingest)
        reports = sanitizer_reports(folder)
        if os.environ.get("LICMON_KEEP_TMP") is None:
            shutil.rmtree(folder, ignore_errors=True)
        assert not reports, "sanitizer reports:\n" + "\n".join(reports[:20])


def test_a_consumer_down_holds_the_pipeline_back_to_the_producer():
    """Every log is bounded, not only ingest's journal: with the alerter
    stopped (SIGSTOP: alive, reading nothing), the aggregator's log for it
    grows to its --max-backlog-mb and the aggregator stops fetching; then
    the sessionizer's log for the aggregator fills and it stops; then
    ingest's journal, and ingest stops taking the producer's batches, whose
    acknowledgements wait. Nothing is dropped: once the alerter reads again
    the whole chain drains, and every event counts exactly once."""
    from conftest import running_stack
    # enough to fill all three 1 MB bounds with room to spare (each about
    # 5,000-9,000 events) however big the pieces the stages fetch
    org, typ, n = "acme-" + "x" * 59, "creator_" + "y" * 24, 40000
    t0 = now_ms() - 3600 * 1000
    env = dict(os.environ, **{f"LICMON_{p}_MAX_BACKLOG_MB": "1"
                              for p in ("INGEST", "SESSIONIZER", "AGGREGATOR")})
    with running_stack(env=env) as stack:
        data = os.path.join(stack.dir, "events.ndjson")
        with open(data, "w") as f:
            for i in range(n):
                # every event moves the seats in use: one usage update each
                f.write(json.dumps({"event_id": f"e{i}", "org": org, "ts": t0 + i * 10,
                                    "user": f"user{i % 500:03d}-{'u' * 60}@acme.example",
                                    "kind": "logout" if (i // 500) % 2 else "login",
                                    "license_type": typ}) + "\n")
        alerter = stack.pid("alerter")
        os.kill(alerter, signal.SIGSTOP)
        sender = None
        try:
            sender = subprocess.Popen([os.path.join(BIN, "licmonctl"), "send", "--dir",
                                       stack.dir, "--batch", "500", "--timeout-ms", "1000",
                                       "--retries", "1000", data], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            for program in ("aggregator", "sessionizer"):
                wait_for(f"{program} paused",
                         lambda: stack.metrics(program)["licmon_stage_paused"] == 1, timeout=120)
            wait_for("producers paused",
                     lambda: stack.metrics("ingest")["licmon_ingest_producers_paused"] == 1,
                     timeout=120)
            def progress():
                return {p: (stack.metrics(p)["licmon_stage_records_applied_total"],
                            stack.metrics(p)["licmon_stage_log_backlog_bytes"])
                        for p in ("aggregator", "sessionizer")}
            time.sleep(0.5)  # an answer in flight when it paused is dropped, not applied
            held = progress()
            accepted = stack.metrics("ingest")['licmon_ingest_events_total{result="accepted"}']
            # over the bound by at most one fetch's output
            for p, (_, backlog) in held.items():
                assert 1 << 20 < backlog < 9 << 20, (p, backlog)
            time.sleep(3)
            # held where they stopped, and the producer waits
            assert progress() == held
            assert stack.metrics("ingest")['licmon_ingest_events_total{result="accepted"}'] \
                == accepted
            assert sender.poll() is None
            w = ctl("wait", "--dir", stack.dir, "--timeout", "2", check=False)
            assert w.returncode == 1
            assert "sessionizer lags" in w.stderr and "it is paused" in w.stderr, w.stderr
            assert "that aggregator has not applied" in w.stderr, w.stderr
            # the aggregator is paused too: the cause is the alerter
            assert w.stderr.rstrip().endswith("see alerter"), w.stderr
        except BaseException:
            if sender:
                sender.kill()
            raise
        finally:
            os.kill(alerter, signal.SIGCONT)
        out, err = sender.communicate(timeout=300)
        assert sender.returncode == 0, err
        counts = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", out)}
        # a batch resent after its acknowledgement waited is a duplicate
        assert counts.get("accepted", 0) + counts.get("duplicate", 0) == n, out
        assert counts.get("rejected", 0) == 0, out
        stack.wait(timeout=240)
        day = time.strftime("%Y-%m-%d", time.gmtime(t0 / 1000))
        today = time.strftime("%Y-%m-%d", time.gmtime())
        rows = stack.get(f"/v1/orgs/{org}/usage?type=all&granularity=day&from={day}&to={today}")
        assert rows.status_code == 200, rows.text
        assert sum(r["logins"] for r in rows.json()["rows"]) == n // 2
        for p in ("aggregator", "sessionizer"):
            wait_for(f"{p} drained",
                     lambda: stack.metrics(p)["licmon_stage_log_backlog_bytes"] == 0)
            wait_for(f"{p} fetching", lambda: stack.metrics(p)["licmon_stage_paused"] == 0,
                     timeout=5)
        with open(os.path.join(stack.dir, "logs", "aggregator.log")) as f:
            log = f.read()
        assert "is over --max-backlog-mb 1: nothing is fetched" in log
        assert "log backlog down to" in log
