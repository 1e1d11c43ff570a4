"""wattledger: absolute yearly inference energy and emissions per AI model.

Fleet request logs are estimated by a Rust engine (methodology v1), joined hour by hour with
grid carbon intensity, and ledgered in a DuckDB file that reports and ad-hoc SQL read.

Typical use::

    import wattledger as wl

    summary = wl.ingest(["logs/2025-06-01/"], ledger="fleet.duckdb", grid=["grid.csv"])
    annual = wl.report("fleet.duckdb", year=2025)          # polars DataFrame, one row per model
    doc = wl.rollup("fleet.duckdb", year=2025).to_html()    # filing document (md/html/json/csv)
    hourly = wl.estimate(frame, grid=["grid.csv"])          # no ledger: aggregates of a DataFrame
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from wattledger import _core
from wattledger.config import load_config, load_grid
from wattledger.errors import (
    CancelledError,
    ConfigError,
    GridError,
    InputError,
    LedgerBusyError,
    LedgerDamagedError,
    LedgerError,
    LedgerNotFoundError,
    LedgerSchemaError,
    MixedConfigWarning,
    NoRecordsError,
    OutputError,
    PartialOutcomeWarning,
    RunWarning,
    SourceConflictError,
    UnknownSourceError,
    UsageError,
    WattledgerError,
)
from wattledger.estimate import estimate, read_logs, validate
from wattledger.ingest import IngestSummary, ingest
from wattledger.integrity import CheckResult, RunCheckResult, TotalsMismatch, check
from wattledger.ledger import ForgetResult, LedgerTotals, connect_ledger, forget, migrate_ledger
from wattledger.report import configs_in_period, report
from wattledger.rollup import Rollup, rollup

if TYPE_CHECKING:
    from collections.abc import Sequence

    import duckdb
    import polars as pl

__version__: str = _core.__version__

__all__ = [
    "CancelledError",
    "CheckResult",
    "ConfigError",
    "ForgetResult",
    "GridError",
    "IngestSummary",
    "InputError",
    "LedgerBusyError",
    "LedgerDamagedError",
    "LedgerError",
    "LedgerNotFoundError",
    "LedgerSchemaError",
    "LedgerTotals",
    "MixedConfigWarning",
    "NoRecordsError",
    "OutputError",
    "PartialOutcomeWarning",
    "Rollup",
    "RunCheckResult",
    "RunWarning",
    "SourceConflictError",
    "TotalsMismatch",
    "UnknownSourceError",
    "UsageError",
    "WattledgerError",
    "__version__",
    "check",
    "configs_in_period",
    "connect",
    "estimate",
    "forget",
    "ingest",
    "load_config",
    "load_grid",
    "migrate_ledger",
    "read_logs",
    "report",
    "rollup",
    "scan_ledger",
    "validate",
]


def connect(
    ledger: str | os.PathLike[str],
    read_only: bool = True,
    *,
    config: str | os.PathLike[str] | _core.Config | None = None,
    allow_read: Sequence[str | os.PathLike[str]] = (),
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the ledger, with its views (``energy_hourly``, ``energy_daily``,
    ``energy_by_model_month``, ``energy_by_model_year``, ``runs``, ``sources``,
    ``source_names``) and the what-if
    functions of :mod:`wattledger.udf` (``wl_energy_wh`` and friends).

    The functions compute with ``config`` when given, else with the config of the ledger's
    latest run (so a what-if query matches what ingest would do today), else the built-in pack.

    The connection reads the ledger and nothing else (docs/querying.md, "What a query may
    touch"): DuckDB's ``enable_external_access`` is off, so ``COPY ... TO``, ``EXPORT
    DATABASE``, ``ATTACH``, ``INSTALL``/``LOAD`` and readers such as ``read_csv`` or
    ``read_blob`` are refused, except for reading the directories (or files) in
    ``allow_read``; the configuration is locked so no query can ``SET`` that back. It is a
    private DuckDB instance, so the package's own connections (report, export) are unaffected.

    Read-only by default so exploration can never alter the ledger. ``read_only=False`` lets
    statements change the ledger's tables (it holds the exclusive lock); the file lockdown
    stays. While any connection is open, DuckDB's file lock keeps an ingest from writing (it
    fails with LedgerBusyError): close it when done.
    """
    from wattledger import udf
    from wattledger.lockdown import open_locked

    con = open_locked(ledger, read_only=read_only, allow_read=allow_read)
    try:
        if config is not None:
            active = load_config(config)
        else:
            try:
                active = udf.latest_run_config(con)
            except ConfigError as exc:
                # Plain SQL over the views must keep working even if this version cannot parse
                # an old run's config; only the what-if functions need it.
                warnings.warn(
                    f"wl_* functions not registered: the latest run's config does not load ({exc}); "
                    "pass config=PATH",
                    stacklevel=2,
                )
                return con
        udf.register(con, active if active is not None else load_config(None))
    except BaseException:
        con.close()
        raise
    return con


def scan_ledger(ledger: str | os.PathLike[str]) -> pl.LazyFrame:
    """The ledger's ``energy_hourly`` view as a polars LazyFrame (section 8 keys and measures).

    Filters and projections are evaluated by DuckDB on collect. The LazyFrame keeps a read-only
    connection (and so the file's shared lock) until it is garbage-collected.
    """
    con = connect_ledger(ledger, read_only=True)
    return con.sql("SELECT * FROM energy_hourly").pl(lazy=True)
