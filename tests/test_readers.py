"""The log readers through the Python API and ``wattledger validate`` (issue 2, points 3-5, 7, 8;
methodology section 1): every format and compression, inputs as files/directories/globs,
every timestamp form, nulls, column mapping and presets, each reject reason with its
source/line, and the fatal input errors (exit 2, one stderr line, no traceback).

Values are exact: a reader that drops, duplicates, shifts or half-uses a record fails here.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import wattledger as wl
from wattledger.cli import EXIT_INPUT, EXIT_REJECTS, app

UTC = dt.UTC
T0 = dt.datetime(2025, 1, 1, tzinfo=UTC)  # 1735689600 s
T0_S = 1_735_689_600
CANONICAL = [
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
]
runner = CliRunner()

needs_zstd = pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd CLI not installed")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def jsonl(path: Path, objs: list[dict[str, object]]) -> Path:
    return write_lines(path, [json.dumps(o) for o in objs])


def gz(src: Path, dst: Path) -> Path:
    dst.write_bytes(gzip.compress(src.read_bytes()))
    return dst


def zst(src: Path, dst: Path) -> Path:
    subprocess.run(["zstd", "-q", "-f", str(src), "-o", str(dst)], check=True)
    return dst


def read(paths: object, **kw: object) -> pl.DataFrame:
    return wl.read_logs(paths, **kw)  # type: ignore[arg-type]


def rows(frame: pl.DataFrame, *cols: str) -> list[tuple[object, ...]]:
    return frame.select(cols).rows()


def rejects_of(path: Path) -> list[dict[str, object]]:
    """The rejects file, sorted by (source, line): workers append whole blocks in completion
    order, so the file's own order is not part of the contract."""
    got = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return sorted(got, key=lambda r: (str(r["source"]), int(r["line"])))  # type: ignore[call-overload]


def cli(*args: object):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


def assert_one_error_line(result, fragment: str) -> None:
    assert result.exit_code == EXIT_INPUT, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


# The same three records in every format.
RECORDS = [
    {"ts": "2025-01-01T00:00:00Z", "model": "m-a", "site": "fra-1", "input_tokens": 10, "output_tokens": 20},
    {"ts": "2025-01-01T01:00:00Z", "model": "m-b", "zone": "DE", "duration_s": 1.5, "energy_j": 300.25},
    {
        "ts": "2025-01-01T02:30:00.125Z",
        "model": "m-a",
        "gpus": 8,
        "weight": 2.5,
        "request_id": "r3",
        "node": "gpu-7",
    },
]
EXPECTED = pl.DataFrame(
    {
        "ts": [T0, T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2, minutes=30, milliseconds=125)],
        "model": ["m-a", "m-b", "m-a"],
        "site": ["fra-1", None, None],
        "zone": [None, "DE", None],
        "hardware": [None, None, None],
        "gpus": [None, None, 8],
        "input_tokens": [10, None, None],
        "output_tokens": [20, None, None],
        "duration_s": [None, 1.5, None],
        "energy_j": [None, 300.25, None],
        "weight": [1.0, 1.0, 2.5],
        "request_id": [None, None, "r3"],
        "status": [None, None, None],
        "cache_hit": [None, None, None],
        "node": [None, None, "gpu-7"],
    },
    schema={
        "ts": pl.Datetime("us", "UTC"),
        "model": pl.String,
        "site": pl.String,
        "zone": pl.String,
        "hardware": pl.String,
        "gpus": pl.Int64,
        "input_tokens": pl.Int64,
        "output_tokens": pl.Int64,
        "duration_s": pl.Float64,
        "energy_j": pl.Float64,
        "weight": pl.Float64,
        "request_id": pl.String,
        "status": pl.String,
        "cache_hit": pl.Boolean,
        "node": pl.String,
    },
)


def write_records(tmp: Path, name: str) -> Path:
    """``name`` like ``a.csv.gz``: the plain file is written, then compressed as asked."""
    if name.endswith(".parquet"):
        path = tmp / name
        keys = list(dict.fromkeys(k for r in RECORDS for k in r))
        pq.write_table(pa.table({k: [r.get(k) for r in RECORDS] for k in keys}), path)
        return path
    stem = name.removesuffix(".gz").removesuffix(".zst")
    plain = tmp / ("plain-" + stem)
    if stem.endswith(".csv"):
        keys = list(dict.fromkeys(k for r in RECORDS for k in r))
        lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in RECORDS]
        write_lines(plain, lines)
    else:
        jsonl(plain, RECORDS)
    if name.endswith(".gz"):
        return gz(plain, tmp / name)
    if name.endswith(".zst"):
        return zst(plain, tmp / name)
    return plain.rename(tmp / name)


FORMATS = [
    ("a.jsonl", "jsonl", None),
    ("a.ndjson", "jsonl", None),
    ("a.json", "jsonl", None),
    ("a.csv", "csv", None),
    ("a.parquet", "parquet", None),
    ("a.jsonl.gz", "jsonl", "gzip"),
    ("a.ndjson.gz", "jsonl", "gzip"),
    ("a.json.gz", "jsonl", "gzip"),
    ("a.csv.gz", "csv", "gzip"),
    pytest.param("a.jsonl.zst", "jsonl", "zstd", marks=needs_zstd),
    pytest.param("a.ndjson.zst", "jsonl", "zstd", marks=needs_zstd),
    pytest.param("a.json.zst", "jsonl", "zstd", marks=needs_zstd),
    pytest.param("a.csv.zst", "csv", "zstd", marks=needs_zstd),
]


# --------------------------------------------------------------------------------------------
# formats, compression, inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fmt", "compression"), FORMATS)
def test_every_format_and_compression_reads_the_same_canonical_records(
    tmp_path: Path, name: str, fmt: str, compression: str | None
) -> None:
    path = write_records(tmp_path, name)
    frame = read(path)
    assert frame.columns == [*CANONICAL, "source", "line"]
    assert_frame_equal(frame.drop("source", "line"), EXPECTED, check_exact=True)
    assert frame["source"].to_list() == [str(path)] * 3
    # 1-based physical line for text (CSV header is line 1); 0-based row index for Parquet.
    expected_lines = {"jsonl": [1, 2, 3], "csv": [2, 3, 4], "parquet": [0, 1, 2]}[fmt]
    assert frame["line"].to_list() == expected_lines
    [stats] = wl.validate(path)
    assert (stats["path"], stats["format"], stats["compression"]) == (str(path), fmt, compression)
    assert (stats["records"], stats["rejected"], stats["rejects"], stats["blank_lines"]) == (3, 0, {}, 0)
    assert stats["size_bytes"] == path.stat().st_size
    assert set(stats["columns_found"]) == {c for r in RECORDS for c in r}


def test_multi_member_gzip_and_multi_frame_zstd_are_read_whole(tmp_path: Path) -> None:
    a = [{"ts": T0_S + i, "model": "m", "output_tokens": i} for i in range(3)]
    b = [{"ts": T0_S + i, "model": "m", "output_tokens": i} for i in range(3, 5)]
    body_a = "".join(json.dumps(o) + "\n" for o in a).encode()
    body_b = "".join(json.dumps(o) + "\n" for o in b).encode()
    (tmp_path / "m.jsonl.gz").write_bytes(gzip.compress(body_a) + gzip.compress(body_b))
    assert read(tmp_path / "m.jsonl.gz")["output_tokens"].to_list() == [0, 1, 2, 3, 4]
    if shutil.which("zstd"):
        (tmp_path / "pa").write_bytes(body_a)
        (tmp_path / "pb").write_bytes(body_b)
        fa, fb = zst(tmp_path / "pa", tmp_path / "a.zst"), zst(tmp_path / "pb", tmp_path / "b.zst")
        (tmp_path / "m.jsonl.zst").write_bytes(fa.read_bytes() + fb.read_bytes())
        assert read(tmp_path / "m.jsonl.zst")["output_tokens"].to_list() == [0, 1, 2, 3, 4]


def _tree(tmp: Path) -> Path:
    root = tmp / "logs"
    (root / "sub" / "deeper").mkdir(parents=True)
    jsonl(root / "b.jsonl", [{"ts": T0_S, "model": "b"}])
    write_lines(root / "a.csv", ["ts,model", f"{T0_S},a"])
    jsonl(root / "sub" / "c.ndjson", [{"ts": T0_S, "model": "c"}])
    gz(root / "b.jsonl", root / "sub" / "deeper" / "d.json.gz")
    pq.write_table(pa.table({"ts": [T0_S], "model": ["e"]}), root / "sub" / "e.parquet")
    # Not logs: ignored inside a directory.
    (root / "README.md").write_text("# notes\n")
    (root / "sub" / "notes.txt").write_text("ts,model\n")
    (root / "sub" / "data.parquet.gz").write_bytes(b"x")
    (root / "sub" / "deeper" / "archive.tar").write_bytes(b"x")
    return root


def test_directory_is_read_recursively_by_extension_in_path_order(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    stats = wl.validate(root)
    rel = [str(Path(s["path"]).relative_to(root)) for s in stats]
    assert rel == ["a.csv", "b.jsonl", "sub/c.ndjson", "sub/deeper/d.json.gz", "sub/e.parquet"]
    assert [s["records"] for s in stats] == [1, 1, 1, 1, 1]
    frame = read(root)
    assert frame["model"].to_list() == ["a", "b", "c", "b", "e"]


def test_glob_selects_matching_files_only(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    frame = read(str(root / "**" / "*.ndjson"))
    assert frame["model"].to_list() == ["c"]
    frame = read(str(root / "*.*"))  # top level only; README.md has no log extension
    assert sorted(Path(s).name for s in frame["source"].to_list()) == ["a.csv", "b.jsonl"]


def test_duplicate_inputs_are_read_once_in_first_seen_order(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    b = root / "b.jsonl"
    inputs = [str(b), str(root), str(root / "*.jsonl"), str(root / "." / "b.jsonl")]
    stats = wl.validate(inputs)
    names = [str(Path(s["path"]).relative_to(root)) for s in stats]
    assert names == ["b.jsonl", "a.csv", "sub/c.ndjson", "sub/deeper/d.json.gz", "sub/e.parquet"]
    assert read(inputs).height == 5


def test_records_keep_file_then_line_order(tmp_path: Path) -> None:
    z = jsonl(tmp_path / "z.jsonl", [{"ts": T0_S + i, "model": f"z{i}"} for i in range(50)])
    a = jsonl(tmp_path / "a.jsonl", [{"ts": T0_S - i, "model": f"a{i}"} for i in range(50)])
    frame = read([z, a], threads=2)
    assert frame["model"].to_list() == [f"z{i}" for i in range(50)] + [f"a{i}" for i in range(50)]
    assert frame["line"].to_list() == list(range(1, 51)) * 2


# --------------------------------------------------------------------------------------------
# timestamps (methodology section 1)
# --------------------------------------------------------------------------------------------

TS_CASES = [
    # (JSON value of ts, expected UTC datetime)
    ("2025-01-01T00:00:00Z", T0),
    ("2025-01-01T00:00:00z", T0),
    ("2025-01-01t00:00:00Z", T0),
    ("2025-01-01T02:00:00+02:00", T0),
    ("2024-12-31T18:30:00-05:30", T0),
    ("2025-01-01T00:00:00.123456Z", T0 + dt.timedelta(microseconds=123456)),
    ("2025-01-01T02:00:00.5+02:00", T0 + dt.timedelta(milliseconds=500)),
    ("2025-01-01 00:00:00", T0),
    ("2025-01-01 00:00:00.25", T0 + dt.timedelta(milliseconds=250)),
    ("2025-01-01T00:00:00", T0),
    ("2025-01-01T00:00:00.000001", T0 + dt.timedelta(microseconds=1)),
    # epoch by magnitude: < 1e11 s, < 1e14 ms, < 1e17 us, else ns
    (T0_S, T0),
    (T0_S * 1000, T0),
    (T0_S * 1_000_000, T0),
    (T0_S * 1_000_000_000, T0),
    (T0_S * 1000 + 7, T0 + dt.timedelta(milliseconds=7)),
    (T0_S * 1_000_000 + 7, T0 + dt.timedelta(microseconds=7)),
    (str(T0_S), T0),
    (str(T0_S * 1000), T0),
    (str(T0_S * 1_000_000), T0),
    (str(T0_S * 1_000_000_000), T0),
    (99_999_999_999, dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=99_999_999_999)),
    (100_000_000_000, dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=100_000_000_000)),
    (0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
    (T0_S + 0.25, T0 + dt.timedelta(milliseconds=250)),
    (f"{T0_S}.25", T0 + dt.timedelta(milliseconds=250)),
]


@pytest.mark.parametrize(("value", "expected"), TS_CASES, ids=[repr(v) for v, _ in TS_CASES])
def test_timestamp_forms_in_jsonl(tmp_path: Path, value: object, expected: dt.datetime) -> None:
    path = jsonl(tmp_path / "t.jsonl", [{"ts": value, "model": "m"}])
    frame = read(path, rejects=tmp_path / "rej.jsonl")
    assert rejects_of(tmp_path / "rej.jsonl") == []
    assert frame["ts"].to_list() == [expected]
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")


def test_timestamp_forms_in_csv(tmp_path: Path) -> None:
    cases = [(v, e) for v, e in TS_CASES if not isinstance(v, float)]
    lines = ["model,ts"] + [f"m,{v}" for v, _ in cases]
    frame = read(write_lines(tmp_path / "t.csv", lines), rejects=tmp_path / "rej.jsonl")
    assert rejects_of(tmp_path / "rej.jsonl") == []
    assert frame["ts"].to_list() == [e for _, e in cases]
    # A float epoch in CSV is text; the same rule applies.
    frame = read(write_lines(tmp_path / "f.csv", ["ts,model", f"{T0_S}.5,m"]))
    assert frame["ts"].to_list() == [T0 + dt.timedelta(milliseconds=500)]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "+02:00", "America/New_York"])
def test_parquet_timestamp_units_with_and_without_timezone(tmp_path: Path, unit: str, tz: str | None) -> None:
    per_s = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[unit]
    extra = {"s": 0, "ms": 7, "us": 7, "ns": 7000}[unit]  # ns 7000 = 7 us, representable
    raw = [T0_S * per_s, T0_S * per_s + extra]
    table = pa.table({"ts": pa.array(raw, pa.timestamp(unit, tz=tz)), "model": ["m", "m"]})
    pq.write_table(table, tmp_path / "t.parquet")
    frame = read(tmp_path / "t.parquet")
    delta = {"s": dt.timedelta(0), "ms": dt.timedelta(milliseconds=7)}.get(unit, dt.timedelta(microseconds=7))
    # The stored instant is UTC whatever the zone annotation (a naive one is UTC too).
    assert frame["ts"].to_list() == [T0, T0 + delta]


def test_parquet_string_int_and_float_timestamps(tmp_path: Path) -> None:
    pq.write_table(
        pa.table(
            {
                "ts": ["2025-01-01T02:00:00+02:00", "2025-01-01 00:00:00.5", str(T0_S * 1000)],
                "model": ["m"] * 3,
            }
        ),
        tmp_path / "s.parquet",
    )
    assert read(tmp_path / "s.parquet")["ts"].to_list() == [T0, T0 + dt.timedelta(milliseconds=500), T0]
    for name, arr in [
        ("i64", pa.array([T0_S, T0_S * 1000, T0_S * 10**6, T0_S * 10**9], pa.int64())),
        ("i32", pa.array([T0_S] * 4, pa.int32())),
        ("u64", pa.array([T0_S, T0_S * 1000, T0_S * 10**6, T0_S * 10**9], pa.uint64())),
    ]:
        pq.write_table(pa.table({"ts": arr, "model": ["m"] * 4}), tmp_path / f"{name}.parquet")
        assert read(tmp_path / f"{name}.parquet")["ts"].to_list() == [T0] * 4, name
    pq.write_table(pa.table({"ts": [T0_S + 0.25], "model": ["m"]}), tmp_path / "f.parquet")
    assert read(tmp_path / "f.parquet")["ts"].to_list() == [T0 + dt.timedelta(milliseconds=250)]


def test_parquet_column_types_dictionary_large_string_narrow_ints_float32_struct(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ts": pa.array([T0_S * 1000] * 2, pa.timestamp("ms")),
            "model": pa.array(["a", "b"]).dictionary_encode(),
            "site": pa.array(["s", None], pa.large_string()),
            "input_tokens": pa.array([1, 2], pa.int32()),
            "output_tokens": pa.array([3, 4], pa.uint16()),
            "duration_s": pa.array([0.5, 1.5], pa.float32()),
            "energy_j": pa.array([1, 2], pa.int64()),
            "meta": pa.array([{"x": 1}, {"x": 2}]),
            "usage": pa.array([{"prompt_tokens": 7}, {"prompt_tokens": 8}]),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    frame = read(tmp_path / "t.parquet")
    assert rows(frame, "model", "site", "input_tokens", "output_tokens", "duration_s", "energy_j") == [
        ("a", "s", 1, 3, 0.5, 1.0),
        ("b", None, 2, 4, 1.5, 2.0),
    ]
    assert frame.schema["energy_j"] == pl.Float64 and frame.schema["input_tokens"] == pl.Int64
    frame = read(tmp_path / "t.parquet", columns=["input_tokens=usage.prompt_tokens"])
    assert frame["input_tokens"].to_list() == [7, 8]


def test_json_escaped_keys_whitespace_and_escaped_strings(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "k.jsonl",
        [
            f'{{"ts":{T0_S},"mo\\u0064el":"esc"}}',
            f'  {{ "ts" : {T0_S} , "model" : "sp" , "input_tokens" : 5 }}  ',
            '{"ts":" 2025-01-01T00:00:00Z ","model":"a\\"b\\\\\\u00e9\\ud83d\\ude80"}',
        ],
    )
    frame = read(path, rejects=tmp_path / "rej.jsonl")
    assert rejects_of(tmp_path / "rej.jsonl") == []
    assert rows(frame, "ts", "model", "input_tokens") == [
        (T0, "esc", None),
        (T0, "sp", 5),
        (T0, 'a"b\\é🚀', None),
    ]


# --------------------------------------------------------------------------------------------
# nulls, blank lines, extra and nested values, dotted names
# --------------------------------------------------------------------------------------------


def test_csv_empty_field_is_null_and_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "n.csv",
        [
            "ts,model,site,input_tokens,duration_s,weight,unknown_col",
            f"{T0_S},m,,,,,whatever",
            "",
            f"{T0_S},m,s,5,0.5,0.25,",
            "   ",
            "",
        ],
    )
    frame = read(path)
    assert rows(frame, "line", "site", "input_tokens", "duration_s", "weight") == [
        (2, None, None, None, 1.0),
        (4, "s", 5, 0.5, 0.25),
    ]
    [stats] = wl.validate(path)
    assert (stats["records"], stats["rejected"], stats["blank_lines"]) == (2, 0, 3)
    assert "unknown_col" not in stats["columns_found"]


def test_jsonl_missing_key_equals_null_and_blank_lines_are_counted(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "n.jsonl",
        [
            "",
            json.dumps({"ts": T0_S, "model": "m", "site": None, "input_tokens": None, "weight": None}),
            "  \t ",
            json.dumps({"ts": T0_S, "model": "m"}),
            "",
        ],
    )
    frame = read(path, rejects=tmp_path / "rej.jsonl")
    assert rejects_of(tmp_path / "rej.jsonl") == []
    assert frame.drop("line").row(0) == frame.drop("line").row(1)
    assert rows(frame, "line", "site", "input_tokens", "weight") == [
        (2, None, None, 1.0),
        (4, None, None, 1.0),
    ]
    [stats] = wl.validate(path)
    assert (stats["records"], stats["rejected"], stats["blank_lines"]) == (2, 0, 3)


def test_empty_strings_are_null_and_strings_are_kept_verbatim(tmp_path: Path) -> None:
    # (A name with a line break or a tab is a reject: docs/bounds.md.)
    obj = {"ts": T0_S, "model": ' a,"b"\\ é 🚀 ', "site": "", "status": "line1 / line2", "zone": " "}
    frame = read(jsonl(tmp_path / "s.jsonl", [obj]))
    assert rows(frame, "model", "site", "status", "zone") == [(' a,"b"\\ é 🚀 ', None, "line1 / line2", " ")]


def test_unknown_keys_and_nested_values_are_skipped(tmp_path: Path) -> None:
    obj = {
        "meta": {"a": [1, {"b": "}"}], "c": None},
        "ts": T0_S,
        "list": [[], {}, "x,]"],
        "model": "m",
        "flag": True,
        "output_tokens": 3,
        "tail": {"deep": {"deeper": {"deepest": [1, 2, 3]}}},
    }
    frame = read(jsonl(tmp_path / "x.jsonl", [obj]), rejects=tmp_path / "rej.jsonl")
    assert rejects_of(tmp_path / "rej.jsonl") == []
    assert rows(frame, "ts", "model", "output_tokens") == [(T0, "m", 3)]


def test_dotted_mapped_name_via_flat_key_and_via_nested_object(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "o.jsonl",
        [
            {"ts": T0_S, "model": "m", "usage": {"prompt_tokens": 7, "completion_tokens": 8}},
            {"ts": T0_S, "model": "m", "usage.prompt_tokens": 9, "usage.completion_tokens": 10},
            {"ts": T0_S, "model": "m", "usage": {"other": 1}},
        ],
    )
    rules = ["input_tokens=usage.prompt_tokens", "output_tokens=usage.completion_tokens"]
    frame = read(path, columns=rules)
    assert rows(frame, "input_tokens", "output_tokens") == [(7, 8), (9, 10), (None, None)]
    # The openai preset maps usage.* and ts=created.
    path = jsonl(tmp_path / "oa.jsonl", [{"created": T0_S, "model": "m", "usage": {"prompt_tokens": 1}}])
    assert rows(read(path, preset="openai"), "ts", "input_tokens") == [(T0, 1)]


# --------------------------------------------------------------------------------------------
# column mapping and presets
# --------------------------------------------------------------------------------------------


@pytest.fixture
def renamed(tmp_path: Path) -> Path:
    return jsonl(
        tmp_path / "renamed.jsonl",
        [
            {
                "ts": T0_S,
                "model": "raw-model",
                "model_group": "grp",
                "prompt_tokens": 11,
                "input_tokens": 999,
                "latency_ms": 1500,
            }
        ],
    )


def test_column_rules_list_and_dict_forms(renamed: Path) -> None:
    frame = read(renamed, columns=["input_tokens=prompt_tokens", "model=model_group"])
    assert rows(frame, "model", "input_tokens", "duration_s") == [("grp", 11, None)]
    frame = read(renamed, columns={"input_tokens": "prompt_tokens", "duration_s": "latency_ms/1000"})
    assert rows(frame, "model", "input_tokens", "duration_s") == [("raw-model", 11, 1.5)]
    frame = read(renamed)  # unmapped: read under canonical names
    assert rows(frame, "model", "input_tokens") == [("raw-model", 999)]


def test_columns_table_in_config_toml(renamed: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[columns]\ninput_tokens = "prompt_tokens"\nmodel = "model_group"\n', encoding="utf-8")
    frame = read(renamed, config=cfg)
    assert rows(frame, "model", "input_tokens") == [("grp", 11)]
    result = cli("validate", renamed, "--config", cfg)
    assert result.exit_code == 0, result.stderr
    assert "ts model input_tokens" in result.stdout


LITELLM_HEADER = (
    "request_id,startTime,endTime,request_duration_ms,model,model_group,custom_llm_provider,"
    "api_base,prompt_tokens,completion_tokens,total_tokens,spend,status"
)


def test_litellm_preset_on_spendlogs_shape(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "spend.csv",
        [
            LITELLM_HEADER,
            "r1,2025-03-01 10:00:00.000,2025-03-01 10:00:01.250,1250,gpt-4o,grp,openai,"
            "https://api.openai.com,100,20,120,0.0123,success",
            "r2,2025-03-01T10:00:00Z,2025-03-01T10:00:02+00:00,2000,llama,grp,vllm,http://x,5,,5,0,failure",
        ],
    )
    frame = read(path, preset="litellm")
    assert rows(
        frame, "ts", "model", "input_tokens", "output_tokens", "duration_s", "request_id", "status"
    ) == [
        (dt.datetime(2025, 3, 1, 10, 0, 1, 250000, tzinfo=UTC), "gpt-4o", 100, 20, 1.25, "r1", "success"),
        (dt.datetime(2025, 3, 1, 10, 0, 2, tzinfo=UTC), "llama", 5, None, 2.0, "r2", "failure"),
    ]
    # A later --column rule overrides the preset.
    frame = read(path, preset="litellm", columns=["model=model_group"])
    assert frame["model"].to_list() == ["grp", "grp"]


def test_vllm_preset(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "vllm.jsonl",
        [
            {
                "ts": "2025-01-01T00:00:00Z",
                "model": "m",
                "num_prompt_tokens": 5,
                "num_generation_tokens": 6,
                "e2e_latency": 0.75,
                "prefill_time": 0.1,
                "decode_time": 0.6,
                "queued_time": 0.05,
                "finish_reason": "stop",
            }
        ],
    )
    assert rows(read(path, preset="vllm"), "input_tokens", "output_tokens", "duration_s") == [(5, 6, 0.75)]


def test_otel_preset(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "otel.jsonl",
        [
            {
                "end_time": "2025-01-01T00:00:00Z",
                "gen_ai.request.model": "req",
                "gen_ai.response.model": "resp",
                "gen_ai.usage.input_tokens": 3,
                "gen_ai.usage.output_tokens": 4,
                "server.address": "fra-1",
            }
        ],
    )
    frame = read(path, preset="otel")
    assert rows(frame, "ts", "model", "input_tokens", "output_tokens", "site") == [
        (T0, "resp", 3, 4, "fra-1")
    ]


def test_cli_column_is_repeatable_and_preset_applies(renamed: Path, tmp_path: Path) -> None:
    result = cli(
        "validate", renamed, "--column", "input_tokens=prompt_tokens", "--column", "model=model_group"
    )
    assert result.exit_code == 0, result.stderr
    assert "ts model input_tokens" in result.stdout
    # Only the mapped names count: without the mapping, prompt_tokens is not a canonical column.
    spend = write_lines(
        tmp_path / "spend.csv",
        [LITELLM_HEADER, "r1,x,2025-03-01T10:00:00Z,1250,gpt-4o,grp,openai,u,100,20,120,0.01,success"],
    )
    result = cli("validate", spend, "--preset", "litellm")
    assert result.exit_code == 0, result.stderr
    found = result.stdout.splitlines()[3]
    for col in ("ts", "model", "input_tokens", "output_tokens", "duration_s", "request_id", "status"):
        assert f" {col} " in f" {found} ".replace("│", " "), found


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--preset", "nope"], "unknown column preset 'nope'"),
        (["--column", "nope=x"], "'nope' is not a canonical column"),
        (["--column", "model=name/10"], "a scale only applies to numeric columns"),
        (["--column", "tokens"], "tokens"),
    ],
)
def test_bad_mapping_is_one_error_line(renamed: Path, args: list[str], fragment: str) -> None:
    assert_one_error_line(cli("validate", renamed, *args), fragment)


# --------------------------------------------------------------------------------------------
# rejects
# --------------------------------------------------------------------------------------------

GOOD = {"ts": "2025-01-01T00:00:00Z", "model": "m"}
JSONL_BAD = [
    # (physical line text, reason)
    ("not json", "unparseable: invalid JSON"),
    ('{"ts": "2025-01-01T00:00:00Z", "model": "m"', "unparseable: invalid JSON"),
    ('{"ts": "2025-01-01T00:00:00Z", "model": "m"} trailing', "unparseable: invalid JSON"),
    ("[1, 2]", "unparseable: invalid JSON"),
    (json.dumps({"model": "m"}), "missing ts"),
    (json.dumps({"ts": None, "model": "m"}), "missing ts"),
    (json.dumps({"ts": "2025-01-01T00:00:00Z"}), "missing model"),
    (json.dumps({"ts": "2025-01-01T00:00:00Z", "model": None}), "missing model"),
    (json.dumps({"ts": "2025-01-01T00:00:00Z", "model": ""}), "missing model"),
    (json.dumps({"ts": "yesterday", "model": "m"}), "bad value for ts"),
    (json.dumps({"ts": "2025-02-30T00:00:00Z", "model": "m"}), "bad value for ts"),
    (json.dumps({"ts": "2025-01-01T25:00:00Z", "model": "m"}), "bad value for ts"),
    (json.dumps({**GOOD, "input_tokens": -1}), "negative input_tokens"),
    (json.dumps({**GOOD, "output_tokens": -5}), "negative output_tokens"),
    (json.dumps({**GOOD, "gpus": -1}), "negative gpus"),
    (json.dumps({**GOOD, "duration_s": -0.1}), "negative duration_s"),
    (json.dumps({**GOOD, "energy_j": -3.0}), "negative energy_j"),
    (json.dumps({**GOOD, "weight": -0.5}), "negative weight"),
    ('{"ts": "2025-01-01T00:00:00Z", "model": "m", "duration_s": NaN}', "non-finite duration_s"),
    (json.dumps({**GOOD, "energy_j": "Infinity"}), "non-finite energy_j"),
    ('{"ts": "2025-01-01T00:00:00Z", "model": "m", "weight": 1e999}', "non-finite weight"),
    (json.dumps({**GOOD, "input_tokens": 12.5}), "bad value for input_tokens"),
    (json.dumps({**GOOD, "output_tokens": "many"}), "bad value for output_tokens"),
    (json.dumps({**GOOD, "input_tokens": {"n": 1}}), "bad value for input_tokens"),
]


def test_each_jsonl_reject_reason_with_line_in_rejects_file_and_stats(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD)]
    for text, _ in JSONL_BAD:
        lines += [text, json.dumps({**GOOD, "input_tokens": 812.0})]  # 812.0 is a valid count
    lines.insert(3, "")
    path = write_lines(tmp_path / "bad.jsonl", lines)
    rej = tmp_path / "rejects.jsonl"
    frame = read(path, rejects=rej)
    bad_lines = [
        i + 1 for i, text in enumerate(lines) if text and json.dumps(GOOD) != text and "812" not in text
    ]
    assert len(bad_lines) == len(JSONL_BAD)
    got = rejects_of(rej)
    assert [(r["source"], r["line"], r["reason"]) for r in got] == [
        (str(path), line, reason) for line, (_, reason) in zip(bad_lines, JSONL_BAD, strict=True)
    ]
    assert [r["raw"] for r in got] == [text for text, _ in JSONL_BAD]
    # Nothing half-used: exactly the good lines are records.
    assert frame.height == 1 + len(JSONL_BAD)
    assert frame["input_tokens"].to_list() == [None] + [812] * len(JSONL_BAD)
    [stats] = wl.validate(path)
    expected_counts: dict[str, int] = {}
    for _, reason in JSONL_BAD:
        expected_counts[reason] = expected_counts.get(reason, 0) + 1
    assert stats["rejects"] == expected_counts
    assert (stats["records"], stats["rejected"], stats["blank_lines"]) == (frame.height, len(JSONL_BAD), 1)


def test_csv_rejects_use_physical_lines_across_quoted_newlines(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "bad.csv",
        [
            "ts,model,input_tokens,duration_s,energy_j",
            f'{T0_S},"multi',  # line 2: a record spanning lines 2-3 (a line break in a name)
            'line",1,,',
            f"{T0_S},m,1",  # 4: too few fields
            f"{T0_S},m,1,2,3,4",  # 5: too many
            f"{T0_S},,1,,",  # 6: empty model
            ",m,1,,",  # 7: empty ts
            f"{T0_S},m,12.5,,",  # 8
            f"{T0_S},m,-1,,",  # 9
            f"{T0_S},m,,-2,",  # 10
            f"{T0_S},m,,,inf",  # 11
            f"{T0_S},m,,nan,",  # 12
            "2025-13-01T00:00:00Z,m,,,",  # 13
            f"{T0_S},m,1,,",  # 14
            f'{T0_S},"unterminated,1,,',  # 15 to EOF
        ],
    )
    rej = tmp_path / "rej.jsonl"
    frame = read(path, rejects=rej)
    assert rows(frame, "line", "model", "input_tokens") == [(14, "m", 1)]
    got = [(r["line"], r["reason"]) for r in rejects_of(rej)]
    assert got == [
        (2, "control character U+000A in model"),
        (4, "unparseable: wrong number of CSV fields"),
        (5, "unparseable: wrong number of CSV fields"),
        (6, "missing model"),
        (7, "missing ts"),
        (8, "bad value for input_tokens"),
        (9, "negative input_tokens"),
        (10, "negative duration_s"),
        (11, "non-finite energy_j"),
        (12, "non-finite duration_s"),
        (13, "bad value for ts"),
        (15, "unparseable: unterminated CSV quote"),
    ]
    [stats] = wl.validate(path)
    assert (stats["records"], stats["rejected"]) == (1, 12)
    assert stats["rejects"]["unparseable: wrong number of CSV fields"] == 2


def test_parquet_rejects_use_zero_based_row_index(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ts": pa.array([T0_S, None, T0_S, T0_S, T0_S, T0_S, T0_S, T0_S], pa.int64()),
            "model": ["m", "m", None, "", "m", "m", "m", "m"],
            "input_tokens": pa.array([1, 1, 1, 1, -1, 1, 1, 1], pa.int64()),
            "duration_s": [0.5, 0.5, 0.5, 0.5, 0.5, float("nan"), -1.0, float("inf")],
        }
    )
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path, row_group_size=3)
    rej = tmp_path / "rej.jsonl"
    frame = read(path, rejects=rej)
    assert frame["line"].to_list() == [0]
    got = [(r["source"], r["line"], r["reason"], r["raw"]) for r in rejects_of(rej)]
    assert got == [
        (str(path), 1, "missing ts", None),
        (str(path), 2, "missing model", None),
        (str(path), 3, "missing model", None),
        (str(path), 4, "negative input_tokens", None),
        (str(path), 5, "non-finite duration_s", None),
        (str(path), 6, "negative duration_s", None),
        (str(path), 7, "non-finite duration_s", None),
    ]
    pq.write_table(pa.table({"ts": [T0_S], "model": ["m"], "input_tokens": [12.5]}), tmp_path / "f.parquet")
    [stats] = wl.validate(tmp_path / "f.parquet")
    assert stats["rejects"] == {"bad value for input_tokens": 1}


def test_validate_cli_exit_1_with_rejects_and_rejects_file(tmp_path: Path) -> None:
    good = jsonl(tmp_path / "good.jsonl", [GOOD, GOOD])
    bad = write_lines(
        tmp_path / "bad.csv",
        ["ts,model,input_tokens", f"{T0_S},m,-1", f"{T0_S},m,1", f"{T0_S},,1", f"{T0_S},m,-2"],
    )
    rej = tmp_path / "out" / "rejects.jsonl"
    rej.parent.mkdir()
    result = cli("validate", good, bad, "--rejects", rej)
    assert result.exit_code == EXIT_REJECTS, (result.stdout, result.stderr)
    body = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(body) == 2
    cells = [[c.strip() for c in line.strip("│").split("│")] for line in body]
    assert cells[0] == [str(good), "jsonl", "2", "0", "", "ts model"]
    assert cells[1] == [
        str(bad),
        "csv",
        "1",
        "3",
        "missing model 1, negative input_tokens 2",
        "ts model input_tokens",
    ]
    assert result.stderr.strip() == f"3 rejected records; see {rej}"
    assert [(r["source"], r["line"], r["reason"]) for r in rejects_of(rej)] == [
        (str(bad), 2, "negative input_tokens"),
        (str(bad), 4, "missing model"),
        (str(bad), 5, "negative input_tokens"),
    ]


def test_validate_cli_exit_0_when_clean(tmp_path: Path) -> None:
    path = write_records(tmp_path, "a.csv.gz")
    result = cli("validate", path)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    body = [line for line in result.stdout.splitlines() if line.startswith("│")]
    header = [line for line in result.stdout.splitlines() if line.startswith("┃")]
    assert [c.strip() for c in header[0].strip("┃").split("┃")] == [
        "path",
        "format",
        "records",
        "rejected",
        "rejects",
        "columns_found",
    ]
    cells = [c.strip() for c in body[0].strip("│").split("│")]
    assert cells[:5] == [str(path), "csv", "3", "0", ""]
    assert set(cells[5].split()) == {c for r in RECORDS for c in r}


# --------------------------------------------------------------------------------------------
# fatal input errors: exit 2, one stderr line naming the file, no traceback
# --------------------------------------------------------------------------------------------


def _truncated_gz(tmp: Path) -> Path:
    body = gzip.compress(b"".join(json.dumps({**GOOD, "i": i}).encode() + b"\n" for i in range(5000)))
    path = tmp / "cut.jsonl.gz"
    path.write_bytes(body[: len(body) // 2])
    return path


def _truncated_zst(tmp: Path) -> Path:
    plain = write_lines(tmp / "p.jsonl", [json.dumps({**GOOD, "i": i}) for i in range(5000)])
    full = zst(plain, tmp / "full.jsonl.zst").read_bytes()
    path = tmp / "cut.jsonl.zst"
    path.write_bytes(full[: len(full) // 2])
    return path


def _corrupt_gz_header(tmp: Path) -> Path:
    path = tmp / "notgz.csv.gz"
    path.write_bytes(b"ts,model\n1,m\n")
    return path


def _corrupt_parquet(tmp: Path) -> Path:
    path = tmp / "bad.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file PAR1")
    return path


def _truncated_parquet(tmp: Path) -> Path:
    path = tmp / "cut.parquet"
    pq.write_table(pa.table({"ts": [T0_S] * 100, "model": ["m"] * 100}), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])
    return path


def _unknown_ext(tmp: Path) -> Path:
    path = tmp / "logs.txt"
    path.write_text(json.dumps(GOOD) + "\n")
    return path


FATAL = [
    ("missing", lambda tmp: tmp / "nope.jsonl", "no such file"),
    ("truncated-gz", _truncated_gz, "truncated or corrupt gzip"),
    pytest.param("truncated-zst", _truncated_zst, "truncated or corrupt zstd", marks=needs_zstd),
    ("not-gzip", _corrupt_gz_header, "gzip"),
    ("corrupt-parquet", _corrupt_parquet, "Parquet"),
    ("truncated-parquet", _truncated_parquet, "Parquet"),
    ("unknown-ext", _unknown_ext, "unknown log format"),
    ("glob-no-match", lambda tmp: tmp / "none-*.jsonl", "glob matched no log files"),
]


@pytest.mark.parametrize(("case", "make", "fragment"), FATAL)
def test_fatal_input_is_exit_2_one_line_naming_the_file(
    tmp_path: Path, case: str, make, fragment: str
) -> None:
    path = make(tmp_path)
    good = jsonl(tmp_path / "good.jsonl", [GOOD])
    result = cli("validate", good, path)
    assert_one_error_line(result, fragment)
    assert str(path) in result.stderr
    # The Python API raises the engine's InputError with the same one-line message.
    with pytest.raises(wl._core.InputError) as info:
        wl.validate([good, path])
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_empty_directory_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("x")
    assert_one_error_line(cli("validate", tmp_path / "empty"), "directory holds no log files")


# --------------------------------------------------------------------------------------------
# size: many records, long lines, block boundaries
# --------------------------------------------------------------------------------------------


def test_200k_records_exact_count_and_token_sum(tmp_path: Path) -> None:
    n = 200_000
    path = tmp_path / "big.jsonl"
    with path.open("w") as f:
        for i in range(n):
            f.write(f'{{"ts":{T0_S + i},"model":"m{i % 7}","output_tokens":{i % 1000}}}\n')
    frame = read(path, threads=2)
    assert frame.height == n
    assert frame["output_tokens"].sum() == sum(i % 1000 for i in range(n)) == 99_900_000
    assert frame["line"].to_list() == list(range(1, n + 1))
    assert frame["ts"].is_sorted()
    [stats] = wl.validate(path, threads=2)
    assert (stats["records"], stats["rejected"], stats["blank_lines"]) == (n, 0, 0)


def test_long_lines_and_no_trailing_newline(tmp_path: Path) -> None:
    big = "x" * (3 << 20)  # 3 MiB unknown field: larger than any read block
    lines = []
    for i in range(40):
        obj: dict[str, object] = {"ts": T0_S + i, "model": "m", "output_tokens": i}
        if i % 10 == 5:
            obj["blob"] = big
        if i == 20:
            obj["request_id"] = big
        lines.append(json.dumps(obj))
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")  # no final newline
    frame = read(path)
    assert frame["output_tokens"].to_list() == list(range(40))
    assert frame["request_id"][20] == big
    csv_path = tmp_path / "long.csv"
    csv_path.write_text(
        "ts,model,request_id,output_tokens\r\n" + "".join(f'{T0_S},m,"{big}\n",{i}\r\n' for i in range(3)),
        encoding="utf-8",
    )
    frame = read(csv_path)
    assert rows(frame, "line", "output_tokens") == [(2, 0), (4, 1), (6, 2)]
    assert frame["request_id"].str.len_chars().to_list() == [len(big) + 1] * 3


def test_crlf_and_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_bytes(b"\xef\xbb\xbfts,model,site\r\n" + f"{T0_S},m,s\r\n\r\n{T0_S},n,t\r\n".encode())
    frame = read(path, rejects=tmp_path / "rej.jsonl")
    assert rejects_of(tmp_path / "rej.jsonl") == []
    assert rows(frame, "line", "ts", "model", "site") == [(2, T0, "m", "s"), (4, T0, "n", "t")]
    path = tmp_path / "w.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\r\n" + json.dumps(GOOD).encode() + b"\r\n"
    )
    assert read(path)["line"].to_list() == [1, 2]


# --------------------------------------------------------------------------------------------
# token counts: exact up to the physical bound, rejected beyond it (never rounded)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_token_counts_are_exact_up_to_the_bound_and_rejected_beyond(tmp_path: Path, fmt: str) -> None:
    exact = [999_999_999_999, 10**12]  # the bound (docs/bounds.md) is inclusive
    beyond = [10**12 + 1, 1_234_567_890_123_456_789, 2**63 - 1]
    values = exact + beyond
    if fmt == "jsonl":
        path = jsonl(tmp_path / "t.jsonl", [{**GOOD, "input_tokens": v} for v in values])
    else:
        path = write_lines(tmp_path / "t.csv", ["ts,model,input_tokens"] + [f"{T0_S},m,{v}" for v in values])
    frame = read(path, rejects=tmp_path / "rej.jsonl")
    assert frame["input_tokens"].to_list() == exact
    got = rejects_of(tmp_path / "rej.jsonl")
    assert [r["reason"] for r in got] == ["implausible input_tokens (above 1e12)"] * len(beyond)
    assert [r["line"] for r in got] == [i + 1 + (fmt == "csv") for i in range(len(exact), len(values))]
