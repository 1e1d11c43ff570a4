"""Start-up time of the ``wattledger`` command: what each command costs before it does its work.

Why: a nightly job runs several commands and a user types ``wattledger --help`` or ``report``
often; the promise is that each starts at most 0.25 s after the Python interpreter does. This
script makes that checkable with one command:

    python benchmarks/startup.py                # 15 rounds, limit 0.25 s
    python benchmarks/startup.py --repeat 31 --imports

"After the interpreter" is the median wall time of the command minus the median wall time of
``python -c pass`` run by the same interpreter, site-packages included (every command loads
them too, so the difference is what wattledger adds). Each round runs every command once, in
turn, as a fresh process, so a busy machine slows all of them alike. ``report`` reads a small
ledger made here from SYNTHETIC logs (``wattledger ingest``, not timed). The command is the
console script beside this interpreter, else ``python -m wattledger``; wattledger's ``.pyc``
files are written first, as ``pip install`` does. ``--imports`` lists, per command, the modules
whose import took longest (``python -X importtime``, one more untimed run).

Exit code 1 when a command is over the limit or fails.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _synthetic_import import load_synthetic  # noqa: E402

#: Heavy libraries worth naming when a command imports them.
HEAVY = ("duckdb", "polars", "pyarrow", "numpy", "rich", "pydantic")


@dataclass
class Command:
    name: str
    argv: list[str]
    #: The arguments after ``wattledger``; None for the references (the interpreter alone, the
    #: floor), which are shown but not held to the limit.
    args: list[str] | None = None
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    failure: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpus)


def wattledger_argv() -> tuple[list[str], str]:
    """The console script installed beside this interpreter (a PATH lookup may find a version
    manager's shim, whose shell start is not the tool's), else ``python -m wattledger``."""
    beside = Path(sys.executable).parent / "wattledger"
    if beside.exists():
        return [str(beside)], str(beside)
    return [sys.executable, "-m", "wattledger"], f"{Path(sys.executable).name} -m wattledger"


def compile_bytecode() -> None:
    """Write wattledger's ``.pyc`` files (without importing it), so no timed run compiles."""
    spec = importlib.util.find_spec("wattledger")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("wattledger is not importable: install it or set PYTHONPATH=python")
    for directory in spec.submodule_search_locations:
        compileall.compile_dir(directory, quiet=1)


def small_ledger(exe: list[str], directory: Path, records: int) -> tuple[Path, int]:
    """A ledger of ``records`` SYNTHETIC requests over one day, made with ``wattledger ingest``."""
    fleet = load_synthetic().generate_fleet(directory / "logs", records=records, span="day", seed=0)
    ledger = directory / "ledger.duckdb"
    ingest = ["ingest", str(fleet.logs["jsonl"]), "--config", str(fleet.config), "--grid", str(fleet.grid)]
    subprocess.run(
        [*exe, *ingest, "--ledger", str(ledger)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return ledger, int(fleet.years[0])


def run_once(command: Command) -> None:
    """Run ``command`` once: its wall time, and its CPU time (user + system, from the kernel's
    rusage of that child: on a machine shared with other work it varies far less than wall
    time). Output goes to a file, not a pipe, so the child is reaped by ``os.wait4`` itself."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command.argv, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            command.failure = f"exit {code}: {lines[-1] if lines else ''}"
    command.walls.append(wall)
    command.cpus.append(usage.ru_utime + usage.ru_stime)


def traced(argv: list[str]) -> list[str]:
    """``argv`` under ``python -X importtime`` (a console script is run by this interpreter)."""
    script = argv[1:] if argv[0] == sys.executable else argv
    return [sys.executable, "-X", "importtime", *script]


def slowest_imports(argv: list[str], count: int) -> list[str]:
    """The ``count`` top-level imports of ``argv`` that took longest, with their times."""
    done = subprocess.run(
        traced(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
    )
    rows: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"; top level = one space indent
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith(" ") and not name.startswith("  "):
            rows.append((int(cumulative), name.strip()))
    rows.sort(reverse=True)
    return [f"{name} {us / 1e6:.3f}s" for us, name in rows[:count]]


#: The floor of any report: importing DuckDB and opening the ledger read-only, which a report
#: cannot do without (its queries come on top).
_FLOOR = "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True).close()"

#: Runs the CLI as `python -m wattledger` does, then names the heavy libraries it imported.
_HEAVY_PROBE = """
import atexit, runpy, sys
heavy = sys.argv.pop(1).split(",")
atexit.register(lambda: print("heavy:", *[m for m in heavy if m in sys.modules], file=sys.stderr))
sys.argv[0] = "wattledger"
runpy.run_module("wattledger", run_name="__main__")
"""


def heavy_imported(args: list[str]) -> list[str]:
    """Which of :data:`HEAVY` ``wattledger ARGS`` imported."""
    done = subprocess.run(
        [sys.executable, "-c", _HEAVY_PROBE, ",".join(HEAVY), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    found = [line.split()[1:] for line in done.stderr.splitlines() if line.startswith("heavy:")]
    return found[-1] if found else ["?"]


def print_table(commands: list[Command], limit: float) -> bool:
    """The figures as a markdown table (the first command is the interpreter alone, the
    reference of every "after"); True when a command failed or is over ``limit``."""
    interpreter, interpreter_cpu = commands[0].median, commands[0].median_cpu
    print(
        "| command | median wall s | after the interpreter s | median CPU s | CPU after s | heavy imports |"
    )
    print("|---|---:|---:|---:|---:|---|")
    over = False
    for command in commands:
        after, after_cpu = command.median - interpreter, command.median_cpu - interpreter_cpu
        after_text = f"{after:.3f}" if command is not commands[0] else "-"
        cpu_text = f"{after_cpu:.3f}" if command is not commands[0] else "-"
        heavy = "-"
        if command.args is not None:
            over |= after > limit or command.failure is not None
            after_text += " (over the limit)" if after > limit else ""
            heavy = ", ".join(heavy_imported(command.args)) or "-"
        print(
            f"| {command.name} | {command.median:.3f} | {after_text} | {command.median_cpu:.3f} | "
            f"{cpu_text} | {heavy} |"
        )
        if command.failure:
            print(f"  FAILED: {command.failure}")
    print(f"\nlimit: {limit:.2f} s of wall time after the interpreter")
    return over


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="start-up time of wattledger commands")
    ap.add_argument("--repeat", type=int, default=15, help="rounds (each runs every command once)")
    ap.add_argument("--limit", type=float, default=0.25, help="seconds after the interpreter")
    ap.add_argument("--records", type=int, default=2_000, help="SYNTHETIC records in the small ledger")
    ap.add_argument("--imports", action="store_true", help="list each command's slowest imports")
    args = ap.parse_args(argv)

    exe, exe_text = wattledger_argv()
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="wl-startup-") as tmp:
        ledger, year = small_ledger(exe, Path(tmp), args.records)
        report = ["report", "--ledger", str(ledger), "--year", str(year)]
        commands = [
            Command("python -c pass", [sys.executable, "-c", "pass"]),
            Command(
                "floor of a report: import duckdb, open the ledger",
                [sys.executable, "-c", _FLOOR, str(ledger)],
            ),
        ]
        for name, wl_args in (
            ("wattledger --help", ["--help"]),
            ("wattledger report", report),
            ("wattledger report --format csv", [*report, "--format", "csv"]),
        ):
            commands.append(Command(name, [*exe, *wl_args], wl_args))
        for command in commands:  # one untimed run each: page cache, .pyc files
            run_once(command)
            command.walls.clear()
            command.cpus.clear()
        for _ in range(args.repeat):
            for command in commands:
                run_once(command)
        load = os.getloadavg()[0]
        print(f"command: {exe_text}; {args.repeat} rounds; small ledger: {args.records:,} records, {year}")
        print(f"machine: {os.cpu_count()} cores, load average {load:.1f}; Python {sys.version.split()[0]}\n")
        over = print_table(commands, args.limit)
        if args.imports:
            for command in commands:
                if command.args is None:
                    continue
                print(f"\n{command.name}, slowest top-level imports:")
                for line in slowest_imports(command.argv, 8):
                    print(f"  {line}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
