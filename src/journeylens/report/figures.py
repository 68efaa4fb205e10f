"""Plotly figures, one per analysis result, built only from the result's tables (STYLE.md, example 4).

Each function takes a result object (the headless twin) and returns a ``plotly.graph_objects.Figure``; nothing
here reads a workspace or recomputes a figure. Layout choices (ordering, a process map's node positions,
an axis range) are presentation, not analysis.

=========================  =================================================================================
function                   result (module)
=========================  =================================================================================
``phase_funnel``           ``PhaseFunnelResult`` (``analyses.funnel``)
``touchpoints_to_purchase`` ``TouchpointsResult`` (``analyses.touchpoints``): histogram, cumulative curve,
                           the rule of thumb (2% at the 1st contact, 10% at the 4th, 5–8 on average)
``paths_sankey``           ``PathsResult`` with ``sankey_from`` / ``sankey_to`` (``analyses.paths``)
``process_map``            ``PathsResult`` with ``dfg=True``: the directly-follows graph
``attribution``            the long frame of ``attribution.attribute`` (one row per model and channel,
                           ``ci_low`` / ``ci_high`` with a bootstrap)
``emotion_curve``          ``SatisfactionResult.emotion_curve`` (``analyses.satisfaction``)
``cohort_retention``       ``LoyaltyResult.cohorts`` (``analyses.loyalty``)
``content_heatmap``        ``ContentResult`` (``analyses.content``)
``persona_clusters``       ``PersonasResult`` (``analyses.personas``)
``journey_map_emotion``    ``JourneyMapResult`` (``analyses.journeymap``): the map's emotion curve alone
=========================  =================================================================================

Text from data (touchpoint, channel, persona names) is HTML-escaped before it reaches Plotly: Plotly reads a
small set of HTML tags in labels, and escaped text shows as typed, tags included.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from journeylens.report.theme import (
    ACCENT,
    BAD,
    FAINT,
    FONT,
    GOOD,
    INK,
    LINE,
    MUTED,
    PAPER,
    SEQUENTIAL,
    SERIES,
    emotion_colour,
    is_missing,
    phase_colours,
    tint,
)

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from journeylens.analyses.base import Result

CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def t(value: Any) -> str:
    """Text for Plotly: escaped, so that a name like ``<b>`` shows as typed."""
    return html.escape("" if value is None else str(value), quote=False)


def _rows(table: Any) -> list[dict[str, Any]]:
    """Rows of a pyarrow table or a pandas frame."""
    if hasattr(table, "to_pylist"):
        return table.to_pylist()
    return table.to_dict("records")


def _num(value: Any) -> float | None:
    return None if is_missing(value) else float(value)


def style(
    fig: go.Figure, title: str | None = None, *, height: int = 420, subtitle: str | None = None
) -> go.Figure:
    """The house style: one font, quiet grids, a left-aligned title."""
    text = None
    if title:
        text = f"<b>{t(title)}</b>" + (
            f"<br><span style='font-size:12px;color:{MUTED}'>{t(subtitle)}</span>" if subtitle else ""
        )
    fig.update_layout(
        template="none",
        font={"family": FONT, "size": 12.5, "color": INK},
        title={"text": text, "x": 0.0, "xanchor": "left", "y": 0.97, "font": {"size": 16}} if text else None,
        paper_bgcolor=PAPER,
        plot_bgcolor=PAPER,
        height=height,
        margin={"l": 60, "r": 24, "t": 70 if text else 24, "b": 50},
        colorway=SERIES,
        hoverlabel={"font": {"family": FONT, "size": 12}, "bgcolor": PAPER, "bordercolor": LINE},
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.01,
            "xanchor": "left",
            "x": 0,
            "font": {"size": 12},
        },
    )
    axis = {
        "gridcolor": LINE,
        "zerolinecolor": LINE,
        "linecolor": LINE,
        "tickfont": {"color": MUTED},
        "title": {"font": {"color": MUTED}},
        "automargin": True,
    }
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    return fig


# -- phase funnel -----------------------------------------------------------------------------------------


def phase_funnel(result: Result, title: str | None = "How far journeys get through the phases") -> go.Figure:
    """Journeys reaching each phase (a phase or a later one), with the share of the first phase."""
    go = _go()
    rows = _rows(result.table)
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r.get("period"), r.get("breakdown")), []).append(r)
    fig = go.Figure()
    many = len(groups) > 1
    for k, (key, rs) in enumerate(groups.items()):
        rs = sorted(rs, key=lambda r: r["phase_index"])
        name = " · ".join(str(v) for v in key if v is not None) or "all journeys"
        colours = phase_colours(len(rs))
        fig.add_trace(
            go.Funnel(
                name=t(name),
                y=[t(r["label"]) for r in rs],
                x=[r["reached"] for r in rs],
                text=[f"{r['reached']:,} · {100 * (r['conversion_from_first'] or 0):.0f}%" for r in rs],
                textinfo="text",
                textposition="inside",
                textfont={"color": "#ffffff", "size": 13},
                marker={"color": SERIES[k % len(SERIES)] if many else colours, "line": {"width": 0}},
                connector={"fillcolor": tint(ACCENT, 0.9), "line": {"width": 0}},
                customdata=[
                    [r["dropped"], _pct(r["conversion_from_previous"]), _days(r.get("median_days_in_phase"))]
                    for r in rs
                ],
                hovertemplate="%{y}<br>reached %{x:,}<br>from previous %{customdata[1]} (dropped %{customdata[0]:,})"
                "<br>median %{customdata[2]} in the phase<extra>%{fullData.name}</extra>",
            )
        )
    style(fig, title, height=110 + 56 * max((len(v) for v in groups.values()), default=1),
          subtitle="a journey reaches a phase when it has a touchpoint in it or in a later phase")  # fmt: skip
    fig.update_layout(showlegend=many, funnelmode="group")
    fig.update_yaxes(gridcolor="rgba(0,0,0,0)", tickfont={"color": INK, "size": 13})
    return fig


def _pct(value: Any, digits: int = 0) -> str:
    return "–" if is_missing(value) else f"{100 * float(value):.{digits}f}%"


def _days(value: Any) -> str:
    return "–" if is_missing(value) else f"{float(value):.1f} days"


# -- touchpoints to purchase ------------------------------------------------------------------------------


def touchpoints_to_purchase(
    result: Result, title: str | None = "At which contact do people buy?"
) -> go.Figure:
    """The share of purchases at each contact number (bars), the cumulative share (line), the rule of thumb."""
    go = _go()
    from plotly.subplots import make_subplots

    rows = [r for r in _rows(result.table) if r.get("breakdown") is None] or _rows(result.table)
    summary = _rows(result.extra["summary"]) if "summary" in result.extra else []
    reference = dict(result.extra.get("reference") or {})
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    xs = [r["contact_number"] for r in rows]
    fig.add_trace(
        go.Bar(
            name="share of purchases",
            x=xs,
            y=[r["share"] for r in rows],
            marker={"color": ACCENT, "line": {"width": 0}},
            customdata=[r["purchases"] for r in rows],
            hovertemplate="contact %{x}: %{y:.1%} of purchases (%{customdata:,})<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            name="cumulative",
            x=xs,
            y=[r["cumulative_share"] for r in rows],
            mode="lines",
            line={"color": "#e8590c", "width": 2.5, "shape": "hv"},
            hovertemplate="by contact %{x}: %{y:.1%} of purchases<extra></extra>",
        ),
        secondary_y=True,
    )
    ref = [
        (r["contact_number"], r["reference_share"]) for r in rows if not is_missing(r.get("reference_share"))
    ]
    if not ref and reference:
        ref = [(1, reference.get("share_at_1")), (4, reference.get("share_at_4"))]
    if ref:
        fig.add_trace(
            go.Scatter(
                name="rule of thumb: 2% at the 1st, 10% at the 4th",
                x=[c for c, _ in ref],
                y=[s for _, s in ref],
                mode="markers+text",
                marker={"symbol": "diamond", "size": 12, "color": PAPER, "line": {"color": INK, "width": 2}},
                text=[f"{100 * s:.0f}%" for _, s in ref],
                textposition="top center",
                textfont={"color": INK, "size": 11},
                hovertemplate="rule of thumb: %{y:.0%} at contact %{x}<extra></extra>",
            ),
            secondary_y=False,
        )
    low, high = reference.get("mean_contacts_low", 5.0), reference.get("mean_contacts_high", 8.0)
    band = tint("#f59f00", 0.78)
    fig.add_vrect(x0=low - 0.5, x1=high + 0.5, fillcolor=band, opacity=0.55, line_width=0, layer="below")
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=f"rule of thumb: {low:g}–{high:g} contacts on average",
            marker={"symbol": "square", "size": 13, "color": band},
            hoverinfo="skip",
        ),  # fmt: skip
        secondary_y=False,
    )
    mine = next((s for s in summary if s.get("breakdown") is None), summary[0] if summary else None)
    if mine and not is_missing(mine.get("mean_contacts")):
        fig.add_vline(
            x=mine["mean_contacts"], line={"color": INK, "dash": "dash", "width": 1.5},
            annotation_text=f"your mean: {mine['mean_contacts']:.1f} contacts", annotation_position="top right",
            annotation_font={"size": 11, "color": INK},
        )  # fmt: skip
    cutoff = next(
        (r["contact_number"] for r in rows if (r["cumulative_share"] or 0) >= 0.99), xs[-1] if xs else 10
    )
    n = sum(r["purchases"] for r in rows)
    style(
        fig,
        title,
        height=440,
        subtitle=f"{n:,} purchases; bars: share at each contact number, line: cumulative",
    )
    fig.update_xaxes(
        title_text="contact number of the purchase",
        range=[0.4, max(cutoff, high) + 0.6],
        dtick=1 if max(cutoff, high) <= 30 else None,
    )
    fig.update_yaxes(title_text="share of purchases", tickformat=".0%", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="cumulative", tickformat=".0%", range=[0, 1.02], tickvals=[0, 0.25, 0.5, 0.75, 1.0],
                     secondary_y=True, showgrid=False)  # fmt: skip
    fig.update_layout(bargap=0.18, margin={"t": 96})
    return fig


# -- paths ------------------------------------------------------------------------------------------------

DROP = "(drop-off)"


def paths_sankey(
    result: Result, title: str | None = "Where journeys go next", order: list[str] | None = None
) -> go.Figure:
    """The Sankey of ``PathsResult`` (``sankey_from`` / ``sankey_to``): columns are steps, drop-off in red.

    ``order`` (e.g. the phase names) sets the order of the values within a column; otherwise the busiest
    come first. ``(start)`` and ``(drop-off)`` go to the bottom."""
    go = _go()
    nodes = _rows(result.extra["nodes"]) if result.extra.get("nodes") is not None else []
    links = _rows(result.table)
    steps = sorted({r["step"] for r in nodes})
    span = max(1, len(steps) - 1)
    rank = {v: i for i, v in enumerate(order or [])}

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        special = r["value"] in (DROP, "(start)", "(end)")
        return (special, rank.get(r["value"], len(rank)), -r["journeys"], r["value"])

    by_step: dict[int, list[dict[str, Any]]] = {}
    for r in sorted(nodes, key=key):
        by_step.setdefault(r["step"], []).append(r)
    nodes = [r for st in steps for r in by_step[st]]
    index = {r["node"]: i for i, r in enumerate(nodes)}
    values = list(dict.fromkeys([*(order or []), *sorted({r["value"] for r in nodes})]))
    values = [v for v in values if v not in (DROP, "(start)", "(end)")]
    palette = {
        v: (phase_colours(len(order))[rank[v]] if order and v in rank else SERIES[i % len(SERIES)])
        for i, v in enumerate(values)
    }
    total = {st: sum(r["journeys"] for r in by_step[st]) or 1 for st in steps}
    colours, xs, ys = [], [], []
    for r in nodes:
        colours.append(
            BAD
            if r["value"] == DROP
            else FAINT
            if r["value"] in ("(start)", "(end)")
            else palette[r["value"]]
        )
        xs.append(0.001 + 0.998 * (steps.index(r["step"]) / span))
        col = by_step[r["step"]]
        before = sum(o["journeys"] for o in col[: col.index(r)])
        ys.append(0.001 + 0.998 * min(1.0, (before + r["journeys"] / 2) / total[r["step"]]))
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": [t(r["value"]) for r in nodes],
                "color": colours,
                "pad": 16,
                "thickness": 16,
                "line": {"width": 0},
                "customdata": [[r["step"], r["journeys"]] for r in nodes],
                "hovertemplate": "%{label} (step %{customdata[0]})<br>%{customdata[1]:,} journeys<extra></extra>",
                "x": xs,
                "y": ys,
            },
            link={
                "source": [index[r["source"]] for r in links],
                "target": [index[r["target"]] for r in links],
                "value": [r["journeys"] for r in links],
                "color": [
                    "rgba(201,42,42,0.20)" if r["target"].endswith(":" + DROP) else "rgba(59,91,219,0.15)"
                    for r in links
                ],
                "hovertemplate": "%{source.label} → %{target.label}<br>%{value:,} journeys<extra></extra>",
            },
            textfont={"family": FONT, "size": 12, "color": INK},
        )
    )
    anchor = result.extra.get("anchor")
    sub = f"from each journey's first {anchor!s}; red: journeys that end there" if anchor else None
    style(
        fig,
        title,
        height=max(380, 30 * max((len(v) for v in by_step.values()), default=1) + 150),
        subtitle=sub,
    )
    for i, st in enumerate(steps):
        label = "start" if st == 0 else (f"+{st}" if st > 0 else f"{st}")
        fig.add_annotation(x=i / span, y=1.0, xref="paper", yref="paper", yanchor="bottom", showarrow=False,
                           text=f"<b>{label}</b>" if st == 0 else label, font={"size": 11, "color": MUTED})  # fmt: skip
    fig.update_layout(margin={"l": 20, "r": 20})
    return fig


def process_map(
    result: Result, title: str | None = "Process map: what directly follows what", max_edges: int = 24
) -> go.Figure:
    """The directly-follows graph of ``PathsResult`` (``dfg=True``) as a vertical arc diagram: the values top
    to bottom by their mean step from ``(start)`` (a smoothing over the edges), the ``max_edges`` most
    frequent moves as arcs on the right, as thick as their count (blue: onwards, red: back up)."""
    go = _go()
    table = _rows(result.table)
    loops = {r["source"]: r["count"] for r in table if r["source"] == r["target"]}
    edges = sorted(
        (r for r in table if r["source"] != r["target"]),
        key=lambda r: (-r["count"], r["source"], r["target"]),
    )[:max_edges]
    names = list(dict.fromkeys([n for r in edges for n in (r["source"], r["target"])]))
    pos = _flow_positions(names, edges)
    order = sorted(names, key=lambda n: (pos[n], n))
    y = {n: -float(i) for i, n in enumerate(order)}
    arrivals: dict[str, int] = {}
    for r in table:
        if r["source"] != r["target"]:
            arrivals[r["target"]] = arrivals.get(r["target"], 0) + r["count"]
    departures: dict[str, int] = {}
    for r in table:
        if r["source"] != r["target"]:
            departures[r["source"]] = departures.get(r["source"], 0) + r["count"]
    volume = {n: max(arrivals.get(n, 0), departures.get(n, 0)) for n in names}
    top = max((r["count"] for r in edges), default=1)
    biggest = max(volume.values(), default=1) or 1
    fig = go.Figure()
    shapes, notes = [], []
    hover_x, hover_y, hover_text = [], [], []
    for r in sorted(edges, key=lambda r: r["count"]):
        y0, y1 = y[r["source"]], y[r["target"]]
        back = y1 > y0
        span = abs(y1 - y0)
        bulge = 0.34 * span + (0.18 if back else 0.0)
        cx, cy = bulge * 2, (y0 + y1) / 2
        w = 1.2 + 8 * r["count"] / top
        colour = "rgba(201,42,42,{a})" if back else "rgba(59,91,219,{a})"
        shapes.append({"type": "path", "path": f"M 0,{y0} Q {cx},{cy} 0,{y1}", "line": {"color": colour.format(a=0.42), "width": w},
                       "layer": "below"})  # fmt: skip

        def at(
            s: float, y0: float = y0, y1: float = y1, cx: float = cx, cy: float = cy
        ) -> tuple[float, float]:
            return 2 * (1 - s) * s * cx, (1 - s) ** 2 * y0 + 2 * (1 - s) * s * cy + s * s * y1

        (ax, ay), (hx, hy) = at(0.80), at(0.86)
        notes.append({"x": hx, "y": hy, "ax": ax, "ay": ay, "xref": "x", "yref": "y", "axref": "x", "ayref": "y", "text": "",
                      "showarrow": True, "arrowhead": 2, "arrowsize": 1.0, "arrowwidth": min(2.6, max(1.3, w * 0.35)),
                      "arrowcolor": colour.format(a=0.9)})  # fmt: skip
        mx, my = at(0.5)
        hover_x.append(mx)
        hover_y.append(my)
        secs = r.get("median_seconds")
        when = f"<br>median {_duration(secs)} between them" if not is_missing(secs) else ""
        hover_text.append(
            f"{t(r['source'])} → {t(r['target'])}<br>{r['count']:,} times, {r.get('persons', 0):,} persons{when}"
        )
    fig.add_trace(go.Scatter(x=hover_x, y=hover_y, mode="markers", marker={"size": 16, "opacity": 0}, hovertext=hover_text,
                             hoverinfo="text", showlegend=False))  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=[0.0] * len(order),
            y=[y[n] for n in order],
            mode="markers+text",
            text=[f"{t(n)}  <span style='color:{MUTED}'>{volume[n]:,}</span>" for n in order],
            textposition="middle left",
            textfont={"size": 12.5, "color": INK},
            marker={
                "size": [10 + 22 * math.sqrt(volume[n] / biggest) for n in order],
                "color": [FAINT if n in ("(start)", "(end)") else ACCENT for n in order],
                "line": {"color": PAPER, "width": 2},
            },
            hovertext=[
                f"{t(n)}<br>{arrivals.get(n, 0):,} arrivals, {departures.get(n, 0):,} departures"
                + (f"<br>{loops[n]:,} repeats in a row" if n in loops else "")
                for n in order
            ],
            hoverinfo="text",
            showlegend=False,
        )
    )
    for name, colour in (("onwards (down)", "rgba(59,91,219,0.6)"), ("back (up)", "rgba(201,42,42,0.6)")):
        fig.add_trace(
            go.Scatter(x=[None], y=[None], mode="lines", name=name, line={"color": colour, "width": 4})
        )
    widest = max((0.34 * abs(y[r["target"]] - y[r["source"]]) + 0.18 for r in edges), default=1.0)
    style(
        fig,
        title,
        height=max(380, 40 * len(order) + 110),
        subtitle=f"the {len(edges)} most frequent moves; number: moves in or out",
    )
    fig.update_layout(shapes=shapes, annotations=notes)
    fig.update_xaxes(visible=False, range=[-max(1.9, widest * 0.5), widest + 0.3])
    fig.update_yaxes(visible=False, range=[-len(order) + 0.4, 0.6])
    return fig


def _duration(seconds: Any) -> str:
    s = float(seconds)
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 86_400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86_400:.1f} days"


def _flow_positions(names: list[str], edges: list[dict[str, Any]]) -> dict[str, float]:
    """Each node's mean step from ``(start)``: pos(v) = weighted mean of pos(u) + 1 over v's incoming edges."""
    pos = dict.fromkeys(names, 0.0)
    incoming: dict[str, list[tuple[str, int]]] = {}
    for r in edges:
        incoming.setdefault(r["target"], []).append((r["source"], r["count"]))
    for _ in range(60):
        new = {}
        for n in names:
            if n == "(start)" or n not in incoming:
                new[n] = 0.0
                continue
            total = sum(c for _, c in incoming[n])
            new[n] = sum((pos[u] + 1) * c for u, c in incoming[n]) / total
        pos = new
    if "(start)" in pos:
        pos["(start)"] = min(pos.values()) - 1.0
    if "(end)" in pos:
        pos["(end)"] = max(pos.values()) + 1.0
    return pos


# -- attribution ------------------------------------------------------------------------------------------


def attribution(
    frame: pd.DataFrame | Any,
    title: str | None = "Which channels earn the conversions, by model",
    value: str = "attributed_conversions",
) -> go.Figure:
    """Credit per channel under each attribution model (the long frame of ``attribute``), with the bootstrap
    interval where the frame has ``ci_low`` / ``ci_high``."""
    go = _go()
    rows = _rows(frame)
    models = list(dict.fromkeys(r.get("model", "model") for r in rows))
    channels = list(dict.fromkeys(r["channel"] for r in rows))
    mean = {c: sum(r[value] or 0 for r in rows if r["channel"] == c) / max(1, len(models)) for c in channels}
    channels.sort(key=lambda c: mean[c])
    fig = go.Figure()
    offsets = {m: (i - (len(models) - 1) / 2) * 0.1 for i, m in enumerate(models)}
    for i, m in enumerate(models):
        mine = {r["channel"]: r for r in rows if r.get("model", "model") == m}
        xs, ys, lo, hi = [], [], [], []
        for k, c in enumerate(channels):
            r = mine.get(c)
            if r is None:
                continue
            xs.append(r[value])
            ys.append(k + offsets[m])
            low, high = _num(r.get("ci_low")), _num(r.get("ci_high"))
            lo.append(r[value] - low if low is not None else 0)
            hi.append(high - r[value] if high is not None else 0)
        has_ci = any(lo) or any(hi)
        fig.add_trace(
            go.Scatter(
                name=t(m),
                x=xs,
                y=ys,
                mode="markers",
                marker={"size": 9, "color": SERIES[i % len(SERIES)], "line": {"color": PAPER, "width": 1}},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": hi,
                    "arrayminus": lo,
                    "thickness": 1.4,
                    "width": 0,
                    "color": SERIES[i % len(SERIES)],
                }
                if has_ci
                else None,  # fmt: skip
                customdata=[t(channels[round(y)]) for y in ys],
                hovertemplate="%{customdata}: %{x:,.1f}<extra>" + t(m) + "</extra>",
            )
        )
    has_ci = any(not is_missing(r.get("ci_low")) for r in rows)
    style(fig, title, height=max(360, 34 * len(channels) + 150),
          subtitle="one dot per model" + ("; lines: 95% bootstrap intervals" if has_ci else ""))  # fmt: skip
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(channels))), ticktext=[t(c) for c in channels],
                     tickfont={"color": INK}, range=[-0.7, len(channels) - 0.3])  # fmt: skip
    fig.update_xaxes(title_text=value.replace("_", " "), rangemode="tozero")
    fig.update_layout(margin={"l": 130, "t": 100})
    return fig


# -- satisfaction -----------------------------------------------------------------------------------------


def emotion_curve(
    result: Result,
    title: str | None = "The emotion curve: satisfaction per phase",
    labels: dict[str, str] | None = None,
) -> go.Figure:
    """``SatisfactionResult.emotion_curve``: the mean normalised score per phase, its interval, its answers."""
    curve = getattr(result, "emotion_curve", None)
    rows = _rows(curve if curve is not None else result.table)
    overall = getattr(result, "overall", None)
    return _emotion(rows, title, labels or {}, overall)


def journey_map_emotion(result: Result, title: str | None = "Emotion per phase") -> go.Figure:
    """The emotion lane of a ``JourneyMapResult`` as a Plotly figure."""
    rows = [
        {"phase": r["phase"], "n": r["emotion_n"], "normalised": r["emotion"], "normalised_low": r["emotion_low"],
         "normalised_high": r["emotion_high"], "too_thin": r["emotion_too_thin"]}
        for r in _rows(result.table)
    ]  # fmt: skip
    labels = {r["phase"]: r["label"] for r in _rows(result.table)}
    return _emotion(rows, title, labels, result.extra.get("overall_emotion"))


def _emotion(
    rows: list[dict[str, Any]], title: str | None, labels: dict[str, str], overall: Any
) -> go.Figure:
    go = _go()
    if labels:  # every phase of the model in order; a phase without answers is a gap
        have = {r["phase"]: r for r in rows}
        empty = {
            "n": 0,
            "normalised": None,
            "normalised_low": None,
            "normalised_high": None,
            "too_thin": True,
        }
        rows = [have.get(p, {"phase": p, **empty}) for p in labels] + [
            r for r in rows if r["phase"] not in labels
        ]
    xs = [t(labels.get(r["phase"], r["phase"])) for r in rows]
    ys = [_num(r["normalised"]) for r in rows]
    lo = [_num(r["normalised_low"]) for r in rows]
    hi = [_num(r["normalised_high"]) for r in rows]
    band_x = [x for x, a, b in zip(xs, lo, hi, strict=True) if a is not None and b is not None]
    fig = go.Figure()
    if band_x:
        fig.add_trace(go.Scatter(x=band_x, y=[min(1, b) for b in hi if b is not None], mode="lines", line={"width": 0},
                                 hoverinfo="skip", showlegend=False, line_shape="spline"))  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=band_x,
                y=[max(0, a) for a in lo if a is not None],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(124,141,166,0.18)",
                name="95% interval",
                hoverinfo="skip",
                line_shape="spline",
            )  # fmt: skip
        )
    fig.add_trace(
        go.Scatter(
            name="mean satisfaction (0–1)",
            x=xs,
            y=ys,
            mode="lines+markers+text",
            line={"color": INK, "width": 2.5, "shape": "spline"},
            marker={
                "size": 14,
                "color": [
                    PAPER if r.get("too_thin") else emotion_colour(y) for r, y in zip(rows, ys, strict=True)
                ],
                "line": {
                    "color": [
                        emotion_colour(y) if r.get("too_thin") else PAPER
                        for r, y in zip(rows, ys, strict=True)
                    ],
                    "width": 2.5,
                },
            },
            text=[f"{y:.2f}" if y is not None else "" for y in ys],
            textposition="top center",
            connectgaps=False,
            customdata=[[r["n"], _num(a), _num(b)] for r, a, b in zip(rows, lo, hi, strict=True)],
            hovertemplate="%{x}: %{y:.2f} (%{customdata[1]:.2f}–%{customdata[2]:.2f}), n = %{customdata[0]:,}<extra></extra>",
        )
    )
    if not is_missing(overall):
        fig.add_hline(y=float(overall), line={"color": MUTED, "dash": "dash", "width": 1},
                      annotation_text=f"all answers {float(overall):.2f}", annotation_position="bottom left",
                      annotation_font={"size": 11, "color": MUTED})  # fmt: skip
    for x, yv in zip(xs, ys, strict=True):
        if yv is None:
            fig.add_annotation(
                x=x, y=0.5, text="no answers", showarrow=False, font={"size": 11, "color": FAINT}
            )
    style(
        fig,
        title,
        height=400,
        subtitle="CSAT (s−1)/4, NPS s/10, CES (s−1)/6 pooled; hollow: fewer answers than the minimum",
    )
    fig.update_yaxes(range=[0, 1.05], tickformat=".1f", title_text="satisfaction (0 = worst, 1 = best)")
    fig.update_xaxes(tickfont={"color": INK, "size": 13}, categoryorder="array", categoryarray=xs)
    fig.update_layout(margin={"t": 96})
    return fig


# -- loyalty ----------------------------------------------------------------------------------------------


def cohort_retention(
    result: Result, title: str | None = "Who buys again: retention by first-purchase month"
) -> go.Figure:
    """``LoyaltyResult.cohorts``: the share of each cohort purchasing again, month by month."""
    go = _go()
    rows = _rows(getattr(result, "cohorts", result.table))
    cohorts = sorted({r["cohort"] for r in rows})
    months = sorted({r["months_since"] for r in rows})
    cell = {(r["cohort"], r["months_since"]): r for r in rows}
    z, text, hover = [], [], []
    for c in cohorts:
        zr, tr, hr = [], [], []
        for m in months:
            r = cell.get((c, m))
            if r is None:
                zr.append(None)
                tr.append("")
                hr.append("")
                continue
            v = _num(r["retention"])
            zr.append(v)
            mark = "" if r.get("complete", True) else "*"
            tr.append("" if v is None else f"{100 * v:.0f}%{mark}")
            hr.append(f"cohort {t(c)}, month +{m}: {r['purchasers']:,} of {r['customers']:,} bought again"
                      + ("" if r.get("complete", True) else " (month not complete)"))  # fmt: skip
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    size = {r["cohort"]: r["customers"] for r in rows}
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"+{m}" for m in months],
            y=[f"{t(c)} · {size[c]:,}" for c in cohorts],
            text=text,
            texttemplate="%{text}",
            textfont={"size": 11},
            hovertext=hover,
            hoverinfo="text",
            colorscale=SEQUENTIAL,
            zmin=0,
            colorbar={
                "title": {"text": "bought again", "side": "right"},
                "tickformat": ".0%",
                "thickness": 12,
                "outlinewidth": 0,
            },
            xgap=2,
            ygap=2,
        )
    )
    style(
        fig,
        title,
        height=max(320, 30 * len(cohorts) + 140),
        subtitle="rows: first-purchase month · customers; *: month not complete",
    )
    fig.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)", tickfont={"color": INK})
    fig.update_xaxes(title_text="months since the first purchase", side="bottom", gridcolor="rgba(0,0,0,0)")
    return fig


# -- content ----------------------------------------------------------------------------------------------


def content_heatmap(result: Result, title: str | None = "Content × phase: who saw what, where") -> go.Figure:
    """``ContentResult.table``: per content type and phase the share of the phase's journeys exposed; a
    frame marks the phases the phase model intends the content for."""
    go = _go()
    rows = _rows(result.table)
    phases = [p for _, p in sorted({(r["phase_index"], r["phase"]) for r in rows})]
    key = "content_type"
    types = sorted(
        {r[key] for r in rows}, key=lambda c: (min(r["phase_index"] for r in rows if r[key] == c), c)
    )
    cell = {(r[key], r["phase"]): r for r in rows}
    z, text, hover = [], [], []
    for c in types:
        zr, tr, hr = [], [], []
        for p in phases:
            r = cell.get((c, p))
            v = _num(r["exposure_share"]) if r else None
            zr.append(v)
            tr.append("" if r is None else f"{r['touchpoints']:,}")
            hr.append(
                ""
                if r is None
                else f"{t(c)} in {t(p)}: {r['exposed']:,} of {r['reached']:,} journeys ({_pct(v)}), {r['touchpoints']:,} touchpoints"
                + (
                    f"<br>moved on {_pct(r.get('moved_on_exposed'))} vs {_pct(r.get('moved_on_unexposed'))} without"
                    if not is_missing(r.get("moved_on_exposed"))
                    else ""
                )
                + ("<br>intended here" if r.get("intended") else "")
            )
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[t(p) for p in phases],
            y=[t(c) for c in types],
            text=text,
            texttemplate="%{text}",
            textfont={"size": 11},
            hovertext=hover,
            hoverinfo="text",
            colorscale=SEQUENTIAL,
            zmin=0,
            xgap=2,
            ygap=2,
            colorbar={
                "title": {"text": "journeys exposed", "side": "right"},
                "tickformat": ".0%",
                "thickness": 12,
                "outlinewidth": 0,
            },
        )  # fmt: skip
    )
    shapes = []
    for i, c in enumerate(types):
        for j, p in enumerate(phases):
            r = cell.get((c, p))
            if r is not None and r.get("intended"):
                shapes.append({"type": "rect", "x0": j - 0.5, "x1": j + 0.5, "y0": i - 0.5, "y1": i + 0.5,
                               "line": {"color": GOOD, "width": 2.5}, "xref": "x", "yref": "y"})  # fmt: skip
    style(fig, title, height=max(360, 26 * len(types) + 150),
          subtitle="colour: share of the phase's journeys that saw it; number: touchpoints; green frame: intended here")  # fmt: skip
    fig.update_layout(shapes=shapes, margin={"l": 140})
    fig.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)", tickfont={"color": INK})
    fig.update_xaxes(side="top", gridcolor="rgba(0,0,0,0)", tickfont={"color": INK, "size": 13})
    return fig


# -- personas ---------------------------------------------------------------------------------------------


def persona_clusters(
    result: Result, title: str | None = "Behavioural personas: clusters of persons"
) -> go.Figure:
    """``PersonasResult``: persons per cluster, stacked by their declared persona (``crosstab``)."""
    go = _go()
    rows = _rows(result.table)
    crosstab = getattr(result, "crosstab", None)
    cross = _rows(crosstab) if crosstab is not None else []
    clusters = [r["cluster"] for r in rows]
    info = {r["cluster"]: r for r in rows}
    personas = sorted(
        {str(r["persona"]) for r in cross},
        key=lambda p: (-sum(c["persons"] for c in cross if str(c["persona"]) == p), p),
    )
    fig = go.Figure()
    for i, p in enumerate(personas):
        mine = {c["cluster"]: c for c in cross if str(c["persona"]) == p}
        fig.add_trace(
            go.Bar(
                name=t(p),
                x=[f"cluster {c}" for c in clusters],
                y=[mine[c]["persons"] if c in mine else 0 for c in clusters],
                marker={
                    "color": FAINT if p == "(unknown)" else SERIES[i % len(SERIES)],
                    "line": {"width": 0},
                },
                customdata=[
                    [_pct(mine[c]["share_of_cluster"]) if c in mine else "0%", t(info[c].get("description"))]
                    for c in clusters
                ],
                hovertemplate="%{x}: %{y:,} "
                + t(p)
                + " (%{customdata[0]} of the cluster)<br>%{customdata[1]}<extra></extra>",
            )
        )
    if not cross:
        fig.add_trace(
            go.Bar(
                x=[f"cluster {c}" for c in clusters],
                y=[info[c]["persons"] for c in clusters],
                marker={"color": ACCENT},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[f"cluster {c}" for c in clusters],
            y=[info[c]["persons"] for c in clusters],
            mode="text",
            text=[f"{_pct(info[c].get('share'))}" for c in clusters],
            textposition="top center",
            showlegend=False,
            hoverinfo="skip",
        )  # fmt: skip
    )
    k = result.extra.get("k")
    ari = result.extra.get("adjusted_rand")
    sub = f"k = {k}" + (
        f"; agreement with declared personas (adjusted Rand) {ari:.2f}" if not is_missing(ari) else ""
    )
    style(fig, title, height=400, subtitle=sub)
    fig.update_layout(barmode="stack", margin={"t": 100})
    fig.update_yaxes(title_text="persons")
    return fig
