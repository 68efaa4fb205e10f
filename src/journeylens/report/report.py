"""The HTML report: the journey map and every analysis, in one self-contained file.

``build_report`` runs the analyses (their ``run`` functions: the report computes nothing itself) and keeps
their result objects; ``render_report`` turns them into one HTML document; ``write_report`` does both and
writes the file. The document

- embeds Plotly's JavaScript once (from the installed ``plotly`` package: no CDN) and each figure as JSON in a
  ``<script type="application/json">`` block, with ``<`` written as ``\\u003c`` so that no data can close it;
- loads nothing from the network (no fonts, images or scripts from elsewhere; a Content-Security-Policy
  says so to the browser);
- states the workspace, the data period, the filters and the phase model, and under each figure a
  one-line explanation of how it is computed and the figure's numbers as a table (``data-*`` attributes
  hold the raw values).

An analysis that cannot run on the data (no satisfaction answers, too few persons to cluster) shows its
error message in its section instead of a figure; the rest of the report is unaffected.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journeylens.analyses.base import Filters
from journeylens.errors import JourneyLensError
from journeylens.report.theme import CANVAS, FONT, INK, LINE, MUTED, PAPER, esc, is_missing, raw

if TYPE_CHECKING:
    from journeylens.analyses.journeymap import JourneyMapComparison, JourneyMapResult
    from journeylens.store import Workspace

#: journey types other than purchase get a map when they have at least this many journeys
MIN_JOURNEYS_FOR_MAP = 20
#: rows shown in a section's data table
MAX_TABLE_ROWS = 40
#: the models compared; time decay needs per-touch timestamps, and the report uses paths aggregated in the engine
ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear", "position_based", "markov", "shapley")
ATTRIBUTION_BOOTSTRAP = 200


@dataclass
class Column:
    """A column of a section's data table: the result column, its heading and how to show a value."""

    name: str
    heading: str | None = None
    fmt: Callable[[Any], str] | None = None


@dataclass
class Section:
    """One analysis in the report: its result, figure, explanation and data table."""

    id: str
    title: str
    how: str
    result: Any = None
    figure: Any = None
    table: Any = None  # the pyarrow table / DataFrame shown under the figure
    columns: Sequence[Column] = ()
    error: str | None = None
    seconds: float = 0.0


@dataclass
class MapPanel:
    id: str
    label: str
    result: JourneyMapResult | None = None
    comparison: JourneyMapComparison | None = None
    error: str | None = None


@dataclass
class Report:
    workspace: str
    model: str | None
    filters: Filters
    generated_at: datetime
    maps: list[MapPanel] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    overview: JourneyMapResult | None = None

    def section(self, section_id: str) -> Section:
        for s in self.sections:
            if s.id == section_id:
                return s
        raise KeyError(f"no section {section_id!r}; expected one of {', '.join(s.id for s in self.sections)}")


# -- formatting ------------------------------------------------------------------------------------------


def _int(v: Any) -> str:
    return "" if is_missing(v) else f"{int(v):,}"


def _pct(v: Any) -> str:
    return "" if is_missing(v) else f"{100 * float(v):.1f}%"


def _f2(v: Any) -> str:
    return "" if is_missing(v) else f"{float(v):,.2f}"


def _f1(v: Any) -> str:
    return "" if is_missing(v) else f"{float(v):,.1f}"


def _text(v: Any) -> str:
    return "" if v is None else str(v)


# -- running the analyses --------------------------------------------------------------------------------


def _attempt(section: Section, work: Callable[[], None]) -> Section:
    """Run one section's analyses; an error the user can act on becomes the section's message, and the
    other sections still run. Running out of memory is one of those (100M events under an 8 GB DuckDB
    limit: the attribution paths did), not a reason to lose the whole report."""
    import duckdb

    started = time.perf_counter()
    try:
        work()
    except JourneyLensError as exc:
        section.error = exc.message
    except (MemoryError, duckdb.OutOfMemoryException):
        section.error = (
            "not enough memory for this section on this machine; the other sections are complete. "
            "Filter the report (a period, journey type or persona), or raise DuckDB's memory limit."
        )
    section.seconds = time.perf_counter() - started
    return section


def _maps(ws: Workspace, model: str | None, filters: Filters, report: Report) -> None:
    from journeylens.analyses.journeymap import JourneyMapSpec, compare_results, run, segments

    overview = run(ws, JourneyMapSpec(model=model, filters=filters))
    report.overview = overview
    report.maps.append(MapPanel("map-all", "All personas", result=overview))
    counts = segments(ws, filters).rename_columns(["journey_type", "persona", "n"]).to_pylist()
    personas = sorted(
        {r["persona"] for r in counts if r["journey_type"] == "purchase" and r["persona"] is not None}
    )
    by_persona = {}
    for k, p in enumerate(personas):
        r = run(ws, JourneyMapSpec(model=model, persona=p, filters=filters))
        by_persona[p] = r
        report.maps.append(MapPanel(f"map-persona-{k}", p, result=r))
    pair = _pair(personas, counts)
    if pair is not None:
        cmp = compare_results(by_persona[pair[0]], by_persona[pair[1]])
        report.maps.append(MapPanel("map-compare", f"{pair[0]} vs {pair[1]}", comparison=cmp))
    others = sorted({r["journey_type"] for r in counts if r["journey_type"] != "purchase"})
    for k, jt in enumerate(others):
        n = sum(int(r["n"]) for r in counts if r["journey_type"] == jt)
        if n < MIN_JOURNEYS_FOR_MAP:
            continue
        if filters.journey_types and jt not in filters.journey_types:
            continue
        try:
            r = run(ws, JourneyMapSpec(model=model, journey_type=jt, filters=filters))
        except JourneyLensError as exc:
            report.maps.append(MapPanel(f"map-type-{k}", jt.replace("_", " "), error=exc.message))
            continue
        report.maps.append(MapPanel(f"map-type-{k}", jt.replace("_", " "), result=r))


def _pair(personas: list[str], counts: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The two personas to compare: low_involvement vs high_involvement when both exist, else the two biggest."""
    if "low_involvement" in personas and "high_involvement" in personas:
        return "low_involvement", "high_involvement"
    sizes = {
        r["persona"]: int(r["n"])
        for r in counts
        if r["journey_type"] == "purchase" and r["persona"] in personas
    }
    ranked = sorted(sizes, key=lambda p: (-sizes[p], p))
    return (ranked[0], ranked[1]) if len(ranked) >= 2 else None


def build_report(ws: Workspace, *, model: str | None = None, filters: Filters = Filters()) -> Report:
    """Run the journey maps and every analysis on the workspace; the results, ready to render."""
    from journeylens.report import figures as fig

    report = Report(workspace=ws.location, model=model, filters=filters, generated_at=datetime.now(UTC))
    _maps(ws, model, filters, report)
    overview = report.overview
    phases = overview.table.to_pylist() if overview is not None else []
    labels = {r["phase"]: r["label"] for r in phases}
    add = report.sections.append

    # the phase funnel
    s = Section("funnel", "Phase funnel",
                "A journey reaches a phase when it has a touchpoint in it or in a later phase; percentages are of the "
                "journeys that reached the first phase (purchase journeys).")  # fmt: skip

    def funnel() -> None:
        from journeylens.analyses.funnel import PhaseFunnelSpec, run

        s.result = run(ws, PhaseFunnelSpec(model=model, filters=filters))
        s.figure = fig.phase_funnel(s.result)
        s.table = s.result.table
        s.columns = [Column("label", "phase"), Column("reached", fmt=_int), Column("conversion_from_previous", "from previous", _pct),
                     Column("conversion_from_first", "from first", _pct), Column("dropped", fmt=_int),
                     Column("median_days_in_phase", "median days", _f1)]  # fmt: skip

    add(_attempt(s, funnel))

    s2 = Section("touchpoints", "Touchpoints to purchase",
                 "Per person, the number of the contact (all their touchpoints in time order) at which they first bought, "
                 "beside the rule of thumb: 2% at the first contact, 10% at the fourth, 5–8 contacts on average.")  # fmt: skip

    def touchpoints() -> None:
        from journeylens.analyses.touchpoints import TouchpointsSpec, run

        s2.result = run(ws, TouchpointsSpec(filters=filters))
        s2.figure = fig.touchpoints_to_purchase(s2.result)
        s2.table = s2.result.table
        s2.columns = [Column("contact_number", "contact", _int), Column("purchases", fmt=_int), Column("share", fmt=_pct),
                      Column("cumulative_share", "cumulative", _pct), Column("reference_share", "rule of thumb", _pct)]  # fmt: skip

    add(_attempt(s2, touchpoints))

    first = phases[0]["phase"] if phases else None
    s3 = Section("sankey", "Paths through the phases",
                 f"From each journey's first touchpoint in {labels.get(first, first)}, the phases that follow (a run of one "
                 "phase counts once); a red node: the journey ends there.")  # fmt: skip

    def sankey() -> None:
        from journeylens.analyses.paths import PathsSpec, run

        if first is None:
            raise JourneyLensError("no phases: the journey map found none")
        steps = max(1, min(4, len(phases) - 1))
        s3.result = run(
            ws, PathsSpec(level="phase", model=model, sankey_from=first, steps=steps, filters=filters)
        )
        s3.figure = fig.paths_sankey(s3.result, order=[p["phase"] for p in phases])
        s3.table = s3.result.table
        s3.columns = [
            Column("source"),
            Column("target"),
            Column("step", fmt=_int),
            Column("journeys", fmt=_int),
        ]

    add(_attempt(s3, sankey))

    s4 = Section("process", "Process map of channels",
                 "How often one channel directly follows another within a purchase journey (a run in one channel counts "
                 "once); the most frequent moves, nodes placed by their mean step from the start.")  # fmt: skip

    def process() -> None:
        from journeylens.analyses.paths import PathsSpec, run

        s4.result = run(ws, PathsSpec(level="channel", dfg=True, collapse_repeats=True, filters=filters))
        s4.figure = fig.process_map(s4.result)
        s4.table = s4.result.table
        s4.columns = [Column("source"), Column("target"), Column("count", fmt=_int), Column("persons", fmt=_int),
                      Column("median_seconds", "median hours", lambda v: "" if is_missing(v) else f"{float(v) / 3600:,.1f}")]  # fmt: skip

    add(_attempt(s4, process))

    s5 = Section("attribution", "Attribution across models",
                 "Credit per channel for the conversions of purchase journeys (the channel paths before the conversion, "
                 f"aggregated in the engine), under each model; lines: 95% bootstrap intervals over {ATTRIBUTION_BOOTSTRAP} "
                 "resamples of the journeys.")  # fmt: skip

    def attribution() -> None:
        from journeylens.attribution import Bootstrap, attribute, read_paths
        from journeylens.attribution import workspace as wa

        paths = wa.paths(ws, filters=filters)
        if paths.num_rows == 0:
            raise JourneyLensError("no touches in purchase journeys")
        frame = attribute(read_paths(paths.to_pandas()), models=list(ATTRIBUTION_MODELS),
                          bootstrap=Bootstrap(n=ATTRIBUTION_BOOTSTRAP, seed=0))  # fmt: skip
        s5.result = frame
        s5.figure = fig.attribution(frame)
        s5.table = frame
        s5.columns = [Column("model"), Column("channel"), Column("attributed_conversions", "conversions", _f1),
                      Column("ci_low", "low", _f1), Column("ci_high", "high", _f1), Column("attributed_value", "value", _f1)]  # fmt: skip

    add(_attempt(s5, attribution))

    s6 = Section("satisfaction", "Satisfaction: the emotion curve",
                 "Answers normalised to 0–1 per scale (CSAT (s−1)/4, NPS s/10, CES (s−1)/6) and pooled per phase of the step "
                 "they rate (a survey rates the touchpoint it names, else the step before it); 95% t intervals.")  # fmt: skip

    def satisfaction() -> None:
        from journeylens.analyses.satisfaction import SatisfactionSpec, run

        s6.result = run(ws, SatisfactionSpec(by="phase", filters=filters))
        if s6.result.emotion_curve.num_rows == 0:
            raise JourneyLensError("no satisfaction answers in these journeys")
        s6.figure = fig.emotion_curve(s6.result, labels=labels)
        s6.table = s6.result.emotion_curve
        s6.columns = [Column("phase"), Column("n", "answers", _int), Column("normalised", "mean (0–1)", _f2),
                      Column("normalised_low", "low", _f2), Column("normalised_high", "high", _f2)]  # fmt: skip

    add(_attempt(s6, satisfaction))

    s7 = Section("loyalty", "Loyalty: cohort retention",
                 "Buyers grouped by the month of their first purchase; each cell: the share of the cohort buying again in "
                 "that month after it (purchases other than the first).")  # fmt: skip

    def loyalty() -> None:
        from journeylens.analyses.loyalty import LoyaltySpec, run

        s7.result = run(ws, LoyaltySpec(filters=filters))
        if s7.result.cohorts.num_rows == 0:
            raise JourneyLensError("no purchases in these journeys")
        s7.figure = fig.cohort_retention(s7.result)
        s7.table = s7.result.table
        s7.columns = [
            Column("metric"),
            Column("value", fmt=_f2),
            Column("low", fmt=_f2),
            Column("high", fmt=_f2),
            Column("n", fmt=_int),
        ]

    add(_attempt(s7, loyalty))

    s8 = Section("content", "Content × phase",
                 "Per content type and phase, the share of the journeys in the phase that saw it; a green frame marks the "
                 "phases the phase model intends the content for.")  # fmt: skip

    def content() -> None:
        from journeylens.analyses.content import ContentSpec, run

        s8.result = run(ws, ContentSpec(model=model, filters=filters))
        s8.figure = fig.content_heatmap(s8.result)
        s8.table = s8.result.table
        s8.columns = [Column("content_type", "content"), Column("phase"), Column("touchpoints", fmt=_int), Column("exposed", fmt=_int),
                      Column("exposure_share", "exposed share", _pct), Column("lift", fmt=_f2), Column("intended", fmt=lambda v: "yes" if v else "")]  # fmt: skip

    add(_attempt(s8, content))

    s9 = Section("personas", "Behavioural personas",
                 "Persons clustered (k-means on standardised journey features, k by silhouette) and set against their "
                 "declared persona.")  # fmt: skip

    def personas() -> None:
        from journeylens.analyses.personas import PersonasSpec, run

        s9.result = run(ws, PersonasSpec(filters=filters))
        s9.figure = fig.persona_clusters(s9.result)
        s9.table = s9.result.table
        s9.columns = [Column("cluster", fmt=_int), Column("persons", fmt=_int), Column("share", fmt=_pct),
                      Column("top_persona", "mostly"), Column("description", "sets it apart")]  # fmt: skip

    add(_attempt(s9, personas))
    return report


# -- rendering --------------------------------------------------------------------------------------------

REPORT_CSS = f"""
:root {{ --ink:{INK}; --muted:{MUTED}; --line:{LINE}; --canvas:{CANVAS}; --paper:{PAPER}; }}
* {{ box-sizing:border-box; }}
html, body {{ margin:0; background:var(--canvas); color:var(--ink); font-family:{FONT}; font-size:14px; line-height:1.5;
  -webkit-font-smoothing:antialiased; }}
.page {{ max-width:1640px; margin:0 auto; padding:32px 32px 64px; }}
.masthead {{ display:flex; justify-content:space-between; align-items:flex-end; gap:32px; padding-bottom:20px;
  border-bottom:1px solid var(--line); margin-bottom:20px; }}
.masthead h1 {{ font-size:28px; margin:0; letter-spacing:-.015em; }}
.masthead .brand {{ font-size:12px; font-weight:700; letter-spacing:.14em; text-transform:uppercase; color:#3b5bdb; }}
.facts {{ display:grid; grid-template-columns:auto auto; gap:2px 14px; font-size:12.5px; margin:0; }}
.facts dt {{ color:var(--muted); }} .facts dd {{ margin:0; font-weight:600; }}
nav.toc {{ display:flex; flex-wrap:wrap; gap:6px; margin:0 0 26px; }}
nav.toc a {{ font-size:12.5px; color:var(--ink); text-decoration:none; padding:5px 11px; border:1px solid var(--line);
  border-radius:999px; background:var(--paper); }}
nav.toc a:hover {{ border-color:#3b5bdb; color:#3b5bdb; }}
section.block {{ margin:0 0 28px; }}
section.block > h2 {{ font-size:19px; margin:0 0 2px; letter-spacing:-.01em; }}
p.how {{ margin:0 0 12px; color:var(--muted); font-size:13px; max-width:1100px; }}
.tabs {{ display:flex; flex-wrap:wrap; gap:6px; margin:0 0 12px; }}
.tabs button {{ font:inherit; font-size:13px; padding:6px 13px; border-radius:8px; border:1px solid var(--line);
  background:var(--paper); color:var(--ink); cursor:pointer; }}
.tabs button[aria-selected="true"] {{ background:var(--ink); color:#fff; border-color:var(--ink); }}
.panel {{ overflow-x:auto; }}
.grid2 {{ display:grid; grid-template-columns:repeat(auto-fit, minmax(700px, 1fr)); gap:24px; }}
.card {{ background:var(--paper); border:1px solid var(--line); border-radius:14px; padding:20px 22px 14px; min-width:0; }}
.card h2 {{ font-size:17px; margin:0 0 2px; }}
.figure {{ width:100%; min-height:300px; }}
.error {{ padding:14px 16px; border-radius:10px; background:#fff4e0; color:#7a4100; font-size:13px; }}
details.data {{ margin-top:8px; }}
details.data summary {{ cursor:pointer; font-size:12.5px; color:var(--muted); }}
table.data {{ border-collapse:collapse; font-size:12px; margin-top:8px; width:100%; }}
table.data th {{ text-align:left; font-weight:600; color:var(--muted); border-bottom:1px solid var(--line); padding:4px 8px; white-space:nowrap; }}
table.data td {{ border-bottom:1px solid #f0f2f6; padding:3px 8px; font-variant-numeric:tabular-nums; }}
table.data td.num {{ text-align:right; }}
footer {{ margin-top:36px; font-size:12px; color:var(--muted); }}
"""

SCRIPT = """
(function () {
  document.querySelectorAll('[data-tabs]').forEach(function (bar) {
    var buttons = bar.querySelectorAll('button');
    buttons.forEach(function (b) {
      b.addEventListener('click', function () {
        buttons.forEach(function (o) {
          var on = o === b;
          o.setAttribute('aria-selected', on ? 'true' : 'false');
          document.getElementById(o.dataset.panel).hidden = !on;
        });
      });
    });
  });
  document.querySelectorAll('script[type="application/json"][data-figure]').forEach(function (s) {
    var spec = JSON.parse(s.textContent);
    Plotly.newPlot(s.dataset.figure, spec.data, spec.layout, spec.config);
  });
})();
"""


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and the JS line separators escaped."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _figure_json(figure: Any) -> str:
    from journeylens.report.figures import CONFIG

    spec = json.loads(figure.to_json())
    spec["config"] = CONFIG
    return script_json(json.dumps(spec, ensure_ascii=False))


def _cell(value: Any, column: Column) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    shown = column.fmt(value) if column.fmt else _text(value)
    cls = ' class="num"' if numeric else ""
    return f'<td{cls} data-col="{esc(column.name)}" data-value="{raw(value)}">{esc(shown)}</td>'


def _rows(table: Any) -> list[dict[str, Any]]:
    if table is None:
        return []
    if hasattr(table, "to_pylist"):
        return table.to_pylist()
    return table.to_dict("records")


def data_table(section: Section) -> str:
    rows = _rows(section.table)
    if not rows or not section.columns:
        return ""
    shown = rows[:MAX_TABLE_ROWS]
    more = f" (first {MAX_TABLE_ROWS} of {len(rows):,})" if len(rows) > MAX_TABLE_ROWS else ""
    head = "".join(f"<th>{esc(c.heading or c.name.replace('_', ' '))}</th>" for c in section.columns)
    body = "".join(
        f'<tr data-row="{i}">' + "".join(_cell(r.get(c.name), c) for c in section.columns) + "</tr>"
        for i, r in enumerate(shown)
    )
    return (
        f'<details class="data"><summary>The numbers{more}</summary>'
        f'<table class="data" data-table="{esc(section.id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>'
    )


def _section_html(section: Section, figures: list[tuple[str, str]]) -> str:
    if section.error is not None or section.figure is None:
        inner = f'<div class="error" data-error="{esc(section.id)}">Not available: {esc(section.error or "no result")}</div>'
    else:
        fid = f"fig-{section.id}"
        legend = (
            section.figure.layout.showlegend is not False
            and sum(getattr(tr, "showlegend", False) is not False for tr in section.figure.data) > 1
        )
        section.figure.update_layout(title=None, margin={"t": 56 if legend else 28})
        figures.append((fid, _figure_json(section.figure)))
        inner = f'<div class="figure" id="{fid}"></div>' + data_table(section)
    return (
        f'<section class="card" id="{esc(section.id)}" data-section="{esc(section.id)}"><h2>{esc(section.title)}</h2>'
        f'<p class="how">{esc(section.how)}</p>{inner}</section>'
    )


def _maps_html(report: Report) -> str:
    from journeylens.report.journeymap import render, render_comparison

    buttons, panels = [], []
    for i, m in enumerate(report.maps):
        selected = "true" if i == 0 else "false"
        buttons.append(
            f'<button type="button" role="tab" aria-selected="{selected}" data-panel="{esc(m.id)}">{esc(m.label)}</button>'
        )
        if m.error is not None:
            body = f'<div class="error">Not available: {esc(m.error)}</div>'
        elif m.comparison is not None:
            body = render_comparison(m.comparison)
        else:
            assert m.result is not None
            body = render(m.result)
        hidden = "" if i == 0 else " hidden"
        panels.append(
            f'<div class="panel" id="{esc(m.id)}" role="tabpanel" data-map-panel="{esc(m.label)}"{hidden}>{body}</div>'
        )
    return (
        '<section class="block" id="journey-map" data-section="journey-map"><h2>Journey map</h2>'
        '<p class="how">Per phase of the phase model: the journeys that reach it, where they go, the touchpoints, channels and '
        "content they meet, the customer's questions, how satisfied they are, and what to improve. One map per persona "
        "and journey type, and two personas side by side.</p>"
        f'<div class="tabs" role="tablist" data-tabs>{"".join(buttons)}</div>{"".join(panels)}</section>'
    )


def _period(report: Report) -> str:
    if report.overview is None:
        return "–"
    start, end = report.overview.period
    if start is None:
        return "no journeys"
    return f"{start:%d %b %Y} – {end:%d %b %Y}"


def render_report(report: Report) -> str:
    """The report as one self-contained HTML document."""
    from journeylens.report.journeymap import CSS as MAP_CSS

    plotly_js = _plotly_js()
    figures: list[tuple[str, str]] = []
    sections = "".join(_section_html(s, figures) for s in report.sections)
    payload = "".join(
        f'<script type="application/json" data-figure="{fid}">{spec}</script>' for fid, spec in figures
    )
    ov = report.overview
    kpi = {r["metric"]: r["value"] for r in ov.kpis.to_pylist()} if ov is not None else {}
    facts = [
        ("workspace", report.workspace),
        ("data period", _period(report)),
        ("filters", report.filters.describe()),
        ("phase model", ov.model if ov is not None else (report.model or "–")),
        ("purchase journeys", _int(kpi.get("journeys"))),
        ("generated", f"{report.generated_at:%Y-%m-%d %H:%M} UTC"),
    ]
    facts_html = "".join(f'<dt>{esc(k)}</dt><dd data-fact="{esc(k)}">{esc(v)}</dd>' for k, v in facts)
    toc = '<a href="#journey-map">Journey map</a>' + "".join(
        f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in report.sections
    )
    csp = (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; connect-src 'none'"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>journeylens report</title><style>{REPORT_CSS}{MAP_CSS}</style>"
        '</head><body><div class="page">'
        f'<header class="masthead"><div><div class="brand">journeylens</div><h1>Customer journey report</h1></div>'
        f'<dl class="facts">{facts_html}</dl></header><nav class="toc">{toc}</nav>'
        f'{_maps_html(report)}<div class="grid2">{sections}</div>'
        "<footer>Made by journeylens from the workspace's built journeys. Every figure is drawn from an analysis result; "
        "the numbers under each figure are that result's table.</footer></div>"
        # Plotly comes last: the page (the journey map first) paints before its 4 MB of JavaScript run
        f"{payload}<script>{plotly_js}</script><script>{SCRIPT}</script></body></html>"
    )


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # the bundle is trusted code; only a literal "</script" inside it could end the element early
    return get_plotlyjs().replace("</script", "<\\/script")


def write_report(
    ws: Workspace, out: str | Path, *, model: str | None = None, filters: Filters = Filters()
) -> Path:
    """Build the report for the workspace and write it to ``out`` (one self-contained HTML file)."""
    out = Path(out)
    html_text = render_report(build_report(ws, model=model, filters=filters))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html_text, encoding="utf-8")
    return out
