"""The SYNTHETIC fleet generator's options: record order and record width.

Why: the benchmark profiles (a nightly file in time order, a backfill in random order, narrow
and wide records) are only comparable if the options change what they claim and nothing else:
the same seed gives the same files, random order is really unordered, and extra fields are
ignored by the methodology (a wide fleet reports exactly as its narrow twin).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import oracle_sql as o  # noqa: E402
import peers  # noqa: E402
from _synthetic_import import load_synthetic  # noqa: E402

syn = load_synthetic()
TEXT = ("jsonl", "csv")
ALL = ("parquet", "jsonl", "jsonl.zst", "csv")
CORE = [f.name for f in syn.LOG_SCHEMA]


def _gen(path: Path, **kw):
    args = {"records": 3_000, "span": "year", "formats": ("parquet", "jsonl", "csv"), "seed": 5}
    return syn.generate_fleet(path, **{**args, "chunk_records": 1_000, **kw})


def test_default_output_is_unchanged(tmp_path: Path) -> None:
    """The defaults (time order, narrow) write what the generator wrote before the options
    existed: the demo's numbers and every cached benchmark data set depend on it. The figures
    are those of the generator before this change, same arguments."""
    f = _gen(tmp_path)
    assert (f.order, f.width) == ("time", 0)
    df = pl.read_parquet(f.logs["parquet"])
    assert df.columns == CORE
    assert df["ts"].cast(pl.Int64).sum() == 5293511890744385180
    assert df["input_tokens"].sum() == 2497361
    assert df["energy_j"].sum() == pytest.approx(190511.036, abs=1e-6)
    assert df["model"].value_counts(sort=True).rows()[:3] == [
        ("llama-3.1-8b", 1161),
        ("llama-3.1-70b", 591),
        ("mistral-large-2", 352),
    ]
    digest = hashlib.sha256(f.logs["jsonl"].read_bytes()).hexdigest()
    assert digest == "1ccd5c7237c0eefa2fb6ac939e36e98b553271233f79778c0fb2cec99fe3e7bc"


@pytest.mark.parametrize(("width", "extra"), [("narrow", 0), ("wide", 12), (3, 3), ("15", 15)])
def test_width_shape_in_every_format(tmp_path: Path, width: str | int, extra: int) -> None:
    f = _gen(tmp_path, formats=ALL, width=width, records=500)
    names = syn.extra_field_names(extra)
    assert f.width == extra and len(names) == extra and not set(names) & set(CORE)
    if extra > 12:
        assert names[12:] == [f"extra_{i}" for i in range(13, extra + 1)]
    want = syn.log_schema(extra).names
    assert sorted(want) == sorted(CORE + names)
    assert pl.read_parquet(f.logs["parquet"]).columns == want
    assert pl.read_csv(f.logs["csv"], infer_schema=False).columns == want
    for log in (f.logs["jsonl"],):
        rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        assert len(rows) == 500 and all(list(r) == want for r in rows)
    if extra >= 12:
        row = json.loads(f.logs["jsonl"].read_text(encoding="utf-8").splitlines()[0])
        # The realistic payload: a nested object and a long string in JSON.
        assert set(row["metadata"]) == {"app", "env", "trace_id", "retries"}
        assert len(row["prompt_preview"]) > 80
        # CSV has no nesting: the object is its JSON text.
        csv = pl.read_csv(f.logs["csv"], infer_schema=False)
        assert json.loads(csv["metadata"][0]) == row["metadata"]


def test_width_keeps_the_core_fields_and_extras_are_a_prefix(tmp_path: Path) -> None:
    narrow = pl.read_parquet(_gen(tmp_path / "n").logs["parquet"])
    wide = pl.read_parquet(_gen(tmp_path / "w", width="wide").logs["parquet"])
    three = pl.read_parquet(_gen(tmp_path / "3", width=3).logs["parquet"])
    assert wide.select(CORE).equals(narrow)
    names3 = syn.extra_field_names(3)
    assert three.select(names3).equals(wide.select(names3))
    # Extras vary from record to record (not one constant repeated).
    assert wide["prompt_hash"].n_unique() > 2_900 and wide["user_id"].n_unique() > 10


@pytest.mark.parametrize("kw", [{}, {"order": "random", "width": "wide"}])
def test_same_seed_same_files(tmp_path: Path, kw: dict[str, str]) -> None:
    a = _gen(tmp_path / "a", **kw)
    b = _gen(tmp_path / "b", **kw)
    for fmt in TEXT:
        assert a.logs[fmt].read_bytes() == b.logs[fmt].read_bytes(), fmt
    assert pl.read_parquet(a.logs["parquet"]).equals(pl.read_parquet(b.logs["parquet"]))
    c = pl.read_parquet(_gen(tmp_path / "c", seed=6, **kw).logs["parquet"])
    assert not c.equals(pl.read_parquet(a.logs["parquet"]))


def test_random_order_is_unordered_and_spans_the_year(tmp_path: Path) -> None:
    timed = pl.read_parquet(_gen(tmp_path / "t").logs["parquet"])
    rand = pl.read_parquet(_gen(tmp_path / "r", order="random").logs["parquet"])
    assert _gen(tmp_path / "r2", order="random", records=10).order == "random"
    # Time order: only seconds of jitter. Random: about half the steps go back in time, and
    # the first chunk alone (1,000 records) already reaches every month of the span.
    assert (timed["ts"].diff().drop_nulls().dt.total_seconds() > -30).all()
    back = (rand["ts"].diff().drop_nulls().dt.total_seconds() < -3600).mean()
    assert 0.4 < back < 0.6
    assert rand["ts"].head(1_000).dt.month().n_unique() == 12
    lo, hi = timed["ts"].min(), timed["ts"].max()
    assert rand["ts"].min() >= lo.replace(hour=0, minute=0, second=0, microsecond=0)  # type: ignore[union-attr]
    assert rand["ts"].max() < hi.replace(year=hi.year + 1)  # type: ignore[union-attr]
    # Every other field is drawn as in time order: the same records, re-timed.
    assert rand.drop("ts").equals(timed.drop("ts"))


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="order"):
        _gen(tmp_path, order="sorted")
    with pytest.raises(ValueError, match="width"):
        _gen(tmp_path, width="huge")
    with pytest.raises(ValueError, match="negative"):
        _gen(tmp_path, width=-1)


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory):
    """A narrow fleet and its wide twin (same seed), random order, every format."""
    root = tmp_path_factory.mktemp("twins")
    kw = {
        "records": 6_000,
        "span": "day",
        "formats": ALL,
        "seed": 8,
        "chunk_records": 2_500,
        "order": "random",
    }
    return syn.generate_fleet(root / "narrow", **kw), syn.generate_fleet(root / "wide", width="wide", **kw)


@pytest.mark.parametrize("fmt", ALL)
def test_wide_reports_as_narrow_in_the_peers(twins, fmt: str) -> None:
    """Both benchmark peers read the wide files to the same report as the narrow ones (they
    must, for a wide benchmark to time the same work)."""
    narrow, wide = twins
    want = o.oracle_report_by_model(narrow.logs[fmt], narrow.config, narrow.grid, year=2025)
    assert want["records"].sum() == 6_000
    got = o.oracle_report_by_model(wide.logs[fmt], wide.config, wide.grid, year=2025)
    assert o.frames_close(got, want, rel=1e-12) == []
    polars = peers.polars_report(wide.logs[fmt], wide.config, wide.grid, year=2025)
    assert o.frames_close(polars, want, rel=1e-9) == []


@pytest.mark.filterwarnings("ignore::UserWarning")  # the fleet's deliberate gaps (RunWarning)
@pytest.mark.parametrize("fmt", ALL)
def test_wattledger_ignores_the_extra_fields(twins, fmt: str, tmp_path: Path) -> None:
    """wattledger's report of the wide file is byte-identical to the narrow one's: the extra
    fields (nested object, long escaped strings, numbers) are read past, never counted. One
    worker thread: with more, the order in which workers' partial sums of a cell are added may
    differ between any two runs, even of the same file, in the last bit."""
    wl = pytest.importorskip("wattledger")
    narrow, wide = twins
    csv = []
    for fleet in (narrow, wide):
        ledger = tmp_path / f"{fleet.width}.duckdb"
        s = wl.ingest(
            [fleet.logs[fmt]],
            ledger=ledger,
            config=fleet.config,
            grid=[fleet.grid],
            progress=False,
            threads=1,
        )
        assert s.records + s.rejected == 6_000
        csv.append(wl.report(ledger, year=2025).write_csv())
    assert csv[0] == csv[1]
