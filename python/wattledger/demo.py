"""``wattledger demo``: a SYNTHETIC year of fleet logs, ingested and reported end to end.

It shows the whole path (logs + grid + config -> ledger -> annual per-model table) on data that
exercises every method and intensity fallback, in seconds, without anyone's real logs. Every
output line that shows numbers says SYNTHETIC so nobody mistakes them for measurements.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from wattledger.errors import RunWarning, UsageError
from wattledger.ingest import IngestSummary, ingest
from wattledger.progress import phase, should_show
from wattledger.report import report
from wattledger.synthetic import SYNTHETIC_NOTICE, FleetFiles, generate_fleet

DEFAULT_DIR = "wattledger-demo"
DEFAULT_RECORDS = 1_000_000
DEMO_START = "2025-01-01"
LEDGER_NAME = "ledger.duckdb"
#: Written first into a demo's directory: a directory holding it is the demo's to rewrite.
MARKER_NAME = ".wattledger-demo"
#: What a demo writes (its ledger's DuckDB companions start with the ledger's name).
DEMO_FILES = frozenset({MARKER_NAME, "fleet.parquet", "grid.csv", "methodology.toml"})


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things, what it ingested and the annual table."""

    fleet: FleetFiles
    ledger: Path
    summary: IngestSummary
    annual: pl.DataFrame
    year: int
    seconds: float
    notice: str = SYNTHETIC_NOTICE


def run_demo(
    out_dir: str | os.PathLike[str] = DEFAULT_DIR,
    *,
    records: int = DEFAULT_RECORDS,
    seed: int = 0,
    progress: bool | None = None,
) -> DemoResult:
    """Generate a synthetic year, ingest it into a fresh ledger in ``out_dir``, report it."""
    started = time.perf_counter()
    out = Path(out_dir)
    claim_directory(out)
    show = should_show(progress)
    with phase("generating logs", show=show, total=records) as bar:
        fleet = generate_fleet(
            out,
            records=records,
            span="year",
            start=DEMO_START,
            formats=("parquet",),
            seed=seed,
            on_chunk=bar.advance,
        )
    ledger = out / LEDGER_NAME
    # A fresh ledger each time: the demo's own files only, never anything else in the directory.
    for stale in (ledger, Path(f"{ledger}.wal")):
        stale.unlink(missing_ok=True)
    with warnings.catch_warnings():
        # The synthetic fleet has unlocated sites, hours left to the month-mean fallback and
        # unknown models on purpose; format_demo shows the run's warnings with that said.
        warnings.simplefilter("ignore", RunWarning)
        summary, annual = _ingest_and_report(fleet, ledger, progress, records, out)
    return DemoResult(fleet, ledger, summary, annual, fleet.years[0], time.perf_counter() - started)


def claim_directory(out: Path) -> None:
    """Make ``out`` the demo's: create it, or accept it when empty or written by an earlier
    demo (its marker file is there and nothing else but the demo's files); refuse anything
    else, since the demo replaces the files it writes (a ledger among them)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--dir {out} is a file; choose a new or empty directory")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    ours = MARKER_NAME in entries
    foreign = [n for n in entries if not (ours and (n in DEMO_FILES or n.startswith(LEDGER_NAME)))]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise UsageError(
            f"--dir {out} holds files wattledger demo did not write ({shown}); the demo replaces "
            "its files there, so choose a new or empty directory, e.g. --dir wattledger-demo-2"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER_NAME).write_text(
        "Written by `wattledger demo`: SYNTHETIC data. A demo run may replace every file here.\n",
        encoding="utf-8",
    )


def _ingest_and_report(
    fleet: FleetFiles, ledger: Path, progress: bool | None, records: int, out: Path
) -> tuple[IngestSummary, pl.DataFrame]:
    summary = ingest(
        list(fleet.logs.values()),
        ledger=ledger,
        config=fleet.config,
        grid=[fleet.grid],
        progress=progress,
        command=f"wattledger demo --records {records} --dir {out}",
    )
    return summary, report(ledger, year=fleet.years[0], by="model")
