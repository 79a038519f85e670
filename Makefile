# bitmerge: the two commands of the README are `make` and `make test`.
BUILD ?= build
JOBS  ?= $(shell nproc)
BITMERGE := $(BUILD)/bitmerge
DATA_DIR ?= $(abspath ../shared/data)
export BITMERGE_DATA_DIR ?= $(DATA_DIR)

.PHONY: all setup setup-test configure build build-all test reproduce-mini regen-mini demo clean

# Fresh machine -> installed, built, main job run (the paper on the mini family).
all: setup build reproduce-mini

setup:
	scripts/setup.sh

# What the tests need on top: Slurm + munge (the Slurm tests run a real one) and the Python oracles.
setup-test:
	scripts/setup.sh --test

configure: $(BUILD)/build.ninja
$(BUILD)/build.ninja:
	@t=$$(date +%s); cmake -S . -B $(BUILD) -G Ninja; echo "[time] configure: $$(( $$(date +%s) - t )) s"

build: configure
	@t=$$(date +%s); cmake --build $(BUILD) --target bitmerge -j $(JOBS) && echo "[time] build bitmerge: $$(( $$(date +%s) - t )) s"

build-all: configure
	cmake --build $(BUILD) -j $(JOBS)

test: setup-test build-all
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# Writes out/mini (ignored by git) and compares it with the committed results/mini.
reproduce-mini: build
	scripts/reproduce_mini.sh

# Explicit: rewrites the committed reference results/mini (then review git diff).
regen-mini: build
	scripts/reproduce_mini.sh --regenerate

clean:
	rm -rf $(BUILD)

# ---- Paper reproduction on the paper's checkpoints (GPU) ----
# Checkpoints are looked up in $BITMERGE_MODELS_DIR/<name> (else models/<name>);
# missing ones are downloaded from the Hugging Face hub (--fetch; set HF_TOKEN
# for the gated meta-llama repos). GPUS=0,1 runs one worker per GPU. The tables of one
# family share one cell cache (results/cells-<family>): a cell two tables share runs once.
GPUS ?=
RUN_FLAGS = --fetch $(if $(GPUS),--gpus $(GPUS))
EXP := configs/experiments
RESULT_FILES = $(wildcard results/*/results.json results/mini/*/results.json)
.PHONY: reproduce-llama7b reproduce-mistral7b reproduce-llama13b tables plots

reproduce-llama7b: build
	$(BITMERGE) run $(EXP)/table1.toml $(EXP)/table2.toml $(EXP)/table7.toml $(EXP)/fig2.toml $(RUN_FLAGS) --cells-dir results/cells-llama2-7b

reproduce-mistral7b: build
	$(BITMERGE) run $(EXP)/table3.toml $(EXP)/table5.toml $(EXP)/fig3.toml $(RUN_FLAGS) --cells-dir results/cells-mistral-7b

reproduce-llama13b: build
	$(BITMERGE) run $(EXP)/table4.toml $(EXP)/table6.toml $(RUN_FLAGS) --cells-dir results/cells-llama2-13b

# Tables (md, LaTeX, CSV) next to every results.json.
tables: build
	@for r in $(RESULT_FILES); do d=$$(dirname $$r); \
	  $(BITMERGE) table $$r --format md --storage --out $$d/table.md && \
	  $(BITMERGE) table $$r --format latex --storage --out $$d/table.tex && \
	  $(BITMERGE) table $$r --format csv --out $$d/table.csv && echo "tables: $$d" || exit 1; done

# Figures (PNG + SVG, gnuplot) next to every results.json.
plots: build
	@for r in $(RESULT_FILES); do d=$$(dirname $$r); \
	  $(BITMERGE) table $$r --format md --out $$d/table.md --plots $$d && echo "plots: $$d" || exit 1; done

# The compression ablation (issue 17): bits per parameter of the stored delta vs retained
# own-domain gain, per expert x position x scheme, on the nano family ($$BITMERGE_MINI_DIR, default mini-nano).
ABL := results/ablation-bits
.PHONY: ablation-mini
ablation-mini: build
	OMP_NUM_THREADS=1 $(BITMERGE) run $(EXP)/ablation-bits.toml --results-dir $(ABL)
	$(BITMERGE) table $(ABL)/results.json --format md --out $(ABL)/table.md --plots $(ABL)
	$(BITMERGE) table $(ABL)/results.json --format latex --out $(ABL)/table.tex
	$(BITMERGE) table $(ABL)/results.json --format csv --out $(ABL)/table.csv

# ---- GPU benchmark: bitmerge vs HF transformers on the same machine, weights and requests ----
# On the device: bash scripts/device/build.sh bitmerge && source build-gpu/device_env.sh && make bench-gpu
# BENCH_GPU_FLAGS e.g. "--data-dir .device/data --layers 8 --limit 32" (see bench/gpu/run_bench.sh --help).
BENCH_GPU_FLAGS ?=
.PHONY: bench-gpu
bench-gpu:
	bash bench/gpu/run_bench.sh $(BENCH_GPU_FLAGS)

# ---- the paper's experiments on the replica zoo (docs/checkpoints.md) ----
# Tiny replicas of the twelve checkpoints, fetched from a local hub mimic, every
# table/figure of reproduce-llama7b/-mistral7b/-llama13b with --limit $(ZOO_LIMIT);
# results in out/zoo/results/<name>. ZOO_ONLY="table3 fig3" picks experiments.
ZOO_LIMIT ?= 2
.PHONY: reproduce-zoo
reproduce-zoo: build
	ZOO_LIMIT=$(ZOO_LIMIT) tests/zoo/reproduce_zoo.sh
