"""PROXY protocol listeners (issue 5, "Behind load balancers and proxies"): a listener with
`enable_proxy_protocol 1|2` reads HAProxy's header before anything else, logs the client it
names, and refuses at once (closed, logged) a connection whose first bytes cannot be a valid
header, without disturbing anyone else. The headers are built here byte by byte from
HAProxy's proxy-protocol.txt, sent from a raw socket, followed by MQTT (mqttraw.py) or TLS.

Each broker has two listeners: the plain -p one of conftest (for the bystander) and the PROXY
one under test.
"""
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import time
import types

import pytest

from conftest import ROOT, free_port, wait_listening
from mqttraw import V311, V5, Bystander, Client, Timeout, connect

pytestmark = pytest.mark.midge_only  # Debian's mosquitto 2.0 has no enable_proxy_protocol

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
LOCAL, PROXY = 0x20, 0x21
TCP4, UDP4, TCP6, UNSPEC = 0x11, 0x12, 0x21, 0x00

# How long a refusal may take: "at once", far below the broker's 10 s CONNECT timeout.
PROMPT = 2.0


def v1(proto="TCP4", src="192.0.2.1", dst="198.51.100.2", sport=56324, dport=1883):
    if proto == "UNKNOWN":
        return b"PROXY UNKNOWN\r\n"
    return f"PROXY {proto} {src} {dst} {sport} {dport}\r\n".encode()


def v2(cmd=PROXY, fam=TCP4, src="192.0.2.1", dst="198.51.100.2", sport=56324, dport=1883,
       tlvs=b"", length=None):
    """A v2 header; `length` overrides the length field (a lying header)."""
    if fam in (TCP4, UDP4):
        block = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
        block += struct.pack("!HH", sport, dport)
    elif fam == TCP6:
        block = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        block += struct.pack("!HH", sport, dport)
    else:
        block = b""
    body = block + tlvs
    return SIG + bytes([cmd, fam]) + struct.pack("!H", len(body) if length is None else length) \
        + body


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def wait_for_log(broker, pattern, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, broker.log())
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError(f"no log line matching {pattern!r} in:\n{broker.log()}")


def proxy_broker(broker_factory, version, listener_extra=""):
    """A broker whose second listener expects PROXY `version`; .proxy is its address."""
    port = free_port()
    broker = broker_factory(config=f"listener {port} 127.0.0.1\n"
                                   f"enable_proxy_protocol {version}\n"
                                   f"{listener_extra}"
                                   "allow_anonymous true\n")
    assert wait_listening(port), f"PROXY listener {port} not up:\n{broker.log()}"
    broker.proxy = types.SimpleNamespace(host="127.0.0.1", port=port)
    return broker


def proxied_client(broker, header, version=V311, chunks=None):
    """A raw client on the PROXY listener that has sent `header`, whole or in `chunks`
    writes with a pause between them (TCP_NODELAY is set: each is its own segment)."""
    c = Client(broker.proxy, version)
    if chunks is None:
        c.send(header)
    else:
        step = max(1, -(-len(header) // chunks))
        for i in range(0, len(header), step):
            c.send(header[i:i + step])
            time.sleep(0.05)
    return c


def round_trip(c, topic):
    """The connection carries MQTT both ways after its header: a QoS 1 message to itself."""
    c.sub((topic, 1))
    c.pub(topic, b"through the proxy", qos=1)
    p = c.recv_publish()
    assert (p.topic, p.payload) == (topic, b"through the proxy")


def refused(c, timeout=PROMPT):
    """The broker closes the connection without a CONNACK, within `timeout`."""
    c.try_send(connect("refused", c.version))
    elapsed = c.expect_closed(timeout)
    assert elapsed < timeout
    return elapsed


# ---- accepted headers

def test_v1_tcp4_then_connect(broker_factory):
    broker = proxy_broker(broker_factory, 1)
    with Bystander(broker):
        c = proxied_client(broker, v1())
        c.do_connect("proxied-v1")
        round_trip(c, "proxy/v1")
        c.disconnect()
    wait_for_log(broker, r"New client connected from 192\.0\.2\.1:56324 as proxied-v1\b")


def test_v1_header_and_connect_in_one_segment(broker_factory):
    """The bytes after the header, arriving with it, are the start of MQTT."""
    broker = proxy_broker(broker_factory, 1)
    c = Client(broker.proxy, V5)
    c.send(v1(src="203.0.113.9", sport=4242) + connect("one-segment", V5))
    assert c.expect_connack().rc == 0
    round_trip(c, "proxy/one-segment")
    c.disconnect()
    wait_for_log(broker, r"New client connected from 203\.0\.113\.9:4242 as one-segment\b")


def test_v1_tcp6(broker_factory):
    broker = proxy_broker(broker_factory, 1)
    c = proxied_client(broker, v1("TCP6", "2001:db8::7", "2001:db8::1", 61000, 1883))
    c.do_connect("proxied-v1-six")
    c.disconnect()
    wait_for_log(broker, r"New client connected from \[2001:db8::7\]:61000 as proxied-v1-six\b")


def test_v1_unknown_keeps_socket_address(broker_factory):
    broker = proxy_broker(broker_factory, 1)
    c = proxied_client(broker, v1("UNKNOWN"))
    c.do_connect("proxied-unknown")
    c.disconnect()
    wait_for_log(broker, r"New client connected from 127\.0\.0\.1:\d+ as proxied-unknown\b")


def test_v2_ipv4(broker_factory):
    broker = proxy_broker(broker_factory, 2)
    with Bystander(broker):
        c = proxied_client(broker, v2(src="198.18.0.5", sport=40001))
        c.do_connect("proxied-v2")
        round_trip(c, "proxy/v2")
        c.disconnect()
    wait_for_log(broker, r"New client connected from 198\.18\.0\.5:40001 as proxied-v2\b")


def test_v2_ipv6_with_tlvs(broker_factory):
    broker = proxy_broker(broker_factory, 2)
    tlvs = tlv(0x01, b"mqtt") + tlv(0x04, b"\0" * 5) + tlv(0x05, b"conn-id-0042")
    with Bystander(broker):
        c = proxied_client(broker, v2(fam=TCP6, src="2001:db8::42", dst="2001:db8::1",
                                      sport=50123, tlvs=tlvs), V5)
        c.do_connect("proxied-v2-six")
        round_trip(c, "proxy/v2-six")
        c.disconnect()
    wait_for_log(broker, r"New client connected from \[?2001:db8::42\]?:50123 as proxied-v2-six\b")


def test_v2_local_keeps_socket_address(broker_factory):
    """A load balancer's health check: LOCAL, the socket's own address stands."""
    broker = proxy_broker(broker_factory, 2)
    c = proxied_client(broker, v2(cmd=LOCAL, fam=UNSPEC))
    c.do_connect("proxied-local")
    c.disconnect()
    wait_for_log(broker, r"New client connected from 127\.0\.0\.1:\d+ as proxied-local\b")


@pytest.mark.parametrize("version,header", [(1, v1()), (2, v2(fam=TCP6, src="2001:db8::9",
                                                                dst="2001:db8::1"))],
                         ids=["v1", "v2"])
def test_header_split_across_writes(broker_factory, version, header):
    broker = proxy_broker(broker_factory, version)
    with Bystander(broker):
        c = proxied_client(broker, header, chunks=len(header))  # one byte per write
        c.do_connect(f"split-v{version}")
        round_trip(c, f"proxy/split-v{version}")
        c.disconnect()
    addr = r"192\.0\.2\.1:56324" if version == 1 else r"\[?2001:db8::9\]?:56324"
    wait_for_log(broker, rf"New client connected from {addr} as split-v{version}\b")


# ---- refused connections

def test_no_header_refused_at_once(broker_factory):
    """A client that does not know it talks to a PROXY listener sends CONNECT first."""
    broker = proxy_broker(broker_factory, 1)
    with Bystander(broker):
        c = Client(broker.proxy, V311)
        refused(c)
    wait_for_log(broker, r"127\.0\.0\.1:\d+[^\n]*PROXY v1: header does not start with "
                         r"\"PROXY \"")


def test_http_request_refused_at_once(broker_factory):
    broker = proxy_broker(broker_factory, 2)
    with Bystander(broker):
        c = Client(broker.proxy, V311)
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert c.expect_closed(PROMPT) < PROMPT
    wait_for_log(broker, r"127\.0\.0\.1:\d+[^\n]*PROXY v2: bad signature")


def test_v1_header_on_v2_listener_refused(broker_factory):
    broker = proxy_broker(broker_factory, 2)
    with Bystander(broker):
        refused(proxied_client(broker, v1()))
    wait_for_log(broker, r"PROXY: a v1 header on a listener that expects v2")


def test_v2_header_on_v1_listener_refused(broker_factory):
    broker = proxy_broker(broker_factory, 1)
    with Bystander(broker):
        refused(proxied_client(broker, v2()))
    wait_for_log(broker, r"PROXY: a v2 header on a listener that expects v1")


def test_bad_v1_address_refused(broker_factory):
    broker = proxy_broker(broker_factory, 1)
    with Bystander(broker):
        refused(proxied_client(broker, v1(src="192.0.2.256")))
    wait_for_log(broker, r"PROXY v1: bad source address")


def test_truncated_header_then_close(broker_factory):
    """Half a header and a close: the broker forgets the connection and serves the next."""
    broker = proxy_broker(broker_factory, 2)
    header = v2()
    with Bystander(broker):
        for cut in (1, 12, 15, 20):
            c = Client(broker.proxy, V311)
            c.send(header[:cut])
            time.sleep(0.05)
            c.close()
        c = proxied_client(broker, header)
        c.do_connect("after-truncated")
        c.disconnect()
    wait_for_log(broker, r"New client connected from 192\.0\.2\.1:56324 as after-truncated\b")


def test_truncated_header_waits(broker_factory):
    """A header cut short is not a refusal yet: no CONNACK, no close, until more comes."""
    broker = proxy_broker(broker_factory, 1)
    header = v1()
    c = proxied_client(broker, header[:20])
    with pytest.raises(Timeout):
        c.recv_packet(timeout=0.5)
    c.send(header[20:] + connect("completed-late", V311))
    assert c.expect_connack().rc == 0
    c.disconnect()
    wait_for_log(broker, r"New client connected from 192\.0\.2\.1:56324 as completed-late\b")


def test_v2_length_shorter_than_addresses_refused(broker_factory):
    broker = proxy_broker(broker_factory, 2)
    with Bystander(broker):
        refused(proxied_client(broker, v2(length=8)))
    wait_for_log(broker, r"PROXY v2: length shorter than the IPv4 address block \(12 bytes\)")


def test_v2_length_longer_than_sent(broker_factory):
    """A header announcing more than it sends swallows what follows as TLVs: the CONNECT
    read as a TLV does not fit in the length, so it is refused at once, not answered."""
    broker = proxy_broker(broker_factory, 2)
    with Bystander(broker):
        c = proxied_client(broker, v2(length=12 + 40))
        with pytest.raises(Timeout):
            c.recv_packet(timeout=0.5)  # waiting for the rest of the header
        refused(c)
    wait_for_log(broker, r"PROXY v2: TLV runs past the header length")


def test_closed_before_any_byte(broker_factory):
    """Connections that say nothing and go (port scanners, health checks): harmless."""
    broker = proxy_broker(broker_factory, 1)
    with Bystander(broker):
        for _ in range(20):
            socket.create_connection(("127.0.0.1", broker.proxy.port), timeout=5).close()
        c = proxied_client(broker, v1())
        c.do_connect("after-silent")
        c.disconnect()


# ---- TLS after the header

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    subprocess.run([os.path.join(ROOT, "scripts", "gen-certs.sh"), str(d)], check=True,
                   timeout=120)
    return d


def tls_client(broker, header, certs, version=V311):
    """The header in clear, then a TLS handshake on the same socket, then MQTT."""
    c = Client(broker.proxy, version)
    c.send(header)
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
    return c


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
@pytest.mark.parametrize("header", [v2(src="192.0.2.77", sport=8883),
                                   v2(fam=TCP6, src="2001:db8::77", dst="2001:db8::1",
                                      sport=8883)],
                         ids=["ipv4", "ipv6"])
def test_tls_after_v2_header(broker_factory, certs, header):
    broker = proxy_broker(broker_factory, 2, f"certfile {certs / 'server.crt'}\n"
                                             f"keyfile {certs / 'server.key'}\n")
    with Bystander(broker):
        c = tls_client(broker, header, certs)
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        c.do_connect("proxied-tls")
        round_trip(c, "proxy/tls")
        c.disconnect()
    addr = r"192\.0\.2\.77" if header[13] == TCP4 else r"\[?2001:db8::77\]?"
    wait_for_log(broker, rf"New client connected from {addr}:8883 as proxied-tls\b")


def test_tls_without_header_refused(broker_factory, certs):
    """A TLS client that skips the header: its ClientHello is not a PROXY header."""
    broker = proxy_broker(broker_factory, 2, f"certfile {certs / 'server.crt'}\n"
                                             f"keyfile {certs / 'server.key'}\n")
    with Bystander(broker):
        ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        raw = socket.create_connection(("127.0.0.1", broker.proxy.port), timeout=5)
        start = time.monotonic()
        with pytest.raises((ssl.SSLError, OSError)):
            ctx.wrap_socket(raw, server_hostname="localhost")
        assert time.monotonic() - start < PROMPT
        raw.close()
    wait_for_log(broker, r"PROXY v2: bad signature")


def test_header_never_completed_times_out(broker_factory):
    """A header that stops halfway (a slow or broken proxy) does not hold the connection
    forever: connect_timeout covers the header too."""
    port = free_port()
    broker = broker_factory(config=f"connect_timeout 1\nlistener {port} 127.0.0.1\n"
                                   "enable_proxy_protocol 2\nallow_anonymous true\n")
    assert wait_listening(port)
    broker.proxy = types.SimpleNamespace(host="127.0.0.1", port=port)
    with Bystander(broker):
        c = proxied_client(broker, v2()[:20])
        elapsed = c.expect_closed(5.0)
        assert 0.9 < elapsed < 5.0
    wait_for_log(broker, r"127\.0\.0\.1:\d+[^\n]*no CONNECT within connect_timeout")


def test_websocket_after_v1_header(broker_factory):
    """A WebSocket listener behind a proxy: the header, then the HTTP upgrade, then MQTT in
    masked binary frames; the header's address is the one logged."""
    broker = proxy_broker(broker_factory, 1, "protocol websockets\n")
    c = Client(broker.proxy, V311)
    c.send(v1(src="192.0.2.99", sport=33333) +
           b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
    head = b""
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in head:
        assert time.monotonic() < deadline, f"no upgrade answer: {head!r}"
        c.sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = c.sock.recv(4096)
        assert chunk, f"closed during the upgrade: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    rest = head.split(b"\r\n\r\n", 1)[1]
    mask = b"\x01\x02\x03\x04"
    payload = connect("proxied-ws", V311)
    assert len(payload) < 126
    c.send(bytes([0x82, 0x80 | len(payload)]) + mask +
           bytes(x ^ mask[i % 4] for i, x in enumerate(payload)))
    frame = rest
    while len(frame) < 2 or len(frame) < 2 + frame[1]:
        c.sock.settimeout(5)
        chunk = c.sock.recv(4096)
        assert chunk, f"closed before CONNACK: {frame!r}"
        frame += chunk
    assert frame[0] == 0x82 and frame[2:2 + frame[1]] == b"\x20\x02\x00\x00", frame
    c.close()
    wait_for_log(broker, r"New client connected from 192\.0\.2\.99:33333 as proxied-ws\b")
