"""Hand-built aggregate tables of the engine's documented schema (docs/internals.md).

Ledger and report tests use these instead of the engine so transaction semantics are tested
on their own, with numbers chosen by hand.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from wattledger.ledger import ConfigIdentity, FileStamp, RunInfo, SourceRead, new_run_id
from wattledger.schema import MEASURE_COLUMNS

AGG_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("hour", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()),
        ("site", pa.string()),
        ("zone", pa.string()),
        ("hardware", pa.string()),
        ("method", pa.string()),
        ("records", pa.int64()),
        *[(c, pa.float64()) for c in MEASURE_COLUMNS[1:]],
    ]
)

CONFIG_A = ConfigIdentity("a" * 64, "pack-a", "1", "/etc/a.toml", "[defaults]\npue = 1.2\n")
CONFIG_B = ConfigIdentity("b" * 64, "pack-b", "2", "/etc/b.toml", "[defaults]\npue = 1.5\n")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def cell(source: str, hour: datetime, model: str, energy_kwh: float | None, **kw: Any) -> dict[str, Any]:
    """One hourly cell. ``energy_kwh`` None means method ``none`` (no energy, no emissions)."""
    none = energy_kwh is None
    row: dict[str, Any] = {
        "source": source,
        "hour": hour,
        "model": model,
        "site": "fra-1",
        "zone": "DE",
        "hardware": "h100",
        "method": "none" if none else "tokens",
        "records": 10,
        "requests": 10.0,
        "input_tokens": 1000.0,
        "output_tokens": 500.0,
        "energy_acc_kwh": None if none else energy_kwh / 2,
        "energy_it_kwh": None if none else energy_kwh / 1.5,
        "energy_kwh": energy_kwh,
        "energy_kwh_low": None if none else energy_kwh * 0.7,
        "energy_kwh_high": None if none else energy_kwh * 1.3,
        "co2e_location_kg": None if none else energy_kwh * 0.4,
        "co2e_market_kg": None if none else energy_kwh * 0.1,
        "flops": 1e15,
        "gpu_hours": None,
        "fallback_kwh": None if none else 0.0,
        "unresolved_kwh": None if none else 0.0,
        "unestimated_requests": 10.0 if none else 0.0,
        "failed_requests": 0.0,
        "cached_requests": 0.0,
    }
    row.update(kw)
    return row


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=AGG_SCHEMA)


def write_log(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def source(path: Path, *, records: int = 10, rejects: dict[str, int] | None = None) -> SourceRead:
    """A SourceRead for a real file on disk, hashed the way the engine does (BLAKE3)."""
    from wattledger import _core

    rejects = rejects or {}
    return SourceRead(
        engine_path=str(path),
        stamp=FileStamp.of(path),
        blake3=_core.file_digests(path)[0],
        records=records,
        rejected=sum(rejects.values()),
        rejects=rejects,
        columns_found=("ts", "model", "input_tokens"),
    )


def run_info() -> RunInfo:
    now = datetime.now(UTC)
    return RunInfo(new_run_id(now), now, "pytest", "test")


def build_ledger(
    ledger: Path,
    log_dir: Path,
    rows_by_file: dict[str, list[dict[str, Any]]],
    config: ConfigIdentity = CONFIG_A,
) -> None:
    """Commit one run with a log file per key of ``rows_by_file``; each row's ``source`` is
    set to that file. Rows are ``cell(...)`` dicts (their own ``source`` is overwritten)."""
    from wattledger.ledger import LedgerWriter

    sources, rows = [], []
    for name, file_rows in rows_by_file.items():
        log = write_log(log_dir / name, f"{name} {config.sha256}\n")
        sources.append(source(log))
        rows += [{**r, "source": str(log)} for r in file_rows]
    with LedgerWriter(ledger) as w:
        w.commit_run(run_info(), config, sources, table(rows))


#: Columns each ledger schema version added, newest first (what a downgrade drops).
_COLUMNS_ADDED_IN: dict[int, tuple[tuple[str, str], ...]] = {
    6: (("wl_sources", "etag"),),
    4: (("wl_sources", "blake3"),),
    3: (
        ("wl_sources", "read_as"),
        ("wl_sources", "forgotten_at"),
        ("wl_sources", "forgotten_by"),
        ("wl_runs", "forgotten_at"),
        ("wl_runs", "forgotten_by"),
    ),
    2: (
        ("wl_hourly", "failed_requests"),
        ("wl_hourly", "cached_requests"),
        ("wl_runs", "warnings"),
        ("wl_sources", "skipped"),
        ("wl_sources", "skip_reasons"),
    ),
}


def downgrade_schema(ledger: Path, version: int) -> None:
    """Turn a ledger written by this wattledger into what the one with schema ``version`` wrote:
    the same tables minus what later versions added (their migrations are then tested)."""
    import duckdb

    con = duckdb.connect(str(ledger))
    try:
        for (view,) in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall():
            con.execute(f"DROP VIEW {view}")
        if version < 4:
            # Before schema 4 a source's identity was the SHA-256 of the bytes read, which is
            # what an older wattledger wrote: the file's, while it is still there as read.
            sources = con.execute("SELECT source_id, path, size_bytes FROM wl_sources").fetchall()
            for source_id, path, size in sources:
                body = Path(path).read_bytes()[:size] if Path(path).is_file() else path.encode()
                digest = hashlib.sha256(body).hexdigest()
                con.execute("UPDATE wl_sources SET sha256 = ? WHERE source_id = ?", [digest, source_id])
        for added in sorted(_COLUMNS_ADDED_IN, reverse=True):
            if added > version:
                for table, column in _COLUMNS_ADDED_IN[added]:
                    con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        if version < 3:  # schema 3 let a forget's run row have no config
            con.execute("ALTER TABLE wl_runs ALTER COLUMN config_sha256 SET NOT NULL")
        if version < 4:  # schema 4 made BLAKE3 the identity, SHA-256 optional
            con.execute("ALTER TABLE wl_sources ALTER COLUMN sha256 SET NOT NULL")
        if version < 2:
            con.execute("DROP TABLE wl_source_names")
        con.execute("UPDATE wl_meta SET value = ? WHERE key = 'schema_version'", [str(version)])
    finally:
        con.close()
