"""Checklist items 18-25 (MQTT 5.0 properties and limits): property validity, topic aliases,
receive maximum, the client's maximum packet size, session expiry on DISCONNECT, payload
format indicator, message expiry, authentication methods.

Malformed cases run inside a Bystander that must not be disturbed. Cases where mosquitto 2.0.11
deviates are marked midge_only with the reason beside them.
"""
import time

import pytest

from mqttraw import (OK, PUBREC, V5, Bystander, Client, auth, connect, connected, disconnect,
                     expect_connect_refused, publish, subscribe, RC_BAD_AUTH_METHOD, RC_MALFORMED,
                     RC_PAYLOAD_FORMAT_INVALID, RC_PROTOCOL_ERROR, RC_RECEIVE_MAXIMUM_EXCEEDED,
                     RC_TOPIC_ALIAS_INVALID, P_AUTH_METHOD, P_CONTENT_TYPE, P_MAXIMUM_PACKET_SIZE,
                     P_MESSAGE_EXPIRY, P_PAYLOAD_FORMAT, P_RECEIVE_MAXIMUM, P_SESSION_EXPIRY,
                     P_SUBSCRIPTION_ID, P_TOPIC_ALIAS, P_TOPIC_ALIAS_MAXIMUM, P_USER_PROPERTY)

midge_only = pytest.mark.midge_only


def param(*values, id, midge=False):
    return pytest.param(*values, id=id, marks=[midge_only] if midge else [])


# --- Item 18 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("data,rc", [
    param(publish("item18/t", b"x", properties=[(P_SESSION_EXPIRY, 5)]), RC_MALFORMED,
          id="publish-session-expiry"),
    param(publish("item18/t", b"x", properties=b"\x7f\x00"), RC_MALFORMED,
          id="publish-unknown-id-0x7f"),
    param(subscribe(1, [("item18/t", 0)], properties=[(P_CONTENT_TYPE, "x")]), RC_MALFORMED,
          id="subscribe-content-type"),
    param(publish("item18/t", b"x", properties=bytes([P_MESSAGE_EXPIRY, 0, 0])), RC_MALFORMED,
          id="publish-expiry-2-bytes-of-4"),
    param(subscribe(1, [("item18/t", 0)],
                    properties=bytes([P_SUBSCRIPTION_ID]) + b"\x81\x81\x81\x81\x01"),
          RC_MALFORMED, id="subscription-id-5-byte-vbi"),
    # mosquitto 2.0.11 closes without DISCONNECT 0x82 on duplicated properties.
    param(publish("item18/t", b"x", properties=[(P_MESSAGE_EXPIRY, 5), (P_MESSAGE_EXPIRY, 6)]),
          RC_PROTOCOL_ERROR, id="publish-expiry-twice", midge=True),
    param(publish("item18/t", b"x", properties=[(P_CONTENT_TYPE, "a"), (P_CONTENT_TYPE, "b")]),
          RC_PROTOCOL_ERROR, id="publish-content-type-twice", midge=True),
])
def test_item18_invalid_property(broker, data, rc):
    """Checklist 18, 5.0 section 2.2.2.2: an identifier not valid for the packet type or a value
    not of the specified type is malformed (0x81); MQTT-3.3.2-... a property allowed once given
    twice is a protocol error (0x82)."""
    with Bystander(broker):
        s = connected(broker, "item18-sub", V5)
        s.sub(("item18/t", 1))
        c = connected(broker, "item18", V5)
        c.send(data)
        c.expect_disconnect(rc)
        s.expect_nothing()


@pytest.mark.parametrize("properties,rc", [
    param([(P_TOPIC_ALIAS, 5)], RC_MALFORMED, id="topic-alias-in-connect"),
    param([(P_RECEIVE_MAXIMUM, 5), (P_RECEIVE_MAXIMUM, 6)], RC_PROTOCOL_ERROR,
          id="receive-maximum-twice"),
    param([(P_SESSION_EXPIRY, 5), (P_SESSION_EXPIRY, 5)], RC_PROTOCOL_ERROR,
          id="session-expiry-twice"),
])
def test_item18_invalid_connect_property(broker, properties, rc):
    """Checklist 18, 2.2.2.2 / 3.1.2.11: bad CONNECT properties: refused and closed (CONNACK
    with the exact reason code, or a plain close; MQTT-3.1.4-1)."""
    with Bystander(broker):
        c = Client(broker, V5)
        c.send(connect("item18-connect", V5, properties=properties))
        expect_connect_refused(c, rc)


def test_item18_user_properties_repeat_and_keep_order(broker):
    """Checklist 18, MQTT-3.3.2-17, MQTT-3.3.2-18: user properties may repeat (even the same
    name) and are forwarded unaltered, in order."""
    users = [("k", "1"), ("k", "2"), ("other", ""), ("k", "1")]
    s = connected(broker, "item18-up-sub", V5)
    s.sub(("item18/up", 1))
    c = connected(broker, "item18-up", V5)
    c.pub("item18/up", b"x", qos=1, properties=[(P_USER_PROPERTY, u) for u in users])
    p = s.recv_publish()
    assert p.props.get(P_USER_PROPERTY) == users


# --- Item 19 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("alias,rc", [
    # mosquitto 2.0.11 answers 0x81 instead of 0x94 for alias 0.
    param(0, RC_TOPIC_ALIAS_INVALID, id="alias-0", midge=True),
    param(11, RC_TOPIC_ALIAS_INVALID, id="alias-11-over-default-10"),
    param(65535, RC_TOPIC_ALIAS_INVALID, id="alias-65535"),
])
def test_item19_topic_alias_out_of_range(broker, alias, rc):
    """Checklist 19, MQTT-3.3.2-8 (alias 0), MQTT-3.3.2-9 (above the Topic Alias Maximum the
    broker sent, 10 by default in Midge and mosquitto): DISCONNECT 0x94."""
    with Bystander(broker):
        c = connected(broker, "item19", V5)
        assert c.connack.props.get(P_TOPIC_ALIAS_MAXIMUM) == 10, c.connack
        c.send(publish("item19/t", b"x", properties=[(P_TOPIC_ALIAS, alias)]))
        c.expect_disconnect(rc)


def test_item19_unknown_alias_with_empty_topic(broker):
    """Checklist 19, 3.3.2.3.4: an empty topic with an alias that has no mapping yet is a
    protocol error: DISCONNECT 0x82."""
    with Bystander(broker):
        c = connected(broker, "item19-unknown", V5)
        c.send(publish("", b"x", properties=[(P_TOPIC_ALIAS, 3)]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)


def test_item19_topic_alias_maps_topic(broker):
    """Checklist 19, MQTT-3.3.2-10..12 (5.0 3.3.2.3.4): an alias set with a topic is used by a
    later PUBLISH with an empty topic; the subscriber sees the full topic name."""
    s = connected(broker, "item19-sub", V5)
    s.sub(("item19/#", 1))
    c = connected(broker, "item19-pub", V5)
    c.pub("item19/a", b"1", qos=1, properties=[(P_TOPIC_ALIAS, 1)])
    c.pub("", b"2", qos=1, properties=[(P_TOPIC_ALIAS, 1)])
    c.pub("item19/b", b"3", qos=1, properties=[(P_TOPIC_ALIAS, 1)])  # remap
    c.pub("", b"4", qos=1, properties=[(P_TOPIC_ALIAS, 1)])
    got = [(p.topic, p.payload) for p in (s.recv_publish() for _ in range(4))]
    assert got == [("item19/a", b"1"), ("item19/a", b"2"), ("item19/b", b"3"), ("item19/b", b"4")]


@pytest.mark.midge_only  # max_topic_alias is Midge's option name.
def test_item19_configured_topic_alias_maximum(broker_factory):
    """Checklist 19, MQTT-3.3.2-9: with max_topic_alias 2, CONNACK says 2, alias 2 works and
    alias 3 gets DISCONNECT 0x94."""
    broker = broker_factory(config="max_topic_alias 2")
    with Bystander(broker):
        c = connected(broker, "item19-max", V5)
        assert c.connack.props.get(P_TOPIC_ALIAS_MAXIMUM) == 2
        c.pub("item19/t", b"ok", qos=1, properties=[(P_TOPIC_ALIAS, 2)])
        c.send(publish("item19/t", b"x", properties=[(P_TOPIC_ALIAS, 3)]))
        c.expect_disconnect(RC_TOPIC_ALIAS_INVALID)


# --- Item 20 ----------------------------------------------------------------------------------

def flood_receive_maximum(broker, client_id, expected=None):
    c = connected(broker, client_id, V5)
    rmax = c.connack.props.get(P_RECEIVE_MAXIMUM, 65535)
    if expected is not None:
        assert rmax == expected, c.connack
    assert rmax <= 1000, f"receive maximum {rmax} too large to test"
    # QoS 2 PUBLISH packets stay unacknowledged until PUBCOMP: never send PUBREL.
    c.send(b"".join(publish("item20/t", b"%d" % i, qos=2, pid=i + 1) for i in range(rmax)))
    for i in range(rmax):
        c.expect_ack(PUBREC, i + 1, OK)
    c.send(publish("item20/t", b"one too many", qos=2, pid=rmax + 1))
    c.expect_disconnect(RC_RECEIVE_MAXIMUM_EXCEEDED)


@pytest.mark.midge_only  # mosquitto 2.0.11 answers PUBREC 0x97 Quota exceeded and stays open.
def test_item20_receive_maximum_exceeded(broker):
    """Checklist 20, MQTT-3.3.4-7 / 3.3.4 (the sender must not exceed the receive maximum; the
    broker answers DISCONNECT 0x93): one QoS 2 PUBLISH more than the CONNACK Receive Maximum."""
    with Bystander(broker):
        flood_receive_maximum(broker, "item20")


@pytest.mark.midge_only  # receive_maximum is Midge's option (mosquitto: max_inflight_messages).
def test_item20_configured_receive_maximum(broker_factory):
    """Checklist 20: with receive_maximum 5 the CONNACK says 5 and the 6th unacknowledged QoS 2
    PUBLISH gets DISCONNECT 0x93."""
    broker = broker_factory(config="receive_maximum 5")
    with Bystander(broker):
        flood_receive_maximum(broker, "item20-cfg", expected=5)


@pytest.mark.midge_only
def test_item20_default_receive_maximum_is_100(broker):
    """Checklist 20: Midge's default receive maximum is 100 (mosquitto's is 20)."""
    c = connected(broker, "item20-default", V5)
    assert c.connack.props.get(P_RECEIVE_MAXIMUM) == 100


# --- Item 21 ----------------------------------------------------------------------------------

def test_item21_client_maximum_packet_size(broker):
    """Checklist 21, MQTT-3.1.2-24, MQTT-3.1.2-25: the broker never sends a client a packet
    larger than its Maximum Packet Size; the oversized message is dropped for that client only,
    and later messages still arrive, in order."""
    small = connected(broker, "item21-small", V5, properties=[(P_MAXIMUM_PACKET_SIZE, 100)])
    small.sub(("item21/t", 1))
    big = connected(broker, "item21-big", V5)
    big.sub(("item21/t", 1))
    c = connected(broker, "item21-pub", V5)
    payloads = [b"a" * 10, b"b" * 200, b"c" * 70, b"d" * 90]
    for pl in payloads:
        c.pub("item21/t", pl, qos=1)
    # 2 (fixed header) + 10 (topic) + 2 (pid) + 1 (props) + payload: 85 for 70 bytes, 105 for 90.
    assert [small.recv_publish().payload for _ in range(2)] == [payloads[0], payloads[2]]
    small.expect_nothing()
    assert [big.recv_publish().payload for _ in range(4)] == payloads
    small.expect_open()


# --- Item 22 ----------------------------------------------------------------------------------

def test_item22_session_expiry_in_disconnect_after_zero(broker):
    """Checklist 22, MQTT-3.14.2-2: Session Expiry Interval in DISCONNECT when CONNECT said 0
    (or nothing) is a protocol error: DISCONNECT 0x82 from the broker, and the will is
    published because this was not a normal disconnection."""
    with Bystander(broker):
        s = connected(broker, "item22-sub", V5)
        s.sub(("item22/will", 1))
        c = connected(broker, "item22", V5, will=dict(topic="item22/will", payload=b"w", qos=1))
        c.send(disconnect(0, [(P_SESSION_EXPIRY, 30)]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)
        p = s.recv_publish()
        assert (p.topic, p.payload) == ("item22/will", b"w")


def test_item22_session_expiry_in_disconnect_allowed_after_nonzero(broker):
    """Checklist 22 (counter-case), 3.14.2.2.2: with a non-zero interval in CONNECT, DISCONNECT
    may change it; the session then persists (session present on reconnect)."""
    c = connected(broker, "item22-ok", V5, clean=True, properties=[(P_SESSION_EXPIRY, 10)])
    c.sub(("item22/ok", 1))
    c.send(disconnect(0, [(P_SESSION_EXPIRY, 60)]))
    c.expect_closed()
    c = connected(broker, "item22-ok", V5, clean=False, properties=[(P_SESSION_EXPIRY, 10)])
    assert c.connack.session_present


# --- Item 23 ----------------------------------------------------------------------------------

@pytest.mark.midge_only  # mosquitto 2.0.11 does not check the payload: PUBACK 0x00, delivered.
@pytest.mark.parametrize("qos", [1, 2])
def test_item23_payload_format_invalid_qos12(broker, qos):
    """Checklist 23, MQTT-3.3.2-4 / 3.3.2.3.2: Payload Format Indicator 1 with a payload that is
    not UTF-8: Midge refuses with PUBACK/PUBREC 0x99 and does not deliver it."""
    with Bystander(broker):
        s = connected(broker, "item23-sub", V5)
        s.sub(("item23/t", 2))
        c = connected(broker, "item23", V5)
        c.pub("item23/t", b"\xff\xfe not utf-8", qos=qos, properties=[(P_PAYLOAD_FORMAT, 1)],
              expect_rc=RC_PAYLOAD_FORMAT_INVALID)
        s.expect_nothing()
        c.expect_open()


@pytest.mark.midge_only  # mosquitto 2.0.11 does not check the payload and delivers it.
def test_item23_payload_format_invalid_qos0(broker):
    """Checklist 23: the same at QoS 0 (no ack to carry the refusal): DISCONNECT 0x99."""
    with Bystander(broker):
        s = connected(broker, "item23-sub0", V5)
        s.sub(("item23/t", 2))
        c = connected(broker, "item23-0", V5)
        c.send(publish("item23/t", b"\xed\xa0\x80", properties=[(P_PAYLOAD_FORMAT, 1)]))
        c.expect_disconnect(RC_PAYLOAD_FORMAT_INVALID)
        s.expect_nothing()


def test_item23_payload_format_valid_forwarded(broker):
    """Checklist 23, MQTT-3.3.2-4: a valid UTF-8 payload with indicator 1 is forwarded with the
    indicator and the content type unaltered."""
    s = connected(broker, "item23-ok-sub", V5)
    s.sub(("item23/ok", 1))
    c = connected(broker, "item23-ok", V5)
    c.pub("item23/ok", "h\u00e9llo \ufeff".encode(), qos=1,
          properties=[(P_PAYLOAD_FORMAT, 1), (P_CONTENT_TYPE, "text/plain")])
    p = s.recv_publish()
    assert p.payload == "h\u00e9llo \ufeff".encode()
    assert p.props.get(P_PAYLOAD_FORMAT) == 1 and p.props.get(P_CONTENT_TYPE) == "text/plain"


# --- Item 24 ----------------------------------------------------------------------------------

def test_item24_expired_queued_message_dropped(broker):
    """Checklist 24, MQTT-3.3.2-5: a message queued for an offline session whose expiry
    interval passes is not delivered; MQTT-3.3.2-6: the one still valid carries the remaining
    time (less than what was sent)."""
    sub = connected(broker, "item24-sub", V5, clean=True, properties=[(P_SESSION_EXPIRY, 300)])
    sub.sub(("item24/t", 1))
    sub.disconnect(0)
    c = connected(broker, "item24-pub", V5)
    c.pub("item24/t", b"short", qos=1, properties=[(P_MESSAGE_EXPIRY, 1)])
    c.pub("item24/t", b"long", qos=1, properties=[(P_MESSAGE_EXPIRY, 100)])
    c.pub("item24/t", b"forever", qos=1)
    time.sleep(2.2)  # bounded: the short expiry is 1 s
    sub = connected(broker, "item24-sub", V5, clean=False, properties=[(P_SESSION_EXPIRY, 300)])
    assert sub.connack.session_present
    p1, p2 = sub.recv_publish(), sub.recv_publish()
    assert (p1.payload, p2.payload) == (b"long", b"forever")
    assert 90 <= p1.props.get(P_MESSAGE_EXPIRY, 0) < 100, p1
    assert P_MESSAGE_EXPIRY not in p2.props
    sub.expect_nothing()


def test_item24_online_delivery_carries_expiry(broker):
    """Checklist 24, MQTT-3.3.2-6: a message delivered at once carries its expiry interval (at
    most the value sent)."""
    s = connected(broker, "item24-on-sub", V5)
    s.sub(("item24/on", 1))
    c = connected(broker, "item24-on", V5)
    c.pub("item24/on", b"x", qos=1, properties=[(P_MESSAGE_EXPIRY, 50)])
    p = s.recv_publish()
    assert 48 <= p.props.get(P_MESSAGE_EXPIRY, 0) <= 50, p


def test_item24_expired_retained_message_dropped(broker):
    """Checklist 24, MQTT-3.3.2-5: a retained message past its expiry is not sent to a new
    subscriber."""
    c = connected(broker, "item24-ret", V5)
    c.pub("item24/ret", b"gone soon", qos=1, retain=True, properties=[(P_MESSAGE_EXPIRY, 1)])
    c.pub("item24/ret2", b"stays", qos=1, retain=True, properties=[(P_MESSAGE_EXPIRY, 100)])
    time.sleep(2.2)
    s = connected(broker, "item24-ret-sub", V5)
    s.sub(("item24/+", 1))
    p = s.recv_publish()
    assert (p.topic, p.payload, p.retain) == ("item24/ret2", b"stays", True)
    s.expect_nothing()
    c.pub("item24/ret2", b"", qos=1, retain=True)


# --- Item 25 ----------------------------------------------------------------------------------

def test_item25_unsupported_authentication_method(broker):
    """Checklist 25, MQTT-4.12.0-1 / 3.2.2.2: an Authentication Method the broker does not
    support: CONNACK 0x8C Bad authentication method, then close."""
    with Bystander(broker):
        c = Client(broker, V5)
        c.send(connect("item25", V5, properties=[(P_AUTH_METHOD, "X-UNSUPPORTED")]))
        ca = c.expect_connack()
        assert ca.rc == RC_BAD_AUTH_METHOD and not ca.session_present
        c.expect_closed()


@pytest.mark.midge_only  # mosquitto 2.0.11 closes without DISCONNECT 0x82.
def test_item25_auth_without_method(broker):
    """Checklist 25, MQTT-4.12.0-... (3.15: AUTH only within an authentication exchange): AUTH
    after a CONNECT without Authentication Method: DISCONNECT 0x82."""
    with Bystander(broker):
        c = connected(broker, "item25-auth", V5)
        c.send(auth(0x18, [(P_AUTH_METHOD, "X-UNSUPPORTED")]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)


def test_item25_auth_before_connect(broker):
    """Checklist 25, MQTT-3.1.0-1: AUTH as the first packet: closed."""
    with Bystander(broker):
        c = Client(broker, V5)
        c.send(auth(0x18, [(P_AUTH_METHOD, "X-UNSUPPORTED")]))
        c.expect_closed()
