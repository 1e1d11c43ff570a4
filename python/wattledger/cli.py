"""The ``wattledger`` command line (typer).

Every failure a user can cause (bad argument, missing file, invalid config or grid, busy or
changed ledger) ends as ONE line on stderr, ``error: <what>, <where>; <what to do>``, and an exit
code a nightly job can branch on. Results go to stdout, diagnostics to stderr, so
``wattledger report ... --format csv > annual.csv`` stays clean.
"""

from __future__ import annotations

import enum
import functools
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec

import typer
from typer.core import TyperGroup

from wattledger import formatting
from wattledger._core import (
    DEFAULT_MAX_INFLATE,
    DEFAULT_MAX_LINE,
    DEFAULT_MAX_NAMES,
    DEFAULT_MEMORY_BUDGET_CELLS,
)
from wattledger._deferred import deferred
from wattledger.errors import (
    CancelledError,
    InternalError,
    LedgerBusyError,
    LedgerDamagedError,
    LedgerError,
    LedgerNotFoundError,
    LedgerSchemaError,
    OutputError,
    SourceConflictError,
    StrictWarningError,
    UnknownSourceError,
    WattledgerError,
)

# Why deferred: `wattledger --help` and every command pay for what this module imports, and
# DuckDB alone costs about 0.1 s. It is imported when a command first uses it (the ledger's
# modules do), or when an error is matched against its exception classes. Polars, pyarrow and
# rich are imported inside the commands that print with them.
if TYPE_CHECKING:
    import duckdb
else:
    duckdb = deferred("duckdb")

if TYPE_CHECKING:
    from wattledger._core import FileStats
    from wattledger.partials import ClusterEngine

#: What ingest and estimate say without --grid.
NO_GRID = "no --grid given: emissions rely on site fallback factors or stay unresolved"

EXIT_OK = 0
EXIT_REJECTS = 1
EXIT_INPUT = 2
EXIT_BUSY = 3
EXIT_CONFLICT = 4
EXIT_WRITE = 5
EXIT_STRICT = 6
EXIT_DAMAGED = 7
#: A bug in wattledger (an engine invariant broke): sysexits' EX_SOFTWARE, apart from every
#: code that describes the input, so a nightly job's logs cannot mistake it for bad data.
EXIT_BUG = 70
EXIT_INTERRUPTED = 130

EPILOG = """\b
Exit codes:
  0    success (ingest: rejected records are reported, not fatal)
  1    validate: some records were rejected
  2    unusable input: bad argument, missing or unreadable log, invalid config
       or grid, ledger missing or not a wattledger ledger, SQL error; a log
       file from which no record could be read (the message lists the columns
       seen and a mapping to try; ingest commits nothing); forget: no such
       source or run; a damaged ledger (truncated, a block whose checksum
       fails, a header that is not DuckDB's): it is left unchanged, restore it
       from a backup
  3    ledger busy: another process holds it; retry later (ingest/forget
       --wait SECONDS waits for it first)
  4    a log file is already counted under another identity: same path (or
       same bytes) with other content, pack or column mapping (--preset,
       --column, --site); re-run with --replace to swap its contribution
  5    the ledger or an output could not be written (permissions, disk full);
       the run was rolled back, nothing was changed
  6    --strict and the run or report had a warning; nothing was written
  7    check: the ledger is damaged (storage, or runs whose hourly rows no
       longer sum to the totals recorded at commit)
  70   a bug in wattledger (an internal error; the message says so): please
       report it with the command; the ledger is as it was before the run
  130  interrupted (Ctrl-C); the ledger is as it was before the run
"""


class _OneLineErrorsGroup(TyperGroup):
    """The top-level group: click's usage errors (unknown option, missing argument, bad
    choice) end as ONE line like every other error, ``error: <command>: <what>; try '<command>
    --help'``, exit 2, instead of click's four-line block."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        errors = _click_exceptions()
        if not standalone_mode:  # a caller that handles click's exceptions itself
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except errors.NoArgsIsHelpError as exc:
            exc.show()  # `wattledger` (or `wattledger grid`) alone: the help, as before
            sys.exit(exc.exit_code)
        except errors.UsageError as exc:
            sys.exit(_usage_error(exc))
        except errors.ClickException as exc:  # e.g. a file option click itself could not open
            typer.echo(f"error: {formatting.escape_terminal(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except errors.Abort:  # Ctrl-C or end of input while click itself prompts
            typer.echo("error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def _click_exceptions() -> Any:
    """click's exception module as typer uses it: typer 0.28 carries its own copy of click
    (``typer._click``), older releases use click itself."""
    import importlib

    import typer.core

    vendored = getattr(typer.core, "_click", None)
    return importlib.import_module(f"{vendored.__name__}.exceptions" if vendored else "click.exceptions")


def _usage_error(exc: Any) -> int:
    """Say a click UsageError in one line with what to do; return its exit code (2)."""
    ctx = exc.ctx
    where = ctx.command_path if ctx is not None else "wattledger"
    message = " ".join(exc.format_message().split()).rstrip(".")
    typer.echo(
        f"error: {formatting.escape_terminal(where)}: {formatting.escape_terminal(message)}; "
        f"try '{where} --help'",
        err=True,
    )
    return int(exc.exit_code)


def _show_version(value: bool) -> None:
    if value:
        from wattledger._core import __version__

        typer.echo(f"wattledger {__version__}")
        raise typer.Exit()


def _group(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """The top-level group has no options but --version and -h/--help."""


def _new_app() -> typer.Typer:
    """The top-level group's settings, shared by the whole app and :func:`app_for`'s."""
    one = typer.Typer(
        name="wattledger",
        cls=_OneLineErrorsGroup,
        # -h too on the app and every command (a context setting their contexts inherit)
        context_settings={"help_option_names": ["-h", "--help"]},
        help="Absolute yearly inference energy and emissions per AI model, from fleet request logs "
        "joined hour by hour with grid carbon intensity, ledgered in DuckDB.",
        epilog=EPILOG,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
    )
    one.callback()(_group)
    return one


app = _new_app()
grid_app = typer.Typer(help="Inspect grid intensity files.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(grid_app, name="grid")


class By(str, enum.Enum):
    model = "model"
    month = "month"
    site = "site"
    zone = "zone"
    method = "method"


class ReportFormat(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"
    md = "md"
    html = "html"  # accepted only to point at `wattledger rollup`


class RollupFormat(str, enum.Enum):
    md = "md"
    html = "html"
    json = "json"
    csv = "csv"


class Engine(str, enum.Enum):
    local = "local"
    spark = "spark"
    ray = "ray"


class GridResolution(str, enum.Enum):
    hour = "hour"
    day = "day"
    month = "month"
    # The adjectives too, as the engine accepts them (and a user may well type them).
    hourly = "hourly"
    daily = "daily"
    monthly = "monthly"


GridResolutionOpt = Annotated[
    GridResolution,
    typer.Option(
        help="Coarsest row spacing accepted in grid files: hour (sub-hourly rows are averaged), "
        "day or month (each row applies to every hour of its UTC day or month; daily or monthly rows "
        "are refused without it).",
    ),
]


class SqlFormat(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"
    md = "md"


def _fail(message: str, code: int) -> NoReturn:
    one_line = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    # Messages echo paths, names and SQL the user or a log supplied: no raw escape sequences.
    typer.echo(f"error: {formatting.escape_terminal(one_line)}", err=True)
    raise typer.Exit(code)


def _note(message: str) -> None:
    typer.echo(_lines(message), err=True)


def _lines(text: str) -> str:
    """Multi-line text for the terminal: its line breaks kept, every other control character
    (ESC in a path or model name) shown as an escape."""
    return "\n".join(formatting.escape_terminal(line) for line in str(text).split("\n"))


@contextmanager
def _user_errors(interrupted: str = "interrupted", *, ledger: Path | None = None) -> Iterator[None]:
    """Map every expected failure to one stderr line and its exit code (see EPILOG). ``ledger``
    names the file in errors DuckDB raises while a query reads it (a damaged block)."""
    try:
        yield
    except typer.Exit:
        raise
    except LedgerDamagedError as exc:
        _fail(str(exc), EXIT_INPUT)
    except LedgerBusyError as exc:
        _fail(str(exc), EXIT_BUSY)
    except SourceConflictError as exc:
        _fail(str(exc), EXIT_CONFLICT)
    except StrictWarningError as exc:
        _fail(str(exc), EXIT_STRICT)
    except (LedgerNotFoundError, LedgerSchemaError, UnknownSourceError) as exc:
        _fail(str(exc), EXIT_INPUT)
    except (LedgerError, OutputError) as exc:
        _fail(str(exc), EXIT_WRITE)
    except CancelledError:
        _fail(interrupted, EXIT_INTERRUPTED)
    except InternalError as exc:
        _fail(str(exc), EXIT_BUG)  # the engine's message says it is a bug and to report it
    except WattledgerError as exc:
        _fail(str(exc) or type(exc).__name__, EXIT_INPUT)
    except KeyboardInterrupt:  # its own clause: a Ctrl-C never waits for DuckDB to import
        _fail(interrupted, EXIT_INTERRUPTED)
    except duckdb.InterruptException:
        _fail(interrupted, EXIT_INTERRUPTED)
    except RuntimeError as exc:
        from wattledger.interrupts import is_interrupt

        if is_interrupt(exc):  # DuckDB's client reports a statement stopped by Ctrl-C so
            _fail(interrupted, EXIT_INTERRUPTED)
        raise
    except duckdb.Error as exc:
        from wattledger.integrity import damaged_error, first_line, is_damage

        where = f"ledger {ledger}" if ledger is not None else "ledger"
        if is_damage(exc):
            _fail(str(damaged_error(str(ledger) if ledger is not None else "?", first_line(exc))), EXIT_INPUT)
        if isinstance(exc, duckdb.IOException):
            _fail(f"{where}: {first_line(exc)}; check free disk space and permissions", EXIT_WRITE)
        raise
    except FileNotFoundError as exc:
        _fail(f"{exc.filename}: no such file; check the path", EXIT_INPUT)
    except PermissionError as exc:
        _fail(f"{exc.filename}: permission denied", EXIT_WRITE)
    except OSError as exc:
        # Some OS errors carry no path (a write(2) to an open file): say what failed anyway.
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}; check free disk space and permissions", EXIT_WRITE)


_P = ParamSpec("_P")


def _one_line_on_ctrl_c(command: Callable[_P, None]) -> Callable[_P, None]:
    """A Ctrl-C anywhere in ``command`` outside its ``_user_errors`` (e.g. while the modules it
    imports on first use load) ends like every other: one ``error: interrupted`` line, exit
    130 (typer alone would exit 130 without a word)."""

    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)

    return run


def _warn_or_fail(messages: Iterable[str], strict: bool) -> None:
    """Say each warning on stderr; under --strict, stop with exit 6 before any output."""
    messages = list(messages)
    if strict and messages:
        _fail(
            f"--strict: {len(messages)} warning(s), nothing was written: {'; '.join(messages)}", EXIT_STRICT
        )
    for message in messages:
        _note(f"warning: {message}")


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    try:
        formatting.write_atomically(out, text)
    except OSError as exc:
        # write(2) and fsync(2) errors (a full disk) carry no file name: name the output.
        raise OutputError(
            f"cannot write {out}: {exc.strerror or exc}; nothing was written there (check free disk space "
            "and permissions)"
        ) from None
    _note(f"wrote {out}")


# --------------------------------------------------------------------------------------------
# ingest
# --------------------------------------------------------------------------------------------

#: Plain strings, not Paths: Path("s3://b/logs/") would become "s3:/b/logs".
LogsArg = Annotated[
    list[str],
    typer.Argument(
        help="Log files, directories or globs; or object storage URLs: s3://bucket/prefix/ (every log "
        "under it), s3://bucket/logs/*/x.jsonl (a glob on keys), gs://, az://, https://host/file.jsonl.",
        show_default=False,
    ),
]
StorageOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--storage-option",
        metavar="KEY=VALUE",
        help="Setting of the object storage client (repeatable), on top of the AWS_*, GOOGLE_*, "
        "AZURE_* environment: e.g. aws_endpoint=http://127.0.0.1:9000, aws_allow_http=true, "
        "aws_region=eu-west-1 (docs/object-storage.md).",
    ),
]
ColumnOpt = Annotated[
    list[str] | None,
    typer.Option("--column", help="Column rename canonical=source (repeatable), e.g. ts=timestamp."),
]
#: The engine's log presets (it owns them; tests/test_cli.py checks this list against it).
PRESET_NAMES = ("otel", "vllm", "litellm", "openai")
PresetOpt = Annotated[
    str | None,
    typer.Option(
        metavar="<" + "|".join(PRESET_NAMES) + ">",
        help="Read logs as their tool writes them: otel (OpenTelemetry GenAI spans), vllm, litellm "
        "(LiteLLM_SpendLogs), openai (responses, stream chunks, Batch output); see docs/presets.md.",
    ),
]
ProgressOpt = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars on stderr (records/s, MB/s); default: only when stderr is a terminal.",
    ),
]
WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Show every column of a table; by default a table wider than the terminal leaves "
        "columns out from the middle and says which.",
    ),
]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Treat every warning as an error: exit 6, write nothing.")
]
ThreadsOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="DuckDB threads; 0 = all cores. Sums are exact, so the output is the same for any count.",
    ),
]
RejectsOpt = Annotated[Path | None, typer.Option(help="Write rejected records (JSON Lines) here.")]

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gib": 1 << 30,
}


def _parse_size(text: str) -> int:
    """``64MiB``, ``512k``, ``1048576`` -> bytes (binary units: a line limit is about memory)."""
    raw = text.strip().lower().replace(" ", "")
    digits = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(digits) :]
    if not digits.isdigit() or unit not in _SIZE_UNITS or int(digits) < 1:
        raise typer.BadParameter(f"{text!r} is not a size; give bytes or e.g. 64MiB, 512KiB, 1GiB")
    return int(digits) * _SIZE_UNITS[unit]


MaxLineOpt = Annotated[
    str,
    typer.Option(
        help="Longest JSON line or CSV row read (bytes, or e.g. 64MiB); a longer one is rejected "
        "and skipped unread. A longer record of a JSON document stops that file (exit 2).",
    ),
]
MaxInflateOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="A .gz/.zst file may unpack to at most this many times its size on disk (counted as "
        "at least 1 MiB), else it stops the run (exit 2) as a likely decompression bomb; 0 = no limit.",
    ),
]
_DEFAULT_MAX_LINE_TEXT = f"{DEFAULT_MAX_LINE >> 20}MiB"
WaitOpt = Annotated[
    float,
    typer.Option(
        min=0,
        help="Seconds to wait for a ledger another process holds (e.g. a reader left open) "
        "before giving up with exit 3.",
    ),
]
SiteOpt = Annotated[
    str | None,
    typer.Option(
        help="Site (of the pack) for records with neither site nor zone; overrides [defaults] site."
    ),
]


@app.command()
@_one_line_on_ctrl_c
def ingest(
    logs: LogsArg,
    ledger: Annotated[Path, typer.Option(help="Ledger DuckDB file (created if missing).")],
    grid: Annotated[
        list[Path] | None,
        typer.Option(
            help="Grid intensity CSV (repeatable; merged): an Electricity Maps export, "
            "zone,datetime,g_per_kwh, or FILE@ZONE for a file without a zone column (e.g. the UK "
            "Carbon Intensity CSV: uk.csv@GB)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Methodology pack TOML; default: the built-in pack.")
    ] = None,
    rejects: RejectsOpt = None,
    column: ColumnOpt = None,
    preset: PresetOpt = None,
    lifecycle: Annotated[bool, typer.Option(help="Use life-cycle instead of direct grid factors.")] = False,
    threads: Annotated[int, typer.Option(min=0, help="Engine threads; 0 = all cores.")] = 0,
    replace: Annotated[
        bool, typer.Option(help="Swap the contribution of files that changed since they were ingested.")
    ] = False,
    dedupe: Annotated[bool, typer.Option(help="Count duplicate request_ids within the run once.")] = False,
    progress: ProgressOpt = None,
    max_cells: Annotated[
        int,
        typer.Option(
            min=1,
            help="Hourly cells held in memory (about 200 bytes each) before partial sums are flushed "
            "to disk and merged back at the end; the ledger's rows do not change.",
        ),
    ] = DEFAULT_MEMORY_BUDGET_CELLS,
    max_names: Annotated[
        int,
        typer.Option(
            min=1,
            help="Distinct values of each of model, site, zone, hardware and status a run may meet; "
            "more means a per-request value (e.g. a request id) is mapped as a name, and the run "
            "stops with exit 2.",
        ),
    ] = DEFAULT_MAX_NAMES,
    site: SiteOpt = None,
    warn_share: Annotated[
        str,
        typer.Option(
            help="Warn when more than this share of the run's energy is unresolved or on fallback "
            "intensity, of its requests unestimated, or of its records rejected: 0.01 or 1%.",
        ),
    ] = "1%",
    strict: StrictOpt = False,
    grid_resolution: GridResolutionOpt = GridResolution.hour,
    wait: WaitOpt = 0.0,
    max_line: MaxLineOpt = _DEFAULT_MAX_LINE_TEXT,
    max_inflate: MaxInflateOpt = DEFAULT_MAX_INFLATE,
    node_energy: Annotated[
        list[Path] | None,
        typer.Option(
            help="Metered energy counters per node (repeatable): DCGM exporter or Kepler, Prometheus "
            "text snapshots or range-query CSV. Records with a `node` they cover get method "
            "`attributed`; the energy no request claimed is reported as idle (docs/attribution.md).",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="Where the engine runs: this process (local), or one task per file on Spark or Ray "
            "(docs/scale-out.md); the ledger is written here either way.",
        ),
    ] = Engine.local,
    spark_master: Annotated[
        str, typer.Option(help="Spark master URL for --engine spark (local[*]: every core here).")
    ] = "local[*]",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster address for --engine ray (e.g. ray://head:10001); default: a local Ray."
        ),
    ] = None,
    storage_option: StorageOpt = None,
) -> None:
    """Estimate LOG files and add them to the ledger in one transaction. A file counts once per
    content, pack and mapping (--preset, --column, --site); a file no record could be read from
    fails the run (exit 2) with the columns seen and a mapping to try."""
    from wattledger.config import parse_grid_resolution
    from wattledger.errors import RunWarning
    from wattledger.ingest import ingest as run_ingest
    from wattledger.storage import parse_storage_options

    line_limit = _parse_size(max_line)
    if not grid:
        no_grid = NO_GRID
        if strict:
            _fail(f"--strict: {no_grid}; nothing was written", EXIT_STRICT)
        _note(f"warning: {no_grid}")
    with (
        _user_errors("interrupted; the ledger is as it was before the run", ledger=ledger),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", RunWarning)  # printed below as `warning:` lines instead
        storage_options = parse_storage_options(storage_option or ())
        cluster = _cluster_engine(engine, spark_master, ray_address)
        summary = run_ingest(
            logs,
            ledger=ledger,
            config=config,
            grid=grid or (),
            lifecycle=lifecycle,
            rejects=rejects,
            columns=column,
            preset=preset,
            threads=threads,
            replace=replace,
            dedupe=dedupe,
            progress=progress,
            memory_budget_cells=max_cells,
            max_names=max_names,
            command=" ".join(["wattledger", *sys.argv[1:]]),
            site=site,
            warn_share=warn_share,
            strict=strict,
            grid_resolution=parse_grid_resolution(grid_resolution.value),
            wait=wait,
            max_line=line_limit,
            max_inflate=max_inflate,
            node_energy=node_energy or (),
            cluster=cluster,
            storage_options=storage_options,
        )
    from wattledger.summary import format_ingest_summary

    typer.echo(_lines(format_ingest_summary(summary, rejects=rejects)))
    # At the end, where a nightly log's reader looks: what the run could not read as intended.
    for warning in summary.warnings:
        _note(f"warning: {warning}")


def _cluster_engine(engine: Engine, spark_master: str, ray_address: str | None) -> ClusterEngine | None:
    """The cluster engine --engine names (None: local), imported only then: pyspark and ray
    cost seconds to import, which a local run never pays. The engine starts (a JVM, a Ray)
    only when a file is to be read."""
    if engine is Engine.local:
        return None
    from wattledger.errors import UsageError

    try:
        if engine is Engine.spark:
            import pyspark  # noqa: F401  (its absence said here, before the ledger is opened)

            from wattledger import spark

            return spark.engine(master=spark_master)
        import ray  # noqa: F401

        from wattledger import ray as on_ray

        return on_ray.engine(ray_address)
    except ImportError as exc:
        raise UsageError(
            f"--engine {engine.value} needs {exc.name}: pip install 'wattledger[{engine.value}]'"
        ) from None


# --------------------------------------------------------------------------------------------
# estimate
# --------------------------------------------------------------------------------------------


@app.command()
@_one_line_on_ctrl_c
def estimate(
    logs: LogsArg,
    out: Annotated[Path, typer.Option(help="Parquet file to write (atomically: complete or not at all).")],
    per_record: Annotated[
        bool,
        typer.Option(
            "--per-record",
            help="One row per accepted record (request_id, ts, names, method, accelerator_wh with "
            "low/high, facility_wh, co2e_location_g, co2e_market_g, inputs, source, line; "
            "docs/per-record.md), streamed as the logs are read. Default: the hourly aggregates.",
        ),
    ] = False,
    grid: Annotated[
        list[Path] | None,
        typer.Option(help="Grid intensity CSV (repeatable; merged), as for ingest; FILE@ZONE for one zone."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Methodology pack TOML; default: the built-in pack.")
    ] = None,
    rejects: RejectsOpt = None,
    column: ColumnOpt = None,
    preset: PresetOpt = None,
    site: SiteOpt = None,
    lifecycle: Annotated[bool, typer.Option(help="Use life-cycle instead of direct grid factors.")] = False,
    threads: Annotated[int, typer.Option(min=0, help="Engine threads; 0 = all cores.")] = 0,
    dedupe: Annotated[bool, typer.Option(help="Count duplicate request_ids within the run once.")] = False,
    progress: ProgressOpt = None,
    grid_resolution: GridResolutionOpt = GridResolution.hour,
    max_line: MaxLineOpt = _DEFAULT_MAX_LINE_TEXT,
    max_inflate: MaxInflateOpt = DEFAULT_MAX_INFLATE,
    storage_option: StorageOpt = None,
) -> None:
    """Estimate LOG files into a Parquet file, without a ledger: the hourly aggregates, or with
    --per-record one row per request (the same kernel as ingest: summed per hour the rows give
    the aggregates). Rejected records are counted and, with --rejects, written as for ingest."""
    from wattledger.config import parse_grid_resolution
    from wattledger.estimate import estimate_parquet
    from wattledger.storage import parse_storage_options

    line_limit = _parse_size(max_line)
    if not grid:
        _note(f"warning: {NO_GRID}")
    with _user_errors(f"interrupted; {out} was not written"):
        storage_options = parse_storage_options(storage_option or ())
        summary = estimate_parquet(
            logs,
            out,
            per_record=per_record,
            config=config,
            grid=grid or (),
            lifecycle=lifecycle,
            columns=column,
            preset=preset,
            rejects=rejects,
            threads=threads,
            dedupe=dedupe,
            site=site,
            grid_resolution=parse_grid_resolution(grid_resolution.value),
            max_line=line_limit,
            max_inflate=max_inflate,
            progress=progress,
            storage_options=storage_options,
        )
    from wattledger.summary import format_estimate_summary

    typer.echo(_lines(format_estimate_summary(summary, rejects=rejects)))
    for warning in summary.warnings:
        _note(f"warning: {warning}")


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@app.command()
@_one_line_on_ctrl_c
def report(
    ledger: Annotated[Path, typer.Option(help="Ledger DuckDB file.")],
    year: Annotated[int, typer.Option(help="UTC calendar year, e.g. 2025.")],
    month: Annotated[int | None, typer.Option(min=1, max=12, help="UTC calendar month 1..12.")] = None,
    by: Annotated[By, typer.Option(help="Group rows by this key.")] = By.model,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = ReportFormat.table,
    out: Annotated[Path | None, typer.Option(help="Write here (atomically) instead of stdout.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    site: Annotated[
        str | None, typer.Option(help="Only this site (as the ledger stores it; not with --document).")
    ] = None,
    threads: ThreadsOpt = 0,
    strict: StrictOpt = False,
    document: Annotated[
        bool,
        typer.Option(
            "--document",
            help="Print the regulatory rollup (as `wattledger rollup`) in this format instead of the "
            "table; --format html always does.",
        ),
    ] = False,
    wide: WideOpt = False,
) -> None:
    """Energy and emissions of a UTC year or month from the ledger (methodology section 9).
    With --format html, or --document, the regulatory rollup document instead."""
    from wattledger.ledger import connect_ledger, outcome_coverage_message
    from wattledger.report import (
        configs_relation,
        mixed_config_message,
        report_relation,
        rows_without_outcomes,
        run_warnings_message,
        runs_with_warnings,
        use_threads,
    )

    if fmt == ReportFormat.html or document:
        # The filing document (issue: report --format md|html|json|csv): html only exists as
        # the document; md/json/csv become it with --document, and otherwise stay the plain
        # section 9 table whose csv header is a contract.
        if site is not None:
            # The filing document is a provider's whole fleet per model (Annex XI); a one-site
            # slice of it would read as the model's total.
            _fail(
                "--site filters the report table, not the document: drop --site, or --document/--format html",
                EXIT_INPUT,
            )
        doc_fmt = RollupFormat(fmt.value) if fmt != ReportFormat.table else RollupFormat.md
        rollup(
            ledger=ledger,
            year=year,
            month=month,
            model=model,
            fmt=doc_fmt,
            out=out,
            threads=threads,
            strict=strict,
        )
        return
    with _user_errors(ledger=ledger):
        con = connect_ledger(ledger)
        try:
            _check_name_filter(con, "model", model, year, month)
            _check_name_filter(con, "site", site, year, month)
            use_threads(con, threads)
            # Plain rows, not polars: a report is a few dozen rows, and skipping the polars and
            # pyarrow imports halves the command's run time.
            frame = formatting.ResultRows.from_relation(
                report_relation(con, year=year, month=month, by=by.value, model=model, site=site)
            )
            configs = formatting.ResultRows.from_relation(
                configs_relation(con, year=year, month=month, model=model, site=site)
            )
            partial = rows_without_outcomes(con, year=year, month=month, model=model, site=site)
            warned = runs_with_warnings(con, year=year, month=month, model=model, site=site)
        finally:
            con.close()
        period = f"{year}" if month is None else f"{year}-{month:02d}"
        notes = [
            *([mixed_config_message(configs)] if configs.height > 1 else []),
            *([outcome_coverage_message(partial)] if partial else []),
            *([run_warnings_message(warned)] if warned else []),
            *([f"the ledger has no rows in {period}"] if frame.height == 0 else []),
        ]
        _warn_or_fail(notes, strict)
        width = None if wide or out is not None else formatting.terminal_width()
        text = formatting.render(frame, fmt.value, title=f"{period} by {by.value} (UTC)", max_width=width)
        if fmt in (ReportFormat.table, ReportFormat.md):
            text += _lines(_provenance(configs, fmt))  # pack names are user text
        _emit(text, out)


def _check_name_filter(
    con: duckdb.DuckDBPyConnection, column: str, value: str | None, year: int, month: int | None
) -> None:
    """Exit 2 with the names that exist when ``--model``/``--site`` matches none in the period."""
    if value is None:
        return
    from wattledger.filters import no_match_message

    message = no_match_message(con, column=column, value=value, year=year, month=month)
    if message:
        _fail(message, EXIT_INPUT)


def _provenance(configs: formatting.ResultRows, fmt: ReportFormat) -> str:
    lines = [
        f"config: {row['name'] or '?'} {row['version'] or '?'} "
        f"sha256 {row['config_sha256']} ({row['origin']})"
        for row in configs.iter_rows(named=True)
    ]
    if not lines:
        return ""
    if fmt == ReportFormat.md:
        return "\n" + "".join(f"- {line}\n" for line in lines)
    return "".join(f"{line}\n" for line in lines)


# --------------------------------------------------------------------------------------------
# rollup
# --------------------------------------------------------------------------------------------


@app.command()
@_one_line_on_ctrl_c
def rollup(
    ledger: Annotated[Path, typer.Option(help="Ledger DuckDB file.")],
    year: Annotated[int, typer.Option(help="UTC calendar year, e.g. 2025.")],
    month: Annotated[int | None, typer.Option(min=1, max=12, help="UTC calendar month 1..12.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    fmt: Annotated[RollupFormat, typer.Option("--format", help="Document format.")] = RollupFormat.md,
    out: Annotated[Path | None, typer.Option(help="Write here (atomically) instead of stdout.")] = None,
    threads: ThreadsOpt = 0,
    strict: StrictOpt = False,
) -> None:
    """A regulatory rollup of a UTC year or month: per-model energy, emissions (location and
    market), efficiency, coverage, compute, model-card table, methodology and provenance.
    html is one self-contained file with charts that prints to PDF; json and csv are unrounded."""
    from wattledger.rollup import rollup as make_rollup

    with _user_errors(ledger=ledger):
        if model is not None:
            from wattledger.ledger import connect_ledger

            con = connect_ledger(ledger)
            try:
                _check_name_filter(con, "model", model, year, month)
            finally:
                con.close()
        from wattledger.progress import phase, should_show

        with phase(f"rendering the {fmt.value} document", show=should_show(None)):
            document = make_rollup(ledger, year=year, month=month, model=model, threads=threads)
            text = document.render(fmt.value)
        _warn_or_fail(document.warnings, strict)
        _emit(text, out)


# --------------------------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------------------------


@app.command()
@_one_line_on_ctrl_c
def validate(
    logs: LogsArg,
    column: ColumnOpt = None,
    preset: PresetOpt = None,
    rejects: RejectsOpt = None,
    config: Annotated[Path | None, typer.Option(help="Methodology pack (its [columns] apply).")] = None,
    max_line: MaxLineOpt = _DEFAULT_MAX_LINE_TEXT,
    max_inflate: MaxInflateOpt = DEFAULT_MAX_INFLATE,
    storage_option: StorageOpt = None,
) -> None:
    """Read LOG files without estimating: records, rejects by reason, columns found per file."""
    import polars as pl

    from wattledger.estimate import validate_files
    from wattledger.storage import parse_storage_options

    line_limit = _parse_size(max_line)
    with _user_errors():
        stats = validate_files(
            logs,
            columns=column,
            preset=preset,
            config=config,
            rejects=rejects,
            max_line=line_limit,
            max_inflate=max_inflate,
            storage_options=parse_storage_options(storage_option or ()),
        )
    frame = pl.DataFrame(
        {
            "path": [s.path for s in stats],
            "format": [s.format for s in stats],
            "records": [s.records for s in stats],
            "rejected": [s.rejected for s in stats],
            "rejects": [", ".join(f"{k} {v}" for k, v in sorted(s.rejects.items())) for s in stats],
            "columns_found": [" ".join(s.columns_found) for s in stats],
        },
        schema={
            "path": pl.String,
            "format": pl.String,
            "records": pl.Int64,
            "rejected": pl.Int64,
            "rejects": pl.String,
            "columns_found": pl.String,
        },
    )
    if any(s.skipped for s in stats):
        # Objects passed over on purpose (e.g. spans that are not GenAI calls): shown only when
        # there are some, so plain logs keep their usual table.
        frame = frame.with_columns(pl.Series("skipped", [_skipped_text(s) for s in stats], pl.String))
    typer.echo(formatting.to_table(frame), nl=False)
    from wattledger.mapping import is_unreadable, unreadable_message

    unreadable = [unreadable_message(s) for s in stats if is_unreadable(s)]
    if unreadable:
        _fail("; ".join(unreadable), EXIT_INPUT)
    total_rejected = int(frame["rejected"].sum())
    if total_rejected:
        where = f"; see {rejects}" if rejects else "; pass --rejects FILE to see them"
        _note(f"{total_rejected:,} rejected records{where}")
        raise typer.Exit(EXIT_REJECTS)


def _skipped_text(stats: FileStats) -> str:
    detail = ", ".join(f"{k} {v}" for k, v in sorted(stats.skip_reasons.items()))
    return f"{stats.skipped}" + (f" ({detail})" if detail else "")


# --------------------------------------------------------------------------------------------
# grid summary
# --------------------------------------------------------------------------------------------


@grid_app.command("summary")
@_one_line_on_ctrl_c
def grid_summary(
    grids: Annotated[
        list[Path], typer.Argument(help="Grid intensity CSV files (FILE or FILE@ZONE).", show_default=False)
    ],
    lifecycle: Annotated[bool, typer.Option(help="Use life-cycle instead of direct factors.")] = False,
    grid_resolution: GridResolutionOpt = GridResolution.hour,
) -> None:
    """Zones, hour coverage and gaps of grid intensity files."""
    import polars as pl

    from wattledger.config import load_grid, parse_grid_resolution

    with _user_errors():
        grid = load_grid(grids, lifecycle, parse_grid_resolution(grid_resolution.value))
        summary = grid.summary()
    for warning in grid.warnings:
        _note(f"warning: {warning}")
    frame = pl.DataFrame(
        {
            "zone": [z.zone for z in summary],
            "first_hour": [z.first_hour for z in summary],
            "last_hour": [z.last_hour for z in summary],
            "hours_with_value": [z.hours_with_value for z in summary],
            "hours_missing": [z.hours_missing for z in summary],
            "gaps": [len(z.gaps) for z in summary],
            "first_gap": [_gap(z.gaps) for z in summary],
            "mean_g_per_kwh": [z.mean_g_per_kwh for z in summary],
        },
        schema_overrides={"mean_g_per_kwh": pl.Float64, "first_gap": pl.String},
    )
    typer.echo(formatting.to_table(frame, title="grid intensity coverage (UTC hours)"), nl=False)


def _gap(gaps: list[tuple[str, str]]) -> str | None:
    return f"{gaps[0][0]} .. {gaps[0][1]}" if gaps else None


# --------------------------------------------------------------------------------------------
# sql
# --------------------------------------------------------------------------------------------


@app.command()
@_one_line_on_ctrl_c
def sql(
    ledger: Annotated[Path, typer.Option(help="Ledger DuckDB file (opened read-only).")],
    query: Annotated[str | None, typer.Argument(help="SQL; omit for an interactive prompt.")] = None,
    fmt: Annotated[SqlFormat, typer.Option("--format", help="Output format.")] = SqlFormat.table,
    config: Annotated[
        Path | None,
        typer.Option(help="Methodology pack for the wl_* functions; default: the latest run's."),
    ] = None,
    allow_read: Annotated[
        list[Path] | None,
        typer.Option(
            "--allow-read",
            help="Let queries read files under this directory (or this file), e.g. raw logs for "
            "read_json/read_parquet/read_csv (repeatable). Nothing else outside the ledger is "
            "readable, and nothing is writable.",
        ),
    ] = None,
    wide: WideOpt = False,
) -> None:
    """Query the ledger read-only: views energy_hourly, energy_daily, energy_by_model_month,
    energy_by_model_year, runs, sources, source_names; what-if functions wl_energy_wh(model, hardware,
    input_tokens, output_tokens, duration_s, energy_j), wl_energy_method(...) and the
    site-aware wl_energy_wh_at/wl_energy_method_at(model, hardware, site, gpus, ...) over raw
    logs (read_json, read_parquet, read_csv of files under --allow-read DIR). Queries cannot
    read or write other files (COPY, EXPORT, ATTACH, INSTALL/LOAD are refused); Ctrl-C stops
    the running query."""
    from wattledger import connect

    with _user_errors(ledger=ledger):
        try:
            con = connect(ledger, config=config, allow_read=allow_read or ())
        except duckdb.Error as exc:  # a damaged file DuckDB opens but cannot read
            from wattledger.integrity import is_damage

            if is_damage(exc):
                raise  # _user_errors words it as every other command does
            _fail(f"ledger {ledger} cannot be read ({_sql_error(exc)}); it may be damaged", EXIT_INPUT)
    session = _SqlSession(con, wide=wide)
    try:
        if query is not None:
            try:
                text = session.run(query, fmt.value)
            except _SqlRefused as exc:
                _fail(f"sql: {exc}", EXIT_INPUT)
            except (KeyboardInterrupt, duckdb.InterruptException):
                _fail("sql: interrupted; the query was stopped", EXIT_INTERRUPTED)
            except duckdb.Error as exc:
                from wattledger.integrity import damaged_error, first_line, is_damage

                if is_damage(exc):  # a damaged block the query read: the ledger's own message
                    _fail(str(damaged_error(str(ledger), first_line(exc))), EXIT_INPUT)
                _fail(f"sql: {_sql_error(exc)}", EXIT_INPUT)
            with _user_errors():
                typer.echo(text, nl=False)
            return
        _repl(session, fmt.value)
    finally:
        session.close()


class _SqlRefused(Exception):
    """A statement `wattledger sql` does not run (see lockdown.refusal)."""


def _sql_error(exc: duckdb.Error) -> str:
    from wattledger.lockdown import explain

    return explain(exc)


_Rows = formatting.ResultRows | None

#: How long an interrupted statement may take to return before the CLI stops waiting for it.
_INTERRUPT_GRACE_SECONDS = 2.0


class _SqlSession:
    """The connection of one `wattledger sql`. Each statement runs on a worker thread so Ctrl-C
    reaches the main thread while DuckDB computes (Python runs signal handlers only between
    bytecodes, never inside DuckDB), which then calls ``con.interrupt()``: the query stops
    within a second and the ledger's lock goes with the connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, wide: bool = False) -> None:
        self.con = con
        #: Every column of a table, however wide; else as wide as the terminal is now.
        self.wide = wide
        #: An interrupted statement did not return in time: closing would wait for it.
        self.stuck = False

    def close(self) -> None:
        if self.stuck:
            return  # the process exit releases the lock
        try:
            self.con.close()
        except duckdb.Error:
            pass  # still busy after an interrupt: the process exit releases the lock

    def run(self, query: str, fmt: str) -> str:
        """``query``'s result rendered in ``fmt``; raises _SqlRefused before running a
        statement the lockdown refuses, KeyboardInterrupt when interrupted."""
        from wattledger.lockdown import refusal
        from wattledger.sql_results import fetch

        why = refusal(self.con, query)
        if why:
            raise _SqlRefused(why)

        def work() -> formatting.ResultRows | None:
            rel = self.con.sql(query)
            return None if rel is None else fetch(rel, fmt)

        rows = self._interruptible(work)
        if rows is None:  # a statement without a result (SET, PRAGMA ...)
            return "ok\n"
        width = None if self.wide else formatting.terminal_width()  # the terminal may be resized
        return formatting.render(rows, fmt, max_width=width)

    def _interruptible(self, work: Callable[[], _Rows]) -> _Rows:
        import threading

        # Lists, filled by the worker: the statement's value or the exception it raised.
        value: list[_Rows] = []
        error: list[BaseException] = []
        # An Event, not Thread.join: a join interrupted by Ctrl-C may take the thread for done.
        done = threading.Event()

        def target() -> None:
            try:
                value.append(work())
            except BaseException as exc:  # re-raised on the main thread
                error.append(exc)
            finally:
                done.set()

        threading.Thread(target=target, name="wattledger-sql", daemon=True).start()
        try:
            while not done.wait(0.05):
                pass
        except KeyboardInterrupt:
            self.con.interrupt()
            self.stuck = not done.wait(_INTERRUPT_GRACE_SECONDS)
            raise
        if error:
            raise error[0]
        return value[0]


def _repl(session: _SqlSession, fmt: str) -> None:
    """A minimal shell over stdin: statements end with ';', ``.tables`` lists the views,
    ``.quit`` leaves. Errors are reported and the prompt continues; Ctrl-C drops a half-typed
    statement or stops the running one and returns to the prompt. On a terminal, lines are
    edited and recalled with readline (history kept in :func:`history_path`). With stdin not a
    terminal (a script), Ctrl-C ends the run with exit 130."""
    interactive = sys.stdin.isatty()
    # input() edits lines only when stdin and stdout are both terminals; else the prompt goes
    # to stderr, so `wattledger sql ... > out.txt` keeps prompts out of the file.
    editing = interactive and sys.stdout.isatty() and _start_line_editing()
    if interactive:
        _note("wattledger sql (read-only). End statements with ';'. .tables lists views, .quit leaves.")
    buffer: list[str] = []
    try:
        while True:
            try:
                prompt = "        ...> " if buffer else "wattledger> "
                line = _read_line(prompt, editing=editing, interactive=interactive)
                stripped = line.strip()
                if not buffer and stripped in (".quit", ".exit"):
                    break
                if not buffer and stripped == ".tables":
                    stripped = "SELECT view_name AS name FROM duckdb_views() WHERE NOT internal ORDER BY 1;"
                if stripped:
                    buffer.append(stripped)
                at_end = not line
                if buffer and (stripped.endswith(";") or at_end):
                    statement, buffer = " ".join(buffer), []
                    try:
                        _repl_statement(session, statement, fmt)
                    except KeyboardInterrupt:
                        if not interactive or session.stuck:
                            raise
                        _note("\ninterrupted; the query was stopped")
                if at_end:
                    break
            except KeyboardInterrupt:
                if not interactive or session.stuck:
                    _fail("sql: interrupted", EXIT_INTERRUPTED)
                if buffer:
                    _note("(statement dropped)")
                buffer = []
                if editing:
                    sys.stdout.write("\n")  # readline leaves the cursor after ^C
    finally:
        if editing:
            _save_history()


def history_path() -> Path:
    """Where `wattledger sql` keeps its prompt's history: ``$WATTLEDGER_HISTORY``, else
    ``$XDG_STATE_HOME/wattledger/sql_history`` (``~/.local/state`` by default, as the XDG base
    directory specification places history)."""
    import os

    explicit = os.environ.get("WATTLEDGER_HISTORY")
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "wattledger" / "sql_history"


#: Statements kept in the history file.
_HISTORY_LENGTH = 2000


def _start_line_editing() -> bool:
    """Import readline (the standard library's, no new dependency) and load the history;
    False where Python was built without it."""
    try:
        import readline
    except ImportError:
        return False
    readline.set_history_length(_HISTORY_LENGTH)
    try:
        readline.read_history_file(history_path())
    except OSError:
        pass  # no history yet, or unreadable: start empty
    return True


def _save_history() -> None:
    import readline

    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
    except OSError as exc:  # a read-only home: the session worked, only its history is lost
        _note(f"warning: cannot save the sql history to {path}: {exc.strerror or exc}")


def _read_line(prompt: str, *, editing: bool, interactive: bool) -> str:
    """The next line with its newline, or "" at end of input."""
    if editing:
        try:
            return input(prompt) + "\n"
        except EOFError:
            sys.stdout.write("\n")
            return ""
    if interactive:
        sys.stderr.write(prompt)
        sys.stderr.flush()
    return sys.stdin.readline()


def _repl_statement(session: _SqlSession, statement: str, fmt: str) -> None:
    if not statement.strip().strip(";").strip():
        return
    try:
        sys.stdout.write(session.run(statement, fmt))
        sys.stdout.flush()
    except _SqlRefused as exc:
        _note(f"error: {exc}")
    except duckdb.InterruptException:
        _note("interrupted")
    except duckdb.Error as exc:
        _note(f"error: {_sql_error(exc)}")
    except WattledgerError as exc:  # e.g. OutputError
        _note(f"error: {exc}")


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


@app.command()
@_one_line_on_ctrl_c
def export(
    ledger: Annotated[Path, typer.Option(help="Ledger DuckDB file (opened read-only).")],
    parquet: Annotated[
        Path, typer.Option(help="Directory to write year=YYYY/month=M/*.parquet into (atomically).")
    ],
    overwrite: Annotated[
        bool, typer.Option(help="Replace a non-empty directory (swapped in atomically).")
    ] = False,
) -> None:
    """Export the hourly aggregates (the energy_hourly view, nothing else) as hive-partitioned
    Parquet by UTC year and month, for data-lake readers."""
    from wattledger.export import export_parquet
    from wattledger.progress import phase, should_show

    with _user_errors(ledger=ledger), phase("writing Parquet", show=should_show(None)):
        result = export_parquet(ledger, parquet, overwrite=overwrite)
    verb = "replaced" if result.replaced else "wrote"
    _note(
        f"{verb} {result.directory}: {result.rows:,} hourly rows in {result.files} Parquet files, "
        f"{len(result.partitions)} year/month partitions"
    )


# --------------------------------------------------------------------------------------------
# migrate
# --------------------------------------------------------------------------------------------


@app.command()
@_one_line_on_ctrl_c
def migrate(ledger: Annotated[Path, typer.Option(help="Ledger DuckDB file to upgrade in place.")]) -> None:
    """Upgrade a ledger written by an older wattledger to the current schema, in one
    transaction. Rows written before request outcomes were counted keep NULL failed/cached
    counts (reports say so)."""
    from wattledger.ledger import migrate_ledger

    with _user_errors(ledger=ledger):
        changed = migrate_ledger(ledger)
    _note(f"{ledger}: {'upgraded' if changed else 'already'} at the current schema")


# --------------------------------------------------------------------------------------------
# forget
# --------------------------------------------------------------------------------------------


@app.command()
@_one_line_on_ctrl_c
def forget(
    ledger: Annotated[Path, typer.Option(help="Ledger DuckDB file.")],
    source: Annotated[
        Path | None, typer.Option(help="Forget this log file's contribution (its path as ingested).")
    ] = None,
    run: Annotated[str | None, typer.Option(help="Forget every contribution of this ingest run id.")] = None,
    wait: WaitOpt = 0.0,
) -> None:
    """Remove a source's or a run's contributions from the ledger in one transaction and print
    the ledger's totals before and after. The rows stay, marked forgotten (views sources and
    runs); the file can then be ingested again. Find paths and run ids with
    `wattledger sql --ledger L "SELECT * FROM sources"`."""
    from wattledger.ledger import forget as run_forget
    from wattledger.summary import format_forget

    if (source is None) == (run is None):
        _fail(
            "forget needs exactly one of --source PATH or --run ID; find them with "
            f'`wattledger sql --ledger {ledger} "SELECT * FROM sources"`',
            EXIT_INPUT,
        )
    with _user_errors("interrupted; the ledger is as it was before", ledger=ledger):
        result = run_forget(
            ledger, source=source, run=run, wait=wait, command=" ".join(["wattledger", *sys.argv[1:]])
        )
    typer.echo(_lines(format_forget(result)))


# --------------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------------


class CheckFormat(str, enum.Enum):
    text = "text"
    json = "json"


@app.command()
@_one_line_on_ctrl_c
def check(
    ledger: Annotated[Path, typer.Option(help="Ledger DuckDB file (opened read-only, never changed).")],
    fmt: Annotated[CheckFormat, typer.Option("--format", help="Output format.")] = CheckFormat.text,
) -> None:
    """Check a ledger without changing it: every block's checksum and the file's size, then every
    run's hourly rows re-summed against the totals recorded when it committed. Exit 0 when
    sound, 7 when damage is found (what and where are printed), 2 when it is not a ledger."""
    from wattledger.integrity import check as run_check
    from wattledger.integrity import format_check

    with _user_errors(ledger=ledger):
        result = run_check(ledger)
    if fmt == CheckFormat.json:
        import dataclasses
        import json

        payload = {**dataclasses.asdict(result), "sound": result.sound}
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        typer.echo(format_check(result), nl=False)
    if not result.sound:
        raise typer.Exit(EXIT_DAMAGED)


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


@app.command()
@_one_line_on_ctrl_c
def demo(
    records: Annotated[int, typer.Option(min=1, help="Synthetic records to generate.")] = 1_000_000,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write logs, grid, config, ledger.")
    ] = Path("wattledger-demo"),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    progress: ProgressOpt = None,
) -> None:
    """Generate a SYNTHETIC year of fleet logs and grid data, ingest it, print the annual table.
    --dir must be new, empty or an earlier demo's (it refuses a directory holding other files:
    the demo replaces its files there)."""
    from wattledger.demo import run_demo

    with _user_errors():
        result = run_demo(directory, records=records, seed=seed, progress=progress)
    from wattledger.summary import format_demo

    typer.echo(_lines(format_demo(result)))


@app.command()
@_one_line_on_ctrl_c
def calibrate(
    logs: Annotated[
        list[str],
        typer.Argument(
            help="Log files, directories, globs or object storage URLs (credentials from the environment) "
            "with measured energy_j.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the calibrated pack (TOML).")],
    config: Annotated[
        Path | None, typer.Option(help="Methodology pack TOML to start from; default: the built-in pack.")
    ] = None,
    holdout: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.95, help="Share of requests held out to judge the fit and size its band."
        ),
    ] = 0.2,
    min_records: Annotated[
        int,
        typer.Option(min=1, help="Measured records a (model, hardware) or a hardware needs to be fitted."),
    ] = 50,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the held-out split (a hash of each request).")
    ] = 0,
    column: ColumnOpt = None,
    preset: PresetOpt = None,
    site: SiteOpt = None,
    threads: Annotated[int, typer.Option(min=0, help="Engine threads; 0 = all cores.")] = 0,
    progress: ProgressOpt = None,
) -> None:
    """Fit token coefficients per (model, hardware) and a gpu_time utilization per hardware to
    the records that carry measured energy_j; write the input pack plus the calibrated entries
    (each with its provenance and a held-out 90 % band) to --out. Exit 2 when nothing can be
    fitted. See docs/calibration.md."""
    from wattledger.calibrate import calibrate as run_calibrate
    from wattledger.calibrate import table

    with _user_errors():
        result = run_calibrate(
            logs,
            out=out,
            config=config,
            holdout=holdout,
            min_records=min_records,
            seed=seed,
            columns=column,
            preset=preset,
            site=site,
            threads=threads,
            progress=progress,
        )
    typer.echo(_lines(table(result)), nl=False)
    _note(f"wrote {out}")
    for warning in result.warnings:
        _note(f"warning: {warning}")


def app_for(args: list[str]) -> typer.Typer:
    """The app that runs ``wattledger ARGS``: for ``wattledger COMMAND ...`` one that holds only
    that top-level command, else the whole app.

    Why: typer turns every registered command into a click command before it parses anything,
    reading each signature; for the ten commands here that is about 0.017 s of every run, a
    large share of the 0.25 s start-up budget of ``wattledger report``. A group holding one
    command parses and prints exactly as the whole app does for that command (usage lines,
    errors, ``--help``; tests/test_startup.py compares them); ``wattledger``, ``--help`` and
    ``grid ...`` keep the whole app."""
    from typer.main import get_command_name

    name = args[0] if args else None
    chosen = [
        c
        for c in app.registered_commands
        if (c.name or get_command_name(c.callback.__name__ if c.callback else "")) == name
    ]
    if len(chosen) != 1:
        return app
    one = _new_app()
    # Its callback (--version) keeps it a group: with one command and no callback, typer would
    # run that command without its name on the command line.
    one.registered_commands = chosen
    return one


def main() -> None:
    """Run the CLI on ``sys.argv`` (the ``wattledger`` script and ``python -m wattledger`` call
    this through :mod:`wattledger.__main__`)."""
    from wattledger.interrupts import install

    install()  # Ctrl-C stops a running DuckDB statement at once, not when it ends
    try:
        app_for(sys.argv[1:])()
    except KeyboardInterrupt:  # outside any command (while typer builds them from this module)
        typer.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
