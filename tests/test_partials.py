"""The pieces the Spark and Ray engines share (wattledger.partials), without a cluster: the
worker's run equals a local run, the pack and grid are parsed once per worker process, the
reduction keeps nulls, the plain statistics mirror the engine's."""

from __future__ import annotations

import inspect
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

import wattledger
from oracle_sql import frames_close
from scale_out_data import Case, make_case
from wattledger import _core, partials
from wattledger.config import load_config, load_grid
from wattledger.errors import UsageError
from wattledger.schema import AGGREGATE_COLUMNS, MEASURE_COLUMNS


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return make_case(tmp_path_factory.mktemp("partials"), records=3_000)


def test_file_stats_row_has_every_attribute_of_the_engines() -> None:
    """Ingest reads a FileStatsRow where it reads a _core.FileStats: same attributes."""
    engine = {n for n, _ in inspect.getmembers(_core.FileStats) if not n.startswith("_")}
    assert set(partials.FileStatsRow.__dataclass_fields__) == engine


def test_worker_run_is_the_local_run_and_loads_once(case: Case) -> None:
    plan = partials.make_plan(load_config(case.config), [case.grid], hash=True)
    out = partials.run_files(plan, case.logs)
    assert out.error is None
    local = wattledger.estimate(case.logs, config=case.config, grid=case.grid)
    got = pl.from_arrow(out.aggregates)
    assert isinstance(got, pl.DataFrame) and got.columns == list(AGGREGATE_COLUMNS)
    want = local.with_columns(
        pl.col(c).cast(pl.Utf8) for c in ("source", "model", "site", "zone", "hardware")
    )
    keys = ["source", "hour", "model", "site", "zone", "hardware", "method"]
    got, want = got.sort(keys, nulls_last=True), want.sort(keys, nulls_last=True)
    assert frames_close(got, want.select(got.columns), rel=0) == []
    assert sum(f.rejected for f in out.files) == 6 and all(f.blake3 for f in out.files)
    # The second task on this worker reuses the parsed pack, grid and estimator.
    assert partials.estimator(plan, "<files>") is partials.estimator(plan, "<files>")
    assert partials._LOADED[plan.key].config.sha256 == load_config(case.config).sha256


def test_bad_input_comes_back_as_the_engines_error(case: Case, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(Path(case.logs[1]).read_bytes()[:300])
    plan = partials.make_plan(load_config(case.config), [case.grid], hash=True)
    out = partials.run_files(plan, [str(broken)])
    assert out.error is not None and out.error[0] == "InputError"
    with pytest.raises(wattledger.errors.InputError, match=r"broken\.jsonl\.gz"):
        partials.read_tasks([partials.task_json(out)])


def test_reduce_keeps_nulls_and_adds_the_rest() -> None:
    schema = partials.aggregate_schema()
    hour = pa.scalar(0, pa.timestamp("us", tz="UTC"))
    row = {c: None for c in schema.names} | {
        "source": "f",
        "hour": hour.as_py(),
        "model": "m",
        "method": "tokens",
    }
    a = row | {"records": 1, "energy_kwh": 1.5, "co2e_location_kg": None}
    b = row | {"records": 2, "energy_kwh": 2.0, "co2e_location_kg": None}
    table = pa.Table.from_pylist([a, b], schema=schema)
    out = partials.reduce_table(table).to_pylist()
    assert len(out) == 1
    assert out[0]["records"] == 3 and out[0]["energy_kwh"] == 3.5
    assert out[0]["co2e_location_kg"] is None  # null in every partial: stays null
    assert [c for c in out[0] if c in MEASURE_COLUMNS] == list(MEASURE_COLUMNS)


def test_plan_needs_grid_files_and_names_its_content(case: Case, tmp_path: Path) -> None:
    cfg = load_config(case.config)
    with pytest.raises(UsageError, match="grid files"):
        partials.make_plan(cfg, load_grid([case.grid]))
    copy = tmp_path / "grid.csv"
    copy.write_bytes(Path(case.grid).read_bytes())
    assert partials.make_plan(cfg, [case.grid]).key == partials.make_plan(cfg, [str(copy)]).key
    copy.write_bytes(Path(case.grid).read_bytes() + b"\n")
    assert partials.make_plan(cfg, [case.grid]).key != partials.make_plan(cfg, [str(copy)]).key
