"""libmidge, midge-pub and midge-sub over TLS, WebSocket, secure WebSocket and unix sockets,
against the real broker with its four kinds of listener.

The C driver (tests/client/driver.c) runs its scenarios over the transport that
MIDGE_DRIVER_TRANSPORT names; a scenario's output over TLS or WebSocket must be exactly its
output over plain TCP. The command-line tools are compared byte for byte with mosquitto_sub
on the same broker: with the same flags where mosquitto's clients have them (TLS, mqtts://,
--unix), over plain TCP where they do not (ws://, wss://). Certificates come from
scripts/gen-certs.sh. Every process and wait is bounded.
"""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile

import pytest

from conftest import MIDGE_BIN, ROOT, USE_MOSQUITTO, free_port, wait_listening
from helpers import Client, close_clients  # noqa: F401
from test_libmidge import DRIVER, Gate, ScriptedBroker, restartable

BIN_DIR = os.path.dirname(os.path.abspath(MIDGE_BIN))
if USE_MOSQUITTO:
    BIN_DIR = os.path.join(ROOT, "build")
MIDGE_SUB = os.path.join(BIN_DIR, "midge-sub")
MIDGE_PUB = os.path.join(BIN_DIR, "midge-pub")

pytestmark = [
    pytest.mark.skipif(not os.access(DRIVER, os.X_OK), reason=f"driver not built: {DRIVER}"),
    pytest.mark.skipif(not os.access(MIDGE_SUB, os.X_OK), reason="midge-sub not built"),
    pytest.mark.skipif(not shutil.which("mosquitto_sub"), reason="mosquitto-clients missing"),
]

SAN_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
             "WARNING: ThreadSanitizer")
VERIFY_FAILED = re.compile(r"TLS handshake: certificate verify failed \([^)]+\)")


@pytest.fixture(scope="session")
def certs():
    d = tempfile.mkdtemp(prefix="midge-certs-")
    subprocess.run([os.path.join(ROOT, "scripts", "gen-certs.sh"), d], check=True, timeout=120)
    # Readable by a broker that drops root (mosquitto becomes user mosquitto): test keys only.
    os.chmod(d, 0o755)
    for f in os.listdir(d):
        if f.endswith(".key"):
            os.chmod(os.path.join(d, f), 0o644)
    return d


class Listeners:
    """Ports of one broker: .port (MQTT/TCP), .tls, .ws, .wss and .sock (a unix socket)."""

    def __init__(self, certs):
        self.certs = certs
        self.tls, self.ws, self.wss = free_port(), free_port(), free_port()
        sockdir = tempfile.mkdtemp(prefix="mcs-")
        os.chmod(sockdir, 0o777)  # see certs(): a broker that is not root makes the socket
        self.sock = os.path.join(sockdir, "mqtt.sock")

    def config(self, require_certificate=False):
        c = self.certs
        tls = f"certfile {c}/server.crt\nkeyfile {c}/server.key\n"
        return (f"listener {self.tls} 127.0.0.1\n{tls}cafile {c}/ca.crt\n"
                f"require_certificate {'true' if require_certificate else 'false'}\n"
                f"listener {self.ws} 127.0.0.1\nprotocol websockets\n"
                f"listener {self.wss} 127.0.0.1\nprotocol websockets\n{tls}"
                f"listener 0 {self.sock}\n"
                "allow_anonymous true")

    def start(self, broker_factory, port=None, **kw):
        b = broker_factory(config=self.config(**kw), port=port)
        for p in (self.tls, self.ws, self.wss):
            assert wait_listening(p), f"no listener on {p}:\n{b.log()}"
        self.port, self.broker = b.port, b
        return b


@pytest.fixture
def lst(broker_factory, certs):
    ls = Listeners(certs)
    ls.start(broker_factory)
    return ls


def check_stderr(err):
    text = err if isinstance(err, str) else err.decode("utf-8", "replace")
    for mark in SAN_MARKS:
        assert mark not in text, text


def driver(scenario, port, *args, transport=None, cafile=None, cert=None, key=None,
           timeout=60):
    """Run a driver scenario to its end over a transport; its stdout lines."""
    env = dict(os.environ)
    for k in ("TRANSPORT", "CAFILE", "CERT", "KEY"):
        env.pop("MIDGE_DRIVER_" + k, None)
    if transport:
        env["MIDGE_DRIVER_TRANSPORT"] = transport
    for k, v in (("CAFILE", cafile), ("CERT", cert), ("KEY", key)):
        if v:
            env["MIDGE_DRIVER_" + k] = v
    p = subprocess.run([DRIVER, scenario, "127.0.0.1", str(port), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    check_stderr(p.stderr)
    assert p.returncode == 0, f"driver {scenario} exit {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p.stdout.splitlines()


def port_of(ls, transport):
    return {"tls": ls.tls, "ws": ls.ws, "wss": ls.wss}[transport]


# ---- libmidge -----------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["tls", "ws", "wss"])
@pytest.mark.parametrize("version", [4, 5])
def test_libmidge_pubsub_same_as_over_tcp(lst, transport, version):
    plain = driver("pubsub", lst.port, version)
    assert plain[0] == "SUBACK 2 1" and len(plain) > 5, plain
    over = driver("pubsub", port_of(lst, transport), version, transport=transport,
                  cafile=f"{lst.certs}/ca.crt")
    assert over == plain


@pytest.mark.parametrize("transport", ["tls", "ws", "wss"])
def test_libmidge_many_messages_whole_and_in_order(lst, transport):
    """Several messages per socket read: the transport holds decoded bytes (pending)."""
    out = driver("bulk", port_of(lst, transport), 200, 3000, transport=transport,
                 cafile=f"{lst.certs}/ca.crt")
    assert out == ["BULK 200 x 3000 OK"]


def test_libmidge_large_messages_over_tls(lst):
    out = driver("bulk", lst.tls, 20, 100000, transport="tls", cafile=f"{lst.certs}/ca.crt")
    assert out == ["BULK 20 x 100000 OK"]


@pytest.mark.parametrize("transport", ["tls", "wss"])
def test_libmidge_wrong_ca_refused_with_reason(lst, transport):
    out = driver("connect_error", port_of(lst, transport), transport=transport,
                 cafile=f"{lst.certs}/other-ca.crt")
    assert len(out) == 1
    assert out[0].startswith("RC connection failed or lost WHY TLS handshake: "), out
    assert VERIFY_FAILED.search(out[0]), out


def test_libmidge_tls_to_a_plain_port_names_the_step(lst):
    out = driver("connect_error", lst.port, transport="tls", cafile=f"{lst.certs}/ca.crt")
    assert out == ["RC connection failed or lost WHY the broker closed the connection during "
                   "the TLS handshake"]


def test_libmidge_websocket_to_a_plain_port_fails(lst):
    out = driver("connect_error", lst.port, transport="ws")
    assert out[0].startswith("RC connection failed or lost"), out


def test_libmidge_bad_tls_files_refused_before_connecting(lst, certs):
    out = driver("connect", lst.tls, transport="tls", cafile=f"{certs}/nonexistent.crt")
    assert out == [f"TRANSPORT ERROR cafile {certs}/nonexistent.crt: No such file or directory"]
    out = driver("connect", lst.tls, transport="tls", cafile=f"{certs}/ca.crt",
                 cert=f"{certs}/client.crt")
    assert out == ["TRANSPORT ERROR both certfile and keyfile must be given if one of them is"]


def test_libmidge_client_certificate_required(broker_factory, certs):
    ls = Listeners(certs)
    ls.start(broker_factory, require_certificate=True)
    out = driver("connect_error", ls.tls, transport="tls", cafile=f"{certs}/ca.crt")
    assert out[0].startswith("RC connection failed or lost"), out
    out = driver("pubsub", ls.tls, 4, transport="tls", cafile=f"{certs}/ca.crt",
                 cert=f"{certs}/client.crt", key=f"{certs}/client.key")
    assert out[0] == "SUBACK 2 1"


@pytest.mark.threaded
def test_libmidge_offline_queue_flushed_over_tls_after_broker_restart(broker_factory, certs,
                                                                      monkeypatch):
    """Reconnect over TLS: the broker dies, QoS 1 messages wait in the offline queue, a new
    broker on the same ports gets them all, in order, on a new TLS connection."""
    ls = Listeners(certs)
    b1 = restartable(ls.start(broker_factory))
    g = Gate(ls.tls)
    g.start()
    monkeypatch.setenv("MIDGE_DRIVER_TRANSPORT", "tls")
    monkeypatch.setenv("MIDGE_DRIVER_CAFILE", f"{certs}/ca.crt")
    from test_libmidge import Driver
    d = Driver("offline", g.port, 4, 6)
    try:
        assert d.expect("CONNACK") == "CONNACK 0"
        d.expect("READY")
        g.open = False
        b1.stop()
        d.go()
        assert d.expect("LOST") == "LOST 256"
        assert d.expect("QUEUED") == "QUEUED 6 FULL 1"
        d.expect("WAITING")
        b2 = ls.start(broker_factory, port=b1.port)
        sub = Client(b2, "offline-tls-watcher")
        sub.subscribe("off/#", qos=1)
        g.open = True
        d.go()
        assert d.expect("FLUSHED", timeout=20) == "FLUSHED pending=0 connected=1"
        d.finish()
        got = [(m.payload, m.qos) for m in sub.expect_messages(6)]
        assert got == [(b"q0", 1), (b"q1", 1), (b"q2", 1), (b"q3", 0), (b"q4", 1), (b"q5", 1)]
    finally:
        d.kill()
        g.close()


class TLSScriptedBroker(ScriptedBroker):
    """test_libmidge's scripted broker (drops the connection before acknowledging) behind
    TLS with the development server certificate."""

    def __init__(self, version, qos, certs):
        super().__init__(version, qos)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{certs}/server.crt", f"{certs}/server.key")
        self.srv = ctx.wrap_socket(self.srv, server_side=True)


@pytest.mark.parametrize("qos", [1, 2])
def test_libmidge_resend_after_lost_tls_connection(certs, qos):
    sb = TLSScriptedBroker(4, qos, certs)
    sb.start()
    out = driver("resend", sb.port, 4, qos, transport="tls", cafile=f"{certs}/ca.crt")
    sb.join(10)
    assert sb.error is None, sb.error
    assert out == ["PUBLISH success reason 0 pending 0"]
    if qos == 1:  # the same PUBLISH again, with DUP, on the new TLS connection
        assert sb.seen[1][:2] == ("PUBLISH", 0x2)
        assert sb.seen[3] == ("PUBLISH", 0xA, sb.seen[1][2])
    else:  # PUBREL again
        assert sb.seen[2:] == [("PUBREL", 6), ("CONNECT", 1), ("PUBREL", 6, True)]


# ---- midge-sub and midge-pub ----------------------------------------------------------------

def run(cmd, timeout=20):
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    check_stderr(p.stderr)
    return p.returncode, p.stdout, p.stderr


def sub_flags(ls, kind, tool, topic):
    """Flags that connect a subscriber to topic the `kind` way; mosquitto_sub goes over plain
    TCP where it has no such transport."""
    c = ls.certs
    ca = ["--cafile", f"{c}/ca.crt"]
    if kind == "tls":
        return ["-h", "localhost", "-p", str(ls.tls), *ca, "-t", topic]
    if kind == "tls-cert":
        return ["-h", "localhost", "-p", str(ls.tls), *ca, "--cert", f"{c}/client.crt",
                "--key", f"{c}/client.key", "-t", topic]
    if kind == "mqtts-url":
        return ["-L", f"mqtts://localhost:{ls.tls}/{topic}", *ca]
    if kind == "unix":
        return ["--unix", ls.sock, "-t", topic]
    if tool == "mosquitto":  # ws/wss: mosquitto_sub has no WebSocket transport
        return ["-L", f"mqtt://127.0.0.1:{ls.port}/{topic}"]
    if kind == "ws-url":
        return ["-L", f"ws://127.0.0.1:{ls.ws}/{topic}"]
    return ["-L", f"wss://localhost:{ls.wss}/{topic}", *ca]


def published_set(ls, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes((i * 7 + 3) % 251 for i in range(70000)).replace(b"\n", b"."))
    for args in (["-m", "hello world"], ["-m", "grüße ✓ \t tab"], ["-n"], ["-f", str(big)]):
        rc, _, err = run(["mosquitto_pub", "-p", str(ls.port), "-t", "tw/x", "-q", "1", *args])
        assert rc == 0, err


@pytest.mark.parametrize("kind", ["tls", "tls-cert", "mqtts-url", "ws-url", "wss-url", "unix"])
def test_sub_output_same_as_mosquitto_sub(lst, tmp_path, kind):
    """Each subscriber first makes a persistent session (-c -i ID -E), then the messages are
    published, then it comes back with -v -C 4 and prints the queued messages."""
    tools = {"midge": MIDGE_SUB, "mosquitto": "mosquitto_sub"}
    for tool, exe in tools.items():
        rc, _, err = run([exe, *sub_flags(lst, kind, tool, "tw/#"), "-c", "-i", f"tw-{tool}",
                          "-q", "1", "-E"])
        assert rc == 0, (tool, err)
    published_set(lst, tmp_path)
    out = {}
    for tool, exe in tools.items():
        out[tool] = run([exe, *sub_flags(lst, kind, tool, "tw/#"), "-c", "-i", f"tw-{tool}",
                         "-q", "1", "-v", "-C", "4", "-W", "10"])
    m, o = out["midge"], out["mosquitto"]
    assert o[0] == 0, o[2]
    assert m[0] == 0, m[2]
    assert m[1] == o[1]
    assert m[1].startswith(b"tw/x hello world\n")


@pytest.mark.parametrize("kind", ["tls", "tls-cert", "mqtts-url", "ws-url", "wss-url", "unix"])
def test_pub_delivers_exact_payloads(lst, tmp_path, kind):
    w = Client(lst.broker, f"pub-watch-{kind}")
    w.subscribe("tw/#", qos=1)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes((i * 13) % 256 for i in range(200000)))
    flags = sub_flags(lst, kind, "midge", "tw/p")
    if "-t" in flags:
        flags = flags[:-2] + ["-t", "tw/p"]
    for args in (["-m", "small ✓"], ["-f", str(big)]):
        rc, _, err = run([MIDGE_PUB, *flags, "-q", "1", *args])
        assert rc == 0, err
    got = [(m.topic, m.payload) for m in w.expect_messages(2)]
    assert got == [("tw/p", "small ✓".encode()), ("tw/p", big.read_bytes())]
    w.close()


@pytest.mark.parametrize("tool", ["midge", "mosquitto"])
def test_sub_wrong_ca_refused(lst, tool):
    exe = MIDGE_SUB if tool == "midge" else "mosquitto_sub"
    rc, out, err = run([exe, "-h", "localhost", "-p", str(lst.tls), "--cafile",
                        f"{lst.certs}/other-ca.crt", "-t", "x", "-C", "1", "-W", "5"])
    assert rc != 0 and out == b""
    if tool == "midge":
        assert rc == 1
        line = err.decode()
        assert line.startswith("Error: Unable to connect (TLS handshake: certificate verify "
                               "failed (") and line.endswith(")).\n"), line
        assert line.count("\n") == 1


def test_pub_errors_one_line(lst, certs):
    c = certs
    cases = [
        (["--cafile", f"{c}/ca.crt", "--cert", f"{c}/client.crt"],
         "Error: Both certfile and keyfile must be provided if one of them is set.\n"),
        (["--cafile", f"{c}/none.crt"],
         f"Error: Problem setting TLS options: cafile {c}/none.crt: No such file or "
         "directory.\n"),
        (["--cafile", f"{c}/ca.crt", "--tls-version", "tlsv1.1"],
         "Error: Invalid TLS version 'tlsv1.1' (tlsv1.3 or tlsv1.2).\n"),
        (["-p", str(lst.port), "--cafile", f"{c}/ca.crt"],
         "Error: Unable to connect (the broker closed the connection during the TLS "
         "handshake).\n"),
        (["-L", f"http://localhost:{lst.ws}/t"],
         f"Error: Unsupported URL scheme in 'http://localhost:{lst.ws}/t' (mqtt://, mqtts://, "
         "ws:// or wss://).\n"),
    ]
    for args, line in cases:
        if "-L" not in args:
            args = ["-h", "localhost", "-t", "t", *args] + (
                [] if "-p" in args else ["-p", str(lst.tls)])
        rc, _, err = run([MIDGE_PUB, *args, "-m", "x"])
        assert (rc, err.decode()) == (1, line), args


def test_cert_without_key_same_error_as_mosquitto(lst, certs):
    args = ["-p", str(lst.tls), "--cafile", f"{certs}/ca.crt", "--cert", f"{certs}/client.crt",
            "-t", "t", "-m", "x"]
    _, _, theirs = run(["mosquitto_pub", *args])
    rc, _, ours = run([MIDGE_PUB, *args])
    assert rc == 1
    assert ours.splitlines()[0] == theirs.splitlines()[0]


def test_tls_without_port_means_8883(certs):
    """--cafile without -p connects to 8883, as mosquitto_pub does: nothing listens there
    in the test (unless the machine runs a broker on it), so both fail the same way."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 8883)) == 0:
            pytest.skip("something listens on 8883")
    for exe in (MIDGE_PUB, "mosquitto_pub"):
        rc, _, err = run([exe, "-h", "127.0.0.1", "--cafile", f"{certs}/ca.crt", "-t", "t",
                          "-m", "x"])
        assert (rc, err) == (1, b"Error: Connection refused\n"), exe


def test_help_names_the_url_schemes():
    rc, out, _ = run([MIDGE_SUB, "--help"])
    assert rc == 0
    for word in (b"mqtts (TLS, port 8883)", b"ws (WebSocket, port 80)",
                 b"wss (WebSocket over TLS, port 443)", b"--unix", b"--cafile", b"--ws-path"):
        assert word in out


# ---- midge-bench over TLS and WebSocket -----------------------------------------------------

BENCH = os.path.join(BIN_DIR, "midge-bench")


def bench(ls, transport, *args, timeout=60):
    """midge-bench ARGS over a transport of broker ls: (exit code, JSON result)."""
    flags = {"tcp": ["-p", str(ls.port)],
             "tls": ["-p", str(ls.tls), "--cafile", f"{ls.certs}/ca.crt"],
             "ws": ["-p", str(ls.ws), "--ws"],
             "wss": ["-L", f"wss://127.0.0.1:{ls.wss}", "--cafile", f"{ls.certs}/ca.crt"]}
    # The transport's flags come first: a -p in args (given later) wins.
    p = subprocess.run([BENCH, *map(str, args[:1]), *flags[transport], *map(str, args[1:]),
                        "--json", "--quiet"],
                       capture_output=True, text=True, timeout=timeout)
    check_stderr(p.stderr)
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, (p.stdout, p.stderr)
    return p.returncode, json.loads(lines[0])


@pytest.mark.parametrize("transport", ["tls", "ws", "wss"])
def test_bench_pairs_exact_over(lst, transport):
    rc, res = bench(lst, transport, "pairs", "-c", 2, "-n", 300, "-q", 1, "-w", 20)
    assert rc == 0 and res["ok"] is True, res
    assert res["transport"] == transport
    assert (res["sent"], res["acked"], res["received"], res["lost"], res["duplicates"]) == \
        (600, 600, 600, 0, 0)


@pytest.mark.parametrize("transport", ["tcp", "tls", "wss"])
def test_bench_handshake_mode(lst, transport):
    rc, res = bench(lst, transport, "handshake", "-c", 2, "-d", 1)
    assert rc == 0 and res["ok"] is True, res
    assert res["mode"] == "handshake" and res["transport"] == transport
    assert res["connect_failed"] == 0 and res["handshakes"] > 5, res
    assert res["connect_latency_us"]["count"] == res["handshakes"]


def test_bench_wrong_ca_fails_every_connection(lst):
    rc, res = bench(lst, "tcp", "conn", "-c", 3, "-p", lst.tls, "--cafile",
                    f"{lst.certs}/other-ca.crt")
    assert rc == 1 and (res["connected"], res["connect_failed"]) == (0, 3), res
