"""The rollup as a format-neutral document: sections of paragraphs and tables of cells.

Why: markdown and HTML must show the same tables with the same rounding. Building the tables
once here, with each numeric cell remembering its JSON key and exact value, keeps the two in
step and lets tests check every shown number against the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from wattledger.rollup.data import (
    ENERGY_METHODS,
    METRIC_BY_KEY,
    ConfigMethodology,
    HardwareFigures,
    RollupData,
    is_number,
)
from wattledger.rollup.units import (
    CO2E_UNITS,
    ENERGY_UNITS,
    MWH,
    NA,
    Unit,
    choose_unit,
    column_formatter,
    fixed,
    needs_scientific,
    scientific,
)

#: Said in the title, at the top and on every printed page of a document made from rows whose
#: pack declares itself synthetic (:func:`wattledger.rollup.data.is_synthetic_pack`).
SYNTHETIC_NOTICE = (
    "SYNTHETIC DATA: the methodology pack behind these figures declares them synthetic; "
    "they are not measurements of any real fleet."
)
SYNTHETIC_MARK = "SYNTHETIC"


def title(data: RollupData) -> str:
    """The document title, SYNTHETIC first when the data is."""
    scope = f" — {data.model_filter}" if data.model_filter else ""
    mark = f"{SYNTHETIC_MARK}: " if data.synthetic else ""
    return f"{mark}Inference energy and emissions, {data.period_label}{scope}"


def fmt(value: float | int | None, *, integer: bool = False) -> str:
    """Four significant digits (the Code of Practice asks for at least two) in fixed notation;
    whole counts in full with thousands separators; scientific notation from 1e9 on, where
    fixed notation would print zeros nobody measured (see :mod:`wattledger.rollup.units`)."""
    if value is None or not is_number(value):
        return NA
    if isinstance(value, int) or (integer and float(value).is_integer()):
        return f"{int(value):,}"
    return scientific(value) if needs_scientific(value) else fixed(value)


@dataclass(frozen=True)
class DocUnits:
    """The energy and emissions units of one document, chosen for its magnitude."""

    energy: Unit
    co2e: Unit

    def for_metric(self, metric_unit: str) -> Unit | None:
        """The display unit replacing a JSON unit (MWh, tCO2e); None for every other unit."""
        return {"MWh": self.energy, "tCO2e": self.co2e}.get(metric_unit)


def doc_units(data: RollupData) -> DocUnits:
    """Units for the period's totals: at most four integer digits in the headline figures."""
    t = data.total.values
    return DocUnits(
        choose_unit([t.get("energy_mwh")], ENERGY_UNITS),
        choose_unit([t.get("co2e_location_t"), t.get("co2e_market_t")], CO2E_UNITS),
    )


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
    unit: str | None = None  # the shown unit when it is not the JSON key's (kWh for energy_mwh)
    hardware: str | None = None  # the models[*].by_hardware entry (block "hardware")


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


def _column(values: Sequence[float | int | None], *, integer: bool, unit: Unit | None) -> list[str]:
    """One column's texts from its JSON values, in the display ``unit`` and ONE notation."""
    shown = [v if unit is None or v is None or not is_number(v) else unit.of(float(v)) for v in values]
    notation = column_formatter(shown)
    out = []
    for v in shown:
        if v is None or not is_number(v):
            out.append(NA)
        elif isinstance(v, int) or (integer and float(v).is_integer()):
            out.append(f"{int(v):,}")
        else:
            out.append(notation(float(v)))
    return out


def metric_header(key: str, units: DocUnits) -> str:
    """The header people read, in the document's unit for energy and emissions."""
    metric = METRIC_BY_KEY[key]
    unit = units.for_metric(metric.unit)
    return f"{metric.label} ({unit.symbol if unit else metric.unit})"


def metric_table(
    data: RollupData, units: DocUnits, table_id: str, keys: tuple[str, ...], caption: str | None = None
) -> Table:
    """Rows per model then the all-models total, one column per metric."""
    headers = ("Model", *(metric_header(k, units) for k in keys))
    figures = [*data.models, data.total] if len(data.models) > 1 else list(data.models)
    columns = []
    for key in keys:
        metric = METRIC_BY_KEY[key]
        unit = units.for_metric(metric.unit)
        values = [f.values.get(key) for f in figures]
        texts = _column(values, integer=metric.integer, unit=unit)
        columns.append(
            [
                Cell(text, key, value, f.model, True, unit=unit.symbol if unit else None)
                for text, value, f in zip(texts, values, figures, strict=True)
            ]
        )
    rows = tuple((Cell(f.model), *(col[i] for col in columns)) for i, f in enumerate(figures))
    return Table(table_id, headers, rows, "models", caption)


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


def model_card_units(data: RollupData, units: DocUnits) -> DocUnits:
    """The model card's units: the document's, unless training figures (often orders of
    magnitude above a period of inference) need larger ones to stay readable."""
    if not data.training:
        return units
    t = data.total.values
    return DocUnits(
        choose_unit([t.get("energy_mwh"), *(x.energy_mwh for x in data.training)], ENERGY_UNITS),
        choose_unit(
            [t.get("co2e_location_t"), t.get("co2e_market_t"), *(x.co2e_location_t for x in data.training)],
            CO2E_UNITS,
        ),
    )


ALL_HARDWARE = "(all hardware)"
#: The model card's figures per row, by JSON key, and the metric whose unit they are in.
CARD_KEYS = ("gpu_hours", "energy_mwh", "co2e_location_t", "co2e_market_t")


@dataclass(frozen=True)
class _CardRow:
    """A model card row: its label cells, its figures and where the JSON holds them."""

    label: tuple[Cell, ...]
    values: dict[str, float | int | None]
    model: str
    block: str  # models, training or hardware (models[*].by_hardware)
    hardware: str | None = None


def model_card_table(data: RollupData, units: DocUnits, document: DocUnits | None = None) -> Table:
    """Public model-card style: per model, training (when the config has it) and inference,
    one row per hardware with that hardware's board power beside it (a model served on several
    accelerators gets a row for each and one for all of them)."""
    training = {t.model: t for t in data.training}
    raw: list[_CardRow] = []
    for fig in data.models:
        t = training.get(fig.model)
        if t is not None:
            label = (
                Cell(t.model),
                Cell("training"),
                Cell(t.hardware or NA),
                _power(t.tdp_w, t.model, "training"),
            )
            raw.append(_CardRow(label, {k: getattr(t, k) for k in CARD_KEYS}, t.model, "training"))
        raw += [_hardware_row(fig.model, hw) for hw in fig.by_hardware]
        if len(fig.by_hardware) != 1:  # several accelerators (or none recorded): the model's sum
            label = (Cell(fig.model), Cell("inference"), Cell(ALL_HARDWARE), Cell(""))
            raw.append(_CardRow(label, {k: fig.values.get(k) for k in CARD_KEYS}, fig.model, "models"))
    headers = (
        "Model",
        "Phase",
        "Hardware",
        "Power (W, board TDP)",
        *(metric_header(k, units) for k in CARD_KEYS),
    )
    columns = []
    for key in CARD_KEYS:
        unit = units.for_metric(METRIC_BY_KEY[key].unit)
        texts = _column([r.values[key] for r in raw], integer=False, unit=unit)
        columns.append(
            [
                Cell(
                    text,
                    key,
                    r.values[key],
                    r.model,
                    True,
                    r.block,
                    unit.symbol if unit else None,
                    r.hardware,
                )
                for text, r in zip(texts, raw, strict=True)
            ]
        )
    rows = tuple((*r.label, *(col[i] for col in columns)) for i, r in enumerate(raw))
    return Table(
        "model-card",
        headers,
        rows,
        "models",
        "One row per model, phase and hardware: power is the board power (TDP) of that hardware "
        "in the config, as public model cards give it."
        + (
            f" Energy in {units.energy.symbol} and emissions in {units.co2e.symbol} here: the "
            "training figures set this table's units."
            if document is not None and units != document
            else ""
        ),
    )


def _power(tdp_w: float | None, model: str, block: str, hardware: str | None = None) -> Cell:
    """Board power in whole watts as data sheets give it (``700``, ``1,000``), beside its hardware."""
    text = NA if tdp_w is None else (f"{tdp_w:,.0f}" if float(tdp_w).is_integer() else fmt(tdp_w))
    return Cell(text, "tdp_w", tdp_w, model, True, block, None, hardware)


def _hardware_row(model: str, hw: HardwareFigures) -> _CardRow:
    name = hw.hardware if hw.hardware is not None else "(not recorded)"
    label = (Cell(model), Cell("inference"), Cell(name), _power(hw.tdp_w, model, "hardware", name))
    return _CardRow(label, {k: getattr(hw, k) for k in CARD_KEYS}, model, "hardware", name)


def code_of_practice_table(data: RollupData) -> Table:
    """The Model Documentation Form's energy and compute items, in the form's own units (energy
    in MWh, compute in FLOP), whatever units the rest of the document uses."""
    training = {t.model: t for t in data.training}
    raw: list[tuple[str, str, float | None, str, float | None, str]] = []
    for fig in data.models:
        t = training.get(fig.model)
        if t is not None:
            raw.append((fig.model, "training", t.energy_mwh, t.energy_basis, None, "training"))
        raw.append(
            (
                fig.model,
                "inference",
                _as_float(fig.values.get("energy_mwh")),
                energy_basis(fig.values.get("share_measured_pct")),
                _as_float(fig.values.get("flops")),
                "models",
            )
        )
    energy = _column([r[2] for r in raw], integer=False, unit=MWH)
    flops = _column([r[4] for r in raw], integer=False, unit=None)
    rows = tuple(
        (
            Cell(model),
            Cell(phase),
            Cell(e_text, "energy_mwh", e, model, True, block, MWH.symbol),
            Cell(basis),
            # training compute is not in the form's inference block: shown n/a, keyed to nothing
            Cell(f_text, "flops" if block == "models" else None, f, model, True, block),
        )
        for (model, phase, e, basis, f, block), e_text, f_text in zip(raw, energy, flops, strict=True)
    )
    return Table(
        "code-of-practice",
        ("Model", "Phase", "Energy (MWh)", "Energy basis", "Compute (FLOP)"),
        rows,
        "models",
        "GPAI Code of Practice, Model Documentation Form: energy in MWh and compute in FLOP, as the "
        "form asks (the JSON rollup carries the same block, unrounded).",
    )


def _as_float(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def energy_basis(share_measured_pct: float | int | None) -> str:
    """Measured, estimated or partly measured, as the form asks."""
    if share_measured_pct is None:
        return "unknown: no energy estimate"
    if share_measured_pct >= 100.0:
        return "measured"
    if share_measured_pct <= 0.0:
        return "estimated"
    return f"partly measured ({fmt(share_measured_pct)} % of energy measured, the rest estimated)"


def timeseries_table(data: RollupData, units: DocUnits) -> Table:
    ts = data.timeseries
    label = "Month" if ts.granularity == "month" else "Day (UTC)"
    headers = (label, *(f"{m} ({units.energy.symbol})" for m in ts.energy_mwh))
    columns = []
    for model, values in ts.energy_mwh.items():
        texts = _column(values, integer=False, unit=units.energy)
        columns.append(
            [
                Cell(text, period, v, model, True, "timeseries", units.energy.symbol)
                for text, period, v in zip(texts, ts.periods, values, strict=True)
            ]
        )
    rows = tuple((Cell(p), *(col[i] for col in columns)) for i, p in enumerate(ts.periods))
    return Table("energy-over-time", headers, rows, "timeseries")


def methodology_section(m: ConfigMethodology, units: DocUnits) -> Section:
    """One config's methodology, from its stored TOML text as the engine resolves it."""
    d, u = m.defaults, m.uncertainty
    paragraphs = [
        f"Pack {m.name or '?'} {m.version or '?'}, SHA-256 {m.sha256}, from {m.origin or '?'}; "
        f"{fmt(m.records, integer=True)} log records and "
        f"{fmt(None if m.energy_mwh is None else units.energy.of(m.energy_mwh))} {units.energy.symbol} "
        "of the period.",
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
    if m.calibrations:
        paragraphs.append(_calibration_text(m))
        tables.append(_calibration_table(m))
    return Section(
        f"config-{m.sha256[:12]}",
        f"Config {m.name or '?'} {m.version or '?'} ({m.sha256[:12]})",
        tuple(paragraphs),
        tuple(tables),
    )


def _signed_pct(x: float | None) -> str:
    return NA if x is None else f"{x * 100:+.1f} %"


def _pct(x: float | None) -> str:
    return NA if x is None else f"{x * 100:.1f} %"


def _calibration_text(m: ConfigMethodology) -> str:
    fits = sorted({c.fit for c in m.calibrations if c.fit})
    text = (
        "Calibrated entries were fitted by wattledger calibrate to the fleet's own measured requests "
        "(records carrying energy_j) and judged on requests held out of the fit: the held-out total "
        "error is the estimate's total over the held-out requests against their measured total; the "
        "median request error is the median of |estimate / measured - 1|; the band is the half-width "
        "that held 90 % of held-out requests, and its coverage is checked on held-out requests it was "
        "not built from. Fits: " + "; ".join(fits) + "."
    )
    if any(c.model is None for c in m.calibrations):
        text += (
            " A hardware's calibrated utilization applies to gpu_time estimates at sites that set no "
            "utilization of their own (a site's own value wins; else the hardware's; else the defaults')."
        )
    return text


def _calibration_table(m: ConfigMethodology) -> Table:
    rows = tuple(
        (
            Cell(c.model or "(gpu_time)"),
            Cell(c.hardware),
            Cell(c.value),
            Cell(f"{c.records} / {c.held_out}"),
            Cell(f"{c.first_ts} to {c.last_ts}"),
            Cell(_signed_pct(c.holdout_total_error)),
            Cell(_pct(c.holdout_median_error)),
            Cell(NA if c.uncertainty is None else f"±{fmt(c.uncertainty * 100)} %"),
            Cell(_pct(c.band_coverage)),
            Cell(c.date),
            Cell("; ".join(c.inputs) + (f" ({c.note})" if c.note else "")),
        )
        for c in m.calibrations
    )
    return Table(
        f"calibration-{m.sha256[:12]}",
        (
            "Model",
            "Hardware",
            "Calibrated value",
            "Records fitted / held out",
            "Measured (UTC)",
            "Held-out total error",
            "Median request error",
            "Band (90 %)",
            "Band coverage (held out)",
            "Calibrated on",
            "Inputs",
        ),
        rows,
        "config",
    )


def build(data: RollupData) -> tuple[Section, ...]:
    """The document's sections, in reading order."""
    units = doc_units(data)
    scope = f"model {data.model_filter}" if data.model_filter else "all models"
    intro = (
        f"Inference energy and emissions of {scope} in {data.period_label}, UTC "
        f"[{data.period_start} .. {data.period_end}), from ledger {data.ledger_name}. "
        "Energy is facility energy (PUE and overheads included); emissions follow GHG Protocol "
        "Scope 2, location-based and market-based side by side. Figures are rounded to 4 "
        "significant digits; the JSON and CSV carry them unrounded, in MWh and tCO2e.",
        f"Energy is shown in {units.energy.symbol} and emissions in {units.co2e.symbol}, chosen "
        "for the magnitude of this period; the Code of Practice block keeps MWh as the form asks.",
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
            (metric_table(data, units, "summary", SUMMARY_KEYS),),
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
            (metric_table(data, units, "efficiency", EFFICIENCY_KEYS),),
        ),
        Section(
            "timeseries",
            "Energy per month" if data.timeseries.granularity == "month" else "Energy per day",
            (),
            (timeseries_table(data, units),),
            chart="chart-energy-time",
        ),
        Section(
            "methods",
            "Energy by estimation method",
            (
                "Measured is accelerator energy read from the hardware per request; attributed is "
                "a node's metered energy shared over the requests it served (by GPU-seconds, else "
                "output tokens); the rest is estimated.",
            ),
            (metric_table(data, units, "methods", METHOD_KEYS),),
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
                metric_table(data, units, "emissions", EMISSIONS_KEYS),
                metric_table(
                    data,
                    units,
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
            (metric_table(data, units, "compute", COMPUTE_KEYS),),
        ),
        Section(
            "model-card",
            "Model card: training and inference",
            (
                "Training figures come from the config's [training] table"
                if data.training
                else "The config has no [training] table: inference only",
            ),
            (model_card_table(data, model_card_units(data, units), units),),
            bullets=tuple(
                f"{t.model} training energy: {t.energy_basis}; emissions: {t.co2e_basis}"
                + (f". Note: {t.note}" if t.note else "")
                for t in data.training
            ),
        ),
        Section(
            "code-of-practice",
            "GPAI Code of Practice: Model Documentation Form",
            (
                "Energy per model in MWh, measured or estimated, and inference compute in FLOP, "
                "as the Model Documentation Form asks; the methodology follows.",
            ),
            (code_of_practice_table(data),),
        ),
        Section(
            "methodology",
            "Methodology",
            ("Generated from the config text stored in the ledger with the numbers.",),
            subsections=tuple(methodology_section(m, units) for m in data.methodology),
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
