"""``wattledger export``: the hourly aggregates as hive-partitioned Parquet for data-lake users.

What is exported is the ``energy_hourly`` view (methodology section 8 keys and measures) and
nothing else: no file paths, commands or config texts from ``wl_sources``/``wl_runs``, which
may say more about the infrastructure than a lake's readers should see.

Why atomic: a lake job that lists ``DIR`` while an export runs must see the old complete set or
the new complete set, never a half-written one. Files are written into ``DIR.tmp-<id>`` beside
``DIR`` (same filesystem, so renames are atomic) and moved into place by rename; replacing a
non-empty ``DIR`` (``overwrite``) exchanges the two directories in one ``renameat2`` call where
the kernel and filesystem support it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from wattledger.errors import OutputError, UsageError
from wattledger.integrity import is_damage
from wattledger.interrupts import is_interrupt
from wattledger.ledger import connect_ledger
from wattledger.schema import HOUR_UTC, KEY_COLUMNS, MEASURE_COLUMNS

PathLike = str | os.PathLike[str]

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


@dataclass(frozen=True)
class ExportResult:
    """What was written."""

    directory: Path
    rows: int
    files: int
    partitions: tuple[str, ...]
    replaced: bool


def export_parquet(ledger: PathLike, out_dir: PathLike, *, overwrite: bool = False) -> ExportResult:
    """Write ``energy_hourly`` as ``out_dir/year=YYYY/month=M/*.parquet`` (UTC year and month).

    Refuses an existing non-empty ``out_dir`` unless ``overwrite``; ``out_dir``'s own files
    then disappear in the same swap that brings the new ones in.
    """
    out = Path(out_dir)
    existed = out.exists()
    if existed and not out.is_dir():
        raise UsageError(f"export target {out} exists and is not a directory; choose another --parquet DIR")
    non_empty = existed and any(out.iterdir())
    if non_empty and not overwrite:
        raise UsageError(
            f"export target {out} exists and is not empty; pass --overwrite to replace it atomically"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # as `mkdir -p`: a lake path is often new
    except OSError as exc:
        raise OutputError(
            f"cannot export to {out}: cannot create its parent directory {out.parent} "
            f"({exc.strerror or exc}); check the path and permissions"
        ) from None
    tmp = out.parent / f"{out.name}.tmp-{secrets.token_hex(4)}"
    con = connect_ledger(ledger)
    try:
        rows = _write(con, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.close()
    files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*.parquet"))
    partitions = tuple(sorted({f.rsplit("/", 1)[0] for f in files}))
    try:
        _swap_into_place(tmp, out, replace=non_empty)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot move the export into {out}: {exc.strerror or exc}") from None
    return ExportResult(out, rows, len(files), partitions, non_empty)


def _write(con: duckdb.DuckDBPyConnection, tmp: Path) -> int:
    columns = ", ".join((*KEY_COLUMNS, *MEASURE_COLUMNS))
    select = f"""SELECT {columns},
       CAST(year({HOUR_UTC}) AS INTEGER) AS year, CAST(month({HOUR_UTC}) AS INTEGER) AS month
FROM energy_hourly
ORDER BY hour, model, site NULLS LAST, zone NULLS LAST, hardware NULLS LAST, method"""
    rows = int(con.execute(f"SELECT COUNT(*) FROM ({select})").fetchall()[0][0])
    try:
        if rows:
            con.execute(f"COPY ({select}) TO '{_sql_str(tmp)}' (FORMAT parquet, PARTITION_BY (year, month))")
        else:
            tmp.mkdir()  # an empty ledger exports an empty directory, not an error
    except duckdb.Error as exc:
        if is_damage(exc) or is_interrupt(exc):
            raise  # the ledger's fault, or Ctrl-C: not the output's
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OutputError(
            f"cannot write Parquet under {tmp}: {first}; check free space and permissions"
        ) from None
    return rows


def _sql_str(path: Path) -> str:
    return os.fspath(path).replace("'", "''")


def _swap_into_place(tmp: Path, out: Path, *, replace: bool) -> None:
    """Put ``tmp`` at ``out``. A missing or empty ``out`` is replaced by a plain rename; a
    non-empty one is exchanged atomically (renameat2) and then deleted, or, where the kernel or
    filesystem cannot exchange, moved aside first (a moment with no ``out`` at all)."""
    if not replace:
        os.rename(tmp, out)  # rename(2) replaces an empty directory atomically
        return
    if _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous export
        return
    aside = out.parent / f"{out.name}.old-{secrets.token_hex(4)}"
    os.rename(out, aside)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where unsupported."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc: int = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0
