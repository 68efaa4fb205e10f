"""Interval maths shared by the analyses, on small aggregates (counts, sums) in numpy.

Every function is vectorised: it takes scalars or arrays and returns arrays (``float64``); a figure that
cannot be computed (no observations, a ratio over zero) is ``nan``, never an exception.

- :func:`wilson` — the Wilson score interval of a share (Wilson 1927); it stays inside [0, 1] and keeps a
  sensible width at 0 % and 100 %, unlike the normal ("Wald") interval.
- :func:`t_interval` — the Student t interval of a mean, from the count, the sum and the sum of squares
  (what an engine hands back from ``count()``, ``sum(x)``, ``sum(x * x)``).
- :func:`nps_interval` — the Net Promoter Score (% promoters − % detractors) with the adjusted-Wald
  interval of Rocks (2016, *The American Statistician* 70:4): add 3/4 of a promoter, 3/4 of a detractor and
  3/2 of a passive, then use the normal interval of a difference of two trinomial shares.
- :func:`ratio_interval` — the ratio of two independent shares (a lift) with the MOVER-R interval built from
  the two Wilson intervals (Donner & Zou 2012, *Stat Methods Med Res* 21:4; Newcombe 2013).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as _stats

Array = np.ndarray


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive); got {confidence!r}")
    return float(_stats.norm.ppf(0.5 + confidence / 2.0))


def _f(x: Any) -> Array:
    return np.asarray(x, dtype=np.float64)


def wilson(successes: Any, n: Any, confidence: float = 0.95) -> tuple[Array, Array]:
    """The Wilson score interval (low, high) of ``successes / n``; ``nan`` where ``n`` is 0.

    low, high = (p + z²/2n ∓ z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)
    """
    k, n = np.broadcast_arrays(_f(successes), _f(n))
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
        low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    # exact ends: no successes -> low 0, all successes -> high 1 (rounding can leave 1e-17 otherwise)
    low = np.where((n > 0) & (k <= 0), 0.0, low)
    high = np.where((n > 0) & (k >= n), 1.0, high)
    return low, high


def share(successes: Any, n: Any) -> Array:
    """``successes / n``, ``nan`` where ``n`` is 0."""
    k, n = np.broadcast_arrays(_f(successes), _f(n))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, k / np.where(n > 0, n, 1.0), np.nan)


def mean_sd(n: Any, total: Any, total_sq: Any) -> tuple[Array, Array]:
    """Mean and sample standard deviation from count, sum and sum of squares (sd ``nan`` below 2)."""
    n, s, ss = np.broadcast_arrays(_f(n), _f(total), _f(total_sq))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, s / np.where(n > 0, n, 1.0), np.nan)
        # the textbook formula loses a little precision; fine for bounded scores, and clipped at 0
        var = (ss - s * s / np.where(n > 0, n, 1.0)) / np.where(n > 1, n - 1.0, 1.0)
        sd = np.where(n > 1, np.sqrt(np.clip(var, 0.0, None)), np.nan)
    return mean, sd


def t_interval(n: Any, total: Any, total_sq: Any, confidence: float = 0.95) -> tuple[Array, Array, Array]:
    """Mean and its Student t interval (mean, low, high) from count, sum and sum of squares.

    low, high = mean ∓ t(n−1) · sd / sqrt(n); ``nan`` bounds below 2 observations.
    """
    _z(confidence)
    n = _f(n)
    mean, sd = mean_sd(n, total, total_sq)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(n > 1, n - 1.0, 1.0)
        t = _stats.t.ppf(0.5 + confidence / 2.0, df)
        half = np.where(n > 1, t * sd / np.sqrt(np.where(n > 0, n, 1.0)), np.nan)
    return mean, mean - half, mean + half


def nps_interval(
    promoters: Any, detractors: Any, n: Any, confidence: float = 0.95
) -> tuple[Array, Array, Array]:
    """NPS in points (−100..100) and its adjusted-Wald interval (Rocks 2016), clipped to [−100, 100].

    nps = 100 · (P − D) / n. Interval: n' = n + 3, p' = (P + 3/4) / n', d' = (D + 3/4) / n',
    centre = p' − d', var = (p' + d' − (p' − d')²) / n', bounds = 100 · (centre ∓ z · sqrt(var)).
    """
    p, d, n = np.broadcast_arrays(_f(promoters), _f(detractors), _f(n))
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        nps = np.where(n > 0, 100.0 * (p - d) / np.where(n > 0, n, 1.0), np.nan)
        n2 = n + 3.0
        p2 = (p + 0.75) / n2
        d2 = (d + 0.75) / n2
        centre = p2 - d2
        half = z * np.sqrt(np.clip(p2 + d2 - centre * centre, 0.0, None) / n2)
        low = np.where(n > 0, np.clip(100.0 * (centre - half), -100.0, 100.0), np.nan)
        high = np.where(n > 0, np.clip(100.0 * (centre + half), -100.0, 100.0), np.nan)
    return nps, low, high


def ratio_interval(
    k1: Any, n1: Any, k2: Any, n2: Any, confidence: float = 0.95
) -> tuple[Array, Array, Array]:
    """The ratio (k1/n1) / (k2/n2) and its MOVER-R interval from the two Wilson intervals.

    With shares p1, p2 and their Wilson bounds (l1, u1), (l2, u2):

        low  = (p1·p2 − sqrt((p1·p2)² − l1·u2·(2·p1 − l1)·(2·p2 − u2))) / (u2·(2·p2 − u2))
        high = (p1·p2 + sqrt((p1·p2)² − u1·l2·(2·p1 − u1)·(2·p2 − l2))) / (l2·(2·p2 − l2))

    The ratio is ``nan`` when p2 is 0 or a group is empty; ``high`` is ``inf`` when l2 is 0.
    """
    k1, n1, k2, n2 = np.broadcast_arrays(_f(k1), _f(n1), _f(k2), _f(n2))
    p1, p2 = share(k1, n1), share(k2, n2)
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p2 > 0, p1 / p2, np.nan)
        pp = p1 * p2
        a_low = u2 * (2.0 * p2 - u2)
        root_low = np.sqrt(np.clip(pp * pp - l1 * u2 * (2.0 * p1 - l1) * (2.0 * p2 - u2), 0.0, None))
        # a_low = 0 (u2 = 2·p2) leaves a linear equation: low = l1·(2·p1 − l1) / (2·p1·p2)
        linear = np.where(pp > 0, l1 * (2.0 * p1 - l1) / np.where(pp > 0, 2.0 * pp, 1.0), 0.0)
        low = np.where(a_low != 0, (pp - root_low) / np.where(a_low != 0, a_low, 1.0), linear)
        a_high = l2 * (2.0 * p2 - l2)
        root_high = np.sqrt(np.clip(pp * pp - u1 * l2 * (2.0 * p1 - u1) * (2.0 * p2 - l2), 0.0, None))
        high = np.where(a_high > 0, (pp + root_high) / np.where(a_high > 0, a_high, 1.0), np.inf)
        low = np.clip(low, 0.0, None)
    valid = (p2 > 0) & np.isfinite(p1)
    return ratio, np.where(valid, low, np.nan), np.where(valid, high, np.nan)
