"""The ledger: a DuckDB database file holding hourly aggregates, the files they came from and the
configs that produced them.

Why a single DuckDB file: one ingest run must be all-or-nothing (a nightly job killed half way
must not leave half a night counted), and any DuckDB client should be able to query it. DuckDB
gives both: a run is one transaction (the write-ahead log drops an uncommitted one after a
crash), and the views live inside the file. DuckDB's file lock allows one writing process at a
time; a second one is told the ledger is busy instead of waiting or corrupting anything.

This module knows nothing of the engine: it takes Arrow tables of the documented aggregate
schema (docs/internals.md) and plain descriptions of the files read, so its transaction
semantics can be tested on hand-built data.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from wattledger import _core

if TYPE_CHECKING:
    import pyarrow as pa

from wattledger.errors import (
    LedgerBusyError,
    LedgerError,
    LedgerNotFoundError,
    LedgerSchemaError,
    SourceConflictError,
    UnknownSourceError,
    UsageError,
)
from wattledger.integrity import (
    damaged_error,
    is_damage,
    not_a_database_error,
    table_names,
    verify_storage,
)
from wattledger.interrupts import is_interrupt, track
from wattledger.mapping import describe_read_as
from wattledger.schema import (
    AGGREGATE_COLUMNS,
    KEY_COLUMNS,
    MEASURE_COLUMNS,
    MIGRATE_1_TO_2,
    MIGRATE_2_TO_3,
    MIGRATE_3_TO_4,
    MIGRATE_4_TO_5,
    MIGRATE_5_TO_6,
    SCHEMA_VERSION,
    SOURCE_TOTALS_DDL,
    TABLES_DDL,
    VIEWS_DDL,
    exact_sum_sql,
    source_totals_sql,
)
from wattledger.testhooks import pause_at

PathLike = str | os.PathLike[str]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ConfigIdentity:
    """What the ledger records about the methodology pack of a run."""

    sha256: str
    name: str
    version: str
    origin: str
    text: str


@dataclass(frozen=True)
class FileStamp:
    """A log file as seen on disk before reading it. Size and mtime only say whether a file
    may be one already counted (``cp -p`` and ``rsync -t`` keep mtimes): identity is by hash.
    For a file read, ``size_bytes`` becomes the number of bytes the engine read and hashed."""

    path: str
    size_bytes: int
    mtime: datetime
    #: An object's entity tag when listed (object storage); None for local files. With the
    #: URL and size it says an object is the one a live source recorded without reading it.
    etag: str | None = None

    @staticmethod
    def of_input(found: _core.InputFile) -> FileStamp:
        """The stamp of a file or object the engine listed: a local file is stat'ed (its
        absolute path); an object keeps its URL, size, modification time and ETag."""
        if not found.remote:
            return FileStamp.of(found.path)
        return FileStamp(
            path=found.path,
            size_bytes=found.size_bytes,
            mtime=_EPOCH + timedelta(microseconds=found.modified_us or 0),
            etag=found.etag,
        )

    @staticmethod
    def of(path: PathLike) -> FileStamp:
        """Stat ``path``; the stored path is absolute so the same file matches from any cwd."""
        st = os.stat(path)
        return FileStamp(
            path=os.path.abspath(path),
            size_bytes=st.st_size,
            mtime=_EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000),
        )


@dataclass(frozen=True)
class SourceRead:
    """A log file the engine read in this run, with its statistics."""

    engine_path: str  # the value of the aggregates' ``source`` column for this file
    stamp: FileStamp
    #: Hex BLAKE3 of the bytes read (``stamp.size_bytes`` of them): the content identity.
    blake3: str
    records: int
    rejected: int
    rejects: dict[str, int] = field(default_factory=dict)
    columns_found: tuple[str, ...] = ()
    #: Raw names the pack's aliases changed in this file: (kind, raw, resolved, records).
    names: tuple[tuple[str, str, str, int], ...] = ()
    #: Objects the reader passed over on purpose (not records, not rejects), by reason.
    skipped: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    #: How the file was read (``mapping.read_as_text``): part of its identity with the hashes.
    read_as: str = ""


@dataclass(frozen=True)
class SkippedFile:
    """A file whose contribution is already in the ledger, and why it was not counted again."""

    path: str
    reason: str


@dataclass(frozen=True)
class RunInfo:
    """Descriptive fields of a run row."""

    run_id: str
    started_at: datetime
    command: str
    version: str


@dataclass(frozen=True)
class RunTotals:
    """What one run added, per method (sums over its own hourly rows)."""

    method: str
    records: int
    requests: float
    energy_kwh: float | None
    energy_kwh_low: float | None
    energy_kwh_high: float | None
    co2e_location_kg: float | None
    co2e_market_kg: float | None
    fallback_kwh: float | None
    unresolved_kwh: float | None
    unestimated_requests: float | None
    failed_requests: float | None = None
    cached_requests: float | None = None


@dataclass(frozen=True)
class CommitResult:
    """The outcome of a committed run."""

    run_id: str
    ingested: tuple[SourceRead, ...]
    skipped: tuple[SkippedFile, ...]
    replaced: tuple[str, ...]
    totals: tuple[RunTotals, ...]
    duplicates: int | None = None
    #: Every warning kept on the run's row: the engine's, then those of ``commit_run``'s check.
    warnings: tuple[str, ...] = ()


#: Called inside the commit with the run's totals and the files counted; returns more warnings
#: for the run row, or raises to roll the run back (``--strict``).
RunCheck = Callable[[tuple["RunTotals", ...], Sequence["SourceRead"]], Sequence[str]]

#: The engine's rows for wl_hourly, given each counted file's source_id (by the file's path as
#: the engine named it): an Arrow C stream (``_core.LedgerRows``) in the table's column order.
HourlyRows = Callable[[dict[str, str]], "_core.LedgerRows"]

#: wl_hourly's columns, in table order (the engine's ledger rows have exactly these).
HOURLY_COLUMNS: tuple[str, ...] = ("run_id", "source_id", "config_sha256", *KEY_COLUMNS, *MEASURE_COLUMNS)


@dataclass(frozen=True)
class LedgerTotals:
    """Sums over hourly rows: the whole ledger, or what a forget removed."""

    records: int
    requests: float
    energy_kwh: float | None
    co2e_location_kg: float | None
    co2e_market_kg: float | None


@dataclass(frozen=True)
class ForgetResult:
    """The outcome of a committed forget: its own run row, the sources retired, the totals."""

    run_id: str
    target: str
    sources: tuple[tuple[str, str, str], ...]  # (source_id, path, run_id that ingested it)
    before: LedgerTotals
    removed: LedgerTotals
    after: LedgerTotals


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, readable run id: UTC start time plus randomness (two runs in one second)."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z-" + secrets.token_hex(3)


#: DuckDB's memory limit for ledger connections (see ``_open``).
LEDGER_MEMORY_LIMIT = "512MB"


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


#: Seconds between attempts to take a busy ledger's lock under ``wait``.
WAIT_POLL_SECONDS = 0.25


def _open(path: PathLike, *, read_only: bool, wait: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, mapping DuckDB's errors to ledger errors with what to do.

    ``wait`` > 0 retries while another process holds the lock (a reader left open, a report
    running while the nightly ingest starts), for at most that many seconds; DuckDB has no
    blocking lock, so this polls. One note on stderr says the run is waiting."""
    name = os.fspath(path)
    if read_only and not os.path.exists(name):
        raise LedgerNotFoundError(
            f"ledger {name} does not exist; create it with `wattledger ingest LOG... --ledger {name}`"
        )
    _refuse_other_formats(name)
    deadline = time.monotonic() + max(wait, 0.0)
    noted = False
    while True:
        try:
            con = duckdb.connect(name, read_only=read_only)
            break
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise _open_error(name, exc) from None
            if time.monotonic() >= deadline:
                waited = f" (waited {wait:g} s)" if wait > 0 else ""
                raise LedgerBusyError(
                    f"ledger {name} is busy: another wattledger run holds it{waited}; retry later"
                ) from None
            if not noted:
                print(
                    f"note: ledger {name} is busy (another process holds it); waiting up to {wait:g} s",
                    file=sys.stderr,
                    flush=True,
                )
                noted = True
            time.sleep(min(WAIT_POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))
    _configure(con)
    track(con)  # Ctrl-C interrupts its running statement at once (see ``interrupts``)
    return con


#: Leading bytes of files a --ledger is mistaken for, and what they are.
_OTHER_FORMATS = (
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3", "an SQLite database"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x28\xb5\x2f\xfd", "a zstd file"),
    (b"ARROW1", "an Arrow IPC file"),
)

#: Bytes a JSON log starts with: printable ASCII and whitespace.
_TEXT_BYTES = frozenset(range(0x20, 0x7F)) | frozenset(b"\t\r\n")


def _is_json_text(head: bytes) -> bool:
    """A JSON (Lines) file, judged on its first bytes: ``{`` or ``[`` followed by text. One
    bracket alone is not enough: a ledger whose header was overwritten with random bytes starts
    with one in 1 of 128 cases, and must be reported as damaged (with its backup advice)."""
    return head[:1] in (b"{", b"[") and all(b in _TEXT_BYTES for b in head)


def _refuse_other_formats(name: str) -> None:
    """Refuse a file that is plainly not a DuckDB database (a log or an export passed as
    --ledger) before DuckDB opens it: DuckDB would attach a Parquet file as a view, or report
    "cannot launch in-memory database", neither of which says what to do."""
    try:
        with open(name, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return  # missing (a new ledger) or unreadable: DuckDB's open says which
    if len(head) < 12 or head[8:12] == b"DUCK":
        return
    kinds = [kind for magic, kind in _OTHER_FORMATS if head.startswith(magic)]
    if _is_json_text(head):
        kinds.append("a JSON file")
    if kinds:
        raise LedgerSchemaError(
            f"{name} is {kinds[0]}, not a wattledger ledger; point --ledger at the .duckdb file "
            "`wattledger ingest` writes (logs go to `wattledger ingest LOG... --ledger FILE`)"
        )


def _open_error(name: str, exc: duckdb.Error) -> LedgerError:
    if "not a valid duckdb database file" in str(exc).lower():
        return not_a_database_error(name)
    if is_damage(exc):
        return damaged_error(name, _first_line(exc))
    return LedgerError(
        f"ledger {name} cannot be opened ({_first_line(exc)}); check the path is a wattledger "
        "ledger in a writable directory"
    )


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    # Naive timestamps and results are UTC whatever the machine's zone: periods are UTC.
    con.execute("SET TimeZone = 'UTC'")
    # A year's backfill inserts tens of millions of hourly cells in one transaction; DuckDB's
    # default limit (80% of RAM) would let the run's memory grow with them. Bounded, DuckDB
    # spills to its temp directory beside the ledger instead, and peak RSS stays flat.
    con.execute(f"SET memory_limit = '{LEDGER_MEMORY_LIMIT}'")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_schema(
    con: duckdb.DuckDBPyConnection, name: str, *, creating: bool, migrate: bool = False
) -> bool:
    """True when the ledger tables exist at a version this code can use; False when the file is
    empty (a new ledger). Refuse foreign databases rather than adding tables to them. An older
    version is upgraded in place when ``migrate`` (a writer, inside its transaction), else
    refused with the command that upgrades it."""
    try:
        return _check_schema_of(con, name, creating=creating, migrate=migrate)
    except duckdb.Error as exc:
        if is_damage(exc):
            raise damaged_error(name, _first_line(exc)) from None
        raise


def _check_schema_of(con: duckdb.DuckDBPyConnection, name: str, *, creating: bool, migrate: bool) -> bool:
    tables = set(table_names(con))
    if "wl_meta" not in tables:
        if tables or not creating:
            raise LedgerSchemaError(
                f"{name} is a DuckDB database but not a wattledger ledger (no wl_meta table); "
                "point --ledger at a new file or an existing ledger"
            )
        return False
    # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses the next query.
    rows = con.execute("SELECT value FROM wl_meta WHERE key = 'schema_version'").fetchall()
    version = int(rows[0][0]) if rows else 0
    if version in (1, 2, 3, 4, 5):
        if migrate:
            if version == 1:
                _migrate_1_to_2(con)
            if version <= 2:
                _migrate_2_to_3(con)
            if version <= 3:
                _migrate_3_to_4(con)
            if version <= 4:
                _migrate_4_to_5(con)
            _migrate_5_to_6(con)
            return True
        why = {
            1: "before request outcomes were counted",
            2: "before sources kept their mapping",
            3: "before sources were identified by BLAKE3",
            4: "before metered node energy was kept",
            5: "before sources in object storage kept their ETag",
        }[version]
        raise LedgerSchemaError(
            f"ledger {name} has schema version {version} ({why}); upgrade it in place with "
            f"`wattledger migrate --ledger {name}` (any ingest into it also does)"
        )
    if version != SCHEMA_VERSION:
        raise LedgerSchemaError(
            f"ledger {name} has schema version {version}, this wattledger reads version "
            f"{SCHEMA_VERSION}; use the wattledger version that wrote it"
        )
    return True


def _migrate_1_to_2(con: duckdb.DuckDBPyConnection) -> None:
    """Add the section 10 columns and tables. Old hourly rows keep NULL failed/cached counts:
    their runs never looked at statuses, and a 0 would claim that nothing failed. Reports warn
    when a period includes such rows (``outcome_coverage_message``)."""
    for ddl in MIGRATE_1_TO_2:
        con.execute(ddl)
    con.execute("UPDATE wl_meta SET value = '2' WHERE key = 'schema_version'")
    con.execute(
        "INSERT OR REPLACE INTO wl_meta VALUES ('migrated_1_to_2_at', ?)", [datetime.now(UTC).isoformat()]
    )


def _migrate_2_to_3(con: duckdb.DuckDBPyConnection) -> None:
    """Add the mapping and forget columns. Old sources keep ``read_as`` NULL ("not recorded"),
    compared as the default mapping (see ``schema.MIGRATE_2_TO_3``); their ``size_bytes`` is
    the size seen before reading, which is the size read unless the file grew meanwhile."""
    for ddl in MIGRATE_2_TO_3:
        con.execute(ddl)
    con.execute("UPDATE wl_meta SET value = '3' WHERE key = 'schema_version'")
    con.execute(
        "INSERT OR REPLACE INTO wl_meta VALUES ('migrated_2_to_3_at', ?)", [datetime.now(UTC).isoformat()]
    )


def _migrate_3_to_4(con: duckdb.DuckDBPyConnection) -> None:
    """Add the BLAKE3 identity. Old sources keep their SHA-256 and a NULL ``blake3``; a file
    ingested again is compared with them by SHA-256 (see ``schema.MIGRATE_3_TO_4``)."""
    for ddl in MIGRATE_3_TO_4:
        con.execute(ddl)
    con.execute("UPDATE wl_meta SET value = '4' WHERE key = 'schema_version'")
    con.execute(
        "INSERT OR REPLACE INTO wl_meta VALUES ('migrated_3_to_4_at', ?)", [datetime.now(UTC).isoformat()]
    )


def _migrate_4_to_5(con: duckdb.DuckDBPyConnection) -> None:
    """Add the metered node energy table (``schema.MIGRATE_4_TO_5``); old runs have none."""
    for ddl in MIGRATE_4_TO_5:
        con.execute(ddl)
    con.execute("UPDATE wl_meta SET value = '5' WHERE key = 'schema_version'")
    con.execute(
        "INSERT OR REPLACE INTO wl_meta VALUES ('migrated_4_to_5_at', ?)", [datetime.now(UTC).isoformat()]
    )


def _migrate_5_to_6(con: duckdb.DuckDBPyConnection) -> None:
    """Add ``wl_sources.etag`` (``schema.MIGRATE_5_TO_6``); old sources are local files: NULL."""
    for ddl in MIGRATE_5_TO_6:
        con.execute(ddl)
    con.execute("UPDATE wl_meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
    con.execute(
        "INSERT OR REPLACE INTO wl_meta VALUES ('migrated_5_to_6_at', ?)", [datetime.now(UTC).isoformat()]
    )


def migrate_ledger(path: PathLike) -> bool:
    """Upgrade a ledger to the current schema in one transaction; True when it changed."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise LedgerNotFoundError(f"ledger {name} does not exist; nothing to migrate")
    con = _open(name, read_only=True)
    try:
        rows = con.execute("SELECT value FROM wl_meta WHERE key = 'schema_version'").fetchall()
    except duckdb.Error:
        rows = []
    finally:
        con.close()
    before = int(rows[0][0]) if rows else None
    LedgerWriter(name).close()  # opening for writing migrates (or refuses a foreign file)
    return before != SCHEMA_VERSION


def forget(
    ledger: PathLike,
    *,
    source: PathLike | None = None,
    run: str | None = None,
    wait: float = 0.0,
    command: str | None = None,
) -> ForgetResult:
    """Remove a source's (``source=PATH``) or an ingest run's (``run=ID``) contributions from
    the ledger in one transaction, keeping their rows marked forgotten (the ``sources`` and
    ``runs`` views show what was forgotten, when and by which run). The same file can then be
    ingested again normally. Raises :class:`UnknownSourceError` when there is nothing live to
    forget."""
    if (source is None) == (run is None):
        raise UsageError("forget needs exactly one of a source path (--source) or a run id (--run)")
    name = os.fspath(ledger)
    if not os.path.exists(name):
        raise LedgerNotFoundError(f"ledger {name} does not exist; nothing to forget")
    started = datetime.now(UTC)
    what = f"source={os.fspath(source)}" if source is not None else f"run={run}"
    info = RunInfo(new_run_id(started), started, command or f"wattledger.forget({what})", _core.__version__)
    with LedgerWriter(name, wait=wait) as writer:
        if source is not None:
            return writer.forget_source(source, info)
        assert run is not None
        return writer.forget_run(run, info)


def connect_ledger(path: PathLike, *, read_only: bool = True, wait: float = 0.0) -> duckdb.DuckDBPyConnection:
    """A connection to an existing ledger. Read-only by default: several readers may share the
    file, and a reader can never change it by mistake."""
    con = _open(path, read_only=read_only, wait=wait)
    try:
        # No block scan here (it would cost a pass over the file for every report): DuckDB
        # verifies each block a query reads, and the CLI turns a damaged one into one line.
        _check_schema(con, os.fspath(path), creating=False)
    except BaseException:
        con.close()
        raise
    return con


def open_read_only(path: PathLike, *, wait: float = 0.0) -> duckdb.DuckDBPyConnection:
    """A read-only connection with no schema check (``check`` looks at damaged files too)."""
    return _open(path, read_only=True, wait=wait)


def verify_before_write(path: PathLike, *, wait: float = 0.0) -> None:
    """Open an existing ledger read-only and check it (a DuckDB file, a ledger or an empty
    database, every block's checksum, its size) before anything opens it for writing: a damaged
    file raises :class:`LedgerDamagedError` and is never modified. A missing or empty file is a
    new ledger and passes."""
    name = os.fspath(path)
    if not os.path.isfile(name) or os.path.getsize(name) == 0:
        return
    con = _open(name, read_only=True, wait=wait)
    try:
        try:
            tables = set(table_names(con))
        except duckdb.Error as exc:
            if is_damage(exc):
                raise damaged_error(name, _first_line(exc)) from None
            raise
        if tables and "wl_meta" not in tables:
            raise LedgerSchemaError(
                f"{name} is a DuckDB database but not a wattledger ledger (no wl_meta table); "
                "point --ledger at a new file or an existing ledger"
            )
        verify_storage(con, name)
    finally:
        con.close()


class LedgerWriter:
    """The one writing connection of an ingest run.

    It first checks the file read-only (:func:`verify_before_write`), then takes DuckDB's file
    lock (so a concurrent run fails fast, before any log is read) and writes a whole run in
    :meth:`commit_run`, one transaction.
    """

    def __init__(self, path: PathLike, *, wait: float = 0.0) -> None:
        self.path = os.fspath(path)
        #: Files hashed by :meth:`precheck`, by path: a SHA-256 computed there for a source of
        #: an older ledger is reused by :meth:`commit_run` when the bytes read are the same.
        self._contents: dict[str, _Content] = {}
        verify_before_write(self.path, wait=wait)
        self._con = _open(self.path, read_only=False, wait=wait)
        try:
            self._ensure_schema()
        except BaseException:
            self._con.close()
            raise

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file lock."""
        self._con.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying connection (tests, maintenance)."""
        return self._con

    def _ensure_schema(self) -> None:
        with self._transaction():
            if not _check_schema(self._con, self.path, creating=True, migrate=True):
                for ddl in TABLES_DDL:
                    self._con.execute(ddl)
                self._con.execute(
                    "INSERT INTO wl_meta VALUES ('schema_version', ?), ('created_at', ?)",
                    [str(SCHEMA_VERSION), datetime.now(UTC).isoformat()],
                )
            # Views are (re)defined when their definition changed, so a fixed one reaches old
            # ledgers; not on every write, so a run that fails or is interrupted leaves the
            # file byte for byte as it was (an unchanged definition commits nothing).
            stored = self._con.execute("SELECT value FROM wl_meta WHERE key = 'views_sha256'").fetchall()
            present = self._con.execute(
                "SELECT count(*) FROM duckdb_views() WHERE NOT internal AND list_contains(?, view_name)",
                [list(_VIEW_NAMES)],
            ).fetchall()[0][0]
            if not stored or stored[0][0] != _VIEWS_SHA256 or present != len(_VIEW_NAMES):
                self._con.execute(SOURCE_TOTALS_DDL)
                for ddl in VIEWS_DDL:
                    self._con.execute(ddl)
                self._con.execute(
                    "INSERT OR REPLACE INTO wl_meta VALUES ('views_sha256', ?)", [_VIEWS_SHA256]
                )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Commit on success; roll back on any exception, KeyboardInterrupt included."""
        self._con.begin()
        try:
            yield
        except BaseException as exc:
            try:
                self._con.rollback()
            except duckdb.Error:
                pass  # the database may be invalidated (disk full); nothing was committed anyway
            if is_interrupt(exc):
                # Ctrl-C inside a DuckDB statement surfaces as DuckDB's InterruptException, or
                # as "transaction is aborted" from the next statement (a cleanup): either way
                # the user pressed Ctrl-C, and nothing was committed.
                raise KeyboardInterrupt from None
            if is_damage(exc):
                raise damaged_error(self.path, _first_line(exc)) from None
            if isinstance(exc, duckdb.Error):
                raise LedgerError(
                    f"ledger {self.path}: write failed ({_first_line(exc)}); the run was rolled back "
                    "and the ledger is unchanged"
                ) from exc
            raise
        try:
            self._con.commit()
        except duckdb.Error as exc:
            raise LedgerError(
                f"ledger {self.path}: commit failed ({_first_line(exc)}); the ledger is unchanged. "
                "Check free disk space and permissions"
            ) from exc

    def _live_sources(
        self, *, paths: Sequence[str] = (), hashes: Sequence[str] = (), sizes: Sequence[int] = ()
    ) -> list[dict[str, Any]]:
        """Live sources (neither replaced nor forgotten) with one of these paths, BLAKE3 hashes
        or sizes (a source recorded with SHA-256 only is found by its path or size)."""
        rel = self._con.execute(
            """SELECT source_id, run_id, path, size_bytes, mtime, sha256, blake3, config_sha256, read_as, etag
               FROM wl_sources
               WHERE replaced_at IS NULL AND forgotten_at IS NULL
                 AND (list_contains(?, path) OR list_contains(?, blake3) OR list_contains(?, size_bytes))
               ORDER BY run_id, source_id""",
            [list(paths), list(hashes), list(sizes)],
        )
        cols = [d[0] for d in rel.description]
        return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]

    def precheck(
        self,
        stamps: Sequence[FileStamp],
        config_sha256: str,
        read_as: str = "",
        *,
        replace: bool = False,
        storage_options: Mapping[str, str] | None = None,
    ) -> tuple[list[FileStamp], list[SkippedFile]]:
        """Split files into (to read, skipped) before reading them.

        A file is hashed here only when a live source has its path or its size (so it may be
        one already counted); other files are hashed once, by the engine while it reads them.
        Same bytes, pack and mapping as a live source: skipped. The same path with another
        size, content, pack or mapping, or the same bytes under another identity: refused now,
        before spending time reading (unless ``replace``). The rest is decided by the engine's
        hash of the bytes it read, in :meth:`commit_run`.

        An object in object storage with the URL, size and ETag a live source recorded is that
        source's bytes: it is not read again to find out (``storage_options`` are for the objects
        that must be hashed here).
        """
        live = self._live_sources(paths=[s.path for s in stamps], sizes=[s.size_bytes for s in stamps])
        to_read: list[FileStamp] = []
        skipped: list[SkippedFile] = []
        for stamp in stamps:
            candidates = [r for r in live if r["path"] == stamp.path or r["size_bytes"] == stamp.size_bytes]
            if not candidates:
                to_read.append(stamp)
                continue
            content = _Content.recorded(stamp, candidates) or (
                _Content.of_file(stamp.path, candidates, stamp.size_bytes, storage_options)
                if any(r["size_bytes"] == stamp.size_bytes for r in candidates)
                else None
            )
            if content is not None:
                self._contents[stamp.path] = content
            same = _same_identity(candidates, content, config_sha256, read_as)
            # The same path live under another identity is stale whatever else holds these bytes.
            stale = [r for r in candidates if r["path"] == stamp.path and r is not same]
            if same is not None and not stale:
                skipped.append(SkippedFile(stamp.path, _skip_reason(stamp.path, same)))
                continue
            if not replace:
                for old in (*stale, *candidates):
                    if old["path"] == stamp.path or (content is not None and content.same_bytes(old)):
                        raise SourceConflictError(
                            _conflict_message(
                                stamp.path, content, stamp.size_bytes, config_sha256, read_as, old
                            )
                        )
            to_read.append(stamp)
        return to_read, skipped

    def commit_run(
        self,
        run: RunInfo,
        config: ConfigIdentity,
        sources: Sequence[SourceRead],
        aggregates: pa.Table | None,
        *,
        hourly: HourlyRows | None = None,
        spill_files: Sequence[str] = (),
        skipped: Sequence[SkippedFile] = (),
        replace: bool = False,
        duplicates: int | None = None,
        warnings: Sequence[str] = (),
        check: RunCheck | None = None,
        node_energy: pa.Table | None = None,
    ) -> CommitResult:
        """Write one run in one transaction: config, run row, the files read, their hourly rows.

        ``hourly`` gives the engine's merged cells as wl_hourly rows (the ingest path: one
        streamed append, each cell once). ``aggregates`` and ``spill_files`` (Parquet) hold rows
        of the engine's aggregate schema, tagged by ``source``, for callers holding such rows.
        Rows of a file that turns out to be already counted are left out. On any
        exception nothing is written. ``duplicates`` is the engine's count of repeated
        request_ids dropped in this run when de-duplication was on, None when it was off: the
        run row keeps the difference so "no duplicates" and "never checked" are not confused.
        ``warnings`` are the engine's messages for the run, kept on the run row. ``check`` sees
        the run's totals before the commit: the warnings it returns are appended to the run row's,
        and an exception it raises rolls the whole run back. ``node_energy`` is the engine's
        metered node energy per node and hour (``EstimateResult.node_energy()``), kept in
        ``wl_node_energy`` under this run.
        """
        if aggregates is not None:
            _check_aggregate_schema(aggregates.schema.names, "aggregate table")
        with self._transaction():
            self._con.execute(
                "INSERT OR IGNORE INTO wl_configs VALUES (?, ?, ?, ?, ?, ?)",
                [config.sha256, config.name, config.version, config.origin, config.text, run.run_id],
            )
            kept, more_skipped, replaced_ids, replaced_paths = self._classify(
                sources, config.sha256, replace=replace
            )
            all_skipped = (*skipped, *more_skipped)
            now = datetime.now(UTC)
            if replaced_ids:
                self._con.execute(
                    "UPDATE wl_sources SET replaced_at = ?, replaced_by_run = ? "
                    "WHERE list_contains(?, source_id)",
                    [now, run.run_id, replaced_ids],
                )
                self._con.execute("DELETE FROM wl_hourly WHERE list_contains(?, source_id)", [replaced_ids])
            source_ids = {s.engine_path: f"{run.run_id}/{i}" for i, s in enumerate(kept)}
            self._insert_sources(run.run_id, config.sha256, kept, source_ids)
            if hourly is not None and source_ids:
                self._append_hourly(hourly(source_ids))
            self._insert_hourly(run.run_id, config.sha256, source_ids, aggregates, spill_files)
            if node_energy is not None and node_energy.num_rows:
                self._con.register("_wl_node_energy_in", node_energy)
                try:
                    self._con.execute(
                        "INSERT INTO wl_node_energy SELECT ?, node, hour, metered_kwh, attributed_kwh, "
                        "idle_kwh, intervals, idle_intervals FROM _wl_node_energy_in",
                        [run.run_id],
                    )
                finally:
                    self._con.unregister("_wl_node_energy_in")
            status = "ingested" if kept else "nothing new"
            self._con.execute(
                """INSERT INTO wl_runs (run_id, started_at, finished_at, command, wattledger_version,
                       config_sha256, records, rejected, dedupe, duplicates, files_read,
                       files_skipped, files_replaced, status, warnings)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::VARCHAR[])""",
                [
                    run.run_id,
                    run.started_at,
                    datetime.now(UTC),
                    run.command,
                    run.version,
                    config.sha256,
                    sum(s.records for s in kept),
                    sum(s.rejected for s in kept),
                    duplicates is not None,
                    duplicates,
                    len(kept),
                    len(all_skipped),
                    len(replaced_paths),
                    status,
                    list(warnings),
                ],
            )
            totals = self._run_totals(run.run_id)
            # What each source added, kept so `wattledger check` can re-sum it later.
            self._con.execute(f"INSERT INTO wl_source_totals {source_totals_sql('run_id = ?')}", [run.run_id])
            all_warnings = (*warnings, *(check(totals, kept) if check is not None else ()))
            if len(all_warnings) > len(warnings):
                self._con.execute(
                    "UPDATE wl_runs SET warnings = ?::VARCHAR[] WHERE run_id = ?",
                    [list(all_warnings), run.run_id],
                )
            pause_at("before_commit")
        pause_at("after_commit")
        return CommitResult(
            run.run_id,
            tuple(kept),
            tuple(all_skipped),
            tuple(replaced_paths),
            totals,
            duplicates,
            tuple(all_warnings),
        )

    def _classify(
        self, sources: Sequence[SourceRead], config_sha256: str, *, replace: bool
    ) -> tuple[list[SourceRead], list[SkippedFile], list[str], list[str]]:
        """Decide, by the hash of the bytes read, which files to count, skip or swap.

        A source's identity is (content hash, pack hash, mapping):
        - the same identity already live (any path, or earlier in this run): skip;
        - the same path live under another identity, or the same bytes live under another
          pack or mapping: counting it would double the file, so refuse unless ``replace``,
          which retires those old sources.
        """
        live = self._live_sources(
            paths=[s.stamp.path for s in sources],
            hashes=[s.blake3 for s in sources],
            sizes=[s.stamp.size_bytes for s in sources],
        )
        kept: list[SourceRead] = []
        skipped: list[SkippedFile] = []
        replaced_ids: list[str] = []
        replaced_paths: list[str] = []
        seen: dict[str, str] = {}
        for src in sources:
            path = src.stamp.path
            if src.blake3 in seen:
                skipped.append(SkippedFile(path, f"same content as {seen[src.blake3]} in this run"))
                continue
            content = self._content_read(src)
            same = _same_identity(live, content, config_sha256, src.read_as)
            # The same path live under another identity is stale even when these bytes are
            # counted elsewhere: refused, or retired under ``replace`` (and the bytes not
            # counted twice).
            stale = [r for r in live if r["path"] == path and r is not same]
            if stale and not replace:
                raise SourceConflictError(
                    _conflict_message(
                        path, content, src.stamp.size_bytes, config_sha256, src.read_as, stale[0]
                    )
                )
            if same is not None:
                for r in stale:
                    if r["source_id"] not in replaced_ids:
                        replaced_ids.append(r["source_id"])
                        replaced_paths.append(r["path"])
                skipped.append(SkippedFile(path, _skip_reason(path, same)))
                seen[src.blake3] = path
                continue
            conflicts = [r for r in live if r["path"] == path or content.same_bytes(r)]
            if conflicts and not replace:
                raise SourceConflictError(
                    _conflict_message(
                        path, content, src.stamp.size_bytes, config_sha256, src.read_as, conflicts[0]
                    )
                )
            for r in conflicts:
                if r["source_id"] not in replaced_ids:
                    replaced_ids.append(r["source_id"])
                    replaced_paths.append(r["path"])
            seen[src.blake3] = path
            kept.append(src)
        return kept, skipped, replaced_ids, replaced_paths

    def _content_read(self, src: SourceRead) -> _Content:
        """The bytes the engine read of ``src``, with :meth:`precheck`'s hashes when they are of
        the same bytes (same BLAKE3 and size)."""
        pre = self._contents.get(src.stamp.path)
        if pre is not None and pre.blake3 == src.blake3 and pre.size == src.stamp.size_bytes:
            return pre
        return _Content(src.stamp.path, src.blake3, src.stamp.size_bytes)

    def _insert_sources(
        self, run_id: str, config_sha256: str, kept: Sequence[SourceRead], source_ids: dict[str, str]
    ) -> None:
        if not kept:
            return
        # A few rows per run: plain parameters keep pyarrow off the nightly path's imports.
        self._con.executemany(
            """INSERT INTO wl_sources
               VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, CAST(? AS JSON), ?::VARCHAR[], NULL, NULL, ?,
                       CAST(? AS JSON), ?, NULL, NULL, ?, ?)""",
            [
                [
                    source_ids[s.engine_path],
                    run_id,
                    s.stamp.path,
                    s.stamp.size_bytes,
                    s.stamp.mtime,
                    config_sha256,
                    s.records,
                    s.rejected,
                    json.dumps(dict(sorted(s.rejects.items())), separators=(",", ":")),
                    list(s.columns_found),
                    s.skipped,
                    json.dumps(dict(sorted(s.skip_reasons.items())), separators=(",", ":")),
                    s.read_as,
                    s.blake3,
                    s.stamp.etag,
                ]
                for s in kept
            ],
        )
        names = [[source_ids[s.engine_path], *n] for s in kept for n in s.names]
        if names:
            self._con.executemany("INSERT INTO wl_source_names VALUES (?, ?, ?, ?, ?)", names)

    def _append_hourly(self, rows: _core.LedgerRows) -> None:
        """One append of the engine's stream: DuckDB pulls the batches as the engine merges them
        (no intermediate file, pyarrow not imported).

        Insertion order is not preserved for this statement: the rows' order means nothing
        (every read sums them), and without it DuckDB appends the stream in parallel. Measured
        on 1.7M cells: 3.6 s of CPU and 443 MB peak, against 4.5 s and 518 MB keeping the order,
        and 4.7 s and 417 MB through a Parquet file written by the engine (docs/bounds.md)."""
        relation = self._con.from_arrow(rows)
        if tuple(relation.columns) != HOURLY_COLUMNS:
            raise LedgerError(f"engine rows have columns {relation.columns}, expected {HOURLY_COLUMNS}")
        columns = ", ".join(HOURLY_COLUMNS)
        setting = "SELECT current_setting('preserve_insertion_order')"
        preserve = bool(self._con.execute(setting).fetchall()[0][0])
        self._con.register("_wl_rows", relation)
        try:
            self._con.execute("SET preserve_insertion_order = false")
            self._con.execute(f"INSERT INTO wl_hourly ({columns}) SELECT {columns} FROM _wl_rows")
            # Restored only on success: after a failed statement the transaction is aborted
            # and the writer is rolled back and closed anyway.
            self._con.execute(f"SET preserve_insertion_order = {str(preserve).lower()}")
        finally:
            self._con.unregister("_wl_rows")

    def _insert_hourly(
        self,
        run_id: str,
        config_sha256: str,
        source_ids: dict[str, str],
        aggregates: pa.Table | None,
        spill_files: Sequence[str],
    ) -> None:
        if not source_ids:
            return
        columns = ", ".join(("run_id", "source_id", "config_sha256", *KEY_COLUMNS, *MEASURE_COLUMNS))
        picked = ", ".join(f"a.{c}" for c in (*KEY_COLUMNS, *MEASURE_COLUMNS))
        self._con.execute("CREATE OR REPLACE TEMP TABLE _wl_source_map (source VARCHAR, source_id VARCHAR)")
        self._con.executemany(
            "INSERT INTO _wl_source_map VALUES (?, ?)", [list(kv) for kv in source_ids.items()]
        )
        try:
            inputs: list[tuple[str, list[Any]]] = []
            if aggregates is not None and aggregates.num_rows:
                self._con.register("_wl_aggregates", aggregates)
                inputs.append(("_wl_aggregates", []))
            if spill_files:
                names = self._con.execute(
                    "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet(?))", [list(spill_files)]
                ).fetchall()
                _check_aggregate_schema([n[0] for n in names], f"spill files {spill_files[0]}...")
                inputs.append(("read_parquet(?)", [list(spill_files)]))
            for relation, params in inputs:
                # Rows of files not kept (already counted) have no source_id and drop out here.
                self._con.execute(
                    f"""INSERT INTO wl_hourly ({columns})
                        SELECT ?, m.source_id, ?, {picked}
                        FROM {relation} a JOIN _wl_source_map m ON a.source = m.source""",
                    [run_id, config_sha256, *params],
                )
        finally:
            self._con.execute("DROP TABLE IF EXISTS _wl_source_map")
            if aggregates is not None and aggregates.num_rows:
                self._con.unregister("_wl_aggregates")

    def _run_totals(self, run_id: str) -> tuple[RunTotals, ...]:
        rows = self._con.execute(
            f"""SELECT method, CAST(SUM(records) AS BIGINT), {_RUN_TOTAL_SUMS}
               FROM wl_hourly WHERE run_id = ? GROUP BY method ORDER BY method""",
            [run_id],
        ).fetchall()
        return tuple(RunTotals(*row) for row in rows)

    def forget_source(self, path: PathLike, run: RunInfo) -> ForgetResult:
        """Remove the live contribution of one log file, in one transaction.

        ``path`` is matched against the stored absolute path: the given path made absolute
        (it need not exist any more). The source rows stay, marked forgotten by this run."""
        given = os.fspath(path)
        wanted = os.path.abspath(given)
        with self._transaction():
            rows = self._con.execute(
                """SELECT source_id, path, run_id, replaced_at, replaced_by_run, forgotten_at, forgotten_by
                   FROM wl_sources WHERE path = ? ORDER BY run_id DESC, source_id""",
                [wanted],
            ).fetchall()
            live = [r for r in rows if r[3] is None and r[5] is None]
            if not live:
                raise UnknownSourceError(_no_live_source_message(self.path, wanted, rows))
            return self._forget(run, f"source {wanted}", [(r[0], r[1], r[2]) for r in live], run_id=None)

    def forget_run(self, run_id: str, run: RunInfo) -> ForgetResult:
        """Remove every live contribution of an ingest run, in one transaction. The run's row
        and its source rows stay, marked forgotten by this run."""
        with self._transaction():
            found = self._con.execute(
                "SELECT status, forgotten_at, forgotten_by FROM wl_runs WHERE run_id = ?", [run_id]
            ).fetchall()
            if not found:
                raise UnknownSourceError(
                    f"ledger {self.path} has no run {run_id}; list the runs with `wattledger sql "
                    f'--ledger {self.path} "SELECT run_id, started_at, status, command FROM runs"`'
                )
            status, forgotten_at, forgotten_by = found[0]
            if status.startswith("forgot"):
                raise UnknownSourceError(
                    f"run {run_id} is a forget, not an ingest; there is nothing to forget"
                )
            if forgotten_at is not None:
                raise UnknownSourceError(
                    f"run {run_id} was already forgotten at {forgotten_at:%Y-%m-%d %H:%M:%S}Z by run "
                    f"{forgotten_by}; nothing to do"
                )
            rows = self._con.execute(
                """SELECT source_id, path, run_id FROM wl_sources
                   WHERE run_id = ? AND replaced_at IS NULL AND forgotten_at IS NULL ORDER BY source_id""",
                [run_id],
            ).fetchall()
            if not rows:
                raise UnknownSourceError(
                    f"run {run_id} has no live sources (each was replaced or forgotten since, or the run "
                    f'read nothing new); see `wattledger sql --ledger {self.path} "SELECT path, live, '
                    f"replaced_by_run, forgotten_by FROM sources WHERE run_id = '{run_id}'\"`"
                )
            return self._forget(run, f"run {run_id}", [tuple(r) for r in rows], run_id=run_id)

    def _forget(
        self, run: RunInfo, target: str, sources: list[tuple[str, str, str]], *, run_id: str | None
    ) -> ForgetResult:
        """Inside a transaction: totals before, delete the hourly rows, mark the sources (and
        the run) forgotten, record the forget as a run row without a config, totals after."""
        ids = [s[0] for s in sources]
        before = self._totals("TRUE", [])
        removed = self._totals("list_contains(?, source_id)", [ids])
        now = datetime.now(UTC)
        self._con.execute("DELETE FROM wl_hourly WHERE list_contains(?, source_id)", [ids])
        self._con.execute(
            "UPDATE wl_sources SET forgotten_at = ?, forgotten_by = ? WHERE list_contains(?, source_id)",
            [now, run.run_id, ids],
        )
        if run_id is not None:
            self._con.execute(
                "UPDATE wl_runs SET forgotten_at = ?, forgotten_by = ? WHERE run_id = ?",
                [now, run.run_id, run_id],
            )
        self._con.execute(
            """INSERT INTO wl_runs (run_id, started_at, finished_at, command, wattledger_version,
                   config_sha256, records, rejected, dedupe, duplicates, files_read, files_skipped,
                   files_replaced, status, warnings)
               VALUES (?, ?, ?, ?, ?, NULL, 0, 0, false, NULL, 0, 0, 0, ?, []::VARCHAR[])""",
            [run.run_id, run.started_at, now, run.command, run.version, f"forgot {target}"],
        )
        after = self._totals("TRUE", [])
        pause_at("before_commit")
        return ForgetResult(run.run_id, target, tuple(sources), before, removed, after)

    def _totals(self, where: str, params: list[Any]) -> LedgerTotals:
        row = self._con.execute(
            f"""SELECT CAST(COALESCE(SUM(records), 0) AS BIGINT),
                       COALESCE({exact_sum_sql("requests", "requests")}, 0.0),
                       {exact_sum_sql("energy_kwh", "energy_kwh")},
                       {exact_sum_sql("co2e_location_kg", "co2e_location_kg")},
                       {exact_sum_sql("co2e_market_kg", "co2e_market_kg")}
                FROM wl_hourly WHERE {where}""",
            params,
        ).fetchall()[0]
        return LedgerTotals(*row)


#: Hash of the views' definitions (and of the tables a write adds to older ledgers), kept in
#: wl_meta: a write redefines the views only when it changed (``_ensure_schema``).
_VIEWS_SHA256 = hashlib.sha256("\n;\n".join((*VIEWS_DDL, SOURCE_TOTALS_DDL)).encode()).hexdigest()
_VIEW_NAMES = tuple(ddl.split("VIEW ", 1)[1].split(" ", 1)[0] for ddl in VIEWS_DDL)


#: The measures of :class:`RunTotals` after ``method`` and ``records``, in its field order,
#: summed as the reports sum them.
_RUN_TOTAL_SUMS = ", ".join(exact_sum_sql(f.name, f.name) for f in fields(RunTotals)[2:])


def outcome_coverage_sql(where: str) -> str:
    """Hourly rows (matching ``where`` over wl_hourly) written before outcomes were counted."""
    return f"SELECT count(*) FROM wl_hourly WHERE ({where}) AND failed_requests IS NULL"


def outcome_coverage_message(rows: int) -> str:
    """The warning a report gives when its period includes rows that predate outcome counting."""
    return (
        f"{rows:,} hourly rows of this period were ingested before request outcomes were counted "
        "(ledger schema 1): failed_requests and cached_requests cover only the rows ingested since; "
        "re-ingest those files with --replace for complete counts"
    )


def _check_aggregate_schema(names: Sequence[str], what: str) -> None:
    missing = [c for c in AGGREGATE_COLUMNS if c not in set(names)]
    if missing:
        raise LedgerError(f"{what} lacks aggregate columns {missing}; see docs/internals.md")


class _Content:
    """The bytes of one file, as the ledger compares them with live sources.

    A source recorded since schema 4 is the same content when its BLAKE3 is; one recorded
    before holds a SHA-256 only, and is the same content when it has this size and SHA-256.
    That SHA-256 is computed only for such a source (the engine's hash in one pass over the
    file, with the BLAKE3 to prove the bytes are those read), so old ledgers cost nothing extra
    unless a file may be one they already counted.
    """

    def __init__(
        self,
        path: str,
        blake3: str | None,
        size: int,
        sha256: str | None = None,
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        #: None when the file cannot be read now (the engine reports it when it reads it).
        self.blake3 = blake3
        self.size = size
        self._sha256 = sha256
        self._sha_tried = sha256 is not None
        self._storage_options = dict(storage_options or {})

    @staticmethod
    def recorded(stamp: FileStamp, candidates: Sequence[dict[str, Any]]) -> _Content | None:
        """The content of an object a live source recorded under the same URL, size and (strong)
        ETag: the store gives a new ETag to every new version of an object, so those bytes are
        known without reading them. None for local files and for objects that may differ."""
        if stamp.etag is None or stamp.etag.startswith("W/"):
            return None
        for r in candidates:
            if (
                r["path"] == stamp.path
                and r["etag"] == stamp.etag
                and r["size_bytes"] == stamp.size_bytes
                and r["blake3"] is not None
            ):
                return _Content(stamp.path, r["blake3"], stamp.size_bytes)
        return None

    @staticmethod
    def of_file(
        path: str,
        candidates: Sequence[dict[str, Any]],
        size_hint: int = -1,
        storage_options: Mapping[str, str] | None = None,
    ) -> _Content:
        """Hash a file before reading it (a live source may hold it): BLAKE3, and SHA-256 too
        when a source recorded with SHA-256 only has its size. An object (URL) is read by ranges
        with ``storage_options``."""
        remote = _core.is_url(path)
        if remote:
            size = size_hint
        else:
            size = os.stat(path).st_size if os.path.exists(path) else -1
        legacy = any(r["blake3"] is None and r["size_bytes"] == size for r in candidates)
        try:
            blake3, sha256, read = _core.file_digests(
                path, sha256=legacy, storage_options=dict(storage_options or {})
            )
        except (OSError, _core.InputError):
            return _Content(path, None, size)
        return _Content(path, blake3, read, sha256, storage_options)

    def sha256(self) -> str | None:
        """SHA-256 of the same bytes, computed once on demand; None if the file no longer holds
        them (rewritten since it was read) or cannot be read."""
        if not self._sha_tried:
            self._sha_tried = True
            try:
                blake3, sha256, read = _core.file_digests(
                    self.path, sha256=True, limit=self.size, storage_options=self._storage_options
                )
            except (OSError, _core.InputError):
                return None
            if blake3 == self.blake3 and read == self.size:
                self._sha256 = sha256
        return self._sha256

    def same_bytes(self, row: dict[str, Any]) -> bool:
        """True when the live source ``row`` recorded exactly these bytes."""
        if self.blake3 is None:
            return False
        if row["blake3"] is not None:
            return bool(row["blake3"] == self.blake3)
        return bool(row["size_bytes"] == self.size and self.sha256() == row["sha256"])

    def describe(self) -> str:
        return f"blake3 {self.blake3[:12]}" if self.blake3 else "?"


def describe_identity(row: dict[str, Any]) -> str:
    """A live source's content identity as people read it: ``blake3 <hex>``, or ``sha256 <hex>``
    for a source recorded before schema 4."""
    if row.get("blake3"):
        return f"blake3 {row['blake3'][:12]}"
    return f"sha256 {(row.get('sha256') or '?')[:12]}"


def read_as_of(row: dict[str, Any]) -> str:
    """A live source's mapping; NULL (ingested before schema 3) counts as the default ("")."""
    return row["read_as"] or ""


def _same_identity(
    live: Sequence[dict[str, Any]], content: _Content | None, config_sha256: str, read_as: str
) -> dict[str, Any] | None:
    if content is None:
        return None
    return next(
        (
            r
            for r in live
            if r["config_sha256"] == config_sha256 and read_as_of(r) == read_as and content.same_bytes(r)
        ),
        None,
    )


def _skip_reason(path: str, same: dict[str, Any]) -> str:
    if same["path"] == path:
        return f"unchanged since run {same['run_id']}"
    return f"same content already ingested as {same['path']} in run {same['run_id']}"


def _conflict_message(
    path: str, content: _Content | None, size: int, config_sha256: str, read_as: str, old: dict[str, Any]
) -> str:
    """One line: what differs from the live source ``old`` (content, pack, mapping), and what
    to do. ``content`` is None when the size alone shows that the content changed."""
    run = old["run_id"]
    if old["path"] == path and old["size_bytes"] < size:
        return (
            f"{path} grew from {old['size_bytes']:,} to {size:,} bytes since run {run} read it; "
            "refusing to count it twice. If it is appended to while ingesting, ingest it once "
            "complete, or re-run with --replace to recount it whole"
        )
    differs: list[str] = []
    if old["path"] == path and (content is None or not content.same_bytes(old)):
        sizes = f", {old['size_bytes']:,} -> {size:,} bytes" if old["size_bytes"] != size else ", same size"
        now = content.describe() if content is not None else "?"
        differs.append(f"content ({describe_identity(old)} -> {now}{sizes})")
    if old["config_sha256"] != config_sha256:
        differs.append(f"pack (config {old['config_sha256'][:12]} -> {config_sha256[:12]})")
    if read_as_of(old) != read_as:
        differs.append(f"mapping ({describe_read_as(old['read_as'])} -> {describe_read_as(read_as)})")
    what = " and ".join(differs) or "identity"
    if old["path"] == path:
        head = f"{path} differs from what run {run} ingested in {what}"
    else:
        head = f"{path} has the same content as {old['path']}, which run {run} ingested with another {what}"
    return (
        f"{head}; refusing to count it twice. Re-run with --replace to swap its old contribution for this one"
    )


def _no_live_source_message(ledger: str, path: str, rows: Sequence[tuple[Any, ...]]) -> str:
    hint = f'`wattledger sql --ledger {ledger} "SELECT source_id, run_id, path, live FROM sources"`'
    if not rows:
        return f"ledger {ledger} has no source {path}; list the sources with {hint}"
    _sid, _path, run_id, _replaced_at, replaced_by, forgotten_at, forgotten_by = rows[0]
    if forgotten_at is not None:
        return (
            f"{path} (run {run_id}) was already forgotten at {forgotten_at:%Y-%m-%d %H:%M:%S}Z by run "
            f"{forgotten_by}; nothing to do"
        )
    return (
        f"{path} (run {run_id}) was replaced by run {replaced_by} and has no live contribution of its "
        f"own; see {hint}"
    )


def ledger_exists(path: PathLike) -> bool:
    """True when a ledger file exists at ``path`` (it may still be foreign or busy)."""
    return Path(path).is_file()
