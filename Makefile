# The one test command (README, .ci/run): builds the extension in release mode, then runs the
# Rust tests and the Python tests. Every dependency comes from the project's own files.
PYTHON ?= python3
export CARGO_TERM_COLOR ?= never

.PHONY: test build cargo-test pytest lint fmt bench bench-rust demo

test: build cargo-test pytest

# Editable install: the Rust extension is built (release profile, see pyproject.toml) and the
# Python sources under python/ stay live. Installs runtime + test dependencies.
build:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

# rust/bench (divan benches) is left out: the tests need neither it nor divan, and leaving it
# out keeps the engine's dependency features, hence its build, the same as for the extension.
cargo-test:
	cargo test --workspace --release --exclude wattledger-bench

pytest:
	$(PYTHON) -m pytest -q

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --release -- -D warnings
	$(PYTHON) -m ruff check python tests benchmarks
	$(PYTHON) -m ruff format --check python tests benchmarks

fmt:
	cargo fmt --all
	$(PYTHON) -m ruff format python tests benchmarks
	$(PYTHON) -m ruff check --fix python tests benchmarks

bench:
	$(PYTHON) benchmarks/run.py

# divan micro-benchmarks of the engine's hot paths (rust/bench/README.md); about 10 s of runs.
bench-rust:
	cargo bench -p wattledger-bench

demo:
	wattledger demo
