"""MQTT 5.0 features: forwarded PUBLISH properties, message expiry, topic aliases, subscription
identifiers, no-local, receive maximum, maximum packet size, problem/response information and
authentication method."""
import time

import pytest

from helpers import (PUBACK, PUBLISH, UNSUBACK, Client, RawClient, close_clients,  # noqa: F401
                     props, user_props)
from paho.mqtt.packettypes import PacketTypes


def pub_props(**kw):
    return props(PacketTypes.PUBLISH, **kw)


def test_publish_properties_forwarded(broker):
    """MQTT-3.3.2-4/-15/-16/-17/-18: payload format indicator, content type, response topic,
    correlation data and user properties (in order, MQTT-3.3.2-18) reach the subscriber unaltered."""
    sub = Client(broker, client_id="psub")
    sub.subscribe("pp/t", qos=1)
    pub = Client(broker, client_id="ppub")
    up = [("z", "1"), ("a", "2"), ("z", "3"), ("", ""), ("key", "v\u00e9")]
    pub.publish("pp/t", "h\u00e9llo".encode(), qos=1, properties=pub_props(
        PayloadFormatIndicator=1, ContentType="application/json; v=1",
        ResponseTopic="pp/reply/1", CorrelationData=b"\x00\xffcorr", UserProperty=up))
    m = sub.expect_message()
    assert (m.topic, m.payload, m.qos) == ("pp/t", "h\u00e9llo".encode(), 1)
    assert m.props.PayloadFormatIndicator == 1
    assert m.props.ContentType == "application/json; v=1"
    assert m.props.ResponseTopic == "pp/reply/1"
    assert m.props.CorrelationData == b"\x00\xffcorr"
    assert user_props(m.props) == up
    assert not hasattr(m.props, "MessageExpiryInterval")
    assert not hasattr(m.props, "TopicAlias")


def test_properties_forwarded_to_v311_subscriber_dropped(broker):
    """A 3.1.1 subscriber gets the same message without properties."""
    sub = Client(broker, client_id="psub3", protocol=4)
    sub.subscribe("pp3/t", qos=1)
    pub = Client(broker, client_id="ppub")
    pub.publish("pp3/t", b"x", qos=1, properties=pub_props(ContentType="c",
                                                           UserProperty=[("a", "b")]))
    m = sub.expect_message()
    assert (m.topic, m.payload, m.qos) == ("pp3/t", b"x", 1)


def test_message_expiry_remaining_time(broker):
    """MQTT-3.3.2-6: the forwarded Message Expiry Interval is the received value minus the time
    the message waited in the broker."""
    sub = Client(broker, client_id="mesub")
    sub.subscribe("me/t", qos=1)
    pub = Client(broker, client_id="mepub")
    pub.publish("me/t", b"x", qos=1, properties=pub_props(MessageExpiryInterval=60))
    m = sub.expect_message()
    assert 58 <= m.props.MessageExpiryInterval <= 60


def test_message_expiry_while_queued(broker):
    """Checklist 24 / MQTT-3.3.2-5: a queued message past its expiry is not delivered; one still
    valid is delivered with the remaining time."""
    cp = props(PacketTypes.CONNECT, SessionExpiryInterval=60)
    sub = Client(broker, client_id="meq", clean=False, properties=cp)
    sub.subscribe("meq/t", qos=1)
    sub.disconnect()
    pub = Client(broker, client_id="meqpub")
    pub.publish("meq/t", b"short", qos=1, properties=pub_props(MessageExpiryInterval=1))
    pub.publish("meq/t", b"long", qos=1, properties=pub_props(MessageExpiryInterval=60))
    time.sleep(2.2)
    sub = Client(broker, client_id="meq", clean=False, properties=cp)
    assert sub.connack[:2] == (1, 0)
    m = sub.expect_message()
    assert m.payload == b"long"
    assert 50 <= m.props.MessageExpiryInterval <= 58
    sub.expect_no_message(0.3)


def test_topic_alias_client_to_broker(broker):
    """MQTT-3.3.2-12: a PUBLISH with an empty topic and a known alias is for the aliased topic;
    the subscriber sees the full topic name (and no alias of the publisher's)."""
    sub = Client(broker, client_id="tasub")
    sub.subscribe("ta/#", qos=1)
    pub = Client(broker, client_id="tapub")
    maximum = getattr(pub.connack_props, "TopicAliasMaximum", 0)
    assert maximum >= 2
    pub.publish("ta/one", b"1", qos=1, properties=pub_props(TopicAlias=1))
    pub.publish("", b"2", qos=1, properties=pub_props(TopicAlias=1))
    pub.publish("ta/two", b"3", qos=1, properties=pub_props(TopicAlias=2))
    pub.publish("", b"4", qos=1, properties=pub_props(TopicAlias=1))
    pub.publish("ta/three", b"5", qos=1, properties=pub_props(TopicAlias=1))  # remapped
    pub.publish("", b"6", qos=1, properties=pub_props(TopicAlias=1))
    got = sub.expect_messages(6)
    assert [(m.topic, m.payload) for m in got] == [
        ("ta/one", b"1"), ("ta/one", b"2"), ("ta/two", b"3"), ("ta/one", b"4"),
        ("ta/three", b"5"), ("ta/three", b"6")]
    assert all(not hasattr(m.props, "TopicAlias") for m in got)


@pytest.mark.midge_only  # Mosquitto 2.0.11 never sends topic aliases to clients
def test_topic_alias_broker_to_client(broker):
    """MQTT-3.3.2-8: the broker may use aliases up to the client's Topic Alias Maximum; the
    first message on a topic carries topic and alias, later ones may carry the alias only."""
    r = RawClient(broker)
    cp = props(PacketTypes.CONNECT, TopicAliasMaximum=2)
    assert r.connect(client_id="tarecv", properties=cp).rc == 0
    r.subscribe("tb/#", qos=0)
    pub = Client(broker, client_id="tbpub")
    for i in range(3):
        for t in ("tb/a", "tb/b", "tb/c"):
            pub.publish(t, f"{t}{i}".encode(), qos=1)
    aliases = {}
    for i in range(3):
        for t in ("tb/a", "tb/b", "tb/c"):
            p = r.expect(PUBLISH)
            alias = getattr(p.props, "TopicAlias", None)
            assert alias is None or 1 <= alias <= 2, alias  # MQTT-3.3.2-9
            if p.topic:
                if alias is not None:
                    aliases[alias] = p.topic
                assert p.topic == t
            else:
                assert alias is not None and aliases.get(alias) == t
            assert p.payload == f"{t}{i}".encode()
    assert aliases, "the broker never used a topic alias"


def test_topic_alias_zero_without_client_maximum(broker):
    """MQTT-3.3.2-9: a client that announces no Topic Alias Maximum never gets an alias."""
    r = RawClient(broker)
    assert r.connect(client_id="tanone").rc == 0
    r.subscribe("tn/t", qos=0)
    pub = Client(broker, client_id="tnpub")
    for i in range(3):
        pub.publish("tn/t", str(i).encode(), qos=1)
    for i in range(3):
        p = r.expect(PUBLISH)
        assert (p.topic, p.payload) == ("tn/t", str(i).encode())
        assert not hasattr(p.props, "TopicAlias")


def test_subscription_identifiers(broker):
    """MQTT-3.3.4-3/-4/-5: the subscription identifiers of the matching subscriptions come with
    the message; none for a subscription without one. With overlapping subscriptions the
    identifiers of all of them reach the client (one copy with both, or one copy each)."""
    sub = Client(broker, client_id="sisub")
    assert sub.connack_props.SubscriptionIdentifierAvailable if hasattr(
        sub.connack_props, "SubscriptionIdentifierAvailable") else True
    sub.subscribe("si/a/+", qos=1, properties=props(PacketTypes.SUBSCRIBE,
                                                    SubscriptionIdentifier=7))
    sub.subscribe("si/#", qos=1, properties=props(PacketTypes.SUBSCRIBE,
                                                  SubscriptionIdentifier=268435455))
    sub.subscribe("plain/t", qos=1)
    pub = Client(broker, client_id="sipub")
    pub.publish("si/x", b"1", qos=1)
    m = sub.expect_message()
    assert (m.topic, m.props.SubscriptionIdentifier) == ("si/x", [268435455])
    pub.publish("plain/t", b"2", qos=1)
    m = sub.expect_message()
    assert m.topic == "plain/t" and not hasattr(m.props, "SubscriptionIdentifier")
    pub.publish("si/a/b", b"3", qos=1)
    copies = sub.drain(0.5)
    assert copies and all(m.payload == b"3" for m in copies)
    ids = sorted(i for m in copies for i in m.props.SubscriptionIdentifier)
    assert ids == [7, 268435455]


def test_no_local(broker):
    """MQTT-3.8.3-3: with No Local the client does not get its own messages; others' it does."""
    a = Client(broker, client_id="nla")
    b = Client(broker, client_id="nlb")
    a.subscribe("nl/t", qos=1, no_local=True)
    b.subscribe("nl/t", qos=1)
    a.publish("nl/t", b"from a", qos=1)
    assert b.expect_message().payload == b"from a"
    b.publish("nl/t", b"from b", qos=1)
    assert a.expect_message().payload == b"from b"
    assert b.expect_message().payload == b"from b"  # b has no No Local
    a.expect_no_message(0.3)


def _receive_max_client(broker, client_id, n):
    """A raw subscriber announcing Receive Maximum 2 and a publisher that sent it `n` QoS 1
    messages; returns (subscriber, the first 2 PUBLISHes, unacknowledged)."""
    r = RawClient(broker)
    assert r.connect(client_id=client_id, properties=props(PacketTypes.CONNECT,
                                                           ReceiveMaximum=2)).rc == 0
    r.subscribe("rm/t", qos=1)
    pub = Client(broker, client_id=client_id + "pub")
    for i in range(n):
        pub.publish("rm/t", str(i).encode(), qos=1)
    first = [r.expect(PUBLISH) for _ in range(2)]
    assert [p.payload for p in first] == [b"0", b"1"]
    r.expect_nothing(0.5)
    return r, first


def test_receive_maximum(broker):
    """MQTT-3.3.4-9: never more unacknowledged QoS 1 PUBLISHes to a client than its Receive
    Maximum (2 here, with 6 waiting); acknowledging releases more, in order."""
    r, first = _receive_max_client(broker, "rm", 6)
    got = list(first)
    while len(got) < 6:
        for p in got:
            if p.pid is not None:
                r.puback(p.pid)
                p.pid = None
        p = r.expect(PUBLISH)
        got.append(p)
    assert [p.payload for p in got] == [str(i).encode() for i in range(6)]


@pytest.mark.midge_only  # Mosquitto 2.0.11 sends 2 more after a single PUBACK (3 in flight)
def test_receive_maximum_one_ack_releases_one(broker):
    """MQTT-3.3.4-9 / 4.9: with the quota used up, one PUBACK releases exactly one PUBLISH."""
    r, first = _receive_max_client(broker, "rm1", 6)
    r.puback(first[0].pid)
    p = r.expect(PUBLISH)
    assert p.payload == b"2"
    r.expect_nothing(0.3)
    for q in (first[1], p):
        r.puback(q.pid)
    rest = [r.expect(PUBLISH) for _ in range(2)]
    assert [q.payload for q in rest] == [b"3", b"4"]
    r.expect_nothing(0.3)
    r.puback(rest[0].pid)
    assert r.expect(PUBLISH).payload == b"5"


def test_receive_maximum_qos0_not_limited(broker):
    """Receive Maximum counts QoS 1/2 only: QoS 0 messages still flow while the quota is used."""
    r = RawClient(broker)
    assert r.connect(client_id="rm0", properties=props(PacketTypes.CONNECT,
                                                       ReceiveMaximum=1)).rc == 0
    r.subscribe("rm0/t", qos=1)
    pub = Client(broker, client_id="rm0pub")
    pub.publish("rm0/t", b"q1", qos=1)
    pub.publish("rm0/t", b"q1b", qos=1)
    pub.publish("rm0/t", b"q0", qos=0)
    got = [r.expect(PUBLISH) for _ in range(2)]
    assert [(p.payload, p.qos) for p in got] == [(b"q1", 1), (b"q0", 0)]
    r.expect_nothing(0.3)


def test_maximum_packet_size(broker):
    """MQTT-3.1.2-24/-25, checklist 21: a message larger than the client's Maximum Packet Size is
    not sent to it, but is delivered to other subscribers; later small ones still flow."""
    small = RawClient(broker)
    assert small.connect(client_id="mps", properties=props(PacketTypes.CONNECT,
                                                          MaximumPacketSize=100)).rc == 0
    small.subscribe("mps/t", qos=1)
    big = Client(broker, client_id="mpsbig")
    big.subscribe("mps/t", qos=1)
    pub = Client(broker, client_id="mpspub")
    pub.publish("mps/t", b"a" * 20, qos=1)
    pub.publish("mps/t", b"b" * 200, qos=1)
    pub.publish("mps/t", b"c" * 20, qos=1)
    assert [m.payload for m in big.expect_messages(3)] == [b"a" * 20, b"b" * 200, b"c" * 20]
    p = small.expect(PUBLISH)
    assert p.payload == b"a" * 20
    small.puback(p.pid)
    p = small.expect(PUBLISH)
    assert p.payload == b"c" * 20
    small.puback(p.pid)
    small.expect_nothing(0.3)


def test_request_problem_information_zero(broker_factory):
    """MQTT-3.1.2-29: with Request Problem Information 0 no Reason String or User Property is
    sent on PUBACK, PUBREC, PUBCOMP, SUBACK or UNSUBACK, even for failures."""
    broker = broker_factory(config="message_size_limit 10")
    r = RawClient(broker)
    assert r.connect(client_id="rpi", properties=props(PacketTypes.CONNECT,
                                                        RequestProblemInformation=0)).rc == 0
    acks = [r.subscribe("rpi/t", qos=2)]
    r.publish("rpi/none", b"x", qos=1)  # no subscribers: 0x10
    acks.append(r.expect(PUBACK))
    r.publish("rpi/none", b"y" * 50, qos=1)  # over message_size_limit
    acks.append(r.expect(PUBACK))
    r.publish("rpi/none", b"z", qos=2)
    rec = r.expect(5)
    acks.append(rec)
    r.pubrel(rec.pid)
    acks.append(r.expect(7))
    r.send_packet(0xA2, b"\x00\x63\x00" + b"\x00\x07nothere")  # UNSUBSCRIBE, no such filter
    acks.append(r.expect(UNSUBACK))
    assert acks[3].rc in (0x00, 0x10)
    assert acks[1].rc == 0x10
    assert acks[5].codes == [0x11]
    for a in acks:
        if a.props is not None:
            assert not hasattr(a.props, "ReasonString"), a
            assert not hasattr(a.props, "UserProperty"), a


@pytest.mark.midge_only  # Mosquitto 2.0.11 ignores Request Response Information
def test_request_response_information(broker):
    """MQTT-3.1.2-28 / 3.2.2.3.15: asked for response information, Midge sends a Response
    Information string in CONNACK."""
    c = Client(broker, client_id="rri", properties=props(PacketTypes.CONNECT,
                                                         RequestResponseInformation=1))
    info = c.connack_props.ResponseInformation
    assert isinstance(info, str) and info


def test_no_response_information_unless_requested(broker):
    """MQTT-3.1.2-28: without the request, CONNACK carries no Response Information."""
    c = Client(broker, client_id="norri")
    assert not hasattr(c.connack_props, "ResponseInformation")


def test_unsupported_authentication_method(broker):
    """Checklist 25 / MQTT-4.12.0-1: an authentication method the broker does not support gets
    CONNACK 0x8C (Bad authentication method) and the connection is closed."""
    r = RawClient(broker)
    ack = r.connect(client_id="auth", properties=props(PacketTypes.CONNECT,
                                                        AuthenticationMethod="SCRAM-SHA-1",
                                                        AuthenticationData=b"n,,n=user"))
    assert (ack.session_present, ack.rc) == (0, 0x8C)
    r.expect_closed()
