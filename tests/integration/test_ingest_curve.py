"""ingest on tcp with CURVE: a producer with an allowed key is answered, one
with an unknown key is refused at the handshake and the refusal is logged;
a frame that is not an EventBatch is answered with an error, not a crash."""
import os
import subprocess
import tempfile
import time

import zmq

from conftest import BIN, free_port
from pbwire import field_bytes, field_varint, fields


def start_ingest(folder, extra):
    log = open(os.path.join(folder, "ingest.log"), "w")
    p = subprocess.Popen([os.path.join(BIN, "licmon-ingest"), "--dir", folder, *extra],
                         stderr=log)
    return p, log


def client(ctx, port, server_public, keypair):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.curve_serverkey = server_public
    s.curve_publickey, s.curve_secretkey = keypair
    s.connect(f"tcp://127.0.0.1:{port}")
    return s


def test_curve_allows_known_and_refuses_unknown_keys():
    folder = tempfile.mkdtemp(prefix="lm-curve-", dir="/tmp")
    server_public, server_secret = zmq.curve_keypair()
    good, bad = zmq.curve_keypair(), zmq.curve_keypair()
    with open(os.path.join(folder, "server.key"), "wb") as f:
        f.write(server_secret + b"\n")
    with open(os.path.join(folder, "allowed"), "wb") as f:
        f.write(b"# producers\n" + good[0] + b"\n")
    port = free_port()
    p, log = start_ingest(folder, ["--listen", f"tcp://127.0.0.1:{port}",
                                   "--curve-secret-file", os.path.join(folder, "server.key"),
                                   "--curve-allowed-keys", os.path.join(folder, "allowed")])
    ctx = zmq.Context()
    try:
        ok = client(ctx, port, server_public, good)
        ok.send(b"\xff\xff not a protobuf")
        assert ok.poll(10000), "an allowed producer got no answer"
        reply = ok.recv()
        assert b"is not an EventBatch" in reply
        refused = client(ctx, port, server_public, bad)
        refused.send(b"\x08\x01")
        assert not refused.poll(1500), "a producer with an unknown key was answered"
        time.sleep(0.3)
        assert p.poll() is None, "ingest died"
        with open(os.path.join(folder, "ingest.log")) as f:
            text = f.read()
        assert "producer refused" in text and bad[0].decode() in text
    finally:
        ctx.destroy(linger=0)
        p.terminate()
        p.wait(10)
        log.close()


def test_curve_needs_allowed_keys():
    folder = tempfile.mkdtemp(prefix="lm-curve-", dir="/tmp")
    r = subprocess.run([os.path.join(BIN, "licmon-ingest"), "--dir", folder,
                        "--curve-secret-file", "/nonexistent"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "--curve-allowed-keys" in r.stderr


def test_tcp_without_curve_is_refused_unless_asked_for():
    """ARCHITECTURE: tcp means CURVE. A --listen other machines can reach, with no
    CURVE, is refused at start naming what to give; --insecure-plain-tcp says the
    operator means it, and ingest says so in its log; loopback needs neither."""
    folder = tempfile.mkdtemp(prefix="lm-plain-", dir="/tmp")
    port = free_port()
    r = subprocess.run([os.path.join(BIN, "licmon-ingest"), "--dir", folder,
                        "--listen", f"tcp://0.0.0.0:{port}"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "--curve-secret-file" in r.stderr, r.stderr
    assert "--insecure-plain-tcp" in r.stderr
    for listen, extra, warned in ((f"tcp://0.0.0.0:{port}", ["--insecure-plain-tcp"], True),
                                  (f"tcp://127.0.0.1:{port}", [], False)):
        p, log = start_ingest(folder, ["--listen", listen, *extra])
        ctx = zmq.Context()
        try:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(f"tcp://127.0.0.1:{port}")
            s.send(b"\xff\xff not a protobuf")
            assert s.poll(10000), f"{listen}: no answer"
            assert b"is not an EventBatch" in s.recv()
        finally:
            ctx.destroy(linger=0)
            p.terminate()
            p.wait(10)
            log.close()
        with open(os.path.join(folder, "ingest.log")) as f:
            assert ("are not authenticated" in f.read()) == warned


def test_oversized_and_malformed_frames_never_stall_ingest():
    folder = tempfile.mkdtemp(prefix="lm-frames-", dir="/tmp")
    p, log = start_ingest(folder, ["--max-frame-bytes", "1024"])
    ctx = zmq.Context()
    endpoint = f"ipc://{folder}/run/ingest-producer.sock"
    try:
        def dealer():
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(endpoint)
            return s
        s = dealer()
        s.send(b"\x0a" * 1500)  # over the limit, under the hard cap: answered
        assert s.poll(10000)
        assert b"over the limit of 1024" in s.recv()
        # the answer names the batch when its id can be read without unpacking
        s.send(field_varint(1, 42) + field_bytes(2, b"x" * 1500))
        assert s.poll(10000)
        ack = dict(fields(s.recv()))
        assert ack[1] == 42 and b"over the limit of 1024" in ack[6], ack
        s.send(b"\x08" + b"\x01")  # batch_id 1, no events: a valid empty batch
        assert s.poll(10000)
        s.recv()
        answered = dealer()
        # over twice the limit but no more than licmonctl's default batch
        # (4 MiB): still answered, so a lowered limit is told, not silent
        answered.send(b"\x0a" * 100000)
        assert answered.poll(10000)
        assert b"over the limit of 1024" in answered.recv()
        huge = dealer()
        huge.send(b"x" * (6 << 20))  # far over both: the connection is dropped
        assert not huge.poll(1000)
        again = dealer()
        again.send(b"garbage")
        assert again.poll(10000)
        assert b"not an EventBatch" in again.recv()
        assert p.poll() is None
    finally:
        ctx.destroy(linger=0)
        p.terminate()
        p.wait(10)
        log.close()


def test_nul_byte_in_a_string_is_refused_by_name():
    """protobuf-c keeps a NUL byte inside a string, and C strings end there:
    "e1\\0x" must not become "e1" (a duplicate of the next event) nor
    "alice\\0bob" the user alice. Each is refused, naming its field; the
    events around them are journaled."""
    folder = tempfile.mkdtemp(prefix="lm-nul-", dir="/tmp")
    p, log = start_ingest(folder, [])
    ctx = zmq.Context()
    try:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(f"ipc://{folder}/run/ingest-producer.sock")
        now = int(time.time() * 1000)

        def event(eid, user):
            return field_bytes(2, field_bytes(1, eid) + field_bytes(2, b"acme") +
                               field_bytes(3, user) + field_varint(4, now) +
                               field_varint(5, 1) + field_bytes(6, b"creator"))
        batch = (field_varint(1, 7) + event(b"e1\0x", b"alice") + event(b"e1", b"alice") +
                 event(b"e2", b"alice\0bob") + event(b"e3", b"bob"))
        s.send(batch)
        assert s.poll(10000)
        ack = fields(s.recv())
        got = dict(ack)
        assert got[1] == 7 and got[2] == 2 and got[4] == 2 and 3 not in got, ack
        rejections = [dict(fields(v)) for k, v in ack if k == 5]
        assert rejections == [{2: b"event_id: contains a NUL byte"},
                              {1: 2, 2: b"user: contains a NUL byte"}], rejections
    finally:
        ctx.destroy(linger=0)
        p.terminate()
        p.wait(10)
        log.close()
