"""A program's database wiped or replaced under a stack that goes on: the
program after it must not take the new log's records for the ones it applied
(the same seqs now number other records, so it would skip as many new ones
without a word), nor acknowledge them (which would let the new log be
trimmed). It applies nothing, says why (licmonctl wait, its log, a metric),
and goes on by itself once the original database is back. The same when the
database is an older copy of the same log (a backup restored): it holds fewer
records, or other ones at the seqs applied since. And a stage whose
upstream no longer holds the records it needs says so, once a minute, instead
of asking again in a loop."""
import json
import os
import shutil
import signal
import time

import requests

from conftest import ctl, ev, now_ms, running_stack


def in_use_all(stack):
    r = stack.get("/v1/orgs/acme/licenses")
    assert r.status_code == 200, r.text
    return r.json()["in_use_all"]


def metric(stack, program, name):
    with open(os.path.join(stack.dir, "stack.json")) as f:
        hp = json.load(f)["health"][program]
    for line in requests.get(f"http://{hp}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError(f"{program} has no metric {name}")


def assert_blocked(stack, why, in_use):
    """licmonctl wait fails naming the sessionizer and why; it applied nothing."""
    p = ctl("wait", "--dir", stack.dir, "--timeout", "30", check=False, timeout=60)
    assert p.returncode == 1
    assert "sessionizer" in p.stderr and why in p.stderr, p.stderr
    assert metric(stack, "sessionizer", "licmon_stage_blocked") == 1
    assert in_use_all(stack) == in_use


def put_back_and_go_on(stack, data, kept, user, in_use):
    """The kept database back in place: the next event is applied."""
    stack.down()
    shutil.rmtree(data)
    shutil.move(kept, data)
    stack.up()
    stack.send([ev(user, "login", user=user, ts=now_ms() - 30000, license_type="creator")])
    stack.wait()
    assert in_use_all(stack) == in_use
    assert metric(stack, "sessionizer", "licmon_stage_blocked") == 0


def test_a_replaced_ingest_database_is_refused_until_it_is_back(stack):
    t = now_ms() - 60000
    stack.send([ev("r1", "login", user="u1", ts=t, license_type="creator")])
    stack.wait()
    assert in_use_all(stack) == 1
    assert metric(stack, "sessionizer", "licmon_stage_blocked") == 0

    stack.down()
    data = os.path.join(stack.dir, "data", "ingest")
    shutil.move(data, data + ".orig")
    stack.up()  # ingest starts a new, empty journal
    stack.send([ev(f"n{i}", "login", user=f"n{i}", ts=t + i, license_type="creator")
                for i in range(3)])
    assert_blocked(stack, "replaced or wiped", 1)  # nothing of the new journal applied
    with open(os.path.join(stack.dir, "logs", "sessionizer.log")) as f:
        assert "replaced or wiped" in f.read()
    put_back_and_go_on(stack, data, data + ".orig", "u2", 2)


def test_a_database_replaced_under_a_restart_is_refused_and_wait_knows(stack):
    """Only ingest restarts, on an empty database: the sessionizer's applied
    seq, above the new head, must not let licmonctl wait pass before the
    sessionizer has heard from the new ingest."""
    t = now_ms() - 60000
    stack.send([ev("w1", "login", user="w1", ts=t, license_type="creator")])
    stack.wait()
    data = os.path.join(stack.dir, "data", "ingest")
    pid = stack.pid("ingest")
    os.kill(pid, signal.SIGSTOP)
    shutil.move(data, data + ".orig")
    os.kill(pid, signal.SIGKILL)  # the supervisor starts it again, on an empty database
    deadline = time.time() + 20
    while stack.pid("ingest") in (None, pid) and time.time() < deadline:
        time.sleep(0.05)
    stack.send([ev(f"v{i}", "login", user=f"v{i}", ts=t + i, license_type="creator")
                for i in range(3)])
    assert_blocked(stack, "replaced or wiped", 1)
    put_back_and_go_on(stack, data, data + ".orig", "w2", 2)

def test_an_older_copy_of_the_ingest_database_is_refused_until_the_newer_is_back(stack):
    t = now_ms() - 60000
    stack.send([ev("o1", "login", user="o1", ts=t, license_type="creator")])
    stack.wait()
    stack.down()
    data = os.path.join(stack.dir, "data", "ingest")
    shutil.copytree(data, data + ".backup")
    stack.up()
    stack.send([ev(f"o{i}", "login", user=f"o{i}", ts=t + i, license_type="creator")
                for i in (2, 3)])
    stack.wait()
    assert in_use_all(stack) == 3

    stack.down()
    shutil.move(data, data + ".newer")
    shutil.copytree(data + ".backup", data)  # the backup restored: same log, fewer records
    stack.up()
    time.sleep(3)  # its clock ticks grow it again, with other records
    stack.send([ev("o4", "login", user="o4", ts=t + 4, license_type="creator")])
    assert_blocked(stack, "older copy", 3)
    put_back_and_go_on(stack, data, data + ".newer", "o5", 4)

def test_a_stage_whose_upstream_trimmed_what_it_needs_says_so_without_looping():
    env = dict(os.environ, LICMON_INGEST_JOURNAL_RETENTION_HOURS="0")
    with running_stack("lm-trim-", env) as stack:
        t = now_ms() - 60000
        stack.send([ev(f"t{i}", "login", user=f"u{i}", ts=t + i, license_type="creator")
                    for i in range(5)])
        stack.wait()
        stack.down()
        shutil.rmtree(os.path.join(stack.dir, "data", "sessionizer"))
        stack.up()  # a new sessionizer must start at journal record 1: trimmed
        assert_blocked(stack, "trimmed", 5)
        time.sleep(4)
        with open(os.path.join(stack.dir, "logs", "sessionizer.log")) as f:
            said = [line for line in f if "trimmed" in line]
        assert 1 <= len(said) <= 2, said  # once a minute, not at every retry
