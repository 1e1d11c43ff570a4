"""What the cluster engines (:mod:`wattledger.spark`, :mod:`wattledger.ray`) share: the work
shipped to a worker, the engine run there, and the reduction of the hourly partial aggregates.

The engine (``_core``) does all the arithmetic on the workers, on the same readers and kernel a
local run uses; this module only moves its inputs there (the pack's text and the grid files'
bytes, loaded once per worker process) and its outputs back (the aggregate rows as Arrow, each
file's statistics as plain values). The reduction of partials adds measures key by key with
SQL's SUM semantics: a measure null in every partial stays null, as the local engine leaves it.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from wattledger import _core, errors
from wattledger.errors import UsageError, WattledgerError
from wattledger.schema import AGGREGATE_COLUMNS, KEY_COLUMNS, MEASURE_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

#: The ledger's cell key with the file it came from: what a partial aggregate is summed by.
GROUP_COLUMNS: tuple[str, ...] = ("source", *KEY_COLUMNS)


@dataclass(frozen=True)
class GridFile:
    """One grid file's bytes, with the ``@ZONE`` of its ``FILE@ZONE`` spec (or None)."""

    name: str
    data: bytes
    zone: str | None


@dataclass(frozen=True)
class WorkerPlan:
    """Everything a worker needs to run the engine as the driver would: picklable, shipped once
    (a Spark broadcast, a Ray object), with ``key`` naming it in each worker's cache."""

    key: str
    config_text: str
    config_origin: str
    grid: tuple[GridFile, ...]
    lifecycle: bool
    grid_resolution: str
    #: ``_core.RunOptions`` keywords (without ``spill_dir``, ``threads``, ``source_name``).
    options: dict[str, Any] = field(default_factory=dict)


def _grid_file(spec: str) -> GridFile:
    """``FILE`` or ``FILE@ZONE``: a spec naming an existing file is a file (its name may hold
    an ``@``), as the engine reads it."""
    path, zone = spec, None
    if not os.path.exists(spec) and "@" in spec:
        path, zone = spec.rsplit("@", 1)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"grid file {path}: cannot read it ({exc.strerror}); check the path") from None
    return GridFile(os.path.basename(path), data, zone)


def make_plan(
    config: _core.Config,
    grid: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | _core.Grid,
    *,
    lifecycle: bool = False,
    grid_resolution: str = "hour",
    **options: Any,
) -> WorkerPlan:
    """The plan for ``config``, the grid files ``grid`` and the run's options. The grid goes as
    the files' bytes, so the workers parse exactly what the driver's local run would."""
    if isinstance(grid, _core.Grid):
        raise UsageError(
            "a cluster engine needs the grid files (paths), not a loaded Grid: it ships their bytes"
        )
    import hashlib

    specs = [os.fspath(grid)] if isinstance(grid, str | os.PathLike) else [os.fspath(g) for g in grid]
    files = tuple(_grid_file(s) for s in specs)
    digest = hashlib.sha256()
    for part in (config.text, config.origin, str(lifecycle), grid_resolution, repr(sorted(options.items()))):
        digest.update(part.encode() + b"\0")
    for g in files:
        digest.update(f"{g.name}@{g.zone}\0".encode() + hashlib.sha256(g.data).digest())
    return WorkerPlan(
        key=digest.hexdigest(),
        config_text=config.text,
        config_origin=config.origin,
        grid=files,
        lifecycle=lifecycle,
        grid_resolution=grid_resolution,
        options=dict(options),
    )


@dataclass
class _Loaded:
    config: _core.Config
    grid: _core.Grid
    work_dir: str
    estimators: dict[str, _core.Estimator] = field(default_factory=dict)


#: Per worker process: the plans loaded (pack parsed, grid read) by key. A Python worker runs
#: many tasks; loading once per process is what keeps the per-task cost to the records.
_LOADED: dict[str, _Loaded] = {}
_LOCK = threading.Lock()


def _cleanup() -> None:
    import shutil

    for loaded in _LOADED.values():
        shutil.rmtree(loaded.work_dir, ignore_errors=True)


atexit.register(_cleanup)


def _load(plan: WorkerPlan) -> _Loaded:
    import tempfile

    with _LOCK:
        loaded = _LOADED.get(plan.key)
        if loaded is not None:
            return loaded
        work_dir = tempfile.mkdtemp(prefix="wattledger-worker-")
        specs = []
        for i, g in enumerate(plan.grid):
            # One directory per file keeps its own name (the grid's messages cite it).
            path = Path(work_dir, f"grid{i}", g.name)
            path.parent.mkdir()
            path.write_bytes(g.data)
            specs.append(f"{path}@{g.zone}" if g.zone is not None else str(path))
        config = _core.Config.from_toml(plan.config_text, plan.config_origin)
        grid = (
            _core.Grid.from_paths(specs, lifecycle=plan.lifecycle, resolution=plan.grid_resolution)
            if specs
            else _core.Grid.empty()
        )
        loaded = _Loaded(config, grid, work_dir)
        _LOADED[plan.key] = loaded
        return loaded


def estimator(plan: WorkerPlan, source_name: str = "<arrow>") -> _core.Estimator:
    """The worker's estimator for ``plan`` (and an Arrow input's ``source_name``): built once
    per worker process, then reused by every task and batch it runs. One thread per task: the
    cluster runs one task per core."""
    loaded = _load(plan)
    with _LOCK:
        est = loaded.estimators.get(source_name)
        if est is None:
            spill = Path(loaded.work_dir, f"spill{len(loaded.estimators)}")
            spill.mkdir()
            options = _core.RunOptions(
                **plan.options, threads=1, spill_dir=str(spill), source_name=source_name
            )
            est = _core.Estimator(loaded.config, loaded.grid, options)
            loaded.estimators[source_name] = est
        return est


@dataclass(frozen=True)
class FileStatsRow:
    """A file's statistics as plain values (``_core.FileStats`` does not cross processes):
    the same attributes, so the ingest's bookkeeping reads it as it reads the engine's."""

    path: str
    format: str
    compression: str | None
    size_bytes: int
    blake3: str | None
    hashed_bytes: int | None
    records: int
    rejected: int
    rejects: dict[str, int]
    blank_lines: int
    skipped: int
    skip_reasons: dict[str, int]
    columns_found: list[str]

    @staticmethod
    def of(stats: _core.FileStats) -> FileStatsRow:
        return FileStatsRow(
            path=stats.path,
            format=stats.format,
            compression=stats.compression,
            size_bytes=stats.size_bytes,
            blake3=stats.blake3,
            hashed_bytes=stats.hashed_bytes,
            records=stats.records,
            rejected=stats.rejected,
            rejects=dict(stats.rejects),
            blank_lines=stats.blank_lines,
            skipped=stats.skipped,
            skip_reasons=dict(stats.skip_reasons),
            columns_found=list(stats.columns_found),
        )


@dataclass(frozen=True)
class NameRow:
    """A raw name the pack's aliases changed in one file (``_core.SourceName`` as values)."""

    path: str
    kind: str
    raw: str
    resolved: str
    records: int


@dataclass(frozen=True)
class TaskOutput:
    """One task's run: its partial aggregates and what it read, or the engine's error (its
    class name and message) for the driver to raise as a local run would."""

    aggregates: pa.Table
    files: list[FileStatsRow]
    names: list[NameRow]
    warnings: list[str]
    error: tuple[str, str] | None = None


def aggregate_schema() -> pa.Schema:
    """The partial aggregates as the cluster engines carry them: plain strings (no
    dictionaries, which Spark and Ray's grouping do not take), hours in UTC microseconds."""
    import pyarrow as pa

    fields = [pa.field("source", pa.string(), nullable=False)]
    fields.append(pa.field("hour", pa.timestamp("us", tz="UTC"), nullable=False))
    fields += [pa.field(k, pa.string()) for k in KEY_COLUMNS[1:]]
    fields.append(pa.field("records", pa.int64()))
    fields += [pa.field(m, pa.float64()) for m in MEASURE_COLUMNS[1:]]
    return pa.schema(fields)


def plain(table: pa.Table) -> pa.Table:
    """``table`` (the engine's aggregate rows) in :func:`aggregate_schema`."""
    schema = aggregate_schema()
    return table.select(list(AGGREGATE_COLUMNS)).cast(schema)


def _output(result: _core.EstimateResult) -> TaskOutput:
    return TaskOutput(
        aggregates=plain(result.aggregates()),
        files=[FileStatsRow.of(f) for f in result.files],
        names=[NameRow(n.path, n.kind, n.raw, n.resolved, n.records) for n in result.names],
        warnings=list(result.warnings),
    )


def run_files(plan: WorkerPlan, paths: Sequence[str]) -> TaskOutput:
    """Read and estimate ``paths`` on this worker with the engine's own file readers (same
    rejects, same per-file counts and content hash as a local run). Bad input (a damaged
    gzip, a bomb) comes back as the task's ``error``, not as the cluster's stack trace."""
    try:
        return _output(estimator(plan, "<files>").estimate_files(list(paths)))
    except WattledgerError as exc:
        return TaskOutput(aggregate_schema().empty_table(), [], [], [], (type(exc).__name__, str(exc)))


def task_json(out: TaskOutput) -> str:
    """A task's statistics (not its cells) as one JSON text, to travel beside the cells."""
    import json

    return json.dumps(
        {
            "files": [asdict(f) for f in out.files],
            "names": [asdict(n) for n in out.names],
            "warnings": out.warnings,
            "error": out.error,
        }
    )


def read_tasks(texts: Iterable[str]) -> tuple[list[FileStatsRow], list[NameRow], list[str]]:
    """The tasks' statistics from :func:`task_json`, in file order; the first task's error
    is raised as the engine's own exception class (what a local run would raise)."""
    import json

    files: list[FileStatsRow] = []
    names: list[NameRow] = []
    warnings: list[list[str]] = []
    for text in texts:
        task = json.loads(text)
        if task["error"] is not None:
            kind, message = task["error"]
            error = getattr(errors, kind, WattledgerError)
            raise (
                error if isinstance(error, type) and issubclass(error, WattledgerError) else WattledgerError
            )(message)
        files += [FileStatsRow(**f) for f in task["files"]]
        names += [NameRow(**n) for n in task["names"]]
        warnings.append(task["warnings"])
    return files, names, merge_warnings(warnings)


def run_batches(plan: WorkerPlan, batches: Iterator[pa.RecordBatch], source_name: str) -> TaskOutput | None:
    """Estimate Arrow record batches (one task's share of a DataFrame/Dataset) as one run
    named ``source_name``; None when there was no batch."""
    import pyarrow as pa

    first = next(batches, None)
    if first is None:
        return None

    def chained() -> Iterator[pa.RecordBatch]:
        yield first
        yield from batches

    reader = pa.RecordBatchReader.from_batches(first.schema, chained())
    return _output(estimator(plan, source_name).estimate_arrow(reader))


def reduce_table(table: pa.Table, by: Sequence[str] = GROUP_COLUMNS) -> pa.Table:
    """Sum partial aggregates by ``by`` (pyarrow's hash sum: nulls skipped, null when every
    value is null, i.e. SQL's SUM). Row order: by the keys, so two runs compare row by row."""
    measures = [(m, "sum") for m in MEASURE_COLUMNS]
    grouped = table.group_by(list(by), use_threads=False).aggregate(measures)
    renamed = {f"{m}_sum": m for m in MEASURE_COLUMNS}
    grouped = grouped.rename_columns([renamed.get(n, n) for n in grouped.column_names])
    names = [c for c in aggregate_schema().names if c in by or c in MEASURE_COLUMNS]
    return grouped.select(names).sort_by([(k, "ascending") for k in by])


def merge_warnings(parts: Iterable[Sequence[str]]) -> list[str]:
    """The tasks' warnings, each text once, in first-seen order."""
    return list(dict.fromkeys(w for part in parts for w in part))


@dataclass(frozen=True)
class ClusterRun:
    """A cluster engine's run over files: the partial aggregates reduced on the cluster (one
    row per file and cell, :func:`aggregate_schema`) and what the files' readers found."""

    aggregates: pa.Table
    files: list[FileStatsRow]
    names: list[NameRow]
    warnings: list[str]


class ClusterEngine(Protocol):
    """Runs the engine's file readers and kernel on a cluster, one task per file."""

    #: For messages and the progress line: "Spark", "Ray".
    name: str

    def run_files(self, plan: WorkerPlan, paths: Sequence[str], *, show: bool) -> ClusterRun: ...


def refuse_unsupported(engine: str, *, rejects: object, dedupe: bool, node_energy: bool = False) -> None:
    """Options a distributed run cannot honour as a local one does, refused before any work:
    ``dedupe`` needs one set of request ids across all files; a rejects file would be written
    by every task at once; node energy is shared over every request of a node in an interval,
    whichever file it is in (two passes over all the logs, not one task per file)."""
    if node_energy:
        raise UsageError(
            f"--node-energy shares each node's metered energy over requests from every file: use "
            f"--engine local, not {engine}"
        )
    if dedupe:
        raise UsageError(
            f"--dedupe needs one process to see every request id: use --engine local, not {engine}"
        )
    if rejects is not None:
        raise UsageError(
            f"--rejects writes one file from one process: use --engine local to keep rejects, not {engine} "
            "(the rejects are still counted per file in the ledger)"
        )
