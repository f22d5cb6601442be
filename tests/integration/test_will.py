"""Will messages: abnormal loss, keepalive timeout, normal DISCONNECT, v5 reason 0x04, will delay,
will properties, retained wills."""
import time

import pytest

from conftest import USE_MOSQUITTO, Broker
from helpers import (PUBLISH, V5, V311, Client, RawClient, close_clients, props,  # noqa: F401
                     user_props)
from paho.mqtt.packettypes import PacketTypes


def watcher(broker, topic="will/#"):
    w = Client(broker, client_id="watcher")
    assert w.subscribe(topic, qos=2) == [2]
    return w


def will(topic="will/t", payload=b"gone", qos=1, retain=False, properties=None):
    return {"topic": topic, "payload": payload, "qos": qos, "retain": retain,
            "properties": properties}


@pytest.mark.parametrize("protocol", [V311, V5])
def test_will_on_abnormal_close(broker, protocol):
    """MQTT-3.1.2-8: the will is published when the connection closes without DISCONNECT."""
    w = watcher(broker)
    c = Client(broker, client_id="dying", protocol=protocol, will=will(qos=1))
    w.expect_no_message(0.1)
    c.drop()
    m = w.expect_message()
    assert (m.topic, m.payload, m.qos, m.retain) == ("will/t", b"gone", 1, 0)
    w.expect_no_message(0.3)


@pytest.mark.parametrize("protocol", [V311, V5])
def test_will_not_sent_after_disconnect(broker, protocol):
    """MQTT-3.1.2-10 / MQTT-3.14.4-3: a normal DISCONNECT discards the will."""
    w = watcher(broker)
    c = Client(broker, client_id="polite", protocol=protocol, will=will())
    c.disconnect()
    w.expect_no_message(0.7)


def test_will_on_keepalive_timeout(broker):
    """MQTT-3.1.2-24: no packet within 1.5 x keepalive -> the broker closes and sends the will."""
    w = watcher(broker)
    c = Client(broker, client_id="silent", protocol=V311, keepalive=1, will=will(payload=b"ka"))
    t0 = time.monotonic()
    c.freeze()  # socket stays open, no more PINGREQ
    w.expect_no_message(0.9)
    # Mosquitto 2.0.11 checks keepalives only every few seconds (it takes ~5.6 s here); Midge
    # must close at 1.5 x keepalive, within the timer resolution.
    limit = 8.0 if USE_MOSQUITTO else 2.5
    m = w.expect_message(timeout=limit)
    elapsed = time.monotonic() - t0
    assert (m.topic, m.payload) == ("will/t", b"ka")
    assert 1.0 <= elapsed <= limit, elapsed


def test_v5_disconnect_with_will_message(broker):
    """MQTT-3.14.2 reason 0x04 (Disconnect with Will Message): the will is published."""
    w = watcher(broker)
    c = Client(broker, client_id="dww", will=will(payload=b"asked"))
    c.disconnect(reason=0x04)
    m = w.expect_message()
    assert (m.topic, m.payload) == ("will/t", b"asked")
    w.expect_no_message(0.2)


def test_retained_will(broker):
    """MQTT-3.1.2-17: a will with Will Retain=1 is published as a retained message."""
    w = watcher(broker)
    c = Client(broker, client_id="rw", protocol=V311, will=will(retain=True, payload=b"rip"))
    c.drop()
    m = w.expect_message()
    assert (m.payload, m.retain) == (b"rip", 0)  # live delivery: RETAIN 0
    late = Client(broker, client_id="late")
    late.subscribe("will/t", qos=1)
    m = late.expect_message()
    assert (m.topic, m.payload, m.qos, m.retain) == ("will/t", b"rip", 1, 1)


def test_will_properties_forwarded(broker):
    """MQTT-3.1.3-9 ff.: will properties travel with the will message; user properties in order."""
    wp = props(PacketTypes.WILLMESSAGE, ContentType="text/plain", ResponseTopic="will/reply",
               CorrelationData=b"\x00\x01corr", PayloadFormatIndicator=1,
               UserProperty=[("k", "1"), ("a", "2"), ("k", "3")])
    w = watcher(broker)
    c = Client(broker, client_id="wprops", will=will(properties=wp))
    c.drop()
    m = w.expect_message()
    assert m.payload == b"gone"
    assert m.props.ContentType == "text/plain"
    assert m.props.ResponseTopic == "will/reply"
    assert m.props.CorrelationData == b"\x00\x01corr"
    assert m.props.PayloadFormatIndicator == 1
    assert user_props(m.props) == [("k", "1"), ("a", "2"), ("k", "3")]


def test_will_delay_interval(broker):
    """MQTT-3.1.3-9: the will is published only after the will delay interval."""
    w = watcher(broker)
    cp = props(PacketTypes.CONNECT, SessionExpiryInterval=30)
    c = Client(broker, client_id="delayed", clean=False, properties=cp,
               will=will(payload=b"late", properties=props(PacketTypes.WILLMESSAGE,
                                                            WillDelayInterval=2)))
    t0 = time.monotonic()
    c.drop()
    w.expect_no_message(1.4)
    m = w.expect_message(timeout=3)
    assert (m.topic, m.payload) == ("will/t", b"late")
    assert time.monotonic() - t0 >= 1.5


def test_will_delay_cancelled_by_reconnect(broker):
    """MQTT-3.1.3-9: a new connection to the session within the delay cancels the will."""
    w = watcher(broker)
    cp = props(PacketTypes.CONNECT, SessionExpiryInterval=30)
    wp = props(PacketTypes.WILLMESSAGE, WillDelayInterval=1)
    c = Client(broker, client_id="comeback", clean=False, properties=cp,
               will=will(payload=b"never", properties=wp))
    c.drop()
    time.sleep(0.2)
    c2 = Client(broker, client_id="comeback", clean=False, properties=cp)
    assert c2.connack[:2] == (1, 0)
    w.expect_no_message(2.0)


def test_will_delay_longer_than_session_expiry(broker):
    """MQTT 3.1.3.2.2: the will is sent when the session ends, if that is before the will delay."""
    w = watcher(broker)
    cp = props(PacketTypes.CONNECT, SessionExpiryInterval=1)
    wp = props(PacketTypes.WILLMESSAGE, WillDelayInterval=30)
    c = Client(broker, client_id="shortsess", clean=False, properties=cp,
               will=will(payload=b"sess-end", properties=wp))
    c.drop()
    m = w.expect_message(timeout=3.5)
    assert m.payload == b"sess-end"


@pytest.mark.midge_only
def test_stop_without_persistence_sends_no_will():
    """A broker without persistence that stops (SIGTERM) closes every connection and sends
    no will: a watcher connected at the same time gets none before its own connection
    closes. Mosquitto 2.0.11 differs: it sends the will to the watcher first."""
    b = Broker("")  # its own: the test stops it
    w = RawClient(b, 5)
    w.connect("watcher")
    w.subscribe("will/#", qos=1)
    d = RawClient(b, 5)
    d.connect("device", will={"topic": "will/dev", "payload": b"gone", "qos": 1})
    assert b.stop() == 0
    got = w.expect_closed()
    assert [p for p in got if p.type == PUBLISH] == [], got
    d.close()
