"""`wattledger calibrate`: the fit, the split, the band, the pack it writes (issue 16)."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import wattledger
from calibration_fleet import HARDWARE, PACK, SIGMA, TRUE_UTILIZATION, TRUTH, fleet
from wattledger import _core
from wattledger.calibrate import calibrate_frame, fit, split, table
from wattledger.calibrate.pack import dumps, merge, read_pack
from wattledger.config import default_pack_text

# --- the fit -----------------------------------------------------------------------------------


def test_synthetic_fleet_recovers_its_true_coefficients_within_the_noise(tmp_path: Path) -> None:
    records = fleet(4000, seed=11)
    config = _core.Config.from_toml(PACK, origin="fleet.toml")
    result = calibrate_frame(records, config, out=tmp_path / "cal.toml", seed=3)
    fitted = {(g.model, g.hardware): g for g in result.groups}
    assert set(fitted) == set(TRUTH)
    for key, (a, b) in TRUTH.items():
        g = fitted[key]
        assert g.skipped is None and g.used is not None and g.held_out is not None
        # Noise sd 0.25 per request over ~3200 requests: the output coefficient (most of the
        # energy) within 3 %, the input one (a few % of the energy) within 25 %.
        assert g.wh_per_1k_output == pytest.approx(b, rel=0.03), key
        assert g.wh_per_1k_input == pytest.approx(a, rel=0.25), key
        assert g.used + g.held_out == 4000
        assert 0.15 < g.held_out / 4000 < 0.25
        # The band holds about the log-normal's 90 % relative spread, not a constant.
        assert 0.2 < (g.uncertainty or 0) < 0.7, g.uncertainty
        assert abs(g.holdout_total_error or 1) < 0.03
        assert g.band_coverage is not None and g.band_coverage >= 0.85
    utilization = {u.hardware: u for u in result.utilization}
    for hw, u in TRUE_UTILIZATION.items():
        assert utilization[hw].utilization == pytest.approx(u, abs=0.02), hw


def test_fit_is_exact_on_noiseless_data() -> None:
    rng = np.random.default_rng(0)
    tin, tout = rng.integers(1, 5000, 300).astype(float), rng.integers(1, 900, 300).astype(float)
    e = tin * 3e-6 + tout * 4e-5
    r = fit.fit_tokens(tin, tout, e, np.ones(300))
    assert (r.kept, r.note) == ("both", None)
    assert r.wh_per_input == pytest.approx(3e-6, rel=1e-9)
    assert r.wh_per_output == pytest.approx(4e-5, rel=1e-9)


def test_a_negative_coefficient_is_dropped_and_the_other_is_the_ratio_estimator() -> None:
    # Energy falls with input tokens: the free fit's input coefficient is negative.
    tin = np.array([100.0, 2000.0, 4000.0, 50.0, 3000.0])
    tout = np.array([100.0, 100.0, 100.0, 300.0, 400.0])
    e = tout * 1e-4 - tin * 1e-6 + 0.001
    w = np.array([1.0, 2.0, 1.0, 3.0, 1.0])
    r = fit.fit_tokens(tin, tout, e, w)
    assert (r.kept, r.wh_per_input) == ("output only", 0.0)
    assert r.wh_per_output == pytest.approx(np.sum(w * e) / np.sum(w * tout), rel=1e-12)


def test_proportional_token_columns_put_the_energy_on_output_and_say_so() -> None:
    tout = np.arange(1.0, 101.0)
    r = fit.fit_tokens(4 * tout, tout, tout * 1e-4, np.ones(100))
    assert (r.kept, r.wh_per_input) == ("output only", 0.0)
    assert r.note == "input and output tokens are proportional"
    assert r.wh_per_output == pytest.approx(1e-4)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fit_is_non_negative_and_preserves_the_weighted_total(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 40))
    tin = data.draw(hnp.arrays(np.float64, n, elements=st.integers(0, 10_000).map(float)))
    tout = data.draw(hnp.arrays(np.float64, n, elements=st.integers(0, 2_000).map(float)))
    energy = data.draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 50.0)))
    weight = data.draw(hnp.arrays(np.float64, n, elements=st.sampled_from([0.5, 1.0, 2.0, 7.0])))
    r = fit.fit_tokens(tin, tout, energy, weight)
    assert r.wh_per_input >= 0 and r.wh_per_output >= 0
    assert math.isfinite(r.wh_per_input) and math.isfinite(r.wh_per_output)
    some = (tin + tout) > 0  # rows without tokens are left out of the fit
    fitted = np.sum((weight * (tin * r.wh_per_input + tout * r.wh_per_output))[some])
    measured = np.sum((weight * energy)[some])
    if some.any():
        # The score equations' property: the fitted total is the measured total.
        assert fitted == pytest.approx(measured, rel=1e-6, abs=1e-9)


def test_utilization_is_clipped_and_says_so() -> None:
    u = fit.fit_utilization(np.array([10.0]), np.array([1.0]), np.array([2.0]), np.ones(1))
    assert u is not None and (u.utilization, u.raw) == (1.0, 4.5)
    u = fit.fit_utilization(np.array([0.5]), np.array([1.0]), np.array([2.0]), np.ones(1))
    assert u is not None and (u.utilization, u.raw) == (0.0, -0.25)
    assert fit.fit_utilization(np.array([1.0]), np.array([1.0]), np.array([0.0]), np.ones(1)) is None


# --- the band ----------------------------------------------------------------------------------


def test_conformal_halfwidth_is_the_ceil_n_plus_1_rank() -> None:
    r = np.arange(1.0, 20.0)  # 19 residuals: rank ceil(20 * 0.9) = 18
    assert fit.conformal_halfwidth(r, np.ones(19), confidence=None) == 18.0
    # Weights count as requests: 19 rows of weight 2 are 38 requests, rank ceil(39 * 0.9) = 36,
    # reached by the 18th row.
    assert fit.conformal_halfwidth(r, np.full(19, 2.0), confidence=None) == 18.0
    assert not fit.enough_for_conformal(8, confidence=None) and fit.enough_for_conformal(9, confidence=None)
    assert fit.conformal_halfwidth(np.array([0.1, 0.5]), np.ones(2)) == 0.5  # too few: the largest


def test_the_confident_rank_holds_90_percent_with_90_percent_confidence() -> None:
    # The share a band at rank k holds is Beta(k, n + 1 - k): at the chosen rank it is below
    # 0.9 in at most 10 % of calibration sets, one rank lower in more.
    rng = np.random.default_rng(3)
    for n in (45, 225, 1000):
        k = fit.conformal_rank(n)
        assert k >= fit.conformal_rank(n, confidence=None)
        below = np.mean(rng.beta(k, n + 1 - k, 200_000) < 0.9)
        lower = np.mean(rng.beta(k - 1, n + 2 - k, 200_000) < 0.9)
        assert below <= 0.1 + 0.003 < lower, (n, k, below, lower)
    # Large counts take the normal approximation: the same rank to within one.
    n = 200_001
    exact_like = fit.conformal_rank(200_000)
    assert abs(fit.conformal_rank(n) - exact_like) <= 2


def test_band_holds_90_percent_of_fresh_requests() -> None:
    rng = np.random.default_rng(5)
    held = rng.lognormal(0, 0.3, 500)
    u = fit.conformal_halfwidth(fit.relative_residuals(held, np.ones(500)), np.ones(500))
    fresh = rng.lognormal(0, 0.3, 20_000)
    coverage = float(np.mean(fit.band_covers(fresh, np.ones(20_000), u)))
    assert coverage >= 0.885, coverage  # 0.9 less three standard errors of a 500-draw quantile


def test_a_band_wider_than_one_floors_at_zero() -> None:
    assert fit.band_covers(np.array([0.0, 0.01, 3.9, 3.91]), np.ones(4), 2.9).tolist() == [
        True,
        True,
        True,
        False,
    ]
    assert fit.relative_residuals(np.array([0.0, 1.0]), np.array([0.0, 0.0])).tolist() == [0.0, math.inf]


# --- the split ---------------------------------------------------------------------------------


def test_split_follows_request_ids_not_positions() -> None:
    records = fleet(500, seed=2)
    held = split.held_out(records, 0.2, seed=9)
    assert 0.15 < held.mean() < 0.25
    shuffled = records.sample(fraction=1.0, shuffle=True, seed=1)
    again = split.held_out(shuffled, 0.2, seed=9)
    ids = set(records.filter(pl.Series(held)).get_column("request_id"))
    assert set(shuffled.filter(pl.Series(again)).get_column("request_id")) == ids
    other = split.held_out(records, 0.2, seed=10)
    assert (held != other).any(), "another seed, another split"
    # Records without an id split by source and line; the key is the same hash on every run.
    no_ids = records.with_columns(pl.lit(None, pl.Utf8).alias("request_id"))
    assert (split.held_out(no_ids, 0.2, 9) == split.held_out(no_ids, 0.2, 9)).all()
    keys = pl.Series(["a", "ab", "", "a" * 70])
    h = split.key_hash(keys, 1)
    assert h[0] == split.key_hash(pl.Series(["a"]), 1)[0], "padding to the longest key changes nothing"
    assert len(set(h.tolist())) == 4


# --- the pack ----------------------------------------------------------------------------------


def test_emitter_round_trips_the_default_pack_and_awkward_keys() -> None:
    pack = read_pack(default_pack_text())
    assert tomllib.loads(dumps(pack)) == pack
    odd = {
        "aliases": {"models": {"openai/gpt-4o*": "m", 'q"uote\\d': "m"}},
        "models": {
            "m": {"coefficients": [{"hardware": "*", "wh_per_1k_input": 0, "wh_per_1k_output": 1e-7}]}
        },
        "outcomes": {"cached": ["hit", "tab\there"]},
        "sites": {"bare": {}},
    }
    assert tomllib.loads(dumps(odd, "a\nheader")) == odd


def test_merge_replaces_the_exact_hardware_entry_and_keeps_the_others() -> None:
    pack = read_pack(PACK)
    entry = {"hardware": "h100", "wh_per_1k_input": 1.0, "wh_per_1k_output": 2.0}
    new = {"hardware": "a100", "wh_per_1k_input": 3.0, "wh_per_1k_output": 4.0}
    merged = merge(
        pack, {("llama-8b", "h100"): entry, ("llama-8b", "a100"): new}, {"h100": {"utilization": 0.3}}
    )
    coefficients = merged["models"]["llama-8b"]["coefficients"]
    assert [c["hardware"] for c in coefficients] == ["*", "h100", "a100"]
    assert coefficients[1]["wh_per_1k_output"] == 2.0
    assert merged["hardware"]["h100"] == {"tdp_w": 700, "idle_w": 100, "utilization": 0.3}


def test_calibrated_pack_parses_in_the_engine_and_carries_its_provenance(tmp_path: Path) -> None:
    out = tmp_path / "cal.toml"
    config = _core.Config.from_toml(PACK, origin="fleet.toml")
    calibrate_frame(fleet(300, seed=4), config, out=out, seed=1, date="2026-04-01T00:00:00Z")
    text = out.read_text()
    assert text.startswith("# Calibrated by wattledger calibrate on 2026-04-01T00:00:00Z from pack fleet 1")
    parsed = _core.Config.from_path(str(out))
    resolved = json.loads(parsed.to_json())
    h100 = next(c for c in resolved["models"]["llama-8b"]["coefficients"] if c["hardware"] == "h100")
    cal = h100["calibrated"]
    assert h100["uncertainty_from"] == "coefficient"
    assert (cal["records"] + cal["held_out"], cal["seed"], cal["holdout"]) == (300, 1, 0.2)
    assert cal["first_ts"].startswith("2026-03") and cal["date"] == "2026-04-01T00:00:00Z"
    assert cal["inputs"] == ["fleet-0.jsonl", "fleet-1.jsonl", "fleet-2.jsonl"]
    assert 0 < cal["holdout_measured_wh"] and 0 <= cal["band_coverage"] <= 1
    star = next(c for c in resolved["models"]["llama-8b"]["coefficients"] if c["hardware"] == "*")
    assert (star["wh_per_1k_output"], "calibrated" in star) == (0.1, False), "the * entry is kept as it was"
    assert resolved["hardware"]["h100"]["calibrated"]["records"] > 0
    assert 0 <= resolved["hardware"]["h100"]["utilization"] <= 1
    assert resolved["models"]["llama-70b"]["coefficients"][0]["hardware"] == "h100", "a new model entry"
    # Everything the input pack said is still there.
    assert parsed.name == "fleet" and resolved["sites"]["fra"]["gpus"] == 2.0
    assert not list(tmp_path.glob(".cal.toml.*")), "no temporary file left behind"


# --- calibrate -> estimate ---------------------------------------------------------------------


def _logs(records: pl.DataFrame, path: Path, *, measured: bool) -> Path:
    cols = ["request_id", "ts", "model", "site", "hardware", "input_tokens", "output_tokens", "weight"]
    frame = records.select(*cols, *(["energy_j"] if measured else []))
    frame.write_ndjson(path)
    return path


def test_calibrate_then_estimate_round_trip(tmp_path: Path) -> None:
    records = fleet(2000, seed=21)
    config = _core.Config.from_toml(PACK, origin="fleet.toml")
    out = tmp_path / "cal.toml"
    result = calibrate_frame(records, config, out=out, seed=5)
    held = split.held_out(records, 0.2, 5)
    test = records.filter(pl.Series(held))
    # Estimate the held-out requests from their tokens alone with the calibrated pack.
    hourly = wattledger.estimate(_logs(test, tmp_path / "held.jsonl", measured=False), config=out)
    assert set(hourly.get_column("method")) == {"tokens"}
    for model in ("llama-8b", "llama-70b"):
        estimated = hourly.filter(pl.col("model") == model).get_column("energy_acc_kwh").sum() * 1000
        measured = test.filter(pl.col("model") == model).select(pl.col("accelerator_wh").sum()).item()
        assert estimated == pytest.approx(measured, rel=0.05), model
    # The band on fresh draws of the same fleet holds >= 90 % of requests (less sampling slack).
    fresh = fleet(3000, seed=99, start=10**6)
    for g in result.groups:
        rows = fresh.filter((pl.col("model") == g.model) & (pl.col("hardware") == g.hardware))
        x = (
            rows.get_column("input_tokens").to_numpy() * g.wh_per_1k_input
            + rows.get_column("output_tokens").to_numpy() * g.wh_per_1k_output
        ) / 1000
        covered = fit.band_covers(rows.get_column("energy_j").to_numpy() / 3600, x, g.uncertainty or 0)
        assert covered.mean() >= 0.87, (g.model, g.hardware, covered.mean())
    assert SIGMA and HARDWARE  # the fleet's parameters the tolerances above were chosen for


# --- nothing to fit ----------------------------------------------------------------------------


def test_no_measured_records_is_a_usage_error(tmp_path: Path) -> None:
    records = fleet(100, seed=1).with_columns(
        pl.lit("tokens").alias("method"), pl.lit(None, pl.Float64).alias("energy_j")
    )
    config = _core.Config.from_toml(PACK, origin="fleet.toml")
    with pytest.raises(wattledger.UsageError, match="no record carries a measured energy_j"):
        calibrate_frame(records, config, out=tmp_path / "x.toml")
    assert not (tmp_path / "x.toml").exists()


def test_every_group_under_min_records_is_a_usage_error(tmp_path: Path) -> None:
    config = _core.Config.from_toml(PACK, origin="fleet.toml")
    message = r"nothing could be fitted: 120 measured records, at most 40 .* and 80 for one hardware with"
    with pytest.raises(wattledger.UsageError, match=message):
        calibrate_frame(fleet(40, seed=1), config, out=tmp_path / "x.toml", min_records=81)
    assert not (tmp_path / "x.toml").exists()


def test_table_names_every_group_and_what_was_skipped(tmp_path: Path) -> None:
    config = _core.Config.from_toml(PACK, origin="fleet.toml")
    records = pl.concat([fleet(200, seed=1), fleet(10, seed=2).filter(pl.col("model") == "llama-70b")])
    records = records.with_columns(
        pl.when(pl.col("request_id").str.contains("/2/"))
        .then(pl.lit("b200"))
        .otherwise(pl.col("hardware"))
        .alias("hardware")
    )
    text = table(calibrate_frame(records, config, out=tmp_path / "c.toml", min_records=50))
    assert "llama-8b on h100\n  records used" in text
    assert "held-out total error" in text and "band coverage" in text
    assert "llama-70b on b200\n  skipped: 10 records, under --min-records 50" in text
    assert "utilization of h100 (gpu_time)" in text


# --- the rollup --------------------------------------------------------------------------------


def test_rollup_methodology_shows_calibrated_provenance_and_held_out_error(tmp_path: Path) -> None:
    from wattledger.rollup import rollup

    records = fleet(300, seed=8)
    config = _core.Config.from_toml(PACK, origin="fleet.toml")
    out = tmp_path / "cal.toml"
    result = calibrate_frame(records, config, out=out, seed=2, date="2026-04-02T00:00:00Z")
    logs = _logs(
        records.filter(pl.Series(split.held_out(records, 0.2, 2))), tmp_path / "h.jsonl", measured=False
    )
    wattledger.ingest(logs, ledger=tmp_path / "l.duckdb", config=out, progress=False)
    doc = rollup(tmp_path / "l.duckdb", year=2026)
    md = doc.to_markdown()
    g = next(g for g in result.groups if (g.model, g.hardware) == ("llama-8b", "h100"))
    assert "Calibrated entries were fitted by wattledger calibrate" in md
    assert "A hardware's calibrated utilization applies to gpu_time estimates" in md
    row = next(line for line in md.splitlines() if line.startswith("| llama-8b | h100 |") and "/" in line)
    assert f"| {g.used} / {g.held_out} |" in row
    assert f"{(g.holdout_total_error or 0) * 100:+.1f} %" in row
    assert "2026-04-02T00:00:00Z" in row and "fleet-0.jsonl" in row
    assert any(line.startswith("| (gpu_time) | h100 | utilization 0.") for line in md.splitlines())
    calibrations = doc.to_dict()["methodology"][0]["calibrations"]
    assert {(c["model"], c["hardware"]) for c in calibrations} >= {("llama-8b", "h100"), (None, "h100")}
    assert "Calibrated entries" in doc.to_html()


# --- the hardware's utilization in the engine ----------------------------------------------------

UTILIZATION_PACK = """
[defaults]
utilization = 0.5
[hardware.h100]
tdp_w = 700
idle_w = 100
utilization = 0.8
[hardware.a100]
tdp_w = 400
[sites.own]
zone = "DE"
utilization = 0.25
[sites.plain]
zone = "DE"
"""


def test_hardware_utilization_wins_over_defaults_not_over_a_site_and_the_oracle_agrees(
    tmp_path: Path,
) -> None:
    import oracle_sql

    pack = tmp_path / "u.toml"
    pack.write_text(UTILIZATION_PACK)
    rows = [
        {"site": "plain", "hardware": "h100"},  # the hardware's 0.8: 100 + 0.8 * 600 = 580 W
        {"site": "own", "hardware": "h100"},  # the site's 0.25: 250 W
        {"zone": "DE", "hardware": "h100"},  # no site: the hardware's 0.8
        {"site": "plain", "hardware": "a100"},  # no hardware value: [defaults] 0.5 -> 200 W
    ]
    logs = tmp_path / "u.jsonl"
    logs.write_text(
        "".join(
            json.dumps({"ts": f"2026-01-01T0{i}:00:00Z", "model": "m", "duration_s": 3600, **r}) + "\n"
            for i, r in enumerate(rows)
        )
    )
    got = wattledger.estimate(logs, config=pack).sort("hour")
    assert got.get_column("energy_acc_kwh").to_list() == pytest.approx([0.58, 0.25, 0.58, 0.2], rel=1e-12)
    want = oracle_sql.oracle_hourly(logs, pack).sort("hour")
    assert got.get_column("energy_acc_kwh").to_list() == pytest.approx(
        want.get_column("energy_acc_kwh").to_list(), rel=1e-12
    )


def test_records_without_hardware_are_fitted_as_the_models_star_entry(tmp_path: Path) -> None:
    records = (
        fleet(200, seed=3)
        .filter(pl.col("model") == "llama-70b")
        .with_columns(pl.lit(None, pl.Utf8).alias("hardware"))
    )
    config = _core.Config.from_toml(PACK, origin="fleet.toml")
    out = tmp_path / "c.toml"
    result = calibrate_frame(records, config, out=out, min_records=50)
    assert [(g.model, g.hardware) for g in result.groups] == [("llama-70b", "*")]
    assert "llama-70b on any hardware (*: the records name none)" in table(result)
    assert result.excluded == {"duration_s but no hardware (a utilization needs the hardware's power)": 200}
    coefficients = tomllib.loads(out.read_text())["models"]["llama-70b"]["coefficients"]
    assert [c["hardware"] for c in coefficients] == ["*"]
    # A record naming no hardware is estimated with it.
    logs = _logs(records.head(5), tmp_path / "x.jsonl", measured=False)
    assert set(wattledger.estimate(logs, config=out).get_column("method")) == {"tokens"}
