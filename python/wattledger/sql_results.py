"""Any DuckDB query result as printable rows, whatever its column types.

Why the conversion happens inside DuckDB: converting results to Python (or polars/pyarrow)
objects fails or lies for types those libraries lack: ``'infinity'::timestamp`` panics in the
Arrow conversion or becomes year 9999, ``INTERVAL 2 MONTH`` becomes 60 days, TIMESTAMP_NS loses
its nanoseconds, dates before year 1 become strings. DuckDB's own text cast is exact for every
type, so the text formats (table, md, csv) print that, unrounded; the json format asks DuckDB
for JSON per cell (``to_json``), so numbers stay numbers and lists/structs/maps stay nested.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from wattledger.formatting import ResultRows, is_numeric_type

#: Top-level types whose ``to_json`` is a JSON number or boolean Python reads exactly.
_JSON_NATIVE = frozenset(
    "BOOLEAN TINYINT SMALLINT INTEGER BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT UHUGEINT "
    "FLOAT DOUBLE".split()
)

#: How non-finite doubles are written in sql --format json (JSON has no token for them; a
#: query that computes one must still print, unlike report/rollup whose values are finite).
NON_FINITE_JSON = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}


#: Types whose text DuckDB writes itself (no user text inside): never altered in CSV.
_GENERATED_PREFIXES = (
    "DATE",
    "TIME",
    "INTERVAL",
    "UUID",
    "BOOLEAN",
    "BIT",
)


def _generated(type_name: str) -> bool:
    return is_numeric_type(type_name) or type_name.startswith(_GENERATED_PREFIXES)


def _nested(type_name: str) -> bool:
    return type_name.endswith("]") or type_name.startswith(("STRUCT", "MAP", "UNION")) or type_name == "JSON"


def _column_expression(index: int, type_name: str, fmt: str) -> str:
    column = f"c{index}"
    if fmt != "json":
        return f"CAST({column} AS VARCHAR)"
    if type_name in _JSON_NATIVE or _nested(type_name):
        return f"CAST(to_json({column}) AS VARCHAR)"
    return f"CAST({column} AS VARCHAR)"  # text, dates, decimals (exact), blobs, uuids ...


def _json_value(text: str | None, type_name: str) -> Any:
    if text is None:
        return None
    if type_name in _JSON_NATIVE or _nested(type_name):
        # DuckDB writes NaN/Infinity as bare tokens (not JSON): they become strings.
        return json.loads(text, parse_constant=NON_FINITE_JSON.__getitem__)
    return text


def fetch(rel: duckdb.DuckDBPyRelation, fmt: str) -> ResultRows:
    """All rows of ``rel``, each cell as DuckDB's text (``fmt`` table/md/csv) or as a JSON value
    (``fmt`` json). Column names and their order are the query's, duplicates included."""
    names = list(rel.columns)
    types = [str(t) for t in rel.types]
    numeric = [is_numeric_type(t) for t in types]
    renamed = ", ".join(f"c{i}" for i in range(len(names)))
    select = ", ".join(_column_expression(i, t, fmt) for i, t in enumerate(types))
    # Positional names: the query's own may repeat or be empty.
    converted = rel.query("wl_result", f"SELECT {select} FROM wl_result AS r({renamed})")
    assert converted is not None  # a SELECT always has a result
    rows = converted.fetchall()
    if fmt == "json":
        rows = [tuple(_json_value(v, t) for v, t in zip(row, types, strict=True)) for row in rows]
    return ResultRows(names, numeric, rows, generated=[_generated(t) for t in types])
