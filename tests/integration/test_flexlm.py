"""`licmonctl flexlm` on two real FlexLM debug logs (tests/data/flexlm), sent
through the whole stack with `licmonctl send`. Every day's seats in use
(peak), distinct users and logins, per license type and for `all`, and every
session's start and end to the millisecond, must equal what the log says,
worked out here on its own: Python's zoneinfo, its own reading of the lines. Sending the log again changes nothing. The stack runs
with its clock set to the day after the log (libfaketime), so the events are
inside retention."""
import collections
import datetime
import os
import re
import subprocess
import zoneinfo

import pytest

from conftest import BIN, faketime_env, running_stack

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "flexlm")
ZONE = "Europe/Madrid"  # both servers' "Romance" time
LINE = re.compile(r"^\s*(\d{1,2}):(\d\d):(\d\d) \((\S+?)\) (.*?)\s*$")
USE = re.compile(r'^(OUT|IN): "([^"]+)" (.*?)\s*(\((?:[^()]|\([^()]*\))*\))?$')
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def seats(path):
    """Every seat the log shows held: (type, user@host, start, end), UTC
    datetimes. One seat per user@host and feature while any of its
    checkouts is out; an IN (SHUTDOWN) gives back all of them."""
    tz = zoneinfo.ZoneInfo(ZONE)
    date, prev_s, out = None, None, {}
    held = []
    with open(path, encoding="utf-8-sig") as f:
        for raw in f:
            m = LINE.match(raw)
            if not m:
                continue
            h, mi, s, _daemon, text = m.groups()
            tod = int(h) * 3600 + int(mi) * 60 + int(s)
            if prev_s is not None and tod < prev_s - 4200 and date:
                date += datetime.timedelta(days=1)
            prev_s = tod
            d = re.match(r"TIMESTAMP (\d+)/(\d+)/(\d{4})", text)
            if d:
                date = datetime.date(int(d[3]), int(d[1]), int(d[2]))
            d = re.search(r"Server's System Date and Time: \w+ (\w{3}) (\d+) (\d{4})", text)
            if d:
                date = datetime.date(int(d[3]), MONTHS.index(d[1]) + 1, int(d[2]))
            u = USE.match(text)
            if not u:
                continue
            assert date, "a checkout before the log's first date"
            t = datetime.datetime.combine(date, datetime.time(int(h), int(mi), int(s)),
                                          tzinfo=tz).astimezone(datetime.timezone.utc)
            kind, feature, who, reason = u.groups()
            typ = re.sub(r"[^a-z0-9_]", "_", feature.lower())
            key = (typ, who)
            if kind == "OUT":
                if key not in out:
                    out[key] = [t, 0]
                out[key][1] += 1
            elif key in out:
                out[key][1] = 0 if reason == "(SHUTDOWN)" else out[key][1] - 1
                if out[key][1] == 0:
                    held.append((typ, who, out.pop(key)[0], t))
    assert not out, "seats still out at the end of the log"
    return held


def day_rows(held, types):
    """{type: {date: (peak, users, logins)}} over the log's local days."""
    tz = zoneinfo.ZoneInfo(ZONE)
    first = min(s for _, _, s, _ in held).astimezone(tz).date()
    last = max(e for _, _, _, e in held).astimezone(tz).date()
    days = [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]
    rows = {}
    for typ in types:
        mine = [x for x in held if typ == "all" or x[0] == typ]
        delta = collections.Counter()
        for _, _, s, e in mine:
            delta[s] += 1
            delta[e] -= 1
        instants = sorted(delta)
        out, i, n = {}, 0, 0
        for d in days:
            d0 = datetime.datetime.combine(d, datetime.time(), tzinfo=tz)
            d1 = datetime.datetime.combine(d + datetime.timedelta(days=1), datetime.time(),
                                           tzinfo=tz)
            peak = n  # the seats held through midnight
            while i < len(instants) and instants[i] < d1:
                n += delta[instants[i]]  # half-open: what ends at t is not held at t
                peak = max(peak, n)
                i += 1
            users = {(x[0], x[1]) if typ == "all" else x[1]
                     for x in mine if x[2] < d1 and x[3] > d0 and x[3] > x[2]}
            logins = sum(1 for x in mine if d0 <= x[2] < d1)
            out[d.isoformat()] = (peak, len(users), logins)
        rows[typ] = out
    return rows


def import_log(stack, path):
    """licmonctl flexlm LOG | licmonctl send -: (events made, send's stdout)."""
    conv = subprocess.run([os.path.join(BIN, "licmonctl"), "flexlm", "--org", "upm",
                           "--timezone", ZONE, "--source", "flexlm01", path],
                          capture_output=True, timeout=120)
    assert conv.returncode == 0, conv.stderr.decode()
    assert re.search(rb"\b0 unreadable", conv.stderr), conv.stderr.decode()
    send = subprocess.run([os.path.join(BIN, "licmonctl"), "send", "--dir", stack.dir, "-"],
                          input=conv.stdout, capture_output=True, timeout=300)
    assert send.returncode == 0, send.stderr.decode()
    return conv.stdout.count(b"\n"), send.stdout.decode()


@pytest.mark.parametrize("log,clock", [("upm-maple-2022.log", "2022-07-08 12:00:00"),
                                       ("autodesk-anon-2016.log", "2016-05-02 12:00:00")])
def test_a_real_flexlm_log_counts_what_it_says(tmp_path, log, clock):
    path = os.path.join(DATA, log)
    held = seats(path)
    types = sorted({x[0] for x in held}) + ["all"]
    want = day_rows(held, types)
    step = tmp_path / "faketime"
    step.write_text(f"@{clock}\n")
    with running_stack(env=faketime_env(step)) as stack:
        r = stack.put("/v1/orgs/upm/settings",
                      {"timezone": ZONE, "user_inactivity_timeout_s": 3600,
                       "license_inactivity_timeout_s": 3600})
        assert r.status_code == 200, r.text
        n, sent = import_log(stack, path)
        assert sent.strip() == f"accepted {n}, duplicate 0, rejected 0", sent
        stack.wait()
        days = sorted(want["all"])
        for typ in types:
            r = stack.get(f"/v1/orgs/upm/usage?type={typ}&granularity=day"
                          f"&from={days[0]}&to={days[-1]}")
            assert r.status_code == 200, r.text
            got = {row["date"]: (row["peak"], row["users"], row["logins"])
                   for row in r.json()["rows"]}
            assert got == want[typ], typ
        # every seat is one session, from its checkout to its checkin, to the
        # millisecond (an hour off in a zone or at DST would show here)
        r = stack.get(f"/v1/orgs/upm/sessions?from={days[0]}&to={days[-1]}")
        assert r.status_code == 200, r.text
        got = sorted((x["user"], x["start"], x["end"], x["end_reason"]) for x in r.json())
        iso = "%Y-%m-%dT%H:%M:%S.000Z"
        assert got == sorted((f"{who}/{typ}", s.strftime(iso), e.strftime(iso), "manual_logout")
                             for typ, who, s, e in held)
        # the same log again: every event a duplicate, nothing changes
        _, again = import_log(stack, path)
        assert again.strip() == f"accepted 0, duplicate {n}, rejected 0", again
