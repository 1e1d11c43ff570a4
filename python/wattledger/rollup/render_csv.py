"""The rollup's per-model table as CSV, unrounded, for spreadsheets and filing systems.

One row per model plus the all-models total; the header names are the JSON keys with their
unit in brackets (``energy_mwh [MWh]``) so a column is both machine-stable and self-describing.
Floats are written with ``repr`` (round-trips exactly), absent figures as an empty field.
Model and hardware names come from logs: they are neutralised against formula injection
(``formatting.neutralise_csv_text``); figures never are.
"""

from __future__ import annotations

from wattledger.formatting import csv_text, exact, neutralise_csv_text
from wattledger.rollup.data import METRICS, RollupData


def csv_header() -> list[str]:
    """The fixed header (stable across ledgers, so monthly files concatenate)."""
    return ["period", "model", "hardware", *(f"{m.key} [{m.unit}]" for m in METRICS)]


def _cell(value: object) -> str:
    value = exact(value)
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def to_csv(data: RollupData) -> str:
    """Header, one row per model, then the ``(all models)`` total row."""
    period = data.period_label.split(" ")[0]
    figures = [*data.models, data.total] if data.models else []
    return csv_text(
        [
            csv_header(),
            *(
                [
                    period,
                    neutralise_csv_text(fig.model),
                    neutralise_csv_text(" ".join(fig.hardware)),
                    *(_cell(fig.values.get(m.key)) for m in METRICS),
                ]
                for fig in figures
            ),
        ]
    )
