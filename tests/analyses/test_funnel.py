"""Phase funnel and event funnels: hand-worked fixtures on DuckDB and Spark, a brute-force reference."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import ibis
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from journeylens.analyses import funnel as F
from journeylens.analyses.base import Filters, parse_spec
from journeylens.analyses.cli_funnels import register
from journeylens.errors import SpecError
from journeylens.journeys.models.matcher import Matcher

# -- the phase funnel ----------------------------------------------------------------------------------
#
# Five-phase model, default journey model (purchase journeys, 30-day timeout, customer view).
# Phases by touchpoint: ad_view, search_click, ad_click -> awareness; site_visit -> consideration;
# product_view, store_visit, purchase -> purchase; delivery -> service; newsletter_open -> loyalty.
PHASE_PEOPLE = {
    # awareness 1 d, consideration 1 d, purchase 7 d (product_view .. delivery), service 0 (last)
    "anna": [
        ("ad_view", "2024-01-01T10:00", "display"),
        ("site_visit", "2024-01-02T10:00"),
        ("product_view", "2024-01-03T10:00"),
        ("purchase", "2024-01-03T12:00"),
        ("delivery", "2024-01-10T10:00", "email"),
    ],
    # awareness 30 min = 1/48 d; consideration 3 d 23.5 h + 2 d (two visits: moved back); purchase 1 d + 0
    "bob": [
        ("search_click", "2024-02-01T09:00", "organic_search"),
        ("site_visit", "2024-02-01T09:30"),
        ("store_visit", "2024-02-05T09:00", "store"),
        ("site_visit", "2024-02-06T09:00"),
        ("purchase", "2024-02-08T09:00", "store", {"revenue": 1500.0, "currency": "EUR"}),
    ],
    # buys at the first contact: skips awareness and consideration (reached: a later phase); purchase 19 d
    "cleo": [("purchase", "2024-03-01T10:00"), ("newsletter_open", "2024-03-20T10:00", "email")],
    # two journeys (a 63-day gap): dave/1 awareness 1 d, consideration 0; dave/2 consideration 0
    "dave": [
        ("ad_click", "2024-01-05T10:00", "social"),
        ("site_visit", "2024-01-06T10:00"),
        ("site_visit", "2024-03-10T10:00"),
    ],
}
PHASE_PERSONS = {
    "anna": {"persona": "low_involvement", "segment": "b2c"},
    "bob": {"persona": "high_involvement", "segment": "b2b"},
    "cleo": {"persona": "low_involvement", "segment": "b2c"},
    "dave": {"persona": "mid_involvement", "segment": "b2c"},
}
PHASE_COLUMNS = (
    "phase",
    "reached",
    "visited",
    "conversion_from_previous",
    "conversion_from_first",
    "dropped",
    "median_days_in_phase",
    "p90_days_in_phase",
)
# furthest phase per journey: anna 3 (service), bob 2, cleo 4 (loyalty), dave/1 1, dave/2 1
# reached = furthest >= phase: 5, 5, 3, 2, 1; visited: 3, 4, 3, 1, 1
# days in phase (linear-interpolated quantiles over the journeys that visited it):
#   awareness [1/48, 1, 1] -> median 1, p90 1
#   consideration [0, 0, 1, 5.979167] -> median 0.5, p90 = 1 + 0.7 * 4.979167 = 4.485417
#   purchase [1, 7, 19] -> median 7, p90 = 7 + 0.8 * 12 = 16.6
#   service [0], loyalty [0]
PHASE_EXPECTED = [
    ("awareness", 5, 3, 1.0, 1.0, 0, 1.0, 1.0),
    ("consideration", 5, 4, 1.0, 1.0, 0, 0.5, 4.485417),
    ("purchase", 3, 3, 0.6, 0.6, 2, 7.0, 16.6),
    ("service", 2, 1, 0.666667, 0.4, 1, 0.0, 0.0),
    ("loyalty", 1, 1, 0.5, 0.2, 1, 0.0, 0.0),
]


@pytest.fixture(scope="module")
def phase_tables(helpers):
    return helpers.built_tables(PHASE_PEOPLE, PHASE_PERSONS)


@pytest.fixture
def duck():
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


def test_phase_funnel_hand_worked(backend, helpers, phase_tables):
    ws = helpers.tables(backend, {k: phase_tables[k] for k in ("journeys", "journey_phases", "builds")})
    result = F.run(ws, F.PhaseFunnelSpec())
    assert isinstance(result, F.PhaseFunnelResult)
    assert result.model == "five-phase"
    assert helpers.rows(result.table, *PHASE_COLUMNS) == PHASE_EXPECTED
    assert result.totals.to_pylist() == [{"period": None, "breakdown": None, "journeys": 5, "with_phase": 5}]


def test_phase_funnel_by_persona(duck, helpers, phase_tables):
    ws = helpers.tables(duck, phase_tables)
    # high = bob; low = anna, cleo; mid = dave's two journeys
    by = F.run(ws, F.PhaseFunnelSpec(breakdown="persona"))
    reached = {}
    for r in by.table.to_pylist():
        reached.setdefault(r["breakdown"], []).append(r["reached"])
    assert reached == {
        "high_involvement": [1, 1, 1, 0, 0],
        "low_involvement": [2, 2, 2, 2, 1],
        "mid_involvement": [2, 2, 0, 0, 0],
    }


def test_phase_funnel_on_another_model_recomputes_phases(duck, helpers, phase_tables):
    ws = helpers.tables(duck, phase_tables)
    result = F.run(ws, F.PhaseFunnelSpec(model="three-phase"))
    assert result.extra["stored_phases"] is False
    # three-phase: awareness touchpoints -> orientation, site_visit -> consideration, product_view,
    # store_visit, purchase -> decision; delivery and newsletter_open have no rule there and keep the
    # previous phase (anna's delivery stays in decision; cleo's newsletter too).
    # furthest: anna 2, bob 2, cleo 2, dave/1 1, dave/2 1 -> reached 5, 5, 3
    # decision days: anna product_view .. delivery (last) = 7 d 0 h, bob 1 + 0, cleo 19 d
    assert helpers.rows(result.table, "phase", "reached", "visited", "dropped", "median_days_in_phase") == [
        ("orientation", 5, 3, 0, 1.0),
        ("consideration", 5, 4, 0, 0.5),
        ("decision", 3, 3, 2, 7.0),
    ]


def test_phase_funnel_breakdowns_filters_and_periods(duck, helpers, phase_tables):
    ws = helpers.tables(duck, phase_tables)
    # a persons column as breakdown: b2b = bob, b2c = the rest
    seg = F.run(ws, F.PhaseFunnelSpec(breakdown="segment"))
    assert [(r["breakdown"], r["reached"]) for r in seg.table.to_pylist() if r["phase_index"] == 2] == [
        ("b2b", 1),
        ("b2c", 2),
    ]
    # involvement: bob is high (store contacts 2 and revenue 1500: 2 of 4 signals)
    inv = F.run(ws, F.PhaseFunnelSpec(breakdown="involvement"))
    assert {r["breakdown"] for r in inv.table.to_pylist()} == {"high", "low"}
    # filters: journeys that used the store channel -> bob only
    store = F.run(ws, F.PhaseFunnelSpec(filters=Filters(channels=["store"])))
    assert [r["reached"] for r in store.table.to_pylist()] == [1, 1, 1, 0, 0]
    # two periods: January (anna, dave/1) and February-March (bob, cleo, dave/2)
    spec = F.PhaseFunnelSpec(compare_periods=[("2024-01-01", "2024-02-01"), ("2024-02-01", "2024-04-01")])
    cmp = F.run(ws, spec)
    got = [
        (r["period"], r["phase"], r["reached"]) for r in cmp.table.to_pylist() if r["phase_index"] in (0, 2)
    ]
    assert got == [
        ("2024-01-01..2024-02-01", "awareness", 2),
        ("2024-01-01..2024-02-01", "purchase", 1),
        ("2024-02-01..2024-04-01", "awareness", 3),
        ("2024-02-01..2024-04-01", "purchase", 2),
    ]
    side = cmp.comparison.to_pylist()
    assert (side[2]["reached_a"], side[2]["reached_b"]) == (1, 2)
    assert side[2]["conversion_change"] == pytest.approx(2 / 3 - 1 / 2)
    with pytest.raises(
        SpecError, match="breakdown: unknown column 'shoe_size'; expected one of persona, journey_type"
    ):
        F.run(ws, F.PhaseFunnelSpec(breakdown="shoe_size"))


def test_phase_funnel_spec_validation():
    with pytest.raises(SpecError, match="phase_funnel: unknown field 'steps'"):
        parse_spec(F.PhaseFunnelSpec, {"steps": ["a"]})
    with pytest.raises(SpecError, match="expected two \\(start, end\\) periods, got 1"):
        parse_spec(F.PhaseFunnelSpec, {"compare_periods": [["2024-01-01", "2024-02-01"]]})
    with pytest.raises(SpecError, match="a period's end must come after its start"):
        parse_spec(
            F.PhaseFunnelSpec,
            {"compare_periods": [["2024-01-01", "2024-02-01"], ["2024-03-01", "2024-02-01"]]},
        )


# -- event funnels: a hand-worked fixture --------------------------------------------------------------
#
# Steps a -> b -> c. Hours after 2024-01-01T00:00; x is a touchpoint of no step.


def _at(hour: int) -> str:
    day, h = divmod(hour, 24)
    return f"2024-01-{1 + day:02d}T{h:02d}:00"


EVENT_PEOPLE = {
    "p1": [("a", _at(0)), ("b", _at(1)), ("c", _at(2))],  # the happy path
    "p2": [("a", _at(0)), ("x", _at(1)), ("b", _at(2)), ("c", _at(50))],  # c after 50 h; x between a and b
    "p3": [("a", _at(0)), ("a", _at(30)), ("b", _at(31)), ("c", _at(32))],  # a second attempt at 30 h
    "p4": [("b", _at(0)), ("a", _at(1))],  # b before a does not count
    "p5": [("x", _at(0))],  # no step at all: not in the funnel
    "p6": [("a", _at(0)), ("x", _at(1)), ("a", _at(2)), ("b", _at(3)), ("c", _at(4))],
    "p7": [("a", _at(0)), ("b", _at(1)), ("x", _at(2)), ("c", _at(3))],  # x between b and c
    "p8": [("a", _at(0)), ("c", _at(1))],  # skips b
}
EVENT_COLUMNS = (
    "step",
    "count",
    "conversion_from_previous",
    "conversion_from_first",
    "dropped",
    "median_seconds",
    "p90_seconds",
)


@pytest.fixture(scope="module")
def event_tables(helpers):
    return helpers.built_tables(
        EVENT_PEOPLE, {p: {"persona": "even" if int(p[1]) % 2 == 0 else "odd"} for p in EVENT_PEOPLE}
    )


def test_event_funnel_hand_worked(backend, helpers, event_tables):
    ws = helpers.tables(backend, {"journey_touchpoints": event_tables["journey_touchpoints"]})
    # loose, window 24 h:
    #   step 1 (a): p1 p2 p3 p4 p6 p7 p8 = 7
    #   step 2 (b): p1 (1 h after a), p2 (2 h), p3 (from the latest a, at 30 h: 1 h), p6 (from a at 2 h: 1 h),
    #               p7 (1 h) = 5; p4 and p8 have no b after an a
    #   step 3 (c): p1 (1 h after b), p3 (1 h), p6 (1 h), p7 (2 h) = 4; p2's c is 50 h after its a
    #   seconds to step 2 [3600 x4, 7200]: median 3600, p90 = 3600 + .6 * 3600 = 5760
    #   to step 3 [3600 x3, 7200]: median 3600, p90 = 3600 + .7 * 3600 = 6120
    spec = F.FunnelSpec(steps=["a", "b", "c"], window="24h")
    result = F.run(ws, spec)
    assert helpers.rows(result.table, *EVENT_COLUMNS) == [
        (1, 7, 1.0, 1.0, 0, None, None),
        (2, 5, 0.714286, 0.714286, 2, 3600.0, 5760.0),
        (3, 4, 0.8, 0.571429, 1, 3600.0, 6120.0),
    ]
    # from the first step to c: p1 2 h, p3 2 h (from a at 30 h), p6 2 h, p7 3 h
    assert helpers.rows(result.table, "median_seconds_from_first", "p90_seconds_from_first")[2] == (
        7200.0,
        9720.0,
    )


def test_event_funnel_drop_offs_strict_and_exclusions(duck, helpers, event_tables):
    ws = helpers.tables(duck, event_tables)
    spec = F.FunnelSpec(steps=["a", "b", "c"], window="24h")
    assert F.dropped_off(ws, spec, 1) == ["p4", "p8"]
    assert F.dropped_off(ws, spec, 2) == ["p2"]
    # strict: b must be the very next touchpoint after a, c the very next after b:
    #   p1, p3 (a 30 h, b, c), p6 (a 2 h, b, c) complete; p7 stops at b (x before c); p2 stops at a
    strict = F.run(ws, F.FunnelSpec(steps=["a", "b", "c"], order="strict"))
    assert [r["count"] for r in strict.table.to_pylist()] == [7, 4, 3]
    # exclusion x between steps 1 and 2: p2's only path a -> b has x in between (p2 stops at a);
    # p6 takes the clean path from its second a; p7's x is between b and c, outside the range
    excl = F.run(ws, F.FunnelSpec(steps=["a", "b", "c"], exclusions=[{"touchpoint": "x", "between": [1, 2]}]))
    assert [r["count"] for r in excl.table.to_pylist()] == [7, 4, 4]


def test_event_funnel_windows_and_exclusions(duck, helpers, event_tables):
    ws = helpers.tables(duck, event_tables)
    # without a window p2's c counts: 50 h - 2 h = 48 h after its b
    loose = F.run(ws, F.FunnelSpec(steps=["a", "b", "c"]))
    assert [r["count"] for r in loose.table.to_pylist()] == [7, 5, 5]
    # c within 90 minutes of b: p1, p3, p6 (1 h); not p2 (48 h) nor p7 (2 h)
    within = F.run(ws, F.FunnelSpec(steps=["a", "b", {"touchpoint": "c", "within": "90m"}]))
    assert [r["count"] for r in within.table.to_pylist()] == [7, 5, 3]
    # exclusion over the whole funnel: p7's x between b and c now disqualifies its c as well
    excl = F.run(ws, F.FunnelSpec(steps=["a", "b", "c"], exclusions=["x"]))
    assert [r["count"] for r in excl.table.to_pylist()] == [7, 4, 3]
    # per journey: the same here (one journey each), with journey ids
    by_journey = F.FunnelSpec(steps=["a", "b", "c"], window="24h", by="journey")
    assert F.dropped_off(ws, by_journey, 2) == ["p2/purchase/1"]
    with pytest.raises(SpecError, match="dropped_off: step must be between 1 and 2"):
        F.dropped_off(ws, by_journey, 3)


def test_event_funnel_optional_steps(duck, helpers, event_tables):
    ws = helpers.tables(duck, event_tables)
    # a -> b (optional) -> c, loose: c may follow a directly (p8)
    #   step 2: p1 p2 p3 p6 p7 = 5 (5/7 of step 1); step 3: p1 p2 p3 p6 p7 p8 = 6, against step 1: 6/7
    #   seconds to c, from the latest a or b before it: p1 3600, p2 172800 (b at 2 h), p3 3600, p6 3600,
    #   p7 7200 (b at 1 h), p8 3600 -> median 3600, p90 = 7200 + .5 * 165600 = 90000
    spec = F.FunnelSpec(steps=["a", {"touchpoint": "b", "optional": True}, "c"])
    result = F.run(ws, spec)
    assert helpers.rows(
        result.table,
        "step",
        "optional",
        "count",
        "conversion_from_previous",
        "dropped",
        "median_seconds",
        "p90_seconds",
    ) == [
        (1, False, 7, 1.0, 0, None, None),
        (2, True, 5, 0.714286, 2, 3600.0, 5760.0),
        (3, False, 6, 0.857143, 1, 3600.0, 90000.0),
    ]
    # strict with an optional step: a b c or a c, each the very next touchpoint: p1 p3 p6 and p8
    strict = F.run(ws, spec.model_copy(update={"order": "strict"}))
    assert [r["count"] for r in strict.table.to_pylist()] == [7, 4, 4]


def test_event_funnel_conditions_and_breakdown(duck, helpers):
    people = {
        "ann": [("site_visit", "2024-01-01T10:00"), ("purchase", "2024-01-02T10:00", "store")],
        "ben": [("site_visit", "2024-01-01T10:00"), ("purchase", "2024-01-02T10:00", "website")],
        # a per-step window where the first b is too early but a later one works: a 0, b 1 h, b 5 h, c 6 h
        "cas": [
            ("site_visit", "2024-01-01T00:00"),
            ("product_view", "2024-01-01T01:00"),
            ("product_view", "2024-01-01T05:00"),
            ("purchase", "2024-01-01T06:00", "store"),
        ],
    }
    persons = {"ann": {"persona": "shopper"}, "ben": {"persona": "browser"}, "cas": {"persona": "shopper"}}
    ws = helpers.build(duck, people, persons)
    spec = F.FunnelSpec(
        steps=["site_visit", {"touchpoint": "purchase", "channel": "store", "label": "store purchase"}]
    )
    result = F.run(ws, spec)
    assert helpers.rows(result.table, "label", "count") == [("site_visit", 3), ("store purchase", 2)]
    by = F.run(ws, spec.model_copy(update={"breakdown": "persona"}))
    assert helpers.rows(by.table, "breakdown", "step", "count") == [
        ("browser", 1, 1),
        ("browser", 2, 0),
        ("shopper", 1, 2),
        ("shopper", 2, 2),
    ]
    # within 2 h of the product view: the path through the second product view (5 h) reaches it
    within = F.FunnelSpec(steps=["site_visit", "product_view", {"touchpoint": "purchase", "within": "2h"}])
    assert [r["count"] for r in F.run(ws, within).table.to_pylist()] == [3, 1, 1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": ["a"]}, "funnel_steps_too_few: a funnel needs at least 2 steps, got 1"),
        (
            {"steps": ["a", "b"], "window": "soon"},
            "window: Value error, expected a duration such as 7d, 12h, 30m, 45s or 2w; got 'soon'",
        ),
        ({"steps": [{"touchpoint": "a", "optional": True}, "b"]}, "funnel_optional_first"),
        ({"steps": ["a", {"touchpoint": "b", "optional": True}]}, "funnel_optional_last"),
        (
            {"steps": ["a", "b"], "exclusions": [{"touchpoint": "x", "between": [2, 2]}]},
            "expected two step numbers 1 <= from < to <= 2; got \\[2, 2\\]",
        ),
        ({"steps": ["a", {"touchpoint": "b", "colour": "red"}]}, "colour"),
        ({"steps": ["a", "b"], "order": "unordered"}, "order"),
        ({"steps": ["a", "b"], "limit": 3}, "funnel: unknown field 'limit'"),
    ],
)
def test_funnel_spec_validation(data, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(F.FunnelSpec, data)


def test_funnel_spec_round_trips_and_parses_durations():
    spec = F.FunnelSpec(steps=["a", {"touchpoint": "b", "channel": "store", "within": "2d"}], window="1w")
    again = F.FunnelSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert spec.window_seconds == 7 * 86_400
    assert spec.steps[1].title == "touchpoint=b, channel=store"
    assert [F.parse_duration(v) for v in ("45s", "30m", "12h", "1.5d", 90)] == [45, 1800, 43_200, 129_600, 90]
    with pytest.raises(ValidationError):
        F.FunnelStep.model_validate({"touchpoint": "b", "within": "-1d"})


def test_funnel_sql_compiles_for_pyspark(duck, helpers, event_tables, phase_tables):
    """Cheap check without Spark: every funnel shape compiles to Spark SQL."""
    pytest.importorskip("pyspark", reason="the [spark] extra is not installed")
    _ = ibis.pyspark  # loads the backend, which registers its compiler options
    ws = helpers.tables(duck, event_tables)
    spec = F.FunnelSpec(
        steps=["a", {"touchpoint": "b", "optional": True, "within": "1d"}, "c"],
        window="7d",
        order="strict",
        exclusions=["x"],
        breakdown="persona",
    )
    assert "SELECT" in ibis.to_sql(F.expr(ws, spec), dialect="pyspark")
    ws = helpers.tables(duck, phase_tables)
    periods = [("2024-01-01", "2024-02-01"), ("2024-02-01", "2024-03-01")]
    spec = F.PhaseFunnelSpec(model="three-phase", breakdown="segment", compare_periods=periods)
    assert "SELECT" in ibis.to_sql(F.expr(ws, spec), dialect="pyspark")


# -- event funnels: a brute-force reference on random data -----------------------------------------------


def _reference(
    entities: dict[str, list[dict[str, Any]]], spec: F.FunnelSpec
) -> dict[int, list[tuple[str, Any, Any]]]:
    """Plain Python, by the definition: enumerate every valid path prefix of every entity.

    Returns per step (1-based) the (entity, seconds from the previous step, seconds from the first) of
    every entity that reaches it, measured at its earliest completing touchpoint, from the latest
    previous-step touchpoint and the latest start of a valid path to it.
    """
    n = len(spec.steps)
    window = spec.window_seconds
    ranges = [ex.between or (1, n) for ex in spec.exclusions]
    out: dict[int, list] = {k: [] for k in range(1, n + 1)}
    for entity, rows in entities.items():
        tps = sorted(rows, key=lambda r: (r["ts"], r["event_id"]))
        records: dict[int, dict[int, tuple[int, int]]] = {}  # step -> pos -> (max prev ts, max start)
        _extend(spec, tps, records, window, ranges, 0, None, None)
        for k, by_pos in records.items():
            p = min(by_pos)
            prev, start = by_pos[p]
            out[k].append(
                (entity, None if k == 1 else tps[p]["ts"] - prev, None if k == 1 else tps[p]["ts"] - start)
            )
    return out


def _extend(spec, tps, records, window, ranges, k, last, start) -> None:
    """Place step ``k`` (0-based) after position ``last`` in every valid way, and recurse."""
    steps = spec.steps
    if k == len(steps):
        return
    step = steps[k]
    if step.optional:
        _extend(spec, tps, records, window, ranges, k + 1, last, start)
    for p, tp in enumerate(tps):
        if last is not None and p <= last:
            continue
        if not step.when.matches(tp):
            continue
        if last is not None:
            if spec.order == "strict" and p != last + 1:
                continue
            if step.within is not None and tp["ts"] - tps[last]["ts"] > F.parse_duration(step.within):
                continue
            if window is not None and tp["ts"] - start > window:
                continue
            if any(
                a < k + 1 <= b and any(ex.when.matches(tps[q]) for q in range(last + 1, p))
                for ex, (a, b) in zip(spec.exclusions, ranges, strict=True)
            ):
                continue
        s = tp["ts"] if last is None else start
        prev = -1 if last is None else tps[last]["ts"]
        old = records.setdefault(k + 1, {}).get(p)
        records[k + 1][p] = (max(old[0], prev), max(old[1], s)) if old else (prev, s)
        _extend(spec, tps, records, window, ranges, k + 1, p, s)


NAMES = ["a", "b", "c", "x"]
CHANNELS = ["web", "store"]


@st.composite
def funnel_cases(draw):
    n_entities = draw(st.integers(1, 8))
    entities = {}
    for e in range(n_entities):
        n = draw(st.integers(0, 7))
        rows = []
        for i in range(n):
            rows.append(
                {
                    "event_id": f"e{e}-{draw(st.integers(0, 99)):02d}-{i}",
                    "ts": draw(st.integers(0, 12)) * 1800,
                    "touchpoint": draw(st.sampled_from(NAMES)),
                    "channel": draw(st.sampled_from(CHANNELS)),
                }
            )
        entities[f"u{e}"] = rows
    n_steps = draw(st.integers(2, 4))
    steps: list[Any] = []
    for k in range(n_steps):
        name = draw(st.sampled_from(NAMES[:3]))
        step: dict[str, Any] = {"touchpoint": name}
        if draw(st.booleans()) and draw(st.booleans()):
            step["channel"] = draw(st.sampled_from(CHANNELS))
        if 0 < k < n_steps - 1 and draw(st.booleans()):
            step["optional"] = True
        if k > 0 and draw(st.integers(0, 3)) == 0:
            step["within"] = f"{draw(st.integers(1, 4)) * 30}m"
        steps.append(step)
    exclusions = []
    if draw(st.booleans()):
        a = draw(st.integers(1, n_steps - 1))
        b = draw(st.integers(a + 1, n_steps))
        exclusions.append({"touchpoint": draw(st.sampled_from(["x", "b"])), "between": [a, b]})
    window = draw(st.sampled_from([None, None, "1h", "2h", "3h"]))
    order = draw(st.sampled_from(["loose", "strict"]))
    spec = F.FunnelSpec(steps=steps, window=window, order=order, exclusions=exclusions, by="journey")
    return entities, spec


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=funnel_cases())
def test_event_funnel_matches_brute_force(case, helpers, funnel_con):
    """Per entity and step, exactly: who reaches it, and the seconds from the previous and first step.

    (One query per example: the per-entity table that ``run`` aggregates and ``dropped_off`` reads; the
    aggregation itself is checked on the hand-worked fixture.)
    """
    entities, spec = case
    ws = _random_workspace(funnel_con, helpers, entities)
    expected = _reference(entities, spec)
    got = F._entity_steps(ws, spec).to_pyarrow().to_pylist()
    mine = {
        (
            r["_step"],
            r["_e"],
            None if r["_step"] == 1 else r["_reached_at"] - r["_prev_at"],
            None if r["_step"] == 1 else r["_reached_at"] - r["_start_at"],
        )
        for r in got
    }
    assert mine == {(k, *row) for k, rows in expected.items() for row in rows}


@pytest.fixture(scope="module")
def funnel_con():
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


def _random_workspace(con, helpers, entities):
    """``journey_touchpoints`` straight from the random rows: each entity is one journey (the id)."""
    import pyarrow as pa

    base = helpers.when("2024-01-01T00:00")
    rows = []
    for entity, tps in entities.items():
        for tp in tps:
            rows.append(
                {
                    "event_id": tp["event_id"],
                    "person_id": "p-" + entity,
                    "timestamp": base + timedelta(seconds=tp["ts"]),
                    "channel": tp["channel"],
                    "touchpoint": tp["touchpoint"],
                    "journey_id": entity,
                    "journey_type": "purchase",
                    "is_conversion": False,
                }
            )
    table = pa.Table.from_pylist(rows, schema=helpers.JT_SCHEMA)
    return helpers.tables(con, {"journey_touchpoints": table})


def test_reference_agrees_with_a_hand_case():
    """The reference itself, on p3 of the fixture: a 0 h, a 30 h, b 31 h, c 32 h with a 24 h window."""
    rows = [
        {"event_id": f"e{i}", "ts": h * 3600, "touchpoint": n, "channel": "web"}
        for i, (n, h) in enumerate([("a", 0), ("a", 30), ("b", 31), ("c", 32)])
    ]
    spec = F.FunnelSpec(steps=["a", "b", "c"], window="24h")
    out = _reference({"p3": rows}, spec)
    assert out == {1: [("p3", None, None)], 2: [("p3", 3600, 3600)], 3: [("p3", 3600, 7200)]}


def test_matcher_is_reused_for_conditions():
    step = F.FunnelStep.model_validate({"touchpoint": "purchase", "channel": "store"})
    assert step.when == Matcher(touchpoint=["purchase"], channel=["store"])


# -- the command line ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_workspace(tmp_path_factory, helpers):
    from journeylens.store import Workspace

    path = tmp_path_factory.mktemp("cli") / "ws"
    tables = helpers.built_tables({**PHASE_PEOPLE, **EVENT_PEOPLE}, PHASE_PERSONS)
    ws = Workspace(path)
    for name, table in tables.items():
        ws.con.create_table(name, table, overwrite=True)
    ws.close()
    return path


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_funnel(cli_workspace, monkeypatch):
    runner = CliRunner()
    app = _app()
    out = runner.invoke(app, ["funnel", "--phases", "-w", str(cli_workspace), "--format", "csv"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("phase_index,phase,label,reached,visited")
    # the event people's journeys have no phase (a, b, c, x match no rule): PHASE_PEOPLE's figures
    assert [line.split(",")[3] for line in lines[1:]] == ["5", "5", "3", "2", "1"]

    out = runner.invoke(
        app, ["funnel", "--steps", "a,b,c", "--window", "24h", "-w", str(cli_workspace), "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    assert '"count":7' in out.output and '"count":4' in out.output

    monkeypatch.setenv("JOURNEYLENS_WORKSPACE", str(cli_workspace))
    out = runner.invoke(
        app, ["funnel", "--steps", "a,b,c", "--window", "24h", "--dropped-off", "2", "--format", "csv"]
    )
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["person_id", "p2"]
    out = runner.invoke(app, ["funnel", "--steps", "a,b?,c", "--strict", "--by", "journey"])
    assert out.exit_code == 0, out.output
    assert "funnel per journey (strict)" in out.output

    out = runner.invoke(
        app,
        [
            "funnel",
            "--phases",
            "--breakdown",
            "persona",
            "--segment",
            "segment=b2c",
            "--compare",
            "2024-01-01..2024-02-01",
            "--compare",
            "2024-02-01..2024-04-01",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "periods side by side" in out.output

    out = runner.invoke(app, ["funnel", "--steps", "a"])
    assert out.exit_code == 2
    assert "funnel_steps_too_few: a funnel needs at least 2 steps, got 1" in out.output
    out = runner.invoke(app, ["funnel"])
    assert out.exit_code == 2
    assert "expected either --phases or --steps a,b,c" in out.output
    out = runner.invoke(app, ["funnel", "--phases", "--segment", "nocolumn"])
    assert out.exit_code == 2
    assert "--segment 'nocolumn': expected COLUMN=VALUE" in out.output
    out = runner.invoke(app, ["funnel", "--phases", "--format", "xml"])
    assert out.exit_code == 2


def test_the_journeylens_app_has_the_commands():
    from journeylens.cli import app

    runner = CliRunner()
    for command in ("funnel", "touchpoints", "paths"):
        out = runner.invoke(app, [command, "--help"])
        assert out.exit_code == 0, out.output
        assert "--workspace" in out.output and "JOURNEYLENS_WORKSP" in out.output  # the shared option
