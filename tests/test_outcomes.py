"""Methodology v1.1 section 10 end to end: request outcomes, names as fleets write them, the
default site, run warnings, and the ledger's schema 2 (migration of a schema 1 ledger).

The numbers themselves are compared with the SQL oracle in test_engine_vs_oracle.py; these
tests pin what a user sees: warnings, stored raw names, --site, the new columns and views.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import wattledger as wl
from edge_cases import EdgeCaseFiles, write_outcome_cases
from ledger_data import downgrade_schema
from wattledger.cli import app
from wattledger.schema import MEASURE_COLUMNS, REPORT_COLUMNS, SCHEMA_VERSION


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> EdgeCaseFiles:
    return write_outcome_cases(tmp_path_factory.mktemp("outcomes"))


def _args(cases: EdgeCaseFiles, ledger: Path) -> list[str]:
    grid = [a for g in cases.grid for a in ("--grid", str(g))]
    return [
        *map(str, cases.logs),
        "--config",
        str(cases.config),
        *grid,
        "--ledger",
        str(ledger),
        "--no-progress",
    ]


def test_columns_keep_their_order_and_append_the_outcomes() -> None:
    assert MEASURE_COLUMNS[-3:] == ("unestimated_requests", "failed_requests", "cached_requests")
    assert REPORT_COLUMNS[13:] == (
        "unestimated_requests",
        "fallback_kwh",
        "unresolved_kwh",
        "failed_requests",
        "cached_requests",
    )
    assert len(REPORT_COLUMNS) == 18 and SCHEMA_VERSION == 6


def test_ingest_prints_and_stores_warnings_and_raw_names(cases: EdgeCaseFiles, tmp_path: Path) -> None:
    ledger = tmp_path / "l.duckdb"
    r = CliRunner().invoke(app, ["ingest", *_args(cases, ledger)])
    assert r.exit_code == 0, r.stderr
    hint = "not recognised, counted as ok; list it under [outcomes] ok, failed or cached"
    expected = [
        "zone 'de' of site s-lower matched grid zone 'DE' ignoring case",
        f"status 'weird' (2 records) {hint}",
        f"status '600' (1 record) {hint}",
        f"status 'Weird' (1 record) {hint}",
    ]
    err_lines = r.stderr.splitlines()
    for w in expected:
        assert f"warning: {w}" in err_lines, r.stderr
    # Zones written in another case in the logs are named too (once per raw value).
    for raw, grid_zone in (("de", "DE"), ("Fr", "FR")):
        assert f"warning: zone '{raw}' in the logs matched grid zone '{grid_zone}' ignoring case" in err_lines
    assert "xx-unknown" not in r.stderr
    assert " failed, " in r.stdout and " cached" in r.stdout
    with wl.connect(ledger) as con:
        (stored,) = con.sql("SELECT warnings FROM runs").fetchall()[0]
        assert set(expected) <= set(stored)
        names = con.sql(
            "SELECT regexp_extract(path, '[^/]*$') AS file, kind, raw, resolved, records, live "
            "FROM source_names ORDER BY ALL"
        ).pl()
        aliases = con.sql("SELECT path, aliases FROM sources ORDER BY path").fetchall()
    rows = set(names.select("file", "kind", "raw", "resolved", "records").iter_rows())
    assert {
        ("outcomes.jsonl", "model", "openai/gpt-4o", "m-flops", 1),
        ("outcomes.jsonl", "model", "openai/gpt-3.5-turbo", "m-bare", 1),
        ("outcomes.jsonl", "model", "bedrock/x-v1", "m-coef", 1),
        ("outcomes.jsonl", "hardware", "NVIDIA H100 80GB HBM3", "nvidia-h100-sxm", 1),
        ("outcomes.jsonl", "site", "http://10.0.0.7:4000/v1", "s-de", 1),
        ("outcomes.jsonl", "site", "gpu-fr.example:443", "s-fr", 1),
        ("outcomes.jsonl", "zone", "de", "DE", 1),
        ("outcomes.csv", "model", "openai/gpt-4o", "m-flops", 1),
        ("outcomes.csv", "zone", "de", "DE", 1),
        ("outcomes.parquet", "model", "hosted_vllm/x", "m-coef", 1),
    } <= rows
    assert not any(raw in ("m-coef", "http://unknown.example:8000", "xx-unknown") for _, _, raw, *_ in rows)
    assert names["live"].all()
    by_path = {Path(p).name: a for p, a in aliases}
    assert {"kind": "model", "raw": "hosted_vllm/x", "resolved": "m-coef", "records": 1} in by_path[
        "outcomes.parquet"
    ]


def test_skipped_objects_are_in_the_file_stats(cases: EdgeCaseFiles) -> None:
    for stats in wl.validate([str(p) for p in cases.logs]):
        assert stats["skipped"] == 0 and stats["skip_reasons"] == {}


def test_parquet_native_boolean_cache_flag(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from edge_cases import _outcome_parquet

    path = tmp_path / "native.parquet"
    pq.write_table(_outcome_parquet(native_bool=True), path)
    (stats,) = wl.validate([path])
    assert stats["rejected"] == 0 and stats["records"] == 4


def test_jsonl_boolean_cache_flag(tmp_path: Path) -> None:
    path = tmp_path / "bool.jsonl"
    rows = [{"ts": "2025-06-01T00:00:00Z", "model": "m", "cache_hit": v} for v in (True, False)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (stats,) = wl.validate([path])
    assert stats["rejected"] == 0 and stats["records"] == 2


def test_site_option_locates_records_without_site_or_zone(cases: EdgeCaseFiles, tmp_path: Path) -> None:
    runner = CliRunner()
    jsonl = cases.logs[0]
    common = [str(jsonl), "--config", str(cases.config), "--no-progress"]
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    assert runner.invoke(app, ["ingest", *common, "--ledger", str(a)]).exit_code == 0
    r = runner.invoke(app, ["ingest", *common, "--ledger", str(b), "--site", "s-nozone"])
    assert r.exit_code == 0, r.stderr
    q = "SELECT site, sum(records) FROM energy_hourly WHERE model = 'm-coef' AND energy_kwh > 0 GROUP BY ALL"
    with wl.connect(a) as ca, wl.connect(b) as cb:
        pack_default = dict(ca.sql(q).fetchall())
        overridden = dict(cb.sql(q).fetchall())
    # The pack's [defaults] site is s-fr; --site overrides it for the same records.
    assert pack_default.get("s-nozone") is None and overridden.get("s-nozone") == pack_default["s-fr"]
    r = runner.invoke(app, ["ingest", *common, "--ledger", str(tmp_path / "c.duckdb"), "--site", "nowhere"])
    assert r.exit_code == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: --site nowhere: not a site of the methodology pack"
    )


def test_estimate_api_takes_a_site_and_warns_per_message(cases: EdgeCaseFiles) -> None:
    with pytest.warns(wl.RunWarning) as caught:
        frame = wl.estimate([cases.logs[1]], config=cases.config, grid=cases.grid, site="s-de")
    messages = [str(w.message) for w in caught]
    assert any("status 'Weird' (1 record)" in m for m in messages), messages
    # openai/gpt-4o (no site, no zone) -> m-flops at s-de; m-flops with zone 'de' stays unsited.
    rows = set(frame.select("model", "site", "zone").iter_rows())
    assert ("m-flops", "s-de", "DE") in rows and ("m-flops", None, "DE") in rows
    with pytest.raises(wl.UsageError, match="--site nowhere: not a site"):
        wl.estimate([cases.logs[1]], config=cases.config, site="nowhere")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no status in the logs: nothing to warn about
        wl.estimate([cases.logs[1]], config=cases.config, columns=["status=none_such"], site="s-de")


def test_default_site_must_be_a_site_of_the_pack(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[defaults]\nsite = "nowhere"\n[sites.fra]\nzone = "DE"\n', encoding="utf-8")
    with pytest.raises(wl.ConfigError, match=r"defaults\.site: \"nowhere\" is not a site of this pack"):
        wl.load_config(bad)


def test_schema_1_ledger_is_migrated_and_reports_say_counts_are_partial(
    cases: EdgeCaseFiles, tmp_path: Path
) -> None:
    ledger = tmp_path / "old.duckdb"
    kwargs = {"config": cases.config, "grid": cases.grid, "progress": False}
    wl.ingest([cases.logs[0]], ledger=ledger, **kwargs)
    before = wl.report(ledger, year=2025).drop("failed_requests", "cached_requests")
    downgrade_schema(ledger, 1)
    # Readers never change a ledger: they say how to upgrade it.
    with pytest.raises(wl.LedgerSchemaError, match=r"schema version 1 .*wattledger migrate --ledger"):
        wl.report(ledger, year=2025)
    r = CliRunner().invoke(app, ["migrate", "--ledger", str(ledger)])
    assert r.exit_code == 0 and "upgraded" in r.stderr, r.stderr
    assert not wl.migrate_ledger(ledger)  # idempotent
    with pytest.warns(wl.PartialOutcomeWarning, match="ingested before request outcomes were counted"):
        after = wl.report(ledger, year=2025)
    # Old rows: the 16 columns unchanged, outcome counts NULL (not counted), never a false 0.
    assert after.drop("failed_requests", "cached_requests").equals(before)
    assert after["failed_requests"].null_count() == after.height
    # A new run adds counted rows; the report still says some rows predate counting.
    wl.ingest([cases.logs[1]], ledger=ledger, **kwargs)
    with pytest.warns(wl.PartialOutcomeWarning):
        mixed = wl.report(ledger, year=2025)
    assert mixed["failed_requests"].sum() > 0
    r = CliRunner().invoke(app, ["report", "--ledger", str(ledger), "--year", "2025", "--format", "csv"])
    assert r.exit_code == 0 and "warning: " in r.stderr and "before request outcomes" in r.stderr
    with wl.connect(ledger) as con:
        runs = con.sql("SELECT warnings FROM runs ORDER BY started_at").fetchall()
        assert runs[0][0] is None and runs[1][0]  # the old run never produced warnings
        assert con.sql("SELECT count(*) FROM source_names").fetchall()[0][0] > 0


def test_rollup_carries_outcome_counts(cases: EdgeCaseFiles, tmp_path: Path) -> None:
    ledger = tmp_path / "r.duckdb"
    wl.ingest(cases.logs, ledger=ledger, config=cases.config, grid=cases.grid, progress=False)
    doc = wl.rollup(ledger, year=2025)
    data = json.loads(doc.render("json"))
    total = data["total"] if "total" in data else None
    text = json.dumps(data)
    assert '"failed_requests"' in text and '"cached_requests"' in text, text[:500]
    csv = doc.render("csv")
    assert "failed_requests" in csv.splitlines()[0] and "cached_requests" in csv.splitlines()[0]
    assert "Failed requests" in doc.render("md") and "Cached requests" in doc.render("html")
    report = wl.report(ledger, year=2025)
    if total is not None and isinstance(total, dict) and "failed_requests" in total:
        assert total["failed_requests"] == pytest.approx(report["failed_requests"].sum())


def test_default_pack_maps_names_as_nvidia_smi_and_fleets_write_them() -> None:
    from wattledger._core import Config

    cfg = wl.load_config(None)
    assert isinstance(cfg, Config)
    aliases = json.loads(cfg.to_json())["aliases"]
    hw = aliases["hardware"]
    assert hw["NVIDIA H100 80GB HBM3"] == "nvidia-h100-sxm"
    assert hw["NVIDIA A100-SXM4-80GB"] == hw["NVIDIA A100-SXM4-40GB"] == "nvidia-a100-sxm"
    assert hw["NVIDIA A10G"] == "nvidia-a10g" and hw["NVIDIA A10"] == "nvidia-a10"
    # A PCIe H100 is a 350 W part, not the 700 W SXM entry: the pack must not claim it.
    assert not any("PCIe" in k for k in hw)
    frame = pl.DataFrame(
        {
            "ts": ["2025-01-01T00:00:00Z"] * 4,
            "model": [
                "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct",
                "meta-llama/Meta-Llama-3.1-70B-Instruct",
                "openai/llama-3.1-8b",
                "some/other-model",
            ],
            "zone": ["DE"] * 4,
            "hardware": ["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3", "NVIDIA L4", "NVIDIA H100 PCIe"],
            "output_tokens": [1000] * 4,
        }
    )
    got = wl.estimate(frame).sort("model")
    assert got["model"].to_list() == ["llama-3.1-70b", "llama-3.1-8b", "llama-3.1-8b", "some/other-model"]
    assert set(got["hardware"]) == {"nvidia-h100-sxm", "nvidia-l4", "NVIDIA H100 PCIe"}


def test_summary_names_skipped_objects_by_reason(cases: EdgeCaseFiles, tmp_path: Path) -> None:
    import dataclasses

    from wattledger.summary import format_ingest_summary

    s = wl.ingest([cases.logs[1]], ledger=tmp_path / "s.duckdb", config=cases.config, progress=False)
    assert s.skipped_objects == 0 and "skipped:    " not in format_ingest_summary(s)
    s = dataclasses.replace(s, skipped_objects=7, skip_reasons={"not GenAI spans": 5, "log events": 2})
    lines = format_ingest_summary(s).splitlines()
    assert "skipped:    7 (log events: 2, not GenAI spans: 5)" in lines
