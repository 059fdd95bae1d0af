# Front door: `make demo` and `make test` do all the set-up on a fresh Debian machine.
PRESET ?= release
BUILD := build/$(PRESET)
OUT ?= out
FUZZ_SECONDS ?= 60

.PHONY: all deps configure build demo python test test-dev bench fuzz format tidy clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

# Only the command: the tests, benchmarks and Python module are not needed to run the demo.
demo: configure
	@cmake --build --preset $(PRESET) --target diffuse_cli
	$(BUILD)/diffuse demo --out $(OUT)

# The Python module into build/python/: PYTHONPATH=build/python /usr/bin/python3 -c "import diffuse"
# (release preset only: python3 cannot load the dev preset's sanitized code).
python: configure
	@if [ "$(PRESET)" != release ]; then \
	  echo "make python: the module is built with PRESET=release only (got $(PRESET))" >&2; exit 2; fi
	@cmake --build --preset $(PRESET) --target diffuse_python

# Every test: C++ (GoogleTest), the find_package consumer and the Python suite (pytest).
test: build
	ctest --preset $(PRESET)

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
test-dev:
	@$(MAKE) --no-print-directory test PRESET=dev

# libFuzzer on the CSV reader and the checkpoint loader (clang, ASan, UBSan), FUZZ_SECONDS each,
# starting from the seeds in fuzz/corpus; prints seconds, executions and findings per target.
fuzz:
	@scripts/install-deps.sh --fuzz
	@cmake -S fuzz -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build build/fuzz
	@fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

bench: build
	$(BUILD)/bench/diffuse_bench

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

# clang-tidy reads its own compile database, configured without precompiled headers (it cannot
# read GCC's); configuring is enough, nothing is built.
tidy: deps
	@cmake --preset release -B build/tidy -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON >/dev/null
	clang-tidy -p build/tidy $$(git ls-files 'src/*.cpp' 'cli/*.cpp')

clean:
	rm -rf build
