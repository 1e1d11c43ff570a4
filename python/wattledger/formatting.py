"""Rendering result frames as text: table, csv, json, markdown.

Machine formats (csv, json) carry floats at full precision (``repr`` round-trips) so a
regulator's spreadsheet gets the ledger's exact numbers; human formats (table, md) round to
about four significant digits, which is all the methodology's uncertainty supports, except
whole numbers (counts), which they print exactly.
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
import sys
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
        if value.is_integer() and magnitude < 1e15:
            # A whole number (a count of requests or tokens summed as a double) is printed
            # exactly: `1,272,457`, never a rounded `1,272,000` that looks exact.
            return f"{int(value):,}"
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


#: The column shown in place of the columns a table too wide for the terminal leaves out.
ELIDED = "…"


def terminal_width() -> int | None:
    """Columns of the terminal stdout writes to (``COLUMNS`` when set, as shells set it on a
    resize, else the terminal's own width); None when stdout is not a terminal: a file or a
    pipe gets every column."""
    try:
        if not sys.stdout.isatty():
            return None
        env = os.environ.get("COLUMNS", "")
        return (
            int(env) if env.isdigit() and int(env) > 0 else os.get_terminal_size(sys.stdout.fileno()).columns
        )
    except (OSError, ValueError):
        return None


def to_table(
    frame: pl.DataFrame | ResultRows, *, title: str | None = None, max_width: int | None = None
) -> str:
    """A box table rendered to plain text. ``max_width``: at most that many characters wide;
    columns that do not fit are left out from the middle (as DuckDB's and Polars' tables do),
    an ``…`` column shows where, and a last line says how many and which. None: every column."""
    header = [escape_terminal(str(name)) for name in frame.columns]
    body = [[escape_terminal(human(v)) for v in row] for row in _rows(frame)]
    numeric = list(_numeric(frame))
    keep = _columns_that_fit(header, body, max_width)
    note = ""
    if keep is not None:
        hidden = [header[i] for i in range(len(header)) if i not in keep]
        cut = next((n for n, i in enumerate(keep) if n != i), len(keep))  # where the left part ends
        left, right = keep[:cut], keep[cut:]

        def elide(cells: list[str], filler: str) -> list[str]:
            return [*(cells[i] for i in left), filler, *(cells[i] for i in right)]

        header, body = elide(header, ELIDED), [elide(row, ELIDED) for row in body]
        numeric = [*(numeric[i] for i in left), False, *(numeric[i] for i in right)]
        note = (
            f"{len(keep)} of {len(keep) + len(hidden)} columns shown; {len(hidden)} hidden: "
            f"{', '.join(hidden)} (--wide shows all; --format csv gives every value)\n"
        )
    shown_title = None if title is None else escape_terminal(title)
    plain = _plain_box_table(header, numeric, body, shown_title)
    return (plain if plain is not None else _rich_box_table(header, numeric, body, shown_title)) + note


def _cell_width(text: str) -> int:
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _columns_that_fit(header: list[str], body: list[list[str]], max_width: int | None) -> list[int] | None:
    """Indices of the columns to show, first columns then last ones (None: all fit). A column
    takes its widest cell plus three characters of border and padding; the table one more."""
    if max_width is None:
        return None
    widths = [max([_cell_width(h), *(_cell_width(row[i]) for row in body)]) + 3 for i, h in enumerate(header)]
    if sum(widths) + 1 <= max_width:
        return None
    budget = max_width - 1 - (1 + 3)  # the ELIDED column
    left: list[int] = []
    right: list[int] = []
    lo, hi = 0, len(header) - 1
    left_open = right_open = True
    from_left = True
    # Alternately from the first and the last columns, the first always shown; a column that
    # does not fit closes its side.
    while lo <= hi and (left_open or right_open):
        if (from_left and left_open) or not right_open:
            if widths[lo] <= budget or not left:
                budget -= widths[lo]
                left.append(lo)
                lo += 1
            else:
                left_open = False
        elif widths[hi] <= budget:
            budget -= widths[hi]
            right.insert(0, hi)
            hi -= 1
        else:
            right_open = False
        from_left = not from_left
    return [*left, *right] if lo <= hi else None


#: Text the plain renderer draws exactly as rich does: printable ASCII, one cell per character
#: (and the ellipsis that marks elided columns, one cell too).
_PLAIN = re.compile(r"[ -~…]*")


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
    """The whole of ``frame`` drawn by rich."""
    header = [escape_terminal(str(name)) for name in frame.columns]
    body = [[escape_terminal(human(v)) for v in row] for row in _rows(frame)]
    shown_title = None if title is None else escape_terminal(title)
    return _rich_box_table(header, list(_numeric(frame)), body, shown_title)


def _rich_box_table(header: list[str], numeric: list[bool], body: list[list[str]], title: str | None) -> str:
    """The table drawn by rich (cells already escaped for the terminal)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text objects, not strings: rich would read "[red]" in a model name as its markup.
    table = Table(title=None if title is None else Text(title), show_lines=False)
    for name, is_number in zip(header, numeric, strict=True):
        table.add_column(Text(name), justify="right" if is_number else "left", no_wrap=True)
    for row in body:
        table.add_row(*(Text(cell) for cell in row))
    console = Console(file=io.StringIO(), width=100_000, color_system=None, soft_wrap=True)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def render(
    frame: pl.DataFrame | ResultRows, fmt: str, *, title: str | None = None, max_width: int | None = None
) -> str:
    """``frame`` in one of :data:`FORMATS` (``max_width``: the table's, see :func:`to_table`)."""
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "json":
        return to_json(frame)
    if fmt == "md":
        return to_markdown(frame)
    return to_table(frame, title=title, max_width=max_width)


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temp file beside ``path`` and rename it over: readers never see half a
    report, and a failed write leaves the old file in place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        # mkstemp makes the file 0600; the output gets the mode any new file would (0666 less
        # the umask), or the mode of the file it replaces.
        os.fchmod(fd, _mode_for(target))
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask. Linux shows it in /proc; elsewhere it can only be read by setting
    it (briefly, so a thread creating a file at that moment could see 0o077)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask
