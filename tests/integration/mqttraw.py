"""A small raw-socket MQTT client for the protocol-conformance tests.

It builds any packet byte by byte (CONNECT for 3.1, 3.1.1 and 5.0 with properties, PUBLISH,
SUBSCRIBE with options, the acks, DISCONNECT, AUTH), including packets no real client would
send, and reads packets back with a timeout. Nothing here validates what it is asked to send:
that is the point. Every socket operation has a timeout, so a broker that stays silent makes
a test fail, never hang.
"""
import socket
import struct
import time

# Packet types (fixed header, high nibble), as in src/mqtt/mqtt.h.
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
DISCONNECT, AUTH = 14, 15

V31, V311, V5 = 3, 4, 5

# MQTT 5.0 reason codes used by the tests (section 2.4).
RC_SUCCESS = 0x00
RC_GRANTED_QOS1 = 0x01
RC_GRANTED_QOS2 = 0x02
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_CLIENT_ID_NOT_VALID = 0x85
RC_BAD_AUTH_METHOD = 0x8C
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_ID_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_PAYLOAD_FORMAT_INVALID = 0x99

# MQTT 5.0 property identifiers and their data types (section 2.2.2.2).
P_PAYLOAD_FORMAT = 0x01
P_MESSAGE_EXPIRY = 0x02
P_CONTENT_TYPE = 0x03
P_RESPONSE_TOPIC = 0x08
P_CORRELATION_DATA = 0x09
P_SUBSCRIPTION_ID = 0x0B
P_SESSION_EXPIRY = 0x11
P_ASSIGNED_CLIENT_ID = 0x12
P_SERVER_KEEP_ALIVE = 0x13
P_AUTH_METHOD = 0x15
P_AUTH_DATA = 0x16
P_REQUEST_PROBLEM_INFO = 0x17
P_WILL_DELAY = 0x18
P_REQUEST_RESPONSE_INFO = 0x19
P_RESPONSE_INFO = 0x1A
P_SERVER_REFERENCE = 0x1C
P_REASON_STRING = 0x1F
P_RECEIVE_MAXIMUM = 0x21
P_TOPIC_ALIAS_MAXIMUM = 0x22
P_TOPIC_ALIAS = 0x23
P_MAXIMUM_QOS = 0x24
P_RETAIN_AVAILABLE = 0x25
P_USER_PROPERTY = 0x26
P_MAXIMUM_PACKET_SIZE = 0x27
P_WILDCARD_SUB_AVAILABLE = 0x28
P_SUB_ID_AVAILABLE = 0x29
P_SHARED_SUB_AVAILABLE = 0x2A

BYTE, TWO, FOUR, VBI, STR, BIN, PAIR = "byte", "two", "four", "vbi", "str", "bin", "pair"
PROP_TYPES = {
    P_PAYLOAD_FORMAT: BYTE, P_MESSAGE_EXPIRY: FOUR, P_CONTENT_TYPE: STR,
    P_RESPONSE_TOPIC: STR, P_CORRELATION_DATA: BIN, P_SUBSCRIPTION_ID: VBI,
    P_SESSION_EXPIRY: FOUR, P_ASSIGNED_CLIENT_ID: STR, P_SERVER_KEEP_ALIVE: TWO,
    P_AUTH_METHOD: STR, P_AUTH_DATA: BIN, P_REQUEST_PROBLEM_INFO: BYTE,
    P_WILL_DELAY: FOUR, P_REQUEST_RESPONSE_INFO: BYTE, P_RESPONSE_INFO: STR,
    P_SERVER_REFERENCE: STR, P_REASON_STRING: STR, P_RECEIVE_MAXIMUM: TWO,
    P_TOPIC_ALIAS_MAXIMUM: TWO, P_TOPIC_ALIAS: TWO, P_MAXIMUM_QOS: BYTE,
    P_RETAIN_AVAILABLE: BYTE, P_USER_PROPERTY: PAIR, P_MAXIMUM_PACKET_SIZE: FOUR,
    P_WILDCARD_SUB_AVAILABLE: BYTE, P_SUB_ID_AVAILABLE: BYTE, P_SHARED_SUB_AVAILABLE: BYTE,
}
# Properties that may appear more than once; parse_props() returns them as lists.
REPEATABLE = (P_USER_PROPERTY, P_SUBSCRIPTION_ID)

# Success reason codes of a PUBACK/PUBREC from the broker: 0x10 No matching subscribers MAY be
# used instead of 0x00 when nobody subscribes (3.4.2.1); 3.1.1 acks carry no code (parsed as 0).
OK = (RC_SUCCESS, RC_NO_MATCHING_SUBSCRIBERS)


class Closed(AssertionError):
    """The broker closed the connection while a packet was expected."""


class Timeout(AssertionError):
    """No (complete) packet arrived within the timeout."""


# ---------------------------------------------------------------------------------------------
# Encoding

def vbi(n):
    """Variable byte integer in its shortest form (1.5.5)."""
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def b(s):
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def string(s):
    """UTF-8 string / binary data: 2-byte length then the bytes (str is encoded, bytes kept raw)."""
    data = b(s)
    return struct.pack("!H", len(data)) + data


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def prop(pid, value):
    """One property; the data type follows the identifier (unknown ids take raw bytes)."""
    kind = PROP_TYPES.get(pid)
    if kind is None or isinstance(value, (bytes, bytearray)) and kind not in (STR, BIN):
        return bytes([pid]) + bytes(value)
    if kind == BYTE:
        return bytes([pid, value])
    if kind == TWO:
        return bytes([pid]) + u16(value)
    if kind == FOUR:
        return bytes([pid]) + u32(value)
    if kind == VBI:
        return bytes([pid]) + vbi(value)
    if kind in (STR, BIN):
        return bytes([pid]) + string(value)
    k, v = value
    return bytes([pid]) + string(k) + string(v)


def props(items=()):
    """Property block: length (VBI) then the properties. items: list of (id, value) or raw bytes."""
    if isinstance(items, dict):
        items = list(items.items())
    if isinstance(items, (bytes, bytearray)):
        body = bytes(items)
    else:
        body = b"".join(prop(pid, v) for pid, v in items)
    return vbi(len(body)) + body


def packet(ptype, flags, body, remaining=None):
    """Fixed header + body; `remaining` overrides the encoded remaining-length bytes."""
    rl = vbi(len(body)) if remaining is None else bytes(remaining)
    return bytes([(ptype << 4) | (flags & 0x0F)]) + rl + bytes(body)


def connect(client_id="", version=V5, clean=True, keepalive=60, properties=(), will=None,
            username=None, password=None, proto_name=None, flags=None):
    """CONNECT. will = dict(topic, payload, qos=0, retain=False, properties=()).

    proto_name defaults to "MQTT" (or "MQIsdp" for level 3); `flags` overrides the connect flags
    byte as computed from the other arguments.
    """
    if proto_name is None:
        proto_name = "MQIsdp" if version == V31 else "MQTT"
    f = 0x02 if clean else 0
    if will is not None:
        f |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if password is not None:
        f |= 0x40
    if username is not None:
        f |= 0x80
    if flags is not None:
        f = flags
    vh = string(proto_name) + bytes([version, f]) + u16(keepalive)
    if version == V5:
        vh += props(properties)
    pl = string(client_id)
    if will is not None:
        if version == V5:
            pl += props(will.get("properties", ()))
        pl += string(will["topic"]) + string(will.get("payload", b""))
    if username is not None:
        pl += string(username)
    if password is not None:
        pl += string(password)
    return packet(CONNECT, 0, vh + pl)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, version=V5,
            properties=(), flags=None):
    """PUBLISH; pid defaults to 1 for QoS > 0; `flags` overrides the fixed-header flags."""
    f = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    if flags is not None:
        f = flags
    vh = string(topic)
    if pid is None and (f >> 1) & 3:
        pid = 1
    if pid is not None:
        vh += u16(pid)
    if version == V5:
        vh += props(properties)
    return packet(PUBLISH, f, vh + b(payload))


def sub_options(qos=0, no_local=False, rap=False, rh=0, reserved=0):
    return qos | (0x04 if no_local else 0) | (0x08 if rap else 0) | (rh << 4) | (reserved << 6)


def subscribe(pid, filters, version=V5, properties=(), flags=0x02):
    """SUBSCRIBE; filters: list of (filter, options byte) or plain filters (QoS 0)."""
    body = u16(pid)
    if version == V5:
        body += props(properties)
    for item in filters:
        filt, opts = (item, 0) if isinstance(item, (str, bytes)) else item
        body += string(filt) + bytes([opts])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(pid, filters, version=V5, properties=(), flags=0x02):
    body = u16(pid)
    if version == V5:
        body += props(properties)
    for filt in filters:
        body += string(filt)
    return packet(UNSUBSCRIBE, flags, body)


def ack(ptype, pid, rc=None, properties=None, flags=None):
    """PUBACK/PUBREC/PUBREL/PUBCOMP; rc (5.0) and properties are appended only when given."""
    body = u16(pid)
    if rc is not None:
        body += bytes([rc])
        if properties is not None:
            body += props(properties)
    if flags is None:
        flags = 0x02 if ptype == PUBREL else 0
    return packet(ptype, flags, body)


def puback(pid, rc=None, properties=None):
    return ack(PUBACK, pid, rc, properties)


def pubrec(pid, rc=None, properties=None):
    return ack(PUBREC, pid, rc, properties)


def pubrel(pid, rc=None, properties=None):
    return ack(PUBREL, pid, rc, properties)


def pubcomp(pid, rc=None, properties=None):
    return ack(PUBCOMP, pid, rc, properties)


def pingreq():
    return packet(PINGREQ, 0, b"")


def disconnect(rc=None, properties=None):
    """DISCONNECT; with no rc it is the 3.x / short 5.0 form (remaining length 0)."""
    body = b""
    if rc is not None:
        body += bytes([rc])
        if properties is not None:
            body += props(properties)
    return packet(DISCONNECT, 0, body)


def auth(rc=0x18, properties=()):
    return packet(AUTH, 0, bytes([rc]) + props(properties))


# ---------------------------------------------------------------------------------------------
# Decoding

def read_vbi(data, pos):
    """(value, new position); raises ValueError if malformed or truncated."""
    value, mult = 0, 1
    for i in range(4):
        if pos + i >= len(data):
            raise ValueError("truncated variable byte integer")
        byte = data[pos + i]
        value += (byte & 0x7F) * mult
        if not byte & 0x80:
            return value, pos + i + 1
        mult *= 128
    raise ValueError("variable byte integer longer than 4 bytes")


def read_string(data, pos):
    (n,) = struct.unpack_from("!H", data, pos)
    if pos + 2 + n > len(data):
        raise ValueError("string runs past the end")
    return bytes(data[pos + 2:pos + 2 + n]), pos + 2 + n


def parse_props(data, pos):
    """(dict id -> value, new position). Strings are str, binary data bytes, user properties a
    list of (key, value) pairs and subscription identifiers a list of ints."""
    length, pos = read_vbi(data, pos)
    end = pos + length
    out = {}
    while pos < end:
        pid = data[pos]
        pos += 1
        kind = PROP_TYPES[pid]
        if kind == BYTE:
            v, pos = data[pos], pos + 1
        elif kind == TWO:
            (v,), pos = struct.unpack_from("!H", data, pos), pos + 2
        elif kind == FOUR:
            (v,), pos = struct.unpack_from("!I", data, pos), pos + 4
        elif kind == VBI:
            v, pos = read_vbi(data, pos)
        elif kind == STR:
            raw, pos = read_string(data, pos)
            v = raw.decode("utf-8")
        elif kind == BIN:
            v, pos = read_string(data, pos)
        else:
            k, pos = read_string(data, pos)
            val, pos = read_string(data, pos)
            v = (k.decode("utf-8"), val.decode("utf-8"))
        if pid in REPEATABLE:
            out.setdefault(pid, []).append(v)
        else:
            assert pid not in out, f"property 0x{pid:02x} twice"
            out[pid] = v
    assert pos == end, "property block length mismatch"
    return out, end


class Connack:
    def __init__(self, body, version):
        assert len(body) >= 2, f"short CONNACK {body!r}"
        self.session_present = bool(body[0] & 1)
        self.rc = body[1]
        self.props = {}
        if version == V5 and len(body) > 2:
            self.props, end = parse_props(body, 2)
            assert end == len(body)
        elif version != V5:
            assert len(body) == 2, f"3.x CONNACK must be 2 bytes, got {body!r}"

    def __repr__(self):
        return f"Connack(sp={self.session_present}, rc=0x{self.rc:02x}, props={self.props})"


class Publish:
    def __init__(self, flags, body, version):
        self.dup = bool(flags & 0x08)
        self.qos = (flags >> 1) & 3
        self.retain = bool(flags & 1)
        raw, pos = read_string(body, 0)
        self.topic_bytes = raw
        self.topic = raw.decode("utf-8")
        self.pid = None
        if self.qos:
            (self.pid,) = struct.unpack_from("!H", body, pos)
            pos += 2
        self.props = {}
        if version == V5:
            self.props, pos = parse_props(body, pos)
        self.payload = bytes(body[pos:])

    @property
    def sub_ids(self):
        return self.props.get(P_SUBSCRIPTION_ID, [])

    def __repr__(self):
        return (f"Publish({self.topic!r}, {self.payload!r}, qos={self.qos}, retain={self.retain}, "
                f"dup={self.dup}, pid={self.pid}, props={self.props})")


def parse_suback(body, version):
    """(packet id, list of reason codes) of a SUBACK or UNSUBACK."""
    (pid,) = struct.unpack_from("!H", body, 0)
    pos = 2
    if version == V5:
        _, pos = parse_props(body, pos)
    return pid, list(body[pos:])


def parse_ack(body, version):
    """(packet id, reason code, properties) of PUBACK/PUBREC/PUBREL/PUBCOMP."""
    (pid,) = struct.unpack_from("!H", body, 0)
    rc, p = 0, {}
    if version == V5 and len(body) > 2:
        rc = body[2]
        if len(body) > 3:
            p, _ = parse_props(body, 3)
    else:
        assert len(body) == 2, f"ack with {len(body)} bytes"
    return pid, rc, p


def parse_disconnect(body):
    """(reason code, properties) of a 5.0 DISCONNECT."""
    if not body:
        return 0, {}
    p = {}
    if len(body) > 1:
        p, _ = parse_props(body, 1)
    return body[0], p


NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}


# ---------------------------------------------------------------------------------------------
# The client

class Client:
    """One TCP connection to the broker speaking raw MQTT.

    The high-level helpers (do_connect, sub, pub, expect_*) assume a well-behaved exchange and
    fail the test with a precise message otherwise; send() sends anything at all.
    """

    def __init__(self, broker, version=V5, timeout=5.0):
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection((broker.host, broker.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.next_pid = 1
        self.client_id = None
        self.stash = []  # PUBLISH packets received while waiting for an ack

    # -- raw I/O --

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(bytes(data))

    def try_send(self, data):
        """Send, ignoring a connection the broker already closed (returns False then)."""
        try:
            self.send(data)
            return True
        except OSError:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, deadline):
        """Read more bytes into the buffer; False on EOF. Raises Timeout at the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("timed out waiting for data") from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _complete(self):
        """Length of the first complete packet in the buffer, or None."""
        if len(self.buf) < 2:
            return None
        try:
            rl, pos = read_vbi(self.buf, 1)
        except ValueError as e:
            if "truncated" in str(e):
                return None
            raise
        return pos + rl if len(self.buf) >= pos + rl else None

    def recv_packet(self, timeout=None):
        """(type, flags, body) of the next packet. Raises Closed on EOF, Timeout after timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            n = self._complete()
            if n is not None:
                raw = bytes(self.buf[:n])
                del self.buf[:n]
                _, pos = read_vbi(raw, 1)
                return raw[0] >> 4, raw[0] & 0x0F, raw[pos:]
            if self.eof or not self._fill(deadline):
                raise Closed(f"connection closed (buffered {bytes(self.buf)!r})")

    def expect_closed(self, timeout=None):
        """Assert the broker closes the connection within timeout without sending anything more.

        Returns the elapsed time."""
        start = time.monotonic()
        deadline = start + (self.timeout if timeout is None else timeout)
        try:
            while not self.eof:
                if not self._fill(deadline):
                    break
        except Timeout:
            raise AssertionError(
                f"broker did not close the connection within {deadline - start:.1f}s"
                f" (received {bytes(self.buf)!r})") from None
        assert not self.buf, f"unexpected bytes before close: {bytes(self.buf)!r}"
        return time.monotonic() - start

    def expect_open(self, timeout=0.3):
        """Assert the connection is still open and silent: a PINGREQ is answered by PINGRESP."""
        self.send(pingreq())
        t, f, body = self.recv_packet(max(timeout, 2.0))
        assert (t, f, body) == (PINGRESP, 0, b""), f"expected PINGRESP, got {NAMES[t]} {body!r}"

    def expect_nothing(self, timeout=0.3):
        """Assert no packet arrives within timeout (the connection may stay open)."""
        assert not self.stash, f"unexpected PUBLISH {self.stash[0]!r}"
        try:
            t, f, body = self.recv_packet(timeout)
        except Timeout:
            return
        raise AssertionError(f"unexpected {NAMES.get(t, t)} flags={f} body={body!r}")

    def expect(self, ptype, timeout=None):
        """The next packet, which must be of type ptype: (flags, body).

        A PUBLISH that arrives while an acknowledgement is expected (a client subscribed to its
        own topic) is set aside for the next expect(PUBLISH)."""
        if ptype == PUBLISH and self.stash:
            return self.stash.pop(0)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            t, f, body = self.recv_packet(max(0.0, deadline - time.monotonic()))
            if t == PUBLISH and ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK,
                                          PINGRESP):
                self.stash.append((f, body))
                continue
            break
        assert t == ptype, f"expected {NAMES[ptype]}, got {NAMES.get(t, t)} {body!r}"
        return f, body

    # -- protocol helpers --

    def new_pid(self):
        pid = self.next_pid
        self.next_pid = self.next_pid % 65535 + 1
        return pid

    def do_connect(self, client_id="", clean=True, keepalive=60, properties=(), will=None,
                   expect_rc=0, **kw):
        """Send CONNECT and read the CONNACK; asserts its reason code. Returns Connack."""
        self.client_id = client_id
        self.send(connect(client_id, self.version, clean, keepalive, properties, will, **kw))
        ca = self.expect_connack()
        assert ca.rc == expect_rc, f"CONNACK rc 0x{ca.rc:02x}, expected 0x{expect_rc:02x}: {ca}"
        return ca

    def expect_connack(self, timeout=None):
        _, body = self.expect(CONNACK, timeout)
        return Connack(body, self.version)

    def sub(self, *filters, properties=(), expect=None):
        """SUBSCRIBE (filters as for subscribe()); returns the SUBACK reason codes.

        expect defaults to granting each filter its requested QoS."""
        pid = self.new_pid()
        self.send(subscribe(pid, filters, self.version, properties))
        _, body = self.expect(SUBACK)
        rpid, codes = parse_suback(body, self.version)
        assert rpid == pid
        if expect is None:
            expect = [0 if isinstance(x, (str, bytes)) else x[1] & 3 for x in filters]
        assert codes == list(expect), f"SUBACK {codes}, expected {expect}"
        return codes

    def unsub(self, *filters):
        pid = self.new_pid()
        self.send(unsubscribe(pid, filters, self.version))
        _, body = self.expect(UNSUBACK)
        return parse_suback(body, self.version)[1]

    def pub(self, topic, payload=b"", qos=0, retain=False, properties=(), expect_rc=OK):
        """PUBLISH and complete the QoS handshake from the sender's side. Returns pid.

        expect_rc: the PUBACK/PUBREC reason code(s) accepted; by default success or 0x10 No
        matching subscribers (which the broker MAY use, 3.4.2.1)."""
        pid = self.new_pid() if qos else None
        self.send(publish(topic, payload, qos, retain, pid=pid, version=self.version,
                          properties=properties))
        if qos == 0 and retain:
            # Nothing acknowledges a QoS 0 PUBLISH, and a multi-threaded broker may still be
            # routing it when another connection subscribes. A PINGREQ on this connection is
            # handled after it: its PINGRESP means the retained message is stored.
            self.send(pingreq())
            self.expect(PINGRESP)
        elif qos == 1:
            self.expect_ack(PUBACK, pid, expect_rc)
        elif qos == 2:
            self.expect_ack(PUBREC, pid, expect_rc)
            if max(expect_rc if isinstance(expect_rc, tuple) else (expect_rc,)) < 0x80:
                self.send(pubrel(pid))
                self.expect_ack(PUBCOMP, pid)
        return pid

    def expect_ack(self, ptype, pid, rc=0, timeout=None):
        """An ack of type ptype for pid; rc is the reason code or a tuple of accepted ones."""
        f, body = self.expect(ptype, timeout)
        assert f == (2 if ptype == PUBREL else 0), f"{NAMES[ptype]} flags {f}"
        rpid, rrc, _ = parse_ack(body, self.version)
        accepted = rc if isinstance(rc, tuple) else (rc,)
        assert rpid == pid and rrc in accepted, \
            f"{NAMES[ptype]} pid={rpid} rc=0x{rrc:02x}, expected pid={pid} rc in {accepted}"
        return rrc

    def recv_publish(self, timeout=None, ack=True):
        """The next packet, which must be a PUBLISH; acknowledges QoS 1 and 2 unless ack=False."""
        f, body = self.expect(PUBLISH, timeout)
        p = Publish(f, body, self.version)
        if ack and p.qos == 1:
            self.send(puback(p.pid))
        elif ack and p.qos == 2:
            self.send(pubrec(p.pid))
            self.expect_ack(PUBREL, p.pid)
            self.send(pubcomp(p.pid))
        return p

    def expect_disconnect(self, rc, timeout=None):
        """5.0: a DISCONNECT with reason rc, then the close. 3.x: just the close."""
        if self.version == V5:
            t, f, body = self.recv_packet(timeout)
            assert t == DISCONNECT, \
                f"expected DISCONNECT 0x{rc:02x}, got {NAMES.get(t, t)} {body!r}"
            got, _ = parse_disconnect(body)
            assert got == rc, f"DISCONNECT reason 0x{got:02x}, expected 0x{rc:02x}"
        self.expect_closed(timeout)

    def disconnect(self, rc=None, properties=None):
        self.try_send(disconnect(rc, properties))
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connected(broker, client_id="", version=V5, **kw):
    """A Client that has completed CONNECT/CONNACK successfully."""
    c = Client(broker, version)
    c.connack = c.do_connect(client_id, **kw)
    return c


# ---------------------------------------------------------------------------------------------
# The bystander: a well-behaved client that must not notice a misbehaving one.

class Bystander:
    """A well-behaved client exchanging QoS 1 messages with itself in a background thread.

    Used as `with Bystander(broker): <malformed case>`: on entry it has completed one round trip;
    on exit it completes at least one more round trip that started after the malformed case, then
    asserts that every message it published came back exactly once, in order, with the exact
    payload, and that the broker never closed or disconnected it.
    """

    _serial = 0

    def __init__(self, broker, version=V5, timeout=5.0):
        import threading
        Bystander._serial += 1
        self.tag = f"bystander-{id(self):x}-{Bystander._serial}"
        self.topic = f"checklist/{self.tag}"
        self.client = connected(broker, self.tag, version, keepalive=60)
        self.client.sub((self.topic, 1))
        self.timeout = timeout
        self.rounds = 0
        self.error = None
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=self.tag, daemon=True)

    def _round(self, i):
        c = self.client
        payload = f"{self.tag} #{i}".encode()
        pid = c.new_pid()
        c.send(publish(self.topic, payload, 1, pid=pid, version=c.version))
        got_ack = got_msg = False
        while not (got_ack and got_msg):
            t, f, body = c.recv_packet(self.timeout)
            if t == PUBACK:
                rpid, rc, _ = parse_ack(body, c.version)
                assert (rpid, rc) == (pid, 0) and not got_ack, f"bad PUBACK {body!r}"
                got_ack = True
            elif t == PUBLISH:
                p = Publish(f, body, c.version)
                assert (p.topic, p.payload, p.qos) == (self.topic, payload, 1) and not got_msg, \
                    f"bystander got {p!r}, expected {payload!r}"
                c.send(puback(p.pid))
                got_msg = True
            else:
                raise AssertionError(f"bystander got {NAMES.get(t, t)} {body!r}")

    def _run(self):
        i = 0
        try:
            while not self.stop.is_set():
                self._round(i)
                i += 1
                with self.cond:
                    self.rounds = i
                    self.cond.notify_all()
                self.stop.wait(0.02)
        except BaseException as e:  # reported by __exit__
            self.error = e
            with self.cond:
                self.cond.notify_all()

    def _wait_rounds(self, n):
        deadline = time.monotonic() + self.timeout * 2
        with self.cond:
            while self.rounds < n and self.error is None:
                left = deadline - time.monotonic()
                assert left > 0, f"bystander stalled after {self.rounds} round trips"
                self.cond.wait(left)
        if self.error is not None:
            raise AssertionError(f"bystander disturbed: {self.error!r}") from self.error

    def __enter__(self):
        self.thread.start()
        self._wait_rounds(1)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                # One full round trip that starts after the malformed case has finished.
                with self.cond:
                    target = self.rounds + 2
                self._wait_rounds(target)
        finally:
            self.stop.set()
            self.thread.join(self.timeout * 2)
            alive = self.thread.is_alive()
            self.client.disconnect()
        if exc_type is None:
            assert not alive, "bystander thread did not stop"
            if self.error is not None:
                raise AssertionError(f"bystander disturbed: {self.error!r}") from self.error
        return False


bystander = Bystander


def expect_connect_refused(c, rc=None, timeout=None):
    """The broker refuses a bad CONNECT and closes the connection.

    3.x: rc None means "closed without any CONNACK" (3.1.1 gives no return code for a malformed
    CONNECT); otherwise a 4-byte CONNACK with that return code, then the close.
    5.0: MQTT-3.1.4-1 and 4.13: the broker closes, and MAY first send a CONNACK with a reason
    code >= 0x80; if it does, that code must be exactly `rc`. It must never send DISCONNECT before
    CONNACK (MQTT-3.14.0-1) nor accept the connection.
    """
    try:
        t, f, body = c.recv_packet(timeout)
    except Closed:
        assert rc is None or c.version == V5, f"closed without CONNACK 0x{rc:02x}"
        return None
    assert t == CONNACK, f"expected CONNACK or close, got {NAMES.get(t, t)} {body!r}"
    if c.version != V5:
        assert len(body) == 2 and rc is not None and body[1] == rc, \
            f"3.x CONNACK {body.hex()}, expected return code {rc}"
    else:
        ca = Connack(body, V5)
        assert ca.rc == rc, f"CONNACK {ca}, expected reason 0x{rc:02x} or a plain close"
    c.expect_closed(timeout)
    return body
