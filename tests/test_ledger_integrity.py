"""A damaged ledger is refused in one line and never modified; ``check`` finds damage; Ctrl-C
during the write exits 130 with the ledger unchanged; a full disk names the path (issue 12).

Every command runs as a real child process (``hostile.run_cli``): the promises are about the
exit code, the one stderr line and the bytes of the file after the process is gone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

import wattledger as wl
from hostile import cli_command, run_cli
from wattledger.cli import EXIT_DAMAGED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_WRITE
from wattledger.integrity import FILE_HEADER_BYTES
from wattledger.synthetic import FleetFiles, generate_fleet
from wattledger.testhooks import ENV_POINT, ENV_SECONDS


@dataclass(frozen=True)
class Setup:
    fleet: FleetFiles  # ingested into ``base``
    more: FleetFiles  # another day, not yet ingested
    base: Path  # a ledger written by this version, one run committed


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("integrity")
    fleet = generate_fleet(root / "may", records=20_000, span="day", start="2025-05-01", seed=21)
    more = generate_fleet(root / "june", records=20_000, span="day", start="2025-06-01", seed=22)
    base = root / "base.duckdb"
    with pytest.warns(wl.RunWarning):
        wl.ingest(fleet.logs["jsonl"], ledger=base, config=fleet.config, grid=[fleet.grid], progress=False)
    return Setup(fleet, more, base)


@pytest.fixture
def ledger(setup: Setup, tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    shutil.copy(setup.base, path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Damaged files: one line, exit 2, not one byte changed
# ---------------------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes_in_a_data_block(path: Path) -> None:
    """64 KiB of random bytes inside a block that holds hourly rows (a free block would be
    harmless: nothing reads it, and the next write reuses it)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        blocks = sorted(
            r[0]
            for r in con.execute(
                "SELECT DISTINCT block_id FROM pragma_storage_info('wl_hourly') WHERE block_id >= 0"
            ).fetchall()
        )
        block_size = con.execute(
            "SELECT block_size FROM pragma_database_size() WHERE database_name = current_database()"
        ).fetchall()[0][0]
    finally:
        con.close()
    offset = FILE_HEADER_BYTES + blocks[len(blocks) // 2] * block_size + 4096
    data = bytearray(path.read_bytes())
    data[offset : offset + 65536] = os.urandom(65536)
    path.write_bytes(bytes(data))


def _not_a_ledger(path: Path) -> None:
    path.write_text("timestamp,model\n2025-05-01T00:00:00Z,gpt\n" * 500)


def _garbage_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:FILE_HEADER_BYTES] = os.urandom(FILE_HEADER_BYTES)
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "random-bytes-in-the-middle": _random_bytes_in_a_data_block,
    "not-a-ledger": _not_a_ledger,
    "garbage-header": _garbage_header,
}


Args = list[str | os.PathLike[str]]


def ingest_more(setup: Setup) -> Args:
    """``wattledger ingest`` of the June fleet (without --ledger)."""
    more = setup.more
    return ["ingest", more.logs["jsonl"], "--config", more.config, "--grid", more.grid, "--no-progress"]


def commands(setup: Setup, ledger: Path, tmp: Path) -> dict[str, Args]:
    return {
        "ingest": ingest_more(setup),
        "report": ["report", "--year", "2025"],
        "rollup": ["rollup", "--year", "2025"],
        "export": ["export", "--parquet", tmp / "export"],
        # Readers verify blocks as their queries read them (a full check before every query
        # would cost a scan): this one reads every column.
        "sql": ["sql", "SELECT max(hash(COLUMNS(*))) FROM wl_hourly"],
        "forget": ["forget", "--source", setup.fleet.logs["jsonl"]],
        "migrate": ["migrate"],
    }


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_ledger_is_one_line_exit_2_and_left_byte_identical(
    setup: Setup, ledger: Path, tmp_path: Path, damage: str
) -> None:
    DAMAGE[damage](ledger)
    before = sha256(ledger)
    for name, args in commands(setup, ledger, tmp_path).items():
        done = run_cli(*args, "--ledger", ledger, timeout=120)
        assert done.returncode == EXIT_INPUT, (name, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr, (name, done.stderr)
        assert len(done.error_lines) == 1, (name, done.stderr)
        line = done.error_lines[0]
        if name == "sql" and line.startswith("error: sql: "):
            # A query's own error (the sql command reports those as they are) naming the damage.
            assert "Corrupt database file" in line or "Could not read enough bytes" in line, line
        else:
            assert line.startswith("error: ledger ") and str(ledger) in line, (name, line)
            assert "damaged" in line or "not a DuckDB database" in line, (name, line)
            assert "backup" in line, (name, line)
        assert sha256(ledger) == before, f"{name} changed the damaged ledger"
        assert not os.path.exists(f"{ledger}.wal"), name
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_check_reports_a_damaged_file_with_exit_7_and_leaves_it(ledger: Path, damage: str) -> None:
    DAMAGE[damage](ledger)
    before = sha256(ledger)
    done = run_cli("check", "--ledger", ledger)
    assert done.returncode == EXIT_DAMAGED, done.stderr
    assert "storage: DAMAGED" in done.stdout and "Traceback" not in done.stderr, done.stdout
    assert sha256(ledger) == before
    result = wl.check(ledger)
    assert not result.sound and result.storage != "ok" and result.runs == ()


# ---------------------------------------------------------------------------------------------
# check: re-sum every run against what it recorded at commit
# ---------------------------------------------------------------------------------------------


def test_check_of_a_sound_ledger_is_ok_and_exit_0(setup: Setup, ledger: Path) -> None:
    with pytest.warns(wl.RunWarning):
        wl.ingest(setup.more.logs["jsonl"], ledger=ledger, config=setup.more.config, progress=False)
    before = sha256(ledger)
    done = run_cli("check", "--ledger", ledger)
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert "storage: ok" in done.stdout and "sound: 2 runs" in done.stdout, done.stdout
    result = wl.check(ledger)
    assert result.sound and result.schema_version == 6
    assert [r.status for r in result.runs] == ["ok", "ok"]
    assert sum(r.records for r in result.runs) == 40_000 - _rejected(ledger)
    assert sha256(ledger) == before


def _rejected(ledger: Path) -> int:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        return int(con.execute("SELECT sum(rejected) FROM wl_sources").fetchall()[0][0])
    finally:
        con.close()


def _tamper(ledger: Path, statement: str) -> str:
    """Change hourly rows behind wattledger's back (as a bad copy or a stray UPDATE would)."""
    con = duckdb.connect(str(ledger))
    try:
        run_id = con.execute("SELECT min(run_id) FROM wl_hourly").fetchall()[0][0]
        con.execute(statement)
    finally:
        con.close()
    return str(run_id)


def test_check_finds_a_tampered_run_total(ledger: Path) -> None:
    run_id = _tamper(
        ledger,
        "UPDATE wl_hourly SET energy_kwh = energy_kwh + 1.0 WHERE rowid = "
        "(SELECT min(rowid) FROM wl_hourly WHERE energy_kwh IS NOT NULL)",
    )
    done = run_cli("check", "--ledger", ledger)
    assert done.returncode == EXIT_DAMAGED, done.stdout + done.stderr
    assert f"run {run_id}: mismatch" in done.stdout, done.stdout
    assert "energy_kwh recorded" in done.stdout and "DAMAGED: 1 of 1 runs" in done.stdout, done.stdout
    result = wl.check(ledger)
    (run,) = result.mismatched_runs
    (wrong,) = [m for m in run.mismatches if m.measure == "energy_kwh"]
    assert isinstance(wrong.recorded, float) and isinstance(wrong.found, float)
    assert wrong.found == pytest.approx(wrong.recorded + 1.0, rel=1e-9)
    # Only the changed measure differs; the row count and the other sums still match.
    assert {m.measure for m in run.mismatches} == {"energy_kwh"}


def test_check_finds_lost_hourly_rows(ledger: Path) -> None:
    _tamper(ledger, "DELETE FROM wl_hourly WHERE rowid % 10 = 0")
    result = wl.check(ledger)
    assert not result.sound
    measures = {m.measure for r in result.mismatched_runs for m in r.mismatches}
    assert {"hourly_rows", "records", "energy_kwh"} <= measures


def test_check_is_sound_after_a_forget_and_a_replace(setup: Setup, ledger: Path, tmp_path: Path) -> None:
    """Forget and --replace retire sources on purpose: their rows are gone and that is no damage."""
    log = tmp_path / "june.jsonl"
    shutil.copy(setup.more.logs["jsonl"], log)
    with pytest.warns(wl.RunWarning):
        wl.ingest(log, ledger=ledger, config=setup.more.config, progress=False)
    log.write_bytes(log.read_bytes()[: log.stat().st_size // 2].rsplit(b"\n", 1)[0] + b"\n")
    with pytest.warns(wl.RunWarning):
        wl.ingest(log, ledger=ledger, config=setup.more.config, progress=False, replace=True)
    wl.forget(ledger, source=setup.fleet.logs["jsonl"])
    result = wl.check(ledger)
    assert result.sound, result
    assert sorted(r.status for r in result.runs) == ["nothing live", "nothing live", "nothing live", "ok"]


# ---------------------------------------------------------------------------------------------
# Ctrl-C during the ledger write
# ---------------------------------------------------------------------------------------------


def _interrupt_at(point: str, args: Args, *, pause: float = 120) -> tuple[int, str, float]:
    """Run wattledger until it reaches the test hook's ``point``, press Ctrl-C there (SIGINT),
    return its exit code, stderr and the seconds from the signal to its exit. With ``pause``
    0 the run goes on at once, so the signal lands in what follows the point."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV_POINT, ENV_SECONDS)}
    env |= {ENV_POINT: point, ENV_SECONDS: str(pause)}
    proc = subprocess.Popen(
        cli_command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.strip() == f"wattledger-test-pause: {point}":
                break
        else:
            pytest.fail(f"no pause at {point}: {''.join(seen)}")
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
        return code, "".join(seen) + rest, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_ctrl_c_during_the_ledger_write_exits_130_and_leaves_the_ledger(setup: Setup, ledger: Path) -> None:
    """Paused inside the run's transaction, every row inserted, not committed: Ctrl-C rolls it
    back. The ledger keeps exactly its tables' contents (DuckDB may have written the run's rows
    to free blocks before the rollback; they stay free)."""
    before = contents(ledger)
    code, stderr, seconds = _interrupt_at("before_commit", [*ingest_more(setup), "--ledger", ledger])
    assert code == EXIT_INTERRUPTED, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: interrupted; the ledger is as it was before the run"], stderr
    assert "Traceback" not in stderr and "aborted" not in stderr, stderr
    assert seconds < 10, seconds  # generous: it is the roll back, not a timing benchmark
    assert contents(ledger) == before
    assert wl.check(ledger).sound


@pytest.mark.slow
def test_ctrl_c_inside_the_write_statements_exits_130_not_aborted(
    ledger: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The signal lands while DuckDB executes the run's INSERTs (a year of hourly rows takes
    seconds to write): DuckDB stops the statement, the cleanup after it meets an aborted
    transaction, and all of that is still Ctrl-C: exit 130, not exit 5 "transaction is
    aborted", within a second or two."""
    year = generate_fleet(
        tmp_path_factory.mktemp("year"), records=200_000, span="year", start="2025-01-01", seed=23
    )
    before = contents(ledger)
    args: Args = ["ingest", year.logs["jsonl"], "--config", year.config, "--grid", year.grid, "--no-progress"]
    code, stderr, seconds = _interrupt_at("before_write", [*args, "--ledger", ledger], pause=0)
    assert code == EXIT_INTERRUPTED, stderr
    assert "aborted" not in stderr and "Traceback" not in stderr, stderr
    assert seconds < 5, seconds  # generous; about 0.3 s measured
    assert contents(ledger) == before
    assert wl.check(ledger).sound


def test_ctrl_c_during_a_forget_exits_130_and_leaves_the_ledger(setup: Setup, ledger: Path) -> None:
    before = sha256(ledger)
    code, stderr, _ = _interrupt_at(
        "before_commit", ["forget", "--source", setup.fleet.logs["jsonl"], "--ledger", ledger]
    )
    assert code == EXIT_INTERRUPTED, stderr
    # A forget writes little: nothing reaches the file before its commit.
    assert sha256(ledger) == before


# ---------------------------------------------------------------------------------------------
# A full disk names the path
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Any:
    """A small tmpfs (root and mount(8) needed; skipped otherwise) to fill up."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8M", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")

    def fill(leave: int) -> None:
        st = os.statvfs(mnt)
        with (mnt / "ballast").open("wb") as fh:
            fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))

    try:
        yield mnt, fill
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, check=False)


def test_full_disk_names_the_output_path_and_the_reason(ledger: Path, full_disk: Any) -> None:
    mnt, fill = full_disk
    fill(0)
    out = mnt / "annual.csv"
    done = run_cli("report", "--ledger", ledger, "--year", "2025", "--format", "csv", "--out", out)
    assert done.returncode == EXIT_WRITE, done.stderr
    (line,) = [line for line in done.error_lines if line.startswith("error: ")]
    assert str(out) in line and "No space left on device" in line, line
    assert not out.exists()


def test_full_disk_during_ingest_names_the_ledger_and_leaves_it(
    setup: Setup, ledger: Path, full_disk: Any
) -> None:
    mnt, fill = full_disk
    on_disk = mnt / ledger.name
    shutil.copy(ledger, on_disk)
    before = contents(on_disk)
    fill(64 * 1024)
    done = run_cli(*ingest_more(setup), "--ledger", on_disk)
    assert done.returncode == EXIT_WRITE, done.stderr
    errors = [line for line in done.error_lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(on_disk) in errors[0] and "No space left on device" in errors[0], errors[0]
    assert contents(on_disk) == before
