"""How the broker refuses bad input (DESIGN.md, "Limits and bad input"; the checklist's
meaning of "close"): the offending connection alone is closed, one log line names the client
and the rule broken, and the refusal is counted in $SYS/broker/protocol_errors."""
import re
import time
import types

import pytest

from conftest import free_port, wait_listening
from mqttraw import (PUBLISH, V5, V311, Bystander, Client, connected, packet, publish, string, u16,
                     RC_TOPIC_NAME_INVALID)

pytestmark = pytest.mark.midge_only  # the log format and the counter are Midge's


def sys_value(broker, topic, timeout=5.0):
    """The payload of a retained $SYS topic, read with a fresh subscriber."""
    c = connected(broker, "sys-reader", V311)
    c.sub((topic, 0))
    p = c.recv_publish(timeout=timeout)
    c.close()
    assert p.topic == topic
    return p.payload.decode()


def wait_for_log(broker, pattern, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, broker.log())
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError(f"no log line matching {pattern!r} in:\n{broker.log()}")


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_wildcard_publish_logged_counted_and_isolated(broker_factory, version):
    """Checklist 12 again, for the side effects: one line naming client and rule, the
    $SYS counter goes from 0 to 1, and a bystander is undisturbed."""
    broker = broker_factory(config="sys_interval 1")
    assert sys_value(broker, "$SYS/broker/protocol_errors") == "0"
    with Bystander(broker):
        c = connected(broker, "refusal-client", version)
        c.send(publish("bad/+", b"x", version=version))
        if version == V5:
            c.expect_disconnect(RC_TOPIC_NAME_INVALID)
        else:
            c.expect_closed()
    wait_for_log(broker, r"Client refusal-client 127\.0\.0\.1:\d+: MQTT-3\.3\.2-2[^\n]*closing")
    deadline = time.monotonic() + 5
    value = None
    while time.monotonic() < deadline:
        value = sys_value(broker, "$SYS/broker/protocol_errors")
        if value == "1":
            break
        time.sleep(0.3)
    assert value == "1"


def test_garbage_before_connect_logged_with_address(broker):
    """A first packet that is not CONNECT is closed and logged with the peer address."""
    with Bystander(broker):
        c = Client(broker, V311)
        c.send(packet(PUBLISH, 0, string("a/b") + b"x"))
        c.expect_closed()
    wait_for_log(broker, r"Connection from 127\.0\.0\.1:\d+ closed: MQTT-3\.1\.0-1: first "
                         r"packet is PUBLISH, not CONNECT")


def test_declared_oversize_packet_costs_nothing(broker_factory):
    """Checklist 2: a 256 MB declaration is refused on the header alone; the broker's memory
    does not grow by anything like it (read from /proc)."""
    broker = broker_factory(config="max_packet_size 1000")

    def rss_kb():
        with open(f"/proc/{broker.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    before = rss_kb()
    with Bystander(broker):
        c = connected(broker, "big-declared", V5)
        c.send(bytes([0x30, 0xFF, 0xFF, 0xFF, 0x7F]) + u16(3) + b"a/b")
        c.expect_disconnect(0x95)
    assert rss_kb() - before < 16 * 1024


@pytest.mark.parametrize("version,first_bytes,rule", [
    (1, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c",
     r"PROXY v1: header does not start with \"PROXY \""),
    (2, b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 1883\r\n",
     r"PROXY: a v1 header on a listener that expects v2"),
    (2, b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x08", r"PROXY v2: length shorter than the IPv4 "
                                                  r"address block \(12 bytes\)"),
], ids=["no-header", "v1-on-v2", "lying-length"])
def test_proxy_header_refusal_logged_with_address(broker_factory, version, first_bytes, rule):
    """A listener with enable_proxy_protocol refuses a connection whose first bytes cannot be
    a PROXY header: closed at once (no CONNECT timeout), one line naming the socket's address
    (the header named none) and the parser's reason, nobody else disturbed."""
    port = free_port()
    broker = broker_factory(config=f"listener {port} 127.0.0.1\nenable_proxy_protocol {version}\n"
                                   "allow_anonymous true")
    assert wait_listening(port)
    with Bystander(broker):
        c = Client(types.SimpleNamespace(host="127.0.0.1", port=port), V311)
        c.try_send(first_bytes)
        assert c.expect_closed(2.0) < 2.0
    wait_for_log(broker, rf"Connection from 127\.0\.0\.1:\d+ refused: {rule}")
