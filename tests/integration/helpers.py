"""Client helpers for the feature integration tests (test_qos.py, test_retain.py, ...).

`Client` wraps the real paho-mqtt client (3.1, 3.1.1 and 5.0) with bounded waits: connect and wait
for CONNACK, subscribe and wait for SUBACK, publish and wait for the flow to complete, collect
messages in a queue. `RawClient` speaks MQTT over a plain socket for what paho hides or does for
us: not acknowledging, DUP flags, PUBACK/DISCONNECT reason codes, packet ids. Every wait has a
timeout; nothing here blocks a test forever. `Sensor` runs midge-sensor in the background
(test_sensor.py, test_dashboard.py).
"""
import os
import queue
import socket
import struct
import subprocess
import threading
import time
from collections import namedtuple

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from conftest import MIDGE_BIN

V31, V311, V5 = mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5
TIMEOUT = 5.0  # upper bound of any wait for something that must happen

# MQTT control packet types (first nibble of the fixed header).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = (
    8, 9, 10, 11, 12, 13, 14, 15)

_open = []  # every client created by a test, closed by the `close_clients` fixture


@pytest.fixture(autouse=True)
def close_clients():
    """Autouse fixture (import it into a test module): close every client the test opened."""
    yield
    while _open:
        try:
            _open.pop().close()
        except Exception:  # noqa: BLE001 - teardown must reach every client
            pass


def props(packet_type, **values):
    """paho Properties for `packet_type` (PacketTypes.PUBLISH, ...): props(PUBLISH, ContentType="x").

    UserProperty takes a list of (name, value) pairs, kept in order.
    """
    p = Properties(packet_type)
    for name, value in values.items():
        if name == "UserProperty":
            for pair in value:
                p.UserProperty = pair
        else:
            setattr(p, name, value)
    return p


def wait_until(predicate, timeout=TIMEOUT, interval=0.01):
    """Poll `predicate` until it is true (returns True) or `timeout` passes (returns False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def user_props(p):
    """The user properties of a paho Properties (or None) as a list of pairs, in order."""
    return [tuple(x) for x in getattr(p, "UserProperty", [])] if p is not None else []


Message = namedtuple("Message", "topic payload qos retain dup props")


class Client:
    """A paho-mqtt client on its own network thread, with bounded waits.

    connack: (session_present, reason code as int, CONNACK Properties or None) once connected.
    The network thread never reconnects: a lost connection stays lost (see `disconnected`).
    """

    def __init__(self, broker, client_id="", protocol=V5, clean=True, keepalive=60,
                 properties=None, will=None, connect=True, timeout=TIMEOUT, transport="tcp",
                 port=None, ws_path="/mqtt", tls_ca=None):
        """transport="websockets" connects to `port` (a WebSocket listener) at ws_path;
        tls_ca (a CA file) adds TLS under it: MQTT over TLS or over secure WebSocket."""
        self.broker = broker
        self.port = port or broker.port
        self.protocol = protocol
        self.client_id = client_id
        self.clean = clean
        self.keepalive = keepalive
        self.messages = queue.Queue()
        self.connack = None
        self.disconnect_rc = None  # int, once the connection is gone
        self.disconnect_props = None
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self._subacks = {}
        self._unsubacks = {}
        self._stop = threading.Event()
        self._thread = None
        kw = {"client_id": client_id, "protocol": protocol, "transport": transport}
        if protocol != V5:
            kw["clean_session"] = clean
        self._c = mqtt.Client(**kw)
        self._c.on_connect = self._on_connect
        self._c.on_message = self._on_message
        self._c.on_subscribe = self._on_subscribe
        self._c.on_unsubscribe = self._on_unsubscribe
        self._c.on_disconnect = self._on_disconnect
        self._c.max_queued_messages_set(0)  # 0: unlimited
        if transport == "websockets":
            self._c.ws_set_options(path=ws_path)
        if tls_ca:
            self._c.tls_set(ca_certs=tls_ca)
        if will:
            self._c.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                             will.get("retain", False), will.get("properties"))
        _open.append(self)
        if connect:
            rc = self.connect(properties=properties, timeout=timeout)
            assert rc is not None, f"client {client_id!r}: no CONNACK within {timeout}s"

    # paho callbacks: v3 and v5 differ in arity, hence *args.
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        code = rc.value if hasattr(rc, "value") else rc
        if self.protocol == V5:
            # paho 1.6 ignores the server's Receive Maximum (MQTT-3.3.4-7); honour it here
            self._c.max_inflight_messages_set(getattr(properties, "ReceiveMaximum", 65535))
        self.connack = (int(flags.get("session present", 0)), code, properties)
        self._connected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(Message(msg.topic, msg.payload, msg.qos, int(msg.retain), int(msg.dup),
                                  getattr(msg, "properties", None)))

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        self._subacks[mid] = [g.value if hasattr(g, "value") else g for g in granted]

    def _on_unsubscribe(self, client, userdata, mid, *args):
        codes = None
        if len(args) >= 2 and args[1] is not None:
            rcs = args[1] if isinstance(args[1], list) else [args[1]]
            codes = [r.value if hasattr(r, "value") else r for r in rcs]
        self._unsubacks[mid] = codes

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.disconnect_rc = rc.value if hasattr(rc, "value") else rc
        self.disconnect_props = properties
        self._disconnected.set()

    def _run(self):
        while not self._stop.is_set():
            if self._c.loop(timeout=0.02) != mqtt.MQTT_ERR_SUCCESS:
                break

    def connect(self, properties=None, timeout=TIMEOUT):
        """Connect and wait for CONNACK; returns the reason code (int), or None without CONNACK."""
        self._connected.clear()
        self._disconnected.clear()
        kw = {}
        if self.protocol == V5:
            kw = {"clean_start": self.clean, "properties": properties}
        self._c.connect(self.broker.host, self.port, self.keepalive, **kw)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        # paho 1.6 writes from the publishing thread itself when it believes no loop thread
        # runs (its _thread is None); with ours also writing, two threads pop packets and
        # send them in either order, and QoS 0 messages arrive out of order. Telling paho
        # about our thread makes publish() only queue, and our loop thread write.
        self._c._thread = self._thread
        self._thread.start()
        if not self._wait_either(self._connected, timeout):
            return None
        return self.connack[1]

    def _wait_either(self, event, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if event.is_set():
                return True
            if self._disconnected.is_set() or not self._thread.is_alive():
                return event.is_set()
            time.sleep(0.005)
        return event.is_set()

    @property
    def session_present(self):
        return self.connack[0]

    @property
    def connack_props(self):
        return self.connack[2]

    def subscribe(self, topic, qos=0, no_local=False, retain_as_published=False,
                  retain_handling=0, properties=None, timeout=TIMEOUT):
        """Subscribe one filter; returns the SUBACK codes (list of int: granted QoS or reason)."""
        if self.protocol == V5:
            opts = SubscribeOptions(qos=qos, noLocal=no_local,
                                    retainAsPublished=retain_as_published,
                                    retainHandling=retain_handling)
            rc, mid = self._c.subscribe(topic, options=opts, properties=properties)
        else:
            rc, mid = self._c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe not sent: {rc}"
        assert wait_until(lambda: mid in self._subacks, timeout), f"no SUBACK for {topic}"
        return self._subacks.pop(mid)

    def unsubscribe(self, topic, timeout=TIMEOUT):
        rc, mid = self._c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        assert wait_until(lambda: mid in self._unsubacks, timeout), f"no UNSUBACK for {topic}"
        return self._unsubacks.pop(mid)

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, wait=True,
                timeout=TIMEOUT):
        """Publish; with `wait`, wait until the QoS flow is complete (PUBACK / PUBCOMP)."""
        info = self._c.publish(topic, payload, qos, retain, properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish not sent: {info.rc}"
        if wait and qos > 0:
            info.wait_for_publish(timeout)
            assert info.is_published(), f"no acknowledgement for QoS {qos} publish to {topic}"
        return info

    def expect_message(self, timeout=TIMEOUT):
        """The next received message; fails the test if none arrives within `timeout`."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"client {self.client_id!r}: no message within {timeout}s")

    def expect_messages(self, n, timeout=TIMEOUT):
        """Exactly the next `n` messages (the deadline covers them all)."""
        deadline = time.monotonic() + timeout
        out = []
        for _ in range(n):
            out.append(self.expect_message(max(0.0, deadline - time.monotonic())))
        return out

    def expect_no_message(self, duration=0.5):
        """Fail if a message arrives within `duration` seconds."""
        try:
            m = self.messages.get(timeout=duration)
        except queue.Empty:
            return
        pytest.fail(f"client {self.client_id!r}: unexpected message {m}")

    def drain(self, duration=0.2):
        """All messages that arrive within `duration` seconds."""
        out = []
        deadline = time.monotonic() + duration
        while True:
            try:
                out.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                return out

    def wait_disconnected(self, timeout=TIMEOUT):
        """True if the connection is (or becomes) closed within `timeout`."""
        return self._disconnected.wait(timeout)

    @property
    def connected(self):
        return self._connected.is_set() and not self._disconnected.is_set()

    def _stop_thread(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self._c._thread = None

    def disconnect(self, reason=None, properties=None, timeout=TIMEOUT):
        """Send DISCONNECT (v5: with reason code `reason`, an int) and wait for the close."""
        kw = {}
        if reason is not None:
            from paho.mqtt.reasoncodes import ReasonCodes
            rc = ReasonCodes(PacketTypes.DISCONNECT)
            rc.value = reason
            kw["reasoncode"] = rc
        if properties is not None:
            kw["properties"] = properties
        self._c.disconnect(**kw)
        self._disconnected.wait(timeout)
        self._stop_thread()

    def drop(self):
        """Lose the connection abnormally: close the socket without DISCONNECT."""
        self._stop_thread()
        sock = self._c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def freeze(self):
        """Stop the network thread but keep the socket open: no more PINGREQ, nothing read."""
        self._stop_thread()

    def close(self):
        self._stop_thread()
        sock = self._c.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


# --------------------------------------------------------------------------------------------
# Raw client

class Closed(Exception):
    """The broker closed the connection."""


def _vbi(n):
    out = bytearray()
    while True:
        d = n % 128
        n //= 128
        out.append(d | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


_PROP_TYPES = {CONNACK: PacketTypes.CONNACK, PUBLISH: PacketTypes.PUBLISH,
               PUBACK: PacketTypes.PUBACK, PUBREC: PacketTypes.PUBREC,
               PUBREL: PacketTypes.PUBREL, PUBCOMP: PacketTypes.PUBCOMP,
               SUBACK: PacketTypes.SUBACK, UNSUBACK: PacketTypes.UNSUBACK,
               DISCONNECT: PacketTypes.DISCONNECT, AUTH: PacketTypes.AUTH}


class Packet:
    """A received packet, decoded by type: .type, .flags, .body and, where they exist, .pid,
    .rc (reason code / return code), .props (paho Properties or None), .codes (SUBACK),
    .topic/.payload/.qos/.dup/.retain (PUBLISH), .session_present (CONNACK)."""

    def __init__(self, ptype, flags, body, version):
        self.type, self.flags, self.body = ptype, flags, body
        self.pid = self.rc = self.props = None
        v5 = version == 5
        pt = _PROP_TYPES.get(ptype)

        def read_props(off):
            if not v5:
                return off
            p = Properties(pt)
            _, n = p.unpack(body[off:])
            self.props = p
            return off + n

        if ptype == CONNACK:
            self.session_present = body[0] & 1
            self.rc = body[1]
            read_props(2)
        elif ptype == PUBLISH:
            self.qos = (flags >> 1) & 3
            self.dup = (flags >> 3) & 1
            self.retain = flags & 1
            tlen = struct.unpack("!H", body[:2])[0]
            self.topic = body[2:2 + tlen].decode()
            off = 2 + tlen
            if self.qos:
                self.pid = struct.unpack("!H", body[off:off + 2])[0]
                off += 2
            off = read_props(off)
            self.payload = bytes(body[off:])
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, SUBACK):
            self.pid = struct.unpack("!H", body[:2])[0]
            if ptype in (SUBACK, UNSUBACK):
                off = read_props(2)
                self.codes = list(body[off:])
            else:
                self.rc = body[2] if len(body) > 2 else 0
                if len(body) > 3:
                    read_props(3)
        elif ptype in (DISCONNECT, AUTH):
            self.rc = body[0] if body else 0
            if len(body) > 1:
                read_props(1)

    def __repr__(self):
        fields = {k: v for k, v in vars(self).items() if k != "body" and v is not None}
        return f"Packet({fields})"


class RawClient:
    """MQTT over a plain socket: sends exactly what the test says, acknowledges nothing by itself."""

    def __init__(self, broker, version=5):
        self.version = version  # 3 (MQTT 3.1), 4 (3.1.1) or 5
        self.sock = socket.create_connection((broker.host, broker.port), TIMEOUT)
        self.buf = bytearray()
        self.next_pid = 1
        _open.append(self)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_packet(self, first_byte, body):
        self.sock.sendall(bytes([first_byte]) + _vbi(len(body)) + bytes(body))

    def _props(self, p):
        if self.version != 5:
            return b""
        return p.pack() if p is not None else b"\x00"

    def pid(self):
        p = self.next_pid
        self.next_pid = p % 65535 + 1
        return p

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionError as e:
            raise Closed(str(e)) from e
        if not data:
            raise Closed("connection closed by the broker")
        self.buf += data
        return True

    def recv(self, timeout=TIMEOUT):
        """The next packet, or None if nothing complete arrives within `timeout`; raises Closed."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                n, mult, i = 0, 1, 1
                complete_header = False
                while i < len(self.buf) and i <= 4:
                    n += (self.buf[i] & 0x7F) * mult
                    mult *= 128
                    if not self.buf[i] & 0x80:
                        complete_header = True
                        break
                    i += 1
                if complete_header and len(self.buf) >= i + 1 + n:
                    first = self.buf[0]
                    body = bytes(self.buf[i + 1:i + 1 + n])
                    del self.buf[:i + 1 + n]
                    return Packet(first >> 4, first & 0x0F, body, self.version)
            if not self._fill(deadline):
                return None

    def expect(self, ptype, timeout=TIMEOUT):
        """The next packet, which must be of type `ptype`."""
        p = self.recv(timeout)
        assert p is not None, f"expected packet type {ptype}, got nothing within {timeout}s"
        assert p.type == ptype, f"expected packet type {ptype}, got {p}"
        return p

    def expect_nothing(self, duration=0.5):
        p = self.recv(duration)
        assert p is None, f"unexpected packet {p}"

    def expect_closed(self, timeout=TIMEOUT):
        """Read until the broker closes; returns the packets received before the close."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                p = self.recv(max(0.0, deadline - time.monotonic()))
            except Closed:
                return got
            if p is None:
                pytest.fail(f"connection still open after {timeout}s (received {got})")
            got.append(p)

    def connect(self, client_id="", clean=True, keepalive=60, properties=None, will=None,
                username=None, password=None, timeout=TIMEOUT, wait=True):
        """Send CONNECT; returns the CONNACK Packet (or None with wait=False).

        will: dict(topic=, payload=, qos=, retain=, properties=).
        """
        name = b"MQIsdp" if self.version == 3 else b"MQTT"
        flags = 0x02 if clean else 0
        payload = _str(client_id)
        if will:
            flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
            payload += self._props(will.get("properties")) + _str(will["topic"])
            payload += _str(will.get("payload", b""))
        if username is not None:
            flags |= 0x80
            payload += _str(username)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
        body = _str(name) + bytes([self.version, flags]) + struct.pack("!H", keepalive)
        body += self._props(properties) + payload
        self.send_packet(CONNECT << 4, body)
        if wait:
            return self.expect(CONNACK, timeout)
        return None

    def subscribe(self, topic, qos=0, no_local=False, retain_as_published=False,
                  retain_handling=0, properties=None, timeout=TIMEOUT):
        """Subscribe one filter and return the SUBACK Packet (.codes)."""
        pid = self.pid()
        opts = qos | (4 if no_local else 0) | (8 if retain_as_published else 0) | (
            retain_handling << 4)
        body = struct.pack("!H", pid) + self._props(properties) + _str(topic) + bytes([opts])
        self.send_packet((SUBSCRIBE << 4) | 2, body)
        p = self.expect(SUBACK, timeout)
        assert p.pid == pid
        return p

    def publish(self, topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
                properties=None):
        """Send PUBLISH (no waiting); returns the packet id used (None at QoS 0)."""
        if isinstance(payload, str):
            payload = payload.encode()
        if qos and pid is None:
            pid = self.pid()
        body = _str(topic) + (struct.pack("!H", pid) if qos else b"")
        body += self._props(properties) + payload
        flags = (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
        self.send_packet((PUBLISH << 4) | flags, body)
        return pid

    def _ack(self, ptype, flags, pid, rc=None):
        body = struct.pack("!H", pid)
        if rc is not None:
            body += bytes([rc])
        self.send_packet((ptype << 4) | flags, body)

    def puback(self, pid, rc=None):
        self._ack(PUBACK, 0, pid, rc)

    def pubrec(self, pid, rc=None):
        self._ack(PUBREC, 0, pid, rc)

    def pubrel(self, pid, rc=None):
        self._ack(PUBREL, 2, pid, rc)

    def pubcomp(self, pid, rc=None):
        self._ack(PUBCOMP, 0, pid, rc)

    def disconnect(self, rc=None, properties=None):
        body = b""
        if self.version == 5 and (rc is not None or properties is not None):
            body = bytes([rc or 0]) + (properties.pack() if properties is not None else b"")
        self.send_packet(DISCONNECT << 4, body)


# ---- midge-sensor as a background process (test_sensor.py, test_dashboard.py)

SENSOR = os.path.join(os.path.dirname(os.path.abspath(MIDGE_BIN)), "midge-sensor")
SAN_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
             "WARNING: ThreadSanitizer")


def check_stderr(err):
    """No sanitizer report in a tool's stderr."""
    for mark in SAN_MARKS:
        assert mark not in err, err


class Sensor:
    """midge-sensor as a background process; stdout goes to `stdout` (a file, or nowhere),
    stderr is kept and checked for sanitizer reports when it ends."""

    def __init__(self, broker, *args, stdout=subprocess.DEVNULL):
        self.p = subprocess.Popen([SENSOR, "-p", str(broker.port), *args],
                                  stdout=stdout, stderr=subprocess.PIPE)

    @property
    def pid(self):
        return self.p.pid

    def signal(self, sig):
        self.p.send_signal(sig)

    def wait(self, timeout=10):
        rc = self.p.wait(timeout)
        err = self.p.stderr.read().decode()
        check_stderr(err)
        return rc, err

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        return self.wait()
