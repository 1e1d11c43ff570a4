"""wattledger: absolute yearly inference energy and emissions per AI model.

Fleet request logs are estimated by a Rust engine (methodology v1), joined hour by hour with
grid carbon intensity, and ledgered in a DuckDB file that reports and ad-hoc SQL read.

Typical use::

    import wattledger as wl

    summary = wl.ingest(["logs/2025-06-01/"], ledger="fleet.duckdb", grid=["grid.csv"])
    annual = wl.report("fleet.duckdb", year=2025)          # polars DataFrame, one row per model
    doc = wl.rollup("fleet.duckdb", year=2025).to_html()    # filing document (md/html/json/csv)
    hourly = wl.estimate(frame, grid=["grid.csv"])          # no ledger: a DataFrame or LazyFrame
    wl.register(duckdb_con, config="pack.toml")             # wl_energy_wh() & co. in any DuckDB

Per-record energy inside a Polars query: :mod:`wattledger.polars` (``import wattledger.polars``
also registers ``pl.col("model").wl.energy_wh(...)``).
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from typing import TYPE_CHECKING

# Why lazy: every `wattledger` command imports this package first, and the modules behind the
# public names import DuckDB (`wattledger --help` took 0.16 s of CPU after the interpreter with
# them, 0.06 s without). Each public name is imported on first use instead (PEP 562); the CLI
# imports what a command needs inside that command. Type checkers read the imports below, so `from wattledger
# import X`, completion and `mypy --strict` see the same names as before.
if TYPE_CHECKING:
    from collections.abc import Sequence

    import duckdb
    import polars as pl

    from wattledger import _core
    from wattledger.calibrate import calibrate
    from wattledger.config import load_config, load_grid
    from wattledger.errors import (
        CancelledError,
        ConfigError,
        GridError,
        InputError,
        InternalError,
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
    from wattledger.estimate import EstimateSummary, estimate, estimate_parquet, read_logs, validate
    from wattledger.ingest import IngestSummary, ingest
    from wattledger.integrity import CheckResult, RunCheckResult, TotalsMismatch, check
    from wattledger.ledger import ForgetResult, LedgerTotals, forget, migrate_ledger
    from wattledger.ledger import connect_ledger as connect_ledger  # offered, though not in __all__
    from wattledger.report import configs_in_period, report
    from wattledger.rollup import Rollup, rollup
    from wattledger.udf import register

    __version__: str

__all__ = [
    "CancelledError",
    "CheckResult",
    "ConfigError",
    "EstimateSummary",
    "ForgetResult",
    "GridError",
    "IngestSummary",
    "InputError",
    "InternalError",
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
    "calibrate",
    "check",
    "configs_in_period",
    "connect",
    "estimate",
    "estimate_parquet",
    "forget",
    "ingest",
    "load_config",
    "load_grid",
    "migrate_ledger",
    "read_logs",
    "register",
    "report",
    "rollup",
    "scan_ledger",
    "validate",
]

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    # Every exception and warning class is defined (or re-exported) by `errors`.
    **dict.fromkeys((n for n in __all__ if n.endswith(("Error", "Warning"))), "wattledger.errors"),
    "calibrate": "wattledger.calibrate",
    "load_config": "wattledger.config",
    "load_grid": "wattledger.config",
    "estimate": "wattledger.estimate",
    "estimate_parquet": "wattledger.estimate",
    "EstimateSummary": "wattledger.estimate",
    "read_logs": "wattledger.estimate",
    "validate": "wattledger.estimate",
    "IngestSummary": "wattledger.ingest",
    "ingest": "wattledger.ingest",
    "CheckResult": "wattledger.integrity",
    "RunCheckResult": "wattledger.integrity",
    "TotalsMismatch": "wattledger.integrity",
    "check": "wattledger.integrity",
    "ForgetResult": "wattledger.ledger",
    "LedgerTotals": "wattledger.ledger",
    "connect_ledger": "wattledger.ledger",  # not in __all__, but `import wattledger` offered it
    "forget": "wattledger.ledger",
    "migrate_ledger": "wattledger.ledger",
    "configs_in_period": "wattledger.report",
    "report": "wattledger.report",
    "Rollup": "wattledger.rollup",
    "rollup": "wattledger.rollup",
    "register": "wattledger.udf",
}


# The functions `estimate`, `ingest`, `report` and `rollup` share their names with the modules
# that define them. Importing such a module (as `from wattledger.report import ...` does) makes
# the import system set it as an attribute of this package, which would hide the function:
# `wl.report(...)` must stay the function, as it was when this package imported everything.
_FUNCTIONS_NAMED_LIKE_MODULES = frozenset(
    name for name, module in _LAZY.items() if module == f"{__name__}.{name}"
)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        if name in _FUNCTIONS_NAMED_LIKE_MODULES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def _load(module: str) -> types.ModuleType:
    # __import__, not importlib.import_module: only imports made through it are listed by
    # `python -X importtime`, which is how start-up is examined (benchmarks/startup.py).
    __import__(module)
    return sys.modules[module]


if not TYPE_CHECKING:  # hidden from type checkers, which would otherwise accept any attribute

    def __getattr__(name: str) -> object:
        """A public name, imported on first use (then cached in the module's namespace)."""
        module = _LAZY.get(name)
        if module is not None:
            value = getattr(_load(module), name)
        elif name == "__version__":
            value = _load(f"{__name__}._core").__version__
        elif name.startswith("__"):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        else:
            # A submodule (`wl._core`, `wl.schema`): reachable as an attribute after a bare
            # `import wattledger`, as when this package imported its modules up front.
            try:
                value = _load(f"{__name__}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{name}":
                    raise  # a dependency of that module is missing: say so
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
    from wattledger.config import load_config
    from wattledger.errors import ConfigError
    from wattledger.lockdown import open_locked

    con = open_locked(ledger, read_only=read_only, allow_read=allow_read)
    try:
        active: _core.Config | None
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
    from wattledger.ledger import connect_ledger

    con = connect_ledger(ledger, read_only=True)
    frame: pl.LazyFrame = con.sql("SELECT * FROM energy_hourly").pl(lazy=True)
    return frame
