"""``attribute``: every model side by side."""

from __future__ import annotations

import pytest
from attribution_helpers import journey, paths_frame, touch_frame

from journeylens.attribution import MODELS, Bootstrap, Markov, attribute
from journeylens.errors import SpecError

PATHS = paths_frame([("a > b", 1, 30, 0), ("b", 0, 0, 1), ("a", 0, 0, 1)])
TOUCHES = touch_frame(
    {
        "anna": journey([("ad", "2024-01-01"), ("email", "2024-01-08")], value=10),
        "ben": journey([("email", "2024-01-02")]),
    }
)


def test_long_layout_on_paths_skips_time_decay():
    long = attribute(PATHS)
    assert list(long.columns[:4]) == ["model", "channel", "attributed_conversions", "attributed_value"]
    assert list(dict.fromkeys(long["model"])) == [m for m in MODELS if m != "time_decay"]
    markov = long[long["model"] == "markov"].set_index("channel")
    # the hand-worked chain of test_attribution_markov: a 1/3, b 2/3
    assert markov.loc["a", "attributed_conversions"] == pytest.approx(1 / 3)
    assert long[long["model"] == "last_touch"]["removal_effect"].isna().all()


def test_wide_layout_on_touches_has_every_model():
    wide = attribute(TOUCHES, layout="wide")
    assert list(wide.columns) == ["channel", *MODELS]
    assert list(wide["channel"]) == ["ad", "email"]
    assert wide.set_index("channel").loc["ad", "first_touch"] == 1
    assert wide.set_index("channel").loc["ad", "last_touch"] == 0


def test_options_go_to_the_models_that_take_them():
    long = attribute(TOUCHES, ["markov", "time_decay", "linear"], order=2, half_life_days=1, target="value",
                     bootstrap=Bootstrap(n=10))  # fmt: skip
    assert {"ci_low", "ci_high"} <= set(long.columns)
    wide = attribute(TOUCHES, ["linear", "time_decay"], layout="wide", target="value", half_life_days=7)
    # anna's touches are 7 days apart: weights 1/2 and 1 -> ad gets 1/3 of 10
    assert wide.set_index("channel").loc["ad", "time_decay"] == pytest.approx(10 / 3)
    assert wide.set_index("channel").loc["ad", "linear"] == pytest.approx(5)


def test_instances_and_labels():
    long = attribute(PATHS, [Markov(order=1), Markov(order=2), "last_touch"])
    assert list(dict.fromkeys(long["model"])) == ["markov", "Markov(order=2)", "last_touch"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": ["time_decay"]}, "needs per-touch input"),
        ({"models": ["lastt"]}, "'lastt' is not an attribution model"),
        ({"models": ["linear"], "order": 2}, r"no chosen model takes the option\(s\) \['order'\]"),
        ({"layout": "tall"}, "layout must be one of"),
        ({"models": []}, "needs at least one model"),
    ],
)
def test_errors(kwargs, message):
    with pytest.raises(SpecError, match=message):
        attribute(PATHS, **kwargs)
