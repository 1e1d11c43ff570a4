"""The Python API: reports from hand-built ledgers, and end to end through the engine.

Report tests pin methodology section 9: exactly its columns in order, one row per model sorted
by model, UTC calendar periods, NULL kept apart from zero, a warning when configs are mixed.
The end-to-end tests run the real engine on synthetic logs and compare with the independent
DuckDB oracle (tests/oracle_sql.py) through the ledger.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import polars as pl
import pytest

import wattledger as wl
from ledger_data import CONFIG_B, build_ledger, cell, utc
from wattledger.config import column_rules
from wattledger.schema import REPORT_COLUMNS


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    build_ledger(
        path,
        tmp_path,
        {
            "a.jsonl": [
                cell("", utc(2025, 1, 1, 0), "zeta", 1.0),
                cell("", utc(2025, 1, 1, 0), "Alpha", 2.0, method="measured"),
                cell("", utc(2025, 2, 3, 4), "beta", 4.0, site=None),
                cell("", utc(2025, 2, 3, 4), "beta", None),
                cell("", utc(2024, 12, 31, 23, 59), "zeta", 100.0),  # 2024 in UTC
                cell("", utc(2026, 1, 1, 0), "zeta", 1000.0),  # 2026
                cell("", utc(2025, 6, 1, 0), "none-only", None),
            ]
        },
    )
    return path


def test_report_by_model_is_section_9(ledger: Path) -> None:
    frame = wl.report(ledger, year=2025)
    assert tuple(frame.columns) == REPORT_COLUMNS
    assert frame["model"].to_list() == ["Alpha", "beta", "none-only", "zeta"]
    rows = {r["model"]: r for r in frame.iter_rows(named=True)}
    assert rows["zeta"]["energy_kwh"] == 1.0  # neither 2024-12-31T23:59Z nor 2026 counted
    assert rows["Alpha"]["measured_kwh"] == 2.0 and rows["zeta"]["measured_kwh"] == 0.0
    assert rows["beta"]["energy_kwh"] == 4.0 and rows["beta"]["unestimated_requests"] == 10.0
    assert rows["none-only"]["energy_kwh"] is None and rows["none-only"]["measured_kwh"] is None
    assert rows["none-only"]["co2e_location_kg"] is None and rows["none-only"]["requests"] == 10.0
    assert frame.schema["records"] == pl.Int64 and frame.schema["requests"] == pl.Float64


def test_report_month_and_other_keys(ledger: Path) -> None:
    feb = wl.report(ledger, year=2025, month=2)
    assert feb["model"].to_list() == ["beta"]
    by_month = wl.report(ledger, year=2025, by="month")
    assert by_month.columns[0] == "month" and by_month["month"].to_list() == ["2025-01", "2025-02", "2025-06"]
    assert by_month.columns[1:] == list(REPORT_COLUMNS[1:])
    by_site = wl.report(ledger, year=2025, by="site")
    assert by_site["site"].to_list() == ["fra-1", None]  # null key kept, sorted last
    by_method = wl.report(ledger, year=2025, by="method", model="beta")
    assert by_method.select("method", "energy_kwh").rows() == [("none", None), ("tokens", 4.0)]
    dec_2024 = wl.report(ledger, year=2024, month=12)
    assert dec_2024["energy_kwh"].to_list() == [100.0]


def test_report_agrees_with_the_year_view(ledger: Path) -> None:
    con = wl.connect(ledger)
    try:
        view = con.sql(
            f"SELECT {', '.join(REPORT_COLUMNS)} FROM energy_by_model_year WHERE year = 2025 ORDER BY model"
        ).pl()
    finally:
        con.close()
    assert wl.report(ledger, year=2025).equals(view)


def test_empty_period_has_the_columns(ledger: Path) -> None:
    frame = wl.report(ledger, year=2030)
    assert frame.height == 0 and tuple(frame.columns) == REPORT_COLUMNS


def test_mixed_configs_warn_and_are_listed(ledger: Path, tmp_path: Path) -> None:
    build_ledger(ledger, tmp_path / "b", {"b.jsonl": [cell("", utc(2025, 3, 1, 0), "zeta", 8.0)]}, CONFIG_B)
    with pytest.warns(wl.MixedConfigWarning, match="mixes 2 methodology configs"):
        wl.report(ledger, year=2025)
    configs = wl.configs_in_period(ledger, year=2025)
    assert set(configs["name"]) == {"pack-a", "pack-b"}
    assert wl.configs_in_period(ledger, year=2025, month=3)["name"].to_list() == ["pack-b"]


def test_bad_period_and_missing_ledger(ledger: Path, tmp_path: Path) -> None:
    with pytest.raises(wl.UsageError, match="month 13"):
        wl.report(ledger, year=2025, month=13)
    with pytest.raises(wl.LedgerNotFoundError):
        wl.report(tmp_path / "missing.duckdb", year=2025)
    with pytest.raises(wl.UsageError, match="cannot report by"):
        wl.report(ledger, year=2025, by="colour")  # type: ignore[arg-type]


def test_connect_is_read_only_and_scan_is_lazy(ledger: Path) -> None:
    con = wl.connect(ledger)
    try:
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM wl_hourly")
    finally:
        con.close()
    lazy = wl.scan_ledger(ledger)
    assert isinstance(lazy, pl.LazyFrame)
    total = lazy.filter(pl.col("model") == "zeta").select(pl.col("energy_kwh").sum()).collect().item()
    assert total == 1101.0


def test_column_rules_accept_dict_and_list() -> None:
    assert column_rules({"ts": "timestamp", "model": "model_id"}) == ["ts=timestamp", "model=model_id"]
    assert column_rules(["ts=time"]) == ["ts=time"]
    assert column_rules(None) == []
    with pytest.raises(wl.UsageError, match="canonical=source"):
        column_rules(["ts"])


# ---------------------------------------------------------------------------------------------
# End to end through the compiled engine
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    from wattledger.synthetic import generate_fleet

    return generate_fleet(
        tmp_path_factory.mktemp("fleet"), records=2000, span="day", formats=("jsonl", "parquet"), seed=3
    )


def test_ingest_then_report_matches_the_oracle(fleet, tmp_path: Path) -> None:
    import oracle_sql

    ledger = tmp_path / "l.duckdb"
    log = fleet.logs["jsonl"]
    summary = wl.ingest([log], ledger=ledger, config=fleet.config, grid=[fleet.grid], progress=False)
    assert summary.files_read == 1 and summary.records + summary.rejected == 2000
    assert set(summary.requests_by_method) >= {"measured", "tokens", "gpu_time", "flops"}
    year = fleet.years[0]
    got = wl.report(ledger, year=year)
    want = oracle_sql.oracle_report_by_model([log], fleet.config, [fleet.grid], year=year)
    assert oracle_sql.frames_close(got, want) == []
    assert math.isclose(summary.energy_kwh or 0.0, got["energy_kwh"].sum(), rel_tol=1e-9)


def test_reingest_is_skipped_and_totals_unchanged(fleet, tmp_path: Path) -> None:
    import oracle_sql

    ledger = tmp_path / "l.duckdb"
    kwargs = {"ledger": ledger, "config": fleet.config, "grid": [fleet.grid], "progress": False}
    wl.ingest([fleet.logs["parquet"]], **kwargs)
    before = wl.report(ledger, year=fleet.years[0])
    again = wl.ingest([fleet.logs["parquet"]], **kwargs)
    assert again.files_read == 0 and "unchanged" in again.files_skipped[0].reason
    copy = tmp_path / "renamed.parquet"
    copy.write_bytes(Path(fleet.logs["parquet"]).read_bytes())
    renamed = wl.ingest([copy], **kwargs)
    assert renamed.files_read == 0 and "already ingested as" in renamed.files_skipped[0].reason
    # Same totals (summation order inside DuckDB may differ in the last bit).
    assert oracle_sql.frames_close(wl.report(ledger, year=fleet.years[0]), before, rel=1e-12) == []


def test_estimate_of_a_frame_equals_estimate_of_the_file(fleet) -> None:
    from_file = wl.estimate(fleet.logs["parquet"], config=fleet.config, grid=[fleet.grid])
    frame = pl.read_parquet(fleet.logs["parquet"])
    from_frame = wl.estimate(frame, config=fleet.config, grid=[fleet.grid])
    keys = ["hour", "model", "site", "zone", "hardware", "method"]
    a = from_file.drop("source").sort(keys, nulls_last=True)
    b = from_frame.drop("source").sort(keys, nulls_last=True)
    assert a.columns == b.columns and a.height == b.height
    assert a.select(pl.col("energy_kwh").sum()).item() == pytest.approx(
        b.select(pl.col("energy_kwh").sum()).item()
    )


def test_estimate_with_a_tiny_memory_budget_merges_spills(fleet) -> None:
    kwargs = {"config": fleet.config, "grid": [fleet.grid]}
    whole = wl.estimate(fleet.logs["parquet"], **kwargs)
    spilled = wl.estimate(fleet.logs["parquet"], memory_budget_cells=16, **kwargs)
    keys = ["source", "hour", "model", "site", "zone", "hardware", "method"]
    assert spilled.height == whole.height
    for col in ("records", "energy_kwh", "co2e_location_kg", "flops", "gpu_hours"):
        assert spilled[col].null_count() == whole[col].null_count()
        assert spilled.sort(keys, nulls_last=True)[col].sum() == pytest.approx(
            whole.sort(keys, nulls_last=True)[col].sum()
        )


def test_read_logs_and_validate(fleet) -> None:
    frame = wl.read_logs(fleet.logs["jsonl"])
    assert {"ts", "model", "source", "line"} <= set(frame.columns)
    stats = wl.validate([fleet.logs["jsonl"]])
    assert stats[0]["records"] == frame.height
