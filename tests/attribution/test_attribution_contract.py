"""The estimator contract, checked on every model in the registry (STYLE.md, example 6)."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest
from attribution_helpers import journey, touch_frame

from journeylens.attribution import MODELS, AttributionModel, Bootstrap
from journeylens.errors import SpecError

JOURNEYS = touch_frame(
    {
        "anna": journey([("ad", "2024-01-01"), ("email", "2024-01-04"), ("search", "2024-01-05")], value=100),
        "ben": journey([("email", "2024-01-02"), ("search", "2024-01-03")], value=50),
        "cem": journey([("display", "2024-01-05")], value=30),
        "dora": journey([("ad", "2024-01-03"), ("display", "2024-01-04")]),
    }
)

models = pytest.mark.parametrize("name", sorted(MODELS))


def test_registry_names_every_model():
    assert set(MODELS) == {
        "first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley",
    }  # fmt: skip
    for name, cls in MODELS.items():
        assert cls.name == name
        assert issubclass(cls, AttributionModel)


@models
def test_constructor_is_keyword_only_and_only_stores(name):
    cls = MODELS[name]
    parameters = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    assert {"target", "include_nulls", "lookback_days", "key", "bootstrap"} <= {p.name for p in parameters}
    model = cls()
    assert vars(model) == {p.name: p.default for p in parameters}
    # stores what it is given, unchecked: even nonsense is only rejected by fit
    odd = cls(target="nonsense")
    assert odd.target == "nonsense"
    with pytest.raises(SpecError, match="'target' parameter"):
        odd.fit(JOURNEYS)


@models
def test_get_params_round_trips(name):
    model = MODELS[name](include_nulls=False, bootstrap=Bootstrap(n=5))
    clone = type(model)(**model.get_params())
    assert clone.get_params() == model.get_params()
    assert "include_nulls=False" in repr(model)


@models
def test_fit_returns_self_and_learns_underscored_state(name):
    model = MODELS[name]()
    before = dict(vars(model))
    assert model.fit(JOURNEYS) is model
    learned = {k for k in vars(model) if k not in before}
    assert learned and all(k.endswith("_") and not k.startswith("_") for k in learned)
    assert {k: vars(model)[k] for k in before} == before  # parameters untouched
    frame = model.credits_
    assert list(frame.columns[:3]) == ["channel", "attributed_conversions", "attributed_value"]
    assert list(frame["channel"]) == ["ad", "display", "email", "search"]
    assert frame["attributed_conversions"].sum() == pytest.approx(3)
    assert frame["attributed_value"].sum() == pytest.approx(180)
    assert model.channels_ == ["ad", "display", "email", "search"]


@models
def test_unfitted_model_has_no_results(name):
    with pytest.raises(AttributeError):
        _ = MODELS[name]().credits_


@models
def test_fit_does_not_change_its_input_and_is_repeatable(name):
    data = JOURNEYS.copy()
    first = MODELS[name]().fit(data).credits_
    pd.testing.assert_frame_equal(data, JOURNEYS)
    second = MODELS[name]().fit(data).credits_
    pd.testing.assert_frame_equal(first, second)


@models
def test_arrow_input_gives_the_same_credits(name):
    import pyarrow as pa

    from_pandas = MODELS[name]().fit(JOURNEYS).credits_
    from_arrow = MODELS[name]().fit(pa.Table.from_pandas(JOURNEYS, preserve_index=False)).credits_
    pd.testing.assert_frame_equal(from_pandas, from_arrow)


@models
def test_bootstrap_adds_an_interval(name):
    model = MODELS[name](bootstrap=Bootstrap(n=20, seed=1)).fit(JOURNEYS)
    frame = model.credits_
    assert list(frame.columns[-2:]) == ["ci_low", "ci_high"]
    assert (frame["ci_low"] <= frame["ci_high"] + 1e-12).all()


EMPTY_PATHS = pd.DataFrame({"path": pd.Series([], dtype=str), "conversions": [], "value": [], "nulls": []})
NO_CONVERSIONS = pd.DataFrame(
    {"path": ["a > b", "b"], "conversions": [0, 0], "value": [0.0, 0.0], "nulls": [3, 1]}
)


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"time_decay"}))
def test_empty_input_and_no_conversions(name):
    assert MODELS[name](bootstrap=Bootstrap(n=3)).fit(EMPTY_PATHS).credits_.empty
    frame = MODELS[name](bootstrap=Bootstrap(n=3)).fit(NO_CONVERSIONS).credits_
    assert list(frame["channel"]) == ["a", "b"]
    numbers = frame.drop(columns="channel").to_numpy()
    assert (numbers == 0).all()
