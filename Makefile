# The one test command (README, .ci/run): the extension built in release mode (which installs
# the test tools too), the static checks, the Rust tests, clippy, stubtest, then the Python
# tests. Every dependency comes from the project's own files.
PYTHON ?= python3
export CARGO_TERM_COLOR ?= never

.PHONY: test jdk build dev cargo-test pytest lint lint-quick clippy stubtest fmt bench bench-startup bench-rust demo \
	fuzz fuzz-cmin fuzz-tools

# Order: the checks that compile nothing run right after the install, so a formatting or typing
# slip fails in seconds rather than after the Rust tests; clippy, whose check build of every
# crate takes about 3 minutes from cold on 2 cores (seconds when only the workspace changed),
# comes after the Rust tests; stubtest needs the built extension.
test: jdk build lint-quick cargo-test lint stubtest pytest

# The Spark tests need a Java 17+ runtime (pyspark 4); pyspark and ray come with `.[test]`.
# Installed only when missing, from Debian's packages (root, else through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
jdk:
	@java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openjdk-17-jre-headless; }

# The README's own install (`pip install .`, not editable), so the tests run the package as a
# user gets it and a user's install is not switched to an editable one. maturin builds in
# target/ with the release profile, the same profile and target `cargo test --release` uses, so
# the engine's dependencies are compiled once: the Rust tests add only their dev-dependencies
# and test harnesses. For editing Python without reinstalling: `make dev` (editable).
build:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check ".[test]"

dev:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

# rust/bench (divan benches) is left out: the tests need neither it nor divan, and leaving it
# out keeps the engine's dependency features, hence its build, the same as for the extension.
# --tests: the targets with tests (the engine's unit tests and tests/*.rs), not the examples
# (three more links of the whole engine; clippy --all-targets still compiles and lints them) nor
# a test harness of the binding (it has none; building one recompiles pyo3 without maturin's
# settings). --workspace, not -p wattledger-engine: the dependencies' features are then unified
# as for the extension's build, so none of them is compiled a second time (with -p, 480 CPU-s).
cargo-test:
	cargo test --workspace --release --exclude wattledger-bench --tests

# Two workers (pytest-xdist, one per core here), each test file on one worker so its
# module-scoped fixtures are built once.
pytest:
	$(PYTHON) -m pytest -q -n auto --dist loadfile

# Everything `make test` checks without running anything: formatting, lints, types.
lint: lint-quick clippy

lint-quick:
	cargo fmt --all -- --check
	$(PYTHON) -m ruff check python tests benchmarks
	$(PYTHON) -m ruff format --check python tests benchmarks
	$(PYTHON) -m mypy

clippy:
	cargo clippy --workspace --all-targets --release -- -D warnings

# The extension's stub (python/wattledger/_core.pyi) against the built module: every name,
# signature and class the stub declares must exist at run time, and the other way round.
stubtest:
	$(PYTHON) -m mypy.stubtest --mypy-config-file pyproject.toml wattledger._core

fmt:
	cargo fmt --all
	$(PYTHON) -m ruff format python tests benchmarks
	$(PYTHON) -m ruff check --fix python tests benchmarks

bench:
	$(PYTHON) benchmarks/run.py

# How long `wattledger --help` and `report` take after the interpreter starts (limit 0.25 s).
bench-startup:
	$(PYTHON) benchmarks/startup.py

# divan micro-benchmarks of the engine's hot paths (rust/bench/README.md); about 10 s of runs.
bench-rust:
	cargo bench -p wattledger-bench

demo:
	wattledger demo

# Fuzz the engine's parsers with cargo-fuzz (docs/fuzzing.md): FUZZ_SECONDS per target (default
# 600), one target after another, the kept corpus in rust/fuzz/corpus/TARGET grown in place and
# minimised at the end. Needs the nightly toolchain; cargo-fuzz is installed on first use; not part of
# `make test` (whose cargo tests replay the corpus on stable). A finding stops the run and is
# written to rust/fuzz/artifacts/TARGET/.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= jsonl jsondoc csv otlp timestamp pack grid
FUZZ_BUILD = --fuzz-dir rust/fuzz --sanitizer none --debug-assertions --release
FUZZ_FLAGS ?= -max_len=16384 -rss_limit_mb=2048 -timeout=60
# The log targets write each input to a temp file (the real reader path): on tmpfs that costs
# no disk I/O and no fsync.
FUZZ_TMPDIR ?= $(if $(wildcard /dev/shm),/dev/shm,/tmp)

# cargo-fuzz comes from the crate registry, installed on first use.
fuzz-tools:
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

fuzz: fuzz-tools
	for t in $(FUZZ_TARGETS); do \
		TMPDIR=$(FUZZ_TMPDIR) cargo +nightly fuzz run $(FUZZ_BUILD) $$t rust/fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) || exit 1; \
	done
	$(MAKE) fuzz-cmin

# Set-cover merge on edges (counters off): the smallest corpus with the same edge coverage,
# a few hundred KB per target instead of MBs. The inputs of past findings (regress-*) are kept
# whatever their coverage.
fuzz-cmin: fuzz-tools
	for t in $(FUZZ_TARGETS); do \
		d=rust/fuzz/corpus/$$t; keep=$$(mktemp -d); cp $$d/regress-* $$keep/ 2>/dev/null; \
		TMPDIR=$(FUZZ_TMPDIR) cargo +nightly fuzz cmin $(FUZZ_BUILD) $$t $$d -- \
			$(FUZZ_FLAGS) -set_cover_merge=1 -use_counters=0 || exit 1; \
		cp $$keep/* $$d/ 2>/dev/null; rm -rf $$keep; \
	done
