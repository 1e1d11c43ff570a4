"""Type stubs for the Rust extension ``wattledger._core`` (binding crate in ``src/``).

Arrow data crosses the boundary through the Arrow PyCapsule interface: functions that return
"arrow" objects return a table object implementing ``__arrow_c_stream__`` (wrap it with
``pyarrow.table(obj)`` or ``polars.DataFrame(obj)``); functions that take Arrow data accept any
object implementing ``__arrow_c_stream__`` (pyarrow Table/RecordBatchReader, polars DataFrame,
DuckDB relation via ``.arrow()``).
"""

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Protocol, final

__all__ = [
    "DEFAULT_MAX_INFLATE",
    "DEFAULT_MAX_LINE",
    "DEFAULT_MAX_NAMES",
    "DEFAULT_MEMORY_BUDGET_CELLS",
    "MAX_YEAR",
    "MEASURE_COLUMNS",
    "MIN_YEAR",
    "PER_RECORD_COLUMNS",
    "CancelledError",
    "Config",
    "ConfigError",
    "EstimateResult",
    "Estimator",
    "FileStats",
    "Grid",
    "GridError",
    "InputError",
    "InputFile",
    "InternalError",
    "Job",
    "LedgerRows",
    "NodeEnergyReport",
    "OutputError",
    "Progress",
    "Reader",
    "RunOptions",
    "SourceName",
    "UsageError",
    "WattledgerError",
    "ZoneSummary",
    "__version__",
    "accelerator_energy_wh",
    "expand_inputs",
    "file_digests",
    "is_url",
    "read_head",
    "suggest_mapping",
    "text_problem",
]

__version__: str
#: Hourly cells the engine keeps in memory before spilling partial sums (about 200 B each).
DEFAULT_MEMORY_BUDGET_CELLS: int
DEFAULT_MAX_LINE: int
DEFAULT_MAX_INFLATE: int
DEFAULT_MAX_NAMES: int
MEASURE_COLUMNS: tuple[str, ...]  # the aggregate's measure columns, in column order
#: The per-record rows' columns in order (``Estimator.estimate_records_*``; docs/per-record.md).
PER_RECORD_COLUMNS: tuple[str, ...]
MIN_YEAR: int  # the years a record may fall in (the readers reject others); report accepts them
MAX_YEAR: int

class _ArrowStreamExportable(Protocol):
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

class WattledgerError(Exception):
    """Base class of every error the engine raises. ``str(e)`` is one line for the user.

    ``path``, ``line`` and ``key`` say where, when the engine knows: the file (for a pack, its
    origin), the 1-based line of it, the pack's dotted key. None otherwise, and on errors
    raised by Python code."""

    path: str | None
    line: int | None
    key: str | None

class InputError(WattledgerError):
    """A log file is missing, unreadable, truncated/corrupt (compressed) or of unknown format."""

class ConfigError(WattledgerError):
    """The methodology pack (TOML) is invalid; ``key`` (and the message) names the key."""

class GridError(WattledgerError):
    """A grid intensity file is invalid; ``path`` and ``line`` (and the message) say where."""

class UsageError(WattledgerError):
    """A bad argument: column mapping, preset name, option value."""

class OutputError(WattledgerError):
    """An output (rejects file, spill file) could not be written; ``path`` names it."""

class CancelledError(WattledgerError):
    """The run was cancelled through ``Job.cancel()``."""

class InternalError(WattledgerError):
    """A bug in wattledger (a broken invariant of the engine), never bad input. The message
    says so, then what failed and why."""

@final
class Config:
    """A parsed, validated methodology pack."""

    @staticmethod
    def from_path(path: str) -> Config: ...
    @staticmethod
    def from_toml(text: str, origin: str = "<string>") -> Config: ...
    @property
    def origin(self) -> str: ...
    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of the TOML text: the identity of the methodology in the ledger."""
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def text(self) -> str: ...
    def to_json(self) -> str:
        """The pack resolved by the engine as JSON: defaults applied (and, per site value,
        whether it came from the site or ``[defaults]``), the market factor (instrument or the
        location fallback), coefficients with their uncertainty, and the training section with
        its energy and emissions computed. Reports read every methodology number from it."""

@final
class Grid:
    """Hourly grid carbon intensity, (zone, hour UTC) -> gCO2e/kWh."""

    @staticmethod
    def from_paths(paths: Sequence[str], lifecycle: bool = False, resolution: str = "hour") -> Grid:
        """Merge grid files; each path is ``FILE`` or ``FILE@ZONE`` (the zone of a file without a
        zone column). ``resolution`` ("hour", "day", "month") is the coarsest row spacing
        accepted; coarser rows raise GridError naming file, zone and spacing."""
    @staticmethod
    def empty() -> Grid: ...
    def summary(self) -> list[ZoneSummary]:
        """One entry per zone, in zone order."""
    @property
    def warnings(self) -> list[str]:
        """What reading the files found, one line each naming file and zone, in a stable order:
        a daily/monthly grid spread over hours, times without a UTC offset, hours flagged
        estimated; then rows for the same time with different values (averaged)."""
    def to_arrow(self) -> _ArrowStreamExportable:
        """The hourly table: zone utf8, hour timestamp[us, UTC], g_per_kwh float64."""

@final
class ZoneSummary:
    """One zone of a grid. Hours are ISO 8601 UTC (``2025-01-01T00:00:00Z``)."""

    @property
    def zone(self) -> str: ...
    @property
    def first_hour(self) -> str: ...
    @property
    def last_hour(self) -> str: ...
    @property
    def hours_with_value(self) -> int: ...
    @property
    def hours_missing(self) -> int:
        """Hours between first and last without a value."""
    @property
    def hours_estimated(self) -> int:
        """Hours with a value flagged estimated."""
    @property
    def gaps(self) -> list[tuple[str, str]]:
        """Runs of missing hours, (first, last) inclusive."""
    @property
    def mean_g_per_kwh(self) -> float:
        """Mean of the hourly values (each hour counted once)."""

@final
class Job:
    """A handle shared with a running engine call: progress and cancel from another thread."""

    def __init__(self) -> None: ...
    def progress(self) -> Progress: ...
    def cancel(self) -> None: ...

@final
class Progress:
    """A running call's counts so far."""

    @property
    def bytes_total(self) -> int:
        """Bytes on disk of all inputs (0 until the scan starts)."""
    @property
    def bytes_read(self) -> int:
        """Bytes on disk read so far (compressed bytes for compressed files)."""
    @property
    def records(self) -> int: ...
    @property
    def rejects(self) -> int: ...

@final
class FileStats:
    """What reading one input found."""

    @property
    def path(self) -> str: ...
    @property
    def format(self) -> str:
        """jsonl, csv, parquet or arrow."""
    @property
    def compression(self) -> str | None:
        """gzip, zstd or None."""
    @property
    def size_bytes(self) -> int: ...
    @property
    def blake3(self) -> str | None:
        """Hex BLAKE3 of the file as stored (its ledger identity; ``b3sum`` prints the same);
        None when not hashed (validate, read, Arrow)."""
    @property
    def hashed_bytes(self) -> int | None:
        """The stored bytes the hash covers (the bytes read); None without a hash."""
    @property
    def records(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def rejects(self) -> dict[str, int]:
        """Rejected records by reason."""
    @property
    def blank_lines(self) -> int: ...
    @property
    def skipped(self) -> int:
        """Objects passed over on purpose (e.g. spans that are not GenAI calls)."""
    @property
    def skip_reasons(self) -> dict[str, int]: ...
    @property
    def columns_found(self) -> list[str]:
        """Canonical columns present in the header, schema or any record, sorted."""

@final
class SourceName:
    """A raw name of one source file that the pack's aliases (or a zone's case) changed."""

    @property
    def path(self) -> str: ...
    @property
    def kind(self) -> str:
        """model, site, zone or hardware."""
    @property
    def raw(self) -> str: ...
    @property
    def resolved(self) -> str: ...
    @property
    def records(self) -> int:
        """Records (unweighted) that carried the raw name."""

@final
class InputFile:
    """One log file behind the inputs given."""

    @property
    def path(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def compression(self) -> str | None: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def etag(self) -> str | None:
        """The object's entity tag when listed (object storage only)."""
    @property
    def modified_us(self) -> int | None:
        """An object's last modification, microseconds since the epoch (None for local files)."""
    @property
    def remote(self) -> bool:
        """Whether this is an object in object storage (``path`` is then its URL)."""

@final
class EstimateResult:
    @property
    def files(self) -> list[FileStats]: ...
    @property
    def spilled_cells(self) -> int:
        """Cells the scan flushed to spill files under the memory budget (merged back when the
        cells are read out: every cell comes out once)."""
    @property
    def duplicates(self) -> int:
        """Records skipped as repeats of a request_id already seen in the run (dedupe)."""
    @property
    def names(self) -> list[SourceName]:
        """Raw names the pack's aliases (or a zone's case) changed, per source file."""
    @property
    def warnings(self) -> list[str]:
        """The run's warnings, one line each (zone case matches, unrecognised statuses, the
        share of energy priced on grid hours flagged estimated)."""
    @property
    def estimated_kwh(self) -> float:
        """Facility energy (kWh) priced on grid hours flagged estimated."""
    def aggregates(self) -> _ArrowStreamExportable:
        """Every hourly cell of the run, merged (each once), as a pyarrow table (schema:
        docs/internals.md)."""
    def ledger_rows(self, run_id: str, config_sha256: str, source_ids: dict[str, str]) -> LedgerRows:
        """The cells as wl_hourly rows; ``source_ids`` maps a file's path (``FileStats.path``)
        to its source_id, and the cells of a file not in it are left out."""
    def node_energy(self) -> _ArrowStreamExportable | None:
        """Metered node energy per node and hour (node, hour, metered_kwh, attributed_kwh,
        idle_kwh, intervals, idle_intervals); ``None`` without ``node_energy``."""
    @property
    def node_energy_report(self) -> NodeEnergyReport | None:
        """What reading the node energy counters found; ``None`` without ``node_energy``."""

@final
class NodeEnergyReport:
    """The node energy counters of a run: files, nodes, series, samples, resets and gaps."""

    @property
    def files(self) -> list[str]: ...
    @property
    def nodes(self) -> int: ...
    @property
    def series(self) -> int: ...
    @property
    def samples(self) -> int: ...
    @property
    def duplicate_samples(self) -> int: ...
    @property
    def resets(self) -> int: ...
    @property
    def gaps(self) -> int: ...
    @property
    def events(self) -> list[tuple[str, str, str, str, str, float]]:
        """The first 1000 resets and gaps: (``reset`` or ``gap``, node, device, start, end
        (RFC 3339), joules)."""
    @property
    def skipped(self) -> dict[str, int]:
        """Energy counters read but not used (host energy), by metric name."""

@final
class LedgerRows:
    """wl_hourly rows of a run as an Arrow C stream, merged as they are read; each export
    starts again from the first cell."""

    def __arrow_c_schema__(self) -> object: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

def expand_inputs(inputs: Sequence[str], storage_options: Mapping[str, str] | None = None) -> list[InputFile]:
    """Files, directories (recursive) and globs -> the log files behind them, in order.
    Object storage URLs (``s3://bucket/prefix/``, a glob on keys, ``https://host/f.jsonl``) ->
    their objects, sorted by key, listed with ``storage_options`` over the environment.
    Regular files only (a FIFO or device is an ``InputError``); a symlink loop is an
    ``InputError``; Ctrl-C while listing raises ``KeyboardInterrupt``."""

@final
class RunOptions:
    """The options of a run (read, validate or estimate), keyword arguments only; each has the
    engine's default. An unknown keyword or a value of the wrong type is a ``TypeError``."""

    def __new__(
        cls,
        *,
        columns: Sequence[str] = ...,
        preset: str | None = ...,
        rejects: str | PathLike[str] | None = ...,
        threads: int = ...,
        memory_budget_cells: int = ...,
        spill_dir: str | PathLike[str] | None = ...,
        dedupe: bool = ...,
        hash: bool = ...,
        site: str | None = ...,
        max_line: int = ...,
        max_inflate: int = ...,
        max_names: int = ...,
        source_name: str = ...,
        node_energy: Sequence[str | PathLike[str]] = ...,
        storage_options: Mapping[str, str] = ...,
    ) -> RunOptions: ...
    @property
    def storage_options(self) -> dict[str, str]:
        """Settings of the object storage clients (``object_store`` key names); an unknown key
        is a ``UsageError``."""
    @property
    def columns(self) -> list[str]:
        """``canonical=source`` rules, applied after the pack's ``[columns]`` and the preset."""
    @property
    def preset(self) -> str | None: ...
    @property
    def rejects(self) -> Path | None:
        """Where rejected records go (JSON Lines); written only if the run completes."""
    @property
    def threads(self) -> int:
        """Worker threads; 0 = all cores."""
    @property
    def memory_budget_cells(self) -> int:
        """Hourly cells kept in memory before spilling (``DEFAULT_MEMORY_BUDGET_CELLS``)."""
    @property
    def spill_dir(self) -> Path | None: ...
    @property
    def dedupe(self) -> bool:
        """Count each request_id once per run."""
    @property
    def hash(self) -> bool:
        """Hash each log file as stored (estimates from files only)."""
    @property
    def site(self) -> str | None:
        """The site of records with neither site nor zone (overrides the pack's ``[defaults]
        site``; must be a site of the pack, else ``UsageError``)."""
    @property
    def max_line(self) -> int:
        """Longest JSON line / CSV row in bytes (``DEFAULT_MAX_LINE``); files only."""
    @property
    def max_inflate(self) -> int:
        """Decompression budget of a .gz/.zst as a multiple of its size (0 = none); files only."""
    @property
    def max_names(self) -> int:
        """Distinct values of each of model, site, zone, hardware and status a run may meet;
        past it the run stops with ``UsageError`` naming the column (``DEFAULT_MAX_NAMES``)."""
    @property
    def source_name(self) -> str:
        """The ``source`` of Arrow data (it has no path)."""
    @property
    def node_energy(self) -> list[Path]:
        """Metered node energy counter files (attributed energy, docs/attribution.md); files only."""

@final
class Reader:
    """Reads log files without a methodology; with a pack, its ``[columns]`` apply. A bad
    mapping raises ``UsageError`` (or ``ConfigError``) here, before any input is read."""

    def __new__(cls, options: RunOptions | None = None, config: Config | None = None) -> Reader: ...
    def validate(self, inputs: Sequence[str], job: Job | None = None) -> list[FileStats]:
        """Per-file statistics without keeping records."""
    def read(
        self, inputs: Sequence[str], job: Job | None = None
    ) -> tuple[_ArrowStreamExportable, list[FileStats]]:
        """Canonical records (plus ``source`` and ``line``) and per-file stats. Small data only."""

@final
class Estimator:
    """Estimate runs with one pack, one grid (default: none) and one options object. A bad
    ``site`` or mapping raises here, before any input is read."""

    def __new__(
        cls, config: Config, grid: Grid | None = None, options: RunOptions | None = None
    ) -> Estimator: ...
    def estimate_files(self, inputs: Sequence[str], job: Job | None = None) -> EstimateResult:
        """Read log files and apply the methodology; hourly partial aggregates per source file."""
    def estimate_arrow(self, data: _ArrowStreamExportable, job: Job | None = None) -> EstimateResult:
        """The same for Arrow record batches (polars, pyarrow, DuckDB), named by the options'
        ``source_name``; nothing is hashed and the file bounds do not apply."""
    def estimate_records_files(
        self, inputs: Sequence[str], out: str | PathLike[str] | None = None, job: Job | None = None
    ) -> tuple[EstimateResult, _ArrowStreamExportable | None]:
        """``estimate_files`` plus one row per accepted record (``PER_RECORD_COLUMNS``), in
        input order: the run and the rows as a pyarrow Table; with ``out``, the rows are
        streamed to that Parquet file instead (moved into place only if the run succeeds; a
        bad directory fails before any input is read) and the table is None."""
    def estimate_records_arrow(
        self, data: _ArrowStreamExportable, out: str | PathLike[str] | None = None, job: Job | None = None
    ) -> tuple[EstimateResult, _ArrowStreamExportable | None]:
        """The same for Arrow record batches (``line`` is the 0-based row of the stream)."""
    def validate(self, inputs: Sequence[str], job: Job | None = None) -> list[FileStats]:
        """``Reader.validate`` with the pack's ``[columns]``."""
    def read(
        self, inputs: Sequence[str], job: Job | None = None
    ) -> tuple[_ArrowStreamExportable, list[FileStats]]:
        """``Reader.read`` with the pack's ``[columns]``."""

class _ArrowArrayExportable(Protocol):
    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]: ...

def accelerator_energy_wh(
    config: Config,
    model: _ArrowArrayExportable | _ArrowStreamExportable,
    hardware: _ArrowArrayExportable | _ArrowStreamExportable | None,
    site: _ArrowArrayExportable | _ArrowStreamExportable | None,
    input_tokens: _ArrowArrayExportable | _ArrowStreamExportable | None,
    output_tokens: _ArrowArrayExportable | _ArrowStreamExportable | None,
    duration_s: _ArrowArrayExportable | _ArrowStreamExportable | None,
    energy_j: _ArrowArrayExportable | _ArrowStreamExportable | None,
    gpus: _ArrowArrayExportable | _ArrowStreamExportable | None,
    status: _ArrowArrayExportable | _ArrowStreamExportable | None = None,
    cache_hit: _ArrowArrayExportable | _ArrowStreamExportable | None = None,
) -> tuple[Any, Any]:
    """Vectorised E_acc (Wh) per row with the kernel's own formula, for the DuckDB functions
    and the Polars expressions. Each column is an Arrow array or stream (a pyarrow array or
    chunked array, a polars Series) of one length, read without a copy; None is all null.
    Strings may be Utf8, LargeUtf8, Utf8View or dictionaries; integers and floats of any width.
    A column of the wrong kind raises UsageError naming it. A cached request (``status`` in
    ``[outcomes] cached``, or ``cache_hit``) is 0.0 with method ``cached``.
    Returns ``(wh, method)`` as pyarrow arrays (float64, utf8); null where the model is null
    or an ingest would reject the row."""

def is_url(path: str) -> bool:
    """Whether an input is an object storage URL rather than a local path."""

def read_head(path: str, max_bytes: int = 65536) -> bytes:
    """The first ``max_bytes`` of a text log after decompression (for naming its columns)."""

def file_digests(
    path: str | PathLike[str],
    *,
    sha256: bool = False,
    limit: int | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> tuple[str, str | None, int]:
    """(BLAKE3, SHA-256 if asked else None, bytes hashed) of a file's stored bytes, at most
    ``limit`` of them, in one pass. Raises OSError when the file cannot be read; an object
    storage URL is read by ranges, and a store error raises ``InputError``."""

def suggest_mapping(columns_seen: Sequence[str], columns_found: Sequence[str]) -> str | None:
    """``try --column ts=timestamp or --preset openai`` for records lacking ts/model; None when
    nothing fits."""

def text_problem(head: bytes, path: str, csv: bool = False) -> str | None:
    """Why a log's head is not UTF-8, comma-separated text (UTF-16, Windows-1252, a ';' CSV
    header), with the conversion to run; None when it looks fine."""
