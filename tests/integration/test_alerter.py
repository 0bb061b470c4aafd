"""The alerter end to end (SPEC.md section 6): a real stack under `licmonctl up`
whose alerter talks to a real SMTP server (aiosmtpd, in this process) and a
real webhook receiver (http.server, in a thread). Exactly one mail per
crossing, none while usage hovers, a crossing made while the mail server is
down arrives once after it comes back, kill -9 of the alerter repeats
nothing, a 550 reply is recorded as failed, webhook signatures verify, and an
expiry reminder goes out once.

Each test works on its own org, so the tests share one stack (module
fixture) and stay well under a minute together."""
import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from conftest import (BIN, Stack, faketime_env, free_port, now_ms, running_stack,
                      sanitizer_reports, wait_for)

SECRET_RAW = b"licmon-test-webhook-key-0123456789"
SECRET = "whsec_" + base64.b64encode(SECRET_RAW).decode()
NOTICE_S = 2.0   # SPEC.md: a crossing is noticed within 2 s of its event arriving
SLACK_S = 1.5    # plus one SMTP conversation on a busy test machine


# ---------------------------------------------------------------- servers

class MailHandler:
    """aiosmtpd handler: keeps every accepted message; refuses reject@* with 550."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mails = []      # (recipient, email.message.EmailMessage)
        self.refused = []    # recipients answered 550

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject@"):
            with self.lock:
                self.refused.append(address)
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.mails.append((rcpt, msg))
        return "250 Message accepted for delivery"

    def to(self, domain):
        with self.lock:
            return [m for r, m in self.mails if r.endswith("@" + domain)]


class MailServer:
    def __init__(self):
        self.port = free_port()
        self.handler = MailHandler()
        self.controller = None

    def start(self):
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None


class HookHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with self.server.lock:
            self.server.posts.append((self.path, dict(self.headers.items()), body))
            busy = self.path in self.server.busy
        self.send_response(404 if self.path.startswith("/gone") else 503 if busy else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def hooks_to(server, path):
    with server.lock:
        return [(h, b) for p, h, b in server.posts if p == path]


# ---------------------------------------------------------------- helpers

class Clock:
    """Event times: now, strictly increasing across the whole module."""

    def __init__(self):
        self.t = now_ms()

    def __call__(self):
        self.t = max(self.t + 10, now_ms())
        return self.t


def login(clock, org, user, n, ltype="creator"):
    return {"event_id": f"{org}-{user}-in-{n}", "org": org, "user": f"{user}@{org}.example",
            "ts": clock(), "kind": "login", "license_type": ltype}


def logout(clock, org, user, n):
    return {"event_id": f"{org}-{user}-out-{n}", "org": org, "user": f"{user}@{org}.example",
            "ts": clock(), "kind": "logout"}


def set_settings(stack, org, body):
    r = stack.put(f"/v1/orgs/{org}/settings", body)
    assert r.status_code == 200, r.text
    return r.json()


def floating(org, emails, owned=10, pct=80, hooks=(), **extra):
    body = {"notify_emails": list(emails), "webhooks": list(hooks),
            "licenses": [{"type": "creator", "model": "floating", "owned": owned,
                          "threshold_pct": pct}]}
    body.update(extra)
    return body


def message_ids(mails):
    return {m["Message-ID"] for m in mails}


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def env():
    mail = MailServer()
    mail.start()
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), HookHandler)
    hooks.lock = threading.Lock()
    hooks.posts = []
    hooks.busy = set()   # paths answered 503 (retried)
    t = threading.Thread(target=hooks.serve_forever, daemon=True)
    t.start()
    folder = tempfile.mkdtemp(prefix="lm-al-", dir="/tmp")
    e = dict(os.environ,
             LICMON_SMTP_URL=f"smtp://127.0.0.1:{mail.port}",
             LICMON_SMTP_FROM="licmon-alerts@licmon.example",
             LICMON_PUBLIC_URL="https://dash.licmon.example",
             LICMON_ALERTER_RETRY_MIN_MS="200",
             LICMON_ALERTER_RETRY_MAX_MS="1000",
             LICMON_ALERTER_SEND_TIMEOUT_MS="5000")
    stack = Stack(folder, free_port(), env=e)
    stack.up()
    try:
        yield {"stack": stack, "mail": mail, "hooks": hooks,
               "hook_url": f"http://127.0.0.1:{hooks.server_address[1]}", "clock": Clock()}
    finally:
        stack.down()
        mail.stop()
        hooks.shutdown()
        reports = sanitizer_reports(folder)
        if os.environ.get("LICMON_KEEP_TMP") is None:
            shutil.rmtree(folder, ignore_errors=True)
        assert not reports, "sanitizer reports:\n" + "\n".join(reports[:20])


# ------------------------------------------------------------------ tests

def test_one_mail_per_crossing_and_signed_webhooks(env):
    stack, mail, hooks, clock = env["stack"], env["mail"], env["hooks"], env["clock"]
    org = "t1"
    set_settings(stack, org, floating(org, ["ops@t1.example", "cfo@t1.example"],
                                      hooks=[{"url": env["hook_url"] + "/t1", "secret": SECRET}],
                                      timezone="Europe/Berlin"))
    # threshold ceil(10*80/100) = 8; clear level 8 - max(1, ceil(0.5)) = 7
    stack.send([login(clock, org, f"u{i}", 1) for i in range(1, 8)])
    stack.wait()
    time.sleep(0.5)
    assert mail.handler.to("t1.example") == []

    sent_at = time.monotonic()
    stack.send([login(clock, org, "u8", 1)])
    got = wait_for(lambda: len(mail.handler.to("t1.example")) >= 2, NOTICE_S + SLACK_S)
    took = time.monotonic() - sent_at
    assert got, "no mail within %.1f s of the crossing" % (NOTICE_S + SLACK_S)
    print(f"crossing to both mails accepted: {took:.2f} s")

    # hovering between the clear level (7) and above: nothing more
    n = 2
    for _ in range(3):
        stack.send([logout(clock, org, "u8", n)])
        stack.send([login(clock, org, "u8", n)])
        n += 1
    stack.send([login(clock, org, "u9", 1), logout(clock, org, "u9", 1)])
    stack.wait()
    time.sleep(1.0)
    assert len(mail.handler.to("t1.example")) == 2

    # below the clear level, then up again: the second crossing
    stack.send([logout(clock, org, "u8", n), logout(clock, org, "u7", n)])   # 6
    stack.send([login(clock, org, "u7", n + 1), login(clock, org, "u8", n + 1)])  # 8
    assert wait_for(lambda: len(mail.handler.to("t1.example")) >= 4, NOTICE_S + SLACK_S)
    stack.wait()
    time.sleep(1.0)
    mails = mail.handler.to("t1.example")
    assert len(mails) == 4
    assert len(message_ids(mails)) == 4
    assert sorted(str(m["To"]).strip("<>") for m in mails) == \
        ["cfo@t1.example"] * 2 + ["ops@t1.example"] * 2
    for m in mails:
        for h in ("Date", "From", "To", "Subject", "Message-ID"):
            assert m[h], f"header {h} missing"
        assert "licmon-alerts@licmon.example" in m["From"]
        assert "t1" in m["Subject"] and "creator" in m["Subject"]
        body = m.get_content()
        assert "8 of 10 owned" in body
        assert "80% = 8 seats" in body
        assert "(Europe/Berlin)" in body
        assert "https://dash.licmon.example/?org=t1&type=creator" in body

    # the webhook: two POSTs, each signed per Standard Webhooks
    posts = wait_for(lambda: len(hooks_to(hooks, "/t1")) >= 2 and hooks_to(hooks, "/t1"), 3)
    assert len(posts) == 2
    ids = set()
    for headers, body in posts:
        wid, ts = headers["webhook-id"], headers["webhook-timestamp"]
        signed = f"{wid}.{ts}.".encode() + body
        want = base64.b64encode(hmac.new(SECRET_RAW, signed, hashlib.sha256).digest()).decode()
        assert headers["webhook-signature"] == "v1," + want
        assert abs(int(ts) - time.time()) < 300
        doc = json.loads(body)
        assert doc["id"] == wid
        assert doc["type"] == "license.threshold_reached"
        assert doc["data"]["org"] == "t1" and doc["data"]["in_use"] == 8
        ids.add(wid)
    assert len(ids) == 2


def test_mail_server_down_then_back(env):
    stack, mail, clock = env["stack"], env["mail"], env["clock"]
    org = "t2"
    set_settings(stack, org, floating(org, ["ops@t2.example"], owned=4, pct=50))  # threshold 2
    mail.stop()
    try:
        stack.send([login(clock, org, "a", 1), login(clock, org, "b", 1)])
        stack.wait()
        time.sleep(2.0)   # a few refused attempts
        assert mail.handler.to("t2.example") == []
        m = stack.metrics("alerter")
        assert m['licmon_alerter_outbox_depth'] >= 1
    finally:
        mail.start()
    assert wait_for(lambda: mail.handler.to("t2.example"), 5), "not delivered after the server came back"
    time.sleep(1.5)
    assert len(mail.handler.to("t2.example")) == 1
    m = stack.metrics("alerter")
    assert m['licmon_alerter_notifications_total{outcome="retried"}'] >= 1
    assert wait_for(lambda: stack.metrics("alerter")['licmon_alerter_outbox_depth'] == 0, 3)


def test_kill_alerter_mid_episode_repeats_nothing(env):
    stack, mail, clock = env["stack"], env["mail"], env["clock"]
    org = "t3"
    set_settings(stack, org, floating(org, ["ops@t3.example"], owned=5, pct=60))  # threshold 3
    stack.send([login(clock, org, "a", 1), login(clock, org, "b", 1)])
    stack.wait()
    # the crossing, and a kill -9 right behind it
    stack.send([login(clock, org, "c", 1)])
    stack.restart("alerter")
    assert wait_for(lambda: mail.handler.to("t3.example"), 5)
    # mid-episode: kill again, hover (3 -> 2 is the clear level, not below), kill again
    stack.restart("alerter")
    stack.send([logout(clock, org, "c", 1)])
    stack.send([login(clock, org, "c", 2)])
    stack.wait()
    stack.restart("alerter")
    stack.send([login(clock, org, "d", 1)])
    stack.wait()
    time.sleep(1.5)
    mails = mail.handler.to("t3.example")
    # a resend can only be the unavoidable one, with the same Message-ID
    assert len(message_ids(mails)) == 1, [m["Message-ID"] for m in mails]
    # down below the clear level and up again: exactly one more
    stack.send([logout(clock, org, u, 9) for u in ("b", "c", "d")])   # 1
    stack.send([login(clock, org, u, 9) for u in ("b", "c")])          # 3
    assert wait_for(lambda: len(message_ids(mail.handler.to("t3.example"))) >= 2, 5)
    time.sleep(1.0)
    assert len(message_ids(mail.handler.to("t3.example"))) == 2


def test_refused_recipient_is_recorded_failed(env):
    stack, mail, hooks, clock = env["stack"], env["mail"], env["hooks"], env["clock"]
    org = "t4"
    before = stack.metrics("alerter")
    set_settings(stack, org, floating(
        org, ["reject@t4.example", "ok@t4.example"], owned=2, pct=100,
        hooks=[{"url": env["hook_url"] + "/gone", "secret": "plain secret"}]))
    stack.send([login(clock, org, "a", 1), login(clock, org, "b", 1)])
    assert wait_for(lambda: mail.handler.to("t4.example"), 5)

    def failed():
        return stack.metrics("alerter")['licmon_alerter_notifications_total{outcome="failed"}']
    # the 550 and the webhook's 404 are both final
    fail_key = 'licmon_alerter_notifications_total{outcome="failed"}'
    assert wait_for(lambda: failed() >= before.get(fail_key, 0) + 2, 5)
    time.sleep(1.5)   # and never retried
    assert failed() == before.get(fail_key, 0) + 2
    assert mail.handler.refused.count("reject@t4.example") == 1
    assert len(hooks_to(hooks, "/gone")) == 1
    headers, body = hooks_to(hooks, "/gone")[0]
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    want = base64.b64encode(hmac.new(b"plain secret", signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == "v1," + want
    with open(os.path.join(stack.dir, "logs", "alerter.log")) as f:
        log = f.read()
    assert "reject@t4.example refused for good" in log
    assert len(mail.handler.to("t4.example")) == 1


def test_queued_notifications_follow_the_settings(env):
    """Notifications still waiting for their servers when the admin changes
    the settings: the address removed gets no mail and the webhook removed
    no more POSTs (both recorded as cancelled), the address kept (written in
    another case) gets its mail, and the webhook kept gets its retry signed
    with the secret rotated meanwhile (and with the old one, which the
    receiver may still hold: Standard Webhooks' list of signatures)."""
    stack, mail, hooks, clock = env["stack"], env["mail"], env["hooks"], env["clock"]
    org, url = "t6", env["hook_url"]
    key = 'licmon_alerter_notifications_total{outcome="cancelled"}'
    before = stack.metrics("alerter").get(key, 0)
    with hooks.lock:
        hooks.busy.update({"/t6", "/t6-gone"})
    set_settings(stack, org, floating(
        org, ["keep@t6.example", "gone@t6.example"], owned=2, pct=100,
        hooks=[{"url": url + "/t6", "secret": "old secret"},
               {"url": url + "/t6-gone", "secret": "s2"}]))
    mail.stop()
    try:
        stack.send([login(clock, org, "a", 1), login(clock, org, "b", 1)])
        assert wait_for(lambda: hooks_to(hooks, "/t6-gone"), 5)   # tried, 503: retried
        set_settings(stack, org, {"notify_emails": ["KEEP@t6.example"],
                                  "webhooks": [{"url": url + "/t6", "secret": "new secret"}]})
        # at their next retry the alerter, holding the new settings, cancels two
        assert wait_for(lambda: stack.metrics("alerter").get(key, 0) >= before + 2, 10)
        gone_posts = len(hooks_to(hooks, "/t6-gone"))
    finally:
        mail.start()
        with hooks.lock:
            hooks.busy.clear()
            tried = len([p for p, _, _ in hooks.posts if p == "/t6"])
    assert wait_for(lambda: mail.handler.to("t6.example"), 5), "the address kept got no mail"
    assert wait_for(lambda: len(hooks_to(hooks, "/t6")) > tried, 5), "the webhook kept got none"
    time.sleep(2.0)   # the retries of what was cancelled would have come by now
    assert [str(m["To"]).strip("<>") for m in mail.handler.to("t6.example")] == \
        ["keep@t6.example"]
    assert len(hooks_to(hooks, "/t6-gone")) == gone_posts
    assert stack.metrics("alerter").get(key, 0) == before + 2
    headers, body = hooks_to(hooks, "/t6")[-1]
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    sigs = ["v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode()
            for k in (b"new secret", b"old secret")]
    assert headers["webhook-signature"] == " ".join(sigs)
    with open(os.path.join(stack.dir, "logs", "alerter.log")) as f:
        log = f.read()
    assert "gone@t6.example cancelled: the address was removed from notify_emails" in log
    assert "/t6-gone cancelled: the webhook was removed from webhooks" in log
    assert wait_for(lambda: stack.metrics("alerter")['licmon_alerter_outbox_depth'] == 0, 3)


def test_expiry_reminder_once(env):
    stack, mail = env["stack"], env["mail"]
    org = "t5"
    expires = (datetime.now(timezone.utc) + timedelta(days=7)).date().isoformat()
    body = floating(org, ["ops@t5.example"])
    body["licenses"][0]["expires"] = expires
    set_settings(stack, org, body)
    assert wait_for(lambda: mail.handler.to("t5.example"), 5)
    set_settings(stack, org, {"minor_margin_pct": 12})   # another change: no second reminder
    time.sleep(1.5)
    mails = mail.handler.to("t5.example")
    assert len(mails) == 1
    assert f"expires in 7 days ({expires})" in mails[0]["Subject"]


def test_history_is_not_mailed_but_a_crossing_made_by_settings_is(env):
    """A backfill of three-day-old events crosses the threshold: the crossing
    is history (--crossing-max-age-ms, a day), so it is followed and counted
    but not mailed; the next live crossing is. New settings that put usage
    over the threshold make a crossing at the moment they take effect: it is
    mailed, dated then, not at usage's last change three days before."""
    stack, mail, clock = env["stack"], env["mail"], env["clock"]
    key = "licmon_alerter_crossings_not_notified_total"
    before = stack.metrics("alerter").get(key, 0)
    old = now_ms() - 3 * 86400 * 1000
    old_day = datetime.fromtimestamp(old / 1000, timezone.utc).date().isoformat()

    def at(org, user, kind, ms, n=1):
        e = {"event_id": f"{org}-{user}-{kind}-old-{n}", "org": org, "ts": ms, "kind": kind,
             "user": f"{user}@{org}.example"}
        if kind == "login":
            e["license_type"] = "creator"
        return e

    org = "t10"
    set_settings(stack, org, floating(org, ["ops@t10.example"], owned=2, pct=100))
    stack.send([at(org, "a", "login", old), at(org, "b", "login", old + 1000),
                at(org, "a", "logout", old + 60000), at(org, "b", "logout", old + 61000)])
    stack.wait()
    assert wait_for(lambda: stack.metrics("alerter").get(key, 0) == before + 1, 5)
    time.sleep(1.0)
    assert mail.handler.to("t10.example") == []
    with open(os.path.join(stack.dir, "logs", "alerter.log")) as f:
        assert "history (a backfill, or the pipeline stopped), not notified" in f.read()
    stack.send([login(clock, org, "a", 1), login(clock, org, "b", 1)])
    assert wait_for(lambda: mail.handler.to("t10.example"), NOTICE_S + SLACK_S)

    org = "t12"
    set_settings(stack, org, floating(org, ["ops@t12.example"], owned=10, pct=80))
    stack.send([at(org, f"u{i}", "login", old + i * 1000) for i in range(5)])
    stack.wait()
    time.sleep(0.5)
    assert mail.handler.to("t12.example") == []
    set_settings(stack, org, {"licenses": [{"type": "creator", "model": "floating",
                                            "owned": 10, "threshold_pct": 50}]})
    assert wait_for(lambda: mail.handler.to("t12.example"), NOTICE_S + SLACK_S)
    body = mail.handler.to("t12.example")[0].get_content()
    when = [line for line in body.splitlines() if line.startswith("When:")]
    assert when and old_day not in when[0], body
    assert stack.metrics("alerter").get(key, 0) == before + 1


@pytest.mark.parametrize("how", ["restart", "resume"])
def test_expiry_waits_for_the_settings_in_force(env, how):
    """Expiry reminders are judged on the settings in force, not on older ones
    the alerter is still working through: while it is stopped (SIGSTOP) the
    admin sets an expiry date (the 7-day stage is due), changes the settings
    a hundred times and finally the recipient. Killed and restarted, or
    resumed (SIGCONT: the fetch reply waiting in its socket tells of a log
    head long since passed), the alerter catches up over several fetch pages,
    and the reminder goes to the new recipient only."""
    stack, mail = env["stack"], env["mail"]
    org = "t11" if how == "restart" else "t13"
    set_settings(stack, org, floating(org, [f"old@{org}.example"]))
    stack.wait()
    expires = (datetime.now(timezone.utc) + timedelta(days=6)).date().isoformat()
    pid = stack.pid("alerter")
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        body = floating(org, [f"old@{org}.example"])
        body["licenses"][0]["expires"] = expires
        set_settings(stack, org, body)
        for i in range(100):   # more aggregator records than one fetch page (64)
            set_settings(stack, org, {"minor_margin_pct": 10 + i % 2})
        set_settings(stack, org, {"notify_emails": [f"new@{org}.example"]})
    finally:
        if how == "restart":
            stack.restart("alerter")
        else:
            # stopped for longer than a fetch can wait (1 s) and its reply
            # take (0.5 s): a reply read later is not taken for the head
            time.sleep(max(0.0, stopped + 3.0 - time.monotonic()))
            os.kill(pid, signal.SIGCONT)
    assert wait_for(lambda: mail.handler.to(f"{org}.example"), 10)
    time.sleep(1.5)
    mails = mail.handler.to(f"{org}.example")
    assert [str(m["To"]).strip("<>") for m in mails] == [f"new@{org}.example"]
    assert f"expires in 6 days ({expires})" in mails[0]["Subject"]


def test_a_crossing_made_by_settings_seen_late_is_history():
    """--crossing-max-age-ms of 3 s: new settings that put usage over the
    threshold while the alerter keeps up are notified; the same while it is
    stopped for 6 s are history when it resumes (they were made at some
    moment since it last kept up, so possibly that long before)."""
    mail = MailServer()
    mail.start()
    e = dict(os.environ, LICMON_SMTP_URL=f"smtp://127.0.0.1:{mail.port}",
             LICMON_SMTP_FROM="licmon-alerts@licmon.example",
             LICMON_ALERTER_CROSSING_MAX_AGE_MS="3000")
    lower = {"licenses": [{"type": "creator", "model": "floating", "owned": 10,
                           "threshold_pct": 20}]}
    clock = Clock()
    try:
        with running_stack(env=e) as stack:
            for org in ("s1", "s2"):
                set_settings(stack, org, floating(org, [f"ops@{org}.example"]))
                stack.send([login(clock, org, f"u{i}", 1) for i in range(3)])
            stack.wait()
            set_settings(stack, "s1", lower)          # kept up with: notified
            assert wait_for(lambda: mail.handler.to("s1.example"), NOTICE_S + SLACK_S)
            pid = stack.pid("alerter")
            os.kill(pid, signal.SIGSTOP)
            try:
                set_settings(stack, "s2", lower)
                time.sleep(6)
            finally:
                os.kill(pid, signal.SIGCONT)
            key = "licmon_alerter_crossings_not_notified_total"
            assert wait_for(lambda: stack.metrics("alerter").get(key, 0) == 1, 5)
            time.sleep(1.0)
            assert mail.handler.to("s2.example") == []
    finally:
        mail.stop()


def test_a_clock_step_sends_no_reminder_early(tmp_path):
    """The host's clock steps two weeks ahead for a few seconds (README: a
    clock that is wrong). The alerter's clock runs on without the step, so
    the license expiring in 20 days gets no "7 days" reminder, which would
    also have been its last before the day it expires."""
    mail = MailServer()
    mail.start()
    step = tmp_path / "faketime"
    step.write_text("+0\n")
    e = faketime_env(step, LICMON_SMTP_URL=f"smtp://127.0.0.1:{mail.port}",
                     LICMON_SMTP_FROM="licmon-alerts@licmon.example",
                     LICMON_ALERTER_EXPIRY_CHECK_MS="200")
    try:
        with running_stack(env=e) as stack:
            expires = (datetime.now(timezone.utc) + timedelta(days=20)).date().isoformat()
            body = floating("t9", ["ops@t9.example"])
            body["licenses"][0]["expires"] = expires
            set_settings(stack, "t9", body)
            assert wait_for(lambda: mail.handler.to("t9.example"), 5)
            step.write_text("+14d\n")
            assert wait_for(lambda: stack.metrics("alerter")["licmon_alerter_clock_step_ms"]
                            > 13 * 86400 * 1000, 10)
            time.sleep(2)  # ten expiry checks with the host clock two weeks ahead
            step.write_text("+0\n")
            assert wait_for(lambda: stack.metrics("alerter")["licmon_alerter_clock_step_ms"]
                            == 0, 10)
            mails = mail.handler.to("t9.example")
            assert [m["Subject"] for m in mails] == [mails[0]["Subject"]]
            assert f"expires in 20 days ({expires})" in mails[0]["Subject"]
            # no LICMON_PUBLIC_URL: the link goes to this stack's dashboard
            # (licmonctl up --http), not to the alerter's default address
            assert f"{stack.url}/?org=t9&type=creator" in mails[0].get_content()
    finally:
        mail.stop()


def test_smtp_from_that_headers_cannot_carry_is_refused():
    """--smtp-from goes into the From header as it is: a line break would start
    another header (Bcc: ...) and a non-ASCII name would go out unencoded, so
    both are refused at start, naming the flag."""
    folder = tempfile.mkdtemp(prefix="lm-from-", dir="/tmp")
    try:
        for bad in ("Alerts <a@acme.example>\r\nBcc: x@evil.example", "Alértes <a@acme.example>",
                    "licmon"):
            p = subprocess.run([os.path.join(BIN, "licmon-alerter"), "--dir", folder,
                                "--smtp-from", bad], capture_output=True, text=True, timeout=10)
            assert p.returncode == 2 and "--smtp-from" in p.stderr, (bad, p.stderr)
            assert "Bcc" not in p.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)
