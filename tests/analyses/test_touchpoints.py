"""Touchpoints to purchase: hand-worked figures on DuckDB and Spark, a brute-force reference."""

from __future__ import annotations

from datetime import timedelta

import ibis
import numpy as np
import pyarrow as pa
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from journeylens.analyses import touchpoints as T
from journeylens.analyses.base import Filters, parse_spec
from journeylens.analyses.cli_funnels import register
from journeylens.errors import SpecError

# Default journey model (purchase journeys: 30-day timeout, customer view, a repeat purchase opens a new
# journey; a return journey opens at return_request and converts at its refund).
PEOPLE = {
    # contact 4, 2 d 2 h after the first contact; journey: position 4
    "anna": [
        ("ad_view", "2024-01-01T10:00", "display"),
        ("site_visit", "2024-01-02T10:00"),
        ("product_view", "2024-01-03T10:00"),
        ("purchase", "2024-01-03T12:00"),
    ],
    # contact 5 after 7 d; high involvement (two store contacts and 1500 revenue)
    "bob": [
        ("search_click", "2024-02-01T09:00", "organic_search"),
        ("site_visit", "2024-02-01T09:30"),
        ("store_visit", "2024-02-05T09:00", "store"),
        ("site_visit", "2024-02-06T09:00"),
        ("purchase", "2024-02-08T09:00", "store", {"revenue": 1500.0, "currency": "EUR"}),
    ],
    # buys at the first contact
    "cleo": [("purchase", "2024-03-01T10:00")],
    # never buys
    "dave": [("ad_click", "2024-01-05T10:00", "social"), ("site_visit", "2024-01-06T10:00")],
    # a 90-day gap splits two journeys: per person contact 4 after 91 d; per journey position 2 after 2 h
    "eve": [
        ("ad_view", "2024-01-01T12:00", "display"),
        ("site_visit", "2024-01-02T12:00"),
        ("store_visit", "2024-04-01T10:00", "store"),
        ("purchase", "2024-04-01T12:00", "store"),
    ],
    # contact 2 after 1 h; the repeat purchase two weeks later opens journey 2 (position 1, 0 d)
    "finn": [
        ("site_visit", "2024-05-01T10:00"),
        ("purchase", "2024-05-01T11:00"),
        ("purchase", "2024-05-15T10:00"),
    ],
    # the refund converts a return journey, not a purchase: the purchase is contact 3 after 19 d
    "gus": [
        ("return_request", "2024-06-01T10:00"),
        ("refund", "2024-06-02T10:00"),
        ("purchase", "2024-06-20T10:00"),
    ],
}
PERSONS = {
    "anna": {"persona": "low_involvement"},
    "bob": {"persona": "high_involvement"},
    "cleo": {"persona": "low_involvement"},
    "dave": {"persona": "mid_involvement"},
    "eve": {"persona": "mid_involvement"},
    "finn": {"persona": "low_involvement"},
    "gus": {"persona": "low_involvement"},
}


@pytest.fixture(scope="module")
def tables(helpers):
    return helpers.built_tables(PEOPLE, PERSONS)


@pytest.fixture
def duck():
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


def test_person_scope_hand_worked(backend, helpers, tables):
    ws = helpers.tables(backend, {"journey_touchpoints": tables["journey_touchpoints"]})
    result = T.run(ws, T.TouchpointsSpec())
    # first purchases per person: anna 4, bob 5, cleo 1, eve 4, finn 2, gus 3 (six purchasers)
    assert helpers.rows(
        result.table, "contact_number", "purchases", "share", "cumulative_share", "reference_share"
    ) == [
        (1, 1, 0.166667, 0.166667, 0.02),
        (2, 1, 0.166667, 0.333333, None),
        (3, 1, 0.166667, 0.5, None),
        (4, 2, 0.333333, 0.833333, 0.1),
        (5, 1, 0.166667, 1.0, None),
    ]
    # contacts [1, 2, 3, 4, 4, 5]: mean 19/6, median 3.5, p90 = 4 + .5 * 1 = 4.5
    # days [0, 1/24, 2 1/12, 7, 19, 91]: mean 119.125 / 6, median (2.083333 + 7) / 2, p90 = 19 + .5 * 72
    summary = result.summary.to_pylist()
    assert len(summary) == 1
    got = {k: round(v, 6) for k, v in summary[0].items()}
    assert got == {
        "purchases": 6,
        "mean_contacts": 3.166667,
        "median_contacts": 3.5,
        "p90_contacts": 4.5,
        "share_at_1": 0.166667,
        "share_at_4": 0.333333,
        "mean_days": 19.854167,
        "median_days": 4.541667,
        "p90_days": 55.0,
        "reference_share_at_1": 0.02,
        "reference_share_at_4": 0.1,
        "reference_mean_low": 5.0,
        "reference_mean_high": 8.0,
    }
    assert result.reference == {
        "share_at_1": 0.02,
        "share_at_4": 0.10,
        "mean_contacts_low": 5.0,
        "mean_contacts_high": 8.0,
    }


def test_journey_scope_hand_worked(duck, helpers, tables):
    ws = helpers.tables(duck, tables)
    result = T.run(ws, T.TouchpointsSpec(scope="journey"))
    # converting purchase journeys: anna 4, bob 5, cleo 1, eve/2 2, finn/1 2, finn/2 1 (repeat), gus 1
    assert helpers.rows(result.table, "contact_number", "purchases", "cumulative_share") == [
        (1, 3, 0.428571),
        (2, 2, 0.714286),
        (4, 1, 0.857143),
        (5, 1, 1.0),
    ]
    # contacts [1, 1, 1, 2, 2, 4, 5]: mean 16/7, median 2, p90 = 4 + .4 * 1; eve's days: 2 h
    summary = result.summary.to_pylist()[0]
    assert (
        summary["purchases"],
        round(summary["mean_contacts"], 6),
        summary["median_contacts"],
        round(summary["p90_contacts"], 6),
    ) == (7, 2.285714, 2.0, 4.4)
    # days [0, 0, 0, 1/24, 1/12, 2 1/12, 7]: median 1/24
    assert round(summary["median_days"], 6) == 0.041667


def test_breakdowns_and_filters(duck, helpers, tables):
    ws = helpers.tables(duck, tables)
    by_persona = T.run(ws, T.TouchpointsSpec(breakdown="persona"))
    means = {
        r["breakdown"]: (r["purchases"], round(r["mean_contacts"], 6)) for r in by_persona.summary.to_pylist()
    }
    # low: anna 4, cleo 1, finn 2, gus 3; high: bob 5; mid: eve 4 (dave never buys)
    assert means == {"high_involvement": (1, 5.0), "low_involvement": (4, 2.5), "mid_involvement": (1, 4.0)}
    assert {r["breakdown"] for r in by_persona.table.to_pylist()} == {
        "high_involvement",
        "low_involvement",
        "mid_involvement",
    }
    # involvement of the journey the first purchase closed: only bob's is high
    by_inv = T.run(ws, T.TouchpointsSpec(breakdown="involvement"))
    assert {r["breakdown"]: r["purchases"] for r in by_inv.summary.to_pylist()} == {"high": 1, "low": 5}
    # filters select purchases by the journey they closed; contacts still count from the first contact
    store = T.run(ws, T.TouchpointsSpec(filters=Filters(channels=["store"])))
    assert helpers.rows(store.table, "contact_number", "purchases") == [(4, 1), (5, 1)]  # eve/2 and bob
    april = T.run(ws, T.TouchpointsSpec(filters=Filters(start="2024-04-01")))
    assert helpers.rows(april.table, "contact_number", "purchases") == [
        (2, 1),
        (3, 1),
        (4, 1),
    ]  # finn, gus, eve
    with pytest.raises(SpecError, match="touchpoints: unknown field 'scop'"):
        parse_spec(T.TouchpointsSpec, {"scop": "person"})
    with pytest.raises(SpecError, match="scope: Input should be 'person' or 'journey'"):
        parse_spec(T.TouchpointsSpec, {"scope": "household"})


def test_sql_compiles_for_pyspark(duck, helpers, tables):
    pytest.importorskip("pyspark", reason="the [spark] extra is not installed")
    _ = ibis.pyspark  # loads the backend, which registers its compiler options
    ws = helpers.tables(duck, tables)
    for spec in (
        T.TouchpointsSpec(breakdown="persona", filters=Filters(channels=["store"])),
        T.TouchpointsSpec(scope="journey", breakdown="involvement"),
    ):
        assert "SELECT" in ibis.to_sql(T.summary_expr(ws, spec), dialect="pyspark")
        assert "SELECT" in ibis.to_sql(T.expr(ws, spec), dialect="pyspark")


# -- a brute-force reference -------------------------------------------------------------------------------


@st.composite
def people(draw):
    out = {}
    for p in range(draw(st.integers(1, 8))):
        rows = []
        for i in range(draw(st.integers(0, 8))):
            jtype = draw(st.sampled_from(["purchase", "purchase", "return"]))
            rows.append(
                {
                    "event_id": f"e{p}-{draw(st.integers(0, 99)):02d}-{i}",
                    "ts": draw(st.integers(0, 20)) * 3600,
                    "journey_id": f"p{p}/{jtype}/{draw(st.integers(1, 2))}",
                    "journey_type": jtype,
                    "is_conversion": draw(st.integers(0, 3)) == 0,
                }
            )
        out[f"p{p}"] = rows
    return out


def _reference(persons: dict[str, list[dict]]) -> list[tuple[int, float]]:
    """(contact number, days) of each person's first purchase, in plain Python."""
    out = []
    for rows in persons.values():
        tps = sorted(rows, key=lambda r: (r["ts"], r["event_id"]))
        for n, tp in enumerate(tps, start=1):
            if tp["is_conversion"] and tp["journey_type"] == "purchase":
                out.append((n, round((tp["ts"] - tps[0]["ts"]) / 86_400, 9)))
                break
    return sorted(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(persons=people())
def test_first_purchase_matches_brute_force(persons, helpers, touch_con):
    base = helpers.when("2024-01-01T00:00")
    rows = [
        {
            "event_id": r["event_id"],
            "person_id": person,
            "timestamp": base + timedelta(seconds=r["ts"]),
            "channel": "web",
            "touchpoint": "t",
            "journey_id": r["journey_id"],
            "journey_type": r["journey_type"],
            "is_conversion": r["is_conversion"],
        }
        for person, rs in persons.items()
        for r in rs
    ]
    ws = helpers.tables(
        touch_con, {"journey_touchpoints": pa.Table.from_pylist(rows, schema=helpers.JT_SCHEMA)}
    )
    got = T.purchases_expr(ws, T.TouchpointsSpec()).to_pyarrow().to_pylist()
    expected = _reference(persons)
    assert sorted((r["contact_number"], round(r["days"], 9)) for r in got) == expected
    # the distribution and its summary, from the same reference
    result = T.run(ws, T.TouchpointsSpec())
    numbers = [n for n, _ in expected]
    assert [(r["contact_number"], r["purchases"]) for r in result.table.to_pylist()] == sorted(
        (n, numbers.count(n)) for n in set(numbers)
    )
    if numbers:
        s = result.summary.to_pylist()[0]
        assert s["mean_contacts"] == pytest.approx(np.mean(numbers))
        assert s["p90_contacts"] == pytest.approx(np.quantile(numbers, 0.9))
        assert s["median_days"] == pytest.approx(np.median([d for _, d in expected]), abs=1e-6)


@pytest.fixture(scope="module")
def touch_con():
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


# -- the command line ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_workspace(tmp_path_factory, helpers, tables):
    from journeylens.store import Workspace

    path = tmp_path_factory.mktemp("cli") / "ws"
    ws = Workspace(path)
    for name, table in tables.items():
        ws.con.create_table(name, table, overwrite=True)
    ws.close()
    return path


def test_cli_touchpoints(cli_workspace):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    out = runner.invoke(app, ["touchpoints", "-w", str(cli_workspace), "--format", "csv"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "contact_number,purchases,share,cumulative_share,reference_share"
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["1", "1"],
        ["2", "1"],
        ["3", "1"],
        ["4", "2"],
        ["5", "1"],
    ]
    out = runner.invoke(
        app, ["touchpoints", "-w", str(cli_workspace), "--scope", "journey", "--summary", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    assert '"purchases":7' in out.output and '"reference_share_at_1":0.02' in out.output
    out = runner.invoke(
        app,
        ["touchpoints", "-w", str(cli_workspace), "--breakdown", "persona", "--persona", "low_involvement"],
    )
    assert out.exit_code == 0, out.output
    assert "summary (reference: 2% at the 1st contact, 10% at the 4th, mean 5-8)" in out.output
    assert "high_involvement" not in out.output
    out = runner.invoke(app, ["touchpoints", "-w", str(cli_workspace), "--breakdown", "shoe_size"])
    assert out.exit_code == 2
    assert "breakdown: unknown column 'shoe_size'" in out.output
    out = runner.invoke(app, ["touchpoints", "-w", str(cli_workspace.parent / "nowhere")])
    assert out.exit_code == 2
    assert "no journeylens.duckdb here" in out.output
