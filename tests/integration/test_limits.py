"""Configured limits: max_keepalive (server keep alive), message_size_limit, max_connections."""
import time

import pytest

from conftest import USE_MOSQUITTO
from helpers import (PUBACK, PUBCOMP, PUBREC, V311, Client, Closed, RawClient,  # noqa: F401
                     close_clients)


def test_server_keep_alive_capped(broker_factory):
    """MQTT-3.2.2-21/-22 / 3.2.2.3.14: a v5 client asking for a keepalive above max_keepalive
    gets CONNACK Server Keep Alive = max_keepalive; keepalive 0 is capped too."""
    broker = broker_factory(config="max_keepalive 10")
    for client_id, asked in (("ka60", 60), ("ka0", 0)):
        r = RawClient(broker)
        ack = r.connect(client_id=client_id, keepalive=asked)
        assert (ack.session_present, ack.rc) == (0, 0)
        assert ack.props.ServerKeepAlive == 10
    r = RawClient(broker)
    ack = r.connect(client_id="ka5", keepalive=5)
    assert ack.rc == 0
    assert getattr(ack.props, "ServerKeepAlive", 5) == 5


@pytest.mark.midge_only  # Mosquitto 2.0.11 refuses max_keepalive below 10 (a 15 s test)
def test_server_keep_alive_enforced(broker_factory):
    """MQTT-3.2.2-22: the client must use the Server Keep Alive; the broker closes a client that
    is silent for 1.5 x that value (here 2 s, so 3 s, though the client asked for 60)."""
    broker = broker_factory(config="max_keepalive 2")
    r = RawClient(broker)
    ack = r.connect(client_id="kaen", keepalive=60)
    assert ack.props.ServerKeepAlive == 2
    t0 = time.monotonic()
    got = r.expect_closed(timeout=4.5)
    assert time.monotonic() - t0 >= 2.5
    # at most a DISCONNECT 0x8D (Keep alive timeout) before the close
    assert [(p.type, p.rc) for p in got] in ([], [(14, 0x8D)]), got


def test_message_size_limit_v5(broker_factory):
    """message_size_limit: a v5 PUBLISH with a larger payload is acknowledged with reason 0x95
    (Packet too large) on PUBACK / PUBREC, as Mosquitto 2.0.11 does, and not forwarded; QoS 0 is
    dropped silently; the connection stays up and smaller messages still pass."""
    broker = broker_factory(config="message_size_limit 10")
    sub = Client(broker, client_id="mslsub")
    sub.subscribe("msl/#", qos=2)
    r = RawClient(broker)
    assert r.connect(client_id="mslpub").rc == 0
    pid = r.publish("msl/t", b"x" * 11, qos=1)
    ack = r.expect(PUBACK)
    assert (ack.pid, ack.rc) == (pid, 0x95)
    pid = r.publish("msl/t", b"x" * 11, qos=2)
    rec = r.expect(PUBREC)
    assert (rec.pid, rec.rc) == (pid, 0x95)
    r.publish("msl/t", b"x" * 11, qos=0)
    sub.expect_no_message(0.3)
    pid = r.publish("msl/t", b"x" * 10, qos=1)  # exactly the limit is allowed
    ack = r.expect(PUBACK)
    assert (ack.pid, ack.rc) == (pid, 0)
    m = sub.expect_message()
    assert (m.topic, m.payload) == ("msl/t", b"x" * 10)
    sub.expect_no_message(0.2)


def test_message_size_limit_v311(broker_factory):
    """message_size_limit on 3.1.1: the QoS flow completes (PUBACK, PUBREC/PUBCOMP) but the
    message is not forwarded; the connection stays up."""
    broker = broker_factory(config="message_size_limit 10")
    sub = Client(broker, client_id="mslsub3", protocol=V311)
    sub.subscribe("msl3/#", qos=2)
    r = RawClient(broker, version=4)
    assert r.connect(client_id="mslpub3").rc == 0
    pid = r.publish("msl3/t", b"y" * 100, qos=1)
    ack = r.expect(PUBACK)
    assert (ack.pid, ack.rc) == (pid, 0)
    pid = r.publish("msl3/t", b"y" * 100, qos=2)
    assert r.expect(PUBREC).pid == pid
    r.pubrel(pid)
    assert r.expect(PUBCOMP).pid == pid
    sub.expect_no_message(0.3)
    r.publish("msl3/t", b"ok", qos=1)
    r.expect(PUBACK)
    assert sub.expect_message().payload == b"ok"


def _try_connect(broker, client_id, version):
    """Connect a raw client; returns (client, CONNACK) or (None, None) if the broker closed the
    connection without a CONNACK (Mosquitto's answer to max_connections)."""
    try:
        r = RawClient(broker, version=version)
        ack = r.connect(client_id=client_id, timeout=2)
    except (Closed, OSError):
        return None, None
    if ack.rc != 0:
        # a refusal by CONNACK must be "Quota exceeded" (5.0) / "Server unavailable" (3.1.1)
        assert ack.rc == (0x97 if version == 5 else 0x03), ack
        r.expect_closed()
        return None, ack
    return r, ack


def _check_max_connections(broker, allowed):
    clients = []
    for i in range(allowed):
        r, ack = _try_connect(broker, f"mc{i}", 5 if i % 2 else 4)
        assert r is not None, f"connection {i + 1} of {allowed} refused"
        clients.append(r)
    for version in (4, 5):
        r, _ = _try_connect(broker, f"over{version}", version)
        assert r is None, f"connection over max_connections accepted (v{version})"
    # the connected clients are not affected
    for r in clients:
        r.send_packet(0xC0, b"")  # PINGREQ
        assert r.expect(13).type == 13  # PINGRESP
    # a slot freed by a DISCONNECT can be used again
    clients[0].disconnect()
    clients[0].expect_closed()
    time.sleep(0.1)
    r, ack = _try_connect(broker, "later", 5)
    assert r is not None and ack.rc == 0


def test_max_connections_refuses_beyond_limit(broker_factory):
    """max_connections: connections beyond the limit are refused (Mosquitto closes the socket at
    accept, before any CONNACK) and the others keep working. Mosquitto 2.0.11 lets one more
    connection in than configured, so this runs with the count each broker admits."""
    broker = broker_factory(config="max_connections 2")
    _check_max_connections(broker, 3 if USE_MOSQUITTO else 2)


@pytest.mark.midge_only  # Mosquitto 2.0.11 admits max_connections + 1 clients
def test_max_connections_exact(broker_factory):
    """max_connections 2: the third client is refused."""
    broker = broker_factory(config="max_connections 2")
    _check_max_connections(broker, 2)
