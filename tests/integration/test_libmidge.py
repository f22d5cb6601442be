"""libmidge against the running broker: the C driver tests/client/driver.c runs one scenario
per test and prints what it saw; these tests compare that output exactly.

The driver is built next to the broker binary (MIDGE_BIN's folder, client-tests/driver), so
`make test-asan` runs it under the sanitizers too. Every wait is bounded: the driver's own
waits, and a timeout on each process interaction here.
"""
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading

import pytest

from conftest import MIDGE_BIN, USE_MOSQUITTO
from helpers import V5, V311, Client, close_clients  # noqa: F401

DRIVER = os.path.join(os.path.dirname(os.path.abspath(MIDGE_BIN)), "client-tests", "driver")
if USE_MOSQUITTO:
    DRIVER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "build", "client-tests", "driver")

pytestmark = pytest.mark.skipif(not os.access(DRIVER, os.X_OK),
                                reason=f"libmidge test driver not built: {DRIVER}")

SAN_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
             "WARNING: ThreadSanitizer")


def run(scenario, port, *args, timeout=30):
    """Run a scenario to its end; return its stdout lines (fail on a non-zero exit)."""
    p = subprocess.run([DRIVER, scenario, "127.0.0.1", str(port), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    for mark in SAN_MARKS:
        assert mark not in p.stderr, p.stderr
    assert p.returncode == 0, f"driver {scenario} exit {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p.stdout.splitlines()


class Driver:
    """A scenario that talks with the test: read its lines, send it a go."""

    def __init__(self, scenario, port, *args):
        self.p = subprocess.Popen([DRIVER, scenario, "127.0.0.1", str(port), *map(str, args)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, bufsize=0)
        self.lines = []
        self.buf = b""

    def expect(self, prefix, timeout=10):
        """Read lines until one starts with prefix (bounded); return it."""
        fd = self.p.stdout.fileno()
        while True:
            while b"\n" not in self.buf:
                r, _, _ = select.select([fd], [], [], timeout)
                assert r, f"no {prefix!r} from the driver within {timeout}s: {self.lines}"
                chunk = os.read(fd, 4096)
                assert chunk, f"driver ended before {prefix!r}: {self.lines}"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.decode()
            self.lines.append(line)
            assert not line.startswith("FAIL"), self.lines
            if line.startswith(prefix):
                return line

    def go(self):
        self.p.stdin.write(b"go\n")
        self.p.stdin.flush()

    def finish(self, timeout=20):
        out, err = self.p.communicate(timeout=timeout)
        self.lines += (self.buf + out).decode().splitlines()
        err = err.decode()
        for mark in SAN_MARKS:
            assert mark not in err, err
        assert self.p.returncode == 0, f"exit {self.p.returncode}: {self.lines}\n{err}"
        return self.lines

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)


@pytest.fixture
def drivers():
    started = []
    yield lambda *a: started.append(Driver(*a)) or started[-1]
    for d in started:
        d.kill()


def restartable(broker):
    """Let a test stop this broker on purpose: the factory then does not count it as died."""
    broker.alive = lambda: True
    return broker


@pytest.mark.parametrize("version", [3, 4, 5])
def test_connect_and_disconnect(broker, version):
    assert run("connect", broker.port, version) == ["CONNACK 0 connected=1",
                                                    "DISCONNECTED connected=0"]


def test_v31_connect_is_mqisdp_with_own_client_id(broker):
    """3.1: CONNECT says MQIsdp level 3, and without an id libmidge makes one, since a 3.1
    broker cannot assign one."""
    assert run("connect", broker.port, 3) == ["CONNACK 0 connected=1",
                                              "DISCONNECTED connected=0"]
    m = re.search(r"New client connected from \S+ as (\S+) \(p3, c1, k60\)", broker.log())
    assert m, broker.log()
    assert re.fullmatch(r"midge-[0-9a-f]{16}", m.group(1)), m.group(1)


def test_refused_v311_identifier(broker):
    # 3.1.1: an empty client id without clean session is refused with return code 2
    assert run("refused", broker.port, 4) == ["RC refused REASON 2 connected=0"]


@pytest.mark.midge_only
@pytest.mark.parametrize("version,code", [(4, 2), (5, 135)])
def test_refused_not_authorized(broker_factory, version, code):
    b = broker_factory(config="allow_anonymous false")
    assert run("refused", b.port, version) == [f"RC refused REASON {code} connected=0"]


def test_unreachable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert run("unreachable", port) == ["RC connection failed or lost"]


@pytest.mark.parametrize("version", [3, 4, 5])
def test_publish_subscribe_all_qos(broker, version):
    out = run("pubsub", broker.port, version)
    assert out == [
        "SUBACK 2 1",
        "PUBACKED q0 reason 0",
        "PUBACKED q1 reason 0",
        "PUBACKED q2 reason 0",
        # 5.0: PUBACK 0x10 No matching subscribers
        f"PUBACKED nobody reason {16 if version == 5 else 0}",
        "MSG t/0 q0 r0 payload-0",
        "MSG t/1 q1 r0 payload-1",
        "MSG t/2 q2 r0 payload-2",
        "MSG u/x q1 r0 ",
        "UNSUBACK 0 17" if version == 5 else "UNSUBACK",
        "AFTER_UNSUB none",
        "BAD_TOPIC 1 1",
    ]


def test_v5_properties_round_trip(broker):
    out = run("props", broker.port)
    assert out == [
        "MSG p/1 q1 r0 hello",
        "USER k1=v1",
        "USER k2=v two",
        "CONTENT_TYPE text/plain",
        "RESPONSE_TOPIC reply/here",
        "CORRELATION corr-7",
        "EXPIRY 100",
        "FORMAT 1",
        "SUBID 42",
        "MSG p/alias/topic q0 r0 a",
        "MSG p/alias/topic q0 r0 a",
        "MSG p/alias/topic q0 r0 a",
    ]


def test_v5_subscription_options(broker):
    # no local: our own so/nl is not sent back; retain as published: so/rap keeps its retain
    # flag; retain handling 2: the retained so/ret is not sent on subscribe
    assert run("subopts", broker.port) == ["SUBACK 1 1 1", "MSG so/rap q1 r1 flag"]


def test_v5_outbound_topic_aliases(broker):
    sub = Client(broker, "alias-watch")
    sub.subscribe("alias/#", qos=1)
    # 5 PUBLISHes, 4 of the long topic (35 bytes): three of them send the alias (a 3-byte
    # property) instead of the topic, so roughly 3 * 32 bytes fewer go out
    out = run("alias_out", broker.port)
    saved = int(out[0].split()[1])
    assert 80 <= saved <= 100, out
    got = [(m.topic, m.payload) for m in sub.expect_messages(10)]
    long = "alias/a/rather/long/topic/name/here"
    want = [(long if i != 2 else "alias/other", f"{w}-{i}".encode()) for w in ("off", "on")
            for i in range(5)]
    assert got == want


def test_v5_properties_seen_by_paho(broker):
    """What libmidge sends is what another client (paho) receives."""
    sub = Client(broker, "paho-props")
    sub.subscribe("p/#", qos=1)
    run("props", broker.port)
    m = sub.expect_message()
    assert (m.topic, m.payload, m.qos) == ("p/1", b"hello", 1)
    assert m.props.UserProperty == [("k1", "v1"), ("k2", "v two")]
    assert m.props.ContentType == "text/plain"
    assert m.props.ResponseTopic == "reply/here"
    assert m.props.CorrelationData == b"corr-7"
    assert m.props.PayloadFormatIndicator == 1
    assert 0 < m.props.MessageExpiryInterval <= 100


def test_async_api_own_poll_loop(broker):
    out = run("async", broker.port)
    assert out[0] == "SUBACK 1 1"
    assert out[1:11] == [f"MSG async/t q{min(i % 3, 1)} r0 m{i}" for i in range(10)]
    assert out[11:] == ["CONNACKS 1 SUBACKS 1 PUBLISHED 10 RECEIVED 10", "DISCONNECTS 1 FD -1"]


@pytest.mark.threaded
def test_background_thread_mode(broker):
    assert run("thread", broker.port, 500) == ["RECEIVED 500 IN_ORDER 1 PENDING 0"]


def test_keepalive_pings_keep_connection(broker):
    assert run("keepalive", broker.port) == ["CONNECTED 1"]


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("mode,expect_will", [("abort", True), ("clean", False)])
def test_will(broker, drivers, version, mode, expect_will):
    sub = Client(broker, "will-watcher")
    sub.subscribe("will/#", qos=1)
    d = drivers("will", broker.port, version, mode)
    d.expect("READY")
    d.go()
    assert d.finish() == ["READY", "DONE"]
    if expect_will:
        m = sub.expect_message()
        assert (m.topic, m.payload, m.qos, m.retain) == ("will/topic", b"gone", 1, 0)
    else:
        sub.expect_no_message(0.5)


def test_will_disconnect_with_will_v5(broker, drivers):
    sub = Client(broker, "will-watcher")
    sub.subscribe("will/#", qos=1)
    d = drivers("will", broker.port, 5, "withwill")
    d.expect("READY")
    d.go()
    d.finish()
    m = sub.expect_message()
    assert (m.topic, m.payload) == ("will/topic", b"gone")


@pytest.mark.parametrize("version", [4, 5])
def test_session_taken_over_reason(broker, drivers, version):
    d = drivers("takeover", broker.port, version)
    d.expect("READY")
    Client(broker, "takeover-driver", protocol=version)
    # 5.0: DISCONNECT 0x8E (142) Session taken over; 3.1.1: the socket just closes (0x100)
    assert d.expect("DISCONNECT") == f"DISCONNECT {142 if version == 5 else 256} connected=0"
    d.finish()


@pytest.mark.parametrize("version", [4, 5])
def test_persistent_session(broker, drivers, version):
    d = drivers("session", broker.port, version)
    d.expect("READY")
    pub = Client(broker, "session-pub")
    for i in range(3):
        pub.publish("sess/t", f"s{i}".encode(), qos=1)
    d.go()
    assert d.finish()[1:] == ["CONNACK 0", "MSG sess/t q1 r0 s0", "MSG sess/t q1 r0 s1",
                              "MSG sess/t q1 r0 s2"]


class Gate(threading.Thread):
    """A TCP relay in front of the broker that the test opens and closes: while closed it
    drops every connection at once, so a reconnecting client stays offline until the test
    is ready (the subscriber that checks the flush is then already subscribed)."""

    def __init__(self, upstream_port):
        super().__init__(daemon=True)
        self.upstream = upstream_port
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.open = True
        self.done = False
        self.conns = []

    def run(self):
        while not self.done:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return  # closed by close()
            if not self.open:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
            except OSError:
                c.close()
                continue
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.done = True
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass
        self.srv.close()


@pytest.fixture
def gate():
    made = []
    yield lambda port: made.append(Gate(port)) or made[-1].start() or made[-1]
    for g in made:
        g.close()


@pytest.mark.threaded
@pytest.mark.parametrize("version", [4, 5])
def test_offline_queue_flushed_in_order_after_broker_restart(broker_factory, drivers, gate,
                                                             version):
    b1 = restartable(broker_factory())
    g = gate(b1.port)
    d = drivers("offline", g.port, version, 6)
    assert d.expect("CONNACK") == "CONNACK 0"
    d.expect("READY")
    g.open = False
    b1.stop(signal.SIGKILL)  # the broker dies: the connection is lost
    d.go()
    assert d.expect("LOST") == "LOST 256"
    assert d.expect("CONNECTED") == "CONNECTED 0"
    assert d.expect("QUEUED") == "QUEUED 6 FULL 1"
    d.expect("WAITING")
    b2 = broker_factory(port=b1.port)  # a new broker on the same port
    sub = Client(b2, "offline-watcher")
    sub.subscribe("off/#", qos=1)
    g.open = True  # the client's next reconnect attempt gets through
    d.go()
    assert d.expect("FLUSHED") == "FLUSHED pending=0 connected=1"
    d.finish()
    got = [(m.payload, m.qos) for m in sub.expect_messages(6)]
    assert got == [(b"q0", 1), (b"q1", 1), (b"q2", 1), (b"q3", 0), (b"q4", 1), (b"q5", 1)]


# ---- resend on reconnect, against a scripted broker that withholds acknowledgements

def _read_packet(conn, timeout=10):
    conn.settimeout(timeout)
    head = conn.recv(1)
    if not head:
        return None, None
    mult, n = 1, 0
    while True:
        b = conn.recv(1)[0]
        n += (b & 127) * mult
        mult *= 128
        if not b & 128:
            break
    body = b""
    while len(body) < n:
        chunk = conn.recv(n - len(body))
        assert chunk
        body += chunk
    return head[0], body


class ScriptedBroker(threading.Thread):
    """Accept two connections: on the first, take the PUBLISH (and with QoS 2 answer PUBREC)
    then drop the connection; on the second, answer CONNACK with session present and record
    what the client resends."""

    def __init__(self, version, qos):
        super().__init__(daemon=True)
        self.version, self.qos = version, qos
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(2)
        self.srv.settimeout(10)
        self.port = self.srv.getsockname()[1]
        self.seen = []
        self.error = None

    def connack(self, conn, session_present):
        body = bytes([1 if session_present else 0, 0]) + (b"\x00" if self.version == 5 else b"")
        conn.sendall(bytes([0x20, len(body)]) + body)

    def ack(self, conn, ptype, pid, flags=0):
        conn.sendall(bytes([ptype << 4 | flags, 2, pid >> 8, pid & 255]))

    def run(self):
        try:
            c1, _ = self.srv.accept()
            t, _ = _read_packet(c1)
            self.seen.append(("CONNECT", t >> 4))
            self.connack(c1, False)
            t, body = _read_packet(c1)
            pid = body[2 + body[1]] << 8 | body[3 + body[1]]
            self.seen.append(("PUBLISH", t & 0x0F, pid))
            if self.qos == 2:
                self.ack(c1, 5, pid)  # PUBREC
                t, body = _read_packet(c1)
                self.seen.append(("PUBREL", t >> 4))
            c1.close()
            c2, _ = self.srv.accept()
            t, _ = _read_packet(c2)
            self.seen.append(("CONNECT", t >> 4))
            self.connack(c2, True)
            t, body = _read_packet(c2)
            if t >> 4 == 3:
                pid2 = body[2 + body[1]] << 8 | body[3 + body[1]]
                self.seen.append(("PUBLISH", t & 0x0F, pid2))
                self.ack(c2, 4, pid2)  # PUBACK
            else:
                pid2 = body[0] << 8 | body[1]
                self.seen.append(("PUBREL", t >> 4, pid2 == pid))
                self.ack(c2, 7, pid2)  # PUBCOMP
            _read_packet(c2, timeout=5)  # until the client goes
            c2.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


@pytest.mark.parametrize("version", [4, 5])
def test_qos1_resent_with_dup_after_lost_connection(version):
    sb = ScriptedBroker(version, 1)
    sb.start()
    out = run("resend", sb.port, version, 1)
    sb.join(10)
    assert sb.error is None, sb.error
    assert out == ["PUBLISH success reason 0 pending 0"]
    # first PUBLISH: QoS 1, no DUP (flags 0b0010); the resend: DUP set (0b1010), same id
    assert sb.seen[0] == ("CONNECT", 1)
    assert sb.seen[1][:2] == ("PUBLISH", 0x2)
    assert sb.seen[2] == ("CONNECT", 1)
    assert sb.seen[3] == ("PUBLISH", 0xA, sb.seen[1][2])


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_pubrel_resent_after_lost_connection(version):
    sb = ScriptedBroker(version, 2)
    sb.start()
    out = run("resend", sb.port, version, 2)
    sb.join(10)
    assert sb.error is None, sb.error
    assert out == ["PUBLISH success reason 0 pending 0"]
    assert sb.seen[1][:2] == ("PUBLISH", 0x4)
    assert sb.seen[2] == ("PUBREL", 6)
    assert sb.seen[4] == ("PUBREL", 6, True)


# ---- the installed library: headers, pkg-config file, shared and static libraries

PROGRAM = r"""
#include <midge/midge.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
    midge_options_t o;
    midge_options_init(&o);
    o.host = "127.0.0.1";
    o.port = (uint16_t)atoi(argv[1]);
    midge_client_t *c;
    if (midge_client_new(&o, &c))
        return 2;
    uint8_t reason = 0xff;
    int rc = midge_client_connect_wait(c, 3000, &reason);
    if (!rc)
        rc = midge_client_publish_wait(c, "installed/t", "ok", 2, 1, false, NULL, 3000, NULL);
    printf("%s %u\n", midge_strerror(rc), reason);
    midge_client_disconnect_wait(c, 0, 3000);
    midge_client_free(c);
    return rc ? 1 : 0;
}
"""


def _sanitized_build(build_dir):
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            return any(line.startswith("MIDGE_SANITIZE:") and line.strip().split("=", 1)[1]
                       for line in f)
    except OSError:
        return True


@pytest.mark.parametrize("static", [False, True])
def test_installed_library_with_pkg_config(broker, tmp_path, static):
    build_dir = os.path.dirname(os.path.abspath(MIDGE_BIN))
    if _sanitized_build(build_dir) or not shutil.which("pkg-config"):
        pytest.skip("install check runs on the plain build only")
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", build_dir, "--prefix", str(prefix)], check=True,
                   capture_output=True, timeout=60)
    for f in ("include/midge/midge.h", "include/midge/transport.h", "lib/libmidge.a",
              "lib/pkgconfig/midge.pc", "bin/midge-pub", "bin/midge-sub"):
        assert (prefix / f).exists(), f
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + (["--static"] if static else [])
                           + ["midge"], env=env, check=True, capture_output=True, text=True,
                           timeout=10).stdout.split()
    src = tmp_path / "prog.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "prog"
    cmd = ["cc", "-Wall", "-Werror", "-o", str(exe), str(src)] + flags
    if static:
        cmd = ["cc", "-Wall", "-Werror", "-o", str(exe), str(src),
               f"-I{prefix}/include", str(prefix / "lib" / "libmidge.a"), "-lpthread"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    sub = Client(broker, "installed-watch")
    sub.subscribe("installed/#", qos=1)
    p = subprocess.run([str(exe), str(broker.port)], capture_output=True, text=True, timeout=20,
                       env=dict(os.environ, LD_LIBRARY_PATH=str(prefix / "lib")))
    assert (p.returncode, p.stdout) == (0, "success 0\n"), p.stderr
    m = sub.expect_message()
    assert (m.topic, m.payload) == ("installed/t", b"ok")


# ---- the transport interface

def test_custom_transport_carries_the_session(broker):
    """A transport table of the application's own (here TCP underneath, with counters)."""
    assert run("transport", broker.port) == ["MSG tr/x q2 r0 0123456789",
                                             "OPENS 1 CLOSES 1 SENT 1 RECEIVED 1"]


def test_reconnect_backoff_doubles_with_jitter():
    """Opens that fail are retried after min 100 ms doubling to max 800 ms, each delay drawn
    from the upper half of its step; a publish meanwhile waits in the offline queue."""
    out = run("backoff", 1, 8)
    assert out[0] == "PUBLISH_OFFLINE 0 PENDING 1"
    delays = [int(line.split()[1]) for line in out[1:]]
    assert len(delays) == 7, out
    for i, d in enumerate(delays):
        step = min(100 * 2 ** i, 800)
        assert step // 2 - 5 <= d <= step + 150, (i, d, delays)
    assert len(set(delays[3:])) > 1, f"no jitter at the maximum step: {delays}"
