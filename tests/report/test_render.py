"""The journey map's HTML and the report's source, without a browser: lanes, escaping, self-containment."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from journeylens.analyses.journeymap import JourneyMapSpec, compare, run
from journeylens.report.export import ExportError, export_map
from journeylens.report.journeymap import page, render, render_comparison
from journeylens.report.report import script_json

VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "col", "source"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text: list[str] = []

    def all(self) -> list[Node]:
        out = [self]
        for c in self.children:
            out += c.all()
        return out

    def find(self, **attrs: str) -> list[Node]:
        return [n for n in self.all() if all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def content(self) -> str:
        return "".join(self.text) + "".join(c.content() for c in self.children)


class Tree(HTMLParser):
    """A small DOM: enough to query elements by their data-* attributes."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag: str) -> None:
        node = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data: str) -> None:
        self.cur.text.append(data)


@pytest.fixture(scope="module")
def low(small_ws):
    return run(small_ws, JourneyMapSpec(persona="low_involvement", min_n=1))


@pytest.fixture(scope="module")
def low_dom(low) -> Node:
    return Tree(render(low)).root


def cell(dom: Node, lane: str, phase: str) -> Node:
    found = [n for n in dom.find(data_lane=lane) if n.attrs.get("data-phase") == phase]
    assert len(found) == 1, (lane, phase, len(found))
    return found[0]


def test_one_column_per_phase_in_order(low_dom):
    headers = [n.attrs["data-phase"] for n in low_dom.all() if "jm-phase" in (n.attrs.get("class") or "")]
    assert headers == ["awareness", "consideration", "purchase", "service", "loyalty"]


def test_kpi_lane(low_dom, low):
    for r in low.table.to_pylist():
        c = cell(low_dom, "kpis", r["phase"])
        values = {n.attrs["data-kpi"]: n.attrs["data-value"] for n in c.all() if "data-kpi" in n.attrs}
        assert values["reach"] == str(r["reach"])
        for key in ("conversion_to_next", "drop_off_rate", "median_days_in_phase"):
            assert values[key] == ("" if r[key] is None else repr(r[key]))


def test_touchpoint_and_channel_lanes(low_dom):
    def entries(lane: str, phase: str) -> list[tuple[str, str]]:
        return [
            (n.attrs["data-value"], n.attrs["data-touchpoints"])
            for n in cell(low_dom, lane, phase).find()
            if n.tag == "li"
        ]

    assert entries("touchpoints", "awareness") == [("ad_view", "2"), ("ad_click", "1")]
    assert entries("channels", "awareness") == [("display", "2"), ("paid_search", "1")]
    assert entries("touchpoints", "service") == [("delivery", "1"), ("survey_response", "1")]
    assert entries("channels", "loyalty") == [("email", "1")]


def test_content_lane_chips(low_dom):
    def chips(phase: str) -> dict[str, str]:
        return {
            n.attrs["data-content"]: n.attrs["data-status"]
            for n in cell(low_dom, "content", phase).all()
            if "data-content" in n.attrs
        }

    assert chips("awareness") == {"ad": "intended", "blog_article": "unused", "social_post": "unused"}
    assert chips("purchase") == {
        "ad": "not_intended",
        "product_sheet": "intended",
        "video": "unused",
        "success_story": "unused",
        "demo": "unused",
        "quote": "unused",
    }


def test_question_lane(low_dom):
    items = [n.content() for n in cell(low_dom, "questions", "awareness").all() if n.tag == "li"]
    assert items == ["What is the problem, and how bad is it?", "Who could help me with it?"]


def test_emotion_lane(low_dom):
    marks = {
        n.attrs["data-phase"]: (n.attrs["data-value"], n.attrs["data-n"])
        for n in low_dom.all()
        if n.tag == "g" and "data-series" in n.attrs
    }
    assert marks == {
        "awareness": ("", "0"),
        "consideration": ("", "0"),
        "purchase": ("0.9", "1"),
        "service": ("0.25", "1"),
        "loyalty": ("", "0"),
    }


def test_pain_point_and_opportunity_lanes(low_dom):
    pains = [
        n.attrs["data-kind"] for n in cell(low_dom, "pain_points", "service").all() if "data-kind" in n.attrs
    ]
    assert pains == ["low_satisfaction"]
    opps = [
        n.attrs["data-kind"]
        for n in cell(low_dom, "opportunities", "purchase").all()
        if "data-kind" in n.attrs
    ]
    assert opps == ["intended_unused", "misplaced_content"]
    texts = [n.content() for n in cell(low_dom, "opportunities", "purchase").all() if "data-kind" in n.attrs]
    assert "ad is 50% of the content in Purchase; the model intends it for Awareness" in texts[1]


def test_comparison_columns_and_both_curves(small_ws):
    c = compare(
        small_ws,
        JourneyMapSpec(persona="low_involvement", min_n=1),
        JourneyMapSpec(persona="high_involvement", min_n=1),
    )
    dom = Tree(render_comparison(c)).root
    reach = [n.attrs for n in dom.all() if n.attrs.get("data-kpi") == "reach_share"]
    assert [(a["data-value-a"], a["data-value-b"]) for a in reach][:2] == [
        ("1.0", "1.0"),
        (repr(2 / 3), "1.0"),
    ]
    series = {n.attrs["data-series"] for n in dom.all() if n.tag == "g" and "data-series" in n.attrs}
    assert series == {"low_involvement", "high_involvement"}
    chip = next(
        n for n in dom.all() if n.attrs.get("data-content") == "comparison"
    )  # cara read one, the others not
    assert (chip.attrs["data-used-a"], chip.attrs["data-used-b"]) == ("false", "true")


def test_the_map_page_is_self_contained(low):
    text = page(render(low), "map")
    assert "<script" not in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    assert "default-src 'none'" in text


# -- escaping -------------------------------------------------------------------------------------------


def test_script_names_are_text_in_the_map(xss_ws, fixture_data):
    xss = fixture_data.xss
    r = run(xss_ws, JourneyMapSpec(persona=xss, min_n=1))
    text = render(r)
    assert xss not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    dom = Tree(text).root
    # the parser decodes the text: the names themselves, shown as text, in the touchpoint, channel and content lanes
    assert [n.attrs["data-value"] for n in cell(dom, "touchpoints", "awareness").find() if n.tag == "li"] == [
        xss
    ]
    assert [n.attrs["data-value"] for n in cell(dom, "channels", "awareness").find() if n.tag == "li"] == [
        xss
    ]
    assert xss in [n.attrs.get("data-content") for n in cell(dom, "content", "consideration").all()]
    assert xss in dom.find(data_map="single")[0].content()  # the persona in the title
    assert not [n for n in dom.all() if n.tag == "script"]


def test_script_names_are_text_in_the_report_source(xss_report, fixture_data):
    text = xss_report.html
    assert fixture_data.xss not in text
    # every JSON block holds its data with < written as \u003c, so no "</" can end it early
    blocks = re.findall(
        r'<script type="application/json" data-figure="[^"]+">(.*?)</script>', text, flags=re.S
    )
    assert blocks and all("</" not in b and "<" not in b for b in blocks)
    # the channel's name reaches Plotly HTML-escaped (Plotly reads a few tags in labels; escaped, it shows as typed)
    decoded = [json.dumps(json.loads(b), ensure_ascii=False) for b in blocks]
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in d for d in decoded)
    assert not any(fixture_data.xss in d for d in decoded)


def test_script_json():
    value = {"a": "</script><script>x</script>", "b": "line\u2028sep", "c": "&amp;"}
    text = script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == value


# -- the report's source ----------------------------------------------------------------------------------


def test_report_embeds_plotly_once_and_loads_nothing(xss_report):
    text = xss_report.html
    from plotly.offline import get_plotlyjs

    head = get_plotlyjs()[:60]
    assert text.count(head) == 1
    assert not re.search(r"<(script|img|iframe)[^>]+src=", text)
    assert "<link" not in text and "@import" not in text and "@font-face" not in text
    assert "connect-src 'none'" in text


def test_report_states_period_filters_and_how(xss_report):
    dom = Tree(xss_report.html).root
    facts = {n.attrs["data-fact"]: n.content() for n in dom.all() if "data-fact" in n.attrs}
    assert facts["data period"] == "01 Jan 2024 – 10 Jan 2024"
    assert facts["filters"] == "all journeys"
    assert facts["phase model"] == "five-phase"
    hows = [n.content() for n in dom.all() if n.attrs.get("class") == "how"]
    assert len(hows) == 1 + len(xss_report.report.sections) and all(hows)


def test_an_analysis_that_cannot_run_shows_why(xss_report):
    personas = xss_report.report.section("personas")
    assert personas.error is not None and "too few" in personas.error
    assert 'data-error="personas">Not available: ' in xss_report.html


# -- export and CLI without Chromium --------------------------------------------------------------------


def test_export_says_how_to_install_chromium(low, tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNEYLENS_CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(ExportError, match=r"install it with: apt-get install -y chromium$"):
        export_map(low, tmp_path / "map.png")
    with pytest.raises(ExportError, match="unknown file type .svg"):
        export_map(low, tmp_path / "map.svg")
    assert export_map(low, tmp_path / "map.html").read_text(encoding="utf-8").startswith("<!doctype html>")


@pytest.fixture(scope="module")
def cli(tmp_path_factory, fixture_data) -> Any:
    """A Typer app with the report commands, and a closed workspace (the CLI opens it read-only)."""
    from journeylens.cli_report import register

    app = typer.Typer()
    register(app)
    path = tmp_path_factory.mktemp("cli") / "ws"
    fixture_data.make_workspace(path, fixture_data.people, fixture_data.personas).close()
    return app, path


def test_cli_map_without_chromium(cli, tmp_path, monkeypatch):
    app, ws = cli
    monkeypatch.setenv("JOURNEYLENS_CHROMIUM", str(tmp_path / "no-chromium"))
    res = CliRunner().invoke(
        app, ["map", "-w", str(ws), "--persona", "low_involvement", "--out", str(tmp_path / "m.png")]
    )
    assert res.exit_code == 2
    assert "install it with: apt-get install -y chromium" in res.output
    assert not (tmp_path / "m.png").exists()


def test_cli_map_html_and_compare(cli, tmp_path):
    app, ws = cli
    out = tmp_path / "m.html"
    res = CliRunner().invoke(
        app,
        [
            "map",
            "-w",
            str(ws),
            "--persona",
            "low_involvement",
            "--compare",
            "high_involvement",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert 'data-map="comparison"' in out.read_text(encoding="utf-8")


def test_cli_report(cli, tmp_path):
    app, ws = cli
    out = tmp_path / "sub" / "r.html"
    res = CliRunner().invoke(
        app,
        ["report", "-w", str(ws), "--out", str(out), "--persona", "low_involvement", "--start", "2024-01-01"],
    )
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert "personas: low_involvement" in text  # the filters are stated
    assert f"wrote {out}" in res.output


def test_cli_report_bad_filter(cli, tmp_path):
    app, ws = cli
    res = CliRunner().invoke(
        app, ["report", "-w", str(ws), "--out", str(tmp_path / "r.html"), "--start", "yesterday"]
    )
    assert res.exit_code == 2
    assert "filters: start" in res.output


def test_write_report_api(small_ws, tmp_path):
    from journeylens.analyses.base import Filters
    from journeylens.report import write_report

    out = write_report(small_ws, tmp_path / "r.html", filters=Filters(personas=["high_involvement"]))
    assert isinstance(out, Path) and out.exists()
    assert "personas: high_involvement" in out.read_text(encoding="utf-8")


def test_a_section_that_runs_out_of_memory_says_so_and_the_others_are_complete(small_ws, monkeypatch):
    import duckdb

    from journeylens.attribution import workspace as wa
    from journeylens.report.report import build_report, render_report

    def too_big(*args, **kwargs):
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 16.0 MiB")

    usual = {s.id: s.error for s in build_report(small_ws).sections}
    assert usual["attribution"] is None
    monkeypatch.setattr(wa, "paths", too_big)
    report = build_report(small_ws)
    assert "not enough memory" in report.section("attribution").error
    # every other section as without the failure (its own message, if it had one, included)
    assert {s.id: s.error for s in report.sections if s.id != "attribution"} == {
        k: v for k, v in usual.items() if k != "attribution"
    }
    assert "not enough memory for this section" in render_report(report)
