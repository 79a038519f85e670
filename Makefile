# bitmerge: the two commands of the README are `make` and `make test`.
BUILD ?= build
JOBS  ?= $(shell nproc)
BITMERGE := $(BUILD)/bitmerge
DATA_DIR ?= $(abspath ../shared/data)
export BITMERGE_DATA_DIR ?= $(DATA_DIR)

.PHONY: all setup configure build build-all test reproduce-mini demo clean

# Fresh machine -> installed, built, main job run (the paper on the mini family).
all: setup build reproduce-mini

setup:
	scripts/setup.sh

configure: $(BUILD)/build.ninja
$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja

build: configure
	cmake --build $(BUILD) --target bitmerge -j $(JOBS)

build-all: configure
	cmake --build $(BUILD) -j $(JOBS)

test: setup build-all
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

reproduce-mini: build
	scripts/reproduce_mini.sh

clean:
	rm -rf $(BUILD)
