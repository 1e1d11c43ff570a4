"""What to say when a name filter (``--model``, ``--site``) matches nothing in the ledger.

Why a module of its own: a filter that matches no row used to print an empty table and
"the ledger has no rows in 2025", which reads as "the period is empty" when the name was
misspelt (or in the wrong case: names are compared exactly, as the ledger stores them).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from wattledger.report import period_bounds

if TYPE_CHECKING:
    import duckdb

#: Names listed in the message at most (a fleet may serve hundreds of models).
_LISTED = 12


def no_match_message(
    con: duckdb.DuckDBPyConnection, *, column: str, value: str, year: int, month: int | None
) -> str | None:
    """None when ``column = value`` has rows in the period, or the period has no rows at all
    (the report says so itself); else one line naming the names that exist, the right one
    first when only the case differs."""
    start, end = period_bounds(year, month)
    names = [
        str(row[0])
        for row in con.execute(
            f"SELECT DISTINCT {column} FROM wl_hourly WHERE hour >= ? AND hour < ? AND {column} IS NOT NULL "
            "ORDER BY 1",
            [start, end],
        ).fetchall()
    ]
    if not names or value in names:
        return None
    period = f"{year}" if month is None else f"{year}-{month:02d}"
    where = f"--{column} {value!r} matches no {column} in {period}"
    same_case = [n for n in names if n.casefold() == value.casefold()]
    if same_case:
        return f"{where}; names are case-sensitive: did you mean {same_case[0]!r}?"
    close = difflib.get_close_matches(value, names, n=3)
    hint = f"did you mean {' or '.join(repr(n) for n in close)}? " if close else ""
    more = len(names) - _LISTED
    listed = ", ".join(names[:_LISTED]) + (f" and {more} more" if more > 0 else "")
    return f"{where}; {hint}its {column}s in {period}: {listed}"
