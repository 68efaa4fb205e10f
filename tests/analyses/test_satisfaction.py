"""Satisfaction: which step an answer rates, the figures per step, the ranking and the emotion curve.

Hand-worked fixtures on DuckDB and Spark, a brute-force plain-Python reference on random data, the CLI.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ibis
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
from journeylens.analyses.satisfaction import SatisfactionSpec, run
from journeylens.errors import SpecError
from journeylens.schema import SATISFACTION_SCALES
from journeylens.store import Workspace

# -- fixtures: declarative people (tests/analyses/conftest.py builds them once, on DuckDB) -----------------


def load(con, tables: dict[str, pa.Table], folder: Path, only: tuple[str, ...] | None = None) -> Workspace:
    """A workspace on ``con`` holding built tables (those named in ``only``, default all).

    Spark reads them from Parquet files in ``folder`` as temporary views: ibis 12's PySpark backend turns a
    nullable int64 column (phase_index) into all NULLs when it loads an Arrow table or a memtable."""
    for name in only or tuple(tables):
        if con.name == "pyspark":
            pq.write_table(tables[name], folder / f"{name}.parquet")
            con.read_parquet(str(folder / f"{name}.parquet"), table_name=name)
        else:
            con.create_table(name, tables[name], overwrite=True)
    return Workspace.from_backend(con, create=False)


def survey(scale, value, about=None):
    out = {"scale": scale, "satisfaction": float(value)}
    if about is not None:
        out["properties"] = json.dumps({"about": about})
    return out


# (touchpoint, when, channel, {more columns}); event ids are <person>-<nn> in this order
PEOPLE = {
    "anna": [
        ("ad_view", "2024-01-01T10:00", "display", {"content_type": "ad"}),
        ("site_visit", "2024-01-02T10:00"),
        ("purchase", "2024-01-03T10:00", "website", {"revenue": 50.0}),
        ("delivery", "2024-01-05T10:00", "email"),
        (
            "survey_response",
            "2024-01-05T12:00",
            "email",
            survey("csat", 5, "delivery"),
        ),  # about -> delivery (email)
        ("site_visit", "2024-01-10T10:00"),
        (
            "survey_response",
            "2024-01-20T10:00",
            "email",
            survey("nps", 9, "purchase"),
        ),  # about -> purchase (website)
    ],
    "bob": [
        ("site_visit", "2024-02-01T09:00"),
        ("store_visit", "2024-02-02T10:00", "store"),
        # same timestamp, later event id: "previous" is the store visit
        ("survey_response", "2024-02-02T10:00", "email", survey("csat", 2)),
    ],
    "carl": [
        ("purchase", "2024-03-01T10:00", "website", {"revenue": 20.0}),
        ("delivery", "2024-03-03T10:00", "partner"),
        ("survey_response", "2024-03-03T18:00", "website", survey("csat", 4, "delivery")),
        # about a support call carl never had: "about_unmatched", the survey's own channel (website) and phase
        ("survey_response", "2024-03-04T18:00", "website", survey("csat", 1, "support_call")),
        # not a survey: a rated chat rates itself
        ("support_chat", "2024-03-05T10:00", "chat", {"scale": "ces", "satisfaction": 6.0}),
    ],
    # a survey with nothing before it rates its own touchpoint, in no phase
    "dora": [("survey_response", "2024-04-01T10:00", "email", survey("csat", 3))],
}
PERSONS = {
    "anna": {"persona": "a"},
    "bob": {"persona": "b"},
    "carl": {"persona": "a"},
    "dora": {"persona": "b"},
}


@pytest.fixture(scope="module")
def tables(helpers):
    return helpers.built_tables(PEOPLE, PERSONS)


@pytest.fixture
def ws(tables, tmp_path):
    con = ibis.duckdb.connect()
    yield load(con, tables, tmp_path)
    con.disconnect()


def rows_by(result, key):
    return {(r[key], r["scale"]): r for r in result.table.to_pylist()}


def test_hand_worked_by_touchpoint(backend, tables, tmp_path):
    ws = load(
        backend, tables, tmp_path, only=("journey_touchpoints",)
    )  # all it reads without filters  # all that satisfaction reads without filters
    result = run(ws, SatisfactionSpec(min_n=2))
    got = rows_by(result, "touchpoint")
    # delivery: anna 5, carl 4 -> n 2, mean 4.5, both satisfied (>= 4): CSAT 100 %; normalised (4.5-1)/4
    # purchase (nps): anna 9 -> promoter: NPS 100; store_visit: bob 2 -> dissatisfied, CSAT 0
    # support_call: carl 1 (about_unmatched); survey_response: dora 3 (own); support_chat (ces): 6, easy
    expected = {
        ("delivery", "csat"): (2, 4.5, 0.875, 100.0),
        ("purchase", "nps"): (1, 9.0, 0.9, 100.0),
        ("store_visit", "csat"): (1, 2.0, 0.25, 0.0),
        ("support_call", "csat"): (1, 1.0, 0.0, 0.0),
        ("survey_response", "csat"): (1, 3.0, 0.5, 0.0),
        ("support_chat", "ces"): (1, 6.0, 5 / 6, 6.0),
    }
    assert set(got) == set(expected)
    for key, (n, mean, normalised, score) in expected.items():
        row = got[key]
        assert (row["n"], row["mean"], row["score"]) == (n, pytest.approx(mean), pytest.approx(score)), key
        assert row["normalised"] == pytest.approx(normalised), key
        assert row["too_thin"] == (n < 2)
    low, high = stats.wilson(2, 2)
    assert got[("delivery", "csat")]["score_low"] == pytest.approx(100 * float(low))
    assert got[("delivery", "csat")]["score_high"] == pytest.approx(100 * float(high))
    assert got[("store_visit", "csat")]["bottom_share"] == 1.0
    assert [(r["rule"], r["answers"]) for r in result.attribution.to_pylist()] == [
        ("about", 3),
        ("about_unmatched", 1),
        ("previous", 1),
        ("own", 2),
    ]
    # phases: service = delivery 5, 4, support_call 1 (carried from the delivery) and the chat (ces 6);
    # purchase = the nps 9 and the store visit 2; dora's survey has no phase
    curve = result.emotion_curve.to_pylist()
    assert [(r["phase"], r["phase_index"], r["n"]) for r in curve] == [("purchase", 2, 2), ("service", 3, 4)]
    assert curve[0]["normalised"] == pytest.approx((0.9 + 0.25) / 2)
    assert curve[1]["normalised"] == pytest.approx((1.0 + 0.75 + 0.0 + 5 / 6) / 4)
    assert result.overall == pytest.approx((1.0 + 0.75 + 0.9 + 0.25 + 0.0 + 5 / 6 + 0.5) / 7)


def test_by_channel_and_phase(ws):
    by_channel = rows_by(run(ws, SatisfactionSpec(by="channel", min_n=1)), "channel")
    # email: anna's delivery (5) and dora's own survey (3); website: the nps about the purchase, carl's
    # unmatched survey (1); partner: carl's delivery (4)
    assert {k: (r["n"], r["mean"]) for k, r in by_channel.items()} == {
        ("email", "csat"): (2, 4.0),
        ("website", "nps"): (1, 9.0),
        ("website", "csat"): (1, 1.0),
        ("partner", "csat"): (1, 4.0),
        ("store", "csat"): (1, 2.0),
        ("chat", "ces"): (1, 6.0),
    }
    by_phase = run(ws, SatisfactionSpec(by="phase", min_n=1)).table.to_pylist()
    # in phase order, then scale order (csat, nps, ces); the unphased answers last
    assert [(r["phase"], r["scale"], r["n"]) for r in by_phase] == [
        ("purchase", "csat", 1),
        ("purchase", "nps", 1),
        ("service", "csat", 3),
        ("service", "ces", 1),
        ("(unassigned)", "csat", 1),
    ]
    assert by_phase[2]["mean"] == pytest.approx(10 / 3)


def test_ranking_and_too_thin(ws):
    result = run(ws, SatisfactionSpec(min_n=1))
    ranking = result.ranking.to_pylist()
    # least satisfied first, by normalised mean
    assert [r["touchpoint"] for r in ranking] == [
        "support_call", "store_visit", "survey_response", "support_chat", "delivery", "purchase",
    ]  # fmt: skip
    assert [r["rank"] for r in ranking] == [1, 2, 3, 4, 5, 6]
    # with the default min_n (30) every figure here is too thin: kept in the table, left out of the ranking
    thin = run(ws, SatisfactionSpec())
    assert all(thin.table.column("too_thin").to_pylist()) and thin.ranking.num_rows == 0


def test_ranking_marks_below_and_above(helpers, tmp_path):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    people = {}
    for i in range(40):  # 40 unhappy support calls and 40 happy deliveries, one person each
        t = start + timedelta(days=i)
        later = (t + timedelta(hours=1)).isoformat()
        people[f"s{i:02d}"] = [
            ("support_call", t.isoformat()),
            ("survey_response", later, "email", survey("csat", 1 + i % 2)),
        ]
        people[f"d{i:02d}"] = [
            ("delivery", t.isoformat()),
            ("survey_response", later, "email", survey("csat", 4 + i % 2)),
        ]
    con = ibis.duckdb.connect()
    try:
        ranking = run(
            load(con, helpers.built_tables(people), tmp_path), SatisfactionSpec()
        ).ranking.to_pylist()
    finally:
        con.disconnect()
    assert [(r["touchpoint"], r["vs_overall"]) for r in ranking] == [
        ("support_call", "below"),
        ("delivery", "above"),
    ]


def test_filters_and_scales(ws):
    only_a = rows_by(run(ws, SatisfactionSpec(min_n=1, filters={"personas": ["a"]})), "touchpoint")
    assert set(only_a) == {
        ("delivery", "csat"),
        ("purchase", "nps"),
        ("support_call", "csat"),
        ("support_chat", "ces"),
    }
    nps_only = run(ws, SatisfactionSpec(min_n=1, scales=["nps"]))
    assert nps_only.table.column("scale").to_pylist() == ["nps"]
    # without the about hint the nps survey rates the step before it: anna's site visit of 2024-01-10
    no_about = rows_by(run(ws, SatisfactionSpec(min_n=1, about_property=None)), "touchpoint")
    assert no_about[("site_visit", "nps")]["n"] == 1
    assert ("delivery", "csat") in no_about  # the surveys right after the deliveries still rate them


def test_spec_is_strict():
    with pytest.raises(SpecError, match="satisfaction: unknown field 'step'"):
        parse_spec(SatisfactionSpec, {"step": "x"})
    with pytest.raises(SpecError, match="satisfaction: min_n: Input should be greater than or equal to 1"):
        parse_spec(SatisfactionSpec, {"min_n": 0})
    with pytest.raises(
        SpecError,
        match="satisfaction: by: Input should be 'touchpoint', 'channel', 'phase' or 'journey_type'",
    ):
        parse_spec(SatisfactionSpec, {"by": "persona"})


# -- a brute-force reference on random data ----------------------------------------------------------------
#
# The reference works on journey_touchpoints rows, so the random data are journey_touchpoints rows too
# (journeys and phases drawn at random, no builder involved): any split into journeys must be handled.

VOCAB = ["ad_view", "site_visit", "store_visit", "purchase", "delivery", "support_chat", "survey_response"]
PHASES = ["awareness", "consideration", "purchase", "service", "loyalty"]
JT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("person_id", pa.string()),
        ("journey_id", pa.string()),
        ("journey_type", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()),
        ("touchpoint", pa.string()),
        ("phase", pa.string()),
        ("phase_index", pa.int64()),
        ("satisfaction", pa.float64()),
        ("scale", pa.string()),
        ("properties", pa.string()),
    ]
)


@st.composite
def journey_touchpoints(draw):
    rows = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for p in range(draw(st.integers(1, 5))):
        for i in range(draw(st.integers(1, 10))):
            tp = draw(st.sampled_from(VOCAB))
            phase = draw(st.sampled_from([None, *PHASES]))
            row = {
                "event_id": f"p{p}-{i:03d}",
                "person_id": f"p{p}",
                "journey_id": f"p{p}/purchase/{draw(st.integers(1, 2))}",
                "journey_type": "purchase",
                # few distinct hours: ties in time are common, event_id breaks them
                "timestamp": start + timedelta(hours=draw(st.integers(0, 12))),
                "channel": draw(st.sampled_from(["website", "email", "store"])),
                "touchpoint": tp,
                "phase": phase,
                "phase_index": None if phase is None else PHASES.index(phase),
                "satisfaction": None,
                "scale": None,
                "properties": None,
            }
            if tp == "survey_response" or (tp == "support_chat" and draw(st.booleans())):
                scale = draw(st.sampled_from(list(SATISFACTION_SCALES)))
                low, high = SATISFACTION_SCALES[scale]
                row.update(scale=scale, satisfaction=float(draw(st.integers(low, high))))
                about = draw(st.sampled_from([None, None, "purchase", "delivery", "support_call"]))
                if about is not None and tp == "survey_response":
                    row["properties"] = json.dumps({"about": about})
            rows.append(row)
    return rows


def reference(jt: list[dict], by: str) -> tuple[dict, dict]:
    """Plain Python over journey_touchpoints rows: {(key, scale): [values]} and {rule: count}."""
    order = sorted(jt, key=lambda r: (r["timestamp"], r["event_id"]))
    groups: dict = {}
    rules: dict = {}
    for a in order:
        if a["satisfaction"] is None:
            continue
        rated, rule = a, "own"
        if a["touchpoint"] == "survey_response":
            about = json.loads(a["properties"])["about"] if a["properties"] else None
            earlier = [
                r for r in order
                if r["person_id"] == a["person_id"] and r["touchpoint"] != "survey_response"
                and (r["timestamp"], r["event_id"]) < (a["timestamp"], a["event_id"])
            ]  # fmt: skip
            named = [r for r in earlier if r["touchpoint"] == about]
            same = [r for r in earlier if r["journey_id"] == a["journey_id"]]
            if about is not None and named:
                rated, rule = named[-1], "about"
            elif about is not None:
                rated, rule = {**a, "touchpoint": about}, "about_unmatched"
            elif same:
                rated, rule = same[-1], "previous"
        key = rated[by] if rated[by] is not None else "(unassigned)"
        groups.setdefault((key, a["scale"]), []).append(a["satisfaction"])
        rules[rule] = rules.get(rule, 0) + 1
    return groups, rules


@pytest.fixture(scope="module")
def scratch():
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(jt=journey_touchpoints(), by=st.sampled_from(["touchpoint", "channel", "phase"]))
def test_matches_brute_force_reference(scratch, jt, by):
    scratch.create_table("journey_touchpoints", pa.Table.from_pylist(jt, schema=JT_SCHEMA), overwrite=True)
    ws = Workspace.from_backend(scratch)
    result = run(ws, SatisfactionSpec(by=by, min_n=1))
    groups, rules = reference(jt, by)
    got = rows_by(result, by)
    assert set(got) == set(groups)
    for (key, scale), values in groups.items():
        row = got[(key, scale)]
        top, bottom = {"csat": (4, 2), "nps": (9, 6), "ces": (5, 3)}[scale]
        assert row["n"] == len(values)
        assert row["mean"] == pytest.approx(sum(values) / len(values))
        assert row["top_share"] == pytest.approx(sum(v >= top for v in values) / len(values))
        assert row["bottom_share"] == pytest.approx(sum(v <= bottom for v in values) / len(values))
    assert {r["rule"]: r["answers"] for r in result.attribution.to_pylist() if r["answers"]} == rules


# -- the command line --------------------------------------------------------------------------------------


def test_cli(tmp_path, tables):
    path = tmp_path / "ws"
    ws = Workspace(path)
    load(ws.con, tables, tmp_path)
    ws.close()
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    out = runner.invoke(
        app, ["satisfaction", "-w", str(path), "--format", "json", "--min-n", "1", "--by", "phase"]
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [(r["phase"], r["scale"]) for r in rows][:2] == [("purchase", "csat"), ("purchase", "nps")]

    out = runner.invoke(
        app, ["satisfaction", "-w", str(path), "--view", "curve", "--format", "csv", "--persona", "b"]
    )
    assert out.exit_code == 0, out.output
    assert (
        out.output.splitlines()[0] == "phase,phase_index,n,normalised,normalised_low,normalised_high,too_thin"
    )
    assert out.output.splitlines()[1].startswith("purchase,2,1,0.25,")  # bob's store visit only

    out = runner.invoke(app, ["satisfaction", "-w", str(path), "--view", "ranking", "--min-n", "1"])
    assert out.exit_code == 0, out.output
    assert "satisfaction: ranking (all journeys)" in out.output and "rank" in out.output

    out = runner.invoke(app, ["satisfaction", "-w", str(path), "--by", "persona"])
    assert out.exit_code == 2
    assert (
        "satisfaction: by: Input should be 'touchpoint', 'channel', 'phase' or 'journey_type'; got 'persona'"
        in out.output
    )
    out = runner.invoke(app, ["satisfaction", "-w", str(path), "--segment", "country=NL"])
    assert out.exit_code == 2 and "unknown persons column 'country'" in out.output
