"""Small hand-written SVG bar charts for the HTML rollup.

Why hand-written: the HTML report must be one self-contained file that opens offline and
prints to PDF, with no scripts; a plotting dependency would bring either scripts or raster
images. Bars, axes and a legend are all a compliance report needs.

Layout is computed here, not left to the browser, so it must hold for any number of series and
categories: the legend wraps over as many lines as its names need; x labels stay horizontal
while they fit, are thinned on a time axis (every 2nd, 5th... day) and rotated on a category
axis (every model keeps its name); ticks fall on 1/2/5 x 10^k. Text widths are estimated with
:data:`CHAR_W`, a width no character of the 12 px sans-serif fonts exceeds on average, so the
estimate errs towards more room.

Each series is a ``<g class="series" data-series="NAME">`` and each bar carries
``data-category`` and ``data-value`` (the exact number of the JSON document, in its unit), so
tests can read the charts back; legend entries are ``<text class="legend">``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from wattledger.rollup.units import tick_label, tick_step

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

#: The chart's drawing width (viewBox units); the SVG itself scales to 100% of the page.
WIDTH = 1160
FONT = 12
#: Estimated advance of one character at FONT px (generous: wide glyphs, bold fallbacks).
CHAR_W = 7.4
LINE_H = 16
PLOT_H = 300
SWATCH = 12


def text_width(text: str, font: float = FONT) -> float:
    """Estimated width of ``text`` at ``font`` px."""
    return len(text) * CHAR_W * font / FONT


@dataclass(frozen=True)
class LegendItem:
    name: str
    x: float
    y: float  # baseline of the text


def legend_layout(names: Sequence[str], x0: float, x1: float, y0: float) -> tuple[list[LegendItem], float]:
    """Legend entries laid out left to right, wrapping to a new line before ``x1``; returns the
    items and the y below the last line."""
    items, x, y = [], x0, y0 + LINE_H - 4
    for name in names:
        w = SWATCH + 5 + text_width(name) + 18
        if x > x0 and x + w > x1:
            x, y = x0, y + LINE_H + 2
        items.append(LegendItem(name, x, y))
        x += w
    return items, (y + 6 if names else y0)


@dataclass(frozen=True)
class XLabels:
    """How the category labels are written: every ``every``-th one, at ``angle`` degrees."""

    every: int
    angle: int  # 0, -45 or -90
    height: float  # vertical room the labels take below the axis


def x_label_layout(labels: Sequence[str], slot: float, *, thin: bool) -> XLabels:
    """Horizontal labels while the widest fits its slot; otherwise a time axis keeps one label
    in ``every`` (round steps: 1, 2, 5, 10...) and a category axis rotates its labels so that
    every category keeps its name (only when even upright ones cannot fit are they thinned)."""
    widest = max((text_width(t) for t in labels), default=0.0)
    gap = 8.0
    if widest + gap <= slot:
        return XLabels(1, 0, LINE_H + 4)
    if thin:
        every = next(k for k in _round_steps() if k * slot >= widest + gap)
        return XLabels(every, 0, LINE_H + 4)
    line = FONT + 3  # distance between the baselines of two rotated neighbours must exceed this
    if slot * math.sin(math.radians(45)) >= line:
        return XLabels(1, -45, widest * math.sin(math.radians(45)) + FONT + 10)
    every = max(1, math.ceil(line / slot))
    return XLabels(every, -90, widest + 12)


def _round_steps() -> Sequence[int]:
    steps = []
    for exp in range(0, 9):
        steps += [m * 10**exp for m in (1, 2, 5)]
    return steps


#: Stripes laid over the palette's colours once they run out: (angle, stripe width), so the
#: 9th series is blue with white stripes, not a second plain blue.
HATCHES: tuple[tuple[int, float], ...] = ((45, 2.0), (-45, 2.0), (0, 1.5), (90, 1.5))


def _fills(chart_id: str, count: int, colors: Sequence[str], out: list[str]) -> list[str]:
    """One distinct fill per series: the plain colours first, then the colours hatched (their
    patterns are added to ``out`` as ``<defs>``). Past colours x (1 + hatches) fills repeat;
    the legend and the table beside the chart still name every series."""
    fills, defs = [], []
    for i in range(count):
        color, cycle = colors[i % len(colors)], (i // len(colors)) % (len(HATCHES) + 1)
        if cycle == 0:
            fills.append(color)
            continue
        angle, stripe = HATCHES[cycle - 1]
        pid = f"{chart_id}-fill-{i}"
        defs.append(
            f'<pattern id="{_attr(pid)}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate({angle})"><rect width="6" height="6" fill="{color}"/>'
            f'<rect width="{stripe}" height="6" fill="#fff"/></pattern>'
        )
        fills.append(f"url(#{pid})")
    if defs:
        out.append("<defs>" + "".join(defs) + "</defs>")
    return fills


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
    labels: Sequence[str] | None = None,
    x_title: str = "",
    thin_labels: bool = False,
    per_unit: float = 1.0,
    width: int = WIDTH,
    colors: Sequence[str] = PALETTE,
) -> str:
    """A vertical bar chart, stacked or grouped. Values are in the JSON unit; they are drawn
    and labelled in ``unit`` (value / ``per_unit``). ``None`` values draw nothing (no estimate
    is not zero energy); the y axis starts at 0 so bar lengths compare honestly."""
    labels = list(labels) if labels is not None else list(categories)
    n = max(len(categories), 1)

    def shown(v: float) -> float:
        return v / per_unit

    if stacked:
        peaks = [sum(shown(vals[i] or 0.0) for _, vals in series) for i in range(len(categories))]
    else:
        peaks = [shown(v or 0.0) for _, vals in series for v in vals]
    peak = max(peaks, default=0.0)
    step = tick_step(peak)
    y_top = max(step, math.ceil(peak / step * (1 - 1e-12)) * step)
    ticks = [step * k for k in range(round(y_top / step) + 1)]
    tick_texts = [tick_label(t, step) for t in ticks]

    left = 30 + max(text_width(t, 11) for t in tick_texts) + 8
    right = 16.0
    plot_w = width - left - right
    slot = plot_w / n
    legend, legend_bottom = legend_layout([name for name, _ in series], left, width - right, 8)
    top = legend_bottom + 14
    xl = x_label_layout(labels, slot, thin=thin_labels)
    for _ in range(3):  # labels reaching past either edge: widen that margin, lay out again
        shown_at = range(0, len(labels), xl.every)
        if xl.angle == -45:  # slanting left from under their bar
            cos = math.cos(math.radians(45))
            need_left = max(text_width(labels[i]) * cos + FONT - (i + 0.5) * slot for i in shown_at)
            need_right = 0.0
        elif xl.angle == 0:  # centred under their bar
            need_left = max(text_width(labels[i]) / 2 + 2 - (i + 0.5) * slot for i in shown_at)
            need_right = max(text_width(labels[i]) / 2 + 2 - (n - i - 0.5) * slot for i in shown_at)
        else:
            break
        if need_left <= left and need_right <= right:
            break
        left, right = max(left, need_left + 2), max(right, need_right + 2)
        plot_w = width - left - right
        slot = plot_w / n
        xl = x_label_layout(labels, slot, thin=thin_labels)
    bottom = xl.height + (LINE_H + 8 if x_title else 8)
    height = math.ceil(top + PLOT_H + bottom)
    bar_w = slot * 0.7 if stacked else slot * 0.8 / max(len(series), 1)

    def y(v: float) -> float:
        return top + PLOT_H - (v / y_top) * PLOT_H

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{_attr(chart_id)}" class="chart" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" aria-labelledby="{_attr(chart_id)}-title">',
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
    ]
    for v, text in zip(ticks, tick_texts, strict=True):
        yy = y(v)
        out.append(
            f'<line class="grid" x1="{left:.1f}" x2="{left + plot_w:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
        out.append(
            f'<text class="tick" x="{left - 6:.1f}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" '
            f'data-value="{v!r}">{escape(text)}</text>'
        )
    mid = top + PLOT_H / 2
    out.append(
        f'<text class="axis-label" x="14" y="{mid:.1f}" font-size="{FONT}" text-anchor="middle" '
        f'transform="rotate(-90 14 {mid:.1f})">{escape(unit)}</text>'
    )
    out.append(
        f'<line x1="{left:.1f}" x2="{left + plot_w:.1f}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        'stroke="#333" stroke-width="1"/>'
    )
    base_y = top + PLOT_H
    for i, label in enumerate(labels):
        if i % xl.every:
            continue
        x = left + slot * (i + 0.5)
        if xl.angle == 0:
            out.append(
                f'<text class="category" x="{x:.1f}" y="{base_y + LINE_H:.1f}" text-anchor="middle" '
                f'font-size="{FONT}">{escape(label)}</text>'
            )
        else:
            ly = base_y + 10
            out.append(
                f'<text class="category" x="{x:.1f}" y="{ly:.1f}" text-anchor="end" font-size="{FONT}" '
                f'transform="rotate({xl.angle} {x:.1f} {ly:.1f})">{escape(label)}</text>'
            )
    if x_title:
        out.append(
            f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{base_y + xl.height + LINE_H:.1f}" '
            f'font-size="{FONT}" text-anchor="middle">{escape(x_title)}</text>'
        )
    fills = _fills(chart_id, len(series), colors, out)
    base = [0.0] * len(categories)
    for s_index, (name, values) in enumerate(series):
        out.append(f'<g class="series" data-series="{_attr(name)}" fill="{fills[s_index]}">')
        for i, value in enumerate(values):
            if value is None:
                continue
            v = shown(value)
            if stacked:
                x = left + slot * i + (slot - bar_w) / 2
                y0, y1 = y(base[i] + v), y(base[i])
                base[i] += v
            else:
                x = left + slot * i + slot * 0.1 + bar_w * s_index
                y0, y1 = y(v), y(0)
            out.append(
                f'<rect x="{x:.1f}" y="{y0:.1f}" width="{bar_w:.1f}" height="{max(y1 - y0, 0):.1f}" '
                f'data-category="{_attr(categories[i])}" data-value="{value!r}">'
                f"<title>{escape(name)}, {escape(labels[i])}: {escape(fmt(v))} {escape(unit)}</title>"
                "</rect>"
            )
        out.append("</g>")
    for s_index, item in enumerate(legend):
        out.append(
            f'<rect class="legend" x="{item.x:.1f}" y="{item.y - SWATCH + 1:.1f}" width="{SWATCH}" '
            f'height="{SWATCH}" fill="{fills[s_index]}" stroke="#555" stroke-width="0.5"/>'
        )
        out.append(
            f'<text class="legend" x="{item.x + SWATCH + 5:.1f}" y="{item.y:.1f}" '
            f'font-size="{FONT}">{escape(item.name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
