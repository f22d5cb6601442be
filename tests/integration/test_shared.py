"""Shared subscriptions ($share/group/filter, MQTT 5.0 section 4.8.2)."""
import pytest

from helpers import V5, V311, Client, close_clients, props  # noqa: F401
from paho.mqtt.packettypes import PacketTypes


@pytest.mark.threaded
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_shared_split_between_online_members(broker, qos):
    """MQTT-4.8.2: each message goes to one member of the group only; with two online members
    both get some, and together they get every message exactly once. A normal subscriber on the
    same filter still gets every message."""
    n = 40
    members = [Client(broker, client_id=f"sh{i}") for i in range(2)]
    for m in members:
        assert m.subscribe("$share/g/sh/t", qos=2) == [2]
    normal = Client(broker, client_id="shnormal")
    normal.subscribe("sh/t", qos=2)
    pub = Client(broker, client_id="shpub")
    for i in range(n):
        pub.publish("sh/t", str(i).encode(), qos=qos)
    assert [m.payload for m in normal.expect_messages(n)] == [str(i).encode() for i in range(n)]
    got = [m.drain(0.5) for m in members]
    payloads = [x.payload for g in got for x in g]
    assert sorted(payloads) == sorted(str(i).encode() for i in range(n))  # no loss, no duplicate
    assert all(len(g) > 0 for g in got), [len(g) for g in got]
    for g in got:
        assert all(x.topic == "sh/t" and x.qos == qos for x in g)
        # per member, the order of publication is kept
        assert [int(x.payload) for x in g] == sorted(int(x.payload) for x in g)


@pytest.mark.threaded
def test_shared_groups_independent(broker):
    """Each share group gets its own copy of each message."""
    a = Client(broker, client_id="ga")
    b = Client(broker, client_id="gb")
    a.subscribe("$share/one/gi/#", qos=1)
    b.subscribe("$share/two/gi/#", qos=1)
    pub = Client(broker, client_id="gipub")
    for i in range(5):
        pub.publish("gi/x", str(i).encode(), qos=1)
    for c in (a, b):
        assert [m.payload for m in c.expect_messages(5)] == [str(i).encode() for i in range(5)]
        c.expect_no_message(0.2)


@pytest.mark.midge_only  # Mosquitto 2.0.11 sends retained messages on a shared subscribe
@pytest.mark.parametrize("protocol", [V311, V5])
def test_shared_no_retained_on_subscribe(broker, protocol):
    """MQTT 5.0 3.3.1.3: retained messages go to a new *non-shared* subscription only, so none
    are sent when a shared subscription is made; live messages still come through it."""
    pub = Client(broker, client_id="shrpub")
    pub.publish("shr/t", b"retained", qos=1, retain=True)
    sub = Client(broker, client_id="shrsub", protocol=protocol)
    sub.subscribe("$share/g/shr/t", qos=1)
    sub.expect_no_message(0.5)
    pub.publish("shr/t", b"live", qos=1)
    m = sub.expect_message()
    assert (m.topic, m.payload, m.retain) == ("shr/t", b"live", 0)


def test_shared_offline_persistent_member_gets_messages(broker):
    """MQTT 4.8.2: with no member online, messages for the group are queued in a member's
    persistent session and delivered, in order, when it reconnects."""
    cp = props(PacketTypes.CONNECT, SessionExpiryInterval=60)
    m = Client(broker, client_id="shoff", clean=False, properties=cp)
    m.subscribe("$share/g/sho/t", qos=1)
    m.disconnect()
    pub = Client(broker, client_id="shopub")
    for i in range(4):
        pub.publish("sho/t", str(i).encode(), qos=1)
    m = Client(broker, client_id="shoff", clean=False, properties=cp)
    assert m.connack[:2] == (1, 0)
    got = m.expect_messages(4)
    assert [(x.topic, x.payload) for x in got] == [("sho/t", str(i).encode()) for i in range(4)]
    m.expect_no_message(0.3)


@pytest.mark.threaded
@pytest.mark.midge_only  # Mosquitto 2.0.11 keeps round-robin over offline members too
def test_shared_prefers_online_member(broker):
    """Midge: an offline member is only a fallback; while a member is online, messages are not
    queued for an offline member of the group."""
    cp = props(PacketTypes.CONNECT, SessionExpiryInterval=60)
    off = Client(broker, client_id="shpoff", clean=False, properties=cp)
    off.subscribe("$share/g/shp/t", qos=1)
    off.disconnect()
    on = Client(broker, client_id="shpon")
    on.subscribe("$share/g/shp/t", qos=1)
    pub = Client(broker, client_id="shppub")
    for i in range(6):
        pub.publish("shp/t", str(i).encode(), qos=1)
    assert [x.payload for x in on.expect_messages(6)] == [str(i).encode() for i in range(6)]
    off = Client(broker, client_id="shpoff", clean=False, properties=cp)
    assert off.connack[:2] == (1, 0)
    off.expect_no_message(0.5)


@pytest.mark.threaded
def test_shared_member_leaving(broker):
    """After one member unsubscribes, the remaining member gets every message."""
    a = Client(broker, client_id="sla")
    b = Client(broker, client_id="slb")
    a.subscribe("$share/g/sl/t", qos=1)
    b.subscribe("$share/g/sl/t", qos=1)
    b.unsubscribe("$share/g/sl/t")
    pub = Client(broker, client_id="slpub")
    for i in range(6):
        pub.publish("sl/t", str(i).encode(), qos=1)
    assert [x.payload for x in a.expect_messages(6)] == [str(i).encode() for i in range(6)]
    b.expect_no_message(0.3)
