"""Authentication and ACL enforcement by the broker: password_file on CONNECT, acl_file on
PUBLISH, SUBSCRIBE and delivery (live, retained and queued messages).

Run against Debian's mosquitto too (MIDGE_TEST_BROKER=mosquitto): every expectation not
marked midge_only is mosquitto 2.0's behaviour. Where Midge differs on purpose:
- a wrong password or an unknown user is refused with 3.1.1 return code 4 / 5.0 reason 0x86
  (Bad username or password); mosquitto 2.0 answers 5 / 0x87 (Not authorized);
- SUBSCRIBE is checked: a filter that no read line of the client covers is refused (5.0
  0x87, 3.1.1 0x80) per filter; mosquitto 2.0 grants every filter and filters on delivery
  only. Delivery is checked by both.
Raw MQTT clients (mqttraw) give the exact reason codes; every wait has a timeout.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from mqttraw import (OK, P_SESSION_EXPIRY, PUBCOMP, PUBREC, SUBACK, V5, V311, Client, Timeout,
                     connect, connected, expect_connect_refused, publish, pubrel)
from mqttraw import subscribe as subscribe_packet

NOT_AUTHORIZED = 0x87
BAD_USER_OR_PASSWORD = 0x86
SUB_FAILURE_311 = 0x80

ACL = """\
# Anonymous clients: the lines before the first user line.
topic read public/#
topic write inbox

user admin
topic #

user alice
topic read a/#
topic write a/alice/#
topic readwrite shared/#
topic deny shared/secret/#

user bob
topic write #

user carol
topic read #
topic deny b/#

# Everyone, anonymous clients included (%u never matches those).
pattern readwrite dev/%u/%c/#
pattern read clients/%c
"""


@pytest.fixture
def files():
    """A directory with the ACL file and a password file, readable by mosquitto's user."""
    d = tempfile.mkdtemp(prefix="midge-acl-")
    os.chmod(d, 0o755)
    acl = os.path.join(d, "acl")
    with open(acl, "w") as f:
        f.write(ACL)
    pw = os.path.join(d, "passwd")
    for i, user in enumerate(["alice", "bob"]):
        args = ["mosquitto_passwd", "-b", pw, user, f"pw-{user}"]
        if i == 0:
            args.insert(1, "-c")
        subprocess.run(args, check=True, timeout=10, capture_output=True)
    for p in (acl, pw):
        os.chmod(p, 0o644)
    yield {"acl": acl, "passwd": pw}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def acl_broker(broker_factory, files):
    """A broker with the ACL file; any username is accepted (no password file)."""
    return broker_factory(config=f"allow_anonymous true\nacl_file {files['acl']}")


def client(broker, user=None, cid="", version=V5, **kw):
    return connected(broker, cid, version, username=user, **kw)


def expect_only(watcher, topics):
    """The watcher receives exactly these topics, in this order, then nothing."""
    got = []
    for _ in topics:
        got.append(watcher.recv_publish().topic)
    assert got == list(topics)
    watcher.expect_nothing(0.3)


# ---------------------------------------------------------------------------------------------
# CONNECT

@pytest.mark.parametrize("version", [V311, V5])
def test_connect_with_password(broker_factory, files, version):
    b = broker_factory(config=f"allow_anonymous false\npassword_file {files['passwd']}")
    c = client(b, "alice", "c-alice", version, password=b"pw-alice")
    c.expect_open()
    # allow_anonymous false: no username is "not authorized" (3.1.1 rc 5, 5.0 0x87).
    c = Client(b, version)
    c.send(connect("anon", version))
    expect_connect_refused(c, 5 if version == V311 else NOT_AUTHORIZED)


@pytest.mark.midge_only
@pytest.mark.parametrize("version", [V311, V5])
@pytest.mark.parametrize("user,password", [("alice", b"wrong"), ("alice", b""),
                                           ("nobody", b"pw-alice"), ("alice", None)])
def test_connect_bad_password(broker_factory, files, version, user, password):
    b = broker_factory(config=f"allow_anonymous false\npassword_file {files['passwd']}")
    c = Client(b, version)
    c.send(connect("c-bad", version, username=user, password=password))
    expect_connect_refused(c, 4 if version == V311 else BAD_USER_OR_PASSWORD)
    # The refusal is logged with the client's address.
    assert "127.0.0.1" in b.log()


# ---------------------------------------------------------------------------------------------
# PUBLISH

def test_publish_denied_v5(acl_broker):
    """5.0: QoS 1 -> PUBACK 0x87, QoS 2 -> PUBREC 0x87, QoS 0 dropped; nobody receives it,
    and the publisher stays connected."""
    watcher = client(acl_broker, "admin", "w")
    watcher.sub(("#", 1))
    alice = client(acl_broker, "alice", "c-alice")
    alice.pub("b/1", b"x", qos=1, expect_rc=NOT_AUTHORIZED)
    alice.pub("a/1", b"x", qos=2, expect_rc=NOT_AUTHORIZED)  # a/# is read-only for alice
    alice.pub("shared/secret/1", b"x", qos=1, expect_rc=NOT_AUTHORIZED)
    alice.pub("b/0", b"x", qos=0)
    alice.expect_open()
    alice.pub("a/alice/ok", b"x", qos=1, expect_rc=OK)
    alice.pub("shared/ok", b"x", qos=2, expect_rc=OK)
    expect_only(watcher, ["a/alice/ok", "shared/ok"])


def test_publish_denied_v311(acl_broker):
    """3.1.1 has no reason codes: the broker acknowledges normally and drops the message."""
    watcher = client(acl_broker, "admin", "w")
    watcher.sub(("#", 1))
    alice = client(acl_broker, "alice", "c-alice", V311)
    alice.pub("b/1", b"x", qos=1)
    pid = alice.new_pid()
    alice.send(publish("b/2", b"x", 2, pid=pid, version=V311))
    alice.expect_ack(PUBREC, pid)
    alice.send(pubrel(pid))
    alice.expect_ack(PUBCOMP, pid)
    alice.pub("b/0", b"x", qos=0)
    alice.pub("a/alice/ok", b"x", qos=1)
    expect_only(watcher, ["a/alice/ok"])


def test_publish_anonymous_section_and_patterns(acl_broker):
    anon = client(acl_broker, None, "dev1")
    anon.pub("inbox", b"x", qos=1, expect_rc=OK)
    anon.pub("public/x", b"x", qos=1, expect_rc=NOT_AUTHORIZED)  # read only
    anon.pub("dev//dev1/x", b"x", qos=1, expect_rc=NOT_AUTHORIZED)  # %u: no username
    dave = client(acl_broker, "dave", "dev1")  # in no user section: patterns only
    dave.pub("dev/dave/dev1/t", b"x", qos=1, expect_rc=OK)
    dave.pub("dev/dave/dev1", b"x", qos=1, expect_rc=OK)  # /# matches the parent level
    dave.pub("dev/dave/dev2/t", b"x", qos=1, expect_rc=NOT_AUTHORIZED)
    dave.pub("dev/eve/dev1/t", b"x", qos=1, expect_rc=NOT_AUTHORIZED)
    dave.pub("inbox", b"x", qos=1, expect_rc=NOT_AUTHORIZED)  # anonymous section only
    # A client id with '/' covers as many levels, as the substituted text does.
    slash = client(acl_broker, "dave", "dev/1")
    slash.pub("dev/dave/dev/1/t", b"x", qos=1, expect_rc=OK)
    slash.pub("dev/dave/dev/2/t", b"x", qos=1, expect_rc=NOT_AUTHORIZED)


def test_wildcard_in_client_id_or_username_gets_no_pattern(acl_broker):
    """CVE-2017-7650: '+' or '#' in a client id or username must not act as a wildcard."""
    plus = client(acl_broker, "dave", "+")
    plus.pub("dev/dave/x/t", b"x", qos=1, expect_rc=NOT_AUTHORIZED)
    hashed = client(acl_broker, "#", "c1")
    hashed.pub("dev/zz/c1/t", b"x", qos=1, expect_rc=NOT_AUTHORIZED)


# ---------------------------------------------------------------------------------------------
# SUBSCRIBE (Midge checks it; mosquitto 2.0 grants every filter)

@pytest.mark.midge_only
def test_subscribe_denied_per_filter_v5(acl_broker):
    alice = client(acl_broker, "alice", "c-alice")
    alice.sub(("a/#", 1), ("b/#", 1), ("shared/+", 2), ("shared/secret/x", 1), ("#", 0),
              ("a/alice/x", 0), ("a/+/x", 1),
              expect=[1, NOT_AUTHORIZED, 2, NOT_AUTHORIZED, NOT_AUTHORIZED, 0, 1])
    # The granted ones work, the refused ones deliver nothing.
    admin = client(acl_broker, "admin", "adm")
    admin.pub("b/1", b"x", qos=1)
    admin.pub("a/1", b"x", qos=1)
    p = alice.recv_publish()
    assert (p.topic, p.qos) == ("a/1", 1)
    alice.expect_nothing(0.3)


@pytest.mark.midge_only
def test_subscribe_denied_per_filter_v311(acl_broker):
    alice = client(acl_broker, "alice", "c-alice", V311)
    alice.sub(("a/#", 1), ("b/#", 1), ("shared/secret/#", 0), ("shared/#", 0),
              expect=[1, SUB_FAILURE_311, SUB_FAILURE_311, 0])


@pytest.mark.midge_only
def test_subscribe_anonymous_and_patterns(acl_broker):
    anon = client(acl_broker, None, "c7")
    anon.sub(("public/#", 0), ("public/x/+", 0), ("inbox", 0), ("clients/c7", 0),
             ("clients/c8", 0), ("clients/+", 0),
             expect=[0, 0, NOT_AUTHORIZED, 0, NOT_AUTHORIZED, NOT_AUTHORIZED])
    bob = client(acl_broker, "bob", "c-bob")  # write-only
    bob.sub(("#", 0), ("x", 0), expect=[NOT_AUTHORIZED, NOT_AUTHORIZED])


# ---------------------------------------------------------------------------------------------
# Delivery: only to clients with read access to the message's topic

def test_delivery_only_with_read_access(acl_broker):
    """carol reads everything but b/#: subscribed to '#', she never gets b/... ."""
    carol = client(acl_broker, "carol", "c-carol")
    carol.sub(("#", 1))
    alice = client(acl_broker, "alice", "c-alice")
    alice.sub(("shared/#", 1))
    bob = client(acl_broker, "bob", "c-bob")
    for topic in ["a/1", "b/1", "b", "shared/secret/1", "shared/2", "c/b/1"]:
        bob.pub(topic, b"x", qos=1, expect_rc=OK)
    expect_only(carol, ["a/1", "shared/secret/1", "shared/2", "c/b/1"])  # b/# denies b too
    expect_only(alice, ["shared/2"])


def test_delivery_patterns(acl_broker):
    c7 = client(acl_broker, None, "c7")
    c7.sub(("clients/c7", 1))
    admin = client(acl_broker, "admin", "adm")
    admin.pub("clients/c8", b"x", qos=1)
    admin.pub("clients/c7", b"mine", qos=1)
    p = c7.recv_publish()
    assert (p.topic, p.payload) == ("clients/c7", b"mine")
    c7.expect_nothing(0.3)


def test_retained_only_with_read_access(acl_broker):
    bob = client(acl_broker, "bob", "c-bob")
    for topic in ["a/r", "b/r", "c/r"]:
        bob.pub(topic, topic.encode(), qos=1, retain=True)
    carol = client(acl_broker, "carol", "c-carol")
    carol.sub(("#", 0))
    got = sorted(carol.recv_publish().topic for _ in range(2))
    assert got == ["a/r", "c/r"]
    carol.expect_nothing(0.3)


@pytest.mark.parametrize("version", [V311, V5])
def test_queued_only_with_read_access(acl_broker, version):
    """Messages queued for an offline session are filtered on the way out too."""
    kw = {"clean": False} if version == V311 else {"properties": [(P_SESSION_EXPIRY, 300)]}
    carol = client(acl_broker, "carol", "c-carol-q", version, **kw)
    carol.sub(("#", 1))
    carol.disconnect()
    bob = client(acl_broker, "bob", "c-bob")
    for topic in ["a/q", "b/q", "c/q"]:
        bob.pub(topic, b"x", qos=1)
    kw = {"clean": False} if version == V311 else {"clean": False,
                                                    "properties": [(P_SESSION_EXPIRY, 0)]}
    carol = client(acl_broker, "carol", "c-carol-q", version, **kw)
    assert carol.connack.session_present
    expect_only(carol, ["a/q", "c/q"])


def test_no_acl_file_allows_everything(broker):
    c = client(broker, "anyone", "c1")
    c.sub(("#", 1))
    c.pub("b/1", b"x", qos=1)
    assert c.recv_publish().topic == "b/1"



# ---------------------------------------------------------------------------------------------
# The same ACL file in Debian's mosquitto and in Midge, side by side

IDENTITIES = [(None, "c7"), ("alice", "c-a"), ("bob", "c-b"), ("carol", "c-c"),
              ("dave", "dev1"), ("dave", "dev/1"), ("admin", "adm"), ("+", "c1"),
              ("dave", "+"), ("#", "c8")]
TOPICS = ["a/1", "a/alice/x", "a", "b/1", "b", "shared/x", "shared/secret/x", "inbox",
          "public/x", "dev/dave/dev1/t", "dev/dave/dev1", "dev/dave/dev/1/t", "dev//c7/t",
          "clients/c7", "clients/c1", "clients/dev/1"]


class MosquittoBroker:
    """Debian's mosquitto with the given configuration lines, on a free loopback port."""

    def __init__(self, config):
        from conftest import free_port, wait_listening
        self.host, self.port = "127.0.0.1", free_port()
        self.dir = tempfile.mkdtemp(prefix="midge-acl-mosq-")
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\n{config}\n")
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_listening(self.port):
            self.stop()
            raise RuntimeError("mosquitto did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def write_outcomes(broker):
    """{(user, client id, topic): "allowed" | "refused"} from 5.0 QoS 1 PUBACK codes."""
    out = {}
    for user, cid in IDENTITIES:
        c = client(broker, user, cid)
        for topic in TOPICS:
            rc = c.pub(topic, b"x", qos=1, expect_rc=OK + (NOT_AUTHORIZED,))
            out[(user, cid, topic)] = "refused" if rc == NOT_AUTHORIZED else "allowed"
        c.disconnect()
    return out


def read_outcomes(broker):
    """{(user, client id): topics delivered}, each topic subscribed to on its own (a broker
    may refuse the subscription or drop the delivery: either way nothing arrives)."""
    subs = {}
    for user, cid in IDENTITIES:
        c = client(broker, user, cid)
        pid = c.new_pid()
        c.send(subscribe_packet(pid, [(t, 0) for t in TOPICS]))
        c.expect(SUBACK)
        subs[(user, cid)] = c
    admin = client(broker, "admin", "adm-pub")
    for topic in TOPICS:
        admin.pub(topic, topic.encode(), qos=1)
    out = {}
    for key, c in subs.items():
        got = []
        try:
            while True:
                got.append(c.recv_publish(timeout=0.3).topic)
        except Timeout:
            pass
        out[key] = sorted(got)
        c.disconnect()
    return out


@pytest.mark.midge_only
def test_same_decisions_as_mosquitto(broker_factory, files):
    """Every rule kind (read, write, readwrite, deny, anonymous section, user sections,
    patterns with %c and %u, '/' or wildcards in names): the publishes each broker refuses
    and the messages each broker delivers are the same."""
    config = f"allow_anonymous true\nacl_file {files['acl']}"
    midge = broker_factory(config=config)
    mosq = MosquittoBroker(config)
    try:
        assert write_outcomes(midge) == write_outcomes(mosq)
        assert read_outcomes(midge) == read_outcomes(mosq)
    finally:
        mosq.stop()
