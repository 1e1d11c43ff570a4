"""How a log file was read (its column mapping), and what to say when no record could be read.

The mapping is part of a source's identity in the ledger: the same bytes read with another
``--preset``, other ``--column`` rules or another ``--site`` give other records, so the ledger
keeps a canonical text of it (``read_as``) next to the content hash and the pack's hash.

A file from which no record could be read is never silently counted as done. The message says
which required columns are missing, which names the file has, and a mapping to try; the
suggestion comes from the engine (``_core.suggest_mapping``), which owns the presets, so preset
field names are not repeated here.
"""

from __future__ import annotations

import csv
import json
import shlex
from collections.abc import Iterable, Sequence

from wattledger import _core
from wattledger.errors import NoRecordsError

#: Columns without which no record can be read (methodology section 1).
REQUIRED_COLUMNS: tuple[str, ...] = ("ts", "model")

#: The text shown for the empty mapping (``read_as`` = "").
DEFAULT_MAPPING_TEXT = "the default mapping (no --preset, --column or --site)"


def read_as_text(preset: str | None, rules: Sequence[str], site: str | None) -> str:
    """The canonical text of how files are read: the options in CLI spelling, in a fixed order
    (preset, then the --column rules in the order given, then --site); "" for the default.

    Whitespace around a rule's ``=`` is dropped so ``ts = timestamp`` and ``ts=timestamp`` are
    one mapping; the rules' order is kept because a later rule for the same column wins."""
    parts: list[str] = []
    if preset:
        parts += ["--preset", preset]
    for rule in rules:
        canonical, _, source = rule.partition("=")
        parts += ["--column", f"{canonical.strip()}={source.strip()}"]
    if site:
        parts += ["--site", site]
    return shlex.join(parts)


def describe_read_as(text: str | None) -> str:
    """``read_as`` for people: NULL (a source ingested before schema 3) says it was unknown."""
    if text is None:
        return "an unrecorded mapping (ingested before ledger schema 3; taken as the default)"
    return f"`{text}`" if text else DEFAULT_MAPPING_TEXT


_TEXT_FORMATS = ("csv", "jsonl")


def read_text_head(path: str, fmt: str | None) -> bytes | None:
    """The first bytes of a text log after decompression; None for Parquet/Arrow or when they
    cannot be read. Read once per unreadable file and shared by the two diagnoses below."""
    if fmt not in _TEXT_FORMATS:
        return None
    try:
        return _core.read_head(path)
    except (OSError, ValueError, _core.WattledgerError):
        return None


def text_problem(path: str, fmt: str | None, head: bytes | None) -> str | None:
    """Why a text log cannot be read at all (UTF-16, Windows-1252, ';'-separated), with the fix;
    None when its head looks like UTF-8, comma-separated text."""
    return None if head is None else _core.text_problem(head, path, csv=fmt == "csv")


def columns_seen(path: str, fmt: str | None, head: bytes | None = None) -> list[str]:
    """The file's own top-level column names: a CSV header, the keys of the first JSON record,
    a Parquet schema. Best effort (empty when the head does not parse): it only feeds a hint."""
    if fmt == "parquet":
        if _core.is_url(path):
            return []  # pyarrow would open the object with clients of its own, not the run's
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (OSError, ValueError):
            return []
    if head is None:
        head = read_text_head(path, fmt)
    if head is None:
        return []
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if fmt == "csv":
        first = text.splitlines()[0] if text.strip() else ""
        return [c.strip() for c in next(csv.reader([first]), [])]
    return _json_keys(text)


def _json_keys(head: str) -> list[str]:
    text = head.lstrip()
    decoder = json.JSONDecoder()
    try:
        if text.startswith("["):
            value, _ = decoder.raw_decode(text[1:].lstrip())
        else:
            value, _ = decoder.raw_decode(text)
    except ValueError:
        return []
    if isinstance(value, dict) and isinstance(value.get("data"), list) and value["data"]:
        value = value["data"][0]  # a paginated document: its records are the data array's items
    return [str(k) for k in value] if isinstance(value, dict) else []


def arrow_columns(data: object) -> list[str]:
    """Column names of an Arrow-exportable object (polars, pyarrow, DuckDB relation)."""
    for attr in ("columns", "column_names"):
        names = getattr(data, attr, None)
        if isinstance(names, list | tuple) and all(isinstance(n, str) for n in names):
            return list(names)
    return []


def is_unreadable(stats: _core.FileStats) -> bool:
    """No record could be read although the file held something that looked like one."""
    return not stats.records and stats.rejected > 0


def is_empty(stats: _core.FileStats) -> bool:
    """Nothing in the file at all: no record, no reject, nothing passed over on purpose."""
    return not (stats.records or stats.rejected or stats.skipped)


def unreadable_message(stats: _core.FileStats, seen: Sequence[str] | None = None) -> str:
    """``PATH: no record could be read (2 rejected: missing ts 2); no column ts; saw timestamp,
    model_name: try --column ts=timestamp``. ``seen`` defaults to the file's own names."""
    path = stats.path
    found = list(stats.columns_found)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.rejects.items()))
    text = f"{path}: no record could be read ({stats.rejected:,} rejected: {reasons})"
    if seen is None:
        fmt = stats.format
        head = read_text_head(path, fmt)
        problem = text_problem(path, fmt, head)
        if problem:  # garbled column names would only mislead: say what is wrong with the file
            return f"{text}: {problem}"
        seen = columns_seen(path, fmt, head)
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing:
        text += f"; no column {', '.join(missing)}"
    if seen:
        text += f"; saw {', '.join(seen[:12])}" + (f" and {len(seen) - 12} more" if len(seen) > 12 else "")
    hint = _core.suggest_mapping(list(seen), found) if missing else None
    if hint:
        return f"{text}: {hint}"
    if missing:
        return f"{text}: map them with --column {missing[0]}=NAME or a --preset (see docs/presets.md)"
    return f"{text}: fix the values or the mapping; --rejects FILE shows each rejected record"


def check_readable(files: Iterable[_core.FileStats], seen: Sequence[str] | None = None) -> None:
    """Raise :class:`NoRecordsError` naming every file from which no record could be read."""
    bad = [unreadable_message(f, seen) for f in files if is_unreadable(f)]
    if bad:
        raise NoRecordsError("; ".join(bad))
