"""Journey building on DuckDB and Spark: stitching, typing, splitting, status, involvement, phases, increments.

Every expectation below is worked out by hand from the rules in ``journeylens.journeys.build`` (splitting and
typing), ``journeylens.journeys.stitching`` (identities), ``builtin/journeys-default.yaml`` (journey types)
and the phase models' YAML; the reasoning sits next to each value.

A Spark build costs seconds (a deep plan of windows), so the scenarios that share a journey model and a phase
model live in one workspace (``BOOK``), built once per engine and read by many tests; every scenario has
persons and devices of its own, so they cannot interfere (the only shared thing, the data's end, is pinned by
the person ``clock``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pytest

from journeylens.journeys import BuildResult, build
from journeylens.journeys.models import Involvement, list_phase_models, load_journey_model, load_phase_model
from journeylens.store import Workspace

DAY = 86_400
HOUR = 3_600

#: the data's end: the latest touchpoint of the book (status is computed against it)
DATA_END = "2024-06-30T00:00"

BOOK: dict[str, list[tuple[Any, ...]]] = {
    "clock": [("site_visit", DATA_END)],
    # -- inactivity timeout (purchase: 30 days = 2,592,000 s) --------------------------------------------
    "tina": [("site_visit", "2024-01-01T00:00"), ("site_visit", "2024-01-31T00:00")],  # gap == 30 days
    "tom": [("site_visit", "2024-01-01T00:00"), ("site_visit", "2024-01-31T00:00:01")],  # 30 days + 1 s
    # -- equal timestamps: ordered by event_id (given out of order on purpose) ----------------------------
    "eve": [
        ("purchase", "2024-02-10T10:00", {"event_id": "eve-b", "revenue": 30.0}),
        ("ad_view", "2024-02-10T10:00", {"event_id": "eve-a", "channel": "display"}),
        ("site_visit", "2024-02-10T10:00", {"event_id": "eve-c"}),
        ("purchase", "2024-02-10T10:00", {"event_id": "eve-d", "revenue": 30.0}),
    ],
    # -- stitching -------------------------------------------------------------------------------------
    "sam": [  # anonymous before and after the login that carries both ids
        ("site_visit", "2024-03-01T10:00", {"person_id": None, "anonymous_id": "sam-phone"}),
        ("login", "2024-03-01T10:05", {"anonymous_id": "sam-phone"}),
        ("product_view", "2024-03-01T10:10", {"person_id": None, "anonymous_id": "sam-phone"}),
        ("purchase", "2024-03-02T10:00", {"person_id": None, "anonymous_id": "sam-phone", "revenue": 40.0}),
    ],
    "dora": [  # two devices, each linked by a login
        (
            "ad_view",
            "2024-03-05T08:00",
            {"person_id": None, "anonymous_id": "dora-phone", "channel": "display"},
        ),
        ("login", "2024-03-05T08:01", {"anonymous_id": "dora-phone"}),
        ("site_visit", "2024-03-06T20:00", {"person_id": None, "anonymous_id": "dora-laptop"}),
        ("login", "2024-03-06T20:01", {"anonymous_id": "dora-laptop"}),
        ("purchase", "2024-03-07T09:00", {"person_id": None, "anonymous_id": "dora-laptop", "revenue": 60.0}),
    ],
    # a family tablet, linked by carl first and by cleo later
    "tablet": [
        ("site_visit", "2024-03-10T09:00", {"person_id": None, "anonymous_id": "family-tablet"}),
        ("product_view", "2024-03-12T09:00", {"person_id": None, "anonymous_id": "family-tablet"}),
    ],
    "carl": [
        ("login", "2024-03-10T09:30", {"anonymous_id": "family-tablet"}),
        ("purchase", "2024-03-11T09:00"),
    ],
    "cleo": [("login", "2024-03-11T18:00", {"anonymous_id": "family-tablet"})],
    # a kiosk linked by ivy and ida at the same second: the earliest linking touchpoint is ordered by
    # (timestamp, event_id), so ida's "kiosk-m" beats ivy's "kiosk-z" (ivy's later link "kiosk-a" is later)
    "kiosk": [
        ("site_visit", "2024-03-20T09:00", {"person_id": None, "anonymous_id": "kiosk-1"}),
        ("login", "2024-03-20T10:00", {"person_id": "ivy", "anonymous_id": "kiosk-1", "event_id": "kiosk-z"}),
        ("login", "2024-03-20T10:00", {"person_id": "ida", "anonymous_id": "kiosk-1", "event_id": "kiosk-m"}),
        ("login", "2024-03-21T10:00", {"person_id": "ivy", "anonymous_id": "kiosk-1", "event_id": "kiosk-a"}),
    ],
    "ghost": [("site_visit", "2024-03-15T12:00", {"person_id": None, "anonymous_id": "ghost-cookie"})],
    # -- journey types -----------------------------------------------------------------------------------
    "kim": [  # a complaint in the middle of a purchase journey
        ("ad_view", "2024-02-01T09:00", {"channel": "display"}),
        ("product_view", "2024-02-02T09:00"),
        ("complaint", "2024-02-03T09:00", {"channel": "call_centre"}),
        ("support_call", "2024-02-04T09:00", {"channel": "call_centre"}),
        ("site_visit", "2024-02-05T09:00"),
        ("support_call", "2024-02-18T09:00", {"channel": "call_centre"}),  # 14 days after the last: stays
        ("purchase", "2024-02-20T09:00", {"revenue": 80.0}),
        ("support_call", "2024-03-03T09:00:01", {"channel": "call_centre"}),  # 14 days + 1 s: too late
    ],
    "rita": [  # a return journey ends at its refund
        ("purchase", "2024-04-01T10:00", {"revenue": 120.0}),
        ("return_request", "2024-04-05T10:00"),
        ("support_call", "2024-04-06T10:00", {"channel": "call_centre"}),
        ("refund", "2024-04-08T10:00", {"revenue": -120.0}),
        ("support_call", "2024-04-09T10:00", {"channel": "call_centre"}),
    ],
    "jack": [  # a job application, opened by the journey_type hint (a site visit opens nothing by itself)
        ("site_visit", "2024-04-10T10:00", {"journey_type": "job_application"}),
        ("interview", "2024-04-15T10:00", {"channel": "office"}),
        ("hired", "2024-04-25T10:00"),
        ("site_visit", "2024-04-26T10:00"),
    ],
    # -- phases (five-phase) ----------------------------------------------------------------------------
    "rob": [  # moves back twice
        ("ad_view", "2024-04-01T00:00", {"channel": "display", "content_type": "ad"}),  # awareness
        ("review_read", "2024-04-02T00:00", {"content_type": "review"}),  # consideration
        ("demo_request", "2024-04-03T00:00", {"content_type": "demo"}),  # purchase
        ("review_read", "2024-04-04T00:00", {"content_type": "review"}),  # consideration: back
        ("product_view", "2024-04-05T00:00", {"content_type": "product_sheet"}),  # purchase
        ("ad_view", "2024-04-06T00:00", {"channel": "display", "content_type": "ad"}),  # awareness: back
    ],
    "tess": [  # time in phase
        ("ad_view", "2024-05-01T10:00", {"channel": "display"}),  # awareness
        ("login", "2024-05-01T11:00", {"channel": "app"}),  # neutral: keeps awareness
        ("review_read", "2024-05-01T13:00", {"content_type": "review"}),  # consideration
        ("purchase", "2024-05-02T13:00", {"revenue": 10.0}),  # purchase
        ("delivery", "2024-05-04T13:00", {"channel": "email", "content_type": "delivery_update"}),  # service
        ("review_written", "2024-05-05T13:00"),  # loyalty
    ],
    # -- repeat purchases --------------------------------------------------------------------------------
    "paul": [
        ("ad_view", "2024-05-01T09:00", {"channel": "display"}),
        ("purchase", "2024-05-03T09:00", {"revenue": 25.0}),
        ("delivery", "2024-05-05T09:00", {"channel": "email"}),
        ("ad_view", "2024-05-10T09:00", {"channel": "display"}),
        ("purchase", "2024-05-12T09:00", {"revenue": 25.0}),
        ("delivery", "2024-05-14T09:00", {"channel": "email"}),
    ],
    # -- status against the data's end (2024-06-30T00:00) ------------------------------------------------
    "cora": [("purchase", "2024-03-01T12:00", {"revenue": 15.0})],
    "otto": [("site_visit", "2024-06-10T00:00")],
    "olga": [("site_visit", "2024-05-31T00:00")],
    "abe": [("site_visit", "2024-05-30T23:59:59")],
    "cliff": [("complaint", "2024-05-01T10:00", {"channel": "call_centre"})],
    "opal": [("complaint", "2024-06-20T10:00", {"channel": "call_centre"})],
    # -- involvement (purchase journeys; high when at least 2 of the 4 criteria hold) ---------------------
    "lou": [
        ("ad_view", "2024-04-01T10:00", {"channel": "display"}),
        ("purchase", "2024-04-02T10:00", {"revenue": 1200.0}),
    ],
    "hal": [
        ("store_visit", "2024-03-01T10:00", {"channel": "store"}),
        ("sales_call", "2024-03-10T10:00", {"channel": "call_centre"}),
        ("product_view", "2024-03-15T10:00"),
        ("purchase", "2024-03-22T10:00", {"revenue": 300.0}),
    ],
}


@dataclass(frozen=True)
class Built:
    """A built workspace's tables, read back once as plain rows."""

    result: BuildResult
    touch: dict[str, dict[str, Any]]  # event_id -> journey_touchpoints row
    journeys: dict[str, dict[str, Any]]  # journey_id -> journeys row
    phases: list[dict[str, Any]]  # journey_phases rows
    identities: dict[str, dict[str, Any]]  # anonymous_id -> identities row
    conflicts: list[dict[str, Any]]  # identity_conflicts rows

    def path(self, *event_ids: str) -> list[tuple[str, str, int]]:
        """(event_id, journey_id, position) of the given touchpoints."""
        return [(e, self.touch[e]["journey_id"], self.touch[e]["position"]) for e in event_ids]

    def journeys_of(self, person: str) -> list[str]:
        return sorted(j for j, row in self.journeys.items() if row["person_id"] == person)

    def phases_of(self, journey_id: str) -> dict[str, dict[str, Any]]:
        return {row["phase"]: row for row in self.phases if row["journey_id"] == journey_id}


def _rows(table: ibis.Table) -> list[dict[str, Any]]:
    return [{k: _utc(v) for k, v in row.items()} for row in table.to_pyarrow().to_pylist()]


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def read_built(ws: Workspace, result: BuildResult, *, everything: bool = True) -> Built:
    """The built tables as rows; ``everything=False`` reads only journey_touchpoints and journeys (on Spark
    every read is a job of its own)."""
    return Built(
        result=result,
        touch={row["event_id"]: row for row in _rows(ws.journey_touchpoints)},
        journeys={row["journey_id"]: row for row in _rows(ws.journeys)},
        phases=_rows(ws.journey_phases) if everything else [],
        identities={row["anonymous_id"]: row for row in _rows(ws.table("identities"))} if everything else {},
        conflicts=_rows(ws.table("identity_conflicts")) if everything else [],
    )


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def book(module_backend, make_workspace) -> Iterator[Built]:
    """``BOOK`` built with the default journey model (customer view) and the five-phase model."""
    ws = make_workspace(module_backend, BOOK)
    result = build(ws, model="five-phase")
    yield read_built(ws, result)


# -- the build itself -----------------------------------------------------------------------------------


def test_a_first_build_is_full_and_counts_what_it_built(book):
    assert book.result.mode == "full"
    assert (book.result.phase_model, book.result.journey_model) == ("five-phase", "default")
    # every touchpoint of the book gets exactly one journey
    assert book.result.touchpoints == sum(len(touches) for touches in BOOK.values()) == len(book.touch)
    assert book.result.journeys == len(book.journeys)
    # persons: every key with a person_id of its own (the keys but tablet, kiosk and ghost, plus ivy and
    # ida) and the one never-linked device (anon:ghost-cookie)
    persons = {p for p in BOOK if p not in ("tablet", "kiosk", "ghost")} | {"ivy", "ida", "anon:ghost-cookie"}
    assert book.result.persons_rebuilt == len(persons)
    assert {row["person_id"] for row in book.journeys.values()} == persons


# -- splitting: the inactivity timeout and ties --------------------------------------------------------


def test_a_gap_of_exactly_the_timeout_does_not_split(book):
    # tina: 2024-01-01T00:00 -> 2024-01-31T00:00 is 30 days = 2,592,000 s, the purchase timeout: not more
    # than the timeout, so the second visit continues the journey
    assert book.path("tina-000", "tina-001") == [
        ("tina-000", "tina/purchase/1", 1),
        ("tina-001", "tina/purchase/1", 2),
    ]


def test_a_gap_one_second_past_the_timeout_starts_a_new_journey(book):
    # tom: 30 days + 1 s > 30 days: the second visit starts journey 2 (position 1 again)
    assert book.path("tom-000", "tom-001") == [
        ("tom-000", "tom/purchase/1", 1),
        ("tom-001", "tom/purchase/2", 1),
    ]
    assert book.journeys_of("tom") == ["tom/purchase/1", "tom/purchase/2"]


def test_equal_timestamps_are_ordered_by_event_id(book):
    # all four at 10:00; by event_id: eve-a (ad_view), eve-b (purchase), eve-c (site_visit), eve-d (purchase).
    # eve-d is a second purchase after a converted journey: it starts journey 2 (repeat_after_conversion)
    assert book.path("eve-a", "eve-b", "eve-c", "eve-d") == [
        ("eve-a", "eve/purchase/1", 1),
        ("eve-b", "eve/purchase/1", 2),
        ("eve-c", "eve/purchase/1", 3),
        ("eve-d", "eve/purchase/2", 1),
    ]
    first = book.journeys["eve/purchase/1"]
    # the purchase eve-b is the 2nd contact; the first touchpoint is the ad (eve-a), the last the visit
    assert first["purchase_contact_number"] == 2
    assert first["touchpoints_before_purchase"] == 1
    assert (first["first_touchpoint"], first["first_channel"], first["last_channel"]) == (
        "ad_view",
        "display",
        "website",
    )
    assert book.journeys["eve/purchase/2"]["purchase_contact_number"] == 1  # eve-d is its first touchpoint


# -- stitching ------------------------------------------------------------------------------------------


def test_anonymous_touchpoints_before_and_after_a_login_join_the_person(book):
    # sam-phone is linked by the login sam-001: the visit before it and the view and purchase after it
    # belong to sam, in time order: one purchase journey of 4 touchpoints, converted at the 4th
    assert book.path("sam-000", "sam-001", "sam-002", "sam-003") == [
        ("sam-000", "sam/purchase/1", 1),
        ("sam-001", "sam/purchase/1", 2),
        ("sam-002", "sam/purchase/1", 3),
        ("sam-003", "sam/purchase/1", 4),
    ]
    assert {book.touch[f"sam-00{i}"]["person_id"] for i in range(4)} == {"sam"}
    assert all(book.touch[f"sam-00{i}"]["identified"] for i in range(4))
    journey = book.journeys["sam/purchase/1"]
    assert (journey["identified"], journey["touchpoints"], journey["purchase_contact_number"]) == (True, 4, 4)
    assert book.identities["sam-phone"]["person_id"] == "sam"


def test_a_person_with_two_devices_has_one_journey(book):
    # dora-phone (linked 03-05 08:01) and dora-laptop (linked 03-06 20:01) are both dora's: 5 touchpoints in
    # one journey (gaps of about a day), converted by the purchase made on the laptop (position 5)
    assert [book.touch[f"dora-00{i}"]["journey_id"] for i in range(5)] == ["dora/purchase/1"] * 5
    assert [book.touch[f"dora-00{i}"]["position"] for i in range(5)] == [1, 2, 3, 4, 5]
    assert book.journeys["dora/purchase/1"]["purchase_contact_number"] == 5
    assert {a: book.identities[a]["person_id"] for a in ("dora-phone", "dora-laptop")} == {
        "dora-phone": "dora",
        "dora-laptop": "dora",
    }


def test_an_anonymous_id_linked_to_two_persons_goes_to_the_first_link(book):
    # carl's login (03-10 09:30) links family-tablet before cleo's (03-11 18:00): the tablet's touchpoints
    # are carl's; cleo's login carries her own person_id and stays hers
    assert book.path("tablet-000", "carl-000", "carl-001", "tablet-001", "cleo-000") == [
        ("tablet-000", "carl/purchase/1", 1),  # 03-10 09:00
        ("carl-000", "carl/purchase/1", 2),  # 03-10 09:30
        ("carl-001", "carl/purchase/1", 3),  # 03-11 09:00, the purchase (customer view: the journey goes on)
        ("tablet-001", "carl/purchase/1", 4),  # 03-12 09:00
        ("cleo-000", "cleo/purchase/1", 1),
    ]
    assert book.identities["family-tablet"]["person_id"] == "carl"
    assert book.identities["family-tablet"]["persons_linked"] == 2
    tablet = sorted(
        (c["person_id"], c["chosen_person_id"], c["chosen"], c["links"])
        for c in book.conflicts
        if c["anonymous_id"] == "family-tablet"
    )
    # both persons are listed, each with its one linking touchpoint, and which one the rule chose
    assert tablet == [("carl", "carl", True, 1), ("cleo", "carl", False, 1)]


def test_a_conflict_at_the_same_second_goes_to_the_lower_event_id(book):
    # ivy and ida both log in on kiosk-1 at 03-20 10:00; the earliest linking touchpoint by (timestamp,
    # event_id) is ida's kiosk-m (kiosk-m < kiosk-z); ivy's kiosk-a comes a day later and does not count
    assert book.identities["kiosk-1"]["person_id"] == "ida"
    assert book.touch["kiosk-000"]["person_id"] == "ida"
    kiosk = sorted(
        (c["person_id"], c["chosen"], c["links"]) for c in book.conflicts if c["anonymous_id"] == "kiosk-1"
    )
    assert kiosk == [("ida", True, 1), ("ivy", False, 2)]
    # the anonymous visit (09:00) and ida's login (10:00) make ida's journey; ivy keeps her own logins
    assert book.path("kiosk-000", "kiosk-m", "kiosk-z", "kiosk-a") == [
        ("kiosk-000", "ida/purchase/1", 1),
        ("kiosk-m", "ida/purchase/1", 2),
        ("kiosk-z", "ivy/purchase/1", 1),
        ("kiosk-a", "ivy/purchase/1", 2),
    ]


def test_a_device_never_linked_stays_an_unidentified_visitor(book):
    assert book.path("ghost-000") == [("ghost-000", "anon:ghost-cookie/purchase/1", 1)]
    assert book.touch["ghost-000"]["identified"] is False
    assert book.journeys["anon:ghost-cookie/purchase/1"]["identified"] is False
    assert "ghost-cookie" not in book.identities


def test_only_conflicting_devices_are_listed_as_conflicts(book):
    assert {c["anonymous_id"] for c in book.conflicts} == {"family-tablet", "kiosk-1"}


# -- typing: interleaved journey types, ends, hints ----------------------------------------------------


def test_a_complaint_in_the_middle_of_a_purchase_journey(book):
    # complaint candidates of kim: the complaint (02-03) and the support calls (02-04, 02-18, 03-03 09:00:01).
    # 02-04 -> 02-18 is exactly 14 days (the complaint timeout: no split), 02-18 -> 03-03 09:00:01 is 14 days
    # + 1 s: a new stretch without a complaint in it, so that last call falls back to the purchase journey
    # (13 days after the purchase: within its 30 days). The site visit (02-05) is no complaint member.
    assert book.path(*(f"kim-00{i}" for i in range(8))) == [
        ("kim-000", "kim/purchase/1", 1),
        ("kim-001", "kim/purchase/1", 2),
        ("kim-002", "kim/complaint/1", 1),
        ("kim-003", "kim/complaint/1", 2),
        ("kim-004", "kim/purchase/1", 3),
        ("kim-005", "kim/complaint/1", 3),
        ("kim-006", "kim/purchase/1", 4),
        ("kim-007", "kim/purchase/1", 5),
    ]
    assert [book.touch[f"kim-00{i}"]["journey_type"] for i in (2, 3, 5, 7)] == ["complaint"] * 3 + [
        "purchase"
    ]
    purchase, complaint = book.journeys["kim/purchase/1"], book.journeys["kim/complaint/1"]
    assert purchase["purchase_contact_number"] == 4  # ad, product view, site visit, purchase
    assert purchase["touchpoints"] == 5
    assert complaint["touchpoints"] == 3
    assert complaint["purchase_contact_number"] is None  # complaints have no conversion


def test_a_return_journey_ends_at_its_refund(book):
    # the return request opens a return journey; the support call (a member) and the refund join it; the
    # refund ends it, so the next support call (a day later) starts a new return stretch without a return
    # request: it falls back to the purchase journey (8 days after the purchase)
    assert book.path(*(f"rita-00{i}" for i in range(5))) == [
        ("rita-000", "rita/purchase/1", 1),
        ("rita-001", "rita/return/1", 1),
        ("rita-002", "rita/return/1", 2),
        ("rita-003", "rita/return/1", 3),
        ("rita-004", "rita/purchase/1", 2),
    ]
    returned = book.journeys["rita/return/1"]
    # the refund converts a return journey (at its 3rd touchpoint) and carries its revenue
    assert (returned["status"], returned["purchase_contact_number"], returned["revenue"]) == (
        "converted",
        3,
        -120.0,
    )
    assert book.journeys_of("rita") == ["rita/purchase/1", "rita/return/1"]


def test_a_journey_type_hint_opens_a_job_application(book):
    # the site visit carries journey_type=job_application: it opens that journey (a site visit without a
    # vacancy opens nothing by itself); the interview and the hire are members; the hire converts and ends
    # it, so the next site visit is a purchase journey's
    assert book.path(*(f"jack-00{i}" for i in range(4))) == [
        ("jack-000", "jack/job_application/1", 1),
        ("jack-001", "jack/job_application/1", 2),
        ("jack-002", "jack/job_application/1", 3),
        ("jack-003", "jack/purchase/1", 1),
    ]
    application = book.journeys["jack/job_application/1"]
    assert (application["status"], application["purchase_contact_number"]) == ("converted", 3)
    assert application["repeat"] is False


# -- repeat purchases (customer view) -------------------------------------------------------------------


def test_a_repeat_purchase_starts_a_new_journey_in_the_customer_view(book):
    # customer view: the first journey goes on after the purchase (delivery, the next ad); the second
    # purchase starts journey 2, a repeat (paul converted in journey 1)
    assert book.path(*(f"paul-00{i}" for i in range(6))) == [
        ("paul-000", "paul/purchase/1", 1),
        ("paul-001", "paul/purchase/1", 2),
        ("paul-002", "paul/purchase/1", 3),
        ("paul-003", "paul/purchase/1", 4),
        ("paul-004", "paul/purchase/2", 1),
        ("paul-005", "paul/purchase/2", 2),
    ]
    first, second = book.journeys["paul/purchase/1"], book.journeys["paul/purchase/2"]
    assert (first["repeat"], first["purchase_contact_number"], first["status"]) == (False, 2, "converted")
    assert (second["repeat"], second["purchase_contact_number"], second["status"]) == (True, 1, "converted")


# -- status against the data's end ---------------------------------------------------------------------


def test_status_against_the_data_end(book):
    # the data's end is the clock's visit, 2024-06-30T00:00 (no touchpoint of the book is later)
    status = {
        p: book.journeys[f"{p}/{t}/1"]["status"]
        for p, t in [
            ("cora", "purchase"),  # purchased: converted, however long ago
            ("otto", "purchase"),  # last touchpoint 20 days before the end (<= 30): open
            ("olga", "purchase"),  # exactly 30 days before the end: still open
            ("abe", "purchase"),  # 30 days + 1 s before the end: abandoned
            ("cliff", "complaint"),  # complaint (no conversion) 59 days before the end (> 14): closed
            ("opal", "complaint"),  # complaint 9.6 days before the end (<= 14): open
            ("clock", "purchase"),  # the end itself: open
        ]
    }
    assert status == {
        "cora": "converted",
        "otto": "open",
        "olga": "open",
        "abe": "abandoned",
        "cliff": "closed",
        "opal": "open",
        "clock": "open",
    }
    assert book.journeys["tom/purchase/1"]["status"] == "abandoned"  # January, never converted


# -- involvement ----------------------------------------------------------------------------------------


def test_involvement_low_and_high(book):
    # lou: 1 touchpoint before the purchase (< 8), 1 day (< 21), no store or call-centre contact (< 2),
    # revenue 1200 (>= 1000): 1 criterion of the 2 needed -> low
    # hal: 3 touchpoints before (< 8), 21 days from the first touchpoint to the purchase (>= 21), a store
    # visit and a sales call (2 human contacts >= 2), revenue 300 (< 1000): 2 criteria -> high
    assert book.journeys["lou/purchase/1"]["involvement"] == "low"
    assert book.journeys["hal/purchase/1"]["involvement"] == "high"
    assert book.journeys["hal/purchase/1"]["human_contacts"] == 2
    assert book.journeys["hal/purchase/1"]["duration_days"] == 21.0
    # involvement classifies purchase journeys only
    assert book.journeys["cliff/complaint/1"]["involvement"] is None


#: hal (as in BOOK: a store visit and a sales call, 2 human contacts under the default model), max (a big
#: purchase after 24 days, online only) and cliff (a complaint on the call centre)
INVOLVEMENT_PEOPLE = {p: BOOK[p] for p in ("hal", "cliff")} | {
    "max": [
        ("ad_view", "2024-04-01T10:00", {"channel": "display"}),
        ("purchase", "2024-04-25T10:00", {"revenue": 1500.0}),
    ]
}


@pytest.mark.parametrize("variant", ["no_involvement", "no_human_contact_channels"])
def test_a_model_without_involvement_or_contact_channels_builds(backend, make_workspace, variant):
    default = load_journey_model("default")
    if variant == "no_involvement":
        jm = default.model_copy(update={"involvement": None})
    else:  # the default's criteria but human contact (which needs channels: left out too)
        jm = default.model_copy(
            update={
                "involvement": Involvement(
                    journey_types=["purchase"],
                    high_when_at_least=2,
                    touchpoints_before_conversion_at_least=8,
                    duration_days_at_least=21,
                    human_contact_channels=[],
                    revenue_at_least=1000,
                )
            }
        )
    ws = make_workspace(backend, INVOLVEMENT_PEOPLE)
    result = build(ws, journey_model=jm)
    journeys = read_built(ws, result, everything=False).journeys
    assert sorted(journeys) == ["cliff/complaint/1", "hal/purchase/1", "max/purchase/1"]
    # no human-contact channels: the store visit and the sales call count for nothing (2 under the default)
    assert {j: row["human_contacts"] for j, row in journeys.items()} == dict.fromkeys(journeys, 0)
    involvement = {j: row["involvement"] for j, row in journeys.items()}
    if variant == "no_involvement":
        # no rule to classify by: NULL for every journey (not "low")
        assert involvement == dict.fromkeys(journeys, None)
    else:
        # hal: 3 touchpoints before the purchase (< 8), 03-01 -> 03-22 = 21 days (>= 21), revenue 300
        # (< 1000): 1 of the 2 needed -> low; max: 1 before (< 8), 24 days (>= 21), revenue 1500 (>= 1000):
        # 2 -> high; the complaint is no involvement type -> NULL
        assert involvement == {"cliff/complaint/1": None, "hal/purchase/1": "low", "max/purchase/1": "high"}


# -- phases (five-phase) --------------------------------------------------------------------------------


def test_phase_regressions(book):
    # awareness(0) -> consideration(1) -> purchase(2) -> consideration(1): back -> purchase(2) -> awareness(0): back
    rob = [book.touch[f"rob-00{i}"] for i in range(6)]
    assert [t["phase"] for t in rob] == [
        "awareness",
        "consideration",
        "purchase",
        "consideration",
        "purchase",
        "awareness",
    ]
    assert [t["phase_index"] for t in rob] == [0, 1, 2, 1, 2, 0]
    assert [t["phase_regression"] for t in rob] == [False, False, False, True, False, True]
    journey = book.journeys["rob/purchase/1"]
    assert (journey["phase_regressions"], journey["phase_reached"], journey["last_phase"]) == (
        2,
        2,
        "awareness",
    )
    phases = book.phases_of("rob/purchase/1")
    # each phase was entered twice (two runs), one touchpoint per run
    assert {p: (row["visits"], row["touchpoints"]) for p, row in phases.items()} == {
        "awareness": (2, 2),
        "consideration": (2, 2),
        "purchase": (2, 2),
    }
    # a run lasts until the next run starts; the last run (awareness, 04-06) ends at its own touchpoint:
    # awareness 04-01 -> 04-02 (1 day) + 0; consideration 04-02 -> 04-03 + 04-04 -> 04-05 (2 days);
    # purchase 04-03 -> 04-04 + 04-05 -> 04-06 (2 days)
    assert {p: row["seconds_in_phase"] for p, row in phases.items()} == {
        "awareness": DAY,
        "consideration": 2 * DAY,
        "purchase": 2 * DAY,
    }
    assert (phases["consideration"]["entered_at"], phases["consideration"]["exited_at"]) == (
        ts("2024-04-02T00:00"),
        ts("2024-04-05T00:00"),
    )


def test_time_in_phase(book):
    tess = book.phases_of("tess/purchase/1")
    # awareness: the ad (10:00) and the login (11:00, neutral: carries awareness) until the review at 13:00
    assert book.touch["tess-001"]["phase"] == "awareness"
    assert {p: (row["seconds_in_phase"], row["touchpoints"], row["visits"]) for p, row in tess.items()} == {
        "awareness": (3 * HOUR, 2, 1),  # 05-01 10:00 -> 13:00
        "consideration": (DAY, 1, 1),  # 05-01 13:00 -> 05-02 13:00 (the purchase)
        "purchase": (2 * DAY, 1, 1),  # 05-02 13:00 -> 05-04 13:00 (the delivery)
        "service": (DAY, 1, 1),  # 05-04 13:00 -> 05-05 13:00 (the review)
        "loyalty": (0, 1, 1),  # the last phase: entered and left at its one touchpoint
    }
    assert (tess["awareness"]["entered_at"], tess["awareness"]["exited_at"]) == (
        ts("2024-05-01T10:00"),
        ts("2024-05-01T13:00"),
    )
    assert tess["loyalty"]["entered_at"] == tess["loyalty"]["exited_at"] == ts("2024-05-05T13:00")


# -- the buyer view -------------------------------------------------------------------------------------


def test_repeat_purchases_in_the_buyer_view_and_a_rebuild(backend, make_workspace, touchpoint_table):
    buyer = load_journey_model("default").model_copy(update={"view": "buyer"})
    ws = make_workspace(backend, {"paul": BOOK["paul"]})
    result = build(ws, journey_model=buyer)
    assert (result.mode, result.journeys) == ("full", 3)
    built = read_built(ws, result, everything=False)
    # buyer view: a journey ends at its purchase, so the delivery after the first purchase starts journey 2;
    # that journey's first purchase (05-12) is its conversion, not a further one: it stays in journey 2
    # (with the ad that led to it); the last delivery starts journey 3
    assert built.path(*(f"paul-00{i}" for i in range(6))) == [
        ("paul-000", "paul/purchase/1", 1),
        ("paul-001", "paul/purchase/1", 2),
        ("paul-002", "paul/purchase/2", 1),
        ("paul-003", "paul/purchase/2", 2),
        ("paul-004", "paul/purchase/2", 3),
        ("paul-005", "paul/purchase/3", 1),
    ]
    journeys = built.journeys
    # journeys 2 and 3 come after paul's first conversion: both repeats; 2 converted at its 3rd contact;
    # 3 (the delivery on 05-14, the data's end) is open
    assert [
        (j, journeys[j]["repeat"], journeys[j]["purchase_contact_number"], journeys[j]["status"])
        for j in sorted(journeys)
    ] == [
        ("paul/purchase/1", False, 2, "converted"),
        ("paul/purchase/2", True, 3, "converted"),
        ("paul/purchase/3", True, None, "open"),
    ]

    # a rebuild with the same configuration after a new touchpoint: incremental on DuckDB; on Spark always a
    # full build (incremental builds are DuckDB-only). Either way paul (the only person) is rebuilt, and his
    # visit on 05-20, 6 days after the delivery that opened journey 3, joins it at position 2
    late = {"late": [("site_visit", "2024-05-20T09:00", {"person_id": "paul"})]}
    ws.con.insert("touchpoints", touchpoint_table(late, import_id=2))
    again = build(ws, journey_model=buyer)
    assert again.mode == ("incremental" if backend.name == "duckdb" else "full")
    assert (again.persons_rebuilt, again.journeys) == (1, 3)
    assert read_built(ws, again, everything=False).path("late-000") == [("late-000", "paul/purchase/3", 2)]


# -- every built-in phase model --------------------------------------------------------------------------

#: one person, three purchase journeys (customer view: each further purchase starts a repeat journey)
PHASE_JOURNEY = {
    "pia": [
        ("ad_view", "2024-03-01T09:00", {"channel": "display", "content_type": "ad"}),
        ("review_read", "2024-03-02T09:00", {"channel": "review_site", "content_type": "review"}),
        ("login", "2024-03-03T09:00", {"channel": "app"}),  # neutral: carries the phase before it
        ("demo_request", "2024-03-04T09:00", {"content_type": "demo"}),
        ("purchase", "2024-03-05T09:00", {"revenue": 100.0}),
        ("delivery", "2024-03-07T09:00", {"channel": "email", "content_type": "delivery_update"}),
        ("review_written", "2024-03-10T09:00"),
        ("purchase", "2024-03-15T09:00", {"revenue": 100.0}),  # 1 purchase before it: journey 2
        ("purchase", "2024-03-20T09:00", {"revenue": 100.0}),  # 2 purchases before it: journey 3
    ]
}
PHASE_JOURNEY_IDS = ["pia/purchase/1"] * 7 + ["pia/purchase/2", "pia/purchase/3"]

# the phase of each of pia's touchpoints, read off each model's YAML (later phases win; login is neutral)
EXPECTED_PHASES = {
    # delivery, review_written: decision has the after-sales touchpoints in this model
    "three-phase": ["orientation", "consideration", "consideration", "decision", "decision", "decision", "decision", "decision", "decision"],
    # delivery_update content -> service; review_written -> loyalty
    "five-phase": ["awareness", "consideration", "consideration", "purchase", "purchase", "service", "loyalty", "purchase", "purchase"],
    # ad_view -> awareness (orientation is organic only); the audience rule (1 purchase before, applies to
    # purchases) makes the 2nd and 3rd purchases promoter
    "buyer-journey": ["awareness", "consideration", "consideration", "decision", "decision", "promoter", "promoter", "promoter", "promoter"],
    # the audience rule (2 purchases before, any touchpoint): only the 3rd purchase is care
    "see-think-do-care": ["see", "think", "think", "do", "do", "care", "care", "do", "care"],
    # the purchase (the payment) is betalen; delivery and reviews are binden
    "6b": ["bezoeken", "boeien", "boeien", "beslissen", "betalen", "binden", "binden", "betalen", "betalen"],
    # everything from the purchase on is action
    "aida": ["attention", "interest", "interest", "desire", "action", "action", "action", "action", "action"],
    # ad_view -> trigger; review and demo -> active evaluation
    "consumer-decision-journey": [
        "trigger", "active_evaluation", "active_evaluation", "active_evaluation", "purchase",
        "post_purchase", "post_purchase", "purchase", "purchase",
    ],
}  # fmt: skip


def test_every_builtin_phase_model_has_an_expectation():
    assert sorted(info.name for info in list_phase_models()) == sorted(EXPECTED_PHASES)


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
@pytest.mark.parametrize("model", sorted(EXPECTED_PHASES))
def test_phases_of_a_journey_per_builtin_model(backend, make_workspace, model):
    ws = make_workspace(backend, PHASE_JOURNEY)
    result = build(ws, model=model)
    assert result.phase_model == model
    built = read_built(ws, result, everything=False)
    events = [f"pia-{i:03d}" for i in range(9)]
    assert [built.touch[e]["journey_id"] for e in events] == PHASE_JOURNEY_IDS
    assert [built.touch[e]["phase"] for e in events] == EXPECTED_PHASES[model]
    pm = load_phase_model(model)
    assert [built.touch[e]["phase_index"] for e in events] == [pm.index(p) for p in EXPECTED_PHASES[model]]


# -- incremental builds ---------------------------------------------------------------------------------

BEFORE = {
    "ann": [
        ("login", "2024-01-01T09:00", {"anonymous_id": "ann-phone"}),
        ("ad_view", "2024-01-01T10:00", {"channel": "display"}),
        ("purchase", "2024-01-03T10:00", {"revenue": 30.0}),
    ],
    "visitor": [
        ("site_visit", "2024-01-02T10:00", {"person_id": None, "anonymous_id": "dev-x"}),
        ("product_view", "2024-01-04T10:00", {"person_id": None, "anonymous_id": "dev-x"}),
    ],
    "bob": [("site_visit", "2024-01-02T12:00")],
    "cat": [("ad_view", "2024-01-05T10:00", {"channel": "display"})],
}
APPENDED = {
    "new": [
        ("login", "2024-01-06T10:00", {"person_id": "bob", "anonymous_id": "dev-x"}),  # links dev-x to bob
        ("site_visit", "2024-01-07T10:00", {"person_id": "dan"}),  # a new person
        (
            "delivery",
            "2024-01-08T10:00",
            {"person_id": None, "anonymous_id": "ann-phone", "channel": "email"},
        ),
    ]
}


def _snapshot(ws: Workspace) -> dict[str, list[tuple[Any, ...]]]:
    """The derived tables as sorted rows (journeys: the view, with status and persona)."""
    out = {}
    for name in ("journeys", "journey_touchpoints", "journey_phases"):
        rows = [tuple(sorted(row.items())) for row in _rows(ws.table(name))]
        out[name] = sorted(rows, key=repr)
    return out


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_an_incremental_build_equals_a_full_build(backend, make_workspace, touchpoint_table):
    ws = make_workspace(backend, BEFORE)
    first = build(ws)
    # ann, anon:dev-x, bob, cat
    assert (first.mode, first.persons_rebuilt) == ("full", 4)
    ws.con.insert("touchpoints", touchpoint_table(APPENDED, import_id=2))
    second = build(ws)
    # affected: bob (his login links dev-x: its two touchpoints move to him), anon:dev-x (its journey goes),
    # dan (new) and ann (a delivery on her already linked phone); cat is untouched
    assert (second.mode, second.persons_rebuilt) == ("incremental", 4)
    after = _snapshot(ws)
    people = {row["person_id"] for row in _rows(ws.journeys)}
    assert people == {"ann", "bob", "cat", "dan"}
    # bob's journey: dev-x's visit (01-02 10:00), his own visit (12:00), dev-x's view (01-04), the login
    bob = sorted(
        (r["position"], r["event_id"]) for r in _rows(ws.journey_touchpoints) if r["person_id"] == "bob"
    )
    assert bob == [(1, "visitor-000"), (2, "bob-000"), (3, "visitor-001"), (4, "new-000")]
    full = build(ws, full=True)
    assert (full.mode, full.persons_rebuilt) == ("full", 4)
    assert after == _snapshot(ws)


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_an_incremental_build_after_an_earlier_link_moves_the_device(
    backend, make_workspace, touchpoint_table
):
    # shared-pc is pete's (his login, 02-03) until a late import brings quin's earlier login (02-01): the
    # first link is now quin's, so the anonymous visit moves from pete's journey to quin's
    ws = make_workspace(
        backend,
        {
            "shared": [("site_visit", "2024-02-02T10:00", {"person_id": None, "anonymous_id": "shared-pc"})],
            "pete": [("login", "2024-02-03T10:00", {"anonymous_id": "shared-pc"})],
            "quin": [("ad_view", "2024-02-01T08:00", {"channel": "display"})],
        },
    )
    build(ws)
    late = {"late": [("login", "2024-02-01T09:00", {"person_id": "quin", "anonymous_id": "shared-pc"})]}
    ws.con.insert("touchpoints", touchpoint_table(late, import_id=2))
    second = build(ws)
    # pete (loses the visit) and quin (gains the login and the visit)
    assert (second.mode, second.persons_rebuilt) == ("incremental", 2)
    after = _snapshot(ws)
    owners = sorted((r["event_id"], r["person_id"]) for r in _rows(ws.journey_touchpoints))
    # each touchpoint once: the visit is quin's now, and no longer (also) pete's
    assert owners == [
        ("late-000", "quin"),
        ("pete-000", "pete"),
        ("quin-000", "quin"),
        ("shared-000", "quin"),
    ]
    build(ws, full=True)
    assert after == _snapshot(ws)


# ann's history: a purchase journey (converted), then after a 58-day pause a second one
HISTORY = {
    "ann": [
        ("ad_view", "2024-01-01T10:00", {"channel": "display"}),
        ("purchase", "2024-01-03T10:00", {"revenue": 30.0}),
        ("site_visit", "2024-03-01T10:00"),
        ("product_view", "2024-03-10T10:00"),
    ]
}


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
@pytest.mark.parametrize(
    ("new", "rebuilt", "expected"),
    [
        # a purchase in the second journey: only that journey is rebuilt (58 days > every timeout before it);
        # it converts, and is a repeat because the kept first journey converted
        (
            ("purchase", "2024-03-20T10:00"),
            3,
            {"ann/purchase/1": (2, True, False), "ann/purchase/2": (3, True, True)},
        ),
        # exactly the purchase timeout (30 days) after the last touchpoint: still the second journey
        (
            ("site_visit", "2024-04-09T10:00"),
            3,
            {"ann/purchase/1": (2, True, False), "ann/purchase/2": (3, False, True)},
        ),
        # one second past it: a third journey, and only the new touchpoint is rebuilt
        (
            ("site_visit", "2024-04-09T10:00:01"),
            1,
            {
                "ann/purchase/1": (2, True, False),
                "ann/purchase/2": (2, False, True),
                "ann/purchase/3": (1, False, True),
            },
        ),
    ],
    ids=["purchase", "at-the-timeout", "past-the-timeout"],
)
def test_an_incremental_build_starts_at_the_last_clean_touchpoint(
    backend, make_workspace, touchpoint_table, new, rebuilt, expected
):
    ws = make_workspace(backend, HISTORY)
    build(ws)
    touchpoint, when = new
    ws.con.insert(
        "touchpoints", touchpoint_table({"new": [(touchpoint, when, {"person_id": "ann"})]}, import_id=2)
    )
    second = build(ws)
    assert (second.mode, second.persons_rebuilt, second.touchpoints_rebuilt) == ("incremental", 1, rebuilt)
    # journey -> (touchpoints, converted, repeat)
    got = {
        r["journey_id"]: (r["touchpoints"], r["status"] == "converted", r["repeat"])
        for r in _rows(ws.journeys)
    }
    assert got == expected
    after = _snapshot(ws)
    build(ws, full=True)
    assert after == _snapshot(ws)


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_an_incremental_build_writes_only_the_new_rows_of_an_append_only_person(
    backend, make_workspace, touchpoint_table
):
    # ann's new purchase comes after all her stored touchpoints: her second journey is recomputed (3 rows),
    # but her stored rows come out as they were and stay where they are (DuckDB's row ids unchanged);
    # bob's late touchpoint comes before his last one, so his rows from the cut on are replaced
    ws = make_workspace(
        backend,
        HISTORY | {"bob": [("site_visit", "2024-03-01T10:00"), ("product_view", "2024-03-05T10:00")]},
    )
    build(ws)

    def stored():
        rows = ws.con.con.execute("SELECT event_id, rowid FROM journey_touchpoints").fetchall()
        return dict(rows)

    before = stored()
    new = {
        "new": [
            ("purchase", "2024-03-20T10:00", {"person_id": "ann"}),
            ("ad_view", "2024-03-02T10:00", {"person_id": "bob"}),
        ]
    }
    ws.con.insert("touchpoints", touchpoint_table(new, import_id=2))
    second = build(ws)
    assert (second.mode, second.persons_rebuilt, second.touchpoints_rebuilt) == ("incremental", 2, 3 + 3)
    after = stored()
    kept = {e for e in before if before[e] == after.get(e)}
    assert kept == {"ann-000", "ann-001", "ann-002", "ann-003"}
    assert set(after) == set(before) | {"new-000", "new-001"}
    snapshot = _snapshot(ws)
    build(ws, full=True)
    assert snapshot == _snapshot(ws)


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_each_build_is_recorded_with_its_models_and_watermark(backend, make_workspace, touchpoint_table):
    # the incremental build's row takes the model names from the last build's row: a name from a user's
    # file (quotes and all) must come out exactly
    jm = load_journey_model("default").model_copy(update={"name": "o'brien's \"journeys\"; --"})
    ws = make_workspace(backend, HISTORY)
    build(ws, model="three-phase", journey_model=jm)
    ws.con.insert(
        "touchpoints",
        touchpoint_table({"new": [("purchase", "2024-03-20T10:00", {"person_id": "ann"})]}, import_id=2),
    )
    build(ws, model="three-phase", journey_model=jm)
    rows = ws.con.con.execute(
        "SELECT build_id, mode, phase_model, journey_model, import_watermark, persons_rebuilt, journeys, "
        "touchpoints, built_at FROM builds ORDER BY build_id"
    ).fetchall()
    assert [r[:8] for r in rows] == [
        (1, "full", "three-phase", jm.name, 1, 1, 2, 4),
        (2, "incremental", "three-phase", jm.name, 2, 1, 2, 5),
    ]
    assert rows[0][8] <= rows[1][8]


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_an_incremental_build_keeps_a_longer_journey_type_running(backend, make_workspace, touchpoint_table):
    # a job application (60-day timeout) opened by a vacancy, an interview 9 days later, and a new interview
    # 41 days after that: past the purchase timeout (30 days) but within the job application's, so the new
    # interview joins the application and the rebuild must start at its opening, not at the new touchpoint
    ws = make_workspace(
        backend,
        {
            "jo": [
                ("site_visit", "2024-01-01T10:00", {"content_type": "vacancy"}),
                ("interview", "2024-01-10T10:00"),
            ]
        },
    )
    build(ws)
    ws.con.insert(
        "touchpoints",
        touchpoint_table({"new": [("interview", "2024-02-20T10:00", {"person_id": "jo"})]}, import_id=2),
    )
    second = build(ws)
    assert (second.mode, second.touchpoints_rebuilt) == ("incremental", 3)
    placed = sorted((r["event_id"], r["journey_id"], r["position"]) for r in _rows(ws.journey_touchpoints))
    assert placed == [
        ("jo-000", "jo/job_application/1", 1),
        ("jo-001", "jo/job_application/1", 2),
        ("new-000", "jo/job_application/1", 3),
    ]


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
@pytest.mark.parametrize("slice_rows", [1, 2, 4])
def test_a_sliced_full_build_equals_a_whole_one(backend, make_workspace, touchpoint_table, slice_rows):
    # 10 touchpoints of 4 stitched persons (ann, bob with dev-x, cat, dan): 10, 5 or 3 slices, some empty
    ws = make_workspace(backend, BEFORE)
    ws.con.insert("touchpoints", touchpoint_table(APPENDED, import_id=2))
    whole = build(ws, full=True)
    expected = _snapshot(ws)
    seen: list[tuple[int, int]] = []
    sliced = build(ws, full=True, slice_rows=slice_rows, progress=lambda done, n: seen.append((done, n)))
    n = -(-10 // slice_rows)
    assert seen == [(k, n) for k in range(n + 1)]
    assert (
        (sliced.journeys, sliced.touchpoints) == (whole.journeys, whole.touchpoints) == (whole.journeys, 10)
    )
    assert _snapshot(ws) == expected


def _recorded_scratch(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The directories ``tempfile.mkdtemp`` makes from now on (a sliced build's Parquet scratch)."""
    import tempfile

    made: list[Path] = []
    mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda **kw: made.append(Path(mkdtemp(**kw))) or str(made[-1]))
    return made


def test_a_sliced_full_build_of_generated_data_equals_a_whole_one(tmp_path, monkeypatch):
    from journeylens.demo import generate

    made = _recorded_scratch(monkeypatch)
    with Workspace(tmp_path / "ws") as ws:
        for touchpoints, persons in generate(300, seed=11):
            ws.ingest_persons(persons)
            ws.ingest(touchpoints)
        whole = build(ws, full=True)
        expected = _snapshot(ws)
        sliced = build(ws, full=True, slice_rows=whole.touchpoints // 7)
        assert (sliced.journeys, sliced.touchpoints) == (whole.journeys, whole.touchpoints)
        assert _snapshot(ws) == expected
        # the slices' Parquet scratch directory was beside the database, and is gone again
        assert [p.parent for p in made] == [tmp_path / "ws"]
        assert not made[0].exists()
        # one that a build killed half-way left is removed by the next sliced build
        (tmp_path / "ws" / ".build-slices-k1ll3d" / "_jl_slice=0").mkdir(parents=True)
        build(ws, full=True, slice_rows=whole.touchpoints // 2)
        assert not (tmp_path / "ws" / ".build-slices-k1ll3d").exists()
        assert _snapshot(ws) == expected


def test_the_slice_count_follows_duckdbs_memory_limit(tmp_path, monkeypatch, touchpoint_table):
    import importlib

    B = importlib.import_module("journeylens.journeys.build")  # the module, not the function
    with Workspace(tmp_path / "ws", memory_limit="500MB") as ws:
        # DuckDB reports 500 MB as "476.8 MiB"
        assert B.memory_limit_bytes(ws) == int(476.8 * 2**20)
        ws.con.insert("touchpoints", touchpoint_table(BEFORE))  # 7 touchpoints
        assert B._slices(ws, None) == 1  # 476.8 MiB / 1,300 B is far more than 7 rows
        assert B._slices(ws, 2) == 4
        monkeypatch.setattr(B, "MIN_SLICE_ROWS", 1)
        monkeypatch.setattr(B, "BYTES_PER_SLICE_ROW", 100 * 2**20)  # 4 rows per slice: 2 slices
        assert B._slices(ws, None) == 2
        # at most MAX_SLICE_ROWS per slice, whatever the limit allows: 3 rows per slice, 3 slices
        monkeypatch.setattr(B, "MAX_SLICE_ROWS", 3)
        assert B._slices(ws, None) == 3
        monkeypatch.setattr(B, "BYTES_PER_SLICE_ROW", 1)  # the limit allows all 7 rows: the cap still holds
        assert B._slices(ws, None) == 3
        assert build(ws).touchpoints == 7


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_a_sliced_build_that_fails_half_way_leaves_the_last_build_as_it_was(
    backend, make_workspace, touchpoint_table, tmp_path, monkeypatch
):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a connection's scratch goes
    ws = make_workspace(backend, BEFORE)
    build(ws)
    before = _snapshot(ws)
    ws.con.insert("touchpoints", touchpoint_table(APPENDED, import_id=2))

    def interrupt(done: int, n: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(ws, full=True, slice_rows=2, progress=interrupt)
    assert _snapshot(ws) == before  # dan and the login are not in: the old tables are untouched
    assert list(tmp_path.iterdir()) == []  # nor is the slices' Parquet scratch left behind
    again = build(ws, full=True, slice_rows=2)
    assert (again.mode, again.touchpoints) == ("full", 10)
    assert {row["person_id"] for row in _rows(ws.journeys)} == {"ann", "bob", "cat", "dan"}


# -- running out of memory or disk ---------------------------------------------------------------------


def test_a_build_that_runs_out_of_memory_says_what_to_do_and_keeps_the_last_build(
    tmp_path, monkeypatch, touchpoint_table
):
    import importlib

    import duckdb

    from journeylens.errors import OutOfResourcesError

    B = importlib.import_module("journeylens.journeys.build")
    with Workspace(tmp_path / "ws", memory_limit="1GB") as ws:
        ws.con.insert("touchpoints", touchpoint_table(BEFORE))
        build(ws)
        before = _snapshot(ws)
        ws.con.insert("touchpoints", touchpoint_table(APPENDED, import_id=2))

        def oom(*args: Any, **kwargs: Any) -> Any:
            raise duckdb.OutOfMemoryException(
                "Out of Memory Error: could not allocate block of size 256.0 KiB"
            )

        monkeypatch.setattr(B, "split_rows", oom)
        for full in (False, True):
            with pytest.raises(OutOfResourcesError) as err:
                build(ws, full=full)
            # DuckDB reports 1GB as 953.6 MiB: 0.9 GiB
            assert err.value.message == (
                f"workspace {tmp_path / 'ws'}: the build ran out of memory (DuckDB's memory limit is 0.9 GiB); "
                "nothing was changed: the workspace keeps its last build. Close other programs, or set a lower "
                "memory_limit (e.g. `memory_limit: 4GB` in workspace.yaml): DuckDB then spills to disk and the "
                "build works in smaller slices of persons"
            )
            assert (err.value.code, err.value.exit_code) == ("out_of_resources", 4)
            assert _snapshot(ws) == before


def _limits_seen(monkeypatch, B: Any) -> tuple[list[int | None], list[Any]]:
    """DuckDB's memory limit as each build saw it while it split journeys (full and incremental alike)."""
    seen: list[int | None] = []
    split = B.split_rows

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(B.memory_limit_bytes(current[0]))
        return split(*args, **kwargs)

    current: list[Any] = [None]
    monkeypatch.setattr(B, "split_rows", spy)
    return seen, current


def test_a_build_runs_under_a_memory_budget_in_proportion_to_the_touchpoints_and_restores_the_limit(
    tmp_path, monkeypatch, touchpoint_table
):
    import importlib

    B = importlib.import_module("journeylens.journeys.build")
    mib = 2**20
    monkeypatch.setattr(B, "MIN_BUDGET_BYTES", 100 * mib)
    monkeypatch.setattr(B, "BUDGET_BYTES_PER_TOUCHPOINT", 16 * mib)
    seen, current = _limits_seen(monkeypatch, B)
    with Workspace(tmp_path / "ws") as ws:
        current[0] = ws
        default = B.memory_limit_bytes(ws)
        ws.con.insert("touchpoints", touchpoint_table(BEFORE))
        build(ws)  # 7 touchpoints: 112 MiB is more than the floor
        ws.con.insert("touchpoints", touchpoint_table(APPENDED, import_id=2))
        build(ws)  # 10 touchpoints: 160 MiB
        monkeypatch.setattr(B, "BUDGET_BYTES_PER_TOUCHPOINT", 1 * mib)
        build(ws, full=True)  # 10 MiB: the floor, 100 MiB
        assert seen == [112 * mib, 160 * mib, 100 * mib]
        # the queries after a build run under DuckDB's own limit again
        assert B.memory_limit_bytes(ws) == default


def test_a_memory_limit_the_user_set_is_the_builds_limit(tmp_path, monkeypatch, touchpoint_table):
    import importlib

    B = importlib.import_module("journeylens.journeys.build")
    monkeypatch.setattr(B, "MIN_BUDGET_BYTES", 2**20)
    seen, current = _limits_seen(monkeypatch, B)
    with Workspace(tmp_path / "ws", memory_limit="3GiB") as ws:
        current[0] = ws
        ws.con.insert("touchpoints", touchpoint_table(BEFORE))
        build(ws)
        assert seen == [3 * 2**30]


def test_a_build_that_runs_out_of_its_memory_budget_says_how_to_give_it_more(
    tmp_path, monkeypatch, touchpoint_table
):
    import importlib

    import duckdb

    from journeylens.errors import OutOfResourcesError

    B = importlib.import_module("journeylens.journeys.build")
    monkeypatch.setattr(B, "MIN_BUDGET_BYTES", 768 * 2**20)

    def oom(*args: Any, **kwargs: Any) -> Any:
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block of size 256.0 KiB")

    monkeypatch.setattr(B, "split_rows", oom)
    with Workspace(tmp_path / "ws") as ws:
        ws.con.insert("touchpoints", touchpoint_table(BEFORE))
        with pytest.raises(OutOfResourcesError) as err:
            build(ws)
        assert err.value.message == (
            f"workspace {tmp_path / 'ws'}: the build ran out of memory (its default budget, 0.8 GiB); nothing was "
            "changed: the workspace keeps its last build. Give it more with a memory_limit (e.g. `memory_limit: "
            "8GB` in workspace.yaml): a build uses the limit you set"
        )


def test_a_sliced_build_that_runs_out_of_disk_says_so_and_removes_its_scratch(
    tmp_path, monkeypatch, touchpoint_table
):
    import importlib

    import duckdb

    from journeylens.errors import OutOfResourcesError

    B = importlib.import_module("journeylens.journeys.build")
    with Workspace(tmp_path / "ws") as ws:
        ws.con.insert("touchpoints", touchpoint_table(BEFORE))
        build(ws)
        before = _snapshot(ws)
        made = _recorded_scratch(monkeypatch)

        def full_disk(*args: Any, **kwargs: Any) -> Any:
            raise duckdb.IOException('IO Error: Could not write file "x.parquet": No space left on device')

        monkeypatch.setattr(B, "_build_slice", full_disk)
        with pytest.raises(OutOfResourcesError) as err:
            build(ws, full=True, slice_rows=2)
        assert err.value.message.startswith(
            f"workspace {tmp_path / 'ws'}: the disk ran out of space during the build (IO Error: Could not write "
            'file "x.parquet": No space left on device); nothing was changed: the workspace keeps its last build.'
        )
        assert _snapshot(ws) == before
        assert len(made) == 1 and not made[0].exists()

        # any other I/O error is not a full disk, and stays what it is
        def other(*args: Any, **kwargs: Any) -> Any:
            raise duckdb.IOException("IO Error: Cannot open file: permission denied")

        monkeypatch.setattr(B, "_build_slice", other)
        with pytest.raises(duckdb.IOException, match="permission denied"):
            build(ws, full=True, slice_rows=2)


def test_the_memory_limit_can_be_a_workspace_setting(tmp_path):
    import importlib

    from journeylens.errors import WorkspaceError

    B = importlib.import_module("journeylens.journeys.build")
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "workspace.yaml").write_text("version: 1\ntimezone: UTC\nmemory_limit: 500MB\n")
    with Workspace(tmp_path / "ws") as ws:
        assert B.memory_limit_bytes(ws) == int(476.8 * 2**20)  # DuckDB reports 500 MB as 476.8 MiB
    with Workspace(tmp_path / "ws", memory_limit="1GB") as ws:  # the argument wins
        assert B.memory_limit_bytes(ws) == int(953.6 * 2**20)
    (tmp_path / "ws" / "workspace.yaml").write_text("version: 1\ntimezone: UTC\nmemory_limit: lots\n")
    with pytest.raises(WorkspaceError) as err:
        Workspace(tmp_path / "ws")
    assert err.value.message.startswith(
        f"workspace {tmp_path / 'ws'}: memory_limit 'lots' is not a size DuckDB understands (in workspace.yaml "
        "or the memory_limit argument); expected e.g. 4GB or 512MB"
    )


def test_dead_shares_count_the_deleted_rows_a_derived_table_still_stores(tmp_path, touchpoint_table):
    import importlib

    B = importlib.import_module("journeylens.journeys.build")
    with Workspace(tmp_path / "ws") as ws:
        ws.con.insert("touchpoints", touchpoint_table(BEFORE))
        build(ws)
        assert B.dead_shares(ws) == dict.fromkeys(B.DERIVED_TABLES, 0.0)
        jt = ws.table("journey_touchpoints")
        stored = int(jt.count().execute())
        anns = int(jt.filter(jt.person_id == "ann").count().execute())
        assert 0 < anns < stored
        ws.con.raw_sql("DELETE FROM journey_touchpoints WHERE person_id = 'ann'")
        shares = B.dead_shares(ws)
        assert shares["journey_touchpoints"] == pytest.approx(anns / stored)
        assert {name: v for name, v in shares.items() if name != "journey_touchpoints"} == dict.fromkeys(
            set(B.DERIVED_TABLES) - {"journey_touchpoints"}, 0.0
        )
        # a full build writes every table anew
        build(ws, full=True)
        assert B.dead_shares(ws) == dict.fromkeys(B.DERIVED_TABLES, 0.0)


@pytest.mark.parametrize(("dead_share", "expected"), [(1.0, "0"), (-1.0, "100")], ids=["deferred", "due"])
def test_an_incremental_build_commits_without_duckdbs_vacuum_until_a_table_is_a_quarter_deleted(
    tmp_path, monkeypatch, touchpoint_table, dead_share, expected
):
    import importlib

    B = importlib.import_module("journeylens.journeys.build")
    # every table is at most 100% deleted, and at least -100%: the vacuum is deferred, or due
    monkeypatch.setattr(B, "VACUUM_DEAD_SHARE", dead_share)
    seen: list[str] = []
    split = B.split_rows

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(ws.con.con.execute("SELECT current_setting('max_vacuum_tasks')").fetchone()[0])
        return split(*args, **kwargs)

    monkeypatch.setattr(B, "split_rows", spy)
    with Workspace(tmp_path / "ws") as ws:
        default = ws.con.con.execute("SELECT current_setting('max_vacuum_tasks')").fetchone()[0]
        assert str(default) == "100"  # DuckDB's default
        ws.con.insert("touchpoints", touchpoint_table(BEFORE))
        build(ws)  # full: nothing to vacuum, DuckDB's setting as it is
        ws.con.insert("touchpoints", touchpoint_table(APPENDED, import_id=2))
        assert build(ws).mode == "incremental"
        assert [str(v) for v in seen] == ["100", expected]
        assert ws.con.con.execute("SELECT current_setting('max_vacuum_tasks')").fetchone()[0] == default


def test_a_build_with_nothing_imported_since_the_last_one_only_records_itself(
    tmp_path, monkeypatch, touchpoint_table
):
    import importlib

    B = importlib.import_module("journeylens.journeys.build")
    with Workspace(tmp_path / "ws") as ws:
        ws.con.insert("touchpoints", touchpoint_table(BEFORE))
        first = build(ws)
        before = ws.con.con.execute("SELECT event_id, rowid FROM journey_touchpoints ORDER BY 1").fetchall()
        snapshot = _snapshot(ws)

        def no_split(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("nothing to split")

        monkeypatch.setattr(B, "split_rows", no_split)
        again = build(ws)
        # the same journeys and touchpoints as the full build, no one rebuilt, every stored row in place
        assert (again.build_id, again.mode, again.persons_rebuilt, again.touchpoints_rebuilt) == (
            2,
            "incremental",
            0,
            0,
        )
        assert (again.journeys, again.touchpoints) == (first.journeys, first.touchpoints)
        after = ws.con.con.execute("SELECT event_id, rowid FROM journey_touchpoints ORDER BY 1").fetchall()
        assert after == before
        assert _snapshot(ws) == snapshot
        rows = ws.con.con.execute(
            "SELECT build_id, mode, import_watermark, persons_rebuilt FROM builds ORDER BY build_id"
        ).fetchall()
        assert rows == [(1, "full", 1, first.persons_rebuilt), (2, "incremental", 1, 0)]
        # other models: a full build, whatever was imported
        monkeypatch.undo()
        assert build(ws, model="three-phase").mode == "full"
        # and with a new import, an incremental build splits again
        ws.con.insert("touchpoints", touchpoint_table(APPENDED, import_id=2))
        later = build(ws, model="three-phase")
        assert (later.mode, later.persons_rebuilt) == ("incremental", 4)
