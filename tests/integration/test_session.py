"""Sessions: clean session (3.x), clean start and session expiry (5.0), offline queueing and its
bound, session takeover (checklist 26)."""
import time

import pytest

from helpers import DISCONNECT, V5, V311, Client, RawClient, close_clients, props  # noqa: F401
from paho.mqtt.packettypes import PacketTypes


def expiry(seconds):
    return props(PacketTypes.CONNECT, SessionExpiryInterval=seconds)


def test_v311_clean_session(broker):
    """MQTT-3.1.2-4/-6, MQTT-3.2.2-1/-2: session present flag and subscriptions across
    connections with CleanSession 0 and 1."""
    c = Client(broker, client_id="cs", protocol=V311, clean=False)
    assert c.connack[:2] == (0, 0)
    c.subscribe("cs/t", qos=1)
    c.disconnect()
    c = Client(broker, client_id="cs", protocol=V311, clean=False)
    assert c.connack[:2] == (1, 0)
    pub = Client(broker, client_id="cspub")
    pub.publish("cs/t", b"still subscribed", qos=1)
    assert c.expect_message().payload == b"still subscribed"
    c.disconnect()
    # CleanSession=1 discards the session
    c = Client(broker, client_id="cs", protocol=V311, clean=True)
    assert c.connack[:2] == (0, 0)
    pub.publish("cs/t", b"nobody", qos=1)
    c.expect_no_message(0.3)
    c.disconnect()
    # ... and a clean session is not kept after it ends either
    c = Client(broker, client_id="cs", protocol=V311, clean=False)
    assert c.connack[:2] == (0, 0)


def test_v5_session_expiry_zero_ends_with_connection(broker):
    """MQTT-3.1.2-23 / 3.1.2.11.2: no Session Expiry Interval -> the session ends on disconnect."""
    c = Client(broker, client_id="se0", clean=False)
    c.subscribe("se0/t", qos=1)
    c.disconnect()
    c = Client(broker, client_id="se0", clean=False)
    assert c.connack[:2] == (0, 0)


def test_v5_session_expiry_interval(broker):
    """MQTT-3.1.2-23: the session is kept for the expiry interval after the connection ends,
    then discarded; clean start 1 discards it at once (MQTT-3.1.2-4)."""
    c = Client(broker, client_id="se", clean=True, properties=expiry(1))
    assert c.connack[:2] == (0, 0)
    c.subscribe("se/t", qos=1)
    c.disconnect()
    c = Client(broker, client_id="se", clean=False, properties=expiry(1))
    assert c.connack[:2] == (1, 0)  # within the interval
    pub = Client(broker, client_id="sepub")
    pub.publish("se/t", b"kept", qos=1)
    assert c.expect_message().payload == b"kept"
    c.disconnect()
    time.sleep(2.2)  # past the 1 s interval
    c = Client(broker, client_id="se", clean=False, properties=expiry(1))
    assert c.connack[:2] == (0, 0)
    pub.publish("se/t", b"gone", qos=1)
    c.expect_no_message(0.3)
    c.subscribe("se/t", qos=1)
    c.disconnect()
    c = Client(broker, client_id="se", clean=True, properties=expiry(60))
    assert c.connack[:2] == (0, 0)


@pytest.mark.parametrize("protocol", [V311, V5])
def test_offline_queue_qos1_qos2_in_order_not_qos0(broker, protocol):
    """MQTT-3.1.2-5 (3.1.1) / 3.1.2.4 (5.0): a persistent session queues QoS 1 and 2 messages
    while offline (QoS 0 may be dropped; Midge and Mosquitto drop them) and delivers them in
    order on reconnect (MQTT-4.6.0)."""
    cp = expiry(60) if protocol == V5 else None
    sub = Client(broker, client_id="offq", protocol=protocol, clean=False, properties=cp)
    sub.subscribe("offq/t", qos=2)
    sub.disconnect()
    pub = Client(broker, client_id="offqpub")
    sent = []
    for i in range(12):
        q = i % 3
        pub.publish("offq/t", f"{i}:{q}".encode(), qos=q)
        if q:
            sent.append((f"{i}:{q}".encode(), q))
    sub = Client(broker, client_id="offq", protocol=protocol, clean=False, properties=cp)
    assert sub.connack[:2] == (1, 0)
    got = [(m.payload, m.qos) for m in sub.expect_messages(len(sent))]
    # Order is guaranteed per QoS level (4.6); Mosquitto sends the queued QoS 1 ones first.
    assert sorted(got) == sorted(sent)
    for q in (1, 2):
        assert [g for g in got if g[1] == q] == [x for x in sent if x[1] == q]
    sub.expect_no_message(0.3)


def test_max_queued_messages(broker_factory):
    """Config max_queued_messages 5: an offline session keeps at most 5 messages."""
    broker = broker_factory(config="max_queued_messages 5")
    sub = Client(broker, client_id="mq", protocol=V311, clean=False)
    sub.subscribe("mq/t", qos=1)
    sub.disconnect()
    pub = Client(broker, client_id="mqpub")
    for i in range(10):
        pub.publish("mq/t", str(i).encode(), qos=1)
    sub = Client(broker, client_id="mq", protocol=V311, clean=False)
    got = sub.expect_messages(5)
    assert [m.payload for m in got] == [str(i).encode() for i in range(5)]
    sub.expect_no_message(0.5)


@pytest.mark.threaded
def test_takeover_v311(broker):
    """MQTT-3.1.4-2: a second connection with the same client id closes the first."""
    first = Client(broker, client_id="same", protocol=V311)
    first.subscribe("to/t", qos=1)
    second = Client(broker, client_id="same", protocol=V311)
    assert second.connack[:2] == (0, 0)
    assert first.wait_disconnected()
    assert second.connected
    pub = Client(broker, client_id="topub")
    pub.publish("to/x", b"x", qos=1)
    second.subscribe("to/x", qos=1)
    pub.publish("to/x", b"y", qos=1)
    assert second.expect_message().payload == b"y"


def _takeover_v5(broker, client_id):
    """First connection (raw) subscribed with a persistent session, taken over by a second one
    with clean start 0; returns (packets the first got before its close, second client)."""
    first = RawClient(broker)
    assert first.connect(client_id=client_id, clean=False, properties=expiry(60)).rc == 0
    assert first.subscribe("to5/t", qos=1).codes == [1]
    second = Client(broker, client_id=client_id, clean=False, properties=expiry(60))
    assert second.connack[:2] == (1, 0)
    got = first.expect_closed()
    pub = Client(broker, client_id=client_id + "pub")
    pub.publish("to5/t", b"to second", qos=1)
    m = second.expect_message()
    assert (m.topic, m.payload) == ("to5/t", b"to second")
    second.expect_no_message(0.2)
    return got, second


@pytest.mark.threaded
def test_takeover_v5_session_carries_over(broker):
    """MQTT-3.1.4-3: the first connection is closed; with clean start 0 the session
    (subscription) carries over to the new connection."""
    got, _ = _takeover_v5(broker, "same5")
    assert [p.type for p in got] in ([], [DISCONNECT])


@pytest.mark.threaded
@pytest.mark.midge_only  # Mosquitto 2.0.11 closes the old connection without a DISCONNECT
def test_takeover_v5_disconnect_0x8e(broker):
    """MQTT-3.1.4-3: the first connection gets DISCONNECT 0x8E (Session taken over), then close."""
    got, _ = _takeover_v5(broker, "same5x")
    assert [(p.type, p.rc) for p in got] == [(DISCONNECT, 0x8E)]


@pytest.mark.threaded
@pytest.mark.parametrize("protocol", [V311, V5])
def test_takeover_publishes_will(broker, protocol):
    """Checklist 26: on takeover the old connection's will is published (3.1.1; 5.0 without a
    will delay)."""
    w = Client(broker, client_id="twatch")
    w.subscribe("tw/#", qos=1)
    Client(broker, client_id="tw", protocol=protocol,
           will={"topic": "tw/will", "payload": b"taken", "qos": 1})
    Client(broker, client_id="tw", protocol=protocol)
    m = w.expect_message()
    assert (m.topic, m.payload) == ("tw/will", b"taken")
    w.expect_no_message(0.3)


@pytest.mark.threaded
def test_takeover_v5_will_delay_session_continues_no_will(broker):
    """Checklist 26 / MQTT-3.1.3-9: takeover with the session carried on (clean start 0) within
    the will delay: the will is not published."""
    w = Client(broker, client_id="twatch")
    w.subscribe("tw/#", qos=1)
    wp = props(PacketTypes.WILLMESSAGE, WillDelayInterval=30)
    Client(broker, client_id="twd", clean=False, properties=expiry(60),
           will={"topic": "tw/will", "payload": b"no", "qos": 1, "properties": wp})
    second = Client(broker, client_id="twd", clean=False, properties=expiry(60))
    assert second.connack[:2] == (1, 0)
    w.expect_no_message(1.0)


@pytest.mark.threaded
@pytest.mark.midge_only  # Mosquitto 2.0.11 keeps waiting for the will delay (spec 3.1.4 note)
def test_takeover_v5_clean_start_ends_session_sends_delayed_will(broker):
    """Checklist 26: takeover with clean start 1 ends the old session, so its will is published
    even though the will delay has not run out (3.1.3.2.2)."""
    w = Client(broker, client_id="twatch")
    w.subscribe("tw/#", qos=1)
    wp = props(PacketTypes.WILLMESSAGE, WillDelayInterval=30)
    Client(broker, client_id="twc", clean=False, properties=expiry(60),
           will={"topic": "tw/will", "payload": b"ended", "qos": 1, "properties": wp})
    second = Client(broker, client_id="twc", clean=True, properties=expiry(60))
    assert second.connack[:2] == (0, 0)
    m = w.expect_message(timeout=2)
    assert (m.topic, m.payload) == ("tw/will", b"ended")
