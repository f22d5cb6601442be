"""The ESP32 example (examples/esp32/) on the host: its device logic and socket transport,
built as build*/examples/esp32_device (CMakeLists.txt), against the real broker.

The program runs examples/esp32/main/device.c, transport_sockets.c and src/device/ (the
sensor model, payloads and offline buffer midge-sensor also runs), the files the ESP32
builds, with host/host_main.c in place of app_main. A paho-mqtt subscriber checks what a
PC watching the device sees: the retained "online" status, the QoS 1 readings in
midge-sensor's JSON schema, and after SIGKILL (a device losing power) the will "offline",
retained.
"""
import calendar
import os
import re
import select
import signal
import subprocess
import time

import pytest

from conftest import MIDGE_BIN, USE_MOSQUITTO, Broker
from helpers import V5, Client, close_clients  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build") if USE_MOSQUITTO else os.path.dirname(
    os.path.abspath(MIDGE_BIN))
DEVICE = os.path.join(BUILD, "examples", "esp32_device")

pytestmark = pytest.mark.skipif(not os.access(DEVICE, os.X_OK),
                                reason=f"ESP32 example host build missing: {DEVICE}")

SAN_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


READING = re.compile(r'^\{"device":"(?P<dev>[^"]+)","ts":"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:'
                     r'\d\d\.\d{3}Z)","temperature_c":(?P<t>-?\d+\.\d),"humidity_pct":'
                     r'(?P<h>\d+\.\d),"seq":(?P<seq>\d+)\}$')
ERROR = re.compile(r'^\{"device":"(?P<dev>[^"]+)","ts":"[^"]+","error":"[^"]+","seq":(?P<seq>\d+)\}$')


def sample(m, dev_id, t0):
    """A reading (or failed read) in midge-sensor's schema, taken after t0: its seq."""
    text = m.payload.decode()
    if m.topic == f"sensors/{dev_id}/error":
        e = ERROR.match(text)
        assert e and e["dev"] == dev_id, text
        return int(e["seq"])
    assert m.topic == f"sensors/{dev_id}/reading", m.topic
    r = READING.match(text)
    assert r and r["dev"] == dev_id, text
    assert 10 <= float(r["t"]) <= 35 and 15 <= float(r["h"]) <= 85, text
    ts = calendar.timegm(time.strptime(r["ts"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert t0 - 2 <= ts <= time.time() + 1, (r["ts"], t0)
    return int(r["seq"])


class Device:
    """The example's device as a process; its stdout is one line per device event."""

    def __init__(self, broker, dev_id, interval_ms, count, seed=1):
        self.p = subprocess.Popen(
            [DEVICE, broker.host, str(broker.port), dev_id, str(interval_ms), str(count),
             str(seed)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self.buf = b""
        self.lines = []

    def _read_until(self, seen, what, timeout):
        """Read event lines until seen() holds (bounded)."""
        fd = self.p.stdout.fileno()
        while not seen():
            r, _, _ = select.select([fd], [], [], timeout)
            assert r, f"no {what} from the device within {timeout}s: {self.lines}"
            chunk = os.read(fd, 4096)
            assert chunk, f"device exited ({self.p.wait(5)}) before {what}: {self.lines}"
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            self.lines += [x.decode() for x in done]

    def expect(self, line, timeout=10):
        """Read event lines until `line` comes; a line ending in a space matches as a
        prefix ("disconnected ")."""
        self._read_until(lambda: any(x == line or (line.endswith(" ") and x.startswith(line))
                                     for x in self.lines), repr(line), timeout)

    def expect_sample(self, seq, timeout=10):
        """Wait until the device has taken sample seq (a reading or a failed read)."""
        self._read_until(lambda: f"reading {seq}" in self.lines or
                         f"failed-read {seq}" in self.lines, f"sample {seq}", timeout)

    def kill(self):
        """SIGKILL: the socket closes without DISCONNECT, as when a device loses power."""
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(5)
        err = self.p.stderr.read().decode()
        for mark in SAN_MARKS:
            assert mark not in err, err
        return err


def test_readings_status_and_will(broker):
    watcher = Client(broker, "pc-watcher", protocol=V5)
    watcher.subscribe("sensors/dev1/#", qos=1)

    t0 = time.time()
    dev = Device(broker, "dev1", 100, 3)
    try:
        dev.expect("connected 1")
        dev.expect("status-acked 1")
        dev.expect("acked 3")  # every reading acknowledged by the broker (QoS 1)

        got = watcher.expect_messages(4)
        assert (got[0].topic, got[0].payload, got[0].qos) == ("sensors/dev1/status", b"online", 1)
        assert [sample(m, "dev1", t0) for m in got[1:]] == [1, 2, 3]
        assert all(m.qos == 1 and not m.retain for m in got[1:])
        watcher.expect_no_message(0.4)  # max_readings 3: no fourth reading

        # The status is retained: a PC that starts watching now still learns it.
        late = Client(broker, "pc-late", protocol=V5)
        late.subscribe("sensors/dev1/status", qos=1)
        m = late.expect_message()
        assert (m.topic, m.payload, m.qos, m.retain) == ("sensors/dev1/status", b"online", 1,
                                                         True)
        late.close()
    finally:
        err = dev.kill()

    # The will: "offline", published by the broker once the connection is gone.
    m = watcher.expect_message()
    assert (m.topic, m.payload, m.qos) == ("sensors/dev1/status", b"offline", 1), err
    watcher.expect_no_message(0.3)
    # ... and retained, replacing "online".
    later = Client(broker, "pc-later", protocol=V5)
    later.subscribe("sensors/dev1/status", qos=1)
    m = later.expect_message()
    assert (m.topic, m.payload, m.qos, m.retain) == ("sensors/dev1/status", b"offline", 1, True)
    later.expect_no_message(0.3)


def ts_ms(m):
    """The sample's own timestamp ("ts"), in milliseconds since the epoch."""
    ts = re.search(rb'"ts":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z"', m.payload)
    assert ts, m.payload
    return calendar.timegm(time.strptime(ts[1].decode(), "%Y-%m-%dT%H:%M:%S")) * 1000 + int(ts[2])


def test_device_reconnects_and_announces_itself_again(broker_factory):
    """The broker goes away and comes back on the same port: the device reconnects on its
    own (libmidge's backoff) and publishes "online" again. The readings taken meanwhile
    (one every 100 ms, up to DEVICE_BUFFER of them) come first, in order, with the time
    they were taken, and the live ones follow without a gap."""
    b1 = Broker()  # not from the factory: it is stopped on purpose
    t0 = time.time()
    dev = Device(b1, "dev2", 100, 0)
    try:
        dev.expect("connected 1")
        dev.expect("acked 2")
        assert b1.alive()
        b1.stop()
        dev.expect("disconnected ")  # lost, or the broker's 5.0 DISCONNECT reason
        taken = max(int(x.split()[1]) for x in dev.lines if x.startswith(("reading ",
                                                                          "failed-read ")))
        for seq in range(taken + 1, taken + 4):  # three more taken offline
            dev.expect_sample(seq)
        b2 = broker_factory(port=b1.port)
        watcher = Client(b2, "pc-watcher2", protocol=V5)
        watcher.subscribe("sensors/dev2/#", qos=1)
        up_ms = time.time() * 1000
        dev.expect("connected 2", timeout=15)
        m = watcher.expect_message(timeout=10)
        # The retained "online" (it may come first from the retained store or live).
        assert (m.topic, m.payload) == ("sensors/dev2/status", b"online")
        got = watcher.expect_messages(12, timeout=10)
        seqs = [sample(m, "dev2", t0) for m in got]
        assert seqs == list(range(seqs[0], seqs[0] + 12)), seqs
        assert seqs[0] > 2  # the two acknowledged before the outage are not sent again
        assert ts_ms(got[0]) < up_ms, "the first reading sent was not one taken offline"
        assert [ts_ms(m) for m in got] == sorted(ts_ms(m) for m in got)
    finally:
        dev.kill()
        b1.stop()


def test_device_logic_calls_only_libmidge_and_string_functions():
    """device.c does no I/O of its own: the only functions it calls are libmidge's public
    API (which reaches the network through the transport it is given), the device module
    (sensor_*, freestanding) and a few string functions. Checked on the object file the
    host build compiled."""
    obj = os.path.join(BUILD, "CMakeFiles", "esp32-device-host.dir", "examples", "esp32",
                       "main", "device.c.o")
    if not os.path.exists(obj):
        pytest.skip(f"no object file at {obj}")
    out = subprocess.run(["nm", "-u", obj], capture_output=True, text=True, check=True)
    undefined = {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}
    allowed_libc = {"snprintf", "strlen", "strpbrk", "memcpy", "memset"}
    # Sanitizer and stack-protector builds add their own runtime symbols.
    runtime = {s for s in undefined if s.startswith(("__asan", "__ubsan", "__tsan", "__sanitizer",
                                                    "__stack_chk", "__sancov"))}
    others = undefined - runtime - allowed_libc
    assert others and all(s.startswith(("midge_", "sensor_")) for s in others), sorted(others)
