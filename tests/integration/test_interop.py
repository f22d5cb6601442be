"""Interoperability: real third-party MQTT clients talk to each other through the broker.

Mosquitto's command-line clients (mosquitto_sub / mosquitto_pub, Debian mosquitto-clients) and
Eclipse Paho's C sample clients (paho_c_sub / paho_c_pub on the asynchronous library,
paho_cs_sub / paho_cs_pub on the synchronous one; Debian paho.mqtt.c-examples) exchange
messages at QoS 0, 1 and 2 over MQTT 3.1, 3.1.1 and 5.0. Payloads and counts are exact.

A subscriber is started first and the publisher only once the subscriber has its SUBACK (from
mosquitto_sub's -d output, from Paho's --trace protocol output), so no test sleeps to wait.
Every subprocess has a timeout; a test never hangs on a client.
"""
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid

import pytest

TIMEOUT = 10  # seconds: upper bound of any client run or wait for something that must happen

CLIENTS = ("mosquitto_sub", "mosquitto_pub", "paho_c_sub", "paho_c_pub", "paho_cs_sub",
           "paho_cs_pub")
missing = [c for c in CLIENTS if shutil.which(c) is None]
pytestmark = pytest.mark.skipif(
    bool(missing), reason=f"clients not installed (scripts/setup.sh installs them): {missing}")

# mosquitto_sub's -d lines, which the tests read for SUBACK and QoS but are not messages.
DEBUG_LINE = re.compile(r"^(Client \S+ (sending|received) |Subscribed \(mid)")
VERSIONS = ("31", "311", "5")
# Paho's -V takes the same three spellings.


def unique(prefix):
    """A topic or client id of our own, so that nothing else can match it."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Client:
    """A client program running in the background, its stdout and stderr read by threads."""

    def __init__(self, cmd):
        self.cmd = cmd
        # Line-buffered output (coreutils' stdbuf), so that lines arrive as they are printed.
        self.proc = subprocess.Popen(["stdbuf", "-oL", "-eL"] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        self.lines = {"out": [], "err": []}
        self.cv = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(s, n), daemon=True)
                        for s, n in ((self.proc.stdout, "out"), (self.proc.stderr, "err"))]
        for t in self.readers:
            t.start()
        _running.append(self)

    def _read(self, stream, name):
        for line in stream:
            with self.cv:
                self.lines[name].append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def wait_for(self, pattern, stream="out", timeout=TIMEOUT):
        """Wait until a line of the stream matches the regex; fail the test if none does."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                if any(rx.search(l) for l in self.lines[stream]):
                    return
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reading()):
                    raise AssertionError(f"{self.cmd[0]}: no line matching {pattern!r} "
                                         f"within {timeout}s\n{self.output()}")
                self.cv.wait(min(left, 0.1))

    def _reading(self):
        return any(t.is_alive() for t in self.readers)

    def finish(self, timeout=TIMEOUT):
        """Wait for the program to exit by itself; returns its exit code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.cmd[0]} did not finish within {timeout}s\n"
                                 f"{self.output()}")
        for t in self.readers:
            t.join(TIMEOUT)
        return self.proc.returncode

    def stop(self, timeout=TIMEOUT):
        """Ask the program to stop (SIGTERM: Paho's samples disconnect cleanly on it)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                pass

    def output(self):
        with self.cv:
            return ("stdout:\n" + "\n".join(self.lines["out"]) +
                    "\nstderr:\n" + "\n".join(self.lines["err"]))

    def messages(self):
        """stdout without mosquitto_sub's -d lines and Paho's banners."""
        with self.cv:
            return [l for l in self.lines["out"]
                    if not DEBUG_LINE.match(l) and not PAHO_BANNER.match(l)]


_running = []


@pytest.fixture(autouse=True)
def _kill_clients():
    """No client outlives its test, whatever the test did."""
    yield
    while _running:
        _running.pop().kill()


def run(cmd, input=None, timeout=TIMEOUT):
    """Run a client to completion; fail the test on a non-zero exit."""
    try:
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, errors="replace",
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{cmd[0]} did not finish within {timeout}s: {e.stdout} {e.stderr}")
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


# ---- Mosquitto's clients

def mosquitto_sub(broker, topic, qos=0, version="311", count=1, fmt=None, extra=()):
    """Start mosquitto_sub -v -d -C count and return once it has its SUBACK."""
    cmd = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", version,
           "-t", topic, "-q", str(qos), "-C", str(count), "-W", str(TIMEOUT), "-d"]
    cmd += ["-F", fmt] if fmt else ["-v"]
    sub = Client(cmd + list(extra))
    sub.wait_for(r"^Subscribed \(mid")
    return sub


def mosquitto_pub(broker, topic, messages, qos=0, version="311", extra=()):
    """Publish each message over one connection (mosquitto_pub -l reads them from stdin)."""
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", version,
           "-t", topic, "-q", str(qos), "-l"] + list(extra)
    return run(cmd, input="".join(m + "\n" for m in messages))


def received_qos(sub):
    """The QoS of each PUBLISH mosquitto_sub received, from its -d lines."""
    return [int(m.group(1)) for l in sub.lines["out"]
            for m in [re.search(r"received PUBLISH \(d\d, q(\d)", l)] if m]


@pytest.mark.threaded
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", (0, 1, 2))
def test_mosquitto_clients(broker, version, qos):
    topic = unique("interop/mosq")
    sent = [f"message {i} at qos {qos}" for i in range(5)]
    sub = mosquitto_sub(broker, topic, qos=qos, version=version, count=len(sent))
    mosquitto_pub(broker, topic, sent, qos=qos, version=version)
    assert sub.finish() == 0, sub.output()
    assert sub.messages() == [f"{topic} {m}" for m in sent]
    assert received_qos(sub) == [qos] * len(sent)


@pytest.mark.threaded
@pytest.mark.parametrize("pub_version,sub_version", [("31", "5"), ("5", "31"), ("311", "5"),
                                                     ("5", "311")])
def test_mosquitto_clients_across_versions(broker, pub_version, sub_version):
    topic = unique("interop/cross")
    sent = ["one", "two", "three"]
    sub = mosquitto_sub(broker, topic, qos=2, version=sub_version, count=3)
    mosquitto_pub(broker, topic, sent, qos=2, version=pub_version)
    assert sub.finish() == 0, sub.output()
    assert sub.messages() == [f"{topic} {m}" for m in sent]


@pytest.mark.threaded
@pytest.mark.parametrize("pub_qos,sub_qos", [(2, 1), (2, 0), (1, 0), (0, 2), (1, 2)])
def test_delivered_at_lower_of_publish_and_subscription_qos(broker, pub_qos, sub_qos):
    # MQTT-3.8.4-8 (5.0: 3.8.4): the server delivers at the minimum of the two QoS levels.
    topic = unique("interop/downgrade")
    sub = mosquitto_sub(broker, topic, qos=sub_qos, version="5", count=2)
    mosquitto_pub(broker, topic, ["a", "b"], qos=pub_qos, version="311")
    assert sub.finish() == 0, sub.output()
    assert sub.messages() == [f"{topic} a", f"{topic} b"]
    assert received_qos(sub) == [min(pub_qos, sub_qos)] * 2


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_message_reaches_later_subscriber(broker, version):
    topic = unique("interop/retained")
    run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", version, "-t", topic,
         "-q", "1", "-r", "-m", "kept for later"])
    sub = mosquitto_sub(broker, topic, qos=1, version=version, count=1)
    assert sub.finish() == 0, sub.output()
    assert sub.messages() == [f"{topic} kept for later"]
    assert any(re.search(r"received PUBLISH \(d0, q1, r1,", l) for l in sub.lines["out"]), \
        "retained message delivered without the RETAIN flag:\n" + sub.output()


def test_retained_message_replaced_then_cleared(broker):
    topic = unique("interop/retained")
    base = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-t", topic, "-r"]
    run(base + ["-m", "first"])
    run(base + ["-q", "2", "-m", "second"])
    sub = mosquitto_sub(broker, topic, version="5", count=1)
    assert sub.finish() == 0, sub.output()
    assert sub.messages() == [f"{topic} second"]

    run(base + ["-n"])  # a zero-length retained message clears it
    cmd = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-t", topic, "-v",
           "-C", "1", "-W", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.stdout == "", f"cleared retained message still delivered: {r.stdout!r}"
    assert r.returncode != 0  # -W: timed out without a message


@pytest.mark.threaded
def test_mqtt5_properties_pass_through(broker):
    topic = unique("interop/props")
    sub = mosquitto_sub(broker, topic, qos=1, version="5", count=1, fmt="%t|%q|%C|%P|%p")
    mosquitto_pub(broker, topic, ["with properties"], qos=1, version="5",
                  extra=["-D", "publish", "user-property", "sensor", "kitchen",
                         "-D", "publish", "user-property", "unit", "celsius",
                         "-D", "publish", "content-type", "text/plain"])
    assert sub.finish() == 0, sub.output()
    assert sub.messages() == [f"{topic}|1|text/plain|sensor:kitchen unit:celsius|with properties"]


@pytest.mark.threaded
@pytest.mark.parametrize("qos", (0, 1, 2))
def test_large_payload(broker, tmp_path, qos):
    # 200 kB: a four-byte remaining length, many TCP segments each way.
    topic = unique("interop/large")
    payload = "".join(chr(ord("a") + i % 26) for i in range(200_000))
    f = tmp_path / "payload"
    f.write_text(payload)
    sub = mosquitto_sub(broker, topic, qos=qos, version="5", count=1)
    run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", "311", "-t", topic,
         "-q", str(qos), "-f", str(f)])
    assert sub.finish() == 0, sub.output()
    assert sub.messages() == [f"{topic} {payload}"]


@pytest.mark.threaded
def test_fan_out_to_many_subscribers_from_many_publishers(broker):
    topic = unique("interop/fan")
    subs = [mosquitto_sub(broker, topic + "/#", qos=q % 3, version=VERSIONS[q % 3], count=30)
            for q in range(6)]
    pubs = []
    for p in range(3):
        sent = [f"p{p} m{i}" for i in range(10)]
        cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port),
               "-V", VERSIONS[p], "-t", f"{topic}/{p}", "-q", str(p), "-l"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        pubs.append((proc, sent))
    for proc, sent in pubs:  # publishers run at the same time
        out, _ = proc.communicate("".join(m + "\n" for m in sent), timeout=TIMEOUT)
        assert proc.returncode == 0, out
    for sub in subs:
        assert sub.finish() == 0, sub.output()
        got = sub.messages()
        assert len(got) == 30, sub.output()
        for p in range(3):
            # per publisher, per topic: in order (MQTT-4.6.0-6 for QoS 1 and 2 streams)
            mine = [l for l in got if l.startswith(f"{topic}/{p} ")]
            assert mine == [f"{topic}/{p} p{p} m{i}" for i in range(10)], sub.output()


# ---- Paho's C clients

# Paho's samples print a banner before any message. For a wildcard subscription they print
# each message as "[LEN ]TOPIC\tPAYLOAD" (for a plain one the payload alone): the tests
# subscribe to TOPIC/# and publish to TOPIC/leaf so that the topic is checked too.
PAHO_BANNER = re.compile(r"^(URL is |Subscribing to topic |Connecting$|Connected$)")
PAHO_MESSAGE = re.compile(r"^(?:\d+ )?(\S+)\t(.*)$")


def paho_sub(broker, topic, qos, version, program="paho_c_sub"):
    """Start a Paho sample subscriber to topic/#; return once its trace shows the SUBACK."""
    cmd = [program, "-h", broker.host, "-p", str(broker.port), "-t", topic + "/#", "-q", str(qos),
           "-V", version, "-i", unique("paho-sub"), "--trace", "protocol"]
    sub = Client(cmd)
    sub.wait_for(r"<- SUBACK", stream="err")
    return sub


def paho_pub(broker, topic, message, qos, version, program="paho_c_pub"):
    run([program, "-h", broker.host, "-p", str(broker.port), "-t", topic, "-q", str(qos),
         "-V", version, "-i", unique("paho-pub"), "-m", message])


def paho_messages(sub, count):
    """Wait for count messages from a Paho subscriber, stop it, return (topic, payload)s."""
    deadline = time.monotonic() + TIMEOUT
    while len(sub.messages()) < count and time.monotonic() < deadline \
            and sub.proc.poll() is None:
        time.sleep(0.02)
    sub.stop()
    out = []
    for l in sub.messages():
        m = PAHO_MESSAGE.match(l)
        assert m, f"unexpected line from {sub.cmd[0]}: {l!r}\n{sub.output()}"
        out.append((m.group(1), m.group(2)))
    return out


@pytest.mark.threaded
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", (0, 1, 2))
def test_paho_async_clients(broker, qos, version):
    topic = unique("interop/paho")
    sub = paho_sub(broker, topic, qos, version)
    paho_pub(broker, topic + "/leaf", f"paho says hello at qos {qos}", qos, version)
    paho_pub(broker, topic + "/leaf", "and again", qos, version)
    assert paho_messages(sub, 2) == [(topic + "/leaf", f"paho says hello at qos {qos}"),
                                     (topic + "/leaf", "and again")]
    # QoS 1 and 2 deliveries are acknowledged by the subscriber as the protocol demands.
    ack = {0: None, 1: r"-> PUBACK", 2: r"-> PUBCOMP"}[qos]
    if ack:
        assert len([l for l in sub.lines["err"] if re.search(ack, l)]) == 2, sub.output()


@pytest.mark.threaded
@pytest.mark.parametrize("qos", (0, 1, 2))
def test_paho_sync_clients(broker, qos):
    topic = unique("interop/paho-sync")
    sub = paho_sub(broker, topic, qos, "311", program="paho_cs_sub")
    paho_pub(broker, topic + "/leaf", f"synchronous {qos}", qos, "5", program="paho_cs_pub")
    assert paho_messages(sub, 1) == [(topic + "/leaf", f"synchronous {qos}")]


@pytest.mark.threaded
@pytest.mark.parametrize("qos", (0, 1, 2))
def test_paho_publisher_to_mosquitto_subscriber(broker, qos):
    topic = unique("interop/p2m")
    sub = mosquitto_sub(broker, topic, qos=qos, version="5", count=1)
    paho_pub(broker, topic, "from paho", qos, "311")
    assert sub.finish() == 0, sub.output()
    assert sub.messages() == [f"{topic} from paho"]
    assert received_qos(sub) == [qos]


@pytest.mark.threaded
@pytest.mark.parametrize("qos", (0, 1, 2))
def test_mosquitto_publisher_to_paho_subscriber(broker, qos):
    topic = unique("interop/m2p")
    sub = paho_sub(broker, topic, qos, "5")
    mosquitto_pub(broker, topic + "/leaf", ["from mosquitto", "second"], qos=qos, version="31")
    assert paho_messages(sub, 2) == [(topic + "/leaf", "from mosquitto"),
                                     (topic + "/leaf", "second")]


def test_paho_retained(broker):
    topic = unique("interop/paho-retained")
    run(["paho_c_pub", "-h", broker.host, "-p", str(broker.port), "-t", topic + "/leaf",
         "-q", "1", "-r", "-i", unique("paho-pub"), "-m", "retained by paho"])
    sub = paho_sub(broker, topic, 1, "5")
    assert paho_messages(sub, 1) == [(topic + "/leaf", "retained by paho")]
    assert any("retained: 1" in l for l in sub.lines["err"]), sub.output()
