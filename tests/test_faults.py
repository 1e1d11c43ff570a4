"""Fault tests with real processes: ``wattledger ingest`` killed with SIGKILL at several points,
a second concurrent writer, an unwritable ledger path and a full disk.

Why real processes: the promise is about what the ledger file holds after the operating system
took a process away mid-run (no ``finally``, no rollback call, a half-written WAL), which only
a real ``kill -9`` shows. The run is caught at named points with the documented test hook
``WATTLEDGER_TEST_PAUSE_AT`` (``wattledger/testhooks.py``), and "while reading" by killing
while the engine is demonstrably still reading.

Every test starts from a copy of one base ledger that already holds a committed run (May), and
checks that run and everything else in the file survive byte-for-byte in content; a re-run
afterwards must give the same totals as one clean run.
"""

from __future__ import annotations

import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

import wattledger as wl
from wattledger.cli import EXIT_BUSY, EXIT_OK, EXIT_WRITE
from wattledger.synthetic import FleetFiles, generate_fleet
from wattledger.testhooks import ENV_POINT, ENV_SECONDS

pytestmark = pytest.mark.slow

# Big enough that a run has distinct phases worth killing in, small enough that the whole file
# stays well under a minute. "While reading" does not depend on speed: it uses a named pipe.
BIG_RECORDS = 800_000
PAUSE_SECONDS = 120  # the test kills the paused process long before this


# ---------------------------------------------------------------------------------------------
# Fixtures: the fleets, a base ledger with one committed run, the clean result
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    big: FleetFiles
    small: FleetFiles
    base: Path  # ledger holding one committed run (the small May fleet); copied per test
    before: dict[str, Any]  # snapshot of base
    clean: dict[str, Any]  # snapshot of base + one clean ingest of the big fleet
    clean_seconds: float  # wall time of that clean ingest, as a subprocess


def ingest_args(ledger: Path, fleet: FleetFiles, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "wattledger.cli",
        "ingest",
        str(fleet.logs["jsonl"]),
        "--config",
        str(fleet.config),
        "--grid",
        str(fleet.grid),
        "--ledger",
        str(ledger),
        "--no-progress",
        *extra,
    ]


def child_env(pause: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_POINT, ENV_SECONDS)}
    if pause is not None:
        env[ENV_POINT] = pause
        env[ENV_SECONDS] = str(PAUSE_SECONDS)
    return env


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattledger.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


def snapshot(ledger: Path) -> dict[str, Any]:
    """Everything the ledger holds, in a comparable form: every table's rows in a fixed order,
    plus the per-model annual report (what a user would see)."""
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        tables = {
            name: con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
            for name in ("wl_meta", "wl_configs", "wl_runs", "wl_sources", "wl_hourly", "wl_source_names")
        }
        # By name: schema 2 appended columns after it (warnings).
        tables["run_status"] = con.execute("SELECT status FROM wl_runs ORDER BY run_id").fetchall()
    finally:
        con.close()
    report = wl.report(ledger, year=2025).rows()
    return {"tables": tables, "report": report}


def _close(x: object, y: object) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-300)
    return x == y


def same_ledger(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Every table row identical; the report equal up to float summation order (DuckDB sums
    doubles in parallel, so the last bits of a SUM can differ between two reads of one file)."""
    if a["tables"] != b["tables"] or len(a["report"]) != len(b["report"]):
        return False
    return all(
        len(ra) == len(rb) and all(_close(x, y) for x, y in zip(ra, rb, strict=True))
        for ra, rb in zip(a["report"], b["report"], strict=True)
    )


def totals(snap: dict[str, Any]) -> dict[str, Any]:
    """What must equal between a clean run and crash + re-run: the report (floats to ~1e-9,
    the engine's per-thread merge order may differ) and how many runs/sources are live."""
    return {
        "report": [
            tuple(pytest.approx(v, rel=1e-9) if isinstance(v, float) else v for v in row)
            for row in snap["report"]
        ],
        "runs_ingested": sum(1 for (status,) in snap["tables"]["run_status"] if status == "ingested"),
        "sources": len(snap["tables"]["wl_sources"]),
        "hourly_rows": len(snap["tables"]["wl_hourly"]),
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("faults")
    big = generate_fleet(root / "big", records=BIG_RECORDS, span="day", start="2025-06-01", seed=11)
    small = generate_fleet(root / "small", records=2000, span="day", start="2025-05-01", seed=12)
    base = root / "base.duckdb"
    wl.ingest(small.logs["jsonl"], ledger=base, config=small.config, grid=[small.grid], progress=False)
    clean = root / "clean.duckdb"
    shutil.copy(base, clean)
    started = time.perf_counter()
    done = subprocess.run(
        ingest_args(clean, big), capture_output=True, text=True, timeout=300, env=child_env()
    )
    seconds = time.perf_counter() - started
    assert done.returncode == EXIT_OK, done.stderr
    return Setup(big, small, base, snapshot(base), snapshot(clean), seconds)


@pytest.fixture
def ledger(setup: Setup, tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    shutil.copy(setup.base, path)
    return path


class Child:
    """A running ``wattledger ingest`` whose stderr is read line by line in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_line(self, wanted: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"ingest ended (rc {self.proc.wait()}) before {wanted!r}: {self.seen}")
            self.seen.append(line)
            if line == wanted:
                return
        pytest.fail(f"no {wanted!r} within {timeout} s: {self.seen}")

    def kill9(self) -> None:
        assert self.proc.poll() is None, "the run ended before it could be killed"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL

    def rest_of_stderr(self) -> list[str]:
        self.proc.wait(timeout=30)
        out = list(self.seen)
        while (line := self.lines.get(timeout=30)) is not None:
            out.append(line)
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.close()


def start(children: list[Child], ledger: Path, fleet: FleetFiles, pause: str | None = None) -> Child:
    child = Child(ingest_args(ledger, fleet), child_env(pause))
    children.append(child)
    return child


def rerun_matches_clean(setup: Setup, ledger: Path) -> None:
    """A plain re-run after the crash must give exactly what one clean run gives."""
    done = subprocess.run(
        ingest_args(ledger, setup.big), capture_output=True, text=True, timeout=300, env=child_env()
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert "1 ingested, 0 skipped" in done.stdout, done.stdout
    assert totals(snapshot(ledger)) == totals(setup.clean)
    assert not list(ledger.parent.glob(f"{ledger.name}.spill-*")), "stale spill dir left behind"


# ---------------------------------------------------------------------------------------------
# kill -9
# ---------------------------------------------------------------------------------------------


def test_clean_run_adds_to_the_base(setup: Setup) -> None:
    """The reference the other tests compare with: the big fleet really adds rows and a run."""
    assert totals(setup.clean)["runs_ingested"] == 2
    assert totals(setup.before)["runs_ingested"] == 1
    assert len(setup.clean["tables"]["wl_hourly"]) > len(setup.before["tables"]["wl_hourly"])


def test_kill_9_while_reading_leaves_ledger_as_before(
    setup: Setup, ledger: Path, children: list[Child]
) -> None:
    """Killed while the engine is provably still reading: the kernel's file offset of the log
    (``/proc/PID/fdinfo``) is past the start and short of the end. (A named pipe used to hold
    the engine mid-read; logs must now be regular files, so the offset is watched instead.)"""
    log = Path(setup.big.logs["jsonl"]).resolve()
    size = log.stat().st_size
    child = Child(ingest_args(ledger, setup.big), child_env())
    children.append(child)
    deadline = time.monotonic() + 120
    while (offset := read_offset(child.proc.pid, log)) is None or offset == 0:
        assert child.proc.poll() is None, child.rest_of_stderr()
        assert time.monotonic() < deadline, "the engine never started reading the log"
        time.sleep(0.002)
    assert offset < size, "read to the end before it could be killed: make the log bigger"
    child.kill9()
    assert same_ledger(snapshot(ledger), setup.before)
    rerun_matches_clean(setup, ledger)


def read_offset(pid: int, path: Path) -> int | None:
    """How far process ``pid`` has read ``path`` (its open descriptor's offset), or None while
    the file is not open."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fds.iterdir())
    except OSError:
        return None
    for fd in entries:
        try:
            if Path(os.readlink(fd)) != path:
                continue
            for line in Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text().splitlines():
                if line.startswith("pos:"):
                    return int(line.split()[1])
        except OSError:
            continue
    return None


@pytest.mark.parametrize("point", ["before_read", "before_write", "before_commit"])
def test_kill_9_at_a_named_point_leaves_ledger_as_before(
    setup: Setup, ledger: Path, children: list[Child], point: str
) -> None:
    child = start(children, ledger, setup.big, pause=point)
    child.wait_for_line(f"wattledger-test-pause: {point}")
    child.kill9()
    assert same_ledger(snapshot(ledger), setup.before)
    if point == "before_commit":  # the most advanced uncommitted state: prove recovery from it
        rerun_matches_clean(setup, ledger)


def test_kill_9_after_commit_keeps_the_run_and_a_rerun_skips(
    setup: Setup, ledger: Path, children: list[Child]
) -> None:
    child = start(children, ledger, setup.big, pause="after_commit")
    child.wait_for_line("wattledger-test-pause: after_commit")
    child.kill9()
    assert totals(snapshot(ledger)) == totals(setup.clean)
    again = subprocess.run(
        ingest_args(ledger, setup.big), capture_output=True, text=True, timeout=300, env=child_env()
    )
    assert again.returncode == EXIT_OK and "0 ingested, 1 skipped" in again.stdout, again.stdout
    assert totals(snapshot(ledger)) == totals(setup.clean)


@pytest.mark.parametrize("fraction", [0.35, 0.7, 0.95, 1.1])
def test_kill_9_at_any_moment_is_all_or_nothing(
    setup: Setup, ledger: Path, children: list[Child], fraction: float
) -> None:
    """Without hooks, killed at moments spread over a run's wall time: the ledger holds either
    exactly the base or exactly base + the whole run, never anything in between."""
    child = start(children, ledger, setup.big)
    time.sleep(setup.clean_seconds * fraction)
    if child.proc.poll() is None:
        os.kill(child.proc.pid, signal.SIGKILL)
    child.proc.wait(timeout=30)
    after = snapshot(ledger)
    if same_ledger(after, setup.before):
        return
    assert totals(after) == totals(setup.clean)
    assert after["tables"]["wl_runs"][:1] == setup.before["tables"]["wl_runs"]  # the May run kept


# ---------------------------------------------------------------------------------------------
# A second writer
# ---------------------------------------------------------------------------------------------


def test_second_concurrent_writer_is_told_the_ledger_is_busy(
    setup: Setup, ledger: Path, children: list[Child]
) -> None:
    first = start(children, ledger, setup.big, pause="before_read")  # holds the write lock
    first.wait_for_line("wattledger-test-pause: before_read")
    second = subprocess.run(
        ingest_args(ledger, setup.small), capture_output=True, text=True, timeout=120, env=child_env()
    )
    assert second.returncode == EXIT_BUSY, second.stderr
    assert second.stderr.strip().splitlines() == [
        f"error: ledger {ledger} is busy: another wattledger run holds it; retry later"
    ]
    reader = run_cli("report", "--ledger", str(ledger), "--year", "2025")
    assert reader.returncode == EXIT_BUSY and "is busy" in reader.stderr
    first.kill9()
    assert same_ledger(snapshot(ledger), setup.before)


# ---------------------------------------------------------------------------------------------
# Unwritable ledger path, full disk
# ---------------------------------------------------------------------------------------------


def assert_one_error_line(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_ledger_path_under_a_regular_file_is_one_error(setup: Setup, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file, not a directory\n")
    target = blocker / "ledger.duckdb"
    done = subprocess.run(
        ingest_args(target, setup.small), capture_output=True, text=True, timeout=120, env=child_env()
    )
    assert_one_error_line(done, EXIT_WRITE, str(target), "cannot be opened", "Not a directory")
    assert blocker.read_text() == "a file, not a directory\n"


def test_ledger_path_in_sysfs_is_one_error(setup: Setup) -> None:
    """/sys is read-only even for root, unlike a chmod'ed directory."""
    target = Path("/sys/wattledger-test.duckdb")
    done = subprocess.run(
        ingest_args(target, setup.small), capture_output=True, text=True, timeout=120, env=child_env()
    )
    assert_one_error_line(done, EXIT_WRITE, str(target), "cannot be opened")
    assert not target.exists()


def _mount(args: list[str], what: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(f"{what} needs root and mount(8) to set up; not available here")
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"{what}: `mount {' '.join(args)}` failed here ({done.stderr.strip()})")


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True, check=False)


def test_read_only_mounted_ledger_is_one_error_and_keeps_its_data(
    setup: Setup, ledger: Path, tmp_path: Path
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    _mount(["--bind", str(ledger.parent), str(ro)], "a read-only bind mount")
    try:
        _mount(["-o", "remount,bind,ro", str(ro)], "a read-only bind mount")
        target = ro / ledger.name
        done = subprocess.run(
            ingest_args(target, setup.big), capture_output=True, text=True, timeout=120, env=child_env()
        )
        assert_one_error_line(done, EXIT_WRITE, str(target), "Read-only file system")
        # Reading still works on the read-only mount: the ledger's data is all there.
        report = run_cli("report", "--ledger", str(target), "--year", "2025", "--format", "csv")
        assert report.returncode == EXIT_OK, report.stderr
    finally:
        _umount(ro)
    assert same_ledger(snapshot(ledger), setup.before)


def test_full_disk_is_one_error_keeps_earlier_data_and_recovers(
    setup: Setup, ledger: Path, tmp_path: Path
) -> None:
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=16M", "tmpfs", str(mnt)], "a small tmpfs")
    try:
        on_disk = mnt / ledger.name
        shutil.copy(ledger, on_disk)
        # Leave ~128 KiB: the earlier data fits, the new run's WAL does not.
        st = os.statvfs(mnt)
        ballast = mnt / "ballast"
        with ballast.open("wb") as fh:
            fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 128 * 1024))
        done = subprocess.run(
            ingest_args(on_disk, setup.big), capture_output=True, text=True, timeout=300, env=child_env()
        )
        assert_one_error_line(done, EXIT_WRITE, str(on_disk), "No space left on device", "unchanged")
        assert same_ledger(snapshot(on_disk), setup.before)
        ballast.unlink()  # space again: the same nightly command now succeeds
        rerun_matches_clean(setup, on_disk)
    finally:
        _umount(mnt)
