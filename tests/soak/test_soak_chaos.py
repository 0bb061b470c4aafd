"""Chaos, long form (`make soak`): about 200,000 events over 14 local days
(both the European and, in autumn, the American DST change inside), at
least 24 kill -9 of seeded random programs while the stream flows and the
stages catch up, then the same comparisons as the short form
(tests/integration/test_chaos.py): every API answer equal to a run without
kills, and both equal to the workload's model. SOAK_RUNS=N repeats it N
times in a row with new seeds (LICMON_CHAOS_SEED fixes the first)."""
import os
import random

import chaos_lib


def test_soak_chaos():
    runs = int(os.environ.get("SOAK_RUNS", "1"))
    first = os.environ.get("LICMON_CHAOS_SEED")
    rng = random.SystemRandom()
    failed = []
    for i in range(runs):
        seed = int(first) + i if first else rng.getrandbits(32)
        problems, report = chaos_lib.chaos_round(
            events=int(os.environ.get("LICMON_CHAOS_EVENTS", "200000")),
            kills=int(os.environ.get("LICMON_CHAOS_KILLS", "24")),
            duration=float(os.environ.get("LICMON_CHAOS_SECONDS", "90")),
            before=5, after=8, minute_hours=8, seed=seed,
            keep=os.environ.get("LICMON_KEEP_TMP") is not None)
        chaos_lib.say(f"== soak run {i + 1} of {runs}, seed {seed}: "
                      f"{'FAILED' if problems else 'ok'}")
        if problems:
            failed.append("\n".join(report + problems))
    assert not failed, f"{len(failed)} of {runs} runs failed:\n\n" + "\n\n".join(failed)
