"""Issue 11, "nothing silently wrong", the ledger's part: a source's identity is its bytes (hashed),
the pack and how it was read; a file no record could be read from is never recorded as done;
``forget`` removes a source's or a run's contributions; ``--wait`` waits for a busy ledger; the
schema 2 -> 3 migration, and the schema 3 -> 4 change of the content hash from SHA-256 to BLAKE3
(old sources keep their SHA-256 identity). End to end through the real CLI and the compiled engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import wattledger as wl
from ledger_data import downgrade_schema
from wattledger.cli import EXIT_BUSY, EXIT_CONFLICT, EXIT_INPUT, app

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_error(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def write_lines(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def misnamed(n: int = 2, start: int = 0) -> list[dict[str, object]]:
    """Records whose columns are named as many logs name them, not as wattledger does."""
    return [
        {
            "timestamp": f"2025-03-01T{10 + (i % 10):02d}:00:00Z",
            "model_name": "llama-3.1-8b",
            "alt_model": "llama-3.1-70b",
            "input_tokens": 100 + i,
            "output_tokens": 50,
        }
        for i in range(start, start + n)
    ]


def canonical(n: int = 3) -> list[dict[str, object]]:
    return [
        {
            "ts": f"2025-03-01T{10 + i:02d}:00:00Z",
            "model": "llama-3.1-8b",
            "input_tokens": 10,
            "output_tokens": 5,
        }
        for i in range(n)
    ]


def rows(ledger: Path, sql: str) -> list[tuple]:
    con = wl.connect(ledger)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


MAP = ("--column", "ts=timestamp", "--column", "model=model_name")


def test_misnamed_columns_fail_with_a_hint_and_record_nothing(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "logs" / "night.jsonl", misnamed())
    ledger = tmp_path / "l.duckdb"
    hint = "try --column ts=timestamp --column model=model_name"
    result = run("ingest", log, "--ledger", ledger)
    err = one_error(result, EXIT_INPUT, str(log), "no record could be read", "no column ts, model", hint)
    assert "saw timestamp, model_name, alt_model, input_tokens, output_tokens" in err
    assert not ledger.exists()  # the run created the ledger, failed, and removed it again
    # validate says the same, with a non-zero exit
    one_error(run("validate", log), EXIT_INPUT, "no record could be read", hint)
    # the Python API raises instead of returning an empty frame
    with pytest.raises(wl.NoRecordsError, match="try --column ts=timestamp"):
        wl.ingest(log, ledger=ledger, progress=False)
    with pytest.raises(wl.NoRecordsError, match="no column ts, model"):
        wl.estimate(log)
    with pytest.raises(wl.NoRecordsError, match="saw timestamp, model_name"):
        wl.estimate(pl.DataFrame(misnamed()))
    with pytest.raises(wl.NoRecordsError):
        wl.read_logs(log)
    # one bad file fails the whole run: the good one next to it is not committed either
    good = write_lines(tmp_path / "logs" / "good.jsonl", canonical())
    one_error(run("ingest", good, log, "--ledger", ledger), EXIT_INPUT, "night.jsonl")
    assert not ledger.exists()
    # into an existing ledger: nothing of the run is committed, the ledger stays
    assert run("ingest", good, "--ledger", ledger).exit_code == 0
    before = rows(ledger, "SELECT count(*), sum(records) FROM sources")
    one_error(
        run("ingest", write_lines(tmp_path / "logs" / "more.jsonl", canonical(4)), log, "--ledger", ledger),
        EXIT_INPUT,
    )
    assert rows(ledger, "SELECT count(*), sum(records) FROM sources") == before


def test_preset_hint_from_the_engine(tmp_path: Path) -> None:
    batch = write_lines(
        tmp_path / "batch.jsonl",
        [
            {
                "id": "batch_req_1",
                "custom_id": "r1",
                "response": {
                    "status_code": 200,
                    "body": {"created": 1740823200, "model": "gpt-4o", "usage": {"prompt_tokens": 3}},
                },
                "error": None,
            }
        ],
    )
    one_error(run("validate", batch), EXIT_INPUT, "saw id, custom_id, response, error", "try --preset openai")
    ok = run("validate", batch, "--preset", "openai")
    assert ok.exit_code == 0, ok.stderr


def test_wrong_mapping_trap_end_to_end(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "night.jsonl", misnamed(4))
    ledger = tmp_path / "l.duckdb"
    first = run("ingest", log, "--ledger", ledger, *MAP)
    assert first.exit_code == 0, first.stderr
    assert "4 read" in first.stdout
    assert rows(ledger, "SELECT read_as, live FROM sources") == [
        ("--column ts=timestamp --column model=model_name", True)
    ]
    again = run("ingest", log, "--ledger", ledger, *MAP)
    assert again.exit_code == 0 and "unchanged since run" in again.stdout
    # the same bytes read another way are not "unchanged": refused, naming both mappings
    other = ("--column", "ts=timestamp", "--column", "model=alt_model")
    err = one_error(run("ingest", log, "--ledger", ledger, *other), EXIT_CONFLICT, "mapping", "--replace")
    assert (
        "`--column ts=timestamp --column model=model_name` -> "
        "`--column ts=timestamp --column model=alt_model`" in err
    )
    one_error(run("ingest", log, "--ledger", ledger, "--preset", "openai"), EXIT_CONFLICT, "mapping")
    # --replace recounts it under the new mapping
    replaced = run("ingest", log, "--ledger", ledger, *other, "--replace")
    assert replaced.exit_code == 0, replaced.stderr
    assert "1 replaced" in replaced.stdout
    assert rows(ledger, "SELECT DISTINCT model FROM energy_hourly") == [("llama-3.1-70b",)]
    assert rows(ledger, "SELECT count(*) FROM sources WHERE live") == [(1,)]
    # a renamed copy: same mapping -> already counted; another mapping -> refused
    copy = tmp_path / "copy" / "renamed.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(log.read_bytes())
    same = run("ingest", copy, "--ledger", ledger, *other)
    assert same.exit_code == 0 and "same content already ingested as" in same.stdout
    one_error(run("ingest", copy, "--ledger", ledger, *MAP), EXIT_CONFLICT, "same content as", "mapping")
    # whitespace around '=' is the same mapping
    spaced = run(
        "ingest", log, "--ledger", ledger, "--column", "ts = timestamp", "--column", "model= alt_model"
    )
    assert spaced.exit_code == 0 and "unchanged since run" in spaced.stdout


def test_changed_bytes_with_restored_mtime_are_seen(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "a.jsonl", canonical())
    ledger = tmp_path / "l.duckdb"
    assert run("ingest", log, "--ledger", ledger).exit_code == 0
    st = log.stat()
    body = log.read_bytes()
    log.write_bytes(body.replace(b"llama-3.1-8b", b"llama-3.1-7b"))  # same size, other bytes
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p / rsync -t leave it
    assert log.stat().st_size == st.st_size and log.stat().st_mtime_ns == st.st_mtime_ns
    one_error(run("ingest", log, "--ledger", ledger), EXIT_CONFLICT, "in content", "same size", "--replace")
    replaced = run("ingest", log, "--ledger", ledger, "--replace")
    assert replaced.exit_code == 0 and "1 replaced" in replaced.stdout
    assert rows(ledger, "SELECT DISTINCT model FROM energy_hourly") == [("llama-3.1-7b",)]


def test_appended_file_says_it_grew(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "a.jsonl", canonical())
    ledger = tmp_path / "l.duckdb"
    first = run("ingest", log, "--ledger", ledger)
    assert first.exit_code == 0
    (run_id,) = rows(ledger, "SELECT run_id FROM runs")[0]
    size = log.stat().st_size
    with log.open("a", encoding="utf-8") as f:
        f.write(json.dumps(canonical(1)[0]) + "\n")
    grown = log.stat().st_size
    one_error(
        run("ingest", log, "--ledger", ledger),
        EXIT_CONFLICT,
        f"grew from {size:,} to {grown:,} bytes since run {run_id} read it",
        "ingest it once complete",
        "--replace",
    )
    assert run("ingest", log, "--ledger", ledger, "--replace").exit_code == 0
    assert rows(ledger, "SELECT sum(records) FROM energy_hourly") == [(4,)]


def test_file_growing_during_the_run_is_recorded_as_read(tmp_path: Path) -> None:
    """The identity is of the bytes the engine read: a file appended to after it was listed
    but before it was read is stored with the size read, so the next run finds it unchanged."""
    log = write_lines(tmp_path / "a.jsonl", canonical())
    ledger = tmp_path / "l.duckdb"
    env = {**os.environ, "WATTLEDGER_TEST_PAUSE_AT": "before_read", "WATTLEDGER_TEST_PAUSE_SECONDS": "1"}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wattledger.cli",
            "ingest",
            str(log),
            "--ledger",
            str(ledger),
            "--no-progress",
        ],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    for line in child.stderr:
        if line.startswith("wattledger-test-pause: before_read"):
            break
    with log.open("a", encoding="utf-8") as f:  # listed and stat'ed already, not yet read
        f.write(json.dumps(canonical(1)[0]) + "\n")
    _out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert rows(ledger, "SELECT size_bytes, records FROM sources") == [(log.stat().st_size, 4)]
    again = run("ingest", log, "--ledger", ledger)
    assert again.exit_code == 0 and "unchanged since run" in again.stdout, again.stderr


def test_empty_file_is_not_recorded(tmp_path: Path) -> None:
    log = tmp_path / "quiet.jsonl"
    log.write_text("\n\n", encoding="utf-8")
    ledger = tmp_path / "l.duckdb"
    result = run("ingest", log, "--ledger", ledger)
    assert result.exit_code == 0, result.stderr
    assert "empty (no records)" in result.stdout and "warning: " in result.stderr
    assert rows(ledger, "SELECT count(*) FROM sources") == [(0,)]
    # once it has content it is ingested normally (no "changed since" conflict)
    write_lines(log, canonical())
    later = run("ingest", log, "--ledger", ledger)
    assert later.exit_code == 0 and "1 ingested" in later.stdout, later.stderr


def _totals(ledger: Path) -> tuple:
    return rows(ledger, "SELECT sum(energy_kwh), sum(records) FROM energy_hourly")[0]


def test_forget_source_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write_lines(tmp_path / "a.jsonl", canonical(3))
    b = write_lines(tmp_path / "b.jsonl", canonical(2))
    c = write_lines(tmp_path / "c.jsonl", [*canonical(1)[:1], {**canonical(1)[0], "input_tokens": 99}])
    ledger = tmp_path / "l.duckdb"
    assert run("ingest", a, b, "--ledger", ledger).exit_code == 0
    assert run("ingest", c, "--ledger", ledger).exit_code == 0
    (run_c,) = rows(ledger, f"SELECT run_id FROM sources WHERE path = '{c}'")[0]
    energy, records = _totals(ledger)
    assert records == 7

    # by source: the path as given (relative), matched as the stored absolute path
    monkeypatch.chdir(tmp_path)
    result = run("forget", "--ledger", ledger, "--source", "a.jsonl")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "forgot source " + str(a) in out
    assert "before:" in out and "removed:" in out and "after:" in out
    assert "7 records" in out.split("before:")[1].splitlines()[0]
    assert "3 records" in out.split("removed:")[1].splitlines()[0]
    assert "4 records" in out.split("after:")[1].splitlines()[0]
    assert _totals(ledger)[1] == 4
    forgotten = rows(
        ledger, f"SELECT live, forgotten_at IS NOT NULL, forgotten_by FROM sources WHERE path = '{a}'"
    )
    assert len(forgotten) == 1 and forgotten[0][:2] == (False, True)
    forget_run_id = forgotten[0][2]
    assert rows(ledger, f"SELECT status, config_sha256 FROM runs WHERE run_id = '{forget_run_id}'") == [
        (f"forgot source {a}", None)
    ]
    one_error(run("forget", "--ledger", ledger, "--source", a), EXIT_INPUT, "already forgotten")
    one_error(
        run("forget", "--ledger", ledger, "--source", tmp_path / "nope.jsonl"),
        EXIT_INPUT,
        "has no source",
        "SELECT",
        "FROM sources",
    )

    # by run; the Python API returns the same totals
    res = wl.forget(ledger, run=run_c)
    assert (res.before.records, res.removed.records, res.after.records) == (4, 2, 2)
    assert res.after.energy_kwh == pytest.approx(_totals(ledger)[0])
    assert rows(ledger, f"SELECT forgotten_by IS NOT NULL FROM runs WHERE run_id = '{run_c}'") == [(True,)]
    one_error(run("forget", "--ledger", ledger, "--run", run_c), EXIT_INPUT, "already forgotten")
    one_error(run("forget", "--ledger", ledger, "--run", "20990101T000000.000Z-abcdef"), EXIT_INPUT, "no run")
    one_error(run("forget", "--ledger", ledger), EXIT_INPUT, "exactly one of --source PATH or --run ID")

    # forgotten files can be ingested again normally
    again = run("ingest", a, c, "--ledger", ledger)
    assert again.exit_code == 0 and "2 ingested" in again.stdout, again.stderr
    assert _totals(ledger)[1] == 7
    if energy is not None:
        assert _totals(ledger)[0] == pytest.approx(energy)


_HOLD_THEN_RELEASE = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    print("released", flush=True)
    time.sleep(60)
    """
)


def _hold(ledger: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THEN_RELEASE, str(ledger), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_wait_for_a_reader_then_ingest(tmp_path: Path) -> None:
    ledger = tmp_path / "l.duckdb"
    assert run("ingest", write_lines(tmp_path / "a.jsonl", canonical()), "--ledger", ledger).exit_code == 0
    b = write_lines(tmp_path / "b.jsonl", canonical(2))
    holder = _hold(ledger, 2.0)
    try:
        busy = run("ingest", b, "--ledger", ledger)
        one_error(busy, EXIT_BUSY, "is busy", "retry later")
        started = time.monotonic()
        waited = run("ingest", b, "--ledger", ledger, "--wait", "30")
        assert waited.exit_code == 0, waited.stderr
        assert time.monotonic() - started < 25
        assert waited.stderr.count("is busy (another process holds it); waiting up to 30 s") == 1
    finally:
        holder.kill()
        holder.wait()
    assert rows(ledger, "SELECT sum(records) FROM energy_hourly") == [(5,)]


def test_wait_times_out_with_exit_3(tmp_path: Path) -> None:
    ledger = tmp_path / "l.duckdb"
    a = write_lines(tmp_path / "a.jsonl", canonical())
    assert run("ingest", a, "--ledger", ledger).exit_code == 0
    holder = _hold(ledger, 60)
    try:
        started = time.monotonic()
        result = run(
            "ingest", write_lines(tmp_path / "b.jsonl", canonical(2)), "--ledger", ledger, "--wait", "1"
        )
        assert time.monotonic() - started >= 1
        one_error(result, EXIT_BUSY, "is busy", "waited 1 s", "retry later")
        one_error(
            run("forget", "--ledger", ledger, "--source", a, "--wait", "0.5"), EXIT_BUSY, "waited 0.5 s"
        )
        with pytest.raises(wl.LedgerBusyError):
            wl.ingest(a, ledger=ledger, wait=0.3, progress=False)
    finally:
        holder.kill()
        holder.wait()


def test_schema_5_ledger_gains_the_etag_column_and_keeps_its_sources(tmp_path: Path) -> None:
    """Schema 6 adds ``wl_sources.etag`` (objects in object storage): a schema 5 ledger is
    refused until migrated, its sources (local files) get NULL, and they are still skipped."""
    ledger = tmp_path / "old.duckdb"
    plain = write_lines(tmp_path / "plain.jsonl", canonical())
    assert run("ingest", plain, "--ledger", ledger).exit_code == 0
    downgrade_schema(ledger, 5)
    with pytest.raises(wl.LedgerSchemaError, match=r"schema version 5 .*ETag.*wattledger migrate"):
        wl.report(ledger, year=2025)
    assert wl.migrate_ledger(ledger)
    assert rows(ledger, "SELECT etag, live FROM sources") == [(None, True)]
    assert rows(ledger, "SELECT value FROM wl_meta WHERE key = 'schema_version'") == [("6",)]
    again = run("ingest", plain, "--ledger", ledger)
    assert again.exit_code == 0 and "unchanged since run" in again.stdout


def test_schema_2_ledger_is_migrated_and_old_sources_count_as_the_default_mapping(tmp_path: Path) -> None:
    ledger = tmp_path / "old.duckdb"
    plain = write_lines(tmp_path / "plain.jsonl", canonical())
    mapped = write_lines(tmp_path / "mapped.jsonl", misnamed())
    assert run("ingest", plain, "--ledger", ledger).exit_code == 0
    assert run("ingest", mapped, "--ledger", ledger, *MAP).exit_code == 0
    downgrade_schema(ledger, 2)
    with pytest.raises(wl.LedgerSchemaError, match=r"schema version 2 .*wattledger migrate --ledger"):
        wl.report(ledger, year=2025)
    r = run("migrate", "--ledger", ledger)
    assert r.exit_code == 0 and "upgraded" in r.stderr, r.stderr
    assert not wl.migrate_ledger(ledger)
    assert rows(ledger, "SELECT read_as, live FROM sources ORDER BY path") == [(None, True), (None, True)]
    assert rows(ledger, "SELECT value FROM wl_meta WHERE key = 'schema_version'") == [("6",)]
    # NULL compares as the default mapping: the plain file is unchanged ...
    again = run("ingest", plain, "--ledger", ledger)
    assert again.exit_code == 0 and "unchanged since run" in again.stdout
    # ... and the file read with a mapping must be recounted once to record it
    err = one_error(run("ingest", mapped, "--ledger", ledger, *MAP), EXIT_CONFLICT, "unrecorded mapping")
    assert "--replace" in err
    assert run("ingest", mapped, "--ledger", ledger, *MAP, "--replace").exit_code == 0
    # forget works on the migrated ledger (a forget row has no config)
    assert wl.forget(ledger, source=plain).removed.records == 3


def test_new_sources_are_identified_by_blake3(tmp_path: Path) -> None:
    ledger = tmp_path / "l.duckdb"
    log = write_lines(tmp_path / "a.jsonl", canonical())
    assert run("ingest", log, "--ledger", ledger).exit_code == 0
    from wattledger import _core

    b3 = _core.file_digests(log)[0]
    assert rows(ledger, "SELECT blake3, sha256, size_bytes FROM sources") == [(b3, None, log.stat().st_size)]
    assert rows(ledger, "SELECT value FROM wl_meta WHERE key = 'schema_version'") == [("6",)]
    copy = tmp_path / "copy.jsonl"
    shutil.copyfile(log, copy)
    again = run("ingest", copy, "--ledger", ledger)
    assert again.exit_code == 0 and "same content already ingested as" in again.stdout


def test_schema_3_ledger_keeps_sha256_identities(tmp_path: Path) -> None:
    """A ledger written before BLAKE3 (schema 3) records SHA-256 only. After the migration its
    files are still recognised: the same file again is skipped, a copy under another name is
    skipped, a changed file at the same path is refused, and reports are unchanged. New files
    get a BLAKE3 identity; the old sources are never re-hashed or rewritten."""
    ledger = tmp_path / "old.duckdb"
    logs = tmp_path / "logs"
    a = write_lines(logs / "a.jsonl", canonical(3))
    b = write_lines(logs / "b.jsonl", canonical(2))
    assert run("ingest", a, b, "--ledger", ledger).exit_code == 0
    downgrade_schema(ledger, 3)
    sha_a = hashlib.sha256(a.read_bytes()).hexdigest()
    import duckdb

    con = duckdb.connect(str(ledger), read_only=True)  # wattledger refuses it until migrated
    try:
        recorded = con.execute("SELECT path, sha256 FROM wl_sources").fetchall()
    finally:
        con.close()
    assert ("a.jsonl", sha_a) in [(Path(p).name, h) for p, h in recorded]
    with pytest.raises(wl.LedgerSchemaError, match=r"schema version 3 .*wattledger migrate --ledger"):
        wl.report(ledger, year=2025)
    r = run("migrate", "--ledger", ledger)
    assert r.exit_code == 0 and "upgraded" in r.stderr, r.stderr
    assert rows(ledger, "SELECT value FROM wl_meta WHERE key = 'schema_version'") == [("6",)]
    before = wl.report(ledger, year=2025)
    assert rows(ledger, "SELECT count(*) FROM sources WHERE blake3 IS NULL AND sha256 IS NOT NULL") == [(2,)]

    # The same files: skipped, by SHA-256 (as the ledger recorded them), nothing counted twice.
    again = run("ingest", a, b, "--ledger", ledger)
    assert again.exit_code == 0 and again.stdout.count("unchanged since run") == 2, again.stdout
    copy = tmp_path / "elsewhere" / "a-copy.jsonl"
    copy.parent.mkdir()
    shutil.copyfile(a, copy)
    renamed = run("ingest", copy, "--ledger", ledger)
    assert renamed.exit_code == 0 and "same content already ingested as" in renamed.stdout
    assert pl.DataFrame.equals(wl.report(ledger, year=2025), before)
    assert rows(ledger, "SELECT count(*) FROM wl_sources") == [(2,)]
    assert rows(ledger, "SELECT count(*) FROM sources WHERE blake3 IS NULL") == [(2,)], "old rows untouched"

    # Same size, other bytes, same path: the content differs, and the message says from what.
    text = a.read_text(encoding="utf-8")
    a.write_text(text.replace("T10:00", "T11:00", 1), encoding="utf-8")
    assert len(a.read_bytes()) == len(text.encode())
    err = one_error(run("ingest", a, "--ledger", ledger), EXIT_CONFLICT, "differs from what run")
    assert f"sha256 {sha_a[:12]} -> blake3 " in err and "same size" in err
    assert run("ingest", a, "--ledger", ledger, "--replace").exit_code == 0
    new = rows(ledger, "SELECT blake3, sha256 FROM sources WHERE live AND path LIKE '%a.jsonl'")
    assert new == [(_core_blake3(a), None)]


def _core_blake3(path: Path) -> str:
    from wattledger import _core

    return _core.file_digests(path)[0]


def test_wait_note_is_printed_once_by_the_python_api(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "l.duckdb"
    a = write_lines(tmp_path / "a.jsonl", canonical())
    wl.ingest(a, ledger=ledger, progress=False)
    holder = _hold(ledger, 1.0)
    done: list[object] = []
    try:
        t = threading.Thread(target=lambda: done.append(wl.forget(ledger, source=a, wait=30)))
        t.start()
        t.join(60)
    finally:
        holder.kill()
        holder.wait()
    assert done and done[0].removed.records == 3  # type: ignore[attr-defined]
    assert capfd.readouterr().err.count("waiting up to 30 s") == 1


def test_path_rewritten_with_bytes_counted_elsewhere_is_stale_not_skipped(tmp_path: Path) -> None:
    """b.jsonl's old content is live; its new content equals a.jsonl's. Skipping it would leave
    b's stale rows counted: refused, and --replace retires them without counting a twice."""
    ledger = tmp_path / "l.duckdb"
    a = write_lines(tmp_path / "a.jsonl", canonical(3))
    b = write_lines(tmp_path / "b.jsonl", canonical(2))
    assert run("ingest", a, b, "--ledger", ledger).exit_code == 0
    b.write_bytes(a.read_bytes())
    one_error(run("ingest", b, "--ledger", ledger), EXIT_CONFLICT, str(b), "grew from", "--replace")
    replaced = run("ingest", b, "--ledger", ledger, "--replace")
    assert replaced.exit_code == 0, replaced.stderr
    assert "same content already ingested as" in replaced.stdout and "1 replaced" in replaced.stdout
    assert rows(ledger, "SELECT sum(records) FROM energy_hourly") == [(3,)]


def test_file_whose_every_object_a_preset_skips_is_recorded_with_a_warning(tmp_path: Path) -> None:
    """Spans that are not GenAI calls: the preset passes them over on purpose. Re-reading the same
    bytes the same way gives the same nothing, so the file is recorded (not re-read nightly),
    and a warning says so, since a wrong preset would look the same."""
    spans = write_lines(
        tmp_path / "spans.jsonl",
        [
            {
                "name": "db.query",
                "startTimeUnixNano": "1740823200000000000",
                "endTimeUnixNano": "1740823201000000000",
                "attributes": {"db.system": "postgres"},
            }
        ],
    )
    ledger = tmp_path / "l.duckdb"
    result = run("ingest", spans, "--ledger", ledger, "--preset", "otel")
    assert result.exit_code == 0, result.stderr
    assert "all 1 objects were passed over on purpose (not a GenAI span 1); recorded as read" in result.stderr
    assert rows(ledger, "SELECT records, skipped, read_as FROM sources") == [(0, 1, "--preset otel")]
    again = run("ingest", spans, "--ledger", ledger, "--preset", "otel")
    assert again.exit_code == 0 and "unchanged since run" in again.stdout


@pytest.mark.parametrize(
    ("name", "body", "fragment"),
    [
        ("u16.csv", "ts,model\n2025-06-01T00:00:00Z,m\n".encode("utf-16"), "it looks like UTF-16 LE"),
        (
            "u16be.jsonl",
            '{"ts": "2025-06-01T00:00:00Z"}\n'.encode("utf-16-be"),
            "UTF-16 BE without a byte-order",
        ),
        ("latin.csv", "ts,model\n2025-06-01T00:00:00Z,caf\xe9\n".encode("latin-1"), "line 2: not UTF-8 text"),
        ("semi.csv", b"ts;model;input_tokens\n2025-06-01T00:00:00Z;m;10\n", "fields are separated by ';'"),
    ],
)
def test_logs_in_another_encoding_or_separator_say_so(
    tmp_path: Path, name: str, body: bytes, fragment: str
) -> None:
    """The same one-line diagnosis the grid reader gives, instead of garbled column names."""
    log = tmp_path / name
    log.write_bytes(body)
    err = one_error(
        run("ingest", log, "--ledger", tmp_path / "l.duckdb"), EXIT_INPUT, "no record could be read"
    )
    assert fragment in err and ("iconv" in err or "sed" in err), err
    one_error(run("validate", log), EXIT_INPUT, fragment)
