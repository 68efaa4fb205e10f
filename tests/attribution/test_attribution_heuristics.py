"""Rule-based models on literal journeys, every number worked out by hand in the comments."""

from __future__ import annotations

import pandas as pd
import pytest
from attribution_helpers import credits, journey, paths_frame, touch_frame

from journeylens.attribution import FirstTouch, LastTouch, Linear, PositionBased, TimeDecay
from journeylens.errors import SpecError

# anna: ad -> email -> search, a week apart, converts (100) at her last touch
# ben:  email -> search a day apart, converts (50)
# cem:  display, converts (30)
# dora: ad -> display, does not convert
JOURNEYS = {
    "anna": journey([("ad", "2024-01-01T10:00"), ("email", "2024-01-08T10:00"), ("search", "2024-01-15T10:00")],
                    value=100),
    "ben": journey([("email", "2024-01-02T10:00"), ("search", "2024-01-03T10:00")], value=50),
    "cem": journey([("display", "2024-01-05T10:00")], value=30),
    "dora": journey([("ad", "2024-01-03T10:00"), ("display", "2024-01-04T10:00")]),
}  # fmt: skip


@pytest.fixture
def touches() -> pd.DataFrame:
    return touch_frame(JOURNEYS)


def test_last_touch(touches):
    # anna -> search, ben -> search, cem -> display; dora converts nothing
    assert credits(LastTouch().fit(touches)) == {
        "ad": (0, 0), "display": (1, 30), "email": (0, 0), "search": (2, 150),
    }  # fmt: skip


def test_first_touch(touches):
    # anna -> ad, ben -> email, cem -> display
    assert credits(FirstTouch().fit(touches)) == {
        "ad": (1, 100), "display": (1, 30), "email": (1, 50), "search": (0, 0),
    }  # fmt: skip


def test_linear(touches):
    # anna: 1/3 each (100/3 each); ben: 1/2 each (25 each); cem: display 1
    # ad 1/3 (33.33), email 1/3 + 1/2 = 5/6 (33.33 + 25), search 5/6 (58.33), display 1 (30)
    got = credits(Linear().fit(touches))
    assert got["ad"] == pytest.approx((1 / 3, 100 / 3))
    assert got["email"] == pytest.approx((5 / 6, 100 / 3 + 25))
    assert got["search"] == pytest.approx((5 / 6, 100 / 3 + 25))
    assert got["display"] == pytest.approx((1, 30))


def test_position_based(touches):
    # anna (3 touches): ad 0.4, email 0.2 (the middle share), search 0.4 -> 40 / 20 / 40
    # ben (2 touches): split evenly, 0.5 / 0.5 -> 25 / 25; cem (1 touch): display 1
    got = credits(PositionBased().fit(touches))
    assert got["ad"] == pytest.approx((0.4, 40))
    assert got["email"] == pytest.approx((0.7, 45))
    assert got["search"] == pytest.approx((0.9, 65))
    assert got["display"] == pytest.approx((1, 30))


def test_position_based_middle_split_and_two_touches():
    # a > b > c > d (1 conversion, value 10), first=0.3, last=0.5: middle 0.2 over b and c -> 0.1 each
    # e > f: two touches split evenly whatever first / last are -> 0.5 each
    frame = paths_frame([("a > b > c > d", 1, 10, 0), ("e > f", 1, 4, 0)])
    got = credits(PositionBased(first=0.3, last=0.5).fit(frame))
    assert got["a"] == pytest.approx((0.3, 3))
    assert got["b"] == pytest.approx((0.1, 1))
    assert got["c"] == pytest.approx((0.1, 1))
    assert got["d"] == pytest.approx((0.5, 5))
    assert got["e"] == pytest.approx((0.5, 2))
    assert got["f"] == pytest.approx((0.5, 2))


def test_time_decay(touches):
    # half-life 7 days, ages from the last touch:
    # anna: ad 14 d -> 2^-2 = 1/4, email 7 d -> 1/2, search 0 d -> 1; sum 7/4 -> shares 1/7, 2/7, 4/7
    # ben: email 1 d -> w = 2^(-1/7), search 0 d -> 1; shares w / (1 + w) and 1 / (1 + w)
    w = 2 ** (-1 / 7)
    got = credits(TimeDecay(half_life_days=7).fit(touches))
    assert got["ad"] == pytest.approx((1 / 7, 100 / 7))
    assert got["email"] == pytest.approx((2 / 7 + w / (1 + w), 200 / 7 + 50 * w / (1 + w)))
    assert got["search"] == pytest.approx((4 / 7 + 1 / (1 + w), 400 / 7 + 50 / (1 + w)))
    assert got["display"] == pytest.approx((1, 30))


def test_time_decay_measures_from_the_conversion_time():
    # converts 7 days after the last touch: ages 14 and 7 days -> weights 1/4 and 1/2 -> shares 1/3, 2/3
    frame = touch_frame(
        {
            "eva": journey(
                [("ad", "2024-01-01T00:00"), ("email", "2024-01-08T00:00")], value=9, at="2024-01-15T00:00"
            )
        }
    )
    got = credits(TimeDecay(half_life_days=7).fit(frame))
    assert got["ad"] == pytest.approx((1 / 3, 3))
    assert got["email"] == pytest.approx((2 / 3, 6))


def test_touches_after_the_conversion_are_dropped():
    # fay converts on Jan 2; the chat on Jan 3 came after and gets nothing (it stays listed, with 0):
    # linear gives ad and email 1/2 each
    frame = touch_frame(
        {"fay": journey([("ad", "2024-01-01"), ("email", "2024-01-02"), ("chat", "2024-01-03")], value=8,
                        at="2024-01-02T12:00")}
    )  # fmt: skip
    got = credits(Linear().fit(frame))
    assert got == {"ad": (0.5, 4), "chat": (0, 0), "email": (0.5, 4)}


def test_time_decay_needs_timestamps():
    with pytest.raises(SpecError, match="needs per-touch input with a 'timestamp' column"):
        TimeDecay().fit(paths_frame([("a > b", 1, 1, 0)]))


def test_lookback_window(touches):
    # 10 days back from each conversion: anna's ad (14 days before) is out -> email, search 1/2 each (50 / 50)
    # ben's touches (1 and 0 days) and cem's (0) stay
    model = Linear(lookback_days=10).fit(touches)
    got = credits(model)
    assert got["ad"] == (0, 0)
    assert got["email"] == pytest.approx((1.0, 75))
    assert got["search"] == pytest.approx((1.0, 75))
    assert got["display"] == pytest.approx((1, 30))
    assert model.unattributed_conversions_ == 0


def test_lookback_leaves_a_conversion_unattributed():
    # gus's only touch is 20 days before his conversion: with a 7-day window nobody gets it
    frame = touch_frame(
        {
            "gus": journey([("ad", "2024-01-01")], value=5, at="2024-01-21"),
            "hal": journey([("email", "2024-01-20")], value=7, at="2024-01-21"),
        }
    )
    model = LastTouch(lookback_days=7).fit(frame)
    assert credits(model) == {"ad": (0, 0), "email": (1, 7)}
    assert (model.unattributed_conversions_, model.unattributed_value_) == (1, 5)
    assert (model.total_conversions_, model.total_value_) == (1, 7)


def test_lookback_needs_timestamps():
    with pytest.raises(SpecError, match="lookback_days needs per-touch input"):
        Linear(lookback_days=3).fit(paths_frame([("a > b", 1, 1, 0)]))


def test_journey_credit_table(touches):
    table = PositionBased().fit(touches).journey_credit_
    assert list(table.columns) == [
        "journey_id",
        "position",
        "channel",
        "attributed_conversions",
        "attributed_value",
    ]
    anna = table[table["journey_id"] == "anna"].sort_values("position")
    assert list(anna["channel"]) == ["ad", "email", "search"]
    assert list(anna["attributed_conversions"]) == pytest.approx([0.4, 0.2, 0.4])
    assert list(anna["attributed_value"]) == pytest.approx([40, 20, 40])
    dora = table[table["journey_id"] == "dora"]
    assert list(dora["attributed_conversions"]) == [0, 0]
    # the table adds up to credits_
    by_channel = table.groupby("channel")["attributed_conversions"].sum()
    assert by_channel.to_dict() == pytest.approx(
        dict(zip(PositionBased().fit(touches).credits_["channel"],
                 PositionBased().fit(touches).credits_["attributed_conversions"], strict=True))
    )  # fmt: skip


def test_aggregated_input_has_no_journey_table():
    assert LastTouch().fit(paths_frame([("a > b", 1, 1, 0)])).journey_credit_ is None


def test_key_credits_another_column():
    # the same journeys credited by touchpoint instead of channel
    frame = touch_frame(
        {"ida": journey([("newsletter", "2024-01-01"), ("quote_form", "2024-01-02")], value=10)},
        key="touchpoint",
    )
    assert credits(LastTouch(key="touchpoint").fit(frame)) == {"newsletter": (0, 0), "quote_form": (1, 10)}
    with pytest.raises(SpecError, match="missing"):
        LastTouch().fit(frame)  # no 'channel' column


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (TimeDecay(half_life_days=0), "'half_life_days' parameter of TimeDecay must be a number > 0. Got 0"),
        (PositionBased(first=0.7, last=0.4), "must add up to at most 1"),
        (PositionBased(first=-0.1), "'first' parameter of PositionBased must be a number >= 0"),
        (Linear(target="revenue"), "'target' parameter of Linear must be one of 'conversions', 'value'"),
        (Linear(lookback_days=-1), "'lookback_days' parameter of Linear must be a number > 0"),
        (Linear(bootstrap=200), "'bootstrap' parameter of Linear must be a Bootstrap"),
    ],
)
def test_invalid_parameters_fail_at_fit(model, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(")) as info:
        model.fit(paths_frame([("a > b", 1, 1, 0)]))
    assert info.value.code == "invalid_model_param"
