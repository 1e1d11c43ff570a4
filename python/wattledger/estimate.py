"""Engine calls that return data to Python: read, validate and estimate logs without a ledger.

These are thin: argument normalisation into one ``_core.RunOptions``, then one call of a
``_core.Reader`` or ``_core.Estimator``, then Arrow -> polars with no copy. Cells flushed to
spill files under the memory budget are merged back by the engine as it hands the cells over
(each cell once, nulls kept apart from zero as the methodology requires): nothing is summed
again here.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, TypeVar

from wattledger import _core
from wattledger._deferred import deferred
from wattledger.config import ColumnRules, GridResolution, column_rules, load_config, load_grid
from wattledger.errors import OutputError, RunWarning, UsageError
from wattledger.ingest import (
    DEFAULT_MAX_INFLATE,
    DEFAULT_MAX_LINE,
    DEFAULT_MAX_NAMES,
    DEFAULT_MEMORY_BUDGET_CELLS,
)
from wattledger.mapping import arrow_columns, check_readable
from wattledger.progress import run_with_progress, should_show
from wattledger.storage import StorageOptions, storage_dict

if TYPE_CHECKING:
    import polars as pl
else:
    pl = deferred("polars")

PathLike = str | os.PathLike[str]
T = TypeVar("T")


class ArrowStreamExportable(Protocol):
    """Anything exporting an Arrow C stream: polars/pyarrow tables, DuckDB relations' .arrow()."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


if TYPE_CHECKING:
    # Only for annotations: polars is imported when first used, not to build this alias.
    Logs = PathLike | Iterable[PathLike] | ArrowStreamExportable | pl.LazyFrame


def _paths(logs: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(logs, str | os.PathLike):
        return [os.fspath(logs)]
    return [os.fspath(p) for p in logs]


def _is_arrow(data: object) -> TypeGuard[ArrowStreamExportable]:
    return hasattr(data, "__arrow_c_stream__")


def _is_lazy(data: object) -> TypeGuard[pl.LazyFrame]:
    # A LazyFrame exists only once polars is imported: no import just to ask.
    polars = sys.modules.get("polars")
    return polars is not None and isinstance(data, polars.LazyFrame)


def _lazy_stream(frame: pl.LazyFrame) -> tuple[ArrowStreamExportable | pl.DataFrame, list[str]]:
    """A LazyFrame's rows as an Arrow C stream (and its column names), run on the streaming
    engine batch by batch as the engine reads them, so the whole result is never held at once.

    A plan that cannot run (an unknown column) is one :class:`UsageError` line, not Polars'
    plan dump. A polars without ``collect_batches`` (before 1.33) collects the frame first."""
    try:
        names = frame.collect_schema().names()
        if hasattr(frame, "collect_batches"):
            return frame.collect_batches(engine="streaming", maintain_order=True), names
        return frame.collect(engine="streaming"), names
    except pl.exceptions.PolarsError as exc:
        raise UsageError(f"the LazyFrame's query cannot run: {_first_line(exc)}") from None


def _first_line(error: BaseException | str) -> str:
    return next((line for line in str(error).splitlines() if line.strip()), "unknown error")


#: What the engine puts before the producer's own message when an Arrow C stream fails.
_STREAM_ERROR = "C Data interface error: "


def _opt_path(path: PathLike | None) -> str | None:
    return os.fspath(path) if path is not None else None


def _in_job(call: Callable[..., T], *args: Any) -> T:
    """Run an engine call in a worker thread with a Job, so that Ctrl-C in the main thread
    stops it (within a block) instead of waiting for the whole read to finish."""
    job = _core.Job()
    return run_with_progress(lambda: call(*args, job=job), job, show=False)


def _reader(
    columns: ColumnRules,
    preset: str | None,
    config: PathLike | _core.Config | None,
    rejects: PathLike | None,
    threads: int,
    max_line: int,
    max_inflate: int,
    storage_options: StorageOptions,
) -> _core.Reader:
    options = _core.RunOptions(
        columns=column_rules(columns),
        preset=preset,
        rejects=_opt_path(rejects),
        threads=threads,
        max_line=max_line,
        max_inflate=max_inflate,
        storage_options=storage_dict(storage_options),
    )
    return _core.Reader(options, load_config(config) if config is not None else None)


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
    storage_options: StorageOptions = None,
) -> pl.DataFrame:
    """Log records in canonical columns (plus ``source`` and ``line``), as the engine reads
    them. For inspecting small files: every record is materialised. A file from which no
    record could be read raises :class:`NoRecordsError` (columns seen, a mapping to try).
    ``max_line`` and ``max_inflate`` bound the input as in :func:`wattledger.ingest`; paths may
    be object storage URLs, read with ``storage_options`` (see :func:`wattledger.ingest`)."""
    reader = _reader(columns, preset, config, rejects, threads, max_line, max_inflate, storage_options)
    table, stats = _in_job(reader.read, _paths(paths))
    check_readable(stats)
    return pl.DataFrame(table)


def validate_files(
    paths: PathLike | Iterable[PathLike],
    *,
    columns: ColumnRules = None,
    preset: str | None = None,
    config: PathLike | _core.Config | None = None,
    rejects: PathLike | None = None,
    threads: int = 0,
    max_line: int = DEFAULT_MAX_LINE,
    max_inflate: int = DEFAULT_MAX_INFLATE,
    storage_options: StorageOptions = None,
) -> list[_core.FileStats]:
    """:func:`validate` with the engine's typed per-file statistics (the CLI's ``validate``)."""
    reader = _reader(columns, preset, config, rejects, threads, max_line, max_inflate, storage_options)
    return _in_job(reader.validate, _paths(paths))


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
    storage_options: StorageOptions = None,
) -> list[dict[str, Any]]:
    """Per-file statistics (path, format, records, rejected, rejects by reason, columns found)
    without keeping records: a dry run of the readers. ``max_line`` and ``max_inflate`` bound
    the input as in :func:`wattledger.ingest`; paths may be object storage URLs, read with
    ``storage_options``."""
    stats = validate_files(
        paths,
        columns=columns,
        preset=preset,
        config=config,
        rejects=rejects,
        threads=threads,
        max_line=max_line,
        max_inflate=max_inflate,
        storage_options=storage_options,
    )
    return [stats_dict(s) for s in stats]


def stats_dict(stats: _core.FileStats) -> dict[str, Any]:
    """The public API's dict of a file's statistics (the keys :func:`validate` documents)."""
    return {
        "path": stats.path,
        "format": stats.format,
        "compression": stats.compression,
        "size_bytes": stats.size_bytes,
        "blake3": stats.blake3,
        "hashed_bytes": stats.hashed_bytes,
        "records": stats.records,
        "rejected": stats.rejected,
        "rejects": dict(stats.rejects),
        "blank_lines": stats.blank_lines,
        "skipped": stats.skipped,
        "skip_reasons": dict(stats.skip_reasons),
        "columns_found": list(stats.columns_found),
    }


@dataclass(frozen=True)
class EstimateSummary:
    """What :func:`estimate_parquet` wrote and read: the output, its rows, the per-file
    statistics (records, rejects by reason), the run's warnings, and the run's totals."""

    out: Path
    #: True: one row per accepted record; False: hourly aggregates.
    per_record: bool
    rows: int
    files: list[_core.FileStats]
    duplicates: int
    warnings: list[str]
    #: Facility energy (kWh) and location-based emissions (kg); None when none was estimated
    #: (or, for emissions, none had a grid intensity).
    energy_kwh: float | None
    co2e_location_kg: float | None

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)


#: A run of one estimator method: the engine's result and, for per-record rows kept in memory,
#: the rows (an Arrow table).
_Run = tuple[_core.EstimateResult, Any]


def _estimate_run(
    logs: Logs,
    estimator: _core.Estimator,
    *,
    per_record: bool,
    out: PathLike | None,
    show: bool,
) -> _Run:
    """One engine run over files, Arrow data or a LazyFrame: the hourly aggregates, or with
    ``per_record`` one row per record (streamed to ``out`` when given). Unreadable input
    raises :class:`NoRecordsError`."""
    target = _opt_path(out)

    def on_arrow(data: Any) -> _Run:
        if per_record:
            return estimator.estimate_records_arrow(data, target)
        return estimator.estimate_arrow(data), None

    if _is_lazy(logs):
        stream, names = _lazy_stream(logs)
        try:
            run = on_arrow(stream)
        except _core.InputError as exc:
            # A query that fails while it streams (a bad cast, a missing file) reaches the
            # engine as an error of the Arrow stream, carrying Polars' multi-line text:
            # say it was the query, in one line.
            polars_text = str(exc).split(_STREAM_ERROR, 1)[-1]
            raise UsageError(f"the LazyFrame's query failed: {_first_line(polars_text)}") from None
        check_readable(run[0].files, names)
        return run
    if _is_arrow(logs):
        run = on_arrow(logs)
        check_readable(run[0].files, arrow_columns(logs))
        return run
    paths = _paths(logs)  # type: ignore[arg-type]
    job = _core.Job()
    if per_record:
        run = run_with_progress(
            lambda: estimator.estimate_records_files(paths, target, job=job), job, show=show
        )
    else:
        run = run_with_progress(lambda: (estimator.estimate_files(paths, job=job), None), job, show=show)
    check_readable(run[0].files)
    return run


def _estimator(
    config: PathLike | _core.Config | None,
    grd: _core.Grid,
    spill_dir: str,
    options: dict[str, Any],
) -> _core.Estimator:
    return _core.Estimator(load_config(config), grd, _core.RunOptions(spill_dir=spill_dir, **options))


def _options(
    columns: ColumnRules,
    preset: str | None,
    rejects: PathLike | None,
    threads: int,
    memory_budget_cells: int,
    max_names: int,
    dedupe: bool,
    site: str | None,
    max_line: int,
    max_inflate: int,
    source_name: str,
    storage_options: StorageOptions = None,
) -> dict[str, Any]:
    return {
        "columns": column_rules(columns),
        "preset": preset,
        "rejects": _opt_path(rejects),
        "threads": threads,
        "memory_budget_cells": memory_budget_cells,
        "max_names": max_names,
        "dedupe": dedupe,
        "site": site,
        "max_line": max_line,
        "max_inflate": max_inflate,
        "source_name": source_name,
        "storage_options": storage_dict(storage_options),
    }


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
    storage_options: StorageOptions = None,
    per_record: bool = False,
) -> pl.DataFrame:
    """Hourly partial aggregates (methodology section 8, plus ``source``) of log files or of
    Arrow-exportable data (polars/pyarrow/DuckDB). Nothing is written to a ledger.

    ``per_record=True`` returns one row per accepted record instead, in input order (file by
    file, line by line), in the columns of ``wattledger._core.PER_RECORD_COLUMNS``
    (``docs/per-record.md``): the names the ledger stores, the method, the record's weighted
    ``accelerator_wh`` (with ``_low``/``_high``), ``facility_wh``, ``co2e_location_g``,
    ``co2e_market_g`` (null where unresolved or unestimated), the inputs as the kernel used
    them, ``source`` and ``line``. Each row is exactly what the record adds to its hourly cell:
    summed per cell the rows give the aggregates. Every row is held in memory as one polars
    DataFrame; for large inputs use :func:`estimate_parquet`, which streams the rows from the
    engine to a Parquet file (read it back lazily with ``polars.scan_parquet`` or in batches
    with ``pyarrow.parquet.ParquetFile.iter_batches``).

    A polars LazyFrame is run on Polars' streaming engine and handed to the engine batch by
    batch (``collect_batches``, an Arrow C stream), not collected first; its result is the
    one its collected DataFrame gives.

    ``site`` locates records with neither site nor zone (overrides the pack's ``[defaults]
    site``). ``grid`` entries are ``FILE`` or ``FILE@ZONE``; ``grid_resolution`` is the
    coarsest row spacing they may have (``"hour"``, ``"day"``, ``"month"``). ``max_names``
    caps the distinct values of each name column and status (see :func:`wattledger.ingest`).
    Each of the grid's warnings, then the engine's for the run, is emitted as a :class:`RunWarning`.
    Input from which no record could be read (misnamed columns) raises
    :class:`NoRecordsError` naming the columns seen and a mapping to try, rather than
    returning an empty frame; empty input gives an empty frame. ``max_line`` and
    ``max_inflate`` bound log files as in :func:`wattledger.ingest`; log paths may be object
    storage URLs, read with ``storage_options`` (see :func:`wattledger.ingest`)."""
    grd = load_grid(grid, lifecycle, grid_resolution)
    options = _options(
        columns,
        preset,
        rejects,
        threads,
        memory_budget_cells,
        max_names,
        dedupe,
        site,
        max_line,
        max_inflate,
        source_name,
        storage_options,
    )
    with tempfile.TemporaryDirectory(prefix="wattledger-spill-") as spill_dir:
        estimator = _estimator(config, grd, spill_dir, options)
        result, rows = _estimate_run(logs, estimator, per_record=per_record, out=None, show=False)
        # Inside the block: the engine merges the spill files as it hands the cells over.
        frame = pl.DataFrame(rows if per_record else result.aggregates())
        run_warnings = result.warnings
        del result
    for message in (*grd.warnings, *run_warnings):
        warnings.warn(message, RunWarning, stacklevel=2)
    return frame


def estimate_parquet(
    logs: Logs,
    out: PathLike,
    *,
    per_record: bool = True,
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
    storage_options: StorageOptions = None,
    progress: bool | None = False,
) -> EstimateSummary:
    """:func:`estimate` written to the Parquet file ``out``: with ``per_record`` (the default)
    one row per accepted record, streamed from the engine batch by batch as the input is read
    (memory does not grow with the number of records); else the hourly aggregates.

    Atomic: the file is written beside ``out`` under a temporary name and moved into place
    only when the run succeeds; on an error or Ctrl-C, ``out`` is left as it was. A missing
    or unwritable directory fails before any input is read. The grid's and the run's warnings
    are in the summary (not emitted). ``progress``: a bar on stderr (None: on a terminal)."""
    grd = load_grid(grid, lifecycle, grid_resolution)
    options = _options(
        columns,
        preset,
        rejects,
        threads,
        memory_budget_cells,
        max_names,
        dedupe,
        site,
        max_line,
        max_inflate,
        source_name,
        storage_options,
    )
    target = Path(out)
    with tempfile.TemporaryDirectory(prefix="wattledger-spill-") as spill_dir:
        estimator = _estimator(config, grd, spill_dir, options)
        if per_record:
            result, _ = _estimate_run(
                logs, estimator, per_record=True, out=target, show=should_show(progress)
            )
            aggregates = pl.DataFrame(result.aggregates())
            rows = sum(f.records for f in result.files) - result.duplicates
        else:
            # The aggregates are cells (bounded by hours x names, not records): written from
            # memory, beside the target first so that a failure leaves it as it was.
            check_output_dir(target)
            result, _ = _estimate_run(logs, estimator, per_record=False, out=None, show=should_show(progress))
            aggregates = pl.DataFrame(result.aggregates())
            write_parquet_atomically(aggregates, target)
            rows = aggregates.height
        summary = EstimateSummary(
            out=target,
            per_record=per_record,
            rows=rows,
            files=result.files,
            duplicates=result.duplicates,
            warnings=[*grd.warnings, *result.warnings],
            energy_kwh=_total(aggregates, "energy_kwh"),
            co2e_location_kg=_total(aggregates, "co2e_location_kg"),
        )
        del result
    return summary


def _total(frame: pl.DataFrame, column: str) -> float | None:
    """A column's sum over the run's cells, None when every cell is null (nothing estimated)."""
    if frame.height == 0 or frame[column].null_count() == frame.height:
        return None
    return float(frame[column].sum())


def check_output_dir(target: Path) -> None:
    """An output file's directory exists and the target is not a directory (before any input
    is read, as the engine checks a per-record output)."""
    if target.is_dir():
        raise OutputError(f"{target}: is a directory; give a file name such as estimates.parquet")
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(f"{target}: no such directory {parent}; create it first")


def write_parquet_atomically(frame: pl.DataFrame, target: Path) -> None:
    """Write ``frame`` beside ``target`` and rename it into place (never half-written)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        frame.write_parquet(tmp, compression="zstd")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
