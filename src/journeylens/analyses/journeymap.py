"""The journey map's data twin: per phase, everything a journey map shows, as numbers.

Usage::

    result = run(ws, JourneyMapSpec(persona="low_involvement"))
    result.table          # one row per phase, in model order: label, description, questions, intended content,
                          # reach, conversion to the next phase, drop-off, median days in phase, emotion
    result.touchpoints    # per phase the busiest touchpoints and channels (volumes)
    result.content        # per phase the content types used vs intended
    result.pain_points    # least satisfied steps, biggest drop-offs
    result.opportunities  # derived text rules
    result.kpis           # the headline figures of the map
    cmp = compare(ws, JourneyMapSpec(persona="low_involvement"), JourneyMapSpec(persona="high_involvement"))

``journeylens.report.journeymap`` renders a result; it never computes anything itself.

**Which journeys.** The journeys of type ``journey_type`` (default ``purchase``) of persons with persona
``persona`` (all persons when None) that pass ``filters``. The phase model is ``model`` or, by default, the one
the workspace was last built with (its stored phases are used; another model classifies the touchpoints on the
fly, carried forward within each journey, as the build does).

**Per phase** (all per-event work in the engine; only per-phase aggregates come back):

- ``reach``: the journeys that reached the phase: a touchpoint in it *or in a later phase* (phases are a
  progression; the phase funnel counts the same way). ``reach_share`` = reach / all the map's journeys.
- ``visited``: the journeys with a touchpoint in exactly this phase; ``median_days_in_phase`` is the median of
  their time in it (``journey_phases.seconds_in_phase``, in days: from entering the phase to entering the next
  one, or to the phase's last touchpoint).
- ``conversion_to_next`` = reach of the next phase / reach; ``dropped`` = reach − reach of the next phase;
  ``drop_off_rate`` = dropped / reach. The last phase has none of the three.
- ``touchpoints``: the touchpoints in the phase. The ``touchpoints`` table holds the ``top`` busiest
  touchpoints and channels of each phase with their touchpoints, journeys and ``share`` of the phase's
  touchpoints.
- **Content** (``content``): per phase and content type, ``status`` is ``intended`` (seen and listed in the
  phase's ``intended_content``), ``not_intended`` (seen, not listed: *used but not intended*) or ``unused``
  (listed, not seen: *intended but unused*; touchpoints 0).
- **Emotion**: the mean satisfaction of the answers that rate a step of the phase, normalised to 0–1 per
  scale so that scales pool: CSAT (s − 1) / 4, NPS s / 10, CES (s − 1) / 6 (7 = very easy, so higher is
  better on every scale). ``emotion_low`` / ``emotion_high`` is the Student t interval at ``confidence``,
  ``emotion_n`` the answers; ``emotion_too_thin`` below ``min_n``. Which step an answer rates is the rule of
  ``journeylens.analyses.satisfaction`` (a survey answer rates the touchpoint its ``about`` property names,
  else the step before it in its journey), so the map's emotion equals the satisfaction analysis's emotion
  curve on the same journeys. With a phase model other than the built one, an answer counts for its own
  phase (a survey is neutral and carries the phase of the step before it).

**Pain points** (``pain_points``): ``low_satisfaction``: the ``top`` least satisfied steps (phase and rated
touchpoint) with at least ``min_n`` answers whose mean lies at least 0.01 below the map's overall emotion;
``drop_off``: the phases (not the last) with at least ``min_n`` journeys whose drop-off rate is the highest,
at most two, when over 0.

**Opportunities** (``opportunities``), text derived by fixed rules, in this order:

- ``intended_unused``: the content types a phase intends but no touchpoint in it used (one per phase that
  journeys reach);
- ``misplaced_content``: a content type the phase does not intend that makes up at least 10% of the phase's
  content touchpoints (naming the phases that do intend it, if any);
- ``drop_off``: the biggest drop-off, with the content intended for the phase;
- ``no_feedback``: a phase with fewer than ``min_n`` satisfaction answers (what we do not know yet);
- ``slow_phase``: the phase with the longest median time, when it is at least twice the median of the others.

**KPIs** (``kpis``): journeys, persons, converted journeys and the conversion rate, the median contact number
and days of the conversion (over converted journeys), revenue, and the overall emotion with its answers.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from pydantic import Field

from journeylens.analyses import stats
from journeylens.analyses.base import Filters, Result, Spec, execute
from journeylens.errors import SpecError

if TYPE_CHECKING:
    from journeylens.journeys.models.phase_model import PhaseModel
    from journeylens.store import Workspace

SECONDS_PER_DAY = 86_400
#: a content type not intended for a phase is an opportunity from this share of the phase's content on
MISPLACED_SHARE = 0.10
#: at most this many drop-off pain points
DROP_OFF_PAIN_POINTS = 2
#: a low-satisfaction pain point lies at least this far below the overall emotion (visible at two decimals)
PAIN_MARGIN = 0.01


class JourneyMapSpec(Spec):
    """One journey map: a persona's (or everyone's) journeys of one type, through the phases of a model."""

    kind: ClassVar[str] = "journey_map"

    model: str | None = Field(default=None, description="phase model (default: the one of the last build)")
    persona: str | None = Field(default=None, description="persons of this persona (None: everyone)")
    journey_type: str = Field(default="purchase", min_length=1)
    top: int = Field(default=5, ge=1, le=50, description="touchpoints, channels and pain points per phase")
    min_n: int = Field(default=30, ge=1, description="fewer answers / journeys than this are too thin")
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    survey_touchpoints: list[str] = Field(default=["survey_response"], min_length=1)
    filters: Filters = Filters()

    def effective_filters(self) -> Filters:
        """``filters`` narrowed to the persona and journey type (an empty intersection is a SpecError)."""
        f = self.filters
        update: dict[str, Any] = {"journey_types": [self.journey_type]}
        if f.journey_types and self.journey_type not in f.journey_types:
            raise SpecError(
                f"journey_map: journey_type '{self.journey_type}' is not among filters.journey_types "
                f"({', '.join(f.journey_types)}); leave one of them out",
                code="empty_selection",
            )
        if self.persona is not None:
            if f.personas and self.persona not in f.personas:
                raise SpecError(
                    f"journey_map: persona '{self.persona}' is not among filters.personas "
                    f"({', '.join(f.personas)}); leave one of them out",
                    code="empty_selection",
                )
            update["personas"] = [self.persona]
        return f.model_copy(update=update)

    @property
    def title(self) -> str:
        who = self.persona or "all personas"
        return f"{who} · {self.journey_type} journeys"


PHASE_COLUMNS = [
    ("phase", pa.string()),
    ("phase_index", pa.int64()),
    ("label", pa.string()),
    ("description", pa.string()),
    ("questions", pa.list_(pa.string())),
    ("intended_content", pa.list_(pa.string())),
    ("reach", pa.int64()),
    ("reach_share", pa.float64()),
    ("visited", pa.int64()),
    ("conversion_to_next", pa.float64()),
    ("dropped", pa.int64()),
    ("drop_off_rate", pa.float64()),
    ("median_days_in_phase", pa.float64()),
    ("touchpoints", pa.int64()),
    ("emotion", pa.float64()),
    ("emotion_low", pa.float64()),
    ("emotion_high", pa.float64()),
    ("emotion_n", pa.int64()),
    ("emotion_too_thin", pa.bool_()),
]
TOUCHPOINT_COLUMNS = [
    ("phase", pa.string()),
    ("phase_index", pa.int64()),
    ("level", pa.string()),  # touchpoint | channel
    ("value", pa.string()),
    ("rank", pa.int64()),
    ("touchpoints", pa.int64()),
    ("journeys", pa.int64()),
    ("share", pa.float64()),
]
CONTENT_COLUMNS = [
    ("phase", pa.string()),
    ("phase_index", pa.int64()),
    ("content_type", pa.string()),
    ("touchpoints", pa.int64()),
    ("journeys", pa.int64()),
    ("share", pa.float64()),
    ("status", pa.string()),  # intended | not_intended | unused
    ("intended_phases", pa.list_(pa.string())),
]
PAIN_COLUMNS = [
    ("phase", pa.string()),
    ("phase_index", pa.int64()),
    ("kind", pa.string()),  # low_satisfaction | drop_off
    ("subject", pa.string()),
    ("value", pa.float64()),
    ("low", pa.float64()),
    ("high", pa.float64()),
    ("n", pa.int64()),
    ("text", pa.string()),
]
OPPORTUNITY_COLUMNS = [
    ("phase", pa.string()),
    ("phase_index", pa.int64()),
    ("rule", pa.string()),
    ("subject", pa.string()),
    ("text", pa.string()),
]
KPI_COLUMNS = [("metric", pa.string()), ("label", pa.string()), ("value", pa.float64()), ("n", pa.int64())]


class JourneyMapResult(Result):
    """``table``: one row per phase; ``touchpoints``, ``content``, ``pain_points``, ``opportunities``, ``kpis``."""

    spec: JourneyMapSpec

    def __init__(
        self,
        spec: JourneyMapSpec,
        table: pa.Table,
        *,
        touchpoints: pa.Table,
        content: pa.Table,
        pain_points: pa.Table,
        opportunities: pa.Table,
        kpis: pa.Table,
        extra: dict[str, Any],
        sql: str = "",
    ) -> None:
        super().__init__(spec, table, sql=sql, extra=extra)
        self.touchpoints = touchpoints
        self.content = content
        self.pain_points = pain_points
        self.opportunities = opportunities
        self.kpis = kpis

    @property
    def model(self) -> str:
        """The phase model's name."""
        return str(self.extra["model"])

    @property
    def model_description(self) -> str:
        return str(self.extra.get("model_description") or "")

    @property
    def phases(self) -> list[str]:
        return list(self.table["phase"].to_pylist())

    @property
    def overall_emotion(self) -> float:
        """The mean normalised satisfaction of all the map's answers (nan without answers)."""
        return float(self.extra["overall_emotion"])

    @property
    def period(self) -> tuple[datetime | None, datetime | None]:
        """The first journey start and the last touchpoint of the map's journeys."""
        return self.extra.get("period_start"), self.extra.get("period_end")

    def kpi(self, metric: str) -> float:
        """One KPI by name, e.g. ``result.kpi("conversion_rate")`` (nan when it has no value)."""
        for r in self.kpis.to_pylist():
            if r["metric"] == metric:
                return float("nan") if r["value"] is None else float(r["value"])
        raise KeyError(f"no KPI {metric!r}; expected one of {', '.join(self.kpis['metric'].to_pylist())}")


class JourneyMapComparison:
    """Two journey maps on the same phase model (e.g. two personas) and their per-phase differences."""

    def __init__(self, a: JourneyMapResult, b: JourneyMapResult, table: pa.Table) -> None:
        self.a = a
        self.b = b
        #: one row per phase: label, and reach, conversion_to_next, drop_off_rate, median_days_in_phase and
        #: emotion of a and of b (suffixes _a, _b)
        self.table = table

    @property
    def model(self) -> str:
        return self.a.model

    @property
    def labels(self) -> tuple[str, str]:
        return _who(self.a.spec), _who(self.b.spec)

    def to_pandas(self) -> Any:
        return self.table.to_pandas()


def _who(spec: JourneyMapSpec) -> str:
    return spec.persona or "all personas"


# -- in the engine ----------------------------------------------------------------------------------------


class _Model:
    """The phase model of a map, resolved once."""

    def __init__(self, ws: Workspace, name: str | None) -> None:
        from journeylens.analyses.funnel import phase_model_for, phase_names_for

        self.pm: PhaseModel | None
        self.pm, self.stored, self.name = phase_model_for(ws, name)
        self.phases: list[tuple[str, str]] = phase_names_for(ws, self.pm)


def _selected(ws: Workspace, spec: JourneyMapSpec) -> ir.Table:
    return spec.effective_filters().journeys(ws)


def _phased(ws: Workspace, model: _Model, journeys: ir.Table) -> ir.Table:
    """The touchpoints of the map's journeys, with the model's phases."""
    from journeylens.analyses.funnel import phased_touchpoints

    t = phased_touchpoints(ws, model.pm, model.stored)
    return t.semi_join(journeys.select("journey_id"), "journey_id")


def _journey_phases(ws: Workspace, model: _Model, journeys: ir.Table, touches: ir.Table) -> ir.Table:
    if model.stored:
        return ws.journey_phases.semi_join(journeys.select("journey_id"), "journey_id")
    from journeylens.journeys.build import journey_phases

    return journey_phases(touches)


def phases_expr(ws: Workspace, spec: JourneyMapSpec, model: _Model | None = None) -> ir.Table:
    """Per phase index: journeys whose furthest phase it is (``furthest``), ``visited``, median days, touchpoints.

    Index -1 holds the journeys with no phase at all in ``furthest`` (reach is cumulated in Python: a
    handful of rows)."""
    model = model or _Model(ws, spec.model)
    j = _selected(ws, spec)
    t = _phased(ws, model, j)
    jp = _journey_phases(ws, model, j, t)
    furthest = jp.group_by("journey_id").aggregate(_f=jp.phase_index.max())
    jf = j.select("journey_id").left_join(furthest, "journey_id")
    jf = jf.mutate(_f=jf._f.fill_null(-1))
    far = jf.group_by(phase_index=jf._f).aggregate(furthest=jf.count())
    days = jp.seconds_in_phase.cast("float64") / SECONDS_PER_DAY
    per = jp.group_by("phase_index").aggregate(
        visited=jp.count(), median_days_in_phase=days.median(), touchpoints=jp.touchpoints.sum()
    )
    out = far.outer_join(per, "phase_index")
    return out.select(
        phase_index=out.phase_index.fill_null(out.phase_index_right).cast("int64"),
        furthest=out.furthest.fill_null(0),
        visited=out.visited.fill_null(0),
        median_days_in_phase=out.median_days_in_phase,
        touchpoints=out.touchpoints.fill_null(0),
    )


def touchpoints_expr(ws: Workspace, spec: JourneyMapSpec, model: _Model | None = None) -> ir.Table:
    """Per phase: the ``top`` busiest touchpoints and channels, with touchpoints, journeys and share."""
    model = model or _Model(ws, spec.model)
    t = _phased(ws, model, _selected(ws, spec))
    t = t.filter(t.phase_index.notnull())
    parts = []
    for level in ("touchpoint", "channel"):
        g = t.group_by([t.phase_index, t[level].cast("string").name("value")]).aggregate(
            touchpoints=t.count(), journeys=t.journey_id.nunique()
        )
        g = g.filter(g.value.notnull())
        w = ibis.window(group_by=g.phase_index, order_by=[ibis.desc(g.touchpoints), g.value])
        total = g.touchpoints.sum().over(ibis.window(group_by=g.phase_index))
        g = g.mutate(
            level=ibis.literal(level),
            rank=(ibis.row_number().over(w) + 1).cast("int64"),
            share=g.touchpoints.cast("float64") / total,
        )
        parts.append(g.filter(g["rank"] <= spec.top))
    u = ibis.union(*parts)
    return u.select("phase_index", "level", "value", "rank", "touchpoints", "journeys", "share")


def content_expr(ws: Workspace, spec: JourneyMapSpec, model: _Model | None = None) -> ir.Table:
    """Per phase and content type: touchpoints and journeys."""
    model = model or _Model(ws, spec.model)
    t = _phased(ws, model, _selected(ws, spec))
    t = t.filter(t.phase_index.notnull() & t.content_type.notnull())
    return t.group_by(["phase_index", "content_type"]).aggregate(
        touchpoints=t.count(), journeys=t.journey_id.nunique()
    )


def answers_expr(ws: Workspace, spec: JourneyMapSpec, model: _Model | None = None) -> ir.Table:
    """Per phase index and rated touchpoint: answers (``n``), sum and sum of squares of the normalised score."""
    from journeylens.analyses.satisfaction import SatisfactionSpec, rated_answers

    model = model or _Model(ws, spec.model)
    filters = spec.effective_filters()
    sat = SatisfactionSpec(survey_touchpoints=spec.survey_touchpoints, filters=filters)
    r = rated_answers(ws, sat)
    r = r.filter(r.rated_journey_type == spec.journey_type)
    if model.stored:
        r = r.mutate(_pi=r.rated_phase_index.cast("int64"))
    else:
        t = _phased(ws, model, _selected(ws, spec)).select(_eid="event_id", _pi="phase_index")
        r = r.left_join(t, r.event_id == t._eid).drop("_eid")
    r = r.filter(r._pi.notnull())
    return r.group_by([r._pi.name("phase_index"), r.rated_touchpoint.name("step")]).aggregate(
        n=r.count(), total=r.normalised.sum(), total_sq=(r.normalised * r.normalised).sum()
    )


def kpis_expr(ws: Workspace, spec: JourneyMapSpec) -> ir.Table:
    """One row: journeys, persons, converted, median contacts and days to conversion, revenue, period."""
    j = _selected(ws, spec)
    converted = j.converted_at.notnull()
    days = (j.converted_at.epoch_seconds() - j.start.epoch_seconds()).cast("float64") / SECONDS_PER_DAY
    return j.aggregate(
        journeys=j.count(),
        persons=j.person_id.nunique(),
        converted=converted.cast("int64").sum(),
        median_contacts=ibis.ifelse(
            converted, j.purchase_contact_number.cast("float64"), ibis.null("float64")
        ).median(),
        median_days=ibis.ifelse(converted, days, ibis.null("float64")).median(),
        revenue=j.revenue.sum(),
        period_start=j.start.min(),
        period_end=j.end.max(),
    )


def expr(ws: Workspace, spec: JourneyMapSpec) -> ir.Table:
    """The per-phase aggregate (the map's backbone); the lanes come from their own small aggregates."""
    return phases_expr(ws, spec)


# -- in Python, on the aggregates -------------------------------------------------------------------------


def _f(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return None if math.isnan(v) else v


def run(ws: Workspace, spec: JourneyMapSpec) -> JourneyMapResult:
    model = _Model(ws, spec.model)
    phases_agg, sql = execute(phases_expr(ws, spec, model))
    tp_agg = touchpoints_expr(ws, spec, model).to_pyarrow().to_pylist()
    ct_agg = content_expr(ws, spec, model).to_pyarrow().to_pylist()
    ans_agg = answers_expr(ws, spec, model).to_pyarrow().to_pylist()
    k = kpis_expr(ws, spec).to_pyarrow().to_pylist()[0]

    pm = model.pm
    names = [n for n, _ in model.phases]
    labels = dict(model.phases)
    info = {p.name: p for p in pm.phases} if pm is not None else {}
    n_phases = len(names)

    # reach: journeys whose furthest phase is this one or a later one
    by_index = {int(r["phase_index"]): r for r in phases_agg.to_pylist()}
    furthest = np.array(
        [int(by_index.get(i, {}).get("furthest") or 0) for i in range(n_phases)], dtype=np.int64
    )
    reach = np.cumsum(furthest[::-1])[::-1] if n_phases else furthest
    journeys = int(k["journeys"] or 0)

    # emotion per phase: pooled over the rated steps
    ans = {i: [0.0, 0.0, 0.0] for i in range(n_phases)}
    for r in ans_agg:
        i = int(r["phase_index"])
        if i in ans:
            ans[i][0] += float(r["n"])
            ans[i][1] += float(r["total"] or 0.0)
            ans[i][2] += float(r["total_sq"] or 0.0)
    en = np.array([ans[i][0] for i in range(n_phases)], dtype=np.float64)
    emo, emo_low, emo_high = stats.t_interval(
        en,
        [ans[i][1] for i in range(n_phases)],
        [ans[i][2] for i in range(n_phases)],
        spec.confidence,
    )
    total_n = float(en.sum())
    overall = float(sum(ans[i][1] for i in ans) / total_n) if total_n else float("nan")

    rows: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        p = info.get(name)
        last = i == n_phases - 1
        here = int(reach[i])
        nxt = None if last else int(reach[i + 1])
        dropped = None if nxt is None else here - nxt
        agg = by_index.get(i, {})
        rows.append(
            {
                "phase": name,
                "phase_index": i,
                "label": labels[name],
                "description": p.description if p else "",
                "questions": list(p.questions) if p else [],
                "intended_content": list(p.intended_content) if p else [],
                "reach": here,
                "reach_share": stats.share(here, journeys).item() if journeys else None,
                "visited": int(agg.get("visited") or 0),
                "conversion_to_next": None if nxt is None or not here else nxt / here,
                "dropped": dropped,
                "drop_off_rate": None if dropped is None or not here else dropped / here,
                "median_days_in_phase": _f(agg.get("median_days_in_phase")),
                "touchpoints": int(agg.get("touchpoints") or 0),
                "emotion": _f(emo[i]),
                "emotion_low": _f(emo_low[i]),
                "emotion_high": _f(emo_high[i]),
                "emotion_n": int(en[i]),
                "emotion_too_thin": bool(en[i] < spec.min_n),
            }
        )
    table = pa.Table.from_pylist(rows, schema=pa.schema(PHASE_COLUMNS))

    touch_rows = [
        {
            "phase": names[int(r["phase_index"])],
            "phase_index": int(r["phase_index"]),
            "level": r["level"],
            "value": r["value"],
            "rank": int(r["rank"]),
            "touchpoints": int(r["touchpoints"]),
            "journeys": int(r["journeys"]),
            "share": float(r["share"]),
        }
        for r in tp_agg
        if 0 <= int(r["phase_index"]) < n_phases
    ]
    touch_rows.sort(key=lambda r: (r["phase_index"], r["level"] != "touchpoint", r["rank"]))
    touchpoints = pa.Table.from_pylist(touch_rows, schema=pa.schema(TOUCHPOINT_COLUMNS))

    content = _content(ct_agg, names, info)
    pain = _pain_points(ans_agg, rows, names, labels, overall, spec)
    opportunities = _opportunities(rows, content, pain, labels, overall, spec)
    kpis = _kpis(k, overall, int(total_n))
    extra = {
        "model": model.name,
        "model_description": pm.description if pm is not None else "",
        "stored_phases": model.stored,
        "persona": spec.persona,
        "journey_type": spec.journey_type,
        "filters": spec.filters.describe(),
        "overall_emotion": overall,
        "period_start": k.get("period_start"),
        "period_end": k.get("period_end"),
    }
    return JourneyMapResult(
        spec,
        table,
        touchpoints=touchpoints,
        content=content,
        pain_points=pain,
        opportunities=opportunities,
        kpis=kpis,
        extra=extra,
        sql=sql,
    )


def _content(agg: list[dict[str, Any]], names: list[str], info: dict[str, Any]) -> pa.Table:
    intended_in: dict[str, list[str]] = {}
    for name in names:
        for ct in info[name].intended_content if name in info else []:
            intended_in.setdefault(ct, []).append(name)
    seen: dict[int, dict[str, dict[str, Any]]] = {}
    for r in agg:
        i = int(r["phase_index"])
        if 0 <= i < len(names):
            seen.setdefault(i, {})[r["content_type"]] = r
    rows = []
    for i, name in enumerate(names):
        used = seen.get(i, {})
        total = sum(int(r["touchpoints"]) for r in used.values())
        intended = list(info[name].intended_content) if name in info else []
        for ct, r in sorted(used.items(), key=lambda kv: (-int(kv[1]["touchpoints"]), kv[0])):
            rows.append(
                {
                    "phase": name,
                    "phase_index": i,
                    "content_type": ct,
                    "touchpoints": int(r["touchpoints"]),
                    "journeys": int(r["journeys"]),
                    "share": int(r["touchpoints"]) / total if total else None,
                    "status": "intended" if ct in intended else "not_intended",
                    "intended_phases": intended_in.get(ct, []),
                }
            )
        for ct in intended:
            if ct not in used:
                rows.append(
                    {
                        "phase": name,
                        "phase_index": i,
                        "content_type": ct,
                        "touchpoints": 0,
                        "journeys": 0,
                        "share": 0.0 if total else None,
                        "status": "unused",
                        "intended_phases": intended_in.get(ct, []),
                    }
                )
    return pa.Table.from_pylist(rows, schema=pa.schema(CONTENT_COLUMNS))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _pain_points(
    ans_agg: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    names: list[str],
    labels: dict[str, str],
    overall: float,
    spec: JourneyMapSpec,
) -> pa.Table:
    out: list[dict[str, Any]] = []
    steps = [r for r in ans_agg if 0 <= int(r["phase_index"]) < len(names) and r["step"] is not None]
    if steps:
        n = np.array([float(r["n"]) for r in steps])
        mean, low, high = stats.t_interval(
            n,
            [float(r["total"] or 0) for r in steps],
            [float(r["total_sq"] or 0) for r in steps],
            spec.confidence,
        )
        scored = [
            (float(mean[i]), float(low[i]), float(high[i]), steps[i])
            for i in range(len(steps))
            if n[i] >= spec.min_n and not math.isnan(overall) and mean[i] <= overall - PAIN_MARGIN
        ]
        scored.sort(key=lambda x: (x[0], int(x[3]["phase_index"]), str(x[3]["step"])))
        for m, lo, hi, r in scored[: spec.top]:
            i = int(r["phase_index"])
            out.append(
                {
                    "phase": names[i],
                    "phase_index": i,
                    "kind": "low_satisfaction",
                    "subject": r["step"],
                    "value": m,
                    "low": _f(lo),
                    "high": _f(hi),
                    "n": int(r["n"]),
                    "text": f"{r['step']}: satisfaction {m:.2f} (n={int(r['n'])}), below the journey's {overall:.2f}",
                }
            )
    drops = [
        r
        for r in rows
        if r["drop_off_rate"] is not None and r["drop_off_rate"] > 0 and r["reach"] >= spec.min_n
    ]
    drops.sort(key=lambda r: (-r["drop_off_rate"], r["phase_index"]))
    for r in drops[:DROP_OFF_PAIN_POINTS]:
        i = r["phase_index"]
        nxt = labels[names[i + 1]]
        out.append(
            {
                "phase": r["phase"],
                "phase_index": i,
                "kind": "drop_off",
                "subject": r["phase"],
                "value": r["drop_off_rate"],
                "low": None,
                "high": None,
                "n": r["reach"],
                "text": f"{_pct(r['drop_off_rate'])} of the journeys here ({r['dropped']:,} of {r['reach']:,}) never reach {nxt}",
            }
        )
    out.sort(key=lambda r: (r["phase_index"], r["kind"] != "drop_off"))
    return pa.Table.from_pylist(out, schema=pa.schema(PAIN_COLUMNS))


def _opportunities(
    rows: list[dict[str, Any]],
    content: pa.Table,
    pain: pa.Table,
    labels: dict[str, str],
    overall: float,
    spec: JourneyMapSpec,
) -> pa.Table:
    out: list[dict[str, Any]] = []
    names = [r["phase"] for r in rows]

    def add(i: int, rule: str, subject: str, text: str) -> None:
        out.append({"phase": names[i], "phase_index": i, "rule": rule, "subject": subject, "text": text})

    crows = content.to_pylist()
    for i, name in enumerate(names):
        unused = [c["content_type"] for c in crows if c["phase_index"] == i and c["status"] == "unused"]
        if unused and rows[i]["reach"] > 0:
            add(i, "intended_unused", ", ".join(unused),
                f"Intended for {labels[name]} but not seen there: {', '.join(unused)}")  # fmt: skip
    for c in crows:
        label = labels[c["phase"]]
        if c["status"] == "not_intended" and (c["share"] or 0) >= MISPLACED_SHARE:
            where = c["intended_phases"]
            target = (
                "the model intends it for " + ", ".join(labels.get(p, p) for p in where)
                if where
                else "no phase intends it"
            )
            add(c["phase_index"], "misplaced_content", c["content_type"],
                f"{c['content_type']} is {_pct(c['share'])} of the content in {label}; {target}")  # fmt: skip
    drops = [p for p in pain.to_pylist() if p["kind"] == "drop_off"]
    if drops:
        top = max(drops, key=lambda p: p["value"])
        i = top["phase_index"]
        intended = rows[i]["intended_content"]
        help_ = f"; check that {', '.join(intended)} reach them there" if intended else ""
        add(i, "drop_off", top["phase"],
            f"The biggest loss is after {labels[top['phase']]}: {_pct(top['value'])} of its journeys "
            f"do not reach {labels[names[i + 1]]}{help_}")  # fmt: skip
    for r in rows:
        if r["emotion_n"] < spec.min_n and r["reach"] > 0:
            n = r["emotion_n"]
            said = (
                f"No satisfaction answers in {r['label']} yet"
                if n == 0
                else (
                    f"Only {n} satisfaction answer{'s' if n != 1 else ''} in {r['label']}: too few to judge"
                )
            )
            add(r["phase_index"], "no_feedback", r["phase"], f"{said}; ask for feedback here")  # fmt: skip
    timed = [r for r in rows if r["median_days_in_phase"] is not None]
    if len(timed) >= 2:
        slow = max(timed, key=lambda r: (r["median_days_in_phase"], -r["phase_index"]))
        others = [r["median_days_in_phase"] for r in timed if r is not slow]
        ref = float(np.median(others))
        if slow["median_days_in_phase"] > 0 and slow["median_days_in_phase"] >= 2 * ref:
            add(slow["phase_index"], "slow_phase", slow["phase"],
                f"Journeys spend a median {slow['median_days_in_phase']:.1f} days in {slow['label']}, "
                f"the longest phase (others: median {ref:.1f})")  # fmt: skip
    order = {
        "intended_unused": 0,
        "misplaced_content": 1,
        "drop_off": 2,
        "no_feedback": 3,
        "slow_phase": 4,
    }
    out.sort(key=lambda r: (r["phase_index"], order[r["rule"]]))
    return pa.Table.from_pylist(out, schema=pa.schema(OPPORTUNITY_COLUMNS))


KPI_LABELS = {
    "journeys": "journeys",
    "persons": "persons",
    "converted": "converted",
    "conversion_rate": "conversion rate",
    "median_contacts_to_conversion": "median contacts to conversion",
    "median_days_to_conversion": "median days to conversion",
    "revenue": "revenue",
    "emotion": "satisfaction (0–1)",
}


def _kpis(k: dict[str, Any], overall: float, answers: int) -> pa.Table:
    journeys = int(k["journeys"] or 0)
    converted = int(k["converted"] or 0)
    values = [
        ("journeys", journeys, journeys),
        ("persons", int(k["persons"] or 0), journeys),
        ("converted", converted, journeys),
        ("conversion_rate", converted / journeys if journeys else None, journeys),
        ("median_contacts_to_conversion", _f(k["median_contacts"]), converted),
        ("median_days_to_conversion", _f(k["median_days"]), converted),
        ("revenue", _f(k["revenue"]) or 0.0, journeys),
        ("emotion", None if math.isnan(overall) else overall, answers),
    ]
    rows = [
        {"metric": m, "label": KPI_LABELS[m], "value": None if v is None else float(v), "n": int(n)}
        for m, v, n in values
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema(KPI_COLUMNS))


def segments(ws: Workspace, filters: Filters | None = None) -> pa.Table:
    """The (persona, journey_type) pairs of the filtered journeys with their journey counts: the maps one
    can draw. Persona NULL (persons without one) is kept; largest first within a journey type."""
    j = (filters or Filters()).journeys(ws)
    g = j.group_by(["journey_type", "persona"]).aggregate(journeys=j.count())
    return g.order_by(["journey_type", ibis.desc("journeys"), "persona"]).to_pyarrow()


# -- two maps side by side --------------------------------------------------------------------------------

COMPARED = ("reach", "reach_share", "conversion_to_next", "drop_off_rate", "median_days_in_phase", "emotion")


def compare(ws: Workspace, spec_a: JourneyMapSpec, spec_b: JourneyMapSpec) -> JourneyMapComparison:
    """Two journey maps (e.g. two personas) on the same phase model, and their per-phase figures side by side."""
    return compare_results(run(ws, spec_a), run(ws, spec_b))


def compare_results(a: JourneyMapResult, b: JourneyMapResult) -> JourneyMapComparison:
    """Two journey map results side by side (they must share a phase model)."""
    if a.model != b.model:
        raise SpecError(
            f"journey_map compare: both maps need the same phase model; got '{a.model}' and '{b.model}'",
            code="model_mismatch",
        )
    rows = []
    for ra, rb in zip(a.table.to_pylist(), b.table.to_pylist(), strict=True):
        row: dict[str, Any] = {"phase": ra["phase"], "phase_index": ra["phase_index"], "label": ra["label"]}
        for c in COMPARED:
            row[f"{c}_a"] = ra[c]
            row[f"{c}_b"] = rb[c]
        rows.append(row)
    schema = pa.schema(
        [("phase", pa.string()), ("phase_index", pa.int64()), ("label", pa.string())]
        + [(f"{c}{s}", pa.int64() if c == "reach" else pa.float64()) for c in COMPARED for s in ("_a", "_b")]
    )
    return JourneyMapComparison(a, b, pa.Table.from_pylist(rows, schema=schema))
