"""Issue 12, outputs: every DuckDB result type prints in every `sql` format, exactly; CSV text
cells are neutralised against formula injection (OWASP) and numbers never are; markdown cells
escape ``|`` and line breaks; terminal output shows control characters as escapes; JSON keeps
raw values; HTML escaping holds.

Hostile names are written straight into hand-built ledgers (ledger_data), as a ledger written by
an older wattledger, or by hand, may hold them whatever the engine accepts today.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger_data import build_ledger, cell, utc
from wattledger.cli import EXIT_INPUT, app
from wattledger.formatting import escape_terminal, neutralise_csv_text

runner = CliRunner()


def run(*args: object, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("plain")
    path = tmp / "ledger.duckdb"
    build_ledger(path, tmp, {"a.jsonl": [cell("", utc(2025, 1, 1, 0), "m", 1.0)]})
    return path


# ---------------------------------------------------------------------------------------------
# Every result type, every format
# ---------------------------------------------------------------------------------------------

#: (SQL expression, text every text format shows, value the json format gives)
TYPES: dict[str, tuple[str, str, object]] = {
    "interval": ("INTERVAL 1 DAY", "1 day", "1 day"),
    "interval of months": ("INTERVAL 2 MONTH", "2 months", "2 months"),  # not "60 days"
    "infinity timestamp": ("'infinity'::TIMESTAMP", "infinity", "infinity"),
    "-infinity timestamp": ("'-infinity'::TIMESTAMP", "-infinity", "-infinity"),
    "infinity date": ("'infinity'::DATE", "infinity", "infinity"),
    "infinity timestamptz": ("'infinity'::TIMESTAMPTZ", "infinity", "infinity"),
    "hugeint": (
        "170141183460469231731687303715884105727::HUGEINT",
        "170141183460469231731687303715884105727",
        170141183460469231731687303715884105727,
    ),
    "uhugeint": (
        "340282366920938463463374607431768211455::UHUGEINT",
        "340282366920938463463374607431768211455",
        340282366920938463463374607431768211455,
    ),
    "uuid": (
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    ),
    "blob": ("'\\xAA\\x00abc'::BLOB", "\\xAA\\x00abc", "\\xAA\\x00abc"),
    "bit": ("'0101'::BIT", "0101", "0101"),
    "list": ("[1, 2, NULL]", "[1, 2, NULL]", [1, 2, None]),
    "array": ("[1.5, 2.5]::DOUBLE[2]", "[1.5, 2.5]", [1.5, 2.5]),
    "struct": ("{'a': 1, 'b': 'x'}", "{'a': 1, 'b': x}", {"a": 1, "b": "x"}),
    "map": ("MAP {'k': 1}", "{k=1}", {"k": 1}),
    "union": ("union_value(num := 2)::UNION(num INTEGER, str VARCHAR)", "2", {"num": 2}),
    "enum": ("'ok'::ENUM('sad', 'ok')", "ok", "ok"),
    "time with time zone": ("'12:34:56+02'::TIMETZ", "12:34:56+02", "12:34:56+02"),
    "timestamp_ns": (
        "'2025-01-01 00:00:00.123456789'::TIMESTAMP_NS",
        "2025-01-01 00:00:00.123456789",
        "2025-01-01 00:00:00.123456789",
    ),
    "timestamptz": (
        "'2025-01-01 12:00:00+00'::TIMESTAMPTZ",
        "2025-01-01 12:00:00+00",
        "2025-01-01 12:00:00+00",
    ),
    "decimal(38,18)": (
        "12345678901234567890.123456789012345678::DECIMAL(38,18)",
        "12345678901234567890.123456789012345678",
        "12345678901234567890.123456789012345678",  # exact, as a string (as report's json)
    ),
    "year 1": ("'0001-01-01'::DATE", "0001-01-01", "0001-01-01"),
    "before year 1": ("'4713-01-01 (BC)'::DATE", "4713-01-01 (BC)", "4713-01-01 (BC)"),
    "far future": ("'294247-01-10'::DATE", "294247-01-10", "294247-01-10"),
    "nan": ("'nan'::DOUBLE", "nan", "NaN"),
    "inf": ("'inf'::DOUBLE", "inf", "Infinity"),
    "-inf float": ("'-inf'::FLOAT", "-inf", "-Infinity"),
    "null": ("NULL", "", None),
    "bignum": (
        "'123456789012345678901234567890'::BIGNUM",
        "123456789012345678901234567890",
        "123456789012345678901234567890",
    ),
    "json": ("'{\"a\": 1}'::JSON", '{"a": 1}', {"a": 1}),
    "list of intervals": ("[INTERVAL 1 DAY, INTERVAL 2 MONTH]", "[1 day, 2 months]", ["1 day", "2 months"]),
    "struct of non-finite": (
        "{'t': 'infinity'::TIMESTAMP, 'n': 'nan'::DOUBLE}",
        "{'t': infinity, 'n': nan}",
        {"t": "infinity", "n": "NaN"},
    ),
    "integer not rounded": ("1272457", "1272457", 1272457),
    "year without separator": ("2025", "2025", 2025),
    "negative": ("-5", "-5", -5),
    "double": ("1.0 / 3", "0.3333333333333333", 0.3333333333333333),
}


def _cell_of(fmt: str, stdout: str) -> object:
    """The single cell of a one-row, one-column (``v``) result in ``fmt``."""
    lines = stdout.splitlines()
    if fmt == "json":
        rows = json.loads(stdout)
        assert len(rows) == 1 and list(rows[0]) == ["v"]
        return rows[0]["v"]
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(stdout)))
        assert rows[0] == ["v"] and len(rows) == 2
        return rows[1][0]
    if fmt == "md":
        assert lines[0] == "| v |" and len(lines) == 3
        return lines[2].removeprefix("| ").removesuffix(" |").strip()
    body = [line for line in lines if line.startswith("│")]
    assert len(body) == 1, stdout
    return body[0].strip("│ ")


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "md"])
@pytest.mark.parametrize("name", list(TYPES))
def test_every_result_type_prints_exactly(plain: Path, name: str, fmt: str) -> None:
    expression, text, value = TYPES[name]
    result = run("sql", "--ledger", plain, "--format", fmt, f"SELECT {expression} AS v")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert _cell_of(fmt, result.stdout) == (value if fmt == "json" else text)


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "md"])
def test_duckdb_settings_and_an_empty_result_print(plain: Path, fmt: str) -> None:
    settings = run("sql", "--ledger", plain, "--format", fmt, "SELECT * FROM duckdb_settings()")
    assert settings.exit_code == 0, settings.stderr
    assert "enable_external_access" in settings.stdout
    empty = run("sql", "--ledger", plain, "--format", fmt, "SELECT 1 AS a, 'x' AS b WHERE false")
    assert empty.exit_code == 0, empty.stderr
    assert "a" in empty.stdout if fmt != "json" else json.loads(empty.stdout) == []


def test_repeated_and_odd_column_names_keep_their_order(plain: Path) -> None:
    result = run("sql", "--ledger", plain, "--format", "csv", 'SELECT 1 AS a, 2 AS a, 3 AS "c 1"')
    assert result.stdout.splitlines() == ["a,a,c 1", "1,2,3"]


# ---------------------------------------------------------------------------------------------
# Hostile names
# ---------------------------------------------------------------------------------------------

FORMULA = "=cmd|' /C calc'!A0"
PIPE_AND_NEWLINE = "pipe|model\nsecond line"
ANSI = "\x1b[31mred\x1b[0m"
OSC = "\x1b]0;owned title\x07osc"
PLUS, MINUS, AT, TAB, CR = "+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"
HOSTILE = [FORMULA, PIPE_AND_NEWLINE, ANSI, OSC, PLUS, MINUS, AT, TAB, CR]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    path = tmp / "ledger.duckdb"
    rows = [cell("", utc(2025, 1, 1, 0), name, 1.0 + i, hardware=ANSI) for i, name in enumerate(HOSTILE)]
    rows.append(cell("", utc(2025, 1, 1, 0), "plain", -0.5))  # a negative figure stays a number
    build_ledger(path, tmp, {"a.jsonl": rows})
    return path


def test_neutralise_follows_owasp_and_leaves_numbers_alone() -> None:
    for text in ("=1+1", "+1+1", "-1+1", "@A1", "\t=1", "\r=1", "-", "+", "=", "-inf"):
        assert neutralise_csv_text(text) == "'" + text
    for text in ("-5", "+3", "-1.5e3", ".5", "0", "model", "a=b", "", " =1"):
        assert neutralise_csv_text(text) == text


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_report_csv_neutralises_names_not_numbers(hostile: Path) -> None:
    result = run("report", "--ledger", hostile, "--year", "2025", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    models = {row["model"]: row for row in _csv_rows(result.stdout)}
    assert set(models) == {
        "'" + FORMULA,
        PIPE_AND_NEWLINE,
        ANSI,
        OSC,
        "'" + PLUS,
        "'" + MINUS,
        "'" + AT,
        "'" + TAB,
        "'" + CR,
        "plain",
    }
    assert models["plain"]["energy_kwh"] == "-0.5"  # numbers are never prefixed


def test_rollup_csv_neutralises_names_not_numbers(hostile: Path) -> None:
    result = run("rollup", "--ledger", hostile, "--year", "2025", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = _csv_rows(result.stdout)
    models = {row["model"] for row in rows}
    assert "'" + FORMULA in models and "'" + MINUS in models and FORMULA not in models
    plain = next(row for row in rows if row["model"] == "plain")
    assert plain["energy_mwh [MWh]"].startswith("-")
    assert all(not row["hardware"].startswith(("=", "+", "-", "@")) for row in rows)


def test_sql_csv_neutralises_text_columns_only(hostile: Path) -> None:
    query = "SELECT model, energy_kwh, -3 AS n, '-7' AS t FROM energy_by_model_year ORDER BY model"
    result = run("sql", "--ledger", hostile, "--format", "csv", query)
    assert result.exit_code == 0, result.stderr
    rows = _csv_rows(result.stdout)
    assert {r["model"] for r in rows} >= {"'" + FORMULA, "'" + AT, "'" + TAB}
    assert all(r["n"] == "-3" and r["t"] == "-7" for r in rows)
    assert next(r for r in rows if r["model"] == "plain")["energy_kwh"] == "-0.5"


def test_json_keeps_raw_values(hostile: Path) -> None:
    report = json.loads(run("report", "--ledger", hostile, "--year", "2025", "--format", "json").stdout)
    assert {r["model"] for r in report} == {*HOSTILE, "plain"}
    rollup = run("rollup", "--ledger", hostile, "--year", "2025", "--format", "json").stdout
    assert FORMULA in json.dumps(json.loads(rollup))
    sql = run("sql", "--ledger", hostile, "--format", "json", "SELECT model FROM energy_by_model_year")
    assert {r["model"] for r in json.loads(sql.stdout)} == {*HOSTILE, "plain"}


def _markdown_table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_markdown_cells_escape_pipes_and_line_breaks(hostile: Path) -> None:
    report = run("report", "--ledger", hostile, "--year", "2025", "--format", "md")
    assert report.exit_code == 0, report.stderr
    rows = _markdown_table_rows(report.stdout)
    assert len(rows) == 2 + len(HOSTILE) + 1  # header, rule, one line per model
    columns = rows[0].count(" | ")
    assert all(row.replace("\\|", "").count(" | ") == columns for row in rows)
    assert "pipe\\|model\\nsecond line" in report.stdout
    assert "\x1b" not in report.stdout and "\r" not in report.stdout
    rollup = run("rollup", "--ledger", hostile, "--year", "2025", "--format", "md")
    assert rollup.exit_code == 0, rollup.stderr
    assert "pipe\\|model\\nsecond line" in rollup.stdout
    assert "\x1b" not in rollup.stdout and "\x07" not in rollup.stdout
    sql = run("sql", "--ledger", hostile, "--format", "md", "SELECT model FROM energy_by_model_year")
    assert len(_markdown_table_rows(sql.stdout)) == 2 + len(HOSTILE) + 1


CONTROL = [chr(c) for c in (*range(0x20), 0x7F, 0x9B)]


@pytest.mark.parametrize(
    "args",
    [
        ("report", "--year", "2025", "--format", "table"),
        ("sql", "--format", "table", "SELECT model, hardware FROM energy_hourly"),
    ],
    ids=["report table", "sql table"],
)
def test_terminal_tables_show_control_characters_as_escapes(hostile: Path, args: tuple[str, ...]) -> None:
    result = run(args[0], "--ledger", hostile, *args[1:])
    assert result.exit_code == 0, result.stderr
    assert not any(c in result.stdout for c in CONTROL if c != "\n")
    assert "\\x1b[31mred\\x1b[0m" in result.stdout
    assert "\\x1b]0;owned title\\x07osc" in result.stdout
    assert "pipe|model\\nsecond line" in result.stdout
    body = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(body) == len(HOSTILE) + 1  # a newline in a name does not add a row


def test_error_lines_echoing_user_text_are_escaped(plain: Path) -> None:
    result = run("sql", "--ledger", plain, 'SELECT "\x1b]0;title\x07\x1b[2J" FROM energy_hourly')
    assert result.exit_code == EXIT_INPUT
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b]0;title\\x07" in result.stderr
    prompt = run("sql", "--ledger", plain, input='SELECT "\x1b[31m";\n')
    assert "\x1b" not in prompt.stderr and "\\x1b[31m" in prompt.stderr


def test_escape_terminal_keeps_printable_text() -> None:
    assert escape_terminal("Ünïcødé model-7b (v2) [x]") == "Ünïcødé model-7b (v2) [x]"
    assert escape_terminal("a\x00b\u202ec") == "a\\x00b\\u202ec"


def test_html_still_escapes(tmp_path: Path) -> None:
    tmp = tmp_path / "h"
    tmp.mkdir()
    ledger = tmp / "ledger.duckdb"
    script = "<script>alert(1)</script>"
    build_ledger(ledger, tmp, {"a.jsonl": [cell("", utc(2025, 1, 1, 0), script, 1.0)]})
    html = run("rollup", "--ledger", ledger, "--year", "2025", "--format", "html")
    assert html.exit_code == 0, html.stderr
    assert script not in html.stdout and "&lt;script&gt;" in html.stdout
