"""Independent oracle: the methodology (docs/methodology.md) written once more in DuckDB SQL.

Why it exists: the Rust kernel is the one production definition of every formula. To test it
we need a second implementation that shares no code with it, written from the spec alone and
readable enough to be checked by eye. This module never imports ``wattledger``.

Layers:

* readers (Python builds one small ``SELECT`` per input file): every canonical column is kept
  raw (text for JSONL/CSV, native types for Parquet) so the methodology SQL can both validate
  and convert; missing columns become ``NULL``.
* ``GRID_SQL``: the grid table of section 5 (sub-hourly rows averaged into the hour; month
  means).
* ``METHODOLOGY_SQL``: sections 1, 3-8 as one query, one CTE per step, from raw rows to the
  hourly aggregate cells of section 8.
* ``REPORT_BY_MODEL_SQL``: section 9 over the hourly cells.

Typical use from a test that compares against the engine::

    from oracle_sql import oracle_hourly, oracle_report_by_model
    want = oracle_report_by_model([log], cfg, [grid], year=2025)
    got = wattledger.report(...)            # same columns, sorted by model
    assert_frames_close(got, want, rel=1e-9)  # nulls must match as nulls
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

PathLike = str | Path

CANONICAL = (
    "ts",
    "request_id",
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
    "status",
    "cache_hit",
)

HOURLY_KEYS = ("hour", "model", "site", "zone", "hardware", "method")
HOURLY_MEASURES = (
    "records",
    "requests",
    "input_tokens",
    "output_tokens",
    "energy_acc_kwh",
    "energy_it_kwh",
    "energy_kwh",
    "energy_kwh_low",
    "energy_kwh_high",
    "co2e_location_kg",
    "co2e_market_kg",
    "flops",
    "gpu_hours",
    "fallback_kwh",
    "unresolved_kwh",
    "unestimated_requests",
    "failed_requests",
    "cached_requests",
)
REPORT_COLUMNS = (
    "model",
    "requests",
    "records",
    "input_tokens",
    "output_tokens",
    "energy_kwh",
    "energy_kwh_low",
    "energy_kwh_high",
    "measured_kwh",
    "co2e_location_kg",
    "co2e_market_kg",
    "flops",
    "gpu_hours",
    "unestimated_requests",
    "fallback_kwh",
    "unresolved_kwh",
    "failed_requests",
    "cached_requests",
)

# Section 10 (docs/outcomes.md): status values read as failed / ok when the pack does not list
# them. Numbers: 0/1 OTel UNSET/OK, 2 OTel ERROR, 100-399 HTTP ok, 400-599 HTTP failed.
FAILED_STATUSES = (
    "error",
    "failure",
    "failed",
    "fail",
    "status_code_error",
    "timeout",
    "timed_out",
    "cancelled",
    "canceled",
    "aborted",
)
OK_STATUSES = ("success", "ok", "succeeded", "completed", "status_code_ok", "status_code_unset", "unset")
CACHE_TRUE = ("true", "1", "yes", "t", "y")
CACHE_FALSE = ("false", "0", "no", "f", "n")

# Values of spec section 2's example, used where the pack is silent. The spec shows them as
# the defaults; an engine that refuses a pack without them would simply never meet this path.
SPEC_DEFAULTS = {
    "pue": 1.2,
    "host_overhead": 0.0,
    "idle_overhead": 0.0,
    "utilization": 0.5,
    "concurrency": 1.0,
    "mfu": 0.1,
}
SPEC_UNCERTAINTY = {"measured": 0.05, "tokens": 0.3, "gpu_time": 0.5, "flops": 1.0}


# --------------------------------------------------------------------------------------------
# Section 1: readers. One SELECT per file, all producing the same raw columns.
# --------------------------------------------------------------------------------------------


def _q(s: str) -> str:
    """SQL string literal (paths may contain quotes)."""
    return "'" + s.replace("'", "''") + "'"


def _log_format(path: str) -> str:
    p = path.lower()
    for suffix in (".gz", ".zst", ".zstd"):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
    for fmt, exts in (
        ("jsonl", (".jsonl", ".ndjson", ".json")),
        ("csv", (".csv",)),
        ("parquet", (".parquet",)),
    ):
        if p.endswith(exts):
            return fmt
    raise ValueError(f"oracle: unknown log format for {path}")


def _file_select(con: duckdb.DuckDBPyConnection, path: str) -> str:
    """A SELECT yielding ``source, row_no, ts_native_us`` and the raw canonical columns.

    Text formats keep every value as VARCHAR so that METHODOLOGY_SQL can tell a bad value
    ("abc" for a number) from a missing one. Parquet keeps native types (cheap casts later);
    a native timestamp column is turned into epoch microseconds here because it carries its
    own unit (naive = UTC, spec section 1).
    """
    fmt = _log_format(path)
    if fmt == "jsonl":
        cols = "{" + ", ".join(f"{c}: 'VARCHAR'" for c in CANONICAL) + "}"
        scan = (
            f"read_json({_q(path)}, format='newline_delimited', columns={cols}, "
            "ignore_errors=true, maximum_object_size=16777216)"
        )
        present = set(CANONICAL)
    elif fmt == "csv":
        scan = f"read_csv({_q(path)}, header=true, all_varchar=true, ignore_errors=true)"
        present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    else:
        scan = f"read_parquet({_q(path)})"
        present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    types = {}
    if fmt == "parquet":
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    parts = [f"{_q(path)} AS source", "row_number() OVER () AS row_no"]
    ts_type = types.get("ts", "VARCHAR")
    if "ts" in present and ts_type.startswith("TIMESTAMP"):
        parts += ["epoch_us(ts) AS ts_native_us", "NULL::VARCHAR AS ts"]
    else:
        parts += [
            "NULL::BIGINT AS ts_native_us",
            "ts::VARCHAR AS ts" if "ts" in present else "NULL::VARCHAR AS ts",
        ]
    for c in CANONICAL:
        if c == "ts":
            continue
        if c not in present:
            parts.append(f"NULL::VARCHAR AS {c}")
        elif types.get(c, "VARCHAR") == "VARCHAR":
            parts.append(f"NULLIF({c}, '') AS {c}")  # spec 1: an empty field is null
        else:
            parts.append(c)  # native Parquet number: no text round trip
    return f"SELECT {', '.join(parts)} FROM {scan}"


# --------------------------------------------------------------------------------------------
# Section 2: the methodology pack, parsed with tomllib into small tables.
# --------------------------------------------------------------------------------------------


def _like(glob: str) -> str:
    """A ``*``/``?`` glob as a LIKE pattern (escape ``\\``): ``%`` and ``_`` are literal in a glob."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _load_config(con: duckdb.DuckDBPyConnection, config: PathLike) -> None:
    """Create cfg_defaults, cfg_uncertainty, cfg_hardware, cfg_models, cfg_coefficients,
    cfg_sites. Done in Python (tomllib) because DuckDB cannot read TOML; the tables are then
    joined in SQL exactly as the spec describes."""
    with open(config, "rb") as fh:
        cfg = tomllib.load(fh)
    d = {**SPEC_DEFAULTS, **{k: v for k, v in cfg.get("defaults", {}).items() if k != "site"}}
    u = {**SPEC_UNCERTAINTY, **cfg.get("uncertainty", {})}
    con.execute(
        "CREATE OR REPLACE TABLE cfg_defaults AS SELECT ?::DOUBLE pue, ?::DOUBLE host_overhead, "
        "?::DOUBLE idle_overhead, ?::DOUBLE utilization, ?::DOUBLE concurrency, ?::DOUBLE mfu, "
        "?::DOUBLE u_measured, ?::DOUBLE u_tokens, ?::DOUBLE u_gpu_time, ?::DOUBLE u_flops",
        [d[k] for k in SPEC_DEFAULTS] + [u[k] for k in SPEC_UNCERTAINTY],
    )

    def table(name: str, ddl: str, rows: list[tuple]) -> None:
        con.execute(f"CREATE OR REPLACE TABLE {name} ({ddl})")
        if rows:
            con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(rows[0]))})", rows)

    table(
        "cfg_hardware",
        "hardware VARCHAR PRIMARY KEY, tdp_w DOUBLE, idle_w DOUBLE, peak_tflops DOUBLE, utilization DOUBLE",
        [
            (k, v.get("tdp_w"), v.get("idle_w"), v.get("peak_tflops"), v.get("utilization"))
            for k, v in cfg.get("hardware", {}).items()
        ],
    )
    models = cfg.get("models", {})
    table(
        "cfg_models",
        "model VARCHAR PRIMARY KEY, active_params_b DOUBLE",
        [(k, v.get("active_params_b")) for k, v in models.items()],
    )
    table(
        "cfg_coefficients",
        "model VARCHAR, hardware VARCHAR, wh_per_1k_input DOUBLE, wh_per_1k_output DOUBLE, "
        "uncertainty DOUBLE, PRIMARY KEY (model, hardware)",
        [
            (m, c["hardware"], c["wh_per_1k_input"], c["wh_per_1k_output"], c.get("uncertainty"))
            for m, v in models.items()
            for c in v.get("coefficients", [])
        ],
    )
    outcomes = cfg.get("outcomes", {})
    table(
        "cfg_outcomes",
        "status VARCHAR PRIMARY KEY, outcome VARCHAR",
        [(v.strip().lower(), o) for o in ("ok", "failed", "cached") for v in outcomes.get(o, [])],
    )
    # §10 aliases: `ord` is the pack's order (ties between globs of equal length: first listed).
    aliases = cfg.get("aliases", {})
    table(
        "cfg_aliases",
        "kind VARCHAR, pattern VARCHAR, target VARCHAR, is_glob BOOLEAN, like_pattern VARCHAR, ord INTEGER",
        [
            (
                kind,
                k,
                v,
                "*" in k or "?" in k,
                _like(k),
                i,
            )
            for kind in ("models", "hardware", "sites")
            for i, (k, v) in enumerate(aliases.get(kind, {}).items())
        ],
    )
    con.execute(
        "CREATE OR REPLACE TABLE cfg_default_site AS SELECT ?::VARCHAR AS site",
        [cfg.get("defaults", {}).get("site")],
    )
    site_keys = (
        "zone pue host_overhead idle_overhead utilization concurrency mfu market_g_per_kwh "
        "fallback_g_per_kwh hardware gpus"
    ).split()
    table(
        "cfg_sites",
        "site VARCHAR PRIMARY KEY, zone VARCHAR, pue DOUBLE, host_overhead DOUBLE, idle_overhead DOUBLE, "
        "utilization DOUBLE, concurrency DOUBLE, mfu DOUBLE, market_g_per_kwh DOUBLE, "
        "fallback_g_per_kwh DOUBLE, hardware VARCHAR, gpus BIGINT",
        [(k, *(v.get(x) for x in site_keys)) for k, v in cfg.get("sites", {}).items()],
    )


# --------------------------------------------------------------------------------------------
# Section 5: the grid table.
# --------------------------------------------------------------------------------------------


def _norm_header(h: str) -> str:
    """Spec 5: headers match case-insensitively and '₂' equals '2'."""
    return " ".join(h.replace("₂", "2").lower().split())


def _grid_select(con: duckdb.DuckDBPyConnection, path: str, lifecycle: bool) -> str:
    scan = f"read_csv({_q(path)}, header=true, all_varchar=true)"
    names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
    by_norm = {_norm_header(n): n for n in names}

    def pick(*candidates: str) -> str:
        for c in candidates:
            if c in by_norm:
                return '"' + by_norm[c].replace('"', '""') + '"'
        raise ValueError(f"oracle: grid file {path} has none of the columns {candidates} (has {names})")

    if "g_per_kwh" in by_norm:  # plain form zone,datetime,g_per_kwh
        zone, dt, val = pick("zone"), pick("datetime"), pick("g_per_kwh")
    else:  # Electricity Maps export, current or older header
        zone, dt = pick("zone id"), pick("datetime (utc)")
        val = (
            pick("carbon intensity gco2eq/kwh (life cycle)", "carbon intensity gco2eq/kwh (lca)")
            if lifecycle
            else pick("carbon intensity gco2eq/kwh (direct)")
        )
    return f"SELECT trim({zone}) AS zone, trim({dt}) AS dt, trim({val}) AS val FROM {scan}"


GRID_SQL = """
-- Spec 5: "(zone, hour start UTC) -> gCO2e/kWh"; "Sub-hourly rows are averaged into their hour."
CREATE OR REPLACE TABLE grid_hourly AS
SELECT zone,
       (epoch_us(TRY_CAST(dt AS TIMESTAMPTZ)) // 3600000000) * 3600000000 AS hour_us,
       avg(TRY_CAST(val AS DOUBLE)) AS g_per_kwh
FROM grid_raw
WHERE zone IS NOT NULL AND zone <> '' AND TRY_CAST(val AS DOUBLE) IS NOT NULL
      AND TRY_CAST(dt AS TIMESTAMPTZ) IS NOT NULL
GROUP BY ALL;

-- Spec 5: "else the mean of that zone's values in the same calendar month (UTC)".
-- Interpretation: the mean of the hourly values (after sub-hourly averaging).
CREATE OR REPLACE TABLE grid_monthly AS
SELECT zone, date_trunc('month', make_timestamp(hour_us)) AS month, avg(g_per_kwh) AS g_per_kwh
FROM grid_hourly
GROUP BY ALL;
"""


# --------------------------------------------------------------------------------------------
# Sections 1, 3-8: from raw rows to hourly aggregate cells.
# --------------------------------------------------------------------------------------------

METHODOLOGY_SQL = r"""
WITH
-- §1 Inference record: numbers converted; the raw value kept to tell 'bad' from 'missing'.
-- (Empty text was already turned into null by the per-file readers.)
typed AS (
    SELECT source, row_no,
           NULLIF(trim(ts), '') AS ts_txt, ts_native_us,
           model, site, zone, hardware,
           gpus AS gpus_raw,          TRY_CAST(gpus AS DOUBLE) AS gpus_d,
           input_tokens AS in_raw,    TRY_CAST(input_tokens AS DOUBLE) AS in_d,
           output_tokens AS out_raw,  TRY_CAST(output_tokens AS DOUBLE) AS out_d,
           duration_s AS dur_raw,     TRY_CAST(duration_s AS DOUBLE) AS dur_d,
           energy_j AS ej_raw,        TRY_CAST(energy_j AS DOUBLE) AS ej_d,
           weight AS w_raw,           TRY_CAST(weight AS DOUBLE) AS w_d,
           lower(trim(status::VARCHAR)) AS status_norm,
           lower(trim(cache_hit::VARCHAR)) AS cache_norm
    FROM raw_logs
),
-- §1 Timestamps: RFC 3339 with Z/offset, naive text = UTC (session TimeZone is UTC), integers
-- are epoch s/ms/us/ns by magnitude (< 1e11 s, < 1e14 ms, < 1e17 us, else ns).
timed AS (
    SELECT *,
        CASE
            WHEN ts_native_us IS NOT NULL THEN ts_native_us
            WHEN regexp_full_match(ts_txt, '[+-]?[0-9]+') THEN (
                CASE WHEN abs(ts_txt::HUGEINT) < 100000000000 THEN ts_txt::HUGEINT * 1000000
                     WHEN abs(ts_txt::HUGEINT) < 100000000000000 THEN ts_txt::HUGEINT * 1000
                     WHEN abs(ts_txt::HUGEINT) < 100000000000000000 THEN ts_txt::HUGEINT
                     ELSE floor(ts_txt::HUGEINT / 1000) END)::BIGINT
            WHEN regexp_full_match(ts_txt, '[+-]?[0-9]*\.[0-9]+|[+-]?[0-9]+\.[0-9]*') THEN (
                CASE WHEN abs(ts_txt::DOUBLE) < 1e11 THEN floor(ts_txt::DOUBLE * 1e6)
                     WHEN abs(ts_txt::DOUBLE) < 1e14 THEN floor(ts_txt::DOUBLE * 1e3)
                     WHEN abs(ts_txt::DOUBLE) < 1e17 THEN floor(ts_txt::DOUBLE)
                     ELSE floor(ts_txt::DOUBLE / 1e3) END)::BIGINT
            ELSE epoch_us(TRY_CAST(ts_txt AS TIMESTAMPTZ))
        END AS ts_us
    FROM typed
),
-- §1 Bad records: never dropped silently, never half-used. First failing rule names the reason.
checked AS (
    SELECT *,
        CASE
            WHEN ts_txt IS NULL AND ts_native_us IS NULL THEN 'missing ts'
            WHEN ts_us IS NULL THEN 'bad value for ts'
            WHEN model IS NULL THEN 'missing model'
            -- counts must be whole numbers (DuckDB would round '12.5' when casting to an integer)
            WHEN gpus_raw IS NOT NULL AND (gpus_d IS NULL OR gpus_d <> trunc(gpus_d))
                 THEN 'bad value for gpus'
            WHEN in_raw IS NOT NULL AND (in_d IS NULL OR in_d <> trunc(in_d))
                 THEN 'bad value for input_tokens'
            WHEN out_raw IS NOT NULL AND (out_d IS NULL OR out_d <> trunc(out_d))
                 THEN 'bad value for output_tokens'
            WHEN dur_raw IS NOT NULL AND dur_d IS NULL THEN 'bad value for duration_s'
            WHEN ej_raw IS NOT NULL AND ej_d IS NULL THEN 'bad value for energy_j'
            WHEN w_raw IS NOT NULL AND w_d IS NULL THEN 'bad value for weight'
            WHEN cache_norm IS NOT NULL AND cache_norm <> ''
                 AND cache_norm NOT IN ($cache_true) AND cache_norm NOT IN ($cache_false)
                 THEN 'bad value for cache_hit'
            WHEN gpus_d < 0 THEN 'negative gpus'
            WHEN in_d < 0 THEN 'negative input_tokens'
            WHEN out_d < 0 THEN 'negative output_tokens'
            WHEN NOT isfinite(dur_d) THEN 'non-finite duration_s'
            WHEN NOT isfinite(ej_d) THEN 'non-finite energy_j'
            WHEN NOT isfinite(w_d) THEN 'non-finite weight'
            WHEN dur_d < 0 THEN 'negative duration_s'
            WHEN ej_d < 0 THEN 'negative energy_j'
            WHEN w_d < 0 THEN 'negative weight'
            -- physical bounds (docs/bounds.md), checked after the rules above
            WHEN gpus_d > 1e6 THEN 'implausible gpus (above 1e6)'
            WHEN in_d > 1e12 THEN 'implausible input_tokens (above 1e12)'
            WHEN out_d > 1e12 THEN 'implausible output_tokens (above 1e12)'
            WHEN dur_d > 1e8 THEN 'implausible duration_s (above 1e8)'
            WHEN ej_d > 1e15 THEN 'implausible energy_j (above 1e15)'
            WHEN w_d > 1e12 THEN 'implausible weight (above 1e12)'
        END AS reject_reason
    FROM timed
),
valid_raw AS (
    SELECT source, row_no, ts_us, model AS model_raw, site AS site_raw, zone AS zone_raw,
           hardware AS hardware_raw,
           gpus_d::BIGINT AS gpus, in_d AS input_tokens, out_d AS output_tokens,
           dur_d AS duration_s, ej_d AS energy_j, coalesce(w_d, 1.0) AS weight,
           status_norm, coalesce(cache_norm IN ($cache_true), false) AS cache_hit_true
    FROM checked WHERE reject_reason IS NULL
),
-- §10 Names: a pack name as is; else an exact alias; else the longest matching glob (ties: the
-- one listed first); else as written. A site is tried whole, then by its URL/host:port host.
-- A zone matching a grid zone only when case is ignored becomes the grid's zone.
-- (Once per distinct raw name, as the spec asks, then joined back to the records.)
name_map AS (
    SELECT 'model' AS kind, raw, coalesce(wl_alias('models', raw), raw) AS name
    FROM (SELECT DISTINCT model_raw AS raw FROM valid_raw)
    UNION ALL
    SELECT 'site', raw, coalesce(wl_alias('sites', raw), wl_alias('sites', wl_host(raw)), raw)
    FROM (SELECT DISTINCT site_raw AS raw FROM valid_raw WHERE site_raw IS NOT NULL)
    UNION ALL
    SELECT 'zone', raw, wl_zone(raw)
    FROM (SELECT DISTINCT zone_raw AS raw FROM valid_raw WHERE zone_raw IS NOT NULL)
    UNION ALL
    SELECT 'hardware', raw, coalesce(wl_alias('hardware', raw), raw)
    FROM (SELECT DISTINCT hardware_raw AS raw FROM valid_raw WHERE hardware_raw IS NOT NULL)
),
named AS (
    SELECT v.* EXCLUDE (model_raw, site_raw, zone_raw, hardware_raw),
           nm.name AS model, ns.name AS site_named, nz.name AS zone, nh.name AS hardware
    FROM valid_raw v
    LEFT JOIN name_map nm ON nm.kind = 'model' AND nm.raw = v.model_raw
    LEFT JOIN name_map ns ON ns.kind = 'site' AND ns.raw = v.site_raw
    LEFT JOIN name_map nz ON nz.kind = 'zone' AND nz.raw = v.zone_raw
    LEFT JOIN name_map nh ON nh.kind = 'hardware' AND nh.raw = v.hardware_raw
),
-- §10 Outcome: failed wins over cached; the pack's [outcomes] lists come before the built-in
-- ones; a status nothing recognises counts as ok. §10 Locating: [defaults] site for records
-- with neither site nor zone.
valid AS (
    SELECT * EXCLUDE (site_named, status_class),
           coalesce(site_named, CASE WHEN zone IS NULL THEN (SELECT site FROM cfg_default_site) END) AS site,
           CASE WHEN status_class = 'failed' THEN 'failed'
                WHEN status_class = 'cached' OR cache_hit_true THEN 'cached'
                ELSE 'ok' END AS outcome
    FROM (
        SELECT n.*,
            CASE
                WHEN n.status_norm IS NULL THEN 'ok'
                WHEN po.outcome IS NOT NULL THEN po.outcome
                WHEN regexp_full_match(n.status_norm, '[0-9]{1,3}') THEN (
                    CASE WHEN TRY_CAST(n.status_norm AS INTEGER) IN (0, 1) THEN 'ok'       -- OTel UNSET / OK
                         WHEN TRY_CAST(n.status_norm AS INTEGER) = 2 THEN 'failed'         -- OTel ERROR
                         WHEN TRY_CAST(n.status_norm AS INTEGER) BETWEEN 100 AND 399 THEN 'ok'
                         WHEN TRY_CAST(n.status_norm AS INTEGER) BETWEEN 400 AND 599 THEN 'failed'
                         ELSE 'unrecognised' END)
                WHEN n.status_norm IN ($failed_statuses) THEN 'failed'
                WHEN n.status_norm IN ($ok_statuses) THEN 'ok'
                ELSE 'unrecognised'
            END AS status_class
        FROM named n LEFT JOIN cfg_outcomes po ON po.status = n.status_norm
    )
),
-- §1/§2 Resolution: the record's zone wins for the grid, the site supplies everything else;
-- an unknown site gets the defaults; hardware/gpus from the record, else the site's (gpus else 1).
resolved AS (
    SELECT v.*,
           coalesce(v.zone, wl_zone(s.zone)) AS eff_zone,
           coalesce(v.hardware, s.hardware) AS eff_hardware,
           coalesce(v.gpus, s.gpus, 1) AS eff_gpus,
           coalesce(s.pue, d.pue) AS pue,
           coalesce(s.host_overhead, d.host_overhead) AS host_overhead,
           coalesce(s.idle_overhead, d.idle_overhead) AS idle_overhead,
           coalesce(s.utilization, d.utilization) AS utilization,
           s.utilization AS site_utilization,
           coalesce(s.concurrency, d.concurrency) AS concurrency,
           coalesce(s.mfu, d.mfu) AS mfu,
           s.market_g_per_kwh, s.fallback_g_per_kwh,
           d.u_measured, d.u_tokens, d.u_gpu_time, d.u_flops
    FROM valid v
    LEFT JOIN cfg_sites s ON s.site = v.site
    CROSS JOIN cfg_defaults d
),
-- §2 "A coefficient entry for the record's exact hardware wins over a '*' entry" (whole entry).
with_coef AS (
    SELECT r.*,
           h.hardware IS NOT NULL AND h.tdp_w IS NOT NULL AS hw_known,
           h.tdp_w, coalesce(h.idle_w, 0.0) AS idle_w, h.peak_tflops,
           -- §10 (calibration): a site's own utilization, else the hardware's, else [defaults].
           coalesce(r.site_utilization, h.utilization, r.utilization) AS gpu_utilization,
           m.active_params_b,
           (ce.model IS NOT NULL OR cs.model IS NOT NULL) AS has_coef,
           CASE WHEN ce.model IS NOT NULL THEN ce.wh_per_1k_input ELSE cs.wh_per_1k_input END AS wh_in,
           CASE WHEN ce.model IS NOT NULL THEN ce.wh_per_1k_output ELSE cs.wh_per_1k_output END AS wh_out,
           CASE WHEN ce.model IS NOT NULL THEN ce.uncertainty ELSE cs.uncertainty END AS coef_u,
           (r.input_tokens IS NOT NULL OR r.output_tokens IS NOT NULL) AS has_tokens,
           coalesce(r.input_tokens, 0) + coalesce(r.output_tokens, 0) AS tokens_total
    FROM resolved r
    LEFT JOIN cfg_hardware h ON h.hardware = r.eff_hardware
    LEFT JOIN cfg_models m ON m.model = r.model
    LEFT JOIN cfg_coefficients ce ON ce.model = r.model AND ce.hardware = r.eff_hardware
    LEFT JOIN cfg_coefficients cs ON cs.model = r.model AND cs.hardware = '*'
),
-- §3 Method: the first that applies wins.
methods AS (
    SELECT *,
        CASE
            WHEN outcome = 'cached' THEN 'cached'
            WHEN energy_j IS NOT NULL THEN 'measured'
            WHEN has_coef AND has_tokens THEN 'tokens'
            WHEN duration_s IS NOT NULL AND hw_known THEN 'gpu_time'
            WHEN has_tokens AND active_params_b IS NOT NULL AND peak_tflops IS NOT NULL AND hw_known
                 THEN 'flops'
            ELSE 'none'
        END AS method,
        -- §6 computational resources, whatever the energy method; none for a cached request
        -- (§10: the model did not run).
        CASE WHEN active_params_b IS NOT NULL AND has_tokens AND outcome <> 'cached'
             THEN 2 * active_params_b * 1e9 * tokens_total END AS flops_1,
        CASE WHEN duration_s IS NOT NULL AND outcome <> 'cached'
             THEN duration_s * eff_gpus / 3600 END AS gpu_hours_1
    FROM with_coef
),
-- §3 E_acc (Wh) and the method's relative half-width; §4 E_it and E_fac.
energy AS (
    SELECT *,
        CASE method
            WHEN 'cached' THEN 0.0  -- §10: served from a cache, zero model energy
            WHEN 'measured' THEN energy_j / 3600
            WHEN 'tokens' THEN (coalesce(input_tokens, 0) * wh_in
                                + coalesce(output_tokens, 0) * wh_out) / 1000
            WHEN 'gpu_time' THEN duration_s * eff_gpus * (idle_w + gpu_utilization * (tdp_w - idle_w))
                                 / concurrency / 3600
            WHEN 'flops' THEN 2 * active_params_b * 1e9 * tokens_total
                              / (peak_tflops * 1e12 * mfu) * tdp_w / 3600
        END AS e_acc_wh,
        CASE method
            WHEN 'cached' THEN 0.0
            WHEN 'measured' THEN u_measured
            WHEN 'tokens' THEN coalesce(coef_u, u_tokens)
            WHEN 'gpu_time' THEN u_gpu_time
            WHEN 'flops' THEN u_flops
        END AS u
    FROM methods
),
facility AS (
    SELECT *,
        e_acc_wh * (1 + host_overhead + idle_overhead) AS e_it_wh,
        e_acc_wh * (1 + host_overhead + idle_overhead) * pue AS e_fac_wh,
        (ts_us // 3600000000) * 3600000000 AS hour_us
    FROM energy
),
-- §5 Intensity: hour value; else same-month mean of the zone; else site fallback; else unresolved.
intensity AS (
    SELECT f.*,
        CASE WHEN gh.g_per_kwh IS NOT NULL THEN 'hour'
             WHEN gm.g_per_kwh IS NOT NULL THEN 'month_mean'
             WHEN f.fallback_g_per_kwh IS NOT NULL THEN 'site_fallback'
             ELSE 'unresolved' END AS i_source,
        coalesce(gh.g_per_kwh, gm.g_per_kwh, f.fallback_g_per_kwh) AS i_loc
    FROM facility f
    LEFT JOIN grid_hourly gh ON gh.zone = f.eff_zone AND gh.hour_us = f.hour_us
    LEFT JOIN grid_monthly gm
           ON gm.zone = f.eff_zone AND gm.month = date_trunc('month', make_timestamp(f.hour_us))
),
-- §5 emissions (kg), §7 every extensive quantity times weight (energy here in kWh).
per_record AS (
    SELECT hour_us, model, site, eff_zone AS zone, eff_hardware AS hardware, method, weight,
           weight * coalesce(input_tokens, 0) AS w_in,
           weight * coalesce(output_tokens, 0) AS w_out,
           weight * e_acc_wh / 1000 AS acc_kwh,
           weight * e_it_wh / 1000 AS it_kwh,
           weight * e_fac_wh / 1000 AS kwh,
           -- (DuckDB's greatest() skips NULLs, so guard: method none must stay null, not 0.)
           CASE WHEN e_fac_wh IS NOT NULL THEN weight * greatest(e_fac_wh * (1 - u), 0) / 1000 END AS kwh_low,
           weight * e_fac_wh * (1 + u) / 1000 AS kwh_high,
           -- §10 a cached request emits nothing, whatever its zone's intensity (a known zero).
           CASE WHEN method = 'cached' THEN 0.0 ELSE weight * e_fac_wh / 1000 * i_loc / 1000 END AS co2e_loc,
           -- Market: the site's contractual factor (0.0 counts), else location-based. Unresolved
           -- intensity leaves both null (docs/internals.md null rules).
           CASE WHEN method = 'cached' THEN 0.0
                WHEN i_loc IS NOT NULL
                THEN weight * e_fac_wh / 1000 * coalesce(market_g_per_kwh, i_loc) / 1000 END AS co2e_mkt,
           weight * flops_1 AS flops_w,
           weight * gpu_hours_1 AS gpu_hours_w,
           CASE WHEN e_fac_wh IS NOT NULL THEN
               CASE WHEN i_source IN ('site_fallback', 'month_mean')
                    THEN weight * e_fac_wh / 1000 ELSE 0.0 END END AS fallback_kwh_1,
           CASE WHEN e_fac_wh IS NOT NULL THEN
               CASE WHEN i_source = 'unresolved' THEN weight * e_fac_wh / 1000 ELSE 0.0 END
           END AS unresolved_kwh_1,
           CASE WHEN method = 'none' THEN weight ELSE 0.0 END AS unest,
           CASE WHEN outcome = 'failed' THEN weight ELSE 0.0 END AS failed_1,
           CASE WHEN outcome = 'cached' THEN weight ELSE 0.0 END AS cached_1
    FROM intensity
)
-- §8 hourly partial aggregates; SUM ignores nulls and is null when every value is null, which is
-- exactly the null rule (energy null for method none; co2e null when unresolved; flops/gpu_hours
-- null when no record of the cell had them).
SELECT make_timestamptz(hour_us) AS hour, model, site, zone, hardware, method,
       count(*)::BIGINT AS records,
       sum(weight) AS requests,
       sum(w_in) AS input_tokens,
       sum(w_out) AS output_tokens,
       sum(acc_kwh) AS energy_acc_kwh,
       sum(it_kwh) AS energy_it_kwh,
       sum(kwh) AS energy_kwh,
       sum(kwh_low) AS energy_kwh_low,
       sum(kwh_high) AS energy_kwh_high,
       sum(co2e_loc) AS co2e_location_kg,
       sum(co2e_mkt) AS co2e_market_kg,
       sum(flops_w) AS flops,
       sum(gpu_hours_w) AS gpu_hours,
       sum(fallback_kwh_1) AS fallback_kwh,
       sum(unresolved_kwh_1) AS unresolved_kwh,
       sum(unest) AS unestimated_requests,
       sum(failed_1) AS failed_requests,
       sum(cached_1) AS cached_requests
FROM per_record
GROUP BY ALL
"""


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join(_q(v) for v in values)


def methodology_sql() -> str:
    """METHODOLOGY_SQL with the section 10 value lists filled in."""
    return (
        METHODOLOGY_SQL.replace("$cache_true", _sql_list(CACHE_TRUE))
        .replace("$cache_false", _sql_list(CACHE_FALSE))
        .replace("$failed_statuses", _sql_list(FAILED_STATUSES))
        .replace("$ok_statuses", _sql_list(OK_STATUSES))
    )


# §10 name resolution, as macros over the config tables and the grid (created after both).
NAMES_SQL = r"""
CREATE OR REPLACE TABLE cfg_names AS
    SELECT 'models' AS kind, model AS name FROM cfg_models
    UNION ALL SELECT 'hardware', hardware FROM cfg_hardware
    UNION ALL SELECT 'sites', site FROM cfg_sites;
CREATE OR REPLACE TABLE grid_zones AS SELECT DISTINCT zone FROM grid_hourly;
-- The pack name of a raw name of one kind, or NULL when nothing applies.
CREATE OR REPLACE MACRO wl_alias(k, raw) AS coalesce(
    (SELECT any_value(n.name) FROM cfg_names n WHERE n.kind = k AND n.name = raw),
    (SELECT any_value(a.target) FROM cfg_aliases a WHERE a.kind = k AND NOT a.is_glob AND a.pattern = raw),
    (SELECT arg_min(a.target, a.ord - length(a.pattern) * 1000000) FROM cfg_aliases a
     WHERE a.kind = k AND a.is_glob AND raw LIKE a.like_pattern ESCAPE '\'));
-- The host of a URL (scheme://[user@]host[:port]/...) or of host:port, lower case.
CREATE OR REPLACE MACRO wl_host(s) AS CASE
    WHEN contains(s, '://') THEN nullif(lower(regexp_replace(
        regexp_extract(s, '://(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)', 1), '^\[|\]$', '', 'g')), '')
    WHEN regexp_full_match(s, '[^:]+:[0-9]+') THEN lower(split_part(s, ':', 1))
END;
-- A zone as the grid spells it: exact first, else equal ignoring case, else as written.
CREATE OR REPLACE MACRO wl_zone(z) AS CASE
    WHEN z IS NULL THEN NULL
    WHEN EXISTS (SELECT 1 FROM grid_zones g WHERE g.zone = z) THEN z
    ELSE coalesce((SELECT min(g.zone) FROM grid_zones g WHERE lower(g.zone) = lower(z)), z)
END;
"""

# §9 per-model report over a period (UTC calendar year or month) of the hourly cells.
REPORT_BY_MODEL_SQL = """
SELECT model,
       sum(requests) AS requests,
       sum(records)::BIGINT AS records,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(energy_kwh) AS energy_kwh,
       sum(energy_kwh_low) AS energy_kwh_low,
       sum(energy_kwh_high) AS energy_kwh_high,
       -- measured_kwh = energy_kwh of method measured; 0 when the model has energy but none
       -- measured, null (like energy_kwh) when the model has no energy at all.
       CASE WHEN count(energy_kwh) > 0
            THEN coalesce(sum(energy_kwh) FILTER (WHERE method = 'measured'), 0.0) END AS measured_kwh,
       sum(co2e_location_kg) AS co2e_location_kg,
       sum(co2e_market_kg) AS co2e_market_kg,
       sum(flops) AS flops,
       sum(gpu_hours) AS gpu_hours,
       sum(unestimated_requests) AS unestimated_requests,
       sum(fallback_kwh) AS fallback_kwh,
       sum(unresolved_kwh) AS unresolved_kwh,
       sum(failed_requests) AS failed_requests,
       sum(cached_requests) AS cached_requests
FROM oracle_hourly_cells
WHERE hour >= $period_start AND hour < $period_end
GROUP BY model
ORDER BY model
"""


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleOptions:
    """Oracle switches.

    lifecycle: use the life-cycle grid column instead of direct.

    Energy priced at the zone's month mean counts in ``fallback_kwh`` like the site's
    ``fallback_g_per_kwh``: only an hour-matched value is not a fallback (pinned reading of
    methodology section 5, shared with the engine).
    """

    lifecycle: bool = False


def _as_list(x: PathLike | Sequence[PathLike] | None) -> list[str]:
    if x is None:
        return []
    if isinstance(x, (str, Path)):
        return [str(x)]
    return [str(p) for p in x]


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC (naive timestamps mean UTC, spec section 1)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"PRAGMA threads={int(threads)}")
    return con


def load(
    con: duckdb.DuckDBPyConnection,
    logs: PathLike | Sequence[PathLike],
    config: PathLike,
    grid: PathLike | Sequence[PathLike] | None,
    options: OracleOptions = OracleOptions(),
    *,
    materialize: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Register logs, config and grid on ``con`` and build ``oracle_hourly_cells``.

    With ``materialize=False`` the cells are a view (the benchmark lets DuckDB plan the whole
    query from files to report at once, as a user of DuckDB would).
    """
    files = _as_list(logs)
    if not files:
        raise ValueError("oracle: no log files")
    con.execute(
        "CREATE OR REPLACE VIEW raw_logs AS "
        + " UNION ALL BY NAME ".join(_file_select(con, f) for f in files)
    )
    _load_config(con, config)
    grids = _as_list(grid)
    if grids:
        con.execute(
            "CREATE OR REPLACE VIEW grid_raw AS "
            + " UNION ALL ".join(_grid_select(con, g, options.lifecycle) for g in grids)
        )
    else:
        con.execute(
            "CREATE OR REPLACE VIEW grid_raw AS "
            "SELECT NULL::VARCHAR zone, NULL::VARCHAR dt, NULL::VARCHAR val"
        )
    con.execute(GRID_SQL)
    con.execute(NAMES_SQL)
    sql = methodology_sql()
    kind = "TABLE" if materialize else "VIEW"
    con.execute(f"CREATE OR REPLACE {kind} oracle_hourly_cells AS {sql}")
    return con


def _connection(
    logs_or_con: duckdb.DuckDBPyConnection | PathLike | Sequence[PathLike],
    config: PathLike | None,
    grid: PathLike | Sequence[PathLike] | None,
    options: OracleOptions,
    threads: int | None,
    materialize: bool = True,
) -> duckdb.DuckDBPyConnection:
    if isinstance(logs_or_con, duckdb.DuckDBPyConnection):
        return logs_or_con
    if config is None:
        raise ValueError("oracle: config is required when logs are given as paths")
    return load(connect(threads), logs_or_con, config, grid, options, materialize=materialize)


def oracle_hourly(
    logs_or_con: duckdb.DuckDBPyConnection | PathLike | Sequence[PathLike],
    config: PathLike | None = None,
    grid: PathLike | Sequence[PathLike] | None = None,
    *,
    options: OracleOptions = OracleOptions(),
    threads: int | None = None,
) -> pl.DataFrame:
    """Section 8 cells: keys ``hour, model, site, zone, hardware, method`` then the measures,
    sorted by the keys (nulls first). ``zone``/``hardware`` are the resolved values (record's,
    else the site's); ``site`` is the record's, even when the config does not know it."""
    con = _connection(logs_or_con, config, grid, options, threads)
    cols = ", ".join((*HOURLY_KEYS, *HOURLY_MEASURES))
    keys = ", ".join(f"{k} NULLS FIRST" for k in HOURLY_KEYS)
    return con.sql(f"SELECT {cols} FROM oracle_hourly_cells ORDER BY {keys}").pl()


def oracle_rejects(
    logs_or_con: duckdb.DuckDBPyConnection | PathLike | Sequence[PathLike],
    config: PathLike | None = None,
    grid: PathLike | Sequence[PathLike] | None = None,
    *,
    threads: int | None = None,
) -> pl.DataFrame:
    """Rows the oracle refused: ``source, row_no, reason``. ``row_no`` counts parsed rows
    (DuckDB skips blank lines; an unparseable JSON line appears as an all-null row, hence
    'missing ts'), so compare counts, not line numbers, with the engine."""
    con = _connection(logs_or_con, config, grid, OracleOptions(), threads)
    sql = methodology_sql()
    head = sql[: sql.index("valid_raw AS (")].rstrip().rstrip(",")
    return con.sql(
        f"{head} SELECT source, row_no, reject_reason AS reason FROM checked "
        "WHERE reject_reason IS NOT NULL ORDER BY source, row_no"
    ).pl()


def period_bounds(year: int, month: int | None = None) -> tuple[str, str]:
    """[start, end) of a UTC calendar year or month, as ISO strings with 'Z'."""
    if month is None:
        return f"{year:04d}-01-01T00:00:00Z", f"{year + 1:04d}-01-01T00:00:00Z"
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-01T00:00:00Z", f"{ny:04d}-{nm:02d}-01T00:00:00Z"


def report_by_model_sql(year: int, month: int | None = None) -> str:
    """The section 9 query for a period, over a connection prepared by :func:`load`."""
    start, end = period_bounds(year, month)
    return REPORT_BY_MODEL_SQL.replace("$period_start", f"TIMESTAMPTZ '{start}'").replace(
        "$period_end", f"TIMESTAMPTZ '{end}'"
    )


def oracle_report_by_model(
    logs_or_con: duckdb.DuckDBPyConnection | PathLike | Sequence[PathLike],
    config: PathLike | None = None,
    grid: PathLike | Sequence[PathLike] | None = None,
    *,
    year: int,
    month: int | None = None,
    options: OracleOptions = OracleOptions(),
    threads: int | None = None,
    materialize: bool = True,
) -> pl.DataFrame:
    """Section 9: one row per model in the period, columns ``REPORT_COLUMNS``, sorted by model."""
    con = _connection(logs_or_con, config, grid, options, threads, materialize)
    return con.sql(report_by_model_sql(year, month)).pl()


def frames_close(
    got: pl.DataFrame, want: pl.DataFrame, *, rel: float = 1e-9, abs_tol: float = 1e-12
) -> list[str]:
    """Differences between two result frames (same columns; rows in the same order).

    Null must meet null (a silent zero where the oracle has null is a failure); floats within
    ``rel``. Returns human-readable differences, empty when the frames agree.
    """
    problems: list[str] = []
    if got.columns != want.columns:
        return [f"columns differ: {got.columns} != {want.columns}"]
    if got.height != want.height:
        return [f"row count differs: {got.height} != {want.height}"]
    for name in want.columns:
        a, b = got[name].to_list(), want[name].to_list()
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x is None or y is None:
                ok = x is None and y is None
            elif isinstance(y, float) or isinstance(x, float):
                ok = math.isclose(float(x), float(y), rel_tol=rel, abs_tol=abs_tol)
            else:
                ok = x == y
            if not ok:
                problems.append(f"row {i} column {name}: got {x!r}, want {y!r}")
    return problems
