"""The rollup as JSON: every number of the document, unrounded, under stable keys.

Besides the per-model figures it carries ``model_documentation_form``, shaped after the
energy and compute items of the GPAI Code of Practice's Model Documentation Form (energy in
MWh to at least 2 significant figures, measured or estimated; inference compute in FLOPs
with the task and hardware described; a methodology text), so a filing tool can take the
block as it is.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from wattledger.formatting import dumps_json, exact
from wattledger.rollup.data import METRICS, ConfigMethodology, ModelFigures, RollupData, Training
from wattledger.rollup.document import energy_basis, fmt

SCHEMA = "wattledger.rollup/1"


def _figures(fig: ModelFigures) -> dict[str, Any]:
    return {
        "model": fig.model,
        "hardware": list(fig.hardware),
        # Per accelerator (the model card's rows); the total row has none.
        "by_hardware": [{k: exact(v) for k, v in asdict(h).items()} for h in fig.by_hardware],
        **{m.key: exact(fig.values.get(m.key)) for m in METRICS},
    }


def methodology_text(data: RollupData) -> str:
    """One paragraph a reader of the form can follow without the ledger."""
    packs = "; ".join(f"{m.name or '?'} {m.version or '?'} (SHA-256 {m.sha256})" for m in data.methodology)
    return (
        "Inference energy summed from fleet request logs, per request by the first method that "
        "applies: measured accelerator energy, token coefficients, GPU time x power, or FLOPs / "
        "(peak x MFU); facility energy = accelerator energy x (1 + host + idle overhead) x PUE of "
        "the site; summed per UTC hour and model. Emissions: hourly grid intensity of the zone "
        "(location-based) and the site's contractual factor where present (market-based), GHG "
        f"Protocol Scope 2. Methodology pack(s): {packs or 'none'}."
    )


def _training(t: Training) -> dict[str, Any]:
    return {k: exact(v) for k, v in asdict(t).items()}


def _form(data: RollupData) -> list[dict[str, Any]]:
    training = {t.model: t for t in data.training}
    text = methodology_text(data)
    out = []
    for fig in data.models:
        energy = fig.values.get("energy_mwh")
        t = training.get(fig.model)
        out.append(
            {
                "model": fig.model,
                "inference": {
                    "period": data.period_label,
                    "energy_mwh": exact(energy),
                    "energy_mwh_reported": fmt(energy),  # MWh, 4 significant figures (form: >= 2), fixed
                    "energy_basis": energy_basis(fig.values.get("share_measured_pct")),
                    "compute_flops": exact(fig.values.get("flops")),
                    "compute_description": (
                        "production inference traffic served in the period (fleet request logs), "
                        f"{fmt(fig.values.get('requests'), integer=True)} requests on "
                        f"{', '.join(fig.hardware) or 'unrecorded hardware'}"
                    ),
                },
                "training": None
                if t is None
                else {
                    "energy_mwh": exact(t.energy_mwh),
                    "energy_mwh_reported": fmt(t.energy_mwh),
                    "energy_basis": t.energy_basis,
                    "gpu_hours": exact(t.gpu_hours),
                    "hardware": t.hardware,
                    "compute_flops": None,
                },
                "methodology": text,
            }
        )
    return out


def to_dict(data: RollupData) -> dict[str, Any]:
    """The JSON document as plain Python objects."""
    return {
        "schema": SCHEMA,
        "ledger": data.ledger_name,
        "period": {
            "year": data.year,
            "month": data.month,
            "label": data.period_label,
            "start": data.period_start,
            "end": data.period_end,
            "data_first_hour": data.data_first_hour,
            "data_last_hour_end": data.data_last_hour_end,
        },
        "model_filter": data.model_filter,
        # True when a pack behind the period's rows declares its figures synthetic.
        "synthetic": data.synthetic,
        "units": {m.key: m.unit for m in METRICS},
        "models": [_figures(f) for f in data.models],
        "total": _figures(data.total),
        "energy_over_time": {
            "granularity": data.timeseries.granularity,
            "periods": list(data.timeseries.periods),
            "energy_mwh": {k: [exact(v) for v in vals] for k, vals in data.timeseries.energy_mwh.items()},
        },
        "training": [_training(t) for t in data.training],
        "model_documentation_form": _form(data),
        "methodology": [_methodology(m) for m in data.methodology],
        "provenance": {
            "runs": [asdict(r) for r in data.runs],
            "sources": [asdict(s) for s in data.sources],
        },
        "warnings": list(data.warnings),
    }


def _methodology(m: ConfigMethodology) -> dict[str, Any]:
    # `calibrations` only where a pack has calibrated entries: documents of other packs keep
    # their JSON as it was.
    return {k: v for k, v in asdict(m).items() if k != "calibrations" or v}


def to_json(data: RollupData) -> str:
    """Indented, key order fixed, floats exact; a non-finite number is refused, never written."""
    return dumps_json(to_dict(data), indent=2, ensure_ascii=False) + "\n"
