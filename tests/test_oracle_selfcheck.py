"""The oracle checked against numbers worked out by hand from docs/methodology.md.

Why: the oracle is what the engine is judged by, so it needs its own ground truth. Every
expected value below is written as the spec's arithmetic on the edge-case config
(tests/edge_cases.py), not computed by any code under test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

import oracle_sql as o
from edge_cases import DE_JUNE_MEAN, write_edge_cases

REL = 1e-12


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory):
    return write_edge_cases(tmp_path_factory.mktemp("edge"))


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _cell(df: pl.DataFrame, **keys: str | None) -> dict:
    """The one hourly cell with these key values (None matches null)."""
    cond = pl.lit(True)
    for k, v in keys.items():
        cond = cond & (pl.col(k).is_null() if v is None else (pl.col(k) == v))
    rows = df.filter(cond)
    assert rows.height == 1, f"expected one cell for {keys}, got {rows.height}"
    return rows.row(0, named=True)


def close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=REL, abs_tol=1e-18)


T0 = "2025-06-01T00:10:00Z"  # DE 400 g/kWh, FR 50 g/kWh in this hour

# s-de: host 0.4 + idle 0.2, pue 1.1 -> E_fac = E_acc * 1.6 * 1.1; market 0.0; gpus 2.
# s-fr and unknown sites: defaults host 0.1, idle 0, pue 1.2 -> E_fac = E_acc * 1.1 * 1.2.
DE_FACTOR = 1.6 * 1.1
DEFAULT_FACTOR = 1.1 * 1.2


def test_one_record_per_method(tmp_path: Path, edge) -> None:
    log = _jsonl(
        tmp_path / "one_each.jsonl",
        [
            {"ts": T0, "model": "m-coef", "site": "s-de", "energy_j": 3600.0, "input_tokens": 10,
             "output_tokens": 20, "duration_s": 7.2},
            {"ts": T0, "model": "m-coef", "site": "s-de", "input_tokens": 1000, "output_tokens": 1000},
            {"ts": T0, "model": "m-coef", "site": "s-fr", "input_tokens": 1000, "output_tokens": 1000},
            {"ts": T0, "model": "m-flops", "site": "s-de", "duration_s": 3.6},
            {"ts": T0, "model": "m-flops", "site": "s-fr", "input_tokens": 100, "output_tokens": 100},
            {"ts": T0, "model": "m-bare", "site": "s-fr", "input_tokens": 100, "output_tokens": 100},
        ],
    )  # fmt: skip
    h = o.oracle_hourly(log, edge.config, edge.grid)
    assert h.height == 6

    # measured: 3600 J = 1 Wh; flops and gpu_hours counted although the method is measured.
    c = _cell(h, model="m-coef", method="measured")
    e_fac = 1.0 * DE_FACTOR / 1000
    assert close(c["energy_acc_kwh"], 1.0 / 1000)
    assert close(c["energy_it_kwh"], 1.6 / 1000)
    assert close(c["energy_kwh"], e_fac)
    assert close(c["energy_kwh_low"], e_fac * 0.95) and close(c["energy_kwh_high"], e_fac * 1.05)
    assert close(c["co2e_location_kg"], e_fac * 400 / 1000)
    assert c["co2e_market_kg"] == 0.0  # market 0.0 is a value, not "absent"
    assert close(c["flops"], 2 * 8e9 * 30)
    assert close(c["gpu_hours"], 7.2 * 2 / 3600)  # gpus from the site
    assert c["hardware"] == "nvidia-h100-sxm" and c["zone"] == "DE"

    # tokens, exact-hardware coefficient (h100) with its own uncertainty 0.25.
    c = _cell(h, model="m-coef", method="tokens", site="s-de")
    e_fac = (1000 * 0.0025 + 1000 * 0.033) / 1000 * DE_FACTOR / 1000
    assert close(c["energy_kwh"], e_fac)
    assert close(c["energy_kwh_low"], e_fac * 0.75) and close(c["energy_kwh_high"], e_fac * 1.25)
    assert close(c["flops"], 2 * 8e9 * 2000)
    assert c["gpu_hours"] is None

    # tokens, "*" coefficient (a100 at s-fr), default tokens uncertainty 0.3, no market instrument.
    c = _cell(h, model="m-coef", method="tokens", site="s-fr")
    e_fac = (1000 * 0.01 + 1000 * 0.1) / 1000 * DEFAULT_FACTOR / 1000
    assert close(c["energy_kwh"], e_fac)
    assert close(c["energy_kwh_high"], e_fac * 1.3)
    assert close(c["co2e_location_kg"], e_fac * 50 / 1000)
    assert close(c["co2e_market_kg"], e_fac * 50 / 1000)

    # gpu_time: P = 75 + 0.5 * (700 - 75) = 387.5 W, 2 gpus (site), concurrency 2 (default).
    c = _cell(h, model="m-flops", method="gpu_time")
    e_fac = 3.6 * 2 * 387.5 / 2 / 3600 * DE_FACTOR / 1000
    assert close(c["energy_kwh"], e_fac)
    assert close(c["energy_kwh_low"], e_fac * 0.5) and close(c["energy_kwh_high"], e_fac * 1.5)
    assert close(c["gpu_hours"], 3.6 * 2 / 3600)
    assert c["flops"] is None  # no tokens

    # flops: F = 2 * 70e9 * 200; a100 peak 312 TFLOP/s, mfu 0.1, tdp 400 W; uncertainty 1.0.
    c = _cell(h, model="m-flops", method="flops")
    f = 2 * 70e9 * 200
    e_fac = f / (312e12 * 0.1) * 400 / 3600 * DEFAULT_FACTOR / 1000
    assert close(c["flops"], f)
    assert close(c["energy_kwh"], e_fac)
    assert c["energy_kwh_low"] == 0.0  # floored at 0
    assert close(c["energy_kwh_high"], 2 * e_fac)

    # none: counted, energy null (not 0), no flops without active_params_b.
    c = _cell(h, model="m-bare", method="none")
    assert (c["records"], c["requests"], c["unestimated_requests"]) == (1, 1.0, 1.0)
    assert c["input_tokens"] == 100.0
    for k in ("energy_kwh", "energy_kwh_low", "co2e_location_kg", "co2e_market_kg", "flops", "fallback_kwh"):
        assert c[k] is None, k


def test_intensity_fallbacks_and_weights(tmp_path: Path, edge) -> None:
    log = _jsonl(
        tmp_path / "fallbacks.jsonl",
        [
            # site without grid data: fallback 500, market 100; utilization 0.8, concurrency 1.
            {"ts": T0, "model": "m-flops", "site": "s-nogrid", "duration_s": 3.6},
            # zone not in grid, no fallback: unresolved, co2e null even though market is set.
            {"ts": T0, "model": "m-flops", "site": "s-nofallback", "duration_s": 3.6},
            # DE 02:00 is absent from the grid -> June mean of DE.
            {"ts": "2025-06-01T02:30:00Z", "model": "m-coef", "site": "s-de", "energy_j": 3600.0},
            # DE 04:00 and 04:30 rows average to 320.
            {"ts": "2025-06-01T04:59:00Z", "model": "m-coef", "site": "s-de", "energy_j": 3600.0},
            # weight 10 on measured energy, weight 0 still a record.
            {"ts": T0, "model": "m-coef", "site": "s-de", "energy_j": 360.0, "weight": 10},
            {"ts": T0, "model": "m-coef", "site": "s-de", "energy_j": 360.0, "weight": 0},
            # unknown site with a zone: defaults + grid of the record's zone; hardware from record.
            {"ts": T0, "model": "m-flops", "site": "s-ghost", "zone": "FR", "hardware": "nvidia-h100-sxm",
             "duration_s": 3.6},
        ],
    )  # fmt: skip
    h = o.oracle_hourly(log, edge.config, edge.grid)

    c = _cell(h, site="s-nogrid")
    e_fac = 3.6 * 1 * (75 + 0.8 * 625) / 1.0 / 3600 * DEFAULT_FACTOR / 1000
    assert close(c["energy_kwh"], e_fac)
    assert close(c["co2e_location_kg"], e_fac * 500 / 1000)
    assert close(c["co2e_market_kg"], e_fac * 100 / 1000)
    assert close(c["fallback_kwh"], e_fac) and c["unresolved_kwh"] == 0.0

    c = _cell(h, site="s-nofallback")
    e_fac = 3.6 * 1 * 387.5 / 2.0 / 3600 * DEFAULT_FACTOR / 1000
    assert close(c["unresolved_kwh"], e_fac) and c["fallback_kwh"] == 0.0
    assert c["co2e_location_kg"] is None and c["co2e_market_kg"] is None

    hour = pl.datetime(2025, 6, 1, 2, time_zone="UTC")
    c = h.filter(pl.col("hour") == hour).row(0, named=True)
    assert DE_JUNE_MEAN == 365.0
    assert close(c["co2e_location_kg"], 1.0 * DE_FACTOR / 1000 * 365.0 / 1000)
    # Pinned reading of section 5: the month mean is a fallback too (not hour-matched).
    assert close(c["fallback_kwh"], 1.0 * DE_FACTOR / 1000)
    c = h.filter(pl.col("hour") == pl.datetime(2025, 6, 1, 4, time_zone="UTC")).row(0, named=True)
    assert close(c["co2e_location_kg"], 1.0 * DE_FACTOR / 1000 * 320.0 / 1000)

    at_t0 = (pl.col("site") == "s-de") & (pl.col("hour") == pl.datetime(2025, 6, 1, 0, time_zone="UTC"))
    row = h.filter(at_t0).row(0, named=True)
    assert (row["records"], row["requests"]) == (2, 10.0)
    assert close(row["energy_kwh"], 10 * 0.1 * DE_FACTOR / 1000)

    c = _cell(h, site="s-ghost")
    assert c["zone"] == "FR"
    assert close(c["energy_kwh"], 3.6 * 1 * 387.5 / 2.0 / 3600 * DEFAULT_FACTOR / 1000)


def test_timestamps_and_year_edge(tmp_path: Path, edge) -> None:
    log = _jsonl(
        tmp_path / "ts.jsonl",
        [
            {"ts": "2026-01-01T00:30:00+01:00", "model": "m-coef", "site": "s-de", "energy_j": 3600.0},
            {"ts": "2025-12-31T23:30:00-01:00", "model": "m-coef", "site": "s-de", "energy_j": 3600.0},
            {"ts": 1748736000, "model": "e-s", "site": "s-de", "energy_j": 36.0},
            {"ts": 1748739600000, "model": "e-ms", "site": "s-de", "energy_j": 36.0},
            {"ts": 1748743200000000, "model": "e-us", "site": "s-de", "energy_j": 36.0},
            {"ts": 1748746800000000000, "model": "e-ns", "site": "s-de", "energy_j": 36.0},
            {"ts": "2025-06-01 05:15:00", "model": "e-naive", "site": "s-de", "energy_j": 36.0},
        ],
    )
    h = o.oracle_hourly(log, edge.config, edge.grid)
    hours = dict(zip(h["model"], h["hour"], strict=False))
    assert hours["e-s"].hour == 0 and hours["e-ms"].hour == 1
    assert hours["e-us"].hour == 2 and hours["e-ns"].hour == 3 and hours["e-naive"].hour == 5

    r2025 = o.oracle_report_by_model(log, edge.config, edge.grid, year=2025, month=12)
    r2026 = o.oracle_report_by_model(log, edge.config, edge.grid, year=2026)
    assert r2025.columns == list(o.REPORT_COLUMNS)
    assert r2025.filter(pl.col("model") == "m-coef")["records"].to_list() == [1]
    assert r2026["model"].to_list() == ["m-coef"]
    # 2025-12-31 23:00 DE = 500 g/kWh; 2026-01-01 00:00 DE = 200 g/kWh.
    assert close(r2025.filter(pl.col("model") == "m-coef")["co2e_location_kg"][0], DE_FACTOR / 1000 * 0.5)
    assert close(r2026["co2e_location_kg"][0], DE_FACTOR / 1000 * 0.2)


def test_edge_set_report(edge) -> None:
    con = o.load(o.connect(), edge.logs, edge.config, edge.grid)
    rejects = o.oracle_rejects(con)
    assert rejects.height == edge.rejected_records
    assert "negative gpus" in rejects["reason"].to_list()
    h = o.oracle_hourly(con)
    assert h["records"].sum() == edge.valid_records
    assert set(h["method"].unique()) == {"measured", "tokens", "gpu_time", "flops", "none"}
    rep = o.oracle_report_by_model(con, year=2025)
    assert rep.columns == list(o.REPORT_COLUMNS)
    assert rep["model"].to_list() == sorted(rep["model"].to_list())
    never = rep.filter(pl.col("model") == "m-never").row(0, named=True)
    assert never["records"] == 3 and never["requests"] == 4.0 and never["unestimated_requests"] == 4.0
    for k in ("energy_kwh", "energy_kwh_low", "energy_kwh_high", "measured_kwh", "co2e_location_kg"):
        assert never[k] is None, k
    # Totals over the report equal totals over cells (nothing lost between sections 8 and 9).
    total_2025 = h.filter(pl.col("hour").dt.year() == 2025)["energy_kwh"].sum()
    assert math.isclose(rep["energy_kwh"].sum(), total_2025, rel_tol=1e-12)
    assert rep.filter(pl.col("model") == "m-unknown")["unresolved_kwh"][0] > 0
    assert rep.filter(pl.col("model") == "m-flops")["fallback_kwh"][0] > 0


def test_frames_close_catches_silent_zero() -> None:
    want = pl.DataFrame(
        {"model": ["a"], "energy_kwh": [None]}, schema={"model": pl.String, "energy_kwh": pl.Float64}
    )
    got = pl.DataFrame({"model": ["a"], "energy_kwh": [0.0]})
    assert o.frames_close(got, want)
    assert not o.frames_close(want, want)
