"""``wattledger calibrate``: a pack fitted to the fleet's own measurements.

The records that carry measured ``energy_j`` are read through the per-record estimate (so
they carry the names the ledger stores), split by a seeded hash into a training and a
held-out share, and fitted per (model, hardware) (token coefficients) and per hardware (the
gpu_time utilization). The held-out share judges each fit and gives its uncertainty. The
output is the input pack plus the calibrated entries, each with its provenance
(docs/calibration.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from wattledger import _core
from wattledger.calibrate.pack import dumps, merge, read_pack, write_pack
from wattledger.calibrate.run import Calibration, GroupResult, Options, UtilizationResult, calibrate_records
from wattledger.config import ColumnRules, load_config

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "Calibration",
    "GroupResult",
    "Options",
    "UtilizationResult",
    "calibrate",
    "calibrate_records",
    "calibrated_pack_text",
    "input_identity",
    "table",
]

PathLike = str | os.PathLike[str]


def input_identity(sources: Iterable[str]) -> tuple[str, ...]:
    """``name sha256:<hex>`` per input file (name only where the source is not a file, e.g.
    Arrow data), in name order: what the pack's provenance cites."""
    out = []
    for name in sorted(set(sources)):
        path = Path(name)
        if path.is_file():
            with path.open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            out.append(f"{name} sha256:{digest}")
        else:
            out.append(name)
    return tuple(out)


def calibrated_pack_text(config: _core.Config, result: Calibration, header: str) -> str:
    """The input pack's TOML with ``result``'s entries merged in."""
    pack = merge(read_pack(config.text), result.coefficient_entries, result.hardware_entries)
    return dumps(pack, header)


def calibrate(
    logs: PathLike | Iterable[PathLike],
    *,
    out: PathLike,
    config: PathLike | _core.Config | None = None,
    holdout: float = 0.2,
    min_records: int = 50,
    seed: int = 0,
    columns: ColumnRules = None,
    preset: str | None = None,
    site: str | None = None,
    threads: int = 0,
    progress: bool | None = False,
) -> Calibration:
    """Fit the pack to the measured records of ``logs`` and write it to ``out``.

    The logs are estimated per record with the pack (streamed to a temporary Parquet file, so
    memory holds only the measured records). Raises :class:`wattledger.UsageError` (exit 2 in
    the CLI) when nothing can be fitted: no record carries ``energy_j``, or every group is
    under ``min_records``. The run's warnings are in the result's ``warnings``."""
    import tempfile

    import polars as pl

    from wattledger.estimate import estimate_parquet

    if not 0.0 <= holdout < 1.0:
        raise _core.UsageError(f"--holdout must be within [0, 1), found {holdout}")
    if min_records < 1:
        raise _core.UsageError(f"--min-records must be at least 1, found {min_records}")
    if not 0 <= seed < 2**64:
        raise _core.UsageError(f"--seed must be within [0, 2^64), found {seed}")
    cfg = load_config(config)
    with tempfile.TemporaryDirectory(prefix="wattledger-calibrate-") as tmp:
        path = Path(tmp) / "records.parquet"
        summary = estimate_parquet(
            logs,
            path,
            config=cfg,
            columns=columns,
            preset=preset,
            site=site,
            threads=threads,
            progress=progress,
        )
        records = pl.scan_parquet(path).filter(pl.col("method") == "measured").collect()
    # The files as the ledger identifies them (BLAKE3 of their bytes).
    inputs = tuple(f"{f.path} blake3:{f.blake3}" if f.blake3 else f.path for f in summary.files)
    result = calibrate_frame(
        records, cfg, out=out, holdout=holdout, min_records=min_records, seed=seed, inputs=inputs
    )
    result.warnings.extend(summary.warnings)
    return result


def calibrate_frame(
    records: pl.DataFrame,
    config: _core.Config,
    *,
    out: PathLike,
    holdout: float = 0.2,
    min_records: int = 50,
    seed: int = 0,
    date: str | None = None,
    inputs: tuple[str, ...] | None = None,
) -> Calibration:
    """:func:`calibrate` on a per-record frame already estimated with ``config``. ``inputs``
    names the input files in the provenance (default: the frame's sources, hashed here)."""
    import polars as pl

    measured = records.filter(pl.col("method") == "measured")
    if measured.height == 0:
        raise _core.UsageError(
            "no record carries a measured energy_j: nothing to calibrate from; map the energy column "
            "(--column energy_j=SOURCE) or pass logs with per-request energy"
        )
    when = date or dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if inputs is None:
        inputs = input_identity(measured.get_column("source").unique().drop_nulls().to_list())
    opts = Options(holdout, min_records, seed, when, inputs)
    result = calibrate_records(records, config, opts)
    if not result.fitted:
        largest = max((g.records for g in result.groups), default=0)
        per_hw = max((u.records for u in result.utilization), default=0)
        raise _core.UsageError(
            f"nothing could be fitted: {measured.height} measured records, at most {largest} for one "
            f"(model, hardware) with tokens and {per_hw} for one hardware with duration_s, under "
            f"--min-records {min_records}; lower --min-records or add measurements"
        )
    header = (
        f"Calibrated by wattledger calibrate on {when} from pack {config.name} {config.version} "
        f"(sha256 {config.sha256}).\nHeld out {holdout:g} of the records (seed {seed}); see each "
        "entry's [calibrated] table."
    )
    text = calibrated_pack_text(config, result, header)
    write_pack(Path(out), text)
    return result


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x * 100:+.1f} %" if signed else f"{x * 100:.1f} %"


def table(result: Calibration) -> str:
    """The CLI's report: one block per (model, hardware), then one per hardware utilization."""
    lines: list[str] = []
    for g in result.groups:
        on = "any hardware (*: the records name none)" if g.hardware == "*" else g.hardware
        lines.append(f"{g.model} on {on}")
        if g.skipped:
            lines.append(f"  skipped: {g.skipped}")
        else:
            lines += [
                f"  records used          {g.used}",
                f"  held out              {g.held_out}",
                f"  wh_per_1k_input       {g.wh_per_1k_input:.6g}",
                f"  wh_per_1k_output      {g.wh_per_1k_output:.6g}",
                f"  uncertainty (90 %)    {'n/a' if g.uncertainty is None else f'±{g.uncertainty:.3g}'}",
                f"  held-out total error  {_pct(g.holdout_total_error, signed=True)}",
                f"  median request error  {_pct(g.holdout_median_error)}",
                f"  band coverage         {_pct(g.band_coverage)}",
            ]
            lines += [f"  note: {n}" for n in g.notes]
        lines.append("")
    for u in result.utilization:
        lines.append(f"utilization of {u.hardware} (gpu_time)")
        if u.skipped:
            lines.append(f"  skipped: {u.skipped}")
        else:
            lines += [
                f"  records used          {u.used}",
                f"  held out              {u.held_out}",
                f"  utilization           {u.utilization:.4g}",
                f"  held-out total error  {_pct(u.holdout_total_error, signed=True)}",
                f"  median request error  {_pct(u.holdout_median_error)}",
                f"  band coverage         {_pct(u.band_coverage)} ([uncertainty] gpu_time band)",
            ]
            lines += [f"  note: {n}" for n in u.notes]
        lines.append("")
    for why, n in result.excluded.items():
        lines.append(f"not fitted: {n} measured records with {why}")
    return "\n".join(lines).rstrip("\n") + "\n"
