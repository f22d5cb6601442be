#!/usr/bin/env bash
# run-demo.sh - the IoT scenario on one machine; `make run` builds everything, then runs this.
#
# Starts build/midge with midge.conf (1883 MQTT, 8883 MQTT/TLS, 9001 WebSocket + dashboard,
# 9443 secure WebSocket + dashboard) and build/midge-sensor with three simulated devices,
# prints the dashboard URL and the midge-sub command that shows the same readings, and runs
# until Ctrl-C (SIGINT) or SIGTERM, or until either program stops. Then it stops both (the
# sensor first, so that it says `offline` itself) and waits for them: nothing is left running.
#
# Needs: build/midge, build/midge-sensor, certs/ (scripts/gen-certs.sh certs), web/dist
# (make web). MIDGE_BUILD names another build directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD=${MIDGE_BUILD:-build}
for need in "$BUILD/midge" "$BUILD/midge-sensor"; do
    [ -x "$need" ] || { echo "run-demo.sh: $need is missing: run make first" >&2; exit 1; }
done
[ -f certs/server.crt ] || { echo "run-demo.sh: certs/ is missing: scripts/gen-certs.sh certs" >&2; exit 1; }
[ -f web/dist/index.html ] || { echo "run-demo.sh: web/dist is missing: make web" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1 port $1.
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port already taken would only show as a bind error in the broker's log: say it plainly.
for port in 1883 8883 9001 9443; do
    if listening "$port"; then
        echo "run-demo.sh: port $port is in use (another broker running?): stop it first" >&2
        exit 1
    fi
done

broker_pid=""
sensor_pid=""

# Stops what was started, the sensor before the broker, each within 5 s (then SIGKILL).
stop_all() {
    local pid
    for pid in $sensor_pid $broker_pid; do
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT
# Ctrl-C or SIGTERM: stop once (a second signal while stopping changes nothing).
on_signal() {
    trap '' INT TERM
    echo
    echo "run-demo.sh: stopping"
    exit 0
}
trap on_signal INT TERM
# Job control gives each program its own process group, so the terminal's Ctrl-C reaches
# this shell alone, and it stops them in order: the sensor first (it publishes `offline`
# while the broker is still there), then the broker.
set -m

"$BUILD/midge" -c midge.conf &
broker_pid=$!

# Up when 1883 accepts connections (10 s at most), and the broker is still there.
for _ in $(seq 100); do
    if listening 1883; then
        break
    fi
    kill -0 "$broker_pid" 2>/dev/null || { echo "run-demo.sh: midge did not start" >&2; exit 1; }
    sleep 0.1
done
listening 1883 ||
    { echo "run-demo.sh: midge does not listen on 1883 after 10 s" >&2; exit 1; }

# -r: readings retained, so that a dashboard opened now fills its cards at once.
"$BUILD/midge-sensor" -h localhost -p 1883 --devices 3 -r &
sensor_pid=$!

cat <<EOF

  Midge is running: 1883 MQTT, 8883 MQTT/TLS, 9001 WebSocket, 9443 secure WebSocket.
  Three simulated devices publish on sensors/<id>/reading every 5 s.

  Dashboard:  http://localhost:9001/
              (or https://localhost:9443/ once your browser trusts certs/ca.crt)
  Terminal:   $BUILD/midge-sub -h localhost -p 1883 -t 'sensors/#' -v

  Ctrl-C stops the broker and the sensor.

EOF

# Whichever stops first (Ctrl-C interrupts this wait through the trap above).
status=0
wait -n "$broker_pid" "$sensor_pid" || status=$?
echo "run-demo.sh: a program stopped by itself (exit $status); stopping the other" >&2
exit "$status"
