"""Hostile values inside records, grid files and packs (issue 12): names with control
characters, timestamps outside the years a report accepts, a flood of distinct names, a grid
whose rows are far apart, a pack with thousands of models, what-if energy of negative inputs.
The bombs run at small scale in a child process whose peak RSS is measured (tests/hostile.py):
each must finish quickly with bounded memory and a reject or one line with exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import wattledger as wl
from hostile import MIB, run_cli
from wattledger import _core
from wattledger.report import period_bounds
from wattledger.udf import register

TS = "2025-03-01T12:00:00Z"
EXIT_INPUT = 2


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rejects(path: Path) -> dict[str, int]:
    (stats,) = wl.validate(path)
    return dict(stats.get("rejects") or {})


def test_names_with_control_characters_are_rejected_with_their_reason(tmp_path: Path) -> None:
    bad = {
        "a\x00b": "control character U+0000 in model",
        "line\nbreak": "control character U+000A in model",
        "\x1b]0;owned\x07": "control character U+001B in model",
        "del\x7f": "control character U+007F in model",
        "c1\x9b": "control character U+009B in model",
        "ls\u2028": "line separator or bidi control U+2028 in model",
        "evil\u202egpt": "line separator or bidi control U+202E in model",
    }
    good = ["modèle-é", "通义千问-72B", "🦙-7b", "👨\u200d👩\u200d👧", "gpt\u20134™"]
    rows = [{"ts": TS, "model": m, "input_tokens": 1} for m in [*bad, *good]]
    rows.append({"ts": TS, "model": "ok", "site": "fra\t1"})
    rows.append({"ts": TS, "model": "ok", "status": "ok\r\n"})
    log = _jsonl(tmp_path / "a.jsonl", rows)
    expected: dict[str, int] = {}
    for reason in [*bad.values(), "control character U+0009 in site", "control character U+000D in status"]:
        expected[reason] = expected.get(reason, 0) + 1
    assert _rejects(log) == expected
    frame = wl.estimate(log)
    assert set(frame["model"]) == set(good)


def test_timestamps_outside_the_report_years_are_rejected_and_the_range_is_one_definition(
    tmp_path: Path,
) -> None:
    assert (_core.MIN_YEAR, _core.MAX_YEAR) == (1, 9998)
    log = _jsonl(
        tmp_path / "y.jsonl",
        [
            {"ts": "0000-06-01T00:00:00Z", "model": "m"},
            {"ts": "9999-01-01T00:00:00Z", "model": "m"},
            {"ts": "0001-01-01T00:00:00Z", "model": "m"},
            {"ts": "9998-12-31T23:59:59Z", "model": "m"},
        ],
    )
    assert _rejects(log) == {"ts outside the years 1 to 9998": 2}
    # Every stored year can be reported; the ones outside cannot.
    period_bounds(_core.MIN_YEAR)
    period_bounds(_core.MAX_YEAR, 12)
    for year in (_core.MIN_YEAR - 1, _core.MAX_YEAR + 1):
        with pytest.raises(wl.UsageError, match=r"out of range \(1\.\.9998\)"):
            period_bounds(year)


def test_distinct_names_past_the_cap_stop_the_run_quickly_with_bounded_memory(tmp_path: Path) -> None:
    log = tmp_path / "ids.jsonl"
    with log.open("w", encoding="utf-8") as f:
        for i in range(200_000):
            f.write(f'{{"ts":"{TS}","model":"req-{i:08d}","input_tokens":1}}\n')
    ledger = tmp_path / "l.duckdb"
    run = run_cli("ingest", log, "--ledger", ledger, "--no-progress", "--max-names", "1000", timeout=60)
    assert run.returncode == EXIT_INPUT, run.stderr
    errors = [line for line in run.error_lines if line.startswith("error")]
    assert len(errors) == 1, run.stderr
    assert "column model: more than 1000 distinct values" in errors[0]
    assert "request id" in errors[0] and "--max-names" in errors[0]
    assert not ledger.exists()
    assert run.max_rss_bytes < 400 * MIB, run.max_rss_mib
    # Under the cap the same names are fine (the Python keyword too).
    small = _jsonl(tmp_path / "s.jsonl", [{"ts": TS, "model": f"m{i}"} for i in range(50)])
    assert len(wl.estimate(small, max_names=50)) == 50
    with pytest.raises(wl.UsageError, match="column model: more than 49 distinct values"):
        wl.estimate(small, max_names=49)


def _far_apart_grid(path: Path, zones: int) -> Path:
    """Per zone two rows an hour apart (the median gap says hourly) and one 999,000 h later."""
    lines = ["zone,datetime,g_per_kwh"]
    for z in range(zones):
        lines += [f"Z{z},1900-01-01T00:00:00Z,100", f"Z{z},1900-01-01T01:00:00Z,200"]
        lines.append(f"Z{z},2013-12-21T00:00:00Z,300")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_grid_with_rows_far_apart_loads_in_bounded_memory(tmp_path: Path) -> None:
    grid = _far_apart_grid(tmp_path / "far.csv", 300)
    run = run_cli("grid", "summary", grid, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Z299" in run.stdout
    # Dense storage took 2.4 GB for these 27 KB; sparse is the interpreter plus a little.
    assert run.max_rss_bytes < 400 * MIB, run.max_rss_mib
    g = wl.load_grid(grid)
    (z0,) = [z for z in g.summary() if z.zone == "Z0"]
    assert z0.hours_with_value == 3


def test_grid_errors_name_the_file_and_line(tmp_path: Path) -> None:
    grid = tmp_path / "g.csv"
    grid.write_text(
        "zone,datetime,g_per_kwh\nDE,2025-06-01T00:00:00Z,300\n\nDE,2025-06-01T01:00:00Z,6000\n",
        encoding="utf-8",
    )
    with pytest.raises(wl.GridError, match=r"g\.csv: line 4: zone DE at .*6000 gCO2e/kWh is outside"):
        wl.load_grid(grid)
    daily = tmp_path / "d.csv"
    daily.write_text(
        "zone,datetime,g_per_kwh\nDE,2024-01-01T00:00:00Z,1\nDE,2024-01-02T00:00:00Z,2\n", encoding="utf-8"
    )
    with pytest.raises(wl.GridError, match=r"d\.csv: line 3: zone DE: rows are 24 h apart"):
        wl.load_grid(daily)


def _big_pack(path: Path, models: int) -> Path:
    out = ['[hardware."h100"]', "tdp_w = 700"]
    for i in range(models):
        out.append(f'[models."m{i}"]')
        out.append('coefficients = [{hardware = "*", wh_per_1k_input = 1.0, wh_per_1k_output = 0.0}]')
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_a_pack_with_thousands_of_models_loads_fast_in_bounded_memory(tmp_path: Path) -> None:
    pack = _big_pack(tmp_path / "big.toml", 5000)
    log = _jsonl(tmp_path / "a.jsonl", [{"ts": TS, "model": "m4999", "input_tokens": 1000}])
    run = run_cli(
        "ingest", log, "--ledger", tmp_path / "l.duckdb", "--config", pack, "--no-progress", timeout=60
    )
    assert run.returncode == 0, run.stderr
    # A table per model indexed by every name took 876 MB at 5000 models (3.3 GB at 10k).
    assert run.max_rss_bytes < 400 * MIB, run.max_rss_mib
    frame = wl.estimate(log, config=pack)
    assert frame["energy_acc_kwh"].to_list() == [pytest.approx(0.001)]


def test_what_if_energy_is_null_for_inputs_an_ingest_would_reject() -> None:
    con = duckdb.connect()
    register(con, wl.load_config(None))
    rows = con.sql(
        """SELECT wl_energy_wh(m, 'nvidia-h100-sxm', i, o, d, e),
                  wl_energy_method(m, 'nvidia-h100-sxm', i, o, d, e)
           FROM (VALUES ('llama-3.1-8b', 1000, 0, NULL, NULL),
                        ('llama-3.1-8b', -1000, 0, NULL, NULL),
                        ('llama-3.1-8b', NULL, NULL, -3600.0, NULL),
                        ('llama-3.1-8b', NULL, NULL, NULL, -3600.0),
                        ('llama-3.1-8b', NULL, NULL, 'nan'::DOUBLE, NULL),
                        ('llama-3.1-8b', NULL, NULL, NULL, 'inf'::DOUBLE),
                        ('llama' || chr(0), 1000, 0, NULL, NULL)) t(m, i, o, d, e)"""
    ).fetchall()
    assert rows[0][0] is not None and rows[0][0] > 0 and rows[0][1] == "tokens"
    assert rows[1:] == [(None, None)] * 6
