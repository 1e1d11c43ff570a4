"""The per-model report (methodology section 9) computed by the two peers wattledger is measured
against: DuckDB (the SQL oracle from tests/oracle_sql.py) and Polars (a lazy query written
here, independently of both the engine and the SQL).

Why two peers: DuckDB and Polars are what a data engineer would reach for instead of a custom
engine. If wattledger is not clearly faster or leaner than both on the same files, it has no
reason to exist; if the three disagree, at least one is wrong. The Polars query also
cross-checks the SQL oracle while the engine is being built (tests/test_peers_agree.py).

Compressed JSON Lines: both peers read ``.jsonl.zst`` natively (DuckDB's ``read_json`` and
Polars' ``scan_ndjson`` detect zstd from the extension); nothing is decompressed to disk.

Run one peer on its own (what benchmarks/run.py times in a separate process)::

    python benchmarks/peers.py duckdb|polars LOG CONFIG GRID --year 2025 --threads 2 --out result.parquet
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import oracle_sql  # noqa: E402  (tests/ is not a package; the oracle lives there on purpose)

REPORT_COLUMNS = list(oracle_sql.REPORT_COLUMNS)
US_PER_HOUR = 3_600_000_000

# ---------------------------------------------------------------------------------------------
# DuckDB
# ---------------------------------------------------------------------------------------------


def duckdb_report(
    log: str | Path, config: str | Path, grid: str | Path, *, year: int, threads: int
) -> pl.DataFrame:
    """The SQL oracle, planned as one query from files to report (cells as a view, not a table),
    with ``PRAGMA threads`` set."""
    con = oracle_sql.connect(threads)
    oracle_sql.load(con, [log], config, [grid], materialize=False)
    return con.sql(oracle_sql.report_by_model_sql(year)).pl()


# ---------------------------------------------------------------------------------------------
# Polars: readers
# ---------------------------------------------------------------------------------------------

LOG_TYPES: dict[str, pl.DataType] = {
    "ts": pl.String(),
    "request_id": pl.String(),
    "model": pl.String(),
    "site": pl.String(),
    "zone": pl.String(),
    "hardware": pl.String(),
    "gpus": pl.Int64(),
    "input_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "duration_s": pl.Float64(),
    "energy_j": pl.Float64(),
    "weight": pl.Float64(),
    "status": pl.String(),
    "cache_hit": pl.String(),
}


def _epoch_us_from_text(col: str) -> pl.Expr:
    """Spec 1 timestamps from text: RFC 3339 (Z or offset), naive = UTC, epoch by magnitude."""
    s = pl.col(col).str.strip_chars()
    norm = s.str.replace(" ", "T", literal=True).str.replace(r"Z$", "+00:00")
    with_offset = norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="us").dt.epoch("us")
    naive = norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us").dt.epoch("us")
    n = s.cast(pl.Int64, strict=False)
    a = n.abs()
    epoch = (
        pl.when(a < 100_000_000_000)
        .then(n * 1_000_000)
        .when(a < 100_000_000_000_000)
        .then(n * 1_000)
        .when(a < 100_000_000_000_000_000)
        .then(n)
        .otherwise(n // 1_000)
    )
    return pl.coalesce(with_offset, naive, epoch)


def scan_logs(path: str | Path) -> pl.LazyFrame:
    """Canonical columns (missing ones null) with ``ts_us`` = epoch microseconds UTC."""
    p = str(path)
    low = p.lower()
    if low.endswith(".parquet"):
        lf = pl.scan_parquet(p)
    elif low.endswith((".jsonl", ".ndjson", ".jsonl.zst", ".jsonl.gz", ".ndjson.zst")):
        lf = pl.scan_ndjson(p, schema=LOG_TYPES)
    elif low.endswith((".csv", ".csv.zst", ".csv.gz")):
        lf = pl.scan_csv(p, schema_overrides=LOG_TYPES)
    else:
        raise ValueError(f"polars peer: unknown format {p}")
    schema = lf.collect_schema()
    cols = []
    for name, dtype in LOG_TYPES.items():
        if name == "ts":
            continue
        if name not in schema:
            cols.append(pl.lit(None, dtype).alias(name))
        elif isinstance(schema[name], pl.String) and dtype != pl.String():
            cols.append(pl.col(name).cast(dtype, strict=False))
        elif isinstance(schema[name], pl.String):
            cols.append(pl.when(pl.col(name) == "").then(None).otherwise(pl.col(name)).alias(name))
        else:
            cols.append(pl.col(name).cast(dtype))
    ts_type = schema.get("ts")
    if isinstance(ts_type, pl.Datetime):
        # A timezone-naive Parquet timestamp is UTC: epoch() of the naive value is exactly that.
        ts = pl.col("ts").dt.epoch("us")
    elif ts_type is not None and ts_type.is_integer():
        ts = _epoch_us_from_text("ts_text")
        lf = lf.with_columns(pl.col("ts").cast(pl.String).alias("ts_text"))
    else:
        ts = _epoch_us_from_text("ts")
    return lf.select(ts.alias("ts_us"), *cols)


# ---------------------------------------------------------------------------------------------
# Polars: config and grid
# ---------------------------------------------------------------------------------------------


def _config_frames(config: str | Path) -> dict[str, pl.DataFrame | dict[str, float]]:
    with open(config, "rb") as fh:
        cfg = tomllib.load(fh)
    defaults = {**oracle_sql.SPEC_DEFAULTS, **cfg.get("defaults", {})}
    unc = {**oracle_sql.SPEC_UNCERTAINTY, **cfg.get("uncertainty", {})}
    hw = cfg.get("hardware", {})
    hardware = pl.DataFrame(
        {
            "eff_hardware": list(hw),
            "tdp_w": [v.get("tdp_w") for v in hw.values()],
            "idle_w": [v.get("idle_w", 0.0) for v in hw.values()],
            "peak_tflops": [v.get("peak_tflops") for v in hw.values()],
        },
        schema={
            "eff_hardware": pl.String,
            "tdp_w": pl.Float64,
            "idle_w": pl.Float64,
            "peak_tflops": pl.Float64,
        },
    )
    models = cfg.get("models", {})
    model_df = pl.DataFrame(
        {"model": list(models), "active_params_b": [v.get("active_params_b") for v in models.values()]},
        schema={"model": pl.String, "active_params_b": pl.Float64},
    )
    coef_rows = [
        (m, c["hardware"], float(c["wh_per_1k_input"]), float(c["wh_per_1k_output"]), c.get("uncertainty"))
        for m, v in models.items()
        for c in v.get("coefficients", [])
    ]
    coef_schema = {
        "model": pl.String,
        "coef_hw": pl.String,
        "wh_in": pl.Float64,
        "wh_out": pl.Float64,
        "coef_u": pl.Float64,
    }
    coefs = pl.DataFrame(coef_rows, schema=coef_schema, orient="row")
    sites = cfg.get("sites", {})
    site_keys = {
        "s_zone": ("zone", pl.String),
        "s_pue": ("pue", pl.Float64),
        "s_host": ("host_overhead", pl.Float64),
        "s_idle": ("idle_overhead", pl.Float64),
        "s_util": ("utilization", pl.Float64),
        "s_conc": ("concurrency", pl.Float64),
        "s_mfu": ("mfu", pl.Float64),
        "market": ("market_g_per_kwh", pl.Float64),
        "fallback": ("fallback_g_per_kwh", pl.Float64),
        "s_hw": ("hardware", pl.String),
        "s_gpus": ("gpus", pl.Int64),
    }
    site_df = pl.DataFrame(
        {
            "site": list(sites),
            **{k: [v.get(src) for v in sites.values()] for k, (src, _) in site_keys.items()},
        },
        schema={"site": pl.String, **{k: t for k, (_, t) in site_keys.items()}},
    )
    return {
        "defaults": defaults,
        "uncertainty": unc,
        "hardware": hardware,
        "models": model_df,
        "coef_exact": coefs.filter(pl.col("coef_hw") != "*"),
        "coef_star": coefs.filter(pl.col("coef_hw") == "*")
        .drop("coef_hw")
        .rename({"wh_in": "star_in", "wh_out": "star_out", "coef_u": "star_u"}),
        "sites": site_df,
    }


def _grid_frames(grid: str | Path, lifecycle: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(zone, hour_us) -> g and (zone, month) -> mean g, as spec 5 describes, read with Polars."""
    raw = pl.read_csv(grid, infer_schema=False)
    norm = {" ".join(c.replace("₂", "2").lower().split()): c for c in raw.columns}
    if "g_per_kwh" in norm:
        zone, dt, val = norm["zone"], norm["datetime"], norm["g_per_kwh"]
    else:
        zone, dt = norm["zone id"], norm["datetime (utc)"]
        if lifecycle:
            val = (
                norm.get("carbon intensity gco2eq/kwh (life cycle)")
                or norm["carbon intensity gco2eq/kwh (lca)"]
            )
        else:
            val = norm["carbon intensity gco2eq/kwh (direct)"]
    g = raw.lazy().select(
        pl.col(zone).str.strip_chars().alias("eff_zone"),
        _epoch_us_from_text(dt).alias("ts_us"),
        pl.col(val).str.strip_chars().cast(pl.Float64, strict=False).alias("g"),
    )
    hourly = (
        g.drop_nulls()
        .group_by("eff_zone", (pl.col("ts_us") // US_PER_HOUR * US_PER_HOUR).alias("hour_us"))
        .agg(pl.col("g").mean().alias("g_hour"))
        .collect()
    )
    monthly = (
        hourly.with_columns(_month_key("hour_us").alias("month"))
        .group_by("eff_zone", "month")
        .agg(pl.col("g_hour").mean().alias("g_month"))
    )
    return hourly, monthly


def _month_key(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("us", "UTC")).dt.truncate("1mo").dt.epoch("us")


# ---------------------------------------------------------------------------------------------
# Polars: the methodology
# ---------------------------------------------------------------------------------------------


def _nsum(e: pl.Expr) -> pl.Expr:
    """Sum that is null when every value is null (Polars' sum() would give 0: a silent zero)."""
    return pl.when(e.count() > 0).then(e.sum()).otherwise(None)


def polars_report(
    log: str | Path, config: str | Path, grid: str | Path, *, year: int, month: int | None = None
) -> pl.DataFrame:
    """Section 9 per model from one log file, as one Polars lazy query (streaming engine)."""
    c = _config_frames(config)
    d: dict[str, float] = c["defaults"]  # type: ignore[assignment]
    u: dict[str, float] = c["uncertainty"]  # type: ignore[assignment]
    hourly, monthly = _grid_frames(grid)
    start, end = oracle_sql.period_bounds(year, month)
    start_us = int(pl.Series([start]).str.to_datetime(time_unit="us").dt.epoch("us")[0])
    end_us = int(pl.Series([end]).str.to_datetime(time_unit="us").dt.epoch("us")[0])

    recs = scan_logs(log)
    # Spec 1 rejects: never half-used; they simply do not reach the report.
    ok = pl.col("ts_us").is_not_null() & pl.col("model").is_not_null()
    for col in ("gpus", "input_tokens", "output_tokens"):
        ok &= pl.col(col).is_null() | (pl.col(col) >= 0)
    for col in ("duration_s", "energy_j", "weight"):
        ok &= pl.col(col).is_null() | (pl.col(col).is_finite() & (pl.col(col) >= 0))
    hour_us = pl.col("ts_us") // US_PER_HOUR * US_PER_HOUR

    lf = (
        recs.filter(ok)
        .with_columns(hour_us.alias("hour_us"))
        .filter((pl.col("hour_us") >= start_us) & (pl.col("hour_us") < end_us))
        .join(c["sites"].lazy(), on="site", how="left")  # type: ignore[union-attr]
        .with_columns(
            pl.coalesce("zone", "s_zone").alias("eff_zone"),
            pl.coalesce("hardware", "s_hw").alias("eff_hardware"),
            pl.coalesce("gpus", "s_gpus", pl.lit(1)).cast(pl.Float64).alias("eff_gpus"),
            pl.col("weight").fill_null(1.0).alias("w"),
            pl.col("s_pue").fill_null(d["pue"]).alias("pue"),
            (
                1
                + pl.col("s_host").fill_null(d["host_overhead"])
                + pl.col("s_idle").fill_null(d["idle_overhead"])
            ).alias("it_factor"),
            pl.col("s_util").fill_null(d["utilization"]).alias("util"),
            pl.col("s_conc").fill_null(d["concurrency"]).alias("conc"),
            pl.col("s_mfu").fill_null(d["mfu"]).alias("mfu"),
        )
        .join(c["hardware"].lazy(), on="eff_hardware", how="left")  # type: ignore[union-attr]
        .join(c["models"].lazy(), on="model", how="left")  # type: ignore[union-attr]
        .join(
            c["coef_exact"].lazy(),  # type: ignore[union-attr]
            left_on=["model", "eff_hardware"],
            right_on=["model", "coef_hw"],
            how="left",
        )
        .join(c["coef_star"].lazy(), on="model", how="left")  # type: ignore[union-attr]
    )
    has_exact = pl.col("wh_in").is_not_null()
    has_coef = has_exact | pl.col("star_in").is_not_null()
    has_tokens = pl.col("input_tokens").is_not_null() | pl.col("output_tokens").is_not_null()
    tin = pl.col("input_tokens").fill_null(0).cast(pl.Float64)
    tout = pl.col("output_tokens").fill_null(0).cast(pl.Float64)
    hw_known = pl.col("tdp_w").is_not_null()
    # Section 10 outcomes with the built-in lists (the peer reads no [outcomes] or [aliases]:
    # the synthetic pack it is compared on has none). Failed wins over cached.
    status = pl.col("status").cast(pl.String).str.strip_chars().str.to_lowercase()
    code = status.cast(pl.Int64, strict=False)
    numeric = status.str.contains(r"^[0-9]{1,3}$")
    failed = (numeric & ((code == 2) | code.is_between(400, 599))) | status.is_in(oracle_sql.FAILED_STATUSES)
    cached = ~failed.fill_null(False) & pl.col("cache_hit").cast(pl.String).str.to_lowercase().is_in(
        oracle_sql.CACHE_TRUE
    ).fill_null(False)
    method = (
        pl.when(cached)
        .then(pl.lit("cached"))
        .when(pl.col("energy_j").is_not_null())
        .then(pl.lit("measured"))
        .when(has_coef & has_tokens)
        .then(pl.lit("tokens"))
        .when(pl.col("duration_s").is_not_null() & hw_known)
        .then(pl.lit("gpu_time"))
        .when(
            has_tokens
            & pl.col("active_params_b").is_not_null()
            & pl.col("peak_tflops").is_not_null()
            & hw_known
        )
        .then(pl.lit("flops"))
        .otherwise(pl.lit("none"))
    )
    flops_1 = pl.when(pl.col("active_params_b").is_not_null() & has_tokens & ~cached).then(
        2 * pl.col("active_params_b") * 1e9 * (tin + tout)
    )
    wi = pl.when(has_exact).then(pl.col("wh_in")).otherwise(pl.col("star_in"))
    wo = pl.when(has_exact).then(pl.col("wh_out")).otherwise(pl.col("star_out"))
    cu = pl.when(has_exact).then(pl.col("coef_u")).otherwise(pl.col("star_u"))
    m = pl.col("method")
    e_acc = (
        pl.when(m == "cached")
        .then(0.0)
        .when(m == "measured")
        .then(pl.col("energy_j") / 3600)
        .when(m == "tokens")
        .then((tin * wi + tout * wo) / 1000)
        .when(m == "gpu_time")
        .then(
            pl.col("duration_s")
            * pl.col("eff_gpus")
            * (pl.col("idle_w") + pl.col("util") * (pl.col("tdp_w") - pl.col("idle_w")))
            / pl.col("conc")
            / 3600
        )
        .when(m == "flops")
        .then(pl.col("flops_1") / (pl.col("peak_tflops") * 1e12 * pl.col("mfu")) * pl.col("tdp_w") / 3600)
    )
    unc = (
        pl.when(m == "cached")
        .then(0.0)
        .when(m == "measured")
        .then(pl.lit(u["measured"]))
        .when(m == "tokens")
        .then(cu.fill_null(u["tokens"]))
        .when(m == "gpu_time")
        .then(pl.lit(u["gpu_time"]))
        .when(m == "flops")
        .then(pl.lit(u["flops"]))
    )
    lf = (
        lf.with_columns(
            method.alias("method"), flops_1.alias("flops_1"), failed.fill_null(False).alias("failed")
        )
        .with_columns(e_acc.alias("e_acc"), unc.alias("u"))
        .with_columns((pl.col("e_acc") * pl.col("it_factor") * pl.col("pue") / 1000).alias("kwh1"))
        .with_columns(_month_key("hour_us").alias("month"))
        .join(hourly.lazy(), on=["eff_zone", "hour_us"], how="left")
        .join(monthly.lazy(), on=["eff_zone", "month"], how="left")
        .with_columns(pl.coalesce("g_hour", "g_month", "fallback").alias("i_loc"))
    )
    w = pl.col("w")
    kwh = w * pl.col("kwh1")
    # Anything but an hour-matched grid value is a fallback (month mean or site fallback).
    from_fallback = pl.col("g_hour").is_null() & pl.col("i_loc").is_not_null()
    is_cached = pl.col("method") == "cached"
    report = lf.group_by("model").agg(
        w.sum().alias("requests"),
        pl.len().cast(pl.Int64).alias("records"),
        (w * tin).sum().alias("input_tokens"),
        (w * tout).sum().alias("output_tokens"),
        _nsum(kwh).alias("energy_kwh"),
        _nsum(w * (pl.col("kwh1") * (1 - pl.col("u"))).clip(lower_bound=0)).alias("energy_kwh_low"),
        _nsum(w * pl.col("kwh1") * (1 + pl.col("u"))).alias("energy_kwh_high"),
        pl.when(kwh.count() > 0)
        .then(kwh.filter(pl.col("method") == "measured").sum())
        .otherwise(None)
        .alias("measured_kwh"),
        # A cached request emits a known zero whatever its zone's intensity.
        _nsum(pl.when(is_cached).then(0.0).otherwise(kwh * pl.col("i_loc") / 1000)).alias("co2e_location_kg"),
        _nsum(
            pl.when(is_cached)
            .then(0.0)
            .otherwise(
                kwh * pl.when(pl.col("i_loc").is_not_null()).then(pl.coalesce("market", "i_loc")) / 1000
            )
        ).alias("co2e_market_kg"),
        _nsum(w * pl.col("flops_1")).alias("flops"),
        _nsum(pl.when(~is_cached).then(w * pl.col("duration_s") * pl.col("eff_gpus") / 3600)).alias(
            "gpu_hours"
        ),
        pl.when(pl.col("method") == "none").then(w).otherwise(0.0).sum().alias("unestimated_requests"),
        _nsum(pl.when(from_fallback & ~is_cached).then(kwh).otherwise(kwh * 0.0)).alias("fallback_kwh"),
        _nsum(pl.when(pl.col("i_loc").is_null() & ~is_cached).then(kwh).otherwise(kwh * 0.0)).alias(
            "unresolved_kwh"
        ),
        pl.when(pl.col("failed")).then(w).otherwise(0.0).sum().alias("failed_requests"),
        pl.when(is_cached).then(w).otherwise(0.0).sum().alias("cached_requests"),
    )
    return report.sort("model").select(REPORT_COLUMNS).collect(engine="streaming")


# ---------------------------------------------------------------------------------------------
# CLI: one peer, one file, timed inside (the caller also measures the whole process).
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peer", choices=["duckdb", "polars"])
    ap.add_argument("log")
    ap.add_argument("config")
    ap.add_argument("grid")
    ap.add_argument("--year", type=int, required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", help="write the report here (Parquet) for the agreement check")
    a = ap.parse_args(argv)
    t = time.perf_counter()
    if a.peer == "duckdb":
        df = duckdb_report(a.log, a.config, a.grid, year=a.year, threads=a.threads)
    else:
        # POLARS_MAX_THREADS must be set before polars is imported: run.py sets it in the env.
        df = polars_report(a.log, a.config, a.grid, year=a.year)
    elapsed = time.perf_counter() - t
    if a.out:
        df.write_parquet(a.out)
    print(f"{a.peer} {elapsed:.3f}s {df.height} models", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
