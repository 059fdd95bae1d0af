# Front door: `make demo` and `make test` do all the set-up on a fresh Debian machine.
PRESET ?= release
BUILD := build/$(PRESET)
OUT ?= out

.PHONY: all deps configure build demo test test-dev bench fuzz format tidy clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

demo: build
	$(BUILD)/diffuse demo --out $(OUT)

test: build
	ctest --preset $(PRESET)

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
test-dev:
	@$(MAKE) --no-print-directory test PRESET=dev

bench: build
	$(BUILD)/bench/diffuse_bench

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

tidy: configure
	clang-tidy -p $(BUILD) $$(git ls-files 'src/*.cpp' 'cli/*.cpp')

clean:
	rm -rf build
