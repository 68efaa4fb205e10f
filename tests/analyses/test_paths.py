"""Paths: variants, the directly-follows graph, Sankey data and transitions; a brute-force DFG reference."""

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

from journeylens.analyses import paths as P
from journeylens.analyses.base import parse_spec
from journeylens.analyses.cli_funnels import register
from journeylens.errors import SpecError

# Five-phase model: ad_view -> awareness, site_visit -> consideration, product_view / purchase -> purchase.
PEOPLE = {
    "anna": [
        ("ad_view", "2024-01-01T10:00", "display"),
        ("site_visit", "2024-01-02T10:00"),  # 1 d after the ad
        ("product_view", "2024-01-03T10:00"),  # 1 d
        ("purchase", "2024-01-03T12:00"),  # 2 h
    ],
    "bob": [
        ("ad_view", "2024-02-01T10:00", "display"),
        ("site_visit", "2024-02-01T11:00"),  # 1 h
        ("site_visit", "2024-02-01T12:00"),  # 1 h
        ("product_view", "2024-02-02T12:00"),  # 1 d; no purchase
    ],
    "cleo": [
        ("ad_view", "2024-03-01T10:00", "display"),
        ("site_visit", "2024-03-01T12:00"),  # 2 h
        ("product_view", "2024-03-02T12:00"),  # 1 d
        ("purchase", "2024-03-02T13:00"),  # 1 h
    ],
    # consideration -> awareness -> consideration: a move back
    "dave": [
        ("site_visit", "2024-04-01T10:00"),
        ("ad_view", "2024-04-02T10:00", "display"),
        ("site_visit", "2024-04-03T10:00"),
    ],
}
ANNA = "ad_view > site_visit > product_view > purchase"


@pytest.fixture(scope="module")
def tables(helpers):
    return helpers.built_tables(PEOPLE, {p: {"persona": "x"} for p in PEOPLE})


@pytest.fixture
def duck():
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


def test_variants_and_dfg_hand_worked(backend, helpers, tables):
    ws = helpers.tables(backend, {k: tables[k] for k in ("journey_touchpoints", "journeys")})
    variants = P.run(ws, P.PathsSpec())
    assert variants.view == "variants"
    assert helpers.rows(
        variants.table, "variant", "length", "journeys", "share", "converted", "conversion_rate"
    ) == [
        (ANNA, 4, 2, 0.5, 2, 1.0),  # anna and cleo
        ("ad_view > site_visit > site_visit > product_view", 4, 1, 0.25, 0, 0.0),
        ("site_visit > ad_view > site_visit", 3, 1, 0.25, 0, 0.0),
    ]
    assert (variants.extra["journeys"], variants.extra["variants"]) == (4, 3)
    dfg = P.run(ws, P.PathsSpec(dfg=True))
    # ad_view -> site_visit: anna 86400, bob 3600, cleo 7200, dave 86400: median 46800, p95 86400
    # product_view -> purchase: anna 7200, cleo 3600: median 5400, p95 = 3600 + .95 * 3600 = 7020
    assert helpers.rows(
        dfg.table, "source", "target", "count", "persons", "median_seconds", "p95_seconds"
    ) == [
        ("ad_view", "site_visit", 4, 4, 46800.0, 86400.0),
        ("(start)", "ad_view", 3, 3, None, None),
        ("site_visit", "product_view", 3, 3, 86400.0, 86400.0),
        ("product_view", "purchase", 2, 2, 5400.0, 7020.0),
        ("purchase", "(end)", 2, 2, None, None),
        ("(start)", "site_visit", 1, 1, None, None),
        ("product_view", "(end)", 1, 1, None, None),
        ("site_visit", "(end)", 1, 1, None, None),
        ("site_visit", "ad_view", 1, 1, 86400.0, 86400.0),
        ("site_visit", "site_visit", 1, 1, 3600.0, 3600.0),
    ]


def test_variants_collapsed_and_by_phase(duck, helpers, tables):
    ws = helpers.tables(duck, tables)
    collapsed = P.run(ws, P.PathsSpec(collapse_repeats=True))
    assert ("ad_view > site_visit > product_view", 3, 1) in helpers.rows(
        collapsed.table, "variant", "length", "journeys"
    )
    # at the phase level runs collapse by default: three journeys go awareness > consideration > purchase
    phases = P.run(ws, P.PathsSpec(level="phase"))
    assert helpers.rows(phases.table, "variant", "journeys", "converted", "conversion_rate") == [
        ("awareness > consideration > purchase", 3, 2, 0.666667),
        ("consideration > awareness > consideration", 1, 0, 0.0),
    ]
    channels = P.run(ws, P.PathsSpec(level="channel", top=1))
    assert helpers.rows(channels.table, "variant", "journeys") == [
        ("display > website > website > website", 3)
    ]
    assert channels.extra["variants"] == 2


def test_sankey_from_and_to(duck, helpers, tables):
    ws = helpers.tables(duck, tables)
    # the 3 steps after each journey's first site_visit; every journey ends before step 3: (drop-off)
    sankey = P.run(ws, P.PathsSpec(sankey_from="site_visit", steps=3))
    assert helpers.rows(sankey.links, "source", "target", "step", "journeys") == [
        ("0:site_visit", "1:product_view", 0, 2),
        ("0:site_visit", "1:ad_view", 0, 1),
        ("0:site_visit", "1:site_visit", 0, 1),
        ("1:product_view", "2:purchase", 1, 2),
        ("1:ad_view", "2:site_visit", 1, 1),
        ("1:site_visit", "2:product_view", 1, 1),
        ("2:purchase", "3:(drop-off)", 2, 2),
        ("2:product_view", "3:(drop-off)", 2, 1),
        ("2:site_visit", "3:(drop-off)", 2, 1),
    ]
    nodes = {r["node"]: r["journeys"] for r in sankey.nodes.to_pylist()}
    assert nodes == {
        "0:site_visit": 4,
        "1:product_view": 2,
        "1:ad_view": 1,
        "1:site_visit": 1,
        "2:purchase": 2,
        "2:product_view": 1,
        "2:site_visit": 1,
        "3:(drop-off)": 4,
    }
    # the 4 steps leading to a purchase: anna's and cleo's paths are 3 long, so they come from (start)
    to = P.run(ws, P.PathsSpec(sankey_to="purchase", steps=4))
    assert helpers.rows(to.links, "source", "target", "step", "journeys") == [
        ("-4:(start)", "-3:ad_view", -4, 2),
        ("-3:ad_view", "-2:site_visit", -3, 2),
        ("-2:site_visit", "-1:product_view", -2, 2),
        ("-1:product_view", "0:purchase", -1, 2),
    ]
    assert {r["node"]: r["journeys"] for r in to.nodes.to_pylist()}["0:purchase"] == 2


def test_phase_transitions_with_moves_back(duck, helpers, tables):
    ws = helpers.tables(duck, tables)
    result = P.run(ws, P.PathsSpec(level="phase", transitions=True))
    # awareness -> consideration: all four journeys; out of consideration: 3 to purchase, dave's 1 back
    assert helpers.rows(result.table, "from", "to", "count", "journeys", "share", "direction") == [
        ("awareness", "consideration", 4, 4, 1.0, "forward"),
        ("consideration", "purchase", 3, 3, 0.75, "forward"),
        ("consideration", "awareness", 1, 1, 0.25, "back"),
    ]
    # the same at the touchpoint level has no direction
    tp = P.run(ws, P.PathsSpec(transitions=True))
    assert {r["direction"] for r in tp.table.to_pylist()} == {None}
    # another phase model, classified on the fly: three-phase names the purchase phase "decision"
    other = P.run(ws, P.PathsSpec(level="phase", model="three-phase", transitions=True))
    assert ("consideration", "decision", 3) in helpers.rows(other.table, "from", "to", "count")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"dfg": True, "transitions": True},
            "paths_one_view: ask for one of dfg, transitions, sankey_from, sankey_to; got dfg, transitions",
        ),
        ({"level": "content"}, "level: Input should be 'touchpoint', 'channel' or 'phase'"),
        ({"model": "three-phase"}, "model applies at the phase level only"),
        ({"steps": 0}, "steps: Input should be greater than or equal to 1"),
        ({"top": 5, "limit": 3}, "paths: unknown field 'limit'"),
    ],
)
def test_paths_spec_validation(data, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(P.PathsSpec, data)


def test_sql_compiles_for_pyspark(duck, helpers, tables):
    pytest.importorskip("pyspark", reason="the [spark] extra is not installed")
    _ = ibis.pyspark  # loads the backend, which registers its compiler options
    ws = helpers.tables(duck, tables)
    for spec in (
        P.PathsSpec(level="phase", model="three-phase"),
        P.PathsSpec(level="phase", transitions=True),
        P.PathsSpec(sankey_from="site_visit", steps=2),
        P.PathsSpec(sankey_to="purchase", steps=2, collapse_repeats=True),
    ):
        assert "SELECT" in ibis.to_sql(P.expr(ws, spec), dialect="pyspark")


# -- a brute-force reference for the directly-follows graph ------------------------------------------------


@st.composite
def journeys(draw):
    out = {}
    for j in range(draw(st.integers(1, 8))):
        person = f"p{draw(st.integers(0, 3))}"
        rows = [
            {
                "event_id": f"e{j}-{draw(st.integers(0, 99)):02d}-{i}",
                "ts": draw(st.integers(0, 12)) * 600,
                "touchpoint": draw(st.sampled_from(["a", "b", "c"])),
            }
            for i in range(draw(st.integers(1, 6)))
        ]
        out[f"j{j}"] = (person, rows)
    return out, draw(st.booleans())


def _reference_dfg(data: dict, collapse: bool) -> set[tuple]:
    edges: dict[tuple[str, str], list] = {}
    for person, rows in data.values():
        values = [(r["touchpoint"], r["ts"]) for r in sorted(rows, key=lambda r: (r["ts"], r["event_id"]))]
        if collapse:
            values = [v for i, v in enumerate(values) if i == 0 or v[0] != values[i - 1][0]]
        seq = [(P.START, None), *values, (P.END, None)]
        for (s, ts1), (t, ts2) in zip(seq, seq[1:], strict=False):
            secs = None if ts1 is None or ts2 is None else ts2 - ts1
            edges.setdefault((s, t), []).append((person, secs))
    out = set()
    for (s, t), items in edges.items():
        secs = [x for _, x in items if x is not None]
        q = (
            (None, None)
            if not secs
            else (round(float(np.median(secs)), 6), round(float(np.quantile(secs, 0.95)), 6))
        )
        out.add((s, t, len(items), len({p for p, _ in items}), *q))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=journeys())
def test_dfg_matches_brute_force(case, helpers, paths_con):
    data, collapse = case
    base = helpers.when("2024-01-01T00:00")
    rows = [
        {
            "event_id": r["event_id"],
            "person_id": person,
            "timestamp": base + timedelta(seconds=r["ts"]),
            "channel": "web",
            "touchpoint": r["touchpoint"],
            "journey_id": jid,
            "journey_type": "purchase",
            "is_conversion": False,
        }
        for jid, (person, rs) in data.items()
        for r in rs
    ]
    ws = helpers.tables(
        paths_con, {"journey_touchpoints": pa.Table.from_pylist(rows, schema=helpers.JT_SCHEMA)}
    )
    got = P.dfg_expr(ws, P.PathsSpec(dfg=True, journey_types=None, collapse_repeats=collapse)).to_pyarrow()
    assert set(
        helpers.rows(got, "source", "target", "count", "persons", "median_seconds", "p95_seconds")
    ) == _reference_dfg(data, collapse)


@pytest.fixture(scope="module")
def paths_con():
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


# -- the command line ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_workspace(tmp_path_factory, tables):
    from journeylens.store import Workspace

    path = tmp_path_factory.mktemp("cli") / "ws"
    ws = Workspace(path)
    for name, table in tables.items():
        ws.con.create_table(name, table, overwrite=True)
    ws.close()
    return path


def test_cli_paths(cli_workspace):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    w = ["-w", str(cli_workspace)]
    out = runner.invoke(app, ["paths", *w, "--format", "csv", "--top", "1"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [
        "variant,length,journeys,share,converted,conversion_rate",
        f"{ANNA},4,2,0.5,2,1.0",
    ]
    out = runner.invoke(app, ["paths", *w, "--dfg", "--level", "phase", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert '{"source":"awareness","target":"consideration","count":4' in out.output
    out = runner.invoke(
        app, ["paths", *w, "--sankey-from", "site_visit", "--steps", "1", "--format", "csv", "--nodes"]
    )
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[:2] == ["node,step,value,journeys", "0:site_visit,0,site_visit,4"]
    out = runner.invoke(app, ["paths", *w, "--sankey-to", "purchase", "--steps", "2"])
    assert out.exit_code == 0, out.output
    assert "Sankey links to purchase" in out.output and "Sankey nodes" in out.output
    out = runner.invoke(app, ["paths", *w, "--level", "phase", "--transitions", "--no-collapse"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["paths", *w, "--dfg", "--transitions"])
    assert out.exit_code == 2
    assert "paths_one_view" in out.output
