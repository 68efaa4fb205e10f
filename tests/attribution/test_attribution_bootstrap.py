"""The bootstrap: what it resamples, and that each model's fast path equals refitting on every resample."""

from __future__ import annotations

import random

import numpy as np
import pytest
from attribution_helpers import paths_frame, rows_to_frame

from journeylens.attribution import (
    AttributionModel,
    Bootstrap,
    LastTouch,
    Linear,
    Markov,
    Shapley,
    read_paths,
)
from journeylens.errors import SpecError


def test_interval_of_a_binomial_count():
    # 200 journeys: a converts 50 of 100, b 20 of 100. Last touch gives a its conversions; resampling 200
    # journeys, a's count is Binomial(200, 1/4): mean 50, sd sqrt(200 * 1/4 * 3/4) = 6.12 -> 95% about 50 +- 12
    frame = paths_frame([("a", 50, 500, 50), ("b", 20, 200, 80)])
    ci = LastTouch(bootstrap=Bootstrap(n=400, seed=0)).fit(frame).credits_.set_index("channel")
    assert 35 <= ci.loc["a", "ci_low"] <= 42
    assert 58 <= ci.loc["a", "ci_high"] <= 65
    assert ci.loc["a", "ci_low"] < ci.loc["a", "attributed_conversions"] < ci.loc["a", "ci_high"]


def test_without_nulls_the_conversions_are_fixed():
    # only converting journeys are resampled: with one channel, every resample credits all 70 to it
    frame = paths_frame([("a", 70, 700, 30)])
    ci = LastTouch(include_nulls=False, bootstrap=Bootstrap(n=50)).fit(frame).credits_
    assert (ci["ci_low"].iloc[0], ci["ci_high"].iloc[0]) == (70, 70)


def test_value_target():
    # value per conversion is 10 on a: the value interval is 10 x the conversion interval
    frame = paths_frame([("a", 50, 500, 50), ("b", 20, 200, 80)])
    by_conversions = LastTouch(bootstrap=Bootstrap(n=100, seed=3)).fit(frame).credits_
    by_value = LastTouch(target="value", bootstrap=Bootstrap(n=100, seed=3)).fit(frame).credits_
    assert by_value["ci_low"].iloc[0] == pytest.approx(10 * by_conversions["ci_low"].iloc[0])
    assert by_value["ci_high"].iloc[0] == pytest.approx(10 * by_conversions["ci_high"].iloc[0])


def test_reproducible_and_seed_dependent():
    frame = rows_to_frame(_rows(1))
    a = Markov(bootstrap=Bootstrap(n=30, seed=1)).fit(frame).credits_
    b = Markov(bootstrap=Bootstrap(n=30, seed=1)).fit(frame).credits_
    c = Markov(bootstrap=Bootstrap(n=30, seed=2)).fit(frame).credits_
    assert a.equals(b)
    assert not a[["ci_low", "ci_high"]].equals(c[["ci_low", "ci_high"]])


def test_fractional_counts_cannot_be_resampled():
    with pytest.raises(SpecError, match="whole numbers"):
        Linear(bootstrap=Bootstrap(n=10)).fit(paths_frame([("a", 0.5, 1, 0)]))


@pytest.mark.parametrize("bad", [{"n": 1}, {"alpha": 0.7}, {"seed": -1}, {"n": 2.5}])
def test_bootstrap_validates(bad):
    with pytest.raises(SpecError, match="parameter of Bootstrap"):
        Bootstrap(**bad)


def _rows(seed: int):
    rng = random.Random(seed)
    rows = []
    for _ in range(25):
        path = tuple(rng.choice("abcd") for _ in range(rng.randint(1, 5)))
        conv = rng.randint(0, 4)
        rows.append((path, float(conv), float(conv * rng.randint(1, 9)), float(rng.randint(0, 6))))
    return rows


@pytest.mark.parametrize(
    "model",
    [
        Linear(),
        Linear(target="value"),
        Markov(order=2),
        Markov(target="value"),
        Shapley(),
        Shapley(value_function="conversion_rate"),
    ],
    ids=repr,
)
def test_fast_replicates_equal_refitting(model):
    table = read_paths(rows_to_frame(_rows(4)))
    prepared = model.prepare(table)
    rng = np.random.default_rng(0)
    conv = rng.poisson(prepared.conversions, size=(6, prepared.n_rows)).astype(float)
    nulls = rng.poisson(prepared.nulls, size=(6, prepared.n_rows)).astype(float)
    value = conv * 3.0
    model._validate_params()
    fast = model._replicator(prepared)(conv, value, nulls)
    slow = AttributionModel._replicator(model, prepared)(conv, value, nulls)
    assert fast == pytest.approx(slow, abs=1e-9)
