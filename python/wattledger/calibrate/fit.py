"""The calibration's arithmetic: token coefficients, a hardware's utilization, the held-out
band. Arrays in, numbers out; no I/O, no names (``calibrate.run`` supplies the groups).

Why this fit (docs/calibration.md has the long form): a request's accelerator energy is a sum
over its tokens, so its variance grows with its size; a quasi-Poisson model (variance
proportional to the mean) with an identity link (energy = a * input + b * output, the very
formula the ``tokens`` method applies) weighs each request by 1/mean. Its score equations
make the fitted total equal the measured total on the training records, which is what a
ledger of totals needs; ordinary least squares would let a few long requests decide the
coefficients and would not preserve the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

#: Coverage the band is built for (the issue's "half-width that holds 90 % of requests").
COVERAGE = 0.9
#: Confidence that a band holds at least COVERAGE of new requests (see conformal_rank).
CONFIDENCE = 0.9
#: IRLS stops when no coefficient moves by more than this share.
_TOL = 1e-10
_MAX_ITER = 200
#: A fitted mean below this share of the average measured energy is floored there, so a
#: request the model predicts near zero cannot take an infinite weight 1/mu.
_MU_FLOOR = 1e-9
#: Above this condition number of the weighted normal matrix the input and output columns
#: are (nearly) proportional: their split cannot be identified from the data.
_MAX_CONDITION = 1e12


@dataclass(frozen=True)
class TokenFit:
    """Accelerator Wh per token (not per 1000) of one (model, hardware), and how it was got."""

    wh_per_input: float
    wh_per_output: float
    #: ``both``, ``output only``, ``input only``: which regressors the final fit kept.
    kept: str
    iterations: int
    #: Why a regressor was dropped, if one was (None when both were fitted freely).
    note: str | None


def _ratio(energy: Array, x: Array, weight: Array) -> float:
    """The one-regressor quasi-Poisson (identity link) estimate: sum(w E) / sum(w x)."""
    denominator = float(np.sum(weight * x))
    return float(np.sum(weight * energy)) / denominator if denominator > 0 else 0.0


def fit_tokens(input_tokens: Array, output_tokens: Array, energy_wh: Array, weight: Array) -> TokenFit:
    """Non-negative quasi-Poisson fit of ``energy_wh ~ a * input_tokens + b * output_tokens``
    (no intercept) by iteratively reweighted least squares with weights ``weight / mu``.

    ``weight`` is the number of requests each row stands for. Non-negativity: when the free
    fit gives a negative coefficient, that regressor is dropped and the other one refitted
    alone, whose estimate is the ratio sum(w E) / sum(w x). Both ways the fitted total
    equals the measured total over the rows with tokens (the score equations' property)."""
    # A request without tokens says nothing about a per-token coefficient (the formula has no
    # intercept and gives it 0): it is left out, so the total is preserved over the others.
    some = (input_tokens + output_tokens) > 0
    x = np.column_stack([input_tokens[some], output_tokens[some]]).astype(np.float64)
    e = energy_wh[some].astype(np.float64)
    w = weight[some].astype(np.float64)
    has_in, has_out = bool(np.any(w * x[:, 0] > 0)), bool(np.any(w * x[:, 1] > 0))
    if not has_out:
        return TokenFit(_ratio(e, x[:, 0], w), 0.0, "input only", 0, "no output tokens in the records")
    if not has_in:
        return TokenFit(0.0, _ratio(e, x[:, 1], w), "output only", 0, "no input tokens in the records")
    total = float(np.sum(w * e))
    if total <= 0:
        return TokenFit(0.0, 0.0, "both", 0, "no energy measured")
    floor = _MU_FLOOR * total / float(np.sum(w))
    measured = e > 0

    def quasi_likelihood(beta: Array) -> float:
        # sum w (E log mu - mu): concave in the coefficients (mu is linear in them), so steps
        # that do not lower it reach the one maximum; -inf where a measured request gets mu <= 0.
        mu = x @ beta
        if np.any(mu[measured] <= 0):
            return -math.inf
        return float(np.sum(w[measured] * e[measured] * np.log(mu[measured])) - np.sum(w * mu))

    # Start from the one-regressor fit on all tokens: a positive mean for every row (starting
    # from the measured values, as GLMs often do, gives a row measured at 0 an infinite weight).
    beta = np.full(2, _ratio(e, x[:, 0] + x[:, 1], w))
    q = quasi_likelihood(beta)
    iterations = 0
    for iterations in range(1, _MAX_ITER + 1):
        ww = w / np.maximum(x @ beta, floor)
        xtwx = x.T @ (x * ww[:, None])
        if not np.all(np.isfinite(xtwx)) or np.linalg.cond(xtwx) > _MAX_CONDITION:
            # Input and output tokens move together (e.g. fixed-length prompts): the data
            # cannot split the energy between them, so all of it goes on output tokens.
            b = _ratio(e, x[:, 1], w)
            return TokenFit(0.0, b, "output only", iterations, "input and output tokens are proportional")
        step = np.linalg.solve(xtwx, x.T @ (ww * e)) - beta
        # Step halving (the usual GLM safeguard): a full IRLS step can overshoot.
        t = 1.0
        while quasi_likelihood(beta + t * step) < q and t > 1e-12:
            t /= 2
        moved = float(np.max(np.abs(t * step) / np.maximum(np.abs(beta + t * step), 1e-300)))
        beta = beta + t * step
        q = quasi_likelihood(beta)
        if moved < _TOL:
            break
    a, b = float(beta[0]), float(beta[1])
    if a < 0:
        return TokenFit(0.0, _ratio(e, x[:, 1], w), "output only", iterations, "a free fit gave input < 0")
    if b < 0:
        return TokenFit(_ratio(e, x[:, 0], w), 0.0, "input only", iterations, "a free fit gave output < 0")
    return TokenFit(a, b, "both", iterations, None)


@dataclass(frozen=True)
class UtilizationFit:
    utilization: float
    #: The value before clipping to [0, 1] (equal to ``utilization`` when it was inside).
    raw: float


def fit_utilization(
    measured_wh: Array, idle_part_wh: Array, range_part_wh: Array, weight: Array
) -> UtilizationFit | None:
    """The utilization u that makes the gpu_time method's weighted total match the measured
    one, where a request's gpu_time energy is ``idle_part + u * range_part`` (Wh:
    duration x gpus x idle_w, resp. (tdp_w - idle_w), / concurrency / 3600). Clipped to
    [0, 1]; None when the hardware has no power range above idle (u changes nothing)."""
    total_range = float(np.sum(weight * range_part_wh))
    if total_range <= 0:
        return None
    raw = (float(np.sum(weight * measured_wh)) - float(np.sum(weight * idle_part_wh))) / total_range
    return UtilizationFit(min(max(raw, 0.0), 1.0), raw)


def relative_residuals(measured: Array, estimated: Array) -> Array:
    """|measured / estimated - 1| per request: the half-width a band around the estimate
    needs to hold the measured value (infinite for an estimate of 0 with energy measured)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(measured / estimated - 1.0)
    # 0/0: nothing estimated, nothing measured: the band [0, 0] holds it.
    return np.where((estimated == 0) & (measured == 0), 0.0, np.where(estimated == 0, np.inf, r))


def conformal_rank(requests: float, coverage: float = COVERAGE, confidence: float | None = CONFIDENCE) -> int:
    """The rank (1-based, in requests) of the residual a band of ``coverage`` is read at.

    Split-conformal: ceil((n + 1) * coverage) holds a new request with probability at least
    ``coverage`` on average over calibration sets; for one calibration set the share of new
    requests held is random around it (it is Beta(k, n + 1 - k)), so half the time below it.
    With ``confidence``, the rank is the smallest k for which that share is below
    ``coverage`` with probability at most 1 - confidence (P(Binomial(n, coverage) >= k)),
    never below the marginal rank: the band then holds >= ``coverage`` of new requests with
    that confidence."""
    marginal = math.ceil((requests + 1.0) * coverage)
    if confidence is None:
        return marginal
    n = int(requests)
    if n > 200_000:  # the binomial's normal approximation is exact to well below one rank
        z = _normal_quantile(confidence)
        return max(marginal, math.ceil(n * coverage + z * math.sqrt(n * coverage * (1 - coverage)) + 0.5))
    j = np.arange(n + 1, dtype=np.float64)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])
    log_pmf = (
        log_factorial[n]
        - log_factorial
        - log_factorial[::-1]
        + j * math.log(coverage)
        + (n - j) * math.log1p(-coverage)
    )
    tail = np.cumsum(np.exp(log_pmf)[::-1])[::-1]  # tail[k] = P(Binomial >= k)
    ok = np.nonzero(tail <= 1.0 - confidence)[0]
    k = int(ok[0]) if len(ok) else n + 1
    return max(marginal, k)


def _normal_quantile(p: float) -> float:
    # Bisection on erf: called once per group, precise far beyond one rank.
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return lo


def conformal_halfwidth(
    residuals: Array, weight: Array, coverage: float = COVERAGE, confidence: float | None = CONFIDENCE
) -> float:
    """The conformal half-width: the residual at :func:`conformal_rank` of the n held-out
    requests (rows weigh ``weight`` requests). With too few requests for that rank the largest
    residual is returned: the guarantee then does not hold, and ``calibrate`` says so."""
    if len(residuals) == 0:
        return math.nan
    order = np.argsort(residuals, kind="stable")
    r, cum = residuals[order], np.cumsum(weight[order])
    rank = conformal_rank(float(cum[-1]), coverage, confidence)
    at = int(np.searchsorted(cum, rank - 1e-9 * max(rank, 1.0), side="left"))
    return float(r[min(at, len(r) - 1)])


def enough_for_conformal(
    requests: float, coverage: float = COVERAGE, confidence: float | None = CONFIDENCE
) -> bool:
    """Whether ``requests`` held-out requests reach :func:`conformal_rank`."""
    return conformal_rank(requests, coverage, confidence) <= requests + 1e-9


def weighted_median(values: Array, weight: Array) -> float:
    """The value at half the total weight (the lower median on a tie)."""
    if len(values) == 0:
        return math.nan
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weight[order])
    return float(values[order][int(np.searchsorted(cum, cum[-1] / 2.0, side="left"))])


def band_covers(measured: Array, estimated: Array, halfwidth: float) -> npt.NDArray[np.bool_]:
    """Whether each measured value lies in the engine's band around its estimate:
    [max(0, x * (1 - u)), x * (1 + u)] (methodology section 4: low floors at 0)."""
    low = np.maximum(estimated * (1.0 - halfwidth), 0.0)
    return (measured >= low) & (measured <= estimated * (1.0 + halfwidth))


def cross_coverage(residuals: Array, weight: Array, halves: npt.NDArray[np.bool_]) -> float:
    """Band coverage on requests the band was not built from: the held-out rows are split in
    two halves; the conformal half-width of each half is checked on the other half, and the
    two shares (by requests) are pooled. NaN when a half is empty. The pack's own half-width
    comes from all held-out rows; this is how well such a band holds on new requests."""
    a, b = halves, ~halves
    if not a.any() or not b.any():
        return math.nan
    covered = 0.0
    for build, check in ((a, b), (b, a)):
        u = conformal_halfwidth(residuals[build], weight[build])
        covered += float(np.sum(weight[check] * (residuals[check] <= u)))
    return covered / float(np.sum(weight))
