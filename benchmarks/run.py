"""Side-by-side benchmark: wattledger vs DuckDB vs Polars on the same SYNTHETIC fleet logs.

Why: the project's claim is a faster, leaner path from request logs to the annual per-model
number. This script makes that claim checkable with one command: it generates (and caches)
data, runs each tool in its own process per format, measures wall time and peak RSS, checks
the three reports agree to relative 1e-9, and writes benchmarks/RESULTS.md.

    python benchmarks/run.py --records 10000000 --span day --threads 2 --repeat 3
    python benchmarks/run.py --records 200000 --skip-wattledger        # peers only

Each timed run is a fresh process (so peak RSS is that run's alone, read with os.wait4);
wattledger gets a fresh ledger each run. The floor for compressed JSON is
``zstd -dc FILE > /dev/null``: no tool can read the file faster than it can be decompressed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import oracle_sql  # noqa: E402
from _synthetic_import import load_synthetic  # noqa: E402

DATA = HERE / "data"
PEERS = HERE / "peers.py"
TOOLS = ("wattledger", "duckdb", "polars")


@dataclass
class Run:
    """One timed process (or pipeline of processes, for wattledger ingest + report)."""

    wall_s: float
    max_rss_kb: int
    ok: bool
    stderr: str = ""


@dataclass
class Measure:
    tool: str
    fmt: str
    runs: list[Run] = field(default_factory=list)
    result: pl.DataFrame | None = None
    error: str | None = None

    @property
    def wall(self) -> float | None:
        good = [r.wall_s for r in self.runs if r.ok]
        return statistics.median(good) if good else None

    @property
    def run_list(self) -> str:
        """Every run's wall time, to show the spread behind the median."""
        return " / ".join(f"{r.wall_s:.2f}" for r in self.runs if r.ok)

    @property
    def rss_mb(self) -> float | None:
        good = [r.max_rss_kb for r in self.runs if r.ok]
        return max(good) / 1024 if good else None


GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def timed(
    cmd: list[str], *, env: dict[str, str] | None = None, stdout: int | None = None
) -> tuple[Run, bytes]:
    """Run ``cmd`` as a child process: wall time and that child's own peak RSS.

    Peak RSS comes from GNU ``/usr/bin/time -f %M`` when present: Linux keeps a process's RSS
    high-water mark across fork+exec, so a child forked directly from this (large, polars +
    duckdb loaded) interpreter would report at least our own RSS. Without GNU time we fall
    back to ``os.wait4`` and say so in the results (numbers then have that floor).
    """
    # Output goes to temporary files, not pipes: no deadlock on a full pipe, and the child is
    # reaped by os.wait4 itself (communicate() would reap it and lose its rusage).
    with (
        tempfile.TemporaryFile() as out_f,
        tempfile.TemporaryFile() as err_f,
        tempfile.NamedTemporaryFile(suffix=".rss") as rss_f,
    ):
        full = [GNU_TIME, "-f", "%M", "-o", rss_f.name, *cmd] if GNU_TIME else cmd
        t = time.perf_counter()
        p = subprocess.Popen(full, env=env, stdout=out_f if stdout is None else stdout, stderr=err_f)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
        rss_kb = int(ru.ru_maxrss)
        if GNU_TIME:
            text = Path(rss_f.name).read_text().strip().splitlines()
            rss_kb = int(text[-1]) if text and text[-1].isdigit() else 0
    return Run(wall, rss_kb, p.returncode == 0, err.decode(errors="replace")[-2000:]), out


def dataset(
    records: int, span: str, seed: int, formats: tuple[str, ...], chunk: int
) -> tuple[dict[str, Path], Path, Path, int]:
    """Generate once into benchmarks/data/<span>-<records>-s<seed>/ and reuse (marker file)."""
    out = DATA / f"{span}-{records}-s{seed}"
    marker = out / "done.json"
    if marker.exists():
        meta = json.loads(marker.read_text())
        if set(formats) <= set(meta["formats"]):
            return (
                {f: out / f"fleet.{f}" for f in formats},
                out / "methodology.toml",
                out / "grid.csv",
                meta["year"],
            )
    syn = load_synthetic()
    t = time.perf_counter()
    print(f"generating {records:,} SYNTHETIC records ({span}) into {out} ...", file=sys.stderr)
    files = syn.generate_fleet(
        out, records=records, span=span, formats=formats, seed=seed, chunk_records=chunk
    )
    print(f"  done in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    marker.write_text(json.dumps({"formats": list(formats), "year": files.years[0]}))
    return files.logs, files.config, files.grid, files.years[0]


def run_peer(peer: str, log: Path, config: Path, grid: Path, year: int, threads: int, out: Path) -> Run:
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads)}
    cmd = [sys.executable, str(PEERS), peer, str(log), str(config), str(grid), "--year", str(year)]
    cmd += ["--threads", str(threads), "--out", str(out)]
    run, _ = timed(cmd, env=env)
    return run


def wattledger_exe() -> str | None:
    """The console script installed beside this interpreter, as the peers run on
    ``sys.executable`` directly; a PATH lookup may find a version manager's shim (pyenv's adds
    about 0.05 s of shell to every process), which is not the tool's own time."""
    beside = Path(sys.executable).parent / "wattledger"
    return str(beside) if beside.exists() else shutil.which("wattledger")


def compile_bytecode() -> None:
    """Write wattledger's ``.pyc`` files once, as ``pip install`` does for every installed
    package (DuckDB's and Polars' Python code included). An editable install under
    ``PYTHONDONTWRITEBYTECODE=1`` would otherwise recompile our modules in every timed process."""
    import compileall

    import wattledger

    compileall.compile_dir(Path(wattledger.__file__).parent, quiet=1)


def run_wattledger(
    log: Path, config: Path, grid: Path, year: int, threads: int
) -> tuple[Run, pl.DataFrame | None]:
    """``wattledger ingest`` into a fresh ledger, then ``wattledger report``; wall time is the
    sum of both, peak RSS the larger."""
    exe = wattledger_exe()
    if exe is None:
        return Run(0.0, 0, False, "wattledger CLI not found on PATH"), None
    with tempfile.TemporaryDirectory(prefix="wl-bench-") as tmp:
        ledger = str(Path(tmp) / "ledger.duckdb")
        ingest = [exe, "ingest", str(log), "--config", str(config), "--grid", str(grid), "--ledger", ledger]
        r1, _ = timed([*ingest, "--threads", str(threads)], stdout=subprocess.DEVNULL)
        if not r1.ok:
            return r1, None
        report = [exe, "report", "--ledger", ledger, "--year", str(year), "--by", "model", "--format", "csv"]
        r2, out = timed(report)
        run = Run(r1.wall_s + r2.wall_s, max(r1.max_rss_kb, r2.max_rss_kb), r2.ok, r1.stderr + r2.stderr)
        if not r2.ok:
            return run, None
        df = pl.read_csv(out, infer_schema_length=None)
        return run, df


def normalise(df: pl.DataFrame) -> pl.DataFrame:
    """The section 9 columns, typed alike, sorted by model (tools may add columns)."""
    cols = list(oracle_sql.REPORT_COLUMNS)
    return df.select(pl.col("model").cast(pl.String), *[pl.col(c).cast(pl.Float64) for c in cols[1:]]).sort(
        "model"
    )


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass

    def ver(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    zstd = shutil.which("zstd")
    zv = (
        subprocess.run([zstd, "--version"], capture_output=True, text=True).stdout.strip()
        if zstd
        else "absent"
    )
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    return {
        "CPU": cpu,
        "logical cores (usable)": f"{os.cpu_count()} ({affinity})",
        "RAM": ram,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "wattledger": ver("wattledger"),
        "duckdb": ver("duckdb"),
        "polars": ver("polars"),
        "pyarrow": ver("pyarrow"),
        "zstd": zv,
    }


def write_results(
    path: Path,
    args: argparse.Namespace,
    measures: list[Measure],
    floors: dict[str, Run],
    agree: list[str],
    sizes: dict[str, int],
) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python benchmarks/run.py {' '.join(sys.argv[1:])}` on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Data: SYNTHETIC "
        f"(`wattledger.synthetic`), {args.records:,} records over a {args.span}, seed {args.seed}.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in machine().items()],
        f"- threads given to each tool: {args.threads}; repeats: {args.repeat} (median wall time, max RSS)",
        "",
        "Wall time is the whole process (interpreter start, reading, computing, writing the report);"
        " peak RSS is that process's own (`os.wait4`). wattledger = `ingest` into a fresh ledger +"
        " `report --by model`."
        + (
            "" if GNU_TIME else " RSS via os.wait4: includes the parent's high-water mark (no /usr/bin/time)."
        ),
        "",
        "## Results",
        "",
        "| format | file size | tool | wall s | every run, s | records/s | peak RSS MB "
        "| x faster peer (time) | x leaner peer (RSS) |",
        "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for fmt in args.formats:
        ms = [m for m in measures if m.fmt == fmt]
        peer_walls = [m.wall for m in ms if m.tool != "wattledger" and m.wall is not None]
        peer_rss = [m.rss_mb for m in ms if m.tool != "wattledger" and m.rss_mb is not None]
        best_wall = min(peer_walls) if peer_walls else None
        best_rss = min(peer_rss) if peer_rss else None
        for m in ms:
            if m.wall is None:
                lines.append(f"| {fmt} | {sizes[fmt] / 1e6:,.1f} MB | {m.tool} | - | - | - | - | - | - |  ")
                lines[-1] += f"{(m.error or 'failed')[:120]}"
                continue
            rw = f"{m.wall / best_wall:.2f}" if best_wall else "-"
            rr = f"{m.rss_mb / best_rss:.2f}" if best_rss and m.rss_mb else "-"
            lines.append(
                f"| {fmt} | {sizes[fmt] / 1e6:,.1f} MB | {m.tool} | {m.wall:.2f} | {m.run_list} | "
                f"{args.records / m.wall:,.0f} | {m.rss_mb:,.0f} | {rw} | {rr} |"
            )
        if fmt in floors and floors[fmt].ok:
            f = floors[fmt]
            lines.append(
                f"| {fmt} | {sizes[fmt] / 1e6:,.1f} MB | floor: `zstd -dc > /dev/null` (fastest run) | "
                f"{f.wall_s:.2f} | - | "
                f"{args.records / f.wall_s:,.0f} | {f.max_rss_kb / 1024:,.0f} | - | - |"
            )
    lines += [
        "",
        "Ratios are this tool's time (or RSS) divided by the better of DuckDB and Polars: below 1 is better.",
        "",
        "## Agreement",
        "",
        "Per-model reports compared pairwise, every column, relative tolerance 1e-9, nulls must match:",
        "",
        *([f"- {a}" for a in agree] or ["- (nothing compared)"]),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="wattledger vs DuckDB vs Polars on SYNTHETIC fleet logs")
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--span", choices=["day", "year"], default="day")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formats", default="parquet,jsonl,jsonl.zst", help="comma-separated")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS))
    ap.add_argument("--skip-wattledger", action="store_true", help="peers only (before the CLI exists)")
    ap.add_argument("--chunk-records", type=int, default=1_000_000)
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args(argv)
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    tools = [t for t in args.tools.split(",") if t and not (t == "wattledger" and args.skip_wattledger)]

    logs, config, grid, year = dataset(
        args.records, args.span, args.seed, tuple(args.formats), args.chunk_records
    )
    sizes = {f: logs[f].stat().st_size for f in args.formats}
    if "wattledger" in tools:
        compile_bytecode()
    measures: list[Measure] = []
    floors: dict[str, Run] = {}
    agree: list[str] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="wl-bench-out-") as tmp:
        for fmt in args.formats:
            log = logs[fmt]
            if fmt.endswith(".zst") and shutil.which("zstd"):
                floors[fmt] = min(
                    (
                        timed(["zstd", "-dc", str(log)], stdout=subprocess.DEVNULL)[0]
                        for _ in range(args.repeat)
                    ),
                    key=lambda r: r.wall_s,
                )
            for tool in tools:
                m = Measure(tool, fmt)
                for i in range(args.repeat):
                    if tool == "wattledger":
                        run, df = run_wattledger(log, config, grid, year, args.threads)
                    else:
                        out = Path(tmp) / f"{tool}-{fmt}-{i}.parquet"
                        run = run_peer(tool, log, config, grid, year, args.threads, out)
                        df = pl.read_parquet(out) if run.ok else None
                    m.runs.append(run)
                    if not run.ok:
                        m.error = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "failed"
                        break
                    m.result = df
                wall = f"{m.wall:.2f}s" if m.wall is not None else "FAILED"
                rss = f"{m.rss_mb:,.0f} MB" if m.rss_mb is not None else "-"
                print(f"{fmt:10s} {tool:10s} {wall:>9s} {rss:>10s} {m.error or ''}", file=sys.stderr)
                measures.append(m)
            done = [m for m in measures if m.fmt == fmt and m.result is not None]
            for i, a in enumerate(done):
                for b in done[i + 1 :]:
                    diffs = oracle_sql.frames_close(normalise(a.result), normalise(b.result), rel=1e-9)
                    verdict = "agree" if not diffs else f"DISAGREE ({len(diffs)}): " + "; ".join(diffs[:3])
                    failed |= bool(diffs)
                    agree.append(f"{fmt}: {a.tool} vs {b.tool}: {verdict}")
        # The same numbers whatever the input format (same records in every file).
        by_tool: dict[str, list[Measure]] = {}
        for m in measures:
            if m.result is not None:
                by_tool.setdefault(m.tool, []).append(m)
        for tool, ms in by_tool.items():
            for m in ms[1:]:
                diffs = oracle_sql.frames_close(normalise(m.result), normalise(ms[0].result), rel=1e-9)
                failed |= bool(diffs)
                agree.append(
                    f"{tool}: {m.fmt} vs {ms[0].fmt}: {'agree' if not diffs else 'DISAGREE: ' + diffs[0]}"
                )
    write_results(args.results, args, measures, floors, agree, sizes)
    print(f"wrote {args.results}", file=sys.stderr)
    for a in agree:
        print(a, file=sys.stderr)
    peer_failed = any(m.wall is None for m in measures if m.tool != "wattledger")
    return 1 if failed or peer_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
