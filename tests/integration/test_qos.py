"""Protocol versions, QoS 0/1/2 delivery, ordering, redelivery and topic wildcards, through paho-mqtt.

Malformed-input and per-rule byte tests live in test_checklist*.py; these tests cover features
with a real client, and use RawClient only where paho would acknowledge on its own.
"""
import threading

import pytest

from helpers import (PUBLISH, PUBREL, V5, V31, V311, Client, RawClient, close_clients,  # noqa: F401
                     props)
from paho.mqtt.packettypes import PacketTypes


@pytest.mark.parametrize("protocol", [V31, V311, V5])
def test_connect_each_version_same_listener(broker, protocol):
    c = Client(broker, client_id=f"ver-{protocol}", protocol=protocol)
    assert c.connack[:2] == (0, 0)


@pytest.mark.threaded
def test_versions_interoperate(broker):
    """3.1, 3.1.1 and 5.0 clients on one listener receive each other's messages."""
    clients = [Client(broker, client_id=f"mix-{v}", protocol=v) for v in (V31, V311, V5)]
    for c in clients:
        assert c.subscribe("mix/#", qos=1) == [1]
    for i, c in enumerate(clients):
        c.publish(f"mix/{i}", f"from {i}".encode(), qos=1)
    for c in clients:
        got = sorted((m.topic, m.payload, m.qos) for m in c.expect_messages(3))
        assert got == [(f"mix/{i}", f"from {i}".encode(), 1) for i in range(3)]
        c.expect_no_message(0.2)


def test_v311_empty_client_id_persistent_refused(broker):
    """MQTT-3.1.3-8: empty client id with CleanSession=0 -> CONNACK return code 2, then close."""
    r = RawClient(broker, version=4)
    ack = r.connect(client_id="", clean=False)
    assert (ack.session_present, ack.rc) == (0, 2)
    r.expect_closed()


def test_v311_empty_client_id_clean_accepted(broker):
    """MQTT-3.1.3-6: empty client id with CleanSession=1 is accepted (server assigns an id)."""
    c = Client(broker, client_id="", protocol=V311, clean=True)
    assert c.connack[:2] == (0, 0)


def test_v5_empty_client_id_assigned(broker):
    """MQTT-3.2.2-16: a v5 client with an empty id gets an Assigned Client Identifier."""
    a = Client(broker, client_id="", protocol=V5)
    b = Client(broker, client_id="", protocol=V5)
    assert a.connack[:2] == (0, 0)
    ida = a.connack_props.AssignedClientIdentifier
    idb = b.connack_props.AssignedClientIdentifier
    assert isinstance(ida, str) and ida
    assert ida != idb


@pytest.mark.parametrize("protocol", [V311, V5])
def test_delivered_qos_is_min_of_publish_and_subscription(broker, protocol):
    sub = Client(broker, client_id="minsub", protocol=protocol)
    pub = Client(broker, client_id="minpub", protocol=protocol)
    for sq in (0, 1, 2):
        assert sub.subscribe(f"min/{sq}", qos=sq) == [sq]
    for sq in (0, 1, 2):
        for pq in (0, 1, 2):
            pub.publish(f"min/{sq}", f"{pq}".encode(), qos=pq)
            m = sub.expect_message()
            assert (m.topic, m.payload, m.qos, m.retain, m.dup) == (
                f"min/{sq}", f"{pq}".encode(), min(pq, sq), 0, 0)
    sub.expect_no_message(0.2)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_ordering_many_messages_per_topic(broker, qos):
    """Checklist 28: one publisher, one topic: the subscriber gets every message in order."""
    n = 300
    sub = Client(broker, client_id="ordsub")
    pub = Client(broker, client_id="ordpub")
    sub.subscribe("ord/t", qos=2)
    for i in range(n):
        pub.publish("ord/t", str(i).encode(), qos=qos, wait=False)
    got = sub.expect_messages(n, timeout=15)
    assert [m.payload for m in got] == [str(i).encode() for i in range(n)]
    assert {m.qos for m in got} == {qos}
    sub.expect_no_message(0.2)


@pytest.mark.threaded
def test_qos2_exactly_once(broker):
    """Each QoS 2 message arrives exactly once at each of two subscribers."""
    n = 100
    subs = [Client(broker, client_id=f"eo{i}") for i in range(2)]
    for s in subs:
        s.subscribe("eo/t", qos=2)
    pub = Client(broker, client_id="eopub")
    for i in range(n):
        pub.publish("eo/t", str(i).encode(), qos=2, wait=False)
    for s in subs:
        got = s.expect_messages(n, timeout=15)
        assert [m.payload for m in got] == [str(i).encode() for i in range(n)]
        assert all(m.qos == 2 and m.dup == 0 for m in got)
        s.expect_no_message(0.3)


@pytest.mark.threaded
def test_fan_out_concurrent_publishers(broker):
    """Four publishers publishing at once to four subscribers: every subscriber gets every
    message exactly once, each publisher's messages in their order (MQTT 4.6)."""
    npub, nmsg = 4, 50
    subs = [Client(broker, client_id=f"fsub{i}") for i in range(4)]
    for i, s in enumerate(subs):
        s.subscribe("fan/#", qos=i % 3)
    pubs = [Client(broker, client_id=f"fpub{p}") for p in range(npub)]

    def run(p):
        for i in range(nmsg):
            pubs[p].publish(f"fan/{p}", f"{p}:{i}".encode(), qos=1, wait=False)

    threads = [threading.Thread(target=run, args=(p,)) for p in range(npub)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for i, s in enumerate(subs):
        got = s.expect_messages(npub * nmsg, timeout=15)
        for p in range(npub):
            mine = [m.payload for m in got if m.topic == f"fan/{p}"]
            assert mine == [f"{p}:{k}".encode() for k in range(nmsg)]
        assert {m.qos for m in got} == {min(1, i % 3)}
        s.expect_no_message(0.2)


@pytest.mark.parametrize("version", [4, 5])
def test_unacked_qos1_redelivered_with_dup_on_reconnect(broker, version):
    """Checklist 27 / MQTT-4.4.0-1: unacknowledged QoS 1 messages are resent, DUP=1, in order."""
    r = RawClient(broker, version=version)
    props5 = props(PacketTypes.CONNECT, SessionExpiryInterval=60) if version == 5 else None
    assert r.connect(client_id="redeliv1", clean=False, properties=props5).rc == 0
    assert r.subscribe("rd/t", qos=1).codes == [1]
    pub = Client(broker, client_id="rdpub")
    for i in range(3):
        pub.publish("rd/t", f"m{i}".encode(), qos=1)
    first = [r.expect(PUBLISH) for _ in range(3)]
    assert [(p.payload, p.qos, p.dup) for p in first] == [(f"m{i}".encode(), 1, 0)
                                                         for i in range(3)]
    r.close()  # no PUBACK sent

    r2 = RawClient(broker, version=version)
    ack = r2.connect(client_id="redeliv1", clean=False, properties=props5)
    assert (ack.session_present, ack.rc) == (1, 0)
    again = [r2.expect(PUBLISH) for _ in range(3)]
    assert [(p.payload, p.qos, p.dup, p.topic) for p in again] == [
        (f"m{i}".encode(), 1, 1, "rd/t") for i in range(3)]
    for p in again:
        r2.puback(p.pid)
    r2.expect_nothing(0.3)
    r2.disconnect()
    # acknowledged now: a third connection gets nothing
    r3 = RawClient(broker, version=version)
    assert r3.connect(client_id="redeliv1", clean=False, properties=props5).session_present == 1
    r3.expect_nothing(0.3)


def test_unacked_qos2_redelivered_and_pubrel_resent(broker):
    """Checklist 27: QoS 2 PUBLISH without PUBREC is resent with DUP; past PUBREC, PUBREL is resent."""
    r = RawClient(broker, version=4)
    assert r.connect(client_id="redeliv2", clean=False).rc == 0
    assert r.subscribe("rd2/t", qos=2).codes == [2]
    pub = Client(broker, client_id="rd2pub")
    pub.publish("rd2/t", b"a", qos=2)
    pub.publish("rd2/t", b"b", qos=2)
    pa = r.expect(PUBLISH)
    pb = r.expect(PUBLISH)
    assert (pa.payload, pb.payload) == (b"a", b"b")
    r.pubrec(pa.pid)  # "a" past PUBREC, "b" not acknowledged at all
    assert r.expect(PUBREL).pid == pa.pid
    r.close()

    r2 = RawClient(broker, version=4)
    assert r2.connect(client_id="redeliv2", clean=False).session_present == 1
    got = [r2.recv() for _ in range(2)]
    assert all(p is not None for p in got), got
    rel = [p for p in got if p.type == PUBREL]
    pubs = [p for p in got if p.type == PUBLISH]
    assert [p.pid for p in rel] == [pa.pid]
    assert [(p.payload, p.dup, p.qos, p.pid) for p in pubs] == [(b"b", 1, 2, pb.pid)]
    r2.pubcomp(pa.pid)
    r2.pubrec(pb.pid)
    assert r2.expect(PUBREL).pid == pb.pid
    r2.pubcomp(pb.pid)
    r2.expect_nothing(0.3)


WILDCARD_CASES = [
    # filter, topics that match, topics that don't
    ("a/+/c", ["a/b/c", "a//c"], ["a/b/c/d", "a/c", "b/b/c"]),
    ("a/#", ["a", "a/b", "a/b/c", "a/"], ["b/a", "ab"]),
    ("+", ["a"], ["a/b", "/a"]),
    ("+/+", ["a/b", "/a", "a/"], ["a", "a/b/c"]),
    ("#", ["a", "a/b/c", "/x"], []),
    ("a/+/#", ["a/b", "a/b/c/d", "a/"], ["a", "b/c"]),
]


@pytest.mark.parametrize("flt,yes,no", WILDCARD_CASES)
def test_topic_wildcards(broker, flt, yes, no):
    """MQTT 4.7.1: '#' matches the parent and any number of levels, '+' exactly one level."""
    sub = Client(broker, client_id="wsub")
    pub = Client(broker, client_id="wpub")
    assert sub.subscribe(flt, qos=1) == [1]
    for t in no + yes:
        pub.publish(t, t.encode(), qos=1)
    got = sub.expect_messages(len(yes))
    assert [(m.topic, m.payload) for m in got] == [(t, t.encode()) for t in yes]
    sub.expect_no_message(0.2)
