"""Energy inside a Polars query (wattledger.polars), the public DuckDB registration
(wattledger.register) and estimate() of a LazyFrame.

One formula, one place: the Polars expressions, the DuckDB functions and an ingest's cells
must give every record the same E_acc and method. The comparisons below are exact (the same
kernel entry computes both per-row paths; a one-record cell holds E_acc / 1000 unrounded).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wattledger as wl
import wattledger.polars as wlp
from wattledger import _core, udf
from wattledger.errors import ConfigError, UsageError
from wattledger.synthetic import FleetFiles, generate_fleet

#: The kernel's inputs as the canonical columns of a log (wl.read_logs) name them.
SIX = ("model", "hardware", "input_tokens", "output_tokens", "duration_s", "energy_j")
EIGHT = ("model", "hardware", "site", "gpus", "input_tokens", "output_tokens", "duration_s", "energy_j")

PACK = """
[defaults]
pue = 1.2
utilization = 0.5
concurrency = 2.0
mfu = 0.25

[hardware.h100]
tdp_w = 700
idle_w = 75
peak_tflops = 989

[hardware.bare]
tdp_w = 300

[models.m8]
active_params_b = 8.0
[[models.m8.coefficients]]
hardware = "*"
wh_per_1k_input = 0.0025
wh_per_1k_output = 0.033

[models.p70]
active_params_b = 70.0

[sites.fra]
zone = "DE"
hardware = "h100"
gpus = 4
utilization = 0.7

[outcomes]
cached = ["from_cache"]
"""


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pack") / "pack.toml"
    path.write_text(PACK)
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> FleetFiles:
    return generate_fleet(
        tmp_path_factory.mktemp("fleet"), records=6_000, span="day", formats=("jsonl", "parquet"), seed=15
    )


@pytest.fixture(scope="module")
def records(fleet: FleetFiles) -> pl.DataFrame:
    """The fleet's records, each in an hour of its own and standing for one request, with a
    cache flag on every 13th: then every cell of an estimate is one record."""
    frame = wl.read_logs(fleet.logs["jsonl"], config=fleet.config).drop("source", "line", "weight")
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return frame.with_columns(
        ts=pl.datetime_range(
            start, start + dt.timedelta(hours=frame.height - 1), "1h", eager=True, time_zone="UTC"
        ),
        cache_hit=pl.when(pl.int_range(pl.len()) % 13 == 0).then(True).otherwise(None),
    )


def polars_energy(
    frame: pl.DataFrame, columns: tuple[str, ...], config: object, **extra: str
) -> pl.DataFrame:
    kw = {c: c for c in columns if c != "model"}
    return frame.select(
        wlp.energy_wh(model="model", config=config, **kw, **extra),
        wlp.energy_method(model="model", config=config, **kw, **extra),
    )


def duckdb_energy(frame: pl.DataFrame, columns: tuple[str, ...], config: object) -> pl.DataFrame:
    con = duckdb.connect()
    try:
        wl.register(con, config=config)
        suffix = "_at" if "site" in columns else ""
        args = ", ".join(columns)
        con.register("frame", frame.select(columns))
        return con.sql(
            f"SELECT wl_energy_wh{suffix}({args}) AS energy_wh, wl_energy_method{suffix}({args}) AS method "
            "FROM frame"
        ).pl()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# One formula: the expression, the DuckDB functions and the engine's estimate agree per record


@pytest.mark.parametrize("columns", [SIX, EIGHT], ids=["siteless", "with-site"])
def test_expression_equals_the_duckdb_function_row_by_row(
    records: pl.DataFrame, fleet: FleetFiles, columns: tuple[str, ...]
) -> None:
    ours = polars_energy(records, columns, fleet.config)
    theirs = duckdb_energy(records, columns, fleet.config)
    assert ours.height == records.height
    assert ours.equals(theirs)  # nulls in the same rows, every float bit for bit
    methods = set(ours["method"].drop_nulls())
    assert methods >= {"measured", "tokens", "gpu_time", "flops", "none"}, methods
    assert (
        ours.filter(pl.col("method") == "none")["energy_wh"].null_count() == (ours["method"] == "none").sum()
    )


def test_expression_equals_the_engines_estimate_per_record(records: pl.DataFrame, fleet: FleetFiles) -> None:
    """Site, gpus and the cache flag included: each record is its own cell, so the cell's
    energy_acc_kwh is the record's E_acc / 1000 and its method the record's."""
    ours = records.with_columns(
        wlp.energy(
            model="model",
            hardware="hardware",
            site="site",
            gpus="gpus",
            input_tokens="input_tokens",
            output_tokens="output_tokens",
            duration_s="duration_s",
            energy_j="energy_j",
            status="status",
            cache_hit="cache_hit",
            config=fleet.config,
        )
    ).unnest("energy")
    cells = wl.estimate(records, config=fleet.config, grid=[fleet.grid])
    assert cells["records"].max() == 1 and cells.height == records.height
    joined = ours.with_columns(hour=pl.col("ts").dt.truncate("1h")).join(
        cells.select("hour", pl.col("method").alias("cell_method"), "energy_acc_kwh"),
        on="hour",
        validate="1:1",
    )
    assert joined.height == records.height
    assert (joined["method"] == joined["cell_method"]).all()
    # Divided in Python: Polars divides a column by a constant as a product with its reciprocal,
    # which may differ from the engine's division in the last bit.
    pairs = joined.select("energy_wh", "energy_acc_kwh").iter_rows()
    assert all(kwh is None if wh is None else wh / 1000 == kwh for wh, kwh in pairs)
    by_method = dict(joined.group_by("method").len().iter_rows())
    flagged = records.height // 13 + 1
    failed_and_flagged = joined.filter(pl.col("cache_hit") & (pl.col("status") == "error")).height
    assert by_method["cached"] == flagged - failed_and_flagged  # failed wins over the flag


def test_outcomes_nulls_unknown_models_and_rejected_rows(pack: Path) -> None:
    frame = pl.DataFrame(
        {
            "model": ["m8", "m8", "nobody", None, "m8", "m8", "m8", "p70", "m8", "m8", "m8", ""],
            "hardware": ["h100", None, "h100", "h100", None, None, None, "h100", None, None, None, None],
            "input_tokens": [1000, 1000, 1000, 1000, -5, 1000, 1000, 1000, None, 1000, 1000, 1000],
            "output_tokens": [500, 500, 500, 500, 500, 500, 500, 500, None, 500, 500, 500],
            "duration_s": [None, None, None, None, None, None, None, None, 36.0, None, None, None],
            "energy_j": [None, 7200.0, None, None, None, None, None, None, None, -1.0, None, None],
            "status": [None, None, None, None, None, "from_cache", "error", None, None, None, "ERROR", None],
            "cache_hit": [None, None, None, None, None, None, True, None, None, None, None, None],
        }
    )
    kw = {c: c for c in frame.columns if c != "model"}
    got = frame.select(pl.col("model").wl.energy(config=pack, **kw).struct.unnest())
    rows = list(got.iter_rows())
    tokens_wh = (1000 * 0.0025 + 500 * 0.033) / 1000
    assert rows[0] == (tokens_wh, "tokens")
    assert rows[1] == (2.0, "measured")  # energy_j wins
    assert rows[2] == (None, "none")  # an unknown model with tokens: no method, NULL, never 0
    assert rows[3] == (None, None)  # no model
    assert rows[4] == (None, None)  # negative tokens: an ingest rejects the record
    assert rows[5] == (0.0, "cached")  # [outcomes] cached: a known zero
    assert rows[6] == (tokens_wh, "tokens")  # failed wins over the cache flag, and is estimated
    # p70 has no coefficients: flops. F = 2 * 70e9 * 1500; E = F / (989e12 * 0.25) * 700 / 3600
    assert rows[7][1] == "flops" and rows[7][0] == pytest.approx(
        2 * 70e9 * 1500 / (989e12 * 0.25) * 700 / 3600
    )
    assert rows[8] == (None, "none")  # a duration, but no hardware: no method
    assert rows[9] == (None, None)  # negative energy: rejected
    assert rows[10] == (tokens_wh, "tokens")  # status "ERROR": failed, estimated from its tokens
    assert rows[11] == (None, None)  # an empty model is no model
    # The site fills hardware and gpus: gpu_time at fra is 36 s * 4 GPUs * (75 + 0.7 * 625) W / 2.
    at_site = pl.DataFrame({"model": ["p70"], "duration_s": [36.0]}).select(
        wlp.energy(model="model", duration_s="duration_s", site=pl.lit("fra"), config=pack).struct.unnest()
    )
    assert at_site.row(0) == (pytest.approx(36 * 4 * (75 + 0.7 * 625) / 2 / 3600), "gpu_time")


def test_namespace_group_by_and_lazy_streaming_agree(records: pl.DataFrame, fleet: FleetFiles) -> None:
    kw = {c: c for c in EIGHT if c != "model"}
    by_function = wlp.energy_wh(model="model", config=fleet.config, **kw)
    by_namespace = pl.col("model").wl.energy_wh(config=fleet.config, **kw)
    eager = records.select(by_function)
    assert eager.equals(records.select(by_namespace))
    per_row = records.with_columns(eager).group_by("model").agg(pl.col("energy_wh").sum())
    in_agg = records.group_by("model").agg(by_namespace.sum())
    # Equal up to the order Polars adds each group's floats in.
    a, b = dict(per_row.iter_rows()), dict(in_agg.iter_rows())
    assert a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-12) for k in a)
    # The same on a LazyFrame, on the streaming engine and the in-memory one.
    lazy = records.lazy().with_columns(by_function)
    assert lazy.collect(engine="streaming").select("energy_wh").equals(eager)
    assert lazy.collect(engine="in-memory").select("energy_wh").equals(eager)


def test_the_kernel_gets_polars_series_once_per_batch(
    records: pl.DataFrame, fleet: FleetFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole batches, not rows; the Series themselves (their Arrow C stream), not copies
    converted in Python."""
    seen: list[tuple[int, type]] = []
    real = _core.accelerator_energy_wh

    def spy(config: _core.Config, model: object, *rest: object, **kw: object) -> tuple[object, object]:
        seen.append((len(model), type(model)))
        return real(config, model, *rest, **kw)

    monkeypatch.setattr(_core, "accelerator_energy_wh", spy)
    frame = pl.concat([records] * 4)
    out = frame.select(pl.col("model").wl.energy_wh(input_tokens="input_tokens", config=fleet.config))
    assert out.height == frame.height
    assert sum(n for n, _ in seen) == frame.height and len(seen) <= 8
    assert {t for _, t in seen} == {pl.Series}


def test_every_polars_layout_of_a_column_gives_the_same_answer(pack: Path) -> None:
    """Categoricals and enums (Arrow dictionaries), other integer widths, whole floats, several
    chunks, all-null literals and an empty frame all read as the plain columns do."""
    frame = pl.DataFrame({"model": ["m8", "m8", None, "nobody"], "t": [1000, 2000, 5, 7]})

    def energy(f: pl.DataFrame, **extra: object) -> pl.DataFrame:
        expr = wlp.energy(model="model", input_tokens="t", config=pack, **extra)
        return f.select(expr.struct.unnest())

    base = energy(frame)
    assert base["method"].to_list() == ["tokens", "tokens", None, "none"]
    variants = {
        "categorical": frame.with_columns(pl.col("model").cast(pl.Categorical)),
        "enum": frame.with_columns(pl.col("model").cast(pl.Enum(["m8", "nobody"]))),
        "int32": frame.with_columns(pl.col("t").cast(pl.Int32)),
        "uint64": frame.with_columns(pl.col("t").cast(pl.UInt64)),
        "whole floats": frame.with_columns(pl.col("t").cast(pl.Float64)),
        "chunks": pl.concat([frame.head(1), frame.tail(3)], rechunk=False),
    }
    for name, variant in variants.items():
        assert energy(variant).equals(base), name
    assert energy(frame, site=pl.lit(None), energy_j=pl.lit(None)).equals(base)
    assert energy(frame, cache_hit=pl.lit(True))["method"].to_list() == ["cached", "cached", None, "cached"]
    assert energy(frame.head(0)).height == 0


# ---------------------------------------------------------------------------------------------
# Property: any input, one answer


_MODELS = st.sampled_from(["m8", "p70", "nobody", "", None])
_HARDWARE = st.sampled_from(["h100", "bare", "zzz", None])
_TOKENS = st.one_of(st.none(), st.integers(min_value=-10, max_value=10**13))
_FLOATS = st.one_of(
    st.none(), st.floats(min_value=-10.0, max_value=1e9), st.sampled_from([math.nan, math.inf, -math.inf])
)
_ROW = st.tuples(_MODELS, _HARDWARE, _TOKENS, _TOKENS, _FLOATS, _FLOATS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW, min_size=1, max_size=40))
def test_property_polars_equals_duckdb_and_the_measured_formula(
    rows: list[tuple[object, ...]], pack: Path
) -> None:
    schema = {
        "model": pl.String,
        "hardware": pl.String,
        "input_tokens": pl.Int64,
        "output_tokens": pl.Int64,
        "duration_s": pl.Float64,
        "energy_j": pl.Float64,
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    ours = polars_energy(frame, SIX, pack)
    assert ours.equals(duckdb_energy(frame, SIX, pack))
    for (model, _, tin, tout, dur, ej), (wh, method) in zip(rows, ours.iter_rows(), strict=True):
        assert (wh is None) == (method in (None, "none"))
        assert wh is None or wh >= 0.0  # never a negative energy
        bad = any(v is not None and v < 0 for v in (tin, tout)) or any(
            v is not None and not (0 <= v < float("inf")) for v in (dur, ej)
        )
        if not model or bad:
            assert method is None
        elif ej is not None and method is not None:
            assert method == "measured" and wh == ej / 3600


# ---------------------------------------------------------------------------------------------
# estimate() of a LazyFrame


KEYS = ["hour", "model", "site", "zone", "hardware", "method"]


def sorted_cells(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("source").sort(KEYS, nulls_last=True)


def assert_same_cells(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Equal cells, floats up to the last bits. Why not exact: with several worker threads,
    which worker takes which Arrow batch depends on timing (a DataFrame's batches are all
    there at once, a LazyFrame's arrive as Polars makes them), and a cell split over two
    workers is summed as two partial sums. With one thread the result is exact (below)."""
    a, b = sorted_cells(a), sorted_cells(b)
    floats = [c for c, t in a.schema.items() if t == pl.Float64]
    assert a.drop(floats).equals(b.drop(floats))
    for c in floats:
        for x, y in zip(a[c], b[c], strict=True):
            assert (x is None and y is None) or math.isclose(x, y, rel_tol=1e-12), (c, x, y)


def test_estimate_of_a_lazyframe_equals_the_dataframe_and_the_file(fleet: FleetFiles) -> None:
    frame = wl.read_logs(fleet.logs["parquet"], config=fleet.config).drop("source", "line")
    args = {"config": fleet.config, "grid": [fleet.grid]}
    assert wl.estimate(frame.lazy(), threads=1, **args).equals(wl.estimate(frame, threads=1, **args))
    assert_same_cells(wl.estimate(frame.lazy(), **args), wl.estimate(frame, **args))
    # A query, not just a frame: scan, filter, rename, computed column, all streamed.
    query = (
        pl.scan_parquet(fleet.logs["parquet"])
        .filter(pl.col("model") != "llama-3.1-8b")
        .rename({"model": "served_model"})
        .with_columns(model=pl.col("served_model"))
    )
    of_query = wl.estimate(query, threads=1, **args)
    assert of_query.equals(wl.estimate(query.collect(), threads=1, **args))
    assert_same_cells(wl.estimate(query, **args), of_query)
    of_file = wl.estimate(fleet.logs["parquet"], threads=1, **args)
    assert sorted_cells(of_query).equals(sorted_cells(of_file.filter(pl.col("model") != "llama-3.1-8b")))


def test_estimate_of_an_empty_lazyframe_is_an_empty_frame(fleet: FleetFiles) -> None:
    lazy = pl.scan_parquet(fleet.logs["parquet"]).filter(pl.col("model") == "no such model")
    assert wl.estimate(lazy, config=fleet.config).height == 0


# ---------------------------------------------------------------------------------------------
# Errors: one clear line


def one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0]


def test_a_lazyframe_that_cannot_run_is_one_line(fleet: FleetFiles) -> None:
    lazy = pl.scan_parquet(fleet.logs["parquet"]).select("ts", "model", pl.col("input_tokenz"))
    with pytest.raises(UsageError) as exc:
        wl.estimate(lazy, config=fleet.config)
    assert len(str(exc.value).splitlines()) == 1
    assert 'cannot run: unable to find column "input_tokenz"' in str(exc.value)
    failing = pl.LazyFrame({"ts": ["2025-06-01T00:00:00Z"], "model": ["m"], "x": ["a"]}).with_columns(
        input_tokens=pl.col("x").cast(pl.Int64)
    )
    with pytest.raises(UsageError) as exc:
        wl.estimate(failing)
    assert len(str(exc.value).splitlines()) == 1
    assert str(exc.value).startswith("the LazyFrame's query failed: conversion from `str` to `i64` failed")


def test_expression_errors_name_the_column_and_the_fix(pack: Path) -> None:
    frame = pl.DataFrame({"model": ["m8"], "tokens_in": ["12"], "n": [1]})
    with pytest.raises(UsageError) as exc:
        frame.select(wlp.energy_wh(model="model", input_tokens="tokens_in", config=pack))
    assert one_line(exc.value) == (
        "energy_wh: input_tokens is a column of String, the kernel needs integers; "
        "cast it, e.g. .cast(pl.Int64)"
    )
    with pytest.raises(UsageError) as exc:
        frame.select(pl.col("n").wl.energy_method(config=pack))
    assert one_line(exc.value).startswith(
        "energy_method: model is a column of Int64, the kernel needs strings"
    )
    # Caught when the expression is built: a value where a column belongs, an unknown input.
    with pytest.raises(UsageError) as exc:
        wlp.energy_wh(model="model", input_tokens=12)
    assert str(exc.value) == (
        "energy_wh: input_tokens must be a column name or a Polars expression, not int; "
        "for one value in every row pass pl.lit(value)"
    )
    with pytest.raises(UsageError, match="no input named tokens; the inputs are model, hardware"):
        wlp.energy_wh(model="model", tokens="t")
    with pytest.raises(ConfigError):
        wlp.energy_wh(model="model", config=pack.with_name("missing.toml"))
    # An unknown column is Polars' own one-line error on a DataFrame.
    with pytest.raises(pl.exceptions.ColumnNotFoundError) as cnf:
        frame.select(wlp.energy_wh(model="model", input_tokens="no_such"))
    assert 'unable to find column "no_such"' in one_line(cnf.value)


# ---------------------------------------------------------------------------------------------
# wattledger.register: the DuckDB functions on any connection


def test_register_is_public_and_the_old_name_still_works(pack: Path) -> None:
    assert "register" in wl.__all__ and wl.register is udf.register
    query = (
        "SELECT wl_energy_wh('m8', NULL, 1000, 500, NULL, NULL), "
        "wl_energy_method('zzz', NULL, 1, NULL, NULL, NULL)"
    )
    expected = ((1000 * 0.0025 + 500 * 0.033) / 1000, "none")
    for register in (
        lambda con: wl.register(con, config=pack),
        lambda con: udf.register(con, wl.load_config(pack)),
    ):
        con = duckdb.connect()
        try:
            register(con)
            assert con.execute(query).fetchone() == expected
        finally:
            con.close()
    con = duckdb.connect()
    try:
        wl.register(con)  # the built-in pack
        assert set(udf.FUNCTIONS) <= {
            r[0] for r in con.execute("SELECT function_name FROM duckdb_functions()").fetchall()
        }
    finally:
        con.close()
    with pytest.raises(ConfigError) as exc:
        wl.register(duckdb.connect(), config=pack.with_name("missing.toml"))
    assert len(str(exc.value).splitlines()) == 1
