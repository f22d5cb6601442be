"""The configuration file through the real broker: --test-config, pid_file, include_dir,
log_dest file, user, and the listener options (unix socket, socket_domain, accept_protocol_versions,
max_connections per listener, global_max_connections).

The listener options need the broker side of issue 5's listeners (the lead's integration); the
parsing itself is covered by tests/unit/test_config.c.
"""
import os
import re
import signal
import socket
import subprocess
import time
import types

import pytest

from conftest import MIDGE_BIN, ROOT, SANITIZER_MARKS, Broker, free_port, wait_listening
from mqttraw import (CONNACK, P_SERVER_KEEP_ALIVE, V31, V311, V5, Client, Closed, Timeout,
                     connect)

pytestmark = pytest.mark.midge_only  # Midge's own start-up behaviour and file layout


def run_midge(*args, timeout=10):
    return subprocess.run([MIDGE_BIN, *args], capture_output=True, text=True, timeout=timeout)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stopped_broker(config):
    """A broker this test stops itself (the broker_factory fixture fails a stopped one)."""
    return Broker(config)


def at(host, port):
    """Something mqttraw.Client can connect to."""
    return types.SimpleNamespace(host=host, port=port)


def try_connect(target, client_id, version=V311):
    """CONNECT; returns the Client on success, None when the broker refused (closed the socket
    without a CONNACK, or a CONNACK with an error code) -- the ways a connection limit shows."""
    try:
        c = Client(target, version, timeout=3)
    except OSError:
        return None
    try:
        c.send(connect(client_id, version))
        ack = c.expect_connack(timeout=3)
    except (Closed, Timeout, OSError):
        c.close()
        return None
    if ack.rc != 0:
        c.close()
        return None
    return c


# ---- --test-config ----

def test_test_config_ok_opens_no_socket(tmp_path):
    """A good file: "FILE: configuration OK" on stdout, exit 0, and no socket is opened (the
    listener's port is taken by someone else and that does not matter)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        conf = write(tmp_path / "ok.conf", f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                                           "max_connections 10\nlog_dest stdout\n")
        r = run_midge("-c", str(conf), "--test-config")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{conf}: configuration OK\n"
    assert r.stderr == ""


def test_test_config_bad_file(tmp_path):
    """A bad file: the error with FILE:LINE on stderr, exit 1, nothing on stdout."""
    conf = write(tmp_path / "bad.conf", "# ok so far\nlistener 1883\nbogus_option 1\n")
    r = run_midge("--test-config", "-c", str(conf))
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == f"midge: {conf}:3: unknown option 'bogus_option'\n"

    conf = write(tmp_path / "tls.conf", f"listener 8883\ncertfile {tmp_path}/missing.crt\n")
    r = run_midge("-c", str(conf), "--test-config")
    assert r.returncode == 1
    assert r.stderr == (f"midge: {conf}:2: option 'certfile': cannot use '{tmp_path}/missing.crt': "
                        "No such file or directory\n")

    crt = write(tmp_path / "server.crt", "x")
    conf = write(tmp_path / "nokey.conf", f"\nlistener 8883\ncertfile {crt}\n")
    r = run_midge("-c", str(conf), "--test-config")
    assert r.returncode == 1
    assert r.stderr == f"midge: {conf}:2: listener 8883: certfile is set but keyfile is not\n"


def test_test_config_needs_a_file():
    r = run_midge("--test-config")
    assert r.returncode == 1
    assert r.stderr == "midge: option '--test-config' needs a configuration file (-c FILE)\n"


def test_repo_midge_conf_is_valid(tmp_path):
    """The commented midge.conf of the repository passes --test-config once its certificates
    and the dashboard's directory exist (it names them relative to the directory midge starts
    in; an empty web/dist stands for `make web`'s output, which this test does not need)."""
    subprocess.run([os.path.join(ROOT, "scripts", "gen-certs.sh"), str(tmp_path / "certs")],
                   check=True, timeout=120, capture_output=True)
    (tmp_path / "web" / "dist").mkdir(parents=True)
    conf = os.path.join(ROOT, "midge.conf")
    r = subprocess.run([MIDGE_BIN, "-c", conf, "--test-config"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=10)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{conf}: configuration OK\n", "")


def mosquitto_style_file(d, ports, sock):
    """A mosquitto.conf using every option of issue 5 that Mosquitto 2.0 knows."""
    certs = d / "certs"
    subprocess.run([os.path.join(ROOT, "scripts", "gen-certs.sh"), str(certs)], check=True,
                   timeout=120, capture_output=True)
    pw = d / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "alice", "secret"], check=True,
                   timeout=30, capture_output=True)
    write(d / "acl", "user alice\ntopic readwrite #\n")
    (d / "www").mkdir()
    (d / "conf.d").mkdir()
    write(d / "conf.d" / "extra.conf", "max_keepalive 100\n")
    p1, p2, p3 = ports
    return write(d / "mosquitto.conf", f"""# a Mosquitto user's file
per_listener_settings false
allow_anonymous false
password_file {pw}
acl_file {d}/acl
persistence false
persistence_location {d}/
persistence_file test.db
autosave_interval 60
pid_file {d}/broker.pid
user root
log_dest file {d}/broker.log
log_type error
log_type warning
log_type notice
log_timestamp true
connection_messages true
max_inflight_messages 10
max_queued_messages 100
max_queued_bytes 0
message_size_limit 0
max_keepalive 120
sys_interval 10

listener {p1} 127.0.0.1
socket_domain ipv4
max_connections -1
protocol mqtt

listener {p2} 127.0.0.1
certfile {certs}/server.crt
keyfile {certs}/server.key
cafile {certs}/ca.crt
capath {certs}
crlfile {certs}/crl.pem
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384
ciphers_tls1.3 TLS_AES_128_GCM_SHA256

listener {p3} 127.0.0.1
protocol websockets
http_dir {d}/www

listener 0 {sock}

include_dir {d}/conf.d
""")


def test_mosquitto_file_works_unchanged(tmp_path):
    """The same file starts Debian's mosquitto (so it is a Mosquitto user's file) and Midge:
    --test-config says OK, and Midge listens on its TCP, TLS, WebSocket and unix listeners."""
    ports = [free_port() for _ in range(3)]
    sock = str(tmp_path / "broker.sock")
    conf = mosquitto_style_file(tmp_path, ports, sock)
    mosq = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        ok = wait_listening(ports[0]) and wait_listening(ports[1])
        assert ok and mosq.poll() is None, (
            "mosquitto refused the file:\n" + (tmp_path / "broker.log").read_text())
    finally:
        mosq.terminate()
        mosq.wait(10)
    wait_for(lambda: not os.path.exists(sock), what="mosquitto's unix socket to go")

    r = run_midge("-c", str(conf), "--test-config")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{conf}: configuration OK\n", "")
    midge = subprocess.Popen([MIDGE_BIN, "-c", str(conf)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    try:
        for port in ports:
            assert wait_listening(port), f"midge does not listen on {port}"
        wait_for(lambda: os.path.exists(sock), what="midge's unix socket")
        assert midge.poll() is None
        assert "Opening" in (tmp_path / "broker.log").read_text()
    finally:
        midge.terminate()
        out = midge.communicate(timeout=10)[0].decode("utf-8", "replace")
    assert midge.returncode == 0, out
    for mark in SANITIZER_MARKS:
        assert mark not in out, out


def test_bad_file_stops_start_up(tmp_path):
    """Without --test-config a bad file stops start-up the same way, before any socket."""
    port = free_port()
    conf = write(tmp_path / "bad.conf", f"listener {port} 127.0.0.1\npersistence true\n")
    r = run_midge("-c", str(conf))
    assert r.returncode == 1
    assert r.stderr == (f"midge: {conf}:2: option 'persistence': persistence true is not "
                        "supported yet\n")


# ---- pid_file, log_dest file, include_dir, user ----

def test_pid_file_written_and_removed(tmp_path):
    pid_path = tmp_path / "midge.pid"
    b = stopped_broker(f"pid_file {pid_path}")
    wait_for(lambda: pid_path.exists() and pid_path.read_text().endswith("\n"),
             what="the pid file")
    assert pid_path.read_text() == f"{b.proc.pid}\n"
    assert b.stop() == 0
    assert not pid_path.exists()


def test_pid_file_relative_path(tmp_path):
    """A relative pid_file is relative to the directory midge was started in."""
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        b = stopped_broker("pid_file rel.pid")
    finally:
        os.chdir(cwd)
    pid_path = tmp_path / "rel.pid"
    wait_for(lambda: pid_path.exists() and pid_path.read_text().endswith("\n"),
             what="the pid file")
    assert pid_path.read_text() == f"{b.proc.pid}\n"
    assert b.stop() == 0
    assert not pid_path.exists()


def test_pid_file_daemon(tmp_path):
    """-d: the pid_file holds the daemon's pid (written after the fork, as an absolute path
    since the daemon moves to /), and it is removed when the daemon stops; a relative
    log_dest file stays relative to the start directory."""
    port = free_port()
    pid_path = tmp_path / "d.pid"
    conf = write(tmp_path / "d.conf", "pid_file d.pid\nlog_dest file d.log\n")
    r = subprocess.run([MIDGE_BIN, "-c", str(conf), "-p", str(port), "-d"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    # the daemon writes it after the parent has exited: wait for the whole line
    wait_for(lambda: pid_path.exists() and pid_path.read_text().endswith("\n"),
             what="the pid file")
    pid = int(pid_path.read_text())
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[0] == MIDGE_BIN.encode()
        assert try_connect(at("127.0.0.1", port), "to-daemon") is not None
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_path.exists(), what="the pid file to go")
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="the daemon to exit")
    # the relative log file too is where midge started, not in "/"
    log = (tmp_path / "d.log").read_text()
    assert "running" in log and "terminating" in log, log


def test_log_dest_file(tmp_path):
    """log_dest file PATH receives the log lines (here beside stderr)."""
    log_path = tmp_path / "midge.log"
    b = stopped_broker(f"log_dest file {log_path}\nlog_dest stderr\nlog_timestamp false")
    c = try_connect(b, "logged-client")
    assert c is not None
    c.close()
    wait_for(lambda: log_path.exists() and "logged-client" in log_path.read_text(),
             what="the client in the log file")
    text = log_path.read_text()
    assert text.startswith("Opening ") or "\nOpening " in text or "midge version" in text
    assert "New client connected from 127.0.0.1" in text
    # the same lines went to stderr as well
    assert "logged-client" in b.log()
    assert b.stop() == 0
    assert "terminating" in log_path.read_text()


def test_log_dest_file_only(broker_factory, tmp_path):
    """log_dest file alone: nothing on stderr, every line in the file."""
    log_path = tmp_path / "only.log"
    b = broker_factory(config=f"log_dest file {log_path}")
    c = try_connect(b, "file-only")
    c.close()
    wait_for(lambda: log_path.exists() and "file-only" in log_path.read_text(),
             what="the client in the log file")
    assert "file-only" not in b.log()


def test_log_file_reopened_on_sighup(broker_factory, tmp_path):
    """Log rotation: after the file is renamed, SIGHUP makes the broker write to a new file of
    the configured name; the old one keeps what was written before."""
    log_path = tmp_path / "rot.log"
    b = broker_factory(config=f"log_dest file {log_path}")
    try_connect(b, "before-rotation").close()
    # its disconnection is logged too: rotate after that line
    wait_for(lambda: "before-rotation 127.0.0.1" in log_path.read_text(),
             what="the first client's disconnection")
    os.rename(log_path, tmp_path / "rot.log.1")
    b.proc.send_signal(signal.SIGHUP)
    wait_for(log_path.exists, what="the reopened log file")
    try_connect(b, "after-rotation").close()
    wait_for(lambda: "after-rotation" in log_path.read_text(), what="the second client")
    assert "before-rotation" not in log_path.read_text()
    assert "after-rotation" not in (tmp_path / "rot.log.1").read_text()


def test_log_dest_file_unwritable(tmp_path):
    conf = write(tmp_path / "c.conf", f"log_dest file {tmp_path}/no/such/dir/midge.log\n")
    r = run_midge("-c", str(conf), "-p", str(free_port()))
    assert r.returncode == 1
    assert r.stderr == (f"midge: log_dest file {tmp_path}/no/such/dir/midge.log: cannot open: "
                        "No such file or directory\n")


def test_include_dir_takes_effect(broker_factory, tmp_path):
    """Every *.conf of include_dir, in sorted order: the last max_keepalive wins (20), the
    file that does not end in .conf is not read (it would be an error)."""
    d = tmp_path / "conf.d"
    d.mkdir()
    write(d / "10-first.conf", "max_keepalive 10\n")
    write(d / "20-second.conf", "max_keepalive 20\n")
    write(d / "30-ignored.conf.off", "max_keepalive 30\nnot an option\n")
    b = broker_factory(config=f"max_keepalive 5\ninclude_dir {d}")
    c = Client(b, V5)
    ack = c.do_connect("inc", keepalive=60)
    assert ack.props[P_SERVER_KEEP_ALIVE] == 20
    c.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_user_switch(broker_factory):
    """Started as root with `user nobody`: the broker runs as nobody once it listens."""
    b = broker_factory(config="user nobody")

    def ids(kind):
        with open(f"/proc/{b.proc.pid}/status") as f:
            line = [x for x in f.read().splitlines() if x.startswith(kind + ":")][0]
        return line.split()[1:]

    # it listens (what the fixture waits for) before it switches
    wait_for(lambda: ids("Uid") == ["65534"] * 4, what="uid nobody")
    assert ids("Gid") == ["65534"] * 4
    assert try_connect(b, "as-nobody") is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_user_unknown(tmp_path):
    conf = write(tmp_path / "c.conf", "user no-such-user-midge\n")
    r = run_midge("-c", str(conf), "-p", str(free_port()))
    assert r.returncode == 1
    assert "Error: user 'no-such-user-midge' (option 'user') does not exist" in r.stderr


# ---- listener options (need the broker side of issue 5's listeners) ----

def test_unix_socket_listener(tmp_path):
    """listener 0 PATH: mosquitto_sub and mosquitto_pub reach the broker with --unix."""
    sock = str(tmp_path / "midge.sock")
    b = stopped_broker(f"listener 0 {sock}\nallow_anonymous true")
    wait_for(lambda: os.path.exists(sock), what="the unix socket")
    sub = subprocess.Popen(["mosquitto_sub", "--unix", sock, "-t", "unix/t", "-C", "1", "-W", "10",
                            "-i", "unix-sub"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        wait_for(lambda: "unix-sub" in b.log(), what="the subscriber")
        time.sleep(0.2)  # its SUBSCRIBE follows the CONNECT
        pub = subprocess.run(["mosquitto_pub", "--unix", sock, "-t", "unix/t", "-m", "over unix",
                              "-q", "1"], capture_output=True, text=True, timeout=10)
        assert pub.returncode == 0, pub.stderr
        out, err = sub.communicate(timeout=10)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(5)
    assert sub.returncode == 0, err
    assert out == "over unix\n"
    assert b.stop() == 0
    assert not os.path.exists(sock)


def refused(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return True
    return False


def test_socket_domain_ipv6(broker_factory):
    """socket_domain ipv6 on `listener PORT ::1` and on a listener of all addresses: ::1
    answers, 127.0.0.1 does not; socket_domain ipv4 the other way round."""
    p_v6local, p_v6, p_v4 = free_port(), free_port(), free_port()
    b = broker_factory(config=f"allow_anonymous true\n"
                              f"listener {p_v6local} ::1\nsocket_domain ipv6\n"
                              f"listener {p_v6}\nsocket_domain ipv6\n"
                              f"listener {p_v4}\nsocket_domain ipv4\n")
    for port in (p_v6local, p_v6):
        wait_for(lambda: try_connect(at("::1", port), f"v6-{port}") is not None,
                 what=f"::1 port {port}")
        assert refused("127.0.0.1", port)
    assert try_connect(at("127.0.0.1", p_v4), "v4") is not None
    assert refused("::1", p_v4)
    assert b.alive()
    assert re.search(r"New client connected from \[::1\]:\d+ as v6-", b.log()), b.log()


def test_accept_protocol_versions_5_only(broker_factory):
    """accept_protocol_versions 5: a 3.1.1 client gets CONNACK 0x01 (unacceptable protocol
    version) and is closed, a 3.1 client too; a 5.0 client connects. The -p listener beside it
    still takes every version."""
    port = free_port()
    b = broker_factory(config=f"listener {port} 127.0.0.1\naccept_protocol_versions 5\n"
                              "allow_anonymous true")
    wait_for(lambda: try_connect(at("127.0.0.1", port), "probe", V5) is not None,
             what="the v5-only listener")
    for version in (V311, V31):
        c = Client(at("127.0.0.1", port), version)
        c.send(connect(f"old{version}", version))
        _, body = c.expect(CONNACK)
        assert body == b"\x00\x01", body
        c.expect_closed()
    assert try_connect(at("127.0.0.1", port), "new5", V5) is not None
    # the -p listener is not restricted (it is not anonymous-only either: the file has a
    # listener, so it follows the global allow_anonymous true)
    assert try_connect(b, "old-on-p", V311) is not None


def test_max_connections_per_listener(broker_factory):
    """max_connections after a listener line limits that listener only."""
    port = free_port()
    b = broker_factory(config=f"allow_anonymous true\nlistener {port} 127.0.0.1\n"
                              "max_connections 2")
    target = at("127.0.0.1", port)
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None,
             what="the second listener")
    time.sleep(0.2)  # the probe connection above is closed and counted out
    kept = [try_connect(target, f"l{i}") for i in range(2)]
    assert all(kept)
    assert try_connect(target, "l-over") is None
    # the -p listener has no limit
    others = [try_connect(b, f"p{i}") for i in range(4)]
    assert all(others)
    for c in kept + others:
        c.close()


def test_global_max_connections(broker_factory):
    """global_max_connections counts the clients of every listener together."""
    port = free_port()
    b = broker_factory(config=f"global_max_connections 3\nallow_anonymous true\n"
                              f"listener {port} 127.0.0.1")
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None,
             what="the second listener")
    time.sleep(0.2)
    second = at("127.0.0.1", port)
    kept = [try_connect(b, "g1"), try_connect(second, "g2"), try_connect(b, "g3")]
    assert all(kept)
    assert try_connect(second, "g4") is None
    assert try_connect(b, "g5") is None
    kept[0].close()
    time.sleep(0.2)
    again = try_connect(second, "g6")
    assert again is not None
    for c in kept[1:] + [again]:
        c.close()


def test_allow_anonymous_default_with_listener(broker_factory):
    """A file that defines a listener: anonymous clients are refused there (Mosquitto 2),
    3.1.1 CONNACK 5 (not authorised)."""
    port = free_port()
    broker_factory(config=f"listener {port} 127.0.0.1")
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None,
             what="the listener")
    c = Client(at("127.0.0.1", port), V311)
    c.send(connect("anon", V311))
    _, body = c.expect(CONNACK)
    assert body == b"\x00\x05"
    c.expect_closed()
