"""The journey map as an HTML/CSS component, rendered from a ``JourneyMapResult`` (never recomputed).

Phases are columns (a chevron header with the label and description, then the phase's KPIs); the lanes run
across them: customer questions, touchpoints and channels (volume bars), content used vs intended (chips),
the emotion curve (an inline SVG across the phase columns, with its interval band), pain points and
opportunities (callouts). :func:`render_comparison` puts two maps (two personas) in the same columns.

Every string that comes from data or configuration (touchpoint, channel, persona, content and phase names,
questions, descriptions) goes through ``html.escape``. The markup carries ``data-*`` attributes with the raw
numbers, so that tests (and scripts) can read the figures back from the DOM.

:func:`page` wraps a rendered map in a complete, self-contained HTML document (inline CSS, no scripts, no
fonts or images from the network), which the PNG / PDF export screenshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from journeylens.report.theme import (
    BAD,
    CANVAS,
    FAINT,
    FONT,
    GOOD,
    INK,
    LINE,
    MUTED,
    PAIR,
    PAPER,
    WARN,
    emotion_colour,
    esc,
    fmt_days,
    fmt_int,
    fmt_money,
    fmt_num,
    fmt_pct,
    is_missing,
    phase_colours,
    raw,
    tint,
)

if TYPE_CHECKING:
    from journeylens.analyses.journeymap import JourneyMapComparison, JourneyMapResult

LABEL_W = 138
GAP = 10
MAP_W = 1420  # the width the phase columns share (beyond a few phases the map scrolls)
COL_MIN, COL_MAX = 196, 400
EMOTION_H = 178

CSS = f"""
.jm {{ --ink:{INK}; --muted:{MUTED}; --faint:{FAINT}; --line:{LINE}; --paper:{PAPER}; --canvas:{CANVAS};
  --good:{GOOD}; --warn:{WARN}; --bad:{BAD};
  font-family:{FONT}; color:var(--ink); background:var(--canvas); border-radius:14px; padding:26px 26px 22px;
  box-sizing:border-box; width:max-content; min-width:100%; -webkit-font-smoothing:antialiased; }}
.jm *, .jm *::before, .jm *::after {{ box-sizing:border-box; }}
.jm-head {{ display:flex; justify-content:space-between; align-items:flex-end; gap:24px; margin:0 0 20px; }}
.jm-eyebrow {{ font-size:11px; font-weight:600; letter-spacing:.12em; text-transform:uppercase; color:var(--muted); }}
.jm-title {{ font-size:24px; font-weight:700; margin:4px 0 6px; letter-spacing:-.01em; line-height:1.2; }}
.jm-title .vs {{ color:var(--faint); font-weight:500; margin:0 6px; }}
.jm-meta {{ font-size:12.5px; color:var(--muted); margin:0; line-height:1.5; max-width:720px; }}
.jm-kpis {{ display:flex; gap:10px; flex-wrap:nowrap; }}
.jm-kpi {{ background:var(--paper); border:1px solid var(--line); border-radius:10px; padding:9px 14px 8px; min-width:104px; }}
.jm-kpi .k {{ font-size:10.5px; letter-spacing:.06em; text-transform:uppercase; color:var(--muted); white-space:nowrap; }}
.jm-kpi .v {{ font-size:20px; font-weight:700; margin-top:2px; font-variant-numeric:tabular-nums; white-space:nowrap; }}
.jm-kpi .v small {{ font-size:12px; font-weight:600; color:var(--muted); margin-left:2px; }}
.jm-kpi .ab {{ display:flex; flex-direction:column; gap:1px; }}
.jm-kpi .ab span {{ font-size:15px; font-weight:700; font-variant-numeric:tabular-nums; white-space:nowrap; }}
.jm-grid {{ display:grid; column-gap:{GAP}px; row-gap:10px; align-items:stretch; }}
.jm-lane {{ padding:12px 12px 0 2px; border-top:1px solid var(--line); }}
.jm-lane .name {{ font-size:11px; font-weight:700; letter-spacing:.09em; text-transform:uppercase; color:var(--ink); }}
.jm-lane .hint {{ font-size:11px; color:var(--muted); margin-top:4px; line-height:1.4; }}
.jm-cell {{ background:var(--paper); border:1px solid var(--line); border-radius:10px; padding:11px 12px; min-width:0; }}
.jm-cell.empty {{ display:flex; align-items:center; justify-content:center; color:var(--faint); font-size:12px;
  background:transparent; border:1px dashed #d5dae3; }}
.jm-phase {{ position:relative; color:#fff; padding:14px 30px 14px 22px; min-height:108px; border-radius:4px;
  clip-path:polygon(0 0, calc(100% - 16px) 0, 100% 50%, calc(100% - 16px) 100%, 0 100%, 16px 50%); }}
.jm-phase.first {{ clip-path:polygon(0 0, calc(100% - 16px) 0, 100% 50%, calc(100% - 16px) 100%, 0 100%); border-radius:10px 4px 4px 10px; padding-left:16px; }}
.jm-phase .no {{ font-size:11px; font-weight:700; letter-spacing:.12em; opacity:.75; }}
.jm-phase .label {{ font-size:17px; font-weight:700; margin:2px 0 5px; line-height:1.2; }}
.jm-phase .desc {{ font-size:12px; line-height:1.4; opacity:.92; }}
.jm-stats {{ display:grid; grid-template-columns:1fr 1fr; gap:8px 10px; }}
.jm-stat .k {{ font-size:10.5px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); white-space:nowrap; }}
.jm-stat .v {{ font-size:18px; font-weight:700; font-variant-numeric:tabular-nums; line-height:1.25; white-space:nowrap; }}
.jm-stat .s {{ font-size:11px; color:var(--muted); white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }}
.jm-stat.drop .v {{ color:var(--bad); }}
.jm-stat .track {{ height:4px; background:var(--line); border-radius:2px; margin-top:4px; overflow:hidden; }}
.jm-stat .track i {{ display:block; height:100%; border-radius:2px; }}
.jm-stat .pair {{ display:flex; flex-direction:column; }}
.jm-stat .pair span {{ font-size:14px; font-weight:700; font-variant-numeric:tabular-nums; white-space:nowrap; line-height:1.35; }}
.jm-q {{ margin:0; padding:0; list-style:none; display:flex; flex-direction:column; gap:7px; }}
.jm-q li {{ font-size:12.5px; line-height:1.4; padding-left:12px; border-left:2px solid var(--qc, var(--line)); color:var(--ink); }}
.jm-bars {{ margin:0; padding:0; list-style:none; display:flex; flex-direction:column; gap:8px; }}
.jm-bar .row {{ display:flex; justify-content:space-between; gap:8px; font-size:12.5px; line-height:1.3; }}
.jm-bar .nm {{ overflow:hidden; text-overflow:ellipsis; white-space:nowrap; min-width:0; }}
.jm-bar .ct {{ font-variant-numeric:tabular-nums; color:var(--muted); white-space:nowrap; }}
.jm-bar .track {{ height:6px; background:#eef1f5; border-radius:3px; margin-top:3px; overflow:hidden; }}
.jm-bar .track i {{ display:block; height:100%; border-radius:3px; }}
.jm-bar .track + .track {{ margin-top:2px; }}
.jm-chips {{ display:flex; flex-wrap:wrap; gap:6px; }}
.jm-chip {{ display:inline-flex; align-items:center; gap:6px; font-size:12px; line-height:1.3; padding:3px 9px; border-radius:999px;
  border:1px solid transparent; max-width:100%; }}
.jm-chip .t {{ overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }}
.jm-chip b {{ font-weight:600; font-variant-numeric:tabular-nums; }}
.jm-chip.intended {{ background:#e6f4ea; color:#1e6b30; border-color:#b7dfc1; }}
.jm-chip.not_intended {{ background:#fff4e0; color:#8a4b00; border-color:#f5cf8f; }}
.jm-chip.unused {{ background:transparent; color:var(--muted); border:1px dashed #b9c1cd; }}
.jm-chip .dot {{ width:8px; height:8px; border-radius:50%; display:inline-block; }}
.jm-legend {{ display:flex; flex-direction:column; gap:5px; margin-top:8px; }}
.jm-legend .jm-chip {{ font-size:10.5px; padding:3px 7px; align-self:flex-start; }}
.jm-emotion {{ grid-column:2 / -1; background:var(--paper); border:1px solid var(--line); border-radius:10px; padding:6px 0; }}
.jm-emotion svg {{ display:block; overflow:visible; }}
.jm-callouts {{ display:flex; flex-direction:column; gap:7px; }}
.jm-callout {{ font-size:12px; line-height:1.42; padding:7px 9px 7px 10px; border-radius:7px; border-left:3px solid; overflow-wrap:anywhere; }}
.jm-callout.pain {{ background:#fff0f0; border-color:var(--bad); }}
.jm-callout.opp {{ background:#edf6ff; border-color:#1c7ed6; }}
.jm-callout .tag {{ display:inline-block; font-size:10px; font-weight:700; letter-spacing:.06em; text-transform:uppercase; margin-right:4px; }}
.jm-callout.pain .tag {{ color:var(--bad); }}
.jm-callout.opp .tag {{ color:#1864ab; }}
.jm-who {{ display:inline-flex; align-items:center; gap:8px; font-weight:700; }}
.jm-who i {{ width:14px; height:14px; border-radius:4px; display:inline-block; }}
.jm-foot {{ margin-top:16px; font-size:11px; color:var(--muted); line-height:1.5; }}
"""


def _col_width(n: int) -> int:
    if n <= 0:
        return COL_MAX
    return int(max(COL_MIN, min(COL_MAX, (MAP_W - LABEL_W - GAP * n) / n)))


def _grid_style(n: int) -> tuple[str, int]:
    w = _col_width(n)
    return f"grid-template-columns:{LABEL_W}px repeat({n}, {w}px)", w


def _lane(name: str, hint: str = "", extra: str = "") -> str:
    h = f'<div class="hint">{hint}</div>' if hint else ""
    return f'<div class="jm-lane"><div class="name">{esc(name)}</div>{h}{extra}</div>'


def _phase_headers(phases: list[dict[str, Any]], colours: list[str]) -> str:
    out = ['<div class="jm-corner"></div>']
    for i, p in enumerate(phases):
        first = " first" if i == 0 else ""
        out.append(
            f'<div class="jm-phase{first}" data-phase="{esc(p["phase"])}" style="background:{colours[i]}">'
            f'<div class="no">{i + 1:02d}</div><div class="label">{esc(p["label"])}</div>'
            f'<div class="desc">{esc(p["description"])}</div></div>'
        )
    return "".join(out)


def _stat(
    key: str,
    label: str,
    value: str,
    sub: str,
    raw_value: Any,
    *,
    cls: str = "",
    bar: tuple[float, str] | None = None,
) -> str:
    track = ""
    if bar is not None and not is_missing(bar[0]):
        track = f'<div class="track"><i style="width:{100 * max(0.0, min(1.0, bar[0])):.1f}%;background:{bar[1]}"></i></div>'
    return (
        f'<div class="jm-stat {cls}" data-kpi="{key}" data-value="{raw(raw_value)}">'
        f'<div class="k">{esc(label)}</div><div class="v">{value}</div><div class="s">{sub}</div>{track}</div>'
    )


def _kpi_cells(phases: list[dict[str, Any]], colours: list[str]) -> str:
    out = [_lane("Journeys", "reach, move to the next phase, drop-off, median time in the phase")]
    n = len(phases)
    for i, p in enumerate(phases):
        nxt = phases[i + 1]["label"] if i + 1 < n else None
        stats = [
            _stat(
                "reach",
                "reach",
                fmt_int(p["reach"]),
                f"{fmt_pct(p['reach_share'])} of journeys",
                p["reach"],
                bar=(p["reach_share"] or 0.0, colours[i]),
            ),  # fmt: skip
            _stat(
                "conversion_to_next",
                "to next",
                fmt_pct(p["conversion_to_next"]),
                f"reach {esc(nxt)}" if nxt else "last phase",
                p["conversion_to_next"],
            ),  # fmt: skip
            _stat(
                "drop_off_rate",
                "drop-off",
                fmt_pct(p["drop_off_rate"]),
                f"{fmt_int(p['dropped'])} journeys" if nxt else "last phase",
                p["drop_off_rate"],
                cls="drop",
            ),  # fmt: skip
            _stat(
                "median_days_in_phase",
                "in phase",
                fmt_days(p["median_days_in_phase"]),
                f"median, {fmt_int(p['visited'])} visited",
                p["median_days_in_phase"],
            ),  # fmt: skip
        ]
        out.append(
            f'<div class="jm-cell" data-phase="{esc(p["phase"])}" data-lane="kpis"><div class="jm-stats">{"".join(stats)}</div></div>'
        )
    return "".join(out)


def _questions(phases: list[dict[str, Any]], colours: list[str]) -> str:
    out = [_lane("Customer questions", "what the customer asks in this phase (phase model)")]
    for i, p in enumerate(phases):
        qs = p["questions"] or []
        if not qs:
            out.append(
                f'<div class="jm-cell empty" data-phase="{esc(p["phase"])}" data-lane="questions">no questions in the model</div>'
            )
            continue
        items = "".join(f"<li>{esc(q)}</li>" for q in qs)
        out.append(
            f'<div class="jm-cell" data-phase="{esc(p["phase"])}" data-lane="questions">'
            f'<ul class="jm-q" style="--qc:{tint(colours[i], 0.45)}">{items}</ul></div>'
        )
    return "".join(out)


def _bars(rows: list[dict[str, Any]], scale: float, colour: str, level: str) -> str:
    items = []
    for r in rows:
        width = 100 * r["touchpoints"] / scale if scale else 0
        items.append(
            f'<li class="jm-bar" data-level="{level}" data-value="{esc(r["value"])}" data-touchpoints="{r["touchpoints"]}">'
            f'<div class="row"><span class="nm" title="{esc(r["value"])}">{esc(r["value"])}</span>'
            f'<span class="ct">{fmt_int(r["touchpoints"])}</span></div>'
            f'<div class="track"><i style="width:{max(width, 1.5):.1f}%;background:{colour}"></i></div></li>'
        )
    return f'<ul class="jm-bars">{"".join(items)}</ul>'


def _volume_lane(
    result: JourneyMapResult, phases: list[dict[str, Any]], colours: list[str], level: str
) -> str:
    rows = [r for r in result.touchpoints.to_pylist() if r["level"] == level]
    scale = max((r["touchpoints"] for r in rows), default=0)
    title = "Touchpoints" if level == "touchpoint" else "Channels"
    out = [_lane(title, f"the busiest {result.spec.top} per phase; bars share one scale across phases")]
    for i, p in enumerate(phases):
        mine = [r for r in rows if r["phase_index"] == i]
        lane = f"{level}s"
        if not mine:
            out.append(
                f'<div class="jm-cell empty" data-phase="{esc(p["phase"])}" data-lane="{lane}">no touchpoints</div>'
            )
            continue
        out.append(
            f'<div class="jm-cell" data-phase="{esc(p["phase"])}" data-lane="{lane}">{_bars(mine, scale, colours[i], level)}</div>'
        )
    return "".join(out)


def _chip(c: dict[str, Any]) -> str:
    count = f" <b>{fmt_int(c['touchpoints'])}</b>" if c["status"] != "unused" else ""
    title = {
        "intended": "used, and intended for this phase",
        "not_intended": "used, but not intended for this phase"
        + (f" (intended for {', '.join(c['intended_phases'])})" if c["intended_phases"] else ""),
        "unused": "intended for this phase, not seen",
    }[c["status"]]
    return (
        f'<span class="jm-chip {c["status"]}" data-content="{esc(c["content_type"])}" data-status="{c["status"]}" '
        f'title="{esc(title)}"><span class="t">{esc(c["content_type"])}</span>{count}</span>'
    )


CONTENT_LEGEND = (
    '<div class="jm-legend"><span class="jm-chip intended">used, intended</span>'
    '<span class="jm-chip not_intended">used, not intended</span>'
    '<span class="jm-chip unused">intended, unused</span></div>'
)


def _content_lane(result: JourneyMapResult, phases: list[dict[str, Any]]) -> str:
    rows = result.content.to_pylist()
    out = [_lane("Content", "content types seen vs intended", CONTENT_LEGEND)]
    for i, p in enumerate(phases):
        mine = [c for c in rows if c["phase_index"] == i]
        if not mine:
            out.append(
                f'<div class="jm-cell empty" data-phase="{esc(p["phase"])}" data-lane="content">no content</div>'
            )
            continue
        chips = "".join(_chip(c) for c in mine)
        out.append(
            f'<div class="jm-cell" data-phase="{esc(p["phase"])}" data-lane="content"><div class="jm-chips">{chips}</div></div>'
        )
    return "".join(out)


def _callouts(items: list[tuple[str, str, str, str]], phase: str, lane: str) -> str:
    """items: (css kind, tag, text, data-kind)"""
    if not items:
        return f'<div class="jm-cell empty" data-phase="{esc(phase)}" data-lane="{lane}">none</div>'
    body = "".join(
        f'<div class="jm-callout {kind}" data-kind="{esc(data)}"><span class="tag">{tag}</span>{text}</div>'
        for kind, tag, text, data in items
    )
    return f'<div class="jm-cell" data-phase="{esc(phase)}" data-lane="{lane}"><div class="jm-callouts">{body}</div></div>'


PAIN_TAGS = {"low_satisfaction": "low score", "drop_off": "drop-off"}
OPP_TAGS = {
    "intended_unused": "content gap",
    "misplaced_content": "content",
    "low_satisfaction": "improve",
    "drop_off": "keep them",
    "no_feedback": "unknown",
    "slow_phase": "speed up",
}


def _pain_lane(
    results: Sequence[JourneyMapResult], phases: list[dict[str, Any]], tags: Sequence[str] = ("",)
) -> str:
    out = [_lane("Pain points", "least satisfied steps (enough answers), biggest drop-offs")]
    for i, p in enumerate(phases):
        items = []
        for tag, r in zip(tags, results, strict=True):
            for x in r.pain_points.to_pylist():
                if x["phase_index"] == i:
                    items.append(
                        ("pain", tag + esc(PAIN_TAGS.get(x["kind"], x["kind"])), esc(x["text"]), x["kind"])
                    )
        out.append(_callouts(items, p["phase"], "pain_points"))
    return "".join(out)


def _opp_lane(
    results: Sequence[JourneyMapResult], phases: list[dict[str, Any]], tags: Sequence[str] = ("",)
) -> str:
    out = [_lane("Opportunities", "derived by fixed rules from the lanes above")]
    for i, p in enumerate(phases):
        items = []
        for tag, r in zip(tags, results, strict=True):
            for x in r.opportunities.to_pylist():
                if x["phase_index"] == i:
                    items.append(
                        ("opp", tag + esc(OPP_TAGS.get(x["rule"], x["rule"])), esc(x["text"]), x["rule"])
                    )
        out.append(_callouts(items, p["phase"], "opportunities"))
    return "".join(out)


# -- the emotion curve ------------------------------------------------------------------------------------


def _smooth(points: list[tuple[float, float]]) -> str:
    """An SVG path through the points: cubic segments with horizontal tangents (no vertical overshoot)."""
    if not points:
        return ""
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        mx = (x0 + x1) / 2
        d.append(f"C{mx:.1f},{y0:.1f} {mx:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
    return " ".join(d)


def _or(value: Any, default: float) -> float:
    return default if is_missing(value) else float(value)


def _runs(values: list[float | None]) -> list[list[int]]:
    runs: list[list[int]] = []
    cur: list[int] = []
    for i, v in enumerate(values):
        if is_missing(v):
            if cur:
                runs.append(cur)
            cur = []
        else:
            cur.append(i)
    if cur:
        runs.append(cur)
    return runs


def _emotion_svg(
    series: Sequence[tuple[list[dict[str, Any]], str | None, str]],
    overall: Sequence[float],
    n: int,
    col_w: int,
) -> str:
    """series: (phase rows, fixed colour or None for the emotion scale, data-series name)."""
    width = n * col_w + (n - 1) * GAP
    top, bottom = 26, 30
    h = EMOTION_H
    plot_h = h - top - bottom

    def y(v: float) -> float:
        return top + (1.0 - max(0.0, min(1.0, v))) * plot_h

    def x(i: int) -> float:
        return i * (col_w + GAP) + col_w / 2

    parts = [
        f'<svg width="{width}" height="{h}" viewBox="0 0 {width} {h}" role="img" aria-label="emotion curve">'
    ]
    for v, label in ((1.0, "1.0 · very satisfied"), (0.5, "0.5"), (0.0, "0 · very unsatisfied")):
        parts.append(
            f'<line x1="0" x2="{width}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="{LINE}" stroke-width="1"/>'
        )
        parts.append(f'<text x="8" y="{y(v) - 4:.1f}" font-size="10" fill="{FAINT}">{label}</text>')
    for i in range(1, n):
        xs = i * (col_w + GAP) - GAP / 2
        parts.append(
            f'<line x1="{xs:.1f}" x2="{xs:.1f}" y1="{top - 8}" y2="{h - bottom + 6}" stroke="{LINE}" stroke-dasharray="2 4"/>'
        )
    many = len(series) > 1
    for k, ov in enumerate(overall):
        if is_missing(ov):
            continue
        colour = series[k][1] or MUTED
        parts.append(
            f'<line x1="0" x2="{width}" y1="{y(ov):.1f}" y2="{y(ov):.1f}" stroke="{colour}" stroke-opacity=".55" '
            f'stroke-width="1" stroke-dasharray="5 4"/>'
        )
        parts.append(
            f'<text x="8" y="{y(ov) - 4 + (14 if many and k == 1 else 0):.1f}" font-size="10" text-anchor="start" '
            f'fill="{colour}">whole journey {ov:.2f}</text>'
        )
    for k, (rows, fixed, name) in enumerate(series):
        values = [r["emotion"] for r in rows]
        band_colour = fixed or "#7c8da6"
        # the band: only where the interval rests on enough answers (a thin one would dwarf the curve)
        solid = [None if r["emotion_too_thin"] else r["emotion"] for r in rows]
        for run in _runs(solid):
            lows = [_or(rows[i]["emotion_low"], values[i]) for i in run]
            highs = [_or(rows[i]["emotion_high"], values[i]) for i in run]
            upper = [(x(i), y(hv)) for i, hv in zip(run, highs, strict=True)]
            lower = [(x(i), y(lv)) for i, lv in zip(run, lows, strict=True)]
            if len(run) == 1:
                (ux, uy), (_, ly) = upper[0], lower[0]
                parts.append(
                    f'<rect x="{ux - 16:.1f}" y="{uy:.1f}" width="32" height="{max(ly - uy, 0):.1f}" rx="6" fill="{band_colour}" fill-opacity=".16"/>'
                )
            else:
                back = _smooth(lower[::-1]).replace("M", "L", 1)
                parts.append(
                    f'<path d="{_smooth(upper)} {back} Z" fill="{band_colour}" fill-opacity=".16" stroke="none"/>'
                )
        # the line: solid between phases with enough answers, dashed where either end is thin
        for run in _runs(values):
            for i0, i1 in zip(run, run[1:], strict=False):
                seg = _smooth([(x(i0), y(values[i0])), (x(i1), y(values[i1]))])
                thin = rows[i0]["emotion_too_thin"] or rows[i1]["emotion_too_thin"]
                dash = ' stroke-dasharray="5 5"' if thin else ""
                parts.append(
                    f'<path d="{seg}" fill="none" stroke="{fixed or INK}" stroke-width="2.5" stroke-linecap="round"{dash}/>'
                )
        for i, r in enumerate(rows):
            cx = x(i)
            v = r["emotion"]
            phase = esc(r["phase"])
            if is_missing(v):
                if k == 0:
                    parts.append(
                        f'<g data-series="{esc(name)}" data-phase="{phase}" data-value="" data-n="{r["emotion_n"]}">'
                        f'<circle cx="{cx:.1f}" cy="{y(0.5):.1f}" r="5" fill="{PAPER}" stroke="{FAINT}" stroke-dasharray="2 2"/>'
                        f'<text x="{cx:.1f}" y="{y(0.5) + 20:.1f}" font-size="11" text-anchor="middle" fill="{FAINT}">no answers</text></g>'
                    )
                continue
            colour = fixed or emotion_colour(v)
            thin = bool(r["emotion_too_thin"])
            fill = PAPER if thin else colour
            if many:  # A's label above and to the left of its marker, B's below and to the right
                tx, ty, anchor = (cx - 10, y(v) - 11, "end") if k == 0 else (cx + 10, y(v) + 19, "start")
            else:
                tx, ty, anchor = cx, y(v) - 13, "middle"
            label = f"{v:.2f}"
            parts.append(
                f'<g data-series="{esc(name)}" data-phase="{phase}" data-value="{raw(v)}" data-n="{r["emotion_n"]}">'
                f'<circle cx="{cx:.1f}" cy="{y(v):.1f}" r="7" fill="{fill}" stroke="{colour if thin else PAPER}" stroke-width="2.5"/>'
                f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="12" font-weight="700" text-anchor="{anchor}" fill="{colour if fixed else INK}" '
                f'paint-order="stroke" stroke="{PAPER}" stroke-width="3">{label}</text></g>'
            )
        for i, r in enumerate(rows):
            thin = " · too few" if r["emotion_too_thin"] and r["emotion_n"] else ""
            if not r["emotion_n"]:
                continue
            dx = 0 if not many else (-34 if k == 0 else 34)
            parts.append(
                f'<text x="{x(i) + dx:.1f}" y="{h - 10}" font-size="10.5" text-anchor="middle" fill="{fixed or MUTED}">'
                f"n = {fmt_int(r['emotion_n'])}{thin}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _emotion_lane(
    series: Sequence[tuple[list[dict[str, Any]], str | None, str]],
    overall: Sequence[float],
    n: int,
    col_w: int,
    hint: str,
) -> str:
    return (
        _lane("Emotion", hint)
        + f'<div class="jm-emotion" data-lane="emotion">{_emotion_svg(series, overall, n, col_w)}</div>'
    )


# -- the header -------------------------------------------------------------------------------------------


def _period(result: JourneyMapResult) -> str:
    start, end = result.period
    if start is None:
        return "no journeys"
    return f"{start:%d %b %Y} – {end:%d %b %Y}"


def _head(eyebrow: str, title: str, meta: str, kpis: str) -> str:
    return (
        f'<header class="jm-head"><div><div class="jm-eyebrow">{eyebrow}</div>'
        f'<h2 class="jm-title">{title}</h2><p class="jm-meta">{meta}</p></div>'
        f'<div class="jm-kpis">{kpis}</div></header>'
    )


MAP_KPIS = (
    ("journeys", "journeys", fmt_int),
    ("conversion_rate", "converted", fmt_pct),
    ("median_contacts_to_conversion", "contacts to buy", lambda v: fmt_num(v, 0)),
    ("median_days_to_conversion", "days to buy", fmt_days),
    ("revenue", "revenue", fmt_money),
    ("emotion", "satisfaction", lambda v: fmt_num(v, 2)),
)


def _map_kpis(result: JourneyMapResult) -> str:
    values = {r["metric"]: r for r in result.kpis.to_pylist()}
    out = []
    for key, label, fmt in MAP_KPIS:
        r = values.get(key)
        if r is None:
            continue
        unit = " <small>(0–1)</small>" if key == "emotion" else ""
        out.append(
            f'<div class="jm-kpi" data-kpi="{key}" data-value="{raw(r["value"])}"><div class="k">{esc(label)}</div>'
            f'<div class="v">{fmt(r["value"])}{unit}</div></div>'
        )
    return "".join(out)


def _meta(result: JourneyMapResult) -> str:
    k = {r["metric"]: r["value"] for r in result.kpis.to_pylist()}
    return (
        f"{fmt_int(k.get('journeys'))} {esc(result.spec.journey_type)} journeys of {fmt_int(k.get('persons'))} persons, "
        f"starting {_period(result)} · phase model {esc(result.model)} · filters: {esc(result.spec.filters.describe())}"
    )


FOOT = (
    "Reach counts the journeys with a touchpoint in the phase or a later one; to next = reach of the next phase / "
    "reach. Emotion: mean satisfaction normalised to 0–1 (CSAT (s−1)/4, NPS s/10, CES (s−1)/6), 95% t interval; "
    "a hollow marker has fewer answers than {min_n}."
)


def render(result: JourneyMapResult) -> str:
    """One journey map as an HTML fragment (a ``<section class="jm">``; put :data:`CSS` on the page)."""
    phases = result.table.to_pylist()
    n = len(phases)
    colours = phase_colours(n)
    grid, col_w = _grid_style(n)
    who = result.spec.persona or "All personas"
    head = _head(
        f"Journey map · {esc(result.model)}",
        f"{esc(who)} <span class='vs'>·</span> {esc(result.spec.journey_type)} journeys",
        _meta(result),
        _map_kpis(result),
    )
    body = [
        _phase_headers(phases, colours),
        _kpi_cells(phases, colours),
        _questions(phases, colours),
        _volume_lane(result, phases, colours, "touchpoint"),
        _volume_lane(result, phases, colours, "channel"),
        _content_lane(result, phases),
        _emotion_lane(
            [(phases, None, who)],
            [result.overall_emotion],
            n,
            col_w,
            "mean satisfaction (0–1) with its 95% interval; dashed: the whole journey",
        ),  # fmt: skip
        _pain_lane([result], phases),
        _opp_lane([result], phases),
    ]
    persona = esc(result.spec.persona or "")
    return (
        f'<section class="jm" data-map="single" data-persona="{persona}" data-journey-type="{esc(result.spec.journey_type)}">'
        f'{head}<div class="jm-grid" style="{grid}">{"".join(body)}</div>'
        f'<div class="jm-foot">{esc(FOOT.format(min_n=result.spec.min_n))}</div></section>'
    )


# -- two maps side by side --------------------------------------------------------------------------------


def _who_tag(label: str, colour: str) -> str:
    return f'<span class="jm-who"><i style="background:{colour}"></i>{esc(label)}</span>'


def _pair_stat(key: str, label: str, a: Any, b: Any, fmt: Any) -> str:
    return (
        f'<div class="jm-stat" data-kpi="{key}" data-value-a="{raw(a)}" data-value-b="{raw(b)}">'
        f'<div class="k">{esc(label)}</div><div class="pair">'
        f'<span style="color:{PAIR[0]}">{fmt(a)}</span><span style="color:{PAIR[1]}">{fmt(b)}</span></div></div>'
    )


def _compare_kpis(table: list[dict[str, Any]]) -> str:
    out = [
        _lane(
            "Journeys",
            "reach (share of journeys), to next phase, drop-off, median days in phase; top: A, bottom: B",
        )
    ]
    for r in table:
        stats = [
            _pair_stat("reach_share", "reach", r["reach_share_a"], r["reach_share_b"], fmt_pct),
            _pair_stat(
                "conversion_to_next", "to next", r["conversion_to_next_a"], r["conversion_to_next_b"], fmt_pct
            ),
            _pair_stat("drop_off_rate", "drop-off", r["drop_off_rate_a"], r["drop_off_rate_b"], fmt_pct),
            _pair_stat(
                "median_days_in_phase",
                "in phase",
                r["median_days_in_phase_a"],
                r["median_days_in_phase_b"],
                fmt_days,
            ),
        ]
        out.append(
            f'<div class="jm-cell" data-phase="{esc(r["phase"])}" data-lane="kpis"><div class="jm-stats">{"".join(stats)}</div></div>'
        )
    return "".join(out)


def _compare_volumes(
    a: JourneyMapResult, b: JourneyMapResult, phases: list[dict[str, Any]], level: str, top: int
) -> str:
    ra = [r for r in a.touchpoints.to_pylist() if r["level"] == level]
    rb = [r for r in b.touchpoints.to_pylist() if r["level"] == level]
    title = "Touchpoints" if level == "touchpoint" else "Channels"
    out = [_lane(title, "share of the phase's touchpoints; top bar A, bottom bar B")]
    for i, p in enumerate(phases):
        sa = {r["value"]: r for r in ra if r["phase_index"] == i}
        sb = {r["value"]: r for r in rb if r["phase_index"] == i}
        names = sorted(
            set(sa) | set(sb),
            key=lambda v: -((sa[v]["share"] if v in sa else 0) + (sb[v]["share"] if v in sb else 0)),
        )[:top]
        if not names:
            out.append(
                f'<div class="jm-cell empty" data-phase="{esc(p["phase"])}" data-lane="{level}s">no touchpoints</div>'
            )
            continue
        items = []
        for v in names:
            xa, xb = sa.get(v), sb.get(v)
            shares = f"{fmt_pct(xa['share']) if xa else '–'} / {fmt_pct(xb['share']) if xb else '–'}"
            tracks = "".join(
                f'<div class="track"><i style="width:{100 * (x["share"] if x else 0):.1f}%;background:{c}"></i></div>'
                for x, c in ((xa, PAIR[0]), (xb, PAIR[1]))
            )
            items.append(
                f'<li class="jm-bar" data-level="{level}" data-value="{esc(v)}" data-share-a="{raw(xa["share"]) if xa else ""}" '
                f'data-share-b="{raw(xb["share"]) if xb else ""}"><div class="row"><span class="nm" title="{esc(v)}">{esc(v)}</span>'
                f'<span class="ct">{shares}</span></div>{tracks}</li>'
            )
        out.append(
            f'<div class="jm-cell" data-phase="{esc(p["phase"])}" data-lane="{level}s"><ul class="jm-bars">{"".join(items)}</ul></div>'
        )
    return "".join(out)


def _compare_content(a: JourneyMapResult, b: JourneyMapResult, phases: list[dict[str, Any]]) -> str:
    ca, cb = a.content.to_pylist(), b.content.to_pylist()
    legend = '<div class="hint">a filled dot: used by that side</div>' + CONTENT_LEGEND
    out = [_lane("Content", "content types seen vs intended", legend)]
    rank = {"intended": 0, "not_intended": 1, "unused": 2}
    for i, p in enumerate(phases):
        sa = {c["content_type"]: c for c in ca if c["phase_index"] == i}
        sb = {c["content_type"]: c for c in cb if c["phase_index"] == i}
        names = list(dict.fromkeys([*sa, *sb]))
        if not names:
            out.append(
                f'<div class="jm-cell empty" data-phase="{esc(p["phase"])}" data-lane="content">no content</div>'
            )
            continue
        chips = []
        for ct in sorted(names, key=lambda c: min(rank[x["status"]] for x in (sa.get(c), sb.get(c)) if x)):
            xa, xb = sa.get(ct), sb.get(ct)
            status = min((x["status"] for x in (xa, xb) if x), key=lambda s: rank[s])
            dots = "".join(
                f'<span class="dot" style="background:{c if x and x["status"] != "unused" else "transparent"};'
                f'border:1.5px solid {c}"></span>'
                for x, c in ((xa, PAIR[0]), (xb, PAIR[1]))
            )
            used_a = bool(xa and xa["status"] != "unused")
            used_b = bool(xb and xb["status"] != "unused")
            chips.append(
                f'<span class="jm-chip {status}" data-content="{esc(ct)}" data-status="{status}" '
                f'data-used-a="{str(used_a).lower()}" data-used-b="{str(used_b).lower()}">'
                f'<span class="t">{esc(ct)}</span>{dots}</span>'
            )
        out.append(
            f'<div class="jm-cell" data-phase="{esc(p["phase"])}" data-lane="content"><div class="jm-chips">{"".join(chips)}</div></div>'
        )
    return "".join(out)


def render_comparison(cmp: JourneyMapComparison) -> str:
    """Two journey maps in the same phase columns: A (blue) and B (orange)."""
    a, b = cmp.a, cmp.b
    la, lb = cmp.labels
    phases = a.table.to_pylist()
    table = cmp.table.to_pylist()
    n = len(phases)
    colours = phase_colours(n)
    grid, col_w = _grid_style(n)
    ka = {r["metric"]: r["value"] for r in a.kpis.to_pylist()}
    kb = {r["metric"]: r["value"] for r in b.kpis.to_pylist()}
    kpis = []
    for key, label, fmt in MAP_KPIS:
        kpis.append(
            f'<div class="jm-kpi" data-kpi="{key}" data-value-a="{raw(ka.get(key))}" data-value-b="{raw(kb.get(key))}">'
            f'<div class="k">{esc(label)}</div><div class="ab"><span style="color:{PAIR[0]}">{fmt(ka.get(key))}</span>'
            f'<span style="color:{PAIR[1]}">{fmt(kb.get(key))}</span></div></div>'
        )
    title = f"{_who_tag(la, PAIR[0])} <span class='vs'>vs</span> {_who_tag(lb, PAIR[1])}"
    meta = (
        f"{esc(a.spec.journey_type)} journeys · A: {fmt_int(ka.get('journeys'))} journeys, B: {fmt_int(kb.get('journeys'))} "
        f"journeys · phase model {esc(a.model)} · filters: {esc(a.spec.filters.describe())}"
    )
    head = _head(f"Journey map comparison · {esc(a.model)}", title, meta, "".join(kpis))
    tags = (f'<span style="color:{PAIR[0]}">A</span> ', f'<span style="color:{PAIR[1]}">B</span> ')
    body = [
        _phase_headers(phases, colours),
        _compare_kpis(table),
        _questions(phases, colours),
        _compare_volumes(a, b, phases, "touchpoint", a.spec.top),
        _compare_volumes(a, b, phases, "channel", a.spec.top),
        _compare_content(a, b, phases),
        _emotion_lane(
            [(a.table.to_pylist(), PAIR[0], la), (b.table.to_pylist(), PAIR[1], lb)],
            [a.overall_emotion, b.overall_emotion],
            n,
            col_w,
            "mean satisfaction (0–1) with 95% intervals, A and B",
        ),
        _pain_lane([a, b], phases, tags),
        _opp_lane([a, b], phases, tags),
    ]
    return (
        f'<section class="jm" data-map="comparison" data-persona-a="{esc(a.spec.persona or "")}" '
        f'data-persona-b="{esc(b.spec.persona or "")}">{head}<div class="jm-grid" style="{grid}">{"".join(body)}</div>'
        f'<div class="jm-foot">{esc(FOOT.format(min_n=a.spec.min_n))}</div></section>'
    )


def page(body: str, title: str) -> str:
    """A complete HTML document around a rendered map (inline CSS only; nothing loaded from the network)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"<style>html,body{{margin:0;background:{PAPER}}} body{{padding:24px;width:max-content}}{CSS}</style></head>"
        f"<body>{body}</body></html>"
    )


def map_width(n_phases: int) -> int:
    """The map's width in CSS pixels (for a screenshot's viewport)."""
    return LABEL_W + n_phases * (_col_width(n_phases) + GAP) + 2 * 26 + 2 * 24


__all__ = ["CSS", "map_width", "page", "render", "render_comparison"]
