"""Issue 11, points 6 and 8: a run's coverage warnings (--warn-share, --strict, stored with the
run, carried into reports and the rollup's coverage section) and reports that are byte-identical
on every run and every thread count (exact, order-independent sums)."""

from __future__ import annotations

import json
import math
import textwrap
import warnings
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import wattledger as wl
from ledger_data import build_ledger, cell, utc
from wattledger.cli import EXIT_STRICT, app
from wattledger.errors import RunWarning, StrictWarningError, UsageError
from wattledger.ledger import LedgerWriter
from wattledger.run_checks import parse_share
from wattledger.schema import SUM_SCALE, exact_sum_sql

runner = CliRunner()

PACK = textwrap.dedent(
    """
    [defaults]
    pue = 1.2

    [hardware."h100"]
    tdp_w = 700
    idle_w = 75
    peak_tflops = 989

    [models."m"]
    active_params_b = 8
    [[models."m".coefficients]]
    hardware = "*"
    wh_per_1k_input = 0.0025
    wh_per_1k_output = 0.033

    [sites."gridded"]
    zone = "DE"
    hardware = "h100"

    [sites."nowhere"]
    zone = "XX"
    hardware = "h100"
    """
)


def _log(path: Path, sites: list[str]) -> Path:
    lines = [
        json.dumps(
            {
                "ts": f"2025-03-01T0{i % 3}:10:00Z",
                "model": "m",
                "site": s,
                "input_tokens": 100,
                "output_tokens": 50,
            }
        )
        for i, s in enumerate(sites)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    pack = tmp_path / "pack.toml"
    pack.write_text(PACK, encoding="utf-8")
    grid = tmp_path / "grid.csv"
    grid.write_text(
        "zone,datetime,g_per_kwh\n" + "".join(f"DE,2025-03-01T0{h}:00:00Z,{300 + h}\n" for h in range(3)),
        encoding="utf-8",
    )
    # 9 of 10 records located on the grid: 10% of the energy is unresolved (zone XX).
    log = _log(tmp_path / "day.jsonl", ["gridded"] * 9 + ["nowhere"])
    return {"pack": pack, "grid": grid, "log": log, "ledger": tmp_path / "l.duckdb"}


def _ingest(s: dict[str, Path], *extra: str):
    args = ["ingest", str(s["log"]), "--config", str(s["pack"]), "--grid", str(s["grid"])]
    return runner.invoke(app, [*args, "--ledger", str(s["ledger"]), "--no-progress", *extra])


def _runs(ledger: Path) -> list[tuple[str, list[str] | None]]:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        return con.execute("SELECT run_id, warnings FROM runs ORDER BY run_id").fetchall()
    finally:
        con.close()


def test_unresolved_share_warns_at_the_end_and_is_stored_with_the_run(setup: dict[str, Path]) -> None:
    r = _ingest(setup)
    assert r.exit_code == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "10.00% of energy" in warned[0] and "has no grid intensity" in warned[0]
    assert r.stderr.rstrip().endswith(warned[0])  # at the end, where a cron log's reader looks
    [(_, stored)] = _runs(setup["ledger"])
    assert stored == [warned[0].removeprefix("warning: ")]


def test_warn_share_raises_the_threshold(setup: dict[str, Path]) -> None:
    r = _ingest(setup, "--warn-share", "10%")  # 10% is not above 10%
    assert r.exit_code == 0, r.stderr
    assert "warning:" not in r.stderr
    assert _runs(setup["ledger"])[0][1] == []


def test_strict_turns_a_warning_into_exit_6_and_writes_nothing(setup: dict[str, Path]) -> None:
    r = _ingest(setup, "--strict")
    assert r.exit_code == EXIT_STRICT, r.stderr
    [error] = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert "--strict" in error and "has no grid intensity" in error and "nothing was written" in error
    assert not setup["ledger"].exists()  # the run created it, failed, and removed it again
    # Without the warning's cause, --strict passes.
    _log(setup["log"], ["gridded"] * 10)
    assert _ingest(setup, "--strict").exit_code == 0


def test_strict_refuses_a_run_without_grid(setup: dict[str, Path]) -> None:
    args = ["ingest", str(setup["log"]), "--config", str(setup["pack"]), "--ledger", str(setup["ledger"])]
    r = runner.invoke(app, [*args, "--strict", "--no-progress"])
    assert r.exit_code == EXIT_STRICT and "no --grid given" in r.stderr
    assert not setup["ledger"].exists()


def test_api_emits_run_warnings_and_strict_raises(setup: dict[str, Path]) -> None:
    kw = {"ledger": setup["ledger"], "config": setup["pack"], "grid": [setup["grid"]], "progress": False}
    with pytest.raises(StrictWarningError, match="has no grid intensity"):
        wl.ingest(setup["log"], strict=True, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = wl.ingest(setup["log"], warn_share=0.05, **kw)
    assert [str(w.message) for w in caught if w.category is RunWarning] == list(summary.warnings)
    assert len(summary.warnings) == 1 and summary.unresolved_share == pytest.approx(0.1)


def test_reports_and_rollup_carry_the_runs_warnings(setup: dict[str, Path]) -> None:
    assert _ingest(setup).exit_code == 0
    [(run_id, _)] = _runs(setup["ledger"])
    common = ["--ledger", str(setup["ledger"]), "--year", "2025"]
    rep = runner.invoke(app, ["report", *common, "--format", "csv"])
    assert rep.exit_code == 0 and f"1 run(s) behind this period carried 1 warning(s) ({run_id})" in rep.stderr
    strict = runner.invoke(app, ["report", *common, "--format", "csv", "--strict"])
    assert strict.exit_code == EXIT_STRICT and strict.stdout == ""
    doc = runner.invoke(app, ["rollup", *common, "--format", "md"])
    assert doc.exit_code == 0
    coverage = doc.stdout[doc.stdout.index("Emissions (GHG Protocol Scope 2) and coverage") :]
    assert f"Run {run_id} warned: 10.00% of energy" in coverage
    data = json.loads(runner.invoke(app, ["rollup", *common, "--format", "json"]).stdout)
    assert any(r["warnings"] for r in data["provenance"]["runs"])
    assert runner.invoke(app, ["rollup", *common, "--strict"]).exit_code == EXIT_STRICT


@pytest.mark.parametrize(("text", "value"), [("1%", 0.01), ("0.05", 0.05), ("100%", 1.0), (0.2, 0.2)])
def test_parse_share(text: str | float, value: float) -> None:
    assert parse_share(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["-1%", "1.5", "abc", "200%"])
def test_parse_share_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_share(text)


# ----- point 8: byte-identical reports --------------------------------------------------------


@pytest.fixture(scope="module")
def big_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough rows (several DuckDB row groups) that a plain SUM's result depends on how the
    threads split them; values spread over many magnitudes so the order shows in the last bits."""
    d = tmp_path_factory.mktemp("det")
    ledger = d / "big.duckdb"
    build_ledger(ledger, d, {"a.jsonl": [cell("", utc(2025, 1, 1, 0), "seed", 1.0)]})
    with LedgerWriter(ledger) as w:
        w.connection.execute(
            """INSERT INTO wl_hourly
            SELECT run_id, source_id, config_sha256,
                   hour + to_hours(i % 8000), 'model-' || (i % 3), site, zone, hardware,
                   CASE WHEN i % 5 = 0 THEN 'measured' ELSE method END, records,
                   requests * (1 + i % 7) / 3, input_tokens, output_tokens,
                   e / 2, e / 1.5, e, e * 0.7, e * 1.3, e * 0.4, e * 0.1, flops * (i % 11 + 0.1),
                   e / 7, e * (i % 2), 0.0, 0.0, 0.0, 0.0
            FROM (SELECT *, pow(10, (i * 7919) % 13 - 6) * (1 + ((i * 104729) % 1000) / 997.0) AS e
                  FROM wl_hourly, range(600000) r(i))"""
        )
    return ledger


def _report_outputs(ledger: Path, threads: tuple[int, ...], *args: str) -> set[str]:
    """The distinct stdouts of ``report`` on ``ledger`` run once per thread count."""
    outputs = set()
    for t in threads:
        r = runner.invoke(
            app, ["report", "--ledger", str(ledger), "--year", "2025", *args, "--threads", str(t)]
        )
        assert r.exit_code == 0, r.stderr
        outputs.add(r.stdout)
    return outputs


def test_report_is_byte_identical_across_runs_and_thread_counts(big_ledger: Path) -> None:
    assert len(_report_outputs(big_ledger, (1, 2, 3, 4, 8), "--format", "csv")) == 1
    assert len(_report_outputs(big_ledger, (1, 2, 4, 8), "--by", "month", "--format", "json")) == 1
    docs = {wl.rollup(big_ledger, year=2025, threads=t).render("json") for t in (1, 2, 4)}
    assert len(docs) == 1


def test_report_sums_match_an_exact_sum(big_ledger: Path) -> None:
    con = duckdb.connect(str(big_ledger), read_only=True)
    try:
        values: dict[str, list[float]] = {}
        for model, e in con.execute("SELECT model, energy_kwh FROM wl_hourly").fetchall():
            values.setdefault(model, []).append(e)
    finally:
        con.close()
    frame = wl.report(big_ledger, year=2025)
    for row in frame.iter_rows(named=True):
        exact = math.fsum(values[row["model"]])
        assert row["energy_kwh"] == pytest.approx(exact, rel=4e-16, abs=0)


finite = st.floats(min_value=0.0, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(xs=st.lists(st.one_of(finite, st.floats(min_value=1e-12, max_value=1e-3)), min_size=1, max_size=60))
def test_exact_sum_is_order_independent_and_close_to_fsum(xs: list[float]) -> None:
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (i INTEGER, x DOUBLE)")
        con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(xs)))
        sql = f"SELECT {exact_sum_sql('x', 'energy_kwh')} FROM (SELECT x FROM t ORDER BY {{}})"
        forward = con.execute(sql.format("i")).fetchall()[0][0]
        backward = con.execute(sql.format("i DESC")).fetchall()[0][0]
        con.execute("CREATE TABLE u AS SELECT * FROM t ORDER BY hash(i)")
        other = con.execute(f"SELECT {exact_sum_sql('x', 'energy_kwh')} FROM u").fetchall()[0][0]
    finally:
        con.close()
    assert forward == backward == other
    grain = len(xs) * 2.0 ** -(SUM_SCALE.get("energy_kwh", 24) + 53)
    assert abs(forward - math.fsum(xs)) <= 4 * math.ulp(math.fsum(xs)) + grain


def test_exact_sum_keeps_sql_null_semantics() -> None:
    con = duckdb.connect()
    try:
        got = con.execute(
            f"SELECT {exact_sum_sql('x', 'energy_kwh')} FROM (SELECT NULL::DOUBLE AS x UNION ALL SELECT NULL)"
        ).fetchall()[0][0]
        mixed = con.execute(
            f"SELECT {exact_sum_sql('x', 'energy_kwh')} FROM (SELECT NULL::DOUBLE AS x UNION ALL SELECT 0.25)"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert got is None and mixed == 0.25
