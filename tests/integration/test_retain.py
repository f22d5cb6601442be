"""Retained messages: store, replace, delete, retain flag on delivery, QoS cap, v5 retain handling
and retain-as-published (checklist 29)."""
import pytest

from helpers import V5, V311, Client, close_clients  # noqa: F401


@pytest.mark.parametrize("protocol", [V311, V5])
def test_retained_delivered_on_subscribe_with_retain_flag(broker, protocol):
    """MQTT-3.3.1-6 / -9: a new subscription gets the retained message with RETAIN=1;
    live messages to an existing subscription have RETAIN=0 (MQTT-3.3.1-12 on 3.1.1)."""
    pub = Client(broker, client_id="rpub", protocol=protocol)
    pub.publish("ret/a", b"kept", qos=1, retain=True)
    sub = Client(broker, client_id="rsub", protocol=protocol)
    assert sub.subscribe("ret/a", qos=1) == [1]
    m = sub.expect_message()
    assert (m.topic, m.payload, m.qos, m.retain) == ("ret/a", b"kept", 1, 1)
    pub.publish("ret/a", b"live", qos=1, retain=True)
    m = sub.expect_message()
    assert (m.topic, m.payload, m.qos, m.retain) == ("ret/a", b"live", 1, 0)
    pub.publish("ret/a", b"plain", qos=1)
    m = sub.expect_message()
    assert (m.payload, m.retain) == (b"plain", 0)
    sub.expect_no_message(0.2)


def test_retained_replaced_and_deleted(broker):
    """MQTT-3.3.1-5: a new retained message replaces the old; MQTT-3.3.1-10/-11: an empty
    retained payload deletes it and is not stored."""
    pub = Client(broker, client_id="rpub")
    pub.publish("ret/r", b"one", qos=1, retain=True)
    pub.publish("ret/r", b"two", qos=1, retain=True)
    s1 = Client(broker, client_id="rs1")
    s1.subscribe("ret/r", qos=1)
    m = s1.expect_message()
    assert (m.payload, m.retain) == (b"two", 1)
    s1.expect_no_message(0.2)

    pub.publish("ret/r", b"", qos=1, retain=True)
    s2 = Client(broker, client_id="rs2")
    s2.subscribe("ret/r", qos=1)
    s2.expect_no_message(0.4)
    # the retained "two" is gone for good, also through a wildcard
    s2.subscribe("ret/#", qos=1)
    s2.expect_no_message(0.2)


def test_retained_wildcard_subscribe_gets_all(broker):
    pub = Client(broker, client_id="rpub")
    topics = ["rw/a", "rw/b/c", "rw/d"]
    for t in topics:
        pub.publish(t, t.encode(), qos=1, retain=True)
    pub.publish("other/x", b"x", qos=1, retain=True)
    sub = Client(broker, client_id="rsub")
    sub.subscribe("rw/#", qos=1)
    got = sorted((m.topic, m.payload, m.retain) for m in sub.expect_messages(3))
    assert got == [(t, t.encode(), 1) for t in topics]
    sub.expect_no_message(0.2)


def test_retained_qos_capped_by_subscription(broker):
    """Checklist 29: delivered QoS = min(retained message QoS, subscription QoS)."""
    pub = Client(broker, client_id="rpub")
    for q in (0, 1, 2):
        pub.publish(f"rq/{q}", f"{q}".encode(), qos=q, retain=True)
    pub.publish("rq/end", b"", qos=1)  # a round trip so that the QoS 0 one is surely stored
    for sq in (0, 1, 2):
        sub = Client(broker, client_id=f"rqsub{sq}")
        sub.subscribe("rq/+", qos=sq)
        got = sorted((m.topic, m.qos, m.retain) for m in sub.expect_messages(3))
        assert got == [(f"rq/{q}", min(q, sq), 1) for q in (0, 1, 2)]
        sub.expect_no_message(0.1)
        sub.disconnect()


def test_v5_retain_handling(broker):
    """MQTT-3.3.1-9/-10/-11: retain handling 0 sends on every subscribe, 1 only if the
    subscription is new, 2 never."""
    pub = Client(broker, client_id="rpub")
    pub.publish("rh/t", b"r", qos=1, retain=True)
    sub = Client(broker, client_id="rhsub")
    for rh, expect_first, expect_again in ((0, True, True), (1, True, False), (2, False, False)):
        topic = "rh/t" if rh == 0 else f"rh/{'+' if rh == 1 else '#'}"
        for expected in (expect_first, expect_again):
            assert sub.subscribe(topic, qos=1, retain_handling=rh) == [1]
            if expected:
                m = sub.expect_message()
                assert (m.topic, m.payload, m.retain) == ("rh/t", b"r", 1), rh
            sub.expect_no_message(0.3)
        sub.unsubscribe(topic)


def test_v5_retain_as_published(broker):
    """MQTT-3.3.1-12/-13: with retain-as-published live messages keep their RETAIN flag."""
    sub = Client(broker, client_id="rapsub")
    pub = Client(broker, client_id="rappub")
    sub.subscribe("rap/keep", qos=1, retain_as_published=True)
    sub.subscribe("rap/clear", qos=1, retain_as_published=False)
    for t in ("rap/keep", "rap/clear"):
        pub.publish(t, b"1", qos=1, retain=True)
        pub.publish(t, b"0", qos=1, retain=False)
    got = [(m.topic, m.payload, m.retain) for m in sub.expect_messages(4)]
    assert got == [("rap/keep", b"1", 1), ("rap/keep", b"0", 0),
                   ("rap/clear", b"1", 0), ("rap/clear", b"0", 0)]
    sub.expect_no_message(0.2)
