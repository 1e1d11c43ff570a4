"""Start-up: what `import wattledger` and each command load, and Ctrl-C while they load.

Why these tests: every command used to import DuckDB (and the ledger's modules) before it could
print its --help, about 0.2 s per command (issue 13, point 4; benchmarks/startup.py measures
the times). The package now imports its public names on first use and the CLI imports what a
command needs inside that command. Timings are not tested here; what is pinned is what gets
imported, which is what the times follow from. Each check runs in a fresh interpreter, since
this test process has long imported everything.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import wattledger as wl
from ledger_data import build_ledger, cell, utc

ROOT = Path(__file__).resolve().parents[1]

#: Libraries too slow to import for a command that does not use them.
HEAVY = ("duckdb", "polars", "pyarrow", "numpy", "rich")


def entry_point() -> tuple[str, str]:
    """The ``wattledger`` console script's module and function, as pyproject.toml declares."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    module, _, function = scripts["wattledger"].partition(":")
    return module, function


#: Runs ``wattledger ARGS`` as the console script does, then prints which of HEAVY it imported.
_RUN_CLI = """
import atexit, importlib, sys
heavy, module, function, *args = sys.argv[1:]
loaded = lambda: [m for m in heavy.split(",") if m in sys.modules]
atexit.register(lambda: print("imported:", *loaded(), file=sys.stderr))
sys.argv = ["wattledger", *args]
getattr(importlib.import_module(module), function)()
"""


def heavy_imports_of_command(*args: str | Path) -> tuple[int, list[str]]:
    """Exit code of ``wattledger ARGS`` in a fresh interpreter and the HEAVY modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_CLI, ",".join(HEAVY), *entry_point(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line.split()[1:] for line in done.stderr.splitlines() if line.startswith("imported:")]
    assert lines, done.stderr
    return done.returncode, lines[-1]


def fresh(code: str) -> str:
    """stdout of ``code`` run by a fresh interpreter (which must succeed)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_package_and_the_cli_loads_no_heavy_library() -> None:
    out = fresh(
        f"""
        import sys
        import wattledger, wattledger.cli
        print(*[m for m in {HEAVY!r} if m in sys.modules])
        """
    )
    assert out.split() == []


def test_help_loads_no_heavy_library() -> None:
    code, heavy = heavy_imports_of_command("--help")
    assert code == 0
    assert heavy == []


@pytest.fixture
def small_ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    build_ledger(path, tmp_path, {"a.jsonl": [cell("", utc(2025, 1, 1, 0), "m", 1.0)]})
    return path


def test_report_loads_duckdb_but_not_polars_or_pyarrow(small_ledger: Path) -> None:
    # The report prints DuckDB's rows: polars, pyarrow and numpy would only add start-up time.
    code, heavy = heavy_imports_of_command("report", "--ledger", small_ledger, "--year", "2025")
    assert code == 0
    assert heavy == ["duckdb"]  # an ASCII table is drawn without rich (formatting._plain_box_table)
    code, heavy = heavy_imports_of_command(
        "report", "--ledger", small_ledger, "--year", "2025", "--format", "csv"
    )
    assert code == 0
    assert heavy == ["duckdb"]


def test_public_names_resolve_on_first_use() -> None:
    out = fresh(
        """
        import types
        import wattledger as wl
        missing = [name for name in wl.__all__ if not hasattr(wl, name)]
        unlisted = [name for name in wl.__all__ if name not in dir(wl)]
        print(missing, unlisted, isinstance(wl.__version__, str), wl._core.__name__)
        """
    )
    assert out.split() == ["[]", "[]", "True", "wattledger._core"]
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        wl.no_such_name  # noqa: B018


def test_functions_named_like_their_modules_stay_functions() -> None:
    # Importing wattledger.report (as the CLI's report command does) would otherwise make
    # `wl.report` that module instead of the function.
    out = fresh(
        """
        import types
        import wattledger as wl
        import wattledger.estimate, wattledger.ingest, wattledger.report, wattledger.rollup
        from wattledger import report
        functions = (wl.estimate, wl.ingest, wl.report, wl.rollup, report)
        print(*[isinstance(f, types.FunctionType) for f in functions])
        """
    )
    assert out.split() == ["True"] * 5


#: Runs ``wattledger ARGS`` as the console script does, stopping (asleep) just before the import
#: of module ``stop_at`` and saying so on stderr; the test then sends Ctrl-C there.
_STOP_IN_IMPORT = """
import importlib, importlib.abc, sys, time
stop_at, module, function, *args = sys.argv[1:]

class StopBefore(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == stop_at:
            sys.meta_path.remove(self)
            sys.stderr.write(f"importing {name}\\n")
            sys.stderr.flush()
            time.sleep(60)
        return None

sys.meta_path.insert(0, StopBefore())
sys.argv = ["wattledger", *args]
getattr(importlib.import_module(module), function)()
"""


@pytest.mark.parametrize(
    ("stop_at", "args"),
    [
        ("typer", ["--help"]),  # while the CLI itself loads: no command has started
        ("duckdb", ["report", "--year", "2025"]),  # while the report command imports the ledger's modules
    ],
)
def test_ctrl_c_while_modules_load_is_one_line_and_exit_130(
    stop_at: str, args: list[str], small_ledger: Path
) -> None:
    if args[0] == "report":
        args = [*args, "--ledger", str(small_ledger)]
    child = subprocess.Popen(
        [sys.executable, "-c", _STOP_IN_IMPORT, stop_at, *entry_point(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        first = child.stderr.readline()
        assert first == f"importing {stop_at}\n", first
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 130, stderr
    assert stderr.splitlines() == ["error: interrupted"]
    assert stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        *(
            [name, "--help"]
            for name in (
                "ingest",
                "validate",
                "report",
                "rollup",
                "check",
                "sql",
                "export",
                "forget",
                "migrate",
                "demo",
            )
        ),
        ["report"],
        ["report", "--ledger", "x.duckdb", "--year", "2025", "--bogus"],
        ["rollup", "--year", "x"],
        ["ingest"],
        ["grid", "summary", "--help"],
        ["nosuch"],
        ["--help"],
        [],
    ],
    ids=lambda args: " ".join(args) or "no-args",
)
def test_a_command_alone_parses_and_prints_as_the_whole_app(args: list[str]) -> None:
    # main() builds only the command named on the command line (typer would otherwise read
    # every command's signature first): what the user sees must not change.
    from typer.testing import CliRunner

    from wattledger.cli import app, app_for

    runner = CliRunner()
    alone = runner.invoke(app_for(args), args, prog_name="wattledger")
    whole = runner.invoke(app, args, prog_name="wattledger")
    assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output)
    if args[:1] in (["report"], ["ingest"]):
        assert app_for(args) is not app  # the fast path was taken
