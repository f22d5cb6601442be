# Makefile - the front door of the Midge build; it wraps CMake (see README.md).
#
#   make            release build in build/ (gcc, warnings are errors)
#   make run        install missing packages, build, make certs/ and the dashboard, then the
#                   demo in the foreground: midge with midge.conf and midge-sensor --devices 3
#                   (scripts/run-demo.sh; Ctrl-C stops it all)
#   make web        the dashboard (web/ -> web/dist), when its sources changed
#   make test       install missing packages, then every stage below; stops at the first
#                   failure with a non-zero exit
#   make clean      remove every build directory
#
# Stages of `make test`, each also a target of its own (make test-asan, ...):
#   test-unit         gcc release build (build/), cmocka unit tests through ctest; the
#                     dashboard's JavaScript unit tests (web/tests, node --test)
#   test-clang        clang -Wall -Wextra -Werror build (build-clang/), build only
#   test-integration  pytest tests/integration against build/midge (the dashboard's browser
#                     test included: it needs web/dist and tests/js/node_modules, made first)
#   test-asan         ASan+UBSan build (build-asan/): unit tests and the integration suite
#                     (less the `browser` test, which ran in test-integration)
#   test-tsan         TSan build (build-tsan/): the integration tests marked `threaded`
#   test-fuzz         libFuzzer build (build-fuzz/): each fuzz/fuzz_*.c for FUZZ_TIME seconds
# Extra: make test-mosquitto runs the integration suite against Debian's mosquitto.
#
# Knobs: JOBS (parallel jobs), FUZZ_TIME (seconds per fuzz target), PYTEST_ARGS (e.g.
# PYTEST_ARGS='-k retain -x'), MIDGE_SKIP_SETUP=1 (do not check packages).

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := all

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_TIME ?= 20
PYTEST_ARGS ?=
# Debian's python, which has python3-pytest and python3-paho-mqtt; not a pyenv or venv
# python that happens to be first on PATH.
PYTHON := /usr/bin/python3
BUILD_TYPE := RelWithDebInfo

STAGES := unit clang integration asan tsan fuzz freestanding
BUILD_DIRS := build build-clang build-asan build-tsan build-fuzz

SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
# Integration tests always run Midge here, whatever the caller's environment says.
PYTEST := env -u MIDGE_TEST_BROKER $(PYTHON) -m pytest tests/integration -p no:cacheprovider
# ThreadSanitizer of clang 14 cannot map its shadow memory with the high ASLR entropy of
# recent kernels (vm.mmap_rnd_bits > 28); running without ASLR avoids it.
NO_ASLR := $(shell setarch $$(uname -m) -R true 2>/dev/null && echo setarch $$(uname -m) -R)

.PHONY: all setup setup-tests run web test clean $(addprefix test-,$(STAGES)) test-mosquitto \
        build-release build-clang-only

all: build-release

setup:
	@scripts/setup.sh

setup-tests:
	@scripts/setup.sh --tests

# ---- configure: once per directory; `cmake --build` re-runs it when CMakeLists.txt changes

build/CMakeCache.txt:
	CC=gcc cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DMIDGE_WERROR=ON
build-clang/CMakeCache.txt:
	CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DMIDGE_WERROR=ON
build-asan/CMakeCache.txt:
	CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	    -DMIDGE_SANITIZE=address,undefined
build-tsan/CMakeCache.txt:
	CC=clang cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DMIDGE_SANITIZE=thread
build-fuzz/CMakeCache.txt:
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DMIDGE_FUZZ=ON

build-release: build/CMakeCache.txt
	cmake --build build -j $(JOBS)

run: setup build-release web certs/server.crt
	@scripts/run-demo.sh

# Development certificates for midge.conf's TLS listeners (gen-certs.sh makes what is missing).
certs/server.crt: scripts/gen-certs.sh
	scripts/gen-certs.sh certs

# ---- the dashboard: npm ci when the lock file changes, npm run build when a source does

WEB_SOURCES := $(wildcard web/src/*) web/build.mjs web/package.json web/package-lock.json

web/node_modules: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

web/dist/index.html: web/node_modules $(WEB_SOURCES)
	cd web && npm run build

web: web/dist/index.html

# ---- the stages of make test

# A test stage that finds the broker missing says so instead of failing test by test.
need_broker = @test -x $(1)/midge || { echo "$(1)/midge was not built (no src/main.c yet?)"; exit 1; }

test-unit: build-release
	ctest --test-dir build --output-on-failure -j $(JOBS) --output-junit junit-unit.xml
# web/package.json's "test" script; the reporters through NODE_OPTIONS, since node 20
# takes what follows the test files (npm test -- ...) for more test files.
	cd web && NODE_OPTIONS="--test-reporter=spec --test-reporter-destination=stdout \
	    --test-reporter=junit --test-reporter-destination=../build/junit-web.xml" npm test

test-clang: build-clang/CMakeCache.txt
	cmake --build build-clang -j $(JOBS)

# MQTT.js for the WebSocket tests and playwright-core for the dashboard's browser test
# (tests/js/package-lock.json); npm ci only when missing or older than the lock file.
tests/js/node_modules: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund
	@touch $@

test-integration: build-release tests/js/node_modules web
	$(call need_broker,build)
	MIDGE_BIN=$(CURDIR)/build/midge $(PYTEST) --junitxml=build/junit-integration.xml $(PYTEST_ARGS)

test-asan: build-asan/CMakeCache.txt tests/js/node_modules
	cmake --build build-asan -j $(JOBS)
	$(SAN_ENV) ctest --test-dir build-asan --output-on-failure -j $(JOBS) \
	    --output-junit junit-unit.xml
	$(call need_broker,build-asan)
	$(SAN_ENV) MIDGE_BIN=$(CURDIR)/build-asan/midge $(PYTEST) -m 'not browser' \
	    --junitxml=build-asan/junit-integration.xml $(PYTEST_ARGS)

# pytest exits 5 when no test is marked threaded yet: that is not a failure here.
test-tsan: build-tsan/CMakeCache.txt
	cmake --build build-tsan -j $(JOBS)
	$(call need_broker,build-tsan)
	$(TSAN_ENV) MIDGE_BIN=$(CURDIR)/build-tsan/midge $(NO_ASLR) $(PYTEST) -m threaded \
	    --junitxml=build-tsan/junit-integration.xml $(PYTEST_ARGS) || \
	    { rc=$$?; [ $$rc = 5 ] && echo "test-tsan: no test is marked threaded yet"; \
	      [ $$rc = 5 ]; }

# Each fuzz target fuzz/fuzz_NAME.c runs on a copy of its corpus (fuzz/corpus_NAME/ or
# fuzz/corpus_fuzz_NAME/), so the repository is not modified; crash files go to
# build-fuzz/artifacts/, the fuzzer's output to build-fuzz/logs/.
test-fuzz: build-fuzz/CMakeCache.txt
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	@mkdir -p build-fuzz/artifacts build-fuzz/logs; rm -f build-fuzz/fuzz-passed; \
	targets=$$(ls fuzz/fuzz_*.c 2>/dev/null || true); \
	[ -n "$$targets" ] || echo "test-fuzz: no fuzz/fuzz_*.c target yet"; \
	for src in $$targets; do \
	    name=$$(basename $$src .c); corpus=$$(mktemp -d); \
	    for dir in fuzz/corpus_$$name fuzz/corpus_$${name#fuzz_}; do \
	        if [ -d $$dir ]; then cp -R $$dir/. $$corpus/; fi; \
	    done; \
	    echo "fuzz: $$name for $(FUZZ_TIME)s ($$(ls $$corpus | wc -l) corpus files)"; \
	    if build-fuzz/$$name -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
	        -artifact_prefix=build-fuzz/artifacts/$$name- -print_final_stats=1 \
	        $$corpus >build-fuzz/logs/$$name.log 2>&1; then \
	        grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' build-fuzz/logs/$$name.log \
	            | tail -n 2 || true; \
	        echo $$name >>build-fuzz/fuzz-passed; rm -rf $$corpus; \
	    else \
	        tail -n 80 build-fuzz/logs/$$name.log; rm -rf $$corpus; \
	        echo "fuzz: $$name FAILED (log: build-fuzz/logs/$$name.log)"; exit 1; \
	    fi; \
	done

# src/mqtt built as a microcontroller would build it (-ffreestanding, no libc headers, no
# libc) for the host, i386, Cortex-M and RISC-V, linked without libc: fails on any undefined
# symbol beyond memcpy/memmove/memset/memcmp/memchr/strlen and on writable global data.
test-freestanding:
	scripts/check-freestanding.sh build/freestanding

test-mosquitto:
	MIDGE_TEST_BROKER=mosquitto $(PYTHON) -m pytest tests/integration -p no:cacheprovider \
	    $(PYTEST_ARGS)

# ---- make test: the stages in order, timed, then one summary line

# Adds up the junit files of this run: cmocka's own count for each unit-test program
# (ctest sees one test per program), pytest's counts, one test per fuzz target.
define SUMMARY_PY
import glob, os, re, sys
import xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sorted(glob.glob("build*/junit-*.xml")):
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        out = "".join(e.text or "" for e in case.iter("system-out"))
        m = re.search(r"\[  PASSED  \] (\d+) test", out)
        bad = case.find("failure") is not None or case.find("error") is not None
        if case.find("skipped") is not None:
            skipped += 1
        elif bad:
            failed += 1
        else:
            passed += int(m.group(1)) if m else 1
if os.path.exists("build-fuzz/fuzz-passed"):
    passed += len(open("build-fuzz/fuzz-passed").read().split())
print(f"summary: {passed} passed, {failed} failed, {skipped} skipped")
endef
export SUMMARY_PY

test: setup-tests
	@rm -f build*/junit-*.xml build-fuzz/fuzz-passed; \
	begin=$$(date +%s); times=""; \
	for stage in $(STAGES); do \
	    echo; echo "===== make test: $$stage ====="; t0=$$(date +%s); \
	    if ! $(MAKE) --no-print-directory test-$$stage; then \
	        echo "make test: FAILED in stage $$stage after $$(( $$(date +%s) - t0 ))s"; \
	        exit 1; \
	    fi; \
	    times="$$times $$stage $$(( $$(date +%s) - t0 ))s"; \
	done; \
	echo; echo "make test: all stages passed in $$(( $$(date +%s) - begin ))s:$$times"; \
	$(PYTHON) -c "$$SUMMARY_PY"

clean:
	rm -rf $(BUILD_DIRS)

# make install [PREFIX=/usr/local] [DESTDIR=...]: libmidge (shared and static libraries,
# include/midge/*.h, lib/pkgconfig/midge.pc) and the command-line clients.
PREFIX ?= /usr/local
.PHONY: install
install: build-release
	cmake --install build --prefix $(PREFIX)
