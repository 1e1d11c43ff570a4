"""The command line as a person meets it (issue 15, points 3 and 4): --version and -h, choices
in help, one-line usage errors, tables that fit the terminal, exact sql values, the sql prompt's
line editing and Ctrl-C, filters that name what exists, a non-ledger --ledger, export's parent
directories, output modes under the umask, demo --dir, and progress bars only on a terminal.

Terminal behaviour is checked on a pseudo-terminal (tests/terminal.py); the same commands
through a pipe must draw no bar and send no escape sequence.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import terminal
from ledger_data import build_ledger, cell, utc
from wattledger import formatting
from wattledger.cli import EXIT_INPUT, PRESET_NAMES, app
from wattledger.schema import REPORT_COLUMNS

runner = CliRunner()


def run(*args: object, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def wattledger(*args: object) -> subprocess.CompletedProcess[str]:
    """The real entry point through pipes (stdout and stderr are not terminals)."""
    return subprocess.run(
        [sys.executable, "-m", "wattledger", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=terminal.child_env(),
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    build_ledger(
        path,
        tmp_path,
        {
            "a.jsonl": [
                cell("", utc(2025, 1, 1, 0), "llama-3.1-8b", 1.0),
                cell("", utc(2025, 3, 1, 0), "Mistral-Large", 2.0),
                cell("", utc(2025, 3, 1, 0), "gemma-2-27b", 3.0),
            ]
        },
    )
    return path


# --------------------------------------------------------------------------------------------
# --version, -h, choices
# --------------------------------------------------------------------------------------------


def test_version_and_short_help_on_the_app_and_every_command() -> None:
    from wattledger._core import __version__

    for flag in ("--version", "-V"):
        result = run(flag)
        assert result.exit_code == 0 and result.stdout == f"wattledger {__version__}\n"
    commands = [[c.name or c.callback.__name__] for c in app.registered_commands if c.callback]
    assert ["report"] in commands and ["sql"] in commands
    for words in [[], *commands, ["grid"], ["grid", "summary"]]:
        short, long = run(*words, "-h"), run(*words, "--help")
        assert short.exit_code == 0, (words, short.stderr)
        assert short.stdout == long.stdout and short.stdout.startswith("Usage:"), words
        assert "-h, --help" in short.stdout


def test_help_lists_the_choices() -> None:
    report = run("report", "-h").stdout
    assert "--by <model|month|site|zone|method>" in report
    assert "--format <table|csv|json|md|html>" in report
    assert "--wide" in report
    assert "--preset <otel|vllm|litellm|openai>" in run("ingest", "-h").stdout
    assert "--format <md|html|json|csv>" in run("rollup", "-h").stdout


def test_preset_choices_are_the_engines(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    log.write_text('{"ts": "2025-01-01T00:00:00Z", "model": "m"}\n', encoding="utf-8")
    result = run("validate", log, "--preset", "no-such-preset")
    known = re.search(r"known: ([a-z, ]+)\)", result.stderr)
    assert known, result.stderr
    assert tuple(known.group(1).split(", ")) == PRESET_NAMES


# --------------------------------------------------------------------------------------------
# usage errors: one line, exit 2, what to do
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["report", "--ledger", "L", "--year", "2025", "--bogus"], "No such option: --bogus"),
        (["report", "--ledger", "L"], "Missing option '--year'"),
        (["ingest"], "Missing argument"),
        (["report", "--ledger", "L", "--year", "2025", "--by", "colour"], "'colour' is not one of"),
        (["reprot"], "No such command 'reprot'"),
        (["report", "--ledger", "L", "--year", "twenty"], "'twenty' is not a valid int"),
    ],
)
def test_usage_errors_are_one_line_with_what_to_do(args: list[str], fragment: str) -> None:
    for result in (wattledger(*args), run(*args)):
        assert result.returncode == 2 if hasattr(result, "returncode") else result.exit_code == 2
        line = one_error_line(result.stderr)
        assert fragment.lower() in line.lower(), line
        assert line.endswith("--help'"), line  # what to do: the command's help
        assert result.stdout == ""


def test_bare_command_still_prints_its_help() -> None:
    done = wattledger()
    assert "Usage:" in done.stdout + done.stderr and "Commands:" in done.stdout + done.stderr


# --------------------------------------------------------------------------------------------
# report and sql tables
# --------------------------------------------------------------------------------------------


def test_table_elides_middle_columns_to_fit_and_says_which() -> None:
    header = ["model", *(f"measure_{i}" for i in range(12)), "last"]
    rows = formatting.ResultRows(header, [False] + [True] * 13, [("m", *range(12), 99)])
    text = formatting.to_table(rows, title="t", max_width=70)
    table, note = text.rstrip("\n").rsplit("\n", 1)
    assert all(len(line) <= 70 for line in table.splitlines()), table
    head = table.splitlines()[2]
    shown = [cell.strip() for cell in head.strip("┃").split("┃")]
    assert shown[0] == "model" and shown[-1] == "last" and formatting.ELIDED in shown
    hidden = [h for h in header if h not in shown]
    assert note.startswith(
        f"{len(header) - len(hidden)} of {len(header)} columns shown; {len(hidden)} hidden"
    )
    assert ", ".join(hidden) in note and "--wide" in note
    # Wide enough, or no width: every column, no note.
    for width in (None, 1000):
        full = formatting.to_table(rows, title="t", max_width=width)
        assert formatting.ELIDED not in full and "columns shown" not in full
        assert all(name in full for name in header)


def test_report_fits_the_terminal_and_wide_shows_all(ledger: Path) -> None:
    args = ["report", "--ledger", str(ledger), "--year", "2025"]
    session = terminal.start(args, columns=100, env=terminal.child_env())
    assert session.finish() == 0
    lines = session.text.splitlines()
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert table and all(len(line) <= 100 for line in table), "\n".join(table)
    assert any("columns shown" in line and "--wide shows all" in line for line in lines), session.text
    wide = terminal.start([*args, "--wide"], columns=100, env=terminal.child_env())
    assert wide.finish() == 0
    assert all(name in wide.text for name in REPORT_COLUMNS) and "columns shown" not in wide.text
    # Into a pipe or a file: every column, as before.
    piped = wattledger(*args)
    assert all(name in piped.stdout for name in REPORT_COLUMNS) and "columns shown" not in piped.stdout


def test_sql_prints_exact_values(ledger: Path) -> None:
    query = "SELECT 1272457 AS n, 2025 AS year, 1272457.25::DOUBLE AS d, 0.1::DOUBLE + 0.2::DOUBLE AS f"
    result = run("sql", "--ledger", ledger, query)
    assert result.exit_code == 0, result.stderr
    row = result.stdout.splitlines()[3]
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells == ["1272457", "2025", "1272457.25", "0.30000000000000004"], row


# --------------------------------------------------------------------------------------------
# the sql prompt
# --------------------------------------------------------------------------------------------

UP = b"\x1b[A"
CTRL_C = b"\x03"


def test_sql_prompt_edits_recalls_and_survives_ctrl_c(ledger: Path, tmp_path: Path) -> None:
    history = tmp_path / "state" / "wattledger" / "sql_history"
    env = terminal.child_env(XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("WATTLEDGER_HISTORY", None)
    session = terminal.start(["sql", "--ledger", str(ledger)], env=env)
    session.wait_for("wattledger> ")
    session.send(b"SELECT 40 + 2 AS answer;\r")
    session.wait_for("42")
    # Line editing: recall the statement, move left over " AS answer;", change the 2 to a 3.
    session.send(UP + b"\x1b[D" * len(" AS answer;") + b"\x7f" + b"3\r")
    session.wait_for("43")
    # Ctrl-C drops a half-typed line; the prompt stays.
    session.send(b"SELECT 'never run'")
    session.read(0.3)
    session.send(CTRL_C)
    session.read(0.5)
    # Ctrl-C stops a running query; the prompt stays.
    session.send(b"SELECT count(*) FROM range(100000000000) t(x), range(100) u(y);\r")
    session.read(1.5)
    session.send(CTRL_C)
    session.wait_for("the query was stopped")
    session.send(b"SELECT 'still here' AS s;\r")
    session.wait_for("still here")
    session.send(b".quit\r")
    assert session.finish() == 0
    assert "never run" not in session.text.split("'never run'")[-1]
    saved = history.read_text(encoding="utf-8").splitlines()
    assert "SELECT 40 + 3 AS answer;" in saved and "SELECT 'still here' AS s;" in saved


def test_sql_history_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from wattledger.cli import history_path

    monkeypatch.delenv("WATTLEDGER_HISTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert history_path() == tmp_path / "wattledger" / "sql_history"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert history_path() == tmp_path / ".local" / "state" / "wattledger" / "sql_history"
    monkeypatch.setenv("WATTLEDGER_HISTORY", str(tmp_path / "h"))
    assert history_path() == tmp_path / "h"


# --------------------------------------------------------------------------------------------
# filters, --ledger, outputs
# --------------------------------------------------------------------------------------------


def test_model_filter_matching_nothing_names_what_exists(ledger: Path) -> None:
    for command in ("report", "rollup"):
        wrong_case = run(command, "--ledger", ledger, "--year", "2025", "--model", "mistral-large")
        assert wrong_case.exit_code == EXIT_INPUT
        line = one_error_line(wrong_case.stderr)
        assert "did you mean 'Mistral-Large'" in line and "case-sensitive" in line
        unknown = run(command, "--ledger", ledger, "--year", "2025", "--model", "gpt-9")
        line = one_error_line(unknown.stderr)
        assert unknown.exit_code == EXIT_INPUT
        assert "gemma-2-27b, llama-3.1-8b, Mistral-Large" in line or "Mistral-Large" in line, line
        assert all(name in line for name in ("gemma-2-27b", "llama-3.1-8b", "Mistral-Large"))
    # In a month where it has no rows, it is named among the month's models.
    january = run("report", "--ledger", ledger, "--year", "2025", "--month", "1", "--model", "gemma-2-27b")
    assert "its models in 2025-01: llama-3.1-8b" in one_error_line(january.stderr)
    found = run("report", "--ledger", ledger, "--year", "2025", "--model", "Mistral-Large", "--format", "csv")
    assert found.exit_code == 0 and "Mistral-Large" in found.stdout


def test_site_filter_sums_only_that_site_and_names_the_sites_when_it_matches_none(tmp_path: Path) -> None:
    import wattledger

    path = tmp_path / "sites.duckdb"
    build_ledger(
        path,
        tmp_path,
        {
            "a.jsonl": [
                cell("", utc(2025, 3, 1, 0), "llama-3.1-8b", 1.0),
                cell("", utc(2025, 3, 1, 1), "llama-3.1-8b", 2.0, site="par-1", zone="FR"),
                cell("", utc(2025, 3, 1, 2), "gemma-2-27b", 4.0, site="par-1", zone="FR"),
            ]
        },
    )
    only_paris = run("report", "--ledger", path, "--year", "2025", "--site", "par-1", "--format", "csv")
    assert only_paris.exit_code == 0, only_paris.output
    energy = {
        row.split(",")[0]: row.split(",")[REPORT_COLUMNS.index("energy_kwh")]
        for row in only_paris.stdout.splitlines()[1:]
    }
    assert {m: float(v) for m, v in energy.items()} == {"gemma-2-27b": 4.0, "llama-3.1-8b": 2.0}
    api = wattledger.report(path, year=2025, site="fra-1")
    assert api["model"].to_list() == ["llama-3.1-8b"] and api["energy_kwh"].to_list() == [1.0]
    both = wattledger.report(path, year=2025, site="par-1", model="gemma-2-27b")
    assert both["energy_kwh"].to_list() == [4.0]
    wrong_case = run("report", "--ledger", path, "--year", "2025", "--site", "PAR-1")
    assert wrong_case.exit_code == EXIT_INPUT
    assert (
        "--site 'PAR-1' matches no site in 2025; names are case-sensitive: did you mean 'par-1'?"
        in one_error_line(wrong_case.stderr)
    )
    unknown = run("report", "--ledger", path, "--year", "2025", "--site", "atlantis")
    assert unknown.exit_code == EXIT_INPUT and "its sites in 2025: fra-1, par-1" in one_error_line(
        unknown.stderr
    )
    # The filing document is the whole fleet per model: a site slice of it is refused, not drawn.
    document = run("report", "--ledger", path, "--year", "2025", "--site", "par-1", "--document")
    assert document.exit_code == EXIT_INPUT and "--site filters the report table" in one_error_line(
        document.stderr
    )


def test_a_parquet_file_as_ledger_exits_2(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    log = tmp_path / "fleet.parquet"
    pq.write_table(pa.table({"model": ["m"]}), log)
    before = log.read_bytes()
    for args in (
        ["report", "--ledger", log, "--year", "2025"],
        ["sql", "--ledger", log, "SELECT 1"],
        ["check", "--ledger", log],
        ["ingest", log, "--ledger", log],
    ):
        done = wattledger(*args)
        assert done.returncode == 2, (args, done.stderr)
        # (ingest warns first that no --grid was given)
        line = one_error_line("\n".join(x for x in done.stderr.splitlines() if not x.startswith("warning:")))
        assert "is a Parquet file, not a wattledger ledger" in line and "--ledger" in line
    assert log.read_bytes() == before


def test_a_json_log_as_ledger_exits_2_but_a_random_header_is_damage(tmp_path: Path) -> None:
    log = tmp_path / "fleet.jsonl"
    log.write_text('{"model": "m", "input_tokens": 1}\n')
    done = wattledger("report", "--ledger", log, "--year", "2025")
    assert done.returncode == 2, done.stderr
    assert "is a JSON file, not a wattledger ledger" in one_error_line(done.stderr)
    # A bracket followed by binary bytes is a damaged file (a ledger's header overwritten), not
    # a JSON log: it must not be told to point --ledger elsewhere.
    damaged = tmp_path / "ledger.duckdb"
    damaged.write_bytes(b"{\x00\xff\x13" + bytes(range(256)) * 64)
    done = wattledger("report", "--ledger", damaged, "--year", "2025")
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "JSON" not in line and "not a DuckDB database" in line, line


def test_export_creates_parent_directories(ledger: Path, tmp_path: Path) -> None:
    target = tmp_path / "lake" / "energy" / "hourly"
    result = run("export", "--ledger", ledger, "--parquet", target)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.relative_to(target).parts[:2] for p in target.rglob("*.parquet")) == [
        ("year=2025", "month=1"),
        ("year=2025", "month=3"),
    ]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_out_files_honour_the_umask(ledger: Path, tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        out = tmp_path / f"annual-{umask:o}.csv"
        result = run("report", "--ledger", ledger, "--year", "2025", "--format", "csv", "--out", out)
        doc = tmp_path / f"annual-{umask:o}.md"
        rolled = run("rollup", "--ledger", ledger, "--year", "2025", "--out", doc)
    finally:
        os.umask(previous)
    assert result.exit_code == 0 and rolled.exit_code == 0, result.stderr + rolled.stderr
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert stat.S_IMODE(doc.stat().st_mode) == mode
    # Replacing a file keeps the mode its owner gave it.
    out.chmod(0o640)
    assert run("report", "--ledger", ledger, "--year", "2025", "--out", out).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_demo_refuses_a_directory_it_did_not_write(tmp_path: Path) -> None:
    theirs = tmp_path / "work"
    theirs.mkdir()
    (theirs / "ledger.duckdb").write_bytes(b"someone's ledger")
    result = run("demo", "--records", "1000", "--dir", theirs)
    assert result.exit_code == EXIT_INPUT
    line = one_error_line(result.stderr)
    assert "holds files wattledger demo did not write (ledger.duckdb)" in line
    assert (theirs / "ledger.duckdb").read_bytes() == b"someone's ledger"
    assert sorted(p.name for p in theirs.iterdir()) == ["ledger.duckdb"]
    # Its own directory, again and again; a file added there makes it someone's again.
    ours = tmp_path / "demo"
    assert run("demo", "--records", "1000", "--dir", ours).exit_code == 0
    assert run("demo", "--records", "1000", "--dir", ours).exit_code == 0
    (ours / "notes.txt").write_text("mine", encoding="utf-8")
    again = run("demo", "--records", "1000", "--dir", ours)
    assert again.exit_code == EXIT_INPUT and "notes.txt" in one_error_line(again.stderr)


# --------------------------------------------------------------------------------------------
# progress bars
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parquet_fleet(tmp_path_factory: pytest.TempPathFactory):
    from wattledger.synthetic import generate_fleet

    return generate_fleet(
        tmp_path_factory.mktemp("pq"), records=300_000, span="year", formats=("parquet",), seed=3
    )


def _ingest_args(fleet, ledger: Path) -> list[str]:
    return [
        "ingest",
        str(fleet.logs["parquet"]),
        "--config",
        str(fleet.config),
        "--grid",
        str(fleet.grid),
        "--ledger",
        str(ledger),
    ]


def test_progress_on_a_terminal_shows_throughput_and_every_phase(parquet_fleet, tmp_path: Path) -> None:
    session = terminal.start(_ingest_args(parquet_fleet, tmp_path / "l.duckdb"), env=terminal.child_env())
    assert session.finish() == 0, session.text
    frames = session.text.splitlines()
    reading = [f for f in frames if "reading logs" in f]
    assert reading and all(len(f) <= 100 for f in reading)
    size_mb = f"{Path(parquet_fleet.logs['parquet']).stat().st_size / 1e6:.1f}"
    last = reading[-1]
    assert f"{size_mb}/{size_mb} MB" in last and "MB/s" in last and "records/s" in last, last
    for phase in ("checking the ledger", "writing the ledger"):  # no countable progress: a spinner
        assert any(phase in f and "0:00:0" in f for f in frames), (phase, session.text)
    assert "records:    300,000 read" in session.text


def test_no_bar_and_no_escape_codes_without_a_terminal(parquet_fleet, tmp_path: Path) -> None:
    done = wattledger(*_ingest_args(parquet_fleet, tmp_path / "l.duckdb"))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr
    assert "records/s" not in done.stderr and "reading logs" not in done.stderr
    demo = wattledger("demo", "--records", "2000", "--dir", tmp_path / "demo")
    assert demo.returncode == 0 and "\x1b" not in demo.stdout + demo.stderr
    assert "generating logs" not in demo.stderr


def test_demo_on_a_terminal_shows_generation_progress(tmp_path: Path) -> None:
    session = terminal.start(
        ["demo", "--records", "30000", "--dir", str(tmp_path / "d")], env=terminal.child_env()
    )
    assert session.finish() == 0, session.text
    generating = [f for f in session.text.splitlines() if "generating logs" in f]
    assert generating and "30k/30k records" in generating[-1] and "records/s" in generating[-1]


def test_rates_and_counts_are_short() -> None:
    from wattledger.progress import count, rate

    assert rate(2_500_000, 2.0, "records") == "1.25M records/s"
    assert rate(48.1, 1.0, "MB") == "48.1 MB/s"
    assert rate(10, 0.0, "MB") == "- MB/s"
    assert [count(n) for n in (412, 30_000, 5_000_000)] == ["412", "30k", "5M"]


def test_tables_print_whole_numbers_exactly() -> None:
    # Counts summed as doubles (requests, tokens) are whole: exact, never a rounded 1,272,000.
    assert formatting.human(1272457.0) == "1,272,457"
    assert formatting.human(1272457) == "1,272,457"
    assert formatting.human(1272457.5) == "1,272,000"  # a measure keeps four significant digits
    assert formatting.human(0.333333) == "0.3333"
    assert formatting.human(2.0e15) == "2.000e+15"


def test_rendering_and_exporting_show_a_spinner_on_a_terminal(ledger: Path, tmp_path: Path) -> None:
    env = terminal.child_env()
    html = tmp_path / "a.html"
    args = ["rollup", "--ledger", str(ledger), "--year", "2025", "--format", "html", "--out", str(html)]
    rollup = terminal.start(args, env=env)
    assert rollup.finish() == 0, rollup.text
    assert "rendering the html document" in rollup.text and html.exists()
    export = terminal.start(["export", "--ledger", str(ledger), "--parquet", str(tmp_path / "lake")], env=env)
    assert export.finish() == 0, export.text
    assert "writing Parquet" in export.text
    # The same through pipes: no spinner, no escape codes.
    piped = wattledger("rollup", "--ledger", ledger, "--year", "2025", "--out", tmp_path / "b.md")
    assert piped.returncode == 0 and "rendering the" not in piped.stderr and "\x1b" not in piped.stderr


def test_site_that_matches_no_site_of_the_pack_names_them(tmp_path: Path) -> None:
    from wattledger.synthetic import generate_fleet

    fleet = generate_fleet(tmp_path / "f", records=100, span="day", formats=("jsonl",), seed=1)
    args = ["ingest", fleet.logs["jsonl"], "--config", fleet.config, "--grid", fleet.grid]
    wrong_case = run(*args, "--ledger", tmp_path / "a.duckdb", "--site", "FRA-1")
    assert wrong_case.exit_code == EXIT_INPUT
    assert "names are case-sensitive: did you mean 'fra-1'? its sites: " in one_error_line(wrong_case.stderr)
    unknown = run(*args, "--ledger", tmp_path / "b.duckdb", "--site", "atlantis")
    assert unknown.exit_code == EXIT_INPUT
    assert "its sites: dfw-1, fra-1, par-1" in one_error_line(unknown.stderr)


def test_sql_table_fits_the_terminal(ledger: Path) -> None:
    query = "SELECT " + ", ".join(f"{i} AS column_{i}" for i in range(30))
    session = terminal.start(["sql", "--ledger", str(ledger), query], columns=80, env=terminal.child_env())
    assert session.finish() == 0
    table = [line for line in session.text.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table)
    assert "column_0" in table[1] and "column_29" in table[1] and formatting.ELIDED in table[1]
    assert "columns shown" in session.text
    wide = terminal.start(
        ["sql", "--ledger", str(ledger), query, "--wide"], columns=80, env=terminal.child_env()
    )
    assert wide.finish() == 0 and "column_15" in wide.text and "columns shown" not in wide.text
