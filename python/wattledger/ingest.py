"""One ingest run: logs -> engine -> ledger, as one transaction.

Order matters for nightly jobs: the ledger is opened (and locked) first, so a concurrent run
fails before reading anything; unchanged files are skipped before reading; the engine runs in a
worker thread (progress, Ctrl-C); only then is everything written in one transaction. Python
handles per-file bookkeeping only: the engine aggregates, DuckDB sums.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import warnings as _warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as replace_field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

from wattledger import _core
from wattledger.config import ColumnRules, GridResolution, column_rules, load_config, load_grid
from wattledger.errors import InputError, OutputError, RunWarning
from wattledger.ledger import (
    CommitResult,
    ConfigIdentity,
    FileStamp,
    HourlyRows,
    LedgerWriter,
    RunCheck,
    RunInfo,
    RunTotals,
    SkippedFile,
    SourceRead,
    new_run_id,
)
from wattledger.mapping import check_readable, is_empty, read_as_text
from wattledger.partials import ClusterEngine, ClusterRun, make_plan, refuse_unsupported
from wattledger.progress import phase, run_with_progress, should_show
from wattledger.run_checks import DEFAULT_WARN_SHARE, enforce_strict, parse_share, share_warnings
from wattledger.storage import StorageOptions, storage_dict
from wattledger.testhooks import pause_at

if TYPE_CHECKING:
    import pyarrow as pa

PathLike = str | os.PathLike[str]

DEFAULT_MEMORY_BUDGET_CELLS: int = _core.DEFAULT_MEMORY_BUDGET_CELLS
# The longest JSON line / CSV row read (64 MiB; longer ones are rejects, skipped unread) and how
# far a .gz/.zst may unpack, as a multiple of its size on disk (see docs/cli.md, --max-inflate).
DEFAULT_MAX_LINE: int = _core.DEFAULT_MAX_LINE
DEFAULT_MAX_INFLATE: int = _core.DEFAULT_MAX_INFLATE
# Distinct values per name column (model, site, zone, hardware, status) a run may meet.
DEFAULT_MAX_NAMES: int = _core.DEFAULT_MAX_NAMES


@dataclass(frozen=True)
class IngestSummary:
    """What a run added to the ledger, and how much of it rests on fallbacks."""

    run_id: str
    ledger: str
    config_name: str
    config_version: str
    config_sha256: str
    config_origin: str
    files_read: int
    files_skipped: tuple[SkippedFile, ...]
    files_replaced: tuple[str, ...]
    records: int
    rejected: int
    rejects_by_reason: dict[str, int]
    #: Records dropped as repeats of a request_id within the run; None when ``dedupe`` was off.
    duplicates: int | None
    requests_by_method: dict[str, float]
    energy_kwh_by_method: dict[str, float | None]
    requests: float
    energy_kwh: float | None
    energy_kwh_low: float | None
    energy_kwh_high: float | None
    co2e_location_kg: float | None
    co2e_market_kg: float | None
    fallback_kwh: float
    unresolved_kwh: float
    unestimated_requests: float
    #: Weighted requests whose status said they failed / that a cache served (section 10).
    failed_requests: float = 0.0
    cached_requests: float = 0.0
    #: Objects the readers passed over on purpose (e.g. spans that are not GenAI calls).
    skipped_objects: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    #: The run's warnings, the engine's then the coverage checks' (also kept on the run's row).
    warnings: tuple[str, ...] = ()
    #: Raw names the pack's aliases changed: (path, kind, raw, resolved, records).
    names: tuple[tuple[str, str, str, str, int], ...] = ()
    #: Metered node energy (``node_energy``): None without; else what the counters measured,
    #: the part attributed to requests, the idle rest per node (kWh), and resets and gaps seen.
    node_energy: NodeEnergySummary | None = None

    @property
    def fallback_share(self) -> float | None:
        """Share of energy whose intensity came from a month mean or the site fallback."""
        return _share(self.fallback_kwh, self.energy_kwh)

    @property
    def unresolved_share(self) -> float | None:
        """Share of energy with no intensity at all (its emissions are missing from the sums)."""
        return _share(self.unresolved_kwh, self.energy_kwh)

    @property
    def unestimated_share(self) -> float | None:
        """Share of requests no method could estimate (method ``none``)."""
        return _share(self.unestimated_requests, self.requests)


@dataclass(frozen=True)
class NodeEnergySummary:
    """Metered node energy of a run (methodology section 10): attributed + idle = metered."""

    metered_kwh: float
    attributed_kwh: float
    idle_kwh: float
    idle_kwh_by_node: dict[str, float]
    nodes: int
    series: int
    samples: int
    resets: int
    gaps: int
    #: Energy counters read but not used (host energy), by metric name.
    skipped: dict[str, int] = field(default_factory=dict)
    #: Metered nodes no request claimed any energy of: all their energy is idle, which is
    #: what a node name that differs between logs and counters looks like.
    unclaimed_nodes: tuple[str, ...] = ()


def node_energy_summary(result: _core.EstimateResult) -> tuple[pa.Table | None, NodeEnergySummary | None]:
    """The engine's node energy rows and their summary (None, None without node energy)."""
    import pyarrow as pa

    rows = result.node_energy()
    report = result.node_energy_report
    if rows is None or report is None:
        return None, None
    table = pa.table(rows)
    idle_by_node: dict[str, float] = {}
    claimed_by_node: dict[str, float] = {}
    for node, idle, claimed in zip(
        table.column("node").to_pylist(),
        table.column("idle_kwh").to_pylist(),
        table.column("attributed_kwh").to_pylist(),
        strict=True,
    ):
        idle_by_node[node] = idle_by_node.get(node, 0.0) + idle
        claimed_by_node[node] = claimed_by_node.get(node, 0.0) + claimed

    def col(name: str) -> float:
        return float(sum(table.column(name).to_pylist()))

    summary = NodeEnergySummary(
        metered_kwh=col("metered_kwh"),
        attributed_kwh=col("attributed_kwh"),
        idle_kwh=col("idle_kwh"),
        idle_kwh_by_node=dict(sorted(idle_by_node.items())),
        unclaimed_nodes=tuple(
            sorted(n for n, claimed in claimed_by_node.items() if claimed == 0 and idle_by_node[n] > 0)
        ),
        nodes=report.nodes,
        series=report.series,
        samples=report.samples,
        resets=report.resets,
        gaps=report.gaps,
        skipped=dict(report.skipped),
    )
    return table, summary


def node_energy_warnings(result: _core.EstimateResult, summary: NodeEnergySummary | None) -> tuple[str, ...]:
    """One line per counter reset or gap (at most 20, then a count), per unused counter, and
    one for metered nodes no request claimed."""
    report = result.node_energy_report
    if report is None:
        return ()
    out: list[str] = []
    if summary is not None and summary.unclaimed_nodes:
        names = ", ".join(summary.unclaimed_nodes[:10])
        more = len(summary.unclaimed_nodes) - 10
        out.append(
            f"node energy: no request was active on metered node(s) {names}"
            + (f" and {more} more" if more > 0 else "")
            + ": all their energy is counted as idle; if their requests are in the logs, their "
            "`node` must equal the counters' node name (docs/attribution.md)"
        )
    for kind, node, device, start, end, joules in report.events[:20]:
        what = "counter reset (energy since the restart counted)" if kind == "reset" else "gap in the counter"
        out.append(f"node energy: {what} on {node} {device or ''} between {start} and {end}: {joules:.6g} J")
    more = report.resets + report.gaps - min(len(report.events), 20)
    if more > 0:
        out.append(f"node energy: {more} more resets or gaps (see docs/attribution.md)")
    for name, n in report.skipped.items():
        out.append(
            f"node energy: {n} samples of {name} not used (not accelerator energy, see docs/attribution.md)"
        )
    return tuple(out)


def _share(part: float, whole: float | None) -> float | None:
    return part / whole if whole else None


def _as_inputs(logs: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(logs, str | os.PathLike):
        return [os.fspath(logs)]
    return [os.fspath(p) for p in logs]


def expand_unique(
    logs: PathLike | Iterable[PathLike], storage_options: StorageOptions = None
) -> list[_core.InputFile]:
    """Files (and objects) behind the given paths, directories, globs and URLs, each once, in
    order."""
    inputs = _as_inputs(logs)
    if not inputs:
        raise InputError("no log files given; pass files, directories or globs")
    found = _core.expand_inputs(inputs, storage_dict(storage_options))
    if not found:
        raise InputError(f"no log files found in {' '.join(inputs)}")
    unique: dict[str, _core.InputFile] = {}
    for f in found:  # one entry per file, however it was named ("a.csv", "./a.csv", a glob)
        unique.setdefault(_abs(f.path), f)
    return list(unique.values())


def config_identity(config: _core.Config) -> ConfigIdentity:
    """The ledger's record of a methodology pack."""
    return ConfigIdentity(config.sha256, config.name, config.version, config.origin, config.text)


def ingest(
    logs: PathLike | Iterable[PathLike],
    *,
    ledger: PathLike,
    config: PathLike | _core.Config | None = None,
    grid: PathLike | Iterable[PathLike] | _core.Grid = (),
    lifecycle: bool = False,
    rejects: PathLike | None = None,
    columns: ColumnRules = None,
    preset: str | None = None,
    threads: int = 0,
    memory_budget_cells: int = DEFAULT_MEMORY_BUDGET_CELLS,
    max_names: int = DEFAULT_MAX_NAMES,
    replace: bool = False,
    dedupe: bool = False,
    progress: bool | None = None,
    command: str | None = None,
    site: str | None = None,
    warn_share: float | str = DEFAULT_WARN_SHARE,
    strict: bool = False,
    grid_resolution: GridResolution = "hour",
    wait: float = 0.0,
    max_line: int = DEFAULT_MAX_LINE,
    max_inflate: int = DEFAULT_MAX_INFLATE,
    node_energy: PathLike | Sequence[PathLike] = (),
    cluster: ClusterEngine | None = None,
    storage_options: StorageOptions = None,
) -> IngestSummary:
    """Estimate log files and add them to the ledger in one transaction.

    A file's identity is its content (BLAKE3 of the bytes read; SHA-256 for sources a ledger
    recorded before schema 4), the pack and how it was read
    (``preset``, ``columns``, ``site``). Files already counted with the same identity are
    skipped; a path (or the same bytes elsewhere) under another identity is refused with
    :class:`SourceConflictError` unless ``replace``. A file from which no record could be read
    raises :class:`NoRecordsError` (with the columns seen and a mapping to try) and the run
    commits nothing; an empty file is not recorded (it is read again next time). On any error
    or Ctrl-C the ledger is left exactly as it was.

    ``wait`` > 0 waits up to that many seconds for a ledger another process holds (a reader
    left open) instead of failing at once with :class:`LedgerBusyError`.

    ``dedupe`` counts a repeated ``request_id`` once within this run (across all its files);
    the engine keeps a hash set of the ids seen, so memory grows with the number of distinct
    ids (roughly 16 bytes each plus the set's overhead). Repeats across runs are not looked for:
    a file already counted is skipped whole instead.

    ``site`` locates records that carry neither site nor zone (it overrides the pack's
    ``[defaults] site`` and must be a site of the pack). The run's warnings are on the returned
    summary's ``warnings`` and on the run's row in the ledger: the grid's (see
    :func:`wattledger.load_grid`), the engine's (names matched ignoring case, unrecognised
    statuses, energy priced on grid hours flagged estimated, ...) and the coverage
    checks of :mod:`wattledger.run_checks` (a share of energy unresolved or on fallback
    intensity, of requests unestimated or of records rejected above ``warn_share``, default 1%).
    Each is also emitted as a :class:`RunWarning`. With ``strict`` any warning raises
    :class:`StrictWarningError` instead and the ledger is left unchanged.

    ``grid`` entries are ``FILE`` or ``FILE@ZONE``; ``grid_resolution`` (``"hour"``, ``"day"``,
    ``"month"``) is the coarsest row spacing the grid files may have.

    ``max_line``: a JSON line or CSV row longer than this many bytes is a reject (read past, never
    held in memory). ``max_inflate``: a ``.gz``/``.zst`` file may unpack to at most this multiple
    of its size on disk (counted as at least 1 MiB; 0 = no limit), else :class:`InputError`.
    ``node_energy``: metered energy counter files (DCGM exporter, Kepler; Prometheus text
    snapshots or range-query CSV, see docs/attribution.md). Records with a ``node`` the counters
    cover get method ``attributed`` (their share of the node's metered energy); the energy no
    request claimed is the node's idle energy, kept in ``wl_node_energy`` (view ``node_energy``)
    and on the summary's ``node_energy``. The logs are read twice (the shares need every
    request's claim first); not with ``dedupe``.
    ``max_names`` caps the distinct values of each of model, site, zone, hardware and status
    in the run (default 100,000; each costs about 400 bytes): more is a per-request value such
    as a request id mapped as a name, and the run stops with :class:`UsageError` naming the
    column, leaving the ledger unchanged.

    Logs may be in object storage: ``s3://bucket/prefix/`` (every log object under it),
    ``s3://bucket/logs/2026-11-*/*.jsonl`` (a glob on keys), ``gs://``, ``az://`` and
    ``https://host/file.jsonl`` URLs are listed and read by ranges, nothing downloaded to a
    temporary file. The clients take credentials, region and endpoint from the environment
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``,
    ``AWS_ALLOW_HTTP=true`` for a plain http endpoint; ``GOOGLE_*``, ``AZURE_*``), then from
    ``storage_options`` (``object_store`` key names such as ``aws_endpoint``), which win. An
    object's source is its URL, size, ETag and the BLAKE3 of its bytes: an object with the URL,
    size and ETag of a live source is skipped without being read (docs/object-storage.md).

    ``cluster``: a cluster engine (:func:`wattledger.spark.engine`, :func:`wattledger.ray.engine`)
    runs the same readers and kernel there, one task per file, and hands back the partial
    aggregates reduced on the cluster; everything else (skips, identity, the commit) is this
    function's, as for a local run. ``dedupe`` and ``rejects`` need the local engine. Object
    storage URLs are listed here and read by the tasks, with ``storage_options`` shipped to them.
    """
    if cluster is not None:
        refuse_unsupported(
            cluster.name, rejects=rejects, dedupe=dedupe, node_energy=bool(_as_inputs(node_energy))
        )
    share = parse_share(warn_share)
    cfg = load_config(config)
    grd = load_grid(grid, lifecycle, grid_resolution)
    rules = column_rules(columns)
    found = expand_unique(logs, storage_options)
    paths = [f.path for f in found]
    stamps = {f.path: FileStamp.of_input(f) for f in found}
    started = datetime.now(UTC)
    run = RunInfo(
        run_id=new_run_id(started),
        started_at=started,
        command=command if command is not None else shlex.join(sys.argv),
        version=_core.__version__,
    )
    identity = config_identity(cfg)
    read_as = read_as_text(preset, rules, site)
    # A ledger this run created holds nothing if the run fails: removing it (once closed) leaves
    # no empty file that looks like a ledger. Only after our own open: a file that appeared
    # meanwhile is someone else's (our open failed with busy), and is left alone.
    created, opened = not os.path.exists(ledger), False
    show = should_show(progress)
    try:
        # Reading every block of an existing ledger before writing takes seconds for a big one.
        with phase("checking the ledger", show=show):
            writer_for_run = LedgerWriter(ledger, wait=wait)
        with writer_for_run as writer:
            opened = True
            _remove_stale_spill_dirs(ledger)
            to_read, skipped = writer.precheck(
                list(stamps.values()), cfg.sha256, read_as, replace=replace, storage_options=storage_options
            )
            by_abs = {stamps[p].path: p for p in paths}
            read_paths = [by_abs[s.path] for s in to_read]
            spill_dir = Path(f"{os.fspath(ledger)}.spill-{run.run_id}")
            pause_at("before_read")
            try:
                result: _core.EstimateResult | None = None
                distributed: ClusterRun | None = None
                if read_paths and cluster is not None:
                    plan = make_plan(
                        cfg,
                        grid,
                        lifecycle=lifecycle,
                        grid_resolution=grid_resolution,
                        columns=rules,
                        preset=preset,
                        memory_budget_cells=memory_budget_cells,
                        hash=True,
                        site=site,
                        max_line=max_line,
                        max_inflate=max_inflate,
                        max_names=max_names,
                        # Shipped with the plan: a task reads its object with the run's settings
                        # (over the worker's own environment, e.g. an instance's credentials).
                        storage_options=storage_dict(storage_options),
                    )
                    distributed = cluster.run_files(plan, read_paths, show=show)
                elif read_paths:
                    spill_dir.mkdir(parents=True, exist_ok=True)
                    job = _core.Job()
                    options = _core.RunOptions(
                        columns=rules,
                        preset=preset,
                        rejects=os.fspath(rejects) if rejects is not None else None,
                        threads=threads,
                        memory_budget_cells=memory_budget_cells,
                        spill_dir=os.fspath(spill_dir),
                        dedupe=dedupe,
                        hash=True,
                        site=site,
                        max_line=max_line,
                        max_inflate=max_inflate,
                        max_names=max_names,
                        node_energy=[os.fspath(p) for p in _as_inputs(node_energy)],
                        storage_options=storage_dict(storage_options),
                    )

                    def work() -> _core.EstimateResult:
                        return _core.Estimator(cfg, grd, options).estimate_files(read_paths, job=job)

                    try:
                        result = run_with_progress(work, job, show=show)
                    except OutputError as exc:
                        if not _is_under(exc.path, spill_dir):
                            raise  # e.g. the --rejects file: its own message says which
                        raise _work_files_error(ledger, exc) from exc
                names_by_path: dict[str, list[tuple[str, str, str, int]]] = {}
                run_names = result.names if result is not None else distributed.names if distributed else ()
                for n in run_names:
                    names_by_path.setdefault(n.path, []).append((n.kind, n.raw, n.resolved, n.records))
                files = list(result.files) if result is not None else []
                if distributed is not None:
                    # FileStatsRow has every attribute of FileStats the bookkeeping below reads.
                    files = cast("list[_core.FileStats]", distributed.files)
                # Before anything is written: a file no record could be read from fails the run.
                check_readable(files)
                warnings = (*grd.warnings, *result.warnings) if result is not None else ()
                node_table, node_summary = node_energy_summary(result) if result is not None else (None, None)
                if result is not None:
                    warnings += node_energy_warnings(result, node_summary)
                if distributed is not None:
                    warnings = (*grd.warnings, *distributed.warnings)
                # An empty file adds nothing; recording it would make the file's first real content
                # look like a change (exit 4), so it is left unrecorded and read again next time.
                empty = [f.path for f in files if is_empty(f)]
                skipped = [*skipped, *(SkippedFile(_abs(p), EMPTY_REASON) for p in empty)]
                warnings += tuple(
                    f"{p}: empty (no records); not recorded, it is read again next run" for p in empty
                )
                warnings += tuple(_all_skipped_warning(f) for f in files if _all_skipped(f))
                sources = [
                    _source_read(f, stamps, names_by_path.get(f.path, ()), read_as)
                    for f in files
                    if not is_empty(f)
                ]
                hourly: HourlyRows | None = None
                if result is not None:
                    engine = result
                    run_id, config_sha256 = run.run_id, identity.sha256

                    def hourly_rows(source_ids: dict[str, str]) -> _core.LedgerRows:
                        # Streamed into the ledger as the engine merges the cells (spill files
                        # included): each cell once, no intermediate file, no pyarrow.
                        return engine.ledger_rows(run_id, config_sha256, source_ids)

                    hourly = hourly_rows
                pause_at("before_write")
                with phase("writing the ledger", show=show):
                    commit = writer.commit_run(
                        run,
                        identity,
                        sources,
                        distributed.aggregates if distributed is not None else None,
                        hourly=hourly,
                        skipped=skipped,
                        replace=replace,
                        duplicates=(int(result.duplicates) if result is not None else 0) if dedupe else None,
                        warnings=warnings,
                        check=_run_check(warnings, share, strict),
                        node_energy=node_table,
                    )
            finally:
                shutil.rmtree(spill_dir, ignore_errors=True)
    except BaseException:
        if created and opened:
            _remove_new_ledger(ledger)
        raise

    for message in commit.warnings:
        _warnings.warn(message, RunWarning, stacklevel=2)
    return replace_field(
        _summarise(commit, identity, os.fspath(ledger), commit.warnings), node_energy=node_summary
    )


def _run_check(engine_warnings: Sequence[str], share: float, strict: bool) -> RunCheck:
    """The commit-time check: coverage warnings from the run's totals; under ``strict`` any
    warning (the engine's included) raises, which rolls the run back."""

    def check(totals: tuple[RunTotals, ...], counted: Sequence[SourceRead]) -> list[str]:
        extra = share_warnings(totals, counted, share)
        if strict:
            enforce_strict([*engine_warnings, *extra])
        return extra

    return check


def _is_under(path: str | None, directory: Path) -> bool:
    """Whether an error's file lies in ``directory`` (both spelled from the same string)."""
    return path is not None and Path(path).is_relative_to(directory)


def _remove_new_ledger(ledger: PathLike) -> None:
    for leftover in (Path(ledger), Path(f"{os.fspath(ledger)}.wal")):
        leftover.unlink(missing_ok=True)


def _work_files_error(ledger: PathLike, exc: Exception) -> OutputError:
    """The run's aggregate files live next to the ledger; failing to write them (disk full,
    permissions) stops the run before the ledger is touched: say so in one line."""
    return OutputError(
        f"ledger {os.fspath(ledger)}: cannot write the run's work files beside it ({exc}); "
        "the ledger is unchanged. Check free disk space and permissions"
    )


def _remove_stale_spill_dirs(ledger: PathLike) -> None:
    """Delete spill directories left by runs that were killed (kill -9 skips ``finally``).

    Safe only while holding the ledger's write lock: then no other run of this ledger is alive,
    so every ``<ledger>.spill-*`` directory belongs to a dead one and holds nothing committed.
    """
    base = Path(ledger)
    for stale in base.parent.glob(f"{base.name}.spill-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


EMPTY_REASON = "empty (no records); not recorded, so it is read again once it has content"


def _abs(path: str) -> str:
    if _core.is_url(path):
        return path
    return os.path.abspath(path)


def _all_skipped(stats: _core.FileStats) -> bool:
    return not stats.records and not stats.rejected and bool(stats.skipped)


def _all_skipped_warning(stats: _core.FileStats) -> str:
    """A file whose every object the preset passed over on purpose (e.g. spans that are not
    GenAI calls) is recorded as read: re-reading the same bytes the same way gives the same
    nothing. Said aloud, since a wrong preset would look the same."""
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.skip_reasons.items()))
    return (
        f"{stats.path}: no records: all {stats.skipped:,} objects were passed over on "
        f"purpose ({reasons}); recorded as read"
    )


def _source_read(
    stats: _core.FileStats,
    stamps: dict[str, FileStamp],
    names: Iterable[tuple[str, str, str, int]] = (),
    read_as: str = "",
) -> SourceRead:
    path = stats.path
    seen = stamps.get(path) or FileStamp.of(path)
    digest = stats.blake3
    if not digest:
        raise InputError(f"{path}: the engine returned no content hash; cannot tell whether it was counted")
    # The identity is of the bytes actually read: a file appended to while it was read has
    # more bytes than its size before the run, and the hash covers them all. Keeping the
    # engine's count (not a second stat, which could see bytes appended after the hash)
    # makes the next run see a file that grew afterwards as grown, and one that did not as
    # unchanged.
    hashed = stats.hashed_bytes
    stamp = replace_field(seen, size_bytes=hashed) if hashed is not None else seen
    return SourceRead(
        engine_path=path,
        stamp=stamp,
        blake3=digest,
        records=stats.records,
        rejected=stats.rejected,
        rejects=dict(stats.rejects),
        columns_found=tuple(stats.columns_found),
        names=tuple(names),
        skipped=stats.skipped,
        skip_reasons=dict(stats.skip_reasons),
        read_as=read_as,
    )


def _add(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _summarise(
    commit: CommitResult, config: ConfigIdentity, ledger: str, warnings: tuple[str, ...] = ()
) -> IngestSummary:
    rejects: dict[str, int] = {}
    skip_reasons: dict[str, int] = {}
    for src in commit.ingested:
        for reason, n in src.rejects.items():
            rejects[reason] = rejects.get(reason, 0) + n
        for reason, n in src.skip_reasons.items():
            skip_reasons[reason] = skip_reasons.get(reason, 0) + n
    t = commit.totals
    return IngestSummary(
        run_id=commit.run_id,
        ledger=ledger,
        config_name=config.name,
        config_version=config.version,
        config_sha256=config.sha256,
        config_origin=config.origin,
        files_read=len(commit.ingested),
        files_skipped=commit.skipped,
        files_replaced=commit.replaced,
        records=sum(s.records for s in commit.ingested),
        rejected=sum(s.rejected for s in commit.ingested),
        rejects_by_reason=dict(sorted(rejects.items())),
        duplicates=commit.duplicates,
        requests_by_method={m.method: m.requests or 0.0 for m in t},
        energy_kwh_by_method={m.method: m.energy_kwh for m in t},
        requests=sum(m.requests or 0.0 for m in t),
        energy_kwh=_add([m.energy_kwh for m in t]),
        energy_kwh_low=_add([m.energy_kwh_low for m in t]),
        energy_kwh_high=_add([m.energy_kwh_high for m in t]),
        co2e_location_kg=_add([m.co2e_location_kg for m in t]),
        co2e_market_kg=_add([m.co2e_market_kg for m in t]),
        fallback_kwh=_add([m.fallback_kwh for m in t]) or 0.0,
        unresolved_kwh=_add([m.unresolved_kwh for m in t]) or 0.0,
        unestimated_requests=_add([m.unestimated_requests for m in t]) or 0.0,
        failed_requests=_add([m.failed_requests for m in t]) or 0.0,
        cached_requests=_add([m.cached_requests for m in t]) or 0.0,
        skipped_objects=sum(s.skipped for s in commit.ingested),
        skip_reasons=dict(sorted(skip_reasons.items())),
        warnings=warnings,
        names=tuple((s.stamp.path, *n) for s in commit.ingested for n in s.names),
    )
