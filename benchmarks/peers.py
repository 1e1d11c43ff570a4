"""The per-model report (methodology section 9) computed by the two peers wattledger is measured
against: DuckDB and Polars, each one query written here for speed, independently of the engine
and of the SQL oracle in tests/oracle_sql.py (tests/test_peers_agree.py checks both against it).

Why two peers: DuckDB and Polars are what a data engineer would reach for instead of a custom
engine. If wattledger is not clearly faster or leaner than both on the same files, it has no
reason to exist; if the three disagree, at least one is wrong. The oracle itself is not a
peer: it forms hourly cells and checks every record the way the spec words it, which makes it
several times slower than a DuckDB user's query (19 s and 6 GB against about 3.3 s on 10M
records over a year), and a slow peer would flatter the engine.

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
    """Section 9 per model straight from one log file, as one DuckDB query, ``PRAGMA threads``
    set.

    Written for speed the way a DuckDB user would write it, not with the oracle's checks: the
    records are read with the types the file declares (Parquet) or the reader is given
    (JSON/CSV), joined with the small pack tables and a grid table filled to every hour of the
    months it covers (hour value, else that month's mean), and summed per model, without
    forming hourly cells. The pack and grid tables come from the oracle's loaders (small, not
    timed apart); the query itself is independent of the oracle's. tests/test_peers_agree.py
    checks that it agrees with the oracle.
    """
    con = oracle_sql.connect(threads)
    oracle_sql._load_config(con, config)
    con.execute("CREATE OR REPLACE VIEW grid_raw AS " + oracle_sql._grid_select(con, str(grid), False))
    con.execute(oracle_sql.GRID_SQL)
    con.execute(_DUCKDB_GRID_FILLED)
    start, end = oracle_sql.period_bounds(year)
    sql = (
        _DUCKDB_REPORT.replace("$scan", _duckdb_scan(con, str(log)))
        .replace("$start", f"epoch_us(TIMESTAMPTZ '{start}')")
        .replace("$end", f"epoch_us(TIMESTAMPTZ '{end}')")
        .replace("$cache_true", _sql_list(oracle_sql.CACHE_TRUE))
        .replace("$failed", _sql_list(oracle_sql.FAILED_STATUSES))
    )
    return con.sql(sql).pl()


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


_DUCKDB_TYPES = {
    "ts": "VARCHAR",
    "model": "VARCHAR",
    "site": "VARCHAR",
    "zone": "VARCHAR",
    "hardware": "VARCHAR",
    "gpus": "BIGINT",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "duration_s": "DOUBLE",
    "energy_j": "DOUBLE",
    "weight": "DOUBLE",
    "status": "VARCHAR",
    "cache_hit": "VARCHAR",
}


def _duckdb_scan(con: object, log: str) -> str:
    """SELECT ts_us and the canonical columns (missing ones null) from one log file."""
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    q = "'" + log.replace("'", "''") + "'"
    low = log.lower()
    if low.endswith(".parquet"):
        scan = f"read_parquet({q})"
    elif ".csv" in low:
        header = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_csv({q}, header=true)").fetchall()}
        typed = {k: v for k, v in _DUCKDB_TYPES.items() if k in header}
        types = "{" + ", ".join(f"'{k}': '{v}'" for k, v in typed.items()) + "}"
        scan = f"read_csv({q}, header=true, types={types})"
    else:
        cols = "{" + ", ".join(f"{k}: '{v}'" for k, v in _DUCKDB_TYPES.items()) + "}"
        scan = f"read_json({q}, format='newline_delimited', columns={cols})"
    present = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    ts_type = present.get("ts", "VARCHAR")
    if ts_type.startswith("TIMESTAMP"):
        ts = "epoch_us(ts)"
    else:
        ts = "epoch_us(TRY_CAST(replace(ts::VARCHAR, 'Z', '+00:00') AS TIMESTAMPTZ))"
    cols = [f"{ts} AS ts_us"]
    for name, typ in _DUCKDB_TYPES.items():
        if name == "ts":
            continue
        if name not in present:
            cols.append(f"NULL::{typ} AS {name}")
        elif typ == "VARCHAR":
            cols.append(f"NULLIF({name}::VARCHAR, '') AS {name}")
        else:
            cols.append(f"{name}::{typ} AS {name}")
    return f"(SELECT {', '.join(cols)} FROM {scan})"


# Every hour of every (zone, month) the grid has a value in: the hour's own value, else the
# month's mean (section 5), so a record needs one equality join.
_DUCKDB_GRID_FILLED = """
CREATE OR REPLACE TABLE grid_filled AS
WITH months AS (
    SELECT zone, epoch_us(month) AS m0, epoch_us(month + INTERVAL 1 MONTH) AS m1, g_per_kwh AS g_month
    FROM grid_monthly
)
SELECT m.zone, h.hour_us, coalesce(g.g_per_kwh, m.g_month) AS g, g.g_per_kwh IS NOT NULL AS own_hour
FROM months m,
     LATERAL (SELECT unnest(range(m.m0, m.m1, 3600000000)) AS hour_us) h
LEFT JOIN grid_hourly g ON g.zone = m.zone AND g.hour_us = h.hour_us
"""

_DUCKDB_REPORT = """
WITH rec AS (
    SELECT * FROM $scan
    WHERE ts_us IS NOT NULL AND model IS NOT NULL
      AND coalesce(gpus, 0) >= 0 AND coalesce(input_tokens, 0) >= 0 AND coalesce(output_tokens, 0) >= 0
      AND coalesce(duration_s, 0) >= 0 AND coalesce(energy_j, 0) >= 0 AND coalesce(weight, 0) >= 0
),
x AS (
    SELECT r.model,
           coalesce(r.weight, 1.0) AS w,
           r.ts_us // 3600000000 * 3600000000 AS hour_us,
           coalesce(r.zone, s.zone) AS eff_zone,
           coalesce(r.hardware, s.hardware) AS eff_hw,
           coalesce(r.gpus, s.gpus, 1)::DOUBLE AS eff_gpus,
           coalesce(s.pue, d.pue) AS pue,
           1 + coalesce(s.host_overhead, d.host_overhead) + coalesce(s.idle_overhead, d.idle_overhead)
               AS it_factor,
           coalesce(s.utilization, d.utilization) AS util,
           coalesce(s.concurrency, d.concurrency) AS conc,
           coalesce(s.mfu, d.mfu) AS mfu,
           s.market_g_per_kwh AS market, s.fallback_g_per_kwh AS fallback,
           d.u_measured, d.u_tokens, d.u_gpu_time, d.u_flops,
           r.input_tokens IS NOT NULL OR r.output_tokens IS NOT NULL AS has_tokens,
           coalesce(r.input_tokens, 0)::DOUBLE AS tin, coalesce(r.output_tokens, 0)::DOUBLE AS tout,
           r.duration_s, r.energy_j,
           lower(trim(r.status)) AS st, lower(trim(r.cache_hit)) AS ch
    FROM rec r LEFT JOIN cfg_sites s ON s.site = r.site CROSS JOIN cfg_defaults d
    WHERE r.ts_us >= $start AND r.ts_us < $end
),
y AS (
    SELECT x.*, h.tdp_w, coalesce(h.idle_w, 0.0) AS idle_w, h.peak_tflops, mo.active_params_b,
           coalesce(ce.wh_per_1k_input, cs.wh_per_1k_input) AS wh_in,
           coalesce(ce.wh_per_1k_output, cs.wh_per_1k_output) AS wh_out,
           CASE WHEN ce.model IS NOT NULL THEN ce.uncertainty ELSE cs.uncertainty END AS coef_u,
           ce.model IS NOT NULL OR cs.model IS NOT NULL AS has_coef,
           -- (the common values first: DuckDB evaluates a CASE branch only for its rows)
           CASE WHEN st IS NULL OR st IN ('ok', 'success') THEN false
                WHEN st IN ($failed) THEN true
                WHEN regexp_full_match(st, '[0-9]{1,3}')
                    THEN st::INTEGER = 2 OR st::INTEGER BETWEEN 400 AND 599
                ELSE false END AS failed,
           gf.g AS g, gf.own_hour
    FROM x
    LEFT JOIN cfg_hardware h ON h.hardware = x.eff_hw
    LEFT JOIN cfg_models mo ON mo.model = x.model
    LEFT JOIN cfg_coefficients ce ON ce.model = x.model AND ce.hardware = x.eff_hw
    LEFT JOIN cfg_coefficients cs ON cs.model = x.model AND cs.hardware = '*'
    LEFT JOIN grid_filled gf ON gf.zone = x.eff_zone AND gf.hour_us = x.hour_us
),
z AS (
    SELECT *,
        -- method as a small integer: 0 cached, 1 measured, 2 tokens, 3 gpu_time, 4 flops, 5 none
        CASE WHEN ch IS NOT NULL AND NOT failed AND ch IN ($cache_true) THEN 0
             WHEN energy_j IS NOT NULL THEN 1
             WHEN has_coef AND has_tokens THEN 2
             WHEN duration_s IS NOT NULL AND tdp_w IS NOT NULL THEN 3
             WHEN has_tokens AND active_params_b IS NOT NULL AND peak_tflops IS NOT NULL AND tdp_w IS NOT NULL
                 THEN 4
             ELSE 5 END AS method,
        coalesce(g, fallback) AS i_loc
    FROM y
),
e AS (
    SELECT *,
        CASE method
            WHEN 0 THEN 0.0
            WHEN 1 THEN energy_j / 3600
            WHEN 2 THEN (tin * wh_in + tout * wh_out) / 1000
            WHEN 3 THEN duration_s * eff_gpus * (idle_w + util * (tdp_w - idle_w)) / conc / 3600
            WHEN 4 THEN 2 * active_params_b * 1e9 * (tin + tout) / (peak_tflops * 1e12 * mfu) * tdp_w / 3600
        END * it_factor * pue / 1000 AS kwh1,
        CASE method
            WHEN 0 THEN 0.0 WHEN 1 THEN u_measured WHEN 2 THEN coalesce(coef_u, u_tokens)
            WHEN 3 THEN u_gpu_time WHEN 4 THEN u_flops END AS u,
        CASE WHEN active_params_b IS NOT NULL AND has_tokens AND method <> 0
             THEN 2 * active_params_b * 1e9 * (tin + tout) END AS flops1
    FROM z
)
SELECT model,
       sum(w) AS requests,
       count(*)::BIGINT AS records,
       sum(w * tin) AS input_tokens,
       sum(w * tout) AS output_tokens,
       sum(w * kwh1) AS energy_kwh,
       sum(CASE WHEN kwh1 IS NOT NULL THEN w * greatest(kwh1 * (1 - u), 0) END) AS energy_kwh_low,
       sum(w * kwh1 * (1 + u)) AS energy_kwh_high,
       CASE WHEN count(kwh1) > 0 THEN coalesce(sum(w * kwh1) FILTER (WHERE method = 1), 0.0) END
           AS measured_kwh,
       sum(CASE WHEN method = 0 THEN 0.0 ELSE w * kwh1 * i_loc / 1000 END) AS co2e_location_kg,
       sum(CASE WHEN method = 0 THEN 0.0 WHEN i_loc IS NOT NULL
                THEN w * kwh1 * coalesce(market, i_loc) / 1000 END) AS co2e_market_kg,
       sum(w * flops1) AS flops,
       sum(CASE WHEN method <> 0 THEN w * duration_s * eff_gpus / 3600 END) AS gpu_hours,
       sum(CASE WHEN method = 5 THEN w ELSE 0.0 END) AS unestimated_requests,
       sum(CASE WHEN kwh1 IS NOT NULL THEN
               CASE WHEN method <> 0 AND i_loc IS NOT NULL AND NOT coalesce(own_hour, false)
                    THEN w * kwh1 ELSE 0.0 END END) AS fallback_kwh,
       sum(CASE WHEN kwh1 IS NOT NULL THEN
               CASE WHEN method <> 0 AND i_loc IS NULL THEN w * kwh1 ELSE 0.0 END END) AS unresolved_kwh,
       sum(CASE WHEN failed THEN w ELSE 0.0 END) AS failed_requests,
       sum(CASE WHEN method = 0 THEN w ELSE 0.0 END) AS cached_requests
FROM e
GROUP BY model
ORDER BY model
"""


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
