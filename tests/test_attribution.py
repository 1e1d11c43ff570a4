"""Node energy attribution end to end (issue 16, point 3; methodology section 10).

The counter fixtures are written field by field after the exporters' own exposition: the DCGM
exporter's ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` (counter, mJ since boot; labels gpu, UUID,
pci_bus_id, device, modelName, Hostname, DCGM_FI_DRIVER_VERSION), Kepler's
``kepler_node_gpu_joules_total`` (labels gpu, gpu_uuid, vendor; constant label node_name) and
``kepler_node_cpu_joules_total`` (zone, path: host energy, read and not used), and a range
query exported as long CSV (timestamp, __name__, labels..., value).

Checked: the method ranking (measured > attributed > tokens), conservation (attributed + idle
= metered), a counter reset mid-interval, an idle interval, two and three nodes, the
GPU-seconds share against the output-token share, and an independent DuckDB SQL computation of
the attribution on generated data.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import wattledger
from wattledger.cli import app
from wattledger.ledger import migrate_ledger

T0 = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)

PACK = """
[defaults]
pue = 1.0

[models.m-a]
[[models.m-a.coefficients]]
hardware = "*"
wh_per_1k_input = 0.0
wh_per_1k_output = 1.0

[models.m-b]
[[models.m-b.coefficients]]
hardware = "*"
wh_per_1k_input = 0.0
wh_per_1k_output = 1.0

[models.m-c]
[[models.m-c.coefficients]]
hardware = "*"
wh_per_1k_input = 0.0
wh_per_1k_output = 1.0

[models.m-d]
[[models.m-d.coefficients]]
hardware = "*"
wh_per_1k_input = 0.0
wh_per_1k_output = 1.0

[models.m-x]
[[models.m-x.coefficients]]
hardware = "*"
wh_per_1k_input = 0.0
wh_per_1k_output = 1.0
"""


def _ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _epoch(seconds: float) -> float:
    return (T0 + timedelta(seconds=seconds)).timestamp()


def _dcgm_line(gpu: int, uuid: str, host: str, mj: int) -> str:
    return (
        f'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu="{gpu}",UUID="{uuid}",'
        f'pci_bus_id="00000000:0{gpu + 1}:00.0",device="nvidia{gpu}",'
        f'modelName="NVIDIA H100 80GB HBM3",Hostname="{host}",'
        f'DCGM_FI_DRIVER_VERSION="570.124.06"}} {mj}'
    )


def write_dcgm(path: Path) -> None:
    """Node gpu-a, two GPUs, scraped every 60 s from T0 to T0+240 s (curl /metrics, each scrape
    after a `# timestamp:` line). GPU 1's exporter restarts between 120 s and 180 s: its counter
    drops to 20,000 mJ (a reset mid-interval)."""
    gpu0 = [1_000_000, 61_000_000, 121_000_000, 181_000_000, 191_000_000]  # 60, 60, 60, 10 kJ
    gpu1 = [5_000_000, 35_000_000, 65_000_000, 20_000, 10_020_000]  # 30, 30, reset 0.02, 10 kJ
    parts = [
        "# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).",
        "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter",
    ]
    for k, (a, b) in enumerate(zip(gpu0, gpu1, strict=True)):
        parts.append(f"# timestamp: {_ts(60 * k)}")
        parts.append("# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).")
        parts.append("# TYPE DCGM_FI_DEV_POWER_USAGE gauge")
        parts.append(
            'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-5b4e07f6",device="nvidia0",'
            'modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-a"} 612.5'
        )
        parts.append(_dcgm_line(0, "GPU-5b4e07f6", "gpu-a", a))
        parts.append(_dcgm_line(1, "GPU-c2f76b33", "gpu-a", b))
    path.write_text("\n".join(parts) + "\n")


#: gpu-a's intervals (joules) as written above: GPU 0 + GPU 1 per 60 s step.
GPU_A_J = [60_000 + 30_000, 60_000 + 30_000, 60_000 + 20, 10_000 + 10_000]


def write_csv(path: Path) -> None:
    """Node gpu-b as the CSV of a range query (step 60 s), one GPU."""
    mj = [0, 12_000_000, 24_000_000, 30_000_000]
    rows = ["timestamp,__name__,Hostname,gpu,UUID,modelName,value"]
    rows += [
        f"{_epoch(60 * k):.3f},DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,gpu-b,0,GPU-9f1c,"
        f"NVIDIA H100 80GB HBM3,{v}"
        for k, v in enumerate(mj)
    ]
    path.write_text("\n".join(rows) + "\n")


GPU_B_J = [12_000, 12_000, 6_000]


def write_kepler(path: Path) -> None:
    """Node gpu-c from Kepler (samples with millisecond timestamps, Prometheus text format)."""
    lines = [
        "# HELP kepler_node_gpu_joules_total Energy consumption of GPU at node level in joules",
        "# TYPE kepler_node_gpu_joules_total counter",
    ]
    for k, j in enumerate([100.0, 5100.0, 9100.0]):
        ms = int(_epoch(60 * k) * 1000)
        lines.append(
            'kepler_node_gpu_joules_total{gpu="0",gpu_uuid="GPU-abc123",vendor="nvidia",'
            f'node_name="gpu-c"}} {j} {ms}'
        )
        lines.append(
            f'kepler_node_cpu_joules_total{{zone="package",path="/sys/class/powercap/intel-rapl:0",'
            f'node_name="gpu-c"}} {j / 10} {ms}'
        )
    path.write_text("\n".join(lines) + "\n")


GPU_C_J = [5_000.0, 4_000.0]


def write_logs(path: Path) -> None:
    recs = [
        # gpu-a, interval 1 (0..60 s): A 40 s on 2 GPUs, B 20 s on 1 GPU -> 80:20 GPU-seconds.
        {
            "ts": _ts(50),
            "model": "m-a",
            "node": "gpu-a",
            "zone": "DE",
            "duration_s": 40,
            "gpus": 2,
            "output_tokens": 10,
        },
        {
            "ts": _ts(30),
            "model": "m-b",
            "node": "gpu-a",
            "zone": "DE",
            "duration_s": 20,
            "gpus": 1,
            "output_tokens": 990,
        },
        # gpu-a, interval 2 (60..120 s): C has no duration: shared by output tokens, 300:100.
        {"ts": _ts(100), "model": "m-c", "node": "gpu-a", "zone": "DE", "output_tokens": 300},
        {
            "ts": _ts(110),
            "model": "m-d",
            "node": "gpu-a",
            "zone": "DE",
            "duration_s": 5,
            "output_tokens": 100,
        },
        # gpu-a, interval 3 (120..180 s, the reset): nobody -> idle. Interval 4: one request.
        {"ts": _ts(200), "model": "m-a", "node": "gpu-a", "zone": "DE", "duration_s": 10, "output_tokens": 1},
        # Measured wins over attributed; a cached request takes no share.
        {"ts": _ts(70), "model": "m-x", "node": "gpu-a", "zone": "DE", "energy_j": 36, "output_tokens": 5},
        {
            "ts": _ts(75),
            "model": "m-x",
            "node": "gpu-a",
            "zone": "DE",
            "status": "cache_hit",
            "cache_hit": True,
        },
        # gpu-b: one request over all three intervals, weight 2.
        {
            "ts": _ts(180),
            "model": "m-b",
            "node": "gpu-b",
            "zone": "DE",
            "duration_s": 180,
            "weight": 2,
            "output_tokens": 7,
        },
        # gpu-c (Kepler): first interval used, second idle.
        {"ts": _ts(30), "model": "m-c", "node": "gpu-c", "zone": "DE", "duration_s": 3, "output_tokens": 1},
        # Not covered: an unmetered node, and a metered node outside its metered time -> tokens.
        {"ts": _ts(30), "model": "m-x", "node": "elsewhere", "zone": "DE", "output_tokens": 1000},
        {"ts": _ts(3600), "model": "m-x", "node": "gpu-a", "zone": "DE", "output_tokens": 1000},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, Path]:
    files = {
        "dcgm": tmp_path / "dcgm.prom",
        "csv": tmp_path / "range.csv",
        "kepler": tmp_path / "kepler.txt",
        "logs": tmp_path / "logs.jsonl",
        "pack": tmp_path / "pack.toml",
        "ledger": tmp_path / "ledger.duckdb",
    }
    write_dcgm(files["dcgm"])
    write_csv(files["csv"])
    write_kepler(files["kepler"])
    write_logs(files["logs"])
    files["pack"].write_text(PACK)
    return files


def _ingest(f: dict[str, Path]) -> wattledger.IngestSummary:
    with pytest.warns(wattledger.RunWarning):
        return wattledger.ingest(
            f["logs"],
            ledger=f["ledger"],
            config=f["pack"],
            node_energy=[f["dcgm"], f["csv"], f["kepler"]],
            warn_share=1.0,
        )


def _acc_wh(ledger: Path) -> dict[tuple[str, str], float]:
    with duckdb.connect(str(ledger), read_only=True) as con:
        rows = con.execute(
            "SELECT model, method, sum(energy_acc_kwh) * 1000 FROM wl_hourly GROUP BY ALL"
        ).fetchall()
    return {(m, me): wh for m, me, wh in rows}


def test_methods_shares_idle_and_conservation(fleet: dict[str, Path]) -> None:
    s = _ingest(fleet)
    wh = _acc_wh(fleet["ledger"])
    # gpu-a interval 1 (90 kJ): GPU-seconds 80:20. Interval 2 (90 kJ): tokens 300:100.
    # Interval 4 (20 kJ): m-a alone. gpu-b: m-b takes all 30 kJ. gpu-c: m-c takes 5 kJ.
    a = 90_000 * 0.8 + 20_000
    b = 90_000 * 0.2 + sum(GPU_B_J)
    c = 90_000 * 0.75 + GPU_C_J[0]
    d = 90_000 * 0.25
    for model, joules in (("m-a", a), ("m-b", b), ("m-c", c), ("m-d", d)):
        assert wh[(model, "attributed")] == pytest.approx(joules / 3600, rel=1e-12), model
    assert wh[("m-x", "measured")] == pytest.approx(0.01, rel=1e-12)
    assert wh[("m-x", "tokens")] == pytest.approx(2.0, rel=1e-12)  # 2 x 1000 tokens at 1 Wh/1k
    assert wh[("m-x", "cached")] == 0.0
    # Idle: gpu-a's reset interval (60,020 J), gpu-c's second interval.
    n = s.node_energy
    assert n is not None
    metered_j = sum(GPU_A_J) + sum(GPU_B_J) + sum(GPU_C_J)
    assert n.metered_kwh * 3.6e6 == pytest.approx(metered_j, rel=1e-12)
    assert n.idle_kwh_by_node["gpu-a"] * 3.6e6 == pytest.approx(GPU_A_J[2], rel=1e-12)
    assert n.idle_kwh_by_node["gpu-c"] * 3.6e6 == pytest.approx(GPU_C_J[1], rel=1e-12)
    assert n.idle_kwh_by_node["gpu-b"] == 0.0
    assert (n.nodes, n.resets, n.gaps) == (3, 1, 0)
    assert n.skipped == {"kepler_node_cpu_joules_total": 3}
    # Conservation, from the ledger: attributed (hourly rows) + idle (node_energy) = metered.
    with duckdb.connect(str(fleet["ledger"]), read_only=True) as con:
        attributed, idle, metered = con.execute(
            "SELECT (SELECT sum(energy_acc_kwh) FROM wl_hourly WHERE method = 'attributed'), "
            "sum(idle_kwh), sum(metered_kwh) FROM node_energy"
        ).fetchone()
    assert metered * 3.6e6 == pytest.approx(metered_j, rel=1e-12)
    assert abs((attributed + idle) - metered) <= 1e-12 * metered
    assert any("counter reset" in w and "gpu-a GPU-c2f76b33" in w for w in s.warnings)
    assert s.energy_kwh_by_method["attributed"] == pytest.approx((a + b + c + d) / 3.6e6, rel=1e-12)


def test_cli_ingest_node_energy_summary(fleet: dict[str, Path]) -> None:
    result = CliRunner().invoke(
        app,
        [
            "ingest",
            str(fleet["logs"]),
            "--ledger",
            str(fleet["ledger"]),
            "--config",
            str(fleet["pack"]),
            "--node-energy",
            str(fleet["dcgm"]),
            "--node-energy",
            str(fleet["csv"]),
            "--node-energy",
            str(fleet["kepler"]),
            "--warn-share",
            "100%",
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "  attributed" in out
    assert "by method:" in out and "attributed" in out.split("by method:")[1].splitlines()[0]
    assert "node energy:" in out and "on 3 nodes" in out
    assert "1 resets, 0 gaps" in out
    assert "warning: node energy: counter reset" in result.stderr
    assert "no request was active on metered node" not in result.stderr


def test_a_node_name_the_logs_spell_otherwise_is_warned_not_quietly_idle(tmp_path: Path) -> None:
    """Counters say n1, the logs say n1.cluster.local: no request is attributed and the whole
    metered energy would be idle; that is said, naming the node, not left to the totals."""
    counters = tmp_path / "dcgm.prom"
    counters.write_text(
        "# timestamp: 2025-06-01T10:00:00Z\n"
        'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GPU-a",Hostname="n1"} 1000000000\n'
        "# timestamp: 2025-06-01T10:01:00Z\n"
        'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GPU-a",Hostname="n1"} 1036000000\n'
    )
    line = (
        "warning: node energy: no request was active on metered node(s) n1: "
        "all their energy is counted as idle"
    )
    for node, warned in (("n1.cluster.local", True), ("n1", False)):
        logs = tmp_path / f"{node}.jsonl"
        logs.write_text(
            f'{{"ts":"2025-06-01T10:00:40Z","model":"llama-3.1-8b","zone":"DE","node":"{node}",'
            '"hardware":"nvidia-h100-sxm","duration_s":30,"output_tokens":100}\n'
        )
        result = CliRunner().invoke(
            app,
            [
                "ingest",
                str(logs),
                "--ledger",
                str(tmp_path / f"{node}.duckdb"),
                "--node-energy",
                str(counters),
            ],
        )
        assert result.exit_code == 0, result.output
        assert (line in result.stderr) is warned, result.stderr
        assert ("  attributed" in result.stdout) is not warned


def test_bad_counter_file_is_one_line_and_writes_nothing(fleet: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.prom"
    bad.write_text(
        '# timestamp: 2025-06-01T10:00:00Z\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{Hostname="n"} -3\n'
    )
    result = CliRunner().invoke(
        app,
        [
            "ingest",
            str(fleet["logs"]),
            "--ledger",
            str(fleet["ledger"]),
            "--config",
            str(fleet["pack"]),
            "--node-energy",
            str(bad),
        ],
    )
    assert result.exit_code == 2, result.output
    err = [line for line in result.stderr.splitlines() if "bad.prom" in line]
    assert len(err) == 1 and "line 2" in err[0] and "negative" in err[0]
    assert not fleet["ledger"].exists()


def test_old_ledger_migrates_and_keeps_working(fleet: dict[str, Path]) -> None:
    with pytest.warns(wattledger.RunWarning):
        wattledger.ingest(fleet["logs"], ledger=fleet["ledger"], config=fleet["pack"], warn_share=1.0)
    with duckdb.connect(str(fleet["ledger"])) as con:
        con.execute("DROP VIEW node_energy")
        con.execute("DROP TABLE wl_node_energy")
        con.execute("ALTER TABLE wl_sources DROP COLUMN etag")  # schema 6's, not in a 4
        con.execute("UPDATE wl_meta SET value = '4' WHERE key = 'schema_version'")
    before = _acc_wh(fleet["ledger"])
    assert migrate_ledger(fleet["ledger"])
    with duckdb.connect(str(fleet["ledger"]), read_only=True) as con:
        assert con.execute("SELECT value FROM wl_meta WHERE key = 'schema_version'").fetchone() == ("6",)
        assert con.execute("SELECT count(*) FROM wl_node_energy").fetchone() == (0,)
    assert _acc_wh(fleet["ledger"]) == before


# --------------------------------------------------------------------------------------------
# An independent check: the attribution computed in DuckDB SQL from the same CSV and logs.


def _generate(tmp: Path, seed: int) -> tuple[Path, Path]:
    rng = random.Random(seed)
    counters = ["timestamp,__name__,Hostname,gpu,value"]
    for node in ("n1", "n2"):
        for gpu in range(2):
            v = rng.randrange(10**9)
            t = 0
            while t <= 1800:
                counters.append(f"{_epoch(t):.3f},DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION,{node},{gpu},{v}")
                if rng.random() < 0.03:
                    v = rng.randrange(10**6)  # a reset
                else:
                    v += rng.randrange(1, 700_000) * 15
                t += 15 if gpu == 0 else 30  # GPUs of one node on different steps
    (tmp / "gen.csv").write_text("\n".join(counters) + "\n")
    recs = []
    for i in range(600):
        r: dict[str, object] = {
            "ts": _ts(rng.uniform(-60, 1900)),
            "model": f"g{i % 7}",
            "node": rng.choice(["n1", "n2", "n3"]),
            "zone": "DE",
            "weight": rng.choice([1, 1, 2, 0.5]),
            "gpus": rng.choice([1, 2, 8]),
        }
        if rng.random() < 0.85:
            r["duration_s"] = round(rng.uniform(0, 40), 3)
        if rng.random() < 0.9:
            r["output_tokens"] = rng.randrange(0, 2000)
        recs.append(r)
    (tmp / "gen.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return tmp / "gen.csv", tmp / "gen.jsonl"


ORACLE_SQL = """
WITH s AS (
    SELECT Hostname AS node, gpu, epoch_us(to_timestamp("timestamp")) AS t, value::DOUBLE AS v
    FROM read_csv(?, header=true, all_varchar=false)
), iv AS (
    SELECT node, lag(t) OVER w AS a, t AS b,
        CASE WHEN v >= lag(v) OVER w THEN (v - lag(v) OVER w) / 1000 ELSE v / 1000 END AS j
    FROM s WINDOW w AS (PARTITION BY node, gpu ORDER BY t)
), ivs AS (  -- GPUs of a node with the same bounds summed
    SELECT node, a, b, sum(j) AS j FROM iv WHERE a IS NOT NULL GROUP BY node, a, b
), r AS (
    SELECT row_number() OVER () AS id, model, node, epoch_us(ts::TIMESTAMPTZ) AS e,
        round(coalesce(duration_s, 0) * 1e6)::BIGINT AS d, coalesce(gpus, 1) AS g,
        coalesce(output_tokens, 0) AS tok, coalesce(weight, 1) AS w
    FROM read_json(?, columns={ts: 'VARCHAR', model: 'VARCHAR', node: 'VARCHAR', zone: 'VARCHAR',
        weight: 'DOUBLE', gpus: 'BIGINT', duration_s: 'DOUBLE', output_tokens: 'BIGINT'})
), c AS (  -- every request's claim on every interval it is active in
    SELECT r.id, r.model, ivs.node, ivs.a, ivs.b, ivs.j, r.w,
        CASE WHEN r.d > 0 THEN (least(r.e, ivs.b) - greatest(r.e - r.d, ivs.a)) END AS ov, r.d, r.g, r.tok
    FROM r JOIN ivs ON r.node = ivs.node
    WHERE (r.d > 0 AND least(r.e, ivs.b) - greatest(r.e - r.d, ivs.a) > 0)
       OR (r.d = 0 AND ivs.a < r.e AND r.e <= ivs.b)
), k AS (
    SELECT *,
        CASE WHEN d > 0 THEN ov / 1e6 * g * w ELSE 0 END AS gs,
        tok * w * CASE WHEN d > 0 THEN ov / d ELSE 1 END AS tk,
        w * CASE WHEN d > 0 THEN ov / d ELSE 1 END AS ww,
        CASE WHEN d > 0 THEN 0 ELSE w END AS nd
    FROM c
), tot AS (
    SELECT *, sum(gs) OVER iw AS sgs, sum(tk) OVER iw AS stk, sum(ww) OVER iw AS sww, sum(nd) OVER iw AS snd
    FROM k WINDOW iw AS (PARTITION BY node, a, b)
)
SELECT model, sum(j * CASE
    WHEN snd = 0 AND sgs > 0 THEN gs / sgs
    WHEN stk > 0 THEN tk / stk
    WHEN sww > 0 THEN ww / sww
    ELSE 0 END) / 3600 AS wh
FROM tot GROUP BY model ORDER BY model
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_attribution_matches_sql_oracle(tmp_path: Path, seed: int) -> None:
    counters, logs = _generate(tmp_path, seed)
    (tmp_path / "pack.toml").write_text("[defaults]\npue = 1.0\n")
    ledger = tmp_path / "l.duckdb"
    with pytest.warns(wattledger.RunWarning):
        s = wattledger.ingest(
            logs, ledger=ledger, config=tmp_path / "pack.toml", node_energy=[counters], warn_share=1.0
        )
    got = {m: wh for (m, me), wh in _acc_wh(ledger).items() if me == "attributed"}
    with duckdb.connect() as con:
        want = dict(con.execute(ORACLE_SQL, [str(counters), str(logs)]).fetchall())
    assert got.keys() == want.keys()
    for m in want:
        assert got[m] == pytest.approx(want[m], rel=1e-9, abs=1e-12), m
    n = s.node_energy
    assert n is not None and n.resets > 0
    assert abs(n.attributed_kwh + n.idle_kwh - n.metered_kwh) <= 1e-12 * n.metered_kwh
    assert sum(got.values()) / 1000 == pytest.approx(n.attributed_kwh, rel=1e-12)


def test_rollup_methods_table_shows_the_attributed_share(fleet: dict[str, Path]) -> None:
    from wattledger.rollup import rollup

    s = _ingest(fleet)
    r = rollup(fleet["ledger"], year=2025)
    total = r.data.total.values
    assert s.energy_kwh is not None
    attributed = s.energy_kwh_by_method["attributed"]
    assert attributed is not None
    assert total["energy_attributed_mwh"] == pytest.approx(attributed / 1000, rel=1e-12)
    assert total["share_attributed_pct"] == pytest.approx(attributed / s.energy_kwh * 100, rel=1e-12)
    assert "Energy attributed" in r.to_markdown()
