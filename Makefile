# kiln: a thin wrapper; the real work is in CMake and scripts/.
#   make demo    install dependencies, build, run the demo deployment
#   make check   install dependencies, build, run every test (unit, integration,
#                ASan+UBSan, valgrind, fuzz smoke) and print the summary
#   make bench   benchmarks (bench/)
#   make fuzz    longer fuzzing runs (FUZZ_SECONDS per target, default 300)

BUILD ?= build
JOBS ?= 2
FUZZ_SECONDS ?= 300

.PHONY: all deps build demo check bench fuzz clean

all: build

deps:
	scripts/install-deps

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: deps build
	scripts/demo.sh

check: deps
	scripts/check

bench: deps build
	scripts/bench

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz

clean:
	rm -rf build build-asan build-fuzz demo
