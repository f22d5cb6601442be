"""SIGHUP: password file, ACL file and logging are read again without dropping anyone;
a file that no longer loads keeps the old state. --test-config loads certificates and auth
files too. (Certificate reload is in test_tls.py.)"""
import os
import signal
import subprocess
import time

import pytest

from conftest import MIDGE_BIN
from mqttraw import V5, V311, Client, connect, connected, expect_connect_refused

pytestmark = [pytest.mark.midge_only,  # Mosquitto reloads on SIGHUP too, but logs differently
              pytest.mark.threaded]  # the reload swaps pointers under running I/O threads


def passwd(path, user, password, create=False):
    args = ["mosquitto_passwd", "-b", str(path), user, password]
    if create:
        args.insert(1, "-c")
    subprocess.run(args, check=True, timeout=10, capture_output=True)


def wait_log(b, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in b.log():
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in the broker log within {timeout}s:\n{b.log()}")


def hup(b, expect="Reloaded"):
    before = b.log().count(expect)
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while b.log().count(expect) == before:
        assert time.monotonic() < deadline, f"no {expect!r} after SIGHUP:\n{b.log()}"
        time.sleep(0.02)


def refused(b, user, password, version=V311):
    c = Client(b, version)
    c.send(connect("x-" + user, version, username=user, password=password))
    expect_connect_refused(c, 4 if version == V311 else 0x86)


def test_password_file_reloaded(broker_factory, tmp_path):
    """A user added after start-up gets in after SIGHUP; one removed is refused; a client
    connected before the reload stays connected and keeps working."""
    pw = tmp_path / "passwd"
    passwd(pw, "alice", "a-pw", create=True)
    b = broker_factory(config=f"password_file {pw}\nallow_anonymous false")
    alice = connected(b, "alice-1", V5, username="alice", password=b"a-pw")
    refused(b, "bob", b"b-pw")

    passwd(pw, "bob", "b-pw")
    subprocess.run(["mosquitto_passwd", "-D", str(pw), "alice"], check=True, timeout=10)
    hup(b)
    bob = connected(b, "bob-1", V311, username="bob", password=b"b-pw")
    refused(b, "alice", b"a-pw")
    # alice's old connection is untouched by the reload
    alice.sub("t/#")
    bob.pub("t/1", b"after reload", qos=1)
    assert alice.recv_publish().payload == b"after reload"


def test_broken_file_keeps_the_old_one(broker_factory, tmp_path):
    pw = tmp_path / "passwd"
    passwd(pw, "alice", "a-pw", create=True)
    b = broker_factory(config=f"password_file {pw}\nallow_anonymous false")
    pw.write_text("alice:$9$not-a-hash\n")
    b.proc.send_signal(signal.SIGHUP)
    wait_log(b, f"{pw}:1:")
    connected(b, "alice-2", V5, username="alice", password=b"a-pw")
    assert b.alive()


def test_acl_file_reloaded(broker_factory, tmp_path):
    """An ACL that denies a topic, then allows it after SIGHUP: the live subscriber of the
    same connection starts receiving."""
    acl = tmp_path / "acl"
    acl.write_text("topic read other/#\ntopic write t/#\n")
    b = broker_factory(config=f"allow_anonymous true\nacl_file {acl}")
    sub = connected(b, "watcher", V5)
    sub.sub("t/#", "other/#", expect=[0x87, 0x00])
    pub = connected(b, "sender", V5)
    pub.pub("t/1", b"denied", qos=1)
    sub.expect_nothing(0.3)

    acl.write_text("topic readwrite t/#\n")
    hup(b)
    sub.sub("t/#", expect=[0x00])
    pub.pub("t/2", b"allowed", qos=1)
    got = sub.recv_publish()
    assert (got.topic, got.payload) == ("t/2", b"allowed")


def test_logging_reloaded(broker_factory, tmp_path):
    """log_dest file follows the configuration file after SIGHUP."""
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    b = broker_factory(config=f"allow_anonymous true\nlog_dest file {first}\nlog_type all")
    connected(b, "before", V5).disconnect()
    wait_for_text(first, "before")
    with open(b.confpath, "w") as f:
        f.write(f"allow_anonymous true\nlog_dest file {second}\nlog_type all\n")
    b.proc.send_signal(signal.SIGHUP)
    wait_for_text(second, "Reloaded")  # the log itself moved: the reload is logged there
    connected(b, "after", V5).disconnect()
    wait_for_text(second, "after")
    assert "after" not in first.read_text()


def wait_for_text(path, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in {path} within {timeout}s")


def test_test_config_loads_certificates(tmp_path):
    """A certfile that exists but is no certificate fails --test-config, naming the file."""
    crt = tmp_path / "server.crt"
    key = tmp_path / "server.key"
    crt.write_text("not a certificate\n")
    key.write_text("not a key\n")
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener 18883 127.0.0.1\ncertfile {crt}\nkeyfile {key}\n"
                    "allow_anonymous true\n")
    r = subprocess.run([MIDGE_BIN, "-c", str(conf), "--test-config"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1
    assert str(crt) in r.stderr, r.stderr
    assert r.stdout == ""


def test_listeners_sharing_files_reload_together(broker_factory, tmp_path):
    """Two listeners with the same password file share one loaded copy: after SIGHUP both
    know the new user; the fixture stops the broker, which frees it once (ASan would see a
    double free)."""
    from conftest import free_port

    class At:
        host = "127.0.0.1"

        def __init__(self, port):
            self.port = port

    pw = tmp_path / "passwd"
    passwd(pw, "alice", "a-pw", create=True)
    second = free_port()
    b = broker_factory(config=f"listener {second} 127.0.0.1\npassword_file {pw}\n"
                              "allow_anonymous false")
    passwd(pw, "bob", "b-pw")
    hup(b)
    for where in (b, At(second)):
        connected(where, f"bob-{where.port}", V5, username="bob", password=b"b-pw")
