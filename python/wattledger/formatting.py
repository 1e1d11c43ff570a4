"""Rendering result frames as text: table, csv, json, markdown.

Machine formats (csv, json) carry floats at full precision (``repr`` round-trips) so a
regulator's spreadsheet gets the ledger's exact numbers; human formats (table, md) round to
about four significant digits, which is all the methodology's uncertainty supports.
Rows here are report or query rows, not records: looping over them in Python is fine.

Machine formats never write ``Infinity`` or ``NaN`` (issue 11, point 5): the engine's bounds make
every ledger value finite, so a non-finite number here is a bug or a query that computes one,
and writing it is refused with :class:`~wattledger.OutputError` rather than passed on as a
token other JSON readers reject, or a string that looks like data.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wattledger._core import OutputError

if TYPE_CHECKING:  # polars stays unimported on paths that only print text (ingest, report)
    import duckdb
    import polars as pl

FORMATS: tuple[str, ...] = ("table", "csv", "json", "md")


def not_finite(value: object) -> OutputError:
    """The error for a non-finite number about to be written."""
    return OutputError(
        f"refusing to write the non-finite number {value!r}: every value wattledger commits is finite, "
        "so this is a bug or a query that computes one; nothing was written"
    )


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that refuses NaN and infinities (``allow_nan=False``) with an OutputError:
    how this package writes its JSON outputs."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError as exc:
        raise not_finite("NaN/Infinity") from exc


def exact(value: Any) -> Any:
    """A JSON/CSV-safe value without losing precision; a non-finite float is refused."""
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise not_finite(value)
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _csv_cell(value: Any) -> str:
    value = exact(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | dict):
        return dumps_json(value)
    return str(value)


def human(value: Any) -> str:
    """About four significant digits, thousands separators, no exponent for everyday sizes."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1e15 or magnitude < 1e-3:
            return f"{value:.3e}"
        if magnitude >= 1000:
            digits = math.floor(math.log10(magnitude)) + 1
            return f"{round(value, 4 - digits):,.0f}"
        return f"{value:.4g}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


_DUCKDB_NUMERIC = frozenset(
    "TINYINT SMALLINT INTEGER BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT UHUGEINT "
    "FLOAT DOUBLE".split()
)


@dataclass(frozen=True)
class ResultRows:
    """A small query result as plain Python rows: what the CLI prints. Building it straight
    from DuckDB skips importing polars and pyarrow, which is most of a report's run time."""

    columns: list[str]
    numeric: list[bool]
    rows: list[tuple[Any, ...]]

    @classmethod
    def from_relation(cls, rel: duckdb.DuckDBPyRelation) -> ResultRows:
        types = [str(t) for t in rel.types]
        numeric = [t in _DUCKDB_NUMERIC or t.startswith("DECIMAL") for t in types]
        return cls(list(rel.columns), numeric, rel.fetchall())

    @property
    def height(self) -> int:
        return len(self.rows)

    def iter_rows(self, *, named: bool = False) -> Iterable[Any]:
        if named:
            return (dict(zip(self.columns, row, strict=True)) for row in self.rows)
        return iter(self.rows)


def _rows(frame: pl.DataFrame | ResultRows) -> Iterable[tuple[Any, ...]]:
    return frame.iter_rows()


def _numeric(frame: pl.DataFrame | ResultRows) -> Sequence[bool]:
    if isinstance(frame, ResultRows):
        return frame.numeric
    return [dtype.is_numeric() for dtype in frame.dtypes]


def to_csv(frame: pl.DataFrame | ResultRows) -> str:
    """CSV with a header row; empty field for null; floats as ``repr``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in _rows(frame):
        writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue()


def to_json(frame: pl.DataFrame | ResultRows) -> str:
    """A JSON array of objects, one per row, keys in column order."""
    records = [{k: exact(v) for k, v in zip(frame.columns, row, strict=True)} for row in _rows(frame)]
    return dumps_json(records, indent=2) + "\n"


def to_markdown(frame: pl.DataFrame | ResultRows) -> str:
    """A GitHub-flavoured markdown table (numbers right-aligned)."""
    numeric = _numeric(frame)
    lines = [
        "| " + " | ".join(frame.columns) + " |",
        "| " + " | ".join("---:" if n else "---" for n in numeric) + " |",
    ]
    for row in _rows(frame):
        cells = [human(v).replace("|", "\\|") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_table(frame: pl.DataFrame | ResultRows, *, title: str | None = None) -> str:
    """A rich box table rendered to plain text (as wide as it needs: reports are wide)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for name, numeric in zip(frame.columns, _numeric(frame), strict=True):
        table.add_column(name, justify="right" if numeric else "left", no_wrap=True)
    for row in _rows(frame):
        table.add_row(*(human(v) for v in row))
    console = Console(file=io.StringIO(), width=100_000, color_system=None, soft_wrap=True)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def render(frame: pl.DataFrame | ResultRows, fmt: str, *, title: str | None = None) -> str:
    """``frame`` in one of :data:`FORMATS`."""
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "json":
        return to_json(frame)
    if fmt == "md":
        return to_markdown(frame)
    return to_table(frame, title=title)


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temp file beside ``path`` and rename it over: readers never see half a
    report, and a failed write leaves the old file in place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
