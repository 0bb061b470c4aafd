"""Clocks that are wrong (README: a clock that is wrong): a producer's, whose
events are stamped hours ahead, and the host's, which steps. Neither may move
an org's clock ahead and end the open sessions of its other users."""
import datetime as dt
import os
import re
import time

import pytest

from conftest import ev, faketime_env, now_ms, running_stack, wait_for


def current(stack):
    """The open sessions of acme as {user: login in ms}."""
    cur = stack.get("/v1/orgs/acme/current").json()["sessions"]
    return {s["user"]: int(dt.datetime.fromisoformat(s["login"].replace("Z", "+00:00"))
                           .timestamp() * 1000) for s in cur}


def test_an_event_stamped_hours_ahead_counts_near_its_arrival(stack):
    """A producer sending local time as UTC: its event counts a second after
    its arrival at the latest, so it does not move the org's clock hours
    ahead, which ended every other open session at its timeout (the clock
    never goes back)."""
    t = now_ms()
    stack.send([ev("k1", "login", user="kim", ts=t, license_type="creator")])
    stack.wait()
    stack.send([ev("k2", "login", user="lee", ts=t + 8 * 3600 * 1000, license_type="creator")])
    stack.wait()
    stack.send([ev("k3", "activity", user="kim", ts=now_ms())])
    stack.wait()
    after = now_ms()
    # half a second ahead of the sender's clock, a few ms ahead of its arrival:
    # within the second an event may be ahead, so it keeps its exact time
    t_ned = now_ms() + 500
    stack.send([ev("k4", "login", user="ned", ts=t_ned, license_type="creator")])
    stack.wait()
    logins = current(stack)
    assert sorted(logins) == ["kim", "lee", "ned"]
    assert logins["kim"] == t
    assert t <= logins["lee"] <= after + 1000
    assert logins["ned"] == t_ned
    m = stack.metrics("sessionizer")
    assert m["licmon_sessionizer_ahead_events"] == 1
    assert m["licmon_sessionizer_late_events"] == 0
    assert stack.metrics("ingest")["licmon_ingest_events_ahead_total"] == 1


CLOCKED = ["ingest", "aggregator", "alerter", "exporter"]


def step_pending(stack, program):
    """The step program's clock has not taken (its gauge), in ms; the
    exporter reads its clock when it answers, so it is asked first."""
    if program == "exporter":
        current(stack)
    return stack.metrics(program)[f"licmon_{program}_clock_step_ms"]


@pytest.mark.parametrize("restart", [False, True], ids=["running", "restarted"])
def test_a_step_of_the_host_clock_is_taken_only_once_it_lasts(tmp_path, restart):
    """The host's clock steps 8 hours ahead and is corrected seconds later (an
    NTP step, a wrong `date -s`). Ingest's clock, which every org's clock
    follows downstream, runs on without the step: the open sessions stay
    open. So do the clocks of the aggregator (retention), the alerter
    (reminders) and the exporter ("now" and "today"). Also when each of
    them is killed during the step and started again on the same boot: it
    goes on with the clock it saved, instead of taking the wall clock as it
    is. libfaketime steps the wall clock of every program of the stack;
    their boot clocks run on."""
    step = tmp_path / "faketime"
    step.write_text("+0\n")
    with running_stack(env=faketime_env(step)) as stack:
        t = now_ms()
        stack.send([ev("s1", "login", user="kim", ts=t, license_type="creator")])
        stack.wait()
        step.write_text("+8h\n")
        for program in CLOCKED:
            assert wait_for(lambda: step_pending(stack, program) > 8 * 3600 * 1000 - 60000), program
        if restart:
            # each goes on with the step it saw pending: not seen anew
            # (which would restart its 10 minutes), nor taken
            for program in CLOCKED:
                log = os.path.join(stack.dir, "logs", f"{program}.log")
                before = os.path.getsize(log)
                stack.restart(program)
                assert wait_for(lambda: step_pending(stack, program) > 8 * 3600 * 1000 - 60000), \
                    program
                with open(log, errors="replace") as f:
                    f.seek(before)
                    new = f.read()
                assert "clock goes on from before the restart" in new, program
                assert "clock stepped" not in new, program
        time.sleep(3)  # ticks journaled with the host clock 8 h ahead
        stack.wait()
        assert current(stack) == {"kim": t}
        lasted = stack.get("/v1/orgs/acme/current").json()["sessions"][0]["session_length_s"]
        assert lasted < 600
        step.write_text("+0\n")
        for program in CLOCKED:
            assert wait_for(lambda: step_pending(stack, program) == 0), program
        stack.send([ev("s2", "activity", user="kim", ts=now_ms())])
        stack.wait()
        assert current(stack) == {"kim": t}
        m = stack.metrics("sessionizer")
        assert m["licmon_sessionizer_late_events"] == 0
        assert m["licmon_sessionizer_open_sessions"] == 1


def test_events_stamped_by_a_host_clock_put_right_are_not_refused(tmp_path):
    """A VM restored from a snapshot runs on a stale clock until NTP puts it
    right: to ingest a step ahead, taken only once it lasts. Meanwhile the
    events stamped by the clock put right (here 3 days ahead of the stale
    one) are judged against the host's clock, not refused as more than a day
    ahead: they count, at most a second after their arrival by ingest's
    clock."""
    step = tmp_path / "faketime"
    step.write_text("+0\n")
    with running_stack(env=faketime_env(step)) as stack:
        step.write_text("+3d\n")
        assert wait_for(lambda: stack.metrics("ingest")["licmon_ingest_clock_step_ms"]
                        > 3 * 86400 * 1000 - 60000)
        before = now_ms()
        stack.send([ev("v1", "login", user="kim", ts=now_ms() + 3 * 86400 * 1000,
                       license_type="creator")])
        stack.wait()
        logins = current(stack)
        assert list(logins) == ["kim"]
        assert before <= logins["kim"] <= now_ms() + 1000
        assert stack.metrics("ingest")['licmon_ingest_events_total{result="rejected"}'] == 0
        # the host's clock agrees with the event: no producer is blamed
        with open(os.path.join(stack.dir, "logs", "ingest.log")) as f:
            log = f.read()
        assert re.search(r"the host's clock stepped \+259(19\d|20\d) s", log)
        assert "is the producer's clock" not in log
        assert stack.metrics("ingest")["licmon_ingest_events_ahead_total"] == 0
