"""A brute-force reference of the journey rules, in plain Python, against the engines.

``reference_journeys`` implements the documented rules one touchpoint at a time: identity stitching
(``journeylens.journeys.stitching``), typing and splitting (``journeylens.journeys.build``) and what the
journey model's fields mean (``journeylens.journeys.models.journey_model``). Hypothesis generates small
worlds (a few persons and devices, a vocabulary that opens, joins, converts and ends every journey type,
frequent equal timestamps and gaps right at the 14- and 30-day timeouts), and each touchpoint's
``(journey_id, position)`` from the engine must equal the reference's.

The engine side is ``split_journeys(stitch(...))``, the part of the expression ``build()`` materialises that
places touchpoints in journeys (compiled once, run on each example's data: a whole build costs seconds);
``test_build_matches_the_reference`` runs ``build()`` itself on a fixed, hand-worked world.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylens.journeys import build
from journeylens.journeys.build import clean_cuts, flagged_rows, journey_phases, split_journeys
from journeylens.journeys.models import (
    JourneyModel,
    JourneyType,
    PhaseModel,
    load_journey_model,
    load_phase_model,
)
from journeylens.journeys.models.matcher import any_matches
from journeylens.journeys.stitching import ANON_PREFIX, identity_links, identity_map, merge_links, stitch
from journeylens.schema import TOUCHPOINTS_SCHEMA
from journeylens.store import Workspace

Row = Mapping[str, Any]
Placement = dict[str, tuple[str, int]]  # event_id -> (journey_id, position)

DAY = 86_400
CUSTOMER = load_journey_model("default")
BUYER = CUSTOMER.model_copy(update={"view": "buyer"})


# -- the reference ----------------------------------------------------------------------------------------


def reference_journeys(rows: list[Row], jm: JourneyModel) -> Placement:
    """Each touchpoint's (journey_id, position) by the documented rules, one touchpoint at a time."""
    # stitching: an anonymous id belongs to the person of its earliest linking touchpoint (a row with both
    # ids), by (timestamp, event_id); a row's own person_id always wins; never linked -> "anon:" + id
    owner: dict[str, str] = {}
    for r in sorted((r for r in rows if r["person_id"] and r["anonymous_id"]), key=_order):
        owner.setdefault(r["anonymous_id"], r["person_id"])
    persons: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        key = r["person_id"] or owner.get(r["anonymous_id"]) or ANON_PREFIX + r["anonymous_id"]
        persons[key].append(r)
    out: Placement = {}
    for key, touches in persons.items():
        touches.sort(key=_order)
        out.update(_split(key, touches, _types(touches, jm), jm))
    return out


def _order(r: Row) -> tuple[datetime, str]:
    return r["timestamp"], r["event_id"]


def _seconds(r: Row) -> int:
    return int(r["timestamp"].timestamp())


def _hint(r: Row, jm: JourneyModel) -> str | None:
    """The journey_type column where it names a type of the model (a hint naming no type is ignored)."""
    return r["journey_type"] if r["journey_type"] in jm.type_names else None


def _ends(jt: JourneyType, r: Row, jm: JourneyModel) -> bool:
    """A journey of type ``jt`` closes right after ``r`` (in the buyer view also at its conversion)."""
    return any_matches(jt.ends, r) or (jm.view == "buyer" and any_matches(jt.conversion, r))


def _types(touches: list[Row], jm: JourneyModel) -> list[tuple[str, int | None]]:
    """(journey type, stretch) per touchpoint of one person, in order.

    For each non-default type T, its candidates (hinted T, or unhinted and opening T or a member of T) are
    cut into stretches where the gap exceeds T's timeout or after a touchpoint that ends T; within a
    stretch, the touchpoints from the first opener on are claimed by T, opened at the latest opener so far.
    A touchpoint claimed by several types goes to the one opened most recently (ties: the model's order);
    an unclaimed one is the default type's.
    """
    best: list[tuple[tuple[int, int], str, int] | None] = [None] * len(touches)
    for order, jt in enumerate(jm.journey_types):
        if jt.default:
            continue
        stretch, last, last_ends, opened_at = -1, None, False, None
        for i, r in enumerate(touches):
            hint = _hint(r, jm)
            opens = hint == jt.name or (hint is None and any_matches(jt.opens, r))
            member = opens or (hint is None and any_matches(jt.members or [], r))
            if not member:
                continue
            now = _seconds(r)
            if last is None or now - last > jt.timeout_seconds or last_ends:
                stretch, opened_at = stretch + 1, None
            last, last_ends = now, _ends(jt, r, jm)
            if opens:
                opened_at = now
            if opened_at is None:
                continue
            rank = (opened_at, -order)
            if best[i] is None or rank > best[i][0]:
                best[i] = (rank, jt.name, stretch)
    default = jm.default_type.name
    return [(default, None) if b is None else (b[1], b[2]) for b in best]


@dataclass
class _Open:
    """The journey of one type that is running while a person's touchpoints are read in order."""

    seq: int
    position: int
    last: int
    ends_after: bool
    stretch: int | None
    converted: bool


def _split(key: str, touches: list[Row], types: list[tuple[str, int | None]], jm: JourneyModel) -> Placement:
    """Journeys per (person, type): the default type splits at a gap over its timeout, after an ``ends``
    touchpoint (buyer view: after a conversion), and at a further conversion within the journey when it
    has repeat_after_conversion; other types have one journey per claimed stretch."""
    out: Placement = {}
    running: dict[str, _Open] = {}
    for r, (name, stretch) in zip(touches, types, strict=True):
        jt = jm.journey_type(name)
        now, conversion = _seconds(r), any_matches(jt.conversion, r)
        j = running.get(name)
        if jt.default:
            new = (
                j is None
                or now - j.last > jt.timeout_seconds
                or j.ends_after
                or (jt.repeat_after_conversion and conversion and j.converted)
            )
        else:
            new = j is None or stretch != j.stretch
        if j is None or new:
            j = running[name] = _Open(
                seq=(j.seq + 1 if j else 1),
                position=0,
                last=now,
                ends_after=False,
                stretch=stretch,
                converted=False,
            )
        j.position += 1
        j.last, j.ends_after, j.converted = now, _ends(jt, r, jm), j.converted or conversion
        out[r["event_id"]] = (f"{key}/{name}/{j.seq}", j.position)
    return out


# -- worlds -----------------------------------------------------------------------------------------------

BASE = datetime(2024, 1, 1, tzinfo=UTC)
# few persons and devices, so that they meet: devices linked by both persons, persons on several devices
PERSONS = ["p1", "p2"]
DEVICES = ["d1", "d2", "d3"]
# openers, members, conversions and ends of every default journey type; purchases and logins (links) often
VOCABULARY = [
    "ad_view", "site_visit", "product_view", "purchase", "purchase", "purchase", "delivery",
    "login", "login", "login", "complaint", "support_call", "support_call", "survey_response",
    "service_request", "repair_request", "return_request", "refund", "vacancy_view", "interview", "hired",
]  # fmt: skip
HINTS = [None] * 12 + ["job_application", "complaint", "return", "purchase", "warranty"]
# gaps between the moments touchpoints happen at: equal timestamps, and the timeouts (14, 30 days) +- 1 s
GAPS = [0, 1, 3_600, DAY, 7 * DAY, 14 * DAY - 1, 14 * DAY, 14 * DAY + 1, 30 * DAY - 1, 30 * DAY, 30 * DAY + 1]


@st.composite
def worlds(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Touchpoint rows (``TOUCHPOINTS_SCHEMA`` columns) of a few persons and devices over up to ~150 days."""
    # a handful of moments: a touchpoint happens at one of them (or 1 s after), so ties are frequent
    moments = list(itertools.accumulate(draw(st.lists(st.sampled_from(GAPS), min_size=1, max_size=5))))
    n = draw(st.integers(min_value=1, max_value=20))
    # event ids in an order of their own, so that ties on the timestamp are not broken by insertion order
    ids = draw(st.permutations(range(n)))
    rows = []
    for i in range(n):
        touchpoint = draw(st.sampled_from(VOCABULARY))
        # a login carries both ids (it links the device); anything else may carry either or both
        who = (
            "both" if touchpoint == "login" else draw(st.sampled_from(["person", "device", "device", "both"]))
        )
        seconds = draw(st.sampled_from(moments)) + draw(st.sampled_from([0, 0, 1]))
        row = dict.fromkeys(TOUCHPOINTS_SCHEMA.names)
        row.update(
            event_id=f"e{ids[i]:02d}",
            person_id=draw(st.sampled_from(PERSONS)) if who != "device" else None,
            anonymous_id=draw(st.sampled_from(DEVICES)) if who != "person" else None,
            timestamp=BASE + timedelta(seconds=seconds),
            channel="website",
            touchpoint=touchpoint,
            # a vacancy (as content) opens a job application
            content_type=draw(st.sampled_from([None] * 9 + ["vacancy"])),
            journey_type=draw(st.sampled_from(HINTS)),
            row_hash=f"h{i}",
            import_id=1,
        )
        rows.append(row)
    return rows


# -- the engines --------------------------------------------------------------------------------------------


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=TOUCHPOINTS_SCHEMA)


def _load(con: ibis.BaseBackend, rows: list[dict[str, Any]]) -> None:
    """Replace the rows of ``touchpoints`` (on Spark a temporary view, which saves a table write per example)."""
    if con.name == "duckdb":
        con.create_table("touchpoints", _table(rows), overwrite=True)
    else:
        con.create_view("touchpoints", ibis.memtable(_table(rows)), overwrite=True)


def _fetch(con: ibis.BaseBackend, sql: str) -> list[tuple]:
    result = con.raw_sql(sql)
    return result.fetchall() if con.name == "duckdb" else [tuple(r) for r in result.collect()]


def engine_placement(con: ibis.BaseBackend, jm: JourneyModel) -> Callable[[list[dict[str, Any]]], Placement]:
    """A function: rows -> each touchpoint's (journey_id, position) on ``con``.

    The expression is the stitching and splitting ``build()`` runs (``journey_touchpoints`` without the
    phases, which do not move touchpoints). It is compiled to SQL once; each call replaces the rows of
    ``touchpoints`` (on Spark a temporary view, which saves a table write per example) and runs that SQL.
    """
    _load(con, [])
    tp = con.table("touchpoints")
    expr = split_journeys(stitch(tp, identity_map(tp)), jm).select("event_id", "journey_id", "position")
    sql = con.compile(expr)

    def run(rows: list[dict[str, Any]]) -> Placement:
        _load(con, rows)
        return {e: (j, int(p)) for e, j, p in _fetch(con, sql)}

    return run


def _check(
    run: Callable[[list[dict[str, Any]]], Placement], jm: JourneyModel, rows: list[dict[str, Any]]
) -> None:
    got = run(rows)
    expected = reference_journeys(rows, jm)
    assert len(got) == len(rows)  # each touchpoint exactly once
    wrong = {e: (got.get(e), expected[e]) for e in expected if got.get(e) != expected[e]}
    assert not wrong, f"engine vs reference: {wrong}"


@pytest.mark.parametrize("module_backend", ["duckdb"], indirect=True)
@pytest.mark.parametrize("jm", [CUSTOMER, BUYER], ids=["customer", "buyer"])
def test_engine_matches_the_reference_on_duckdb(module_backend, jm):
    run = engine_placement(module_backend, jm)

    @settings(
        max_examples=50 if jm.view == "customer" else 20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(rows=worlds())
    def check(rows):
        _check(run, jm, rows)

    check()


@pytest.mark.parametrize("module_backend", [pytest.param("spark", marks=pytest.mark.spark)], indirect=True)
def test_engine_matches_the_reference_on_spark(module_backend):
    run = engine_placement(module_backend, CUSTOMER)

    @settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=worlds())
    def check(rows):
        _check(run, CUSTOMER, rows)

    check()


# -- build() on a fixed world ------------------------------------------------------------------------------


def _row(
    event_id: str, touchpoint: str, when: str, person: str | None, device: str | None = None, **extra: Any
) -> dict[str, Any]:
    row = dict.fromkeys(TOUCHPOINTS_SCHEMA.names)
    row.update(
        event_id=event_id,
        person_id=person,
        anonymous_id=device,
        timestamp=datetime.fromisoformat(when).replace(tzinfo=UTC),
        channel="website",
        touchpoint=touchpoint,
        row_hash=event_id,
        import_id=1,
    )
    row.update(extra)
    return row


# every rule at once: a device linked by two persons at the same second, a complaint and a return opened at
# the same moment beside a purchase journey, a hinted job application, repeat purchases, ties, and gaps at
# the timeouts
FIXED_WORLD = [
    _row("x1", "site_visit", "2024-01-01T10:00", None, "tab"),
    _row("x3", "login", "2024-01-01T11:00", "p2", "tab"),
    _row("x2", "login", "2024-01-01T11:00", "p1", "tab"),
    _row("x0", "login", "2024-01-02T11:00", "p2", "tab"),
    _row("x4", "purchase", "2024-01-03T10:00", "p1"),
    _row("x5", "complaint", "2024-01-04T10:00", None, "tab"),
    _row("x6", "return_request", "2024-01-04T10:00", "p1"),
    _row("x7", "support_call", "2024-01-05T10:00", "p1"),
    _row("x8", "refund", "2024-01-06T10:00", "p1"),
    _row("x9", "support_call", "2024-01-19T10:00", "p1"),
    _row("y0", "purchase", "2024-01-19T10:00", None, "tab"),
    _row("y1", "site_visit", "2024-02-18T10:00", "p1"),
    _row("y2", "site_visit", "2024-03-19T10:00:01", "p1"),
    _row("y3", "site_visit", "2024-01-10T10:00", "p3", journey_type="job_application"),
    _row("y4", "interview", "2024-01-12T10:00", "p3"),
    _row("y5", "hired", "2024-01-12T10:00", "p3"),
    _row("y6", "interview", "2024-01-13T10:00", "p3"),
    _row("y7", "support_call", "2024-01-13T10:00", None, "lonely"),
]

# worked out by hand (customer view):
# - "tab": p1's link x2 and p2's link x3 are both at 01-01 11:00; x2 < x3, so p1 owns the device (p2's lowest
#   event id, x0, is a later link and does not count); x3 and x0 carry p2's own id and stay p2's.
# - p1's complaint x5 and return request x6 are both at 01-04 10:00: the support call x7 is claimed by both,
#   opened at the same second, so the model's order decides: complaint (listed before return). The refund
#   x8 is the return's and ends it. x9 is 14 days after x7 (exactly the complaint timeout): still the
#   complaint's; for the return it comes after the refund, a stretch without a return request.
# - p1's purchase journeys: x1, x2, x4 (the purchase); y0 (a further purchase, 16 days later) starts journey
#   2; y1 is exactly 30 days after y0 (stays); y2 is 30 days + 1 s after y1 (2024 is a leap year): journey 3.
# - p3: the hinted site visit opens a job application; the interview and the hire (same second, y4 < y5)
#   join; the hire ends it, so the next interview (no opener) falls back to the purchase type.
# - "lonely" is never linked: an unidentified visitor's support call, a purchase-type journey.
EXPECTED_CUSTOMER = {
    "x1": ("p1/purchase/1", 1), "x2": ("p1/purchase/1", 2), "x4": ("p1/purchase/1", 3),
    "y0": ("p1/purchase/2", 1), "y1": ("p1/purchase/2", 2), "y2": ("p1/purchase/3", 1),
    "x5": ("p1/complaint/1", 1), "x7": ("p1/complaint/1", 2), "x9": ("p1/complaint/1", 3),
    "x6": ("p1/return/1", 1), "x8": ("p1/return/1", 2),
    "x3": ("p2/purchase/1", 1), "x0": ("p2/purchase/1", 2),
    "y3": ("p3/job_application/1", 1), "y4": ("p3/job_application/1", 2), "y5": ("p3/job_application/1", 3),
    "y6": ("p3/purchase/1", 1),
    "y7": ("anon:lonely/purchase/1", 1),
}  # fmt: skip
# buyer view: a purchase ends its journey, so y0 (after x4) and y1 (after y0) each start one, and y2 (a gap)
# another; the return and the job application already end at their conversions
EXPECTED_BUYER = EXPECTED_CUSTOMER | {
    "y0": ("p1/purchase/2", 1),
    "y1": ("p1/purchase/3", 1),
    "y2": ("p1/purchase/4", 1),
}


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
@pytest.mark.parametrize(
    ("jm", "expected"), [(CUSTOMER, EXPECTED_CUSTOMER), (BUYER, EXPECTED_BUYER)], ids=["customer", "buyer"]
)
def test_build_matches_the_reference(backend, jm, expected):
    backend.create_table("touchpoints", _table(FIXED_WORLD), overwrite=True)
    ws = Workspace.from_backend(backend)
    build(ws, journey_model=jm)
    got = {
        r["event_id"]: (r["journey_id"], r["position"])
        for r in ws.journey_touchpoints.to_pyarrow().to_pylist()
    }
    assert reference_journeys(FIXED_WORLD, jm) == expected  # the reference agrees with the hand
    assert got == expected  # and so does build()


# -- phases within journeys: carried forward, regressions, visits and time per phase ----------------------

FIVE = load_phase_model("five-phase")  # default_phase: null (a journey may start unassigned)
FIVE_DEFAULT = FIVE.model_copy(update={"default_phase": "awareness"})

PhaseRow = tuple[str | None, bool]  # (phase, phase_regression)
PhaseStay = tuple[datetime, datetime, int, int, int]  # entered, exited, seconds, touchpoints, visits


def reference_phases(
    rows: list[Row], placement: Placement, pm: PhaseModel
) -> tuple[dict[str, PhaseRow], dict[tuple[str, str], PhaseStay]]:
    """Each touchpoint's carried phase and regression flag, and per (journey, phase) its stay, one
    touchpoint at a time: a touchpoint's own phase is ``PhaseModel.classify`` (neutral -> none); without
    one it keeps the journey's previous phase (the first touchpoint: ``default_phase``); a regression is a
    move to an earlier phase; a visit runs from its first touchpoint to the journey's next touchpoint after
    it (its own last one at the journey's end), and a phase's time is the sum of its visits."""
    journeys: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        journeys[placement[r["event_id"]][0]].append(r)
    touch: dict[str, PhaseRow] = {}
    visits: dict[tuple[str, str], list[list[Row]]] = defaultdict(list)
    for journey_id, touches in journeys.items():
        touches.sort(key=lambda r: placement[r["event_id"]][1])
        carried: str | None = None
        runs: list[tuple[str | None, list[Row]]] = []
        for i, r in enumerate(touches):
            own = pm.classify(r)
            before = carried
            carried = own if own is not None else (pm.default_phase if i == 0 else carried)
            regression = before is not None and carried is not None and pm.index(carried) < pm.index(before)
            touch[r["event_id"]] = (carried, regression)
            if runs and runs[-1][0] == carried:
                runs[-1][1].append(r)
            else:
                runs.append((carried, [r]))
        for k, (phase, run) in enumerate(runs):
            if phase is None:
                continue
            exit_row = runs[k + 1][1][0] if k + 1 < len(runs) else run[-1]
            visits[journey_id, phase].append([run[0], exit_row, *run])
    stays = {
        key: (
            min(v[0]["timestamp"] for v in vs),
            max(v[1]["timestamp"] for v in vs),
            sum(_seconds(v[1]) - _seconds(v[0]) for v in vs),
            sum(len(v) - 2 for v in vs),
            len(vs),
        )
        for key, vs in visits.items()
    }
    return touch, stays


def engine_phases(
    con: ibis.BaseBackend, jm: JourneyModel, pm: PhaseModel
) -> Callable[[list[dict[str, Any]]], tuple[dict[str, PhaseRow], dict, dict]]:
    """rows -> (each touchpoint's phase and regression, the journey_phases stays computed from the build's
    per-touchpoint columns, and the same computed from a table without them) on ``con``."""
    _load(con, [])
    tp = con.table("touchpoints")
    split = split_journeys(stitch(tp, identity_map(tp)), jm, pm=pm)
    split = split.mutate(person_id=split.person_key)
    touch_sql = con.compile(split.select("event_id", "phase", "phase_regression"))
    stay_columns = [
        "journey_id",
        "phase",
        "entered_at",
        "exited_at",
        "seconds_in_phase",
        "touchpoints",
        "visits",
    ]
    fast_sql = con.compile(journey_phases(split).select(*stay_columns))
    slow_sql = con.compile(journey_phases(split.drop("_next_ts", "_run_start")).select(*stay_columns))

    def stays(sql: str) -> dict[tuple[str, str], PhaseStay]:
        out = {}
        for j, p, entered, exited, seconds, n, v in _fetch(con, sql):
            out[j, p] = (_utc(entered), _utc(exited), int(seconds), int(n), int(v))
        return out

    def run(rows: list[dict[str, Any]]):
        _load(con, rows)
        touch = {e: (p, bool(r)) for e, p, r in _fetch(con, touch_sql)}
        return touch, stays(fast_sql), stays(slow_sql)

    return run


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_phases(run, jm: JourneyModel, pm: PhaseModel, rows: list[dict[str, Any]]) -> None:
    touch, fast, slow = run(rows)
    expected_touch, expected_stays = reference_phases(rows, reference_journeys(rows, jm), pm)
    assert touch == expected_touch
    assert fast == expected_stays
    assert slow == expected_stays


@pytest.mark.parametrize(
    ("module_backend", "pm", "examples"),
    [
        pytest.param("duckdb", FIVE, 40, id="duckdb-no-default"),
        pytest.param("duckdb", FIVE_DEFAULT, 40, id="duckdb-default-awareness"),
        pytest.param("spark", FIVE, 5, id="spark-no-default", marks=pytest.mark.spark),
    ],
    indirect=["module_backend"],
)
def test_phases_match_the_reference(module_backend, pm, examples):
    run = engine_phases(module_backend, CUSTOMER, pm)

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=worlds())
    def check(rows):
        _check_phases(run, CUSTOMER, pm, rows)

    check()


# -- incremental builds: the same tables as a full build ---------------------------------------------------


@st.composite
def two_imports(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A world split into a first import and a second one.

    The world is two worlds of the same persons and devices, the second one after a pause of up to two
    timeouts (so that there are clean cuts, and journeys before them to keep). The second import is either
    the later touchpoints (new data, the usual case) or any of them (late data, links that move devices
    from one key to another)."""
    early = draw(worlds())
    pause = draw(st.sampled_from([0, 14 * DAY, 30 * DAY, 30 * DAY + 1, 45 * DAY, 60 * DAY]))
    end = max(r["timestamp"] for r in early)
    late = [
        r
        | {
            "event_id": "n" + r["event_id"],
            "timestamp": end + timedelta(seconds=pause) + (r["timestamp"] - BASE),
        }
        for r in draw(worlds())
    ]
    rows = early + late
    if draw(st.booleans()):
        since = draw(st.sampled_from(sorted({r["timestamp"] for r in rows})))
        second = [r["timestamp"] >= since for r in rows]
    else:
        second = [draw(st.booleans()) for _ in rows]
    if all(second):
        second[0] = False
    first = [r for r, s in zip(rows, second, strict=True) if not s]
    later = [r | {"import_id": 2} for r, s in zip(rows, second, strict=True) if s]
    return first, later


def _derived(ws: Workspace) -> dict[str, list[str]]:
    """The derived tables (journeys: the view, with status) as sorted row texts."""
    names = ("journeys", "journey_touchpoints", "journey_phases", "identities", "identity_conflicts")
    return {
        name: sorted(repr(sorted(r.items())) for r in ws.table(name).to_pyarrow().to_pylist())
        for name in names
    }


@pytest.mark.parametrize(
    ("jm", "pm"),
    [(CUSTOMER, "five-phase"), (BUYER, "five-phase"), (CUSTOMER, "see-think-do-care")],
    ids=["customer", "buyer", "audience-rules"],
)
def test_an_incremental_build_equals_a_full_build_on_random_worlds(jm, pm):
    # each touchpoint's journey, position and phase, every journey (number, repeat flag, counts) and every
    # phase stay: rebuilding from a clean cut gives what a full build of all the data gives
    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(split=two_imports())
    def check(split):
        first, later = split
        con = ibis.duckdb.connect()
        con.create_table("touchpoints", _table(first), overwrite=True)
        ws = Workspace.from_backend(con)
        build(ws, model=pm, journey_model=jm)
        con.insert("touchpoints", _table(later))
        result = build(ws, model=pm, journey_model=jm)
        assert result.mode == "incremental"
        incremental = _derived(ws)
        build(ws, model=pm, journey_model=jm, full=True)
        assert incremental == _derived(ws)
        con.disconnect()

    check()


# -- the incremental build's pieces, each against its definition ----------------------------------------


def _rows_of(con: ibis.BaseBackend, expr: ibis.Table) -> list[dict[str, Any]]:
    return con.to_pyarrow(expr).to_pylist()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=worlds(), data=st.data())
def test_merged_links_are_the_links_of_all_the_touchpoints(rows, data):
    # the incremental build keeps each (device, person) pair's links and merges them with the new rows':
    # first and last time, the first linking event (lowest id at the first time) and the count must be
    # what the links of all the touchpoints at once give
    later = [data.draw(st.booleans()) for _ in rows]
    first = [r for r, s in zip(rows, later, strict=True) if not s]
    second = [r for r, s in zip(rows, later, strict=True) if s]
    con = ibis.duckdb.connect()
    merged = merge_links(
        identity_links(ibis.memtable(_table(first))), identity_links(ibis.memtable(_table(second)))
    )
    whole = identity_links(ibis.memtable(_table(rows)))
    key = lambda r: (r["anonymous_id"], r["person_id"])  # noqa: E731
    assert sorted(_rows_of(con, merged), key=key) == sorted(_rows_of(con, whole), key=key)
    con.disconnect()


def reference_cuts(rows: list[Row], jm: JourneyModel) -> dict[str, tuple[Any, bool, Any]]:
    """Per person of the flagged rows: (cut, append-only, written from), by the definitions in
    :func:`clean_cuts`, one touchpoint and one earlier touchpoint at a time."""
    persons: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        persons[r["person_key"]].append(r)
    others = [(i, jt) for i, jt in enumerate(jm.journey_types) if not jt.default]
    out = {}
    for key, touches in persons.items():
        touches.sort(key=lambda r: (r["timestamp"], r["event_id"]))
        whole = any(r["_jl_whole"] for r in touches)
        clean = []
        for k, r in enumerate(touches):
            earlier = touches[:k]
            gap = [(r["timestamp"] - e["timestamp"]).total_seconds() for e in earlier]
            ok = not any(e["_jl_new"] for e in earlier) and all(
                g > jm.default_type.timeout_seconds for g in gap
            )
            for i, jt in others:
                ok = ok and all(
                    g > jt.timeout_seconds for g, e in zip(gap, earlier, strict=True) if e[f"_jl_member{i}"]
                )
            if ok:
                clean.append(r["timestamp"])
        new = [r["timestamp"] for r in touches if r["_jl_new"]]
        old = [r["timestamp"] for r in touches if not r["_jl_new"]]
        cut = None if whole else max(clean)
        append = not whole and (not old or (bool(new) and min(new) > max(old)))
        out[key] = (cut, append, min(new) if append else cut)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split=two_imports(), whole=st.sets(st.sampled_from(PERSONS + [ANON_PREFIX + d for d in DEVICES])))
def test_clean_cuts_match_their_definition(split, whole):
    # the latest clean touchpoint at or before each person's first new one: after every earlier
    # touchpoint by more than the default type's timeout, and by more than each other type's timeout after
    # every earlier one that may belong to it (one running maximum in the engine, one loop per type here)
    first, later = split
    con = ibis.duckdb.connect()
    tp = ibis.memtable(_table(first + later))
    keyed = stitch(tp, identity_map(tp))
    keyed = keyed.mutate(_jl_new=keyed.import_id == 2, _jl_whole=keyed.person_key.isin(list(whole) or [""]))
    flagged = con.create_table("flagged", flagged_rows(keyed, CUSTOMER, FIVE, keep=("_jl_new", "_jl_whole")))
    got = {
        r["person_key"]: (r["_cut"], r["_jl_append"], r["_jl_from"])
        for r in _rows_of(con, clean_cuts(flagged, CUSTOMER))
    }
    assert got == reference_cuts(_rows_of(con, flagged), CUSTOMER)
    con.disconnect()
