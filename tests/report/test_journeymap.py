"""The journey map's data twin on the literal workspace of conftest.py, against numbers worked out by hand.

The low_involvement persons (anna buys, ben stops in consideration, dan only sees an ad), five-phase model:

- furthest phase: anna loyalty, ben consideration, dan awareness -> reach 3, 2, 1, 1, 1;
- time in phase (entering the phase to entering the next one, or to its last touchpoint): awareness anna 1 d,
  ben 1 d, dan 0 d (median 1); consideration anna 1 d, ben 0 d (median 0.5); purchase anna 3 d (product view
  on the 3rd to the delivery on the 6th); service 4 d (delivery on the 6th to the newsletter on the 10th);
  loyalty 0 d;
- answers: anna's NPS 9 on her purchase (normalised 9/10 = 0.9, purchase phase) and her CSAT 2 survey about the
  delivery ((2-1)/4 = 0.25, rates the delivery: service phase); overall (0.9 + 0.25) / 2 = 0.575.
"""

from __future__ import annotations

import math

import pytest

from journeylens.analyses.base import Filters
from journeylens.analyses.journeymap import JourneyMapSpec, compare, run
from journeylens.errors import ConfigError, SpecError

LOW = JourneyMapSpec(persona="low_involvement", min_n=1)


def column(table, name):
    return table[name].to_pylist()


def approx(values):
    return [None if v is None else pytest.approx(v) for v in values]


@pytest.fixture(scope="module")
def low(small_ws):
    return run(small_ws, LOW)


def test_phases_in_model_order_with_their_texts(low):
    assert column(low.table, "phase") == ["awareness", "consideration", "purchase", "service", "loyalty"]
    assert column(low.table, "label")[3] == "Service & use"
    assert column(low.table, "questions")[0] == [
        "What is the problem, and how bad is it?",
        "Who could help me with it?",
    ]
    assert column(low.table, "intended_content")[2] == [
        "video",
        "product_sheet",
        "success_story",
        "demo",
        "quote",
    ]
    assert low.model == "five-phase"


def test_reach_conversion_drop_off_and_time(low):
    t = low.table
    assert column(t, "reach") == [3, 2, 1, 1, 1]
    assert column(t, "visited") == [3, 2, 1, 1, 1]
    assert column(t, "conversion_to_next") == approx([2 / 3, 1 / 2, 1.0, 1.0, None])
    assert column(t, "dropped") == [1, 1, 0, 0, None]
    assert column(t, "drop_off_rate") == approx([1 / 3, 1 / 2, 0.0, 0.0, None])
    assert column(t, "median_days_in_phase") == approx([1.0, 0.5, 3.0, 4.0, 0.0])
    assert column(t, "touchpoints") == [3, 2, 2, 2, 1]
    assert column(t, "reach_share") == approx([1.0, 2 / 3, 1 / 3, 1 / 3, 1 / 3])


def test_emotion_per_phase(low):
    t = low.table
    assert column(t, "emotion") == approx([None, None, 0.9, 0.25, None])
    assert column(t, "emotion_n") == [0, 0, 1, 1, 0]
    assert column(t, "emotion_too_thin") == [True, True, False, False, True]
    assert low.overall_emotion == pytest.approx(0.575)


def test_touchpoint_and_channel_lanes(low):
    rows = [
        (r["phase"], r["level"], r["value"], r["touchpoints"], r["journeys"])
        for r in low.touchpoints.to_pylist()
    ]
    assert rows == [
        ("awareness", "touchpoint", "ad_view", 2, 2),
        ("awareness", "touchpoint", "ad_click", 1, 1),
        ("awareness", "channel", "display", 2, 2),
        ("awareness", "channel", "paid_search", 1, 1),
        ("consideration", "touchpoint", "site_visit", 2, 2),
        ("consideration", "channel", "website", 2, 2),
        ("purchase", "touchpoint", "product_view", 1, 1),
        ("purchase", "touchpoint", "purchase", 1, 1),
        ("purchase", "channel", "website", 2, 1),
        ("service", "touchpoint", "delivery", 1, 1),
        ("service", "touchpoint", "survey_response", 1, 1),
        ("service", "channel", "email", 2, 1),
        ("loyalty", "touchpoint", "newsletter_open", 1, 1),
        ("loyalty", "channel", "email", 1, 1),
    ]


def test_top_limits_each_lane(small_ws):
    r = run(small_ws, JourneyMapSpec(persona="low_involvement", top=1, min_n=1))
    awareness = [(x["level"], x["value"]) for x in r.touchpoints.to_pylist() if x["phase"] == "awareness"]
    assert awareness == [("touchpoint", "ad_view"), ("channel", "display")]


def test_content_used_vs_intended(low):
    by = {(c["phase"], c["content_type"]): (c["status"], c["touchpoints"]) for c in low.content.to_pylist()}
    assert by[("awareness", "ad")] == ("intended", 3)
    assert by[("awareness", "blog_article")] == ("unused", 0)
    # anna's purchase carries an ad: used in purchase, but intended for awareness
    assert by[("purchase", "ad")] == ("not_intended", 1)
    assert by[("purchase", "product_sheet")] == ("intended", 1)
    assert by[("service", "delivery_update")] == ("intended", 1)
    assert {ct for (ph, ct), (st, _) in by.items() if ph == "consideration"} == {
        "tutorial",
        "whitepaper",
        "comparison",
        "review",
        "webinar",
    }
    assert all(st == "unused" for (ph, _), (st, _) in by.items() if ph == "consideration")
    ad = next(c for c in low.content.to_pylist() if c["phase"] == "purchase" and c["content_type"] == "ad")
    assert ad["share"] == pytest.approx(0.5)
    assert ad["intended_phases"] == ["awareness"]


def test_pain_points(low):
    rows = [
        (p["phase"], p["kind"], p["subject"], round(p["value"], 6), p["n"])
        for p in low.pain_points.to_pylist()
    ]
    assert rows == [
        ("awareness", "drop_off", "awareness", round(1 / 3, 6), 3),
        ("consideration", "drop_off", "consideration", 0.5, 2),
        (
            "service",
            "low_satisfaction",
            "delivery",
            0.25,
            1,
        ),  # below the overall 0.575; purchase (0.9) is not
    ]


def test_opportunities(low):
    rules = [(o["phase"], o["rule"], o["subject"]) for o in low.opportunities.to_pylist()]
    assert rules == [
        ("awareness", "intended_unused", "blog_article, social_post"),
        ("awareness", "no_feedback", "awareness"),
        ("consideration", "intended_unused", "tutorial, whitepaper, comparison, review, webinar"),
        ("consideration", "drop_off", "consideration"),
        ("consideration", "no_feedback", "consideration"),
        ("purchase", "intended_unused", "video, success_story, demo, quote"),
        ("purchase", "misplaced_content", "ad"),
        ("service", "intended_unused", "manual, support_article"),
        # service's 4 days against the median 0.75 of the other phases (1, 0.5, 3, 0)
        ("service", "slow_phase", "service"),
        ("loyalty", "intended_unused", "referral_programme, review_request"),
        ("loyalty", "no_feedback", "loyalty"),
    ]
    text = {o["rule"]: o["text"] for o in low.opportunities.to_pylist()}
    assert (
        text["misplaced_content"]
        == "ad is 50% of the content in Purchase; the model intends it for Awareness"
    )
    assert text["drop_off"].startswith(
        "The biggest loss is after Consideration: 50% of its journeys do not reach Purchase"
    )


def test_kpis(low):
    k = {r["metric"]: r["value"] for r in low.kpis.to_pylist()}
    assert k["journeys"] == 3
    assert k["persons"] == 3
    assert k["converted"] == 1
    assert k["conversion_rate"] == pytest.approx(1 / 3)
    assert k["median_contacts_to_conversion"] == 4  # ad, visit, product view, purchase
    assert k["median_days_to_conversion"] == pytest.approx(3.0)
    assert k["revenue"] == pytest.approx(50.0)
    assert k["emotion"] == pytest.approx(0.575)
    assert low.kpi("conversion_rate") == pytest.approx(1 / 3)
    start, end = low.period
    assert (start.isoformat(), end.isoformat()) == ("2024-01-01T10:00:00+00:00", "2024-01-10T10:00:00+00:00")


def test_compare_two_personas(small_ws):
    c = compare(small_ws, LOW, JourneyMapSpec(persona="high_involvement", min_n=1))
    assert c.labels == ("low_involvement", "high_involvement")
    t = c.table
    assert column(t, "reach_a") == [3, 2, 1, 1, 1]
    assert column(t, "reach_b") == [1, 1, 1, 0, 0]
    # cara: social post (1st) -> comparison (3rd) -> store visit (8th) -> purchase (9th)
    assert column(t, "median_days_in_phase_b") == approx([2.0, 5.0, 1.0, None, None])
    # her CSAT 5 about the store visit rates the purchase phase: (5-1)/4 = 1
    assert column(t, "emotion_b") == approx([None, None, 1.0, None, None])
    assert column(t, "conversion_to_next_b") == approx([1.0, 1.0, 0.0, None, None])


def test_another_model_classifies_on_the_fly(small_ws):
    r = run(small_ws, JourneyMapSpec(model="three-phase", min_n=1))
    assert column(r.table, "phase") == ["orientation", "consideration", "decision"]
    assert column(r.table, "reach") == [4, 3, 2]
    # decision: anna 7 d (product view on the 3rd to her last touchpoint on the 10th), cara 1 d
    assert column(r.table, "median_days_in_phase") == approx([1.0, 1.0, 4.0])
    # every answer is in decision there: (0.9 + 0.25 + 1.0) / 3
    assert column(r.table, "emotion") == approx([None, None, (0.9 + 0.25 + 1.0) / 3])


def test_filters_narrow_the_map(small_ws):
    r = run(small_ws, JourneyMapSpec(min_n=1, filters=Filters(channels=["paid_search"])))
    assert column(r.table, "reach") == [1, 1, 0, 0, 0]  # ben only


def test_a_persona_without_journeys_gives_an_empty_map(small_ws):
    r = run(small_ws, JourneyMapSpec(persona="nobody"))
    assert column(r.table, "reach") == [0, 0, 0, 0, 0]
    assert r.kpi("journeys") == 0
    assert math.isnan(r.kpi("conversion_rate"))
    assert r.opportunities.num_rows == 0
    assert r.pain_points.num_rows == 0


def test_spec_is_strict():
    with pytest.raises(ValueError, match="extra"):
        JourneyMapSpec(persona="x", colour="red")
    with pytest.raises(SpecError, match="persona 'b' is not among filters.personas"):
        JourneyMapSpec(persona="b", filters=Filters(personas=["a"])).effective_filters()
    with pytest.raises(SpecError, match="journey_type 'purchase' is not among filters.journey_types"):
        JourneyMapSpec(filters=Filters(journey_types=["complaint"])).effective_filters()


def test_unknown_model(small_ws):
    with pytest.raises(ConfigError, match="unknown phase model 'nope'"):
        run(small_ws, JourneyMapSpec(model="nope"))


def test_the_sql_of_the_backbone_is_kept(low):
    assert "SELECT" in low.sql.upper()


def test_segments_list_the_maps_one_can_draw(small_ws):
    from journeylens.analyses.journeymap import segments

    rows = segments(small_ws).to_pylist()
    assert rows == [
        {"journey_type": "purchase", "persona": "low_involvement", "journeys": 3},
        {"journey_type": "purchase", "persona": "high_involvement", "journeys": 1},
    ]
    assert segments(small_ws, Filters(personas=["high_involvement"])).num_rows == 1
