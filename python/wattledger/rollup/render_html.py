"""The rollup as ONE self-contained HTML file: inline CSS and SVG, no scripts, no network.

Why: the document leaves the building (auditors, regulators) and must open years later, offline,
and print to PDF as it looks on screen. Print CSS keeps tables and charts from splitting and
repeats table headers across pages.
"""

from __future__ import annotations

from html import escape

from wattledger.rollup import svg
from wattledger.rollup.data import ENERGY_METHODS, RollupData
from wattledger.rollup.document import (
    ALL_HARDWARE,
    SYNTHETIC_NOTICE,
    Section,
    Table,
    build,
    doc_units,
    fmt,
    title,
)

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
       max-width: 1200px; margin: 24px auto; padding: 0 20px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; padding-bottom: 3px; }
h3 { font-size: 15px; margin-top: 18px; }
p { margin: 6px 0; }
.meta { color: #555; }
.warnings li { color: #8a4b00; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 12.5px; }
th, td { border: 1px solid #d5d5d5; padding: 3px 7px; vertical-align: top; }
th { background: #f2f4f7; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.hash { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 11px; word-break: break-all; }
tr.total td { font-weight: 600; background: #fafafa; }
tr.subtotal td { font-weight: 600; border-bottom: 2px solid #bbb; }
td:first-child { white-space: nowrap; }
.caption { font-size: 12px; color: #555; }
figure { margin: 10px 0 6px; }
figure { width: 100%; }
figure svg { width: 100%; height: auto; display: block; }
.synthetic { background: #fff3cd; border: 2px solid #b8860b; color: #5c4300; font-weight: 700;
             text-align: center; padding: 6px 10px; margin: 8px 0; letter-spacing: 0.02em; }
figcaption { font-size: 12px; color: #555; }
@media print {
  @page { size: A4 landscape; margin: 14mm 12mm;
          @bottom-right { content: "page " counter(page) " of " counter(pages);
                          font: 8pt sans-serif; color: #555; } }
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  .scroll { overflow: visible; }
  table { font-size: 8pt; page-break-inside: auto; }
  thead { display: table-header-group; }
  tr, figure { break-inside: avoid; page-break-inside: avoid; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  svg { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
""".strip()


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = []
    for row in table.rows:
        cls = ' class="total"' if row and row[0].text.startswith("(all") else ""
        if any(c.text == ALL_HARDWARE for c in row):  # a model's sum over its hardware rows
            cls = ' class="subtotal"'
        cells = []
        for c in row:
            if c.numeric:
                extra = f' data-unit="{escape(c.unit, quote=True)}"' if c.unit else ""
                if c.hardware is not None:
                    extra += f' data-hardware="{escape(c.hardware, quote=True)}"'
                cells.append(
                    f'<td class="num" data-block="{c.block}" data-key="{escape(c.key or "", quote=True)}" '
                    f'data-model="{escape(c.model or "", quote=True)}"{extra}>{escape(c.text)}</td>'
                )
            elif len(c.text) == 64 and all(ch in "0123456789abcdef" for ch in c.text):
                cells.append(f'<td class="hash">{escape(c.text)}</td>')
            else:
                cells.append(f"<td>{escape(c.text)}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    caption = f'<p class="caption">{escape(table.caption)}</p>' if table.caption else ""
    return (
        f'<div class="scroll"><table id="{escape(table.id, quote=True)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{caption}"
    )


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def charts(data: RollupData) -> dict[str, str]:
    """The three charts, by id: energy over time per model (stacked), location vs market
    emissions per model (grouped), energy by estimation method per model (stacked); in the
    document's units, each followed in its section by a table of the same numbers."""
    units = doc_units(data)
    e, c = units.energy, units.co2e
    ts = data.timeseries
    if ts.granularity == "month":
        short = [MONTHS[int(p[5:7]) - 1] for p in ts.periods]
        x_title = f"Month of {data.year} (UTC)"
    else:
        short = [str(int(p[8:10])) for p in ts.periods]
        x_title = f"Day of {data.period_label.split(' (')[-1].rstrip(')')} (UTC)"
    names = [f.model for f in data.models]
    return {
        "chart-energy-time": svg.bar_chart(
            chart_id="chart-energy-time",
            title=f"Energy per {ts.granularity} and model ({e.symbol})",
            categories=ts.periods,
            labels=short,
            series=list(ts.energy_mwh.items()),
            unit=e.symbol,
            stacked=True,
            fmt=fmt,
            x_title=x_title,
            thin_labels=True,
            per_unit=e.per_json,
        ),
        "chart-emissions": svg.bar_chart(
            chart_id="chart-emissions",
            title=f"Location-based vs market-based emissions per model ({c.symbol})",
            categories=names,
            series=[
                ("Location-based", [f.values.get("co2e_location_t") for f in data.models]),
                ("Market-based", [f.values.get("co2e_market_t") for f in data.models]),
            ],
            unit=c.symbol,
            stacked=False,
            fmt=fmt,
            x_title="Model",
            per_unit=c.per_json,
        ),
        "chart-energy-method": svg.bar_chart(
            chart_id="chart-energy-method",
            title=f"Energy by estimation method per model ({e.symbol})",
            categories=names,
            series=[(m, [f.values.get(f"energy_{m}_mwh") for f in data.models]) for m in ENERGY_METHODS],
            unit=e.symbol,
            stacked=True,
            fmt=fmt,
            x_title="Model",
            per_unit=e.per_json,
        ),
    }


def _section(section: Section, level: int, figures: dict[str, str]) -> str:
    parts = [f'<section id="{escape(section.id, quote=True)}"><h{level}>{escape(section.title)}</h{level}>']
    parts += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
    if section.bullets:
        cls = ' class="warnings"' if all(b.startswith("Warning") for b in section.bullets) else ""
        parts.append(f"<ul{cls}>" + "".join(f"<li>{escape(b)}</li>" for b in section.bullets) + "</ul>")
    if section.chart and section.chart in figures:
        parts.append(f"<figure>{figures[section.chart]}</figure>")
    parts += [_table(t) for t in section.tables]
    parts += [_section(s, level + 1, figures) for s in section.subsections]
    parts.append("</section>")
    return "\n".join(parts)


#: Printed pages carry the mark in their top and bottom margins (CSS page-margin boxes), so a
#: page torn from the PDF still says SYNTHETIC; the screen shows the banners above and below.
SYNTHETIC_PRINT_CSS = """
@media print {
  @page { @top-center { content: "SYNTHETIC DATA: not measurements of any real fleet";
                        font: bold 9pt sans-serif; color: #5c4300; }
          @bottom-center { content: "SYNTHETIC DATA"; font: bold 9pt sans-serif; color: #5c4300; } }
}
""".strip()


def to_html(data: RollupData) -> str:
    """The whole document as one HTML5 file (also well-formed XML, so it can be parsed strictly)."""
    heading = title(data)
    figures = charts(data) if data.models else {}
    body = "\n".join(_section(s, 2, figures) for s in build(data))
    css = f"{CSS}\n{SYNTHETIC_PRINT_CSS}" if data.synthetic else CSS
    banner = f'<p class="synthetic" role="note">{escape(SYNTHETIC_NOTICE)}</p>\n' if data.synthetic else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8"/>\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>\n'
        f"<title>{escape(heading)}</title>\n<style>\n{css}\n</style>\n</head>\n<body>\n"
        + (f'<header class="synthetic-header">{banner}</header>\n' if banner else "")
        + f"<h1>{escape(heading)}</h1>\n"
        f'<p class="meta">Generated by wattledger from ledger {escape(data.ledger_name)}; '
        f"period {escape(data.period_start)} to {escape(data.period_end)} (UTC).</p>\n"
        f"{body}\n"
        + (f'<footer class="synthetic-footer">{banner}</footer>\n' if banner else "")
        + "</body>\n</html>\n"
    )
