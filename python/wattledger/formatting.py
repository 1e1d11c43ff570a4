"""Rendering result frames as text: table, csv, json, markdown.

Machine formats (csv, json) carry floats at full precision (``repr`` round-trips) so a
regulator's spreadsheet gets the ledger's exact numbers; human formats (table, md) round to
about four significant digits, which is all the methodology's uncertainty supports.
Rows here are report or query rows, not records: looping over them in Python is fine.

Hostile text (issue 12): names come from logs. CSV text cells that a spreadsheet would run as a
formula (starting ``=``, ``+``, ``-``, ``@``, tab or CR) get a leading ``'`` (OWASP's rule;
numbers, negative ones included, are left alone); markdown cells escape ``|`` and line breaks;
terminal tables show control characters as escapes (``\x1b``) instead of sending them to the
terminal. JSON keeps values raw (its own escaping is safe).

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
import re
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


#: First characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A plain number: never a formula, so a text cell like "-1.5" is left as it is.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise_csv_text(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet shows and never evaluates: a leading ``'`` when it
    starts like a formula (OWASP), unless it is a plain number."""
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


#: C0 and C1 controls, DEL, and the Unicode bidi overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(char: str) -> str:
    named = _NAMED_ESCAPES.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_terminal(text: str) -> str:
    """``text`` with every control character shown as an escape (ESC as ``\\x1b``, a newline
    as ``\\n``): a name from a log cannot move the cursor, recolour or retitle the terminal,
    or split a table row."""
    return _CONTROL.sub(lambda m: _visible(m.group()), text)


def escape_markdown_cell(text: str) -> str:
    """A markdown table cell: ``|`` escaped, line breaks and other controls as escapes (a
    newline would end the table row)."""
    return escape_terminal(text.replace("|", "\\|"))


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
    "FLOAT DOUBLE BIGNUM VARINT".split()
)


def is_numeric_type(type_name: str) -> bool:
    """Whether a DuckDB column type (as ``str(rel.types[i])``) holds numbers."""
    return type_name in _DUCKDB_NUMERIC or type_name.startswith("DECIMAL")


@dataclass(frozen=True)
class ResultRows:
    """A small query result as plain Python rows: what the CLI prints. Building it straight
    from DuckDB skips importing polars and pyarrow, which is most of a report's run time."""

    columns: list[str]
    numeric: list[bool]
    rows: list[tuple[Any, ...]]
    #: Columns whose text DuckDB generated from a non-text type (numbers, dates, intervals,
    #: uuids): CSV leaves them as they are. None: the numeric columns.
    generated: list[bool] | None = None

    @classmethod
    def from_relation(cls, rel: duckdb.DuckDBPyRelation) -> ResultRows:
        types = [str(t) for t in rel.types]
        numeric = [is_numeric_type(t) for t in types]
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


def csv_text(rows: Iterable[Sequence[str]]) -> str:
    """RFC 4180 CSV lines ending in ``\\n``. Python's csv module leaves a field with a bare CR
    unquoted when the line terminator is ``\\n`` (readers then split the row there), so such
    fields are quoted here."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    quoting = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoting if any("\r" in cell for cell in row) else writer).writerow(row)
    return out.getvalue()


def to_csv(frame: pl.DataFrame | ResultRows) -> str:
    """CSV with a header row; empty field for null; floats as ``repr``; text cells neutralised
    against formula injection (:func:`neutralise_csv_text`), numeric columns never."""
    return csv_text(_csv_rows(frame))


def _csv_rows(frame: pl.DataFrame | ResultRows) -> Iterable[list[str]]:
    yield [neutralise_csv_text(str(c)) for c in frame.columns]
    verbatim = _numeric(frame)
    if isinstance(frame, ResultRows) and frame.generated is not None:
        verbatim = frame.generated
    for row in _rows(frame):
        cells = [_csv_cell(v) for v in row]
        yield [c if keep else neutralise_csv_text(c) for c, keep in zip(cells, verbatim, strict=True)]


def to_json(frame: pl.DataFrame | ResultRows) -> str:
    """A JSON array of objects, one per row, keys in column order."""
    records = [{k: exact(v) for k, v in zip(frame.columns, row, strict=True)} for row in _rows(frame)]
    return dumps_json(records, indent=2) + "\n"


def to_markdown(frame: pl.DataFrame | ResultRows) -> str:
    """A GitHub-flavoured markdown table (numbers right-aligned)."""
    numeric = _numeric(frame)
    lines = [
        "| " + " | ".join(escape_markdown_cell(str(c)) for c in frame.columns) + " |",
        "| " + " | ".join("---:" if n else "---" for n in numeric) + " |",
    ]
    for row in _rows(frame):
        cells = [escape_markdown_cell(human(v)) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_table(frame: pl.DataFrame | ResultRows, *, title: str | None = None) -> str:
    """A rich box table rendered to plain text (as wide as it needs: reports are wide)."""
    header = [escape_terminal(str(name)) for name in frame.columns]
    body = [[escape_terminal(human(v)) for v in row] for row in _rows(frame)]
    shown_title = None if title is None else escape_terminal(title)
    plain = _plain_box_table(header, list(_numeric(frame)), body, shown_title)
    return plain if plain is not None else _rich_table(frame, title=title)


#: Text the plain renderer draws exactly as rich does: printable ASCII, one cell per character.
_PLAIN = re.compile(r"[ -~]*")


def _plain_box_table(
    header: list[str], numeric: list[bool], body: list[list[str]], title: str | None
) -> str | None:
    """The table :func:`_rich_table` draws, for the common case of printable-ASCII text, or
    None for anything else. Why: importing and running rich costs ``wattledger report`` about
    0.035 s of its 0.25 s start-up budget, and a report table is ASCII names and numbers. The
    layout is rich's for this table (heavy head, one space of padding, no wrapping, title flush
    left as rich prints it at an unbounded width); tests/test_output_escaping.py checks both
    renderers agree on generated tables. Wide or combining characters, whose cell width is
    rich's to decide, go to rich."""
    texts = [*header, *(cell for row in body for cell in row)]
    if not header or title == "" or not all(_PLAIN.fullmatch(t) for t in [*texts, title or ""]):
        return None
    widths = [max([len(h), *(len(row[i]) for row in body)]) for i, h in enumerate(header)]

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * (w + 2) for w in widths) + right

    def cells(values: list[str], edge: str) -> str:
        padded = (
            # rich drops a right-justified cell's trailing blanks before padding it on the left
            f" {v.rstrip().rjust(w) if num else v.ljust(w)} "
            for v, w, num in zip(values, widths, numeric, strict=True)
        )
        return edge + edge.join(padded) + edge

    lines = [] if title is None else [title]
    lines += [rule("┏", "━", "┳", "┓"), cells(header, "┃"), rule("┡", "━", "╇", "┩")]
    lines += [cells(row, "│") for row in body]
    lines.append(rule("└", "─", "┴", "┘"))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _rich_table(frame: pl.DataFrame | ResultRows, *, title: str | None = None) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text objects, not strings: rich would read "[red]" in a model name as its markup.
    table = Table(title=None if title is None else Text(escape_terminal(title)), show_lines=False)
    for name, numeric in zip(frame.columns, _numeric(frame), strict=True):
        header = Text(escape_terminal(str(name)))
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    for row in _rows(frame):
        table.add_row(*(Text(escape_terminal(human(v))) for v in row))
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
