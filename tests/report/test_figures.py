"""The Plotly figures: built from the result tables only, the numbers in the traces are the result's.

Most figures are drawn from real results on the literal workspace; the personas and attribution figures
from hand-made results (the literal workspace is too small to cluster)."""

from __future__ import annotations

import html
import json
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pytest

from journeylens.analyses.journeymap import JourneyMapSpec
from journeylens.analyses.journeymap import run as run_map
from journeylens.report import figures

go = pytest.importorskip("plotly.graph_objects")


def test_phase_funnel_plots_the_reached_column(small_ws):
    from journeylens.analyses.funnel import PhaseFunnelSpec, run

    result = run(small_ws, PhaseFunnelSpec())
    fig = figures.phase_funnel(result)
    assert isinstance(fig, go.Figure)
    assert list(fig.data[0].x) == result.table["reached"].to_pylist()
    assert list(fig.data[0].y) == [
        html.escape(v) for v in result.table["label"].to_pylist()
    ]  # Service &amp; use


def test_touchpoints_figure_marks_the_rule_of_thumb(small_ws):
    from journeylens.analyses.touchpoints import TouchpointsSpec, run

    result = run(small_ws, TouchpointsSpec())
    fig = figures.touchpoints_to_purchase(result)
    bars, cumulative = fig.data[0], fig.data[1]
    assert list(bars.x) == result.table["contact_number"].to_pylist()
    assert list(bars.y) == pytest.approx(result.table["share"].to_pylist())
    assert list(cumulative.y) == pytest.approx(result.table["cumulative_share"].to_pylist())
    names = [tr.name for tr in fig.data]
    assert "rule of thumb: 2% at the 1st, 10% at the 4th" in names
    assert "rule of thumb: 5–8 contacts on average" in names
    band = fig.layout.shapes[0]
    assert (band.x0, band.x1) == (4.5, 8.5)


def test_sankey_has_a_red_drop_off(small_ws):
    from journeylens.analyses.paths import PathsSpec, run

    result = run(small_ws, PathsSpec(level="phase", sankey_from="awareness", steps=2))
    fig = figures.paths_sankey(result, order=["awareness", "consideration", "purchase", "service", "loyalty"])
    sankey = fig.data[0]
    labels = list(sankey.node.label)
    assert sorted(labels) == sorted(result.nodes["value"].to_pylist())
    assert sum(sankey.link.value) == sum(result.table["journeys"].to_pylist())
    drop = [c for lab, c in zip(labels, sankey.node.color, strict=True) if lab == "(drop-off)"]
    assert drop and all(c == figures.BAD for c in drop)


def test_process_map_draws_the_most_frequent_moves(small_ws):
    from journeylens.analyses.paths import PathsSpec, run

    result = run(small_ws, PathsSpec(level="channel", dfg=True, collapse_repeats=True))
    fig = figures.process_map(result, max_edges=5)
    moves = [r for r in result.table.to_pylist() if r["source"] != r["target"]]
    assert len(fig.layout.shapes) == min(5, len(moves))
    nodes = fig.data[1]
    assert "(start)" in " ".join(nodes.text) and "(end)" in " ".join(nodes.text)


def test_emotion_curve_keeps_every_phase_in_order(small_ws):
    from journeylens.analyses.satisfaction import SatisfactionSpec, run

    result = run(small_ws, SatisfactionSpec(by="phase", min_n=1))
    labels = {
        "awareness": "Awareness",
        "consideration": "Consideration",
        "purchase": "Purchase",
        "service": "Service & use",
        "loyalty": "Loyalty",
    }
    fig = figures.emotion_curve(result, labels=labels)
    line = fig.data[-1]
    assert list(line.x) == [html.escape(v) for v in labels.values()]
    curve = {r["phase"]: r["normalised"] for r in result.emotion_curve.to_pylist()}
    expected = [curve.get(p) for p in labels]
    assert [None if v is None else pytest.approx(v) for v in expected] == list(line.y)


def test_cohort_heatmap_cells_are_the_retention(small_ws):
    from journeylens.analyses.loyalty import LoyaltySpec, run

    result = run(small_ws, LoyaltySpec())
    fig = figures.cohort_retention(result)
    heat = fig.data[0]
    cells = [v for row in heat.z for v in row if v is not None]
    assert sorted(cells) == sorted(v for v in result.cohorts["retention"].to_pylist() if v is not None)


def test_content_heatmap_frames_the_intended_cells(small_ws):
    from journeylens.analyses.content import ContentSpec, run

    result = run(small_ws, ContentSpec(min_n=1))
    fig = figures.content_heatmap(result)
    intended = sum(1 for r in result.table.to_pylist() if r["intended"])
    assert len(fig.layout.shapes) == intended
    phases = sorted({(r["phase_index"], r["phase"]) for r in result.table.to_pylist()})
    assert list(fig.data[0].x) == [p for _, p in phases]


def test_attribution_dots_and_intervals_from_a_hand_made_frame():
    frame = pd.DataFrame(
        {
            "model": ["last_touch", "last_touch", "markov", "markov"],
            "channel": ["email", "social", "email", "social"],
            "attributed_conversions": [10.0, 4.0, 8.0, 6.0],
            "attributed_value": [100.0, 40.0, 80.0, 60.0],
            "ci_low": [8.0, 3.0, 6.5, 5.0],
            "ci_high": [12.0, 5.5, 9.0, 7.5],
        }
    )
    fig = figures.attribution(frame)
    assert [tr.name for tr in fig.data] == ["last_touch", "markov"]
    markov = fig.data[1]
    assert list(markov.x) == [
        6.0,
        8.0,
    ]  # channels from the least to the most credited on average: social, email
    assert list(markov.error_x.array) == pytest.approx([1.5, 1.0])
    assert list(markov.error_x.arrayminus) == pytest.approx([1.0, 1.5])
    assert list(fig.layout.yaxis.ticktext) == ["social", "email"]


def test_persona_clusters_from_a_hand_made_result():
    result = SimpleNamespace(
        table=pa.table({"cluster": [1, 2], "persons": [30, 10], "share": [0.75, 0.25], "top_persona": ["a", "b"],
                        "top_persona_share": [0.9, 0.6], "description": ["touchpoints +1.0 sd", "converted -1.2 sd"]}),
        crosstab=pa.table({"cluster": [1, 1, 2, 2], "persona": ["a", "b", "a", "b"], "persons": [27, 3, 4, 6],
                           "share_of_cluster": [0.9, 0.1, 0.4, 0.6], "share_of_persona": [0.87, 0.33, 0.13, 0.67]}),
        extra={"k": 2, "adjusted_rand": 0.31},
    )  # fmt: skip
    fig = figures.persona_clusters(result)
    a, b = fig.data[0], fig.data[1]
    assert (a.name, list(a.y)) == ("a", [27, 4])
    assert (b.name, list(b.y)) == ("b", [3, 6])
    assert fig.layout.barmode == "stack"


def test_journey_map_emotion(small_ws):
    result = run_map(small_ws, JourneyMapSpec(persona="low_involvement", min_n=1))
    fig = figures.journey_map_emotion(result)
    assert list(fig.data[-1].y) == [None, None, pytest.approx(0.9), pytest.approx(0.25), None]


def test_names_from_data_are_escaped_for_plotly():
    frame = pd.DataFrame(
        {
            "model": ["m"],
            "channel": ["<b>bold</b>"],
            "attributed_conversions": [1.0],
            "attributed_value": [1.0],
        }
    )
    fig = figures.attribution(frame)
    assert list(fig.layout.yaxis.ticktext) == ["&lt;b&gt;bold&lt;/b&gt;"]
    assert "<b>bold</b>" not in json.dumps(fig.to_plotly_json(), default=str)


def test_house_style():
    fig = figures.style(go.Figure(), "A title", subtitle="how")
    assert "Liberation Sans" in fig.layout.font.family
    assert fig.layout.paper_bgcolor == figures.PAPER
