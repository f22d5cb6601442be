"""Durable persistence on SQLite (issue 6): what survives a clean restart and a kill -9.

Every test runs the real midge binary on a real database file, restarts it on the same port
and file, and talks to it with paho-mqtt (subscribers, publishers) or RawClient where the
exact packets matter (packet ids, PUBREL resent after a crash).
"""
import os
import random
import re
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import MIDGE_BIN, SANITIZER_MARKS, Broker, free_port, wait_listening
from helpers import (PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, TIMEOUT, V5, V311, Client,
                     Closed, RawClient, close_clients, props, wait_until)  # noqa: F401
from paho.mqtt.packettypes import PacketTypes

pytestmark = pytest.mark.midge_only


class Store:
    """Brokers started one after the other on one port and one database file."""

    def __init__(self, directory, extra=""):
        self.dir = directory
        self.port = free_port()
        self.db = os.path.join(directory, "midge.db")
        self.extra = extra
        self.b = None
        self.logs = []

    def config(self):
        return f"persistence true\npersistence_location {self.dir}\n{self.extra}"

    def start(self):
        self.b = Broker(self.config(), port=self.port)
        return self.b

    def kill(self):
        """SIGKILL: no clean-up, no last commit."""
        self.b.proc.kill()
        self.b.proc.wait(5)
        self.b.logfile.close()
        self.logs.append(self.b.log())
        self.b = None
        for mark in SANITIZER_MARKS:
            assert mark not in self.logs[-1], self.logs[-1]

    def stop(self):
        code = self.b.stop()
        self.logs.append(self.b.log())
        self.b = None
        assert code == 0

    def restart(self, how):
        self.kill() if how == "kill" else self.stop()
        return self.start()

    def close(self):
        if self.b is not None:
            alive = self.b.alive()
            self.stop()
            assert alive, "broker died during the test:\n" + self.logs[-1]


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path))
    yield s
    s.close()


def v5_session(broker, cid, expiry=3600, clean=False):
    return Client(broker, cid, V5, clean=clean,
                  properties=props(PacketTypes.CONNECT, SessionExpiryInterval=expiry))


# ---- what survives a restart ----

@pytest.mark.parametrize("how", ["stop", "kill"])
def test_retained_sessions_subscriptions_and_queue_survive(store, how):
    b = store.start()
    pub = Client(b, "pub", V5)
    pub.publish("r/1", b"kept", qos=1, retain=True,
                properties=props(PacketTypes.PUBLISH, ContentType="text/plain",
                                 UserProperty=[("k", "v")]))
    pub.publish("r/2", b"gone", qos=1, retain=True)
    pub.publish("r/2", b"", qos=1, retain=True)  # deletes r/2's retained message
    s5 = v5_session(b, "sub5")
    sid = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7)
    assert s5.subscribe("q/#", qos=2, no_local=True, retain_handling=2, properties=sid) == [2]
    s5.disconnect()
    s3 = Client(b, "sub3", V311, clean=False)
    assert s3.subscribe("q/+", qos=1) == [1]
    assert s3.subscribe("$share/g/sh/#", qos=1) == [1]
    s3.disconnect()
    for i in range(5):
        pub.publish(f"q/{i}", f"m{i}".encode(), qos=1 + i % 2)
    pub.close()

    b = store.restart(how)
    s5 = v5_session(b, "sub5")
    assert s5.session_present
    got = s5.expect_messages(5)
    # paho hands a QoS 2 message over at PUBREL, a round trip after the QoS 1 ones sent
    # behind it: the order holds per QoS.
    for q in (1, 2):
        assert [(m.topic, m.payload) for m in got if m.qos == q] == [
            (f"q/{i}", f"m{i}".encode()) for i in range(5) if 1 + i % 2 == q]
    assert all(m.props.SubscriptionIdentifier == [7] for m in got)
    s3 = Client(b, "sub3", V311, clean=False)
    assert s3.session_present
    assert [(m.topic, m.payload, m.qos) for m in s3.expect_messages(5)] == [
        (f"q/{i}", f"m{i}".encode(), 1) for i in range(5)]
    # The subscriptions are back in the tree, with their options: no local holds for sub5.
    s5.publish("q/own", b"own", qos=1)
    assert s3.expect_message().payload == b"own"
    s5.expect_no_message(0.3)
    s5.publish("sh/1", b"shared", qos=1)  # the shared subscription is back too
    m = s3.expect_message()
    assert (m.topic, m.payload) == ("sh/1", b"shared")
    pub = Client(b, "pub2", V5)
    pub.publish("q/after", b"after", qos=2)
    m = s5.expect_message()
    assert (m.topic, m.payload, m.props.SubscriptionIdentifier) == ("q/after", b"after", [7])
    # Retained: r/1 with its properties, r/2 deleted.
    r = Client(b, "reader", V5)
    r.subscribe("r/#", qos=1)
    m = r.expect_message()
    assert (m.topic, m.payload, m.retain) == ("r/1", b"kept", True)
    assert m.props.ContentType == "text/plain"
    assert [tuple(p) for p in m.props.UserProperty] == [("k", "v")]
    r.expect_no_message(0.3)


def test_unsubscribe_and_clean_start_survive_kill(store):
    b = store.start()
    c = v5_session(b, "u")
    c.subscribe("keep/#", qos=1)
    c.subscribe("drop/#", qos=1)
    assert c.unsubscribe("drop/#") is not None
    c.disconnect()
    gone = Client(b, "gone", V311, clean=False)
    gone.subscribe("keep/#", qos=1)
    gone.disconnect()
    Client(b, "gone", V311, clean=True).disconnect()  # clean session: the old one ends
    b = store.restart("kill")
    pub = Client(b, "pub", V5)
    pub.publish("drop/1", b"no", qos=1)
    pub.publish("keep/1", b"yes", qos=1)
    c = v5_session(b, "u")
    assert c.session_present
    assert c.expect_message().payload == b"yes"
    c.expect_no_message(0.3)
    assert not Client(b, "gone", V311, clean=False).session_present


def test_session_and_message_expiry_count_the_downtime(store):
    b = store.start()
    short = v5_session(b, "short", expiry=1)
    short.subscribe("e/#", qos=1)
    short.disconnect()
    long = v5_session(b, "long", expiry=600)
    long.subscribe("e/#", qos=1)
    long.disconnect()
    pub = Client(b, "pub", V5)
    pub.publish("e/1", b"expires", qos=1,
                properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    pub.publish("e/2", b"stays", qos=1)
    pub.close()
    store.stop()
    time.sleep(1.5)  # down longer than both expiries
    b = store.start()
    assert not v5_session(b, "short").session_present
    long = v5_session(b, "long")
    assert long.session_present
    assert long.expect_message().payload == b"stays"
    long.expect_no_message(0.3)


def test_sync_full_keeps_what_was_acknowledged_across_kill(store):
    """persistence_sync full (an fsync per commit): acknowledged retained and queued messages
    come back after kill -9, as with the default."""
    store.extra = "persistence_sync full"
    b = store.start()
    sub = v5_session(b, "full-sub")
    sub.subscribe("full/#", qos=1)
    sub.disconnect()
    pub = Client(b, "full-pub", V5)
    pub.publish("full/kept", b"retained", qos=1, retain=True)  # waits for the PUBACK
    for i in range(3):
        pub.publish(f"full/{i}", f"q{i}".encode(), qos=1)
    pub.close()
    b = store.restart("kill")
    sub = v5_session(b, "full-sub")
    assert sub.session_present
    assert [(m.topic, m.payload) for m in sub.expect_messages(4)] == [
        ("full/kept", b"retained"), ("full/0", b"q0"), ("full/1", b"q1"), ("full/2", b"q2")]
    sub.close()


def device_with_will(broker, delay):
    c = Client(broker, "dev", V5, clean=False,
               properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60),
               will={"topic": "will/dev", "payload": b"gone", "qos": 1,
                     "properties": props(PacketTypes.WILLMESSAGE, WillDelayInterval=delay)})
    assert c.connected
    return c


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_will_with_delay_is_sent_after_a_restart(store, how):
    """The device's connection ends with the broker, cleanly or not: its stored session
    keeps the will, which the next start sends once the delay (counted from the stop) is
    over."""
    b = store.start()
    watcher = v5_session(b, "watcher")
    watcher.subscribe("will/#", qos=1)
    watcher.disconnect()
    c = device_with_will(b, 1)
    b = store.restart(how)
    c.close()
    watcher = v5_session(b, "watcher")
    m = watcher.expect_message(timeout=4)
    assert (m.topic, m.payload) == ("will/dev", b"gone")


def test_will_not_sent_when_the_device_is_back_within_the_delay(store):
    """A clean stop sends no will, and a device that reconnects after the restart within
    its will delay cancels it (MQTT 5.0 section 3.1.3.2.2)."""
    b = store.start()
    watcher = v5_session(b, "watcher")
    watcher.subscribe("will/#", qos=1)
    c = device_with_will(b, 2)
    b = store.restart("stop")
    c.close()
    watcher.close()
    c = device_with_will(b, 2)  # back in time, as a device whose broker restarted
    watcher = v5_session(b, "watcher")
    assert watcher.session_present
    watcher.expect_no_message(2.5)
    c.close()


# ---- exactly once across a crash ----

def test_outbound_qos2_resends_pubrel_not_publish_after_kill(store):
    b = store.start()
    sub = RawClient(b, 5)
    sub.connect("rx", clean=False, properties=props(PacketTypes.CONNECT,
                                                    SessionExpiryInterval=600))
    sub.subscribe("x", qos=2)
    pub = Client(b, "pub", V5)
    pub.publish("x", b"once", qos=2)
    p = sub.expect(PUBLISH)
    assert (p.payload, p.qos) == (b"once", 2)
    sub.pubrec(p.pid)
    rel = sub.expect(PUBREL)  # the broker committed the PUBREL-sent state before this
    assert rel.pid == p.pid
    b = store.restart("kill")
    sub = RawClient(b, 5)
    ack = sub.connect("rx", clean=False, properties=props(PacketTypes.CONNECT,
                                                          SessionExpiryInterval=600))
    assert ack.session_present == 1
    rel = sub.expect(PUBREL)
    assert rel.pid == p.pid
    sub.pubcomp(p.pid)
    sub.expect_nothing(0.3)


def test_inbound_qos2_id_survives_kill(store):
    b = store.start()
    watcher = v5_session(b, "watcher")
    watcher.subscribe("in", qos=2)
    watcher.disconnect()
    pub = RawClient(b, 5)
    pub.connect("p2", clean=False, properties=props(PacketTypes.CONNECT,
                                                    SessionExpiryInterval=600))
    pub.publish("in", b"one", qos=2, pid=42)
    assert pub.expect(PUBREC).pid == 42
    b = store.restart("kill")
    pub = RawClient(b, 5)
    assert pub.connect("p2", clean=False, properties=props(
        PacketTypes.CONNECT, SessionExpiryInterval=600)).session_present == 1
    # Sent again (as if its PUBREC had been lost): the id is known, not taken twice.
    pub.publish("in", b"one", qos=2, pid=42, dup=True)
    assert pub.expect(PUBREC).pid == 42
    pub.pubrel(42)
    comp = pub.expect(PUBCOMP)
    assert (comp.pid, comp.rc) == (42, 0)
    watcher = v5_session(b, "watcher")
    assert watcher.expect_message().payload == b"one"
    watcher.expect_no_message(0.3)
    # The id is free again: a new message under it is a new message.
    pub.publish("in", b"two", qos=2, pid=42)
    assert pub.expect(PUBREC).pid == 42
    assert watcher.expect_message().payload == b"two"


class Publisher(threading.Thread):
    """Publishes numbered messages at `qos` with up to `window` in flight, at most `rate` a
    second (the subscribers must read them all back quickly), until the broker dies; records
    the numbers whose PUBACK (QoS 1) or PUBREC (QoS 2) arrived."""

    def __init__(self, broker, cid, topic, qos, first, window=10, rate=5000):
        super().__init__(daemon=True)
        self.c = RawClient(broker, 4)
        self.c.connect(cid, clean=True)
        self.topic, self.qos, self.next, self.window = topic, qos, first, window
        self.rate, self.first = rate, first
        self.pending = {}  # pid -> number
        self.acked = []

    def run(self):
        t0 = time.monotonic()
        try:
            while True:
                ahead = self.next - self.first - self.rate * (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead / self.rate)
                while len(self.pending) < self.window:
                    pid = self.c.publish(self.topic, str(self.next), qos=self.qos)
                    self.pending[pid] = self.next
                    self.next += 1
                p = self.c.recv(0.5)
                if p is None:
                    continue
                if p.type in (PUBACK, PUBREC) and p.pid in self.pending:
                    self.acked.append(self.pending.pop(p.pid))
                    if p.type == PUBREC:
                        self.c.pubrel(p.pid)
        except (Closed, OSError):
            pass


def collect(client, quiet=1.0, limit=15.0):
    """Every message until none came for `quiet` seconds (bounded by `limit`)."""
    out, deadline = [], time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            out.append(client.messages.get(timeout=quiet))
        except Exception:  # queue.Empty
            break
    return out


@pytest.mark.threaded
def test_kill_9_loses_nothing_acknowledged(store):
    """Publishers at QoS 1 and 2 to persistent offline subscribers; SIGKILL at random points;
    every acknowledged message arrives, in order, and no QoS 2 message twice."""
    store.extra = "max_queued_messages 0"
    b = store.start()
    subs = {"s5": lambda b: v5_session(b, "s5"), "s3": lambda b: Client(b, "s3", V311,
                                                                         clean=False)}
    for make in subs.values():
        c = make(b)
        c.subscribe("crash/#", qos=2)
        c.disconnect()
    rng = random.Random(6)
    acked = {1: [], 2: []}
    nxt = {1: 0, 2: 0}
    for _ in range(4):
        pubs = [Publisher(b, f"pub{q}", f"crash/q{q}", q, nxt[q]) for q in (1, 2)]
        for p in pubs:
            p.start()
        time.sleep(rng.uniform(0.1, 0.5))
        store.kill()
        for p in pubs:
            p.join(5)
            assert not p.is_alive()
            acked[p.qos] += p.acked
            nxt[p.qos] = p.next
        b = store.start()
    clients = {name: make(b) for name, make in subs.items()}
    for name, c in clients.items():
        assert c.session_present
        t0 = time.monotonic()
        got = collect(c)
        print(f"{name}: {len(got)} messages in {time.monotonic() - t0:.1f} s")
        for q in (1, 2):
            seq = [int(m.payload) for m in got if m.topic == f"crash/q{q}"]
            print(f"{name} QoS {q}: {len(acked[q])} acknowledged, {len(seq)} delivered")
            assert acked[q], "the publisher got no acknowledgement at all"
            missing = set(acked[q]) - set(seq)
            assert not missing, f"{name}: {len(missing)} acknowledged QoS {q} messages lost"
            firsts = list(dict.fromkeys(seq))
            assert firsts == sorted(firsts), f"{name}: QoS {q} messages out of order"
            if q == 2:
                assert len(seq) == len(set(seq)), f"{name}: a QoS 2 message came twice"


class Receiver(threading.Thread):
    """A QoS 2 receiver that keeps its protocol state across connections, as a persistent
    client must: a PUBLISH under a packet id still awaiting PUBREL is a resend, not a new
    message. Runs until the broker dies or nothing comes for `quiet` seconds."""

    def __init__(self, broker, cid, delivered, awaiting, quiet=1.0):
        super().__init__(daemon=True)
        self.c = RawClient(broker, 4)
        self.ack = self.c.connect(cid, clean=False)
        self.delivered, self.awaiting, self.quiet = delivered, awaiting, quiet

    def run(self):
        try:
            while True:
                p = self.c.recv(self.quiet)
                if p is None:
                    return
                if p.type == PUBLISH and p.qos == 2:
                    if p.pid not in self.awaiting:
                        self.awaiting.add(p.pid)
                        self.delivered.append(int(p.payload))
                    self.c.pubrec(p.pid)
                elif p.type == PUBREL:
                    self.awaiting.discard(p.pid)
                    self.c.pubcomp(p.pid)
        except (Closed, OSError):
            pass


@pytest.mark.threaded
def test_kill_9_while_delivering_qos2_gives_each_message_once(store):
    """Queued QoS 2 messages are delivered while the broker is killed again and again: the
    receiver gets each exactly once, in order (packet ids and PUBREL-sent state survive)."""
    store.extra = "max_queued_messages 0"
    b = store.start()
    r = RawClient(b, 4)
    r.connect("rx2", clean=False)
    r.subscribe("ex", qos=2)
    r.close()
    n = 12000
    pub = Publisher(b, "pub", "ex", 2, 0, window=20, rate=20000)
    pub.start()
    assert wait_until(lambda: len(pub.acked) >= n, timeout=20)
    store.kill()  # also ends the publisher: its unacknowledged tail may or may not count
    pub.join(5)
    acked = sorted(pub.acked)
    rng = random.Random(7)
    delivered, awaiting = [], set()
    for _ in range(4):
        b = store.start()
        rx = Receiver(b, "rx2", delivered, awaiting)
        assert rx.ack.session_present == 1
        rx.start()
        time.sleep(rng.uniform(0.05, 0.2))
        store.kill()
        rx.join(5)
        print(f"killed after {len(delivered)} delivered")
    b = store.start()
    rx = Receiver(b, "rx2", delivered, awaiting)
    rx.start()
    rx.join(20)
    print(f"QoS 2: {len(acked)} acknowledged, {len(delivered)} delivered")
    assert len(delivered) == len(set(delivered)), "a QoS 2 message was delivered twice"
    assert delivered == sorted(delivered), "out of order"
    assert not set(acked) - set(delivered), "acknowledged messages lost"


# ---- the file itself ----

def test_database_is_readable_with_the_sqlite3_shell(store):
    b = store.start()
    c = v5_session(b, "reader")
    c.subscribe("t/#", qos=1)
    c.disconnect()
    pub = Client(b, "pub", V5)
    pub.publish("t/temp", b"21.5", qos=1, retain=True)
    out = subprocess.run(
        ["sqlite3", "-readonly", store.db,
         "SELECT m.topic, m.payload FROM retained r JOIN msgs m ON m.id = r.msg_id;"
         "SELECT client_id, filter, qos FROM subs;"
         "SELECT d.client_id, m.topic FROM deliveries d JOIN msgs m ON m.id = d.msg_id;"],
        capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["t/temp|21.5", "reader|t/#|1", "reader|t/temp"]
    con = sqlite3.connect(f"file:{store.db}?mode=ro", uri=True)
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0x4D444745
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    con.close()


def refuse(tmp_path, content_maker):
    db = tmp_path / "midge.db"
    content_maker(db)
    before = db.read_bytes()
    conf = tmp_path / "m.conf"
    conf.write_text(f"persistence true\npersistence_location {tmp_path}\n")
    r = subprocess.run([MIDGE_BIN, "-c", str(conf), "-p", str(free_port())],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert db.read_bytes() == before, "the refused file was changed"
    assert not os.path.exists(f"{db}-wal")
    return r.stderr


def test_refuses_a_file_that_is_not_a_database(tmp_path):
    err = refuse(tmp_path, lambda p: p.write_bytes(b"my notes, not a database\n" * 100))
    assert f"persistence file {tmp_path}/midge.db is not a Midge database" in err
    assert "refusing to use or overwrite it" in err


def test_refuses_another_applications_database(tmp_path):
    def make(p):
        con = sqlite3.connect(p)
        con.execute("CREATE TABLE accounts(name TEXT)")
        con.execute("INSERT INTO accounts VALUES ('alice')")
        con.commit()
        con.close()
    err = refuse(tmp_path, make)
    assert "is an SQLite database of another application (application_id 0)" in err


def test_refuses_a_newer_schema_and_a_corrupt_file(tmp_path, store):
    store.start()
    store.stop()
    con = sqlite3.connect(store.db)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    err = refuse(tmp_path, lambda p: None)
    assert "has schema version 99, newer than this Midge's 1" in err

    def corrupt(p):
        data = bytearray(p.read_bytes())
        assert len(data) >= 3 * 4096
        data[60:64] = (1).to_bytes(4, "big")  # user_version back to 1 (file header)
        data[4096:3 * 4096] = bytes([0xA5]) * (2 * 4096)  # b-tree pages 2 and 3
        p.write_bytes(bytes(data))
    err = refuse(tmp_path, corrupt)
    assert "is corrupt" in err or "is not a Midge database" in err


def test_periodic_mode_commits_on_its_interval(store):
    """periodic: acknowledgements do not wait; a commit every autosave_interval seconds."""
    store.extra = "persistence_mode periodic\nautosave_interval 1"
    b = store.start()
    c = v5_session(b, "p")
    c.subscribe("p/#", qos=1)
    c.disconnect()
    pub = Client(b, "pub", V5)
    pub.publish("p/1", b"x", qos=1)
    time.sleep(1.5)  # one interval: committed
    b = store.restart("kill")
    c = v5_session(b, "p")
    assert c.session_present
    assert c.expect_message().payload == b"x"


def test_periodic_mode_commits_early_when_many_changes_wait(store):
    """periodic: long before autosave_interval (an hour here) the store commits once
    100000 changes wait, so memory stays bounded under a flood. 40000 QoS 1 messages of one
    pair are 120000 changes (each message, its delivery to the persistent subscriber and
    that delivery's removal): the subscriber's session is then committed, and a kill -9
    finds it. Without the early commit nothing would be."""
    store.extra = "persistence_mode periodic\nautosave_interval 3600"
    b = store.start()
    bench = os.path.join(os.path.dirname(MIDGE_BIN), "midge-bench")
    p = subprocess.run([bench, "pairs", "-c", "1", "-q", "1", "-n", "40000", "--persistent",
                        "-p", str(b.port), "--json", "--quiet"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    b = store.restart("kill")
    assert wait_until(lambda: "restored" in b.log()), b.log()
    assert re.search(r"persistence file \S+: \d+ retained messages, 1 sessions, "
                     r"1 subscriptions", b.log()), b.log()


# ---- disk full ----

class SmallDiskBroker:
    """midge on its own 1 MiB tmpfs, mounted in a private mount namespace (unshare -rm works
    for root and for other users alike). A filler file takes part of the space, so that the
    test can give space back by deleting it (through /proc/PID/root)."""

    def __init__(self, directory, config):
        self.host, self.port = "127.0.0.1", free_port()
        self.mnt = os.path.join(directory, "small")
        os.mkdir(self.mnt)
        conf = os.path.join(directory, "m.conf")
        with open(conf, "w") as f:
            f.write(f"persistence true\npersistence_location {self.mnt}\n{config}\n")
        self.logpath = os.path.join(directory, "broker.log")
        self.logfile = open(self.logpath, "wb")
        script = ('mount -t tmpfs -o size=1m tmpfs "$0" && '
                  'head -c 393216 /dev/zero > "$0/filler" && exec "$@"')
        self.proc = subprocess.Popen(
            ["unshare", "-rm", "sh", "-c", script, self.mnt, MIDGE_BIN, "-c", conf,
             "-p", str(self.port), "-v"], stdout=self.logfile, stderr=subprocess.STDOUT)
        assert wait_listening(self.port), self.log()

    def inside(self, name):
        return f"/proc/{self.proc.pid}/root{self.mnt}/{name}"

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.logfile.close()
        return self.proc.returncode


def fill(path):
    """Write to path until the file system is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            for _ in range(1024):
                f.write(bytes(4096))
        except OSError:
            return
    pytest.fail("the small file system did not fill up")


def publish_until_refused(pub, topic, payload, limit=200):
    """QoS 1 PUBLISH one after the other until one is refused; returns its reason code."""
    for _ in range(limit):
        pid = pub.publish(topic, payload, qos=1)
        ack = pub.expect(PUBACK)
        assert ack.pid == pid
        if ack.rc >= 0x80:
            return ack.rc
    pytest.fail(f"{limit} large messages stored on a 1 MiB file system")


@pytest.mark.threaded
def test_disk_full_refuses_qos1_keeps_qos0_and_recovers(tmp_path):
    b = SmallDiskBroker(str(tmp_path), "max_queued_messages 0")
    try:
        off = v5_session(b, "off")
        off.subscribe("big/#", qos=1)
        off.disconnect()
        live = Client(b, "live", V5)
        live.subscribe("zero", qos=0)
        pub = RawClient(b, 5)
        pub.connect("pub5")
        big = bytes(16384)
        assert publish_until_refused(pub, "big/a", big) == 0x97  # Quota exceeded
        assert "commit failed" in b.log()
        fill(b.inside("filler2"))  # not a byte left: no later commit can slip through
        # QoS 0 does not touch the store: it keeps flowing.
        pub.publish("zero", b"still here", qos=0)
        assert live.expect_message().payload == b"still here"
        # 3.1.1 cannot say no: the PUBLISH is not acknowledged (and logged).
        old = RawClient(b, 4)
        old.connect("pub4")
        # (A failed transaction leaves room that a smaller one may use: publish until one
        # cannot be stored.)
        for _ in range(50):
            pid = old.publish("big/b", big, qos=1)
            ack = old.recv(0.5)
            if ack is None:
                break
            assert (ack.type, ack.pid) == (PUBACK, pid)
        else:
            pytest.fail("every 3.1.1 PUBLISH was stored on a full file system")
        assert "could not be stored: not acknowledged" in b.log()
        # Space comes back: storing works again.
        os.unlink(b.inside("filler"))
        os.unlink(b.inside("filler2"))
        pid = pub.publish("big/c", b"after", qos=1)
        ack = pub.expect(PUBACK)
        assert (ack.pid, ack.rc) == (pid, 0)
        assert "writing works again" in b.log()
        off = v5_session(b, "off")
        assert off.session_present
        assert [m.payload for m in collect(off, quiet=0.5)][-1] == b"after"
    finally:
        assert b.stop() == 0, b.log()
