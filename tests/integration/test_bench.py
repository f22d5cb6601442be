"""midge-bench against the test broker: each mode, briefly, with --json.

Functional checks only: with a message count limit the counts are exact (sent, acknowledged,
received, lost 0, duplicates 0); nothing here asserts a rate or a latency. The binary is
$MIDGE_BENCH_BIN, else midge-bench next to $MIDGE_BIN (build/midge-bench).
"""
import json
import os
import subprocess
import types

import pytest

from conftest import MIDGE_BIN, Broker, free_port

BENCH_BIN = os.environ.get("MIDGE_BENCH_BIN",
                           os.path.join(os.path.dirname(MIDGE_BIN), "midge-bench"))


def bench(broker, *args, check=True, timeout=45):
    """Run midge-bench MODE ARGS... against broker; return (exit code, parsed JSON)."""
    if not os.access(BENCH_BIN, os.X_OK):
        pytest.fail(f"no midge-bench at {BENCH_BIN}: build it with `make` (or set MIDGE_BENCH_BIN)")
    cmd = [BENCH_BIN, *map(str, args), "-h", "127.0.0.1", "-p", str(broker.port), "--json",
           "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, (p.stdout, p.stderr)  # --json: one object, nothing else
    res = json.loads(lines[0])
    if check:
        assert p.returncode == 0, (res, p.stderr)
        assert res["ok"] is True
    return p.returncode, res


def assert_exact(res, sent, received):
    assert res["sent"] == sent, res
    assert res["received"] == received, res
    assert res["expected"] == received, res
    assert res["lost"] == 0, res
    assert res["duplicates"] == 0, res
    assert res["unexpected"] == 0, res
    assert res["latency_us"]["count"] == received, res


@pytest.mark.threaded
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pairs_count_exact(broker, qos):
    """Three publisher/subscriber pairs, 200 messages each: every message arrives once."""
    _, res = bench(broker, "pairs", "-c", 3, "-n", 200, "-q", qos, "-T", 2, "-w", 20)
    assert res["publishers"] == 3 and res["subscribers"] == 3
    assert res["connected"] == 6 and res["connect_failed"] == 0 and res["disconnected"] == 0
    assert_exact(res, 600, 600)
    assert res["acked"] == (600 if qos else 0)


@pytest.mark.threaded
@pytest.mark.parametrize("version", ["3.1.1", "5"])
def test_fan_in_count_exact(broker, version):
    _, res = bench(broker, "fan-in", "-c", 4, "-n", 150, "-q", 1, "-V", version, "-T", 2)
    assert res["mqtt"] == version
    assert res["publishers"] == 4 and res["subscribers"] == 1
    assert_exact(res, 600, 600)
    assert res["acked"] == 600


@pytest.mark.threaded
def test_fan_out_count_exact(broker):
    """One publisher, five subscribers: each message is delivered five times."""
    _, res = bench(broker, "fan-out", "-c", 5, "-n", 100, "-q", 2, "-V", 5, "-s", 200)
    assert res["publishers"] == 1 and res["subscribers"] == 5
    assert res["payload"] == 200
    assert_exact(res, 100, 500)
    assert res["acked"] == 100


@pytest.mark.threaded
def test_pub_mode_acked(broker):
    _, res = bench(broker, "pub", "-c", 2, "-n", 300, "-q", 1, "-t", "bench/pub/%i")
    assert res["sent"] == 600 and res["acked"] == 600 and res["received"] == 0


@pytest.mark.threaded
def test_sub_mode_counts_external_publisher(broker):
    """midge-bench sub counts what another midge-bench process publishes, by sequence."""
    cmd = [BENCH_BIN, "sub", "-c", 2, "-t", "ext/#", "-d", 4, "-q", 1, "-p", broker.port, "--json"]
    sub = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        # Wait for its "[run] ..." line: both subscriptions are in place by then.
        line = sub.stderr.readline()
        while line and not line.startswith("[run]"):
            line = sub.stderr.readline()
        assert line.startswith("[run] 2 of 2"), line
        _, pub = bench(broker, "pub", "-c", 1, "-n", 250, "-q", 1, "-t", "ext/x")
        assert pub["sent"] == 250 and pub["acked"] == 250
        out, err = sub.communicate(timeout=30)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert sub.returncode == 0, err
    res = json.loads(out)
    assert res["subscribers"] == 2
    assert res["received"] == 500
    assert res["duplicates"] == 0 and res["unexpected"] == 0
    assert res["latency_us"]["count"] == 500


@pytest.mark.threaded
def test_latency_with_flood(broker):
    """The fixed-rate client's messages all arrive and carry a latency; the flood runs beside."""
    _, res = bench(broker, "latency", "-r", 200, "-d", 1, "--flood", 2, "-q", 1,
                   "--flood-qos", 1, "-T", 2)
    assert res["publishers"] == 1 and res["subscribers"] == 1
    assert res["sent"] > 0
    assert_exact(res, res["sent"], res["sent"])
    flood = res["flood"]
    assert flood["publishers"] == 2 and flood["qos"] == 1
    assert flood["sent"] > 0 and flood["received"] == flood["sent"] == flood["acked"]
    assert flood["lost"] == 0 and flood["duplicates"] == 0


@pytest.mark.threaded
def test_conn_mode(broker):
    _, res = bench(broker, "conn", "-c", 40, "-d", 0.2, "-T", 2)
    assert res["connections"] == 40
    assert res["connected"] == 40 and res["connect_failed"] == 0
    assert res["connect_latency_us"]["count"] == 40
    assert res["sent"] == 0


def test_conn_refused_counts_failures():
    """Nothing listens on the port: every connection fails, and the exit code says so."""
    closed = types.SimpleNamespace(port=free_port())
    rc, res = bench(closed, "conn", "-c", 5, "-d", 0.2, check=False)
    assert rc == 1 and res["ok"] is False
    assert res["connected"] == 0 and res["connect_failed"] == 5


@pytest.mark.threaded
def test_broker_gone_mid_run_is_reported():
    """Connections the broker closes during the run are counted, and the exit code is 1."""
    b = Broker()
    run = None
    try:
        cmd = [BENCH_BIN, "pairs", "-c", "2", "-d", "3", "--drain", "0.5", "-p", str(b.port),
               "--json"]
        run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = run.stderr.readline()
        while line and not line.startswith("[run]"):
            line = run.stderr.readline()
        assert line.startswith("[run] 4 of 4"), line
        b.stop()
        out, err = run.communicate(timeout=30)
    finally:
        b.stop()
        if run and run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, err
    res = json.loads(out)
    assert res["disconnected"] == 4 and res["ok"] is False


def test_refuses_non_loopback():
    p = subprocess.run([BENCH_BIN, "pub", "-h", "192.0.2.1", "-n", "1"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2
    assert "loopback" in p.stderr


def test_bad_options():
    for args in (["nosuchmode"], ["pub", "-q", "3"], ["pub", "-s", "8"], ["pub", "--bogus"]):
        p = subprocess.run([BENCH_BIN, *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, args
        assert p.stderr, args





@pytest.mark.midge_only  # thread_backlog_limit and $SYS/broker/backpressure are Midge's own
@pytest.mark.threaded
def test_backpressure_between_threads(broker_factory):
    """A publisher floods a subscriber on the other I/O thread while that thread is busy
    sending 50,000 retained messages to a new subscription: its backlog passes the (tiny)
    limit, so the publisher is paused rather than read, which $SYS counts; it is not
    disconnected, and every message of the flood reaches the subscriber afterwards.
    Connections alternate between the two threads in the order they are accepted: the
    subscriber, the publisher and the retained messages' subscriber, connected one after
    the other, sit on threads A, B and A."""
    import threading
    import time

    from mqttraw import V311, connected, pingreq, publish

    b = broker_factory(config="threads 2\nthread_backlog_limit 16\nsys_interval 1")
    loader = connected(b, "bp-loader", V311)
    loader.sock.sendall(b"".join(publish(f"r/{i}", b"r", retain=True, version=V311)
                                 for i in range(50000)))
    loader.send(pingreq())
    loader.expect(0xD, timeout=20)  # every retained message is stored
    sub = connected(b, "bp-sub", V311)
    sub.sub(("bp/flood", 1))
    pub = connected(b, "bp-pub", V311)
    burst = connected(b, "bp-burst", V311)
    n = 3000
    flood = b"".join(publish("bp/flood", b"%06d" % i + b"x" * 1994, qos=0, version=V311)
                     for i in range(n))
    sender = threading.Thread(target=pub.sock.sendall, args=(flood,))
    sender.start()
    burst.sub(("r/#", 0))  # thread A: 50,000 messages to queue in one turn
    got = [sub.recv_publish(timeout=20).payload[:6] for _ in range(n)]
    sender.join(20)
    assert not sender.is_alive()
    assert got == [b"%06d" % i for i in range(n)]
    pub.send(pingreq())
    pub.expect(0xD, timeout=5)  # still connected
    watcher = connected(b, "bp-watch", V311)
    watcher.sub(("$SYS/broker/backpressure/paused", 0))
    deadline = time.monotonic() + 2.5
    paused = 0
    while not paused and time.monotonic() < deadline:  # retained, refreshed every second
        paused = int(watcher.recv_publish(timeout=3).payload)
    assert paused > 0
    for c in (loader, sub, pub, burst, watcher):
        c.close()


def threads_run_s(pid):
    """The process's threads' run time from /proc/PID/task/*/schedstat, in seconds."""
    ns = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            ns += int(f.read().split()[0])
    return ns / 1e9


def test_broker_pid_reports_the_brokers_run_time(broker):
    """--broker-pid: the broker's CPU over the run, from its threads' schedstat (to the
    nanosecond), so within what the broker ran from before midge-bench started to after it
    ended, and more than nothing for 20,000 messages."""
    pid = broker.proc.pid
    before = threads_run_s(pid)
    _, res = bench(broker, "pairs", "-c", 2, "-n", 10000, "-q", 0, "--broker-pid", pid)
    after = threads_run_s(pid)
    assert res["broker"]["pid"] == pid
    assert 0 < res["broker"]["cpu_s"] <= after - before + 0.001, (res["broker"], before, after)
    assert res["broker"]["vmhwm_kb"] > 0
