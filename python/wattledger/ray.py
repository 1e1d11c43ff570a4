"""The engine on Ray Data: the same readers and kernel in each Ray worker, via ``map_batches``.

``estimate(ds, ...)`` turns a Ray Dataset of log records into hourly partial aggregates (one
set per block); :func:`reduce` sums them by key. ``ingest(paths, ledger=..., ...)`` reads
files one task per file with the engine's own readers, sums the partials grouped by file on
the cluster and commits the small result through :func:`wattledger.ingest` (same skips,
identity and transaction as a local run).

The pack and the grid files' bytes travel once, as one object in Ray's object store; each
worker process parses them once (:mod:`wattledger.partials`). ray is imported here only.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from wattledger import _core
from wattledger.config import load_config
from wattledger.ingest import IngestSummary
from wattledger.ingest import ingest as local_ingest
from wattledger.partials import (
    GROUP_COLUMNS,
    ClusterRun,
    WorkerPlan,
    make_plan,
    plain,
    read_tasks,
    reduce_table,
    run_batches,
    run_files,
    task_json,
)
from wattledger.progress import phase
from wattledger.schema import KEY_COLUMNS, MEASURE_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa
    from ray.data import Dataset

PathLike = str | os.PathLike[str]

#: The object store of a Ray this module starts: small, so a local run fits beside the rest
#: of the machine (the partials are small; the records stay in the workers' batches).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


def init(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to the Ray at ``address`` or, with None, start a local one (``num_cpus``
    workers, default every core) unless this process is connected already. Ray's own logs
    and progress bars are kept off the terminal: wattledger draws its own progress."""
    import ray

    if ray.is_initialized():
        return
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is not None:
        ray.init(address=address, **quiet)
    else:
        ray.init(
            num_cpus=num_cpus,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            include_dashboard=False,
            **quiet,
        )
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False


def _plan(shipped: Any) -> WorkerPlan:
    """The plan from its object-store reference (Ray passes ``fn_kwargs`` through as is): a
    worker fetches it once per task; parsing it is cached per process by its key."""
    import ray

    plan = ray.get(shipped)
    assert isinstance(plan, WorkerPlan)
    return plan


def _files_task(batch: pa.Table, plan: Any) -> pa.Table:
    """One file (a batch of one path): its cells, tagged with its statistics on a last row."""
    import pyarrow as pa

    out = run_files(_plan(plan), batch.column("path").to_pylist())
    cells = out.aggregates.append_column("task", pa.nulls(out.aggregates.num_rows, pa.string()))
    stats = {c: pa.nulls(1, t) for c, t in zip(cells.column_names, cells.schema.types, strict=True)}
    stats["task"] = pa.array([task_json(out)], pa.string())
    return pa.concat_tables([cells, pa.Table.from_pydict(stats, schema=cells.schema)])


def _cells(table: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    return table.filter(pc.is_null(table["task"])).drop_columns(["task"])


def _tasks(table: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    return table.filter(pc.is_valid(table["task"])).select(["task"])


def _reduce_group(table: pa.Table) -> pa.Table:
    return reduce_table(table, GROUP_COLUMNS)


class RayEngine:
    """Runs :func:`wattledger.ingest`'s reading on Ray: one task per file."""

    name = "Ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus

    def run_files(self, plan: WorkerPlan, paths: Sequence[str], *, show: bool) -> ClusterRun:
        import ray
        import ray.data

        with phase(f"starting {self.name}", show=show):
            # On first use: a run whose files are all skipped starts none.
            init(self.address, self.num_cpus)

        shipped = ray.put(plan)
        files = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=len(paths))
        with phase(f"reading {len(paths):,} files on {self.name}", show=show):
            task = functools.partial(_files_task, plan=shipped)
            out = files.map_batches(task, batch_format="pyarrow", batch_size=1).materialize()
            tasks = out.map_batches(_tasks, batch_format="pyarrow").take_all()
            # The grouped sum on the cluster: per file, every cell key of that file summed.
            cells = out.map_batches(_cells, batch_format="pyarrow")
            reduced = cells.groupby("source", num_partitions=min(len(paths), _cpus())).map_groups(
                _reduce_group, batch_format="pyarrow"
            )
            table = _concat(reduced)
        file_rows, names, warnings = read_tasks(row["task"] for row in tasks)
        return ClusterRun(plain(table), file_rows, names, warnings)


def _cpus() -> int:
    """Partitions of a grouped sum: one per CPU of the cluster (Ray's default, 200, is for
    big shuffles; the partials are small)."""
    import ray

    cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
    return max(1, int(cpus))


def _concat(ds: Dataset) -> pa.Table:
    import pyarrow as pa

    from wattledger.partials import aggregate_schema

    tables: list[pa.Table] = list(ds.iter_batches(batch_format="pyarrow", batch_size=None))
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return aggregate_schema().empty_table()
    return pa.concat_tables(tables).select(aggregate_schema().names)


def engine(address: str | None = None, num_cpus: int | None = None) -> RayEngine:
    """A cluster engine for :func:`wattledger.ingest` (``cluster=``) on the Ray at ``address``
    (None: a local Ray, see :func:`init`), connected when the first file is to be read."""
    return RayEngine(address, num_cpus)


def estimate(
    ds: Dataset,
    *,
    config: PathLike | _core.Config | None = None,
    grid: PathLike | Iterable[PathLike] = (),
    lifecycle: bool = False,
    grid_resolution: str = "hour",
    columns: Sequence[str] = (),
    preset: str | None = None,
    site: str | None = None,
    max_names: int = _core.DEFAULT_MAX_NAMES,
) -> Dataset:
    """Hourly partial aggregates of ``ds`` (log records, canonical or mapped columns): the
    ledger's key and measure columns, one set per block, computed by the engine in each
    worker; :func:`reduce` sums them to the local engine's cells. Rejected records are left
    out as in a local run."""
    import ray

    plan = make_plan(
        load_config(config),
        grid,
        lifecycle=lifecycle,
        grid_resolution=grid_resolution,
        columns=list(columns),
        preset=preset,
        site=site,
        max_names=max_names,
    )
    task = functools.partial(_partials, plan=ray.put(plan))
    return ds.map_batches(task, batch_format="pyarrow", batch_size=None)


def _partials(batch: pa.Table, plan: Any) -> pa.Table:
    from wattledger.partials import aggregate_schema

    out = run_batches(_plan(plan), iter(batch.to_batches()), "<ray>")
    keep = [*KEY_COLUMNS, *MEASURE_COLUMNS]
    if out is None:
        return aggregate_schema().empty_table().select(keep)
    return out.aggregates.select(keep)


def reduce(partials: Dataset) -> Dataset:
    """Partial aggregates summed by the ledger's key on the cluster (null when every partial is
    null, SQL's SUM), grouped by hour (never null) and then by the whole key in each group."""
    by_hour = partials.groupby("hour", num_partitions=_cpus())
    return by_hour.map_groups(_reduce_by_key, batch_format="pyarrow")


def _reduce_by_key(table: pa.Table) -> pa.Table:
    return reduce_table(table, KEY_COLUMNS)


def ingest(
    paths: PathLike | Iterable[PathLike],
    *,
    ledger: PathLike,
    config: PathLike | _core.Config | None = None,
    grid: PathLike | Iterable[PathLike] = (),
    address: str | None = None,
    **options: Any,
) -> IngestSummary:
    """:func:`wattledger.ingest` with the reading on Ray (``address``; None: a local Ray):
    files one task per file, read by the engine's readers, so the result, the rejects and the
    skips are a local run's. ``options`` are :func:`wattledger.ingest`'s."""
    return local_ingest(paths, ledger=ledger, config=config, grid=grid, cluster=engine(address), **options)
