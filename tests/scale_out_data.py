"""The mixed-format case the scale-out tests run through every engine, and how they compare.

Why one module: the Spark and the Ray tests live in their own files (pytest-xdist runs one file
per worker, each with its own cluster), but must judge the same files by the same rules as the
local engine. The files: SYNTHETIC fleet logs as JSON Lines (+ gzip), zstd JSON Lines, CSV and
Parquet, with bad records planted in the text ones (broken JSON, a missing timestamp, a bad
number), so rejects are counted per file by each engine's readers.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

import wattledger
from wattledger import synthetic

YEAR = 2025

#: Bad records planted per file: what the readers must reject (and count) the same everywhere.
BAD_JSONL = [
    "{this is not json\n",
    json.dumps({"model": "llama-3.1-8b", "input_tokens": 5}) + "\n",  # no ts
    json.dumps({"ts": "2025-06-01T03:00:00Z", "model": "llama-3.1-8b", "input_tokens": "many"}) + "\n",
]
BAD_CSV = ["not-a-time,bad-1,llama-3.1-8b,,PL,nvidia-l4,,10,10,,,1.0,ok\n"]


@dataclass(frozen=True)
class Case:
    logs: list[str]
    config: str
    grid: str


def make_case(root: Path, records: int = 6_000) -> Case:
    """The mixed-format files under ``root`` (fresh each call)."""
    fleet = synthetic.generate_fleet(
        root / "fleet", records=records, formats=synthetic.FORMATS, seed=17, chunk_records=2_000
    )
    logs = root / "logs"
    logs.mkdir()
    jsonl = fleet.logs["jsonl"].read_text().splitlines(keepends=True)
    half = len(jsonl) // 2
    # Two JSON Lines files from the two halves, each with its own planted rejects; one gzipped.
    (logs / "a.jsonl").write_text("".join(jsonl[:half] + BAD_JSONL[:2]))
    with gzip.open(logs / "b.jsonl.gz", "wt") as out:
        out.write("".join(jsonl[half:] + BAD_JSONL))
    csv = fleet.logs["csv"].read_text().splitlines(keepends=True)
    (logs / "c.csv").write_text("".join(csv[:1] + BAD_CSV + csv[1 : len(csv) // 3]))
    shutil.copy(fleet.logs["jsonl.zst"], logs / "d.jsonl.zst")
    shutil.copy(fleet.logs["parquet"], logs / "e.parquet")
    return Case(sorted(str(p) for p in logs.iterdir()), str(fleet.config), str(fleet.grid))


def report(ledger: Path) -> pl.DataFrame:
    """The per-model report (methodology section 9) of the case's year."""
    return wattledger.report(ledger, year=YEAR)


def sources(ledger: Path) -> list[tuple[object, ...]]:
    """What the ledger recorded per file: its identity and the readers' counts, by path."""
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        return con.execute(
            """SELECT path, size_bytes, blake3, records, rejected, CAST(rejects AS VARCHAR),
                      skipped, columns_found, replaced_at IS NULL
               FROM wl_sources ORDER BY path, replaced_at NULLS FIRST"""
        ).fetchall()
    finally:
        con.close()


def sources_as_urls(
    rows: list[tuple[object, ...]], local_dir: Path, url_prefix: str
) -> list[tuple[object, ...]]:
    """:func:`sources` rows of local files with each path written as the URL of the same file
    under ``url_prefix`` (the objects of a bucket the files were uploaded to), sorted by it."""
    return sorted((str(r[0]).replace(f"{local_dir}/", url_prefix), *r[1:]) for r in rows)


def upload_case_to(s3: Any, case: Case, bucket: str) -> str:
    """The case's files as objects of a new bucket under ``case/``; returns the prefix URL."""
    s3.create_bucket(bucket)
    s3.upload_tree(Path(case.logs[0]).parent, bucket, "case/")
    return f"s3://{bucket}/case/"


def hourly_rows(ledger: Path) -> int:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM wl_hourly").fetchone()
        assert row is not None
        return int(row[0])
    finally:
        con.close()


def summary_view(summary: wattledger.IngestSummary) -> dict[str, object]:
    """An ingest summary without what differs between any two runs (run id, ledger path)."""
    view = dict(vars(summary))
    for key in ("run_id", "ledger", "files_skipped"):
        view.pop(key)
    view["files_skipped"] = sorted((s.path, s.reason.split(" since run ")[0]) for s in summary.files_skipped)
    return view
