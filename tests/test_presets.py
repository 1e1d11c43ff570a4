"""Presets against files written as the upstream tools write them (tests/upstream_fixtures.py).

Each fixture is ingested with its preset and the pack in ``upstream_fixtures.PACK_TOML``; totals must
match the fixture's ``Expected`` exactly: requests and tokens, failed and cached requests (methodology
section 10), records skipped as not requests (non-GenAI spans, streaming content chunks), rejects,
model names resolved through ``[aliases.models]``, and no unresolved energy (every site of the pack
has a fallback intensity; records without a site use ``[defaults] site``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import wattledger as wl
from upstream_fixtures import PACK_MODELS, PACK_TOML, WRITERS, Expected, read_back

IDS = [w.__name__.removeprefix("write_") for w, _ in WRITERS]


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    path = tmp_path / "pack.toml"
    path.write_text(PACK_TOML, encoding="utf-8")
    return path


def _write(tmp_path: Path, writer) -> Expected:
    logs = tmp_path / "logs"
    logs.mkdir()
    expected = writer(logs)
    assert read_back(expected.path), "the writer produced a file the standard library cannot parse"
    return expected


def _sum(frame: pl.DataFrame, column: str) -> float:
    return float(frame[column].sum()) if frame.height else 0.0


@pytest.mark.parametrize(("writer", "preset"), WRITERS, ids=IDS)
def test_estimate_totals(tmp_path: Path, pack: Path, writer, preset: str) -> None:
    expected = _write(tmp_path, writer)
    hourly = wl.estimate(expected.path, config=pack, preset=preset)

    for column in ("failed_requests", "cached_requests", "method"):
        assert column in hourly.columns, f"estimate() has no {column} column"
    assert _sum(hourly, "records") == expected.requests
    assert _sum(hourly, "requests") == expected.requests
    assert _sum(hourly, "input_tokens") == expected.input_tokens
    assert _sum(hourly, "output_tokens") == expected.output_tokens
    assert _sum(hourly, "failed_requests") == expected.failed
    assert _sum(hourly, "cached_requests") == expected.cached
    assert _sum(hourly, "unresolved_kwh") == 0.0

    models = set(hourly["model"].to_list()) if hourly.height else set()
    assert models == expected.model_names
    assert models <= PACK_MODELS, f"raw model names reached the ledger: {models - PACK_MODELS}"

    if expected.cached:
        cached = hourly.filter(pl.col("method") == "cached")
        assert _sum(cached, "requests") == expected.cached
        assert _sum(cached, "energy_kwh") == 0.0
    else:
        assert "cached" not in set(hourly["method"].to_list())
    if expected.requests:
        assert _sum(hourly, "energy_kwh") > 0.0


@pytest.mark.parametrize(("writer", "preset"), WRITERS, ids=IDS)
def test_validate_counts(tmp_path: Path, writer, preset: str) -> None:
    expected = _write(tmp_path, writer)
    stats = wl.validate(expected.path, preset=preset)

    assert len(stats) == 1
    (s,) = stats
    assert int(s["rejected"]) == expected.records_rejected, s.get("rejects")
    assert sum((s.get("rejects") or {}).values()) == expected.records_rejected
    assert int(s["skipped"]) == expected.skipped, s.get("skip_reasons")
    assert sum((s.get("skip_reasons") or {}).values()) == expected.skipped


@pytest.mark.parametrize(("writer", "preset"), WRITERS, ids=IDS)
def test_cli_ingest(tmp_path: Path, pack: Path, writer, preset: str) -> None:
    expected = _write(tmp_path, writer)
    ledger = tmp_path / "ledger.duckdb"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "wattledger.cli",
            "ingest",
            str(expected.path),
            "--preset",
            preset,
            "--config",
            str(pack),
            "--ledger",
            str(ledger),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert ledger.exists()


def test_every_preset_has_a_fixture() -> None:
    assert {preset for _, preset in WRITERS} == {"otel", "vllm", "litellm", "openai"}


def test_otel_shapes_agree(tmp_path: Path, pack: Path) -> None:
    """The same spans written five ways give the same hourly totals."""
    otel = [w for w, p in WRITERS if p == "otel"]
    frames = []
    for n, writer in enumerate(otel):
        d = tmp_path / f"shape{n}"
        d.mkdir()
        path = writer(d).path
        frame = wl.estimate(path, config=pack, preset="otel")
        frames.append(
            frame.group_by("hour", "model")
            .agg(pl.col("requests").sum(), pl.col("input_tokens").sum(), pl.col("failed_requests").sum())
            .sort("hour", "model")
        )
    for other in frames[1:]:
        assert other.equals(frames[0])
