"""`wattledger calibrate` end to end: logs in, pack out, and the per-record estimate of held-out
requests with that pack against what was measured (issue 16, points 1 and 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import wattledger
from calibration_fleet import PACK, fleet
from wattledger.calibrate import split
from wattledger.cli import EXIT_INPUT, app

runner = CliRunner()


def run(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def _write_logs(records: pl.DataFrame, path: Path, *, measured: bool) -> Path:
    cols = ["request_id", "ts", "model", "site", "hardware", "input_tokens", "output_tokens", "weight"]
    records.select(*cols, *(["energy_j", "duration_s"] if measured else [])).write_ndjson(path)
    return path


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(PACK)
    return path


def test_calibrate_prints_its_table_and_the_pack_estimates_held_out_requests(
    tmp_path: Path, pack: Path
) -> None:
    records = fleet(1500, seed=31)
    logs = _write_logs(records, tmp_path / "metered.jsonl", measured=True)
    out = tmp_path / "calibrated.toml"
    result = run("calibrate", logs, "--config", pack, "--out", out, "--seed", "4")
    assert result.exit_code == 0, result.stderr
    for fragment in (
        "llama-8b on h100",
        "records used",
        "held-out total error",
        "band coverage",
        "utilization of a100",
    ):
        assert fragment in result.stdout, result.stdout
    assert f"wrote {out}" in result.stderr

    # The held-out requests (the command's own split), estimated per record from tokens alone.
    held = records.filter(pl.Series(split.held_out(records, 0.2, 4)))
    est = wattledger.estimate(
        _write_logs(held, tmp_path / "held.jsonl", measured=False), config=out, per_record=True
    )
    assert set(est.get_column("method")) == {"tokens"}
    joined = est.join(held.select("request_id", pl.col("energy_j").alias("measured_j")), on="request_id")
    assert joined.height == held.height
    measured = joined.get_column("measured_j").to_numpy() / 3600 * joined.get_column("weight").to_numpy()
    for model in ("llama-8b", "llama-70b"):
        rows = joined.filter(pl.col("model") == model)
        mine = measured[(joined.get_column("model") == model).to_numpy()]
        assert rows.get_column("accelerator_wh").sum() == pytest.approx(mine.sum(), rel=0.05), model
    low = joined.get_column("accelerator_wh_low").to_numpy()
    high = joined.get_column("accelerator_wh_high").to_numpy()
    covered = (measured >= low) & (measured <= high)
    weights = joined.get_column("weight").to_numpy()
    assert np.sum(weights * covered) / np.sum(weights) >= 0.9


def test_logs_without_energy_exit_2_with_one_line(tmp_path: Path, pack: Path) -> None:
    logs = _write_logs(fleet(100, seed=1), tmp_path / "plain.jsonl", measured=False)
    result = run("calibrate", logs, "--config", pack, "--out", tmp_path / "c.toml")
    assert result.exit_code == EXIT_INPUT
    assert result.stderr.startswith("error: no record carries a measured energy_j")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.toml").exists()


def test_every_group_under_min_records_exits_2(tmp_path: Path, pack: Path) -> None:
    logs = _write_logs(fleet(30, seed=1), tmp_path / "few.jsonl", measured=True)
    result = run("calibrate", logs, "--config", pack, "--out", tmp_path / "c.toml", "--min-records", "100")
    assert result.exit_code == EXIT_INPUT
    assert result.stderr.startswith("error: nothing could be fitted: 90 measured records, at most 30")
    assert not (tmp_path / "c.toml").exists()


def test_a_holdout_outside_its_range_is_a_usage_error(tmp_path: Path, pack: Path) -> None:
    result = run("calibrate", tmp_path / "x.jsonl", "--out", tmp_path / "c.toml", "--holdout", "1.5")
    assert result.exit_code == EXIT_INPUT
    assert "--holdout" in result.stderr and "Traceback" not in result.stderr
