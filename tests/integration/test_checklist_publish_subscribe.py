"""Checklist items 12-17 (PUBLISH, SUBSCRIBE, UNSUBSCRIBE): topic names and filters, packet
identifiers, subscription options, '$' topics, PUBREL for unknown ids and QoS 2 duplicates.

Malformed cases run inside a Bystander that must not be disturbed. Cases where mosquitto 2.0.11
deviates are marked midge_only with the reason beside them.
"""
import pytest

from mqttraw import (PUBCOMP, PUBREC, SUBSCRIBE, UNSUBSCRIBE, V311, V5, Bystander, connected,
                     packet, props, publish, pubrel, sub_options, subscribe, u16, unsubscribe,
                     RC_MALFORMED, RC_PACKET_ID_NOT_FOUND, RC_PROTOCOL_ERROR,
                     RC_TOPIC_FILTER_INVALID, RC_TOPIC_NAME_INVALID)

midge_only = pytest.mark.midge_only


def param(*values, id, midge=False):
    return pytest.param(*values, id=id, marks=[midge_only] if midge else [])


VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


# --- Item 12 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [
    param(V311, id="v311"),
    # mosquitto 2.0.11 sends DISCONNECT 0x82 instead of 0x90 Topic name invalid.
    param(V5, id="v5", midge=True),
])
@pytest.mark.parametrize("topic", ["item12/+", "item12/#", "+", "#", "item12/+/x", ""],
                         ids=["plus", "hash", "only-plus", "only-hash", "inner-plus", "empty"])
def test_item12_publish_topic_wildcard_or_empty(broker, version, topic):
    """Checklist 12, MQTT-3.3.2-2 (no wildcards in a topic name), MQTT-4.7.3-1 (at least one
    character; 5.0 MQTT-3.3.2-1 without a topic alias): close (5.0: DISCONNECT 0x90).
    Nothing reaches a '#' subscriber."""
    with Bystander(broker):
        s = connected(broker, "item12-sub", version)
        s.sub(("item12/#", 0))
        c = connected(broker, "item12", version)
        c.send(publish(topic, b"x", version=version))
        c.expect_disconnect(RC_TOPIC_NAME_INVALID)
        s.expect_nothing()


# --- Item 13 ----------------------------------------------------------------------------------

BAD_FILTERS = ["item13/#/b", "item13#", "item13/b+", "+item13", "item13/+x/c", "", "#/item13"]


@pytest.mark.midge_only  # mosquitto 2.0.11 closes the connection (5.0: DISCONNECT 0x81).
@VERSIONS
@pytest.mark.parametrize("bad", BAD_FILTERS)
def test_item13_bad_filter_suback(broker, version, bad):
    """Checklist 13, MQTT-4.7.1-1, MQTT-4.7.1-2 (wildcard placement), MQTT-4.7.3-1 (no empty
    filter): 5.0 SUBACK 0x8F / 3.1.1 SUBACK 0x80 for that filter, the others in the same
    SUBSCRIBE are granted, the connection stays open and the good subscription works."""
    with Bystander(broker):
        c = connected(broker, "item13", version)
        fail = RC_TOPIC_FILTER_INVALID if version == V5 else 0x80
        c.sub(("item13/ok", 1), (bad, 1), ("item13/ok2/+", 2), expect=[1, fail, 2])
        c.expect_open()
        c.pub("item13/ok", b"one", qos=1)
        p = c.recv_publish()
        assert (p.topic, p.payload, p.qos) == ("item13/ok", b"one", 1)
        c.expect_nothing()


@pytest.mark.parametrize("good", ["#", "+", "item13/#", "item13/+/c", "+/+/+", "/", "//#", "+/"])
def test_item13_valid_filters_granted(broker, good):
    """Checklist 13, 4.7.1.2/4.7.1.3: '#' alone or as the whole last level and '+' as whole
    levels (including empty levels) are valid filters."""
    c = connected(broker, "item13-good", V5)
    c.sub((good, 1))
    c.expect_open()


# --- Item 14 ----------------------------------------------------------------------------------

def empty_cases(version):
    v = props() if version == V5 else b""
    return {
        "subscribe-no-filters": packet(SUBSCRIBE, 2, u16(1) + v),
        "unsubscribe-no-filters": packet(UNSUBSCRIBE, 2, u16(1) + v),
        "subscribe-pid-0": subscribe(0, [("item14/t", 0)], version),
        "unsubscribe-pid-0": unsubscribe(0, ["item14/t"], version),
        "publish-qos1-pid-0": publish("item14/t", b"x", qos=1, pid=0, version=version),
        "publish-qos2-pid-0": publish("item14/t", b"x", qos=2, pid=0, version=version),
    }


# mosquitto 2.0.11 answers DISCONNECT 0x81 (malformed) instead of 0x82 for these on 5.0.
MOSQ_14 = {"subscribe-no-filters", "unsubscribe-no-filters", "subscribe-pid-0",
           "unsubscribe-pid-0"}


@pytest.mark.parametrize("version,name", [
    param(v, n, id=f"{'v5' if v == V5 else 'v311'}-{n}", midge=v == V5 and n in MOSQ_14)
    for v in (V311, V5) for n in empty_cases(V5)])
def test_item14_no_filters_or_packet_id_0(broker, version, name):
    """Checklist 14, MQTT-3.8.3-3 / MQTT-3.10.3-2 (3.1.1), MQTT-3.8.3-2 / MQTT-3.10.3-2 (5.0):
    SUBSCRIBE/UNSUBSCRIBE without filters; MQTT-2.3.1-1 (3.1.1) / MQTT-2.2.1-3 (5.0): packet id 0.
    Protocol error: close (5.0: DISCONNECT 0x82)."""
    with Bystander(broker):
        s = connected(broker, "item14-sub", version)
        s.sub(("item14/t", 2))
        c = connected(broker, "item14", version)
        c.send(empty_cases(version)[name])
        c.expect_disconnect(RC_PROTOCOL_ERROR)
        s.expect_nothing()


# --- Item 15 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("opts,rc", [
    param(sub_options(0, reserved=1), RC_MALFORMED, id="reserved-bit-6"),
    param(sub_options(1, reserved=2), RC_MALFORMED, id="reserved-bit-7"),
    # 5.0 section 3.8.3.1 calls Maximum QoS 3 and Retain Handling 3 a *Protocol Error* (0x82);
    # the checklist says "malformed". The spec is the authority. mosquitto 2.0.11 sends 0x81.
    param(3, RC_PROTOCOL_ERROR, id="qos3", midge=True),
    param(sub_options(1, rh=3), RC_PROTOCOL_ERROR, id="retain-handling-3", midge=True),
])
def test_item15_subscription_options_invalid(broker, opts, rc):
    """Checklist 15, MQTT-3.8.3-5 (reserved bits: malformed, 0x81); 3.8.3.1 (QoS 3, retain
    handling 3: protocol error, 0x82)."""
    with Bystander(broker):
        c = connected(broker, "item15", V5)
        c.send(subscribe(1, [("item15/t", opts)]))
        c.expect_disconnect(rc)


@pytest.mark.midge_only  # mosquitto 2.0.11 grants the subscription (SUBACK 0x00).
def test_item15_no_local_on_shared_subscription(broker):
    """Checklist 15, MQTT-3.8.3-4: No Local on a shared subscription: DISCONNECT 0x82."""
    with Bystander(broker):
        c = connected(broker, "item15-share", V5)
        c.send(subscribe(1, [("$share/g/item15/t", sub_options(0, no_local=True))]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)


@pytest.mark.midge_only  # mosquitto 2.0.11 grants "$share//x", "$share/g" and "$share/g/" as
#                          ordinary filters, and closes on "$share/g+/x" (DISCONNECT 0x81).
@pytest.mark.parametrize("bad", ["$share//item15", "$share/g+/item15", "$share/g#/item15",
                                 "$share/g", "$share/g/"])
def test_item15_bad_shared_filter(broker, bad):
    """Checklist 15, MQTT-4.8.2-1 (ShareName at least one character), MQTT-4.8.2-2 (no '/',
    '+', '#' in it), 4.8.2 (a topic filter follows): SUBACK 0x8F for that filter, others granted."""
    with Bystander(broker):
        c = connected(broker, "item15-badshare", V5)
        c.sub((bad, 0), ("item15/ok", 1), expect=[RC_TOPIC_FILTER_INVALID, 1])
        c.expect_open()


def test_item15_shared_subscription_valid(broker):
    """Checklist 15, 4.8.2: "$share/g/item15/#" is granted and a message goes to exactly one of
    two members of the group."""
    a = connected(broker, "item15-a", V5)
    b = connected(broker, "item15-b", V5)
    a.sub(("$share/g/item15/#", 1))
    b.sub(("$share/g/item15/#", 1))
    c = connected(broker, "item15-pub", V5)
    c.pub("item15/x", b"once", qos=1)
    got = []
    for s in (a, b):
        try:
            got.append(s.recv_publish(1.0).payload)
        except AssertionError:
            pass
    assert got == [b"once"]


# --- Item 16 ----------------------------------------------------------------------------------

@VERSIONS
def test_item16_wildcards_do_not_match_dollar_topics(broker, version):
    """Checklist 16, MQTT-4.7.2-1: filters starting with a wildcard ('#', '+/...') do not match
    topic names starting with '$'; '$item16/#' does."""
    wild = connected(broker, "item16-wild", version)
    wild.sub(("#", 1), ("+/x", 1), ("+", 1))
    dollar = connected(broker, "item16-dollar", version)
    dollar.sub(("$item16/#", 1))
    c = connected(broker, "item16-pub", version)
    c.pub("$item16/x", b"dollar", qos=1)
    c.pub("$item16", b"dollar-root", qos=1)
    got = [(p.topic, p.payload) for p in (dollar.recv_publish(), dollar.recv_publish())]
    assert got == [("$item16/x", b"dollar"), ("$item16", b"dollar-root")]  # '#' matches the parent
    dollar.expect_nothing()
    c.pub("item16/x", b"plain", qos=1)
    p = wild.recv_publish()
    # One copy: '#' and '+/x' overlap; a broker may send one per subscription on 3.1.1/5.0
    # (item 30), so only the first copy's content is checked here.
    assert (p.topic, p.payload) == ("item16/x", b"plain")
    while True:
        try:
            p = wild.recv_publish(0.5)
        except AssertionError:
            break
        assert (p.topic, p.payload) == ("item16/x", b"plain"), p


# --- Item 17 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [
    param(V311, id="v311"),
    # mosquitto 2.0.11 answers PUBCOMP without reason code (success) instead of 0x92.
    param(V5, id="v5", midge=True),
])
def test_item17_pubrel_unknown_packet_id(broker, version):
    """Checklist 17, MQTT-4.3.3-11 (5.0) / MQTT-4.3.3-2 (3.1.1): a PUBREL for an unknown packet
    id is answered with PUBCOMP (5.0: reason 0x92 Packet Identifier not found); the connection
    stays open."""
    with Bystander(broker):
        c = connected(broker, "item17-pubrel", version)
        c.send(pubrel(4242))
        c.expect_ack(PUBCOMP, 4242, RC_PACKET_ID_NOT_FOUND if version == V5 else 0)
        c.expect_open()


@VERSIONS
def test_item17_qos2_resend_before_pubrel_delivered_once(broker, version):
    """Checklist 17, MQTT-4.3.3-9 (5.0) / MQTT-4.3.3-2 method B (3.1.1): a QoS 2 PUBLISH resent
    with the same packet id (DUP=1) before PUBREL is acknowledged again but delivered once."""
    s = connected(broker, "item17-sub", version)
    s.sub(("item17/t", 2))
    c = connected(broker, "item17-pub", version)
    c.send(publish("item17/t", b"exactly once", qos=2, pid=9, version=version))
    c.expect_ack(PUBREC, 9)
    c.send(publish("item17/t", b"exactly once", qos=2, pid=9, dup=True, version=version))
    c.expect_ack(PUBREC, 9)
    c.send(pubrel(9))
    c.expect_ack(PUBCOMP, 9)
    p = s.recv_publish()
    assert (p.topic, p.payload, p.qos) == ("item17/t", b"exactly once", 2)
    s.expect_nothing(0.5)
    # The id is free again: a new message with the same id is a new message.
    c.send(publish("item17/t", b"second", qos=2, pid=9, version=version))
    c.expect_ack(PUBREC, 9)
    c.send(pubrel(9))
    c.expect_ack(PUBCOMP, 9)
    assert s.recv_publish().payload == b"second"
    s.expect_nothing()
