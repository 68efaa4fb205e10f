"""Satisfaction: CSAT, NPS and CES per touchpoint, channel or phase, pain points, and the emotion curve.

Usage::

    result = run(ws, SatisfactionSpec(by="phase"))
    result.table            # per phase and scale: n, mean, shares, headline score, intervals, too_thin
    result.ranking          # the steps from least to most satisfied (pain points first)
    result.emotion_curve    # mean normalised score (0-1) per phase, in phase order
    result.attribution      # how many answers each attribution rule placed

**Which step an answer rates** (one engine pass, a join and a window; the same on DuckDB and Spark):

An *answer* is a touchpoint with a ``satisfaction`` value on one of the requested scales. A *survey answer*
is one whose touchpoint is in ``survey_touchpoints`` (default ``survey_response``); any other answer (a
rated chat, a review with a score) rates its own touchpoint. A survey answer rates, first rule that holds:

1. ``about``: when its properties name the touchpoint it is about (key ``about_property``, default
   ``about``, e.g. ``{"about": "delivery"}``), the person's latest earlier non-survey touchpoint with that
   name (in any of the person's journeys the filters keep);
2. ``about_unmatched``: a named touchpoint that the person has not had before: that name, with the survey's
   own channel and phase;
3. ``previous``: the latest earlier non-survey touchpoint in the same journey;
4. ``own``: the survey's own touchpoint (the first touchpoint of its journey).

"Earlier" is in the order (timestamp, event_id). The rated step gives the touchpoint, channel, phase and
journey type the answer counts for.

**Figures** per group and scale (``n`` answers):

- ``mean`` with a Student t interval; ``normalised`` = (mean − scale low) / (scale high − scale low), 0–1;
- ``top_share``: CSAT 4–5 (satisfied), NPS 9–10 (promoters), CES 5–7 (easy; 7 = very easy); ``bottom_share``:
  CSAT 1–2, NPS 0–6 (detractors), CES 1–3; each with a Wilson interval;
- ``score``, the headline: CSAT = % satisfied (0–100), NPS = % promoters − % detractors (−100..100,
  adjusted-Wald interval), CES = the mean (1–7);
- ``too_thin``: fewer than ``min_n`` answers; such rows are kept but left out of the ranking.

The **ranking** orders the groups that are not too thin by their normalised mean, least satisfied first
(``rank`` 1), and marks ``below`` / ``above`` where the whole interval lies below / above the mean normalised
score of all answers. The **emotion curve** pools the answers of every scale, normalised to 0–1, per phase
of the rated step (phases without answers are absent; answers of unphased steps are left out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field

from journeylens.analyses import stats
from journeylens.analyses.base import Filters, Result, Spec, execute
from journeylens.schema import SATISFACTION_SCALES

if TYPE_CHECKING:
    from journeylens.store import Workspace

Scale = Literal["csat", "nps", "ces"]
By = Literal["touchpoint", "channel", "phase", "journey_type"]

#: per scale: answers at or above the first number are "top", at or below the second "bottom"
THRESHOLDS: dict[str, tuple[float, float]] = {
    "csat": (4, 2),  # satisfied 4-5, dissatisfied 1-2
    "nps": (9, 6),  # promoters 9-10, detractors 0-6
    "ces": (5, 3),  # easy 5-7, hard 1-3 (7 = very easy)
}
SCALE_ORDER = {name: i for i, name in enumerate(SATISFACTION_SCALES)}
UNASSIGNED = "(unassigned)"
RULES = ("about", "about_unmatched", "previous", "own")


class SatisfactionSpec(Spec):
    """CSAT / NPS / CES per step, with the rule that attributes survey answers to the step they rate."""

    kind: ClassVar[str] = "satisfaction"

    by: By = Field(
        default="touchpoint",
        description="group answers by the rated step's touchpoint, channel, phase or journey type",
    )
    scales: list[Scale] = Field(default=["csat", "nps", "ces"], min_length=1)
    survey_touchpoints: list[str] = Field(
        default=["survey_response"], description="touchpoints that are survey answers about an earlier step"
    )
    about_property: str | None = Field(
        default="about",
        min_length=1,
        description="properties key naming the touchpoint a survey is about; None to ignore",
    )
    min_n: int = Field(default=30, ge=1, description="fewer answers than this flag a figure too_thin")
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    filters: Filters = Filters()


class SatisfactionResult(Result):
    """``table``: one row per group and scale; plus ``ranking``, ``emotion_curve`` and ``attribution``."""

    def __init__(
        self,
        spec: SatisfactionSpec,
        table: pa.Table,
        *,
        ranking: pa.Table,
        emotion_curve: pa.Table,
        attribution: pa.Table,
        overall: float,
        sql: str = "",
    ) -> None:
        super().__init__(spec, table, sql=sql, extra={"overall_normalised": overall})
        self.ranking = ranking
        self.emotion_curve = emotion_curve
        self.attribution = attribution
        #: the mean normalised score of all answers (the ranking's reference)
        self.overall = overall


# -- in the engine ----------------------------------------------------------------------------------------


def _json_text(properties: ir.StringValue, key: str) -> ir.StringValue:
    """A properties key as plain text (DuckDB returns JSON strings quoted, Spark does not)."""
    value = properties.cast("json")
    for part in key.split("."):
        value = value[part]
    text = value.cast("string").re_replace('^"', "").re_replace('"$', "")
    return ibis.ifelse(text == "null", ibis.null("string"), text)


def _bounds(scale: ir.StringValue, which: int) -> ir.FloatingValue:
    return scale.cases(
        *((n, float(r[which])) for n, r in SATISFACTION_SCALES.items()), else_=ibis.null("float64")
    )


def rated_answers(ws: Workspace, spec: SatisfactionSpec) -> ir.Table:
    """One row per answer: its scale and value, and the touchpoint, channel, phase and journey type of the
    step it rates, with the ``rule`` that chose that step (see the module's docstring)."""
    t = spec.filters.touchpoints(ws)
    is_survey = t.touchpoint.isin(spec.survey_touchpoints)
    answers = t.filter(t.satisfaction.notnull() & t.scale.isin(spec.scales))
    survey = answers.touchpoint.isin(spec.survey_touchpoints)
    about = (
        _json_text(answers.properties, spec.about_property) if spec.about_property else ibis.null("string")
    )
    answers = answers.mutate(_survey=survey, _about=ibis.ifelse(survey, about, ibis.null("string")))

    s = answers.filter(answers._survey).select(
        _sid="event_id", _sp="person_id", _sj="journey_id", _sts="timestamp", _sa="_about"
    )
    c = t.filter(~is_survey).select(
        _cp="person_id",
        _cj="journey_id",
        _cts="timestamp",
        _ceid="event_id",
        _ctp="touchpoint",
        _cch="channel",
        _cph="phase",
        _cpi="phase_index",
        _cjt="journey_type",
    )
    earlier = (c._cts < s._sts) | ((c._cts == s._sts) & (c._ceid < s._sid))
    named = s._sa.notnull() & (c._ctp == s._sa)
    pairs = s.join(c, [s._sp == c._cp, earlier, (c._cj == s._sj) | named.fill_null(False)])
    pairs = pairs.mutate(
        _match=(pairs._sa.notnull() & (pairs._ctp == pairs._sa)).fill_null(False).cast("int64")
    )
    w = ibis.window(
        group_by=[pairs._sid, pairs._sp],
        order_by=[ibis.desc(pairs._match), ibis.desc(pairs._cts), ibis.desc(pairs._ceid)],
    )
    pairs = pairs.mutate(_r=ibis.row_number().over(w))
    pick = pairs.filter(pairs._r == 0).select("_sid", "_sp", "_match", "_ctp", "_cch", "_cph", "_cpi", "_cjt")

    a = answers.left_join(pick, [answers.event_id == pick._sid, answers.person_id == pick._sp])
    rule = ibis.cases(
        (~a._survey, "own"),
        (a._about.notnull() & (a._match == 1).fill_null(False), "about"),
        (a._about.notnull(), "about_unmatched"),
        (a._ctp.notnull(), "previous"),
        else_="own",
    )
    a = a.mutate(rule=rule)
    picked = a.rule.isin(["about", "previous"])
    lo, hi = _bounds(a.scale, 0), _bounds(a.scale, 1)
    top = a.scale.cases(*((n, THRESHOLDS[n][0]) for n in SATISFACTION_SCALES), else_=ibis.null("float64"))
    bottom = a.scale.cases(*((n, THRESHOLDS[n][1]) for n in SATISFACTION_SCALES), else_=ibis.null("float64"))
    return a.select(
        "event_id",
        "person_id",
        "journey_id",
        "timestamp",
        "scale",
        "satisfaction",
        "rule",
        normalised=(a.satisfaction - lo) / (hi - lo),
        top=(a.satisfaction >= top).cast("int64"),
        bottom=(a.satisfaction <= bottom).cast("int64"),
        rated_touchpoint=ibis.cases(
            (picked, a._ctp), (a.rule == "about_unmatched", a._about), else_=a.touchpoint
        ),
        rated_channel=ibis.ifelse(picked, a._cch, a.channel),
        rated_phase=ibis.ifelse(picked, a._cph, a.phase),
        rated_phase_index=ibis.ifelse(picked, a._cpi, a.phase_index),
        rated_journey_type=ibis.ifelse(picked, a._cjt, a.journey_type),
    )


def expr(ws: Workspace, spec: SatisfactionSpec) -> ir.Table:
    """The small aggregate every figure is computed from: per rated group, scale, phase and rule the
    count, sum and sum of squares of the answers and of their normalised values, and the top / bottom counts."""
    r = rated_answers(ws, spec)
    keys = {"_key": r[f"rated_{spec.by}"], "_phase": r.rated_phase, "_phase_index": r.rated_phase_index}
    r = r.mutate(**keys)
    return r.group_by(["_key", "scale", "_phase", "_phase_index", "rule"]).aggregate(
        n=r.count(),
        total=r.satisfaction.sum(),
        total_sq=(r.satisfaction * r.satisfaction).sum(),
        norm_total=r.normalised.sum(),
        norm_sq=(r.normalised * r.normalised).sum(),
        top=r.top.sum(),
        bottom=r.bottom.sum(),
    )


# -- in Python, on the aggregate --------------------------------------------------------------------------

SUMS = ["n", "total", "total_sq", "norm_total", "norm_sq", "top", "bottom"]


def scores(groups: pd.DataFrame, key: str, *, min_n: int, confidence: float) -> pd.DataFrame:
    """Figures per (``key``, scale) from summed aggregates (columns ``SUMS``)."""
    g = groups.copy()
    n = g["n"].to_numpy(np.float64)
    g["mean"], g["mean_low"], g["mean_high"] = stats.t_interval(n, g["total"], g["total_sq"], confidence)
    g["normalised"], g["normalised_low"], g["normalised_high"] = stats.t_interval(
        n, g["norm_total"], g["norm_sq"], confidence
    )
    g["top_share"] = stats.share(g["top"], n)
    g["top_low"], g["top_high"] = stats.wilson(g["top"], n, confidence)
    g["bottom_share"] = stats.share(g["bottom"], n)
    g["bottom_low"], g["bottom_high"] = stats.wilson(g["bottom"], n, confidence)
    nps, nps_low, nps_high = stats.nps_interval(g["top"], g["bottom"], n, confidence)
    scale = g["scale"].to_numpy()
    g["score"] = np.select([scale == "csat", scale == "nps"], [100 * g["top_share"], nps], g["mean"])
    g["score_low"] = np.select(
        [scale == "csat", scale == "nps"], [100 * g["top_low"], nps_low], g["mean_low"]
    )
    g["score_high"] = np.select(
        [scale == "csat", scale == "nps"], [100 * g["top_high"], nps_high], g["mean_high"]
    )
    g["too_thin"] = n < min_n
    g["n"] = g["n"].astype("int64")
    columns = [
        key, "scale", "n", "mean", "mean_low", "mean_high", "normalised", "normalised_low", "normalised_high",
        "top_share", "top_low", "top_high", "bottom_share", "bottom_low", "bottom_high",
        "score", "score_low", "score_high", "too_thin",
    ]  # fmt: skip
    return g[columns]


def run(ws: Workspace, spec: SatisfactionSpec) -> SatisfactionResult:
    agg, sql = execute(expr(ws, spec))
    frame = agg.to_pandas()
    for c in SUMS:
        frame[c] = frame[c].fillna(0).astype(np.float64)
    key = spec.by
    frame["_key"] = frame["_key"].fillna(UNASSIGNED) if key == "phase" else frame["_key"]

    groups = frame.groupby(["_key", "scale"], as_index=False, dropna=False)[SUMS].sum()
    groups = groups.rename(columns={"_key": key})
    groups["_order"] = groups["scale"].map(SCALE_ORDER)
    if key == "phase":
        idx = frame.groupby("_key", dropna=False)["_phase_index"].min()
        groups["_pi"] = groups[key].map(idx).fillna(np.inf)
        groups = groups.sort_values(["_pi", key, "_order"], kind="stable")
    else:
        groups = groups.sort_values([key, "_order"], kind="stable")
    table = scores(groups.reset_index(drop=True), key, min_n=spec.min_n, confidence=spec.confidence)

    total_n = float(frame["n"].sum())
    overall = float(frame["norm_total"].sum() / total_n) if total_n else float("nan")
    ranking = _ranking(table, key, overall)

    phased = frame[frame["_phase"].notna()]
    curve = phased.groupby(["_phase_index", "_phase"], as_index=False)[["n", "norm_total", "norm_sq"]].sum()
    curve = curve.sort_values("_phase_index", kind="stable").reset_index(drop=True)
    mean, low, high = stats.t_interval(curve["n"], curve["norm_total"], curve["norm_sq"], spec.confidence)
    emotion = pd.DataFrame(
        {
            "phase": curve["_phase"].astype(str),
            "phase_index": curve["_phase_index"].astype("int64"),
            "n": curve["n"].astype("int64"),
            "normalised": mean,
            "normalised_low": low,
            "normalised_high": high,
            "too_thin": curve["n"].to_numpy() < spec.min_n,
        }
    )

    by_rule = frame.groupby("rule")["n"].sum()
    attribution = pd.DataFrame({"rule": list(RULES), "answers": [int(by_rule.get(r, 0)) for r in RULES]})
    attribution["share"] = stats.share(attribution["answers"], attribution["answers"].sum())

    return SatisfactionResult(
        spec,
        pa.Table.from_pandas(table, preserve_index=False),
        ranking=pa.Table.from_pandas(ranking, preserve_index=False),
        emotion_curve=pa.Table.from_pandas(emotion, preserve_index=False),
        attribution=pa.Table.from_pandas(attribution, preserve_index=False),
        overall=overall,
        sql=sql,
    )


def _ranking(table: pd.DataFrame, key: str, overall: float) -> pd.DataFrame:
    r = table[~table["too_thin"]].copy()
    r = r.sort_values(["normalised", key, "scale"], kind="stable").reset_index(drop=True)
    r.insert(0, "rank", np.arange(1, len(r) + 1, dtype=np.int64))
    r["vs_overall"] = np.select(
        [r["normalised_high"] < overall, r["normalised_low"] > overall], ["below", "above"], ""
    )
    return r[
        [
            "rank",
            key,
            "scale",
            "n",
            "normalised",
            "normalised_low",
            "normalised_high",
            "score",
            "score_low",
            "score_high",
            "vs_overall",
        ]
    ]
