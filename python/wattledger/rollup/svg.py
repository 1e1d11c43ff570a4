"""Small hand-written SVG bar charts for the HTML rollup.

Why hand-written: the HTML report must be one self-contained file that opens offline and
prints to PDF, with no scripts; a plotting dependency would bring either scripts or raster
images. Bars, axes and a legend are all a compliance report needs.

Each series is a ``<g class="series" data-series="NAME">`` and each bar carries
``data-category`` and ``data-value`` (the exact number), so tests can read the charts back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

#: Okabe-Ito: distinguishable for the common colour-vision deficiencies, and in greyscale print.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)

Series = tuple[str, Sequence[float | None]]


def nice_max(value: float) -> float:
    """The smallest 1/2/2.5/5 x 10^k at or above ``value`` (axis top)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        top = step * 10.0**exp
        if top >= value * (1 - 1e-12):
            return top
    return 10.0 ** (exp + 1)


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    unit: str,
    stacked: bool,
    fmt: Callable[[float], str],
    tick_fmt: Callable[[float], str] | None = None,
    labels: Sequence[str] | None = None,
    width: int = 760,
    height: int = 320,
    colors: Sequence[str] = PALETTE,
) -> str:
    """A vertical bar chart, stacked or grouped. ``None`` values draw nothing (no estimate is
    not zero energy); the y axis starts at 0 so bar lengths compare honestly."""
    labels = list(labels) if labels is not None else list(categories)
    left, right, top, bottom = 78, 16, 44, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(categories), 1)
    if stacked:
        peaks = [sum(v or 0.0 for _, vals in series for v in [vals[i]]) for i in range(len(categories))]
    else:
        peaks = [v or 0.0 for _, vals in series for v in vals]
    y_top = nice_max(max(peaks, default=0.0))
    slot = plot_w / n
    bar_w = slot * 0.7 if stacked else slot * 0.8 / max(len(series), 1)

    def y(v: float) -> float:
        return top + plot_h - (v / y_top) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{_attr(chart_id)}" class="chart" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" aria-labelledby="{_attr(chart_id)}-title">',
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
    ]
    # axis and grid
    for k in range(5):
        v = y_top * k / 4
        yy = y(v)
        out.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
        out.append(
            f'<text class="tick" x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape((tick_fmt or fmt)(v))}</text>"
        )
    out.append(
        f'<text class="axis-label" x="14" y="{top + plot_h / 2:.1f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(unit)}</text>'
    )
    out.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        'stroke="#333" stroke-width="1"/>'
    )
    every = max(1, math.ceil(n / 16))  # at most ~16 x labels: days of a month would overlap
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = left + slot * (i + 0.5)
        out.append(
            f'<text class="category" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
            f'font-size="11">{escape(label)}</text>'
        )
    # bars
    base = [0.0] * len(categories)
    for s_index, (name, values) in enumerate(series):
        color = colors[s_index % len(colors)]
        out.append(f'<g class="series" data-series="{_attr(name)}" fill="{color}">')
        for i, value in enumerate(values):
            if value is None:
                continue
            if stacked:
                x = left + slot * i + (slot - bar_w) / 2
                y0, y1 = y(base[i] + value), y(base[i])
                base[i] += value
            else:
                x = left + slot * i + slot * 0.1 + bar_w * s_index
                y0, y1 = y(value), y(0)
            out.append(
                f'<rect x="{x:.1f}" y="{y0:.1f}" width="{bar_w:.1f}" height="{max(y1 - y0, 0):.1f}" '
                f'data-category="{_attr(categories[i])}" data-value="{value!r}">'
                f"<title>{escape(name)}, {escape(labels[i])}: {escape(fmt(value))} {escape(unit)}</title>"
                "</rect>"
            )
        out.append("</g>")
    # legend, above the plot
    x = left
    for s_index, (name, _) in enumerate(series):
        color = colors[s_index % len(colors)]
        out.append(f'<rect class="legend" x="{x}" y="12" width="12" height="12" fill="{color}"/>')
        out.append(f'<text class="legend" x="{x + 16}" y="22" font-size="12">{escape(name)}</text>')
        x += 28 + 7 * len(name)
    out.append("</svg>")
    return "\n".join(out)
