"""Records/s of `wattledger ingest` from local files and from object storage (S3 and http).

Why: docs/object-storage.md says what reading from a bucket costs against local files; this
makes its table checkable with one command. The same SYNTHETIC day (JSON Lines + gzip and
Parquet) is ingested into a fresh ledger from local files, from moto's S3 server and from a
range-capable HTTP file server, the two servers started here on 127.0.0.1 (the test suite's
own, tests/object_store_servers.py). Each run is a `wattledger ingest` process; the reports
must equal the local one's (rel 1e-9).

Both servers are single-process Python: their throughput, not the engine's, bounds the remote
figures here, so read them as "the overhead the engine adds is at most this", not as a cloud
store's speed.

    python benchmarks/object_storage.py --records 2000000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def make_fleet(out: Path, records: int) -> tuple[dict[str, Path], str, str]:
    """One SYNTHETIC day as ``.jsonl.gz`` and ``.parquet`` (one file each)."""
    import gzip
    import shutil

    from wattledger import synthetic

    fleet = synthetic.generate_fleet(out / "fleet", records=records, formats=("jsonl", "parquet"), seed=17)
    gz = out / "fleet.jsonl.gz"
    if not gz.exists():
        with open(fleet.logs["jsonl"], "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return {"jsonl.gz": gz, "parquet": Path(fleet.logs["parquet"])}, str(fleet.config), str(fleet.grid)


def ingest(log: str, config: str, grid: str, ledger: Path, env: dict[str, str]) -> float:
    """Seconds of one `wattledger ingest` process (start-up included, as a nightly job pays it)."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "wattledger",
            "ingest",
            log,
            "--ledger",
            str(ledger),
            "--config",
            config,
            "--grid",
            grid,
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"ingest {log} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--data", type=Path, default=None, help="where the fleet is cached")
    args = parser.parse_args()

    import warnings

    import polars as pl

    import wattledger

    warnings.simplefilter("ignore", wattledger.RunWarning)  # the SYNTHETIC fleet's coverage notes
    from object_store_servers import moto_s3, range_http_server, without_cloud_env

    work = Path(tempfile.mkdtemp(prefix="wl-os-bench-"))
    data = args.data or work / "data"
    logs, config, grid = make_fleet(data, args.records)
    base_env = without_cloud_env(os.environ)
    rows = []
    with moto_s3(work / "moto") as s3, range_http_server(data, work / "http") as http:
        s3.create_bucket("bench")
        for path in logs.values():
            s3.put("bench", f"day/{path.name}", path.read_bytes())
        for kind, path in logs.items():
            local_ledger = work / f"local-{kind}.duckdb"
            local_s = ingest(str(path), config, grid, local_ledger, base_env)
            expected = wattledger.report(local_ledger, year=2025)
            for where, url, env in (
                ("s3 (moto)", f"s3://bench/day/{path.name}", s3.env(base_env)),
                ("http", http.url_of(path), base_env),
            ):
                ledger = work / f"{where.split()[0]}-{kind}.duckdb"
                seconds = ingest(url, config, grid, ledger, env)
                got = wattledger.report(ledger, year=2025)
                diff = (got["energy_kwh"] - expected["energy_kwh"]).abs().max()
                assert diff is not None and float(diff) <= 1e-9 * float(expected["energy_kwh"].abs().max()), (
                    diff
                )
                rows.append((kind, path.stat().st_size, where, local_s, seconds))
    table = pl.DataFrame(
        [
            {
                "file": kind,
                "MB": round(size / 1e6, 1),
                "from": where,
                "local s": round(local_s, 2),
                "remote s": round(remote_s, 2),
                "local rec/s": round(args.records / local_s),
                "remote rec/s": round(args.records / remote_s),
                "remote / local time": round(remote_s / local_s, 2),
            }
            for kind, size, where, local_s, remote_s in rows
        ]
    )
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200):
        print(table)


if __name__ == "__main__":
    main()
