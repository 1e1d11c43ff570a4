"""The engine against the independent DuckDB oracle (tests/oracle_sql.py), to a relative 1e-9.

Why: the oracle is a second, separately written implementation of docs/methodology.md in SQL.
Agreement on hand-picked edge cases (every method, exact vs "*" coefficient, unknown
model/site/hardware, zone override, hour -> month mean -> site fallback -> unresolved, market
factor absent/present/0.0, weights incl. 0, offsets across a year edge, rejects) and on
generated fleet data in every input format is the evidence that the kernel implements the spec.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import oracle_sql
import wattledger as wl
from edge_cases import EdgeCaseFiles, write_edge_cases

KEYS = ["hour", "model", "site", "zone", "hardware", "method"]


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> EdgeCaseFiles:
    return write_edge_cases(tmp_path_factory.mktemp("edge"))


def _engine_hourly(logs: list[Path], config: Path, grid: list[Path]) -> pl.DataFrame:
    """Engine cells summed over source files, so they line up with the oracle's cells."""
    cells = wl.estimate([str(p) for p in logs], config=config, grid=grid)
    measures = [c for c in cells.columns if c not in ("source", *KEYS)]
    # min_count semantics: a sum over only nulls stays null, as in the ledger views.
    return (
        cells.group_by(KEYS)
        .agg([pl.when(pl.col(m).is_not_null().any()).then(pl.col(m).sum()).alias(m) for m in measures])
        .sort(KEYS, nulls_last=True)
    )


@pytest.mark.parametrize("which", ["jsonl", "csv", "parquet", "all"])
def test_hourly_cells_match_the_oracle(edge: EdgeCaseFiles, which: str) -> None:
    logs = edge.logs if which == "all" else [p for p in edge.logs if p.suffix == f".{which}"]
    got = _engine_hourly(logs, edge.config, edge.grid)
    want = oracle_sql.oracle_hourly(logs, edge.config, edge.grid).sort(KEYS, nulls_last=True)
    assert got.height == want.height
    assert oracle_sql.frames_close(got.select(want.columns), want, rel=1e-9) == []


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_report_by_model_through_the_ledger_matches_the_oracle(
    edge: EdgeCaseFiles, tmp_path: Path, year: int
) -> None:
    ledger = tmp_path / "ledger.duckdb"
    wl.ingest(edge.logs, ledger=ledger, config=edge.config, grid=edge.grid, progress=False)
    got = wl.report(ledger, year=year)
    want = oracle_sql.oracle_report_by_model(edge.logs, edge.config, edge.grid, year=year)
    assert oracle_sql.frames_close(got, want, rel=1e-9) == []


def test_month_report_matches_the_oracle(edge: EdgeCaseFiles, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    wl.ingest(edge.logs, ledger=ledger, config=edge.config, grid=edge.grid, progress=False)
    for month in (1, 6, 12):
        got = wl.report(ledger, year=2025, month=month)
        want = oracle_sql.oracle_report_by_model(edge.logs, edge.config, edge.grid, year=2025, month=month)
        assert oracle_sql.frames_close(got, want, rel=1e-9) == [], month


def test_rejects_match_the_oracle_by_reason(edge: EdgeCaseFiles, tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    stats = wl.validate([str(p) for p in edge.logs], rejects=rejects)
    assert sum(s["records"] for s in stats) == edge.valid_records
    assert sum(s["rejected"] for s in stats) == edge.rejected_records
    assert sum(s["blank_lines"] for s in stats) == edge.blank_lines
    written = pl.read_ndjson(rejects)
    assert written.height == edge.rejected_records
    assert set(written.columns) >= {"source", "line", "reason"}
    # The oracle cannot see unparseable lines (DuckDB reads them as all-null rows), so compare
    # the total only.
    oracle = oracle_sql.oracle_rejects(edge.logs, edge.config, edge.grid)
    assert oracle.height == edge.rejected_records


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    from wattledger.synthetic import generate_fleet

    return generate_fleet(
        tmp_path_factory.mktemp("fleet"),
        records=30_000,
        span="year",
        formats=("jsonl", "jsonl.zst", "csv", "parquet"),
        seed=11,
    )


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.zst", "csv", "parquet"])
def test_generated_fleet_matches_the_oracle_in_every_format(fleet, tmp_path: Path, fmt: str) -> None:
    ledger = tmp_path / "ledger.duckdb"
    log = fleet.logs[fmt]
    wl.ingest([log], ledger=ledger, config=fleet.config, grid=[fleet.grid], progress=False)
    for year in fleet.years:
        got = wl.report(ledger, year=year)
        want = oracle_sql.oracle_report_by_model([log], fleet.config, [fleet.grid], year=year)
        assert oracle_sql.frames_close(got, want, rel=1e-9) == [], year


def test_partial_aggregates_merge_by_summing(fleet) -> None:
    """Two inputs estimated apart and summed equal the two estimated at once (spec section 8)."""
    kwargs = {"config": fleet.config, "grid": [fleet.grid]}
    frame = pl.read_parquet(fleet.logs["parquet"])
    half = frame.height // 2
    a = wl.estimate(frame.slice(0, half), **kwargs)
    b = wl.estimate(frame.slice(half), **kwargs)
    both = wl.estimate(frame, **kwargs)
    measures = [c for c in both.columns if c not in ("source", *KEYS)]

    def summed(df: pl.DataFrame) -> pl.DataFrame:
        return (
            df.group_by(KEYS)
            .agg([pl.when(pl.col(m).is_not_null().any()).then(pl.col(m).sum()).alias(m) for m in measures])
            .sort(KEYS, nulls_last=True)
        )

    merged = summed(pl.concat([a, b]))
    assert oracle_sql.frames_close(merged, summed(both), rel=1e-12) == []


def test_a_tiny_memory_budget_gives_the_same_ledger_totals(fleet, tmp_path: Path) -> None:
    """Issue 6: under a memory budget the aggregate flushes partial rows (spills); merging is a
    sum, so the ledger's views must give the same totals as an unconstrained run."""
    from typer.testing import CliRunner

    from wattledger.cli import app

    log = str(fleet.logs["parquet"])
    args = ["--config", str(fleet.config), "--grid", str(fleet.grid), "--no-progress"]
    runner = CliRunner()
    small, big = tmp_path / "small.duckdb", tmp_path / "big.duckdb"
    r = runner.invoke(app, ["ingest", log, "--ledger", str(small), "--max-cells", "8", *args])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, ["ingest", log, "--ledger", str(big), *args])
    assert r.exit_code == 0, r.stderr
    for year in fleet.years:
        assert oracle_sql.frames_close(wl.report(small, year=year), wl.report(big, year=year), rel=1e-9) == []
    views = "SELECT count(*), sum(records), sum(energy_kwh), sum(co2e_location_kg) FROM energy_hourly"
    with wl.connect(small) as a, wl.connect(big) as b:
        got, want = a.sql(views).fetchall()[0], b.sql(views).fetchall()[0]
    assert got[:2] == want[:2]
    assert got[2:] == pytest.approx(want[2:], rel=1e-9)


def test_a_shuffled_year_under_a_tiny_budget_writes_each_cell_once(tmp_path: Path) -> None:
    """Issue 14: a high-cardinality backfill in random order, flushed to spill files many times
    over, is merged back by the engine: the ledger gets exactly one wl_hourly row per distinct
    cell per source, and the same report as an unbounded run and as the oracle."""
    from wattledger.synthetic import generate_fleet

    fleet = generate_fleet(tmp_path / "gen", records=12_000, span="year", formats=("parquet",), seed=14)
    frame = pl.read_parquet(fleet.logs["parquet"]).sample(fraction=1.0, shuffle=True, seed=14)
    logs = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    half = frame.height // 2
    frame.slice(0, half).write_parquet(logs[0], row_group_size=500)
    frame.slice(half).write_parquet(logs[1], row_group_size=500)
    kwargs = {"config": fleet.config, "grid": fleet.grid, "progress": False, "threads": 2}
    small, big = tmp_path / "small.duckdb", tmp_path / "big.duckdb"
    wl.ingest(logs, ledger=small, memory_budget_cells=8, **kwargs)
    wl.ingest(logs, ledger=big, memory_budget_cells=10**9, **kwargs)
    cell = "source_id, hour, model, site, zone, hardware, method"
    counts = f"SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT {cell} FROM wl_hourly)) FROM wl_hourly"
    with wl.connect(small) as a, wl.connect(big) as b:
        rows, distinct = a.sql(counts).fetchall()[0]
        assert rows == distinct, "one row per cell per source"
        assert b.sql(counts).fetchall()[0] == (rows, distinct)
        assert a.sql("SELECT count(DISTINCT source_id) FROM wl_hourly").fetchall()[0][0] == 2
        # Many cells per file, far more than the budget: the spill path really ran.
        assert rows > 1000 * 8
    for year in fleet.years:
        got = wl.report(small, year=year)
        assert oracle_sql.frames_close(got, wl.report(big, year=year), rel=1e-12) == [], year
        want = oracle_sql.oracle_report_by_model(logs, fleet.config, [fleet.grid], year=year)
        assert oracle_sql.frames_close(got, want, rel=1e-9) == [], year
    # The API's cells are the same merged cells, each once.
    cells = wl.estimate(logs, config=fleet.config, grid=[fleet.grid], memory_budget_cells=8, threads=2)
    assert cells.height == rows
    assert cells.select(["source", *KEYS]).is_duplicated().sum() == 0


# --------------------------------------------------------------------------------------------
# Methodology v1.1 section 10: outcomes, aliases, zone case, default site.


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> EdgeCaseFiles:
    from edge_cases import write_outcome_cases

    return write_outcome_cases(tmp_path_factory.mktemp("outcomes"))


@pytest.mark.parametrize("which", ["jsonl", "csv", "parquet", "all"])
def test_outcome_cells_match_the_oracle(outcomes: EdgeCaseFiles, which: str) -> None:
    logs = outcomes.logs if which == "all" else [p for p in outcomes.logs if p.suffix == f".{which}"]
    with pytest.warns(wl.RunWarning):
        got = _engine_hourly(logs, outcomes.config, outcomes.grid)
    want = oracle_sql.oracle_hourly(logs, outcomes.config, outcomes.grid).sort(KEYS, nulls_last=True)
    assert oracle_sql.frames_close(got.select(want.columns), want, rel=1e-9) == []
    if which == "jsonl":
        # The cases really occur, so the comparison covers them.
        methods = set(want["method"])
        assert {"cached", "measured", "tokens", "gpu_time", "flops", "none"} <= methods
        assert want["failed_requests"].sum() > 0 and want["cached_requests"].sum() > 0
        assert "m-cache-only" in set(want["model"]) and "http://unknown.example:8000" in set(want["site"])


def test_outcome_report_through_the_ledger_matches_the_oracle(
    outcomes: EdgeCaseFiles, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.duckdb"
    summary = wl.ingest(
        outcomes.logs, ledger=ledger, config=outcomes.config, grid=outcomes.grid, progress=False
    )
    got = wl.report(ledger, year=2025)
    want = oracle_sql.oracle_report_by_model(outcomes.logs, outcomes.config, outcomes.grid, year=2025)
    assert oracle_sql.frames_close(got, want, rel=1e-9) == []
    assert summary.failed_requests == pytest.approx(float(want["failed_requests"].sum()))
    assert summary.cached_requests == pytest.approx(float(want["cached_requests"].sum()))
    # A model whose requests were all served from a cache: zero energy (not null), no flops.
    only = got.filter(pl.col("model") == "m-cache-only").row(0, named=True)
    assert (only["energy_kwh"], only["co2e_location_kg"], only["flops"], only["gpu_hours"]) == (
        0.0,
        0.0,
        None,
        None,
    )
    assert (only["cached_requests"], only["unestimated_requests"], only["input_tokens"]) == (7.0, 0.0, 7000.0)
