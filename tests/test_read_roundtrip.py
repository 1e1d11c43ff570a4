"""Property: random canonical records written as JSON Lines, CSV and Parquet read back through
``wl.read_logs`` to the same canonical frame (methodology section 1).

The expected frame is built here from the generated Python values, independently of the
engine: ``ts`` as UTC microseconds, empty/absent optional strings as null, ``weight`` 1.0 when
absent. ``source`` and ``line`` are dropped before comparing (they are pinned in
``test_readers.py``).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import wattledger as wl

UTC = dt.UTC
STRING_COLS = ("site", "zone", "hardware", "request_id", "status", "node")
INT_COLS = ("gpus", "input_tokens", "output_tokens")
FLOAT_COLS = ("duration_s", "energy_j", "weight")
BOOL_COLS = ("cache_hit",)
OPTIONAL = (*STRING_COLS, *INT_COLS, *FLOAT_COLS, *BOOL_COLS)
CANONICAL = (
    "ts",
    "model",
    "site",
    "zone",
    "hardware",
    "gpus",
    "input_tokens",
    "output_tokens",
    "duration_s",
    "energy_j",
    "weight",
    "request_id",
    "status",
    "cache_hit",
    "node",
)
_TYPES = {
    "ts": pl.Datetime("us", "UTC"),
    "model": pl.String,
    **dict.fromkeys(STRING_COLS, pl.String),
    **dict.fromkeys(INT_COLS, pl.Int64),
    **dict.fromkeys(FLOAT_COLS, pl.Float64),
    **dict.fromkeys(BOOL_COLS, pl.Boolean),
}
SCHEMA = {c: _TYPES[c] for c in CANONICAL}
ARROW_TYPES = {
    "ts": pa.timestamp("ms", tz="UTC"),
    "model": pa.string(),
    **dict.fromkeys(STRING_COLS, pa.string()),
    **dict.fromkeys(INT_COLS, pa.int64()),
    **dict.fromkeys(FLOAT_COLS, pa.float64()),
    **dict.fromkeys(BOOL_COLS, pa.bool_()),
}

# Any Unicode scalar value (no surrogates): quotes, commas, backslashes, CR/LF, tabs, NUL, emoji.
text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(",\"\\\n\r\t'; {}[]:")),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=12,
)
# Names (model, site, zone, hardware, status) may not hold control characters, line or
# paragraph separators or bidi controls (a reject: docs/bounds.md); request_id may.
_BIDI = [*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\u2028", "\u2029"]
name_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(",\"\\'; {}[]:")),
        st.characters(exclude_categories=("Cs", "Cc"), exclude_characters=_BIDI),
    ),
    max_size=12,
)
model_text = name_text.filter(lambda s: s != "")
ts_strategy = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 12, 31, 23, 59, 59, 999000)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC))
# Numbers up to the engine's physical bounds (docs/bounds.md; a value beyond its bound is
# rejected as implausible, see test_readers.py): every digit must survive the text round trip.
MAX = {"gpus": 10**6, "input_tokens": 10**12, "output_tokens": 10**12}
MAX_F = {"duration_s": 1e8, "energy_j": 1e15, "weight": 1e12}


def nonneg_float(top: float) -> st.SearchStrategy[float]:
    return st.one_of(
        st.just(0.0),
        st.just(top),
        st.floats(min_value=0.0, max_value=top, allow_nan=False, allow_infinity=False),
        st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
    )


VALUE = {
    **dict.fromkeys(STRING_COLS, name_text),
    "request_id": text,
    **{c: st.integers(min_value=0, max_value=MAX[c]) for c in INT_COLS},
    **{c: nonneg_float(MAX_F[c]) for c in FLOAT_COLS},
    **dict.fromkeys(BOOL_COLS, st.booleans()),
}


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[str], list[dict[str, object]], int]:
    present = draw(st.lists(st.sampled_from(OPTIONAL), unique=True, max_size=len(OPTIONAL)))
    cols = ["ts", "model", *[c for c in CANONICAL if c in present]]
    n = draw(st.integers(min_value=1, max_value=8))
    rows = []
    for _ in range(n):
        row: dict[str, object] = {"ts": draw(ts_strategy), "model": draw(model_text)}
        for c in cols[2:]:
            row[c] = draw(st.none() | VALUE[c])
        rows.append(row)
    offset_minutes = draw(st.sampled_from([0, 120, -330, 345, -720, 840]))
    return cols, rows, offset_minutes


def expected_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    data: dict[str, list[object]] = {c: [] for c in CANONICAL}
    for row in rows:
        for c in CANONICAL:
            v = row.get(c)
            if c in STRING_COLS and v == "":
                v = None
            if c == "weight" and v is None:
                v = 1.0
            data[c].append(v)
    return pl.DataFrame(data, schema=SCHEMA)


def rfc3339(ts: dt.datetime, offset_minutes: int) -> str:
    tz = dt.timezone(dt.timedelta(minutes=offset_minutes))
    s = ts.astimezone(tz).isoformat(timespec="milliseconds")
    return s.replace("+00:00", "Z")


def float_text(x: float) -> str:
    assert math.isfinite(x)
    return repr(x)


def write_jsonl(path: Path, cols: list[str], rows: list[dict[str, object]], offset: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        for i, row in enumerate(rows):
            obj: dict[str, object] = {}
            for c in cols:
                v = row[c]
                if c == "ts":
                    ms = round(v.timestamp() * 1000)  # type: ignore[union-attr]
                    # Every 4th row as an epoch-ms JSON number where its magnitude says ms.
                    obj[c] = ms if i % 4 == 3 and 1e11 <= ms < 1e14 else rfc3339(v, offset)  # type: ignore[arg-type]
                elif v is None and i % 2:
                    continue  # a missing key and null are the same
                else:
                    obj[c] = v
            f.write(json.dumps(obj, ensure_ascii=bool(i % 3 == 0)) + "\n")


def write_csv(path: Path, cols: list[str], rows: list[dict[str, object]], offset: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)  # RFC 4180: CRLF, fields with CR, LF, quote or comma quoted
        w.writerow(cols)
        for row in rows:
            out = []
            for c in cols:
                v = row[c]
                if c == "ts":
                    out.append(rfc3339(v, offset))  # type: ignore[arg-type]
                elif v is None:
                    out.append("")
                elif isinstance(v, bool):
                    out.append(str(v) if len(out) % 2 else str(v).lower())  # "True" / "true"
                elif isinstance(v, float):
                    out.append(float_text(v))
                else:
                    out.append(str(v))
            w.writerow(out)


def write_parquet(path: Path, cols: list[str], rows: list[dict[str, object]]) -> None:
    table = pa.table({c: pa.array([r[c] for r in rows], type=ARROW_TYPES[c]) for c in cols})
    pq.write_table(table, path)


def read_canonical(path: Path) -> pl.DataFrame:
    frame = wl.read_logs(path, rejects=path.with_suffix(".rejects"))
    rejects = path.with_suffix(".rejects").read_text(encoding="utf-8")
    assert rejects == "", rejects
    assert frame["line"].is_sorted()
    return frame.drop("source", "line")


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=batches())
def test_random_canonical_records_read_back_the_same_from_jsonl_csv_parquet(
    tmp_path: Path, batch: tuple[list[str], list[dict[str, object]], int]
) -> None:
    cols, rows, offset = batch
    expected = expected_frame(rows)
    jsonl, csv_path, parquet = tmp_path / "r.jsonl", tmp_path / "r.csv", tmp_path / "r.parquet"
    write_jsonl(jsonl, cols, rows, offset)
    write_csv(csv_path, cols, rows, offset)
    write_parquet(parquet, cols, rows)
    for path in (jsonl, csv_path, parquet):
        got = read_canonical(path)
        assert got.columns == list(CANONICAL), path.name
        assert_frame_equal(got, expected, check_exact=True, check_dtypes=True)
