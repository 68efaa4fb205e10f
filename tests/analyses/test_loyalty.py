"""Loyalty: repeat purchases, gaps, cohort retention, advocacy, referrals and lifetime value.

A hand-worked fixture on DuckDB and Spark, a brute-force plain-Python reference on random data, the CLI.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from journeylens.analyses import stats
from journeylens.analyses.base import parse_spec
from journeylens.analyses.cli_insights import register
from journeylens.analyses.loyalty import LoyaltySpec, run
from journeylens.errors import SpecError
from journeylens.store import Workspace


def load(con, tables: dict[str, pa.Table], folder: Path, only: tuple[str, ...] | None = None) -> Workspace:
    """A workspace on ``con`` holding built tables (those named in ``only``, default all).

    Spark reads them from Parquet files in ``folder`` as temporary views: ibis 12's PySpark backend turns a
    nullable int64 column into all NULLs when it loads an Arrow table or a memtable."""
    for name in only or tuple(tables):
        if con.name == "pyspark":
            pq.write_table(tables[name], folder / f"{name}.parquet")
            con.read_parquet(str(folder / f"{name}.parquet"), table_name=name)
        else:
            con.create_table(name, tables[name], overwrite=True)
    return Workspace.from_backend(con, create=False)


def nps(value):
    return {"scale": "nps", "satisfaction": float(value)}


def buy(amount):
    return {"revenue": float(amount)}


# (touchpoint, when, channel, {more columns}); every time of day is 10:00, so gaps are whole days
PEOPLE = {
    "anna": [
        ("purchase", "2024-01-10T10:00", "website", buy(100)),
        ("survey_response", "2024-02-01T10:00", "email", nps(10)),
        ("purchase", "2024-02-20T10:00", "website", buy(50)),  # 41 days after the first
        ("referral", "2024-03-01T10:00", "referral"),
        ("purchase", "2024-04-10T10:00", "website", buy(30)),  # 50 days after the second
        ("refund", "2024-04-15T10:00", "website", buy(-30)),
        ("survey_response", "2024-05-01T10:00", "email", nps(6)),  # her latest answer: detractor
    ],
    "bob": [
        ("purchase", "2024-01-25T10:00", "store", buy(200)),
        ("survey_response", "2024-02-10T10:00", "email", nps(9)),  # promoter
        ("referral", "2024-02-15T10:00", "referral"),
        ("referral", "2024-02-16T10:00", "referral"),
    ],
    "carl": [
        ("purchase", "2024-02-05T10:00", "website", buy(40)),
        ("purchase", "2024-02-25T10:00", "website", buy(60)),  # 20 days later, in his first month
        ("survey_response", "2024-03-01T10:00", "email", nps(7)),  # passive
    ],
    "dora": [  # no purchase: not a buyer, but her NPS answer counts
        ("site_visit", "2024-02-01T10:00"),
        ("survey_response", "2024-02-02T10:00", "email", nps(3)),
    ],
    "eve": [("purchase", "2024-03-03T10:00", "app", buy(10))],
}
PERSONS = {
    "anna": {"persona": "x"},
    "bob": {"persona": "y"},
    "carl": {"persona": "x"},
    "dora": {"persona": "y"},
    "eve": {},
}


@pytest.fixture(scope="module")
def tables(helpers):
    return helpers.built_tables(PEOPLE, PERSONS)


def test_hand_worked(backend, tables, tmp_path):
    ws = load(backend, tables, tmp_path, only=("touchpoints", "persons", "journey_touchpoints"))
    result = run(ws, LoyaltySpec(min_n=1))
    m = result.metric
    # buyers anna (3 purchases), bob (1), carl (2), eve (1): 4 buyers, 2 repeat buyers, 7 purchases
    assert m("buyers") == 4 and m("repeat_purchase_rate") == 0.5 and m("purchases_per_buyer") == 1.75
    low, high = stats.wilson(2, 4)
    metrics = {r["metric"]: r for r in result.table.to_pylist()}
    assert (metrics["repeat_purchase_rate"]["low"], metrics["repeat_purchase_rate"]["high"]) == (
        pytest.approx(float(low)),
        pytest.approx(float(high)),
    )
    # gaps 20 (carl), 41 and 50 days (anna): median 41, p90 = 41 + 0.8 * (50 - 41) = 48.2, mean 37
    assert m("days_between_purchases_median") == pytest.approx(41.0)
    assert m("days_between_purchases_p90") == pytest.approx(48.2)
    assert m("days_between_purchases_mean") == pytest.approx(37.0)
    assert metrics["days_between_purchases_median"]["n"] == 3
    # latest NPS answers: anna 6, bob 9, carl 7, dora 3 -> 1 promoter, 1 passive, 2 detractors: NPS -25
    assert m("nps") == pytest.approx(-25.0)
    # referrals: anna 1, bob 2 -> 3 referrals by 2 persons, both buyers: 2 of 4 buyers refer
    assert (m("referrals"), m("referrers"), m("buyers_referring_share")) == (3, 2, 0.5)
    # lifetime value: anna 100 + 50 + 30 - 30 = 150, bob 200, carl 100, eve 10 -> mean 115, median 125
    assert (m("clv_mean"), m("clv_median"), m("revenue")) == (115.0, 125.0, 460.0)

    # cohorts (first-purchase month; the data end in May 2024, so May is not complete)
    # Jan: anna, bob. Feb: anna buys again (1/2); Apr: anna again (1/2). Revenue Jan 100 + 200; Feb 50;
    #      Apr 30 - 30 = 0.
    # Feb: carl, who buys again in February itself: m0 = 1/1, revenue 40 + 60.  Mar: eve, never again.
    cohorts = [
        (r["cohort"], r["months_since"], r["customers"], r["purchasers"], r["revenue"], r["complete"])
        for r in result.cohorts.to_pylist()
    ]
    assert cohorts == [
        ("2024-01", 0, 2, 0, 300.0, True),
        ("2024-01", 1, 2, 1, 50.0, True),
        ("2024-01", 2, 2, 0, 0.0, True),
        ("2024-01", 3, 2, 1, 0.0, True),
        ("2024-01", 4, 2, 0, 0.0, False),
        ("2024-02", 0, 1, 1, 100.0, True),
        ("2024-02", 1, 1, 0, 0.0, True),
        ("2024-02", 2, 1, 0, 0.0, True),
        ("2024-02", 3, 1, 0, 0.0, False),
        ("2024-03", 0, 1, 0, 10.0, True),
        ("2024-03", 1, 1, 0, 0.0, True),
        ("2024-03", 2, 1, 0, 0.0, False),
    ]
    assert result.cohorts.column("retention").to_pylist()[:2] == [0.0, 0.5]
    summary = [(r["cohort"], r["customers"], r["revenue"]) for r in result.cohort_summary.to_pylist()]
    assert summary == [("2024-01", 2, 350.0), ("2024-02", 1, 100.0), ("2024-03", 1, 10.0)]

    advocacy = [(r["nps_class"], r["persons"], r["referrers"]) for r in result.advocacy.to_pylist()]
    assert advocacy == [("promoter", 1, 1), ("passive", 1, 0), ("detractor", 2, 1)]
    clv = [
        (r["persona"], r["customers"], r["mean"], r["median"], r["revenue"]) for r in result.clv.to_pylist()
    ]
    assert clv == [
        ("(unknown)", 1, 10.0, 10.0, 10.0),
        ("x", 2, 125.0, 125.0, 250.0),
        ("y", 1, 200.0, 200.0, 200.0),
        ("(all)", 4, 115.0, 125.0, 460.0),
    ]


def test_max_months_filters_and_names(tables, tmp_path):
    con = ibis.duckdb.connect()
    try:
        ws = load(con, tables, tmp_path)
        short = run(ws, LoyaltySpec(max_months=1, min_n=1))
        assert sorted({r["months_since"] for r in short.cohorts.to_pylist()}) == [0, 1]
        only_x = run(ws, LoyaltySpec(filters={"personas": ["x"]}))
        assert only_x.metric("buyers") == 2 and only_x.metric("repeat_purchase_rate") == 1.0
        assert only_x.table.column("too_thin").to_pylist()[0] is True  # 2 buyers < min_n 30
        # other purchase and referral touchpoints: a refund as the "purchase" gives one buyer, no repeat
        other = run(ws, LoyaltySpec(purchase_touchpoints=["refund"], referral_touchpoints=["site_visit"]))
        assert (other.metric("buyers"), other.metric("referrers")) == (1, 1)
    finally:
        con.disconnect()


def test_spec_is_strict():
    with pytest.raises(SpecError, match="loyalty: unknown field 'months'"):
        parse_spec(LoyaltySpec, {"months": 3})
    with pytest.raises(SpecError, match="loyalty: purchase_touchpoints: List should have at least 1 item"):
        parse_spec(LoyaltySpec, {"purchase_touchpoints": []})


# -- a brute-force reference on random data ----------------------------------------------------------------

JT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("person_id", pa.string()),
        ("journey_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("touchpoint", pa.string()),
        ("revenue", pa.float64()),
        ("satisfaction", pa.float64()),
        ("scale", pa.string()),
    ]
)


@st.composite
def histories(draw):
    rows = []
    start = datetime(2023, 11, 1, tzinfo=UTC)
    for p in range(draw(st.integers(1, 6))):
        for i in range(draw(st.integers(1, 8))):
            tp = draw(
                st.sampled_from(
                    ["purchase", "purchase", "refund", "site_visit", "survey_response", "referral"]
                )
            )
            row = {
                "event_id": f"p{p}-{i:02d}",
                "person_id": f"p{p}",
                "journey_id": f"p{p}/purchase/0",
                # a few distinct times over 8 months: ties, month ends and same-month repeats all happen
                "timestamp": start + timedelta(hours=6 * draw(st.integers(0, 4 * 240))),
                "touchpoint": tp,
                "revenue": None,
                "satisfaction": None,
                "scale": None,
            }
            if tp == "purchase":
                row["revenue"] = float(draw(st.integers(1, 500)))
            elif tp == "refund":
                row["revenue"] = -float(draw(st.integers(1, 100)))
            elif tp == "survey_response":
                row.update(scale="nps", satisfaction=float(draw(st.integers(0, 10))))
            rows.append(row)
    return rows


def month(ts: datetime) -> int:
    return ts.year * 12 + ts.month - 1


def reference(rows: list[dict], max_months: int) -> dict:
    order = sorted(rows, key=lambda r: (r["timestamp"], r["event_id"]))
    purchases: dict[str, list[dict]] = {}
    for r in order:
        if r["touchpoint"] == "purchase":
            purchases.setdefault(r["person_id"], []).append(r)
    gaps = [
        (b["timestamp"] - a["timestamp"]).total_seconds() / 86400
        for ps in purchases.values()
        for a, b in zip(ps, ps[1:], strict=False)
    ]
    end = month(max(r["timestamp"] for r in rows))
    cohort_of = {p: month(ps[0]["timestamp"]) for p, ps in purchases.items()}
    cells = []
    for c in sorted(set(cohort_of.values())):
        members = [p for p, pc in cohort_of.items() if pc == c]
        for m in range(min(max_months, end - c) + 1):
            again = [p for p in members if any(month(x["timestamp"]) == c + m for x in purchases[p][1:])]
            revenue = sum(
                r["revenue"] for r in rows
                if r["person_id"] in members and r["revenue"] is not None and month(r["timestamp"]) == c + m
            )  # fmt: skip
            cells.append((c, m, len(members), len(again), revenue))
    latest: dict[str, float] = {}
    for r in order:
        if r["scale"] == "nps":
            latest[r["person_id"]] = r["satisfaction"]
    classes = [
        sum(v >= 9 for v in latest.values()),
        sum(7 <= v <= 8 for v in latest.values()),
        sum(v <= 6 for v in latest.values()),
    ]
    clv = {
        p: sum(r["revenue"] for r in rows if r["person_id"] == p and r["revenue"] is not None)
        for p in purchases
    }
    return {
        "buyers": len(purchases),
        "repeat": sum(len(ps) >= 2 for ps in purchases.values()),
        "gaps": gaps,
        "cells": cells,
        "classes": classes,
        "clv": list(clv.values()),
    }


@pytest.fixture(scope="module")
def scratch():
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows=histories(), max_months=st.integers(0, 4))
def test_matches_brute_force_reference(scratch, rows, max_months):
    table = pa.Table.from_pylist(rows, schema=JT_SCHEMA)
    scratch.create_table("journey_touchpoints", table, overwrite=True)
    scratch.create_table("touchpoints", table, overwrite=True)  # the data's end comes from here
    persons = sorted({r["person_id"] for r in rows})
    scratch.create_table(
        "persons", pa.table({"person_id": persons, "persona": ["x"] * len(persons)}), overwrite=True
    )
    result = run(Workspace.from_backend(scratch, create=False), LoyaltySpec(max_months=max_months, min_n=1))
    ref = reference(rows, max_months)

    assert result.metric("buyers") == ref["buyers"]
    if ref["buyers"]:
        assert result.metric("repeat_purchase_rate") == pytest.approx(ref["repeat"] / ref["buyers"])
        assert result.metric("clv_mean") == pytest.approx(np.mean(ref["clv"]))
        assert result.metric("clv_median") == pytest.approx(np.median(ref["clv"]))
    if ref["gaps"]:
        assert result.metric("days_between_purchases_median") == pytest.approx(np.quantile(ref["gaps"], 0.5))
        assert result.metric("days_between_purchases_p90") == pytest.approx(np.quantile(ref["gaps"], 0.9))
    else:
        assert np.isnan(result.metric("days_between_purchases_median"))
    got = [
        (r["cohort"], r["months_since"], r["customers"], r["purchasers"], pytest.approx(r["revenue"]))
        for r in result.cohorts.to_pylist()
    ]
    expected = [(f"{c // 12:04d}-{c % 12 + 1:02d}", m, n, k, rev) for c, m, n, k, rev in ref["cells"]]
    assert got == expected
    assert result.advocacy.column("persons").to_pylist() == ref["classes"]


# -- the command line --------------------------------------------------------------------------------------


def test_cli(tmp_path, tables):
    path = tmp_path / "ws"
    ws = Workspace(path)
    load(ws.con, tables, tmp_path)
    ws.close()
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    out = runner.invoke(app, ["loyalty", "-w", str(path), "--format", "json"])
    assert out.exit_code == 0, out.output
    metrics = {r["metric"]: r["value"] for r in json.loads(out.output)}
    assert metrics["buyers"] == 4 and metrics["repeat_purchase_rate"] == 0.5

    out = runner.invoke(
        app, ["loyalty", "-w", str(path), "--view", "retention", "--format", "csv", "--months", "2"]
    )
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [
        "cohort,customers,m0,m1,m2",
        "2024-01,2,0.0,0.5,0.0",
        "2024-02,1,1.0,0.0,0.0",
        "2024-03,1,0.0,0.0,0.0",
    ]

    out = runner.invoke(
        app, ["loyalty", "-w", str(path), "--view", "advocacy", "--persona", "y", "--format", "csv"]
    )
    assert out.exit_code == 0, out.output
    assert [line.split(",")[:2] for line in out.output.splitlines()[1:]] == [
        ["promoter", "1"],
        ["passive", "0"],
        ["detractor", "1"],
    ]

    out = runner.invoke(app, ["loyalty", "-w", str(path), "--view", "nope"])
    assert out.exit_code == 2 and "--view 'nope': expected one of summary, cohorts, retention" in out.output
