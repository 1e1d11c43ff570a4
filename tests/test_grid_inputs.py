"""Grid inputs as users have them (issue 11, "nothing silently wrong"): daily or monthly grids,
zone-less files with FILE@ZONE (the UK Carbon Intensity API CSV), Electricity Maps' estimated
hours, duplicate and offset-less rows, and files in the wrong encoding or separator.

Through the command line and the compiled engine: exit code and the one ``error:`` line, and
the warnings on stderr, on the summary and on the ledger's ``runs`` view. Fixtures are written
field by field from the formats as exported (Electricity Maps: ``Datetime (UTC)`` without an
offset, ``Data estimated`` true/false, ``Data estimation method`` e.g.
ESTIMATED_FORECASTS_HIERARCHY; UK API: ``from``/``to`` like ``2024-03-01T00:30Z``, null actuals
as empty cells).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

import wattledger as wl
from wattledger.cli import EXIT_INPUT, app

runner = CliRunner()

EM_HEADER = (
    "Datetime (UTC),Country,Zone name,Zone id,Carbon intensity gCO₂eq/kWh (direct),"
    "Carbon intensity gCO₂eq/kWh (Life cycle),Carbon-free energy percentage (CFE%),"
    "Renewable energy percentage (RE%),Data source,Data estimated,Data estimation method"
)
UK_HEADER = "from,to,intensity.forecast,intensity.actual,intensity.index"


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    errors = [line for line in result.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def warning_lines(result) -> list[str]:
    return [
        line.removeprefix("warning: ") for line in result.stderr.splitlines() if line.startswith("warning: ")
    ]


def write_logs(path: Path, rows: list[tuple[str, str]]) -> Path:
    """One measured record (3.6 kJ = 1 Wh accelerator energy) per (timestamp, zone)."""
    lines = [json.dumps({"ts": ts, "model": "m", "zone": zone, "energy_j": 3600.0}) for ts, zone in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored_warnings(ledger: Path) -> list[str]:
    with wl.connect(ledger) as con:
        (stored,) = con.sql("SELECT warnings FROM runs").fetchall()[0]
    return list(stored or [])


# --------------------------------------------------------------------------------------------
# resolution
# --------------------------------------------------------------------------------------------

DAILY = "zone,datetime,g_per_kwh\nDE,2024-03-01,300\nDE,2024-03-02,200\nDE,2024-03-03,100\n"


def test_daily_grid_is_refused_then_spread_with_grid_resolution_day(tmp_path: Path) -> None:
    grid = tmp_path / "daily.csv"
    grid.write_text(DAILY)
    logs = write_logs(tmp_path / "a.jsonl", [("2024-03-01T10:15:00Z", "DE"), ("2024-03-02T23:59:00Z", "DE")])
    ledger = tmp_path / "l.duckdb"
    refused = run("ingest", logs, "--grid", grid, "--ledger", ledger)
    one_error_line(
        refused,
        EXIT_INPUT,
        f"grid {grid}: line 3: zone DE: rows are 24 h apart (daily), not hourly",
        "--grid-resolution day",
    )
    assert not ledger.exists() or stored_warnings(ledger) == []
    ok = run("ingest", logs, "--grid", grid, "--grid-resolution", "day", "--ledger", ledger)
    assert ok.exit_code == 0, ok.stderr
    # Every record priced on its day's value: no fallback at all.
    assert "coverage:   0.00% of energy on fallback intensity, 0.00% unresolved" in ok.stdout
    spread = (
        f"grid {grid}: zone DE: the grid is daily: 3 rows spread over every hour of their UTC day "
        "(--grid-resolution day); hour-to-hour variation is not in it"
    )
    assert warning_lines(ok) == [spread]
    assert stored_warnings(ledger) == [spread]
    # 1.2 Wh facility energy (default PUE) per record at 300 and 200 g/kWh.
    with wl.connect(ledger) as con:
        (co2e,) = con.sql("SELECT sum(co2e_location_kg) FROM energy_hourly").fetchall()[0]
    assert co2e == pytest.approx(0.0012 * (300 + 200) / 1000)


def test_grid_summary_takes_grid_resolution_and_prints_grid_warnings(tmp_path: Path) -> None:
    grid = tmp_path / "monthly.csv"
    grid.write_text("zone,datetime,g_per_kwh\nFR,2024-01-01T00:00:00Z,60\nFR,2024-02-01T00:00:00Z,50\n")
    refused = run("grid", "summary", grid)
    one_error_line(
        refused, EXIT_INPUT, "zone FR: rows are 31 days apart (monthly)", "--grid-resolution month"
    )
    one_error_line(run("grid", "summary", grid, "--grid-resolution", "day"), EXIT_INPUT, "(monthly)")
    ok = run("grid", "summary", grid, "--grid-resolution", "month")
    assert ok.exit_code == 0, ok.stderr
    assert "1440" in ok.stdout.replace(",", "")  # (31 + 29) * 24 hours with a value
    assert warning_lines(ok) == [
        f"grid {grid}: zone FR: the grid is monthly: 2 rows spread over every hour of their UTC month "
        "(--grid-resolution month); hour-to-hour variation is not in it"
    ]
    assert run("grid", "summary", grid, "--grid-resolution", "week").exit_code == 2  # not a choice
    with pytest.raises(wl.UsageError, match="not one of hour, day, month"):
        wl.load_grid(grid, resolution="week")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# FILE@ZONE and the UK Carbon Intensity API CSV; estimated hours
# --------------------------------------------------------------------------------------------

UK = "\n".join(
    [
        UK_HEADER,
        "2024-03-01T00:00Z,2024-03-01T00:30Z,150,140,moderate",
        "2024-03-01T00:30Z,2024-03-01T01:00Z,148,160,moderate",
        "2024-03-01T01:00Z,2024-03-01T01:30Z,120,,low",  # forecast only: estimated
        "2024-03-01T01:30Z,2024-03-01T02:00Z,110,,low",
    ]
)


def test_uk_csv_needs_at_zone_and_forecast_hours_count_as_estimated(tmp_path: Path) -> None:
    grid = tmp_path / "uk.csv"
    grid.write_text(UK + "\n")
    logs = write_logs(
        tmp_path / "gb.jsonl",
        [("2024-03-01T00:10:00Z", "GB"), ("2024-03-01T00:50:00Z", "GB"), ("2024-03-01T01:20:00Z", "GB")],
    )
    ledger = tmp_path / "l.duckdb"
    zoneless = run("ingest", logs, "--grid", grid, "--ledger", ledger)
    one_error_line(zoneless, EXIT_INPUT, f"grid {grid}: line 1: no zone column", f"--grid {grid}@GB")
    ok = run("ingest", logs, "--grid", f"{grid}@GB", "--ledger", ledger)
    assert ok.exit_code == 0, ok.stderr
    expected = [
        f"grid {grid}: zone GB: 1 of 2 hours have only intensity.forecast (no intensity.actual), counted as "
        "estimated; the run reports the share of energy priced on them",
        "33.3% of energy (0.001200 kWh) was priced on grid hours flagged estimated "
        "(UK Carbon Intensity forecast, no actual value)",
    ]
    assert warning_lines(ok) == expected
    assert stored_warnings(ledger) == expected  # grid warnings first, then the engine's
    with wl.connect(ledger) as con:
        (co2e,) = con.sql("SELECT sum(co2e_location_kg) FROM energy_hourly").fetchall()[0]
    # Hour 00: mean of the actuals (150); hour 01: mean of the forecasts (115).
    assert co2e == pytest.approx(0.0012 * (150 + 150 + 115) / 1000)


def test_electricity_maps_estimated_share_through_the_python_api(tmp_path: Path) -> None:
    grid = tmp_path / "DE_2024_hourly.csv"
    rows = [
        "2024-03-01 00:00:00,Germany,Germany,DE,300.5,350,40,50,entsoe.eu,false,",
        "2024-03-01 01:00:00,Germany,Germany,DE,310,360,40,50,entsoe.eu,true,ESTIMATED_FORECASTS_HIERARCHY",
        "2024-03-01 02:00:00,Germany,Germany,DE,320,370,40,50,entsoe.eu,false,",
    ]
    grid.write_text("\n".join([EM_HEADER, *rows]) + "\n", encoding="utf-8")
    logs = write_logs(
        tmp_path / "de.jsonl",
        [("2024-03-01T00:30:00Z", "DE"), ("2024-03-01T01:30:00Z", "DE"), ("2024-03-01T02:30:00Z", "DE")],
    )
    g = wl.load_grid(grid)
    assert g.warnings == [
        f"grid {grid}: zone DE: 1 of 3 hours are flagged estimated (Electricity Maps 'Data estimated'); "
        "the run reports the share of energy priced on them"
    ]
    assert g.summary()[0].hours_estimated == 1
    share = (
        "33.3% of energy (0.001200 kWh) was priced on grid hours flagged estimated "
        "(Electricity Maps 'Data estimated')"
    )
    summary = wl.ingest(logs, ledger=tmp_path / "l.duckdb", grid=[grid], progress=False)
    assert summary.warnings == (*g.warnings, share)
    with pytest.warns(wl.RunWarning) as caught:
        wl.estimate(logs, grid=[grid])
    assert [str(w.message) for w in caught] == [*g.warnings, share]
    # An hourly grid with no estimated hour: no warning at all, numbers as before.
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([EM_HEADER, rows[0], rows[2]]) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wl.estimate(logs, grid=[clean])


def test_at_zone_on_a_file_with_a_zone_column_and_paths_with_at(tmp_path: Path) -> None:
    grid = tmp_path / "grid@2024.csv"  # an '@' in an existing path is part of the path
    grid.write_text("zone,datetime,g_per_kwh\nDE,2024-03-01T00:00:00Z,300\nFR,2024-03-01T00:00:00Z,50\n")
    logs = write_logs(tmp_path / "a.jsonl", [("2024-03-01T00:10:00Z", "DE")])
    ok = run("ingest", logs, "--grid", grid, "--ledger", tmp_path / "l.duckdb")
    assert ok.exit_code == 0, ok.stderr
    mismatch = run("ingest", logs, "--grid", f"{grid}@DE", "--ledger", tmp_path / "m.duckdb")
    one_error_line(
        mismatch, EXIT_INPUT, f"grid {grid}: line 3: zone 'FR' but the file was given as", "drop @DE"
    )
    plain = tmp_path / "se.csv"
    plain.write_text("datetime,g_per_kwh\n2024-03-01T00:00:00Z,20\n2024-03-01T01:00:00Z,25\n")
    assert [z.zone for z in wl.load_grid([f"{plain}@SE", grid]).summary()] == ["DE", "FR", "SE"]
    missing = run("ingest", logs, "--grid", tmp_path / "none.csv@GB", "--ledger", tmp_path / "n.duckdb")
    one_error_line(missing, EXIT_INPUT, f"grid {tmp_path / 'none.csv'}: file does not exist", "FILE@ZONE")


# --------------------------------------------------------------------------------------------
# duplicates and offsets
# --------------------------------------------------------------------------------------------


def test_duplicate_hours_and_naive_times_are_warned_in_a_stable_order(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("zone,datetime,g_per_kwh\nDE,2024-03-01 00:00:00,100\nDE,2024-03-01 01:00:00,100\n")
    b = tmp_path / "b.csv"
    b.write_text("zone,datetime,g_per_kwh\nDE,2024-03-01T00:00:00Z,300\nDE,2024-03-01T01:00:00Z,100\n")
    logs = write_logs(tmp_path / "a.jsonl", [("2024-03-01T00:10:00Z", "DE")])
    ledger = tmp_path / "l.duckdb"
    ok = run("ingest", logs, "--grid", a, "--grid", b, "--ledger", ledger)
    assert ok.exit_code == 0, ok.stderr
    expected = [
        f"grid {a}: zone DE: 2 rows have a timestamp without a UTC offset (e.g. '2024-03-01 00:00:00'), read "
        "as UTC; if they are local times every value is shifted by the UTC offset (1-2 h in Europe): write "
        "them with 'Z' or an offset",
        f"grid {a}, {b}: zone DE: 1 hour has several rows for the same time with different values (largest "
        "spread 200 g/kWh); they were averaged",
    ]
    assert warning_lines(ok) == expected
    assert stored_warnings(ledger) == expected
    with wl.connect(ledger) as con:
        (co2e,) = con.sql("SELECT sum(co2e_location_kg) FROM energy_hourly").fetchall()[0]
    assert co2e == pytest.approx(0.0012 * 200 / 1000)  # the mean of 100 and 300


# --------------------------------------------------------------------------------------------
# encodings and separators
# --------------------------------------------------------------------------------------------

PLAIN = "zone,datetime,g_per_kwh\nDE,2024-03-01T00:00:00Z,300\n"


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (PLAIN.encode("utf-16"), ("UTF-16 LE (byte-order mark FF FE)", "iconv -f UTF-16 -t UTF-8")),
        (b"\xfe\xff" + PLAIN.encode("utf-16-be"), ("UTF-16 BE (byte-order mark FE FF)", "iconv -f UTF-16 ")),
        (PLAIN.encode("utf-16-le"), ("UTF-16 LE without a byte-order mark", "iconv -f UTF-16LE -t UTF-8")),
        (
            "zone,datetime,g_per_kwh\nDÜ,2024-03-01T00:00:00Z,300\n".encode("cp1252"),
            ("line 2: not UTF-8 text: byte 0xDC looks like Latin-1 / Windows-1252", "iconv -f WINDOWS-1252"),
        ),
    ],
    ids=["utf16-le-bom", "utf16-be-bom", "utf16-le", "windows-1252"],
)
def test_non_utf8_grid_is_one_line_naming_the_encoding(tmp_path: Path, data: bytes, fragments) -> None:
    grid = tmp_path / "grid.csv"
    grid.write_bytes(data)
    logs = write_logs(tmp_path / "a.jsonl", [("2024-03-01T00:10:00Z", "DE")])
    result = run("ingest", logs, "--grid", grid, "--ledger", tmp_path / "l.duckdb")
    line = one_error_line(result, EXIT_INPUT, f"grid {grid}: ", "not UTF-8 text", *fragments)
    assert line.endswith(f"{grid} > {tmp_path / 'grid-utf8.csv'}")
    one_error_line(run("grid", "summary", grid), EXIT_INPUT, *fragments)
    with pytest.raises(wl.GridError, match="not UTF-8 text"):  # never a UnicodeDecodeError
        wl.load_grid(grid)


def test_semicolon_and_decimal_comma_files_are_refused_with_the_fix(tmp_path: Path) -> None:
    semi = tmp_path / "semi.csv"
    semi.write_text("zone;datetime;g_per_kwh\nDE;2024-03-01T00:00:00Z;300,5\n")
    one_error_line(
        run("grid", "summary", semi),
        EXIT_INPUT,
        f"grid {semi}: line 1: fields are separated by ';'",
        f"sed -e 's/,/./g' -e 's/;/,/g' {semi} > {tmp_path / 'semi-comma.csv'}",
    )
    comma = tmp_path / "comma.csv"
    comma.write_text("zone,datetime,g_per_kwh\nDE,2024-03-01T00:00:00Z,300,5\n")
    one_error_line(
        run("grid", "summary", comma), EXIT_INPUT, "line 2: 4 fields but the header has 3: a decimal comma"
    )


def test_grid_resolution_takes_the_adjective_too(tmp_path: Path) -> None:
    daily = tmp_path / "daily.csv"
    daily.write_text(
        "zone,datetime,g_per_kwh\n"
        + "".join(f"FR,2025-03-{d:02d}T00:00:00Z,{50 + d}\n" for d in range(1, 5)),
        encoding="utf-8",
    )
    assert (
        wl.load_grid([daily], resolution="daily").summary()
        == wl.load_grid([daily], resolution="day").summary()
    )
    r = CliRunner().invoke(app, ["grid", "summary", str(daily), "--grid-resolution", "daily"])
    assert r.exit_code == 0, r.stderr
