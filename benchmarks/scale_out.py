"""Records/s of `wattledger ingest` on each engine: local, Spark local[1]/local[2], Ray 1/2 CPUs.

Why: docs/scale-out.md says when a cluster engine pays for itself; this makes its table
checkable with one command. The same SYNTHETIC fleet (one day, split into ``--files`` Parquet
files, as a nightly export partitioned by hour) is ingested into a fresh ledger by each engine,
each in its own process. Two times per run: the engine's start (a JVM, a Ray) and the ingest
itself (files read on the workers, partials reduced, collected and committed); records/s is
over the ingest alone. The reports of every run must equal the local one's (rel 1e-9).

    python benchmarks/scale_out.py --records 10000000 --files 8
    python benchmarks/scale_out.py --records 200000 --files 4 --engines local,spark:2   # quick

Run it on an idle machine: the figures are wall times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("local", "spark:1", "spark:2", "ray:1", "ray:2")


def make_fleet(out: Path, records: int, files: int) -> tuple[list[str], str, str]:
    """One day of SYNTHETIC logs as ``files`` Parquet files (cached under ``out``)."""
    import pyarrow.parquet as pq

    from wattledger import synthetic

    fleet = synthetic.generate_fleet(out / "fleet", records=records, formats=("parquet",), seed=11)
    parts = out / f"parts-{files}"
    if not parts.exists():
        parts.mkdir()
        table = pq.read_table(fleet.logs["parquet"])
        step = -(-table.num_rows // files)
        for i in range(files):
            pq.write_table(table.slice(i * step, step), parts / f"part-{i:03d}.parquet")
    return sorted(str(p) for p in parts.iterdir()), str(fleet.config), str(fleet.grid)


def one_run(engine: str, logs: list[str], config: str, grid: str, ledger: str) -> dict[str, float]:
    """In this process: start the engine, ingest, report; times in seconds."""
    import wattledger

    name, _, workers = engine.partition(":")
    t0 = time.perf_counter()
    cluster = None
    if name == "spark":
        from wattledger import spark

        cluster = spark.SparkEngine(spark.session(f"local[{workers}]"))
    elif name == "ray":
        from wattledger import ray

        ray.init(num_cpus=int(workers))
        cluster = ray.RayEngine()
    t1 = time.perf_counter()
    summary = wattledger.ingest(
        logs, ledger=ledger, config=config, grid=grid, cluster=cluster, progress=False, threads=0
    )
    t2 = time.perf_counter()
    return {"start_s": t1 - t0, "ingest_s": t2 - t1, "records": summary.records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "wattledger-scale-out")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one engine, print JSON
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    data = args.data / f"{args.records}"
    logs, config, grid = make_fleet(data, args.records, args.files)
    if args.one:
        print(json.dumps(one_run(args.one, logs, config, grid, args.ledger)))
        return

    import polars as pl

    import wattledger

    sys.path.insert(0, str(ROOT / "tests"))
    from oracle_sql import frames_close

    rows = []
    reports: dict[str, pl.DataFrame] = {}
    for engine in args.engines.split(","):
        ledger = data / f"ledger-{engine.replace(':', '-')}.duckdb"
        ledger.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--records", str(args.records), "--files", str(args.files)]
        cmd += ["--data", str(args.data), "--one", engine, "--ledger", str(ledger)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        reports[engine] = wattledger.report(ledger, year=2025)
        rows.append((engine, result))
    first = next(iter(reports.values()))
    for engine, frame in reports.items():
        problems = frames_close(frame, first, rel=1e-9)
        if problems:
            raise SystemExit(f"{engine}: report differs from {args.engines.split(',')[0]}: {problems[:3]}")
    print(f"{args.records:,} records in {args.files} Parquet files; reports equal (rel 1e-9)\n")
    print("| engine | start (s) | ingest (s) | records/s (ingest) |")
    print("|---|---:|---:|---:|")
    for engine, r in rows:
        rate = r["records"] / r["ingest_s"]
        print(f"| {engine} | {r['start_s']:.1f} | {r['ingest_s']:.2f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
