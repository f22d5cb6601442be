"""The $SYS tree (Mosquitto's topic names) and its isolation from wildcard subscriptions."""
import time

import pytest

from helpers import V311, Client, close_clients  # noqa: F401

SYS_CONFIG = "sys_interval 1"

NUMERIC = [
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/total",
    "$SYS/broker/clients/maximum",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/retained messages/count",
    "$SYS/broker/load/messages/received/1min",
    "$SYS/broker/load/messages/sent/1min",
]


def collect_sys(client, until, timeout=3.5):
    """Latest value per $SYS topic, read until `until(values)` holds or `timeout` passes."""
    values = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(values):
        for m in client.drain(0.1):
            values[m.topic] = m.payload.decode()
    return values


def number(text):
    """The leading number of a $SYS value ("12", "0.53", "7 seconds")."""
    return float(text.split()[0])


def test_sys_tree_topics_and_values(broker_factory):
    broker = broker_factory(config=SYS_CONFIG)
    others = [Client(broker, client_id=f"sysc{i}", protocol=V311) for i in range(3)]
    others[0].subscribe("sys/test/#", qos=1)
    others[1].publish("sys/test/x", b"hello", qos=1, retain=True)
    others[0].expect_message()
    s = Client(broker, client_id="sysmon")
    assert s.subscribe("$SYS/broker/#", qos=0) == [0]
    want = set(NUMERIC) | {"$SYS/broker/version", "$SYS/broker/uptime"}
    # 4 clients connected: sysmon and the 3 others. Values are published every sys_interval,
    # so read until all of them reflect this test's traffic (or the time is up).
    minimum = {"clients/connected": 4, "clients/total": 4, "clients/maximum": 4,
               "messages/received": 1, "messages/sent": 1, "bytes/received": 20,
               "bytes/sent": 10, "subscriptions/count": 2, "retained messages/count": 1}

    def problems(v):
        out = [f"missing {t}" for t in sorted(want - set(v))]
        for t in NUMERIC:
            if t in v and not number(v[t]) >= 0:
                out.append(f"{t} = {v[t]}")
        for k, n in minimum.items():
            t = "$SYS/broker/" + k
            if t in v and number(v[t]) < n:
                out.append(f"{t} = {v[t]} < {n}")
        c = v.get("$SYS/broker/clients/connected")
        if c is not None and number(c) != 4:
            out.append(f"clients/connected = {c}, not 4")
        return out

    values = collect_sys(s, lambda v: not problems(v))
    assert problems(values) == []
    assert all(t.startswith("$SYS/broker/") for t in values)
    assert 0 <= number(values["$SYS/broker/uptime"]) <= 60
    assert values["$SYS/broker/version"]


def test_sys_clients_connected_follows_disconnects(broker_factory):
    """$SYS/broker/clients/connected goes down when clients leave."""
    broker = broker_factory(config=SYS_CONFIG)
    extra = [Client(broker, client_id=f"sysd{i}") for i in range(3)]
    s = Client(broker, client_id="sysmon")
    s.subscribe("$SYS/broker/clients/connected")

    def is_(n):
        return lambda v: v.get("$SYS/broker/clients/connected", "").split()[:1] == [str(n)]
    assert is_(4)(collect_sys(s, is_(4)))
    for c in extra:
        c.disconnect()
    assert is_(1)(collect_sys(s, is_(1)))


@pytest.mark.midge_only  # Mosquitto says "mosquitto version 2.0.11"
def test_sys_version_is_midge(broker_factory):
    broker = broker_factory(config=SYS_CONFIG)
    s = Client(broker, client_id="sysver")
    s.subscribe("$SYS/broker/version")
    m = s.expect_message(timeout=3)
    assert m.payload.decode().startswith("midge")


def test_sys_not_matched_by_leading_wildcards(broker_factory):
    """MQTT-4.7.2-1: filters starting with '#' or '+' do not match topics starting with '$'."""
    broker = broker_factory(config=SYS_CONFIG)
    wild = Client(broker, client_id="syswild")
    for f in ("#", "+/broker/#", "+/+/uptime", "+/broker/uptime"):
        wild.subscribe(f, qos=0)
    sysmon = Client(broker, client_id="sysmon")
    sysmon.subscribe("$SYS/#")
    assert sysmon.expect_message(timeout=3).topic.startswith("$SYS/")
    time.sleep(1.2)  # at least one more sys_interval
    assert len(sysmon.drain(0.1)) > 0
    got = wild.drain(0.1)
    assert got == [], [m.topic for m in got]
    # the wildcard subscriber does get ordinary topics
    sysmon.publish("normal/t", b"x")
    m = wild.expect_message()
    assert m.topic == "normal/t"
