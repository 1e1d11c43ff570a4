"""Units and number notation of the rollup documents (markdown, HTML, printed PDF).

Why: the ledger's figures span nine orders of magnitude (a day of one small model is a few Wh,
a fleet's year is MWh), and a document that prints everything in MWh shows columns of
``0.000957`` beside ``6.540e-04``. Each document therefore picks ONE energy unit and ONE
emissions unit for its magnitude and uses them in every table, chart and sentence; the JSON and
CSV keep their stable MWh/tCO2e keys, and the Code of Practice block keeps MWh because the
Model Documentation Form asks for it.

Notation: a figure is written in fixed notation with 4 significant digits; scientific notation
is kept for magnitudes of 1e9 and above (FLOPs), where fixed notation would print zeros that
were never measured. A column takes one notation for all its cells (:func:`column_formatter`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

#: Absent figures (not estimated, or nothing to divide by) print as this, never as 0.
NA = "n/a"

#: From this magnitude on, fixed notation would invent trailing zeros: scientific instead.
SCIENTIFIC_FROM = 1e9

#: A unit is chosen so that the reference figure (the period's total) stays below this in it:
#: at most four integer digits in the headline figure, and small rows as large as possible.
UNIT_CEILING = 10_000.0


@dataclass(frozen=True)
class Unit:
    """A display unit: ``symbol`` and how many of the JSON unit one of it is (``per_json``)."""

    symbol: str
    per_json: float  # 1 kWh = 1e-3 MWh

    def of(self, json_value: float) -> float:
        """A value in the JSON unit (MWh or tCO2e), in this unit."""
        return json_value / self.per_json


#: Energy units, smallest first; the JSON unit is MWh.
ENERGY_UNITS: tuple[Unit, ...] = (Unit("Wh", 1e-6), Unit("kWh", 1e-3), Unit("MWh", 1.0), Unit("GWh", 1e3))
#: Emissions units, smallest first; the JSON unit is tCO2e.
CO2E_UNITS: tuple[Unit, ...] = (Unit("gCO2e", 1e-6), Unit("kgCO2e", 1e-3), Unit("tCO2e", 1.0))

MWH = ENERGY_UNITS[2]
TCO2E = CO2E_UNITS[2]


def choose_unit(values: Iterable[float | int | None], units: Sequence[Unit]) -> Unit:
    """The smallest unit in which the largest magnitude of ``values`` is below
    :data:`UNIT_CEILING` (the largest unit when none is). No figure at all (or only zeros):
    the JSON unit, so an empty document reads as the form does."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))]
    reference = max(finite, default=0.0)
    if reference == 0.0:
        return next(u for u in units if u.per_json == 1.0)
    for unit in units:
        if unit.of(reference) < UNIT_CEILING:
            return unit
    return units[-1]


def _fixed(value: float, digits: int) -> str:
    magnitude = abs(value)
    decimals = digits - 1 - math.floor(math.log10(magnitude))
    rounded = round(value, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) != math.floor(math.log10(magnitude)):
        decimals -= 1  # 9.9996 -> 10.00, not 10.000
    return f"{rounded:,.{max(decimals, 0)}f}"


def fixed(value: float) -> str:
    """4 significant digits in fixed notation (``0.0003309``, ``312.5``, ``1,272``)."""
    if value == 0:
        return "0"
    return _fixed(value, 4)


def scientific(value: float) -> str:
    """4 significant digits in scientific notation (``1.234e+18``); zero as ``0``."""
    return "0" if value == 0 else f"{value:.3e}"


def needs_scientific(value: float | int | None) -> bool:
    """Whether a figure is too large for fixed notation without invented zeros."""
    return value is not None and math.isfinite(float(value)) and abs(float(value)) >= SCIENTIFIC_FROM


def column_formatter(values: Iterable[float | int | None]) -> Callable[[float], str]:
    """One notation for a whole column: scientific when any of its figures needs it."""
    return scientific if any(needs_scientific(v) for v in values) else fixed


def notation(text: str) -> str | None:
    """``"scientific"``, ``"fixed"`` or ``None`` (n/a, zero, text): how a cell is written."""
    t = text.strip().replace(",", "")
    if t in ("", NA, "0", "-0"):
        return None
    try:
        float(t)
    except ValueError:
        return None
    return "scientific" if "e" in t.lower() else "fixed"


def tick_step(top: float, most: int = 6) -> float:
    """The smallest round step (1, 2 or 5 x 10^k) that covers [0, ``top``] in at most ``most``
    intervals: the axis of a chart reads 0, 5, 10, 15, never 0.0125."""
    if top <= 0 or not math.isfinite(top):
        return 1.0
    exp = math.floor(math.log10(top / most))
    while True:
        for m in (1, 2, 5):
            step = m * 10.0**exp
            if step * most >= top * (1 - 1e-12):
                return step
        exp += 1


def tick_label(value: float, step: float) -> str:
    """A tick as the step's decimals give it, the same for every tick of an axis
    (``0.0, 0.5, 1.0`` or ``0, 5, 10``), with thousands separators."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{value:,.{decimals}f}"
