"""Markov attribution against hand-worked numbers and a plain-Python value iteration."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from attribution_helpers import absorption, credits, markov_chain, paths_frame, rows_to_frame

from journeylens.attribution import Markov, read_paths
from journeylens.attribution import markov as markov_module
from journeylens.errors import SpecError


def test_hand_worked_order_1():
    # journeys: a > b converts (value 30); b does not; a does not.
    # start -> a 2/3, start -> b 1/3; a -> b 1/2, a -> null 1/2; b -> conversion 1/2, b -> null 1/2
    # P = 2/3 * 1/2 * 1/2 + 1/3 * 1/2 = 1/3
    # without a: 1/3 * 1/2 = 1/6 -> removal effect 1 - (1/6) / (1/3) = 1/2; without b: 0 -> 1
    # shares 1/2 : 1 -> a 1/3, b 2/3 of the 1 conversion
    # value: b pays 30 over its 2 visits -> 15 per visit; E[value] = P(reach b) * 15 = 2/3 * 15 = 10;
    # without a: 1/3 * 15 = 5 (effect 1/2), without b: 0 (effect 1) -> same shares, a 10, b 20
    model = Markov().fit(paths_frame([("a > b", 1, 30, 0), ("b", 0, 0, 1), ("a", 0, 0, 1)]))
    assert model.conversion_probability_ == pytest.approx(1 / 3)
    assert model.value_per_journey_ == pytest.approx(10)
    got = credits(model)
    assert got["a"] == pytest.approx((1 / 3, 10))
    assert got["b"] == pytest.approx((2 / 3, 20))
    assert list(model.credits_["removal_effect"]) == pytest.approx([1 / 2, 1])
    assert list(model.credits_["value_removal_effect"]) == pytest.approx([1 / 2, 1])
    assert model.n_states_ == 2


def test_transitions_table():
    model = Markov().fit(paths_frame([("a > b", 1, 30, 0), ("b", 0, 0, 1), ("a", 0, 0, 1)]))
    rows = {
        (f, t): p
        for f, t, p in model.transitions_[["from_state", "to_state", "probability"]].itertuples(index=False)
    }
    assert rows == pytest.approx(
        {
            ("(start)", "a"): 2 / 3, ("(start)", "b"): 1 / 3,
            ("a", "b"): 1 / 2, ("a", "(null)"): 1 / 2,
            ("b", "(conversion)"): 1 / 2, ("b", "(null)"): 1 / 2,
        }
    )  # fmt: skip
    by_state = model.transitions_.groupby("from_state")["probability"].sum()
    assert by_state.to_numpy() == pytest.approx(np.ones(len(by_state)))


def test_order_2_state_labels():
    model = Markov(order=2).fit(paths_frame([("a > b", 1, 1, 0)]))
    edges = set(model.transitions_[["from_state", "to_state"]].itertuples(index=False, name=None))
    assert edges == {("(start)", "(start) > a"), ("(start) > a", "a > b"), ("a > b", "(conversion)")}


def random_rows(rng: random.Random, channels: str = "abcd", n_paths: int = 8, max_len: int = 5):
    rows = []
    for _ in range(n_paths):
        path = tuple(rng.choice(channels) for _ in range(rng.randint(1, max_len)))
        conv = rng.randint(0, 3)
        rows.append((path, float(conv), float(conv * rng.randint(1, 50)), float(rng.randint(0, 3))))
    if not any(r[1] for r in rows):
        rows[0] = (rows[0][0], 1.0, 7.0, rows[0][3])
    return rows


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("repeats", ["collapse", "keep"])
@pytest.mark.parametrize("seed", range(6))
def test_matches_plain_python_value_iteration(order, repeats, seed):
    rng = random.Random(seed * 10 + order)
    rows = random_rows(rng)
    include_nulls = seed % 3 != 2
    model = Markov(order=order, repeats=repeats, include_nulls=include_nulls).fit(rows_to_frame(rows))
    counts, value_end = markov_chain(rows, order, repeats=repeats, include_nulls=include_nulls)
    p, ev = absorption(counts, value_end, order)
    assert model.conversion_probability_ == pytest.approx(p, abs=1e-9)
    assert model.value_per_journey_ == pytest.approx(ev, rel=1e-9, abs=1e-9)
    for channel, effect, value_effect in model.credits_[
        ["channel", "removal_effect", "value_removal_effect"]
    ].itertuples(index=False):
        p_c, ev_c = absorption(counts, value_end, order, removed=channel)
        assert effect == pytest.approx(1 - p_c / p if p else 0.0, abs=1e-9)
        assert value_effect == pytest.approx(1 - ev_c / ev if ev else 0.0, abs=1e-9)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_iterative_solver_matches_lu(order, monkeypatch):
    rows = random_rows(random.Random(order), channels="abcdef", n_paths=40, max_len=7)
    frame = rows_to_frame(rows)
    direct = Markov(order=order, repeats="keep").fit(frame).credits_
    monkeypatch.setattr(markov_module, "DENSE_LIMIT", 0)
    iterative = Markov(order=order, repeats="keep").fit(frame).credits_
    for column in ("attributed_conversions", "attributed_value", "removal_effect", "value_removal_effect"):
        assert iterative[column].to_numpy() == pytest.approx(direct[column].to_numpy(), rel=1e-12, abs=1e-13)


def test_collapse_and_keep_agree_in_order_1():
    # a self-loop only delays the walk; where it goes next is unchanged
    rows = random_rows(random.Random(3), channels="abc", n_paths=30, max_len=8)
    frame = rows_to_frame(rows)
    keep = Markov(repeats="keep").fit(frame).credits_
    collapse = Markov(repeats="collapse").fit(frame).credits_
    assert keep["removal_effect"].to_numpy() == pytest.approx(
        collapse["removal_effect"].to_numpy(), abs=1e-12
    )


def test_collapse_keeps_the_history_that_keep_forgets_in_order_2():
    # c > a > a > b converts; d > a > a > e and c > a > e do not. start -> (c) 2/3, (d) 1/3.
    # collapse: c > a > b, d > a > e, c > a > e. (c, a) -> (a, b) 1/2, (a, e) 1/2; (d, a) -> (a, e).
    #   P = 2/3 * 1/2 = 1/3; every converting walk starts with c -> removal effect of c = 1
    # keep: (c, a) -> (a, a) 1/2, (a, e) 1/2; (d, a) -> (a, a); (a, a) -> (a, b) 1/2, (a, e) 1/2.
    #   P = 2/3 * 1/2 * 1/2 + 1/3 * 1/2 = 1/3; without c: 1/3 * 1/2 = 1/6 -> removal effect 1/2:
    #   the state (a, a) has forgotten whether c or d came first
    frame = paths_frame([("c > a > a > b", 1, 1, 0), ("d > a > a > e", 0, 0, 1), ("c > a > e", 0, 0, 1)])
    keep = Markov(order=2, repeats="keep").fit(frame)
    collapse = Markov(order=2, repeats="collapse").fit(frame)
    assert keep.conversion_probability_ == pytest.approx(1 / 3)
    assert collapse.conversion_probability_ == pytest.approx(1 / 3)
    assert dict(zip(collapse.credits_["channel"], collapse.credits_["removal_effect"], strict=True))["c"] == (
        pytest.approx(1)
    )
    assert dict(zip(keep.credits_["channel"], keep.credits_["removal_effect"], strict=True))[
        "c"
    ] == pytest.approx(0.5)


def test_order_at_least_path_length_reproduces_the_paths():
    # with every state a whole prefix, removing c kills exactly the journeys through c:
    # removal effect = conversions on paths with c / all conversions
    rows = [
        (("a", "b", "c"), 2.0, 20.0, 1.0),
        (("b", "c"), 1.0, 5.0, 3.0),
        (("a", "d"), 0.0, 0.0, 4.0),
        (("b",), 1.0, 1.0, 0.0),
    ]
    model = Markov(order=3).fit(rows_to_frame(rows))
    effects = dict(zip(model.credits_["channel"], model.credits_["removal_effect"], strict=True))
    # total 4 conversions: a on 2, b on 4, c on 3, d on 0
    assert effects == pytest.approx({"a": 2 / 4, "b": 4 / 4, "c": 3 / 4, "d": 0.0})
    assert model.conversion_probability_ == pytest.approx(4 / 12)


def test_order_1_can_credit_a_channel_on_no_converting_path():
    # documented: x is only on a non-converting path, yet the chain lets a walk go a -> x -> b -> conversion
    frame = paths_frame([("a > x > b", 0, 0, 1), ("a > b", 1, 1, 0)])
    effects = dict(
        zip(*Markov().fit(frame).credits_[["channel", "removal_effect"]].T.to_numpy(), strict=True)
    )
    assert effects["x"] > 0
    assert (
        dict(
            zip(*Markov(order=3).fit(frame).credits_[["channel", "removal_effect"]].T.to_numpy(), strict=True)
        )["x"]
        == 0
    )


def test_a_channel_only_before_null_has_no_effect():
    # d only ever leads to (null): removing it cannot lose a conversion, in any order
    rows = random_rows(random.Random(11), channels="abc", n_paths=12)
    rows.append((("a", "d"), 0.0, 0.0, 5.0))
    for order in (1, 2, 3):
        effects = dict(zip(*Markov(order=order).fit(rows_to_frame(rows)).credits_[["channel", "removal_effect"]]
                           .T.to_numpy(), strict=True))  # fmt: skip
        assert effects["d"] == 0


def test_include_nulls_false_uses_converting_journeys_only():
    # only a > b converts: P = 1, and both a and b carry all of it -> 1/2 each
    frame = paths_frame([("a > b", 2, 2, 0), ("c", 0, 0, 5)])
    model = Markov(include_nulls=False).fit(frame)
    assert model.conversion_probability_ == pytest.approx(1)
    assert credits(model) == {"a": pytest.approx((1, 1)), "b": pytest.approx((1, 1)), "c": (0, 0)}


def test_deterministic():
    frame = rows_to_frame(random_rows(random.Random(5), n_paths=30))
    a = Markov(order=2).fit(frame).credits_
    b = Markov(order=2).fit(frame.sample(frac=1, random_state=1)).credits_
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


def test_select_order_prefers_the_order_that_explains_the_outcome():
    # the outcome depends on the channel two steps back: a > c converts, b > c does not -> order 2 wins
    rng = np.random.default_rng(0)
    rows = []
    for first in "ab":
        for middle in "c":
            converted = int(rng.binomial(400, 0.6 if first == "a" else 0.05))
            rows.append((f"{first} > {middle}", converted, float(converted), 400 - converted))
    frame = paths_frame(rows + [("c", 20, 20.0, 380), ("a", 10, 10.0, 190), ("b", 10, 10.0, 190)])
    selection = Markov.select_order(frame, orders=(1, 2, 3), folds=5, seed=0)
    assert selection.order == 2
    assert list(selection.report.columns) == [
        "order",
        "heldout_loglik",
        "heldout_loglik_per_journey",
        "n_states",
    ]
    assert list(selection.report["order"]) == [1, 2, 3]
    assert list(selection.report["n_states"]) == [3, 5, 5]
    scores = selection.report.set_index("order")["heldout_loglik"]
    assert scores[2] > scores[1]
    assert np.isfinite(scores).all()


def test_select_order_validates():
    frame = paths_frame([("a > b", 1, 1, 1)])
    with pytest.raises(SpecError, match="'orders' parameter"):
        Markov.select_order(frame, orders=(5,))
    with pytest.raises(SpecError, match="'folds' parameter"):
        Markov.select_order(frame, folds=1)
    with pytest.raises(SpecError, match="whole numbers"):
        Markov.select_order(paths_frame([("a > b", 1.5, 1, 1)]))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Markov(order=5), "'order' parameter of Markov must be an int in"),
        (Markov(repeats="drop"), "'repeats'"),
    ],
)
def test_invalid_parameters(model, message):
    with pytest.raises(SpecError, match=message):
        model.fit(paths_frame([("a > b", 1, 1, 0)]))


def test_larger_chain_uses_the_iterative_solver_and_sums():
    rng = np.random.default_rng(1)
    channels = [f"c{i}" for i in range(12)]
    paths = [" > ".join(rng.choice(channels, size=rng.integers(1, 8))) for _ in range(3000)]
    conv = rng.integers(0, 2, size=3000)
    frame = pd.DataFrame(
        {"path": paths, "conversions": conv, "value": conv * 3.0, "nulls": rng.integers(0, 5, 3000)}
    )
    model = Markov(order=3).fit(frame)
    assert model.n_states_ > markov_module.DENSE_LIMIT
    assert model.credits_["attributed_conversions"].sum() == pytest.approx(conv.sum())
    table = read_paths(frame)
    assert model.total_conversions_ == table.total_conversions


def test_select_order_with_one_outcome_takes_the_lowest_order():
    # nothing converts: there is nothing to predict, so no reason for a longer history
    report, order = Markov.select_order(paths_frame([("a > b", 0, 0, 5), ("b > a > c", 0, 0, 7)]), folds=2)
    assert order == 1
    assert list(report["order"]) == [1, 2, 3, 4]
