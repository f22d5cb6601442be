"""MQTT over WebSocket (issue 5): real clients (paho-mqtt with transport="websockets",
MQTT.js in Node), raw frames for the edge cases (wsraw.py), the static files that a
`protocol websockets` listener serves from http_dir, and the same over TLS (wss://).

Each broker has its default TCP listener (broker.port, from -p) and a WebSocket listener:
    listener PORT 127.0.0.1
    protocol websockets
    http_dir DIR
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

import mqttraw as raw
from conftest import ROOT, free_port, wait_listening
from helpers import TIMEOUT, V5, V311, Client
from mqttraw import Client as TcpRaw
from wsraw import OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WsClient, http_get

JS_DIR = os.path.join(ROOT, "tests", "js")

INDEX = "<!doctype html><title>midge</title>"
APP_JS = "console.log('midge');"


@pytest.fixture(scope="module")
def http_dir():
    """http_dir with a few files, a subdirectory, and a symlink to a file outside it."""
    top = tempfile.mkdtemp(prefix="midge-ws-")
    os.chmod(top, 0o755)  # mosquitto (MIDGE_TEST_BROKER=mosquitto) reads it as its own user
    root = os.path.join(top, "www")
    os.makedirs(os.path.join(root, "sub"))
    files = {"index.html": INDEX, "app.js": APP_JS, "style.css": "body{}", "data.json": "{}",
             "logo.svg": "<svg/>", "sub/index.html": "sub", "blob.bin": "bin"}
    for name, text in files.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    with open(os.path.join(top, "secret.txt"), "w") as f:
        f.write("TOP-SECRET")
    os.symlink(os.path.join(top, "secret.txt"), os.path.join(root, "link-out"))
    yield root
    shutil.rmtree(top)


class WsBroker:
    def __init__(self, broker, ws_port):
        self.b = broker
        self.host = broker.host
        self.port = broker.port     # TCP
        self.ws_port = ws_port      # WebSocket


def start_ws(broker_factory, http_dir, listener_extra="", global_extra=""):
    """A broker with a WebSocket listener; listener_extra goes under its `listener` line."""
    ws_port = free_port()
    b = broker_factory(config=f"{global_extra}\nlistener {ws_port} 127.0.0.1\n"
                              f"protocol websockets\nhttp_dir {http_dir}\n{listener_extra}\n"
                              "allow_anonymous true")
    assert wait_listening(ws_port), f"no WebSocket listener on {ws_port}:\n{b.log()}"
    return WsBroker(b, ws_port)


@pytest.fixture
def wsb(broker_factory, http_dir):
    return start_ws(broker_factory, http_dir)


def ws_client(wsb, **kw):
    return Client(wsb.b, transport="websockets", port=wsb.ws_port, **kw)


@pytest.fixture
def ws():
    """Raw WebSocket connections, closed at the end."""
    opened = []

    def make(wsb):
        c = WsClient(wsb.ws_port)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


# ---- real clients ------------------------------------------------------------------------

@pytest.mark.parametrize("version", [V311, V5], ids=["3.1.1", "5.0"])
def test_paho_websocket_roundtrip(wsb, version):
    sub = ws_client(wsb, protocol=version, client_id="ws-sub")
    pub = ws_client(wsb, protocol=version, client_id="ws-pub")
    sub.subscribe("ws/t", qos=2)
    payloads = [b"hello", bytes(range(256)), b"\x00" * 3000]
    for qos, p in enumerate(payloads):
        pub.publish("ws/t", p, qos=qos)
    got = sub.expect_messages(3)
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        ("ws/t", p, q) for q, p in enumerate(payloads)]


@pytest.mark.midge_only
def test_paho_websocket_large_payloads(wsb):
    """200 KB messages both ways. Midge sends each message as one frame: paho-mqtt 1.6 does
    not join continuation frames (paho.mqtt.python#500), and Mosquitto 2.0's libwebsockets
    fragments large messages, so against it this fails now and then."""
    sub = ws_client(wsb, protocol=V5, client_id="ws-big-sub")
    pub = ws_client(wsb, protocol=V311, client_id="ws-big-pub")
    sub.subscribe("ws/big", qos=1)
    payloads = [bytes((i * k) & 0xFF for i in range(200000)) for k in (3, 7)]
    for p in payloads:
        pub.publish("ws/big", p, qos=1)
    assert [m.payload for m in sub.expect_messages(2)] == payloads


def test_cross_transport_delivery(wsb):
    """A WebSocket publisher reaches a TCP subscriber and the other way round."""
    ws_sub = ws_client(wsb, protocol=V311, client_id="ws-sub")
    tcp_sub = Client(wsb.b, protocol=V5, client_id="tcp-sub")
    ws_sub.subscribe("x/from-tcp", qos=1)
    tcp_sub.subscribe("x/from-ws", qos=1)
    ws_pub = ws_client(wsb, protocol=V5, client_id="ws-pub")
    tcp_pub = Client(wsb.b, protocol=V311, client_id="tcp-pub")
    ws_pub.publish("x/from-ws", b"\x00ws\xff", qos=1)
    tcp_pub.publish("x/from-tcp", b"\x00tcp\xff", qos=1)
    m = tcp_sub.expect_message()
    assert (m.topic, m.payload, m.qos) == ("x/from-ws", b"\x00ws\xff", 1)
    m = ws_sub.expect_message()
    assert (m.topic, m.payload, m.qos) == ("x/from-tcp", b"\x00tcp\xff", 1)


@pytest.fixture(scope="session")
def node_modules():
    """tests/js/node_modules from package-lock.json (npm ci), once per session."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the MQTT.js tests (scripts/setup.sh installs "
                    "them)")
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "mqtt")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"npm ci failed:\n{r.stdout}\n{r.stderr}"
    return os.path.join(JS_DIR, "node_modules")


@pytest.mark.parametrize("version", [4, 5], ids=["3.1.1", "5.0"])
def test_mqttjs_websocket_roundtrip(wsb, node_modules, version):
    run_mqttjs(f"ws://127.0.0.1:{wsb.ws_port}/mqtt", version)


def run_mqttjs(url, version, cafile=None):
    r = subprocess.run(["node", os.path.join(JS_DIR, "ws_roundtrip.js"), url, str(version),
                        "js/t"] + ([cafile] if cafile else []),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, f"MQTT.js round trip failed:\n{r.stdout}\n{r.stderr}"
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    assert [g["len"] for g in result["got"]] == [18, 256, 100000]


# ---- raw framing -------------------------------------------------------------------------

def connect_v311(c, client_id):
    c.send_mqtt(raw.connect(client_id, version=raw.V311))
    assert c.recv_packet()[:2] == (raw.CONNACK, 0)


def test_fragmented_connect(wsb, ws):
    """CONNECT as one message in three fragments, a ping between them (RFC 6455 5.4)."""
    c = ws(wsb)
    c.upgrade()
    pkt = raw.connect("frag", version=raw.V311)
    c.send_frame(OP_BIN, pkt[:3], fin=False)
    c.send_frame(OP_CONT, pkt[3:9], fin=False)
    c.send_frame(OP_PING, b"mid")
    assert c.recv_frame() == (True, OP_PONG, b"mid")
    c.send_frame(OP_CONT, pkt[9:], fin=True)
    ptype, _, body = c.recv_packet()
    assert (ptype, body) == (raw.CONNACK, b"\x00\x00")


def test_connect_and_subscribe_in_one_frame(wsb, ws):
    c = ws(wsb)
    c.upgrade()
    c.send_mqtt(raw.connect("both", version=raw.V311) +
                raw.subscribe(7, [("a/b", 1)], version=raw.V311))
    assert c.recv_packet() == (raw.CONNACK, 0, b"\x00\x00")
    assert c.recv_packet() == (raw.SUBACK, 0, b"\x00\x07\x01")


def test_publish_split_across_three_frames(wsb, ws):
    """One PUBLISH in three separate binary messages: MQTT is a byte stream over them."""
    sub = Client(wsb.b, protocol=V311, client_id="tcp-sub")
    sub.subscribe("split/t")
    c = ws(wsb)
    c.upgrade()
    connect_v311(c, "splitter")
    payload = bytes(range(256)) * 4
    pkt = raw.publish("split/t", payload, version=raw.V311)
    for part in (pkt[:2], pkt[2:500], pkt[500:]):
        c.send_frame(OP_BIN, part)
    m = sub.expect_message()
    assert (m.topic, m.payload) == ("split/t", payload)


def test_ping_answered_with_same_payload(wsb, ws):
    c = ws(wsb)
    c.upgrade()
    connect_v311(c, "pinger")
    c.send_frame(OP_PING, b"\x00payload\xff")
    assert c.recv_frame() == (True, OP_PONG, b"\x00payload\xff")
    c.send_mqtt(raw.pingreq())
    assert c.recv_packet() == (raw.PINGRESP, 0, b"")


@pytest.mark.midge_only
def test_unmasked_frame_closes_1002_others_undisturbed(wsb, ws):
    """RFC 6455 5.1: the server closes with 1002 on an unmasked client frame. (Mosquitto
    2.0 with libwebsockets accepts the frame.)"""
    other_ws = ws_client(wsb, protocol=V311, client_id="other-ws")
    other_tcp = Client(wsb.b, protocol=V5, client_id="other-tcp")
    other_ws.subscribe("calm/t", qos=1)
    c = ws(wsb)
    c.upgrade()
    connect_v311(c, "careless")
    c.send_frame(OP_BIN, raw.pingreq(), mask=False)
    c.expect_close(1002)
    other_tcp.publish("calm/t", b"still here", qos=1)
    m = other_ws.expect_message()
    assert (m.topic, m.payload) == ("calm/t", b"still here")


@pytest.mark.midge_only
def test_message_over_max_packet_size_closes_1009(broker_factory, http_dir, ws):
    """The listener's largest message follows max_packet_size (plus a fixed header's room)."""
    wsb = start_ws(broker_factory, http_dir, global_extra="max_packet_size 1000")
    c = ws(wsb)
    c.upgrade()
    connect_v311(c, "big")
    c.send_mqtt(raw.publish("big/t", b"x" * 900, version=raw.V311))  # under the limit
    c.send_mqtt(raw.pingreq())
    assert c.recv_packet() == (raw.PINGRESP, 0, b"")
    c.send_mqtt(raw.publish("big/t", b"x" * 2000, version=raw.V311))
    c.expect_close(1009)


@pytest.mark.midge_only
def test_origin_checked_when_configured(broker_factory, http_dir, ws):
    wsb = start_ws(broker_factory, http_dir,
                   listener_extra="websockets_origin http://dash.example")
    c = ws(wsb)
    c.upgrade(extra=["Origin: http://evil.example"], expect=403)
    c.expect_eof()
    c = ws(wsb)
    c.upgrade(extra=["Origin: http://dash.example"])
    connect_v311(c, "good-origin")


def wait_log(b, text, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in b.log():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.midge_only
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_forwarded_for(broker_factory, http_dir, ws, trusted):
    """X-Forwarded-For names the client only when it comes from a trusted proxy."""
    extra = "websockets_trusted_proxy 127.0.0.1" if trusted else ""
    wsb = start_ws(broker_factory, http_dir, listener_extra=extra)
    c = ws(wsb)
    c.upgrade(extra=["X-Forwarded-For: 203.0.113.9, 10.1.1.1"])
    connect_v311(c, "behind-proxy")
    want = "from 203.0.113.9 as behind-proxy" if trusted else "from 127.0.0.1"
    assert wait_log(wsb.b, want), wsb.b.log()
    if not trusted:
        assert "203.0.113.9" not in wsb.b.log()


@pytest.mark.midge_only
def test_text_frame_closes_1003(wsb, ws):
    c = ws(wsb)
    c.upgrade()
    c.send_frame(OP_TEXT, b"not mqtt")
    c.expect_close(1003)


def test_close_frame_answered(wsb, ws):
    c = ws(wsb)
    c.upgrade()
    connect_v311(c, "leaver")
    c.send_frame(OP_CLOSE, b"\x03\xe8")
    c.expect_close(1000)


@pytest.mark.midge_only
def test_no_subprotocol_accepted(wsb, ws):
    """A client that offers no subprotocol is accepted, answered without one, and speaks
    MQTT. (Mosquitto 2.0 answers 101 too but then never reads MQTT on the connection.)"""
    c = ws(wsb)
    _, headers = c.upgrade(protocols=None)
    assert "sec-websocket-protocol" not in headers
    connect_v311(c, "noproto")


@pytest.mark.midge_only
def test_mqttv31_subprotocol_chosen(wsb, ws):
    c = ws(wsb)
    _, headers = c.upgrade(protocols="mqttv3.1")
    assert headers["sec-websocket-protocol"] == "mqttv3.1"


@pytest.mark.midge_only
def test_wrong_subprotocol_refused(wsb, ws):
    c = ws(wsb)
    c.upgrade(protocols="wamp", expect=400)
    c.expect_eof()


@pytest.mark.midge_only
@pytest.mark.parametrize("extra,status", [
    ("bad-key", 400), ("bad-version", 426), ("no-connection", 400)])
def test_bad_upgrade_refused(wsb, extra, status):
    lines = ["Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: mqtt"]
    if extra == "bad-key":
        lines[2] = "Sec-WebSocket-Key: short"
    elif extra == "bad-version":
        lines[3] = "Sec-WebSocket-Version: 8"
    else:
        lines[1] = "Connection: keep-alive"
    got, headers, body, head = http_get(wsb.ws_port, "/mqtt", headers=lines)
    assert got == status, head
    assert headers["connection"] == "close"
    if status == 426:
        assert headers["sec-websocket-version"] == "13"


@pytest.mark.midge_only
def test_malformed_head_refused(wsb):
    from wsraw import http_exchange
    status, _, body, _ = http_exchange(wsb.ws_port, b"GET / HTTP/1.1\r\nHost: a\r\n bad\r\n\r\n")
    assert status == 400
    assert b"line 3: line folding (obs-fold) is not accepted" in body


# ---- static files ------------------------------------------------------------------------

@pytest.mark.midge_only
@pytest.mark.parametrize("path,ctype,body", [
    ("/", "text/html; charset=utf-8", INDEX),
    ("/index.html", "text/html; charset=utf-8", INDEX),
    ("/app.js", "text/javascript; charset=utf-8", APP_JS),
    ("/style.css", "text/css; charset=utf-8", "body{}"),
    ("/data.json", "application/json", "{}"),
    ("/logo.svg", "image/svg+xml", "<svg/>"),
    ("/blob.bin", "application/octet-stream", "bin"),
    ("/sub/", "text/html; charset=utf-8", "sub"),
])
def test_static_file_served(wsb, path, ctype, body):
    status, headers, got, head = http_get(wsb.ws_port, path)
    assert head.startswith("HTTP/1.1 200 OK\r\n"), head
    assert headers["content-type"] == ctype
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close"
    assert got == body.encode()


@pytest.mark.midge_only
def test_head_and_missing_and_methods(wsb):
    status, headers, body, _ = http_get(wsb.ws_port, "/app.js", method="HEAD")
    assert (status, headers["content-length"], body) == (200, str(len(APP_JS)), b"")
    assert http_get(wsb.ws_port, "/nope.html")[0] == 404
    status, headers, _, _ = http_get(wsb.ws_port, "/index.html", method="POST")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


@pytest.mark.midge_only
@pytest.mark.parametrize("path,status", [
    ("/../secret.txt", 400),
    ("/%2e%2e/secret.txt", 400),
    ("/%2E%2E%2Fsecret.txt", 400),
    ("/sub/..%2F..%2Fsecret.txt", 400),
    ("/%252e%252e/secret.txt", 404),
    ("/..%5csecret.txt", 400),
    ("/index.html%00.js", 400),
    ("/link-out", 404),
])
def test_traversal_refused(wsb, path, status):
    got, _, body, head = http_get(wsb.ws_port, path)
    assert got == status, head
    assert b"TOP-SECRET" not in body


# ---- secure WebSocket (wss://) -------------------------------------------------------------

@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="midge-ws-certs-")
    subprocess.run([os.path.join(ROOT, "scripts", "gen-certs.sh"), d], check=True, timeout=120)
    os.chmod(d, 0o755)  # mosquitto reads them as its own user: test keys only
    for f in os.listdir(d):
        if f.endswith(".key"):
            os.chmod(os.path.join(d, f), 0o644)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def wssb(broker_factory, http_dir, certs):
    """A broker with a secure WebSocket listener (its port is .ws_port) serving http_dir."""
    return start_ws(broker_factory, http_dir,
                    listener_extra=f"certfile {certs}/server.crt\nkeyfile {certs}/server.key")


@pytest.mark.parametrize("version", [V311, V5], ids=["3.1.1", "5.0"])
def test_paho_secure_websocket_roundtrip(wssb, certs, version):
    ca = f"{certs}/ca.crt"
    sub = ws_client(wssb, protocol=version, client_id="wss-sub", tls_ca=ca)
    pub = ws_client(wssb, protocol=version, client_id="wss-pub", tls_ca=ca)
    tcp_sub = Client(wssb.b, protocol=version, client_id="tcp-sub")
    sub.subscribe("wss/t", qos=1)
    tcp_sub.subscribe("wss/t", qos=1)
    payload = bytes(range(256)) * 400
    pub.publish("wss/t", payload, qos=1)
    for c in (sub, tcp_sub):
        m = c.expect_message()
        assert (m.topic, m.payload, m.qos) == ("wss/t", payload, 1)


def test_mqttjs_secure_websocket_roundtrip(wssb, certs, node_modules):
    run_mqttjs(f"wss://localhost:{wssb.ws_port}/mqtt", 4, cafile=f"{certs}/ca.crt")


def test_paho_secure_websocket_wrong_ca_refused(wssb, certs):
    c = ws_client(wssb, protocol=V311, client_id="wrong-ca", tls_ca=f"{certs}/other-ca.crt",
                  connect=False)
    with pytest.raises(ssl.SSLCertVerificationError):
        c.connect(timeout=TIMEOUT)


@pytest.mark.midge_only
def test_static_file_over_tls(wssb, certs):
    ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
    with socket.create_connection(("127.0.0.1", wssb.ws_port), timeout=TIMEOUT) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while True:
                chunk = t.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Type: text/javascript; charset=utf-8\r\n" in head
    assert body == APP_JS.encode()
