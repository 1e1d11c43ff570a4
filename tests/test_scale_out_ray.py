"""The engine on Ray Data (a local Ray of 2 CPUs, started by the tests) gives what the local
engine gives: the same per-model report (rel 1e-9), rejects and identity per file, summary and
skips on re-ingest as a local run of the same mixed-format files (tests/scale_out_data.py).
One Ray for the whole module: starting it is most of the cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
import ray
import ray.data
from typer.testing import CliRunner

import wattledger
from object_store_servers import moto_s3
from oracle_sql import frames_close
from scale_out_data import (
    Case,
    hourly_rows,
    make_case,
    report,
    sources,
    sources_as_urls,
    summary_view,
    upload_case_to,
)
from wattledger import ray as wray
from wattledger.cli import app
from wattledger.errors import InputError
from wattledger.schema import KEY_COLUMNS, MEASURE_COLUMNS


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    wray.init(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return make_case(tmp_path_factory.mktemp("ray-case"))


def test_same_report_rejects_identity_and_skips_as_local(local_ray: None, case: Case, tmp_path: Path) -> None:
    local = wattledger.ingest(case.logs, ledger=tmp_path / "l.duckdb", config=case.config, grid=case.grid)
    on_ray = wray.ingest(case.logs, ledger=tmp_path / "r.duckdb", config=case.config, grid=case.grid)
    want = report(tmp_path / "l.duckdb")
    assert want.height >= 5 and local.rejected == 6  # the planted bad records
    assert frames_close(report(tmp_path / "r.duckdb"), want, rel=1e-9) == []
    assert sources(tmp_path / "r.duckdb") == sources(tmp_path / "l.duckdb")
    assert hourly_rows(tmp_path / "r.duckdb") == hourly_rows(tmp_path / "l.duckdb")
    assert summary_view(on_ray) == summary_view(local)
    again = wray.ingest(case.logs, ledger=tmp_path / "r.duckdb", config=case.config, grid=case.grid)
    assert again.files_read == 0 and sorted(s.path for s in again.files_skipped) == sorted(case.logs)
    assert frames_close(report(tmp_path / "r.duckdb"), want, rel=1e-9) == []


def test_objects_in_s3_are_read_by_the_tasks_as_locally(local_ray: None, case: Case, tmp_path: Path) -> None:
    """``s3://`` objects on Ray: the tasks read them with the storage options shipped in the
    plan; the same report, rejects and identity per object as the local files give."""
    with moto_s3(tmp_path / "moto") as s3:
        url = upload_case_to(s3, case, "wl-ray")
        run = dict(config=case.config, grid=case.grid, storage_options=s3.storage_options())
        local = wattledger.ingest(case.logs, ledger=tmp_path / "l.duckdb", config=case.config, grid=case.grid)
        on_ray = wray.ingest(url, ledger=tmp_path / "r.duckdb", **run)
        assert (on_ray.records, on_ray.rejected) == (local.records, local.rejected)
        assert frames_close(report(tmp_path / "r.duckdb"), report(tmp_path / "l.duckdb"), rel=1e-9) == []
        local_dir = Path(case.logs[0]).parent
        assert sources(tmp_path / "r.duckdb") == sources_as_urls(
            sources(tmp_path / "l.duckdb"), local_dir, url
        )


def test_estimate_partials_reduce_to_the_local_cells(local_ray: None, case: Case) -> None:
    """``estimate`` over a Dataset of several blocks: its partials summed by key (a grouped sum
    on the cluster) are the local engine's cells, nulls kept."""
    parquet = next(p for p in case.logs if p.endswith(".parquet"))
    ds = ray.data.read_parquet(parquet).repartition(3)
    reduced = wray.reduce(wray.estimate(ds, config=case.config, grid=case.grid))
    got = pl.from_arrow(pa.concat_tables(reduced.iter_batches(batch_format="pyarrow", batch_size=None)))
    want = wattledger.estimate(parquet, config=case.config, grid=case.grid).drop("source")
    keys = list(KEY_COLUMNS)
    assert isinstance(got, pl.DataFrame) and got.columns == [*KEY_COLUMNS, *MEASURE_COLUMNS]
    got = got.sort(keys, nulls_last=True)
    want = want.with_columns(pl.col(c).cast(pl.Utf8) for c in keys[1:]).sort(keys, nulls_last=True)
    assert frames_close(got.select(want.columns), want, rel=1e-9) == []
    assert want["co2e_location_kg"].null_count() > 0  # the nulls were there to keep


def test_bad_input_fails_as_locally(local_ray: None, case: Case, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(Path(case.logs[1]).read_bytes()[:300])
    with pytest.raises(InputError) as local:
        wattledger.ingest(broken, ledger=tmp_path / "l.duckdb", config=case.config, grid=case.grid)
    with pytest.raises(InputError) as on_ray:
        wray.ingest(broken, ledger=tmp_path / "r.duckdb", config=case.config, grid=case.grid)
    assert str(on_ray.value) == str(local.value)
    assert not (tmp_path / "r.duckdb").exists()


def test_cli_engine_ray_prints_the_local_summary(local_ray: None, case: Case, tmp_path: Path) -> None:
    runner = CliRunner()
    common = ["ingest", *case.logs, "--config", case.config, "--grid", case.grid, "--no-progress"]
    local = runner.invoke(app, [*common, "--ledger", str(tmp_path / "l.duckdb")])
    on_ray = runner.invoke(app, [*common, "--ledger", str(tmp_path / "r.duckdb"), "--engine", "ray"])
    assert local.exit_code == on_ray.exit_code == 0, on_ray.output
    strip = lambda out: [ln for ln in out.splitlines() if not ln.startswith("run:")]  # noqa: E731
    assert strip(on_ray.output) == strip(local.output)
