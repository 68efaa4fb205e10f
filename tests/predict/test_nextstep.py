"""Next phase and next touchpoints from the journeys' transitions, worked out by hand, on both engines."""

from __future__ import annotations

import pytest

from journeylens.journeys import build
from journeylens.predict.nextstep import ENDS, transitions


def day(d: int) -> str:
    return f"2024-03-{d:02d}T10:00:00"


PEOPLE = {
    # awareness -> consideration -> purchase: converted
    "ann": [("ad_view", day(1)), ("comparison_view", day(2)), ("purchase", day(3), {"revenue": 10.0})],
    # awareness -> consideration, then nothing: abandoned
    "bob": [("social_post_view", day(1)), ("ad_view", day(2)), ("comparison_view", day(3))],
    # awareness twice, consideration, back to awareness: abandoned
    "cy": [("ad_view", day(1)), ("ad_view", day(2)), ("comparison_view", day(3)), ("ad_view", day(4))],
    # one ad at the data's end: open, so what follows it is not known yet (not an ending)
    "dee": [("ad_view", "2024-06-01T10:00:00")],
}


@pytest.fixture
def steps(backend, make_workspace):
    ws = make_workspace(backend, PEOPLE)
    build(ws, model="five-phase")
    return transitions(ws, min_n=1)


def test_next_touchpoint_probabilities_worked_by_hand(steps):
    # after an ad in awareness: comparison_view (ann, bob, cy's 2nd ad), ad_view (cy's 1st), the end (cy's
    # last ad); dee's ad is left out, her journey being open
    assert steps.next_touchpoints("purchase", "awareness", "ad_view", k=5) == [
        {"touchpoint": "comparison_view", "probability": 0.6},
        {"touchpoint": ENDS, "probability": 0.2},
        {"touchpoint": "ad_view", "probability": 0.2},
    ]
    # after a comparison: the purchase (ann), the end (bob), an ad (cy): a third each, ties by name
    assert [
        t["touchpoint"] for t in steps.next_touchpoints("purchase", "consideration", "comparison_view")
    ] == [
        ENDS,
        "ad_view",
        "purchase",
    ]


def test_next_phase_worked_by_hand(steps):
    # ads in awareness: ann's, bob's and cy's first two move on to consideration; cy's last ad ends it
    phase, p, basis = steps.next_phase("purchase", "awareness", "ad_view")
    assert (phase, p) == ("consideration", pytest.approx(4 / 5))
    assert basis.startswith("5 times ad_view in awareness")
    # from consideration: purchase (ann), the end (bob), back to awareness (cy)
    phase, p, _ = steps.next_phase("purchase", "consideration", "comparison_view")
    assert (phase, p) == (ENDS, pytest.approx(1 / 3))


def test_a_rare_state_falls_back_to_its_phase(steps):
    steps.min_n = 2
    # social_post_view in awareness was seen once: the whole awareness phase speaks (6 rows)
    phase, p, basis = steps.next_phase("purchase", "awareness", "social_post_view")
    assert (phase, p) == ("consideration", pytest.approx(5 / 6))
    assert basis == "6 touchpoints in awareness (purchase journeys)"
    assert steps.next_phase("complaint", "service", "complaint")[0] is None
