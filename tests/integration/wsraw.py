"""A raw WebSocket client (RFC 6455) for the framing tests of test_websockets.py.

It writes the upgrade request and every frame byte by byte, so a test can send what no real
client would: unmasked frames, text frames, a message cut into fragments, a PUBLISH spread
over several messages. Received binary messages are joined into one byte stream from which
MQTT packets are read, as the broker must do. Every read has a timeout.
"""
import base64
import hashlib
import os
import socket
import struct
import time

from mqttraw import Closed, Timeout, read_vbi

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    """One frame; masked with a random key unless mask is False."""
    payload = bytes(payload)
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    m = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        head += key
    return head + payload


def read_http_response(sock, deadline):
    """(status code, {lower-case name: value}, bytes after the head, raw head) of a response."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(f"no complete HTTP head (got {buf!r})")
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise Timeout(f"no complete HTTP head (got {buf!r})") from None
        if not data:
            raise Closed(f"connection closed during the HTTP head (got {buf!r})")
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest, head.decode("latin-1")


def http_exchange(port, request, timeout=5.0):
    """Send raw request bytes; read the answer until the broker closes the connection.
    Returns (status, headers, body, raw head)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        deadline = time.monotonic() + timeout
        status, headers, body, head = read_http_response(s, deadline)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout("connection not closed after the HTTP answer")
            s.settimeout(remaining)
            try:
                data = s.recv(65536)
            except socket.timeout:
                raise Timeout("connection not closed after the HTTP answer") from None
            except ConnectionResetError:
                break
            if not data:
                break
            body += data
        return status, headers, body, head


def http_get(port, path, method="GET", headers=(), timeout=5.0):
    req = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    for h in headers:
        req += h + "\r\n"
    return http_exchange(port, (req + "\r\n").encode("latin-1"), timeout)


class WsClient:
    """One WebSocket connection. After upgrade(): send frames, read frames or MQTT packets."""

    def __init__(self, port, timeout=5.0):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""       # frame bytes not parsed yet
        self.stream = b""    # MQTT bytes of binary messages received
        self.partial = b""   # fragments of a binary message in progress
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def upgrade_request(self, protocols="mqtt", path="/mqtt", extra=(), key=None):
        key = key or base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        if protocols is not None:
            req += f"Sec-WebSocket-Protocol: {protocols}\r\n"
        for h in extra:
            req += h + "\r\n"
        return (req + "\r\n").encode(), key

    def upgrade(self, protocols="mqtt", path="/mqtt", extra=(), expect=101):
        """Send the upgrade request and read the answer; returns (status, headers)."""
        req, key = self.upgrade_request(protocols, path, extra)
        self.sock.sendall(req)
        status, headers, rest, head = read_http_response(self.sock,
                                                         time.monotonic() + self.timeout)
        assert status == expect, f"upgrade answered {status}, want {expect}:\n{head}"
        if status == 101:
            assert headers.get("sec-websocket-accept") == accept_for(key), head
            assert headers.get("upgrade", "").lower() == "websocket", head
        self.buf = rest
        return status, headers

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(bytes(data))

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        self.send(frame(opcode, payload, fin, mask, rsv))

    def send_mqtt(self, data):
        """MQTT bytes as one binary message."""
        self.send_frame(OP_BIN, data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout("timed out waiting for a frame")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("timed out waiting for a frame") from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise Closed(f"connection closed (unparsed {self.buf!r})")
        self.buf += data

    def recv_frame(self, timeout=None):
        """(fin, opcode, payload) of the next frame; the server must not mask (RFC 6455 5.1)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                assert not b1 & 0x80, "the server masked a frame"
                n, pos = b1 & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    (n,), pos = struct.unpack_from("!H", self.buf, 2), 4
                elif n == 127 and len(self.buf) >= 10:
                    (n,), pos = struct.unpack_from("!Q", self.buf, 2), 10
                if (b1 & 0x7F) < 126 or pos > 2:
                    if len(self.buf) >= pos + n:
                        payload = self.buf[pos:pos + n]
                        self.buf = self.buf[pos + n:]
                        return bool(b0 & 0x80), b0 & 0x0F, payload
            self._fill(deadline)

    def expect_close(self, code, timeout=None):
        """The next frames up to a close frame carry no data; the close has this code, and the
        broker then closes the TCP connection."""
        while True:
            fin, op, payload = self.recv_frame(timeout)
            if op == OP_CLOSE:
                break
            assert op != OP_BIN, f"binary frame {payload!r} before the expected close"
        got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        assert got == code, f"close code {got}, want {code}"
        self.expect_eof(timeout)

    def expect_eof(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            while True:
                self._fill(deadline)
        except Closed:
            return

    def recv_packet(self, timeout=None):
        """(type, flags, body) of the next MQTT packet from the binary messages."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.stream) >= 2:
                try:
                    rl, pos = read_vbi(self.stream, 1)
                except ValueError:
                    rl = None
                if rl is not None and len(self.stream) >= pos + rl:
                    raw, self.stream = self.stream[:pos + rl], self.stream[pos + rl:]
                    return raw[0] >> 4, raw[0] & 0x0F, raw[pos:]
            fin, op, payload = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if op in (OP_BIN, OP_CONT):
                self.partial += payload
                if fin:
                    self.stream += self.partial
                    self.partial = b""
            elif op == OP_CLOSE:
                raise Closed(f"close frame {payload!r}")
