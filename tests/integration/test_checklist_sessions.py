"""Checklist items 26-30 (sessions and delivery): session takeover and wills, resending on
reconnect, ordering, retained messages, overlapping subscriptions.

Cases where mosquitto 2.0.11 deviates are marked midge_only with the reason beside them.
"""
import threading

import pytest

from mqttraw import (Closed, DISCONNECT, PUBREL, V311, V5, Bystander, connected, publish, pubrec,
                     sub_options, P_SESSION_EXPIRY, P_SUBSCRIPTION_ID, P_WILL_DELAY,
                     RC_SESSION_TAKEN_OVER)

midge_only = pytest.mark.midge_only
VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


def drain(c, timeout=0.5):
    """All PUBLISH packets arriving until `timeout` of silence (acknowledged)."""
    got = []
    while True:
        try:
            got.append(c.recv_publish(timeout))
        except AssertionError as e:
            if "timed out" in str(e):
                return got
            raise


# --- Item 26 ----------------------------------------------------------------------------------

def expect_taken_over(old):
    """The old connection is closed; on 5.0 a DISCONNECT, if sent, carries 0x8E (mosquitto
    2.0.11 closes without one; test_item26_takeover_sends_0x8e checks Midge sends it)."""
    try:
        t, f, body = old.recv_packet()
    except Closed:
        return
    assert old.version == V5 and (t, body[:1]) == (DISCONNECT, bytes([RC_SESSION_TAKEN_OVER]))
    old.expect_closed()


@pytest.mark.midge_only  # mosquitto 2.0.11 closes the old connection without DISCONNECT 0x8E.
def test_item26_takeover_sends_0x8e(broker):
    """Checklist 26, MQTT-3.1.4-3 (5.0): the old connection gets DISCONNECT 0x8E Session taken
    over, then is closed."""
    with Bystander(broker):
        old = connected(broker, "item26-8e", V5)
        new = connected(broker, "item26-8e", V5)
        old.expect_disconnect(RC_SESSION_TAKEN_OVER)
        new.expect_open()

@VERSIONS
def test_item26_takeover_closes_old_and_publishes_will(broker, version):
    """Checklist 26, MQTT-3.1.4-3 (5.0: DISCONNECT 0x8E to the old connection) / MQTT-3.1.4-2
    (3.1.1): a second connection with the same client id takes over; the old one's will (no
    will delay, session ends) is published exactly once."""
    with Bystander(broker):
        s = connected(broker, "item26-sub", version)
        s.sub(("item26/will", 1))
        old = connected(broker, "item26", version,
                        will=dict(topic="item26/will", payload=b"old gone", qos=1))
        new = connected(broker, "item26", version)
        expect_taken_over(old)
        p = s.recv_publish()
        assert (p.topic, p.payload, p.qos) == ("item26/will", b"old gone", 1)
        s.expect_nothing(0.5)
        new.expect_open()


def test_item26_takeover_within_will_delay_keeps_will(broker):
    """Checklist 26, MQTT-3.1.3-9 (5.0 will delay): when the session carries on (clean start 0,
    session expiry > 0) and a new connection arrives before the Will Delay Interval has run
    out, the will is not published, not even after the delay."""
    expiry = [(P_SESSION_EXPIRY, 60)]
    s = connected(broker, "item26d-sub", V5)
    s.sub(("item26/will", 1))
    old = connected(broker, "item26d", V5, properties=expiry,
                    will=dict(topic="item26/will", payload=b"delayed", qos=1,
                              properties=[(P_WILL_DELAY, 1)]))
    new = connected(broker, "item26d", V5, clean=False, properties=expiry)
    assert new.connack.session_present
    expect_taken_over(old)
    s.expect_nothing(2.0)  # twice the will delay
    new.expect_open()


def test_item26_will_delay_runs_out(broker):
    """Checklist 26, 3.1.3.2.2 (counter-case): with no new connection, the delayed will is
    published after the delay, not before."""
    s = connected(broker, "item26e-sub", V5)
    s.sub(("item26/will", 1))
    old = connected(broker, "item26e", V5, properties=[(P_SESSION_EXPIRY, 60)],
                    will=dict(topic="item26/will", payload=b"late", qos=1,
                              properties=[(P_WILL_DELAY, 1)]))
    old.close()  # network failure: the will applies
    s.expect_nothing(0.6)
    p = s.recv_publish(3.0)
    assert (p.topic, p.payload) == ("item26/will", b"late")


# --- Item 27 ----------------------------------------------------------------------------------

def persistent(broker, cid, version, clean):
    """A session that outlives the connection: 5.0 session expiry 60 s; 3.1.1 clean session 0
    (also on the first connection, the broker being fresh)."""
    if version == V5:
        return connected(broker, cid, version, clean=clean, properties=[(P_SESSION_EXPIRY, 60)])
    return connected(broker, cid, version, clean=False)


@VERSIONS
def test_item27_unacked_qos1_resent_with_dup_in_order(broker, version):
    """Checklist 27, MQTT-4.4.0-1 (resend unacknowledged PUBLISH on reconnect with the original
    packet ids), MQTT-3.3.1-1 (DUP=1 on a resend), MQTT-4.6.0-1 (in the original order)."""
    sub = persistent(broker, "item27", version, clean=True)
    sub.sub(("item27/t", 1))
    c = connected(broker, "item27-pub", version)
    for i in range(3):
        c.pub("item27/t", b"m%d" % i, qos=1)
    first = [sub.recv_publish(ack=False) for _ in range(3)]
    assert [(p.payload, p.dup) for p in first] == [(b"m0", False), (b"m1", False), (b"m2", False)]
    sub.close()
    sub = persistent(broker, "item27", version, clean=False)
    assert sub.connack.session_present
    again = [sub.recv_publish() for _ in range(3)]
    assert [(p.payload, p.pid, p.dup, p.qos) for p in again] == \
        [(p.payload, p.pid, True, 1) for p in first]
    sub.expect_nothing()


@VERSIONS
def test_item27_pubrel_resent(broker, version):
    """Checklist 27, MQTT-4.4.0-1: a QoS 2 flow past PUBREC (broker sent PUBREL, no PUBCOMP
    yet) resumes on reconnect with PUBREL for the same packet id, not the PUBLISH."""
    sub = persistent(broker, "item27q2", version, clean=True)
    sub.sub(("item27/q2", 2))
    c = connected(broker, "item27q2-pub", version)
    c.pub("item27/q2", b"two", qos=2)
    p = sub.recv_publish(ack=False)
    assert (p.payload, p.qos) == (b"two", 2)
    sub.send(pubrec(p.pid))
    sub.expect_ack(PUBREL, p.pid)
    sub.close()
    sub = persistent(broker, "item27q2", version, clean=False)
    assert sub.connack.session_present
    sub.expect_ack(PUBREL, p.pid)
    sub.send(b"\x70\x02" + p.pid.to_bytes(2, "big"))  # PUBCOMP
    sub.expect_nothing()


# --- Item 28 ----------------------------------------------------------------------------------

@VERSIONS
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_item28_order_per_topic(broker, version, qos):
    """Checklist 28, MQTT-4.6.0-5 (3.1.1) / 4.6 (5.0: ordered topic per subscription): 100
    messages on one topic arrive in the order published, each exactly once."""
    s = connected(broker, "item28-sub", version)
    s.sub(("item28/t", qos))
    c = connected(broker, "item28-pub", version)
    for i in range(100):
        c.pub("item28/t", b"%03d" % i, qos=qos)
    got = [s.recv_publish().payload for _ in range(100)]
    assert got == [b"%03d" % i for i in range(100)]
    s.expect_nothing()


@pytest.mark.threaded
def test_item28_order_many_concurrent_publishers(broker):
    """Checklist 28, MQTT-4.6.0-5: 8 publishers (QoS 1, mixed 3.1.1 and 5.0) publish 50
    messages each at the same time; 4 subscribers see each publisher's messages in order and
    exactly 400 messages in total."""
    npub, nmsg = 8, 50
    subs = [connected(broker, f"item28c-sub{i}", V5 if i % 2 else V311) for i in range(4)]
    for s in subs:
        s.sub(("item28c/#", 1))
    errors = []

    def run(k):
        try:
            c = connected(broker, f"item28c-pub{k}", V5 if k % 2 else V311)
            for i in range(nmsg):
                c.pub(f"item28c/{k}", b"%d:%d" % (k, i), qos=1)
            c.disconnect()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(npub)]
    for t in threads:
        t.start()
    results = []
    for s in subs:
        results.append([s.recv_publish(10.0) for _ in range(npub * nmsg)])
    for t in threads:
        t.join(20)
    assert not errors, errors
    for got in results:
        per = {}
        for p in got:
            k, i = p.payload.split(b":")
            assert p.topic == f"item28c/{int(k)}"
            per.setdefault(int(k), []).append(int(i))
        assert per == {k: list(range(nmsg)) for k in range(npub)}
    for s in subs:
        s.expect_nothing()


@pytest.mark.threaded
def test_item28_many_clients_with_malformed_neighbours(broker):
    """Checklist 1-5 under load: 6 bystanders run while 12 clients send malformed packets at
    once; every bystander keeps its exchange going and each bad client is closed."""
    bad = [bytes([0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), publish("a/+", b"x"),
           bytes([0x80, 0x06, 0, 1, 0, 1, ord("a"), 0]), publish("a", b"x", flags=6, pid=1)]
    errors = []

    def run(k):
        try:
            c = connected(broker, f"item28-bad{k}", V311)
            c.send(bad[k % len(bad)])
            c.expect_closed()
        except BaseException as e:
            errors.append(e)

    bys = [Bystander(broker) for _ in range(6)]
    for b_ in bys:
        b_.__enter__()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for b_ in bys:
        b_.__exit__(None, None, None)
    assert not errors, errors


# --- Item 29 ----------------------------------------------------------------------------------

@VERSIONS
def test_item29_retained_flag_and_deletion(broker, version):
    """Checklist 29, MQTT-3.3.1-6/-8 (3.1.1) / MQTT-3.3.1-5/-9 (5.0): a retained message is sent
    to a new subscriber with RETAIN=1; MQTT-3.3.1-9 (3.1.1) / MQTT-3.3.1-12 (5.0): forwarded
    live with RETAIN=0; MQTT-3.3.1-10/11 (3.1.1) / MQTT-3.3.1-6/7 (5.0): an empty retained
    payload deletes it and is not itself retained."""
    c = connected(broker, "item29-pub", version)
    live = connected(broker, "item29-live", version)
    live.sub(("item29/t", 1))
    c.pub("item29/t", b"kept", qos=1, retain=True)
    p = live.recv_publish()
    assert (p.payload, p.retain) == (b"kept", False)
    s = connected(broker, "item29-new", version)
    s.sub(("item29/t", 1))
    p = s.recv_publish()
    assert (p.payload, p.retain, p.qos) == (b"kept", True, 1)
    s.expect_nothing()
    c.pub("item29/t", b"", qos=1, retain=True)
    p = live.recv_publish()
    assert (p.payload, p.retain) == (b"", False)
    s2 = connected(broker, "item29-after", version)
    s2.sub(("item29/t", 1))
    s2.expect_nothing()


def test_item29_retain_as_published(broker):
    """Checklist 29, MQTT-3.3.1-13 (5.0): with Retain As Published the live copy keeps
    RETAIN=1; without it RETAIN=0 (MQTT-3.3.1-12)."""
    rap = connected(broker, "item29-rap", V5)
    rap.sub(("item29/rap", sub_options(1, rap=True)))
    norap = connected(broker, "item29-norap", V5)
    norap.sub(("item29/rap", sub_options(1)))
    c = connected(broker, "item29-rap-pub", V5)
    c.pub("item29/rap", b"r", qos=1, retain=True)
    assert rap.recv_publish().retain is True
    assert norap.recv_publish().retain is False
    c.pub("item29/rap", b"n", qos=1, retain=False)
    assert rap.recv_publish().retain is False
    c.pub("item29/rap", b"", qos=1, retain=True)


@VERSIONS
@pytest.mark.parametrize("msg_qos,sub_qos", [(2, 1), (2, 0), (1, 2), (0, 2), (1, 0)])
def test_item29_delivered_qos_is_minimum(broker, version, msg_qos, sub_qos):
    """Checklist 29, MQTT-3.8.4-6 (3.1.1) / 3.8.4 & 4.3 (5.0): retained and live deliveries use
    the minimum of the message's and the subscription's QoS."""
    c = connected(broker, "item29-q-pub", version)
    c.pub("item29/q", b"retained", qos=msg_qos, retain=True)
    s = connected(broker, "item29-q-sub", version)
    s.sub(("item29/q", sub_qos))
    p = s.recv_publish()
    assert (p.payload, p.qos, p.retain) == (b"retained", min(msg_qos, sub_qos), True)
    c.pub("item29/q", b"live", qos=msg_qos)
    p = s.recv_publish()
    assert (p.payload, p.qos, p.retain) == (b"live", min(msg_qos, sub_qos), False)
    s.expect_nothing()
    c.pub("item29/q", b"", qos=1, retain=True)


# --- Item 30 ----------------------------------------------------------------------------------

OVERLAP = [("item30/+", 0, 1), ("item30/#", 1, 2), ("item30/x", 2, 3)]  # filter, QoS, sub id


def overlap_subscriber(broker, version):
    s = connected(broker, "item30-sub", version)
    for filt, qos, sid in OVERLAP:
        s.sub((filt, qos), properties=[(P_SUBSCRIPTION_ID, sid)] if version == V5 else ())
    return s


def test_item30_overlapping_subscription_ids_all_given(broker):
    """Checklist 30, MQTT-3.3.4-3, MQTT-3.3.4-4, MQTT-3.3.4-5 (5.0): with overlapping
    subscriptions the broker may send one copy per subscription or one copy in all; either way
    every matching subscription's identifier is given and the highest QoS is honoured."""
    s = overlap_subscriber(broker, V5)
    c = connected(broker, "item30-pub", V5)
    c.pub("item30/x", b"overlap", qos=2)
    copies = drain(s)
    assert copies and all(p.payload == b"overlap" and p.sub_ids for p in copies), copies
    assert sorted(i for p in copies for i in p.sub_ids) == [1, 2, 3]
    assert max(p.qos for p in copies) == 2


@pytest.mark.midge_only  # mosquitto 2.0.11 sends one copy per matching subscription (3 copies).
def test_item30_overlapping_single_copy_v5(broker):
    """Checklist 30, MQTT-3.3.4-2, MQTT-3.3.4-5 (5.0): Midge sends ONE copy at the maximum QoS
    of the matching subscriptions, carrying ALL their subscription identifiers."""
    s = overlap_subscriber(broker, V5)
    c = connected(broker, "item30-pub", V5)
    c.pub("item30/x", b"overlap", qos=2)
    copies = drain(s)
    assert len(copies) == 1, copies
    assert (copies[0].qos, sorted(copies[0].sub_ids)) == (2, [1, 2, 3])


def test_item30_overlapping_max_qos_v311(broker):
    """Checklist 30, MQTT-3.3.5-1 (3.1.1): with overlapping subscriptions the message is
    delivered respecting the maximum QoS of all matching subscriptions."""
    s = overlap_subscriber(broker, V311)
    c = connected(broker, "item30-pub", V311)
    c.pub("item30/x", b"overlap", qos=2)
    copies = drain(s)
    assert copies and all(p.payload == b"overlap" for p in copies)
    assert max(p.qos for p in copies) == 2


def test_item30_overlapping_single_copy_v311(broker):
    """Checklist 30, MQTT-3.3.5-1 (3.1.1): Midge sends exactly one copy, at QoS 2."""
    s = overlap_subscriber(broker, V311)
    c = connected(broker, "item30-pub", V311)
    c.pub("item30/x", b"overlap", qos=2)
    copies = drain(s)
    assert [(p.payload, p.qos) for p in copies] == [(b"overlap", 2)]
