"""Checklist items 7-11 (CONNECT): first and second CONNECT, protocol name and level, connect
flags, client identifiers, UTF-8 strings.

Each malformed case runs inside a Bystander that must not be disturbed. Cases where mosquitto
2.0.11 deviates are marked midge_only with the reason beside them.
"""
import pytest

from mqttraw import (CONNACK, DISCONNECT, Closed, V31, V311, V5, Bystander, Client, connect,
                     connected, expect_connect_refused, pingreq, publish, subscribe, RC_MALFORMED,
                     RC_PROTOCOL_ERROR, RC_UNSUPPORTED_PROTOCOL_VERSION, P_ASSIGNED_CLIENT_ID,
                     P_CONTENT_TYPE, P_USER_PROPERTY)

midge_only = pytest.mark.midge_only


def param(*values, id, midge=False):
    return pytest.param(*values, id=id, marks=[midge_only] if midge else [])


VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


# --- Item 7 -----------------------------------------------------------------------------------

@VERSIONS
@pytest.mark.parametrize("first", [
    param(pingreq(), id="pingreq"),
    param(publish("item07/t", b"x"), id="publish"),
    param(subscribe(1, [("item07/t", 0)], V311), id="subscribe"),
])
def test_item07_first_packet_not_connect(broker, version, first):
    """Checklist 7, MQTT-3.1.0-1: the first packet must be CONNECT; otherwise the broker just
    closes (it cannot know the version, so no DISCONNECT)."""
    with Bystander(broker):
        c = Client(broker, version)
        c.send(first)
        c.expect_closed()


@pytest.mark.parametrize("version", [
    param(V311, id="v311"),
    # mosquitto 2.0.11 closes without sending DISCONNECT 0x82.
    param(V5, id="v5", midge=True),
])
def test_item07_second_connect(broker, version):
    """Checklist 7, MQTT-3.1.0-2: a second CONNECT is a protocol error: close (5.0: 0x82)."""
    with Bystander(broker):
        c = connected(broker, "item07-twice", version)
        c.send(connect("item07-twice", version))
        c.expect_disconnect(RC_PROTOCOL_ERROR)


# --- Item 8 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("level,name", [
    param(6, "MQTT", id="level6"),
    param(2, "MQTT", id="level2"),
    param(0, "MQTT", id="level0"),
    param(V31, "MQTT", id="level3-named-MQTT"),
    param(V311, "MQIsdp", id="level4-named-MQIsdp"),
    # mosquitto 2.0.11 closes without a CONNACK on an unknown name (MQTT-3.1.2-1 allows it);
    # the checklist asks for CONNACK 0x01.
    param(V311, "MQTX", id="level4-named-MQTX", midge=True),
])
def test_item08_unknown_protocol_v3(broker, level, name):
    """Checklist 8, MQTT-3.1.2-1, MQTT-3.1.2-2 (3.1.1): unknown protocol level or name: CONNACK
    0x01 in the 3.x format (20 02 00 01), then close."""
    with Bystander(broker):
        c = Client(broker, V311)
        c.send(connect("item08", level, proto_name=name))
        t, f, body = c.recv_packet()
        assert (t, f, body) == (CONNACK, 0, b"\x00\x01")
        c.expect_closed()


@pytest.mark.midge_only  # mosquitto 2.0.11 closes without CONNACK 0x84.
def test_item08_level5_bad_name(broker):
    """Checklist 8, MQTT-3.1.2-1 (5.0): level 5 with protocol name "MQTX": CONNACK 0x84 in the
    5.0 format, then close."""
    with Bystander(broker):
        c = Client(broker, V5)
        c.send(connect("item08-v5", V5, proto_name="MQTX"))
        ca = c.expect_connack()
        assert ca.rc == RC_UNSUPPORTED_PROTOCOL_VERSION and not ca.session_present
        c.expect_closed()


def test_item08_mqtt31_mqisdp_works(broker):
    """Checklist 8: level 3 with name "MQIsdp" is MQTT 3.1: accepted (CONNACK 0), and it can
    subscribe and publish to a 3.1.1 and a 5.0 client."""
    c31 = connected(broker, "item08-31", V31)
    assert c31.connack.rc == 0
    c31.sub(("item08/t", 1))
    c5 = connected(broker, "item08-5", V5)
    c5.sub(("item08/t", 1))
    c311 = connected(broker, "item08-311", V311)
    c311.pub("item08/t", b"from 3.1.1", qos=1)
    for c in (c31, c5):
        p = c.recv_publish()
        assert (p.topic, p.payload, p.qos) == ("item08/t", b"from 3.1.1", 1)
    c31.pub("item08/t", b"from 3.1", qos=1)
    for c in (c31, c5):
        p = c.recv_publish()
        assert (p.topic, p.payload, p.qos) == ("item08/t", b"from 3.1", 1)
    c31.expect_nothing()
    c5.expect_nothing()


# --- Item 9 -----------------------------------------------------------------------------------

FLAG_CASES = {
    # name: (connect flags byte, 3.1.1 statement, 5.0 statement)
    "reserved-bit": (0x03, "MQTT-3.1.2-3", "MQTT-3.1.2-3"),
    "will-qos1-without-will": (0x02 | 0x08, "MQTT-3.1.2-13", "MQTT-3.1.2-11"),
    "will-qos2-without-will": (0x02 | 0x10, "MQTT-3.1.2-13", "MQTT-3.1.2-11"),
    "will-retain-without-will": (0x02 | 0x20, "MQTT-3.1.2-15", "MQTT-3.1.2-13"),
}


@VERSIONS
@pytest.mark.parametrize("case", list(FLAG_CASES))
def test_item09_connect_flags(broker, version, case):
    """Checklist 9, MQTT-3.1.2-3 (reserved flag), MQTT-3.1.2-11/13 (5.0) and MQTT-3.1.2-13/15
    (3.1.1) (will QoS / will retain without will flag): malformed, close (5.0 may first send
    CONNACK 0x81)."""
    flags = FLAG_CASES[case][0]
    with Bystander(broker):
        c = Client(broker, version)
        c.send(connect("item09", version, flags=flags))
        expect_connect_refused(c, RC_MALFORMED if version == V5 else None)


@VERSIONS
def test_item09_will_qos3(broker, version):
    """Checklist 9, MQTT-3.1.2-14 (3.1.1) / MQTT-3.1.2-12 (5.0): will QoS 3: malformed, close."""
    with Bystander(broker):
        c = Client(broker, version)
        c.send(connect("item09-wq3", version, will=dict(topic="w", payload=b"p", qos=3)))
        expect_connect_refused(c, RC_MALFORMED if version == V5 else None)


def test_item09_password_without_username_v311(broker):
    """Checklist 9, MQTT-3.1.2-22 (3.1.1): password flag without user name flag: close."""
    with Bystander(broker):
        c = Client(broker, V311)
        c.send(connect("item09-pw", V311, password=b"secret"))
        expect_connect_refused(c, None)


def test_item09_password_without_username_allowed_v5(broker):
    """Checklist 9 (counter-case), 5.0 section 3.1.2.9: 5.0 allows a password without a user
    name; without authentication configured the broker accepts it."""
    c = connected(broker, "item09-pw5", V5, password=b"secret")
    c.expect_open()


# --- Item 10 ----------------------------------------------------------------------------------

def test_item10_empty_id_clean_session_0_v311(broker):
    """Checklist 10, MQTT-3.1.3-8 (3.1.1): empty client id with clean session 0: CONNACK 0x02
    (identifier rejected), then close."""
    with Bystander(broker):
        c = Client(broker, V311)
        c.send(connect("", V311, clean=False))
        expect_connect_refused(c, 0x02)


def test_item10_empty_id_clean_session_1_v311(broker):
    """Checklist 10, MQTT-3.1.3-6 (3.1.1): empty client id with clean session 1 is accepted."""
    c = connected(broker, "", V311, clean=True)
    c.sub(("item10/t", 0))
    c.pub("item10/t", b"hi")
    assert c.recv_publish().payload == b"hi"


@pytest.mark.parametrize("clean", [True, False], ids=["clean-start-1", "clean-start-0"])
def test_item10_empty_id_assigned_v5(broker, clean):
    """Checklist 10, MQTT-3.1.3-6, MQTT-3.2.2-16 (5.0): an empty client id gets a unique
    Assigned Client Identifier in CONNACK; two such clients get different ones."""
    a = connected(broker, "", V5, clean=clean)
    b = connected(broker, "", V5, clean=clean)
    ida = a.connack.props.get(P_ASSIGNED_CLIENT_ID)
    idb = b.connack.props.get(P_ASSIGNED_CLIENT_ID)
    assert ida and idb and ida != idb, (a.connack, b.connack)
    a.expect_open()
    b.expect_open()


def test_item10_mqtt31_client_id_23_bytes(broker):
    """Checklist 10, MQTT 3.1 section 3.1: a client id of 23 bytes is accepted."""
    c = connected(broker, "a" * 23, V31)
    c.expect_open()


@pytest.mark.midge_only  # mosquitto 2.0.11 accepts 3.1 client ids longer than 23 bytes.
def test_item10_mqtt31_client_id_24_bytes(broker):
    """Checklist 10, MQTT 3.1 section 3.1 (client id 1-23 characters): 24 bytes: CONNACK 0x02
    (identifier rejected), then close."""
    with Bystander(broker):
        c = Client(broker, V31)
        c.send(connect("a" * 24, V31))
        expect_connect_refused(c, 0x02)


# --- Item 11 ----------------------------------------------------------------------------------

BAD_UTF8 = {
    "nul": b"a\x00b",
    "surrogate-d800": b"a\xed\xa0\x80b",
    "surrogate-dfff": b"a\xed\xbf\xbfb",
    "overlong-nul": b"a\xc0\x80",
    "overlong-slash": b"a\xe0\x80\xaf",
    "invalid-byte": b"a\xffb",
    "truncated-sequence": b"a\xe2\x82",
    "above-u10ffff": b"a\xf4\x90\x80\x80",
}


@VERSIONS
@pytest.mark.parametrize("kind", list(BAD_UTF8))
def test_item11_bad_utf8_client_id(broker, version, kind):
    """Checklist 11, MQTT-1.5.4-1, MQTT-1.5.4-2 (5.0) / MQTT-1.5.3-1, MQTT-1.5.3-2 (3.1.1):
    an ill-formed client id (or U+0000, or a surrogate) is malformed: close."""
    with Bystander(broker):
        c = Client(broker, version)
        c.send(connect(BAD_UTF8[kind], version))
        expect_connect_refused(c, RC_MALFORMED if version == V5 else None)


@VERSIONS
@pytest.mark.parametrize("field", ["username", "will-topic"])
def test_item11_bad_utf8_connect_strings(broker, version, field):
    """Checklist 11, MQTT-1.5.4-1 / MQTT-1.5.3-1: a surrogate in the user name
    or U+0000 in the will topic: malformed, close."""
    with Bystander(broker):
        c = Client(broker, version)
        if field == "username":
            c.send(connect("item11-user", version, username=b"u\xed\xa0\x80"))
        else:
            c.send(connect("item11-will", version, will=dict(topic=b"w/\x00", payload=b"")))
        expect_connect_refused(c, RC_MALFORMED if version == V5 else None)


@VERSIONS
@pytest.mark.parametrize("kind", ["nul", "surrogate-d800", "overlong-nul", "invalid-byte"])
def test_item11_bad_utf8_publish_topic(broker, version, kind):
    """Checklist 11, MQTT-1.5.4-1/2 / MQTT-1.5.3-1/2: bad UTF-8 in a PUBLISH topic: close
    (5.0: DISCONNECT 0x81); nothing is delivered to an 'item11/#' subscriber."""
    with Bystander(broker):
        s = connected(broker, "item11-sub", version)
        s.sub(("item11/#", 0))
        c = connected(broker, "item11-pub", version)
        c.send(publish(b"item11/" + BAD_UTF8[kind], b"x", version=version))
        c.expect_disconnect(RC_MALFORMED)
        s.expect_nothing()


@VERSIONS
def test_item11_bad_utf8_subscribe_filter(broker, version):
    """Checklist 11, MQTT-1.5.4-1 / MQTT-1.5.3-1: a surrogate in a topic filter is a malformed
    packet (not merely an invalid filter): close (5.0: DISCONNECT 0x81)."""
    with Bystander(broker):
        c = connected(broker, "item11-filter", version)
        c.send(subscribe(1, [(b"a/\xed\xa0\x80", 0)], version))
        c.expect_disconnect(RC_MALFORMED)


@pytest.mark.parametrize("prop", [
    # mosquitto 2.0.11 closes without sending DISCONNECT 0x81.
    param((P_CONTENT_TYPE, b"text/\xed\xa0\x80"), id="content-type-surrogate", midge=True),
    param((P_USER_PROPERTY, (b"k", b"v\x00")), id="user-property-nul", midge=True),
])
def test_item11_bad_utf8_property_string(broker, prop):
    """Checklist 11, MQTT-1.5.4-1/2, MQTT-1.5.7-1 (5.0): a property string with a surrogate or
    U+0000: malformed, DISCONNECT 0x81."""
    with Bystander(broker):
        c = connected(broker, "item11-prop", V5)
        c.send(publish("item11/p", b"x", properties=[prop]))
        c.expect_disconnect(RC_MALFORMED)


@pytest.mark.parametrize("prop", [
    param((P_CONTENT_TYPE, b"text/\xed\xa0\x80"), id="content-type-surrogate"),
    param((P_USER_PROPERTY, (b"k", b"v\x00")), id="user-property-nul"),
])
def test_item11_bad_utf8_property_string_closes(broker, prop):
    """Checklist 11, MQTT-1.5.4-1/2 (5.0): the same cases, checking only that the connection is
    closed (with or without DISCONNECT 0x81), which mosquitto also does."""
    with Bystander(broker):
        c = connected(broker, "item11-prop", V5)
        c.send(publish("item11/p", b"x", properties=[prop]))
        try:
            t, f, body = c.recv_packet()
        except Closed:
            return
        # The reason code comes first; a Reason String property may follow it.
        assert (t, body[:1]) == (DISCONNECT, bytes([RC_MALFORMED])), (t, body)
        c.expect_closed()


@VERSIONS
def test_item11_bom_kept(broker, version):
    """Checklist 11, MQTT-1.5.4-3 (5.0) / MQTT-1.5.3-3 (3.1.1): U+FEFF (EF BB BF) in a topic is
    kept, not stripped: "a/<BOM>b" and "a/b" are different topics."""
    s = connected(broker, "item11-bom-sub", version)
    s.sub(("item11/\ufeffb", 1), ("item11/b", 1))
    c = connected(broker, "item11-bom", version)
    c.pub("item11/\ufeffb", b"with bom", qos=1)
    p = s.recv_publish()
    assert p.topic_bytes == b"item11/\xef\xbb\xbfb" and p.payload == b"with bom"
    c.pub("item11/b", b"without", qos=1)
    p = s.recv_publish()
    assert p.topic_bytes == b"item11/b" and p.payload == b"without"
    s.expect_nothing()
