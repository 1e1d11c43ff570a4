"""The engine on Spark: the same readers and kernel in each Python worker, through ``mapInArrow``.

``estimate(df, ...)`` turns a DataFrame of log records into hourly partial aggregates (one set
per partition; :func:`reduce` sums them). ``ingest(paths_or_df, ledger=..., ...)`` reads files
one task per file with the engine's own readers (rejects, per-file counts and the content hash
exactly as a local run), sums the partials on the cluster, collects the small result and
commits it through :func:`wattledger.ingest` (same skips, identity and transaction).

The pack and the grid files go to the workers once, as a broadcast of their text and bytes;
each Python worker parses them once (:mod:`wattledger.partials`). pyspark is imported here
only, when one of these functions runs: ``import wattledger`` does not pay for it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from wattledger import _core
from wattledger.config import load_config
from wattledger.errors import UsageError
from wattledger.ingest import IngestSummary
from wattledger.ingest import ingest as local_ingest
from wattledger.partials import (
    GROUP_COLUMNS,
    ClusterRun,
    TaskOutput,
    WorkerPlan,
    make_plan,
    plain,
    read_tasks,
    run_batches,
    run_files,
    task_json,
)
from wattledger.progress import Phase, phase
from wattledger.schema import KEY_COLUMNS, MEASURE_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

PathLike = str | os.PathLike[str]

#: The column of :func:`_task_schema` holding one task's file statistics (JSON); null on the
#: rows of cells.
_TASK = "task"


def session(master: str = "local[*]") -> SparkSession:
    """The active Spark session, else a new one on ``master`` for wattledger: UTC session time
    (hours are UTC), Spark's console progress off (wattledger draws its own), the workers on
    this interpreter (so they import this wattledger).

    The JVM's own output (its start banner, a JDK notice, Spark's log at ERROR) goes to
    ``wattledger-spark-UID/spark-driver.log`` in the temporary directory, not into the run's
    output: a failing job's error still reaches Python with Spark's message."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # One directory per user, reused: each run's log replaces the last one's.
    logs = Path(tempfile.gettempdir(), f"wattledger-spark-{os.getuid()}")
    logs.mkdir(mode=0o700, exist_ok=True)
    log_conf = logs / "log4j2.properties"
    log_conf.write_text(_LOG4J2)
    conf = (
        SparkConf()
        .setMaster(master)
        .setAppName("wattledger")
        .set("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_conf}")
        .set("spark.log.level", "ERROR")
        .set("spark.sql.session.timeZone", "UTC")
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.ui.enabled", "false")
        .set("spark.sql.shuffle.partitions", "8")
    )
    with open(logs / "spark-driver.log", "wb") as jvm_out:
        gateway = launch_gateway(conf, popen_kwargs={"stdout": jvm_out, "stderr": jvm_out})  # type: ignore[no-untyped-call]
    with _quiet():
        context = SparkContext(conf=conf, gateway=gateway)
        return SparkSession(context)


_LOG4J2 = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


@contextmanager
def _quiet() -> Iterator[None]:
    """pyspark warns that it "does not yet fully support pandas >= 3" whenever it checks for
    pandas, though ``mapInArrow`` does not use pandas: not the user's concern."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support", category=FutureWarning
        )
        yield


def _ddl(with_source: bool, with_task: bool) -> str:
    """The Spark schema of partial aggregates (the ledger's key and measure columns)."""
    types = {"hour": "timestamp", "records": "bigint"}
    cols = [*(("source",) if with_source else ()), *KEY_COLUMNS, *MEASURE_COLUMNS]
    ddl = [f"{c} {types.get(c, 'string' if c in GROUP_COLUMNS else 'double')}" for c in cols]
    if with_task:
        ddl.append(f"{_TASK} string")
    return ", ".join(ddl)


def _with_task(out: TaskOutput) -> Iterator[pa.RecordBatch]:
    """The task's cells (``task`` null), then one row holding its statistics."""
    import pyarrow as pa

    cells = out.aggregates.append_column(_TASK, pa.nulls(out.aggregates.num_rows, pa.string()))
    yield from cells.to_batches()
    stats = {c: pa.nulls(1, t) for c, t in zip(cells.column_names, cells.schema.types, strict=True)}
    stats[_TASK] = pa.array([task_json(out)], pa.string())
    yield pa.RecordBatch.from_pydict(stats, schema=cells.schema)


def _sums(df: DataFrame, by: Sequence[str]) -> DataFrame:
    """SUM per group: Spark's sum skips nulls and is null when all are, as the engine's cells."""
    from pyspark.sql import functions as F

    return df.groupBy(*by).agg(*(F.sum(m).alias(m) for m in MEASURE_COLUMNS))


def _to_arrow(df: DataFrame) -> pa.Table:
    return df.toArrow()


class SparkEngine:
    """Runs :func:`wattledger.ingest`'s reading on Spark: one task per file."""

    name = "Spark"

    def __init__(self, spark: SparkSession | None = None, master: str = "local[*]") -> None:
        self._spark = spark
        self.master = master

    @property
    def spark(self) -> SparkSession:
        """The session, started on first use: a run whose files are all skipped starts none."""
        if self._spark is None:
            self._spark = session(self.master)
        return self._spark

    def run_files(self, plan: WorkerPlan, paths: Sequence[str], *, show: bool) -> ClusterRun:
        with phase(f"starting {self.name}", show=show):
            sc = self.spark.sparkContext
        shipped = sc.broadcast(plan)

        def work(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                for path in batch.column(0).to_pylist():
                    yield from _with_task(run_files(shipped.value, [path]))

        # One partition per file: the cluster balances files, each read by the engine whole.
        with _quiet():
            files = self.spark.createDataFrame(
                sc.parallelize([(p,) for p in paths], len(paths)), "path string"
            )
            out = files.mapInArrow(work, _ddl(with_source=True, with_task=True)).persist()
        try:
            reading = f"reading {len(paths):,} files on {self.name}"
            with _quiet(), phase(reading, show=show, total=len(paths), kind="files") as bar:
                stats = out.where(out[_TASK].isNotNull()).select(_TASK)
                tasks = self._collect_counting(stats, bar)
                cells = _sums(out.where(out[_TASK].isNull()).drop(_TASK), GROUP_COLUMNS)
                table = _to_arrow(cells)
        finally:
            out.unpersist()
            shipped.unpersist()
        file_rows, names, warnings = read_tasks(tasks)
        return ClusterRun(plain(table), file_rows, names, warnings)

    def _collect_counting(self, stats: DataFrame, bar: Phase) -> list[str]:
        """Collect the tasks' statistics (the job that reads the files: one task per file),
        advancing ``bar`` by the tasks done as Spark's status tracker reports them. Ctrl-C
        cancels the job instead of leaving it running on the cluster."""
        sc = self.spark.sparkContext
        group = f"wattledger-{uuid.uuid4().hex}"
        rows: list[str] = []
        errors: list[BaseException] = []

        def collect() -> None:
            try:
                # Thread-local (pyspark pins a JVM thread to each Python thread): this job only.
                sc.setJobGroup(group, "wattledger: read files", interruptOnCancel=True)
                rows.extend(r[0] for r in stats.collect())
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=collect, name="wattledger-spark", daemon=True)
        worker.start()
        tracker = sc.statusTracker()
        try:
            while worker.is_alive():
                worker.join(0.25)
                done = 0
                for job in tracker.getJobIdsForGroup(group):
                    info = tracker.getJobInfo(job)
                    for stage in info.stageIds if info is not None else ():
                        stage_info = tracker.getStageInfo(stage)
                        done += stage_info.numCompletedTasks if stage_info is not None else 0
                bar.update(completed=done)
        except BaseException:
            sc.cancelJobGroup(group)
            raise
        if errors:
            raise errors[0]
        return rows


def engine(spark: SparkSession | None = None, master: str = "local[*]") -> SparkEngine:
    """A cluster engine for :func:`wattledger.ingest` (``cluster=``) on ``spark`` (default:
    :func:`session` on ``master``, started when the first file is to be read)."""
    return SparkEngine(spark, master)


def estimate(
    df: DataFrame,
    *,
    config: PathLike | _core.Config | None = None,
    grid: PathLike | Iterable[PathLike] = (),
    lifecycle: bool = False,
    grid_resolution: str = "hour",
    columns: Sequence[str] = (),
    preset: str | None = None,
    site: str | None = None,
    max_names: int = _core.DEFAULT_MAX_NAMES,
) -> DataFrame:
    """Hourly partial aggregates of ``df`` (log records, canonical or mapped columns): the
    ledger's key and measure columns, one set per partition, computed by the engine in each
    worker. Partials of one key add up (:func:`reduce`) to the local engine's cell.

    Records the engine rejects (no timestamp, an unknown site...) are left out as in a local
    run; their counts are on the ledger only through :func:`ingest`."""
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
    shipped = df.sparkSession.sparkContext.broadcast(plan)
    keep = [*KEY_COLUMNS, *MEASURE_COLUMNS]

    def work(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        out = run_batches(shipped.value, batches, "<spark>")
        if out is not None:
            yield from out.aggregates.select(keep).to_batches()

    with _quiet():
        return df.mapInArrow(work, _ddl(with_source=False, with_task=False))


def reduce(partials: DataFrame) -> DataFrame:
    """Partial aggregates summed by the ledger's key (null-preserving: SQL's SUM)."""
    by = [c for c in GROUP_COLUMNS if c in partials.columns]
    return _sums(partials, by)


def ingest(
    paths_or_df: PathLike | Iterable[PathLike] | DataFrame,
    *,
    ledger: PathLike,
    config: PathLike | _core.Config | None = None,
    grid: PathLike | Iterable[PathLike] = (),
    spark: SparkSession | None = None,
    **options: Any,
) -> IngestSummary:
    """:func:`wattledger.ingest` with the reading on Spark (``spark``, default :func:`session`).

    Paths (files, directories, globs) are read one task per file by the engine's readers.
    A DataFrame is ingested through the files it was read from (``inputFiles()``): they are
    the sources the ledger records, with their size and content hash, and are read by the
    engine as files, so the result, the rejects and the skips are a local run's. ``options``
    are :func:`wattledger.ingest`'s."""
    if _is_dataframe(paths_or_df):
        _check_bare_scan(paths_or_df)
        files = list(paths_or_df.inputFiles())
        if not files:
            raise UsageError(
                "the DataFrame was not read from files (inputFiles() is empty); ingest the files"
            )
        paths: PathLike | Iterable[PathLike] = [_local_path(f) for f in files]
        spark = paths_or_df.sparkSession
    else:
        paths = paths_or_df  # type: ignore[assignment]
    return local_ingest(paths, ledger=ledger, config=config, grid=grid, cluster=engine(spark), **options)


def _is_dataframe(value: object) -> TypeGuard[DataFrame]:
    pyspark_sql = sys.modules.get("pyspark.sql")
    return pyspark_sql is not None and isinstance(value, pyspark_sql.DataFrame)


def _check_bare_scan(df: DataFrame) -> None:
    """A DataFrame stands for its files only if it is their plain scan: a filter or a projection
    would be silently undone by reading the files whole."""
    jdf = getattr(df, "_jdf", None)  # absent on Spark Connect: its plan is not inspected
    if jdf is None:
        return
    plan = jdf.queryExecution().analyzed().getClass().getSimpleName()
    if plan != "LogicalRelation":
        raise UsageError(
            f"the DataFrame is not a plain read of files (its plan is {plan}); ingest records and "
            "reads its input files whole: pass the files, or use wattledger.spark.estimate for a "
            "transformed DataFrame"
        )


def _local_path(uri: str) -> str:
    """A ``file:`` URI as a path; an object storage URI (``s3a://``, ``gs://``, ``abfss://``)
    as the URL the engine reads itself (docs/object-storage.md)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path) if parsed.scheme else uri
    if _core.is_url(uri):
        return uri
    raise UsageError(
        f"{uri}: the engine reads local files and s3://, gs://, az:// and http(s):// objects, not this scheme"
    )
