"""Listener options through the broker that no other file covers: the user name taken from
a client certificate (CN or subject) as the ACL sees it, per_listener_settings with two
listeners, and bind_interface."""
import os
import subprocess

import pytest

import mqttraw
from conftest import MIDGE_BIN, free_port
from mqttraw import V5, V311, expect_connect_refused
from test_tls import certs, client_context, tls_socket  # noqa: F401 (certs is a fixture)

pytestmark = [pytest.mark.midge_only, pytest.mark.threaded]  # TLS layers on I/O threads

OK_CODES = (0x00, 0x10)
NOT_AUTHORIZED = 0x87


class At:
    """A listener address for mqttraw (which wants .host and .port)."""
    host = "127.0.0.1"

    def __init__(self, port):
        self.port = port


def tls_raw(broker, ctx, version=V5):
    """An mqttraw.Client whose socket is a TLS connection to broker.tls_port."""
    c = mqttraw.Client.__new__(mqttraw.Client)
    c.version, c.timeout = version, 5.0
    c.buf, c.eof, c.next_pid, c.client_id, c.stash = bytearray(), False, 1, None, []
    c.sock = tls_socket(broker, ctx)
    return c


def subject_of(certs, name):
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in",
                          os.path.join(certs, name + ".crt")], check=True, capture_output=True,
                         text=True, timeout=10).stdout.strip()
    assert out.startswith("subject=")
    return out[len("subject="):].strip()


def cert_broker(broker_factory, certs, tmp_path, option, user):
    acl = tmp_path / "acl"
    acl.write_text(f"user {user}\ntopic readwrite mine/#\n")
    port = free_port()
    b = broker_factory(config="\n".join([
        f"listener {port} 127.0.0.1",
        f"certfile {certs}/server.crt", f"keyfile {certs}/server.key",
        f"cafile {certs}/ca.crt",
        f"{option} true",
        f"acl_file {acl}",
        "allow_anonymous true",
    ]))
    b.tls_port = port
    return b


@pytest.mark.parametrize("option", ["use_identity_as_username", "use_subject_as_username"])
def test_certificate_names_the_user(broker_factory, certs, tmp_path, option):
    """The ACL's `user` line for the certificate's CN (or its subject) is the one that applies,
    whatever user name the CONNECT carries."""
    user = "client1" if option == "use_identity_as_username" else subject_of(certs, "client")
    b = cert_broker(broker_factory, certs, tmp_path, option, user)
    c = tls_raw(b, client_context(certs, cert="client"))
    c.do_connect("cert-user", username="someone-else", password=b"ignored")
    c.pub("mine/1", b"allowed", qos=1, expect_rc=OK_CODES)
    c.pub("theirs/1", b"denied", qos=1, expect_rc=NOT_AUTHORIZED)
    c.sub("mine/#", expect=[0x00])
    c.pub("mine/2", b"back to me", qos=1, expect_rc=OK_CODES)
    got = c.recv_publish()
    assert (got.topic, got.payload) == ("mine/2", b"back to me")


@pytest.mark.parametrize("version", [V311, V5])
def test_certificate_user_without_certificate_refused(broker_factory, certs, tmp_path, version):
    """use_identity_as_username and no client certificate (it is optional here): refused as
    not authorised (3.1.1: 5, 5.0: 0x87), not let in anonymously."""
    b = cert_broker(broker_factory, certs, tmp_path, "use_identity_as_username", "client1")
    c = tls_raw(b, client_context(certs), version)
    c.send(mqttraw.connect("no-cert", version))
    expect_connect_refused(c, 5 if version == V311 else NOT_AUTHORIZED)


def test_per_listener_settings(broker_factory, tmp_path):
    """per_listener_settings true: one listener lets anonymous clients in, the other wants
    a password from its own file."""
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "dev", "secret"], check=True,
                   timeout=10, capture_output=True)
    open_port, closed_port = free_port(), free_port()
    b = broker_factory(config="\n".join([
        "per_listener_settings true",
        f"listener {open_port} 127.0.0.1",
        "allow_anonymous true",
        f"listener {closed_port} 127.0.0.1",
        "allow_anonymous false",
        f"password_file {pw}",
    ]))

    mqttraw.connected(At(open_port), "anon-open", V5)
    c = mqttraw.Client(At(closed_port), V5)
    c.send(mqttraw.connect("anon-closed", V5))
    expect_connect_refused(c, NOT_AUTHORIZED)
    c = mqttraw.Client(At(closed_port), V311)
    c.send(mqttraw.connect("bad-pw", V311, username="dev", password=b"wrong"))
    expect_connect_refused(c, 4)
    mqttraw.connected(At(closed_port), "dev-1", V5, username="dev", password=b"secret")
    assert b.alive()


@pytest.mark.skipif(os.geteuid() != 0, reason="SO_BINDTODEVICE needs CAP_NET_RAW")
def test_bind_interface(broker_factory, tmp_path):
    """bind_interface lo: the listener works on loopback; an interface that does not exist
    stops start-up with its name in the error."""
    port = free_port()
    b = broker_factory(config=f"listener {port} 127.0.0.1\nbind_interface lo\n"
                              "allow_anonymous true")

    mqttraw.connected(At(port), "on-lo", V5)
    assert b.alive()

    conf = tmp_path / "bad.conf"
    conf.write_text(f"listener {free_port()} 127.0.0.1\nbind_interface nosuchif0\n"
                    "allow_anonymous true\n")
    r = subprocess.run([MIDGE_BIN, "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "bind_interface nosuchif0" in r.stderr, r.stderr
