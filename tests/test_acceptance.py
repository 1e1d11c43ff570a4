"""One acceptance rule, and nothing non-finite committed (issue 11, points 4 and 5).

Point 4: a record is accepted by ``ingest`` exactly when ``validate`` accepts it, with or without
``dedupe``. A mutated corpus (JSON Lines, CSV, Parquet) plants bad values in every canonical
column, including the ones an estimate does not need (``request_id`` without dedupe, ``status``,
``cache_hit``), and the runs must agree line by line: the same rejected lines with the same
reasons, hence the same accepted lines. Duplicates are not rejects: ``records`` read equals
``validate``'s accepted count, and with dedupe ``records - duplicates`` is what the ledger counts.

Point 5: values beyond the physical bounds (docs/bounds.md) are rejected with a reason naming
the field, so the ledger stays finite; a pack value beyond its bound is refused naming the key;
the JSON and CSV writers refuse NaN and infinities instead of writing them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import wattledger as wl
from edge_cases import write_edge_cases
from wattledger.formatting import ResultRows, dumps_json, to_csv, to_json

# A raw byte 0xFF where text is written (surrogateescape): invalid UTF-8 in a string column.
BAD_UTF8 = "id-\udcff"
# A JSON value written as this raw token, not as a Python value.
RAW_TOKEN = "__raw__:"

MUTATIONS: dict[str, list[Any]] = {
    "request_id": [
        {"a": 1},
        [1, 2],
        True,
        False,
        BAD_UTF8,
        RAW_TOKEN + "123456789012345678901234567890",  # a huge number: its text is the id
        RAW_TOKEN + "1e400",
        "",
        None,
        "plain-id",
    ],
    "status": [{"code": 2}, [], True, BAD_UTF8, 500, 2.5, "error", "", None, "weird-status"],
    "cache_hit": ["maybe", 2, -1, {"a": 1}, [True], "true", "0", 1, 0, True, ""],
    "input_tokens": [-1, 1.5, "abc", 2 * 10**12, 10**19, 10**12, "12", [3]],
    "output_tokens": [RAW_TOKEN + "1e300", {"x": 1}, -5, 7],
    "energy_j": [1e308, -1.0, "NaN", "inf", 1e16, [1], 1e15, RAW_TOKEN + "Infinity"],
    "weight": [1e308, 1e13, -0.5, "x", 1e12, 0.0, RAW_TOKEN + "NaN"],
    "duration_s": [1e9, -1.0, True, 1e8, "2.5"],
    "gpus": [0, 2_000_000, 1.5, "2", -3],
    "ts": ["bad", None, {"t": 1}, RAW_TOKEN + "1e30"],
    "model": [None, {}, 5, "", BAD_UTF8],
    "site": [{"a": 1}, [1], 7, BAD_UTF8],
    "zone": [[], False],
    "hardware": [{"h": 1}, 3.5],
}
FIELDS = list(MUTATIONS)


def corpus(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` records, about a third with one or two planted values; ids repeat now and then so
    dedupe has work to do."""
    rng = random.Random(seed)
    models = ["m-coef", "m-flops", "m-bare"]
    sites = ["s-de", "s-fr", "s-nogrid"]
    out: list[dict[str, Any]] = []
    for i in range(n):
        rec: dict[str, Any] = {
            "ts": f"2025-06-01T{i % 24:02d}:{(7 * i) % 60:02d}:00Z",
            "model": models[i % 3],
            "site": sites[(i // 3) % 3],
            "input_tokens": 100 + i % 997,
            "output_tokens": 10 + i % 131,
            "request_id": f"r-{rng.randrange(i + 1)}" if rng.random() < 0.1 else f"r-{i}",
            "status": "ok" if i % 5 else "error",
            "cache_hit": i % 17 == 0,
        }
        if i % 4 == 1:
            rec["duration_s"] = 0.5 + (i % 9) * 0.25
        if i % 7 == 2:
            rec["energy_j"] = 10.0 + i
        if i % 11 == 3:
            rec["weight"] = 3
        if rng.random() < 0.35:
            for field in rng.sample(FIELDS, rng.choice([1, 1, 2])):
                rec[field] = rng.choice(MUTATIONS[field])
                if field == "weight" and rec[field] == 1e308:
                    rec["energy_j"] = 1e308  # the case: 1e308 J x weight 1e308
        out.append(rec)
    return out


def _json_value(v: Any) -> str:
    if isinstance(v, str) and v.startswith(RAW_TOKEN):
        return v[len(RAW_TOKEN) :]
    return json.dumps(v, ensure_ascii=False)


def write_jsonl(path: Path, recs: list[dict[str, Any]]) -> Path:
    lines = ["{" + ", ".join(f"{json.dumps(k)}: {_json_value(v)}" for k, v in r.items()) + "}" for r in recs]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    return path


def _csv_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v[len(RAW_TOKEN) :] if v.startswith(RAW_TOKEN) else v
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list | dict):
        return json.dumps(v)
    return str(v)


def write_csv(path: Path, recs: list[dict[str, Any]]) -> Path:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FIELDS)
    for r in recs:
        w.writerow([_csv_text(r.get(f)) for f in FIELDS])
    path.write_bytes(out.getvalue().encode("utf-8", "surrogateescape"))
    return path


def write_parquets(tmp: Path, n: int, seed: int) -> list[Path]:
    """Typed columns: a wrong type (a list, a struct) makes every non-null value of the column a
    bad value; numbers beyond the bounds are planted in the numeric columns."""
    rng = random.Random(seed)
    ts = pa.array([1748736000_000000 + i * 61_000_000 for i in range(n)], pa.timestamp("us", "UTC"))
    model = pa.array([["m-coef", "m-flops", "m-bare"][i % 3] for i in range(n)])
    site = pa.array([["s-de", "s-fr"][i % 2] for i in range(n)])

    def pick(good: Any, bad: list[Any], p: float = 0.15) -> Any:
        return rng.choice(bad) if rng.random() < p else good

    tokens = pa.array([pick(100 + i, [-1, 2 * 10**12, 10**12, None]) for i in range(n)], pa.int64())
    energy = pa.array([pick(5.0 + i, [1e308, -1.0, float("nan"), float("inf"), 1e16]) for i in range(n)])
    weight = pa.array([pick(1.0, [1e308, 1e13, -2.0, float("nan")]) for i in range(n)])
    gpus = pa.array([pick(1, [0, 2_000_000, -1]) for i in range(n)], pa.int64())
    # 1: request_id a list (bad where not null), status strings, cache_hit booleans.
    ids_list = pa.array([[i] if rng.random() < 0.2 else None for i in range(n)], pa.list_(pa.int64()))
    status = pa.array([rng.choice(["ok", "error", "", None, "timeout"]) for _ in range(n)])
    cache_bool = pa.array([rng.choice([True, False, None]) for _ in range(n)])
    t1 = pa.table(
        {
            "ts": ts,
            "model": model,
            "site": site,
            "input_tokens": tokens,
            "energy_j": energy,
            "weight": weight,
            "request_id": ids_list,
            "status": status,
            "cache_hit": cache_bool,
        }
    )
    # 2: request_id strings with repeats, status a struct (bad where not null), cache_hit text.
    ids = pa.array([f"p-{rng.randrange(n // 2)}" if rng.random() < 0.3 else f"q-{i}" for i in range(n)])
    status_struct = pa.array(
        [{"code": 2} if rng.random() < 0.2 else None for _ in range(n)], pa.struct([("code", pa.int64())])
    )
    cache_text = pa.array([rng.choice(["true", "no", "maybe", "", None, "1", "2"]) for _ in range(n)])
    t2 = pa.table(
        {
            "ts": ts,
            "model": model,
            "site": site,
            "gpus": gpus,
            "duration_s": pa.array([pick(1.5, [1e9, -0.1, 1e8]) for _ in range(n)]),
            "request_id": ids,
            "status": status_struct,
            "cache_hit": cache_text,
        }
    )
    # 3: request_id huge unsigned numbers (their text is the id), status HTTP codes, cache flags
    # as integers (0/1 good, others bad), request_id booleans would be bad: hardware as bool.
    t3 = pa.table(
        {
            "ts": ts,
            "model": model,
            "zone": pa.array(["DE"] * n),
            "output_tokens": pa.array([pick(7, [10**13, -3]) for _ in range(n)], pa.int64()),
            "request_id": pa.array([2**64 - 1 - (i % 50) for i in range(n)], pa.uint64()),
            "status": pa.array([rng.choice([200, 500, 404, None]) for _ in range(n)], pa.int64()),
            "cache_hit": pa.array([rng.choice([0, 1, 2, None]) for _ in range(n)], pa.int64()),
            "hardware": pa.array([rng.choice([True, None, None]) for _ in range(n)]),
        }
    )
    paths = []
    for k, t in enumerate([t1, t2, t3], start=1):
        p = tmp / f"mut{k}.parquet"
        pq.write_table(t, p, row_group_size=max(1, n // 3))
        paths.append(p)
    return paths


def rejects_of(path: Path) -> list[tuple[str, int, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return sorted((str(r["source"]), int(r["line"]), str(r["reason"])) for r in rows)


@pytest.fixture(scope="module")
def mutated(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, list[Path]]:
    tmp = tmp_path_factory.mktemp("mutated")
    edge = write_edge_cases(tmp / "edge", filler=0)
    recs = corpus(3000, seed=11)
    logs = [
        write_jsonl(tmp / "mut.jsonl", recs),
        write_csv(tmp / "mut.csv", recs),
        *write_parquets(tmp, 1200, seed=12),
    ]
    return logs, edge.config, edge.grid


def test_ingest_accepts_exactly_what_validate_accepts_with_and_without_dedupe(
    mutated: tuple[list[Path], Path, list[Path]], tmp_path: Path
) -> None:
    logs, config, grid = mutated
    v_rej = tmp_path / "validate.rejects.jsonl"
    stats = wl.validate(logs, config=config, rejects=v_rej)
    validated = rejects_of(v_rej)
    accepted = sum(s["records"] for s in stats)
    reasons: dict[str, int] = {}
    for s in stats:
        for k, n in s["rejects"].items():
            reasons[k] = reasons.get(k, 0) + n
    # The corpus does plant what it should: bad ids, statuses and flags, and values out of bounds.
    for reason in (
        "bad value for request_id",
        "bad value for status",
        "bad value for cache_hit",
        "implausible energy_j (above 1e15)",
        "implausible weight (above 1e12)",
        "implausible input_tokens (above 1e12)",
        "implausible output_tokens (above 1e12)",
        "implausible duration_s (above 1e8)",
        "implausible gpus (above 1e6)",
    ):
        assert reasons.get(reason, 0) > 0, (reason, reasons)
    assert len(validated) == sum(reasons.values()) > 0

    for dedupe in (False, True):
        i_rej = tmp_path / f"ingest-{dedupe}.rejects.jsonl"
        ledger = tmp_path / f"l-{dedupe}.duckdb"
        summary = wl.ingest(
            logs, ledger=ledger, config=config, grid=grid, rejects=i_rej, dedupe=dedupe, progress=False
        )
        # Line by line: the same records rejected for the same reasons, so the same accepted.
        assert rejects_of(i_rej) == validated, f"dedupe={dedupe}"
        assert summary.rejects_by_reason == reasons
        assert (summary.records, summary.rejected) == (accepted, len(validated))
        con = wl.connect(ledger)
        try:
            (counted,) = con.execute("SELECT sum(records) FROM energy_hourly").fetchone()  # type: ignore[misc]
            (non_finite,) = con.execute(  # type: ignore[misc]
                "SELECT count(*) FROM energy_hourly WHERE NOT (isfinite(requests) AND isfinite(energy_kwh) "
                "AND isfinite(energy_kwh_high) AND isfinite(co2e_location_kg) AND isfinite(co2e_market_kg) "
                "AND isfinite(coalesce(flops, 0)) AND isfinite(input_tokens))"
            ).fetchone()
        finally:
            con.close()
        assert non_finite == 0
        if dedupe:
            # Duplicates are not rejects: dropped after acceptance, counted apart.
            assert summary.duplicates is not None and summary.duplicates > 0
            assert counted == summary.records - summary.duplicates
        else:
            assert summary.duplicates is None
            assert counted == summary.records


def test_overflowing_record_is_rejected_with_its_reason_and_the_ledger_stays_finite(tmp_path: Path) -> None:
    edge = write_edge_cases(tmp_path / "edge", filler=0)
    base = {"ts": "2025-06-01T00:10:00Z", "model": "m-coef", "site": "s-de"}
    # Two records at the bounds fill one cell: their sums stay finite (and exact).
    at_bound = {**base, "energy_j": 1e15, "weight": 1e12}
    lines = [
        {**base, "energy_j": 1e308, "weight": 1e308},
        at_bound,
        at_bound,
        {**base, "input_tokens": 10**12, "output_tokens": 10**12, "weight": 1e12},
    ]
    log = tmp_path / "big.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    rej = tmp_path / "rej.jsonl"
    summary = wl.ingest(
        log, ledger=tmp_path / "l.duckdb", config=edge.config, grid=edge.grid, rejects=rej, progress=False
    )
    assert rejects_of(rej) == [(str(log), 1, "implausible energy_j (above 1e15)")]
    assert (summary.records, summary.rejected) == (3, 1)
    frame = wl.report(tmp_path / "l.duckdb", year=2025)
    for col, dtype in frame.schema.items():
        if dtype.is_float():
            assert all(v is None or math.isfinite(v) for v in frame[col].to_list()), col
    # s-de: PUE 1.1, overheads 0.4 + 0.2; 2 x 1e15 J x 1e12 = 2e27 J = 5.56e20 kWh accelerator.
    measured = 2 * 1e15 * 1e12 / 3.6e6
    assert frame["measured_kwh"][0] == pytest.approx(measured * 1.6 * 1.1, rel=1e-12)
    assert frame["input_tokens"][0] == pytest.approx(1e24, rel=1e-12)
    rollup = wl.rollup(tmp_path / "l.duckdb", year=2025)
    text = rollup.to_json()
    assert "Infinity" not in text and "NaN" not in text
    json.loads(text)


def test_pack_value_beyond_its_bound_is_refused_naming_the_key(tmp_path: Path) -> None:
    pack = tmp_path / "p.toml"
    pack.write_text('[hardware."h"]\ntdp_w = 1e308\n', encoding="utf-8")
    with pytest.raises(wl.ConfigError, match=r"hardware\.h\.tdp_w: must be within \[0, 20000\]"):
        wl.load_config(pack)
    pack.write_text('[sites."s"]\nfallback_g_per_kwh = 1e308\n', encoding="utf-8")
    with pytest.raises(wl.ConfigError, match=r"sites\.s\.fallback_g_per_kwh: must be within \[0, 5000\]"):
        wl.load_config(pack)


def test_every_shipped_pack_is_within_the_bounds() -> None:
    from importlib import resources

    packs = resources.files("wattledger").joinpath("packs")
    names = sorted(p.name for p in packs.iterdir() if p.name.endswith(".toml"))
    assert "default.toml" in names
    for name in names:
        wl.load_config(Path(str(packs.joinpath(name))))


def test_grid_value_beyond_the_intensity_bound_is_refused(tmp_path: Path) -> None:
    grid = tmp_path / "g.csv"
    grid.write_text("zone,datetime,g_per_kwh\nDE,2025-06-01T00:00:00Z,1e308\n", encoding="utf-8")
    log = tmp_path / "a.jsonl"
    log.write_text(
        '{"ts": "2025-06-01T00:10:00Z", "model": "m", "zone": "DE", "energy_j": 1}\n', encoding="utf-8"
    )
    with pytest.raises(
        wl.WattledgerError,
        match=r"zone DE at 2025-06-01T00:00:00\.000000Z: 1e308 gCO2e/kWh is outside \[0, 5000\]",
    ):
        wl.estimate(log, grid=[grid])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_json_and_csv_writers_refuse_non_finite_numbers(bad: float) -> None:
    rows = ResultRows(["model", "energy_kwh"], [False, True], [("m", 1.5), ("m", bad)])
    for write in (to_json, to_csv):
        with pytest.raises(wl.OutputError, match="non-finite"):
            write(rows)
    with pytest.raises(wl.OutputError, match="non-finite"):
        dumps_json({"nested": [1.0, bad]})
    assert json.loads(to_json(ResultRows(["x"], [True], [(1e308,)]))) == [{"x": 1e308}]
