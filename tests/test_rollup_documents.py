"""The rollup documents as a person reads them (issue 15): charts, units, notation, model card,
SYNTHETIC marking.

A filed document fails its reader when a chart's legend drops a series, x labels run into each
other, ticks fall on 0.0125, a column mixes ``0.001131`` with ``6.540e-04``, the model card
lists seven hardware names beside six powers, or made-up data does not say so on every page.
These tests read the SVG and the tables back and check each of those; the layout checks use
the charts' own text-width estimate (``svg.text_width``), which errs wide. One test prints the
HTML with headless Chromium and reads every PDF page; it is skipped where Chromium is absent.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_rollup import _md_tables, build_golden
from wattledger.demo import run_demo
from wattledger.rollup import Rollup, rollup, svg
from wattledger.rollup.data import is_synthetic_pack
from wattledger.rollup.document import SYNTHETIC_MARK, doc_units
from wattledger.rollup.units import (
    CO2E_UNITS,
    ENERGY_UNITS,
    UNIT_CEILING,
    choose_unit,
    fixed,
    notation,
    tick_label,
    tick_step,
)

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real (not synthetic) data: the hand-built ledger of the golden files."""
    return build_golden(tmp_path_factory.mktemp("docs") / "golden.duckdb")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's SYNTHETIC fleet, ingested by the engine as `wattledger demo` does."""
    return run_demo(tmp_path_factory.mktemp("docs") / "demo", records=20_000, progress=False).ledger


@pytest.fixture(scope="module")
def documents(golden: Path, demo: Path) -> dict[str, Rollup]:
    return {
        "golden-year": rollup(golden, year=2025),
        "golden-month": rollup(golden, year=2025, month=1),
        "golden-model": rollup(golden, year=2025, model="mixtral-8x7b"),
        "demo-year": rollup(demo, year=2025),
        "demo-month": rollup(demo, year=2025, month=3),
        "demo-model": rollup(demo, year=2025, month=2, model="llama-3.2-3b"),
    }


def _root(html: str) -> ET.Element:
    return ET.fromstring(html.replace("<!DOCTYPE html>", ""))


def _charts(html: str) -> list[ET.Element]:
    return [e for e in _root(html).iter(f"{SVG}svg") if e.get("class") == "chart"]


def _texts(chart: ET.Element, cls: str) -> list[ET.Element]:
    return [t for t in chart.iter(f"{SVG}text") if t.get("class") == cls]


# --------------------------------------------------------------------------------------------
# charts


def assert_legend_names_every_series(chart: ET.Element) -> None:
    series = [g.get("data-series") for g in chart.iter(f"{SVG}g") if g.get("class") == "series"]
    legend = [t.text for t in _texts(chart, "legend")]
    assert series and legend == series, (chart.get("id"), legend, series)
    # and the legend fits the drawing: no entry runs past the right edge or into the next one
    width = float((chart.get("viewBox") or "").split()[2])
    boxes = sorted(
        (float(t.get("y", 0)), float(t.get("x", 0)), t.text or "") for t in _texts(chart, "legend")
    )
    for (y0, x0, name0), (y1, x1, _) in itertools.pairwise(boxes):
        if y0 == y1:
            assert x0 + svg.text_width(name0) <= x1, (name0, x0, x1)
    for _, x, name in boxes:
        assert x + svg.text_width(name) <= width, (name, x, width)


def _label_box(t: ET.Element) -> tuple[float, float, float]:
    """(centre x, angle, width) of a category label."""
    m = re.search(r"rotate\((-?\d+)", t.get("transform") or "")
    return float(t.get("x", 0)), float(m[1]) if m else 0.0, svg.text_width(t.text or "")


def assert_x_labels_apart(chart: ET.Element) -> None:
    labels = [_label_box(t) for t in _texts(chart, "category")]
    assert labels, chart.get("id")
    width = float((chart.get("viewBox") or "").split()[2])
    for x, angle, w in labels:  # inside the drawing, not clipped at either edge
        reach = w / 2 if angle == 0 else w * math.cos(math.radians(-angle))
        assert x - reach >= 0 and (angle != 0 or x + reach <= width), (chart.get("id"), x, w, angle)
    for (x0, angle, w0), (x1, _, w1) in itertools.pairwise(labels):
        if angle == 0:  # centred: half of each label on either side, plus a gap
            assert x1 - x0 >= (w0 + w1) / 2 + 2, (chart.get("id"), x0, x1, w0, w1)
        else:  # parallel rotated lines: their distance across the text must hold a line
            assert (x1 - x0) * math.sin(math.radians(-angle)) >= svg.FONT, (chart.get("id"), x0, x1)


def assert_fills_distinct(chart: ET.Element) -> None:
    """Each series its own fill (colours, then hatched colours), legend swatch included."""
    fills = [g.get("fill") for g in chart.iter(f"{SVG}g") if g.get("class") == "series"]
    swatches = [r.get("fill") for r in chart.iter(f"{SVG}rect") if r.get("class") == "legend"]
    assert swatches == fills
    assert len(set(fills)) == min(len(fills), len(svg.PALETTE) * (1 + len(svg.HATCHES))), fills


def assert_round_ticks(chart: ET.Element) -> None:
    ticks = [t.text or "" for t in _texts(chart, "tick")]
    values = [float(t.replace(",", "")) for t in ticks]
    assert values[0] == 0 and len(values) >= 2
    step = values[1] - values[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5)), (chart.get("id"), ticks)
    for k, v in enumerate(values):
        assert math.isclose(v, k * step, rel_tol=1e-9, abs_tol=step * 1e-9), ticks
    decimals = {len(t.split(".")[1]) if "." in t else 0 for t in ticks}
    assert len(decimals) == 1, ticks  # one way of writing every tick of an axis


def test_every_chart_names_every_series_reads_and_ticks_round(documents: dict[str, Rollup]) -> None:
    checked = 0
    for name, doc in documents.items():
        charts = _charts(doc.to_html())
        assert len(charts) == 3, name
        for chart in charts:
            assert_legend_names_every_series(chart)
            assert_x_labels_apart(chart)
            assert_round_ticks(chart)
            checked += 1
    assert checked == 18


def test_demo_year_legend_has_all_eight_models(documents: dict[str, Rollup]) -> None:
    """The case the issue saw: after llama-3.2-3b the two largest models had no entry."""
    (time,) = [c for c in _charts(documents["demo-year"].to_html()) if c.get("id") == "chart-energy-time"]
    legend = [t.text for t in _texts(time, "legend")]
    assert len(legend) == 8 and "mistral-large-2" in legend and "qwen-2.5-72b" in legend
    # months by name, every one of them (twelve fit the width)
    assert [t.text for t in _texts(time, "category")][:3] == ["Jan", "Feb", "Mar"]
    assert len(_texts(time, "category")) == 12


def test_charts_take_the_full_width(documents: dict[str, Rollup]) -> None:
    html = documents["demo-year"].to_html()
    assert "max-width: 760px" not in html
    for chart in _charts(html):
        assert chart.get("width") == "100%"
        assert float((chart.get("viewBox") or "").split()[2]) >= 1100


def _chart(n_series: int, n_categories: int, name_len: int, *, thin: bool, seed: int = 0) -> ET.Element:
    names = [f"series-{i:02d}-" + "x" * name_len for i in range(n_series)]
    cats = [f"cat-{i:03d}-" + "y" * (name_len // 2) for i in range(n_categories)]
    series = [
        (n, [((i * 7 + j * 3 + seed) % 11) * 0.37 for j in range(n_categories)]) for i, n in enumerate(names)
    ]
    text = svg.bar_chart(
        chart_id="c",
        title="t",
        categories=cats,
        series=series,
        unit="kWh",
        stacked=True,
        fmt=fixed,
        thin_labels=thin,
    )
    return ET.fromstring(text)


@settings(max_examples=60, deadline=None)
@given(
    n_series=st.integers(1, 40),
    n_categories=st.integers(1, 400),
    name_len=st.integers(0, 40),
    thin=st.booleans(),
)
def test_any_number_of_series_and_categories_stays_readable(
    n_series: int, n_categories: int, name_len: int, thin: bool
) -> None:
    chart = _chart(n_series, n_categories, name_len, thin=thin)
    assert_legend_names_every_series(chart)
    assert_x_labels_apart(chart)
    assert_round_ticks(chart)
    assert_fills_distinct(chart)
    shown = _texts(chart, "category")
    assert shown[0].text is not None and shown[0].text.startswith("cat-000")
    if not thin and n_categories <= 60:  # a category axis names every model
        assert len(shown) == n_categories


# --------------------------------------------------------------------------------------------
# units and notation


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1e-12, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_unit_is_chosen_by_magnitude(value: float) -> None:
    for units in (ENERGY_UNITS, CO2E_UNITS):
        unit = choose_unit([value, value / 3, None], units)
        shown = unit.of(value)
        i = units.index(unit)
        assert shown < UNIT_CEILING or i == len(units) - 1, (value, unit)
        if i > 0:  # a smaller unit would have needed five integer digits or more
            assert units[i - 1].of(value) >= UNIT_CEILING, (value, unit)
        assert shown >= UNIT_CEILING / 1000 or i == 0, (value, unit)


def test_unit_examples() -> None:
    assert choose_unit([0.3125], ENERGY_UNITS).symbol == "kWh"  # the demo's year: 312.5 kWh
    assert choose_unit([0.02627], ENERGY_UNITS).symbol == "kWh"  # one month: 26.27 kWh
    assert choose_unit([0.005], ENERGY_UNITS).symbol == "Wh"  # 5,000 Wh
    assert choose_unit([5e6], ENERGY_UNITS).symbol == "GWh"
    assert choose_unit([0.08311], CO2E_UNITS).symbol == "kgCO2e"
    assert choose_unit([7.016e-3], CO2E_UNITS).symbol == "gCO2e"
    assert choose_unit([None, 0], ENERGY_UNITS).symbol == "MWh"  # nothing to size: the form's unit


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_round_tick_steps(peak: float) -> None:
    step = tick_step(peak)
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-12)
    assert any(math.isclose(mantissa, m, rel_tol=1e-9) for m in (1, 2, 5, 10)), (peak, step)
    assert step * 6 >= peak * (1 - 1e-12)  # at most six intervals cover the data
    smaller = step * (0.4 if math.isclose(mantissa, 5) else 0.5)  # the round step below
    assert smaller * 6 < peak * (1 + 1e-9), (peak, step)  # would not have covered the data
    labels = [tick_label(k * step, step) for k in range(7)]
    assert len({len(t.split(".")[1]) if "." in t else 0 for t in labels}) == 1


def _table_columns(doc: Rollup) -> list[tuple[str, list[str]]]:
    """(header, cells) of every column of every table, from the markdown and the HTML."""
    out = []
    for t in _md_tables(doc.to_markdown()):
        for i, h in enumerate(t[0]):
            out.append((h, [row[i] for row in t[1:]]))
    for table in _root(doc.to_html()).iter("table"):
        rows = [[("".join(c.itertext())).strip() for c in tr] for tr in table.iter("tr")]
        for i, h in enumerate(rows[0]):
            out.append((h, [row[i] for row in rows[1:] if i < len(row)]))
    return out


def test_no_column_mixes_notations(documents: dict[str, Rollup]) -> None:
    columns = 0
    for name, doc in documents.items():
        for header, cells in _table_columns(doc):
            kinds = {notation(c) for c in cells} - {None}
            assert len(kinds) <= 1, (name, header, cells)
            columns += 1
    assert columns > 200


def test_a_month_reads_without_scientific_notation(documents: dict[str, Rollup]) -> None:
    """The daily table of a month document (the issue's all-scientific table) and every energy
    and emissions figure: fixed notation, in the unit chosen for the month."""
    for key in ("demo-month", "golden-month"):
        md = documents[key].to_markdown()
        (daily,) = [t for t in _md_tables(md) if t[0][0] == "Day (UTC)"]
        assert all(notation(c) != "scientific" for row in daily[1:] for c in row[1:])
        unit = re.fullmatch(r".* \((\w+)\)", daily[0][1])
        assert unit and unit[1] in {u.symbol for u in ENERGY_UNITS}
    doc = documents["demo-month"]
    md, units = doc.to_markdown(), doc_units(doc.data)
    total = units.energy.of(doc.data.total.values["energy_mwh"])  # type: ignore[arg-type]
    assert 10 <= total < 10_000  # the headline figure reads as a plain number in its unit
    assert f"| Energy ({units.energy.symbol}) |" in md and f"Location-based ({units.co2e.symbol})" in md
    assert not re.search(r"\d\.\d+e[-+]\d", md.split("## Computational resources")[0])


def test_code_of_practice_block_keeps_mwh(documents: dict[str, Rollup]) -> None:
    for name, doc in documents.items():
        if not doc.data.models:
            continue
        md = doc.to_markdown()
        (form,) = [t for t in _md_tables(md) if t[0][:3] == ["Model", "Phase", "Energy (MWh)"]]
        assert len(form) > 1, name
        json_form = doc.to_dict()["model_documentation_form"]
        shown = {(r[0], r[1]): r[2] for r in form[1:]}
        for entry in json_form:
            assert shown[(entry["model"], "inference")] == entry["inference"]["energy_mwh_reported"]
            assert "e" not in entry["inference"]["energy_mwh_reported"]


# --------------------------------------------------------------------------------------------
# model card


def test_model_card_pairs_each_hardware_with_its_power(documents: dict[str, Rollup]) -> None:
    for name, doc in documents.items():
        tdp = {h.hardware: h.tdp_w for m in doc.data.methodology for h in m.hardware}
        (card,) = [
            t
            for t in _md_tables(doc.to_markdown())
            if t[0][:4] == ["Model", "Phase", "Hardware", "Power (W, board TDP)"]
        ]
        by_model: dict[str, list[str]] = {}
        for model, phase, hardware, power, *_ in card[1:]:
            # one hardware name, one power: never a list of either
            assert ", " not in hardware and re.fullmatch(r"n/a|[\d,]+(\.\d+)?|", power), (
                name,
                hardware,
                power,
            )
            if hardware in ("(all hardware)",):
                assert power == ""
                continue
            if phase == "training":
                continue
            expected = tdp.get(hardware)
            assert power == ("n/a" if expected is None else f"{expected:,.0f}"), (name, hardware, power)
            by_model.setdefault(model, []).append(hardware)
        for fig in doc.data.models:  # one row per hardware the model ran on
            recorded = [h if h != "(not recorded)" else None for h in by_model[fig.model]]
            assert [h for h in recorded if h] == list(fig.hardware), (name, fig.model)


def test_model_card_hardware_rows_add_up(documents: dict[str, Rollup]) -> None:
    for doc in documents.values():
        for fig in doc.data.models:
            total = sum(h.energy_mwh or 0.0 for h in fig.by_hardware)
            assert total == pytest.approx(fig.values["energy_mwh"] or 0.0, rel=1e-9, abs=1e-15)
            assert sum(h.requests for h in fig.by_hardware) == fig.values["requests"]


# --------------------------------------------------------------------------------------------
# SYNTHETIC


def test_synthetic_is_said_in_title_and_on_every_page_marker(documents: dict[str, Rollup]) -> None:
    for name, doc in documents.items():
        synthetic = name.startswith("demo")
        assert doc.data.synthetic is synthetic, name
        assert doc.to_dict()["synthetic"] is synthetic
        html, md = doc.to_html(), doc.to_markdown()
        root = _root(html)
        title = root.find(".//title")
        h1 = root.find(".//h1")
        assert title is not None and h1 is not None
        header = root.find(".//header")
        footer = root.find(".//footer")
        if synthetic:
            assert (title.text or "").startswith(SYNTHETIC_MARK) and (h1.text or "").startswith(
                SYNTHETIC_MARK
            )
            assert md.startswith(f"# {SYNTHETIC_MARK}")
            assert header is not None and SYNTHETIC_MARK in "".join(header.itertext())
            assert footer is not None and SYNTHETIC_MARK in "".join(footer.itertext())
            # printed pages: the page-margin boxes repeat the mark on every page
            assert re.search(r"@top-center \{ content: \"SYNTHETIC", html)
            assert re.search(r"@bottom-center \{ content: \"SYNTHETIC", html)
            assert md.rstrip().endswith("**") and SYNTHETIC_MARK in md.rstrip().splitlines()[-1]
        else:
            assert SYNTHETIC_MARK not in html and SYNTHETIC_MARK not in md
            assert header is None and footer is None


def test_synthetic_pack_marking() -> None:
    assert is_synthetic_pack("SYNTHETIC pack for the demo and benchmarks")
    assert is_synthetic_pack("  SYNTHETIC: made up")
    assert not is_synthetic_pack("Vendor figures; not SYNTHETIC")
    assert not is_synthetic_pack("SYNTHETICALLY derived") and not is_synthetic_pack(None)


@pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("pdftotext") is None,
    reason="printing needs chromium and pdftotext (poppler-utils)",
)
def test_printed_pdf_says_synthetic_on_every_page(documents: dict[str, Rollup], tmp_path: Path) -> None:
    html = tmp_path / "month.html"
    html.write_text(documents["demo-month"].to_html(), encoding="utf-8")
    pdf = tmp_path / "month.pdf"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    pages = text.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) >= 2
    for i, page in enumerate(pages, start=1):
        assert "SYNTHETIC DATA" in page, f"page {i} of {len(pages)} does not say SYNTHETIC"
