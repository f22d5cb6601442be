"""The dashboard end to end: the page built in web/dist, served by the broker itself, in
Debian's Chromium driven by playwright-core (tests/js/dashboard_check.js), with readings from
a real midge-sensor process.

Needs `make web` (web/dist) and tests/js/node_modules (`make test-integration` does both).
Marked `browser`: it runs once in `make test` (the integration stage), not again under ASan.
Screenshots land in build/artifacts/ (their paths are printed).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT, free_port, wait_listening
from helpers import SENSOR, V311, Client, Sensor, close_clients  # noqa: F401 - autouse fixture

pytestmark = [pytest.mark.browser, pytest.mark.midge_only]

JS_DIR = os.path.join(ROOT, "tests", "js")
WEB_DIST = os.path.join(ROOT, "web", "dist")
ARTIFACTS = os.path.join(ROOT, "build", "artifacts")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DEVICES = ["dash-1", "dash-2", "dash-3"]


def require_tools():
    """Fail (never skip) with what is missing and how to get it."""
    missing = []
    if not shutil.which("node"):
        missing.append("node (scripts/setup.sh installs nodejs)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (scripts/setup.sh installs Debian's chromium)")
    if not os.path.isfile(os.path.join(WEB_DIST, "index.html")):
        missing.append("web/dist/index.html (build the page with `make web`)")
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "playwright-core")):
        missing.append("tests/js/node_modules/playwright-core (`make tests/js/node_modules`)")
    if not os.access(SENSOR, os.X_OK):
        missing.append(f"{SENSOR} (build it with `make`)")
    if missing:
        pytest.fail("the dashboard test needs: " + "; ".join(missing))


def test_dashboard_shows_sensor_readings_and_its_will(broker_factory, capsys):
    require_tools()
    ws_port = free_port()
    started = time.monotonic()  # the broker starts after this: its uptime is at most the time since
    # sys_interval 1: the broker panel gets its figures (and a rate) within the test.
    b = broker_factory(config=f"sys_interval 1\nlistener {ws_port} 127.0.0.1\n"
                              f"protocol websockets\nhttp_dir {WEB_DIST}\nallow_anonymous true")
    assert wait_listening(ws_port), f"no WebSocket listener on {ws_port}:\n{b.log()}"

    # Every reading the sensor publishes, to check the page against (exact values).
    watcher = Client(b, protocol=V311, client_id="dash-watcher")
    watcher.subscribe("sensors/+/reading", qos=1)
    watcher.subscribe("sensors/+/error", qos=1)  # failed reads, which the cards would show

    os.makedirs(ARTIFACTS, exist_ok=True)
    sensor_log = open(os.path.join(ARTIFACTS, "dashboard-sensor.log"), "wb")
    # --seed 7: the first simulated failed read is dash-3's 69th sample, some 17 s in at
    # --interval 0.25, after the page has been read: the cards show no error.
    sensor = Sensor(b, "-h", "127.0.0.1", "-i", "dash", "--devices", str(len(DEVICES)),
                    "--interval", "0.25", "--seed", "7", "-r", stdout=sensor_log)
    sensor_rc = None
    try:
        r = subprocess.run(["node", os.path.join(JS_DIR, "dashboard_check.js"),
                            f"http://127.0.0.1:{ws_port}/", ",".join(DEVICES), str(sensor.pid),
                            ARTIFACTS],
                           capture_output=True, text=True, timeout=50,
                           env={**os.environ, "CHROMIUM": CHROMIUM})
        elapsed = time.monotonic() - started
        try:
            # killed by the node script once the page showed its readings
            sensor_rc, _ = sensor.wait(5)
        except subprocess.TimeoutExpired:
            pass  # the script failed before that: its output below says why
    finally:
        sensor.kill()  # (if still running) and the sanitizer check of its stderr
        sensor_log.close()

    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and lines, (
        f"dashboard check failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}\n"
        f"broker log:\n{b.log()}")
    result = json.loads(lines[-1])
    with capsys.disabled():  # shown in the test output even when the test passes
        print(f"\ndashboard screenshots: {ARTIFACTS}/dashboard.png, dashboard-offline.png, "
              f"dashboard-phone.png")
    # The node script killed the sensor (SIGKILL: no clean DISCONNECT, so the will speaks).
    assert sensor_rc == -signal.SIGKILL, f"sensor exit {sensor_rc}"

    published, last, errors = {}, {}, []
    for m in watcher.drain(0.3):
        doc = json.loads(m.payload)
        if m.topic.endswith("/error"):
            errors.append(doc)
            continue
        shown = (f"{doc['temperature_c']:.1f}", f"{doc['humidity_pct']:.1f}")
        published.setdefault(m.topic.split("/")[1], set()).add(shown)
        last[m.topic.split("/")[1]] = shown

    assert sorted(result["online"]) == DEVICES
    for dev in DEVICES:
        shown = result["online"][dev]
        assert shown["status"] == "online"
        # What the card shows is one of the readings this device published, to the digit.
        assert (shown["temperature"], shown["humidity"]) in published.get(dev, set()), (
            f"{dev}: the page shows {shown}, the sensor published {published.get(dev)}")
        assert shown["age"].startswith("reading ") and " s ago" in shown["age"]
        assert shown["error"] is None, f"{dev}: {shown['error']} (published: {errors})"
        assert shown["charts"] == 1, f"{dev}: {shown['charts']} chart canvases"
        # After the kill: offline from the retained will, the last values still shown.
        assert result["offline"][dev]["status"] == "offline"
        after = result["offline"][dev]
        assert (after["temperature"], after["humidity"]) in published[dev]
        # With no new reading the age keeps counting: read again 1.5 s later, it is larger.
        later = result["offlineLater"][dev]
        ages = [int(re.match(r"reading (\d+) s ago", c["age"]).group(1)) for c in (after, later)]
        assert ages[1] > ages[0], f"{dev}: age {after['age']!r}, 1.5 s later {later['age']!r}"
        assert (later["temperature"], later["humidity"], later["status"]) == (
            after["temperature"], after["humidity"], "offline")
        # Reloaded with the sensor dead: the retained last reading and the retained will.
        again = result["reloaded"][dev]
        assert (again["temperature"], again["humidity"], again["status"]) == (*last[dev], "offline")
        assert again["charts"] == 1, f"{dev} after the reload: {again['charts']} chart canvases"

    assert result["readingMs"] < 8000, f"first readings took {result['readingMs']} ms"
    assert result["offlineMs"] < 5000, f"offline took {result['offlineMs']} ms after SIGKILL"
    # The broker panel: the sensor's connections (one per device), the watcher and the page.
    panel = result["broker"]
    assert panel["clients"] == str(len(DEVICES) + 2), panel
    assert panel["version"].startswith("midge version ")
    # Rates as broker.js formats them (one decimal under 10/s), the sensor's traffic above 0.
    rates = (panel["rateIn"], panel["rateOut"])
    assert all(re.fullmatch(r"\d+(\.\d+)?", x) for x in rates), panel
    assert max(float(x) for x in rates) > 0, panel
    # Under a minute old: "N s", and no more than the seconds since the broker started.
    m = re.fullmatch(r"(\d+) s", panel["uptime"])
    assert m and int(m.group(1)) <= elapsed + 1, (panel["uptime"], elapsed)
    assert result["phoneOverflow"] <= 0, "the page scrolls sideways on a phone-sized screen"
    assert result["settings"] == {
        "portError": "Port: a whole number from 1 to 65535.", "cardsAfterSave": 0,
        "prefixAfterReload": "elsewhere", "prefixShown": "elsewhere"}
    assert result["problems"] == [], f"the page reported problems: {result['problems']}"
    for name in ("dashboard.png", "dashboard-offline.png", "dashboard-phone.png"):
        assert os.path.getsize(os.path.join(ARTIFACTS, name)) > 10000
