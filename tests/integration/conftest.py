"""Fixtures shared by the integration tests: start the real broker on a free loopback port.

MIDGE_BIN names the broker binary (default: build/midge). MIDGE_TEST_BROKER=mosquitto runs
the same tests against Debian's mosquitto instead, to check a test's own expectations
against another implementation; tests of Midge-only behaviour mark themselves
`@pytest.mark.midge_only` and are skipped there (and only there).
"""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIDGE_BIN = os.environ.get("MIDGE_BIN", os.path.join(ROOT, "build", "midge"))
USE_MOSQUITTO = os.environ.get("MIDGE_TEST_BROKER") == "mosquitto"

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                   "ERROR: LeakSanitizer")


def pytest_configure(config):
    config.addinivalue_line("markers", "midge_only: behaviour specific to Midge")
    config.addinivalue_line("markers", "threaded: run under ThreadSanitizer too")
    config.addinivalue_line("markers", "browser: drives Chromium; not run again under ASan")


def pytest_collection_modifyitems(config, items):
    if not USE_MOSQUITTO:
        return
    skip = pytest.mark.skip(reason="Midge-only behaviour (running against mosquitto)")
    for item in items:
        if "midge_only" in item.keywords:
            item.add_marker(skip)


_ports_given = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, and that this process has
    not been given before: a test that takes several ports before starting the broker gets
    different ones (the kernel may hand out the same free port twice in a row)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no fresh free port in 100 tries")


def wait_listening(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Broker:
    """A running broker process: .host, .port, .log() and .stop()."""

    def __init__(self, config="", args=(), port=None):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="midge-test-")
        self.logpath = os.path.join(self.dir, "broker.log")
        self.confpath = os.path.join(self.dir, "broker.conf")
        if USE_MOSQUITTO:
            with open(self.confpath, "w") as f:
                f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{config}\n")
            cmd = ["mosquitto", "-c", self.confpath, "-v"]
        else:
            if not os.access(MIDGE_BIN, os.X_OK):
                raise RuntimeError(f"no broker binary at {MIDGE_BIN}: build it with `make` "
                                   "(or set MIDGE_BIN)")
            cmd = [MIDGE_BIN, "-p", str(self.port), "-v"]
            if config:
                with open(self.confpath, "w") as f:
                    f.write(config + "\n")
                cmd += ["-c", self.confpath]
            cmd += list(args)
        self.logfile = open(self.logpath, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.logfile, stderr=subprocess.STDOUT)
        if not wait_listening(self.port):
            self.proc.kill()
            self.proc.wait(5)
            raise RuntimeError(f"broker did not listen on {self.port}:\n{self.log()}")

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stop the broker and return its exit code; fail on a sanitizer report."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"broker did not stop within {timeout}s on {sig}")
        self.logfile.close()
        log = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in log, f"sanitizer report in broker log:\n{log}"
        return self.proc.returncode


@pytest.fixture
def broker_factory():
    """Start brokers with extra configuration: broker_factory(config="...", args=[...])."""
    started = []

    def start(config="", args=(), port=None):
        b = Broker(config, args, port)
        started.append(b)
        return b

    yield start
    for b in started:
        was_alive = b.alive()
        code = b.stop()
        assert was_alive, f"broker died during the test (exit {code}):\n{b.log()}"


@pytest.fixture
def broker(broker_factory):
    """A broker with the default configuration on a free port."""
    return broker_factory()
