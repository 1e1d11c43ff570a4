"""Coverage checks of an ingest run: shares of energy, requests and records that rest on
something other than the run's own data, turned into warnings above a threshold.

Why here and not in the engine: the shares are ratios of the run's totals, which exist only
once DuckDB has summed the run's hourly rows inside the commit transaction; the engine's own
per-record warnings (zone case matches, grid hours flagged estimated, ...) come with its result.
"""

from __future__ import annotations

from collections.abc import Sequence

from wattledger.errors import StrictWarningError, UsageError
from wattledger.ledger import RunTotals, SourceRead

#: Default ``warn_share``: a run warns when more than 1% of its energy (or requests, or records)
#: falls in one of the categories below.
DEFAULT_WARN_SHARE = 0.01


def parse_share(text: float | str) -> float:
    """``0.05``, ``"0.05"`` or ``"5%"`` -> 0.05; refused outside [0, 1]."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(
            f"warn share {text!r} is not a number; pass a fraction (0.01) or a percentage (1%)"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"warn share {text!r} is outside 0..1 (0%..100%); the default is 0.01 (1%)")
    return value


def _total(values: Sequence[float | None]) -> float:
    return sum(v for v in values if v is not None)


def share_warnings(
    totals: Sequence[RunTotals], sources: Sequence[SourceRead], warn_share: float = DEFAULT_WARN_SHARE
) -> list[str]:
    """Warnings for every share of the run above ``warn_share`` (strictly), most serious first."""
    out: list[str] = []
    energy = _total([t.energy_kwh for t in totals])

    def pct(part: float, whole: float) -> str:
        return f"{part / whole * 100:.2f}%"

    def over(part: float, whole: float) -> bool:
        return whole > 0 and part / whole > warn_share

    unresolved = _total([t.unresolved_kwh for t in totals])
    if over(unresolved, energy):
        out.append(
            f"{pct(unresolved, energy)} of energy ({unresolved:.6g} kWh) has no grid intensity, so its "
            "emissions are missing from the totals: give its sites a zone the --grid files cover, "
            "pass a grid for that zone, or set the site's fallback_g_per_kwh"
        )
    fallback = _total([t.fallback_kwh for t in totals])
    if over(fallback, energy):
        out.append(
            f"{pct(fallback, energy)} of energy ({fallback:.6g} kWh) was priced on a fallback "
            "intensity (the zone's month mean or the site's fallback_g_per_kwh), not its own hour's "
            "grid value: check that the --grid files cover every zone and hour of the logs"
        )
    requests = _total([t.requests for t in totals])
    unestimated = _total([t.unestimated_requests for t in totals])
    if over(unestimated, requests):
        out.append(
            f"{pct(unestimated, requests)} of requests ({unestimated:.6g}) could not be estimated "
            "(method none: no energy_j, no coefficient for their model and hardware, no duration "
            "with known hardware): their energy is missing from the totals; add the models and "
            "hardware to the pack"
        )
    records = sum(s.records for s in sources)
    rejected = sum(s.rejected for s in sources)
    if over(rejected, records + rejected):
        out.append(
            f"{pct(rejected, records + rejected)} of records ({rejected:,}) were rejected and are not "
            "counted: see the reasons in the summary, or pass --rejects FILE to see them"
        )
    return out


def enforce_strict(warnings: Sequence[str]) -> None:
    """Under ``strict``, any warning fails the run (the caller's transaction rolls back)."""
    if warnings:
        listed = "; ".join(warnings)
        raise StrictWarningError(
            f"--strict: the run has {len(warnings)} warning(s), so nothing was written: {listed}"
        )
