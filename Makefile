# The one test command (README, .ci/run): builds the extension in release mode, then runs the
# Rust tests and the Python tests. Every dependency comes from the project's own files.
PYTHON ?= python3
export CARGO_TERM_COLOR ?= never

.PHONY: test build cargo-test pytest lint fmt bench demo

test: build cargo-test pytest

# Editable install: the Rust extension is built (release profile, see pyproject.toml) and the
# Python sources under python/ stay live. Installs runtime + test dependencies.
build:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

cargo-test:
	cargo test --workspace --release

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

demo:
	wattledger demo
