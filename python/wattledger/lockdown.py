"""User-facing SQL connections (``wattledger.connect()``, ``wattledger sql``): the ledger and
nothing else.

Why: a "read-only" DuckDB connection still reads and writes any file the process may touch
(``COPY ... TO`` over another ledger, ``EXPORT DATABASE``, ``read_csv('/etc/passwd')``,
``ATTACH``, ``INSTALL``). A user connection therefore runs with DuckDB's
``enable_external_access = false`` (only the ledger's own files, plus the directories or files
given with ``allow_read``), ``lock_configuration = true`` (no query can ``SET`` that back), and
its ledger attached read-only unless asked otherwise.

Why a private DuckDB instance: DuckDB shares one database instance between every connection to
the same file in a process, and these settings are per instance. Locking the shared instance
would break the package's own connections (a report's ``SET threads``, an export's ``COPY``) in
a notebook that keeps ``wl.connect()`` open, and an unlocked internal connection opened first
would leave the user's unlocked. So the user connection is a fresh in-memory instance that
``ATTACH``es the ledger and makes it the default catalog.

DuckDB cannot allow reading a directory without also allowing ``COPY ... TO`` into it, and it
lets a query write into its own spill directory (``LEDGER.tmp``). ``wattledger sql`` closes
that gap with :func:`refusal`, which rejects file-writing statements before they run; a
``connect()`` caller runs their own Python, which can write files anyway.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from wattledger.errors import LedgerBusyError, UsageError
from wattledger.ledger import LEDGER_MEMORY_LIMIT, _is_lock_error, _open_error, connect_ledger

PathLike = str | os.PathLike[str]

#: Catalog names DuckDB reserves; a ledger file with such a stem is attached as ``ledger``.
_RESERVED_ALIASES = frozenset({"memory", "system", "temp", "main", "information_schema", "pg_catalog"})


def _quote_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _alias(path: str) -> str:
    """The catalog name ``duckdb.connect(path)`` would give (the file's stem), so queries that
    name it keep working."""
    stem = Path(path).name.split(".")[0]
    return "ledger" if not stem or stem.lower() in _RESERVED_ALIASES else stem


def readable_paths(allow_read: Iterable[PathLike]) -> tuple[list[str], list[str]]:
    """(directories, files) DuckDB may read besides the ledger, each given as typed and as its
    real path (a query may name either). Directories end with ``/`` so ``/data/logs`` does not
    also open ``/data/logs-private``."""
    directories: list[str] = []
    files: list[str] = []
    for entry in allow_read:
        given = os.path.abspath(os.fspath(entry))
        if os.path.isdir(given):
            target = directories
        elif os.path.isfile(given):
            target = files
        else:
            raise UsageError(f"--allow-read {os.fspath(entry)}: no such directory or file; check the path")
        for path in dict.fromkeys((given, os.path.realpath(given))):
            item = path.rstrip("/") + "/" if target is directories else path
            if item not in target:
                target.append(item)
    return directories, files


def open_locked(
    ledger: PathLike, *, read_only: bool = True, allow_read: Sequence[PathLike] = ()
) -> duckdb.DuckDBPyConnection:
    """The ledger in a private DuckDB instance with file access limited to the ledger (and
    ``allow_read``) and the configuration locked. ``read_only=False`` lets the connection change
    the ledger (and holds its exclusive lock); it never opens other files."""
    name = os.fspath(ledger)
    directories, files = readable_paths(allow_read)
    # The ledger's own opening checks (exists, is a ledger of this schema, not damaged), with
    # their one-line errors, before the file is attached here.
    connect_ledger(name, read_only=True).close()
    con = duckdb.connect()
    try:
        alias = _alias(name)
        mode = " (READ_ONLY)" if read_only else ""
        try:
            con.execute(f"ATTACH {_quote_str(os.path.abspath(name))} AS {_quote_ident(alias)}{mode}")
        except duckdb.Error as exc:
            if _is_lock_error(exc) or isinstance(exc, duckdb.ResourceInUseException):
                raise LedgerBusyError(
                    f"ledger {name} is busy: another wattledger run or connection holds it; retry later"
                ) from None
            raise _open_error(name, exc) from None
        con.execute(f"USE {_quote_ident(alias)}")
        # As the package's own connections (ledger._configure): UTC periods, bounded memory.
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = '{LEDGER_MEMORY_LIMIT}'")
        # Spill beside the ledger, as duckdb.connect(ledger) would, not into ./.tmp (DuckDB
        # allows its temp directory whatever enable_external_access says).
        con.execute(f"SET temp_directory = {_quote_str(os.path.abspath(name) + '.tmp')}")
        if directories:
            con.execute(f"SET allowed_directories = [{', '.join(map(_quote_str, directories))}]")
        if files:
            con.execute(f"SET allowed_paths = [{', '.join(map(_quote_str, files))}]")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET allow_persistent_secrets = false")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


# --------------------------------------------------------------------------------------------
# The statement gate of `wattledger sql`
# --------------------------------------------------------------------------------------------

#: Statement types that write files, attach databases or load code: refused before they run.
_REFUSED = {
    "COPY": "COPY writes or reads files",
    "COPY_DATABASE": "COPY FROM DATABASE writes a database",
    "EXPORT": "EXPORT DATABASE writes files",
    "ATTACH": "ATTACH opens another database file",
    "DETACH": "DETACH changes the attached ledger",
    "LOAD": "INSTALL/LOAD loads extensions",
    "EXTENSION": "extension statements install code",
    "PREPARE": "PREPARE is not available (it could hide any of these)",
}

#: The statement in ``EXPLAIN [ANALYZE] [(options)] statement`` (EXPLAIN ANALYZE runs it).
_EXPLAIN = re.compile(
    r"^\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*explain\b\s*(?:analy[sz]e\b)?\s*(?:\([^)]*\))?",
    re.IGNORECASE | re.DOTALL,
)

_ADVICE = (
    "`wattledger sql` reads the ledger only; write results with --format csv|json > FILE, "
    "or the ledger's Parquet with `wattledger export`"
)


def refusal(con: duckdb.DuckDBPyConnection, query: str) -> str | None:
    """Why ``query`` may not run in ``wattledger sql`` (checked for every statement before any
    runs), or None. Parse errors are left to execution, which reports them."""
    try:
        statements = con.extract_statements(query)
        for statement in statements:
            why = _statement_refusal(con, statement, depth=0)
            if why:
                return why
    except duckdb.Error:
        return None
    except ValueError:  # a statement type this duckdb module has no name for (UPDATE EXTENSIONS)
        return f"a statement of a kind wattledger does not know: refused; {_ADVICE}"
    return None


def _statement_refusal(con: duckdb.DuckDBPyConnection, statement: object, depth: int) -> str | None:
    kind = str(statement.type).rsplit(".", 1)[-1]  # type: ignore[attr-defined]
    if kind in _REFUSED:
        return f"{_REFUSED[kind]}: refused; {_ADVICE}"
    if kind == "EXPLAIN":
        text = statement.query  # type: ignore[attr-defined]
        match = _EXPLAIN.match(text)
        if match is None or depth > 3:
            return f"this EXPLAIN form is not understood: refused; {_ADVICE}"
        try:
            inner = con.extract_statements(text[match.end() :])
        except duckdb.Error:
            return None  # not parseable on its own: running it fails too
        for nested in inner:
            why = _statement_refusal(con, nested, depth + 1)
            if why:
                return why
    return None


def explain(exc: duckdb.Error) -> str:
    """DuckDB's refusals of the lockdown, said as what happened and what to do."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, duckdb.PermissionException):
        found = re.search(r'Cannot access (?:file|directory) "([^"]*)"', first)
        what = f"cannot open {found.group(1)}" if found else first.removeprefix("Permission Error: ")
        return (
            f"{what}: this connection reads only the ledger; pass --allow-read DIR "
            "(connect(..., allow_read=[DIR])) to read files under DIR"
        )
    locked = re.search(r'Cannot change configuration option "([^"]*)" - the configuration has been', first)
    if locked:
        return (
            f"setting {locked.group(1)} is locked in wattledger sql and wattledger.connect() "
            "(file access and limits are fixed for the session)"
        )
    return first
