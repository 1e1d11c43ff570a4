"""Regulatory rollups (issue 5) on a hand-built ledger: no engine needed.

What a compliance team relies on: every number shown in markdown, HTML or CSV is the JSON's
number (rounded only for people), the JSON equals an independent SQL over ``wl_hourly``, the
HTML is one parseable file with the three charts, and the document says which configs, runs
and files the numbers came from. Golden files pin the whole output; regenerate them with
``WL_UPDATE_GOLDEN=1 pytest tests/test_rollup.py`` and review the diff.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ledger_data import cell, table, utc
from wattledger.cli import app
from wattledger.ledger import ConfigIdentity, FileStamp, LedgerWriter, RunInfo, SourceRead, connect_ledger
from wattledger.rollup import METRICS, TOTAL, Rollup, rollup
from wattledger.rollup.data import ENERGY_METHODS
from wattledger.rollup.units import CO2E_UNITS, ENERGY_UNITS

GOLDEN = Path(__file__).parent / "golden"
SVG = "{http://www.w3.org/2000/svg}"

PACK_TEXT = """\
[pack]
name = "golden-pack"
version = "1"
description = "Hand-written pack for the rollup golden files."

[defaults]
pue = 1.2

[uncertainty]
tokens = 0.3
gpu_time = 0.5

[hardware."nvidia-h100-sxm"]
tdp_w = 700
peak_tflops = 989
source = "NVIDIA H100 SXM data sheet"

[models."llama-3.1-8b"]
active_params_b = 8.03
source = "Meta Llama 3.1 model card"

[[models."llama-3.1-8b".coefficients]]
hardware = "nvidia-h100-sxm"
wh_per_1k_input = 0.00632
wh_per_1k_output = 0.0331
uncertainty = 0.5
source = "ML.ENERGY leaderboard v3"

[models."mixtral-8x7b"]
active_params_b = 12.9
note = "no measured inference energy: gpu_time"

[sites."fra-1"]
zone = "DE"
pue = 1.15
host_overhead = 0.43
idle_overhead = 0.17
market_g_per_kwh = 0.0
fallback_g_per_kwh = 380.0
hardware = "nvidia-h100-sxm"

[sites."iad-1"]
zone = "US-MIDA-PJM"
pue = 1.3
fallback_g_per_kwh = 400.0
hardware = "nvidia-h100-sxm"

[training."llama-3.1-8b"]
gpu_hours = 1460000
hardware = "nvidia-h100-sxm"
site = "fra-1"
note = "Llama 3.1 model card"

[training."mixtral-8x7b"]
energy_mwh = 1234.5
site = "iad-1"
"""
PACK_B_TEXT = PACK_TEXT.replace('version = "1"', 'version = "2"').replace("pue = 1.15", "pue = 1.25")


def _config(text: str, origin: str) -> ConfigIdentity:
    version = re.search(r'version = "(\d+)"', text)
    assert version
    return ConfigIdentity(hashlib.sha256(text.encode()).hexdigest(), "golden-pack", version[1], origin, text)


CONFIG_1 = _config(PACK_TEXT, "/etc/wattledger/golden-1.toml")
CONFIG_2 = _config(PACK_B_TEXT, "/etc/wattledger/golden-2.toml")


def _source(path: str, records: int) -> SourceRead:
    stamp = FileStamp(path, 1000 + records, datetime(2025, 6, 1, tzinfo=UTC))
    return SourceRead(path, stamp, hashlib.sha256(path.encode()).hexdigest(), records, 0)


def _fra(hour: datetime, model: str, kwh: float | None, **kw: Any) -> dict[str, Any]:
    row = cell("", hour, model, kwh, hardware="nvidia-h100-sxm", **kw)
    if kwh is not None and "co2e_market_kg" not in kw:
        row["co2e_market_kg"] = 0.0  # fra-1 has a contractual factor of 0
    return row


def _iad(hour: datetime, model: str, kwh: float | None, **kw: Any) -> dict[str, Any]:
    base = {"site": "iad-1", "zone": "US-MIDA-PJM", "hardware": "nvidia-h100-sxm"}
    row = cell("", hour, model, kwh, **{**base, **kw})
    row["co2e_market_kg"] = row["co2e_location_kg"]  # iad-1 has no instrument: location factor
    return row


def build_golden(path: Path) -> Path:
    """Two runs, two configs (the second re-estimates March under pack version 2): fixed ids,
    times and paths so the documents are byte-for-byte reproducible."""
    runs = [
        (
            RunInfo("20250401T020000.000Z-aaaaaa", utc(2025, 4, 1, 2), "wattledger ingest logs/q1", "0.1.0"),
            CONFIG_1,
            {
                "/data/logs/2025-01.jsonl": [
                    _fra(utc(2025, 1, 1, 0), "llama-3.1-8b", 120.0, gpu_hours=40.0),
                    _fra(utc(2025, 1, 15, 13), "llama-3.1-8b", 80.5, method="measured", gpu_hours=30.0),
                    _iad(
                        utc(2025, 1, 2, 5),
                        "mixtral-8x7b",
                        310.25,
                        method="gpu_time",
                        gpu_hours=200.0,
                        fallback_kwh=310.25,
                    ),
                    _iad(
                        utc(2025, 1, 2, 6),
                        "mixtral-8x7b",
                        None,
                        requests=7.0,
                        unestimated_requests=7.0,
                        flops=None,
                    ),
                ],
                "/data/logs/2025-02.jsonl": [
                    _fra(utc(2025, 2, 10, 9), "llama-3.1-8b", 95.0, requests=12.5, output_tokens=640.0),
                    _iad(
                        utc(2025, 2, 11, 9),
                        "mixtral-8x7b",
                        42.0,
                        method="flops",
                        co2e_location_kg=None,
                        co2e_market_kg=None,
                        unresolved_kwh=42.0,
                    ),
                ],
            },
        ),
        (
            RunInfo(
                "20250402T020000.000Z-bbbbbb", utc(2025, 4, 2, 2), "wattledger ingest logs/2025-03", "0.1.0"
            ),
            CONFIG_2,
            {
                "/data/logs/2025-03.jsonl": [
                    _fra(utc(2025, 3, 31, 23), "llama-3.1-8b", 150.0, records=20, requests=20.0),
                ],
            },
        ),
    ]
    for run, config, files in runs:
        sources = [_source(p, sum(r["records"] for r in rows)) for p, rows in files.items()]
        rows = [{**r, "source": p} for p, file_rows in files.items() for r in file_rows]
        with LedgerWriter(path) as writer:
            writer.commit_run(run, config, sources, table(rows))
    return path


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_golden(tmp_path_factory.mktemp("rollup") / "golden.duckdb")


@pytest.fixture(scope="module")
def year(ledger: Path) -> Rollup:
    return rollup(ledger, year=2025)


# --------------------------------------------------------------------------------------------
# independent expectations: plain SQL over wl_hourly, written apart from the rollup's queries


def expected_from_sql(ledger: Path, start: datetime, end: datetime, model: str | None) -> dict[str, dict]:
    con = connect_ledger(ledger)
    try:
        rows = con.execute(
            """SELECT coalesce(model, '(all models)') AS model,
                SUM(requests), CAST(SUM(records) AS BIGINT), SUM(input_tokens), SUM(output_tokens),
                SUM(energy_kwh), SUM(energy_kwh_low), SUM(energy_kwh_high),
                SUM(CASE WHEN method = 'measured' THEN energy_kwh END),
                SUM(CASE WHEN method = 'attributed' THEN energy_kwh END),
                SUM(CASE WHEN method = 'tokens' THEN energy_kwh END),
                SUM(CASE WHEN method = 'gpu_time' THEN energy_kwh END),
                SUM(CASE WHEN method = 'flops' THEN energy_kwh END),
                SUM(flops), SUM(gpu_hours), SUM(co2e_location_kg), SUM(co2e_market_kg),
                SUM(fallback_kwh), SUM(unresolved_kwh), SUM(unestimated_requests),
                SUM(CASE WHEN method <> 'none' THEN requests END),
                SUM(CASE WHEN method <> 'none' THEN output_tokens END),
                SUM(CASE WHEN co2e_location_kg IS NOT NULL THEN requests END),
                SUM(CASE WHEN site = 'fra-1' THEN 0 ELSE energy_kwh END),
                SUM(failed_requests), SUM(cached_requests)
            FROM wl_hourly
            WHERE hour >= ? AND hour < ? AND (? IS NULL OR model = ?)
            GROUP BY ROLLUP (model)""",
            [start, end, model, model],
        ).fetchall()
    finally:
        con.close()
    out = {}
    for r in rows:
        (
            name,
            req,
            rec,
            tin,
            tout,
            e,
            lo,
            hi,
            e_me,
            e_at,
            e_to,
            e_gt,
            e_fl,
            fl,
            gh,
            cl,
            cm,
            fb,
            un,
            ue,
            est_req,
            est_out,
            loc_req,
            no_instr,
            failed,
            cached,
        ) = r

        def mwh(x: float | None) -> float | None:
            return None if x is None else x / 1000

        def div(a: float | None, b: float | None, k: float) -> float | None:
            return None if a is None or not b else a / b * k

        by_method = {"measured": e_me, "attributed": e_at, "tokens": e_to, "gpu_time": e_gt, "flops": e_fl}
        v = {
            "requests": req,
            "records": rec,
            "input_tokens": tin,
            "output_tokens": tout,
            "energy_mwh": mwh(e),
            "energy_low_mwh": mwh(lo),
            "energy_high_mwh": mwh(hi),
            "flops": fl,
            "gpu_hours": gh,
            "co2e_location_t": mwh(cl),
            "co2e_market_t": mwh(cm),
            # average intensity over energy whose intensity was resolved
            "intensity_location_g_per_kwh": div(cl, None if e is None else e - (un or 0), 1000),
            "intensity_market_g_per_kwh": div(cm, None if e is None else e - (un or 0), 1000),
            "fallback_mwh": mwh(fb),
            "fallback_share_pct": div(fb, e, 100),
            "unresolved_mwh": mwh(un),
            "unresolved_share_pct": div(un, e, 100),
            "no_instrument_mwh": mwh(no_instr),
            "unestimated_requests": ue,
            "unestimated_share_pct": div(ue, req, 100),
            "wh_per_request": div(e, est_req, 1e3),
            "wh_per_1000_requests": div(e, est_req, 1e6),
            "wh_per_1000_output_tokens": div(e, est_out, 1e6),
            "gco2e_location_per_request": div(cl, loc_req, 1e3),
            "gco2e_market_per_request": div(cm, loc_req, 1e3),
            "failed_requests": failed,
            "cached_requests": cached,
        }
        for m, kwh in by_method.items():
            v[f"energy_{m}_mwh"] = None if e is None else mwh(kwh or 0.0)
            v[f"share_{m}_pct"] = div(kwh or 0.0, e, 100)
        out[name] = v
    return out


def assert_same(actual: Any, expected: Any, where: str) -> None:
    if expected is None:
        assert actual is None, where
    else:
        assert actual is not None, where
        assert math.isclose(actual, expected, rel_tol=1e-12, abs_tol=1e-15), (where, actual, expected)


@pytest.mark.parametrize(
    ("month", "model"), [(None, None), (1, None), (None, "mixtral-8x7b"), (2, "llama-3.1-8b")]
)
def test_json_equals_independent_sql(ledger: Path, month: int | None, model: str | None) -> None:
    start = utc(2025, month or 1, 1)
    end = utc(2026, 1, 1) if month is None else utc(2025, month + 1, 1)
    expected = expected_from_sql(ledger, start, end, model)
    data = json.loads(rollup(ledger, year=2025, month=month, model=model).to_json())
    got = {m["model"]: m for m in data["models"]}
    assert sorted(got) == sorted(k for k in expected if k != TOTAL)
    assert {m.key for m in METRICS} <= set(expected[TOTAL])
    for name, exp in expected.items():
        row = data["total"] if name == TOTAL else got[name]
        for metric in METRICS:
            assert_same(row[metric.key], exp[metric.key], f"{name}.{metric.key}")


def test_golden_numbers_by_hand(year: Rollup) -> None:
    """A few figures worked out on paper, so the SQL oracle is itself checked."""
    models = {m.model: m.values for m in year.data.models}
    llama = models["llama-3.1-8b"]
    assert llama["energy_mwh"] == pytest.approx((120 + 80.5 + 95 + 150) / 1000)
    assert llama["share_measured_pct"] == pytest.approx(80.5 / 445.5 * 100)
    assert llama["wh_per_request"] == pytest.approx(445.5e3 / (10 + 10 + 12.5 + 20))
    mixtral = models["mixtral-8x7b"]
    assert mixtral["unestimated_requests"] == 7
    assert mixtral["wh_per_request"] == pytest.approx(352.25e3 / 20)  # 7 unestimated left out
    assert mixtral["intensity_location_g_per_kwh"] == pytest.approx(0.4 * 1000)  # over resolved kWh
    assert mixtral["unresolved_share_pct"] == pytest.approx(42 / 352.25 * 100)


# --------------------------------------------------------------------------------------------
# every shown number equals the JSON


def _parse_shown(text: str) -> float | None:
    text = text.strip()
    return None if text == "n/a" else float(text.replace(",", ""))


def assert_shown(text: str, value: Any, where: str) -> None:
    """A shown figure is the JSON value to 4 significant digits (counts exactly)."""
    shown = _parse_shown(text)
    if value is None:
        assert shown is None, (where, text)
        return
    assert shown is not None, (where, text, value)
    if isinstance(value, int):
        assert shown == value, (where, text, value)
    else:
        assert math.isclose(shown, value, rel_tol=5e-4, abs_tol=1e-300), (where, text, value)
        if value != 0:  # at least 2 significant digits: the Code of Practice's floor
            assert len(re.sub(r"e.*|[^0-9]", "", text).lstrip("0")) >= 2 or value == int(value), text


LABEL_TO_KEY = {m.label: m.key for m in METRICS}
#: Documents show energy and emissions in a unit chosen for their magnitude (kWh, kgCO2e...);
#: the JSON keeps MWh and tCO2e. A shown figure is compared in its shown unit.
PER_JSON = {u.symbol: u.per_json for u in (*ENERGY_UNITS, *CO2E_UNITS)}


def split_header(header: str) -> tuple[str, str]:
    """``"Energy (kWh)"`` -> ``("Energy", "kWh")``."""
    m = re.fullmatch(r"(.*) \(([^()]*)\)", header)
    assert m, header
    return m[1], m[2]


def in_unit(value: Any, unit: str | None) -> Any:
    """A JSON value (MWh, tCO2e, or any other unit) in the shown ``unit``."""
    if value is None or unit not in PER_JSON:
        return value
    return value / PER_JSON[unit]


def _md_tables(md: str) -> list[list[list[str]]]:
    tables, current = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r"-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _is_metric_table(header: list[str]) -> bool:
    return header[0] == "Model" and all("(" in h and split_header(h)[0] in LABEL_TO_KEY for h in header[1:])


def _check_rows(tables: list[list[list[str]]], doc: dict) -> int:
    """Compare every numeric cell of the per-model, model-card, Code of Practice and time tables
    with the JSON; returns how many cells were checked (so a parser that finds nothing fails)."""
    models = {m["model"]: m for m in doc["models"]}
    models[TOTAL] = doc["total"]
    training = {t["model"]: t for t in doc["training"]}
    form = {f["model"]: f for f in doc["model_documentation_form"]}
    series = doc["energy_over_time"]
    checked = 0
    for tab in tables:
        header, rows = tab[0], tab[1:]
        if header[:4] == ["Model", "Phase", "Hardware", "Power (W, board TDP)"]:
            col = {"GPU hours": "gpu_hours", "Energy": "energy_mwh"}
            col |= {"Location-based": "co2e_location_t", "Market-based": "co2e_market_t"}
            for row in rows:
                if row[1] == "training":
                    src = training[row[0]]
                elif row[2] == "(all hardware)":
                    src = models[row[0]]
                else:
                    hw = None if row[2] == "(not recorded)" else row[2]
                    (src,) = [h for h in models[row[0]]["by_hardware"] if h["hardware"] == hw]
                    assert_shown(row[3], src["tdp_w"], f"card {row[0]} {row[2]} power")
                for i, h in enumerate(header[4:], start=4):
                    label, unit = split_header(h)
                    key = col[label]
                    assert_shown(row[i], in_unit(src[key], unit), f"card {row[0]} {row[1]} {row[2]} {key}")
                    checked += 1
        elif header[:3] == ["Model", "Phase", "Energy (MWh)"]:  # Code of Practice: MWh, as asked
            for row in rows:
                entry = form[row[0]][row[1]]
                assert_shown(row[2], entry["energy_mwh"], f"form {row[0]} {row[1]}")
                assert row[2] == entry["energy_mwh_reported"]
                assert row[3] == entry["energy_basis"]
                if row[1] == "inference":
                    assert_shown(row[4], entry["compute_flops"], f"form {row[0]} flops")
                checked += 1
        elif _is_metric_table(header):
            for row in rows:
                for h, text in zip(header[1:], row[1:], strict=True):
                    label, unit = split_header(h)
                    value = in_unit(models[row[0]][LABEL_TO_KEY[label]], unit)
                    assert_shown(text, value, f"{row[0]} {h}")
                    checked += 1
        elif header[0] in ("Month", "Day (UTC)"):
            for row in rows:
                i = series["periods"].index(row[0])
                for h, text in zip(header[1:], row[1:], strict=True):
                    name, unit = split_header(h)
                    assert_shown(text, in_unit(series["energy_mwh"][name][i], unit), f"{row[0]} {h}")
                    checked += 1
    return checked


@pytest.mark.parametrize(("month", "model"), [(None, None), (3, None), (None, "llama-3.1-8b")])
def test_markdown_numbers_equal_json(ledger: Path, month: int | None, model: str | None) -> None:
    r = rollup(ledger, year=2025, month=month, model=model)
    doc = json.loads(r.to_json())
    checked = _check_rows(_md_tables(r.to_markdown()), doc)
    assert checked >= 40


def _html_root(text: str) -> ET.Element:
    return ET.fromstring(text.replace("<!DOCTYPE html>", ""))


def test_html_numbers_equal_json(year: Rollup) -> None:
    text = year.to_html()
    doc = json.loads(year.to_json())
    root = _html_root(text)
    # the same tables, read as a person would (header text), and through the data attributes
    tables = []
    for t in root.iter("table"):
        rows = [[("".join(c.itertext())).strip() for c in tr] for tr in t.iter("tr")]
        tables.append(rows)
    assert _check_rows(tables, doc) >= 100
    models = {m["model"]: m for m in doc["models"]} | {TOTAL: doc["total"]}
    training = {t["model"]: t for t in doc["training"]}
    series = doc["energy_over_time"]
    tagged = [td for td in root.iter("td") if td.get("data-key")]
    assert len(tagged) >= 100
    for td in tagged:
        block, key, model = td.get("data-block"), td.get("data-key"), td.get("data-model")
        if block == "models":
            value = models[model][key]
        elif block == "training":
            value = training[model][key]
        elif block == "hardware":
            hw = td.get("data-hardware")
            hw = None if hw == "(not recorded)" else hw
            (entry,) = [h for h in models[model]["by_hardware"] if h["hardware"] == hw]
            value = entry[key]
        else:
            value = series["energy_mwh"][model][series["periods"].index(key)]
        assert_shown(td.text or "", in_unit(value, td.get("data-unit")), f"{block} {model} {key}")


def test_csv_equals_json_exactly(year: Rollup) -> None:
    doc = json.loads(year.to_json())
    rows = list(csv.DictReader(io.StringIO(year.to_csv())))
    assert [r["model"] for r in rows] == [m["model"] for m in doc["models"]] + [TOTAL]
    by_model = {m["model"]: m for m in doc["models"]} | {TOTAL: doc["total"]}
    for row in rows:
        for metric in METRICS:
            cell_text = row[f"{metric.key} [{metric.unit}]"]
            value = by_model[row["model"]][metric.key]
            assert (cell_text == "") == (value is None), (row["model"], metric.key)
            if value is not None:
                assert float(cell_text) == value, (row["model"], metric.key, cell_text, value)


# --------------------------------------------------------------------------------------------
# HTML: one self-contained file with the three charts


def test_html_is_self_contained_with_three_charts(year: Rollup) -> None:
    text = year.to_html()
    root = _html_root(text)  # well-formed: parses as XML
    assert root.find(".//script") is None and "<script" not in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and "@import" not in text
    assert "@media print" in text
    charts = {svg.get("id"): svg for svg in root.iter(f"{SVG}svg")}
    assert set(charts) == {"chart-energy-time", "chart-emissions", "chart-energy-method"}

    def series(chart: str) -> dict[str, dict[str, float]]:
        return {
            g.get("data-series"): {
                r.get("data-category"): float(r.get("data-value")) for r in g.iter(f"{SVG}rect")
            }
            for g in charts[chart].iter(f"{SVG}g")
            if g.get("class") == "series"
        }

    doc = json.loads(year.to_json())
    names = [m["model"] for m in doc["models"]]
    time = series("chart-energy-time")
    assert list(time) == names
    for name in names:
        expected = {
            p: v
            for p, v in zip(
                doc["energy_over_time"]["periods"], doc["energy_over_time"]["energy_mwh"][name], strict=True
            )
            if v is not None
        }
        assert time[name] == expected
    emissions = series("chart-emissions")
    assert list(emissions) == ["Location-based", "Market-based"]
    for m in doc["models"]:
        assert emissions["Location-based"][m["model"]] == m["co2e_location_t"]
        assert emissions["Market-based"][m["model"]] == m["co2e_market_t"]
    method = series("chart-energy-method")
    assert list(method) == list(ENERGY_METHODS)
    for m in doc["models"]:
        for k in ENERGY_METHODS:
            assert method[k][m["model"]] == m[f"energy_{k}_mwh"]


# --------------------------------------------------------------------------------------------
# filters, periods, training, warnings, provenance


def test_model_filter(ledger: Path) -> None:
    r = rollup(ledger, year=2025, model="mixtral-8x7b")
    doc = json.loads(r.to_json())
    assert [m["model"] for m in doc["models"]] == ["mixtral-8x7b"]
    assert [t["model"] for t in doc["training"]] == ["mixtral-8x7b"]
    assert list(doc["energy_over_time"]["energy_mwh"]) == ["mixtral-8x7b"]
    assert doc["total"]["energy_mwh"] == doc["models"][0]["energy_mwh"]
    assert "llama" not in r.to_markdown().split("## Methodology")[0]
    assert len(list(csv.reader(io.StringIO(r.to_csv())))) == 3  # header, model, total


def test_month_is_a_slice_of_the_year(ledger: Path, year: Rollup) -> None:
    jan = json.loads(rollup(ledger, year=2025, month=1).to_json())
    full = json.loads(year.to_json())
    assert jan["period"]["start"] == "2025-01-01T00:00:00+00:00"
    assert jan["period"]["end"] == "2025-02-01T00:00:00+00:00"
    assert jan["energy_over_time"]["granularity"] == "day"
    assert len(jan["energy_over_time"]["periods"]) == 31
    months = full["energy_over_time"]
    assert months["granularity"] == "month" and len(months["periods"]) == 12
    for m in jan["models"]:
        monthly = months["energy_mwh"][m["model"]][0]
        daily = sum(v for v in jan["energy_over_time"]["energy_mwh"][m["model"]] if v is not None)
        assert m["energy_mwh"] == pytest.approx(monthly) == pytest.approx(daily)
    # March is in the year, not in January
    assert full["period"]["data_last_hour_end"] == "2025-04-01T00:00:00+00:00"
    assert jan["period"]["data_last_hour_end"] == "2025-01-15T14:00:00+00:00"


def test_training_section(year: Rollup) -> None:
    doc = json.loads(year.to_json())
    training = {t["model"]: t for t in doc["training"]}
    llama = training["llama-3.1-8b"]
    assert llama["energy_mwh"] == pytest.approx(1_460_000 * 700 * 1.15 / 1e6)  # config 1: most energy
    assert llama["energy_basis"].startswith("estimated") and "PUE 1.15" in llama["energy_basis"]
    assert llama["co2e_location_t"] == pytest.approx(llama["energy_mwh"] * 0.380)
    assert llama["co2e_market_t"] == 0.0
    mixtral = training["mixtral-8x7b"]
    assert mixtral["energy_mwh"] == 1234.5 and mixtral["energy_basis"].startswith("measured")
    assert mixtral["co2e_market_t"] == pytest.approx(1234.5 * 0.4)  # no instrument: location factor
    form = {f["model"]: f for f in doc["model_documentation_form"]}
    assert form["mixtral-8x7b"]["training"]["energy_mwh_reported"] == "1,234"
    assert form["llama-3.1-8b"]["inference"]["energy_basis"].startswith("partly measured")
    assert form["mixtral-8x7b"]["inference"]["energy_basis"] == "estimated"
    llama_inference = next(m for m in doc["models"] if m["model"] == "llama-3.1-8b")
    assert form["llama-3.1-8b"]["inference"]["compute_flops"] == llama_inference["flops"]
    md = year.to_markdown()
    card = md.split("## Model card")[1].split("## Methodology")[0]
    # hardware and its power side by side (issue 15), then GPU hours and energy in MWh: the
    # training figures set the card's unit
    assert "| llama-3.1-8b | training | nvidia-h100-sxm | 700 | 1,460,000 | 1,175 |" in card
    assert "| llama-3.1-8b | inference |" in card


def test_mixed_config_warning(ledger: Path, year: Rollup) -> None:
    assert any("mixes 2 methodology configs" in w for w in year.warnings)
    for text in (year.to_markdown(), year.to_html()):
        assert "mixes 2 methodology configs" in text
        assert CONFIG_1.sha256 in text and CONFIG_2.sha256 in text
    assert any("mixes" in w for w in json.loads(year.to_json())["warnings"])
    jan = rollup(ledger, year=2025, month=1)
    assert jan.warnings == () and "mixes" not in jan.to_markdown()


def test_provenance_lists_runs_and_sources(year: Rollup) -> None:
    prov = json.loads(year.to_json())["provenance"]
    assert [r["run_id"] for r in prov["runs"]] == [
        "20250401T020000.000Z-aaaaaa",
        "20250402T020000.000Z-bbbbbb",
    ]
    assert [s["path"] for s in prov["sources"]] == [
        "/data/logs/2025-01.jsonl",
        "/data/logs/2025-02.jsonl",
        "/data/logs/2025-03.jsonl",
    ]
    md = year.to_markdown()
    for s in prov["sources"]:
        # Sources recorded since schema 4 carry BLAKE3 (as b3sum prints it), with its name.
        assert s["sha256"] is None and f"blake3 {s['blake3']}" in md


def test_empty_period_renders(ledger: Path) -> None:
    r = rollup(ledger, year=2024)
    assert r.data.models == () and any("no rows" in w for w in r.warnings)
    for text in (r.to_markdown(), r.to_html(), r.to_json(), r.to_csv()):
        assert text
    _html_root(r.to_html())


# --------------------------------------------------------------------------------------------
# golden files


@pytest.mark.parametrize(
    ("name", "month", "model"),
    [("year-2025", None, None), ("month-2025-01", 1, None), ("year-2025-mixtral", None, "mixtral-8x7b")],
)
def test_golden(ledger: Path, name: str, month: int | None, model: str | None) -> None:
    r = rollup(ledger, year=2025, month=month, model=model)
    update = os.environ.get("WL_UPDATE_GOLDEN") == "1"
    for ext, text in (
        ("md", r.to_markdown()),
        ("html", r.to_html()),
        ("json", r.to_json()),
        ("csv", r.to_csv()),
    ):
        path = GOLDEN / f"rollup-{name}.{ext}"
        if update:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"{path} missing; run with WL_UPDATE_GOLDEN=1"
        assert text == path.read_text(encoding="utf-8"), f"{path} differs; WL_UPDATE_GOLDEN=1 after review"


# --------------------------------------------------------------------------------------------
# CLI


runner = CliRunner()


def test_cli_rollup_writes_atomically_and_matches_api(ledger: Path, tmp_path: Path, year: Rollup) -> None:
    out = tmp_path / "annual.json"
    result = runner.invoke(
        app, ["rollup", "--ledger", str(ledger), "--year", "2025", "--format", "json", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert out.read_text() == year.to_json()
    assert "warning: this period mixes 2" in result.stderr
    assert not list(tmp_path.glob(".annual.json.*"))  # no temp file left behind
    md = runner.invoke(
        app,
        [
            "rollup",
            "--ledger",
            str(ledger),
            "--year",
            "2025",
            "--month",
            "1",
            "--model",
            "llama-3.1-8b",
            "--format",
            "md",
        ],
    )
    assert (
        md.exit_code == 0
        and md.stdout == rollup(ledger, year=2025, month=1, model="llama-3.1-8b").to_markdown()
    )


def test_cli_report_html_and_document_are_the_rollup(ledger: Path) -> None:
    result = runner.invoke(app, ["report", "--ledger", str(ledger), "--year", "2025", "--format", "html"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == rollup(ledger, year=2025).to_html()
    doc = runner.invoke(
        app, ["report", "--ledger", str(ledger), "--year", "2025", "--format", "json", "--document"]
    )
    assert doc.exit_code == 0 and doc.stdout == rollup(ledger, year=2025).to_json()
    csv_result = runner.invoke(app, ["report", "--ledger", str(ledger), "--year", "2025", "--format", "csv"])
    assert csv_result.exit_code == 0
    assert csv_result.stdout.splitlines()[0].startswith("model,requests,records,")
