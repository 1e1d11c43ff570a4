"""The SQL oracle and the independent Polars query (benchmarks/peers.py) agree on SYNTHETIC
fleet data, in every log format.

Why: two implementations written separately from the spec disagreeing means one misreads it;
this catches oracle bugs before the engine is compared against it. ~20k records keeps it fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import oracle_sql as o  # noqa: E402
import peers  # noqa: E402
from _synthetic_import import load_synthetic  # noqa: E402

FORMATS = ("parquet", "jsonl", "jsonl.zst", "csv")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    syn = load_synthetic()
    return syn.generate_fleet(
        tmp_path_factory.mktemp("fleet"), records=20_000, formats=FORMATS, seed=3, chunk_records=6_000
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_oracle_and_polars_agree(fleet, fmt: str) -> None:
    log = fleet.logs[fmt]
    want = o.oracle_report_by_model(log, fleet.config, fleet.grid, year=2025)
    got = peers.polars_report(log, fleet.config, fleet.grid, year=2025)
    assert want.height == 8 and want["records"].sum() == 20_000
    assert o.frames_close(got, want, rel=1e-9) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_oracle_and_duckdb_peer_agree(fleet, fmt: str) -> None:
    """The benchmark's DuckDB peer is a separate, faster query than the oracle: same report."""
    log = fleet.logs[fmt]
    want = o.oracle_report_by_model(log, fleet.config, fleet.grid, year=2025)
    got = peers.duckdb_report(log, fleet.config, fleet.grid, year=2025, threads=2)
    assert o.frames_close(got, want, rel=1e-9) == []


def test_fleet_exercises_every_path(fleet) -> None:
    """The generator's promise: every method and every intensity outcome occurs."""
    con = o.load(o.connect(), fleet.logs["parquet"], fleet.config, fleet.grid)
    h = o.oracle_hourly(con)
    assert set(h["method"].unique()) == {"measured", "tokens", "gpu_time", "flops", "none"}
    assert h["fallback_kwh"].sum() > 0 and h["unresolved_kwh"].sum() > 0
    assert h.filter(pl.col("site").is_null())["records"].sum() > 0
    assert h["requests"].sum() > h["records"].sum()  # some weight-10 records
    measured = h.filter(pl.col("method") == "measured")["records"].sum() / h["records"].sum()
    assert 0.25 < measured < 0.35
    # A zone with no grid data at all is priced by the site fallback (sin-1 in SG).
    assert h.filter(pl.col("zone") == "SG")["fallback_kwh"].sum() > 0
    # Month-mean path: the 03:00 hour of the first day is missing from every zone's grid.
    grid = pl.read_csv(fleet.grid)
    assert grid.filter(pl.col("Datetime (UTC)") == "2025-06-01 03:00:00").height == 0


def test_year_span_crosses_months(tmp_path: Path) -> None:
    syn = load_synthetic()
    f = syn.generate_fleet(tmp_path, records=3_000, span="year", formats=("parquet",), chunk_records=1_000)
    assert f.years == [2025, 2026]
    h = o.oracle_hourly(f.logs["parquet"], f.config, f.grid)
    assert h["hour"].dt.month().n_unique() == 12
    # Records are in time order with only a few seconds of disorder.
    ts = pl.read_parquet(f.logs["parquet"])["ts"]
    assert (ts.diff().drop_nulls().dt.total_seconds() > -30).all()
