# cellguard: the two commands a user needs are `make demo` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh), so a fresh Debian 12
# machine needs nothing else.

SHELL := /bin/bash
BUILD_DIR ?= build
SANITIZE_DIR ?= build-sanitize
TSAN_DIR ?= build-tsan
FUZZ_DIR ?= build-fuzz
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60

.PHONY: all deps build test test-sanitize test-tsan format format-check lint fuzz bench demo package clean

# cmake's configure step, quiet but for the messages about optional parts (lines "-- cellguard: ...",
# e.g. "web dashboard: NOT built: <why>"); errors and warnings (stderr) stay visible as they are.
# $(call configure,BUILD_DIR,CMAKE_ARGS...)
configure = set -o pipefail; cmake -S . -B $(1) -G Ninja $(2) | { grep '^-- cellguard: ' || true; }

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@$(call configure,$(BUILD_DIR),-DCMAKE_BUILD_TYPE=Release)
	@cmake --build $(BUILD_DIR)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 600

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
# -g1 (line tables only, no variable locations): the sanitizers' stack traces keep file:line and
# inlined frames, and the build compiles about a quarter faster with objects half the size (docs/ci.md).
SANITIZE_FLAGS ?= -O1 -g1
test-sanitize: deps
	@$(call configure,$(SANITIZE_DIR),-DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$(SANITIZE_FLAGS)" -DCELLGUARD_SANITIZE=ON -DCELLGUARD_BENCH=OFF)
	@cmake --build $(SANITIZE_DIR)
	cd $(SANITIZE_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS) --timeout 1200

# The threaded tests (CELLGUARD_THREADED_TESTS in cmake/CellguardTargets.cmake: edge, uplink, server,
# inverter client, recorder, store) under ThreadSanitizer; only their targets are built. CI runs this.
test-tsan: deps
	@cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$(SANITIZE_FLAGS)" \
	  -DCELLGUARD_TSAN=ON -DCELLGUARD_BENCH=OFF -DCELLGUARD_FIRMWARE=OFF >/dev/null
	@cmake --build $(TSAN_DIR) --target threaded_tests
	cd $(TSAN_DIR) && TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/scripts/tsan.supp" \
	  ctest -L threaded --output-on-failure -j$(JOBS) --timeout 600

# clang-format 14 with .clang-format: format-check lists the files that differ (CI), format rewrites them.
format-check: deps
	@scripts/format.sh check

format: deps
	@scripts/format.sh fix

# clang-tidy 14 with .clang-tidy over src/ (and the lock annotations, -Wthread-safety), using the
# compile commands of BUILD_DIR. Too slow for CI's budget over the whole tree (docs/ci.md): run it before
# every hand-in. `make lint LINT_DIRS="src/server src/store"` checks some folders only.
LINT_DIRS ?= src
lint: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_DIR) --target cellguard_uplink_proto  # generated headers the sources include
	JOBS=$(JOBS) scripts/lint.sh $(BUILD_DIR) $(LINT_DIRS)

# libFuzzer targets built with clang 14, each run for FUZZ_SECONDS.
fuzz: deps
	@export CC=clang-14 CXX=clang++-14; $(call configure,$(FUZZ_DIR),-DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCELLGUARD_FUZZ=ON -DCELLGUARD_TESTS=OFF -DCELLGUARD_BENCH=OFF)
	@cmake --build $(FUZZ_DIR)
	scripts/run-fuzzers.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

bench: build
	scripts/run-benchmarks.sh $(BUILD_DIR)

demo: build
	scripts/demo.sh $(BUILD_DIR)

# Debian packages of this machine's architecture into $(BUILD_DIR): cellguard, cellguard-edge,
# cellguard-server (cmake/CellguardPackaging.cmake, docs/deploy.md); lintian checks them.
package: build
	cd $(BUILD_DIR) && cpack -G DEB
	lintian --fail-on error $(BUILD_DIR)/cellguard*_$$(dpkg --print-architecture).deb

clean:
	rm -rf $(BUILD_DIR) $(SANITIZE_DIR) $(TSAN_DIR) $(FUZZ_DIR)
