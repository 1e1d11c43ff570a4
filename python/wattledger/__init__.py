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

import duckdb
import polars as pl

from wattledger import _core
from wattledger.config import load_config, load_grid
from wattledger.errors import (
    CancelledError,
    ConfigError,
    GridError,
    InputError,
    LedgerBusyError,
    LedgerError,
    LedgerNotFoundError,
    LedgerSchemaError,
    MixedConfigWarning,
    OutputError,
    SourceConflictError,
    UsageError,
    WattledgerError,
)
from wattledger.estimate import estimate, read_logs, validate
from wattledger.ingest import IngestSummary, ingest
from wattledger.ledger import connect_ledger
from wattledger.report import configs_in_period, report
from wattledger.rollup import Rollup, rollup

__version__: str = _core.__version__

__all__ = [
    "CancelledError",
    "ConfigError",
    "GridError",
    "IngestSummary",
    "InputError",
    "LedgerBusyError",
    "LedgerError",
    "LedgerNotFoundError",
    "LedgerSchemaError",
    "MixedConfigWarning",
    "OutputError",
    "Rollup",
    "SourceConflictError",
    "UsageError",
    "WattledgerError",
    "__version__",
    "configs_in_period",
    "connect",
    "estimate",
    "ingest",
    "load_config",
    "load_grid",
    "read_logs",
    "report",
    "rollup",
    "scan_ledger",
    "validate",
]


def connect(ledger: str | os.PathLike[str], read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the ledger, with its views (``energy_hourly``, ``energy_daily``,
    ``energy_by_model_month``, ``energy_by_model_year``, ``runs``, ``sources``).

    Read-only by default so exploration can never alter the ledger. While any connection is
    open, DuckDB's file lock keeps an ingest from writing (it fails with LedgerBusyError):
    close it when done.
    """
    return connect_ledger(ledger, read_only=read_only)


def scan_ledger(ledger: str | os.PathLike[str]) -> pl.LazyFrame:
    """The ledger's ``energy_hourly`` view as a polars LazyFrame (section 8 keys and measures).

    Filters and projections are evaluated by DuckDB on collect. The LazyFrame keeps a read-only
    connection (and so the file's shared lock) until it is garbage-collected.
    """
    con = connect_ledger(ledger, read_only=True)
    return con.sql("SELECT * FROM energy_hourly").pl(lazy=True)
