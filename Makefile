# Vireo: top-level entry points. Every target installs what is missing first (scripts/setup).
PRESET    ?= default
BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
FUZZ_SECONDS ?= 30
CMAKE_SOURCES := $(shell find src tests -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.c' | grep -v '/corpus/')

.PHONY: all setup configure build test run bench format format-check clean asan-unit fuzz

all: build

setup:
	@scripts/setup

$(BUILD_DIR)/build.ninja:
	cmake --preset $(PRESET)

configure: setup $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Runs the whole suite (labels unit, kvm, interop, browser, slow); tests that cannot run here
# are reported as skipped with their reason, never as passed.
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

# The main job: builds the default guest (Debian cloud kernel + busybox initramfs, cached by
# scripts/make-guest) and boots it with the serial console on this terminal (Ctrl-A x quits).
# On software-emulated KVM it says so first.
# Builds only the two programs it runs.
run: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target vireo vireo-vmm
	BUILD_DIR=$(abspath $(BUILD_DIR)) scripts/run-guest

bench: build
	@set -e; for b in bench/*.sh; do echo "== $$b"; "$$b"; done

asan-unit: setup
	cmake --preset asan
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS) -L unit

fuzz: setup
	cmake --preset fuzz
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	scripts/run-fuzzers build-fuzz $(FUZZ_SECONDS)

format:
	clang-format -i $(CMAKE_SOURCES)

format-check:
	@clang-format --dry-run -Werror $(CMAKE_SOURCES) && echo "format-check: clean"

clean:
	rm -rf build build-asan build-fuzz
