"""MQTT over TLS (issue 5): the broker's TLS listener with the certificates of
scripts/gen-certs.sh, against real clients: paho-mqtt (3.1.1 and 5.0), mosquitto_pub and
mosquitto_sub, and Python's ssl module where a test needs the handshake's exact outcome.

Each test starts a broker whose file adds a TLS listener on a free port next to the plain
`-p` port of conftest's Broker (broker.tls_port). Refusals are checked from both sides: the
client gets no CONNACK, and the broker log names the client's address and the TLS reason.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections import namedtuple

import pytest

from conftest import ROOT, USE_MOSQUITTO, free_port
from helpers import TIMEOUT, V5, V311, Client, close_clients, wait_until  # noqa: F401
import mqttraw

GEN_CERTS = os.path.join(ROOT, "scripts", "gen-certs.sh")

Target = namedtuple("Target", "host port")


@pytest.fixture(scope="session")
def certs():
    """The directory of gen-certs.sh's files, made once per test session."""
    d = tempfile.mkdtemp(prefix="midge-certs-")
    subprocess.run([GEN_CERTS, d], check=True, timeout=60)
    if USE_MOSQUITTO:
        # mosquitto started as root reads them after switching to its own user.
        os.chmod(d, 0o755)
        for name in os.listdir(d):
            os.chmod(os.path.join(d, name), 0o755 if os.path.isdir(os.path.join(d, name))
                     else 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def tls_listener(certs, port, cafile=True, require_certificate=False, identity=False,
                 crlfile=False, tls_version=None, certfile=None, keyfile=None, capath=None,
                 extra=()):
    """The configuration lines of a TLS listener on 127.0.0.1:port."""
    lines = [
        f"listener {port} 127.0.0.1",
        f"certfile {certfile or os.path.join(certs, 'server.crt')}",
        f"keyfile {keyfile or os.path.join(certs, 'server.key')}",
    ]
    if cafile:
        lines.append(f"cafile {os.path.join(certs, 'ca.crt')}")
    if capath:
        lines.append(f"capath {capath}")
    lines.extend(extra)
    lines.append(f"require_certificate {'true' if require_certificate else 'false'}")
    if identity:
        lines.append("use_identity_as_username true")
    if crlfile:
        lines.append(f"crlfile {os.path.join(certs, 'crl.pem')}")
    if tls_version:
        lines.append(f"tls_version {tls_version}")
    lines.append("allow_anonymous true")
    return "\n".join(lines)


@pytest.fixture
def tls_broker(broker_factory, certs):
    """tls_broker(**listener options): a broker with a TLS listener at .tls_port."""
    def start(**opts):
        port = free_port()
        b = broker_factory(config=tls_listener(certs, port, **opts))
        # No probe of the TLS port: conftest waited for the -p port, and the broker opens
        # every listener before it accepts on any (a probe would log a refusal of its own).
        b.tls_port = port
        return b
    return start


def client_context(certs, ca="ca.crt", cert=None, max_version=None):
    """An ssl client context trusting `ca`, with the client certificate `cert` (a name of
    gen-certs.sh without extension: "client", "client-expired", ...), host name checked."""
    ctx = ssl.create_default_context(cafile=os.path.join(certs, ca))
    if cert:
        ctx.load_cert_chain(os.path.join(certs, cert + ".crt"), os.path.join(certs, cert + ".key"))
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def tls_client(broker, ctx, client_id, protocol=V5, connect=True):
    """helpers.Client (paho) over TLS to broker.tls_port."""
    c = Client(Target(broker.host, broker.tls_port), client_id=client_id, protocol=protocol,
               connect=False)
    c._c.tls_set_context(ctx)
    if connect:
        rc = c.connect()
        assert rc == 0, f"{client_id}: CONNACK {rc}"
    return c


def tls_socket(broker, ctx):
    """A TCP connection to the TLS port with the handshake done (raises ssl.SSLError)."""
    raw = socket.create_connection((broker.host, broker.tls_port), timeout=TIMEOUT)
    try:
        return ctx.wrap_socket(raw, server_hostname=broker.host)
    except BaseException:
        raw.close()
        raise


def mqtt_over(sock, client_id):
    """Send a 3.1.1 CONNECT on sock; returns the first packet type that comes back, or the
    exception that ended the connection (an ssl.SSLError for a TLS alert, or "eof")."""
    sock.settimeout(TIMEOUT)
    try:
        sock.sendall(mqttraw.connect(client_id, mqttraw.V311))
        data = sock.recv(4)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return e
    return data[0] >> 4 if data else "eof"


def expect_refused(broker, ctx, client_id, reason_in_log, alert=None):
    """A client with ctx gets no CONNACK; the broker logs its address and the reason."""
    port = None
    try:
        s = tls_socket(broker, ctx)
    except ssl.SSLError as e:  # refused during the client's half of the handshake
        outcome = e
    else:
        with s:
            port = s.getsockname()[1]
            outcome = mqtt_over(s, client_id)
    assert outcome != mqttraw.CONNACK, f"{client_id}: connected, expected a refusal"
    if alert and not USE_MOSQUITTO:  # mosquitto may close without the alert
        assert isinstance(outcome, ssl.SSLError) and alert in str(outcome), \
            f"{client_id}: expected alert {alert!r}, got {outcome!r}"
    if not USE_MOSQUITTO:
        expect_log_line(broker, reason_in_log, f"127.0.0.1:{port}" if port else "127.0.0.1:")


def expect_log_line(broker, *parts):
    """A line of the broker log holds every one of parts (within TIMEOUT)."""
    def found():
        return any(all(p in line for p in parts) for line in broker.log().splitlines())
    assert wait_until(found), f"no log line with {parts!r} in:\n{broker.log()}"


def round_trip(sub, pub, topic, payloads, qos=1):
    sub.subscribe(topic, qos)
    for p in payloads:
        pub.publish(topic, p, qos)
    got = sub.expect_messages(len(payloads))
    assert [(m.topic, m.payload) for m in got] == [(topic, p) for p in payloads]


PAYLOADS = [b"hello over TLS", b"", bytes(range(256)) * 400]  # the last: 100 KiB, many records


# ---- connecting, with and without a client certificate ---------------------------------

@pytest.mark.parametrize("protocol", [V311, V5], ids=["3.1.1", "5"])
def test_paho_over_tls_without_client_certificate(tls_broker, certs, protocol):
    b = tls_broker()
    ctx = client_context(certs)
    sub = tls_client(b, ctx, "tls-sub", protocol)
    pub = tls_client(b, ctx, "tls-pub", protocol)
    round_trip(sub, pub, "tls/plain", PAYLOADS)


@pytest.mark.parametrize("protocol", [V311, V5], ids=["3.1.1", "5"])
def test_paho_over_tls_with_client_certificate(tls_broker, certs, protocol):
    b = tls_broker(require_certificate=True, identity=True)
    ctx = client_context(certs, cert="client")
    sub = tls_client(b, ctx, "tls-cert-sub", protocol)
    pub = tls_client(b, ctx, "tls-cert-pub", protocol)
    round_trip(sub, pub, "tls/cert", PAYLOADS, qos=2)


def test_plain_and_tls_listeners_share_messages(tls_broker, certs):
    """The -p listener is plain TCP; a message crosses from it to a TLS subscriber."""
    b = tls_broker()
    sub = tls_client(b, client_context(certs), "tls-side")
    plain = Client(b, client_id="plain-side")
    round_trip(sub, plain, "tls/cross", [b"from plain TCP"])


def test_tls13_by_default_and_tls12_accepted(tls_broker, certs):
    b = tls_broker()
    with tls_socket(b, client_context(certs)) as s:
        assert s.version() == "TLSv1.3"
        assert mqtt_over(s, "v13") == mqttraw.CONNACK
    with tls_socket(b, client_context(certs, max_version=ssl.TLSVersion.TLSv1_2)) as s:
        assert s.version() == "TLSv1.2"
        assert mqtt_over(s, "v12") == mqttraw.CONNACK


def test_server_certificate_is_the_configured_one(tls_broker, certs):
    b = tls_broker()
    with tls_socket(b, client_context(certs)) as s:
        cert = s.getpeercert()
    assert dict(x[0] for x in cert["subject"])["commonName"] == "localhost"
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]


def test_ciphers_options_choose_the_cipher(tls_broker, certs):
    """ciphers (TLS 1.2) and ciphers_tls1.3 restrict what the broker negotiates."""
    b = tls_broker(extra=["ciphers ECDHE-ECDSA-AES256-GCM-SHA384",
                          "ciphers_tls1.3 TLS_CHACHA20_POLY1305_SHA256"])
    with tls_socket(b, client_context(certs)) as s:
        assert (s.version(), s.cipher()[0]) == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")
    with tls_socket(b, client_context(certs, max_version=ssl.TLSVersion.TLSv1_2)) as s:
        assert (s.version(), s.cipher()[0]) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
    only_other = client_context(certs, max_version=ssl.TLSVersion.TLSv1_2)
    only_other.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with pytest.raises(ssl.SSLError):
        tls_socket(b, only_other).close()


# A 3.1.1 CONNECT with an empty client id and clean session, and the CONNACK accepting it.
CONNECT_311 = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
CONNACK_311_OK = b"\x20\x02\x00\x00"


def s_client_connect(broker, certs, *flags, port=None):
    """Runs `openssl s_client -msg` against the TLS port (or `port`), sends CONNECT_311
    through it and waits for the CONNACK: everything the server sent before that (its
    tickets among it) has then been printed. Returns s_client's whole output."""
    port = port or broker.tls_port
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"{broker.host}:{port}",
                          "-CAfile", os.path.join(certs, "ca.crt"), "-servername", "localhost",
                          "-msg", *flags],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    try:
        os.set_blocking(p.stdout.fileno(), False)
        deadline = time.monotonic() + TIMEOUT
        sent = False
        while CONNACK_311_OK not in out:
            assert time.monotonic() < deadline, f"no CONNACK through s_client:\n{out!r}"
            chunk = p.stdout.read()
            if chunk:
                out += chunk
            elif p.poll() is not None:
                raise AssertionError(f"s_client ended early:\n{out.decode(errors='replace')}")
            else:
                time.sleep(0.02)
            if not sent and b"Verify return code: 0 (ok)" in out:
                p.stdin.write(CONNECT_311)
                p.stdin.flush()
                sent = True
    finally:
        p.kill()
        p.wait(TIMEOUT)
    return out.decode(errors="replace")


@pytest.mark.midge_only
def test_tls13_default_suites_tickets_and_resumption(tls_broker, certs, tmp_path):
    """Without ciphers_tls1.3 the broker picks TLS_AES_128_GCM_SHA256 (an OpenSSL client
    lists AES-256 first), gives way to a client that puts ChaCha20 first, and sends exactly
    one session ticket, with which the client resumes."""
    b = tls_broker()
    sess = str(tmp_path / "session.pem")
    out = s_client_connect(b, certs, "-sess_out", sess)
    assert "Cipher is TLS_AES_128_GCM_SHA256" in out
    assert out.count(", NewSessionTicket") == 1, out
    out = s_client_connect(b, certs, "-sess_in", sess)
    assert "Reused, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256" in out, out
    out = s_client_connect(b, certs, "-ciphersuites",
                           "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384")
    assert "Cipher is TLS_CHACHA20_POLY1305_SHA256" in out
    # Python's ssl (OpenSSL's default order) gets AES-128 too.
    with tls_socket(b, client_context(certs)) as s:
        assert (s.version(), s.cipher()[0]) == ("TLSv1.3", "TLS_AES_128_GCM_SHA256")


@pytest.mark.midge_only
def test_listeners_with_the_same_tls_options_share_their_session_tickets(
        broker_factory, certs, tmp_path):
    """Two TLS listeners with the same TLS options use one TLS context: a ticket from one resumes on the other. A listener with other TLS
    options has its own, and the ticket is not accepted there (a full handshake). Still so
    after a SIGHUP reload."""
    ports = [free_port() for _ in range(3)]
    b = broker_factory(config="\n".join([
        tls_listener(certs, ports[0]), tls_listener(certs, ports[1]),
        tls_listener(certs, ports[2], extra=["ciphers_tls1.3 TLS_AES_256_GCM_SHA384"])]))
    b.tls_port = ports[0]
    for reload in (False, True):
        if reload:
            b.proc.send_signal(signal.SIGHUP)
            expect_log_line(b, "Reloaded TLS certificates")
        sess = str(tmp_path / f"session-{reload}.pem")
        assert "New, TLSv1.3" in s_client_connect(b, certs, "-sess_out", sess)
        out = s_client_connect(b, certs, "-sess_in", sess, port=ports[1])
        assert "Reused, TLSv1.3" in out, out
        out = s_client_connect(b, certs, "-sess_in", sess, port=ports[2])
        assert "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" in out, out


@pytest.fixture
def shared_dir():
    """A fresh directory that a broker started as root can read after dropping privileges
    (mosquitto does; pytest's tmp_path is private to root)."""
    d = tempfile.mkdtemp(prefix="midge-tls-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_capath_verifies_client_certificates(tls_broker, certs, shared_dir):
    """capath: a directory of CA certificates named by hash (openssl rehash)."""
    shutil.copy(os.path.join(certs, "ca.crt"), os.path.join(shared_dir, "ca.pem"))
    os.chmod(os.path.join(shared_dir, "ca.pem"), 0o644)
    subprocess.run(["openssl", "rehash", shared_dir], check=True, capture_output=True,
                   timeout=30)
    b = tls_broker(cafile=False, capath=shared_dir, require_certificate=True)
    tls_client(b, client_context(certs, cert="client"), "capath-ok")
    expect_refused(b, client_context(certs, cert="other-client"), "capath-other",
                   "certificate verify failed (unable to get local issuer certificate)")


def test_mosquitto_clients_over_tls(tls_broker, certs, tmp_path):
    """mosquitto_sub --cafile receives what mosquitto_pub --cafile --cert --key sent."""
    b = tls_broker()
    ca = os.path.join(certs, "ca.crt")
    common = ["-h", "127.0.0.1", "-p", str(b.tls_port), "--cafile", ca, "-t", "tls/mosq",
              "-q", "1"]
    out_path = tmp_path / "sub.out"
    with open(out_path, "wb") as out:
        # stdbuf: line-buffered output, so the SUBACK line shows before the program exits
        sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", *common, "-C", "2", "-W", "10",
                                "-i", "mosq-sub", "-d"], stdout=out, stderr=subprocess.STDOUT)
    try:
        # -d prints "Client mosq-sub received SUBACK" once the subscription is in place.
        assert wait_until(lambda: b"received SUBACK" in out_path.read_bytes()
                          or sub.poll() is not None), "mosquitto_sub never subscribed"
        for msg in ("first over TLS", "second with a client certificate"):
            pub = subprocess.run(
                ["mosquitto_pub", *common, "-m", msg, "-i", "mosq-pub",
                 "--cert", os.path.join(certs, "client.crt"),
                 "--key", os.path.join(certs, "client.key")],
                capture_output=True, text=True, timeout=TIMEOUT)
            assert pub.returncode == 0, pub.stdout + pub.stderr
        sub.wait(TIMEOUT)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(5)
    text = out_path.read_text()
    assert sub.returncode == 0, text
    assert [ln for ln in text.splitlines() if not ln.startswith(("Client ", "Subscribed "))] == [
        "first over TLS", "second with a client certificate"]


# ---- refusals ----------------------------------------------------------------------------

def test_wrong_ca_refused_by_the_client(tls_broker, certs):
    """A client trusting another CA refuses the broker's certificate: no MQTT at all."""
    b = tls_broker()
    c = tls_client(b, client_context(certs, ca="other-ca.crt"), "wrong-ca", connect=False)
    with pytest.raises(ssl.SSLCertVerificationError) as e:
        c.connect()
    # "unable to get local issuer certificate", or "self-signed certificate in certificate
    # chain" when the server sends its CA along (OpenSSL builds the chain from its cafile).
    assert "certificate verify failed" in str(e.value)
    assert c.connack is None


def test_client_certificate_of_another_ca_refused(tls_broker, certs):
    b = tls_broker(require_certificate=True)
    expect_refused(b, client_context(certs, cert="other-client"), "other-client",
                   "certificate verify failed (unable to get local issuer certificate)")


def test_expired_client_certificate_refused(tls_broker, certs):
    b = tls_broker(require_certificate=True)
    expect_refused(b, client_context(certs, cert="client-expired"), "expired",
                   "certificate verify failed (certificate has expired)",
                   alert="CERTIFICATE_EXPIRED")


def test_revoked_client_certificate_refused(tls_broker, certs):
    b = tls_broker(require_certificate=True, crlfile=True)
    expect_refused(b, client_context(certs, cert="client-revoked"), "revoked",
                   "certificate verify failed (certificate revoked)",
                   alert="CERTIFICATE_REVOKED")
    # The CRL refuses only what it lists.
    tls_client(b, client_context(certs, cert="client"), "not-revoked")


@pytest.mark.midge_only
def test_optional_client_certificate_is_still_verified(tls_broker, certs):
    """Without require_certificate (and with a cafile) Midge asks for a certificate and lets a
    client without one in, but checks one that is sent: an expired one is refused. Mosquitto
    differs here: it does not ask at all (SSL_VERIFY_NONE), so it never sees the certificate."""
    b = tls_broker()
    tls_client(b, client_context(certs), "no-cert-is-fine")
    expect_refused(b, client_context(certs, cert="client-expired"), "expired-optional",
                   "certificate verify failed (certificate has expired)",
                   alert="CERTIFICATE_EXPIRED")


def test_require_certificate_refuses_client_without_one(tls_broker, certs):
    b = tls_broker(require_certificate=True)
    expect_refused(b, client_context(certs), "no-cert", "peer did not return a certificate",
                   alert="CERTIFICATE_REQUIRED")
    tls_client(b, client_context(certs, cert="client"), "with-cert")


def test_tls_version_tlsv13_refuses_a_tls12_client(tls_broker, certs):
    b = tls_broker(tls_version="tlsv1.3")
    expect_refused(b, client_context(certs, max_version=ssl.TLSVersion.TLSv1_2), "old-client",
                   "unsupported protocol", alert="PROTOCOL_VERSION")
    with tls_socket(b, client_context(certs)) as s:
        assert s.version() == "TLSv1.3"


@pytest.mark.midge_only
def test_plain_mqtt_on_tls_port_closed_without_disturbing_tls_client(tls_broker, certs):
    """A plain-TCP client on the TLS port is closed, unanswered in MQTT, while a TLS client
    connected at the same time keeps exchanging messages (Bystander-style)."""
    b = tls_broker()
    ctx = client_context(certs)
    bystander = tls_client(b, ctx, "bystander")
    round_trip(bystander, bystander, "tls/bystander", [b"before"])
    intruder = socket.create_connection((b.host, b.tls_port), timeout=TIMEOUT)
    with intruder:
        port = intruder.getsockname()[1]
        intruder.sendall(mqttraw.connect("intruder", mqttraw.V311))
        received = b""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = intruder.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        else:
            pytest.fail("the broker did not close the plain connection on its TLS port")
    # At most a TLS alert record (content type 21), never an MQTT CONNACK.
    assert received == b"" or received[0] == 21, received
    expect_log_line(b, f"127.0.0.1:{port}", "TLS handshake: ")
    bystander.publish("tls/bystander", b"after", 1)
    assert bystander.expect_message().payload == b"after"
    assert bystander.connected and bystander.disconnect_rc is None


# ---- certificate reload ------------------------------------------------------------------

def make_server_pair(certs, dest_crt, dest_key, cn):
    """A new key and certificate for 127.0.0.1/localhost with subject CN=cn, signed by the
    development CA, written over dest_crt/dest_key."""
    d = os.path.dirname(dest_crt)
    ext = os.path.join(d, "reload.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\n"
                "extendedKeyUsage = serverAuth\n")
    key, csr, crt = (os.path.join(d, "reload." + x) for x in ("key", "csr", "crt"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True,  # noqa
                                    timeout=30)
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    run("req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", csr)
    run("x509", "-req", "-in", csr, "-CA", os.path.join(certs, "ca.crt"),
        "-CAkey", os.path.join(certs, "ca.key"), "-CAcreateserial", "-days", "30",
        "-extfile", ext, "-out", crt)
    # Replace each file in one step (rename), as a certificate renewal tool would.
    for src, dst in ((key, dest_key), (crt, dest_crt)):
        shutil.copy(src, dst + ".new")
        os.replace(dst + ".new", dst)


def peer_cn(broker, ctx):
    with tls_socket(broker, ctx) as s:
        return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]


@pytest.mark.midge_only
def test_sighup_reloads_server_certificate(broker_factory, certs, tmp_path):
    """SIGHUP RELOAD (the lead's broker integration): after the files are replaced and
    SIGHUP sent, a new connection gets the new certificate; one made before stays up."""
    crt, key = str(tmp_path / "server.crt"), str(tmp_path / "server.key")
    shutil.copy(os.path.join(certs, "server.crt"), crt)
    shutil.copy(os.path.join(certs, "server.key"), key)
    port = free_port()
    b = broker_factory(config=tls_listener(certs, port, certfile=crt, keyfile=key))
    b.tls_port = port
    ctx = client_context(certs)
    old = tls_client(b, ctx, "before-reload")
    round_trip(old, old, "tls/reload", [b"before"])
    assert peer_cn(b, ctx) == "localhost"

    make_server_pair(certs, crt, key, "midge-reloaded")
    b.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: peer_cn(b, ctx) == "midge-reloaded"), \
        f"new connections still get the old certificate after SIGHUP:\n{b.log()}"
    old.publish("tls/reload", b"after", 1)
    assert old.expect_message().payload == b"after"
    assert old.connected and old.disconnect_rc is None
