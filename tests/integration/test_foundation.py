"""The walking skeleton end to end: one login sent with licmonctl shows as
in_use 1 in the exporter's answer, a logout brings it back to 0; bad input
gets clear reasons; a killed program is restarted and the numbers carry on."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import BIN, PROGRAMS, Stack, ctl, ev, free_port, now_ms, running_stack, wait_for


def in_use(stack, org, license_type):
    r = stack.get(f"/v1/orgs/{org}/licenses")
    assert r.status_code == 200, r.text
    body = r.json()
    for row in body["licenses"]:
        if row["type"] == license_type:
            return row["in_use"]
    return 0


def test_login_then_logout_end_to_end(stack):
    t = now_ms()
    stack.send([ev("e1", "login", ts=t, license_type="reviewer")])
    stack.wait()
    assert in_use(stack, "acme", "reviewer") == 1
    cur = stack.get("/v1/orgs/acme/current").json()
    assert [s["user"] for s in cur["sessions"]] == ["alice@acme.example"]
    assert cur["sessions"][0]["license_type"] == "reviewer"
    stack.send([ev("e2", "logout", ts=t + 1000)])
    stack.wait()
    assert in_use(stack, "acme", "reviewer") == 0
    assert stack.get("/v1/orgs/acme/current").json()["sessions"] == []


def test_up_keeps_ingest_on_the_endpoint_stack_json_names():
    """LICMON_INGEST_LISTEN in the environment of `licmonctl up` does not move ingest
    off the ipc socket that stack.json, `send --dir` and the demo use (it used to,
    and then nothing sent through the stack was ever acknowledged)."""
    env = dict(os.environ, LICMON_INGEST_LISTEN=f"tcp://0.0.0.0:{free_port()}")
    with running_stack(env=env) as stack:
        with open(os.path.join(stack.dir, "stack.json")) as f:
            assert json.load(f)["producer"].startswith("ipc://")
        stack.send([ev("e1", "login", ts=now_ms(), license_type="reviewer")])
        stack.wait()
        assert in_use(stack, "acme", "reviewer") == 1


# licmon-alerter's stand-in: its first run lets the real alerter answer its
# health check for a while, then kills it and exits (a program that dies after
# its start); later runs wait for the test's go-alerter before running it.
ALERTER_WRAPPER = """#!/usr/bin/python3
import os, signal, subprocess, sys, time, urllib.request
here, real = os.path.dirname(os.path.abspath(__file__)), {real!r}
if not os.path.exists(os.path.join(here, "alerter-killed")):
    hp = sys.argv[sys.argv.index("--health") + 1]
    p = subprocess.Popen([real] + sys.argv[1:])
    signal.signal(signal.SIGTERM, lambda *_: (p.kill(), sys.exit(1)))  # down: no orphan
    while True:
        try:
            if urllib.request.urlopen(f"http://{{hp}}/healthz", timeout=1).status == 200:
                break
        except OSError:
            pass
        time.sleep(0.05)
    time.sleep(1.5)  # up asks every 200 ms: it sees this one answer
    p.kill()
    p.wait()
    open(os.path.join(here, "alerter-killed"), "w").close()
    sys.exit(1)
while not os.path.exists(os.path.join(here, "go-alerter")):
    time.sleep(0.05)
os.execv(real, [real] + sys.argv[1:])
"""

# licmon-exporter's stand-in: runs the real one once the test says go-exporter
EXPORTER_WRAPPER = """#!/usr/bin/python3
import os, sys, time
here, real = os.path.dirname(os.path.abspath(__file__)), {real!r}
while not os.path.exists(os.path.join(here, "go-exporter")):
    time.sleep(0.05)
os.execv(real, [real] + sys.argv[1:])
"""


def test_up_returns_only_when_all_programs_answer_together(tmp_path):
    """up returns once all five programs and the API answer in the same round: an
    alerter that answered and then died does not count (up used to remember every
    program that had answered once, and said the stack was up while one was down)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for prog in ("ingest", "sessionizer", "aggregator"):
        os.symlink(os.path.join(BIN, f"licmon-{prog}"), bindir / f"licmon-{prog}")
    for prog, text in (("alerter", ALERTER_WRAPPER), ("exporter", EXPORTER_WRAPPER)):
        w = bindir / f"licmon-{prog}"
        w.write_text(text.format(real=os.path.join(BIN, f"licmon-{prog}")))
        w.chmod(0o755)
    folder = tempfile.mkdtemp(prefix="lm-", dir="/tmp")
    up = subprocess.Popen([os.path.join(BIN, "licmonctl"), "up", "--dir", folder, "--http",
                           f"127.0.0.1:{free_port()}", "--bin", str(bindir)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: (bindir / "alerter-killed").exists(), timeout=30)
        (bindir / "go-exporter").touch()
        with open(os.path.join(folder, "stack.json")) as f:
            stack = json.load(f)

        def answers(url):
            try:
                return requests.get(url, timeout=1).status_code == 200
            except requests.RequestException:
                return False
        assert wait_for(lambda: answers(f"http://{stack['health']['exporter']}/healthz")
                        and answers(stack["url"] + "healthz"), timeout=30)
        time.sleep(2)  # up's rounds, every 200 ms, with everything but the alerter up
        assert up.poll() is None, \
            f"up exited {up.returncode} while the alerter was down: {up.communicate()}"
        (bindir / "go-alerter").touch()
        out, err = up.communicate(timeout=60)
        assert up.returncode == 0, err
        assert "admin token:" in out
    finally:
        ctl("down", "--dir", folder, check=False, timeout=60)
        if up.poll() is None:
            up.kill()
            up.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_rejections_name_line_and_field(stack):
    t = now_ms()
    p = stack.send([
        ev("g1", "login", user="bob", ts=t, license_type="creator"),
        '{"event_id": "b1", "org": "acme", "user": "carol", "ts": %d, "kind": "login"}' % t,
        "this is not json",
        ev("g2", "activity", user="bob", ts=t + 5),
        ev("b3", "login", org="bad org!", ts=t, license_type="creator"),
    ], check=False)
    assert p.returncode == 1, p.stderr
    assert "accepted 2, duplicate 0, rejected 3" in p.stdout
    assert ":2: license_type: missing" in p.stderr
    assert ":3: not JSON" in p.stderr
    assert ":5: org:" in p.stderr
    stack.wait()
    assert in_use(stack, "acme", "creator") == 1


def test_nul_bytes_and_non_objects_are_rejected_by_line(stack):
    """A line holding a NUL byte is rejected with its number, never skipped
    (one starting with NUL used to look blank) nor cut at the NUL (the rest
    used to be ignored and the event sent); JSON that is not an object gets
    the reason that says so."""
    t = now_ms()
    p = stack.send([
        "\0" + json.dumps(ev("n1", "login", user="nul1", ts=t, license_type="creator")),
        json.dumps(ev("n2", "login", user="nul2", ts=t, license_type="creator")) + "\0{junk",
        ev("n3", "login", user="nul3", ts=t, license_type="creator"),
        "5",
    ], check=False)
    assert p.returncode == 1, p.stderr
    assert "accepted 1, duplicate 0, rejected 3" in p.stdout, (p.stdout, p.stderr)
    assert ":1: contains a NUL byte" in p.stderr and ":2: contains a NUL byte" in p.stderr
    assert ":4: an event must be a JSON object" in p.stderr, p.stderr


def test_a_byte_order_mark_opening_a_file_is_skipped(stack, tmp_path):
    """Windows editors start a UTF-8 file with a byte order mark: it is not
    part of the first event, in an NDJSON file or a JSON array."""
    t = now_ms()
    p = stack.send(["\ufeff" + json.dumps(ev("bom1", "login", user="bom1", ts=t,
                                                license_type="creator")),
                    ev("bom2", "login", user="bom2", ts=t, license_type="creator")])
    assert "accepted 2, duplicate 0, rejected 0" in p.stdout, (p.stdout, p.stderr)
    arr = tmp_path / "events.json"
    arr.write_bytes(b"\xef\xbb\xbf" + json.dumps(
        [ev("bom3", "login", user="bom3", ts=t, license_type="creator")]).encode())
    p = ctl("send", "--dir", stack.dir, str(arr))
    assert "accepted 1, duplicate 0, rejected 0" in p.stdout, (p.stdout, p.stderr)
    # 0xEF that starts no byte order mark: the first line is rejected, by number
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(b"\xef\xbf\xbd{}\n" + json.dumps(
        ev("bom4", "login", user="bom4", ts=t, license_type="creator")).encode() + b"\n")
    p = ctl("send", "--dir", stack.dir, str(bad), check=False)
    assert p.returncode == 1 and "accepted 1, duplicate 0, rejected 1" in p.stdout, p.stdout
    assert ":1: not JSON: starts with byte 0xEF" in p.stderr, p.stderr


def test_huge_events_are_rejected_one_by_one_not_the_batch(stack):
    """20 events of 900 KB each (over ingest's 16 MiB frame limit together):
    licmonctl cuts its batches by size too, so ingest judges every event and
    the valid one among them is delivered."""
    t = now_ms()
    big = "u" * (900 * 1024)
    lines = [ev("h0", "login", user="frank", ts=t, license_type="creator")]
    lines += [ev(f"h{i}", "login", user=big, ts=t, license_type="creator") for i in range(1, 21)]
    p = stack.send(lines, check=False)
    assert p.returncode == 1, p.stderr
    assert "accepted 1, duplicate 0, rejected 20" in p.stdout, (p.stdout, p.stderr[-500:])
    assert p.stderr.count("user: longer than") == 20
    assert ":21: user: longer than" in p.stderr
    stack.wait()
    cur = stack.get("/v1/orgs/acme/current").json()
    assert "frank" in [s["user"] for s in cur["sessions"]]


def test_send_cuts_batches_to_a_lowered_ingest_frame_limit(tmp_path):
    """With ingest's --max-frame-bytes lowered (64 KiB here), licmonctl's
    default batches of 1,000 events (190 KB, over twice the limit: ingest
    still answers a frame up to licmonctl's default size) are refused whole,
    and it says how to fit them; with send --max-frame-bytes at ingest's
    limit it cuts batches that fit, and every event is delivered."""
    t = now_ms()
    data = tmp_path / "events.ndjson"
    data.write_text("".join(json.dumps(ev(f"f{i}", "login", user=f"user{i:04d}-" + "u" * 100,
                                          ts=t, license_type="creator")) + "\n"
                            for i in range(1000)))
    env = dict(os.environ, LICMON_INGEST_MAX_FRAME_BYTES="65536",
               LICMON_INGEST_MAX_BATCH_EVENTS="600")
    with running_stack(env=env) as stack:
        p = ctl("send", "--dir", stack.dir, "--retries", "1", str(data), check=False)
        assert p.returncode == 1, (p.returncode, p.stderr[-500:])
        assert "over the limit of 65536" in p.stderr, p.stderr[-500:]
        assert "send --max-frame-bytes at most ingest's limit" in p.stderr
        p = ctl("send", "--dir", stack.dir, "--batch", "500", "--max-frame-bytes", "65536",
                str(data))
        assert "accepted 1000, duplicate 0, rejected 0" in p.stdout, p.stdout
        stack.wait()
        assert len(stack.get("/v1/orgs/acme/current").json()["sessions"]) == 1000
        # a batch over ingest's --max-batch-events is told the other way to fit
        small = tmp_path / "small.ndjson"
        small.write_text("".join(json.dumps(ev(f"s{i}", "activity", user=f"s{i}", ts=t)) + "\n"
                                 for i in range(700)))
        p = ctl("send", "--dir", stack.dir, "--batch", "700", str(small), check=False)
        assert "700 events is over the limit of 600" in p.stderr, p.stderr[-500:]
        assert "send --batch at most ingest's --max-batch-events" in p.stderr
        assert "--max-frame-bytes at most" not in p.stderr


def test_rejections_count_leading_blank_lines(stack):
    t = now_ms()
    p = stack.send(["", " ", "\t", ev("l1", "login", user="dan", ts=t, license_type="creator"),
                    '{"event_id": "l2", "org": "acme", "user": "eve", "ts": %d, "kind": "login"}'
                    % t], check=False)
    assert p.returncode == 1, p.stderr
    assert ":5: license_type: missing" in p.stderr, p.stderr
    # a JSON array file after two blank lines, broken on its second line
    p = stack.send(["", "", '[{"event_id": "l3",', '"org": acme}]'], check=False)
    assert p.returncode == 1, p.stderr
    assert ":4: not a JSON array of events" in p.stderr, p.stderr


def test_duplicates_have_no_effect(stack):
    t = now_ms()
    events = [ev("d1", "login", user="dave", ts=t, license_type="reviewer"),
              ev("d2", "login", user="erin", ts=t + 1, license_type="reviewer")]
    first = stack.send(events)
    assert "accepted 2, duplicate 0, rejected 0" in first.stdout
    again = stack.send(events + [events[0]])
    assert "accepted 0, duplicate 3, rejected 0" in again.stdout
    stack.wait()
    assert in_use(stack, "acme", "reviewer") == 2


def test_settings_round_trip_and_validation(stack):
    p = ctl("settings", "--dir", stack.dir, "acme", "--set",
            '{"timezone":"Europe/Berlin","licenses":[{"type":"reviewer","owned":5}]}')
    assert '"Europe/Berlin"' in p.stdout
    r = stack.get("/v1/orgs/acme/settings")
    assert r.json()["timezone"] == "Europe/Berlin"
    bad = stack.put("/v1/orgs/acme/settings", {"user_inactivity_timeout_s": 5})
    assert bad.status_code == 400
    assert "user_inactivity_timeout_s" in bad.json()["detail"]
    lic = stack.get("/v1/orgs/acme/licenses").json()
    assert lic["timezone"] == "Europe/Berlin"
    row = [x for x in lic["licenses"] if x["type"] == "reviewer"][0]
    assert row["owned"] == 5 and row["free"] == 5


def test_settings_saved_then_put_back_on_a_new_stack(stack, tmp_path):
    """The README's recovery: what `licmonctl settings ORG` prints goes back in with
    `--set @FILE` on a new stack, once the masked webhook secret is written back;
    with the mask left in, it is refused naming the field, never stored as the mask."""
    ctl("settings", "--dir", stack.dir, "acme", "--set", json.dumps({
        "timezone": "America/New_York", "user_inactivity_timeout_s": 900,
        "notify_emails": ["it@acme.example"], "integrations": ["Jira"],
        "webhooks": [{"url": "https://hooks.example/x", "secret": "s3cret"}],
        "licenses": [{"type": "creator", "owned": 7, "threshold_pct": 60,
                      "expires": "2027-06-30"}]}))
    saved = ctl("settings", "--dir", stack.dir, "acme").stdout
    path = tmp_path / "acme.json"
    path.write_text(saved)
    with running_stack() as fresh:
        p = ctl("settings", "--dir", fresh.dir, "acme", "--set", f"@{path}", check=False)
        assert p.returncode == 1 and "webhooks[0].secret:" in p.stderr, p.stderr
        assert fresh.get("/v1/orgs/acme/settings").json()["webhooks"] == []
        fixed = json.loads(saved)
        fixed["webhooks"][0]["secret"] = "s3cret"
        path.write_text(json.dumps(fixed))
        ctl("settings", "--dir", fresh.dir, "acme", "--set", f"@{path}")
        assert json.loads(ctl("settings", "--dir", fresh.dir, "acme").stdout) == json.loads(saved)


def test_settings_changes_while_the_pipeline_is_behind_both_stay(stack):
    """Two partial PUTs while the sessionizer is stopped (the aggregator
    cannot show either): the second must not undo the first, before and
    after the pipeline catches up."""
    pid = stack.pid("sessionizer")
    os.kill(pid, signal.SIGSTOP)
    try:
        first = stack.put("/v1/orgs/acme/settings", {"minor_margin_pct": 20})
        assert first.status_code == 200, first.text
        second = stack.put("/v1/orgs/acme/settings", {"clear_margin_pct": 7})
        assert second.status_code == 200, second.text
        assert second.json()["minor_margin_pct"] == 20
        got = stack.get("/v1/orgs/acme/settings").json()
        assert (got["minor_margin_pct"], got["clear_margin_pct"]) == (20, 7)
    finally:
        os.kill(pid, signal.SIGCONT)
    stack.wait()
    got = stack.get("/v1/orgs/acme/settings").json()
    assert (got["minor_margin_pct"], got["clear_margin_pct"]) == (20, 7)


def test_health_and_metrics_of_every_program(stack):
    import json
    with open(os.path.join(stack.dir, "stack.json")) as f:
        info = json.load(f)
    for prog in PROGRAMS:
        hp = info["health"][prog]
        assert requests.get(f"http://{hp}/healthz", timeout=5).status_code == 200
        m = requests.get(f"http://{hp}/metrics", timeout=5)
        assert m.status_code == 200 and "# TYPE" in m.text
    assert requests.get(stack.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(stack.url + "/v1/orgs/acme/licenses", timeout=5).status_code == 401


def test_clock_ticks_flow_while_events_do(stack):
    """An org's clock follows its own events and ingest's clock ticks: the
    ticks must keep coming while another org's events flow, or a quiet
    org's timeouts would wait for a pause in everybody's traffic."""
    with open(os.path.join(stack.dir, "stack.json")) as f:
        hp = json.load(f)["health"]["ingest"]

    def ticks():
        m = requests.get(f"http://{hp}/metrics", timeout=5).text
        return int(re.search(r"^licmon_ingest_ticks_total (\d+)", m, re.M).group(1))

    before, t0, n = ticks(), time.monotonic(), 0
    while time.monotonic() - t0 < 4:  # an event every ~100 ms: never a quiet second
        stack.send([ev(f"busy{n}", "activity", org="busy", ts=now_ms())])
        n += 1
        time.sleep(0.05)
    assert ticks() - before >= 3


@pytest.mark.parametrize("program", PROGRAMS)
def test_bad_flags_exit_2_naming_the_flag(program):
    exe = os.path.join(BIN, f"licmon-{program}")
    p = subprocess.run([exe, "--no-such-flag"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--no-such-flag" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run([exe, "--log-level", "loud"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "log-level" in p.stderr
    h = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10)
    assert h.returncode == 0 and "--dir" in h.stdout


@pytest.mark.parametrize("program", ["ingest", "sessionizer", "aggregator"])
def test_kill_9_is_restarted_and_numbers_carry_on(stack, program):
    t = now_ms()
    stack.send([ev("k1", "login", user="u1", ts=t, license_type="creator")])
    stack.wait()
    stack.restart(program)  # the supervisor brings it back
    stack.send([ev("k2", "login", user="u2", ts=t + 10, license_type="creator"),
                ev("k1", "login", user="u1", ts=t, license_type="creator")])
    stack.wait()
    assert in_use(stack, "acme", "creator") == 2


def test_admin_token_goes_only_to_its_own_stack(stack):
    """`licmonctl settings --url` to another server without --token fails,
    naming the flag, and sends nothing: the folder's administrator token is
    for the folder's own stack (`--url` equal to it still takes it)."""
    import http.server
    import threading
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        other = f"http://127.0.0.1:{srv.server_address[1]}/"
        p = ctl("settings", "--dir", stack.dir, "--url", other, "acme", check=False)
        assert p.returncode != 0 and "--token" in p.stderr, p.stderr
        assert seen == []
        p = ctl("settings", "--dir", stack.dir, "--url", stack.url, "acme")
        assert '"org": "acme"' in p.stdout or '"org":"acme"' in p.stdout, p.stdout
    finally:
        srv.shutdown()


def test_an_empty_admin_token_is_replaced_and_keygen_writes_both_or_neither(tmp_path):
    """An admin.token left empty (a crash between its creation and its
    write, by an older licmonctl) no longer stops the exporter at every
    start: `up` writes a new one. keygen refuses a prefix whose .pub exists
    before writing its .key."""
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "admin.token").write_text("")
    s = Stack(str(folder), free_port())
    s.up()
    try:
        assert s.token.startswith("lm_admin_")
        assert s.get("/v1/orgs/acme/licenses").status_code == 200
    finally:
        s.down()
    (tmp_path / "k.pub").write_text("x\n")
    p = ctl("keygen", "--out", str(tmp_path / "k"), check=False)
    assert p.returncode == 1 and "k.pub" in p.stderr, p.stderr
    assert not (tmp_path / "k.key").exists()
    assert ctl("keygen", "--out", str(tmp_path / "k2")).returncode == 0
    assert (tmp_path / "k2.key").exists() and (tmp_path / "k2.pub").exists()
