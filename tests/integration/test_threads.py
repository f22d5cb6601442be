"""The threaded broker (DESIGN.md, "Threads") and the per-session limits: connections spread
over several I/O threads, deliveries crossing threads through the inboxes, sessions handed
over between threads on takeover; max_inflight_messages and max_queued_bytes."""
import threading

import pytest

from mqttraw import (PUBLISH, V5, V311, Client, connected, puback, RC_SESSION_TAKEN_OVER,
                     P_SESSION_EXPIRY)

pytestmark = pytest.mark.midge_only  # `threads` is Midge's option


@pytest.mark.threaded
def test_fan_in_fan_out_across_four_threads(broker_factory):
    """4 publishers x 150 QoS 1 messages to 12 subscribers on a 4-thread broker: every
    subscriber gets all 600, each publisher's messages in order (MQTT 4.6)."""
    broker = broker_factory(config="threads 4")
    subs = [connected(broker, f"sub{i}", V5 if i % 2 else V311) for i in range(12)]
    for s in subs:
        s.sub(("fan/#", 1))
    n = 150

    def publish(k):
        p = connected(broker, f"pub{k}", V311)
        for i in range(n):
            p.pub(f"fan/{k}", f"{k}:{i}".encode(), qos=1)
        p.disconnect()

    pubs = [threading.Thread(target=publish, args=(k,)) for k in range(4)]
    for t in pubs:
        t.start()
    for t in pubs:
        t.join(30)
        assert not t.is_alive()
    for s in subs:
        seen = {k: [] for k in range(4)}
        for _ in range(4 * n):
            p = s.recv_publish(timeout=10)
            k, i = p.payload.decode().split(":")
            seen[int(k)].append(int(i))
        s.expect_nothing(0.2)
        assert all(seen[k] == list(range(n)) for k in range(4)), seen
        s.close()


@pytest.mark.threaded
def test_takeover_hops_between_threads(broker_factory):
    """One client id reconnecting 8 times on a 4-thread broker (new sockets are spread
    round-robin, so the session moves between threads): each older connection gets
    DISCONNECT 0x8E, the session is present every time, and a message queued while it
    moves is delivered exactly once."""
    broker = broker_factory(config="threads 4")
    expiry = [(P_SESSION_EXPIRY, 300)]
    c = connected(broker, "hopper", V5, clean=True, properties=expiry)
    c.sub(("hop/t", 1))
    pub = connected(broker, "hop-pub", V311)
    for i in range(8):
        nxt = Client(broker, V5)
        ca = nxt.do_connect("hopper", clean=False, properties=expiry)
        assert ca.session_present
        c.expect_disconnect(RC_SESSION_TAKEN_OVER)
        pub.pub("hop/t", f"m{i}".encode(), qos=1)
        p = nxt.recv_publish(timeout=5)
        assert p.payload == f"m{i}".encode()
        nxt.expect_nothing(0.1)
        c = nxt
    c.disconnect()
    pub.disconnect()


def test_single_thread_broker(broker_factory):
    """threads 1: a single-threaded broker does the whole job."""
    broker = broker_factory(config="threads 1\nsys_interval 1")
    s = connected(broker, "st-sub", V311)
    s.sub(("$SYS/broker/threads", 0), ("st/t", 2))
    p = s.recv_publish(timeout=5)
    assert (p.topic, p.payload) == ("$SYS/broker/threads", b"1")
    pub = connected(broker, "st-pub", V5)
    pub.pub("st/t", b"x", qos=2)
    p = s.recv_publish(timeout=5)
    assert (p.topic, p.payload, p.qos) == ("st/t", b"x", 2)


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_max_inflight_messages(broker_factory, version):
    """max_inflight_messages 2: a client that does not acknowledge gets exactly 2 QoS 1
    messages; each PUBACK lets exactly one more out, in order."""
    broker = broker_factory(config="max_inflight_messages 2")
    s = connected(broker, "inflight-sub", version)
    s.sub(("if/t", 1))
    p = connected(broker, "inflight-pub", version)
    for i in range(5):
        p.pub("if/t", f"{i}".encode(), qos=1)
    got = [s.recv_publish(ack=False) for _ in range(2)]
    assert [g.payload for g in got] == [b"0", b"1"]
    s.expect_nothing(0.3)
    s.send(puback(got[0].pid))
    nxt = s.recv_publish(ack=False)
    assert nxt.payload == b"2"
    s.expect_nothing(0.3)


def test_max_queued_bytes(broker_factory):
    """max_queued_bytes 10: an offline session keeps QoS 1 messages while their payloads
    fit in 10 bytes (4 + 4), drops the rest, and delivers the kept ones on reconnect."""
    broker = broker_factory(config="max_queued_bytes 10")
    s = connected(broker, "qb-sub", V311, clean=False)
    s.sub(("qb/t", 1))
    s.disconnect()
    p = connected(broker, "qb-pub", V311)
    for i in range(5):
        p.pub("qb/t", f"msg{i}".encode(), qos=1)
    s = Client(broker, V311)
    assert s.do_connect("qb-sub", clean=False).session_present
    got = [s.recv_publish().payload for _ in range(2)]
    assert got == [b"msg0", b"msg1"]
    s.expect_nothing(0.3)
