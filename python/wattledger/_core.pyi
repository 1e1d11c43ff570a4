"""Type stubs for the Rust extension ``wattledger._core`` (binding crate in ``src/``).

Arrow data crosses the boundary through the Arrow PyCapsule interface: functions that return
"arrow" objects return a table object implementing ``__arrow_c_stream__`` (wrap it with
``pyarrow.table(obj)`` or ``polars.DataFrame(obj)``); functions that take Arrow data accept any
object implementing ``__arrow_c_stream__`` (pyarrow Table/RecordBatchReader, polars DataFrame,
DuckDB relation via ``.arrow()``).
"""

from collections.abc import Sequence
from typing import Any, Protocol

__version__: str
#: Hourly cells the engine keeps in memory before spilling partial sums (about 250 B each).
DEFAULT_MEMORY_BUDGET_CELLS: int
DEFAULT_MAX_LINE: int
DEFAULT_MAX_INFLATE: int
DEFAULT_MAX_NAMES: int
MEASURE_COLUMNS: tuple[str, ...]  # the aggregate's measure columns, in column order
MIN_YEAR: int  # the years a record may fall in (the readers reject others); report accepts them
MAX_YEAR: int

class ArrowStreamExportable(Protocol):
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

class WattledgerError(Exception):
    """Base class of every error the engine raises. ``str(e)`` is one line for the user."""

class InputError(WattledgerError):
    """A log file is missing, unreadable, truncated/corrupt (compressed) or of unknown format."""

class ConfigError(WattledgerError):
    """The methodology pack (TOML) is invalid; the message names the key."""

class GridError(WattledgerError):
    """A grid intensity file is invalid; the message names file and line."""

class UsageError(WattledgerError):
    """A bad argument: column mapping, preset name, option value."""

class OutputError(WattledgerError):
    """An output (rejects file, spill file) could not be written."""

class CancelledError(WattledgerError):
    """The run was cancelled through ``Job.cancel()``."""

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

class Grid:
    """Hourly grid carbon intensity, (zone, hour UTC) -> gCO2e/kWh."""

    @staticmethod
    def from_paths(paths: Sequence[str], lifecycle: bool = False, resolution: str = "hour") -> Grid:
        """Merge grid files; each path is ``FILE`` or ``FILE@ZONE`` (the zone of a file without a
        zone column). ``resolution`` ("hour", "day", "month") is the coarsest row spacing
        accepted; coarser rows raise GridError naming file, zone and spacing."""
    @staticmethod
    def empty() -> Grid: ...
    def summary(self) -> list[dict[str, Any]]:
        """Per zone: zone, first_hour, last_hour (ISO 8601 UTC), hours_with_value,
        hours_missing, hours_estimated, gaps (list of [start, end] ISO hours), mean_g_per_kwh."""
    @property
    def warnings(self) -> list[str]:
        """What reading the files found, one line each naming file and zone, in a stable order:
        a daily/monthly grid spread over hours, times without a UTC offset, hours flagged
        estimated; then rows for the same time with different values (averaged)."""
    def to_arrow(self) -> ArrowStreamExportable:
        """The hourly table: zone utf8, hour timestamp[us, UTC], g_per_kwh float64."""

class Job:
    """A handle shared with a running engine call: progress and cancel from another thread."""

    def __init__(self) -> None: ...
    def progress(self) -> dict[str, int]:
        """bytes_total, bytes_read, records, rejects so far."""
    def cancel(self) -> None: ...

class EstimateResult:
    @property
    def files(self) -> list[dict[str, Any]]:
        """Per input: path, format, compression, size_bytes, sha256 (hex or None), hashed_bytes
        (the stored bytes the hash covers, i.e. read; None without a hash), records,
        rejected, rejects ({reason: count}), blank_lines, skipped (objects passed over on
        purpose, e.g. non-GenAI spans), skip_reasons ({reason: count}), columns_found."""
    @property
    def spill_files(self) -> list[str]:
        """Parquet files holding aggregate rows flushed under the memory budget (same schema
        as ``aggregates()``); the caller loads and then deletes them."""
    @property
    def duplicates(self) -> int:
        """Records skipped as repeats of a request_id already seen in the run (dedupe)."""
    @property
    def names(self) -> list[dict[str, Any]]:
        """Raw names the pack's aliases (or a zone's case) changed, per source file:
        ``{path, kind, raw, resolved, records}``; kind is model, site, zone or hardware."""
    @property
    def warnings(self) -> list[str]:
        """The run's warnings, one line each (zone case matches, unrecognised statuses, the
        share of energy priced on grid hours flagged estimated)."""
    @property
    def estimated_kwh(self) -> float:
        """Facility energy (kWh) priced on grid hours flagged estimated."""
    def aggregates(self) -> ArrowStreamExportable:
        """The in-memory hourly partial aggregates (schema: docs/internals.md)."""
    def write_aggregates(self, path: str) -> None:
        """Write ``aggregates()`` to a Parquet file (the spill files' schema)."""

def expand_inputs(inputs: Sequence[str]) -> list[dict[str, Any]]:
    """Files, directories (recursive) and globs -> [{path, format, compression, size_bytes}].
    Regular files only (a FIFO or device is an ``InputError``); a symlink loop is an
    ``InputError``; Ctrl-C while listing raises ``KeyboardInterrupt``."""

def read_logs(
    inputs: Sequence[str],
    *,
    columns: Sequence[str] = (),
    preset: str | None = None,
    config: Config | None = None,
    rejects: str | None = None,
    threads: int = 0,
    max_line: int = ...,
    max_inflate: int = ...,
    job: Job | None = None,
) -> tuple[ArrowStreamExportable, list[dict[str, Any]]]:
    """Canonical records (plus ``source`` and ``line``) and per-file stats. Small data only."""

def validate(
    inputs: Sequence[str],
    *,
    columns: Sequence[str] = (),
    preset: str | None = None,
    config: Config | None = None,
    rejects: str | None = None,
    threads: int = 0,
    max_line: int = ...,
    max_inflate: int = ...,
    job: Job | None = None,
) -> list[dict[str, Any]]:
    """Per-file stats without keeping records (same dicts as ``EstimateResult.files``).
    ``max_line``: longest line/row in bytes (default ``DEFAULT_MAX_LINE``); ``max_inflate``:
    decompression budget of a .gz/.zst as a multiple of its size (0 = none)."""

def estimate_files(
    inputs: Sequence[str],
    config: Config,
    grid: Grid,
    *,
    columns: Sequence[str] = (),
    preset: str | None = None,
    rejects: str | None = None,
    threads: int = 0,
    memory_budget_cells: int = ...,
    spill_dir: str | None = None,
    dedupe: bool = False,
    hash: bool = True,
    site: str | None = None,
    max_line: int = ...,
    max_inflate: int = ...,
    max_names: int = ...,
    job: Job | None = None,
) -> EstimateResult:
    """Read log files and apply the methodology; hourly partial aggregates per source file.
    ``columns`` are ``canonical=source`` rules applied after the config's ``[columns]`` and
    the preset. ``site`` locates records with neither site nor zone (overrides the pack's
    ``[defaults] site``; must be a site of the pack, else ``UsageError``). ``max_names`` caps
    the distinct values of each of model, site, zone, hardware and status in the run; past it
    the run stops with ``UsageError`` naming the column (``DEFAULT_MAX_NAMES``)."""

def estimate_arrow(
    data: ArrowStreamExportable,
    config: Config,
    grid: Grid,
    *,
    source_name: str = "<arrow>",
    columns: Sequence[str] = (),
    preset: str | None = None,
    rejects: str | None = None,
    threads: int = 0,
    memory_budget_cells: int = ...,
    spill_dir: str | None = None,
    dedupe: bool = False,
    site: str | None = None,
    max_names: int = ...,
    job: Job | None = None,
) -> EstimateResult:
    """The same as ``estimate_files`` for Arrow record batches (polars, pyarrow, DuckDB)."""

class ArrowArrayExportable(Protocol):
    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]: ...

def accelerator_energy_wh(
    config: Config,
    model: ArrowArrayExportable,
    hardware: ArrowArrayExportable,
    site: ArrowArrayExportable,
    input_tokens: ArrowArrayExportable,
    output_tokens: ArrowArrayExportable,
    duration_s: ArrowArrayExportable,
    energy_j: ArrowArrayExportable,
    gpus: ArrowArrayExportable,
) -> tuple[Any, Any]:
    """Vectorised E_acc (Wh) per row with the kernel's own formula, for DuckDB what-if UDFs.
    Each argument is an Arrow array (e.g. ``pyarrow.Array``) of one length, nulls allowed.
    Returns ``(wh, method)`` as pyarrow arrays (float64, utf8); null where the model is null."""

def read_head(path: str, max_bytes: int = 65536) -> bytes:
    """The first ``max_bytes`` of a text log after decompression (for naming its columns)."""

def suggest_mapping(columns_seen: Sequence[str], columns_found: Sequence[str]) -> str | None:
    """``try --column ts=timestamp or --preset openai`` for records lacking ts/model; None when
    nothing fits."""

def text_problem(head: bytes, path: str, csv: bool = False) -> str | None:
    """Why a log's head is not UTF-8, comma-separated text (UTF-16, Windows-1252, a ';' CSV
    header), with the conversion to run; None when it looks fine."""
