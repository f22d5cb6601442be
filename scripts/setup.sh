#!/usr/bin/env bash
# setup.sh - install the Debian/Ubuntu packages Midge needs to build and test.
#
# Idempotent and quick: one dpkg-query when everything is present; `apt-get update` and
# `apt-get install` only when something is missing (with sudo when not root). Both
# `make run` and `make test` call it; `make test` as `setup.sh --tests`, which adds what only
# the tests need (Debian's chromium, for the dashboard's browser test). Set MIDGE_SKIP_SETUP=1
# to skip it entirely.
set -euo pipefail

if [ "${MIDGE_SKIP_SETUP:-}" = 1 ]; then
    exit 0
fi

PACKAGES=(
    build-essential cmake clang pkg-config
    lld llvm
    openssl libssl-dev libsqlite3-dev sqlite3 libwslay-dev uthash-dev libcjson-dev libcmocka-dev
    python3-pytest python3-pytest-timeout python3-paho-mqtt
    mosquitto mosquitto-clients libpaho-mqtt-dev paho.mqtt.c-examples
)
# Only for the tests: a real browser for tests/integration/test_dashboard.py (playwright-core
# drives it; no browser is downloaded), and `ip` for test_demo.py's network namespace.
TEST_PACKAGES=(chromium iproute2)
case "${1:-}" in
--tests) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
"") ;;
*)
    echo "usage: $0 [--tests]" >&2
    exit 2
    ;;
esac

# Packages of the list that dpkg does not report as installed.
missing_of() {
    local installed
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null |
        awk '$2 == "installed" { print $1 }')
    local p
    for p in "$@"; do
        grep -qx -- "$p" <<<"$installed" || echo "$p"
    done
}

# libFuzzer ships apart from clang on Debian 12 (libclang-rt-N-dev) and in
# libclang-common-N-dev on older releases; look for the library itself.
fuzzer_present() {
    command -v clang >/dev/null || return 1
    local dir
    dir=$(clang -print-resource-dir 2>/dev/null) || return 1
    compgen -G "$dir/lib/linux/libclang_rt.fuzzer-*.a" >/dev/null ||
        compgen -G "$dir/lib/*/libclang_rt.fuzzer.a" >/dev/null
}

# The package that provides libFuzzer for the clang apt installs.
fuzzer_package() {
    local v
    if command -v clang >/dev/null; then
        v=$(clang -dumpversion | cut -d. -f1)
    else
        v=$(apt-cache depends clang 2>/dev/null | sed -n 's/.*Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n1)
    fi
    [ -n "$v" ] || { echo "setup.sh: cannot tell which clang version apt installs" >&2; return 1; }
    if apt-cache show "libclang-rt-$v-dev" >/dev/null 2>&1; then
        echo "libclang-rt-$v-dev"
    else
        echo "libclang-common-$v-dev"
    fi
}

missing=$(missing_of "${PACKAGES[@]}")
need_fuzzer=0
fuzzer_present || need_fuzzer=1
need_npm=0
command -v npm >/dev/null || need_npm=1
if [ -z "$missing" ] && [ "$need_fuzzer" = 0 ] && [ "$need_npm" = 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "setup.sh: apt-get not found: install these packages by hand: $missing" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to install: $missing" >&2; exit 1; }
    SUDO=(sudo)
fi
mosquitto_was_installed=1
grep -qx mosquitto <<<"$missing" && mosquitto_was_installed=0

echo "setup.sh: installing: ${missing//$'\n'/ }"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
# shellcheck disable=SC2086 # one word per package
[ -z "$missing" ] || "${SUDO[@]}" apt-get install -y -qq --no-install-recommends $missing
if ! fuzzer_present; then
    pkg=$(fuzzer_package)
    echo "setup.sh: installing $pkg (libFuzzer)"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$pkg"
fi

# The mosquitto package starts its own broker on port 1883, the port `make run` gives
# Midge. The tests start mosquitto themselves when they need it, so stop the service
# this script brought in (a mosquitto that was there before is left alone).
if [ "$mosquitto_was_installed" = 0 ] && command -v systemctl >/dev/null &&
    systemctl is-active --quiet mosquitto 2>/dev/null; then
    echo "setup.sh: stopping and disabling the mosquitto service (port 1883 is for midge)"
    "${SUDO[@]}" systemctl disable --now mosquitto || true
fi

# Node and npm for the MQTT.js tests (tests/js) and the dashboard: Debian's packages, only
# when no npm is there already (a NodeSource nodejs brings its own npm and conflicts with
# Debian's npm package).
if ! command -v npm >/dev/null; then
    echo "setup.sh: installing nodejs npm"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
fi

still=$(missing_of "${PACKAGES[@]}")
if [ -n "$still" ] || ! fuzzer_present; then
    echo "setup.sh: still missing after apt-get install: $still" >&2
    exit 1
fi
echo "setup.sh: all packages present"
