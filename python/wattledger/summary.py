"""Plain-text summaries of an ingest run and of the demo, for terminals and cron logs.

Plain lines rather than a rich layout: nightly job logs are read with grep and less, and every
number a reviewer needs (records, rejects, methods, kWh, coverage, config hash, skipped files)
is on a line of its own with a fixed label.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from wattledger.formatting import human, to_table
from wattledger.schema import REPORT_COLUMNS

if TYPE_CHECKING:  # the ingest path must not import the demo (numpy, polars)
    from wattledger.demo import DemoResult
    from wattledger.estimate import EstimateSummary
    from wattledger.ingest import IngestSummary
    from wattledger.ledger import ForgetResult, LedgerTotals

_METHOD_ORDER = ("measured", "attributed", "tokens", "gpu_time", "flops", "none", "cached")


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.2f}%"


def _kwh(value: float | None) -> str:
    return "none estimated" if value is None else f"{human(value)} kWh"


def _kg(value: float | None) -> str:
    # None means no energy of the run had a grid intensity: say so rather than print a blank.
    return "none (no grid intensity)" if value is None else f"{human(value)} kg"


def format_estimate_summary(s: EstimateSummary, *, rejects: str | os.PathLike[str] | None = None) -> str:
    """What `wattledger estimate` wrote and read, in the ingest summary's labels."""
    what = "per-record rows" if s.per_record else "hourly rows"
    lines = [f"wrote:      {s.out} ({s.rows:,} {what})"]
    reasons: dict[str, int] = {}
    for f in s.files:
        for reason, n in f.rejects.items():
            reasons[reason] = reasons.get(reason, 0) + n
    detail = ", ".join(f"{reason} {n:,}" for reason, n in sorted(reasons.items()))
    rejected = f"{s.rejected:,} rejected" + (f" ({detail})" if detail else "")
    if s.rejected:
        rejected += f", written to {rejects}" if rejects else "; pass --rejects FILE to see them"
    lines.append(f"records:    {s.records:,} read from {len(s.files)} file(s), {rejected}")
    if s.duplicates:
        lines.append(f"duplicates dropped: {s.duplicates:,} (repeated request_id within this run, --dedupe)")
    lines.append(f"energy:     {_kwh(s.energy_kwh)}")
    lines.append(f"co2e:       {_kg(s.co2e_location_kg)} location-based")
    return "\n".join(lines)


def format_ingest_summary(s: IngestSummary, *, rejects: str | os.PathLike[str] | None = None) -> str:
    """The run's summary: what was read, skipped and rejected, energy by method, coverage."""
    lines = [
        f"run:        {s.run_id} -> {s.ledger}",
        f"config:     {s.config_name} {s.config_version} sha256 {s.config_sha256} ({s.config_origin})",
        f"files:      {s.files_read} ingested, {len(s.files_skipped)} skipped, "
        f"{len(s.files_replaced)} replaced",
    ]
    lines += [f"  skipped   {f.path}: {f.reason}" for f in s.files_skipped]
    lines += [f"  replaced  {p}" for p in s.files_replaced]
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in s.rejects_by_reason.items())
    rejected = f"{s.rejected:,} rejected" + (f" ({reasons})" if reasons else "")
    if s.rejected:
        rejected += f", written to {rejects}" if rejects else "; pass --rejects FILE to see them"
    lines.append(f"records:    {s.records:,} read, {rejected}")
    if s.skipped_objects:
        reasons = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(s.skip_reasons.items()))
        lines.append(f"skipped:    {s.skipped_objects:,}" + (f" ({reasons})" if reasons else ""))
    if s.duplicates is not None:
        lines.append(f"duplicates dropped: {s.duplicates:,} (repeated request_id within this run, --dedupe)")
    if s.files_read == 0:
        empty = any(f.reason.startswith("empty") for f in s.files_skipped)
        lines.append(
            "nothing new: every file was already in the ledger"
            + (" or empty" if empty else "")
            + "; totals unchanged"
        )
        return "\n".join(lines)
    methods = sorted(s.requests_by_method, key=lambda m: (*_METHOD_ORDER, m).index(m))
    lines.append(
        f"requests:   {human(s.requests)} total, {human(s.failed_requests)} failed, "
        f"{human(s.cached_requests)} cached"
    )
    lines += [
        f"  {m:<9} {human(s.requests_by_method[m])} requests, {_kwh(s.energy_kwh_by_method.get(m))}"
        for m in methods
    ]
    lines.append(
        f"energy:     {_kwh(s.energy_kwh)}"
        + (
            f" (low {human(s.energy_kwh_low)}, high {human(s.energy_kwh_high)})"
            if s.energy_kwh is not None
            else ""
        )
    )
    if s.energy_kwh:
        total = s.energy_kwh
        shares = [
            f"{m} {_pct((s.energy_kwh_by_method.get(m) or 0.0) / total)}"
            for m in methods
            if s.energy_kwh_by_method.get(m)
        ]
        lines.append(f"by method:  {', '.join(shares)} of energy")
    lines.append(f"co2e:       location {_kg(s.co2e_location_kg)}, market {_kg(s.co2e_market_kg)}")
    lines += _node_energy_lines(s)
    lines.append(
        f"coverage:   {_pct(s.fallback_share)} of energy on fallback intensity, "
        f"{_pct(s.unresolved_share)} unresolved (no emissions), "
        f"{_pct(s.unestimated_share)} of requests unestimated"
    )
    if s.names:
        lines.append(
            f"names:      {len(s.names):,} raw names resolved through the pack (see the source_names view)"
        )
    return "\n".join(lines)


def _node_energy_lines(s: IngestSummary) -> list[str]:
    """Metered node energy (accelerator energy, before overheads and PUE): attributed + idle."""
    n = s.node_energy
    if n is None:
        return []
    idle = ", ".join(f"{node} {human(kwh)}" for node, kwh in n.idle_kwh_by_node.items())
    return [
        f"node energy: {human(n.metered_kwh)} kWh metered on {n.nodes:,} nodes "
        f"({n.series:,} counter series): {human(n.attributed_kwh)} attributed to requests "
        f"+ {human(n.idle_kwh)} idle",
        f"  idle kWh  {idle or 'none'}",
        f"  counters  {n.resets:,} resets, {n.gaps:,} gaps (see the warnings; docs/attribution.md)",
    ]


#: The demo's terminal table: the annual number with its range, emissions both ways and
#: coverage; fits a terminal where the full per-model table (18 columns) does not.
DEMO_COLUMNS = (
    "model",
    "requests",
    "energy_kwh",
    "energy_kwh_low",
    "energy_kwh_high",
    "measured_kwh",
    "co2e_location_kg",
    "co2e_market_kg",
    "gpu_hours",
    "unestimated_requests",
)


def format_demo(result: DemoResult) -> str:
    """The demo's output: the notice, the annual table, where things are and what to try next."""
    f = result.fleet
    ledger = result.ledger
    logs = " ".join(str(p) for p in f.logs.values())
    banner = f"*** {result.notice} ***"
    return "\n".join(
        [
            banner,
            "",
            format_ingest_summary(result.summary),
            *(
                f"warning: {w} (the SYNTHETIC fleet includes such records on purpose)"
                for w in result.summary.warnings
            ),
            "",
            to_table(
                result.annual.select(DEMO_COLUMNS),
                title=f"SYNTHETIC annual energy and emissions per model, {result.year} (UTC); "
                f"all {len(REPORT_COLUMNS)} columns: wattledger report --format csv",
            ),
            banner,
            "",
            f"logs:    {logs}  ({f.records:,} SYNTHETIC records, {f.start} .. {f.end})",
            f"grid:    {f.grid}",
            f"config:  {f.config}",
            f"ledger:  {ledger}",
            f"took:    {result.seconds:.1f} s",
            "",
            "next:",
            f"  wattledger report --ledger {ledger} --year {result.year} --by month",
            f"  wattledger rollup --ledger {ledger} --year {result.year} --format html --out annual.html",
            f"  wattledger report --ledger {ledger} --year {result.year} --format csv --out annual.csv",
            f'  wattledger sql --ledger {ledger} "SELECT * FROM energy_by_model_month ORDER BY model, month"',
            f"  wattledger grid summary {f.grid}",
            f"  wattledger ingest {logs} --config {f.config} --grid {f.grid} --ledger {ledger}"
            "   # again: skipped, totals unchanged",
        ]
    )


def _totals_line(label: str, t: LedgerTotals) -> str:
    def co2(v: float | None) -> str:
        return "none" if v is None else f"{human(v)} kg"

    return (
        f"{label:<11} {_kwh(t.energy_kwh)}, CO2e location {co2(t.co2e_location_kg)}, "
        f"market {co2(t.co2e_market_kg)}, {human(t.requests)} requests, {t.records:,} records"
    )


def format_forget(r: ForgetResult) -> str:
    """What a forget removed, and the ledger's totals before and after it."""
    lines = [f"run:        {r.run_id} forgot {r.target}"]
    lines += [f"  forgot    {path} (source {sid}, ingested by run {run})" for sid, path, run in r.sources]
    lines += [
        _totals_line("before:", r.before),
        _totals_line("removed:", r.removed),
        _totals_line("after:", r.after),
    ]
    return "\n".join(lines)
