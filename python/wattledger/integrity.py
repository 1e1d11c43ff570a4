"""Is a ledger file sound? The storage check every write runs first, and ``wattledger check``.

Why a check before writing: DuckDB keeps a checksum with every block of the file and verifies it
whenever it reads that block, but it reads a block only when a query needs it. An ingest only
appends, so it used to commit on top of a ledger with garbage in the middle, and a truncated
ledger was opened for writing before the damage showed. Reading every column of every table
once, read-only, makes DuckDB verify every block the tables use; a truncated file is also
caught by its size, which cannot be smaller than the blocks its header counts. Only then is the
ledger opened for writing, so a damaged file is never modified.

Why ``max(hash(COLUMNS(*)))`` per table: it needs every value of every column, so no block can
be skipped, and costs one pass (about 0.15 s for a 70 MB ledger of 570,000 hourly rows on two
cores). Hashing the row as one struct does not read every column's blocks (measured: a
corrupted block of a DOUBLE column went unnoticed), and ``count(*)`` reads none.

``check`` goes further: it re-sums every live source's hourly rows per method and compares
them with the totals recorded when its run committed (``wl_source_totals``), so rows lost,
changed or added after the commit are found even where the blocks themselves are intact.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import duckdb

from wattledger.errors import LedgerDamagedError, LedgerNotFoundError, LedgerSchemaError
from wattledger.schema import SOURCE_TOTAL_MEASURES, source_totals_sql

PathLike = str | os.PathLike[str]

#: DuckDB's main header plus its two alternating database headers, before the first block.
FILE_HEADER_BYTES = 3 * 4096

#: Parts of DuckDB's messages that mean the file's bytes are not what DuckDB wrote.
_DAMAGE_MARKERS = (
    "corrupt database file",
    "could not read enough bytes",
    "not a valid duckdb database file",
    "checksum",
    "serialization error",
    "failed to deserialize",
    "invalid block",
)

#: Relative tolerance when comparing a re-summed DOUBLE with the recorded one. The sums are
#: exact and order-independent (``schema.exact_sum_sql``) except for values too large for
#: its integer path, so equal rows give equal sums up to the last bits at most.
REL_TOLERANCE = 1e-12


def is_damage(exc: BaseException) -> bool:
    """True when a DuckDB error says the file's bytes are damaged (not busy, not missing)."""
    if not isinstance(exc, duckdb.Error):
        return False
    text = str(exc).lower()
    return any(marker in text for marker in _DAMAGE_MARKERS)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def damaged_error(name: str, detail: str) -> LedgerDamagedError:
    """The one line for a damaged ledger: what, which file, what to do (``detail`` is kept on
    the exception for ``check``, which reports it in its own words)."""
    exc = LedgerDamagedError(
        f"ledger {name} is damaged ({detail}); it was not changed. Restore it from a backup; "
        f"`wattledger check --ledger {name}` reports what is wrong"
    )
    exc.detail = detail
    return exc


def not_a_database_error(name: str) -> LedgerDamagedError:
    exc = LedgerDamagedError(
        f"ledger {name} is not a DuckDB database (its header is damaged, or it is another kind of "
        "file); it was not changed. Restore the ledger from a backup, or point --ledger at a new file"
    )
    exc.detail = "not a DuckDB database: its header is damaged, or it is another kind of file"
    return exc


def verify_size(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Refuse a file that ends before the last block its tables use (a truncated copy). Cheap:
    the block list is metadata, no data block is read. (The header's block count is no bound:
    DuckDB shortens the file when its last blocks become free but keeps counting them.)"""
    if os.path.exists(f"{name}.wal"):
        return  # blocks of a committed run may still be in the write-ahead log only
    rows = con.execute(
        "SELECT block_size FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchall()
    if not rows:
        return
    block_size = int(rows[0][0])
    last = -1
    for table in table_names(con):
        quoted = table.replace("'", "''")
        found = con.execute(f"SELECT max(block_id) FROM pragma_storage_info('{quoted}')").fetchall()
        if found and found[0][0] is not None:
            last = max(last, int(found[0][0]))
    expected = FILE_HEADER_BYTES + (last + 1) * block_size
    actual = os.path.getsize(name)
    if actual < expected:
        raise damaged_error(
            name, f"truncated: {actual:,} bytes, but its tables use blocks up to byte {expected:,}"
        )


def table_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT temporary ORDER BY table_name"
        ).fetchall()
    ]


def verify_blocks(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Read every column of every table once, so DuckDB verifies each block's checksum."""
    try:
        for table in table_names(con):
            quoted = table.replace('"', '""')
            con.execute(f'SELECT max(hash(COLUMNS(*))) FROM "{quoted}"').fetchall()
    except duckdb.Error as exc:
        if is_damage(exc):
            raise damaged_error(name, first_line(exc)) from None
        raise


def verify_storage(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """The cheap integrity check: the file's size, then every table's blocks (module docstring)."""
    try:
        verify_size(con, name)
    except duckdb.Error as exc:
        if is_damage(exc):
            raise damaged_error(name, first_line(exc)) from None
        raise
    verify_blocks(con, name)


# ---------------------------------------------------------------------------------------------
# wattledger check
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotalsMismatch:
    """One measure of one source and method whose hourly rows no longer sum to what was
    recorded at commit. ``recorded`` is None where nothing was recorded (rows that belong to
    no live source), ``found`` None where the rows are gone."""

    source_id: str
    method: str
    measure: str
    recorded: float | int | None
    found: float | int | None


@dataclass(frozen=True)
class RunCheckResult:
    """A run re-summed: ``status`` is ``ok`` (every live source's rows sum to its recorded
    totals), ``records only`` (ingested before totals were recorded: only its record counts
    were compared), ``mismatch`` (see ``mismatches``) or ``nothing live`` (a forget, a run that
    read nothing new, or one whose sources were all replaced or forgotten since)."""

    run_id: str
    status: str
    live_sources: int
    records: int
    energy_kwh: float | None
    mismatches: tuple[TotalsMismatch, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """What ``check`` found. ``storage`` is ``ok`` or what is damaged (then runs are not
    re-summed: their rows cannot all be read)."""

    ledger: str
    schema_version: int | None
    storage: str
    size_bytes: int
    seconds: float
    runs: tuple[RunCheckResult, ...]

    @property
    def sound(self) -> bool:
        return self.storage == "ok" and all(r.status != "mismatch" for r in self.runs)

    @property
    def mismatched_runs(self) -> tuple[RunCheckResult, ...]:
        return tuple(r for r in self.runs if r.status == "mismatch")


def check(ledger: PathLike) -> CheckResult:
    """Check a ledger without changing it: its storage (every block's checksum, its size) and,
    when that is sound, every run's hourly rows re-summed against the totals recorded at commit.

    Raises :class:`LedgerNotFoundError` for a missing file, :class:`LedgerSchemaError` for a
    DuckDB database that is not a ledger and :class:`LedgerBusyError` while a writer holds it;
    damage is reported in the result (``sound`` is False), not raised."""
    from wattledger.ledger import open_read_only  # ledger imports this module

    name = os.fspath(ledger)
    if not os.path.exists(name):
        raise LedgerNotFoundError(f"ledger {name} does not exist; nothing to check")
    started = time.monotonic()
    size = os.path.getsize(name)

    def result(version: int | None, storage: str, runs: tuple[RunCheckResult, ...] = ()) -> CheckResult:
        return CheckResult(name, version, storage, size, time.monotonic() - started, runs)

    try:
        con = open_read_only(name)
    except LedgerDamagedError as exc:
        return result(None, _detail(exc))
    try:
        try:
            tables = set(table_names(con))
            if "wl_meta" not in tables:
                raise LedgerSchemaError(
                    f"{name} is a DuckDB database but not a wattledger ledger (no wl_meta table); "
                    "nothing to check"
                )
            rows = con.execute("SELECT value FROM wl_meta WHERE key = 'schema_version'").fetchall()
        except duckdb.Error as exc:
            if is_damage(exc):
                return result(None, first_line(exc))
            raise
        version = int(rows[0][0]) if rows else None
        try:
            verify_storage(con, name)
        except LedgerDamagedError as exc:
            return result(version, _detail(exc))
        try:
            runs = _resum(con, has_totals="wl_source_totals" in tables)
        except duckdb.Error as exc:
            if is_damage(exc):
                return result(version, first_line(exc))
            raise
        return result(version, "ok", runs)
    finally:
        con.close()


def _detail(exc: LedgerDamagedError) -> str:
    return str(getattr(exc, "detail", exc))


def _same(recorded: Any, found: Any) -> bool:
    if recorded is None or found is None:
        return recorded is None and found is None
    if isinstance(recorded, float) or isinstance(found, float):
        return math.isclose(float(recorded), float(found), rel_tol=REL_TOLERANCE, abs_tol=1e-300)
    return bool(recorded == found)


def _resum(con: duckdb.DuckDBPyConnection, *, has_totals: bool) -> tuple[RunCheckResult, ...]:
    key_width = 3  # source_id, run_id, method
    found: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {
        (r[0], r[2]): (r[1], tuple(r[key_width:])) for r in con.execute(source_totals_sql("TRUE")).fetchall()
    }
    recorded: dict[tuple[str, str], tuple[Any, ...]] = {}
    if has_totals:
        columns = ", ".join(SOURCE_TOTAL_MEASURES)
        recorded = {
            (r[0], r[1]): tuple(r[2:])
            for r in con.execute(f"SELECT source_id, method, {columns} FROM wl_source_totals").fetchall()
        }
    recorded_sources = {sid for sid, _ in recorded}
    sources = con.execute(
        """SELECT source_id, run_id, records, replaced_at IS NULL AND forgotten_at IS NULL
           FROM wl_sources ORDER BY run_id, source_id"""
    ).fetchall()
    runs = con.execute("SELECT run_id, dedupe FROM wl_runs ORDER BY run_id").fetchall()
    by_run: dict[str, list[tuple[str, int, bool]]] = {}
    for sid, run_id, records, live in sources:
        by_run.setdefault(run_id, []).append((sid, int(records), bool(live)))
    live_ids = {sid for sid, _run, _rec, live in sources if live}
    known_ids = {sid for sid, *_ in sources}

    idx_records = SOURCE_TOTAL_MEASURES.index("records")
    idx_energy = SOURCE_TOTAL_MEASURES.index("energy_kwh")
    methods_of: dict[str, list[str]] = {}
    for sid, method in {*found, *recorded}:
        methods_of.setdefault(sid, []).append(method)

    # Hourly rows of a source that is retired or unknown: --replace and forget delete them, so
    # any left were added or kept by something other than wattledger.
    stray: dict[str, list[TotalsMismatch]] = {}
    for (sid, method), (run_id, values) in found.items():
        if sid not in live_ids:
            what = "retired" if sid in known_ids else "unknown"
            stray.setdefault(run_id, []).append(
                TotalsMismatch(sid, method, f"hourly_rows (of a {what} source)", 0, values[0])
            )

    out: list[RunCheckResult] = []
    for run_id, dedupe in runs:
        mismatches = list(stray.pop(run_id, []))
        live = [(sid, rec) for sid, rec, is_live in by_run.get(run_id, []) if is_live]
        records_only = False
        total_records, energy = 0, None
        for sid, source_records in live:
            methods = sorted(methods_of.get(sid, []))
            for method in methods:
                have = found.get((sid, method))
                if have is not None:
                    sums = have[1]
                    total_records += int(sums[idx_records] or 0)
                    if sums[idx_energy] is not None:
                        energy = (energy or 0.0) + float(sums[idx_energy])
            if sid in recorded_sources:
                for method in methods:
                    want = recorded.get((sid, method))
                    have = found.get((sid, method))
                    if want is None or have is None:  # a whole method's rows appeared or vanished
                        counts = (want[0] if want else None, have[1][0] if have else None)
                        mismatches.append(TotalsMismatch(sid, method, "hourly_rows", *counts))
                        continue
                    for measure, r, f in zip(SOURCE_TOTAL_MEASURES, want, have[1], strict=True):
                        if not _same(r, f):
                            mismatches.append(TotalsMismatch(sid, method, measure, r, f))
            else:
                # Ingested before totals were recorded: the source row's record count is all
                # there is to compare, and only without dedupe (which drops repeats after it).
                records_only = True
                if not dedupe:
                    per_method = [found[(sid, m)][1] for m in methods if (sid, m) in found]
                    summed = sum(int(v[idx_records] or 0) for v in per_method)
                    if summed != source_records:
                        mismatches.append(TotalsMismatch(sid, "*", "records", source_records, summed))
        if mismatches:
            status = "mismatch"
        elif not live:
            status = "nothing live"
        elif records_only:
            status = "records only"
        else:
            status = "ok"
        out.append(RunCheckResult(run_id, status, len(live), total_records, energy, tuple(mismatches)))
    for run_id, mismatches in sorted(stray.items()):  # rows naming a run the ledger does not have
        out.append(RunCheckResult(run_id, "mismatch", 0, 0, None, tuple(mismatches)))
    return tuple(out)


def format_check(result: CheckResult) -> str:
    """The text ``wattledger check`` prints: the storage, one line per run, a verdict."""
    mb = result.size_bytes / 1e6
    version = result.schema_version if result.schema_version is not None else "?"
    lines = [
        f"ledger {result.ledger}: schema version {version}, {mb:,.1f} MB, checked in {result.seconds:.2f} s"
    ]
    if result.storage == "ok":
        lines.append("storage: ok (every block of every table read, its checksum verified; size as recorded)")
    else:
        lines.append(f"storage: DAMAGED: {result.storage}")
    for run in result.runs:
        energy = f"{run.energy_kwh:,.6g} kWh" if run.energy_kwh is not None else "no energy"
        head = f"run {run.run_id}: {run.status}"
        if run.status != "nothing live":
            head += f" ({run.live_sources} live sources, {run.records:,} records, {energy})"
        lines.append(head)
        for m in run.mismatches:
            lines.append(
                f"  source {m.source_id} method {m.method}: {m.measure} recorded {_num(m.recorded)}, "
                f"found {_num(m.found)}"
            )
    if result.sound:
        unverified = sum(1 for r in result.runs if r.status == "records only")
        note = f" ({unverified} ingested before totals were recorded: record counts only)" * bool(unverified)
        lines.append(f"sound: {len(result.runs)} runs re-summed against the totals recorded at commit{note}")
    elif result.storage != "ok":
        lines.append("DAMAGED: restore the ledger from a backup; its runs could not be re-summed")
    else:
        bad = result.mismatched_runs
        lines.append(
            f"DAMAGED: {len(bad)} of {len(result.runs)} runs no longer sum to what they committed; "
            "restore the ledger from a backup, or forget those runs and ingest their files again"
        )
    return "\n".join(lines) + "\n"


def _num(value: float | int | None) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, int):
        return f"{value:,}"
    return repr(value)
