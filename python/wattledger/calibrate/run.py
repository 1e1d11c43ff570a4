"""From per-record estimates to calibrated entries: groups, split, fits, held-out checks.

Input is the per-record frame of :func:`wattledger.estimate` (``per_record=True``): it names
every record as the ledger would (aliases resolved, site defaults applied) and says which
records the engine estimated from measured ``energy_j``. Only those are used. Python loops
over (model, hardware) groups and hardware here; every per-record step is a vectorised
polars or numpy operation.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from wattledger import _core
from wattledger._deferred import deferred
from wattledger.calibrate import fit, split

if TYPE_CHECKING:
    import polars as pl
else:
    pl = deferred("polars")

#: The pack's bound on an uncertainty (docs/bounds.md): a wider band is written at the bound.
MAX_UNCERTAINTY = 10.0
FIT_TEXT = "quasi-Poisson, identity link (IRLS, weights 1/mu), non-negative"
#: Folds of the cross-fit whose out-of-fold residuals give the band.
FOLDS = 5
#: The coefficient entry that applies to any hardware, and to records that name none.
ANY_HARDWARE = "*"


@dataclass(frozen=True)
class Options:
    holdout: float = 0.2
    min_records: int = 50
    seed: int = 0
    #: RFC 3339 time of the calibration (provenance).
    date: str = ""
    #: The input files' identity (provenance).
    inputs: tuple[str, ...] = ()


def total_error(measured_wh: float | None, estimated_wh: float | None) -> float | None:
    """Estimated / measured total - 1 (signed); None without a measured total above 0."""
    if measured_wh is None or estimated_wh is None or measured_wh <= 0:
        return None
    return estimated_wh / measured_wh - 1.0


@dataclass(frozen=True)
class GroupResult:
    """One (model, hardware): what the table prints and the pack records."""

    model: str
    hardware: str | None
    records: int
    #: None when the group was not fitted; ``skipped`` then says why.
    used: int | None = None
    held_out: int | None = None
    wh_per_1k_input: float | None = None
    wh_per_1k_output: float | None = None
    uncertainty: float | None = None
    holdout_measured_wh: float | None = None
    holdout_estimated_wh: float | None = None
    holdout_median_error: float | None = None
    band_coverage: float | None = None
    notes: tuple[str, ...] = ()
    skipped: str | None = None

    @property
    def holdout_total_error(self) -> float | None:
        """Held-out estimated / measured total - 1 (signed)."""
        return total_error(self.holdout_measured_wh, self.holdout_estimated_wh)


@dataclass(frozen=True)
class UtilizationResult:
    hardware: str
    records: int
    used: int | None = None
    held_out: int | None = None
    utilization: float | None = None
    raw: float | None = None
    holdout_measured_wh: float | None = None
    holdout_estimated_wh: float | None = None
    holdout_median_error: float | None = None
    band_coverage: float | None = None
    notes: tuple[str, ...] = ()
    skipped: str | None = None

    @property
    def holdout_total_error(self) -> float | None:
        """Held-out estimated / measured total - 1 (signed)."""
        return total_error(self.holdout_measured_wh, self.holdout_estimated_wh)


@dataclass
class Calibration:
    groups: list[GroupResult] = field(default_factory=list)
    utilization: list[UtilizationResult] = field(default_factory=list)
    #: Measured records left out of every fit, and why (e.g. no hardware).
    excluded: dict[str, int] = field(default_factory=dict)
    coefficient_entries: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    hardware_entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The run's and the grid's warnings (reading the logs), for the CLI to print.
    warnings: list[str] = field(default_factory=list)

    @property
    def fitted(self) -> bool:
        return bool(self.coefficient_entries or self.hardware_entries)


def _f64(frame: pl.DataFrame, column: str) -> npt.NDArray[np.float64]:
    return frame.get_column(column).cast(pl.Float64).fill_null(0.0).to_numpy()


def _iso(ts: Any) -> str:
    return str(ts.isoformat().replace("+00:00", "Z"))


def _provenance(
    frame: pl.DataFrame,
    used: int,
    held: int,
    opts: Options,
    evaluation: dict[str, float | None],
    note: str | None,
) -> dict[str, Any]:
    """The ``calibrated`` table of an entry (keys the engine's parser accepts)."""
    ts = frame.get_column("ts")
    out: dict[str, Any] = {
        "records": used,
        "held_out": held,
        "first_ts": _iso(ts.min()),
        "last_ts": _iso(ts.max()),
        "date": opts.date,
        "fit": FIT_TEXT,
        "inputs": list(opts.inputs),
        "holdout": opts.holdout,
        "seed": opts.seed,
    }
    out.update({k: v for k, v in evaluation.items() if v is not None and math.isfinite(v)})
    if note:
        out["note"] = note
    return out


def _evaluate(
    measured: npt.NDArray[np.float64], estimated: npt.NDArray[np.float64], weight: npt.NDArray[np.float64]
) -> dict[str, float | None]:
    """Held-out figures: weighted totals, and the median per-request error
    |estimate / measured - 1| over requests with energy measured."""
    if len(measured) == 0:
        return {}
    positive = measured > 0
    errors = np.abs(estimated[positive] / measured[positive] - 1.0)
    return {
        "holdout_measured_wh": float(np.sum(weight * measured)),
        "holdout_estimated_wh": float(np.sum(weight * estimated)),
        "holdout_median_error": fit.weighted_median(errors, weight[positive]) if positive.any() else None,
    }


def _out_of_fold_residuals(
    tin: npt.NDArray[np.float64],
    tout: npt.NDArray[np.float64],
    e: npt.NDArray[np.float64],
    w: npt.NDArray[np.float64],
    folds: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """Each record's residual |measured / estimate - 1| under a fit on the other folds: every
    record is held out of the fit that judges it, so the band's quantile is read from all of
    them rather than from the held-out share alone (loops over folds, not records)."""
    residuals = np.full(len(e), np.inf)
    for k in range(FOLDS):
        test = folds == k
        if not test.any() or test.all():
            continue
        f = fit.fit_tokens(tin[~test], tout[~test], e[~test], w[~test])
        estimate = tin[test] * f.wh_per_input + tout[test] * f.wh_per_output
        residuals[test] = fit.relative_residuals(e[test], estimate)
    return residuals


def _token_group(
    model: str, hardware: str, g: pl.DataFrame, opts: Options
) -> tuple[GroupResult, dict[str, Any] | None]:
    n = g.height
    if n < opts.min_records:
        return GroupResult(
            model, hardware, n, skipped=f"{n} records, under --min-records {opts.min_records}"
        ), None
    unit = split.unit(g, opts.seed)
    held = unit < opts.holdout
    train = ~held
    if not train.any():
        return GroupResult(model, hardware, n, skipped="every record fell in the held-out share"), None
    tin, tout = _f64(g, "input_tokens"), _f64(g, "output_tokens")
    e, w = _f64(g, "energy_j") / 3600.0, _f64(g, "weight")
    result = fit.fit_tokens(tin[train], tout[train], e[train], w[train])
    notes: list[str] = [result.note] if result.note else []
    estimate = tin * result.wh_per_input + tout * result.wh_per_output
    evaluation = _evaluate(e[held], estimate[held], w[held])
    if not held.any():
        notes.append("nothing held out: no held-out error")
    # The band: from every record's out-of-fold residual (see docs/calibration.md).
    folds = np.minimum((unit * FOLDS).astype(np.int64), FOLDS - 1)
    residuals = _out_of_fold_residuals(tin, tout, e, w, folds)
    u = fit.conformal_halfwidth(residuals, w)
    if not fit.enough_for_conformal(float(np.sum(w))):
        notes.append("too few requests for a 90 % band with 90 % confidence: the largest residual is used")
    if not u <= MAX_UNCERTAINTY:
        notes.append(f"band half-width {u:.3g} above the pack's bound: written as {MAX_UNCERTAINTY:g}")
        u = MAX_UNCERTAINTY
    coverage = fit.cross_coverage(residuals, w, split.halves(g, opts.seed))
    evaluation["band_coverage"] = coverage
    entry: dict[str, Any] = {
        "hardware": hardware,
        "wh_per_1k_input": result.wh_per_input * 1000.0,
        "wh_per_1k_output": result.wh_per_output * 1000.0,
        "uncertainty": u,
        "source": f"wattledger calibrate {opts.date}",
    }
    entry["calibrated"] = _provenance(
        g, int(train.sum()), int(held.sum()), opts, evaluation, "; ".join(notes)
    )
    row = GroupResult(
        model,
        hardware,
        n,
        used=int(train.sum()),
        held_out=int(held.sum()),
        wh_per_1k_input=entry["wh_per_1k_input"],
        wh_per_1k_output=entry["wh_per_1k_output"],
        uncertainty=u,
        holdout_measured_wh=evaluation.get("holdout_measured_wh"),
        holdout_estimated_wh=evaluation.get("holdout_estimated_wh"),
        holdout_median_error=evaluation.get("holdout_median_error"),
        band_coverage=coverage,
        notes=tuple(notes),
    )
    return row, entry


def _site_table(resolved: dict[str, Any]) -> pl.DataFrame:
    """Per site of the pack: its concurrency and whether it sets its own utilization (then the
    hardware's value does not apply to its records, so they do not take part in its fit)."""
    sites = resolved.get("sites", {})
    return pl.DataFrame(
        {
            "site": list(sites),
            "_concurrency": [float(s["concurrency"]) for s in sites.values()],
            "_own_utilization": [s["from"]["utilization"] == "site" for s in sites.values()],
        },
        schema={"site": pl.Utf8, "_concurrency": pl.Float64, "_own_utilization": pl.Boolean},
    )


def _utilization(
    hardware: str, g: pl.DataFrame, spec: dict[str, Any], gpu_time_u: float, opts: Options
) -> tuple[UtilizationResult, dict[str, Any] | None]:
    n = g.height
    if n < opts.min_records:
        return UtilizationResult(
            hardware, n, skipped=f"{n} records, under --min-records {opts.min_records}"
        ), None
    held = split.unit(g, opts.seed) < opts.holdout
    train = ~held
    if not train.any():
        return UtilizationResult(hardware, n, skipped="every record fell in the held-out share"), None
    tdp, idle = float(spec["tdp_w"]), float(spec["idle_w"])
    seconds = _f64(g, "duration_s") * _f64(g, "gpus") / _f64(g, "_concurrency") / 3600.0
    e, w = _f64(g, "energy_j") / 3600.0, _f64(g, "weight")
    result = fit.fit_utilization(e[train], seconds[train] * idle, seconds[train] * (tdp - idle), w[train])
    if result is None:
        return UtilizationResult(
            hardware, n, skipped="idle_w equals tdp_w: utilization changes nothing"
        ), None
    notes = []
    if result.raw != result.utilization:
        notes.append(f"fitted {result.raw:.4g}, clipped to [0, 1]")
    estimate = seconds * (idle + result.utilization * (tdp - idle))
    evaluation = _evaluate(e[held], estimate[held], w[held])
    if held.any():
        # The pack's [uncertainty] gpu_time band on the held-out requests.
        covered = fit.band_covers(e[held], estimate[held], gpu_time_u)
        evaluation["band_coverage"] = float(np.sum(w[held] * covered) / np.sum(w[held]))
    provenance = _provenance(g, int(train.sum()), int(held.sum()), opts, evaluation, "; ".join(notes))
    provenance["fit"] = "weighted total of gpu_time = measured total over records with duration_s"
    row = UtilizationResult(
        hardware,
        n,
        used=int(train.sum()),
        held_out=int(held.sum()),
        utilization=result.utilization,
        raw=result.raw,
        holdout_measured_wh=evaluation.get("holdout_measured_wh"),
        holdout_estimated_wh=evaluation.get("holdout_estimated_wh"),
        holdout_median_error=evaluation.get("holdout_median_error"),
        band_coverage=evaluation.get("band_coverage"),
        notes=tuple(notes),
    )
    return row, {"utilization": result.utilization, "calibrated": provenance}


def calibrate_records(records: pl.DataFrame, config: _core.Config, opts: Options) -> Calibration:
    """Fit every (model, hardware) and every hardware of ``records`` (the per-record frame)."""
    out = Calibration()
    measured = records.filter((pl.col("method") == "measured") & pl.col("energy_j").is_not_null())
    # The tokens method needs a token count; with both 0 it gives 0 whatever the coefficients.
    tokens = pl.col("input_tokens").fill_null(0) + pl.col("output_tokens").fill_null(0)
    # Records that name no hardware (and whose site names none) are fitted as the model's "*"
    # entry: the one a record without hardware is estimated with.
    with_tokens = measured.filter(tokens > 0).with_columns(pl.col("hardware").fill_null(ANY_HARDWARE))
    if measured.height - with_tokens.height:
        out.excluded["no token counts or 0 tokens (used for utilization only)"] = (
            measured.height - with_tokens.height
        )
    for (model, hardware), g in sorted(
        with_tokens.group_by(["model", "hardware"], maintain_order=True),
        key=lambda kv: (str(kv[0][0]), str(kv[0][1])),
    ):
        row, entry = _token_group(str(model), str(hardware), g, opts)
        out.groups.append(row)
        if entry is not None:
            out.coefficient_entries[(str(model), str(hardware))] = entry

    resolved = json.loads(config.to_json())
    unknown = resolved["unknown_site"]
    timed = measured.filter(pl.col("duration_s").is_not_null())
    no_hw = timed.filter(pl.col("hardware").is_null()).height
    if no_hw:
        out.excluded["duration_s but no hardware (a utilization needs the hardware's power)"] = no_hw
    timed = timed.filter(pl.col("hardware").is_not_null()).join(_site_table(resolved), on="site", how="left")
    timed = timed.with_columns(
        pl.col("_concurrency").fill_null(float(unknown["concurrency"])),
        pl.col("_own_utilization").fill_null(unknown["from"]["utilization"] == "site"),
    )
    own = timed.filter(pl.col("_own_utilization")).height
    if own:
        out.excluded["at sites with their own utilization (it wins over the hardware's)"] = own
    timed = timed.filter(~pl.col("_own_utilization"))
    gpu_time_u = float(resolved["uncertainty"]["gpu_time"])
    for (hardware,), g in sorted(
        timed.group_by(["hardware"], maintain_order=True), key=lambda kv: str(kv[0][0])
    ):
        spec = resolved.get("hardware", {}).get(str(hardware))
        if spec is None:
            out.utilization.append(
                UtilizationResult(str(hardware), g.height, skipped="not in the pack's [hardware] (no tdp_w)")
            )
            continue
        urow, uentry = _utilization(str(hardware), g, spec, gpu_time_u, opts)
        out.utilization.append(urow)
        if uentry is not None:
            out.hardware_entries[str(hardware)] = uentry
    return out
