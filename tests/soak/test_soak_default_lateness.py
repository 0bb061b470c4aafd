"""Opt-in (LICMON_CHAOS_DEFAULT_LATENESS=1): the chaos comparison with the
default allowed_lateness of 5 s instead of 30 min, killing only ingest.

Expected to fail today, and kept to show why the chaos test raises the
lateness: the sessionizer carries each org's clock forward by ingest's wall
clock while no event of the org arrives, so a backfill paused for longer
than the allowed lateness has its clock run ahead of the events still to
come. An ingest restart pauses every producer for at least its ack timeout
(licmonctl send: 4-5 s) plus the restart, more than 5 s: the events after
it count as late, timeouts fire before the activity that would have reset
them, and the numbers differ from a run without the kill (seed 78 of the
short form: 40 of 163 answers differ, e.g. a day with 362 user timeouts
instead of 290). ARCHITECTURE.md promises equal numbers after any kill;
SPEC.md promises exact numbers for events that arrive within the allowed
lateness. With the defaults both cannot hold for a backfill during an
ingest restart."""
import os

import pytest

import chaos_lib
import chaos_workload


@pytest.mark.skipif(not os.environ.get("LICMON_CHAOS_DEFAULT_LATENESS"),
                    reason="opt-in: LICMON_CHAOS_DEFAULT_LATENESS=1")
def test_chaos_ingest_kills_with_default_lateness(monkeypatch):
    for spec in chaos_workload.ORGS.values():
        monkeypatch.setitem(spec["settings"], "allowed_lateness_s", 5)
    monkeypatch.setattr(chaos_lib, "PROGRAMS", ["ingest"])
    problems, report = chaos_lib.chaos_round(
        events=30000, kills=6, duration=20,
        seed=int(os.environ["LICMON_CHAOS_SEED"]) if os.environ.get("LICMON_CHAOS_SEED")
        else None)
    assert not problems, "\n".join(report + problems)
