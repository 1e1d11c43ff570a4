"""Hand-written logs that hit every edge case of the methodology, with their config and grid.

Why: generated fleet data exercises volume, not corners. These few hundred records are chosen
one by one so that every rule in docs/methodology.md (method order, coefficient choice,
unknown model/site/hardware, zone precedence, intensity fallbacks, market factor 0.0, weights,
timestamp forms, rejects) is met at least once, in JSONL, CSV and Parquet. Deterministic: the
same files every time, so engine-vs-oracle failures are reproducible.

Use: ``files = write_edge_cases(tmp_path)``; then run the engine and ``oracle_sql`` on
``files.logs`` with ``files.config`` and ``files.grid``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CONFIG_TOML = """\
# Edge-case methodology pack (tests only). Values are round so results can be checked by hand.
[defaults]
pue = 1.2
host_overhead = 0.1
idle_overhead = 0.0
utilization = 0.5
concurrency = 2.0
mfu = 0.1

[uncertainty]
measured = 0.05
tokens = 0.3
gpu_time = 0.5
flops = 1.0

[hardware."nvidia-h100-sxm"]
tdp_w = 700
idle_w = 75
peak_tflops = 989

[hardware."nvidia-a100-sxm"]
tdp_w = 400
idle_w = 46
peak_tflops = 312

# Known board without a peak: gpu_time applies, flops cannot.
[hardware."no-peak-board"]
tdp_w = 300
idle_w = 30

[models."m-coef"]
active_params_b = 8.0
[[models."m-coef".coefficients]]
hardware = "*"
wh_per_1k_input = 0.01
wh_per_1k_output = 0.1
[[models."m-coef".coefficients]]
hardware = "nvidia-h100-sxm"
wh_per_1k_input = 0.0025
wh_per_1k_output = 0.033
uncertainty = 0.25

[models."m-flops"]
active_params_b = 70.0

# Known model without parameters or coefficients: only measured / gpu_time can apply.
[models."m-bare"]

[sites."s-de"]
zone = "DE"
pue = 1.1
host_overhead = 0.4
idle_overhead = 0.2
market_g_per_kwh = 0.0
fallback_g_per_kwh = 300.0
hardware = "nvidia-h100-sxm"
gpus = 2

[sites."s-fr"]
zone = "FR"
hardware = "nvidia-a100-sxm"

[sites."s-nogrid"]
zone = "XX"
fallback_g_per_kwh = 500.0
market_g_per_kwh = 100.0
hardware = "nvidia-h100-sxm"
utilization = 0.8
concurrency = 1.0
mfu = 0.2

[sites."s-nofallback"]
zone = "YY"
market_g_per_kwh = 50.0
hardware = "nvidia-h100-sxm"

[sites."s-nozone"]
fallback_g_per_kwh = 250.0
hardware = "nvidia-a100-sxm"
gpus = 4
"""

EM_HEADER = (
    "Datetime (UTC),Country,Zone name,Zone id,Carbon intensity gCO₂eq/kWh (direct),"
    "Carbon intensity gCO₂eq/kWh (Life cycle),Carbon-free energy percentage (CFE%),"
    "Renewable energy percentage (RE%),Data source,Data estimated,Data estimation method"
)
EM_HEADER_OLD = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,Data Source,"
    "Data Estimated,Data Estimation Method"
)

# (datetime, zone, direct, life cycle). DE 2025-06-01: 02:00 absent, 03:00 empty -> month mean;
# 04:00 and 04:30 are sub-hourly rows averaged into 04:00. FR June; DE both sides of the year edge.
GRID_ROWS: list[tuple[str, str, str, str]] = [
    ("2025-06-01 00:00:00", "DE", "400", "450"),
    ("2025-06-01 01:00:00", "DE", "380", "430"),
    ("2025-06-01 03:00:00", "DE", "", ""),
    ("2025-06-01 04:00:00", "DE", "300", "350"),
    ("2025-06-01 04:30:00", "DE", "340", "390"),
    ("2025-06-01 05:00:00", "DE", "360", "410"),
    ("2025-06-01 00:00:00", "FR", "50", "80"),
    ("2025-06-01 01:00:00", "FR", "60", "90"),
    ("2025-06-01 02:00:00", "FR", "40", "70"),
    ("2025-12-31 23:00:00", "DE", "500", "550"),
    ("2026-01-01 00:00:00", "DE", "200", "250"),
]
# DE June month mean over hourly values: 00 400, 01 380, 04 320 (avg of 300/340), 05 360.
DE_JUNE_MEAN = (400 + 380 + 320 + 360) / 4

# Older header, second file: zone SE (so header matching of both forms is exercised).
GRID_OLD_ROWS = [("2025-06-01 00:00:00", "SE", "20", "40"), ("2025-06-01 01:00:00", "SE", "22", "42")]

T0 = "2025-06-01T00:10:00Z"


def _r(**kw: object) -> dict[str, object]:
    return kw


# Each valid record: the comment says which rule it exercises.
VALID_JSONL: list[dict[str, object]] = [
    # --- one per method (hand-checked in test_oracle_selfcheck.py) ---
    _r(
        ts=T0, model="m-coef", site="s-de", energy_j=3600.0, input_tokens=10, output_tokens=20, duration_s=7.2
    ),
    _r(ts=T0, model="m-coef", site="s-de", input_tokens=1000, output_tokens=1000),  # tokens, exact hw
    _r(ts=T0, model="m-coef", site="s-fr", input_tokens=1000, output_tokens=1000),  # tokens, "*" (a100)
    _r(ts=T0, model="m-coef", site="s-de", output_tokens=500),  # tokens, input missing = 0
    _r(ts=T0, model="m-flops", site="s-de", duration_s=3.6),  # gpu_time, gpus from site
    _r(ts=T0, model="m-flops", site="s-fr", input_tokens=100, output_tokens=100),  # flops
    _r(ts=T0, model="m-bare", site="s-fr", input_tokens=100, output_tokens=100),  # none (no params)
    # --- method order and resolution ---
    _r(ts=T0, model="m-coef", site="s-de", hardware="nvidia-a100-sxm", input_tokens=10, output_tokens=10),
    _r(ts=T0, model="m-coef", site="s-de", duration_s=2.0),  # no tokens: coefficient can't apply -> gpu_time
    _r(ts=T0, model="m-flops", site="s-de", hardware="amd-mi300x", duration_s=5.0, input_tokens=5),  # none
    _r(ts=T0, model="m-coef", site="s-de", hardware="amd-mi300x", input_tokens=100),  # tokens via "*"
    _r(ts=T0, model="m-flops", site="s-de", hardware="no-peak-board", input_tokens=50),  # none
    _r(ts=T0, model="m-flops", site="s-de", hardware="no-peak-board", duration_s=1.0, gpus=3),  # gpu_time
    _r(ts=T0, model="m-bare", site="s-fr", duration_s=10.0, gpus=0),  # gpu_time with 0 gpus = 0 Wh
    _r(ts=T0, model="m-unknown", site="s-de", input_tokens=10, output_tokens=10),  # none: unknown model
    _r(ts=T0, model="m-unknown", site="s-fr", output_tokens=7),  # none
    _r(ts=T0, model="m-gpu-only", zone="FR", hardware="nvidia-h100-sxm", duration_s=1.5),  # zone, no site
    _r(ts=T0, model="m-gpu-only", zone="SE", hardware="nvidia-h100-sxm", duration_s=1.5),  # old-header grid
    _r(ts=T0, model="m-gpu-only", duration_s=1.5),  # no site, no zone, no hardware -> none
    # --- sites and zones ---
    _r(ts=T0, model="m-flops", site="s-de", zone="FR", duration_s=3.6),  # record zone beats site zone
    _r(ts=T0, model="m-flops", site="s-ghost", zone="DE", hardware="nvidia-h100-sxm", duration_s=3.6),
    _r(ts=T0, model="m-flops", site="s-ghost", hardware="nvidia-h100-sxm", duration_s=3.6),  # unlocated
    _r(ts=T0, model="m-flops", site="s-nogrid", duration_s=3.6, input_tokens=1, output_tokens=1),  # fallback
    _r(ts=T0, model="m-flops", site="s-nofallback", duration_s=3.6),  # unresolved despite market
    _r(ts=T0, model="m-flops", site="s-nozone", duration_s=3.6),  # no zone, site fallback
    _r(ts=T0, model="m-flops", site="s-nogrid", energy_j=7200.0),  # measured at the fallback site
    _r(ts=T0, model="m-unknown", site="s-nofallback", energy_j=100.0),  # unresolved, measured
    # --- grid: month-mean hours ---
    _r(ts="2025-06-01T02:59:59.999Z", model="m-coef", site="s-de", energy_j=3600.0),  # hour absent
    _r(ts="2025-06-01T03:00:00Z", model="m-coef", site="s-de", energy_j=3600.0),  # empty value
    _r(ts="2025-06-01T04:45:00Z", model="m-coef", site="s-de", energy_j=3600.0),  # sub-hourly mean
    _r(ts="2025-06-20T12:00:00Z", model="m-coef", site="s-fr", energy_j=3600.0),  # FR month mean
    _r(ts="2025-07-01T00:00:00Z", model="m-coef", site="s-fr", energy_j=3600.0),  # FR no July: none
    # --- weights ---
    _r(ts=T0, model="m-coef", site="s-de", energy_j=360.0, weight=10),
    _r(ts=T0, model="m-coef", site="s-de", energy_j=360.0, weight=0.5),
    _r(ts=T0, model="m-coef", site="s-de", energy_j=360.0, weight=0),
    _r(ts=T0, model="m-unknown", site="s-de", weight=10),  # none, 10 unestimated requests
    # --- a model whose every record is `none`: its energy must be null, never 0 ---
    _r(ts=T0, model="m-never", site="s-de", input_tokens=10, output_tokens=10),
    _r(ts=T0, model="m-never", site="s-de", hardware="amd-mi300x", duration_s=2.0, weight=2),
    _r(ts="2025-06-02T00:00:00Z", model="m-never", zone="FR", duration_s=2.0),
    _r(ts=T0, model="m-coef", site="s-de", energy_j=3600.0, weight=None),  # null weight = 1
    # --- timestamps ---
    _r(ts="2026-01-01T00:30:00+01:00", model="m-coef", site="s-de", energy_j=3600.0),  # 2025-12-31 23:30Z
    _r(ts="2025-12-31T23:30:00-01:00", model="m-coef", site="s-de", energy_j=3600.0),  # 2026-01-01 00:30Z
    _r(ts="2025-06-01T05:30:00+05:30", model="m-coef", site="s-de", energy_j=36.0),  # 00:00Z
    _r(ts=1748736000, model="m-coef", site="s-de", energy_j=36.0),  # epoch s -> 2025-06-01 00:00Z
    _r(ts=1748739600000, model="m-coef", site="s-de", energy_j=36.0),  # epoch ms -> 01:00Z
    _r(ts=1748743200000000, model="m-coef", site="s-de", energy_j=36.0),  # epoch us -> 02:00Z
    _r(ts=1748746800000000000, model="m-coef", site="s-de", energy_j=36.0),  # epoch ns -> 03:00Z
    _r(ts="2025-06-01 01:15:00", model="m-coef", site="s-de", energy_j=36.0),  # naive = UTC
    _r(ts="2025-06-01T01:15:00.5", model="m-coef", site="s-de", energy_j=36.0),
    _r(ts="2025-06-01T00:59:59.999999Z", model="m-coef", site="s-de", energy_j=36.0),  # still hour 00
    # --- ignored extras, empty strings as null ---
    _r(ts=T0, model="m-coef", site="", zone="DE", hardware="", energy_j=36.0, extra_field={"x": 1}),
    _r(ts=T0, model="m-coef", site="s-de", status="error", request_id="r-1", energy_j=36.0),
]

# Lines that must be rejected (raw text, one per line), and the blank lines that must be skipped.
BAD_JSONL_LINES = [
    "this is not json",
    '{"model": "m-coef", "site": "s-de", "energy_j": 1}',  # missing ts
    '{"ts": "2025-06-01T00:00:00Z", "site": "s-de", "energy_j": 1}',  # missing model
    '{"ts": "2025-06-01T00:00:00Z", "model": "", "energy_j": 1}',  # empty model
    '{"ts": "yesterday", "model": "m-coef", "energy_j": 1}',  # bad ts
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "input_tokens": -1}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "duration_s": -0.5}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "energy_j": -3}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "energy_j": 3, "weight": -1}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "energy_j": "abc"}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "output_tokens": 12.5}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "gpus": -2, "duration_s": 1}',
    # beyond the physical bounds (docs/bounds.md): counted, they would overflow the sums
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "site": "s-de", "energy_j": 1e308, "weight": 1e308}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "site": "s-de", "energy_j": 1, "weight": 1e13}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-coef", "site": "s-de", "input_tokens": 2000000000000}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-bare", "site": "s-de", "duration_s": 1e9}',
    '{"ts": "2025-06-01T00:00:00Z", "model": "m-bare", "site": "s-de", "gpus": 2000000, "duration_s": 1}',
]

CSV_HEADER = "ts,model,site,zone,hardware,gpus,input_tokens,output_tokens,duration_s,energy_j,weight,status"
CSV_VALID = [
    "2025-06-01T00:20:00Z,m-coef,s-de,,,,1000,1000,,,,ok",  # tokens exact, empty fields null
    "2025-06-01 00:20:00,m-flops,s-fr,,,,100,100,,,2,ok",  # flops, weight 2, naive ts
    "1748736000,m-bare,,FR,nvidia-a100-sxm,1,,,36,,,ok",  # gpu_time, zone without site
]
CSV_BAD = [
    "2025-06-01T00:20:00Z,m-coef,s-de,,,,,,,nan,,ok",  # non-finite energy
    "2025-06-01T00:20:00Z,m-coef,s-de,,,,,,inf,,,ok",  # non-finite duration
    ",m-coef,s-de,,,,,,,36,,ok",  # missing ts
]


def _parquet_table() -> pa.Table:
    """Naive ns timestamps (= UTC), native numbers, a null weight, no `zone` column at all."""
    us = [1748736000_000000 + 30 * 60 * 1_000_000, 1748736000_000000 + 90 * 60 * 1_000_000]
    return pa.table(
        {
            "ts": pa.array([u * 1000 for u in us], pa.timestamp("ns")),
            "model": ["m-coef", "m-flops"],
            "site": ["s-de", "s-nogrid"],
            "input_tokens": pa.array([200, None], pa.int64()),
            "output_tokens": pa.array([300, None], pa.int64()),
            "duration_s": pa.array([None, 2.5], pa.float64()),
            "energy_j": pa.array([None, None], pa.float64()),
            "weight": pa.array([None, 3.0], pa.float64()),
        }
    )


@dataclass(frozen=True)
class EdgeCaseFiles:
    """Paths of one edge-case set plus what a correct reader must make of it."""

    logs: list[Path]
    config: Path
    grid: list[Path]
    valid_records: int
    rejected_records: int
    blank_lines: int = 2
    notes: dict[str, str] = field(default_factory=dict)


def _filler(n: int) -> list[dict[str, object]]:
    """Deterministic background records across June so the sums are not all hand-sized."""
    models = ["m-coef", "m-flops", "m-bare", "m-unknown"]
    sites = ["s-de", "s-fr", "s-nogrid", "s-nofallback", "s-nozone", "s-ghost", None]
    out = []
    for i in range(n):
        rec: dict[str, object] = {
            "ts": f"2025-06-{1 + i % 28:02d}T{i % 24:02d}:{(7 * i) % 60:02d}:00Z",
            "model": models[i % len(models)],
        }
        site = sites[(i // 4) % len(sites)]
        if site is not None:
            rec["site"] = site
        else:
            rec["zone"] = "DE"
        if i % 3 == 0:
            rec["input_tokens"] = 100 + 37 * i
        if i % 5 != 0:
            rec["output_tokens"] = 50 + 11 * i
        if i % 4 == 1:
            rec["duration_s"] = 0.5 + (i % 9) * 0.25
        if i % 7 == 2:
            rec["energy_j"] = 10.0 + i
        if i % 11 == 3:
            rec["weight"] = 10
        out.append(rec)
    return out


def write_edge_cases(out_dir: str | Path, *, filler: int = 120) -> EdgeCaseFiles:
    """Write edge.jsonl, edge.csv, edge.parquet, edge.toml, grid.csv, grid_old.csv."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "edge.jsonl"
    lines = [json.dumps({k: v for k, v in r.items()}) for r in [*VALID_JSONL, *_filler(filler)]]
    lines = [*lines[:3], "", *lines[3:], *BAD_JSONL_LINES, "   "]
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    csv = out / "edge.csv"
    csv.write_text("\n".join([CSV_HEADER, *CSV_VALID, *CSV_BAD]) + "\n", encoding="utf-8")
    parquet = out / "edge.parquet"
    pq.write_table(_parquet_table(), parquet)
    config = out / "edge.toml"
    config.write_text(CONFIG_TOML, encoding="utf-8")
    grid = out / "grid.csv"
    rows = [
        f'{dt},{"Germany" if z == "DE" else "France"},{z},{z},{d},{lc},,,"entsoe.eu; x",false,'
        for dt, z, d, lc in GRID_ROWS
    ]
    grid.write_text("\n".join([EM_HEADER, *rows]) + "\n", encoding="utf-8")
    grid_old = out / "grid_old.csv"
    rows_old = [f"{dt},Sweden,{z},{z},{d},{lc},,,entsoe.eu,false," for dt, z, d, lc in GRID_OLD_ROWS]
    grid_old.write_text("\n".join([EM_HEADER_OLD, *rows_old]) + "\n", encoding="utf-8")
    return EdgeCaseFiles(
        logs=[jsonl, csv, parquet],
        config=config,
        grid=[grid, grid_old],
        valid_records=len(VALID_JSONL) + filler + len(CSV_VALID) + _parquet_table().num_rows,
        rejected_records=len(BAD_JSONL_LINES) + len(CSV_BAD),
        notes={"blank": "edge.jsonl has an empty and a whitespace-only line: skipped, not rejected"},
    )


# --------------------------------------------------------------------------------------------
# Methodology v1.1 section 10: request outcomes, names as fleets write them, default site.
# A pack of its own (the edge-case pack above is pinned by hand-checked numbers), the same
# hardware, models and sites plus aliases, outcome lists, a default site and a lower-case zone.

OUTCOME_CONFIG_TOML = (
    CONFIG_TOML.replace("[defaults]\n", '[defaults]\nsite = "s-fr"\n', 1)
    + """
[sites."s-lower"]
zone = "de"
hardware = "nvidia-h100-sxm"

[outcomes]
failed = ["rate_limited"]
cached = ["cache_hit", "Served_From_Cache"]
ok = ["done"]

[aliases.models]
"hosted_vllm/*" = "m-coef"
"*/m-flops-instruct" = "m-flops"
"openai/*" = "m-bare"
"openai/gpt-4?" = "m-flops"
"bedrock/*-v?" = "m-coef"
"bedrock/*-v1" = "m-bare"

[aliases.hardware]
"NVIDIA H100 80GB HBM3" = "nvidia-h100-sxm"
"NVIDIA A100*" = "nvidia-a100-sxm"

[aliases.sites]
"10.0.0.*" = "s-de"
"gpu-fr.example" = "s-fr"
"""
)

_TOK = {"input_tokens": 1000, "output_tokens": 200}

OUTCOME_JSONL: list[dict[str, object]] = [
    # --- statuses: built-in failed / ok, numbers (OTel 0/1/2, HTTP), pack lists, unrecognised ---
    *[
        _r(ts=T0, model="m-coef", site="s-de", status=st, **_TOK)
        for st in ("ok", "success", "Unset", "STATUS_CODE_OK", "completed", "200", "304", "0", "1", "done")
    ],
    *[
        _r(ts=T0, model="m-coef", site="s-de", status=st, **_TOK)
        for st in (
            "error",
            "failure",
            "Error",
            "STATUS_CODE_ERROR",
            "timeout",
            "cancelled",
            "2",
            "500",
            "429",
            "rate_limited",
        )
    ],
    _r(ts=T0, model="m-coef", site="s-de", status=2, duration_s=1.0),  # OTel code as a JSON number
    _r(ts=T0, model="m-coef", site="s-de", status=503, energy_j=36.0),  # HTTP code as a number
    _r(ts=T0, model="m-coef", site="s-de", status="weird", **_TOK),  # unrecognised: ok + warning
    _r(ts=T0, model="m-coef", site="s-de", status="weird", weight=4, **_TOK),
    _r(ts=T0, model="m-flops", site="s-fr", status="600", duration_s=2.0),  # not HTTP: unrecognised
    # failed with nothing to estimate from: none, still failed
    _r(ts=T0, model="m-unknown", site="s-de", status="error", weight=3),
    # failed, weights
    _r(ts=T0, model="m-flops", site="s-de", status="failure", duration_s=3.6, weight=2.5),
    _r(ts=T0, model="m-flops", site="s-de", status="failure", duration_s=3.6, weight=0),
    # --- cached: the flag (JSON literals true/false, or text as LiteLLM writes it: "True"),
    # pack statuses; failed wins ---
    _r(ts=T0, model="m-coef", site="s-de", cache_hit=True, energy_j=3600.0, duration_s=2.0, **_TOK),
    _r(ts=T0, model="m-coef", site="s-de", cache_hit="True", status="success", **_TOK),
    _r(ts=T0, model="m-coef", site="s-de", cache_hit="False", status="success", **_TOK),
    _r(ts=T0, model="m-coef", site="s-de", cache_hit=False, **_TOK),
    _r(ts=T0, model="m-coef", site="s-de", cache_hit="0", **_TOK),
    _r(ts=T0, model="m-coef", site="s-de", status="cache_hit", **_TOK),
    _r(ts=T0, model="m-coef", site="s-de", status="served_from_cache", weight=2, **_TOK),
    _r(ts=T0, model="m-coef", site="s-de", status="error", cache_hit="1", **_TOK),  # failed wins
    _r(ts=T0, model="m-coef", site="s-de", status="500", cache_hit="True", energy_j=72.0),  # failed
    _r(ts=T0, model="m-coef", site="s-nofallback", cache_hit="1", **_TOK),  # zero, not unresolved
    _r(ts=T0, model="m-cache-only", site="s-de", cache_hit="1", duration_s=5.0, **_TOK, weight=7),
    _r(ts=T0, model="m-flops", site="s-de", cache_hit="1", weight=0, **_TOK),
    # --- names: aliases (exact, longest glob, listed first), URL sites, zone case ---
    _r(ts=T0, model="hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", site="s-de", **_TOK),
    _r(ts=T0, model="openai/gpt-4o", site="s-de", duration_s=1.0, **_TOK),  # longer glob: m-flops
    _r(ts=T0, model="openai/gpt-3.5-turbo", site="s-de", duration_s=1.0),  # "openai/*": m-bare
    _r(ts=T0, model="org/m-flops-instruct", site="s-de", **_TOK),
    _r(ts=T0, model="bedrock/x-v1", site="s-de", duration_s=1.0),  # two 12-char globs: first listed
    _r(ts=T0, model="m-coef", site="s-de", hardware="NVIDIA A100-SXM4-40GB", **_TOK),
    _r(ts=T0, model="m-flops", hardware="NVIDIA H100 80GB HBM3", zone="FR", duration_s=1.0),
    _r(ts=T0, model="m-flops", site="http://10.0.0.7:4000/v1", duration_s=1.0),
    _r(ts=T0, model="m-flops", site="https://gpu-fr.example/v1", input_tokens=10),
    _r(ts=T0, model="m-flops", site="gpu-fr.example:443", input_tokens=10),
    _r(ts=T0, model="m-flops", site="http://unknown.example:8000", duration_s=1.0),  # stays raw
    _r(ts=T0, model="m-coef", site="s-lower", energy_j=3600.0),  # site zone "de" -> grid "DE"
    _r(ts=T0, model="m-coef", zone="de", energy_j=3600.0),  # record zone, ignoring case
    _r(ts=T0, model="m-coef", zone="Fr", energy_j=3600.0),
    _r(ts=T0, model="m-coef", zone="xx-unknown", energy_j=3600.0),  # no grid zone: as written
    # --- locating: neither site nor zone -> [defaults] site s-fr; a zone alone stays unlocated ---
    _r(ts=T0, model="m-coef", energy_j=3600.0, **_TOK),
    _r(ts=T0, model="m-flops", duration_s=3.6),
    _r(ts=T0, model="m-flops", zone="DE", duration_s=3.6),
]

OUTCOME_CSV = """ts,model,site,zone,status,cache_hit,input_tokens,output_tokens,duration_s,weight
2025-06-01T00:20:00Z,m-coef,s-de,,error,,100,100,,
2025-06-01T00:20:00Z,m-coef,s-de,,ok,True,100,100,,2
2025-06-01T00:20:00Z,m-coef,s-de,,,true,100,100,,
2025-06-01T00:20:00Z,m-coef,s-de,,Weird,,100,100,,
2025-06-01T00:20:00Z,openai/gpt-4o,,,500,,,,3.6,
2025-06-01T00:20:00Z,m-flops,,de,,,,,3.6,
"""


def _outcome_parquet(native_bool: bool = False) -> pa.Table:
    """Statuses as text; the cache flag as LiteLLM writes it ("True"/"False"), or as a native
    Parquet boolean with ``native_bool``."""
    ts = 1748736000_000000 + 40 * 60 * 1_000_000
    return pa.table(
        {
            "ts": pa.array([ts] * 4, pa.timestamp("us", tz="UTC")),
            "model": ["m-coef", "m-coef", "hosted_vllm/x", "m-flops"],
            "site": ["s-de", "s-de", "s-de", None],
            "status": ["STATUS_CODE_ERROR", "ok", None, "unset"],
            "cache_hit": (
                pa.array([True, True, False, None], pa.bool_())
                if native_bool
                else pa.array(["True", "True", "False", None], pa.string())
            ),
            "input_tokens": pa.array([10, 20, 30, None], pa.int64()),
            "output_tokens": pa.array([5, 5, 5, None], pa.int64()),
            "duration_s": pa.array([None, None, None, 1.8], pa.float64()),
        }
    )


def write_outcome_cases(out_dir: str | Path) -> EdgeCaseFiles:
    """Write outcomes.jsonl, outcomes.csv, outcomes.parquet, outcomes.toml and the edge grids."""
    base = write_edge_cases(out_dir, filler=0)
    out = Path(out_dir)
    jsonl = out / "outcomes.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in OUTCOME_JSONL) + "\n", encoding="utf-8")
    csv = out / "outcomes.csv"
    csv.write_text(OUTCOME_CSV, encoding="utf-8")
    parquet = out / "outcomes.parquet"
    pq.write_table(_outcome_parquet(native_bool=True), parquet)
    config = out / "outcomes.toml"
    config.write_text(OUTCOME_CONFIG_TOML, encoding="utf-8")
    return EdgeCaseFiles(
        logs=[jsonl, csv, parquet],
        config=config,
        grid=base.grid,
        valid_records=len(OUTCOME_JSONL) + OUTCOME_CSV.count("\n") - 1 + _outcome_parquet().num_rows,
        rejected_records=0,
        blank_lines=0,
    )
