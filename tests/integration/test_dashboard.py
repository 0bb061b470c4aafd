"""The dashboard page end to end: a real stack fed with known events, the page
served by the exporter, driven in Debian's headless Chromium through
chromedriver and Selenium (Debian packages, see tools/deps.txt; nothing is
downloaded here). The cards and the chart show what the API answers, Apply
is disabled until the selection changes, day -> hour -> minute drill-down
and back, the threshold dialog previews without saving and saves, the
inactivity timeout saves as soon as it changes (and one the API set to none of
its choices is shown exactly), export downloads a file, the
print report opens, and the browser logs no error. Screenshots of each view
are kept under <build>/artifacts/dashboard/."""
import datetime
import json
import math
import os
import shutil
import tempfile
import time
import urllib.parse
import zoneinfo

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import BIN, ctl, now_ms

ORG = "acme"
TZ = "Europe/Berlin"
ARTIFACTS = os.path.join(os.path.dirname(BIN), "artifacts", "dashboard")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


# ------------------------------------------------------------------ seeding

def local_ms(day, hh, mm):
    """ms since the epoch of a local wall-clock time in the org's zone."""
    t = datetime.datetime.combine(day, datetime.time(hh, mm), tzinfo=zoneinfo.ZoneInfo(TZ))
    return int(t.timestamp() * 1000)


def seed(stack):
    """Settings and events of the org, with hand-computed expectations."""
    today = datetime.datetime.now(zoneinfo.ZoneInfo(TZ)).date()
    d1 = today - datetime.timedelta(days=1)  # three creators at once, a denial, a downgrade
    d2 = today - datetime.timedelta(days=3)  # one creator
    expires = today + datetime.timedelta(days=60)
    settings = {
        "timezone": TZ, "user_inactivity_timeout_s": 1800, "license_inactivity_timeout_s": 3600,
        "notify_enabled": False, "notify_emails": [],
        "licenses": [
            {"type": "creator", "model": "floating", "owned": 4, "threshold_pct": 50,
             "expires": expires.isoformat()},
            {"type": "reviewer", "model": "floating", "owned": 3},
            {"type": "stakeholder", "model": "named", "owned": 10},
        ],
        "integrations": ["Jira", "Salesforce"],
    }
    r = stack.put(f"/v1/orgs/{ORG}/settings", settings)
    assert r.status_code == 200, r.text

    n = [0]

    def e(user, kind, ts, **kw):
        n[0] += 1
        d = {"event_id": f"dash-{n[0]}", "org": ORG, "user": f"{user}@acme.example", "ts": ts,
             "kind": kind}
        d.update(kw)
        return d

    now = now_ms()
    events = [
        e("alice", "login", local_ms(d2, 9, 0), license_type="creator"),
        e("alice", "logout", local_ms(d2, 9, 20)),
        e("alice", "login", local_ms(d1, 10, 0), license_type="creator"),
        e("bob", "login", local_ms(d1, 10, 5), license_type="creator"),
        e("carol", "login", local_ms(d1, 10, 10), license_type="creator"),
        e("erin", "login", local_ms(d1, 10, 15), license_type="reviewer", requested_type="creator"),
        e("dave", "denied", local_ms(d1, 10, 20), license_type="creator"),
        e("erin", "logout", local_ms(d1, 10, 21)),
        e("alice", "logout", local_ms(d1, 10, 25)),
        e("bob", "logout", local_ms(d1, 10, 25)),
        e("carol", "logout", local_ms(d1, 10, 25)),
        e("frank", "login", now - 120_000, license_type="creator"),
        e("frank", "activity", now - 60_000),
    ]
    events.sort(key=lambda x: x["ts"])
    out = stack.send(events).stdout
    assert f"accepted {len(events)}, duplicate 0, rejected 0" in out, out
    stack.wait()
    return {"today": today, "d1": d1, "d2": d2, "expires": expires}


# ------------------------------------------------------------------ browser

@pytest.fixture
def browser():
    for f in (CHROMIUM, CHROMEDRIVER):
        assert os.access(f, os.X_OK), f"{f} missing: `make` installs it (tools/deps.txt)"
    profile = tempfile.mkdtemp(prefix="lm-chromium-")
    downloads = tempfile.mkdtemp(prefix="lm-dl-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={profile}", "--window-size=1280,900", "--lang=en-US",
              "--disable-dev-shm-usage"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.downloads = downloads
    drv.console = []
    drv.execute_cdp_cmd("Browser.setDownloadBehavior",
                        {"behavior": "allow", "downloadPath": downloads})
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(downloads, ignore_errors=True)


def js(drv, script, *args):
    return drv.execute_script(script, *args)


def until(drv, cond, what, timeout=15):
    """Waits until cond(drv) (a callable or a JS expression) is truthy."""
    fn = cond if callable(cond) else (lambda d: d.execute_script(f"return ({cond});"))
    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.05).until(lambda d: fn(d))
    except TimeoutException:
        shot(drv, f"timeout-{what.replace(' ', '-')}")
        raise AssertionError(f"timed out waiting for {what}; console: {console(drv)}")


def console(drv):
    """The browser's console messages so far (kept across calls)."""
    drv.console.extend(drv.get_log("browser"))
    return drv.console


def shot(drv, name, width=None):
    """A full-page screenshot kept as a test artifact."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    w = width or drv.get_window_size()["width"]
    h = js(drv, "return document.documentElement.scrollHeight")
    drv.set_window_size(w, max(600, h))
    path = os.path.join(ARTIFACTS, f"{name}.png")
    drv.save_screenshot(path)
    drv.set_window_size(w, 900)
    return path


def chart_data(drv):
    return js(drv, "return window.licmonDashboard.chartData();")


def level(drv):
    return js(drv, "return window.licmonDashboard.state.level;")


def idle(drv):
    return "document.querySelector('#chart-box').getAttribute('aria-busy') === 'false' " \
           "&& !document.querySelector('#cards[aria-busy]')"


def click_bar(drv, index):
    """Clicks the chart's column of index, where a person would."""
    canvas = drv.find_element(By.ID, "usage-chart")
    x, y = js(drv, """
        const c = Chart.getChart(document.getElementById('usage-chart'));
        const bar = c.getDatasetMeta(0).data[arguments[0]];
        return [bar.x, (c.chartArea.top + c.chartArea.bottom) / 2];""", index)
    size = canvas.size
    ActionChains(drv).move_to_element_with_offset(
        canvas, int(x - size["width"] / 2), int(y - size["height"] / 2)).click().perform()


def fmt(x, digits=1):
    """A number as the page shows it (at most `digits` decimals)."""
    if x is None:
        return "—"
    if float(x).is_integer():
        return str(int(x))
    return f"{round(float(x), digits):g}"


def card(drv, root, name):
    return js(drv, """
        const c = document.querySelector(arguments[0] + ' [data-card="' + arguments[1] + '"]');
        if (!c) return null;
        return {state: c.dataset.state, value: c.querySelector('.value .num').textContent,
                word: c.querySelector('.state .word').textContent,
                text: c.textContent, icon: !!c.querySelector('.state svg')};""", root, name)


def check_cards(drv, root, s, type_):
    """The cards under root show the numbers and states of stats s."""
    want = {
        "average_daily_usage": (s["average_daily_usage"]["value"], s["average_daily_usage"]["state"]),
        "peak_usage": (s["peak_usage"]["value"], s["peak_usage"]["state"]),
        "days_over_threshold": (s["days_over_threshold"]["value"], s["days_over_threshold"]["state"]),
        "users_denied": (s["users_denied"]["users"], s["users_denied"]["state"]),
        "users_downgraded": (s["users_downgraded"]["users"], s["users_downgraded"]["state"]),
        "current_usage": (s["current_usage"]["in_use"], None),
    }
    words = {"ok": "OK", "minor": "Minor", "major": "Major", "non_applicable": "Non-applicable"}
    for name, (value, state) in want.items():
        c = card(drv, root, name)
        assert c is not None, f"{root}: no card {name}"
        # the average with the API's (and the report's) two decimals
        assert c["value"] == fmt(value, 2 if name == "average_daily_usage" else 1), (name, c, value)
        if state:
            assert c["state"] == state, (name, c, state)
            assert c["word"] == words[state] and c["icon"], (name, c)
    dn = card(drv, root, "users_denied")
    assert f"{s['users_denied']['events']} denial" in dn["text"]
    dg = card(drv, root, "users_downgraded")
    assert f"{s['users_downgraded']['events']} downgrade" in dg["text"]
    cu = card(drv, root, "current_usage")
    assert f"of {s['current_usage']['owned']} owned, {s['current_usage']['free']} free" in cu["text"]
    if type_ == "all":   # no capacity of all types added up, as in the report
        for name in ("average_daily_usage", "peak_usage"):
            assert "owned" not in card(drv, root, name)["text"], name
    else:
        dt = card(drv, root, "days_over_threshold")
        assert f"threshold {s['threshold_pct']}% = {s['threshold_count']} seat" in dt["text"]


def sign_in(drv, stack, org, query=""):
    """Opens the page at ?org=ORG&QUERY and signs in with a new org_admin
    token of org (returned)."""
    token = ctl("token", "create", "--dir", stack.dir, "--org", org, "--role",
                "org_admin").stdout.split()[0]
    drv.get(f"{stack.url}/?org={org}{'&' + query if query else ''}")
    until(drv, "!document.querySelector('#signin').hidden", "the sign-in form")
    drv.find_element(By.ID, "token-input").send_keys(token)
    drv.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    return token


def api(stack, path, **params):
    r = stack.get(f"/v1/orgs/{ORG}/{path}", params=params)
    assert r.status_code == 200, f"{path} {params}: {r.status_code} {r.text}"
    return r.json()


# ------------------------------------------------------------------ the test

def test_dashboard_end_to_end(stack, browser):
    t0 = time.monotonic()
    drv = browser
    known = seed(stack)
    token = ctl("token", "create", "--dir", stack.dir, "--org", ORG, "--role",
                "org_admin").stdout.split()[0]
    today, d1 = known["today"], known["d1"]
    from30 = (today - datetime.timedelta(days=29)).isoformat()
    from7 = (today - datetime.timedelta(days=6)).isoformat()

    # --- sign in (the org comes from the notification-style link)
    drv.get(f"{stack.url}/?org={ORG}")
    until(drv, "document.querySelector('#token-input') && !document.querySelector('#signin').hidden",
          "the sign-in form")
    assert drv.find_element(By.ID, "signin-org").get_attribute("value") == ORG
    drv.find_element(By.ID, "token-input").send_keys(token)
    drv.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    until(drv, "!document.querySelector('#dashboard').hidden && "
               "document.querySelectorAll('#cards [data-card]').length >= 6 && " + idle(drv),
          "the dashboard")
    assert js(drv, "return sessionStorage.getItem('licmon.token')") == token
    # the token sees one org: it is opened without a picker
    assert not drv.find_element(By.ID, "org-form").is_displayed()
    assert f"Times in {TZ}" in drv.find_element(By.ID, "tz-note").text

    # default selection: the first floating type, last 30 days
    assert Select(drv.find_element(By.ID, "type-select")).first_selected_option.get_attribute(
        "value") == "creator"
    s30 = api(stack, "stats", type="creator", **{"from": from30, "to": today.isoformat()})
    check_cards(drv, "#cards", s30, "creator")
    shot(drv, "1-days-30")

    # --- Apply is disabled until the selection changes
    apply_btn = drv.find_element(By.ID, "apply-btn")
    period = Select(drv.find_element(By.ID, "period-select"))
    assert not apply_btn.is_enabled()
    period.select_by_value("7")
    assert apply_btn.is_enabled()
    period.select_by_value("30")
    assert not apply_btn.is_enabled()
    period.select_by_value("custom")
    until(drv, "!document.querySelector('#custom-range').hidden", "the custom range")
    assert apply_btn.is_enabled()
    period.select_by_value("7")
    apply_btn.click()
    until(drv, lambda d: not apply_btn.is_enabled() and d.execute_script(
        "return window.licmonDashboard.state.applied.from === arguments[0] && " + idle(d),
        from7), "the 7-day selection")
    until(drv, "document.querySelector('#cards [data-card=\"average_daily_usage\"]') && " + idle(drv),
          "the 7-day cards")

    # --- the cards: the API's numbers, and the ones worked out by hand
    s7 = api(stack, "stats", type="creator", **{"from": from7, "to": today.isoformat()})
    assert s7["threshold_count"] == 2 and s7["owned"] == 4
    assert s7["peak_usage"]["value"] == 3 and s7["peak_usage"]["state"] == "minor"
    assert s7["days_over_threshold"]["value"] == 1
    assert s7["users_denied"]["users"] == 1 and s7["users_denied"]["state"] == "major"
    assert s7["users_downgraded"]["users"] == 1 and s7["users_downgraded"]["state"] == "minor"
    assert s7["current_usage"]["in_use"] == 1
    assert math.isclose(s7["average_daily_usage"]["value"], 5 / 7, abs_tol=0.01)
    check_cards(drv, "#cards", s7, "creator")
    assert card(drv, "#cards", "peak_usage")["value"] == "3"
    assert card(drv, "#cards", "users_denied")["word"] == "Major"
    assert card(drv, "#cards", "users_downgraded")["word"] == "Minor"

    # --- all types together: the same period, no capacity added up
    type_sel = Select(drv.find_element(By.ID, "type-select"))
    for t in ("all", "creator"):
        type_sel.select_by_value(t)
        apply_btn.click()
        until(drv, lambda d: d.execute_script(
            "return window.licmonDashboard.state.applied.type === arguments[0] && " + idle(d), t),
            f"the cards of {t}")
        if t == "all":
            check_cards(drv, "#cards", api(stack, "stats", type="all",
                                           **{"from": from7, "to": today.isoformat()}), "all")

    # --- the chart's data is the API's: days
    days = api(stack, "usage", type="creator", granularity="day",
               **{"from": from7, "to": today.isoformat()})["rows"]
    cd = chart_data(drv)
    assert len(cd["labels"]) == len(days) == 7
    assert cd["datasets"][0]["data"] == [r["peak"] for r in days]
    assert cd["datasets"][1]["data"] == [r["users"] for r in days]
    assert cd["datasets"][1]["label"] == "Distinct users"
    assert cd["datasets"][2]["data"] == [4] * 7 and "owned" in cd["datasets"][2]["label"]
    assert cd["datasets"][3]["data"] == [2] * 7 and "Threshold 50%" in cd["datasets"][3]["label"]
    i1 = [r["date"] for r in days].index(d1.isoformat())
    assert days[i1]["peak"] == 3
    shot(drv, "2-days-7")

    # --- click the day: its hours
    click_bar(drv, i1)
    until(drv, lambda d: level(d) == "hours" and d.execute_script("return " + idle(d)), "the hours")
    hours = api(stack, "usage", type="creator", granularity="hour", date=d1.isoformat())["rows"]
    cd = chart_data(drv)
    assert cd["datasets"][0]["data"] == [r["peak"] for r in hours]
    assert cd["datasets"][1]["data"] == [r["users"] for r in hours]
    h10 = [r["hour"][11:16] for r in hours].index("10:00")
    assert cd["labels"][h10] == "10:00" and hours[h10]["peak"] == 3 and hours[h10]["users"] == 3
    assert drv.find_element(By.CSS_SELECTOR, "[data-crumb=hours][aria-current]")
    shot(drv, "3-hours")

    # --- click the hour: its minutes
    click_bar(drv, h10)
    until(drv, lambda d: level(d) == "minutes" and d.execute_script("return " + idle(d)),
          "the minutes")
    minutes = api(stack, "usage", type="creator", granularity="minute", date=d1.isoformat(),
                  hour=10)["rows"]
    # the page asks by the hour's label (its offset tells the two 02:00s of a fall-back day
    # apart), not by its number
    asked = drv.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('granularity=minute'))")
    assert asked and urllib.parse.parse_qs(urllib.parse.urlsplit(asked[-1]).query)["hour"] == [
        hours[h10]["hour"]], asked
    cd = chart_data(drv)
    assert cd["datasets"][0]["data"] == [r["peak"] for r in minutes]
    assert cd["datasets"][1]["data"] == [r["users"] for r in minutes]
    m = {lab: p for lab, p in zip(cd["labels"], cd["datasets"][0]["data"])}
    assert m["10:00"] == 1 and m["10:05"] == 2 and m["10:10"] == 3 and m["10:24"] == 3
    assert m["10:25"] == 0
    shot(drv, "4-minutes")

    # --- the breadcrumb back: the day, then the period
    drv.find_element(By.CSS_SELECTOR, "button[data-crumb=hours]").click()
    until(drv, lambda d: level(d) == "hours" and d.execute_script("return " + idle(d)),
          "back to the hours")
    drv.find_element(By.CSS_SELECTOR, "button[data-crumb=days]").click()
    until(drv, lambda d: level(d) == "days" and d.execute_script("return " + idle(d)),
          "back to the days")
    assert chart_data(drv)["datasets"][0]["data"] == [r["peak"] for r in days]

    # --- the same drill-down from the keyboard, through the chart's data table
    drv.find_element(By.CSS_SELECTOR, ".chart-data summary").click()
    drv.find_element(By.CSS_SELECTOR, f"#chart-table button[data-index='{i1}']").send_keys(Keys.ENTER)
    until(drv, lambda d: level(d) == "hours" and d.execute_script("return " + idle(d)),
          "the hours from the keyboard")
    assert js(drv, "return document.activeElement.dataset.crumb") == "hours"
    drv.find_element(By.CSS_SELECTOR, "button[data-crumb=days]").send_keys(Keys.ENTER)
    until(drv, lambda d: level(d) == "days" and d.execute_script("return " + idle(d)),
          "the days from the keyboard")
    drv.find_element(By.CSS_SELECTOR, ".chart-data summary").click()

    # --- the threshold dialog previews without saving
    drv.find_element(By.ID, "gear-btn").click()
    until(drv, "document.querySelector('#threshold-dialog').open && "
               "document.querySelectorAll('#th-preview [data-card]').length >= 6", "the dialog")
    assert Select(drv.find_element(By.ID, "th-type")).first_selected_option.get_attribute(
        "value") == "creator"
    pct = drv.find_element(By.ID, "th-pct")
    assert pct.get_attribute("value") == "50"
    pct.clear()
    pct.send_keys("90")
    until(drv, "document.querySelector('#th-preview').dataset.thresholdPct === '90' && "
               "!document.querySelector('#th-preview[aria-busy]')", "the preview at 90%")
    p90 = api(stack, "stats", type="creator", threshold_pct=90,
              **{"from": from7, "to": today.isoformat()})
    assert p90["threshold_count"] == 4 and p90["peak_usage"]["state"] == "ok"
    assert p90["days_over_threshold"]["value"] == 0
    check_cards(drv, "#th-preview", p90, "creator")
    check_cards(drv, "#cards", s7, "creator")  # the page's cards are unchanged
    assert "4 seats" in drv.find_element(By.ID, "th-count").text
    shot(drv, "5-threshold-preview")
    drv.find_element(By.ID, "th-cancel").click()
    until(drv, "!document.querySelector('#threshold-dialog').open", "the dialog to close")
    lic = {l["type"]: l for l in api(stack, "settings")["licenses"]}
    assert lic["creator"]["threshold_pct"] == 50

    # --- ... and saves, onto the licenses as they are then: an operator raises reviewer's
    # owned seats while the page is open, and the page's save must not put back its old copy
    lics = api(stack, "settings")["licenses"]
    for l in lics:
        if l["type"] == "reviewer":
            l["owned"] = 5
    ctl("settings", "--dir", stack.dir, ORG, "--set", json.dumps({"licenses": lics}))
    drv.find_element(By.ID, "gear-btn").click()
    until(drv, "document.querySelector('#threshold-dialog').open", "the dialog again")
    pct.clear()
    pct.send_keys("75")
    notify = drv.find_element(By.ID, "th-notify")
    if not notify.is_selected():
        notify.click()
    emails = drv.find_element(By.ID, "th-emails")
    emails.clear()
    emails.send_keys("it@acme.example, boss@acme.example")
    drv.find_element(By.ID, "th-save").click()
    until(drv, "!document.querySelector('#threshold-dialog').open", "the save")
    st = api(stack, "settings")
    lic = {l["type"]: l for l in st["licenses"]}
    assert lic["creator"]["threshold_pct"] == 75
    assert lic["reviewer"]["owned"] == 5 and lic["stakeholder"]["model"] == "named"
    assert st["notify_enabled"] is True
    assert st["notify_emails"] == ["it@acme.example", "boss@acme.example"]
    until(drv, "(document.querySelector('#cards [data-card=\"days_over_threshold\"]') || {})"
               ".textContent.includes('threshold 75% = 3 seats')", "the cards at 75%")
    until(drv, idle(drv), "the chart at 75%")
    assert "Threshold 75%" in chart_data(drv)["datasets"][3]["label"]

    # --- the user inactivity timeout saves as soon as it changes
    ut = Select(drv.find_element(By.ID, "user-timeout"))
    assert [o.get_attribute("value") for o in ut.options] == \
        ["5", "10", "15", "30", "45", "60", "90", "120"]
    assert ut.first_selected_option.get_attribute("value") == "30"
    assert Select(drv.find_element(By.ID, "license-timeout")).first_selected_option \
        .get_attribute("value") == "60"
    ut.select_by_value("15")
    until(drv, "document.querySelector('#user-timeout-status').textContent.startsWith('Saved')",
          "the timeout saved")
    st = api(stack, "settings")
    assert st["user_inactivity_timeout_s"] == 900
    assert st["license_inactivity_timeout_s"] == 3600

    # --- the tables
    rows = js(drv, """return [...document.querySelectorAll('#licenses-table tbody tr')].map(
        r => [...r.children].map(c => c.textContent));""")
    assert [r[0] for r in rows] == ["creator", "reviewer", "stakeholder"]
    assert rows[0][1:4] == ["Floating", "4", "1"] and rows[2][1] == "Named"
    assert "Minor" in rows[0][4] and "60 days left" in rows[0][4]
    assert "No expiry date" in rows[1][4]
    assert "Jira, Salesforce" in drv.find_element(By.ID, "integrations").text
    sess = js(drv, """return [...document.querySelectorAll('#sessions-table tbody tr')].map(
        r => [...r.children].map(c => c.textContent));""")
    assert [r[0] for r in sess] == ["frank@acme.example"] and sess[0][1] == "creator"

    # --- export: an xlsx download of the selection, with the token
    drv.find_element(By.ID, "export-btn").click()

    def downloaded(_):
        names = [n for n in os.listdir(drv.downloads) if not n.endswith(".crdownload")]
        return names[0] if names else None
    name = until(drv, downloaded, "the export download", timeout=20)
    with open(os.path.join(drv.downloads, name), "rb") as f:
        assert f.read(2) == b"PK", f"{name} is not an xlsx file"
    assert name.endswith(".xlsx")

    # --- print: the report opens in a window of its own
    main = drv.current_window_handle
    drv.find_element(By.ID, "print-btn").click()
    until(drv, lambda d: len(d.window_handles) == 2, "the report window")
    drv.switch_to.window([w for w in drv.window_handles if w != main][0])
    until(drv, "document.body && !document.body.textContent.includes('Preparing the report')"
               " && document.body.textContent.length > 50", "the report")
    assert "creator" in drv.page_source
    shot(drv, "8-print-report")
    drv.close()
    drv.switch_to.window(main)

    # --- a reload keeps the sign-in and the saved timeout
    drv.refresh()
    until(drv, "!document.querySelector('#dashboard').hidden && "
               "document.querySelectorAll('#cards [data-card]').length >= 6 && " + idle(drv),
          "the dashboard after a reload")
    assert Select(drv.find_element(By.ID, "user-timeout")).first_selected_option \
        .get_attribute("value") == "15"
    shot(drv, "6-after-reload")

    # --- a narrow screen
    drv.set_window_size(400, 900)
    time.sleep(0.3)
    overflow = js(drv, "return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a narrow screen"
    shot(drv, "7-narrow", width=400)

    errors = [m for m in console(drv) if m["level"] == "SEVERE"]
    assert not errors, json.dumps(errors, indent=1)
    assert time.monotonic() - t0 < 90


def test_dashboard_org_picker(stack, browser):
    """The administrator's token sees two orgs: a picker lists them, the
    link's org is preselected, and picking the other one opens it."""
    drv = browser
    for org, tz in (("acme", TZ), ("beta", "UTC")):
        r = stack.put(f"/v1/orgs/{org}/settings", {"timezone": tz})
        assert r.status_code == 200, r.text
    drv.get(f"{stack.url}/?org=beta")
    until(drv, "!document.querySelector('#signin').hidden", "the sign-in form")
    assert not drv.find_element(By.ID, "signin-org").is_displayed()  # no org to type
    drv.find_element(By.ID, "token-input").send_keys(stack.token)
    drv.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    until(drv, "!document.querySelector('#dashboard').hidden && " + idle(drv), "the dashboard")
    sel = Select(drv.find_element(By.ID, "org-select"))
    assert drv.find_element(By.ID, "org-select").is_displayed()
    assert not drv.find_element(By.ID, "org-input").is_displayed()
    assert [o.get_attribute("value") for o in sel.options] == ["acme", "beta"]
    assert sel.first_selected_option.get_attribute("value") == "beta"
    assert drv.find_element(By.ID, "org-name").text == "beta"
    sel.select_by_value("acme")
    until(drv, "document.querySelector('#org-name').textContent === 'acme' && " + idle(drv),
          "the other org")
    assert f"Times in {TZ}" in drv.find_element(By.ID, "tz-note").text
    assert "org=acme" in drv.current_url
    errors = [m for m in console(drv) if m["level"] == "SEVERE"]
    assert not errors, json.dumps(errors, indent=1)


def test_dashboard_timeout_in_force_shown_exactly(stack, browser):
    """The API takes any number of seconds for a timeout (60 to 86400 for the
    user's): one that is none of the drop-down's choices is shown exactly as
    an option of its own, "1 min 30 s (current)", never rounded to a
    neighbour ("2 minutes"); choosing another saves it and the odd one goes."""
    drv = browser
    r = stack.put(f"/v1/orgs/{ORG}/settings", {"timezone": TZ, "user_inactivity_timeout_s": 90,
                                               "license_inactivity_timeout_s": 5430})
    assert r.status_code == 200, r.text
    sign_in(drv, stack, ORG)
    until(drv, "!document.querySelector('#dashboard').hidden && "
               "!document.querySelector('#user-timeout').disabled", "the settings")
    ut = Select(drv.find_element(By.ID, "user-timeout"))
    assert ut.first_selected_option.text == "1 min 30 s (current)"
    texts = [o.text for o in ut.options]
    assert texts[:3] == ["1 min 30 s (current)", "5 minutes", "10 minutes"], texts
    assert not [t for t in texts if t.startswith("2 minutes")], texts
    lt = Select(drv.find_element(By.ID, "license-timeout"))
    assert lt.first_selected_option.text == "1 h 30 min 30 s (current)"
    assert [o.text for o in lt.options][6:9] == \
        ["90 minutes", "1 h 30 min 30 s (current)", "2 hours"]
    # showing it saved nothing
    assert api(stack, "settings")["user_inactivity_timeout_s"] == 90
    shot(drv, "9-timeout-exact")

    ut.select_by_value("15")
    until(drv, "document.querySelector('#user-timeout-status').textContent === "
               "'Saved: the user inactivity timeout is 15 minutes.'", "the timeout saved")
    assert api(stack, "settings")["user_inactivity_timeout_s"] == 900
    ut = Select(drv.find_element(By.ID, "user-timeout"))
    assert [o.get_attribute("value") for o in ut.options] == \
        ["5", "10", "15", "30", "45", "60", "90", "120"]
    assert ut.first_selected_option.text == "15 minutes"
    errors = [m for m in console(drv) if m["level"] == "SEVERE"]
    assert not errors, json.dumps(errors, indent=1)


def test_dashboard_recovers_and_keeps_what_it_does_not_show(stack, browser):
    """Review findings of 2026-11-29, in an org of their own:
    - a link with a period name that is no period (`constructor`) opens the page;
    - saving a threshold keeps the org's notifications as they are (on, no
      address, a webhook): the dialog no longer refuses an empty address list
      and no longer sends the notification fields it did not change;
    - a load that failed (usage blocked) leaves Apply enabled with the chart
      emptied, not the old one, and Apply loads it once the server answers;
    - a period with today in it follows new usage at each refresh: the peak
      card, not only the current-usage one."""
    drv = browser
    org = "gamma"
    r = stack.put(f"/v1/orgs/{org}/settings", {
        "timezone": "UTC", "notify_enabled": True, "notify_emails": [],
        "webhooks": [{"url": "https://hooks.gamma.example/licmon"}],
        "licenses": [{"type": "creator", "model": "floating", "owned": 4, "threshold_pct": 50}]})
    assert r.status_code == 200, r.text
    now = now_ms()
    stack.send([{"event_id": "g-1", "org": org, "user": "a@gamma.example", "ts": now - 60_000,
                 "kind": "login", "license_type": "creator"}])
    stack.wait()
    sign_in(drv, stack, org, "type=creator&period=constructor")
    until(drv, "!document.querySelector('#dashboard').hidden && "
               "document.querySelectorAll('#cards [data-card]').length >= 6 && " + idle(drv),
          "the dashboard of a link with no such period")

    # today: one seat at its peak; a second login, and the refresh shows it
    Select(drv.find_element(By.ID, "period-select")).select_by_value("today")
    drv.find_element(By.ID, "apply-btn").click()
    until(drv, idle(drv) + " && window.licmonDashboard.state.applied.period === 'today'",
          "today applied")
    assert card(drv, "#cards", "peak_usage")["value"] == "1"
    stack.send([{"event_id": "g-2", "org": org, "user": "b@gamma.example", "ts": now_ms(),
                 "kind": "login", "license_type": "creator"}])
    stack.wait()
    js(drv, "return window.licmonDashboard.refresh();")
    until(drv, lambda d: card(d, "#cards", "peak_usage")["value"] == "2", "the peak card to follow")
    until(drv, lambda d: max(chart_data(d)["datasets"][0]["data"]) == 2, "the chart to follow")

    # the threshold saved alone: notifications stay on, the webhook stays
    drv.find_element(By.ID, "gear-btn").click()
    until(drv, "document.querySelector('#threshold-dialog').open", "the threshold dialog")
    assert drv.find_element(By.ID, "th-notify").is_selected()
    pct = drv.find_element(By.ID, "th-pct")
    pct.clear()
    pct.send_keys("75")
    drv.find_element(By.ID, "th-save").click()
    until(drv, "!document.querySelector('#threshold-dialog').open", "the save")
    s = stack.get(f"/v1/orgs/{org}/settings").json()
    assert s["licenses"][0]["threshold_pct"] == 75
    assert s["notify_enabled"] is True and s["notify_emails"] == []
    assert [w["url"] for w in s["webhooks"]] == ["https://hooks.gamma.example/licmon"]

    # usage blocked: the 30 days fail to load; Apply stays enabled, the chart is emptied
    drv.execute_cdp_cmd("Network.enable", {})
    drv.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/usage?*"]})
    Select(drv.find_element(By.ID, "period-select")).select_by_value("30")
    drv.find_element(By.ID, "apply-btn").click()
    until(drv, "!document.querySelector('#banner').hidden && "
               "!document.querySelector('#apply-btn').disabled && " + idle(drv), "the failure")
    assert js(drv, "return window.licmonDashboard.state.rows.length") == 0
    assert "License usage" in js(drv, "return document.querySelector('#chart-table').textContent")
    assert "try again" in drv.find_element(By.ID, "selection-note").text
    drv.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    drv.find_element(By.ID, "apply-btn").click()
    until(drv, "document.querySelector('#banner').hidden && "
               "document.querySelector('#apply-btn').disabled && " + idle(drv)
          + " && window.licmonDashboard.state.rows.length === 30", "the 30 days loaded")
    errors = [m for m in console(drv) if m["level"] == "SEVERE"
              and "ERR_BLOCKED_BY_CLIENT" not in m["message"]]
    assert not errors, json.dumps(errors, indent=1)
