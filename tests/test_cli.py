"""The command line: exact output shapes, one-line errors, exit codes (see ``wattledger --help``).

Report/sql tests run on hand-built ledgers; ingest/validate/grid/demo run the compiled engine on
synthetic logs. Every error case asserts a single ``error:`` line on stderr and no traceback.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger_data import build_ledger, cell, utc
from wattledger.cli import EXIT_BUSY, EXIT_CONFLICT, EXIT_INPUT, EXIT_REJECTS, app
from wattledger.schema import REPORT_COLUMNS

runner = CliRunner()


def run(*args: str, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def assert_one_error_line(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    build_ledger(
        path,
        tmp_path,
        {
            "a.jsonl": [
                cell("", utc(2025, 1, 1, 0), "zeta", 1.0 / 3.0),
                cell("", utc(2025, 1, 1, 0), "Alpha", 123456.789, method="measured"),
                cell("", utc(2025, 2, 3, 4), "beta", None),
            ]
        },
    )
    return path


def test_report_csv_header_is_section_9_sorted_by_model(ledger: Path) -> None:
    result = run("report", "--ledger", ledger, "--year", "2025", "--by", "model", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == REPORT_COLUMNS
    assert [r[0] for r in rows[1:]] == ["Alpha", "beta", "zeta"]
    zeta = dict(zip(rows[0], rows[3], strict=True))
    assert zeta["energy_kwh"] == repr(1.0 / 3.0)  # full precision
    beta = dict(zip(rows[0], rows[2], strict=True))
    assert beta["energy_kwh"] == "" and beta["measured_kwh"] == ""  # NULL, not 0


def test_report_json_is_exact_and_table_is_rounded(ledger: Path) -> None:
    result = run("report", "--ledger", ledger, "--year", "2025", "--format", "json")
    data = json.loads(result.stdout)
    assert [d["model"] for d in data] == ["Alpha", "beta", "zeta"]
    assert list(data[0]) == list(REPORT_COLUMNS)
    assert data[2]["energy_kwh"] == 1.0 / 3.0 and data[1]["energy_kwh"] is None
    table = run("report", "--ledger", ledger, "--year", "2025", "--format", "table")
    assert table.exit_code == 0
    assert "123,500" in table.stdout and "0.3333" in table.stdout and "0.333333" not in table.stdout
    assert "config: pack-a 1 sha256 " + "a" * 64 in table.stdout
    md = run("report", "--ledger", ledger, "--year", "2025", "--format", "md")
    assert md.stdout.startswith("| model | requests |")


def test_report_by_month_and_out_file(ledger: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "feb.csv"
    out.parent.mkdir()
    result = run(
        "report", "--ledger", ledger, "--year", "2025", "--by", "month", "--format", "csv", "--out", out
    )
    assert result.exit_code == 0 and result.stdout == ""
    rows = list(csv.reader(out.open()))
    assert rows[0][0] == "month" and [r[0] for r in rows[1:]] == ["2025-01", "2025-02"]
    assert [p.name for p in out.parent.iterdir()] == ["feb.csv"]  # no temp file left behind


def test_report_rejects_unknown_choices(ledger: Path) -> None:
    assert run("report", "--ledger", ledger, "--year", "2025", "--by", "colour").exit_code == 2
    assert run("report", "--ledger", ledger, "--year", "2025", "--format", "xlsx").exit_code == 2
    assert run("report", "--ledger", ledger, "--year", "2025", "--month", "13").exit_code == 2


def test_report_missing_ledger_is_one_line(tmp_path: Path) -> None:
    result = run("report", "--ledger", tmp_path / "none.duckdb", "--year", "2025")
    assert_one_error_line(result, EXIT_INPUT, "none.duckdb does not exist", "wattledger ingest")


def test_report_busy_ledger(ledger: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(60)",
            str(ledger),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        result = run("report", "--ledger", ledger, "--year", "2025")
        assert_one_error_line(result, EXIT_BUSY, "is busy", "retry later")
    finally:
        holder.kill()
        holder.wait()


def test_sql_query_formats_and_read_only(ledger: Path) -> None:
    result = run(
        "sql",
        "--ledger",
        ledger,
        "SELECT model, records FROM energy_by_model_year ORDER BY model",
        "--format",
        "csv",
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["model,records", "Alpha,10", "beta,10", "zeta,10"]
    write = run("sql", "--ledger", ledger, "DELETE FROM wl_hourly")
    assert_one_error_line(write, EXIT_INPUT, "sql:")
    bad = run("sql", "--ledger", ledger, "SELEC 1")
    assert_one_error_line(bad, EXIT_INPUT, "sql:")


def test_sql_prompt_reads_statements_until_quit(ledger: Path) -> None:
    script = "SELECT COUNT(*) AS n\n  FROM energy_hourly;\nSELECT nope;\n.tables\n.quit\nSELECT 1;\n"
    result = run("sql", "--ledger", ledger, "--format", "csv", input=script)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:2] == ["n", "3"]
    assert "energy_by_model_year" in result.stdout
    assert "error:" in result.stderr  # the bad statement is reported, the prompt goes on
    assert result.stdout.count("\n1\n") == 0  # nothing after .quit


def test_help_documents_exit_codes() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout and "ledger busy" in result.stdout


# ---------------------------------------------------------------------------------------------
# Through the compiled engine
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    from wattledger.synthetic import generate_fleet

    return generate_fleet(
        tmp_path_factory.mktemp("fleet"), records=2000, span="day", formats=("jsonl",), seed=5
    )


def _ingest(fleet, ledger: Path, *extra: object):
    return run(
        "ingest",
        fleet.logs["jsonl"],
        "--config",
        fleet.config,
        "--grid",
        fleet.grid,
        "--ledger",
        ledger,
        *extra,
    )


def test_ingest_prints_summary_then_skips_then_refuses_change(fleet, tmp_path: Path) -> None:
    ledger = tmp_path / "l.duckdb"
    first = _ingest(fleet, ledger)
    assert first.exit_code == 0, first.stderr
    for label in ("run:", "config:", "files:", "records:", "requests:", "energy:", "co2e:", "coverage:"):
        assert label in first.stdout
    assert "measured" in first.stdout and "gpu_time" in first.stdout
    second = _ingest(fleet, ledger)
    assert second.exit_code == 0 and "0 ingested, 1 skipped" in second.stdout
    log = Path(fleet.logs["jsonl"])
    changed = tmp_path / "changed.jsonl"
    changed.write_text(log.read_text() + log.read_text().splitlines()[0] + "\n")
    moved = run("ingest", changed, "--config", fleet.config, "--grid", fleet.grid, "--ledger", ledger)
    assert moved.exit_code == 0
    changed.write_text(log.read_text())  # same path, new content
    refused = run("ingest", changed, "--config", fleet.config, "--grid", fleet.grid, "--ledger", ledger)
    assert_one_error_line(refused, EXIT_CONFLICT, str(changed), "--replace")


def test_ingest_without_grid_says_emissions_are_missing(tmp_path: Path) -> None:
    log = tmp_path / "one.jsonl"
    record = {"ts": "2025-05-01T10:00:00Z", "model": "llama-3.1-8b", "input_tokens": 100}
    log.write_text(json.dumps(record) + "\n")
    result = run("ingest", log, "--ledger", tmp_path / "l.duckdb")
    assert result.exit_code == 0, result.stderr
    # No grid: the summary names why there is no figure instead of printing a blank.
    assert "co2e:       location none (no grid intensity), market none (no grid intensity)" in result.stdout
    assert "100.00% of energy" in result.stderr


def test_ingest_bad_inputs_are_one_line(fleet, tmp_path: Path) -> None:
    ledger = tmp_path / "l.duckdb"
    missing = run("ingest", tmp_path / "nope.jsonl", "--grid", fleet.grid, "--ledger", ledger)
    assert_one_error_line(missing, EXIT_INPUT, "nope.jsonl")
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[defaults]\npue = -1\n")
    result = _ingest(fleet, ledger, "--config", bad_config)
    assert_one_error_line(result, EXIT_INPUT, "pue")
    bad_grid = tmp_path / "grid.csv"
    bad_grid.write_text("zone,datetime,g_per_kwh\nDE,not-a-time,12\n")
    result = run("ingest", fleet.logs["jsonl"], "--grid", bad_grid, "--ledger", ledger)
    assert_one_error_line(result, EXIT_INPUT, "grid.csv")
    result = _ingest(fleet, ledger, "--column", "nonsense")
    assert_one_error_line(result, EXIT_INPUT, "canonical=source")
    assert (
        not ledger.exists()
        or run("sql", "--ledger", ledger, "SELECT COUNT(*) FROM runs", "--format", "csv").stdout.splitlines()[
            1
        ]
        == "0"
    )


def test_validate_exit_codes(fleet, tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    clean.write_text('{"ts": "2025-06-01T00:00:00Z", "model": "m", "zone": "DE", "output_tokens": 3}\n')
    ok = run("validate", clean)
    assert ok.exit_code == 0 and "clean.jsonl" in ok.stdout
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_text(clean.read_text() + '{"model": "m"}\nnot json\n')
    rejects = tmp_path / "rejects.jsonl"
    bad = run("validate", dirty, "--rejects", rejects)
    assert bad.exit_code == EXIT_REJECTS and "2 rejected" in bad.stderr
    assert len(rejects.read_text().splitlines()) == 2


def test_grid_summary(fleet) -> None:
    result = run("grid", "summary", fleet.grid)
    assert result.exit_code == 0, result.stderr
    assert "zone" in result.stdout and "hours_missing" in result.stdout


def test_demo_small(tmp_path: Path) -> None:
    result = run("demo", "--records", "20000", "--dir", tmp_path / "demo")
    assert result.exit_code == 0, result.stderr
    assert "SYNTHETIC" in result.stdout and "energy_kwh" in result.stdout
    assert (tmp_path / "demo" / "ledger.duckdb").exists()
    again = run("demo", "--records", "20000", "--dir", tmp_path / "demo")  # a fresh ledger each time
    assert again.exit_code == 0 and "1 ingested, 0 skipped" in again.stdout


_INGEST_INTERRUPTED = textwrap.dedent(
    """
    import glob, os, signal, sys, threading, time
    from wattledger.cli import main

    def interrupt_while_reading(ledger):
        while not glob.glob(ledger + ".spill-*"):  # created just before the engine starts
            time.sleep(0.005)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_while_reading, args=(sys.argv[1],), daemon=True).start()
    sys.argv = ["wattledger", *sys.argv[2:]]
    main()
    """
)


@pytest.mark.slow
def test_ctrl_c_during_ingest_leaves_ledger_as_before(tmp_path: Path) -> None:
    from wattledger.synthetic import generate_fleet

    big = generate_fleet(tmp_path / "big", records=2_000_000, span="year", formats=("jsonl",), seed=9)
    ledger = tmp_path / "l.duckdb"
    args = ["ingest", big.logs["jsonl"], "--config", big.config, "--grid", big.grid, "--ledger", ledger]
    done = subprocess.run(
        [sys.executable, "-c", _INGEST_INTERRUPTED, str(ledger), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: interrupted")
    assert "Traceback" not in done.stderr
    # The run created the ledger: as before the run, there is none (no empty file left behind).
    assert not ledger.exists() and not Path(f"{ledger}.wal").exists()
    assert not list(tmp_path.glob("l.duckdb.spill-*"))  # spill dir removed
