"""A synthetic metered fleet whose true coefficients are known (for tests/test_calibrate.py).

Per-request energy = (a * input + b * output) tokens x a multiplicative log-normal noise of
mean 1, and for gpu_time duration x gpus x (idle + u (tdp - idle)) / concurrency with the same
noise; rows are in the agreed per-record schema (docs/internals.md), as the per-record
estimate gives them for measured records.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

#: Wh per 1000 tokens (input, output): the scale of facts.md's measured H100 figures.
TRUTH: dict[tuple[str, str], tuple[float, float]] = {
    ("llama-8b", "h100"): (0.004, 0.033),
    ("llama-8b", "a100"): (0.007, 0.055),
    ("llama-70b", "h100"): (0.03, 0.21),
}
HARDWARE = {"h100": (700.0, 100.0), "a100": (400.0, 50.0)}  # tdp_w, idle_w
TRUE_UTILIZATION = {"h100": 0.35, "a100": 0.6}
SIGMA = 0.25

PACK = """
[pack]
name = "fleet"
version = "1"

[defaults]
utilization = 0.5
concurrency = 2

[hardware.h100]
tdp_w = 700
idle_w = 100

[hardware.a100]
tdp_w = 400
idle_w = 50

[models.llama-8b]
active_params_b = 8
[[models.llama-8b.coefficients]]
hardware = "*"
wh_per_1k_input = 0.01
wh_per_1k_output = 0.1
[[models.llama-8b.coefficients]]
hardware = "h100"
wh_per_1k_input = 0.02
wh_per_1k_output = 0.2

[sites.fra]
zone = "DE"
gpus = 2
"""


def fleet(n_per_group: int, seed: int, *, weights: bool = True, start: int = 0) -> pl.DataFrame:
    """``n_per_group`` metered requests per (model, hardware) of :data:`TRUTH`."""
    rng = np.random.default_rng(seed)
    frames = []
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for k, ((model, hw), (a, b)) in enumerate(TRUTH.items()):
        n = n_per_group
        tin = rng.integers(20, 6000, n)
        tout = rng.integers(10, 1200, n)
        noise = rng.lognormal(-(SIGMA**2) / 2, SIGMA, n)
        token_wh = (tin * a + tout * b) / 1000.0 * noise
        # A duration consistent with the hardware's true utilization for the same energy:
        # gpu_time energy = d * gpus * P / concurrency / 3600.
        tdp, idle = HARDWARE[hw]
        power = idle + TRUE_UTILIZATION[hw] * (tdp - idle)
        gpus = 2
        duration = token_wh * 3600.0 * 2.0 / (gpus * power) * rng.lognormal(-(SIGMA**2) / 2, SIGMA, n)
        weight = rng.choice([1.0, 2.0, 5.0], n) if weights else np.ones(n)
        ids = [f"{model}/{hw}/{seed}/{start + i}" for i in range(n)]
        frames.append(
            pl.DataFrame(
                {
                    "request_id": ids,
                    "ts": [t0 + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 86400 * 30, n)],
                    "model": model,
                    "site": "fra",
                    "zone": "DE",
                    "hardware": hw,
                    "method": "measured",
                    "accelerator_wh": token_wh * weight,
                    "weight": weight,
                    "input_tokens": tin,
                    "output_tokens": tout,
                    "duration_s": duration,
                    "energy_j": token_wh * 3600.0,
                    "gpus": np.full(n, gpus),
                    "source": f"fleet-{k}.jsonl",
                    "line": np.arange(n),
                }
            )
        )
    return pl.concat(frames).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC").dt.cast_time_unit("us"),
        pl.col("input_tokens").cast(pl.Int64),
        pl.col("output_tokens").cast(pl.Int64),
        pl.col("gpus").cast(pl.Int64),
        pl.col("line").cast(pl.Int64),
    )
