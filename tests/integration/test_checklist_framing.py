"""Checklist items 1-6 (framing): remaining length, packet size limits, truncated and oversized
fields, reserved fixed-header flags, PUBLISH flags, slowloris.

Every malformed case runs inside a Bystander: a second, well-behaved client that keeps
exchanging messages and must not notice anything. Run against mosquitto 2.0.11 with
MIDGE_TEST_BROKER=mosquitto; the cases where mosquitto deviates are marked midge_only with the
reason beside them.
"""
import time

import pytest

from conftest import USE_MOSQUITTO
from mqttraw import (OK, DISCONNECT, PINGREQ, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBSCRIBE,
                     UNSUBSCRIBE, CONNECT, V311, V5, Bystander, Client, ack, connect, connected,
                     packet, props, publish, string, subscribe, u16, unsubscribe, RC_MALFORMED,
                     RC_PACKET_TOO_LARGE, RC_KEEP_ALIVE_TIMEOUT, NAMES, parse_disconnect, Closed)

midge_only = pytest.mark.midge_only


def param(*values, id, midge=False):
    return pytest.param(*values, id=id, marks=[midge_only] if midge else [])


def vh(version):
    """Empty property block on 5.0, nothing on 3.1.1."""
    return props() if version == V5 else b""


# --- Item 1 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [
    param(V311, id="v311"),
    # mosquitto closes without sending DISCONNECT 0x81 first.
    param(V5, id="v5", midge=True),
])
def test_item01_remaining_length_five_bytes(broker, version):
    """Checklist 1, MQTT-1.5.5 (5.0: a variable byte integer is at most 4 bytes), 3.1.1 2.2.3:
    a remaining length with a fifth byte is malformed; the connection is closed."""
    with Bystander(broker):
        c = connected(broker, "item01-5bytes", version)
        c.send(bytes([0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]))
        c.expect_disconnect(RC_MALFORMED)


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_item01_remaining_length_five_bytes_before_connect(broker, version):
    """Checklist 1, MQTT-1.5.5: a five-byte remaining length on the first packet: the broker
    cannot know the version yet, so it just closes."""
    with Bystander(broker):
        c = Client(broker, version)
        c.send(bytes([0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]))
        c.expect_closed()


@pytest.mark.midge_only  # mosquitto 2.0.11 accepts non-minimal encodings (answers the PINGREQ).
@pytest.mark.parametrize("data", [
    param(bytes([0xC0, 0x80, 0x00]), id="pingreq-0-as-2-bytes"),
    param(bytes([0x30, 0x87, 0x00]) + string("a/b") + b"\x00xy", id="publish-7-as-2-bytes"),
    param(bytes([0x30, 0x87, 0x80, 0x80, 0x00]) + string("a/b") + b"\x00xy",
          id="publish-7-as-4-bytes"),
])
def test_item01_remaining_length_not_shortest_v5(broker, data):
    """Checklist 1, MQTT-1.5.5-1: the encoded value MUST use the minimum number of bytes; a longer
    encoding is malformed: DISCONNECT 0x81 and close."""
    with Bystander(broker):
        c = connected(broker, "item01-nonminimal", V5)
        c.send(data)
        c.expect_disconnect(RC_MALFORMED)


# --- Item 2 -----------------------------------------------------------------------------------

LIMIT = "max_packet_size 1000"


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_item02_declared_length_over_max_closes_before_body(broker_factory, version):
    """Checklist 2, MQTT-3.2.2-15 (5.0 Maximum Packet Size), 4.13: a PUBLISH that declares
    256 MB and then stalls is closed at once, without waiting for (or allocating) the body.
    5.0: DISCONNECT 0x95 Packet too large."""
    broker = broker_factory(config=LIMIT)
    with Bystander(broker):
        c = connected(broker, "item02-stall", version)
        if version == V5:
            assert c.connack.props.get(0x27) == 1000, c.connack
        start = time.monotonic()
        c.send(bytes([0x30, 0xFF, 0xFF, 0xFF, 0x7F]))
        c.expect_disconnect(RC_PACKET_TOO_LARGE, timeout=2.0)
        assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_item02_complete_packet_over_max(broker_factory, version):
    """Checklist 2, MQTT-3.2.2-15 / 4.13: a complete PUBLISH of 1108 bytes with max_packet_size
    1000 is refused (5.0: DISCONNECT 0x95); one of 908 bytes is accepted (PUBACK)."""
    broker = broker_factory(config=LIMIT)
    with Bystander(broker):
        ok = connected(broker, "item02-ok", version)
        data = publish("a/b", b"x" * 900, qos=1, pid=7, version=version)
        assert len(data) <= 1000
        ok.send(data)
        ok.expect_ack(PUBACK, 7, OK)
        c = connected(broker, "item02-big", version)
        data = publish("a/b", b"x" * 1100, version=version)
        assert len(data) > 1000
        c.send(data)
        c.expect_disconnect(RC_PACKET_TOO_LARGE)
        ok.expect_open()


def test_item02_connect_over_max_before_connack(broker_factory):
    """Checklist 2: even the first packet obeys the limit: a CONNECT declaring 256 MB is closed
    at once (the version is not known yet, so no DISCONNECT)."""
    broker = broker_factory(config=LIMIT)
    with Bystander(broker):
        c = Client(broker, V5)
        c.send(bytes([0x10, 0xFF, 0xFF, 0xFF, 0x7F]))
        c.expect_closed(timeout=2.0)


# --- Item 3 -----------------------------------------------------------------------------------

def truncated_cases(version):
    v = vh(version)
    return [
        ("subscribe-filter-past-end", packet(SUBSCRIBE, 2, u16(1) + v + u16(10) + b"abc")),
        ("subscribe-missing-options", packet(SUBSCRIBE, 2, u16(1) + v + string("a/b"))),
        ("unsubscribe-trailing-byte", packet(UNSUBSCRIBE, 2, u16(1) + v + string("a/b") + b"\0")),
        ("publish-topic-past-end", packet(PUBLISH, 0, u16(10) + b"ab")),
        ("publish-qos1-no-pid", packet(PUBLISH, 2, string("a/b"))),
    ]


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
@pytest.mark.parametrize("case", range(5), ids=[c[0] for c in truncated_cases(V5)])
def test_item03_field_past_end(broker, version, case):
    """Checklist 3, 5.0 section 1.5.4/4.13 and 3.1.1 section 4.8: a field that runs past the end
    of the packet is malformed: 5.0 DISCONNECT 0x81; 3.1.1 close."""
    name, data = truncated_cases(version)[case]
    with Bystander(broker):
        c = connected(broker, "item03-" + name, version)
        c.send(data)
        c.expect_disconnect(RC_MALFORMED)


def test_item03_property_past_end_v5(broker):
    """Checklist 3, 5.0 2.2.2: a property block whose length runs past the packet: 0x81."""
    with Bystander(broker):
        c = connected(broker, "item03-props", V5)
        c.send(packet(PUBLISH, 0, string("a/b") + bytes([0x05, 0x02, 0, 0])))
        c.expect_disconnect(RC_MALFORMED)


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_item03_connect_client_id_past_end(broker, version):
    """Checklist 3, MQTT-3.1.4-1: a CONNECT whose client id runs past the end is closed (5.0 may
    first send CONNACK 0x81, never a success)."""
    with Bystander(broker):
        c = Client(broker, version)
        good = connect("abcdef", version)
        c.send(packet(CONNECT, 0, good[2:-3]))  # the id's length still says 6 bytes
        from mqttraw import expect_connect_refused
        expect_connect_refused(c, RC_MALFORMED if version == V5 else None)


@pytest.mark.midge_only  # mosquitto 2.0.11 ignores the extra bytes (answers PINGREQ, takes PUBACK)
@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
@pytest.mark.parametrize("data", [
    param(packet(PINGREQ, 0, b"\x00"), id="pingreq-with-body"),
    param(packet(PUBACK, 0, b"\x00\x01\x00\x00\x00\x00"), id="puback-bytes-after-props"),
])
def test_item03_bytes_left_over(broker, version, data):
    """Checklist 3, 5.0 section 4.13 / 3.1.1 section 4.8: bytes left over after the last field
    of a packet are malformed (PINGREQ has no body, 3.12; a 3.1.1 PUBACK is exactly 2 bytes,
    3.4.1; a 5.0 PUBACK ends with its property block, 3.4.2.2): 0x81 / close."""
    with Bystander(broker):
        c = connected(broker, "item03-leftover", version)
        c.send(data)
        c.expect_disconnect(RC_MALFORMED)


@pytest.mark.midge_only  # mosquitto 2.0.11 closes without sending DISCONNECT 0x81.
def test_item03_disconnect_bytes_left_over_v5(broker):
    """Checklist 3, 5.0 3.14.2: a DISCONNECT with bytes after its property block: 0x81."""
    with Bystander(broker):
        c = connected(broker, "item03-disc", V5)
        c.send(packet(DISCONNECT, 0, b"\x00\x00\x00"))
        c.expect_disconnect(RC_MALFORMED)


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_item03_malformed_disconnect_publishes_will(broker, version):
    """Checklist 3/4, MQTT-3.1.2-8 (3.1.1) / MQTT-3.1.2-8 (5.0): a malformed DISCONNECT is not a
    normal disconnection, so the will message is published."""
    with Bystander(broker):
        s = connected(broker, "item03-will-sub", version)
        s.sub(("item03/will", 1))
        c = connected(broker, "item03-will", version,
                      will=dict(topic="item03/will", payload=b"gone", qos=1))
        bad = packet(DISCONNECT, 1, b"") if version == V311 else packet(DISCONNECT, 0,
                                                                          b"\x00\x00\x00")
        c.send(bad)
        try:
            c.recv_packet(2.0)
        except Closed:
            pass
        p = s.recv_publish()
        assert (p.topic, p.payload, p.qos) == ("item03/will", b"gone", 1)
        s.expect_nothing()


# --- Item 4 -----------------------------------------------------------------------------------

def flag_cases(version):
    v = vh(version)
    sub = subscribe(1, [("a/b", 0)], version)
    unsub = unsubscribe(1, ["a/b"], version)
    return {
        "subscribe-0000": bytes([0x80]) + sub[1:],
        "subscribe-0011": bytes([0x83]) + sub[1:],
        "unsubscribe-0000": bytes([0xA0]) + unsub[1:],
        "pubrel-0000": ack(PUBREL, 1, flags=0),
        "pingreq-0001": packet(PINGREQ, 1, b""),
        "puback-0010": ack(PUBACK, 1, flags=2),
        "pubrec-1000": ack(PUBREC, 1, flags=8),
        "pubcomp-0100": ack(PUBCOMP, 1, flags=4),
        "disconnect-0001": packet(DISCONNECT, 1, b"" if version == V311 else b"\x00" + v),
    }


# mosquitto 2.0.11: ignores bad flags on PINGREQ, PUBACK, PUBREC, PUBCOMP; on 5.0 it closes
# without DISCONNECT 0x81 for PUBREL and DISCONNECT.
MOSQ_FLAG_DEVIATIONS = {
    V311: {"pingreq-0001", "puback-0010", "pubrec-1000", "pubcomp-0100"},
    V5: {"pingreq-0001", "puback-0010", "pubrec-1000", "pubcomp-0100", "pubrel-0000",
         "disconnect-0001"},
}


@pytest.mark.parametrize("version,name", [
    param(v, n, id=f"{'v5' if v == V5 else 'v311'}-{n}", midge=n in MOSQ_FLAG_DEVIATIONS[v])
    for v in (V311, V5) for n in flag_cases(V5)])
def test_item04_reserved_fixed_header_flags(broker, version, name):
    """Checklist 4, MQTT-2.1.3-1 (5.0) / MQTT-2.2.2-1, MQTT-2.2.2-2 (3.1.1), MQTT-3.8.1-1,
    MQTT-3.10.1-1, MQTT-3.6.1-1: reserved flag bits not as in the table: malformed, close
    (5.0: DISCONNECT 0x81)."""
    with Bystander(broker):
        c = connected(broker, "item04-" + name, version)
        c.send(flag_cases(version)[name])
        c.expect_disconnect(RC_MALFORMED)


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_item04_connect_reserved_flags(broker, version):
    """Checklist 4, MQTT-2.1.3-1 / MQTT-2.2.2-2: CONNECT with fixed-header flags 0001: closed
    (5.0 may first send CONNACK 0x81)."""
    from mqttraw import expect_connect_refused
    with Bystander(broker):
        c = Client(broker, version)
        data = connect("item04-connect", version)
        c.send(bytes([0x11]) + data[1:])
        expect_connect_refused(c, RC_MALFORMED if version == V5 else None)


# --- Item 5 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
@pytest.mark.parametrize("flags", [
    param(0x06, id="qos3"),
    param(0x07, id="qos3-retain"),
    param(0x0E, id="qos3-dup"),
    # mosquitto 2.0.11 accepts DUP=1 on a QoS 0 PUBLISH.
    param(0x08, id="qos0-dup", midge=True),
])
def test_item05_publish_bad_qos_or_dup(broker, version, flags):
    """Checklist 5, MQTT-3.3.1-4 (QoS 3: close) and MQTT-3.3.1-2 (DUP must be 0 at QoS 0):
    malformed, close (5.0: DISCONNECT 0x81)."""
    with Bystander(broker):
        s = connected(broker, "item05-sub", version)
        s.sub(("item05/t", 2))
        c = connected(broker, "item05", version)
        c.send(publish("item05/t", b"bad", flags=flags, pid=1 if flags & 6 else None,
                       version=version))
        c.expect_disconnect(RC_MALFORMED)
        s.expect_nothing()


# --- Item 6 -----------------------------------------------------------------------------------

# mosquitto 2.0.11 checks keepalives only every few seconds: it closes a keepalive-1 client
# after 4-6 s instead of 1.5 s. Midge must close at 1.5 x keepalive (+ scheduling slack).
KEEPALIVE_SLACK = 6.0 if USE_MOSQUITTO else 1.0


def expect_keepalive_close(c, keepalive):
    """Closed no earlier than 1 x keepalive and no later than 1.5 x keepalive + slack.
    5.0 may send DISCONNECT 0x8D Keep alive timeout first (4.13.2)."""
    start = time.monotonic()
    limit = 1.5 * keepalive + KEEPALIVE_SLACK
    try:
        t, f, body = c.recv_packet(limit)
    except Closed:
        pass
    else:
        assert c.version == V5 and t == DISCONNECT, f"unexpected {NAMES.get(t, t)} {body!r}"
        assert parse_disconnect(body)[0] == RC_KEEP_ALIVE_TIMEOUT
        c.expect_closed(limit)
    elapsed = time.monotonic() - start
    assert keepalive * 1.0 <= elapsed <= limit, f"closed after {elapsed:.2f}s"


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_item06_partial_packet_then_silence(broker, version):
    """Checklist 6, MQTT-3.1.2-24 (3.1.1) / MQTT-3.1.2-22 (5.0): a client that sends half a
    packet and falls silent is closed at 1.5 x keepalive; a partial packet is not activity."""
    with Bystander(broker):
        c = connected(broker, "item06-slowloris", version, keepalive=1)
        c.send(bytes([0x30, 0x0A, 0x00, 0x03, ord("a")]))  # 5 of 12 bytes
        expect_keepalive_close(c, 1)


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_item06_pings_keep_connection_alive(broker, version):
    """Checklist 6, MQTT-3.1.2-23 (3.1.1) / 3.1.2.10: a client that pings within the keepalive
    stays connected past 1.5 x keepalive."""
    c = connected(broker, "item06-pinger", version, keepalive=1)
    end = time.monotonic() + 2.2
    while time.monotonic() < end:
        c.expect_open()
        time.sleep(0.4)
    c.expect_open()


# connect_timeout is Midge's option; mosquitto 2.0.11 kept such sockets open for more than 15 s.
@pytest.mark.midge_only
@pytest.mark.parametrize("data", [
    param(b"", id="silent"),
    param(bytes([0x10, 0x20, 0x00, 0x04]) + b"MQ", id="partial-connect"),
])
def test_item06_no_connect_closed_after_connect_timeout(broker_factory, data):
    """Checklist 6: a socket that has not completed CONNECT is closed after connect_timeout."""
    broker = broker_factory(config="connect_timeout 1")
    with Bystander(broker):
        c = Client(broker, V5)
        if data:
            c.send(data)
        elapsed = c.expect_closed(timeout=3.0)
        assert 0.9 <= elapsed <= 2.5, elapsed
