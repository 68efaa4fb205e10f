"""Content: exposure per phase, moving on (exposed vs comparable unexposed journeys), assists, mismatches.

A hand-worked fixture on DuckDB and Spark (five-phase model: awareness 0, consideration 1, purchase 2,
service 3, loyalty 4), and the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from journeylens.analyses import stats
from journeylens.analyses.base import parse_spec
from journeylens.analyses.cli_insights import register
from journeylens.analyses.content import ContentSpec, run
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


def content(kind, item=None):
    return {"content_type": kind, "content_id": item}


# (touchpoint, when, channel, {more columns}); one purchase journey each
PEOPLE = {
    # ad (awareness) -> whitepaper (consideration) -> purchase: exposed, moved on, converted (assisted)
    "p1": [
        ("ad_view", "2024-01-01T10:00", "display", content("ad")),
        ("whitepaper_download", "2024-01-02T10:00", "website", content("whitepaper", "wp-1")),
        ("purchase", "2024-01-03T10:00"),
    ],
    # ad -> whitepaper -> site visit: exposed, stays in consideration
    "p2": [
        ("ad_view", "2024-01-01T10:00", "display", content("ad")),
        ("whitepaper_download", "2024-01-02T10:00", "website", content("whitepaper", "wp-2")),
        ("site_visit", "2024-01-03T10:00"),
    ],
    # ad -> site visit -> purchase: reached consideration unexposed, moved on
    "p3": [
        ("ad_view", "2024-01-01T10:00", "display", content("ad")),
        ("site_visit", "2024-01-02T10:00"),
        ("purchase", "2024-01-03T10:00"),
    ],
    # consideration only, with a podcast that no phase intends
    "p4": [
        ("site_visit", "2024-01-01T10:00"),
        ("site_visit", "2024-01-02T10:00", "website", content("podcast")),
    ],
    # awareness only
    "p5": [("ad_view", "2024-01-01T10:00", "display", content("ad"))],
    # newsletter content on a sign-up: consideration, though the model intends newsletters for loyalty
    "p6": [
        ("newsletter_signup", "2024-01-01T10:00", "website", content("newsletter")),
        ("purchase", "2024-01-02T10:00"),
    ],
    # a login (neutral) with content and nothing before it: no phase
    "p7": [("login", "2024-01-01T10:00", "app", content("podcast"))],
}


@pytest.fixture(scope="module")
def tables(helpers):
    return helpers.built_tables(PEOPLE)


@pytest.fixture
def ws(tables, tmp_path):
    con = ibis.duckdb.connect()
    yield load(con, tables, tmp_path)
    con.disconnect()


def test_hand_worked(backend, tables, tmp_path):
    ws = load(backend, tables, tmp_path, only=("journeys", "journey_phases", "journey_touchpoints"))
    result = run(ws, ContentSpec(model="five-phase", min_n=1))
    rows = {(r["content_type"], r["phase"]): r for r in result.table.to_pylist()}
    assert list(rows) == [
        ("ad", "awareness"),
        ("newsletter", "consideration"),
        ("podcast", "consideration"),
        ("whitepaper", "consideration"),
    ]

    # ad in awareness: p1, p2, p3, p5 reached awareness and all saw the ad; 3 moved on (not p5); nobody is
    # unexposed, so there is no lift. Converted p1 and p3 saw it before buying: 2 assists of 2 conversions.
    ad = rows[("ad", "awareness")]
    assert (ad["reached"], ad["exposed"], ad["unexposed"], ad["moved_on_exposed"]) == (4, 4, 0, 0.75)
    assert ad["moved_on_unexposed"] is None and ad["lift"] is None  # undefined figures are NULL
    assert (ad["assisted_conversions"], ad["conversions"], ad["assist_share"]) == (2, 2, 1.0)

    # whitepaper in consideration: reached by p1, p2, p3, p4, p6. Exposed p1, p2: 1 of 2 moved on.
    # Unexposed p3, p4, p6: p3 and p6 moved on, 2 of 3. Lift 0.5 / (2/3) = 0.75. Assisted: p1, of the 3
    # conversions (p1, p3, p6) among the journeys that reached consideration.
    wp = rows[("whitepaper", "consideration")]
    assert (wp["reached"], wp["exposed"], wp["unexposed"], wp["touchpoints"]) == (5, 2, 3, 2)
    assert wp["exposure_share"] == pytest.approx(2 / 5)
    assert (wp["moved_on_exposed"], wp["moved_on_unexposed"], wp["lift"]) == (
        0.5,
        pytest.approx(2 / 3),
        pytest.approx(0.75),
    )
    ratio, low, high = stats.ratio_interval(1, 2, 2, 3)
    assert (wp["lift_low"], wp["lift_high"]) == (pytest.approx(float(low)), pytest.approx(float(high)))
    low, high = stats.wilson(1, 2)
    assert (wp["moved_on_exposed_low"], wp["moved_on_exposed_high"]) == (
        pytest.approx(float(low)),
        pytest.approx(float(high)),
    )
    assert (wp["assisted_conversions"], wp["conversions"], wp["intended"]) == (1, 3, True)

    # newsletter (p6 moved on) vs the other four (p1, p3 moved on): 1 / (2/4) = 2
    nl = rows[("newsletter", "consideration")]
    assert (nl["lift"], nl["assisted_conversions"], nl["intended"]) == (2.0, 1, False)
    # podcast (p4 stayed) vs the other four (p1, p3, p6 moved on): lift 0
    pc = rows[("podcast", "consideration")]
    assert (pc["moved_on_exposed"], pc["moved_on_unexposed"], pc["lift"], pc["intended"]) == (
        0.0,
        0.75,
        0.0,
        False,
    )

    mismatch = [
        (r["content_type"], r["phase"], r["touchpoints"], r["status"], r["intended_phases"])
        for r in result.mismatch.to_pylist()
    ]
    assert mismatch == [
        ("newsletter", "consideration", 1, "other_phase", "loyalty"),
        ("podcast", "(unassigned)", 1, "unassigned", ""),
        ("podcast", "consideration", 1, "not_intended", ""),
    ]


def test_by_content_id_and_the_built_model(ws):
    result = run(ws, ContentSpec(by="content_id", min_n=1))  # the phase model of the last build
    assert result.phase_model == "five-phase"
    ids = [
        (r["content_type"], r["content_id"], r["exposed"], r["moved_on_exposed"])
        for r in result.table.to_pylist()
    ]
    assert ids == [("whitepaper", "wp-1", 1, 1.0), ("whitepaper", "wp-2", 1, 0.0)]


def test_thin_filters_and_model_mismatch(ws):
    result = run(ws, ContentSpec())
    assert all(result.table.column("too_thin").to_pylist())  # a handful of journeys < 30
    only_p1 = run(ws, ContentSpec(min_n=1, filters={"channels": ["display"], "start": "2024-01-01"}))
    assert {r["content_type"] for r in only_p1.table.to_pylist()} == {"ad", "whitepaper"}
    with pytest.raises(
        SpecError, match="phase model 'three-phase' has the phases orientation, consideration, decision"
    ):
        run(ws, ContentSpec(model="three-phase"))


def test_spec_is_strict():
    with pytest.raises(SpecError, match="content: by: Input should be 'content_type' or 'content_id'"):
        parse_spec(ContentSpec, {"by": "channel"})


def test_cli(tmp_path, tables):
    path = tmp_path / "ws"
    ws = Workspace(path)
    load(ws.con, tables, tmp_path)
    ws.close()
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    out = runner.invoke(app, ["content", "-w", str(path), "--format", "json", "--min-n", "1"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["content_type"] for r in rows] == ["ad", "newsletter", "podcast", "whitepaper"]
    assert rows[3]["lift"] == pytest.approx(0.75)

    out = runner.invoke(app, ["content", "-w", str(path), "--view", "mismatch", "--format", "csv"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == "content_type,phase,touchpoints,journeys,status,intended_phases"
    assert out.output.splitlines()[1] == "newsletter,consideration,1,1,other_phase,loyalty"

    out = runner.invoke(app, ["content", "-w", str(path), "--model", "three-phase"])
    assert out.exit_code == 2 and "rebuild with this model or leave model out" in out.output
