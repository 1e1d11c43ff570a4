"""Every error wattledger raises, under one base class.

The engine's errors come from the Rust extension; the ledger's are defined here as subclasses
of the same base, so ``except wattledger.WattledgerError`` catches all of them and the CLI can
turn each into one ``error: ...`` line with its own exit code. The engine's errors carry
``path``, ``line`` and ``key`` (None where unknown) for callers that tell failures apart;
:class:`InternalError` is a bug in wattledger, never bad input (the CLI exits with 70).
"""

from __future__ import annotations

from wattledger._core import (
    CancelledError,
    ConfigError,
    GridError,
    InputError,
    InternalError,
    OutputError,
    UsageError,
    WattledgerError,
)

__all__ = [
    "CancelledError",
    "ConfigError",
    "GridError",
    "InputError",
    "InternalError",
    "LedgerBusyError",
    "LedgerDamagedError",
    "LedgerError",
    "LedgerNotFoundError",
    "LedgerSchemaError",
    "MixedConfigWarning",
    "NoRecordsError",
    "OutputError",
    "PartialOutcomeWarning",
    "RunWarning",
    "SourceConflictError",
    "StrictWarningError",
    "UnknownSourceError",
    "UsageError",
    "WattledgerError",
]


class LedgerError(WattledgerError):
    """The ledger database could not be opened, read or written (path, permissions, disk)."""


class LedgerBusyError(LedgerError):
    """Another process holds the ledger's file lock (a concurrent ingest). Retrying later is safe."""


class LedgerDamagedError(LedgerError):
    """The ledger file is damaged: truncated, a block whose checksum does not match, a header
    that is not DuckDB's. It is left untouched; restore it from a backup (``wattledger check``
    says what is wrong). The CLI exits with code 2. ``detail`` says what DuckDB found."""

    detail: str = ""


class LedgerNotFoundError(LedgerError):
    """A read needs a ledger that does not exist yet."""


class LedgerSchemaError(LedgerError):
    """The file is not a wattledger ledger, or was written by a newer schema version."""


class SourceConflictError(LedgerError):
    """A log file's contribution would be counted twice: the same path (or the same bytes under
    another path) was ingested before with different content, pack or column mapping.
    ``replace=True`` swaps the old contribution out."""


class NoRecordsError(InputError):
    """No record could be read from a log file (its columns are probably named otherwise): the
    message lists the columns seen and a mapping to try. Nothing is recorded for such a file."""


class UnknownSourceError(LedgerError):
    """``forget`` was given a source path or run id the ledger holds no live contribution of."""


class StrictWarningError(WattledgerError):
    """``strict`` was asked for and the run (or report) had warnings: it stops instead of
    producing numbers that carry them. The CLI exits with code 6."""


class MixedConfigWarning(UserWarning):
    """A report period sums numbers produced by more than one methodology config."""


class PartialOutcomeWarning(UserWarning):
    """A report period includes hourly rows ingested before request outcomes were counted
    (ledger schema 1): their failed_requests/cached_requests are NULL, so the sums cover only
    the rows ingested since."""


class RunWarning(UserWarning):
    """A warning of the engine about a run (a zone matched ignoring case, a status value no
    list recognises); :func:`wattledger.estimate` emits one per message."""
