"""Ledger transaction semantics on hand-built aggregate tables (no engine needed).

What a nightly job relies on: a run is all or nothing (exception, Ctrl-C, kill -9), a file is
never counted twice (same content, renamed copy), a changed file is refused unless replaced,
a concurrent writer is told the ledger is busy, and the views sum what was written, keeping
"not estimated" (NULL) apart from zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ledger_data import CONFIG_A, CONFIG_B, cell, downgrade_schema, run_info, source, table, utc, write_log
from wattledger.errors import (
    LedgerBusyError,
    LedgerError,
    LedgerNotFoundError,
    LedgerSchemaError,
    SourceConflictError,
)
from wattledger.ledger import FileStamp, LedgerWriter, connect_ledger

H = utc(2025, 3, 1, 10)


def _snapshot(path: Path) -> dict[str, list[tuple]]:
    """Every table's full content, ordered: 'the ledger as it was' made comparable."""
    con = connect_ledger(path)
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("wl_meta", "wl_configs", "wl_runs", "wl_sources", "wl_hourly")
        }
    finally:
        con.close()


def _total(path: Path, column: str = "energy_kwh", view: str = "energy_hourly") -> float | None:
    con = connect_ledger(path)
    try:
        return con.execute(f"SELECT SUM({column}) FROM {view}").fetchall()[0][0]
    finally:
        con.close()


def _ingest_one(ledger: Path, log: Path, energy: float, *, config=CONFIG_A, replace: bool = False):
    with LedgerWriter(ledger) as w:
        return w.commit_run(
            run_info(), config, [source(log)], table([cell(str(log), H, "m1", energy)]), replace=replace
        )


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.duckdb"


def test_commit_records_run_sources_config_and_rows(ledger: Path, tmp_path: Path) -> None:
    log_a = write_log(tmp_path / "a.jsonl", "a\n")
    log_b = write_log(tmp_path / "b.jsonl", "b\n")
    rows = [cell(str(log_a), H, "m1", 1.0), cell(str(log_a), H, "m2", 2.0), cell(str(log_b), H, "m1", 4.0)]
    with LedgerWriter(ledger) as w:
        result = w.commit_run(
            run_info(), CONFIG_A, [source(log_a, rejects={"bad_ts": 2}), source(log_b)], table(rows)
        )
    assert len(result.ingested) == 2 and not result.skipped
    assert sum(t.energy_kwh for t in result.totals) == pytest.approx(7.0)
    con = connect_ledger(ledger)
    try:
        run = con.execute("SELECT records, rejected, files_read, files_skipped, status FROM runs").fetchall()
        assert run == [(20, 2, 2, 0, "ingested")]
        src = con.execute("SELECT path, rejects::VARCHAR, live FROM sources ORDER BY path").fetchall()
        assert src == [(str(log_a), '{"bad_ts":2}', True), (str(log_b), "{}", True)]
        assert con.execute("SELECT name, text FROM wl_configs").fetchall() == [(CONFIG_A.name, CONFIG_A.text)]
        hourly = con.execute("SELECT DISTINCT run_id, config_sha256 FROM wl_hourly").fetchall()
        assert hourly == [(result.run_id, CONFIG_A.sha256)]
        assert con.execute("SELECT typeof(hour) FROM wl_hourly LIMIT 1").fetchall()[0] == (
            "TIMESTAMP WITH TIME ZONE",
        )
    finally:
        con.close()


def test_exception_mid_run_rolls_back(ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _ingest_one(ledger, write_log(tmp_path / "a.jsonl", "a\n"), 1.0)
    before = _snapshot(ledger)

    def explode(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C after config and sources were inserted

    monkeypatch.setattr(LedgerWriter, "_insert_hourly", explode)
    log_b = write_log(tmp_path / "b.jsonl", "b\n")
    with pytest.raises(KeyboardInterrupt), LedgerWriter(ledger) as w:
        w.commit_run(run_info(), CONFIG_B, [source(log_b)], table([cell(str(log_b), H, "m1", 5.0)]))
    assert _snapshot(ledger) == before


def test_duckdb_error_mid_run_is_a_ledger_error_and_rolls_back(ledger: Path, tmp_path: Path) -> None:
    _ingest_one(ledger, write_log(tmp_path / "a.jsonl", "a\n"), 1.0)
    before = _snapshot(ledger)
    log_b = write_log(tmp_path / "b.jsonl", "b\n")
    missing_spill = str(tmp_path / "no-such-spill.parquet")
    with pytest.raises(LedgerError, match="rolled back"), LedgerWriter(ledger) as w:
        w.commit_run(
            run_info(),
            CONFIG_A,
            [source(log_b)],
            table([cell(str(log_b), H, "m1", 5.0)]),
            spill_files=[missing_spill],
        )
    assert _snapshot(ledger) == before


def test_same_content_is_skipped_even_renamed(ledger: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "night-1.jsonl", "same\n")
    _ingest_one(ledger, log, 3.0)
    copy = write_log(tmp_path / "copy" / "night-1-renamed.jsonl", "same\n")
    result = _ingest_one(ledger, copy, 3.0)
    assert not result.ingested
    assert "already ingested as" in result.skipped[0].reason
    assert _total(ledger) == pytest.approx(3.0)
    con = connect_ledger(ledger)
    try:
        assert con.execute("SELECT status, files_skipped FROM runs ORDER BY started_at").fetchall()[-1] == (
            "nothing new",
            1,
        )
    finally:
        con.close()


def test_duplicate_file_within_one_run_counted_once(ledger: Path, tmp_path: Path) -> None:
    a = write_log(tmp_path / "a.jsonl", "dup\n")
    b = write_log(tmp_path / "b.jsonl", "dup\n")
    rows = [cell(str(a), H, "m1", 1.0), cell(str(b), H, "m1", 1.0)]
    with LedgerWriter(ledger) as w:
        result = w.commit_run(run_info(), CONFIG_A, [source(a), source(b)], table(rows))
    assert [s.stamp.path for s in result.ingested] == [str(a)]
    assert _total(ledger) == pytest.approx(1.0)


def test_precheck_skips_unchanged_without_reading(ledger: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.jsonl", "a\n")
    _ingest_one(ledger, log, 1.0)
    with LedgerWriter(ledger) as w:
        to_read, skipped = w.precheck([FileStamp.of(log)], CONFIG_A.sha256)
        assert to_read == [] and "unchanged since run" in skipped[0].reason
        # the same bytes under another config or mapping: refused before reading ...
        with pytest.raises(SourceConflictError, match=r"in pack \(config"):
            w.precheck([FileStamp.of(log)], CONFIG_B.sha256)
        with pytest.raises(SourceConflictError, match=r"in mapping \(the default mapping"):
            w.precheck([FileStamp.of(log)], CONFIG_A.sha256, "--preset openai")
        # ... or read to be replaced
        to_read, skipped = w.precheck([FileStamp.of(log)], CONFIG_B.sha256, replace=True)
        assert len(to_read) == 1 and not skipped
        # same size, other bytes, mtime restored (cp -p): decided by hash, not by the stamp
        st = os.stat(log)
        write_log(log, "b\n")
        os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns))
        with pytest.raises(SourceConflictError, match=r"in content .*same size"):
            w.precheck([FileStamp.of(log)], CONFIG_A.sha256)


def test_sources_of_a_schema_3_ledger_are_matched_by_sha256_at_commit(ledger: Path, tmp_path: Path) -> None:
    """The commit decides by the bytes the engine read, without a precheck: a source recorded
    with SHA-256 only (schema 3) is the same content when the file read has its size and
    SHA-256 (computed then, with the BLAKE3 proving the bytes are those read); a file of the
    same size with other bytes is not, and a source of the same BLAKE3 never needs SHA-256."""
    a = write_log(tmp_path / "a.jsonl", "old\n")
    _ingest_one(ledger, a, 1.0)
    downgrade_schema(ledger, 3)
    copy = write_log(tmp_path / "copy.jsonl", "old\n")
    other = write_log(tmp_path / "other.jsonl", "new\n")
    with LedgerWriter(ledger) as w:  # migrates to schema 4
        result = w.commit_run(
            run_info(),
            CONFIG_A,
            [source(copy), source(other)],
            table([cell(str(p), H, "m1", 1.0) for p in (copy, other)]),
        )
        assert [s.reason[:32] for s in result.skipped] == ["same content already ingested as"]
        assert [Path(s.stamp.path).name for s in result.ingested] == ["other.jsonl"]
        again = w.commit_run(run_info(), CONFIG_A, [source(a)], table([cell(str(a), H, "m1", 1.0)]))
        assert not again.ingested and again.skipped[0].reason.startswith("unchanged since run")
    assert _total(ledger) == pytest.approx(2.0)
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        ids = con.execute(
            "SELECT path, sha256 IS NULL, blake3 IS NULL FROM wl_sources ORDER BY path"
        ).fetchall()
    finally:
        con.close()
    assert [(Path(p).name, s, b) for p, s, b in ids] == [
        ("a.jsonl", False, True),
        ("other.jsonl", True, False),
    ]


def test_changed_file_is_refused_then_replaced(ledger: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.jsonl", "v1\n")
    _ingest_one(ledger, log, 1.0)
    write_log(log, "v2 longer\n")
    with LedgerWriter(ledger) as w, pytest.raises(SourceConflictError, match="--replace"):
        w.precheck([FileStamp.of(log)], CONFIG_A.sha256)
    before = _snapshot(ledger)
    with pytest.raises(SourceConflictError, match=r"grew from 3 to 10 bytes since run .*--replace"):
        _ingest_one(ledger, log, 2.0)
    assert _snapshot(ledger) == before
    result = _ingest_one(ledger, log, 2.0, replace=True)
    assert result.replaced == (str(log),)
    assert _total(ledger) == pytest.approx(2.0)
    con = connect_ledger(ledger)
    try:
        live = con.execute("SELECT live, replaced_by_run FROM sources ORDER BY live").fetchall()
        assert live == [(False, result.run_id), (True, None)]
    finally:
        con.close()


def test_same_file_under_another_config_is_refused_unless_replace(ledger: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.jsonl", "a\n")
    _ingest_one(ledger, log, 1.0)
    with pytest.raises(SourceConflictError, match=r"in pack \(config .*--replace"):
        _ingest_one(ledger, log, 9.0, config=CONFIG_B)
    _ingest_one(ledger, log, 9.0, config=CONFIG_B, replace=True)
    assert _total(ledger) == pytest.approx(9.0)


def test_spill_files_are_loaded_in_the_same_run(ledger: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.jsonl", "a\n")
    spill = tmp_path / "spill-0.parquet"
    pq.write_table(table([cell(str(log), utc(2025, 3, 1, 11), "m1", 2.5)]), spill)
    with LedgerWriter(ledger) as w:
        w.commit_run(
            run_info(),
            CONFIG_A,
            [source(log)],
            table([cell(str(log), H, "m1", 1.0)]),
            spill_files=[str(spill)],
        )
    assert _total(ledger) == pytest.approx(3.5)


def test_views_sum_and_keep_null(ledger: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.jsonl", "a\n")
    rows = [
        cell(str(log), utc(2025, 1, 1, 0), "m1", 1.0, gpu_hours=2.0),
        cell(str(log), utc(2025, 1, 1, 0), "m1", 2.0, site="ber-1", gpu_hours=None),
        cell(str(log), utc(2025, 1, 2, 5), "m1", 4.0, method="measured"),
        cell(str(log), utc(2024, 12, 31, 23), "m1", 8.0),  # previous year, in UTC
        cell(str(log), utc(2025, 2, 1, 0), "only-none", None),
        cell(str(log), utc(2025, 2, 1, 0), "m2", None, site=None, hardware=None),
    ]
    with LedgerWriter(ledger) as w:
        w.commit_run(run_info(), CONFIG_A, [source(log)], table(rows))
    con = connect_ledger(ledger)
    try:
        # A reader in another time zone sees the same UTC periods.
        con.execute("SET TimeZone = 'America/Los_Angeles'")
        year = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT model, energy_kwh, measured_kwh, gpu_hours, records, unestimated_requests "
                "FROM energy_by_model_year WHERE year = 2025"
            ).fetchall()
        }
        assert year["m1"] == (7.0, 4.0, 2.0, 30, 0.0)
        assert year["only-none"] == (None, None, None, 10, 10.0)
        months = con.execute(
            "SELECT year, month, SUM(energy_kwh) FROM energy_by_model_month "
            "WHERE model = 'm1' GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        assert months == [(2024, 12, 8.0), (2025, 1, 7.0)]
        days = con.execute(
            "SELECT day::VARCHAR, SUM(energy_kwh) FROM energy_daily WHERE model='m1' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert days == [("2024-12-31", 8.0), ("2025-01-01", 3.0), ("2025-01-02", 4.0)]
        nulls = con.execute("SELECT site, hardware FROM energy_hourly WHERE model = 'm2'").fetchall()
        assert nulls == [(None, None)]
        assert con.execute("SELECT COUNT(*) FROM energy_hourly").fetchall()[0] == (6,)
    finally:
        con.close()


def test_views_are_visible_to_a_plain_duckdb_client(ledger: Path, tmp_path: Path) -> None:
    _ingest_one(ledger, write_log(tmp_path / "a.jsonl", "a\n"), 1.5)
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        names = {
            r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        assert {
            "energy_hourly",
            "energy_daily",
            "energy_by_model_month",
            "energy_by_model_year",
            "runs",
            "sources",
        } <= names
        assert con.execute("SELECT energy_kwh FROM energy_by_model_year").fetchall()[0] == (1.5,)
    finally:
        con.close()


_HOLD_LOCK = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(60)
    """
)


def test_second_writer_gets_busy_error(ledger: Path, tmp_path: Path) -> None:
    _ingest_one(ledger, write_log(tmp_path / "a.jsonl", "a\n"), 1.0)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(ledger)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LedgerBusyError) as err:
            LedgerWriter(ledger)
        assert str(err.value) == f"ledger {ledger} is busy: another wattledger run holds it; retry later"
        with pytest.raises(LedgerBusyError):
            connect_ledger(ledger)
    finally:
        holder.kill()
        holder.wait()
    assert _total(ledger) == pytest.approx(1.0)


_KILLED_MID_RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from ledger_data import CONFIG_B, cell, run_info, source, table, utc
    from wattledger.ledger import LedgerWriter

    def pause(self, run_id):
        print("inside", flush=True)  # every row of the run is written, nothing committed
        time.sleep(60)

    LedgerWriter._run_totals = pause
    log = Path(sys.argv[3])
    rows = [cell(str(log), utc(2025, 3, 1, h % 24, 0), f"m{h}", 1.0) for h in range(2000)]
    with LedgerWriter(sys.argv[1]) as w:
        w.commit_run(run_info(), CONFIG_B, [source(log)], table(rows))
    """
)


def test_kill_9_mid_transaction_leaves_ledger_as_before(ledger: Path, tmp_path: Path) -> None:
    _ingest_one(ledger, write_log(tmp_path / "a.jsonl", "a\n"), 1.0)
    before = _snapshot(ledger)
    log_b = write_log(tmp_path / "b.jsonl", "b\n")
    tests_dir = str(Path(__file__).parent)
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_MID_RUN, str(ledger), tests_dir, str(log_b)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "inside"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert _snapshot(ledger) == before
    _ingest_one(ledger, log_b, 2.0)  # and the ledger still takes new runs
    assert _total(ledger) == pytest.approx(3.0)


def test_read_only_open_of_missing_ledger(tmp_path: Path) -> None:
    with pytest.raises(LedgerNotFoundError, match="wattledger ingest"):
        connect_ledger(tmp_path / "nope.duckdb")


def test_foreign_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (a INT)")
    con.close()
    with pytest.raises(LedgerSchemaError, match="not a wattledger ledger"):
        LedgerWriter(path)


def test_unwritable_location_is_a_ledger_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cannot be opened"):
        LedgerWriter(tmp_path / "no-such-dir" / "ledger.duckdb")


def test_aggregate_without_documented_columns_is_refused(ledger: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.jsonl", "a\n")
    bad = table([cell(str(log), H, "m1", 1.0)]).drop_columns(["flops"])
    with pytest.raises(LedgerError, match="flops"), LedgerWriter(ledger) as w:
        w.commit_run(run_info(), CONFIG_A, [source(log)], bad)
