"""Attribution input from a built workspace, on DuckDB and Spark (one body)."""

from __future__ import annotations

import pytest

from journeylens.attribution import Linear, read_paths
from journeylens.attribution.workspace import paths, touches
from journeylens.errors import SpecError
from journeylens.journeys import build

PEOPLE = {
    # converted: the touches before the purchase are display, website; value = the purchase's revenue
    "anna": [
        ("ad_view", "2024-01-01T10:00", {"channel": "display"}),
        ("site_visit", "2024-01-02T10:00"),
        ("purchase", "2024-01-03T10:00", {"revenue": 100.0}),
        ("delivery", "2024-01-05T10:00", {"channel": "email"}),  # after the conversion: not a cause
    ],
    # never converts: a null path
    "bob": [("search_click", "2024-01-01T10:00", {"channel": "paid_search"}), ("site_visit", "2024-01-02T10:00")],
    "cara": [("site_visit", "2024-01-04T10:00"), ("purchase", "2024-01-04T11:00", {"revenue": 50.0})],
}


def test_paths_and_touches_from_the_workspace(backend, make_workspace):
    ws = make_workspace(backend, PEOPLE)
    build(ws, model="five-phase")
    got = {(r["path"], r["conversions"], r["value"], r["nulls"]) for r in paths(ws).to_pylist()}
    assert got == {
        ("display > website", 1, 100.0, 0),
        ("paid_search > website", 0, 0.0, 1),
        ("website", 1, 50.0, 0),
    }
    rows = [r for r in touches(ws).to_pylist() if r["journey_id"].startswith("anna/")]
    assert [(r["position"], r["channel"], r["converted"], r["value"]) for r in rows] == [
        (0, "display", True, 100.0),
        (1, "website", True, 100.0),
    ]
    # linear by hand: anna's conversion splits 0.5/0.5 over display and website; cara's goes to website
    credits = Linear().fit(read_paths(paths(ws).to_pandas(), sep=">")).credits_.set_index("channel")
    assert credits.attributed_conversions.to_dict() == {"display": 0.5, "paid_search": 0.0, "website": 1.5}
    assert credits.attributed_value.to_dict() == {"display": 50.0, "paid_search": 0.0, "website": 100.0}


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_unknown_key(backend, make_workspace):
    ws = make_workspace(backend, PEOPLE)
    build(ws, model="five-phase")
    with pytest.raises(SpecError, match="key 'colour' is unknown; expected one of channel, touchpoint, content_type, phase"):
        paths(ws, key="colour")
