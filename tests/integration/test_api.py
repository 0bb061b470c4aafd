"""The read endpoints of the HTTP API (API.md section 3) against a real
stack: usage at day, hour and minute granularity, the statistics cards,
session records as JSON and NDJSON, the print report; every malformed
parameter is a 400 naming it; token roles and cross-org isolation (another
org's token never sees a byte of this one); the list of orgs each token sees."""
import datetime as dt
import json
import os
import shutil
import tempfile
from zoneinfo import ZoneInfo

import pytest
import requests

from conftest import Stack, ctl, free_port, now_ms, sanitizer_reports

TZ = "Europe/Berlin"
HOSTILE = ["=1+1", "a,b", 'say "hi"', "two\nlines", "@SUM(A1)", "-2", "+41 79", "\ttab"]


def local_date(ms, tz=TZ):
    return dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).date().isoformat()


def make_events(org, users, t0, sessions_per_user=1, gap_ms=20 * 60000):
    """Logins then logouts 10 minutes later, sorted by time (a live stream)."""
    evs = []
    for k in range(sessions_per_user):
        for i, u in enumerate(users):
            t = t0 + k * gap_ms + i * 1000
            evs.append({"event_id": f"{org}-l{k}-{i}", "org": org, "user": u, "ts": t,
                        "kind": "login", "license_type": "creator" if i % 3 else "reviewer"})
            evs.append({"event_id": f"{org}-o{k}-{i}", "org": org, "user": u,
                        "ts": t + 10 * 60000, "kind": "logout"})
    evs.sort(key=lambda e: e["ts"])
    return evs


@pytest.fixture(scope="module")
def api():
    folder = tempfile.mkdtemp(prefix="lm-api-", dir="/tmp")
    s = Stack(folder, free_port())
    s.up()
    try:
        ctl("settings", "--dir", s.dir, "acme", "--set", json.dumps({
            "timezone": TZ, "integrations": ["Jira"],
            "licenses": [{"type": "creator", "owned": 10, "expires": "2099-12-31",
                          "threshold_pct": 80},
                         {"type": "reviewer", "owned": 5}]}))
        ctl("settings", "--dir", s.dir, "other", "--set", json.dumps({"timezone": "UTC"}))
        t0 = now_ms() - 26 * 3600 * 1000
        users = ["alice@acme.example", "bob@acme.example"] + HOSTILE
        evs = make_events("acme", users, t0)
        evs += make_events("other", ["secret-user-of-other"], t0)
        last = max(e["ts"] for e in evs)
        evs.append({"event_id": "acme-d1", "org": "acme", "user": "denied-dora", "ts": last + 1,
                    "kind": "denied", "license_type": "creator"})
        evs.append({"event_id": "acme-g1", "org": "acme", "user": "down-dan", "ts": last + 2,
                    "kind": "login", "license_type": "reviewer", "requested_type": "creator"})
        evs.append({"event_id": "acme-g2", "org": "acme", "user": "down-dan", "ts": last + 3,
                    "kind": "logout"})
        s.send(evs)
        s.wait()
        s.t0 = t0
        s.users = users
        s.day = local_date(t0)
        s.tokens = {}
        for org in ("acme", "other"):
            for role in ("org_admin", "service"):
                out = ctl("token", "create", "--dir", s.dir, "--org", org, "--role", role).stdout
                s.tokens[(org, role)] = out.splitlines()[0].strip()
        yield s
    finally:
        s.down()
        reports = sanitizer_reports(folder)
        shutil.rmtree(folder, ignore_errors=True)
        assert not reports, "sanitizer reports:\n" + "\n".join(reports[:20])


def get(stack, path, token=None, headers=None, **kw):
    h = {"Authorization": f"Bearer {token or stack.token}", **(headers or {})}
    return requests.get(stack.url + path, headers=h, timeout=60, **kw)


def ok_json(stack, path, token=None, **kw):
    r = get(stack, path, token, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


DAY_FIELDS = ["date", "peak", "users", "logins", "denials", "denied_users", "downgrades",
              "downgraded_users"]
MINUTE_EXTRA = ["in_use_end", "logouts", "user_timeouts", "license_timeouts"]


def test_usage_days(api):
    b = ok_json(api, "/v1/orgs/acme/usage?type=all&granularity=day&period=7d")
    assert b["timezone"] == TZ
    rows = b["rows"]
    today = local_date(now_ms())
    assert len(rows) == 7 and rows[-1]["date"] == today
    for r in rows:
        assert all(f in r for f in DAY_FIELDS)
    day = [r for r in rows if r["date"] == api.day][0]
    assert day["logins"] >= len(api.users) - 1
    assert day["peak"] >= 1 and day["users"] >= day["peak"]
    # the same with from/to; the type filter
    f = ok_json(api, f"/v1/orgs/acme/usage?from={rows[0]['date']}&to={today}")
    assert f["rows"] == rows
    c = ok_json(api, f"/v1/orgs/acme/usage?type=creator&period=7d")
    assert c["type"] == "creator"
    cday = [r for r in c["rows"] if r["date"] == api.day][0]
    assert 0 < cday["logins"] < day["logins"]
    assert sum(r["denials"] for r in c["rows"]) == 1
    assert sum(r["denied_users"] for r in c["rows"]) == 1
    assert sum(r["downgrades"] for r in c["rows"]) == 1
    # today only; a year reaching into the future is clamped, and says so
    t = ok_json(api, "/v1/orgs/acme/usage?period=today")
    assert [r["date"] for r in t["rows"]] == [today]
    fut = ok_json(api, f"/v1/orgs/acme/usage?from={today}&to=2999-12-31")
    assert fut["clamped"] is True and fut["to"] == today and len(fut["rows"]) == 1
    old = ok_json(api, "/v1/orgs/acme/usage?from=1990-01-01&to=1990-12-31")
    assert old["rows"] == []
    year = ok_json(api, "/v1/orgs/acme/usage?period=365d")
    assert len(year["rows"]) == 365


def test_usage_hours_and_minutes(api):
    b = ok_json(api, f"/v1/orgs/acme/usage?granularity=hour&date={api.day}&type=all")
    assert b["timezone"] == TZ and b["date"] == api.day and b["clamped"] is False
    # a date the minute retention no longer keeps: no rows, and the answer says why
    for q in ("granularity=hour&date=1990-06-01", "granularity=minute&date=1990-06-01&hour=10"):
        old = ok_json(api, f"/v1/orgs/acme/usage?{q}")
        assert old["rows"] == [] and old["clamped"] is True, (q, old)
    rows = b["rows"]
    assert 1 <= len(rows) <= 25
    for r in rows:
        assert all(f in r for f in DAY_FIELDS)
        assert r["hour"].startswith(api.day + "T") and r["hour"][13:16] == ":00"
        assert r["hour"][16] in "+-"
    busy = [r for r in rows if r["logins"]]
    assert busy, rows
    hour = int(busy[0]["hour"][11:13])
    m = ok_json(api, f"/v1/orgs/acme/usage?granularity=minute&date={api.day}&hour={hour}")
    assert len(m["rows"]) == 60 or api.day == local_date(now_ms())
    for r in m["rows"]:
        assert all(f in r for f in DAY_FIELDS + MINUTE_EXTRA)
        assert r["minute"][:13] == busy[0]["hour"][:13]
    assert sum(r["logins"] for r in m["rows"]) == busy[0]["logins"]
    # the hour row's own label works as the hour
    lab = requests.utils.quote(busy[0]["hour"], safe="")
    m2 = ok_json(api, f"/v1/orgs/acme/usage?granularity=minute&hour={lab}")
    assert m2["rows"] == m["rows"]


BAD = [
    ("usage?period=2d", "period:"),
    ("usage?period=7d&type=Creator", "type:"),
    ("usage?period=7d&granularity=week", "granularity:"),
    ("usage?from=2026-13-01&to=2026-12-31", "from:"),
    ("usage?from=2026-01-01&to=2026-1-2", "to:"),
    ("usage?from=2026-02-01&to=2026-01-01", "to:"),
    ("usage?from=2026-01-01", "to:"),
    ("usage?granularity=hour", "date:"),
    ("usage?granularity=minute&date=2026-01-01&hour=24", "hour:"),
    ("usage?granularity=minute&date=2026-01-01&hour=x", "hour:"),
    ("usage?granularity=minute&date=2026-01-01", "hour:"),
    ("usage?period=7d&period=30d", "period:"),
    ("usage?period=7d&bogus=1", "bogus:"),
    ("stats?period=7d&threshold_pct=0", "threshold_pct:"),
    ("stats?period=7d&threshold_pct=101", "threshold_pct:"),
    ("stats?period=7d&threshold_pct=5.5", "threshold_pct:"),
    ("stats?type=creator", "from:"),
    ("sessions?period=7d&user=", "user:"),
    ("sessions?from=x&to=2026-01-01", "from:"),
    ("export?period=7d", "format:"),
    ("export?period=7d&format=pdf", "format:"),
    ("report?period=7d&paper=a3", "paper:"),
    ("report?period=7d&type=a%20b", "type:"),
]


@pytest.mark.parametrize("path,detail", BAD)
def test_malformed_parameters_are_400_naming_them(api, path, detail):
    r = api.get("/v1/orgs/acme/" + path)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid parameter"
    assert r.json()["detail"].startswith(detail), r.json()


def test_stats_cards_and_threshold_preview(api):
    b = ok_json(api, "/v1/orgs/acme/stats?type=creator&period=30d")
    assert b["timezone"] == TZ and b["type"] == "creator"
    for card, keys in {"average_daily_usage": ["value", "pct", "state"],
                       "peak_usage": ["value", "pct", "at", "state"],
                       "days_over_threshold": ["value", "days_at_capacity", "state"],
                       "users_denied": ["users", "events", "state"],
                       "users_downgraded": ["users", "events", "state"],
                       "current_usage": ["in_use", "owned", "free"],
                       "license_expiration": ["days_left", "state"]}.items():
        assert all(k in b[card] for k in keys), (card, b[card])
    assert b["owned"] == 10 and b["threshold_pct"] == 80 and b["threshold_count"] == 8
    assert b["users_denied"] == {"users": 1, "events": 1, "state": "major"}
    assert b["users_downgraded"]["users"] == 1 and b["users_downgraded"]["state"] == "minor"
    assert b["license_expiration"]["state"] == "ok" and b["license_expiration"]["days_left"] > 90
    assert b["peak_usage"]["value"] >= 1 and b["peak_usage"]["at"]
    p = ok_json(api, "/v1/orgs/acme/stats?type=creator&period=30d&threshold_pct=10")
    assert p["threshold_pct"] == 10 and p["threshold_count"] == 1
    assert p["days_over_threshold"]["value"] >= 1
    a = ok_json(api, "/v1/orgs/acme/stats?type=all&period=7d")
    assert a["average_daily_usage"]["state"] == "non_applicable"


SESSION_FIELDS = ["session_id", "org", "user", "license_type", "requested_type", "start",
                  "last_activity", "end", "end_reason", "user_inactivity_s",
                  "license_inactivity_s", "license_released_at", "license_tail_s"]


def test_sessions_json_and_ndjson(api):
    today = local_date(now_ms())
    path = f"/v1/orgs/acme/sessions?from={api.day}&to={today}"
    r = get(api, path)
    assert r.status_code == 200 and r.headers["X-Licmon-Timezone"] == TZ
    arr = r.json()
    assert isinstance(arr, list)
    users = {s["user"] for s in arr}
    assert set(api.users) <= users and "secret-user-of-other" not in users
    for s in arr:
        assert list(s) == SESSION_FIELDS
        assert s["org"] == "acme"
        assert s["start"].endswith("Z") and len(s["start"]) == 24
        assert s["end_reason"] in ("manual_logout", "user_inactivity", "relogin", "open")
    dan = [s for s in arr if s["user"] == "down-dan"][0]
    assert dan["requested_type"] == "creator" and dan["license_type"] == "reviewer"
    alice = [s for s in arr if s["user"] == "alice@acme.example"][0]
    assert alice["requested_type"] is None and alice["end_reason"] == "manual_logout"
    assert alice["user_inactivity_s"] == 600 and alice["license_tail_s"] == 0
    nd = get(api, path, headers={"Accept": "application/x-ndjson"})
    assert nd.status_code == 200
    assert nd.headers["Content-Type"].startswith("application/x-ndjson")
    lines = nd.text.splitlines()
    assert [json.loads(x) for x in lines] == arr
    one = ok_json(api, path + "&user=" + requests.utils.quote('say "hi"'))
    assert [s["user"] for s in one] == ['say "hi"']
    rev = ok_json(api, path + "&type=reviewer")
    assert rev and all(s["license_type"] == "reviewer" for s in rev)


def test_report_is_print_ready_html(api):
    r = get(api, "/v1/orgs/acme/report?type=creator&period=7d")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src" not in r.headers["Content-Security-Policy"]
    html = r.text
    assert "<svg" in html and "@page" in html and TZ in html
    assert "<script" not in html
    for words in ("Average daily license usage", "Peak license usage", "Users denied access",
                  "License expiration", "Major", "License details", "Jira"):
        assert words in html, words
    letter = get(api, "/v1/orgs/acme/report?period=30d&paper=letter")
    assert "size:letter" in letter.text


def test_roles_and_cross_org_isolation(api):
    paths = ["usage?period=7d", "stats?period=7d", "sessions?period=7d",
             "export?format=csv&period=7d", "report?period=7d", "licenses", "current"]
    for p in paths:
        for role in ("org_admin", "service"):
            r = get(api, "/v1/orgs/acme/" + p, token=api.tokens[("acme", role)])
            assert r.status_code == 200, (p, role, r.text)
        nobody = requests.get(api.url + "/v1/orgs/acme/" + p, timeout=10)
        assert nobody.status_code == 401
        bad = get(api, "/v1/orgs/acme/" + p, token="lm_not_a_token")
        assert bad.status_code == 401
        answers = set()
        for role in ("org_admin", "service"):
            r = get(api, "/v1/orgs/acme/" + p, token=api.tokens[("other", role)])
            assert r.status_code == 404, (p, role)
            answers.add(r.content)
            for u in api.users:
                assert u.encode() not in r.content
        nosuch = get(api, "/v1/orgs/nosuchorg/" + p, token=api.tokens[("other", "org_admin")])
        assert nosuch.status_code == 404 and answers == {nosuch.content}
    # the other org's own data holds nothing of acme
    other = get(api, "/v1/orgs/other/export?format=csv&period=7d",
                token=api.tokens[("other", "service")])
    assert other.status_code == 200 and "secret-user-of-other" in other.text
    for u in ("alice@acme.example", "bob@acme.example", "@SUM(A1)", "down-dan", "acme"):
        assert u not in other.text
    # reads only: a service token may not write
    w = api.put("/v1/orgs/acme/settings", {"minor_margin_pct": 5},
                token=api.tokens[("acme", "service")])
    assert w.status_code == 403


def test_org_list_by_role(api):
    """GET /v1/orgs: the administrator sees every org the stack knows, any
    other token exactly its own (never another org's name)."""
    r = get(api, "/v1/orgs")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"orgs": [{"org": "acme", "timezone": TZ},
                                 {"org": "other", "timezone": "UTC"}]}
    for org, tz in (("acme", TZ), ("other", "UTC")):
        for role in ("org_admin", "service"):
            r = get(api, "/v1/orgs", token=api.tokens[(org, role)])
            assert r.status_code == 200, (org, role, r.text)
            assert r.json() == {"orgs": [{"org": org, "timezone": tz}]}, (org, role)
            other = "other" if org == "acme" else "acme"
            assert other.encode() not in r.content
    # a token of an org without any data yet: still its own org, nothing else
    lonely = ctl("token", "create", "--dir", api.dir, "--org", "lonely", "--role",
                 "service").stdout.splitlines()[0].strip()
    r = get(api, "/v1/orgs", token=lonely)
    assert r.status_code == 200 and r.json() == {"orgs": [{"org": "lonely", "timezone": "UTC"}]}
    assert requests.get(api.url + "/v1/orgs", timeout=10).status_code == 401
    assert get(api, "/v1/orgs", token="lm_not_a_token").status_code == 401
    r = requests.post(api.url + "/v1/orgs", headers={"Authorization": f"Bearer {api.token}"},
                      timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"


def test_health_answers_while_exports_run(api):
    """Four exports at once do not hold up /healthz (HTTP thread pool)."""
    import concurrent.futures as cf
    with cf.ThreadPoolExecutor(6) as ex:
        futs = [ex.submit(get, api, "/v1/orgs/acme/export?format=xlsx&period=365d")
                for _ in range(2)]
        futs += [ex.submit(get, api, "/v1/orgs/acme/usage?period=365d") for _ in range(2)]
        h = requests.get(api.url + "/healthz", timeout=5)
        assert h.status_code == 200
        assert all(f.result().status_code in (200, 503) for f in futs)
