"""Exports end to end (API.md: GET /export and `licmonctl export`): an xlsx
read back with openpyxl equals the sessions API field by field; csv and
json say the same; hostile user names (commas, quotes, newlines, a leading
= + - @ or tab) survive as inert text; past the row limit of a sheet the
sessions go on "Sessions (2)", ... and the Summary says so (the test knob
LICMON_EXPORTER_XLSX_MAX_ROWS makes the limit small)."""
import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import tempfile
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import requests

from conftest import Stack, ctl, free_port, now_ms, sanitizer_reports

TZ = "America/New_York"
MAX_ROWS = 40  # rows of a Sessions sheet, header included: 39 sessions a sheet
HOSTILE = ["=1+1", "=HYPERLINK(\"http://evil.example\",\"x\")", "a,b", 'say "hi"',
           "two\nlines", "cr\rhere", "@SUM(A1)", "-2+3", "+41 79", "\ttab", "élève 学生"]
N_USERS = 50
SESSIONS_PER_USER = 2  # 100 sessions, + 1 downgrade: 101 -> 3 sheets


def local_date(ms):
    return dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(TZ)).date().isoformat()


@pytest.fixture(scope="module")
def ex():
    folder = tempfile.mkdtemp(prefix="lm-exp-", dir="/tmp")
    env = dict(os.environ, LICMON_EXPORTER_XLSX_MAX_ROWS=str(MAX_ROWS),
               LICMON_EXPORTER_SESSION_CHUNK="7")
    s = Stack(folder, free_port(), env=env)
    s.up()
    try:
        ctl("settings", "--dir", s.dir, "acme", "--set", json.dumps({
            "timezone": TZ, "integrations": ["Jira", "=cmd"],
            "licenses": [{"type": "creator", "owned": 20, "expires": "2099-01-31"},
                         {"type": "reviewer", "owned": 10}]}))
        users = HOSTILE + [f"user{i:02d}@acme.example" for i in range(N_USERS - len(HOSTILE))]
        t0 = now_ms() - 30 * 3600 * 1000
        evs = []
        for k in range(SESSIONS_PER_USER):
            for i, u in enumerate(users):
                t = t0 + k * 3600 * 1000 + i * 1000
                evs.append({"event_id": f"l{k}-{i}", "org": "acme", "user": u, "ts": t,
                            "kind": "login", "license_type": "creator" if i % 2 else "reviewer"})
                evs.append({"event_id": f"a{k}-{i}", "org": "acme", "user": u,
                            "ts": t + 5 * 60000 + 123, "kind": "activity"})
                evs.append({"event_id": f"o{k}-{i}", "org": "acme", "user": u,
                            "ts": t + 20 * 60000 + 7, "kind": "logout"})
        last = max(e["ts"] for e in evs)
        evs.append({"event_id": "g1", "org": "acme", "user": "down-dan", "ts": last + 1,
                    "kind": "login", "license_type": "reviewer", "requested_type": "creator"})
        evs.append({"event_id": "g2", "org": "acme", "user": "down-dan", "ts": last + 999,
                    "kind": "logout"})
        # and one still open (its metrics are measured to an end it does not have yet)
        evs.append({"event_id": "o1", "org": "acme", "user": "open-olga", "ts": now_ms() - 60000,
                    "kind": "login", "license_type": "creator"})
        evs.sort(key=lambda e: e["ts"])
        s.send(evs)
        s.wait()
        s.users = users + ["down-dan", "open-olga"]
        s.frm = local_date(t0)
        s.to = local_date(now_ms())
        s.n = SESSIONS_PER_USER * len(users) + 2
        s.out = os.path.join(folder, "out")
        os.makedirs(s.out)
        yield s
    finally:
        s.down()
        reports = sanitizer_reports(folder)
        shutil.rmtree(folder, ignore_errors=True)
        assert not reports, "sanitizer reports:\n" + "\n".join(reports[:20])


def first_whole_session_date(now):
    """The first local date that starts at or after the aggregator's cut of the
    sessions, now - 400 x 24 h."""
    cut = now - 400 * 86400 * 1000
    before = dt.datetime.fromtimestamp((cut - 1) / 1000, ZoneInfo(TZ)).date()
    return before + dt.timedelta(days=1)


def sessions_api(ex):
    r = ex.get(f"/v1/orgs/acme/sessions?from={ex.frm}&to={ex.to}")
    assert r.status_code == 200, r.text
    return r.json()


def export(ex, fmt):
    path = os.path.join(ex.out, f"e.{fmt}")
    p = ctl("export", "--dir", ex.dir, "acme", "--format", fmt, "--from", ex.frm, "--to", ex.to,
            "-o", path)
    assert f"wrote {path}" in p.stdout
    assert not os.path.exists(path + ".part")
    return path


def iso_ms(v):
    """An xlsx date-time (naive, UTC) as RFC 3339 with ms, like the API."""
    if v is None:
        return None
    ms = round(v.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def ooxml_text(v):
    """Control characters travel in xlsx as _xHHHH_ (ECMA-376 ST_Xstring);
    Excel decodes them, openpyxl leaves inline strings as they are."""
    if not isinstance(v, str):
        return v
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), v)


def test_xlsx_equals_sessions_api_and_splits_rows(ex):
    api = sessions_api(ex)
    assert len(api) == ex.n
    assert any(x["end_reason"] == "open" and x["user_inactivity_s"] is None for x in api)
    wb = openpyxl.load_workbook(export(ex, "xlsx"))
    assert wb.sheetnames == ["Summary", "Daily usage", "Sessions", "Sessions (2)",
                             "Sessions (3)", "Licenses"]
    got = []
    for name in ("Sessions", "Sessions (2)", "Sessions (3)"):
        rows = list(wb[name].iter_rows(values_only=True))
        assert rows[0][0] == "session_id" and len(rows) <= MAX_ROWS
        for r in rows[1:]:
            (sid, org, user, ltype, req, start, last, end, why, ui_dur, ui_s, li_dur, li_s,
             released, tail) = r
            if why == "open":  # no end: none of the metrics measured to it
                assert ui_dur is ui_s is li_dur is li_s is tail is None
            else:
                assert ui_dur == dt.timedelta(seconds=ui_s)
                assert li_dur == dt.timedelta(seconds=li_s)
            got.append({"session_id": sid, "org": org, "user": ooxml_text(user), "license_type": ltype,
                        "requested_type": req, "start": iso_ms(start),
                        "last_activity": iso_ms(last), "end": iso_ms(end),
                        "end_reason": why, "user_inactivity_s": ui_s,
                        "license_inactivity_s": li_s, "license_released_at": iso_ms(released),
                        "license_tail_s": tail})
    assert [len(list(wb[n].rows)) - 1 for n in ("Sessions", "Sessions (2)", "Sessions (3)")] \
        == [39, 39, ex.n - 78]
    assert got == api
    summary = [c for row in wb["Summary"].iter_rows(values_only=True) for c in row if c]
    text = "\n".join(str(c) for c in summary)
    assert f"{ex.n} session rows" in text
    assert 'split over 3 sheets' in text and '"Sessions (3)"' in text
    assert TZ in text and "acme" in text and "Generated at" in text
    assert any(str(c).endswith("Major") or str(c).endswith("OK") for c in summary)
    daily = list(wb["Daily usage"].iter_rows(values_only=True))
    types = {r[0] for r in daily[1:]}
    assert types == {"all", "creator", "reviewer"}
    lic = list(wb["Licenses"].iter_rows(values_only=True))
    assert [r[0] for r in lic[1:3]] == ["creator", "reviewer"]
    assert any(r[0] == "=cmd" for r in lic)  # an integration named like a formula: text
    # every cell from outside is a string, never a formula
    for name in ("Sessions", "Sessions (2)", "Sessions (3)", "Licenses"):
        for row in wb[name].iter_rows():
            for cell in row:
                assert cell.data_type != "f", (name, cell.coordinate, cell.value)
    users = {s["user"] for s in got}
    for h in HOSTILE:
        assert h in users, h


def test_csv_equals_sessions_api_with_inert_text(ex):
    api = sessions_api(ex)
    with open(export(ex, "csv"), newline="", encoding="utf-8") as f:
        raw = f.read()
    assert raw.startswith("session_id,org,user,") and raw.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert len(rows) == len(api)
    for r, s in zip(rows, api):
        user = r["user"]
        if s["user"][:1] in ("=", "+", "-", "@", "\t", "\r"):
            assert user == "'" + s["user"]
        else:
            assert user == s["user"]
        assert r["session_id"] == s["session_id"]
        assert r["start"] == s["start"] and r["end"] == (s["end"] or "")
        assert r["requested_type"] == (s["requested_type"] or "")
        assert r["end_reason"] == s["end_reason"]
        assert r["license_released_at"] == (s["license_released_at"] or "")
        if s["user_inactivity_s"] is None:  # open
            assert r["user_inactivity"] == r["user_inactivity_s"] == r["license_tail_s"] == ""
            continue
        assert int(r["user_inactivity_s"]) == s["user_inactivity_s"]
        h, m, sec = (int(x) for x in r["user_inactivity"].split(":"))
        assert h * 3600 + m * 60 + sec == s["user_inactivity_s"]
    # no cell of the file starts like a formula
    for r in rows:
        for v in r.values():
            assert not v or v[0] not in "=+-@\t\r" or v[0] == "-" and v[1:].isdigit()


def test_json_and_ndjson_exports(ex):
    api = sessions_api(ex)
    with open(export(ex, "json"), encoding="utf-8") as f:
        doc = json.load(f)
    assert doc["org"] == "acme" and doc["timezone"] == TZ
    assert doc["sessions"] == api
    assert {d["type"] for d in doc["daily"]} == {"all", "creator", "reviewer"}
    assert "peak_usage" in doc["stats"] and doc["licenses"]["licenses"]
    r = ex.get(f"/v1/orgs/acme/export?format=ndjson&from={ex.frm}&to={ex.to}")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith("attachment; filename=\"licmon-acme-")
    assert [json.loads(x) for x in r.text.splitlines()] == api
    # licmonctl export --user: one user's sessions, the filter said in the file
    who = api[0]["user"]
    path = os.path.join(ex.out, "u.json")
    p = ctl("export", "--dir", ex.dir, "acme", "--format", "json", "--from", ex.frm, "--to",
            ex.to, "--user", who, "-o", path)
    assert f"wrote {path}" in p.stdout
    with open(path, encoding="utf-8") as f:
        one = json.load(f)
    assert one["user"] == who
    assert one["sessions"] == [x for x in api if x["user"] == who]


def test_export_type_filter_and_http_headers(ex):
    r = ex.get(f"/v1/orgs/acme/export?format=csv&type=creator&from={ex.frm}&to={ex.to}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["X-Licmon-Timezone"] == TZ
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert rows and all(x["license_type"] == "creator" for x in rows)
    x = ex.get(f"/v1/orgs/acme/export?format=xlsx&type=creator&from={ex.frm}&to={ex.to}")
    assert x.status_code == 200 and x.content[:2] == b"PK"
    assert x.headers["Content-Length"] == str(len(x.content))
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    assert {r[0] for r in list(wb["Daily usage"].iter_rows(values_only=True))[1:]} == {"creator"}
    assert not [f for f in os.listdir(os.path.join(ex.dir, "tmp")) if f.startswith("licmon-")]


def test_export_longer_than_sessions_are_kept_says_where_they_start(ex):
    """Sessions are kept 400 days, day rows 1830: an export from 500 days back has
    every day row, its sessions start 399 days back (398 in the hour a zone's offset
    now is smaller than 400 days ago: the first date kept whole), and each form says so."""
    today = dt.date.fromisoformat(ex.to)
    frm = (today - dt.timedelta(days=500)).isoformat()
    sfrom = first_whole_session_date(now_ms()).isoformat()
    x = ex.get(f"/v1/orgs/acme/export?format=xlsx&type=creator&from={frm}&to={ex.to}")
    assert x.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["Sessions kept"].startswith(f"400 days: the Sessions sheets start on {sfrom}")
    assert len(list(wb["Daily usage"].iter_rows())) - 1 == 501
    j = ex.get(f"/v1/orgs/acme/export?format=json&type=creator&from={frm}&to={ex.to}").json()
    assert (j["from"], j["sessions_from"], j["sessions_to"]) == (frm, sfrom, ex.to)
    c = ex.get(f"/v1/orgs/acme/export?format=csv&type=creator&from={frm}&to={ex.to}")
    assert f"licmon-acme-creator-{sfrom}_{ex.to}.csv" in c.headers["Content-Disposition"]
    # a period wholly older than the sessions kept: day rows, and no session said to exist
    old_to = (today - dt.timedelta(days=450)).isoformat()
    x = ex.get(f"/v1/orgs/acme/export?format=xlsx&type=creator&from={frm}&to={old_to}")
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["Sessions kept"].startswith("400 days: none of this period's sessions")
    assert len(list(wb["Sessions"].iter_rows())) == 1  # the header
    j = ex.get(f"/v1/orgs/acme/export?format=json&type=creator&from={frm}&to={old_to}").json()
    assert j["sessions_from"] is None and j["sessions"] == [] and len(j["daily"][0]["rows"]) == 51


def test_licmonctl_export_errors(ex):
    p = ctl("export", "--dir", ex.dir, "acme", "--format", "csv", "--from", ex.to, "--to",
            ex.frm, "-o", os.path.join(ex.out, "x.csv"), check=False)
    assert p.returncode == 2 and "--to" in p.stderr
    tok = ctl("token", "create", "--dir", ex.dir, "--org", "other", "--role", "service")
    p = ctl("export", "--dir", ex.dir, "--token", tok.stdout.splitlines()[0], "acme", "--format",
            "xlsx", "--from", ex.frm, "--to", ex.to, "-o", os.path.join(ex.out, "y.xlsx"),
            check=False)
    assert p.returncode == 1 and "not found" in p.stderr
    assert not os.path.exists(os.path.join(ex.out, "y.xlsx"))
    assert not os.path.exists(os.path.join(ex.out, "y.xlsx.part"))
