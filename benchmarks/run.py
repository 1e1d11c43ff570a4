"""Side-by-side benchmark: wattledger vs DuckDB vs Polars on the same SYNTHETIC fleet logs.

Why: the project's claim is a faster, leaner path from request logs to the annual per-model
number. This script makes that claim checkable with one command: it generates (and caches)
data, runs each tool in its own process per format, measures wall time and peak RSS, checks
the three reports agree to relative 1e-9, and writes benchmarks/RESULTS.md.

    python benchmarks/run.py --records 10000000 --profile nightly,backfill --width narrow,wide
    python benchmarks/run.py --records 200000 --skip-wattledger        # peers only

Profiles (see PROFILES): ``nightly`` is one day of logs in time order (one night's export),
``backfill`` a calendar year in random order (loading last year's logs from many sources: every
part of the file touches every hour of the year). ``--width`` adds fields per record that the
methodology ignores (``narrow``, ``wide`` or a number of extra fields; see
``wattledger.synthetic.EXTRA_FIELDS``). Every combination gets a table of its own.

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


@dataclass(frozen=True)
class Profile:
    """What kind of run a data set stands for: its span, record order and first day."""

    name: str
    span: str
    order: str
    start: str
    about: str


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("nightly", "day", "time", "2025-06-01", "one day of logs in time order (a nightly export)"),
        Profile(
            "backfill",
            "year",
            "random",
            "2025-01-01",
            "a calendar year of logs in random order (a backfill of last year's logs)",
        ),
    )
}


@dataclass(frozen=True)
class DataSpec:
    """Every option that decides a generated data set's bytes (and so its cache directory)."""

    records: int
    span: str
    order: str
    start: str
    width: int
    seed: int
    chunk: int

    def dirname(self) -> str:
        """``day-10000000-s0`` for the original nightly data (existing caches stay valid), with
        a suffix per option away from its default."""
        name = f"{self.span}-{self.records}-s{self.seed}"
        if self.order != "time":
            name += f"-{self.order}"
        if self.start != "2025-06-01":
            name += f"-from{self.start}"
        if self.width:
            name += f"-w{self.width}"
        if self.chunk != 1_000_000:
            name += f"-c{self.chunk}"
        return name


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


def dataset(spec: DataSpec, formats: tuple[str, ...]) -> tuple[dict[str, Path], Path, Path, int]:
    """Generate once into benchmarks/data/<spec.dirname()>/ and reuse it while its marker
    file names the same options and at least these formats."""
    out = DATA / spec.dirname()
    marker = out / "done.json"
    options = {k: v for k, v in vars(spec).items()}
    if marker.exists():
        meta = json.loads(marker.read_text())
        same = all(meta.get(k, default) == v for k, v, default in _marker_defaults(options))
        if same and set(formats) <= set(meta["formats"]):
            return (
                {f: out / f"fleet.{f}" for f in formats},
                out / "methodology.toml",
                out / "grid.csv",
                meta["year"],
            )
    syn = load_synthetic()
    t = time.perf_counter()
    print(f"generating {spec.records:,} SYNTHETIC records ({spec}) into {out} ...", file=sys.stderr)
    files = syn.generate_fleet(
        out,
        records=spec.records,
        span=spec.span,
        start=spec.start,
        formats=formats,
        seed=spec.seed,
        chunk_records=spec.chunk,
        order=spec.order,
        width=spec.width,
    )
    print(f"  done in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    marker.write_text(json.dumps({"formats": list(formats), "year": files.years[0], **options}))
    return files.logs, files.config, files.grid, files.years[0]


def _marker_defaults(options: dict[str, object]) -> list[tuple[str, object, object]]:
    """(option, wanted value, value a marker written before the option existed stands for)."""
    before = {"order": "time", "start": "2025-06-01", "width": 0, "chunk": 1_000_000}
    return [(k, v, before.get(k, v)) for k, v in options.items()]


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


@dataclass
class Section:
    """One profile at one width: its data set and every tool's runs on every format."""

    profile: Profile
    width: int
    spec: DataSpec
    measures: list[Measure] = field(default_factory=list)
    floors: dict[str, Run] = field(default_factory=dict)
    agree: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    failed: bool = False

    @property
    def title(self) -> str:
        return f"{self.profile.name}, {width_name(self.width)}"

    def best_peer(self, fmt: str) -> Measure | None:
        peers = [m for m in self.measures if m.fmt == fmt and m.tool != "wattledger" and m.wall is not None]
        return min(peers, key=lambda m: m.wall or 0.0) if peers else None

    def tool(self, fmt: str, tool: str) -> Measure | None:
        return next((m for m in self.measures if m.fmt == fmt and m.tool == tool), None)


def width_name(width: int) -> str:
    named = {v: k for k, v in load_synthetic().WIDTHS.items()}
    return f"{named[width]} records" if width in named else f"{width} extra fields"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def summary_lines(sections: list[Section], formats: list[str]) -> list[str]:
    """One row per profile, width and format: wattledger against the faster peer and the
    decompression floor, the ratios the targets are stated in."""
    lines = [
        "| profile | width | format | wattledger s | faster peer | peer s | x faster than the faster peer "
        "| x `zstd -dc` floor | wattledger RSS MB | peer RSS MB |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for sec in sections:
        for fmt in formats:
            wl = sec.tool(fmt, "wattledger")
            peer = sec.best_peer(fmt)
            floor = sec.floors.get(fmt)
            wl_wall = wl.wall if wl else None
            lines.append(
                f"| {sec.profile.name} | {width_name(sec.width)} | {fmt} | "
                + (f"{wl_wall:.2f}" if wl_wall is not None else "-")
                + f" | {peer.tool if peer else '-'} | "
                + (f"{peer.wall:.2f}" if peer and peer.wall is not None else "-")
                + f" | {_ratio(peer.wall if peer else None, wl_wall)}"
                + f" | {_ratio(wl_wall, floor.wall_s if floor and floor.ok else None)}"
                + f" | {f'{wl.rss_mb:,.0f}' if wl and wl.rss_mb is not None else '-'}"
                + f" | {f'{peer.rss_mb:,.0f}' if peer and peer.rss_mb is not None else '-'} |"
            )
    return lines


def section_lines(sec: Section, args: argparse.Namespace) -> list[str]:
    spec = sec.spec
    lines = [
        f"## {sec.title}",
        "",
        f"{sec.profile.about.capitalize()}: {spec.records:,} records from {spec.start} over a {spec.span}, "
        f"{spec.order} order, {width_name(sec.width)}, seed {spec.seed} (`{spec.dirname()}`).",
        "",
        "| format | file size | tool | wall s | every run, s | records/s | peak RSS MB "
        "| x faster than the faster peer | RSS / leaner peer's | x `zstd -dc` floor |",
        "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fmt in args.formats:
        ms = [m for m in sec.measures if m.fmt == fmt]
        peer_walls = [m.wall for m in ms if m.tool != "wattledger" and m.wall is not None]
        peer_rss = [m.rss_mb for m in ms if m.tool != "wattledger" and m.rss_mb is not None]
        best_wall = min(peer_walls) if peer_walls else None
        best_rss = min(peer_rss) if peer_rss else None
        floor = sec.floors.get(fmt)
        floor_s = floor.wall_s if floor is not None and floor.ok else None
        size = f"{sec.sizes[fmt] / 1e6:,.1f} MB"
        for m in ms:
            if m.wall is None:
                lines.append(f"| {fmt} | {size} | {m.tool} | - | - | - | - | - | - | - |  ")
                lines[-1] += f"{(m.error or 'failed')[:120]}"
                continue
            lines.append(
                f"| {fmt} | {size} | {m.tool} | {m.wall:.2f} | {m.run_list} | "
                f"{spec.records / m.wall:,.0f} | {m.rss_mb:,.0f} | {_ratio(best_wall, m.wall)} | "
                f"{_ratio(m.rss_mb, best_rss)} | {_ratio(m.wall, floor_s)} |"
            )
        if floor is not None and floor.ok:
            lines.append(
                f"| {fmt} | {size} | floor: `zstd -dc > /dev/null` (fastest run) | "
                f"{floor.wall_s:.2f} | - | "
                f"{spec.records / floor.wall_s:,.0f} | {floor.max_rss_kb / 1024:,.0f} | - | - | 1.00 |"
            )
    lines += [
        "",
        "Per-model reports compared pairwise, every column, relative tolerance 1e-9, nulls must match:",
        "",
        *([f"- {a}" for a in sec.agree] or ["- (nothing compared)"]),
        "",
    ]
    return lines


def write_results(path: Path, args: argparse.Namespace, sections: list[Section]) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python benchmarks/run.py {' '.join(sys.argv[1:])}` on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Data: SYNTHETIC (`wattledger.synthetic`), "
        f"{args.records:,} records per data set.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in machine().items()],
        f"- threads given to each tool: {args.threads}; repeats: {args.repeat} (median wall time, max RSS)",
        "",
        "Wall time is the whole process (interpreter start, reading, computing, writing the report);"
        " peak RSS is that process's own (GNU `time -f %M`). wattledger = `ingest` into a fresh ledger +"
        " `report --by model` (wall time summed, RSS the larger)."
        + (
            "" if GNU_TIME else " RSS via os.wait4: includes the parent's high-water mark (no /usr/bin/time)."
        ),
        "",
        "## Summary",
        "",
        *summary_lines(sections, args.formats),
        "",
        "x faster than the faster peer: the faster of DuckDB and Polars's wall time divided by"
        " wattledger's (above 1: wattledger is faster). x `zstd -dc` floor: wattledger's wall time"
        " divided by the time `zstd -dc FILE > /dev/null` takes (compressed files only; 1.00 is the floor).",
        "",
    ]
    for sec in sections:
        lines += section_lines(sec, args)
    path.write_text("\n".join(lines), encoding="utf-8")


def run_section(sec: Section, args: argparse.Namespace, tools: list[str], tmp: Path) -> None:
    """Time every tool on every format of one data set; compare their reports."""
    logs, config, grid, year = dataset(sec.spec, tuple(args.formats))
    sec.sizes = {f: logs[f].stat().st_size for f in args.formats}
    print(f"== {sec.title} ({sec.spec.dirname()})", file=sys.stderr)
    for fmt in args.formats:
        log = logs[fmt]
        if fmt.endswith(".zst") and shutil.which("zstd"):
            sec.floors[fmt] = min(
                (timed(["zstd", "-dc", str(log)], stdout=subprocess.DEVNULL)[0] for _ in range(args.repeat)),
                key=lambda r: r.wall_s,
            )
        for tool in tools:
            m = Measure(tool, fmt)
            for i in range(args.repeat):
                if tool == "wattledger":
                    run, df = run_wattledger(log, config, grid, year, args.threads)
                else:
                    out = tmp / f"{tool}-{fmt}-{i}.parquet"
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
            sec.measures.append(m)
        done = [m for m in sec.measures if m.fmt == fmt and m.result is not None]
        for i, a in enumerate(done):
            for b in done[i + 1 :]:
                diffs = oracle_sql.frames_close(normalise(a.result), normalise(b.result), rel=1e-9)
                verdict = "agree" if not diffs else f"DISAGREE ({len(diffs)}): " + "; ".join(diffs[:3])
                sec.failed |= bool(diffs)
                sec.agree.append(f"{fmt}: {a.tool} vs {b.tool}: {verdict}")
    # The same numbers whatever the input format (same records in every file).
    by_tool: dict[str, list[Measure]] = {}
    for m in sec.measures:
        if m.result is not None:
            by_tool.setdefault(m.tool, []).append(m)
    for tool, ms in by_tool.items():
        for m in ms[1:]:
            diffs = oracle_sql.frames_close(normalise(m.result), normalise(ms[0].result), rel=1e-9)
            sec.failed |= bool(diffs)
            sec.agree.append(
                f"{tool}: {m.fmt} vs {ms[0].fmt}: {'agree' if not diffs else 'DISAGREE: ' + diffs[0]}"
            )


def _list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="wattledger vs DuckDB vs Polars on SYNTHETIC fleet logs")
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument(
        "--profile",
        default="nightly",
        help="comma-separated: " + "; ".join(f"{p.name} = {p.about}" for p in PROFILES.values()),
    )
    ap.add_argument(
        "--width",
        default="narrow",
        help="comma-separated: narrow, wide or a number of extra fields per record",
    )
    ap.add_argument("--span", choices=["day", "year"], help="override the profile's span")
    ap.add_argument("--order", choices=["time", "random"], help="override the profile's record order")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formats", default="parquet,jsonl,jsonl.zst", help="comma-separated")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS))
    ap.add_argument("--skip-wattledger", action="store_true", help="peers only (before the CLI exists)")
    ap.add_argument("--chunk-records", type=int, default=1_000_000)
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args(argv)
    args.formats = _list(args.formats)
    tools = [t for t in _list(args.tools) if not (t == "wattledger" and args.skip_wattledger)]
    unknown = [p for p in _list(args.profile) if p not in PROFILES]
    if unknown:
        ap.error(f"unknown profile {unknown[0]!r}; choose from {', '.join(PROFILES)}")
    syn = load_synthetic()
    try:
        widths = [syn.resolve_width(w) for w in _list(args.width)]
    except ValueError as e:
        ap.error(str(e))
    sections = []
    for name in _list(args.profile):
        p = PROFILES[name]
        p = Profile(p.name, args.span or p.span, args.order or p.order, p.start, p.about)
        for w in widths:
            spec = DataSpec(args.records, p.span, p.order, p.start, w, args.seed, args.chunk_records)
            sections.append(Section(p, w, spec))
    if "wattledger" in tools:
        compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="wl-bench-out-") as tmp:
        for sec in sections:
            run_section(sec, args, tools, Path(tmp))
    write_results(args.results, args, sections)
    print(f"wrote {args.results}", file=sys.stderr)
    for sec in sections:
        for a in sec.agree:
            print(f"{sec.title}: {a}", file=sys.stderr)
    peer_failed = any(m.wall is None for sec in sections for m in sec.measures if m.tool != "wattledger")
    return 1 if any(sec.failed for sec in sections) or peer_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
