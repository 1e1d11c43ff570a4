"""Write seed inputs for the fuzz targets (docs/fuzzing.md) into SEED_DIR/<target>/.

The seeds are the project's own realistic inputs: the upstream-shaped fixtures of
tests/upstream_fixtures.py, the edge cases of tests/edge_cases.py, the bundled packs, and small
hand-written files for the corners. Large files are cut to a few records (the fuzzer's -max_len
is 16 KiB). Run from the repository root with PYTHONPATH=python:tests; the fuzzer then grows
the corpus and `cargo fuzz cmin` keeps what adds coverage (rust/fuzz/corpus/<target>/).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import edge_cases
import upstream_fixtures

MAX_SEED = 16 * 1024


def put(out: Path, target: str, data: bytes) -> None:
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def lines_head(data: bytes, n: int) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:n])


def seed_logs(out: Path, tmp: Path) -> None:
    for write, preset in upstream_fixtures.WRITERS:
        d = tmp / write.__name__
        d.mkdir()
        write(d)
        for f in d.iterdir():
            data = f.read_bytes()
            whole = data if len(data) <= MAX_SEED else None
            if f.suffix == ".csv":
                put(out, "csv", lines_head(data, 6))
            elif f.name.endswith(".jsonl"):
                put(out, "otlp" if preset in ("otel", "vllm") else "jsonl", lines_head(data, 4))
            elif whole is not None:
                put(out, "otlp" if preset in ("otel", "vllm") else "jsondoc", whole)
            if preset in ("otel", "vllm"):
                put(out, "otlp", whole or data[:MAX_SEED])
    edge = tmp / "edge"
    files = edge_cases.write_edge_cases(edge, filler=3)
    put(out, "jsonl", (edge / "edge.jsonl").read_bytes())
    put(out, "csv", (edge / "edge.csv").read_bytes())
    put(out, "pack", files.config.read_bytes())
    for g in files.grid:
        put(out, "grid", g.read_bytes())


HAND = {
    "jsonl": [
        b'\xef\xbb\xbf{"ts":"2025-01-01T00:00:00Z","model":"m","input_tokens":1}\r\n'
        b'\n  \n{"ts":1735689600,"model":"m"}',
        b'{"ts":"2025-01-01T00:00:00+02:00","model":"m\\u00e9\\n","extra":{"a":[1,{"b":"}]"}]},"weight":0.5}\n',
        b'{"ts":1.7e9,"model":"m","energy_j":1e15,"gpus":1000000,"duration_s":"1.5e0"}\n{"ts":null}\n[1,2]\n',
    ],
    "jsondoc": [
        b'[{"ts":"2025-01-01T00:00:00Z","model":"m"},\n {"ts":1735689600,"model":"n","gpus":2}]',
        b'{"data":[{"ts":"2025-01-01T00:00:00Z","model":"m"}],"total":1,"page":1}',
        b'{\n  "ts": "2025-01-01T00:00:00Z",\n  "model": "m"\n}\n{\n  "ts": 1735689600,\n  "model": "x"\n}\n',
    ],
    "csv": [
        b"ts,model,input_tokens,output_tokens,gpus,duration_s,energy_j,weight\n"
        b'2025-01-01T00:00:00Z,m,1,2,1,0.5,,1\n"2025-01-01 01:00:00","m ""q""",,,,,,\r\n',
        b"\xef\xbb\xbfts;model\n2025-01-01,m\n",
        b"ts,model\r2025-01-01,m\r",
    ],
    "timestamp": [
        b"2025-03-01T12:00:00Z",
        b"2025-03-01T12:00:00.123456+02:00",
        b"2025-03-01 12:00:00-0530",
        b"2025-03-01",
        b"1735689600",
        b"1735689600123",
        b"1735689600123456789",
        b"1735689600.5",
        b"-1e18",
        b"0000-01-01T00:00:00Z",
        b"9999-12-31T23:59:59.999999Z",
        b"2024-02-29T24:00:00Z",
    ],
    "grid": [
        b"zone,datetime,g_per_kwh\nDE,2024-03-01T00:00:00Z,300\nDE,2024-03-01 01:00:00,100\n",
        b"datetime,g_per_kwh\n2024-03-01T00:00:00Z,20\n2024-03-01T01:00:00Z,25\n",
        b"from,to,intensity.forecast,intensity.actual,intensity.index\n"
        b"2024-03-01T00:00Z,2024-03-01T00:30Z,150,140,moderate\n2024-03-01T01:00Z,2024-03-01T01:30Z,120,,low\n",
        b"zone;datetime;g_per_kwh\nDE;2024-03-01T00:00:00Z;300,5\n",
    ],
}


def main() -> None:
    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as t:
        seed_logs(out, Path(t))
    put(out, "pack", upstream_fixtures.PACK_TOML.encode())
    for pack in sorted(Path("python/wattledger/packs").glob("*.toml")):
        put(out, "pack", pack.read_bytes())
    for target, seeds in HAND.items():
        for s in seeds:
            put(out, target, s)
    for d in sorted(out.iterdir()):
        print(d.name, len(list(d.iterdir())), sum(f.stat().st_size for f in d.iterdir()))


if __name__ == "__main__":
    main()
