"""kill -9 of ingest in the middle of a send: licmonctl send resends what was
not acknowledged, and after the restart every event is applied exactly once
(N distinct users logging in give exactly N seats in use)."""
import json
import os
import signal
import subprocess
import threading
import time

from conftest import BIN, now_ms


def test_kill_ingest_mid_send_loses_nothing_and_doubles_nothing(stack):
    n = 60000
    t = now_ms() - 600000
    path = os.path.join(stack.dir, "logins.ndjson")
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"event_id": f"c{i}", "org": "crash", "user": f"u{i:06d}",
                                "ts": t + i, "kind": "login", "license_type": "creator"}) + "\n")
    send = subprocess.Popen([os.path.join(BIN, "licmonctl"), "send", "--dir", stack.dir,
                             "--batch", "500", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    kills = 0
    deadline = time.time() + 60
    while send.poll() is None and kills < 2 and time.time() < deadline:
        time.sleep(0.4)
        pid = stack.pid("ingest")
        if pid:
            os.kill(pid, signal.SIGKILL)
            kills += 1
    out, err = send.communicate(timeout=300)
    assert send.returncode == 0, err
    assert kills >= 1, "the send finished before ingest could be killed"
    # every event is either accepted once or reported as a duplicate of itself
    acc = int(out.split("accepted ")[1].split(",")[0])
    dup = int(out.split("duplicate ")[1].split(",")[0])
    assert acc + dup == n and acc == n - dup
    stack.wait(timeout=120)
    r = stack.get("/v1/orgs/crash/licenses").json()
    assert r["in_use_all"] == n
