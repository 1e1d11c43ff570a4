"""Every number of a regulatory rollup, gathered from the ledger in one place.

Why one gathering function: the markdown, HTML, JSON and CSV documents must carry the same
numbers (a filed PDF and the spreadsheet behind it may not disagree), so the renderers only
format what :func:`gather` computed and never query the ledger themselves. The section 9 sums
come from :func:`wattledger.report.report_from` (the same SQL as ``wattledger report``); the
few figures section 9 lacks (energy by method, the denominators of the efficiency figures,
provenance) are extra SQL over the ledger's own views with the same period filter.

The methodology section comes from the config TEXT stored in ``wl_configs``, resolved by the
engine (``Config.from_toml(text).to_json()``): the defaults, the inheritance of a site from
``[defaults]``, the market fallback and the training energy are the engine's, the very values
the numbers were made with. Python only picks what the period used and words it. A text the
engine refuses (a corrupt row, a pack of an older version) still gives a rollup, with a
``parse_error`` note in place of that pack's methodology.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from wattledger import _core
from wattledger.ledger import outcome_coverage_message
from wattledger.report import (
    _where,
    configs_from,
    mixed_config_message,
    period_bounds,
    report_from,
    rows_without_outcomes,
    run_warnings_message,
)
from wattledger.schema import HOUR_UTC, exact_sum_sql

PathLike = str | os.PathLike[str]

#: Estimation methods that produce energy, in the order the methodology tries them (section 3).
ENERGY_METHODS: tuple[str, ...] = ("measured", "attributed", "tokens", "gpu_time", "flops")

TOTAL = "(all models)"


@dataclass(frozen=True)
class Metric:
    """One per-model figure: its stable JSON/CSV key, its unit and the header people read."""

    key: str
    unit: str
    label: str
    integer: bool = False  # counts shown whole (they are exact), not rounded

    @property
    def header(self) -> str:
        """The human header, unit included (the Code of Practice wants units everywhere)."""
        return f"{self.label} ({self.unit})"


_M = Metric
#: Every per-model figure, in document order. JSON ``models[*]`` and the CSV use ``key``;
#: markdown and HTML use ``header``.
METRICS: tuple[Metric, ...] = (
    _M("requests", "count", "Requests", integer=True),
    _M("records", "count", "Log records", integer=True),
    _M("input_tokens", "tokens", "Input tokens", integer=True),
    _M("output_tokens", "tokens", "Output tokens", integer=True),
    _M("energy_mwh", "MWh", "Energy"),
    _M("energy_low_mwh", "MWh", "Energy low"),
    _M("energy_high_mwh", "MWh", "Energy high"),
    *(_M(f"energy_{m}_mwh", "MWh", f"Energy {m.replace('_', ' ')}") for m in ENERGY_METHODS),
    *(_M(f"share_{m}_pct", "% of energy", f"Share {m.replace('_', ' ')}") for m in ENERGY_METHODS),
    _M("flops", "FLOP", "Inference compute"),
    _M("gpu_hours", "GPU-h", "GPU hours"),
    _M("co2e_location_t", "tCO2e", "Location-based"),
    _M("co2e_market_t", "tCO2e", "Market-based"),
    _M("intensity_location_g_per_kwh", "gCO2e/kWh", "Avg intensity location"),
    _M("intensity_market_g_per_kwh", "gCO2e/kWh", "Avg intensity market"),
    _M("fallback_mwh", "MWh", "On fallback intensity"),
    _M("fallback_share_pct", "% of energy", "Fallback share"),
    _M("unresolved_mwh", "MWh", "Unresolved intensity"),
    _M("unresolved_share_pct", "% of energy", "Unresolved share"),
    _M("no_instrument_mwh", "MWh", "Market: no instrument"),
    _M("unestimated_requests", "count", "Unestimated requests", integer=True),
    _M("unestimated_share_pct", "% of requests", "Unestimated share"),
    _M("failed_requests", "count", "Failed requests", integer=True),
    _M("cached_requests", "count", "Cached requests", integer=True),
    _M("wh_per_request", "Wh/request", "Energy per request"),
    _M("wh_per_1000_requests", "Wh/1000 requests", "Energy per 1000 requests"),
    _M("wh_per_1000_output_tokens", "Wh/1000 output tokens", "Energy per 1000 output tokens"),
    _M("gco2e_location_per_request", "gCO2e/request", "Location-based per request"),
    _M("gco2e_market_per_request", "gCO2e/request", "Market-based per request"),
)
METRIC_BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}


@dataclass(frozen=True)
class HardwareFigures:
    """One model's inference on one accelerator (``hardware`` None: rows that recorded none),
    so a model card can pair each hardware with its power and its own share of the figures."""

    hardware: str | None
    tdp_w: float | None
    requests: float | int  # whole counts as int, like the per-model figures
    gpu_hours: float | None
    energy_mwh: float | None
    co2e_location_t: float | None
    co2e_market_t: float | None


@dataclass(frozen=True)
class ModelFigures:
    """One model's figures (or the all-models total), keyed by :data:`METRICS` keys; ``None``
    where the ledger holds no estimate (never a silent zero)."""

    model: str
    values: dict[str, float | int | None]
    hardware: tuple[str, ...] = ()
    by_hardware: tuple[HardwareFigures, ...] = ()


@dataclass(frozen=True)
class SiteMethod:
    """How a site turns accelerator energy into facility energy and emissions."""

    site: str
    zone: str | None
    pue: float
    host_overhead: float
    idle_overhead: float
    market_g_per_kwh: float | None
    fallback_g_per_kwh: float | None
    hardware: str | None
    source: str | None


@dataclass(frozen=True)
class CoefficientSource:
    """Where a model's inference figures come from, per hardware entry."""

    model: str
    hardware: str
    wh_per_1k_input: float | None
    wh_per_1k_output: float | None
    uncertainty: float | None
    source: str | None


@dataclass(frozen=True)
class CalibrationSource:
    """A value fitted by ``wattledger calibrate``: what it is and the pack's ``calibrated``
    provenance (records, period, held-out error), as the engine parsed it."""

    #: None for a hardware's gpu_time ``utilization``.
    model: str | None
    hardware: str
    #: What was calibrated, in words (coefficients or utilization with their values).
    value: str
    records: int
    held_out: int
    first_ts: str
    last_ts: str
    date: str
    #: Held-out estimated / measured energy - 1 (signed); None without held-out energy.
    holdout_total_error: float | None
    holdout_median_error: float | None
    band_coverage: float | None
    #: The entry's band half-width (coefficients); None for a utilization.
    uncertainty: float | None
    fit: str | None
    inputs: tuple[str, ...]
    note: str | None


def _calibration(
    model: str | None, hardware: str, value: str, c: dict[str, Any], u: float | None
) -> CalibrationSource:
    measured, estimated = c.get("holdout_measured_wh"), c.get("holdout_estimated_wh")
    total_error = estimated / measured - 1.0 if measured and estimated is not None else None
    return CalibrationSource(
        model,
        hardware,
        value,
        int(c["records"]),
        int(c["held_out"]),
        c["first_ts"],
        c["last_ts"],
        c["date"],
        total_error,
        c.get("holdout_median_error"),
        c.get("band_coverage"),
        u,
        c.get("fit"),
        tuple(c.get("inputs") or ()),
        c.get("note"),
    )


@dataclass(frozen=True)
class HardwareSpec:
    """An accelerator of the pack that the period's rows used."""

    hardware: str
    tdp_w: float | None
    idle_w: float | None
    peak_tflops: float | None
    source: str | None


@dataclass(frozen=True)
class ConfigMethodology:
    """The methodology pack behind (part of) the period's numbers."""

    sha256: str
    name: str | None
    version: str | None
    origin: str | None
    description: str | None
    records: int
    energy_mwh: float | None
    defaults: dict[str, float]
    uncertainty: dict[str, float]
    sites: tuple[SiteMethod, ...]
    hardware: tuple[HardwareSpec, ...]
    coefficients: tuple[CoefficientSource, ...]
    model_sources: dict[str, str]
    parse_error: str | None = None
    #: Calibrated coefficients and utilizations of the models and hardware the period used
    #: (the JSON document carries the key only when there are some).
    calibrations: tuple[CalibrationSource, ...] = ()


@dataclass(frozen=True)
class RunRow:
    """An ingest run with rows in the period."""

    run_id: str
    started_at: str
    command: str | None
    wattledger_version: str | None
    config_sha256: str
    status: str
    records_in_period: int
    #: The run's warnings as stored on its row (engine, grid and coverage checks).
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceRow:
    """A live source file with rows in the period (content hash: the file can be re-checked with
    ``b3sum``, or ``sha256sum`` for a source recorded before ledger schema 4, which has no BLAKE3)."""

    path: str
    blake3: str | None
    sha256: str | None
    size_bytes: int
    run_id: str
    config_sha256: str
    records: int
    rejected: int
    records_in_period: int


@dataclass(frozen=True)
class Training:
    """The optional training figures of one model, from ``[training."model"]`` in the config."""

    model: str
    config_sha256: str
    gpu_hours: float | None
    hardware: str | None
    site: str | None
    tdp_w: float | None
    pue: float | None
    energy_mwh: float | None
    energy_basis: str  # "measured (energy_mwh in config)" / "estimated: ..." / "unknown"
    co2e_location_t: float | None
    co2e_market_t: float | None
    co2e_basis: str
    note: str | None


@dataclass(frozen=True)
class Timeseries:
    """Energy per model per calendar month (year rollups) or per day (month rollups)."""

    granularity: str  # "month" or "day"
    periods: tuple[str, ...]
    energy_mwh: dict[str, tuple[float | None, ...]]  # model -> one value per period


@dataclass(frozen=True)
class RollupData:
    """Everything a rollup document shows."""

    ledger_name: str
    year: int
    month: int | None
    model_filter: str | None
    period_label: str
    period_start: str
    period_end: str
    data_first_hour: str | None
    data_last_hour_end: str | None
    models: tuple[ModelFigures, ...]
    total: ModelFigures
    timeseries: Timeseries
    methodology: tuple[ConfigMethodology, ...]
    runs: tuple[RunRow, ...]
    sources: tuple[SourceRow, ...]
    training: tuple[Training, ...]
    warnings: tuple[str, ...] = field(default=())
    #: The period's numbers come (in part) from a pack that declares itself SYNTHETIC: every
    #: page of the document must say so (see :func:`is_synthetic_pack`).
    synthetic: bool = False


# --------------------------------------------------------------------------------------------
# arithmetic that keeps "not estimated" apart from zero


def _div(num: float | None, den: float | None, scale: float = 1.0) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den * scale


def _scale(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


# --------------------------------------------------------------------------------------------
# SQL


def _extras(
    con: duckdb.DuckDBPyConnection, where: str, params: list[object]
) -> dict[str | None, dict[str, Any]]:
    """Per model (and the whole period as key None): energy per method and the denominators of
    the efficiency figures. Energy figures are divided by the requests and tokens that HAVE an
    energy estimate, and emissions by those that have resolved emissions, so unestimated
    requests neither dilute nor inflate Wh/request (coverage shows how many there are)."""
    x = exact_sum_sql
    per_method = ",\n    ".join(
        f"{x('energy_kwh', 'energy_kwh', f'method = {m!r}')} AS energy_{m}_kwh" for m in ENERGY_METHODS
    )
    estimated, located, market = (
        "energy_kwh IS NOT NULL",
        "co2e_location_kg IS NOT NULL",
        "co2e_market_kg IS NOT NULL",
    )
    sql = f"""SELECT model,
    {per_method},
    {x("requests", "requests", estimated)} AS estimated_requests,
    {x("output_tokens", "output_tokens", estimated)} AS estimated_output_tokens,
    {x("energy_kwh", "energy_kwh", located)} AS located_kwh,
    {x("requests", "requests", located)} AS located_requests,
    {x("energy_kwh", "energy_kwh", market)} AS market_kwh,
    {x("requests", "requests", market)} AS market_requests
FROM wl_hourly
WHERE {where}
GROUP BY GROUPING SETS ((model), ())"""
    rel = con.execute(sql, params)
    cols = [d[0] for d in rel.description]
    return {row[0]: dict(zip(cols, row, strict=True)) for row in rel.fetchall()}


def _hardware_by_model(
    con: duckdb.DuckDBPyConnection, where: str, params: list[object]
) -> dict[str, tuple[str, ...]]:
    rows = con.execute(
        f"SELECT DISTINCT model, hardware FROM wl_hourly WHERE {where} AND hardware IS NOT NULL "
        "ORDER BY model, hardware",
        params,
    ).fetchall()
    out: dict[str, list[str]] = {}
    for model, hw in rows:
        out.setdefault(model, []).append(hw)
    return {k: tuple(v) for k, v in out.items()}


def _by_hardware(
    con: duckdb.DuckDBPyConnection, where: str, params: list[object]
) -> dict[str, list[tuple[Any, ...]]]:
    """Per model and hardware: requests, GPU hours, energy kWh, location and market kg."""
    x = exact_sum_sql
    rows = con.execute(
        f"""SELECT model, hardware, {x("requests", "requests")}, {x("gpu_hours", "gpu_hours")},
    {x("energy_kwh", "energy_kwh")}, {x("co2e_location_kg", "co2e_location_kg")},
    {x("co2e_market_kg", "co2e_market_kg")}
FROM wl_hourly WHERE {where} GROUP BY ALL ORDER BY model, hardware NULLS LAST""",
        params,
    ).fetchall()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row[1:])
    return out


def _energy_by_site(
    con: duckdb.DuckDBPyConnection, where: str, params: list[object]
) -> list[tuple[str, str, str | None, float | None]]:
    """(model, config, site, energy kWh): the market-based 'no instrument' share depends on the
    site's entry in the config that produced the row."""
    return con.execute(
        f"""SELECT model, config_sha256, site, {exact_sum_sql("energy_kwh", "energy_kwh")}
FROM wl_hourly WHERE {where} GROUP BY ALL ORDER BY ALL""",
        params,
    ).fetchall()


def _timeseries(
    con: duckdb.DuckDBPyConnection, year: int, month: int | None, model: str | None, models: list[str]
) -> Timeseries:
    if month is None:
        periods = tuple(f"{year}-{m:02d}" for m in range(1, 13))
        granularity = "month"
        found: dict[tuple[str, str], float | None] = {}
        for name in models:  # the colleague's report by month, one query per model
            frame = report_from(con, year=year, by="month", model=name)
            for row in frame.select("month", "energy_kwh").iter_rows():
                found[(name, row[0])] = row[1]
    else:
        start, end = period_bounds(year, month)
        days = (end - start).days
        periods = tuple((start + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(days))
        granularity = "day"
        where, params = _where(year, month, model)
        rows = con.execute(
            f"""SELECT model, strftime({HOUR_UTC}, '%Y-%m-%d') AS day,
    {exact_sum_sql("energy_kwh", "energy_kwh")}
FROM wl_hourly WHERE {where} GROUP BY ALL""",
            params,
        ).fetchall()
        found = {(m, d): e for m, d, e in rows}
    series = {name: tuple(_scale(found.get((name, p)), 1e-3) for p in periods) for name in models}
    return Timeseries(granularity, periods, series)


def _runs(con: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> tuple[RunRow, ...]:
    rows = con.execute(
        f"""SELECT r.run_id, r.started_at, r.command, r.wattledger_version, r.config_sha256, r.status,
       CAST(SUM(h.records) AS BIGINT), coalesce(r.warnings, [])
FROM (SELECT * FROM wl_hourly WHERE {where}) h JOIN wl_runs r ON h.run_id = r.run_id
GROUP BY ALL ORDER BY r.run_id""",
        params,
    ).fetchall()
    return tuple(RunRow(r[0], r[1].isoformat(), r[2], r[3], r[4], r[5], int(r[6]), tuple(r[7])) for r in rows)


def _sources(con: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> tuple[SourceRow, ...]:
    rows = con.execute(
        f"""SELECT s.path, s.blake3, s.sha256, s.size_bytes, s.run_id, s.config_sha256, s.records,
       s.rejected, CAST(SUM(h.records) AS BIGINT)
FROM (SELECT * FROM wl_hourly WHERE {where}) h JOIN wl_sources s ON h.source_id = s.source_id
GROUP BY ALL ORDER BY s.path, s.run_id""",
        params,
    ).fetchall()
    return tuple(SourceRow(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), int(r[7]), int(r[8])) for r in rows)


# --------------------------------------------------------------------------------------------
# config text -> methodology (resolved by the engine)

#: The resolved pack as the engine writes it (``Config.to_json``), parsed.
Resolved = dict[str, Any]


def resolve_config(text: str, origin: str | None) -> tuple[Resolved, str | None]:
    """The engine's resolution of a stored pack text, or an empty one and the reason the
    engine refused the text (the rollup goes on and says so)."""
    try:
        config = _core.Config.from_toml(text, origin or "stored config")
    except _core.ConfigError as exc:
        return {}, f"the stored config text is not a pack this version of wattledger reads ({exc})"
    resolved: Resolved = json.loads(config.to_json())
    return resolved, None


def _source_text(entry: dict[str, Any]) -> str | None:
    parts = [p for p in (entry.get("source"), entry.get("note")) if p]
    return "; ".join(parts) or None


def _site_method(name: str, s: dict[str, Any]) -> SiteMethod:
    return SiteMethod(
        site=name,
        zone=s["zone"],
        pue=s["pue"],
        host_overhead=s["host_overhead"],
        idle_overhead=s["idle_overhead"],
        market_g_per_kwh=s["market_g_per_kwh"],
        fallback_g_per_kwh=s["fallback_g_per_kwh"],
        hardware=s["hardware"],
        source=_source_text(s),
    )


def parse_config(
    sha256: str,
    text: str,
    *,
    name: str | None,
    version: str | None,
    origin: str | None,
    records: int,
    energy_mwh: float | None,
    models: list[str],
    hardware_used: set[str],
) -> tuple[ConfigMethodology, Resolved]:
    """The methodology of one pack, limited to the models and hardware the period used, and
    the engine's whole resolution of it (empty when the engine refused the text)."""
    resolved, error = resolve_config(text, origin)
    # The numeric defaults in the engine's order; `site` (where records without one are
    # located) is not a factor.
    defaults = {k: v for k, v in resolved.get("defaults", {}).items() if k != "site"}
    uncertainty: dict[str, float] = dict(resolved.get("uncertainty", {}))
    sites = tuple(_site_method(n, s) for n, s in sorted(resolved.get("sites", {}).items()))
    site_hw = {s.hardware for s in sites if s.hardware}
    hardware = tuple(
        HardwareSpec(
            hw,
            h["tdp_w"],
            h["idle_w"] if h["idle_w_given"] else None,
            h["peak_tflops"],
            _source_text(h),
        )
        for hw, h in sorted(resolved.get("hardware", {}).items())
        if hw in hardware_used or hw in site_hw
    )
    coefficients: list[CoefficientSource] = []
    calibrations = [
        _calibration(None, hw, f"utilization {h['utilization']:.4g}", h["calibrated"], None)
        for hw, h in sorted(resolved.get("hardware", {}).items())
        if "calibrated" in h and (hw in hardware_used or hw in site_hw)
    ]
    model_sources: dict[str, str] = {}
    for model in models:
        m = resolved.get("models", {}).get(model)
        if m is None:
            continue
        text_source = _source_text(m)
        if text_source:
            model_sources[model] = text_source
        for c in m["coefficients"]:
            own = c["uncertainty"] if c["uncertainty_from"] == "coefficient" else None
            if "calibrated" in c:
                per_1k = f"{c['wh_per_1k_input']:.4g} / {c['wh_per_1k_output']:.4g}"
                value = f"{per_1k} Wh per 1000 input / output tokens"
                calibrations.append(_calibration(model, c["hardware"], value, c["calibrated"], own))
            coefficients.append(
                CoefficientSource(
                    model, c["hardware"], c["wh_per_1k_input"], c["wh_per_1k_output"], own, _source_text(c)
                )
            )
    pack: dict[str, Any] = resolved.get("pack", {})
    method = ConfigMethodology(
        sha256=sha256,
        name=name or pack.get("name"),
        version=version or pack.get("version"),
        origin=origin,
        description=pack.get("description"),
        records=records,
        energy_mwh=energy_mwh,
        defaults=defaults,
        uncertainty=uncertainty,
        sites=sites,
        hardware=hardware,
        coefficients=tuple(coefficients),
        model_sources=model_sources,
        parse_error=error,
        calibrations=tuple(calibrations),
    )
    return method, resolved


def _training(model: str, sha: str, t: dict[str, Any]) -> Training:
    """One ``[training."model"]`` entry as the engine resolved it: energy measured
    (``energy_mwh``) or estimated (GPU hours x board power x site PUE, the model-card
    convention), emissions from the site's annual factors (a training run has no hourly ledger
    rows to join with the grid). Only the wording is made here."""
    site, hardware = t["site"], t["hardware"]
    energy, basis_kind = t["energy_mwh"], t["energy_basis"]
    if basis_kind == "measured":
        basis = "measured: energy_mwh given in the config"
    elif basis_kind == "estimated":
        pue_from = f"site {site}" if t["pue_from"] == "site" else "[defaults]"
        basis = (
            f"estimated: {t['gpu_hours']:,.0f} GPU-h x {t['tdp_w']:g} W ({hardware} board power) "
            f"x PUE {t['pue']:g} ({pue_from})"
        )
    else:
        basis = "unknown: neither energy_mwh nor gpu_hours with a known hardware power"
    if t["co2e_location_t"] is None:
        co2e_basis = "not computed: the training site gives no fallback_g_per_kwh"
    else:
        co2e_basis = (
            f"site {site} annual factors: location {t['location_g_per_kwh']:g} gCO2e/kWh "
            f"(fallback_g_per_kwh), market {t['market_g_per_kwh']:g} gCO2e/kWh"
            + (" (market_g_per_kwh)" if t["market_from"] == "instrument" else " (no instrument)")
        )
    return Training(
        model=model,
        config_sha256=sha,
        gpu_hours=t["gpu_hours"],
        hardware=hardware,
        site=site,
        tdp_w=t["tdp_w"],
        pue=t["pue"],
        energy_mwh=energy,
        energy_basis=basis,
        co2e_location_t=t["co2e_location_t"],
        co2e_market_t=t["co2e_market_t"],
        co2e_basis=co2e_basis,
        note=t["note"],
    )


def _has_instrument(resolved: Resolved, site: str | None) -> bool:
    """Whether rows of ``site`` were priced market-based on a contractual instrument (an
    unknown site, or a pack the engine refused, has none)."""
    s = resolved.get("sites", {}).get(site or "") or resolved.get("unknown_site")
    return s is not None and s["market_from"] == "instrument"


# --------------------------------------------------------------------------------------------
# assembling


def _figures(row: dict[str, Any], extra: dict[str, Any], no_instrument_kwh: float | None) -> dict[str, Any]:
    energy = _f(row["energy_kwh"])
    requests = _f(row["requests"])
    unresolved = _f(row["unresolved_kwh"])
    values: dict[str, Any] = {
        "requests": row["requests"],
        "records": row["records"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "energy_mwh": _scale(energy, 1e-3),
        "energy_low_mwh": _scale(_f(row["energy_kwh_low"]), 1e-3),
        "energy_high_mwh": _scale(_f(row["energy_kwh_high"]), 1e-3),
    }
    for m in ENERGY_METHODS:
        by_method = extra.get(f"energy_{m}_kwh")
        if by_method is None and energy is not None:
            by_method = 0.0  # the model has energy, none of it by this method
        values[f"energy_{m}_mwh"] = _scale(_f(by_method), 1e-3)
    for m in ENERGY_METHODS:
        values[f"share_{m}_pct"] = _div(_f(values[f"energy_{m}_mwh"]), _scale(energy, 1e-3), 100.0)
    values["flops"] = _f(row["flops"])
    values["gpu_hours"] = _f(row["gpu_hours"])
    values["co2e_location_t"] = _scale(_f(row["co2e_location_kg"]), 1e-3)
    values["co2e_market_t"] = _scale(_f(row["co2e_market_kg"]), 1e-3)
    values["intensity_location_g_per_kwh"] = _div(
        _f(row["co2e_location_kg"]), _f(extra.get("located_kwh")), 1e3
    )
    values["intensity_market_g_per_kwh"] = _div(_f(row["co2e_market_kg"]), _f(extra.get("market_kwh")), 1e3)
    values["fallback_mwh"] = _scale(_f(row["fallback_kwh"]), 1e-3)
    values["fallback_share_pct"] = _div(_f(row["fallback_kwh"]), energy, 100.0)
    values["unresolved_mwh"] = _scale(unresolved, 1e-3)
    values["unresolved_share_pct"] = _div(unresolved, energy, 100.0)
    values["no_instrument_mwh"] = _scale(no_instrument_kwh, 1e-3)
    values["unestimated_requests"] = row["unestimated_requests"]
    values["unestimated_share_pct"] = _div(_f(row["unestimated_requests"]), requests, 100.0)
    values["failed_requests"] = row["failed_requests"]
    values["cached_requests"] = row["cached_requests"]
    est_requests = _f(extra.get("estimated_requests"))
    values["wh_per_request"] = _div(energy, est_requests, 1e3)
    values["wh_per_1000_requests"] = _div(energy, est_requests, 1e6)
    values["wh_per_1000_output_tokens"] = _div(energy, _f(extra.get("estimated_output_tokens")), 1e6)
    values["gco2e_location_per_request"] = _div(
        _f(row["co2e_location_kg"]), _f(extra.get("located_requests")), 1e3
    )
    values["gco2e_market_per_request"] = _div(
        _f(row["co2e_market_kg"]), _f(extra.get("market_requests")), 1e3
    )
    for metric in METRICS:  # counts: whole numbers stay int so they print and compare exactly
        v = values[metric.key]
        if metric.integer and v is not None and float(v).is_integer():
            values[metric.key] = int(v)
        elif metric.integer and v is not None:
            values[metric.key] = float(v)
    return values


def gather(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    month: int | None = None,
    model: str | None = None,
    ledger_name: str = "",
) -> RollupData:
    """All figures of the rollup of a UTC year or month (optionally one model) from an open
    ledger connection."""
    start, end = period_bounds(year, month)
    where, params = _where(year, month, model)
    report = report_from(con, year=year, month=month, by="model", model=model)
    sections = list(report.iter_rows(named=True))
    models = [r["model"] for r in sections]
    extras = _extras(con, where, params)
    hardware = _hardware_by_model(con, where, params)
    configs = configs_from(con, year=year, month=month, model=model)

    texts = {
        sha: text
        for sha, text in con.execute(
            "SELECT config_sha256, text FROM wl_configs WHERE list_contains(?, config_sha256)",
            [configs["config_sha256"].to_list()],
        ).fetchall()
    }
    hardware_used = {hw for hws in hardware.values() for hw in hws}
    methodology: list[ConfigMethodology] = []
    docs: dict[str, Resolved] = {}
    for c in configs.iter_rows(named=True):
        method, doc = parse_config(
            c["config_sha256"],
            texts.get(c["config_sha256"], ""),
            name=c["name"],
            version=c["version"],
            origin=c["origin"],
            records=int(c["records"]),
            energy_mwh=_scale(_f(c["energy_kwh"]), 1e-3),
            models=models,
            hardware_used=hardware_used,
        )
        methodology.append(method)
        docs[c["config_sha256"]] = doc

    # Market-based energy without a contractual instrument: rows whose site (in the config that
    # produced them) has no market_g_per_kwh fall back to the location factor (section 5).
    no_instrument: dict[str | None, float] = {}
    for name, sha, site, kwh in _energy_by_site(con, where, params):
        if kwh is None:
            continue
        if not _has_instrument(docs.get(sha, {}), site):
            no_instrument[name] = no_instrument.get(name, 0.0) + kwh
            no_instrument[None] = no_instrument.get(None, 0.0) + kwh

    per_hardware = _by_hardware(con, where, params)
    figures = tuple(
        ModelFigures(
            r["model"],
            _figures(
                r,
                extras.get(r["model"], {}),
                no_instrument.get(r["model"], 0.0 if r["energy_kwh"] is not None else None),
            ),
            hardware.get(r["model"], ()),
            tuple(
                HardwareFigures(
                    hw,
                    _tdp(methodology, hw),
                    _count(requests),
                    _f(gpu_hours),
                    _scale(_f(kwh), 1e-3),
                    _scale(_f(loc), 1e-3),
                    _scale(_f(mkt), 1e-3),
                )
                for hw, requests, gpu_hours, kwh, loc, mkt in per_hardware.get(r["model"], [])
            ),
        )
        for r in sections
    )
    total_row = report_from(con, year=year, month=month, by="method", model=model)
    totals = {
        col: (None if total_row[col].null_count() == total_row.height else total_row[col].sum())
        for col in total_row.columns
        if col != "method"
    }
    total_energy = totals.get("energy_kwh")
    total = ModelFigures(
        TOTAL,
        _figures(
            totals,
            extras.get(None, {}) if sections else {},
            no_instrument.get(None, 0.0 if total_energy is not None else None),
        ),
        tuple(sorted(hardware_used)),
    )

    timeseries = _timeseries(con, year, month, model, models)
    bounds = con.execute(f"SELECT min(hour), max(hour) FROM wl_hourly WHERE {where}", params).fetchall()[0]
    first, last = bounds
    training: list[Training] = []
    seen: set[str] = set()
    for method in methodology:  # the config behind most of the energy first
        for name, t in sorted(docs[method.sha256].get("training", {}).items()):
            if name in seen or not _training_wanted(name, models):
                continue
            seen.add(name)
            training.append(_training(name, method.sha256, t))
    warnings = []
    if configs.height > 1:
        warnings.append(mixed_config_message(configs))
    if not sections:
        warnings.append(f"the ledger has no rows in {_period_label(year, month)}")
    partial = rows_without_outcomes(con, year=year, month=month, model=model)
    if partial:
        warnings.append(outcome_coverage_message(partial))
    runs = _runs(con, where, params)
    warned = [(r.run_id, r.warnings) for r in runs if r.warnings]
    if warned:
        warnings.append(run_warnings_message(warned))
    return RollupData(
        ledger_name=ledger_name,
        year=year,
        month=month,
        model_filter=model,
        period_label=_period_label(year, month),
        period_start=start.isoformat(),
        period_end=end.isoformat(),
        data_first_hour=_iso(first),
        data_last_hour_end=_iso(None if last is None else last + timedelta(hours=1)),
        models=figures,
        total=total,
        timeseries=timeseries,
        methodology=tuple(methodology),
        runs=runs,
        sources=_sources(con, where, params),
        training=tuple(training),
        warnings=tuple(warnings),
        synthetic=any(is_synthetic_pack(m.description) for m in methodology),
    )


def _count(value: Any) -> float | int:
    count = float(value or 0)
    return int(count) if count.is_integer() else count


def is_synthetic_pack(description: str | None) -> bool:
    """A pack marks its figures as made up by starting its ``[pack] description`` with the word
    SYNTHETIC (as ``wattledger.synthetic``'s pack does). The config text is stored in the
    ledger with the rows, so the marking reaches every rollup of those rows, whoever ingested
    them and however the files were named."""
    return description is not None and re.match(r"\s*SYNTHETIC\b", description) is not None


def _tdp(methodology: list[ConfigMethodology], hardware: str | None) -> float | None:
    """The board power of ``hardware`` in the first pack of the period that gives one (the
    pack behind most of the energy comes first)."""
    for method in methodology:
        for hw in method.hardware:
            if hw.hardware == hardware and hw.tdp_w is not None:
                return hw.tdp_w
    return None


def _training_wanted(name: str, models: list[str]) -> bool:
    """A training entry for a model not served in the period is left out: the document is the
    period's, and a model card row without inference beside it would read as a typo."""
    return name in models


def _period_label(year: int, month: int | None) -> str:
    if month is None:
        return f"{year}"
    return datetime(year, month, 1).strftime("%Y-%m (%B %Y)")


def is_number(value: Any) -> bool:
    """True for a finite int/float (not bool): what renderers format as a figure."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
