"""`make run`'s script, scripts/run-demo.sh, for real: in a network namespace of its own
(unshare -rn, root or not), since it listens on midge.conf's fixed ports 1883, 8883, 9001
and 9443. It must start midge and midge-sensor, print the dashboard URL and the midge-sub
command, let readings flow to that command, and on Ctrl-C (SIGINT) stop both programs, the
sensor first so that it says `offline` itself.

The script runs from a copy of the tree's layout in a temporary directory (scripts/,
midge.conf, certs/ made by gen-certs.sh, web/dist linked), so the checkout is not written.
"""
import os
import select
import shutil
import signal
import subprocess
import time

import pytest

from conftest import MIDGE_BIN, ROOT, SANITIZER_MARKS

pytestmark = pytest.mark.midge_only

BUILD = os.path.dirname(os.path.abspath(MIDGE_BIN))


def demo_tree(tmp_path):
    for need in (os.path.join(ROOT, "web", "dist", "index.html"),
                 os.path.join(BUILD, "midge-sensor"), os.path.join(BUILD, "midge-sub")):
        assert os.path.exists(need), f"{need} is missing: make web / make"
    os.mkdir(tmp_path / "scripts")
    shutil.copy(os.path.join(ROOT, "scripts", "run-demo.sh"), tmp_path / "scripts")
    shutil.copy(os.path.join(ROOT, "midge.conf"), tmp_path)
    os.mkdir(tmp_path / "web")
    os.symlink(os.path.join(ROOT, "web", "dist"), tmp_path / "web" / "dist")
    subprocess.run([os.path.join(ROOT, "scripts", "gen-certs.sh"), str(tmp_path / "certs")],
                   check=True, timeout=60)
    return tmp_path


def read_until(p, out, marker, timeout=15):
    """Append p's stdout to out (a bytearray) until marker is in it (bounded)."""
    deadline = time.monotonic() + timeout
    fd = p.stdout.fileno()
    while marker not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} within {timeout}s:\n{out.decode()}"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 4096)
            assert chunk, f"run-demo.sh ended ({p.wait(5)}) before {marker!r}:\n{out.decode()}"
            out += chunk


def in_namespace(pid, *cmd, timeout=20):
    """Run cmd in the network namespace (and user namespace) of process pid."""
    return subprocess.run(["nsenter", "-t", str(pid), "-U", "-n", "--preserve-credentials",
                           *cmd], capture_output=True, text=True, timeout=timeout)


def test_make_run_script_starts_everything_and_ctrl_c_stops_it(tmp_path):
    tree = demo_tree(tmp_path)
    p = subprocess.Popen(
        ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec bash "$0"',
         str(tree / "scripts" / "run-demo.sh")],
        env={**os.environ, "MIDGE_BUILD": BUILD}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    out = bytearray()
    try:
        read_until(p, out, b"Ctrl-C stops the broker and the sensor.")
        text = out.decode()
        assert "  Dashboard:  http://localhost:9001/\n" in text, text
        sub = f"{BUILD}/midge-sub -h localhost -p 1883 -t 'sensors/#' -v"
        assert f"  Terminal:   {sub}\n" in text, text
        # The printed command, run as printed (with a count and a timeout), in the demo's
        # network: three devices online, then readings.
        r = in_namespace(p.pid, "sh", "-c", sub + " -C 6 -W 15")
        assert r.returncode == 0, (r.stdout, r.stderr)
        lines = r.stdout.splitlines()
        status = sorted(x for x in lines if "/status " in x)
        devs = [x.split("/")[1] for x in status]
        assert status == [f"sensors/{d}/status online" for d in devs], lines
        assert len(set(devs)) == 3, lines
        # each device's first sample: a reading, or now and then a failed read (unseeded)
        samples = sorted(x.split("/")[1] for x in lines if "/reading {" in x or "/error {" in x)
        assert samples == sorted(devs), lines
        # The dashboard is served on 9001.
        page = in_namespace(p.pid, "bash", "-c",
                            "exec 3<>/dev/tcp/127.0.0.1/9001 && "
                            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -c 15 <&3")
        assert page.stdout == "HTTP/1.1 200 OK", (page.stdout, page.stderr)
        # Watch the status topics, then Ctrl-C: each device says offline itself, and both
        # programs are gone when the script has ended.
        watch = subprocess.Popen(["nsenter", "-t", str(p.pid), "-U", "-n",
                                  "--preserve-credentials", f"{BUILD}/midge-sub", "-h",
                                  "localhost", "-p", "1883", "-t", "sensors/+/status", "-v",
                                  "-C", "6", "-W", "15"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        children = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 2, children  # midge and midge-sensor
        seen = bytearray()  # subscribed once the three retained "online" have come
        for line in status:
            read_until(watch, seen, line.encode() + b"\n")
        assert sorted(seen.decode().splitlines()) == status, seen
        p.send_signal(signal.SIGINT)
        assert p.wait(15) == 0
        got, err = watch.communicate(timeout=20)
        assert watch.returncode == 0, err
        assert sorted(got.decode().splitlines()) == [x.replace("online", "offline")
                                                     for x in status], (got, err)
        for pid in children:
            assert not os.path.exists(f"/proc/{pid}"), f"{pid} still running"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    text = (out + p.stdout.read()).decode()
    assert "run-demo.sh: stopping" in text, text
    for mark in SANITIZER_MARKS:  # midge's and midge-sensor's output lands here
        assert mark not in text, text
