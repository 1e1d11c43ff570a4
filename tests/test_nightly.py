"""Issue 4 through the compiled engine: --dedupe end to end, mixed configs in a period, the
what-if SQL functions registered by ``connect()``, and ``export --parquet``.

Fault tests (kill -9, busy, read-only, full disk) are in test_faults.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import wattledger as wl
from wattledger import udf
from wattledger.cli import EXIT_INPUT, app
from wattledger.schema import KEY_COLUMNS, MEASURE_COLUMNS
from wattledger.synthetic import FleetFiles, generate_fleet

runner = CliRunner()


def run(*args: object, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> FleetFiles:
    return generate_fleet(tmp_path_factory.mktemp("fleet"), records=20_000, span="day", seed=21)


@pytest.fixture(scope="module")
def year_fleet(tmp_path_factory: pytest.TempPathFactory) -> FleetFiles:
    return generate_fleet(
        tmp_path_factory.mktemp("year"), records=30_000, span="year", start="2025-01-01", seed=22
    )


def ingest_cli(fleet: FleetFiles, ledger: Path, *logs: Path, extra: tuple[str, ...] = (), config=None):
    return run(
        "ingest",
        *logs,
        "--config",
        config or fleet.config,
        "--grid",
        fleet.grid,
        "--ledger",
        ledger,
        "--no-progress",
        *extra,
    )


# ---------------------------------------------------------------------------------------------
# 1. --dedupe
# ---------------------------------------------------------------------------------------------


def test_dedupe_counts_repeats_once_across_the_run_and_records_it(fleet: FleetFiles, tmp_path: Path) -> None:
    lines = Path(fleet.logs["jsonl"]).read_text().splitlines()[:1000]
    unique = tmp_path / "unique.jsonl"
    unique.write_text("\n".join(lines) + "\n")
    # The same 1000 requests delivered twice over (a retried upload), split over two files, plus
    # one request repeated inside a file: 600 + 700 + 3 lines, 1000 distinct ids.
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text("\n".join(lines[:600] + [lines[5]] * 3) + "\n")
    b.write_text("\n".join(lines[300:]) + "\n")

    reference = ingest_cli(fleet, tmp_path / "ref.duckdb", unique)
    assert reference.exit_code == 0, reference.stderr
    assert "duplicates dropped" not in reference.stdout

    deduped = ingest_cli(fleet, tmp_path / "dedupe.duckdb", a, b, extra=("--dedupe",))
    assert deduped.exit_code == 0, deduped.stderr
    assert "duplicates dropped: 303 " in deduped.stdout

    plain = ingest_cli(fleet, tmp_path / "plain.duckdb", a, b)
    assert plain.exit_code == 0 and "duplicates dropped" not in plain.stdout

    sums = "SELECT SUM(records), SUM(requests), SUM(energy_kwh), SUM(co2e_location_kg) FROM energy_hourly"

    def totals(name: str) -> tuple:
        con = duckdb.connect(str(tmp_path / name), read_only=True)
        try:
            return con.execute(sums).fetchall()[0]
        finally:
            con.close()

    ref, dedup, dup = totals("ref.duckdb"), totals("dedupe.duckdb"), totals("plain.duckdb")
    assert dedup[0] == ref[0] == 1000 and dup[0] == 1303
    for x, y in zip(dedup[1:], ref[1:], strict=True):
        assert math.isclose(x, y, rel_tol=1e-12)
    assert dup[1] > ref[1]

    run_row = "SELECT dedupe, duplicates, records FROM wl_runs"
    con = duckdb.connect(str(tmp_path / "dedupe.duckdb"), read_only=True)
    assert con.execute(run_row).fetchall() == [(True, 303, 1303)]  # records read, duplicates dropped
    con.close()
    con = duckdb.connect(str(tmp_path / "plain.duckdb"), read_only=True)
    assert con.execute(run_row).fetchall() == [(False, None, 1303)]  # not checked, not "zero"
    con.close()


def test_dedupe_through_the_api_reports_duplicates(fleet: FleetFiles, tmp_path: Path) -> None:
    lines = Path(fleet.logs["jsonl"]).read_text().splitlines()[:50]
    log = tmp_path / "twice.jsonl"
    log.write_text("\n".join(lines + lines[:20]) + "\n")
    summary = wl.ingest(
        log, ledger=tmp_path / "l.duckdb", config=fleet.config, grid=[fleet.grid], dedupe=True, progress=False
    )
    assert summary.duplicates == 20 and summary.records == 70
    off = wl.ingest(log, ledger=tmp_path / "m.duckdb", config=fleet.config, grid=[fleet.grid], progress=False)
    assert off.duplicates is None


# ---------------------------------------------------------------------------------------------
# 2. Mixed configs in one period
# ---------------------------------------------------------------------------------------------


def test_run_with_another_config_is_recorded_and_report_warns_on_stderr(
    fleet: FleetFiles, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.duckdb"
    other = tmp_path / "other.toml"
    other.write_text(Path(fleet.config).read_text().replace("pue = 1.2", "pue = 1.4", 1))
    june = generate_fleet(tmp_path / "june2", records=500, span="day", start="2025-06-01", seed=31)
    july = generate_fleet(tmp_path / "july", records=500, span="day", start="2025-07-01", seed=32)

    assert ingest_cli(fleet, ledger, fleet.logs["jsonl"]).exit_code == 0
    second = ingest_cli(fleet, ledger, june.logs["jsonl"], config=other)  # same month, new config
    assert second.exit_code == 0, second.stderr
    assert ingest_cli(fleet, ledger, july.logs["jsonl"], config=other).exit_code == 0

    con = wl.connect(ledger)
    runs = con.execute("SELECT DISTINCT config_sha256 FROM runs").fetchall()
    shas = {r[0] for r in con.execute("SELECT config_sha256 FROM wl_configs").fetchall()}
    con.close()
    assert len(runs) == 2 and len(shas) == 2

    june_report = run("report", "--ledger", ledger, "--year", "2025", "--month", "6")
    assert june_report.exit_code == 0, june_report.stderr
    warnings = [line for line in june_report.stderr.splitlines() if line.startswith("warning:")]
    assert "mixes 2 methodology configs" in warnings[0]
    # The fleet's grid leaves hours to the month-mean fallback: the runs recorded that, and the
    # report says so once, after the mixed configs, instead of repeating every run's warning.
    assert len(warnings) == 2 and "run(s) behind this period carried" in warnings[1]
    for sha in shas:
        assert sha[:12] in warnings[0]  # listed on stderr ...
        assert f"sha256 {sha}" in june_report.stdout  # ... and in the table's provenance lines
    assert "mixes" not in june_report.stdout

    july_report = run("report", "--ledger", ledger, "--year", "2025", "--month", "7")
    assert july_report.exit_code == 0 and "mixes" not in july_report.stderr


# ---------------------------------------------------------------------------------------------
# 4. What-if SQL functions
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def siteless(fleet: FleetFiles, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The fleet's records with no site, no gpus and weight 1, ingested: then the 6-argument
    wl_energy_wh sees exactly what ingest saw (site factors and weights cannot differ)."""
    out = tmp_path_factory.mktemp("siteless")
    log = out / "siteless.jsonl"
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT * REPLACE (CAST(NULL AS VARCHAR) AS site, CAST(NULL AS BIGINT) AS gpus,
                                    1.0 AS weight)
                  FROM read_json('{fleet.logs["jsonl"]}'))
            TO '{log}' (FORMAT json)"""
    )
    con.close()
    ledger = out / "l.duckdb"
    wl.ingest(log, ledger=ledger, config=fleet.config, grid=[fleet.grid], progress=False)
    return ledger, log


def test_wl_energy_wh_on_raw_logs_equals_the_ledger(siteless: tuple[Path, Path]) -> None:
    ledger, log = siteless
    con = wl.connect(ledger, allow_read=[log.parent])
    try:
        raw_wh, n = con.execute(
            f"""SELECT SUM(wl_energy_wh(model, hardware, input_tokens, output_tokens, duration_s,
                                        energy_j)), COUNT(*)
                FROM read_json('{log}')"""
        ).fetchall()[0]
        ledger_wh = con.execute("SELECT SUM(energy_acc_kwh) * 1000 FROM energy_hourly").fetchall()[0][0]
        by_method_raw = dict(
            con.execute(
                f"""SELECT wl_energy_method(model, hardware, input_tokens, output_tokens, duration_s,
                                            energy_j), COUNT(*)
                    FROM read_json('{log}') GROUP BY 1"""
            ).fetchall()
        )
        by_method_ledger = dict(
            con.execute(
                "SELECT method, CAST(SUM(records) AS BIGINT) FROM energy_hourly GROUP BY 1"
            ).fetchall()
        )
    finally:
        con.close()
    assert n == 20_000
    assert math.isclose(raw_wh, ledger_wh, rel_tol=1e-9)
    assert by_method_raw == by_method_ledger
    assert set(by_method_raw) >= {"measured", "tokens", "gpu_time", "flops", "none"}


def test_site_aware_variant_with_weights_equals_the_ledger_of_the_real_fleet(
    fleet: FleetFiles, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.duckdb"
    wl.ingest(fleet.logs["jsonl"], ledger=ledger, config=fleet.config, grid=[fleet.grid], progress=False)
    con = wl.connect(ledger, allow_read=[fleet.logs["jsonl"]])
    try:
        raw = con.execute(
            f"""SELECT SUM(wl_energy_wh_at(model, hardware, site, gpus, input_tokens, output_tokens,
                                           duration_s, energy_j) * COALESCE(weight, 1.0))
                FROM read_json('{fleet.logs["jsonl"]}')"""
        ).fetchall()[0][0]
        booked = con.execute("SELECT SUM(energy_acc_kwh) * 1000 FROM energy_hourly").fetchall()[0][0]
        # Without the site, its hardware, gpus and factors are missing: a different number.
        siteless = con.execute(
            f"""SELECT SUM(wl_energy_wh(model, hardware, input_tokens, output_tokens, duration_s,
                                        energy_j) * COALESCE(weight, 1.0))
                FROM read_json('{fleet.logs["jsonl"]}')"""
        ).fetchall()[0][0]
    finally:
        con.close()
    assert math.isclose(raw, booked, rel_tol=1e-9)
    assert not math.isclose(siteless, booked, rel_tol=1e-3)


def test_active_config_is_the_latest_runs_unless_given(
    fleet: FleetFiles, siteless: tuple[Path, Path], tmp_path: Path
) -> None:
    ledger = tmp_path / "l.duckdb"
    heavier = tmp_path / "heavier.toml"
    # Doubling every token coefficient doubles the tokens method's energy, nothing else.
    text = Path(fleet.config).read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        if key in ("wh_per_1k_input", "wh_per_1k_output"):
            line = f"{key} = {float(line.split('=')[1].split('#')[0]) * 2!r}"
        lines.append(line)
    heavier.write_text("\n".join(lines) + "\n")
    _, log = siteless
    query = f"""SELECT SUM(wl_energy_wh(model, hardware, input_tokens, output_tokens, duration_s,
                                        energy_j)) FILTER (WHERE wl_energy_method(model, hardware,
                       input_tokens, output_tokens, duration_s, energy_j) = 'tokens')
                FROM read_json('{log}')"""

    def tokens_wh(**kw: object) -> float:
        con = wl.connect(ledger, allow_read=[log], **kw)  # type: ignore[arg-type]
        try:
            return float(con.execute(query).fetchall()[0][0])
        finally:
            con.close()

    wl.ingest(fleet.logs["jsonl"], ledger=ledger, config=fleet.config, grid=[fleet.grid], progress=False)
    base = tokens_wh()
    assert math.isclose(tokens_wh(config=heavier), 2 * base, rel_tol=1e-9)
    july = generate_fleet(tmp_path / "july", records=200, span="day", start="2025-07-01", seed=41)
    wl.ingest(july.logs["jsonl"], ledger=ledger, config=heavier, grid=[fleet.grid], progress=False)
    assert math.isclose(tokens_wh(), 2 * base, rel_tol=1e-9)  # the latest run's config now
    assert math.isclose(tokens_wh(config=fleet.config), base, rel_tol=1e-9)


def test_functions_are_vectorised_and_keep_nulls(siteless: tuple[Path, Path], monkeypatch) -> None:
    ledger, log = siteless
    calls: list[int] = []
    real = udf._core.accelerator_energy_wh

    def counting(config, model, *rest):  # type: ignore[no-untyped-def]
        calls.append(len(model))
        return real(config, model, *rest)

    monkeypatch.setattr(udf._core, "accelerator_energy_wh", counting)
    con = wl.connect(ledger, allow_read=[log])
    try:
        con.execute(
            f"""SELECT SUM(wl_energy_wh(model, hardware, input_tokens, output_tokens, duration_s,
                                        energy_j)) FROM read_json('{log}')"""
        ).fetchall()
        edge = con.execute(
            """SELECT wl_energy_wh(m, NULL, NULL, NULL, NULL, e),
                      wl_energy_method(m, NULL, NULL, NULL, NULL, e)
               FROM (VALUES ('llama-3.1-8b', 7200.0), ('llama-3.1-8b', NULL), (NULL, 3600.0)) t(m, e)"""
        ).fetchall()
    finally:
        con.close()
    assert sum(calls[:-2]) >= 20_000 and len(calls) < 20_000 / 1000  # whole vectors, not rows
    assert edge[0] == (2.0, "measured")
    assert edge[1] == (None, "none")  # no method applies: NULL energy, never a silent zero
    assert edge[2][0] is None  # no model: NULL


def test_sql_command_has_the_functions_and_formats(siteless: tuple[Path, Path]) -> None:
    ledger, log = siteless
    query = (
        "SELECT wl_energy_method(model, hardware, input_tokens, output_tokens, duration_s, energy_j)"
        f" AS method, COUNT(*) AS n FROM read_json('{log}') GROUP BY 1 ORDER BY 1"
    )
    allow = ("--allow-read", str(log.parent))
    as_json = run("sql", "--ledger", ledger, *allow, query, "--format", "json")
    assert as_json.exit_code == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert sum(r["n"] for r in rows) == 20_000
    as_csv = run("sql", "--ledger", ledger, *allow, query, "--format", "csv")
    assert as_csv.stdout.splitlines()[0] == "method,n"
    prompt = run("sql", "--ledger", ledger, *allow, input=f"{query};\n.quit\n")
    assert prompt.exit_code == 0 and "measured" in prompt.stdout
    write = run("sql", "--ledger", ledger, "DELETE FROM wl_hourly")
    assert write.exit_code == EXIT_INPUT and "read-only" in write.stderr


# ---------------------------------------------------------------------------------------------
# 5. export --parquet
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def year_ledger(year_fleet: FleetFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ledger = tmp_path_factory.mktemp("yl") / "l.duckdb"
    wl.ingest(
        year_fleet.logs["jsonl"],
        ledger=ledger,
        config=year_fleet.config,
        grid=[year_fleet.grid],
        progress=False,
    )
    return ledger


def view_totals(ledger: Path) -> dict[str, float]:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        cols = ", ".join(f"SUM({c}) AS {c}" for c in MEASURE_COLUMNS)
        rel = con.execute(f"SELECT COUNT(*) AS rows, {cols} FROM energy_hourly")
        names = [d[0] for d in rel.description]
        return dict(zip(names, rel.fetchall()[0], strict=True))
    finally:
        con.close()


def test_export_parquet_is_hive_partitioned_and_sums_like_the_view(year_ledger: Path, tmp_path: Path) -> None:
    out = tmp_path / "lake" / "energy"
    out.parent.mkdir()
    result = run("export", "--ledger", year_ledger, "--parquet", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and "hourly rows" in result.stderr
    parts = {p.relative_to(out).as_posix() for p in out.glob("year=*/month=*")}
    assert parts == {f"year=2025/month={m}" for m in range(1, 13)}
    frame = pl.scan_parquet(f"{out}/**/*.parquet", hive_partitioning=True).collect()
    assert set(frame.columns) == {*KEY_COLUMNS, *MEASURE_COLUMNS, "year", "month"}  # nothing private
    expected = view_totals(year_ledger)
    assert frame.height == expected["rows"]
    for column in MEASURE_COLUMNS:
        assert math.isclose(frame[column].sum(), expected[column], rel_tol=1e-12), column
    # Each row sits in the partition of its own UTC hour.
    utc = pl.col("hour").dt.convert_time_zone("UTC")
    hours = frame.select(
        (utc.dt.year() == pl.col("year")).all().alias("year_ok"),
        (utc.dt.month() == pl.col("month")).all().alias("month_ok"),
    ).row(0)
    assert hours == (True, True)
    assert [p.name for p in out.parent.iterdir()] == ["energy"]  # no temp dir left


def test_export_refuses_a_non_empty_dir_and_overwrite_swaps_it(year_ledger: Path, tmp_path: Path) -> None:
    out = tmp_path / "energy"
    out.mkdir()
    (out / "keep.txt").write_text("someone else's file\n")
    refused = run("export", "--ledger", year_ledger, "--parquet", out)
    assert refused.exit_code == EXIT_INPUT
    assert refused.stderr.startswith("error: ") and "--overwrite" in refused.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    replaced = run("export", "--ledger", year_ledger, "--parquet", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.stderr
    assert not (out / "keep.txt").exists()
    assert (
        pl.scan_parquet(f"{out}/**/*.parquet", hive_partitioning=True).select(pl.len()).collect().item()
        == (view_totals(year_ledger)["rows"])
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["energy"]

    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("export", "--ledger", year_ledger, "--parquet", empty).exit_code == 0  # empty is fine


def test_export_that_fails_half_way_leaves_the_old_export(
    year_ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wattledger import export

    out = tmp_path / "energy"
    wl_export = export.export_parquet
    wl_export(year_ledger, out)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))

    def broken(con: duckdb.DuckDBPyConnection, tmp: Path) -> int:
        (tmp / "year=2025" / "month=1").mkdir(parents=True)
        pa.parquet.write_table(pa.table({"x": [1]}), tmp / "year=2025" / "month=1" / "partial.parquet")
        raise wl.OutputError("disk full (simulated)")

    monkeypatch.setattr(export, "_write", broken)
    with pytest.raises(wl.OutputError, match="simulated"):
        wl_export(year_ledger, out, overwrite=True)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["energy"]  # the temp dir was removed
