"""The engine on Spark (``local[2]``, started by the tests) gives what the local engine gives.

Same mixed-format files (tests/scale_out_data.py) through ``wattledger.ingest`` and through
``wattledger.spark``: the same per-model report (rel 1e-9), the same rejects and identity per
file, the same summary, the same skips on re-ingest, the same replacement of a changed file.
One Spark session for the whole module: starting the JVM is most of the cost.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyspark
import pytest
from typer.testing import CliRunner

import wattledger
from object_store_servers import MotoS3, moto_s3
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
from wattledger import spark as wspark
from wattledger.cli import app
from wattledger.errors import InputError, SourceConflictError, UsageError
from wattledger.schema import KEY_COLUMNS, MEASURE_COLUMNS

assert pyspark.__version__  # pyspark is a test dependency: missing, this file fails to import


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    session = wspark.session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return make_case(tmp_path_factory.mktemp("spark-case"))


@pytest.fixture(scope="module")
def local_ledger(
    case: Case, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, wattledger.IngestSummary]:
    ledger = tmp_path_factory.mktemp("local") / "ledger.duckdb"
    summary = wattledger.ingest(case.logs, ledger=ledger, config=case.config, grid=case.grid, progress=False)
    return ledger, summary


@pytest.fixture(scope="module")
def spark_ledger(
    spark: object, case: Case, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, wattledger.IngestSummary]:
    ledger = tmp_path_factory.mktemp("spark") / "ledger.duckdb"
    summary = wspark.ingest(case.logs, ledger=ledger, config=case.config, grid=case.grid, progress=False)
    return ledger, summary


def test_same_report_rejects_and_identity_as_local(local_ledger, spark_ledger) -> None:
    (local, local_summary), (on_spark, spark_summary) = local_ledger, spark_ledger
    want = report(local)
    assert want.height >= 5 and local_summary.rejected == 6  # the planted bad records
    assert frames_close(report(on_spark), want, rel=1e-9) == []
    assert sources(on_spark) == sources(local)  # rejects per file, size, BLAKE3, columns
    assert hourly_rows(on_spark) == hourly_rows(local)
    assert summary_view(spark_summary) == summary_view(local_summary)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        yield server


def test_objects_in_s3_are_read_by_the_tasks_as_locally(
    spark: object, s3: MotoS3, case: Case, local_ledger, tmp_path: Path
) -> None:
    """``s3://`` objects on Spark: each task reads its object with the run's storage options
    (shipped in the plan, not the workers' environment): the local report, rejects and BLAKE3
    per file, the URL as the source; a second run skips every object unread."""
    url = upload_case_to(s3, case, "wl-spark")
    run = dict(config=case.config, grid=case.grid, progress=False, storage_options=s3.storage_options())
    ledger = tmp_path / "s3.duckdb"
    summary = wspark.ingest(url, ledger=ledger, **run)
    local, local_summary = local_ledger
    assert summary.records == local_summary.records and summary.rejected == local_summary.rejected
    assert frames_close(report(ledger), report(local), rel=1e-9) == []
    assert sources(ledger) == sources_as_urls(sources(local), Path(case.logs[0]).parent, url)
    again = wspark.ingest(url, ledger=ledger, **run)
    assert again.files_read == 0 and len(again.files_skipped) == len(case.logs)


def test_dataframe_input_files_in_object_storage_are_urls_the_engine_reads() -> None:
    """A DataFrame read from ``s3a://`` stands for its objects: their URIs go to the engine as
    URLs; a scheme the engine cannot read is refused naming it."""
    assert wspark._local_path("s3a://bucket/logs/a.jsonl") == "s3a://bucket/logs/a.jsonl"
    assert wspark._local_path("file:///data/a%20b.jsonl") == "/data/a b.jsonl"
    with pytest.raises(UsageError, match=r"hdfs://nn/logs/a\.jsonl"):
        wspark._local_path("hdfs://nn/logs/a.jsonl")


def test_reingest_skips_every_file(case: Case, spark_ledger) -> None:
    ledger, first = spark_ledger
    again = wspark.ingest(case.logs, ledger=ledger, config=case.config, grid=case.grid, progress=False)
    assert again.files_read == 0 and again.records == 0
    assert sorted(s.path for s in again.files_skipped) == sorted(case.logs)
    assert frames_close(report(ledger), report(ledger), rel=0) == []
    assert again.requests == 0 and first.records > 0


def test_changed_file_is_refused_then_replaced_as_local(spark: object, case: Case, tmp_path: Path) -> None:
    """A file that changed after its ingest: refused without ``replace``, swapped with it,
    and both ledgers agree afterwards."""
    ledgers = {}
    for engine in ("local", "spark"):
        logs = tmp_path / engine / "logs"
        shutil.copytree(Path(case.logs[0]).parent, logs)
        paths = sorted(str(p) for p in logs.iterdir())
        ledger = tmp_path / engine / "ledger.duckdb"
        run = wattledger.ingest if engine == "local" else wspark.ingest
        run(paths, ledger=ledger, config=case.config, grid=case.grid, progress=False)
        changed = logs / "b.jsonl.gz"
        with gzip.open(changed, "rt") as f:
            kept = f.readlines()[:-50]
        # mtime=0: the same bytes in both directories (gzip stamps the time otherwise).
        changed.write_bytes(gzip.compress("".join(kept).encode(), mtime=0))
        with pytest.raises(SourceConflictError):
            run(paths, ledger=ledger, config=case.config, grid=case.grid, progress=False)
        summary = run(paths, ledger=ledger, config=case.config, grid=case.grid, progress=False, replace=True)
        assert summary.files_replaced == (str(changed),) and summary.files_read == 1
        ledgers[engine] = ledger
    assert frames_close(report(ledgers["spark"]), report(ledgers["local"]), rel=1e-9) == []
    # The same files in two directories: compared by name, with their size and BLAKE3.
    by_name = {e: [(Path(str(r[0])).name, *r[1:]) for r in sources(ledgers[e])] for e in ledgers}
    assert by_name["spark"] == by_name["local"]


def test_estimate_partials_reduce_to_the_local_cells(spark, case: Case) -> None:
    """``estimate`` over a DataFrame (Parquet read by Spark, several partitions): its partials
    summed by key are the local engine's cells, nulls where the local cells hold nulls."""
    parquet = next(p for p in case.logs if p.endswith(".parquet"))
    df = spark.read.parquet(parquet).repartition(3)
    got = pl.from_arrow(wspark.reduce(wspark.estimate(df, config=case.config, grid=case.grid)).toArrow())
    want = wattledger.estimate(parquet, config=case.config, grid=case.grid).drop("source")
    keys = list(KEY_COLUMNS)
    got = got.with_columns(pl.col("hour").dt.replace_time_zone("UTC")).sort(keys, nulls_last=True)
    want = want.with_columns(pl.col(c).cast(pl.Utf8) for c in keys[1:]).sort(keys, nulls_last=True)
    assert got.columns == [*KEY_COLUMNS, *MEASURE_COLUMNS]
    assert frames_close(got.select(want.columns), want, rel=1e-9) == []
    assert want["co2e_location_kg"].null_count() > 0  # the nulls were there to keep


def test_dataframe_ingest_records_its_input_files(spark, case: Case, tmp_path: Path) -> None:
    parquet = next(p for p in case.logs if p.endswith(".parquet"))
    local = wattledger.ingest(parquet, ledger=tmp_path / "l.duckdb", config=case.config, grid=case.grid)
    df = spark.read.parquet(parquet)
    on_spark = wspark.ingest(df, ledger=tmp_path / "s.duckdb", config=case.config, grid=case.grid)
    assert summary_view(on_spark) == summary_view(local)
    assert sources(tmp_path / "s.duckdb") == sources(tmp_path / "l.duckdb")
    with pytest.raises(UsageError, match="not a plain read of files"):
        wspark.ingest(
            df.where("model = 'x'"), ledger=tmp_path / "f.duckdb", config=case.config, grid=case.grid
        )


def test_bad_input_fails_as_locally(spark: object, case: Case, tmp_path: Path) -> None:
    """A damaged gzip stops the run with the engine's own error, the ledger untouched."""
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(Path(case.logs[1]).read_bytes()[:300])
    with pytest.raises(InputError) as local:
        wattledger.ingest(broken, ledger=tmp_path / "l.duckdb", config=case.config, grid=case.grid)
    with pytest.raises(InputError) as on_spark:
        wspark.ingest(broken, ledger=tmp_path / "s.duckdb", config=case.config, grid=case.grid)
    assert str(on_spark.value) == str(local.value)
    assert not (tmp_path / "s.duckdb").exists()


def test_cli_engine_spark_prints_the_local_summary(spark: object, case: Case, tmp_path: Path) -> None:
    """``--engine spark`` (the session above is the active one) prints what the local run
    prints, but for the run id and the ledger's name; ``--dedupe`` is refused in one line."""
    runner = CliRunner()
    common = ["ingest", *case.logs, "--config", case.config, "--grid", case.grid, "--no-progress"]
    local = runner.invoke(app, [*common, "--ledger", str(tmp_path / "l.duckdb")])
    on_spark = runner.invoke(app, [*common, "--ledger", str(tmp_path / "s.duckdb"), "--engine", "spark"])
    assert local.exit_code == on_spark.exit_code == 0, on_spark.output
    strip = lambda out: [ln for ln in out.splitlines() if not ln.startswith("run:")]  # noqa: E731
    assert strip(on_spark.output) == strip(local.output)
    refused = runner.invoke(
        app, [*common, "--ledger", str(tmp_path / "d.duckdb"), "--engine", "spark", "--dedupe"]
    )
    assert refused.exit_code == 2 and "--dedupe" in refused.output
    # Node energy is shared over every request of a node, whichever file it is in: not one task
    # per file, so refused before the ledger is touched.
    counters = tmp_path / "dcgm.prom"
    counters.write_text('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",Hostname="n1"} 1000 1735689600000\n')
    refused = runner.invoke(
        app,
        [
            *common,
            "--ledger",
            str(tmp_path / "e.duckdb"),
            "--engine",
            "spark",
            "--node-energy",
            str(counters),
        ],
    )
    assert refused.exit_code == 2 and "--node-energy" in refused.output and "--engine local" in refused.output
    assert not (tmp_path / "e.duckdb").exists()
