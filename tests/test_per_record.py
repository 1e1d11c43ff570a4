"""Per-record estimates (methodology section 10, "Per-record output"; issue 16 point 2).

A record's row is the contribution its hourly cell receives: the rows summed per (hour, model,
site, zone, hardware, method) must give ``wattledger.estimate``'s cells and the independent
DuckDB oracle's (tests/oracle_sql.py), to a relative 1e-12, with null kept apart from zero, on
the edge-case sets (weights incl. 0, failed and cached outcomes, unresolved zones, method none,
aliases, default site). The Parquet file the CLI writes holds the same rows; a failed run
leaves no file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import oracle_sql
import wattledger as wl
from edge_cases import EdgeCaseFiles, write_edge_cases, write_outcome_cases
from wattledger import _core
from wattledger.cli import EXIT_INPUT, EXIT_WRITE, app

# The outcome set's zone-case and status warnings are its point, not this file's.
pytestmark = pytest.mark.filterwarnings("ignore::wattledger.RunWarning")

KEYS = ["hour", "model", "site", "zone", "hardware", "method"]
#: Cell measures a row carries (kWh and kg in the cell, Wh and g in the row).
MEASURES = [
    "records",
    "requests",
    "input_tokens",
    "output_tokens",
    "energy_acc_kwh",
    "energy_kwh",
    "co2e_location_kg",
    "co2e_market_kg",
]

#: The agreed column order (docs/per-record.md): other tools build on it.
SCHEMA = [
    ("request_id", pl.String),
    ("ts", pl.Datetime("us", "UTC")),
    ("model", pl.String),
    ("site", pl.String),
    ("zone", pl.String),
    ("hardware", pl.String),
    ("method", pl.String),
    ("accelerator_wh", pl.Float64),
    ("accelerator_wh_low", pl.Float64),
    ("accelerator_wh_high", pl.Float64),
    ("facility_wh", pl.Float64),
    ("co2e_location_g", pl.Float64),
    ("co2e_market_g", pl.Float64),
    ("weight", pl.Float64),
    ("input_tokens", pl.Int64),
    ("output_tokens", pl.Int64),
    ("duration_s", pl.Float64),
    ("energy_j", pl.Float64),
    ("gpus", pl.Int64),
    ("source", pl.String),
    ("line", pl.Int64),
]


def _sum(expr: pl.Expr, name: str) -> pl.Expr:
    # min_count semantics: a sum over only nulls stays null (as the ledger's cells do).
    return pl.when(expr.is_not_null().any()).then(expr.sum()).alias(name)


def rows_per_cell(rows: pl.DataFrame) -> pl.DataFrame:
    """The per-record rows summed per cell, in the cells' units."""
    w = pl.col("weight")
    return (
        rows.with_columns(pl.col("ts").dt.truncate("1h").alias("hour"))
        .group_by(KEYS)
        .agg(
            pl.len().cast(pl.Int64).alias("records"),
            w.sum().alias("requests"),
            (pl.col("input_tokens").fill_null(0) * w).sum().alias("input_tokens"),
            (pl.col("output_tokens").fill_null(0) * w).sum().alias("output_tokens"),
            _sum(pl.col("accelerator_wh") / 1000, "energy_acc_kwh"),
            _sum(pl.col("facility_wh") / 1000, "energy_kwh"),
            _sum(pl.col("co2e_location_g") / 1000, "co2e_location_kg"),
            _sum(pl.col("co2e_market_g") / 1000, "co2e_market_kg"),
        )
        .sort(KEYS, nulls_last=True)
    )


def cells_per_key(cells: pl.DataFrame) -> pl.DataFrame:
    """Cells summed over source files, so they line up with the rows' and the oracle's."""
    return (
        cells.group_by(KEYS)
        .agg([_sum(pl.col(m), m) for m in MEASURES])
        .with_columns(pl.col("records").cast(pl.Int64))
        .sort(KEYS, nulls_last=True)
    )


def assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    got = got.with_columns(pl.col("hour").cast(pl.Datetime("us", "UTC"))).sort(KEYS, nulls_last=True)
    want = want.with_columns(pl.col("hour").cast(pl.Datetime("us", "UTC"))).select(got.columns)
    want = want.sort(KEYS, nulls_last=True)
    assert oracle_sql.frames_close(got, want, rel=1e-12, abs_tol=0.0) == []


@pytest.fixture(scope="module", params=["edge", "outcomes"])
def cases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> EdgeCaseFiles:
    write = write_edge_cases if request.param == "edge" else write_outcome_cases
    return write(tmp_path_factory.mktemp(request.param))


def test_rows_sum_to_the_hourly_cells_and_to_the_oracle(cases: EdgeCaseFiles, tmp_path: Path) -> None:
    logs = [str(p) for p in cases.logs]
    rejects = tmp_path / "rejects.jsonl"
    rows = wl.estimate(logs, config=cases.config, grid=cases.grid, per_record=True, rejects=rejects)
    assert list(rows.schema.items()) == SCHEMA
    assert tuple(rows.columns) == _core.PER_RECORD_COLUMNS
    assert rows.height == cases.valid_records
    assert len(rejects.read_text().splitlines()) == cases.rejected_records, "rejects as for an estimate"
    cells = wl.estimate(logs, config=cases.config, grid=cases.grid)
    got = rows_per_cell(rows)
    assert_same(got, cells_per_key(cells))
    oracle = oracle_sql.oracle_hourly(cases.logs, cases.config, cases.grid)
    assert_same(got, oracle.select(*KEYS, *MEASURES))
    # Every method of the set is there, and unestimated or cached rows are what they say.
    assert set(rows["method"]) >= {"tokens", "gpu_time", "flops", "measured", "none"}
    none = rows.filter(pl.col("method") == "none")
    assert none["accelerator_wh"].null_count() == none.height == none["facility_wh"].null_count()
    cached = rows.filter(pl.col("method") == "cached")
    assert (cached["facility_wh"] == 0).all() and (cached["co2e_location_g"] == 0).all()
    # The band holds the estimate; input order: file by file, line by line.
    est = rows.filter(pl.col("accelerator_wh").is_not_null())
    assert (est["accelerator_wh_low"] <= est["accelerator_wh"]).all()
    assert (est["accelerator_wh"] <= est["accelerator_wh_high"]).all()
    order = rows.with_columns(pl.col("source").replace_strict(logs, range(len(logs))).alias("file"))
    assert order.select("file", "line").equals(order.select("file", "line").sort("file", "line"))


def test_the_parquet_file_holds_the_same_rows(cases: EdgeCaseFiles, tmp_path: Path) -> None:
    logs = [str(p) for p in cases.logs]
    out = tmp_path / "rows.parquet"
    summary = wl.estimate_parquet(logs, out, config=cases.config, grid=cases.grid, threads=2)
    in_memory = wl.estimate(logs, config=cases.config, grid=cases.grid, per_record=True, threads=1)
    written = pl.read_parquet(out)
    assert written.equals(in_memory)
    assert summary.rows == written.height == summary.records
    assert summary.rejected == cases.rejected_records
    assert summary.energy_kwh == pytest.approx(written["facility_wh"].sum() / 1000, rel=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == ["rows.parquet"], "no temporary file left"
    hourly = tmp_path / "hourly.parquet"
    wl.estimate_parquet(logs, hourly, per_record=False, config=cases.config, grid=cases.grid)
    cells = wl.estimate(logs, config=cases.config, grid=cases.grid)
    assert pl.read_parquet(hourly).equals(cells)


def test_arrow_input_and_lazyframes_give_rows_numbered_by_stream_row() -> None:
    frame = pl.DataFrame(
        {
            "ts": ["2025-06-01T00:10:00Z", "bad", "2025-06-01T01:10:00Z"],
            "model": ["m", "m", "m"],
            "zone": ["DE", "DE", None],
            "energy_j": [3600.0, 1.0, 7200.0],
            "request_id": ["a", "b", None],
        }
    )
    rows = wl.estimate(frame, per_record=True, source_name="frame")
    assert rows["line"].to_list() == [0, 2]
    assert rows["source"].to_list() == ["frame", "frame"]
    assert rows["request_id"].to_list() == ["a", None]
    assert rows["accelerator_wh"].to_list() == [1.0, 2.0]
    assert rows["method"].to_list() == ["measured", "measured"]
    assert wl.estimate(frame.lazy(), per_record=True, source_name="frame").equals(rows)


_MODELS = ["llama-3.1-8b", "gpt-oss-120b", "no-such-model"]
_ZONES = [None, "DE", "FR", "XX"]
_STATUSES = [None, "ok", "error", "cache_hit"]


@st.composite
def _frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(min_value=0, max_value=60))
    start = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)

    def col(values: st.SearchStrategy[object]) -> list[object]:
        return draw(st.lists(values, min_size=n, max_size=n))

    return pl.DataFrame(
        {
            "ts": [start + dt.timedelta(minutes=m) for m in col(st.integers(0, 72 * 60))],
            "model": col(st.sampled_from(_MODELS)),
            "zone": col(st.sampled_from(_ZONES)),
            "hardware": col(st.sampled_from([None, "nvidia-h100-sxm", "unknown-gpu"])),
            "input_tokens": col(st.none() | st.integers(-1, 100_000)),
            "output_tokens": col(st.none() | st.integers(0, 10_000)),
            "duration_s": col(st.none() | st.floats(0, 600)),
            "energy_j": col(st.none() | st.floats(0, 1e6)),
            "weight": col(st.none() | st.floats(0, 1e3)),
            "status": col(st.sampled_from(_STATUSES)),
        },
        schema={
            "ts": pl.Datetime("us", "UTC"),
            **dict.fromkeys(["model", "zone", "hardware"], pl.String),
            **dict.fromkeys(["input_tokens", "output_tokens"], pl.Int64),
            **dict.fromkeys(["duration_s", "energy_j", "weight"], pl.Float64),
            "status": pl.String,
        },
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames())
def test_rows_sum_to_the_cells_for_any_input(frame: pl.DataFrame) -> None:
    rows = wl.estimate(frame, per_record=True, threads=2)
    cells = wl.estimate(frame, threads=1)
    accepted = frame.with_row_index("line").filter(pl.col("input_tokens").fill_null(0) >= 0)
    assert rows["line"].to_list() == accepted["line"].cast(pl.Int64).to_list()
    if rows.height == 0:
        assert cells.height == 0
        return
    assert_same(rows_per_cell(rows), cells_per_key(cells))


runner = CliRunner()


def _error_line(result: object, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, lines  # type: ignore[attr-defined]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_cli_writes_rows_or_nothing(tmp_path: Path) -> None:
    cases = write_edge_cases(tmp_path / "edge")
    out = tmp_path / "rows.parquet"
    args = ["estimate", *map(str, cases.logs), "--config", str(cases.config), "--out", str(out)]
    grid = [a for g in cases.grid for a in ("--grid", str(g))]
    result = runner.invoke(app, [*args, *grid, "--per-record"])
    assert result.exit_code == 0, result.stderr
    assert f"wrote:      {out} ({cases.valid_records:,} per-record rows)" in result.stdout
    assert f"{cases.rejected_records:,} rejected" in result.stdout
    assert pq.read_metadata(out).num_rows == cases.valid_records
    assert pq.read_schema(out).names == list(_core.PER_RECORD_COLUMNS)

    # Hourly by default: what wattledger.estimate returns.
    hourly = tmp_path / "hourly.parquet"
    result = runner.invoke(app, [*args[:-1], str(hourly), *grid])
    assert result.exit_code == 0, result.stderr
    assert "hourly rows" in result.stdout
    assert pl.read_parquet(hourly).equals(wl.estimate(cases.logs, config=cases.config, grid=cases.grid))

    # A missing input, a missing directory, a file that breaks mid-run: one line, non-zero
    # exit, the output as it was (here: the previous run's file, untouched).
    before = out.read_bytes()
    _error_line(
        runner.invoke(app, [*args, "--per-record", str(tmp_path / "nope.jsonl")]), EXIT_INPUT, "nope.jsonl"
    )
    bad_dir = tmp_path / "no-such-dir" / "rows.parquet"
    _error_line(
        runner.invoke(app, ["estimate", str(cases.logs[0]), "--out", str(bad_dir), "--per-record", *grid]),
        EXIT_WRITE,
        "no such directory",
    )
    assert not bad_dir.parent.exists()
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\0" * 64)
    _error_line(runner.invoke(app, [*args, "--per-record", str(broken)]), EXIT_INPUT, "broken.parquet")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "broken.parquet",
        "edge",
        "hourly.parquet",
        "rows.parquet",
    ]
