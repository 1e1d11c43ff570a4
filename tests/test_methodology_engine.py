"""The rollup's methodology section is the engine's resolved pack (issue 13).

Why: a filing shows the methodology beside the sums it explains; if the document worked out a
site's PUE, a market factor or a training estimate on its own, the two could drift apart
unnoticed. These tests take the rollup JSON of ledgers made with the golden pack of
``test_rollup.py`` and with the demo pack, and check that every default, site value,
uncertainty and training figure in it equals what the engine resolves from the stored text;
and that a stored text the engine refuses still gives a rollup that says so.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger_data import cell, table, utc
from test_rollup import PACK_TEXT, build_golden
from wattledger import _core
from wattledger.ledger import ConfigIdentity, FileStamp, LedgerWriter, RunInfo, SourceRead, connect_ledger
from wattledger.rollup import rollup
from wattledger.schema import MEASURE_COLUMNS
from wattledger.synthetic import CONFIG_TOML

DEFAULT_KEYS = ("pue", "host_overhead", "idle_overhead", "utilization", "concurrency", "mfu")
SITE_KEYS = (
    "zone",
    "pue",
    "host_overhead",
    "idle_overhead",
    "market_g_per_kwh",
    "fallback_g_per_kwh",
    "hardware",
)
TRAINING_KEYS = (
    "gpu_hours",
    "hardware",
    "site",
    "tdp_w",
    "pue",
    "energy_mwh",
    "co2e_location_t",
    "co2e_market_t",
    "note",
)

# The demo pack with training runs: one on a site that states its PUE and has no instrument
# (par-1), one on a site that inherits PUE from [defaults] (waw-1), one measured.
DEMO_TEXT = (
    CONFIG_TOML
    + """
[training."llama-3.1-8b"]
gpu_hours = 1460000
hardware = "nvidia-h100-sxm"
site = "par-1"
note = "Llama 3.1 model card"

[training."qwen-2.5-72b"]
gpu_hours = 5000
hardware = "nvidia-l40s"
site = "waw-1"

[training."mistral-large-2"]
energy_mwh = 1234.5
site = "sjc-1"
"""
)


def _identity(text: str, name: str) -> ConfigIdentity:
    return ConfigIdentity(hashlib.sha256(text.encode()).hexdigest(), name, "1", f"/etc/{name}.toml", text)


def _write(path: Path, config: ConfigIdentity, rows: list[dict[str, Any]]) -> Path:
    source = "/data/logs/2025-05.jsonl"
    stamp = FileStamp(source, 1000, datetime(2025, 6, 1, tzinfo=UTC))
    sha = hashlib.sha256(source.encode()).hexdigest()
    read = SourceRead(source, stamp, sha, sum(r["records"] for r in rows), 0)
    run = RunInfo("20250601T000000.000Z-cccccc", utc(2025, 6, 1), "wattledger ingest logs", "0.1.0")
    with LedgerWriter(path) as writer:
        writer.commit_run(run, config, [read], table([{**r, "source": source} for r in rows]))
    return path


def _demo_rows() -> list[dict[str, Any]]:
    at = utc(2025, 5, 4, 10)
    return [
        cell("", at, "llama-3.1-8b", 10.0, site="par-1", zone="FR", hardware="nvidia-h100-sxm"),
        cell("", at, "qwen-2.5-72b", 20.0, site="waw-1", zone="PL", hardware="nvidia-l40s"),
        cell("", at, "mistral-large-2", 30.0, site="sjc-1", zone="US-CAL-CISO", hardware="nvidia-h200"),
    ]


def _stored_texts(ledger: Path) -> dict[str, str]:
    con = connect_ledger(ledger, read_only=True)
    try:
        return dict(con.execute("SELECT config_sha256, text FROM wl_configs").fetchall())
    finally:
        con.close()


def _resolved(text: str) -> dict[str, Any]:
    resolved: dict[str, Any] = json.loads(_core.Config.from_toml(text).to_json())
    return resolved


def assert_methodology_is_the_engines(doc: dict[str, Any], texts: dict[str, str]) -> None:
    """Every methodology figure of a rollup JSON document equals the engine's resolution."""
    assert doc["methodology"], "the document names its packs"
    for m in doc["methodology"]:
        r = _resolved(texts[m["sha256"]])
        assert m["parse_error"] is None
        assert m["defaults"] == {k: r["defaults"][k] for k in DEFAULT_KEYS}
        assert m["uncertainty"] == r["uncertainty"]
        assert [s["site"] for s in m["sites"]] == sorted(r["sites"])
        for s in m["sites"]:
            engine = r["sites"][s["site"]]
            assert {k: s[k] for k in SITE_KEYS} == {k: engine[k] for k in SITE_KEYS}, s["site"]
        for h in m["hardware"]:
            engine = r["hardware"][h["hardware"]]
            assert (h["tdp_w"], h["peak_tflops"]) == (engine["tdp_w"], engine["peak_tflops"])
            assert h["idle_w"] == (engine["idle_w"] if engine["idle_w_given"] else None)
        for c in m["coefficients"]:
            entries = r["models"][c["model"]]["coefficients"]
            engine = next(e for e in entries if e["hardware"] == c["hardware"])
            assert (c["wh_per_1k_input"], c["wh_per_1k_output"]) == (
                engine["wh_per_1k_input"],
                engine["wh_per_1k_output"],
            )
            shown = c["uncertainty"] if c["uncertainty"] is not None else m["uncertainty"]["tokens"]
            assert shown == engine["uncertainty"]
    assert doc["training"], "the packs have training runs for models served in the period"
    for t in doc["training"]:
        engine = _resolved(texts[t["config_sha256"]])["training"][t["model"]]
        assert {k: t[k] for k in TRAINING_KEYS} == {k: engine[k] for k in TRAINING_KEYS}, t["model"]
        assert t["energy_basis"].split(":")[0] == engine["energy_basis"]


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_golden(tmp_path_factory.mktemp("method") / "golden.duckdb")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("method") / "demo.duckdb"
    return _write(path, _identity(DEMO_TEXT, "demo"), _demo_rows())


def test_golden_pack_methodology_is_the_engines(golden: Path) -> None:
    doc = json.loads(rollup(golden, year=2025).to_json())
    assert_methodology_is_the_engines(doc, _stored_texts(golden))
    # iad-1 states its PUE but inherits both overheads, and has no instrument.
    r = _resolved(PACK_TEXT)
    iad = r["sites"]["iad-1"]
    assert iad["from"]["pue"] == "site" and iad["from"]["host_overhead"] == "[defaults]"
    assert iad["market_from"] == "location" and iad["market_g_per_kwh"] is None


def test_demo_pack_methodology_is_the_engines(demo: Path) -> None:
    doc = json.loads(rollup(demo, year=2025).to_json())
    assert_methodology_is_the_engines(doc, _stored_texts(demo))
    r = _resolved(DEMO_TEXT)
    sites = {s["site"]: s for s in doc["methodology"][0]["sites"]}
    # waw-1 gives no PUE: the document shows the pack's default, as the engine computes with.
    assert r["sites"]["waw-1"]["from"]["pue"] == "[defaults]"
    assert sites["waw-1"]["pue"] == r["defaults"]["pue"] == 1.2
    # par-1 gives no market factor: market-based falls back to location-based.
    assert r["sites"]["par-1"]["market_from"] == "location"
    assert sites["par-1"]["market_g_per_kwh"] is None
    training = {t["model"]: t for t in doc["training"]}
    qwen = training["qwen-2.5-72b"]
    assert qwen["energy_mwh"] == 5000 * 350 * 1.2 / 1e6
    assert qwen["energy_basis"] == (
        "estimated: 5,000 GPU-h x 350 W (nvidia-l40s board power) x PUE 1.2 ([defaults])"
    )
    llama = training["llama-3.1-8b"]
    assert llama["energy_basis"] == (
        "estimated: 1,460,000 GPU-h x 700 W (nvidia-h100-sxm board power) x PUE 1.2 (site par-1)"
    )
    assert llama["co2e_location_t"] is None and llama["co2e_basis"].startswith("not computed")
    mistral = training["mistral-large-2"]
    assert (mistral["energy_mwh"], mistral["pue"]) == (1234.5, None)
    # sjc-1 gives no location factor but has an instrument: market-based is still known.
    assert mistral["co2e_location_t"] is None
    assert mistral["co2e_market_t"] == 1234.5 * 120.0 / 1000
    # Rows of a site without an instrument count as market-based on the location factor.
    by_model = {f["model"]: f for f in doc["models"]}
    assert by_model["llama-3.1-8b"]["no_instrument_mwh"] == pytest.approx(10.0 / 1000)
    assert by_model["mistral-large-2"]["no_instrument_mwh"] == 0.0, "sjc-1 has an instrument"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[defaults]\npue = = 1.2\n", "TOML syntax error at line 2"),
        # A key this version does not know, as a pack of another version could have.
        ("[defaults]\npue = 1.2\ncarbon_price = 80\n", "defaults.carbon_price: unknown field"),
    ],
)
def test_a_stored_text_the_engine_refuses_still_gives_a_rollup(tmp_path: Path, text: str, why: str) -> None:
    config = _identity(text, "old")
    ledger = _write(tmp_path / "old.duckdb", config, _demo_rows())
    document = rollup(ledger, year=2025)
    doc = json.loads(document.to_json())
    (m,) = doc["methodology"]
    refused = "the stored config text is not a pack this version of wattledger reads"
    assert m["parse_error"].startswith(refused)
    assert why in m["parse_error"]
    assert (m["defaults"], m["uncertainty"], m["sites"]) == ({}, {}, [])
    assert doc["training"] == []
    assert doc["total"]["energy_mwh"] == pytest.approx(60.0 / 1000)
    md = document.to_markdown()
    assert f"Warning: {m['parse_error']}." in md
    for fmt in ("html", "csv"):
        assert document.render(fmt)


def test_measure_columns_are_the_engines() -> None:
    assert _core.MEASURE_COLUMNS == MEASURE_COLUMNS
    assert isinstance(_core.MEASURE_COLUMNS, tuple)
