"""Interval maths: worked examples, scipy as the reference, and the defining equations as properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from journeylens.analyses import stats


def test_wilson_worked_example():
    # 8 of 10 at 95 %: z = 1.959964, z² = 3.841459, p = 0.8
    # denominator 1 + z²/n = 1.384146; centre (0.8 + 0.192073) / 1.384146 = 0.716740
    # half-width z·sqrt(0.8·0.2/10 + z²/400) / 1.384146 = 1.959964·sqrt(0.025604) / 1.384146 = 0.226578
    # -> (0.490162, 0.943318)
    low, high = stats.wilson(8, 10)
    assert float(low) == pytest.approx(0.490162, abs=1e-6)
    assert float(high) == pytest.approx(0.943318, abs=1e-6)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize(
    ("k", "n"), [(0, 1), (1, 1), (0, 7), (3, 7), (7, 7), (1, 30), (15, 30), (250, 1000), (999, 1000)]
)
def test_wilson_matches_scipy(k, n, confidence):
    expected = sps.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = stats.wilson(k, n, confidence)
    assert float(low) == pytest.approx(expected.low, abs=1e-12)
    assert float(high) == pytest.approx(expected.high, abs=1e-12)


def test_wilson_vectorised_and_empty():
    low, high = stats.wilson([0, 5, 0], [10, 10, 0])
    assert low[0] == 0.0 and 0 < high[0] < 0.35
    assert low[1] < 0.5 < high[1]
    assert math.isnan(low[2]) and math.isnan(high[2])
    assert math.isnan(stats.share(0, 0)) and stats.share(1, 4) == 0.25


def test_bad_confidence_is_refused():
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        stats.wilson(1, 2, confidence=1.0)


def test_t_interval_worked_example():
    # 2, 3, 5, 6: mean 4, sd sqrt(10/3) = 1.825742, se 0.912871, t(3; 0.975) = 3.182446
    # half-width 2.905163 -> (1.094837, 6.905163)
    mean, low, high = stats.t_interval(4, 2 + 3 + 5 + 6, 4 + 9 + 25 + 36)
    assert float(mean) == 4.0
    assert float(low) == pytest.approx(1.094837, abs=1e-6)
    assert float(high) == pytest.approx(6.905163, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=2, max_size=60), st.sampled_from([0.9, 0.95]))
def test_t_interval_matches_scipy(values, confidence):
    x = np.array(values, dtype=float)
    mean, low, high = stats.t_interval(len(x), x.sum(), (x * x).sum(), confidence)
    assert float(mean) == pytest.approx(x.mean())
    if x.std() == 0:
        assert float(low) == pytest.approx(float(high))
        return
    lo, hi = sps.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert float(low) == pytest.approx(lo, abs=1e-9)
    assert float(high) == pytest.approx(hi, abs=1e-9)


def test_t_interval_needs_two():
    mean, low, high = stats.t_interval(1, 5.0, 25.0)
    assert float(mean) == 5.0 and math.isnan(low) and math.isnan(high)


def test_nps_worked_example():
    # 5 promoters, 3 passives, 2 detractors of 10: NPS = 50 % - 20 % = 30
    # adjusted Wald: n' = 13, p' = 5.75/13 = 0.442308, d' = 2.75/13 = 0.211538, centre 0.230769
    # var = (0.653846 - 0.053254) / 13 = 0.046199, se 0.214940, z·se = 0.421277
    # -> (-19.0508, 65.2045)
    nps, low, high = stats.nps_interval(5, 2, 10)
    assert float(nps) == 30.0
    assert float(low) == pytest.approx(-19.0506, abs=1e-3)
    assert float(high) == pytest.approx(65.2045, abs=1e-3)


def test_nps_extremes_stay_in_range():
    nps, low, high = stats.nps_interval([10, 0, 0], [0, 10, 0], [10, 10, 0])
    assert nps[0] == 100 and low[0] < 100 and high[0] == pytest.approx(100.0)
    assert nps[1] == -100 and high[1] > -100 and low[1] == pytest.approx(-100.0)
    assert math.isnan(nps[2])


def test_ratio_worked_example_close_to_katz():
    # 30/100 vs 20/100: ratio 1.5; Katz's log interval exp(ln 1.5 ± 1.96·sqrt(1/30 − 1/100 + 1/20 − 1/100))
    # = (0.9200, 2.4460); MOVER-R from the Wilson intervals is close: (0.9234, 2.4452)
    ratio, low, high = stats.ratio_interval(30, 100, 20, 100)
    assert float(ratio) == pytest.approx(1.5)
    assert float(low) == pytest.approx(0.9234, abs=1e-4)
    assert float(high) == pytest.approx(2.4452, abs=1e-4)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400), st.integers(1, 400), st.data())
def test_ratio_bounds_solve_the_mover_equation(n1, n2, data):
    k1 = data.draw(st.integers(0, n1))
    k2 = data.draw(st.integers(1, n2))
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = stats.wilson(k1, n1), stats.wilson(k2, n2)
    ratio, low, high = (float(v) for v in stats.ratio_interval(k1, n1, k2, n2))
    assert ratio == pytest.approx(p1 / p2)
    assert 0.0 <= low <= ratio + 1e-12 and ratio <= high + 1e-12
    # the lower bound L solves (p1 − L·p2)² = (p1 − l1)² + L²·(u2 − p2)²; the upper bound U likewise with u1, l2
    lhs, rhs = (p1 - low * p2) ** 2, (p1 - l1) ** 2 + low**2 * (u2 - p2) ** 2
    assert lhs == pytest.approx(rhs, rel=1e-6, abs=1e-9)
    if math.isfinite(high):
        lhs, rhs = (p1 - high * p2) ** 2, (u1 - p1) ** 2 + high**2 * (p2 - l2) ** 2
        assert lhs == pytest.approx(rhs, rel=1e-6, abs=1e-9)


def test_ratio_interval_covers():
    # a Monte Carlo check with a fixed seed: 95 % intervals cover the true ratio about 95 % of the time
    rng = np.random.default_rng(7)
    n1, n2, p1, p2 = 150, 250, 0.3, 0.2
    k1 = rng.binomial(n1, p1, 4000)
    k2 = rng.binomial(n2, p2, 4000)
    _, low, high = stats.ratio_interval(k1, n1, k2, n2)
    coverage = np.mean((low <= p1 / p2) & (p1 / p2 <= high))
    assert 0.93 <= coverage <= 0.97


def test_ratio_undefined_without_a_baseline():
    ratio, low, high = stats.ratio_interval([3, 3], [10, 10], [0, 2], [10, 0])
    assert np.isnan(ratio).all() and np.isnan(low).all() and np.isnan(high).all()
