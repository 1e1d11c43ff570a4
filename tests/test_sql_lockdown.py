"""Issue 12, SQL: `wattledger sql` and `wattledger.connect()` read the ledger and nothing else.

Every escape the probe found (COPY ... TO over another ledger, EXPORT DATABASE, read_csv of
/etc/passwd, read_blob, ATTACH, INSTALL/LOAD, SET back) is refused with one line (exit 2 in the
CLI) and writes nothing; ``--allow-read DIR`` opens exactly DIR for reading; the package's own
connections keep working beside a locked one; Ctrl-C stops a running query (exit 130, or back
to the prompt in the interactive shell) and releases the ledger.
"""

from __future__ import annotations

import hashlib
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import wattledger as wl
from hostile import cli_command, run_cli
from ledger_data import build_ledger, cell, utc
from wattledger.cli import EXIT_INPUT, EXIT_INTERRUPTED, app
from wattledger.export import export_parquet
from wattledger.ledger import LedgerWriter

runner = CliRunner()

#: A query that runs for hours unless interrupted.
ENDLESS = "SELECT sum(range) FROM range(1000000000000)"


def run(*args: object, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def place(tmp_path: Path) -> dict[str, Path]:
    """The ledger, another ledger (the probe's victim), a directory of raw logs and a secret
    beside them."""
    ledger = tmp_path / "fleet.duckdb"
    build_ledger(ledger, tmp_path / "logs-a", {"a.jsonl": [cell("", utc(2025, 1, 1, 0), "m", 1.0)]})
    other = tmp_path / "other.duckdb"
    build_ledger(other, tmp_path / "logs-b", {"b.jsonl": [cell("", utc(2025, 1, 1, 0), "n", 2.0)]})
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "x.csv").write_text("model,tokens\nm,5\n")
    # A sibling whose name starts like the allowed directory: not allowed.
    private = tmp_path / "raw-private"
    private.mkdir()
    (private / "secret.csv").write_text("secret\n42\n")
    return {"tmp": tmp_path, "ledger": ledger, "other": other, "raw": raw, "private": private}


def _escapes(p: dict[str, Path]) -> dict[str, str]:
    """Each escape from the issue, as the probe ran it; ``out`` marks paths that must not appear."""
    out = p["tmp"] / "out"
    return {
        "copy over another ledger": f"COPY (SELECT 1 AS a) TO '{p['other']}' (FORMAT csv)",
        "copy to a new file": f"COPY (SELECT * FROM energy_hourly) TO '{out}.csv'",
        "copy the ledger's table out": f"COPY wl_hourly TO '{out}.parquet' (FORMAT parquet)",
        "export database": f"EXPORT DATABASE '{out}'",
        "read_csv /etc/passwd": "SELECT * FROM read_csv('/etc/passwd')",
        "read_blob": "SELECT * FROM read_blob('/etc/passwd')",
        "read_text": "SELECT * FROM read_text('/etc/hostname')",
        "read_parquet": f"SELECT * FROM read_parquet('{p['other']}')",
        "read_json": f"SELECT * FROM read_json('{p['private']}/secret.csv')",
        "glob": "SELECT * FROM glob('/etc/*')",
        "replacement scan of a path": "SELECT * FROM '/etc/passwd'",
        "attach another ledger": f"ATTACH '{p['other']}' AS o",
        "attach a new file": f"ATTACH '{out}.duckdb' AS n",
        "install": "INSTALL httpfs",
        "update extensions": "UPDATE EXTENSIONS",
        "load": "LOAD httpfs",
        "set back": "SET enable_external_access = true",
        "reset": "RESET enable_external_access",
        "unlock": "SET lock_configuration = false",
        "widen allowed dirs": "SET allowed_directories = ['/']",
        "explain analyze copy": f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}.csv'",
        "prepare copy": f"PREPARE p AS COPY (SELECT 1) TO '{out}.csv'",
        "write the ledger": "DELETE FROM wl_hourly",
        "a second statement": f"SELECT 1; COPY (SELECT 1) TO '{out}.csv'",
    }


ESCAPE_NAMES = list(_escapes(dict.fromkeys(("tmp", "other", "private"), Path("/x"))))


def _nothing_written(p: dict[str, Path], before: dict[str, str]) -> None:
    assert digest(p["ledger"]) == before["ledger"]
    assert digest(p["other"]) == before["other"]
    assert sorted(q.name for q in p["tmp"].iterdir()) == sorted(
        ["fleet.duckdb", "other.duckdb", "logs-a", "logs-b", "raw", "raw-private"]
    )


@pytest.mark.parametrize("name", ESCAPE_NAMES)
def test_cli_refuses_every_escape_in_one_line_and_writes_nothing(place: dict[str, Path], name: str) -> None:
    before = {"ledger": digest(place["ledger"]), "other": digest(place["other"])}
    result = run("sql", "--ledger", place["ledger"], "--allow-read", place["raw"], _escapes(place)[name])
    assert result.exit_code == EXIT_INPUT, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: sql: "), result.stderr
    assert result.stdout == ""
    _nothing_written(place, before)
    # The other ledger is still a ledger with its row.
    with wl.connect(place["other"]) as con:
        assert con.sql("SELECT model FROM energy_hourly").fetchall() == [("n",)]


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in ESCAPE_NAMES
        if n not in ("explain analyze copy", "prepare copy", "a second statement", "update extensions")
    ],
)
def test_connect_refuses_every_escape_and_writes_nothing(place: dict[str, Path], name: str) -> None:
    """The API connection is locked by DuckDB itself (no statement gate in between)."""
    before = {"ledger": digest(place["ledger"]), "other": digest(place["other"])}
    with wl.connect(place["ledger"]) as con:
        with pytest.raises(duckdb.Error):
            con.sql(_escapes(place)[name]).fetchall()
    _nothing_written(place, before)


def test_refusals_say_what_to_do(place: dict[str, Path]) -> None:
    escapes = _escapes(place)
    copy = run("sql", "--ledger", place["ledger"], escapes["copy to a new file"])
    assert "COPY" in copy.stderr and "--format csv" in copy.stderr
    read = run("sql", "--ledger", place["ledger"], escapes["read_csv /etc/passwd"])
    assert "/etc/passwd" in read.stderr and "--allow-read DIR" in read.stderr
    setting = run("sql", "--ledger", place["ledger"], escapes["set back"])
    assert "enable_external_access is locked" in setting.stderr


def test_allow_read_opens_exactly_that_directory(place: dict[str, Path]) -> None:
    ledger, raw, private = place["ledger"], place["raw"], place["private"]
    query = f"SELECT * FROM '{raw}/x.csv'"
    ok = run("sql", "--ledger", ledger, "--allow-read", raw, "--format", "csv", query)
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.splitlines() == ["model,tokens", "m,5"]
    for path in (f"{private}/secret.csv", f"{raw}/../raw-private/secret.csv"):
        refused = run("sql", "--ledger", ledger, "--allow-read", raw, f"SELECT * FROM read_csv('{path}')")
        assert refused.exit_code == EXIT_INPUT and "cannot open" in refused.stderr
    # Allowed for reading is not allowed for writing.
    write = run("sql", "--ledger", ledger, "--allow-read", raw, f"COPY (SELECT 1) TO '{raw}/new.csv'")
    assert write.exit_code == EXIT_INPUT
    assert sorted(p.name for p in raw.iterdir()) == ["x.csv"]
    # A single file may be allowed too.
    secret = private / "secret.csv"
    one = run("sql", "--ledger", ledger, "--allow-read", secret, f"FROM '{secret}'")
    assert one.exit_code == 0 and "42" in one.stdout
    missing = run("sql", "--ledger", ledger, "--allow-read", place["tmp"] / "nope", "SELECT 1")
    assert missing.exit_code == EXIT_INPUT and "--allow-read" in missing.stderr


def test_connect_allow_read_and_what_if_functions(place: dict[str, Path]) -> None:
    raw = place["raw"]
    with wl.connect(place["ledger"], allow_read=[raw]) as con:
        assert con.sql(f"SELECT tokens FROM read_csv('{raw}/x.csv')").fetchall() == [(5,)]
        # The what-if functions (Python UDFs over the Rust kernel) run under the lockdown.
        got = con.sql("SELECT wl_energy_method('m', NULL, NULL, NULL, NULL, 3600.0)").fetchall()
        assert got == [("measured",)]
        with pytest.raises(duckdb.PermissionException):
            con.sql(f"SELECT * FROM read_csv('{place['private']}/secret.csv')").fetchall()


def test_connect_read_write_changes_the_ledger_but_no_other_file(place: dict[str, Path]) -> None:
    with wl.connect(place["ledger"], read_only=False) as con:
        con.execute("CREATE TABLE notes AS SELECT 'kept' AS note")
        with pytest.raises(duckdb.PermissionException):
            con.sql(f"COPY notes TO '{place['tmp']}/notes.csv'")
        with pytest.raises(duckdb.InvalidInputException):
            con.execute("SET enable_external_access = true")
    assert not (place["tmp"] / "notes.csv").exists()
    with wl.connect(place["ledger"]) as con:
        assert con.sql("SELECT note FROM notes").fetchall() == [("kept",)]


def test_the_packages_own_connections_work_beside_a_locked_one(place: dict[str, Path]) -> None:
    """Locking is per DuckDB instance: the user's is private, so a report (SET threads) and an
    export (COPY ... TO) in the same process still work while it is open."""
    with wl.connect(place["ledger"]) as con:
        assert con.sql("SELECT count(*) FROM energy_hourly").fetchall() == [(1,)]
        assert wl.report(place["ledger"], year=2025, threads=1).height == 1
        assert wl.rollup(place["ledger"], year=2025).to_csv().count("\n") == 3  # header, m, total
        result = export_parquet(place["ledger"], place["tmp"] / "lake")
        assert result.rows == 1
        # ... and the locked connection stayed locked.
        with pytest.raises(duckdb.PermissionException):
            con.sql("SELECT * FROM read_csv('/etc/passwd')").fetchall()


def test_one_shot_query_is_interrupted_by_ctrl_c_and_releases_the_ledger(place: dict[str, Path]) -> None:
    child = run_cli("sql", "--ledger", place["ledger"], ENDLESS, interrupt_after=2.0, timeout=60)
    assert child.returncode == EXIT_INTERRUPTED, child.stderr
    assert child.error_lines == ["error: sql: interrupted; the query was stopped"]
    assert child.seconds < 2.0 + 10.0  # stopped, not run to the end (hours)
    LedgerWriter(place["ledger"]).close()  # not busy: the lock went with the process


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {marker!r} within {timeout} s; got {seen[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            seen += chunk
    return seen


def test_ctrl_c_in_the_prompt_stops_the_query_and_returns_to_the_prompt(place: dict[str, Path]) -> None:
    """The interactive shell runs on a terminal (a pty): Ctrl-C interrupts the running
    statement, the prompt comes back, the next statement runs, and after .quit the ledger is
    free."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        cli_command("sql", "--ledger", place["ledger"], "--format", "csv"),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    try:
        _read_until(master, b"wattledger> ", 30)
        os.write(master, f"{ENDLESS};\n".encode())
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        after = _read_until(master, b"wattledger> ", 10)
        assert b"interrupted" in after
        os.write(master, b"SELECT 40 + 2 AS answer;\n")
        answer = _read_until(master, b"wattledger> ", 10)
        assert b"42" in answer
        os.write(master, b".quit\n")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    LedgerWriter(place["ledger"]).close()


def test_a_piped_script_ends_with_130_on_ctrl_c(place: dict[str, Path]) -> None:
    script = place["tmp"] / "script.sql"
    script.write_text(f"{ENDLESS};\nSELECT 'after' AS a;\n")
    with script.open() as stdin:
        child = run_cli("sql", "--ledger", place["ledger"], stdin=stdin.fileno(), interrupt_after=2.0)
    assert child.returncode == EXIT_INTERRUPTED, child.stderr
    assert "after" not in child.stdout
    LedgerWriter(place["ledger"]).close()


def test_a_damaged_ledger_is_one_line_and_exit_2(place: dict[str, Path]) -> None:
    damaged = place["tmp"] / "damaged.duckdb"
    damaged.write_bytes(place["ledger"].read_bytes()[:300_000])  # cut inside its blocks
    result = run("sql", "--ledger", damaged, "SELECT count(*) FROM energy_hourly")
    assert result.exit_code == EXIT_INPUT, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "damaged.duckdb" in lines[0]
