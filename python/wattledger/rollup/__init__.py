"""Regulatory rollups: a month or a year of the ledger as a document a compliance team can file.

The AI Act technical documentation (Annex XI: energy, computational resources), the GPAI Code
of Practice Model Documentation Form and GHG Protocol Scope 2 all ask for the same few figures
per model, with method, coverage and provenance. :func:`rollup` gathers them from the ledger
once (:mod:`wattledger.rollup.data`); the renderers only format, so the markdown, HTML, JSON
and CSV of one rollup cannot disagree.

    r = wattledger.rollup("fleet.duckdb", year=2025)
    Path("annual-2025.html").write_text(r.to_html())
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from wattledger.ledger import connect_ledger
from wattledger.report import use_threads
from wattledger.rollup.data import METRICS, TOTAL, Metric, RollupData, gather

PathLike = str | os.PathLike[str]

FORMATS: tuple[str, ...] = ("md", "html", "json", "csv")

__all__ = ["FORMATS", "METRICS", "TOTAL", "Metric", "Rollup", "RollupData", "rollup"]


@dataclass(frozen=True)
class Rollup:
    """A gathered rollup; ``data`` holds every figure, the ``to_*`` methods render it."""

    data: RollupData

    def to_markdown(self) -> str:
        """Markdown (figures to 4 significant digits, units in every header)."""
        from wattledger.rollup.render_md import to_markdown

        return to_markdown(self.data)

    def to_html(self) -> str:
        """One self-contained HTML file with inline SVG charts; prints cleanly to PDF."""
        from wattledger.rollup.render_html import to_html

        return to_html(self.data)

    def to_json(self) -> str:
        """Every number unrounded under stable keys, plus the Model Documentation Form block."""
        from wattledger.rollup.render_json import to_json

        return to_json(self.data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document as Python objects."""
        from wattledger.rollup.render_json import to_dict

        return to_dict(self.data)

    def to_csv(self) -> str:
        """The per-model table, unrounded, one row per model plus the all-models total."""
        from wattledger.rollup.render_csv import to_csv

        return to_csv(self.data)

    def render(self, fmt: str) -> str:
        """The rollup in one of :data:`FORMATS`."""
        if fmt == "md":
            return self.to_markdown()
        if fmt == "html":
            return self.to_html()
        if fmt == "json":
            return self.to_json()
        if fmt == "csv":
            return self.to_csv()
        from wattledger.errors import UsageError

        raise UsageError(f"rollup format {fmt!r} is not one of {', '.join(FORMATS)}")

    @property
    def warnings(self) -> tuple[str, ...]:
        """Mixed methodology configs, empty period: say them beside the document."""
        return self.data.warnings


def rollup(
    ledger: PathLike, *, year: int, month: int | None = None, model: str | None = None, threads: int = 0
) -> Rollup:
    """The rollup of a UTC calendar year (or one month of it) from the ledger, for all models
    or only ``model``. Opens the ledger read-only and closes it before returning. ``threads``
    (DuckDB threads, 0 = all cores) changes the speed, never a digit of the document."""
    con = connect_ledger(ledger)
    try:
        use_threads(con, threads)
        data = gather(
            con, year=year, month=month, model=model, ledger_name=os.path.basename(os.fspath(ledger))
        )
    finally:
        con.close()
    return Rollup(data)
