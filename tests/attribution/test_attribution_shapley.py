"""Shapley attribution against the definition (all coalitions, plain Python) and hand-worked numbers."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from attribution_helpers import (
    brute_shapley,
    containment_game,
    credits,
    journey,
    paths_frame,
    rate_game,
    rows_to_frame,
    touch_frame,
)

from journeylens.attribution import Shapley
from journeylens.errors import SpecError


def test_hand_worked_containment():
    # each conversion split equally over the distinct channels of its journey:
    # a > b (2 conversions, 20): a 1, b 1 (10, 10); b (1, 5): b 1 (5); a > c > a (3, 30): a 1.5, c 1.5 (15, 15)
    frame = paths_frame([("a > b", 2, 20, 1), ("b", 1, 5, 4), ("a > c > a", 3, 30, 0), ("d", 0, 0, 9)])
    got = credits(Shapley().fit(frame))
    assert got == {"a": (2.5, 25), "b": (2, 15), "c": (1.5, 15), "d": (0, 0)}


def random_rows(rng: random.Random, n_channels: int):
    channels = "abcdefgh"[:n_channels]
    rows = []
    for _ in range(rng.randint(1, 9)):
        path = tuple(rng.choice(channels) for _ in range(rng.randint(1, 4)))
        conv = rng.randint(0, 3)
        rows.append((path, float(conv), float(conv * rng.randint(1, 20)), float(rng.randint(0, 3))))
    return rows


@pytest.mark.parametrize("seed", range(12))
def test_closed_form_equals_the_definition(seed):
    rng = random.Random(seed)
    rows = random_rows(rng, rng.randint(1, 6))
    players = sorted({c for path, *_ in rows for c in path})
    by_conversions = brute_shapley(players, containment_game(rows, 1))
    by_value = brute_shapley(players, containment_game(rows, 2))
    got = credits(Shapley().fit(rows_to_frame(rows)))
    assert set(got) == set(players)
    for channel in players:
        assert got[channel] == pytest.approx((by_conversions[channel], by_value[channel]), abs=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_exact_conversion_rate_equals_the_definition(seed):
    rng = random.Random(100 + seed)
    rows = random_rows(rng, rng.randint(1, 6))
    if not any(r[1] + r[3] for r in rows):
        rows.append((("a",), 1.0, 1.0, 1.0))
    players = sorted({c for path, *_ in rows for c in path})
    journeys = sum(r[1] + r[3] for r in rows)
    by_conversions = brute_shapley(players, rate_game(rows, 1))
    by_value = brute_shapley(players, rate_game(rows, 2))
    model = Shapley(value_function="conversion_rate").fit(rows_to_frame(rows))
    got = credits(model)
    for channel in players:
        expected = (by_conversions[channel] * journeys, by_value[channel] * journeys)
        assert got[channel] == pytest.approx(expected, abs=1e-9)
    assert sum(c for c, _ in got.values()) == pytest.approx(sum(r[1] for r in rows))


def test_conversion_rate_can_be_negative():
    # journeys: a alone converts 1 of 2; b alone converts 0 of 8; a > b converts 0 of 0 (absent)
    # v({a}) = 1/2, v({b}) = 0, v({a, b}) = 1/10
    # phi_a = 1/2 (v(a) - 0) + 1/2 (v(ab) - v(b)) = 1/4 + 1/20 = 0.3; phi_b = 1/2 * 0 + 1/2 (1/10 - 1/2) = -0.2
    # times 10 journeys: a 3, b -2 (sum 1 conversion)
    frame = paths_frame([("a", 1, 4, 1), ("b", 0, 0, 8)])
    got = credits(Shapley(value_function="conversion_rate").fit(frame))
    assert got["a"][0] == pytest.approx(3)
    assert got["b"][0] == pytest.approx(-2)


def test_conversion_rate_needs_nulls():
    with pytest.raises(SpecError, match="needs include_nulls=True"):
        Shapley(value_function="conversion_rate", include_nulls=False).fit(paths_frame([("a", 1, 1, 1)]))


def test_exact_limit():
    rows = [(f"c{i}", 1, 1, 1) for i in range(5)]
    with pytest.raises(SpecError, match="limited to max_exact_channels=4 channels, got 5") as info:
        Shapley(value_function="conversion_rate", max_exact_channels=4).fit(paths_frame(rows))
    assert info.value.code == "too_many_channels"


@pytest.mark.parametrize("value_function", ["containment", "conversion_rate"])
def test_sampling_is_unbiased_within_its_error(value_function):
    rows = random_rows(random.Random(7), 5) + [(("a", "b"), 2.0, 6.0, 3.0), (("c",), 1.0, 1.0, 5.0)]
    frame = rows_to_frame(rows)
    exact = Shapley(value_function=value_function).fit(frame).credits_
    sampled = Shapley(value_function=value_function, n_samples=4000, seed=3).fit(frame).credits_
    assert {"std_error", "std_error_bound"} <= set(sampled.columns)
    error = (sampled["attributed_conversions"] - exact["attributed_conversions"]).abs()
    # within 5 standard errors, and the standard error within its stated bound
    assert (error <= 5 * sampled["std_error"] + 1e-12).all()
    assert (sampled["std_error"] <= sampled["std_error_bound"] + 1e-12).all()
    # every permutation's contributions add up to v(all channels): the totals are exact
    assert sampled["attributed_conversions"].sum() == pytest.approx(exact["attributed_conversions"].sum())
    assert sampled["attributed_value"].sum() == pytest.approx(exact["attributed_value"].sum())


def test_sampling_many_channels():
    rng = np.random.default_rng(0)
    channels = [f"ch{i:02d}" for i in range(40)]
    paths = [" > ".join(rng.choice(channels, size=rng.integers(1, 6))) for _ in range(500)]
    conv = rng.integers(0, 3, size=500)
    frame = pd.DataFrame(
        {"path": paths, "conversions": conv, "value": conv * 2.0, "nulls": rng.integers(0, 4, 500)}
    )
    model = Shapley(value_function="conversion_rate", n_samples=200).fit(frame)
    assert len(model.credits_) == 40
    assert model.credits_["attributed_conversions"].sum() == pytest.approx(conv.sum())
    bound = model.credits_["std_error_bound"].iloc[0]
    # rho = the highest rate of one channel set; bound = rho * journeys / sqrt(200)
    assert bound > 0 and (model.credits_["std_error"] <= bound).all()
    with pytest.raises(SpecError, match="pass n_samples"):
        Shapley(value_function="conversion_rate").fit(frame)


def test_sampling_is_reproducible():
    frame = rows_to_frame(random_rows(random.Random(2), 5))
    a = Shapley(n_samples=50, seed=4).fit(frame).credits_
    b = Shapley(n_samples=50, seed=4).fit(frame).credits_
    pd.testing.assert_frame_equal(a, b)


def test_journey_credit_splits_a_channel_share_over_its_touches():
    # jo: ad > email > ad converts (value 12): ad 1/2 (two touches, 1/4 each), email 1/2
    frame = touch_frame(
        {"jo": journey([("ad", "2024-01-01"), ("email", "2024-01-02"), ("ad", "2024-01-03")], value=12)}
    )
    table = Shapley().fit(frame).journey_credit_
    assert list(table["attributed_conversions"]) == pytest.approx([0.25, 0.5, 0.25])
    assert list(table["attributed_value"]) == pytest.approx([3, 6, 3])
    assert Shapley(value_function="conversion_rate").fit(frame).journey_credit_ is None
