"""The rollup as a format-neutral document: sections of paragraphs and tables of cells.

Why: markdown and HTML must show the same tables with the same rounding. Building the tables
once here, with each numeric cell remembering its JSON key and exact value, keeps the two in
step and lets tests check every shown number against the JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from wattledger.rollup.data import (
    ENERGY_METHODS,
    METRIC_BY_KEY,
    ConfigMethodology,
    ModelFigures,
    RollupData,
    Training,
    is_number,
)

#: Absent figures (not estimated, or nothing to divide by) print as this, never as 0.
NA = "n/a"


def fmt(value: float | int | None, *, integer: bool = False) -> str:
    """Four significant digits (the Code of Practice asks for at least two); whole counts in
    full with thousands separators; exponent form outside 0.001 .. 1e9 so no digit is faked."""
    if value is None or not is_number(value):
        return NA
    if isinstance(value, int) or (integer and float(value).is_integer()):
        return f"{int(value):,}"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e9 or magnitude < 1e-3:
        return f"{value:.3e}"
    decimals = 3 - math.floor(math.log10(magnitude))
    rounded = round(value, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) != math.floor(math.log10(magnitude)):
        decimals -= 1  # 9.9996 -> 10.00, not 10.000
    return f"{rounded:,.{max(decimals, 0)}f}"


@dataclass(frozen=True)
class Cell:
    """A table cell; numeric cells carry their JSON key and exact value (``model`` names the row
    in the JSON ``models`` list, or the training entry)."""

    text: str
    key: str | None = None
    value: float | int | None = None
    model: str | None = None
    numeric: bool = False
    block: str = "models"  # the JSON block holding the exact value: models, training, timeseries


@dataclass(frozen=True)
class Table:
    """A captioned table; ``kind`` names the JSON block its numbers come from."""

    id: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    kind: str = "models"
    caption: str | None = None


@dataclass(frozen=True)
class Section:
    """A titled part of the document."""

    id: str
    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    bullets: tuple[str, ...] = ()
    chart: str | None = None  # id of an HTML chart placed in this section
    subsections: tuple[Section, ...] = field(default=())


def _metric_cell(fig: ModelFigures, key: str) -> Cell:
    metric = METRIC_BY_KEY[key]
    value = fig.values.get(key)
    return Cell(fmt(value, integer=metric.integer), key, value, fig.model, True)


def metric_table(data: RollupData, table_id: str, keys: tuple[str, ...], caption: str | None = None) -> Table:
    """Rows per model then the all-models total, one column per metric."""
    headers = ("Model", *(METRIC_BY_KEY[k].header for k in keys))
    rows = []
    figures = [*data.models, data.total] if len(data.models) > 1 else list(data.models)
    for fig in figures:
        rows.append((Cell(fig.model), *(_metric_cell(fig, k) for k in keys)))
    return Table(table_id, headers, tuple(rows), "models", caption)


SUMMARY_KEYS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "energy_mwh",
    "energy_low_mwh",
    "energy_high_mwh",
    "co2e_location_t",
    "co2e_market_t",
)
EFFICIENCY_KEYS = (
    "wh_per_request",
    "wh_per_1000_requests",
    "wh_per_1000_output_tokens",
    "gco2e_location_per_request",
    "gco2e_market_per_request",
)
METHOD_KEYS = (
    *(f"energy_{m}_mwh" for m in ENERGY_METHODS),
    *(f"share_{m}_pct" for m in ENERGY_METHODS),
)
EMISSIONS_KEYS = (
    "co2e_location_t",
    "co2e_market_t",
    "intensity_location_g_per_kwh",
    "intensity_market_g_per_kwh",
    "no_instrument_mwh",
)
COVERAGE_KEYS = (
    "fallback_mwh",
    "fallback_share_pct",
    "unresolved_mwh",
    "unresolved_share_pct",
    "unestimated_requests",
    "unestimated_share_pct",
    "failed_requests",
    "cached_requests",
)
COVERAGE_CAPTION = (
    "Coverage: energy on fallback or unresolved grid intensity, requests without an energy estimate; "
    "requests that failed (estimated like any other) and requests served from a cache (zero energy)."
)
COMPUTE_KEYS = ("flops", "gpu_hours", "records")

MODEL_CARD_HEADERS = (
    "Model",
    "Phase",
    "Hardware",
    "GPU hours (GPU-h)",
    "Power (W, board TDP)",
    "Energy (MWh)",
    "Location-based (tCO2e)",
    "Market-based (tCO2e)",
)


def _tdp(data: RollupData, hardware: str) -> float | None:
    for method in data.methodology:
        for hw in method.hardware:
            if hw.hardware == hardware and hw.tdp_w is not None:
                return hw.tdp_w
    return None


def model_card_table(data: RollupData) -> Table:
    """Public model-card style: per model, training (when the config has it) beside inference."""
    training = {t.model: t for t in data.training}
    rows = []
    for fig in data.models:
        t = training.get(fig.model)
        if t is not None:
            rows.append(_training_row(t))
        powers = [_tdp(data, hw) for hw in fig.hardware]
        power = " / ".join(fmt(p) for p in powers) if any(p is not None for p in powers) else NA
        rows.append(
            (
                Cell(fig.model),
                Cell("inference"),
                Cell(", ".join(fig.hardware) or NA),
                _metric_cell(fig, "gpu_hours"),
                Cell(power),
                _metric_cell(fig, "energy_mwh"),
                _metric_cell(fig, "co2e_location_t"),
                _metric_cell(fig, "co2e_market_t"),
            )
        )
    return Table(
        "model-card",
        MODEL_CARD_HEADERS,
        tuple(rows),
        "models",
        "Power is the board power (TDP) of the hardware in the config, as public model cards give it.",
    )


def _training_row(t: Training) -> tuple[Cell, ...]:
    def c(key: str, value: float | None) -> Cell:
        return Cell(fmt(value), key, value, t.model, True, "training")

    return (
        Cell(t.model),
        Cell("training"),
        Cell(t.hardware or NA),
        c("gpu_hours", t.gpu_hours),
        Cell(fmt(t.tdp_w)),
        c("energy_mwh", t.energy_mwh),
        c("co2e_location_t", t.co2e_location_t),
        c("co2e_market_t", t.co2e_market_t),
    )


def timeseries_table(data: RollupData) -> Table:
    ts = data.timeseries
    label = "Month" if ts.granularity == "month" else "Day (UTC)"
    headers = (label, *(f"{m} (MWh)" for m in ts.energy_mwh))
    rows = []
    for i, period in enumerate(ts.periods):
        cells = [Cell(period)]
        for model, values in ts.energy_mwh.items():
            cells.append(Cell(fmt(values[i]), period, values[i], model, True, "timeseries"))
        rows.append(tuple(cells))
    return Table("energy-over-time", headers, tuple(rows), "timeseries")


def methodology_section(m: ConfigMethodology) -> Section:
    """One config's methodology, from its stored TOML text as the engine resolves it."""
    d, u = m.defaults, m.uncertainty
    paragraphs = [
        f"Pack {m.name or '?'} {m.version or '?'}, SHA-256 {m.sha256}, from {m.origin or '?'}; "
        f"{fmt(m.records, integer=True)} log records and {fmt(m.energy_mwh)} MWh of the period.",
    ]
    if m.description:
        paragraphs.append(m.description)
    if m.parse_error:
        paragraphs.append(f"Warning: {m.parse_error}.")
    if d:  # empty when the engine refused the stored text (parse_error says why)
        paragraphs.append(
            "Defaults where a site is silent: "
            f"PUE {fmt(d['pue'])}, host overhead {fmt(d['host_overhead'])}, idle overhead "
            f"{fmt(d['idle_overhead'])} (fractions of accelerator energy), utilization "
            f"{fmt(d['utilization'])}, concurrency {fmt(d['concurrency'])}, MFU {fmt(d['mfu'])}."
        )
    if u:
        paragraphs.append(
            "Uncertainty (relative half-width of the low-high range, per method): "
            + ", ".join(f"{k.replace('_', ' ')} ±{fmt(v * 100)} %" for k, v in u.items())
            + "; a coefficient entry's own uncertainty overrides the tokens value."
        )
    paragraphs.append(
        "Energy: the first method that applies per request wins: measured accelerator energy, "
        "token coefficients, GPU time x power, then FLOPs / (peak x MFU); facility energy = "
        "accelerator energy x (1 + host + idle overhead) x PUE."
    )
    fallback_sites = [s for s in m.sites if s.fallback_g_per_kwh is not None]
    paragraphs.append(
        "Fallback rules: the hourly grid value of the zone; else the mean of that zone's values "
        "in the same UTC month; else the site's fallback factor"
        + (
            " (" + ", ".join(f"{s.site} {fmt(s.fallback_g_per_kwh)} gCO2e/kWh" for s in fallback_sites) + ")"
            if fallback_sites
            else " (no site in this pack gives one)"
        )
        + "; else unresolved: no emissions, the energy is reported as unresolved. Market-based uses "
        "the site's contractual factor, else the location-based factor (no instrument)."
    )
    tables = []
    if m.sites:
        tables.append(
            Table(
                f"sites-{m.sha256[:12]}",
                (
                    "Site",
                    "Zone",
                    "PUE (ratio)",
                    "Host overhead (fraction)",
                    "Idle overhead (fraction)",
                    "Market factor (gCO2e/kWh)",
                    "Fallback factor (gCO2e/kWh)",
                    "Hardware",
                    "Source",
                ),
                tuple(
                    (
                        Cell(s.site),
                        Cell(s.zone or NA),
                        Cell(fmt(s.pue)),
                        Cell(fmt(s.host_overhead)),
                        Cell(fmt(s.idle_overhead)),
                        Cell(
                            fmt(s.market_g_per_kwh) if s.market_g_per_kwh is not None else "none (location)"
                        ),
                        Cell(fmt(s.fallback_g_per_kwh)),
                        Cell(s.hardware or NA),
                        Cell(s.source or ""),
                    )
                    for s in m.sites
                ),
                "config",
            )
        )
    else:
        paragraphs.append("The pack defines no [sites]: every row used the defaults above.")
    if m.hardware:
        tables.append(
            Table(
                f"hardware-{m.sha256[:12]}",
                ("Hardware", "Board power (W)", "Idle (W)", "Peak dense BF16 (TFLOP/s)", "Source"),
                tuple(
                    (
                        Cell(h.hardware),
                        Cell(fmt(h.tdp_w)),
                        Cell(fmt(h.idle_w)),
                        Cell(fmt(h.peak_tflops)),
                        Cell(h.source or ""),
                    )
                    for h in m.hardware
                ),
                "config",
            )
        )
    if m.coefficients or m.model_sources:
        rows = [
            (
                Cell(c.model),
                Cell(c.hardware),
                Cell(fmt(c.wh_per_1k_input)),
                Cell(fmt(c.wh_per_1k_output)),
                Cell(fmt(c.uncertainty) if c.uncertainty is not None else f"{fmt(u['tokens'])} (default)"),
                Cell(c.source or m.model_sources.get(c.model, "")),
            )
            for c in m.coefficients
        ]
        covered = {c.model for c in m.coefficients}
        rows += [
            (Cell(model), Cell("(no coefficients)"), Cell(NA), Cell(NA), Cell(NA), Cell(src))
            for model, src in sorted(m.model_sources.items())
            if model not in covered
        ]
        tables.append(
            Table(
                f"coefficients-{m.sha256[:12]}",
                (
                    "Model",
                    "Hardware",
                    "Input (Wh/1000 tokens)",
                    "Output (Wh/1000 tokens)",
                    "Uncertainty (fraction)",
                    "Source",
                ),
                tuple(rows),
                "config",
            )
        )
    return Section(
        f"config-{m.sha256[:12]}",
        f"Config {m.name or '?'} {m.version or '?'} ({m.sha256[:12]})",
        tuple(paragraphs),
        tuple(tables),
    )


def build(data: RollupData) -> tuple[Section, ...]:
    """The document's sections, in reading order."""
    scope = f"model {data.model_filter}" if data.model_filter else "all models"
    intro = (
        f"Inference energy and emissions of {scope} in {data.period_label}, UTC "
        f"[{data.period_start} .. {data.period_end}), from ledger {data.ledger_name}. "
        "Energy is facility energy (PUE and overheads included); emissions follow GHG Protocol "
        "Scope 2, location-based and market-based side by side. Figures are rounded to 4 "
        "significant digits; the JSON and CSV carry them unrounded.",
    )
    sections: list[Section] = [
        Section("overview", "Overview", intro, bullets=tuple(f"Warning: {w}" for w in data.warnings)),
    ]
    if not data.models:
        return (*sections, provenance_section(data))
    sections += [
        Section(
            "summary",
            "Energy and emissions per model",
            ("Energy low/high apply each method's uncertainty (see Methodology).",),
            (metric_table(data, "summary", SUMMARY_KEYS),),
        ),
        Section(
            "efficiency",
            "Efficiency",
            (
                "Per request and per token, like a car's fuel use per km beside its total fuel. "
                "Energy figures divide by the requests and output tokens that have an energy "
                "estimate; emissions per request by those with resolved emissions. Wh per 1000 "
                "requests is the AI Energy Score's unit.",
            ),
            (metric_table(data, "efficiency", EFFICIENCY_KEYS),),
        ),
        Section(
            "timeseries",
            "Energy per month" if data.timeseries.granularity == "month" else "Energy per day",
            (),
            (timeseries_table(data),),
            chart="chart-energy-time",
        ),
        Section(
            "methods",
            "Energy by estimation method",
            ("Measured is accelerator energy read from the hardware; the rest is estimated.",),
            (metric_table(data, "methods", METHOD_KEYS),),
            chart="chart-energy-method",
        ),
        Section(
            "emissions",
            "Emissions (GHG Protocol Scope 2) and coverage",
            (
                "Average intensity = emissions / energy with resolved intensity. 'Market: no "
                "instrument' is energy whose market-based figure uses the location-based factor "
                "because its site has no contractual factor.",
            ),
            (
                metric_table(data, "emissions", EMISSIONS_KEYS),
                metric_table(
                    data,
                    "coverage",
                    COVERAGE_KEYS,
                    COVERAGE_CAPTION,
                ),
            ),
            chart="chart-emissions",
            # The caveats the runs behind these numbers recorded (unresolved or fallback energy,
            # grid quality, names matched ignoring case...), so the filing carries them.
            bullets=tuple(f"Run {r.run_id} warned: {w}" for r in data.runs for w in r.warnings),
        ),
        Section(
            "compute",
            "Computational resources (AI Act Annex XI 1.2(d))",
            ("Inference compute is 2 x active parameters x tokens, where the model's size is known.",),
            (metric_table(data, "compute", COMPUTE_KEYS),),
        ),
        Section(
            "model-card",
            "Model card: training and inference",
            (
                "Training figures come from the config's [training] table"
                if data.training
                else "The config has no [training] table: inference only",
            ),
            (model_card_table(data),),
            bullets=tuple(
                f"{t.model} training energy: {t.energy_basis}; emissions: {t.co2e_basis}"
                + (f". Note: {t.note}" if t.note else "")
                for t in data.training
            ),
        ),
        Section(
            "methodology",
            "Methodology",
            ("Generated from the config text stored in the ledger with the numbers.",),
            subsections=tuple(methodology_section(m) for m in data.methodology),
        ),
        provenance_section(data),
    ]
    return tuple(sections)


def provenance_section(data: RollupData) -> Section:
    """Runs and files behind the numbers, with hashes, so each figure can be traced back."""
    covered = (
        f"Data in the period spans [{data.data_first_hour} .. {data.data_last_hour_end}) UTC."
        if data.data_first_hour
        else "No data in the period."
    )
    runs = Table(
        "runs",
        (
            "Run",
            "Started (UTC)",
            "Command",
            "wattledger version",
            "Config SHA-256",
            "Status",
            "Records in period (count)",
        ),
        tuple(
            (
                Cell(r.run_id),
                Cell(r.started_at),
                Cell(r.command or ""),
                Cell(r.wattledger_version or ""),
                Cell(r.config_sha256[:12]),
                Cell(r.status),
                Cell(fmt(r.records_in_period)),
            )
            for r in data.runs
        ),
        "provenance",
    )
    sources = Table(
        "sources",
        (
            "File",
            "Content hash",
            "Size (bytes)",
            "Run",
            "Config",
            "Records (count)",
            "Rejected (count)",
            "Records in period (count)",
        ),
        tuple(
            (
                Cell(s.path),
                # BLAKE3 (`b3sum`); SHA-256 (`sha256sum`) for sources of ledger schema < 4.
                Cell(f"blake3 {s.blake3}" if s.blake3 else f"sha256 {s.sha256}"),
                Cell(fmt(s.size_bytes)),
                Cell(s.run_id),
                Cell(s.config_sha256[:12]),
                Cell(fmt(s.records)),
                Cell(fmt(s.rejected)),
                Cell(fmt(s.records_in_period)),
            )
            for s in data.sources
        ),
        "provenance",
    )
    return Section(
        "provenance",
        "Provenance",
        (covered,),
        (runs, sources) if data.runs else (),
        bullets=tuple(f"Warning: {w}" for w in data.warnings if "mixes" in w),
    )
