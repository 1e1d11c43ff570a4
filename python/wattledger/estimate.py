"""Engine calls that return data to Python: read, validate and estimate logs without a ledger.

These are thin: argument normalisation, then one ``_core`` call, then Arrow -> polars with no
copy. Spill files (aggregate rows flushed under the memory budget) are merged back in DuckDB,
whose SUM keeps "no value" (NULL) apart from zero, as the methodology requires.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import duckdb

from wattledger import _core
from wattledger._deferred import deferred
from wattledger.config import ColumnRules, GridResolution, column_rules, load_config, load_grid
from wattledger.errors import RunWarning
from wattledger.ingest import (
    DEFAULT_MAX_INFLATE,
    DEFAULT_MAX_LINE,
    DEFAULT_MAX_NAMES,
    DEFAULT_MEMORY_BUDGET_CELLS,
)
from wattledger.mapping import arrow_columns, check_readable
from wattledger.progress import run_with_progress
from wattledger.schema import AGGREGATE_COLUMNS, KEY_COLUMNS, measure_sums_sql

if TYPE_CHECKING:
    import polars as pl
else:
    pl = deferred("polars")

PathLike = str | os.PathLike[str]


class ArrowStreamExportable(Protocol):
    """Anything exporting an Arrow C stream: polars/pyarrow tables, DuckDB relations' .arrow()."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


Logs = PathLike | Iterable[PathLike] | ArrowStreamExportable


def _paths(logs: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(logs, str | os.PathLike):
        return [os.fspath(logs)]
    return [os.fspath(p) for p in logs]


def _is_arrow(data: object) -> bool:
    return hasattr(data, "__arrow_c_stream__")


def _opt_path(path: PathLike | None) -> str | None:
    return os.fspath(path) if path is not None else None


def _in_job(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an engine call in a worker thread with a Job, so that Ctrl-C in the main thread
    stops it (within a block) instead of waiting for the whole read to finish."""
    job = _core.Job()
    return run_with_progress(lambda: call(*args, job=job, **kwargs), job, show=False)


def read_logs(
    paths: PathLike | Iterable[PathLike],
    *,
    columns: ColumnRules = None,
    preset: str | None = None,
    config: PathLike | _core.Config | None = None,
    rejects: PathLike | None = None,
    threads: int = 0,
    max_line: int = DEFAULT_MAX_LINE,
    max_inflate: int = DEFAULT_MAX_INFLATE,
) -> pl.DataFrame:
    """Log records in canonical columns (plus ``source`` and ``line``), as the engine reads
    them. For inspecting small files: every record is materialised. A file from which no
    record could be read raises :class:`NoRecordsError` (columns seen, a mapping to try).
    ``max_line`` and ``max_inflate`` bound the input as in :func:`wattledger.ingest`."""
    table, stats = _in_job(
        _core.read_logs,
        _paths(paths),
        columns=column_rules(columns),
        preset=preset,
        config=load_config(config) if config is not None else None,
        rejects=_opt_path(rejects),
        threads=threads,
        max_line=max_line,
        max_inflate=max_inflate,
    )
    check_readable(stats)
    return pl.DataFrame(table)


def validate(
    paths: PathLike | Iterable[PathLike],
    *,
    columns: ColumnRules = None,
    preset: str | None = None,
    config: PathLike | _core.Config | None = None,
    rejects: PathLike | None = None,
    threads: int = 0,
    max_line: int = DEFAULT_MAX_LINE,
    max_inflate: int = DEFAULT_MAX_INFLATE,
) -> list[dict[str, Any]]:
    """Per-file statistics (path, format, records, rejected, rejects by reason, columns found)
    without keeping records: a dry run of the readers. ``max_line`` and ``max_inflate`` bound
    the input as in :func:`wattledger.ingest`."""
    stats: list[dict[str, Any]] = _in_job(
        _core.validate,
        _paths(paths),
        columns=column_rules(columns),
        preset=preset,
        config=load_config(config) if config is not None else None,
        rejects=_opt_path(rejects),
        threads=threads,
        max_line=max_line,
        max_inflate=max_inflate,
    )
    return stats


def estimate(
    logs: Logs,
    *,
    config: PathLike | _core.Config | None = None,
    grid: PathLike | Iterable[PathLike] | _core.Grid = (),
    lifecycle: bool = False,
    columns: ColumnRules = None,
    preset: str | None = None,
    rejects: PathLike | None = None,
    threads: int = 0,
    memory_budget_cells: int = DEFAULT_MEMORY_BUDGET_CELLS,
    max_names: int = DEFAULT_MAX_NAMES,
    dedupe: bool = False,
    source_name: str = "<arrow>",
    site: str | None = None,
    grid_resolution: GridResolution = "hour",
    max_line: int = DEFAULT_MAX_LINE,
    max_inflate: int = DEFAULT_MAX_INFLATE,
) -> pl.DataFrame:
    """Hourly partial aggregates (methodology section 8, plus ``source``) of log files or of
    Arrow-exportable data (polars/pyarrow/DuckDB). Nothing is written to a ledger.

    ``site`` locates records with neither site nor zone (overrides the pack's ``[defaults]
    site``). ``grid`` entries are ``FILE`` or ``FILE@ZONE``; ``grid_resolution`` is the
    coarsest row spacing they may have (``"hour"``, ``"day"``, ``"month"``). ``max_names``
    caps the distinct values of each name column and status (see :func:`wattledger.ingest`).
    Each of the grid's warnings, then the engine's for the run, is emitted as a :class:`RunWarning`.
    Input from which no record could be read (misnamed columns) raises
    :class:`NoRecordsError` naming the columns seen and a mapping to try, rather than
    returning an empty frame; empty input gives an empty frame. ``max_line`` and
    ``max_inflate`` bound log files as in :func:`wattledger.ingest`."""
    cfg = load_config(config)
    grd = load_grid(grid, lifecycle, grid_resolution)
    options: dict[str, Any] = {
        "columns": column_rules(columns),
        "preset": preset,
        "rejects": _opt_path(rejects),
        "threads": threads,
        "memory_budget_cells": memory_budget_cells,
        "max_names": max_names,
        "dedupe": dedupe,
        "site": site,
    }
    with tempfile.TemporaryDirectory(prefix="wattledger-spill-") as spill_dir:
        if _is_arrow(logs):
            result = _core.estimate_arrow(
                logs, cfg, grd, source_name=source_name, spill_dir=spill_dir, **options
            )
            check_readable(result.files, arrow_columns(logs))
        else:
            result = _in_job(
                _core.estimate_files,
                _paths(logs),  # type: ignore[arg-type]
                cfg,
                grd,
                spill_dir=spill_dir,
                max_line=max_line,
                max_inflate=max_inflate,
                **options,
            )
            check_readable(result.files)
        frame = pl.DataFrame(result.aggregates())
        spills = list(result.spill_files)
        if spills:
            frame = merge_spills(frame, spills)
    for message in (*grd.warnings, *result.warnings):
        warnings.warn(message, RunWarning, stacklevel=2)
    return frame


def merge_spills(frame: pl.DataFrame, spill_files: list[str]) -> pl.DataFrame:
    """In-memory aggregates plus spilled rows, summed again by (source, section 8 keys)."""
    keys = ", ".join(("source", *KEY_COLUMNS))
    columns = ", ".join(AGGREGATE_COLUMNS)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("_in_memory", frame.to_arrow())
        merged = con.sql(
            f"""SELECT {keys}, {measure_sums_sql()}
                FROM (SELECT {columns} FROM _in_memory
                      UNION ALL SELECT {columns} FROM read_parquet(?))
                GROUP BY {keys} ORDER BY {keys}""",
            params=[spill_files],
        ).pl()
    finally:
        con.close()
    return merged.select(AGGREGATE_COLUMNS)
