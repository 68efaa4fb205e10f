"""Funnels: the phase funnel (how far journeys get through a phase model) and event funnels (steps).

Phase funnel
------------
``PhaseFunnelSpec`` -> one row per phase (and per breakdown value / period). A journey **reaches** a phase
when it has a touchpoint in that phase *or in a later one*: phases are a progression, and a journey that
skips a phase (a repeat purchase on the loyalty loop goes straight to the decision) has still got past it.
``visited`` counts the journeys with a touchpoint in exactly that phase; the time in a phase
(``journey_phases.seconds_in_phase``, in days) is measured over those. ``dropped`` is the journeys that
reached the previous phase but not this one; ``conversion_from_previous`` = reached / reached at the
previous phase, ``conversion_from_first`` = reached / reached at the first phase. Journeys with no phase at
all (only neutral or unmatched touchpoints) count in ``PhaseFunnelResult.totals`` but reach no phase.

Event funnel
------------
``FunnelSpec(steps=[...])`` -> one row per step. Each *entity* (a person, or a journey with ``by="journey"``)
has its touchpoints ordered by ``(timestamp, event_id)``. A **path** is a choice of one touchpoint per
step, each later in that order than the one before, matching its step; an entity **reaches step k** when
some path reaches it while keeping every rule:

- ``window``: the step-k touchpoint is at most ``window`` after the path's step-1 touchpoint;
- a step's own ``within``: at most that long after the previous step's touchpoint;
- ``order="strict"`` (PostHog's *strict*): the step's touchpoint is the entity's very next touchpoint
  after the previous step's (no other touchpoint in between, whatever it is); ``order="loose"``
  (PostHog's *ordered*, the default): anything may happen in between;
- ``optional`` steps may be left out of a path (the next step then follows the step before);
- ``exclusions``: a touchpoint matching the exclusion strictly between two consecutive steps of the path
  within the exclusion's ``between`` range disqualifies that path (the entity can still reach the step by
  another path without one; if none, it drops off there).

Without any window a step is thus reached when it happens any time after the previous step's earliest
match. The **time to convert** to step k is measured on the entity's earliest touchpoint that completes
step k, from the *latest* touchpoint of the previous step that can lead to it (as PostHog does: a person
who visits three times and then buys converted from the last visit); ``*_from_first`` measures from the
latest step-1 touchpoint that can start such a path.

How it is computed: for each step, the matching touchpoints are unioned with the previous step's
*frontier* (the touchpoints that completed it) and one window pass carries the latest frontier touchpoint
before each candidate (``max`` over a cumulative window: position, time, start time and exclusion counts
all grow along the frontier, so the latest one is the best predecessor on every rule). One union and one
window per step, on any engine; no self-join over all touchpoint pairs.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from journeylens.analyses.base import Filters, Result, Spec, _ts, execute
from journeylens.errors import SpecError, WorkspaceError
from journeylens.journeys.models.matcher import Matcher

if TYPE_CHECKING:
    from journeylens.journeys.models.phase_model import PhaseModel
    from journeylens.store import Workspace

SECONDS_PER_DAY = 86_400

# -- shared by the analyses (funnel, touchpoints, paths) ----------------------------------------------------

#: breakdowns read from the ``journeys`` table; anything else is looked up in ``persons``
JOURNEY_BREAKDOWNS = (
    "persona",
    "journey_type",
    "involvement",
    "first_channel",
    "last_channel",
    "status",
    "repeat",
)

_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|wk|weeks?)\s*$", re.I
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": SECONDS_PER_DAY, "w": 7 * SECONDS_PER_DAY}


def parse_duration(value: str | int | float) -> int:
    """Seconds in a duration such as ``"7d"``, ``"12h"``, ``"30m"``, ``"45s"``, ``"2w"`` (a number is seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 7d, 12h, 30m, 45s or 2w; got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"expected a duration such as 7d, 12h, 30m, 45s or 2w; got {value!r}")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)[0].lower()]
    if seconds <= 0:
        raise ValueError(f"expected a positive duration; got {value!r}")
    return int(round(seconds))


def breakdown_column(ws: Workspace, table: ir.Table, name: str | None, *, journeys: bool) -> ir.Table:
    """``table`` with ``_breakdown`` (string): a ``journeys`` column (when ``journeys`` is true and ``table``
    has a ``journey_id``) or a ``persons`` column (``table`` has a ``person_id``); NULL without a breakdown."""
    if name is None:
        return table.mutate(_breakdown=ibis.null("string"))
    if journeys and name in JOURNEY_BREAKDOWNS:
        if name in table.columns:
            return table.mutate(_breakdown=table[name].cast("string"))
        j = ws.journeys.select(_bk_jid="journey_id", _breakdown=ws.journeys[name].cast("string"))
        out = table.left_join(j, table.journey_id == j._bk_jid)
        return out.drop("_bk_jid")
    persons = ws.persons
    if name not in persons.columns or name == "person_id":
        allowed = [
            *(JOURNEY_BREAKDOWNS if journeys else ()),
            *(c for c in persons.columns if c != "person_id"),
        ]
        allowed = list(dict.fromkeys(allowed))
        raise SpecError(
            f"breakdown: unknown column '{name}'; expected one of {', '.join(allowed)}",
            code="unknown_breakdown",
        )
    p = persons.select(_bk_pid="person_id", _breakdown=persons[name].cast("string"))
    out = table.left_join(p, table.person_id == p._bk_pid)
    return out.drop("_bk_pid")


def phase_model_for(ws: Workspace, model: str | None) -> tuple[PhaseModel | None, bool, str]:
    """(the phase model, whether the workspace's stored phases are its phases, its name).

    ``model`` None means the model the workspace was built with. The model is None only when that was a
    custom file that cannot be loaded by name: then the phases are read from the data.
    """
    from journeylens.errors import ConfigError
    from journeylens.journeys.build import last_build
    from journeylens.journeys.models.phase_model import load_phase_model

    built = last_build(ws)
    built_name = built["phase_model"] if built else None
    if model is None:
        if built_name is None:
            raise WorkspaceError(
                f"workspace {ws.location}: no journeys yet; run `journeylens build` (or Workspace.build()) first"
            )
        try:
            return load_phase_model(built_name), True, built_name
        except ConfigError:
            return None, True, built_name
    pm = load_phase_model(model)
    return pm, pm.name == built_name, pm.name


def phase_names_for(ws: Workspace, pm: PhaseModel | None) -> list[tuple[str, str]]:
    """(name, label) of each phase, in order; from the stored phases when the model cannot be loaded."""
    if pm is not None:
        return [(p.name, p.title) for p in pm.phases]
    jp = ws.journey_phases
    rows = jp.select("phase", "phase_index").distinct().order_by("phase_index").to_pyarrow().to_pylist()
    return [(r["phase"], r["phase"]) for r in rows]


def phased_touchpoints(ws: Workspace, pm: PhaseModel | None, stored: bool) -> ir.Table:
    """``journey_touchpoints`` with ``phase`` / ``phase_index`` of ``pm``: the stored ones when the
    workspace was built with it, else classified on the fly (carried forward within each journey).

    On the fly, every touchpoint is classified before any filter, so that audience rules ("two purchases
    before") count the person's whole history, as the build does.
    """
    t = ws.journey_touchpoints
    if stored or pm is None:
        return t
    return pm.with_phases(t, person="person_id", by="journey_id")


def seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Epoch seconds as int64 (Ibis types ``epoch_seconds`` as int32)."""
    return ts.epoch_seconds().cast("int64")


def quantile(value: ir.NumericValue, q: float) -> ir.FloatingScalar:
    """The q-quantile with linear interpolation (DuckDB ``percentile_cont``, Spark ``percentile``)."""
    v = value.cast("float64")
    return v.median() if q == 0.5 else v.quantile(q)


def ratio(num: float | int | None, den: float | int | None) -> float | None:
    if num is None or not den:
        return None
    return float(num) / float(den)


def none_last(value: Any) -> tuple[int, Any]:
    """None last, then by value."""
    return (value is None, "" if value is None else str(value))


# -- phase funnel ------------------------------------------------------------------------------------------

Period = tuple[date | datetime, date | datetime]


class PhaseFunnelSpec(Spec):
    """How many journeys get how far through the phases of a phase model."""

    kind: ClassVar[str] = "phase_funnel"

    model: str | None = Field(
        default=None, description="phase model (default: the one the workspace was built with)"
    )
    journey_types: list[str] | None = Field(default=["purchase"], description="journey types (None: all)")
    breakdown: str | None = Field(
        default=None, description="persona, journey_type, involvement, first_channel, … or a persons column"
    )
    compare_periods: list[Period] | None = Field(
        default=None, description="two (start, end) periods of journey start, side by side"
    )
    filters: Filters = Filters()

    @field_validator("journey_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("expected at least one journey type, or None for all")
        return value

    @field_validator("compare_periods")
    @classmethod
    def _periods(cls, value: list[Period] | None) -> list[Period] | None:
        if value is None:
            return value
        if len(value) != 2:
            raise ValueError(f"expected two (start, end) periods, got {len(value)}")
        for start, end in value:
            if _as_datetime(end) <= _as_datetime(start):
                raise ValueError(f"a period's end must come after its start; got {start} to {end}")
        return value


def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime(value.year, value.month, value.day)


def period_label(period: Period) -> str:
    start, end = period
    return f"{start.isoformat()}..{end.isoformat()}"


class PhaseFunnelResult(Result):
    """Per phase: journeys reaching it, conversions, drop-off and time in phase."""

    @property
    def model(self) -> str:
        return str(self.extra["model"])

    @property
    def totals(self) -> pa.Table:
        """Per period / breakdown value: all journeys, and those with at least one phase."""
        return self.extra["totals"]

    @property
    def comparison(self) -> pa.Table | None:
        """With ``compare_periods``: one row per phase (and breakdown value), both periods side by side."""
        return self.extra.get("comparison")


def _funnel_journeys(ws: Workspace, spec: PhaseFunnelSpec) -> ir.Table:
    """The journeys of the funnel with ``_period`` and ``_breakdown``."""
    j = spec.filters.journeys(ws)
    if spec.journey_types is not None:
        j = j.filter(j.journey_type.isin(spec.journey_types))
    j = breakdown_column(ws, j, spec.breakdown, journeys=True)
    if not spec.compare_periods:
        return j.mutate(_period=ibis.null("string"))
    parts = [
        j.filter((j.start >= _ts(start)) & (j.start < _ts(end))).mutate(
            _period=ibis.literal(period_label((start, end)))
        )
        for start, end in spec.compare_periods
    ]
    return ibis.union(*parts)


def _journey_phase_rows(ws: Workspace, model: ChosenPhaseModel, journeys: ir.Table) -> ir.Table:
    if model.stored:
        jp = ws.journey_phases
    else:
        from journeylens.journeys.build import journey_phases

        jt = phased_touchpoints(ws, model.pm, model.stored)
        jp = journey_phases(jt.semi_join(journeys.select("journey_id"), "journey_id"))
    return jp.select("journey_id", "phase_index", "seconds_in_phase")


class ChosenPhaseModel:
    """The phase model an analysis uses, resolved once (reading the last build is a query)."""

    def __init__(self, ws: Workspace, name: str | None) -> None:
        self.pm, self.stored, self.name = phase_model_for(ws, name)
        self.phases = phase_names_for(ws, self.pm)


def phase_funnel_expr(
    ws: Workspace, spec: PhaseFunnelSpec, model: ChosenPhaseModel | None = None
) -> ir.Table:
    """Per (period, breakdown, phase): reached, visited, median and p90 days in the phase.

    Phase index -1 is every journey of the group (``reached`` = all journeys, ``visited`` = those with a
    phase): the totals come back in the same query.
    """
    model = model or ChosenPhaseModel(ws, spec.model)
    j = _funnel_journeys(ws, spec).select("journey_id", "_period", "_breakdown")
    jp = _journey_phase_rows(ws, model, j)
    furthest = jp.group_by("journey_id").aggregate(_furthest=jp.phase_index.max())
    furthest = furthest.rename(_fjid="journey_id")
    jj = j.left_join(furthest, j.journey_id == furthest._fjid)
    jj = jj.mutate(_has=jj._fjid.notnull().cast("int64")).drop("_fjid")
    ph = ibis.memtable(
        pa.table(
            {
                "_phase_index": pa.array(range(-1, len(model.phases)), pa.int64()),
                "phase": [None, *(n for n, _ in model.phases)],
            }
        )
    )
    reached = jj.join(ph, (ph._phase_index == -1) | (jj._furthest >= ph._phase_index))
    jp2 = jp.rename(_pjid="journey_id", _pidx="phase_index")
    r = reached.left_join(jp2, (reached.journey_id == jp2._pjid) & (reached._phase_index == jp2._pidx))
    days = r.seconds_in_phase.cast("float64") / SECONDS_PER_DAY
    return r.group_by(["_period", "_breakdown", "_phase_index", "phase"]).aggregate(
        reached=r.count(),
        visited=ibis.ifelse(r._phase_index == -1, r._has, r.seconds_in_phase.notnull().cast("int64")).sum(),
        median_days_in_phase=quantile(days, 0.5),
        p90_days_in_phase=quantile(days, 0.9),
    )


PHASE_FUNNEL_COLUMNS = [
    ("period", pa.string()),
    ("breakdown", pa.string()),
    ("phase_index", pa.int64()),
    ("phase", pa.string()),
    ("label", pa.string()),
    ("reached", pa.int64()),
    ("visited", pa.int64()),
    ("conversion_from_previous", pa.float64()),
    ("conversion_from_first", pa.float64()),
    ("dropped", pa.int64()),
    ("drop_off_rate", pa.float64()),
    ("median_days_in_phase", pa.float64()),
    ("p90_days_in_phase", pa.float64()),
]


def run_phase_funnel(ws: Workspace, spec: PhaseFunnelSpec) -> PhaseFunnelResult:
    model = ChosenPhaseModel(ws, spec.model)
    phases = model.phases
    table, sql = execute(phase_funnel_expr(ws, spec, model))
    got = {(r["_period"], r["_breakdown"], r["_phase_index"]): r for r in table.to_pylist()}
    totals = [r for r in table.to_pylist() if r["_phase_index"] == -1]
    groups = sorted(
        {(r["_period"], r["_breakdown"]) for r in totals}, key=lambda g: (none_last(g[0]), none_last(g[1]))
    )
    if spec.compare_periods:
        labels = [period_label(p) for p in spec.compare_periods]
        breakdowns = sorted({g[1] for g in groups}, key=none_last) or [None]
        groups = [(p, b) for p in labels for b in breakdowns]
    rows: list[dict[str, Any]] = []
    for period, bk in groups:
        first = prev = None
        for i, (phase, label) in enumerate(phases):
            r = got.get((period, bk, i), {})
            reached = int(r.get("reached") or 0)
            if i == 0:
                first = reached
            dropped = 0 if prev is None else prev - reached
            rows.append(
                {
                    "period": period,
                    "breakdown": bk,
                    "phase_index": i,
                    "phase": phase,
                    "label": label,
                    "reached": reached,
                    "visited": int(r.get("visited") or 0),
                    "conversion_from_previous": 1.0 if prev is None and reached else ratio(reached, prev),
                    "conversion_from_first": ratio(reached, first),
                    "dropped": dropped,
                    "drop_off_rate": 0.0 if prev is None and reached else ratio(dropped, prev),
                    "median_days_in_phase": r.get("median_days_in_phase"),
                    "p90_days_in_phase": r.get("p90_days_in_phase"),
                }
            )
            prev = reached
    schema = pa.schema(PHASE_FUNNEL_COLUMNS)
    out = pa.Table.from_pylist(rows, schema=schema)
    keep = [
        c
        for c in out.column_names
        if not (c == "period" and not spec.compare_periods)
        and not (c == "breakdown" and spec.breakdown is None)
    ]
    out = out.select(keep)
    tot_rows = [
        {
            "period": r["_period"],
            "breakdown": r["_breakdown"],
            "journeys": int(r["reached"]),
            "with_phase": int(r["visited"]),
        }
        for r in sorted(totals, key=lambda r: (none_last(r["_period"]), none_last(r["_breakdown"])))
    ]
    extra: dict[str, Any] = {
        "model": model.name,
        "stored_phases": model.stored,
        "phases": [n for n, _ in phases],
        "breakdown": spec.breakdown,
        "totals": pa.Table.from_pylist(
            tot_rows,
            schema=pa.schema(
                [
                    ("period", pa.string()),
                    ("breakdown", pa.string()),
                    ("journeys", pa.int64()),
                    ("with_phase", pa.int64()),
                ]
            ),
        ),
    }
    if spec.compare_periods:
        extra["comparison"] = _compare(
            rows, [period_label(p) for p in spec.compare_periods], spec.breakdown is not None
        )
    return PhaseFunnelResult(spec, out, sql=sql, extra=extra)


def _compare(rows: list[dict[str, Any]], labels: list[str], with_breakdown: bool) -> pa.Table:
    a, b = labels
    by_key: dict[tuple[Any, int], dict[str, Any]] = {}
    for r in rows:
        key = (r["breakdown"], r["phase_index"])
        out = by_key.setdefault(
            key, {"breakdown": r["breakdown"], "phase_index": r["phase_index"], "phase": r["phase"]}
        )
        suffix = "a" if r["period"] == a else "b"
        out[f"reached_{suffix}"] = r["reached"]
        out[f"conversion_from_first_{suffix}"] = r["conversion_from_first"]
        out[f"median_days_in_phase_{suffix}"] = r["median_days_in_phase"]
    for out in by_key.values():
        ca, cb = out.get("conversion_from_first_a"), out.get("conversion_from_first_b")
        out["conversion_change"] = None if ca is None or cb is None else cb - ca
    fields = [
        ("breakdown", pa.string()),
        ("phase_index", pa.int64()),
        ("phase", pa.string()),
        ("reached_a", pa.int64()),
        ("reached_b", pa.int64()),
        ("conversion_from_first_a", pa.float64()),
        ("conversion_from_first_b", pa.float64()),
        ("conversion_change", pa.float64()),
        ("median_days_in_phase_a", pa.float64()),
        ("median_days_in_phase_b", pa.float64()),
    ]
    table = pa.Table.from_pylist(list(by_key.values()), schema=pa.schema(fields))
    table = table.replace_schema_metadata({"period_a": a, "period_b": b})
    return table if with_breakdown else table.drop_columns(["breakdown"])


# -- event funnel ------------------------------------------------------------------------------------------

_MATCHER_FIELDS = set(Matcher.model_fields)


def _split_matcher(data: Any) -> Any:
    """A step or exclusion given as a touchpoint name or a flat dict of matcher conditions -> ``when``."""
    if isinstance(data, str):
        return {"when": {"touchpoint": [data]}, "label": data}
    if isinstance(data, dict) and "when" not in data:
        cond = {k: v for k, v in data.items() if k in _MATCHER_FIELDS}
        rest = {k: v for k, v in data.items() if k not in _MATCHER_FIELDS}
        return {**rest, "when": cond}
    return data


def _describe_matcher(m: Matcher) -> str:
    parts = []
    for name, value in m.model_dump(exclude_none=True, by_alias=True).items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "|".join(value)
        parts.append(f"{name}={value}")
    if list(m.model_dump(exclude_none=True)) == ["touchpoint"]:
        return "|".join(m.touchpoint or [])
    return ", ".join(parts)


class FunnelStep(BaseModel):
    """One step: a touchpoint name (``"purchase"``) or matcher conditions (``{"touchpoint": "purchase",
    "channel": "store"}``), with an optional label, ``optional`` flag and ``within`` (the most time since the
    previous step)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: Matcher
    label: str | None = None
    optional: bool = False
    within: str | None = Field(default=None, description="at most this long after the previous step, e.g. 2d")

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        return _split_matcher(data)

    @field_validator("within")
    @classmethod
    def _within(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def title(self) -> str:
        return self.label or _describe_matcher(self.when)


class FunnelExclusion(BaseModel):
    """A touchpoint that disqualifies a path when it happens between two consecutive steps of the path in
    the range ``between`` (1-based step numbers, default: the whole funnel)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: Matcher
    label: str | None = None
    between: tuple[int, int] | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        return _split_matcher(data)


class FunnelSpec(Spec):
    """An event funnel over touchpoints: ordered steps, windows, exclusions, per person or journey."""

    kind: ClassVar[str] = "funnel"

    steps: list[FunnelStep]
    window: str | None = Field(
        default=None, description="overall conversion window from the first step, e.g. 7d"
    )
    order: Literal["loose", "strict"] = "loose"
    by: Literal["person", "journey"] = "person"
    exclusions: list[FunnelExclusion] = []
    breakdown: str | None = None
    filters: Filters = Filters()

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[FunnelStep]) -> list[FunnelStep]:
        if len(value) < 2:
            raise ValueError(f"funnel_steps_too_few: a funnel needs at least 2 steps, got {len(value)}")
        if value[0].optional:
            raise ValueError("funnel_optional_first: the first step cannot be optional")
        if value[-1].optional:
            raise ValueError("funnel_optional_last: the last step cannot be optional")
        if value[0].within is not None:
            raise ValueError(
                "funnel_within_first: the first step has no previous step; 'within' applies from step 2"
            )
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _exclusion_ranges(self) -> FunnelSpec:
        n = len(self.steps)
        for i, ex in enumerate(self.exclusions):
            if ex.between is None:
                continue
            a, b = ex.between
            if not 1 <= a < b <= n:
                raise ValueError(
                    f"exclusions.{i}.between: expected two step numbers 1 <= from < to <= {n}; got {list(ex.between)}"
                )
        return self

    @property
    def window_seconds(self) -> int | None:
        return None if self.window is None else parse_duration(self.window)


class FunnelResult(Result):
    """Per step: entities reaching it, conversions, drop-off and time to convert (seconds)."""

    @property
    def by(self) -> str:
        return str(self.extra["by"])


def _entity_key(spec: FunnelSpec) -> str:
    return "person_id" if spec.by == "person" else "journey_id"


def _funnel_base(ws: Workspace, spec: FunnelSpec) -> ir.Table:
    """One row per touchpoint that matches a step: entity, position, time, step flags, exclusion counts."""
    t = spec.filters.touchpoints(ws)
    key = _entity_key(spec)
    t = t.filter(t[key].notnull())
    w = ibis.window(group_by=t[key], order_by=[t.timestamp, t.event_id])
    cols: dict[str, Any] = {"_e": t[key], "_ts": seconds(t.timestamp), "_pos": ibis.row_number().over(w)}
    for i, step in enumerate(spec.steps):
        cols[f"_m{i}"] = step.when.expr(t)
    for i, ex in enumerate(spec.exclusions):
        cols[f"_x{i}"] = ex.when.expr(t).cast("int64")
    base = t.select(**cols)
    if spec.exclusions:
        cw = ibis.cumulative_window(group_by=base._e, order_by=base._pos)
        base = base.mutate(**{f"_c{i}": base[f"_x{i}"].sum().over(cw) for i in range(len(spec.exclusions))})
    any_step = base._m0
    for i in range(1, len(spec.steps)):
        any_step = any_step | base[f"_m{i}"]
    return base.filter(any_step)


def _feasible(spec: FunnelSpec, base: ir.Table) -> list[ir.Table]:
    """Per step: the touchpoints that complete it on some valid path, with the path's start and the
    previous step's time (columns _e, _pos, _ts, _start, _prev, _c*)."""
    n_ex = len(spec.exclusions)
    exc_cols = [f"_c{i}" for i in range(n_ex)]
    window = spec.window_seconds
    steps = spec.steps
    n = len(steps)
    ranges = [ex.between or (1, n) for ex in spec.exclusions]

    first = base.filter(base._m0)
    feasible = [
        first.select(
            "_e", "_pos", "_ts", _start=first._ts, _prev=ibis.null("int64"), **{c: first[c] for c in exc_cols}
        )
    ]
    frontier = feasible[0].drop("_prev")
    for k in range(1, n):
        cand = base.filter(base[f"_m{k}"])
        cand = cand.select(
            "_e",
            "_pos",
            _kind=ibis.literal(0, "int64"),
            _ts=cand._ts,
            **{c: cand[c] for c in exc_cols},
            **{f"_x{i}": cand[f"_x{i}"] for i in range(n_ex)},
            _fpos=ibis.null("int64"),
            _fts=ibis.null("int64"),
            _fstart=ibis.null("int64"),
            **{f"_f{c}": ibis.null("int64") for c in exc_cols},
        )
        front = frontier.select(
            "_e",
            "_pos",
            _kind=ibis.literal(1, "int64"),
            _ts=ibis.null("int64"),
            **{c: ibis.null("int64") for c in exc_cols},
            **{f"_x{i}": ibis.null("int64") for i in range(n_ex)},
            _fpos=frontier._pos,
            _fts=frontier._ts,
            _fstart=frontier._start,
            **{f"_f{c}": frontier[c] for c in exc_cols},
        )
        u = ibis.union(cand, front)
        # candidates sort before frontier rows at the same position: a touchpoint never follows itself
        cw = ibis.cumulative_window(group_by=u._e, order_by=[u._pos, u._kind])
        u = u.mutate(
            _qpos=u._fpos.max().over(cw),
            _qts=u._fts.max().over(cw),
            _qstart=u._fstart.max().over(cw),
            **{f"_q{c}": u[f"_f{c}"].max().over(cw) for c in exc_cols},
        )
        ok = (u._kind == 0) & u._qpos.notnull()
        if spec.order == "strict":
            ok = ok & (u._qpos == u._pos - 1)
        if steps[k].within is not None:
            ok = ok & ((u._ts - u._qts) <= parse_duration(steps[k].within))
        if window is not None:
            ok = ok & ((u._ts - u._qstart) <= window)
        for i, (a, b) in enumerate(ranges):
            if a < k + 1 <= b:
                between = (u[f"_c{i}"] - u[f"_x{i}"]) - u[f"_q_c{i}"]
                ok = ok & (between == 0)
        f = u.filter(ok)
        f = f.select("_e", "_pos", "_ts", _start=f._qstart, _prev=f._qts, **{c: f[c] for c in exc_cols})
        feasible.append(f)
        done = f.drop("_prev")
        frontier = ibis.union(done, frontier) if steps[k].optional else done
    return feasible


def _entity_steps(ws: Workspace, spec: FunnelSpec) -> ir.Table:
    """Per (entity, step reached): _e, _step (1-based), _reached_at, _prev_at, _start_at (epoch seconds)."""
    feasible = _feasible(spec, _funnel_base(ws, spec))
    parts = []
    for k, f in enumerate(feasible):
        g = f.group_by("_e").aggregate(
            _reached_at=f._ts.min(), _prev_at=f._prev.min(), _start_at=f._start.min()
        )
        parts.append(g.mutate(_step=ibis.literal(k + 1, "int64")))
    return ibis.union(*parts)


def funnel_expr(ws: Workspace, spec: FunnelSpec) -> ir.Table:
    """Per (breakdown, step): count, median / p90 seconds from the previous step and from the first."""
    es = _entity_steps(ws, spec)
    es = es.mutate(**{_entity_key(spec): es._e})
    es = breakdown_column(ws, es, spec.breakdown, journeys=spec.by == "journey")
    from_prev = (es._reached_at - es._prev_at).cast("float64")
    from_first = ibis.ifelse(
        es._step == 1, ibis.null("float64"), (es._reached_at - es._start_at).cast("float64")
    )
    return es.group_by(["_breakdown", "_step"]).aggregate(
        count=es.count(),
        median_seconds=quantile(from_prev, 0.5),
        p90_seconds=quantile(from_prev, 0.9),
        median_seconds_from_first=quantile(from_first, 0.5),
        p90_seconds_from_first=quantile(from_first, 0.9),
    )


FUNNEL_COLUMNS = [
    ("breakdown", pa.string()),
    ("step", pa.int64()),
    ("label", pa.string()),
    ("optional", pa.bool_()),
    ("count", pa.int64()),
    ("conversion_from_previous", pa.float64()),
    ("conversion_from_first", pa.float64()),
    ("dropped", pa.int64()),
    ("median_seconds", pa.float64()),
    ("p90_seconds", pa.float64()),
    ("median_seconds_from_first", pa.float64()),
    ("p90_seconds_from_first", pa.float64()),
]


def run_funnel(ws: Workspace, spec: FunnelSpec) -> FunnelResult:
    table, sql = execute(funnel_expr(ws, spec))
    got = {(r["_breakdown"], r["_step"]): r for r in table.to_pylist()}
    groups = sorted({b for b, _ in got}, key=none_last) or [None]
    rows = []
    for bk in groups:
        first = None
        last_required = None  # count at the nearest earlier step that is not optional
        for k, step in enumerate(spec.steps, start=1):
            r = got.get((bk, k), {})
            count = int(r.get("count") or 0)
            if k == 1:
                first = count
            rows.append(
                {
                    "breakdown": bk,
                    "step": k,
                    "label": step.title,
                    "optional": step.optional,
                    "count": count,
                    "conversion_from_previous": (1.0 if count else None)
                    if k == 1
                    else ratio(count, last_required),
                    "conversion_from_first": ratio(count, first),
                    "dropped": 0 if k == 1 else (last_required or 0) - count,
                    "median_seconds": r.get("median_seconds"),
                    "p90_seconds": r.get("p90_seconds"),
                    "median_seconds_from_first": r.get("median_seconds_from_first"),
                    "p90_seconds_from_first": r.get("p90_seconds_from_first"),
                }
            )
            if not step.optional:
                last_required = count
    out = pa.Table.from_pylist(rows, schema=pa.schema(FUNNEL_COLUMNS))
    if spec.breakdown is None:
        out = out.drop_columns(["breakdown"])
    return FunnelResult(spec, out, sql=sql, extra={"by": spec.by, "breakdown": spec.breakdown})


def dropped_off(ws: Workspace, spec: FunnelSpec, step: int) -> list[str]:
    """The ids (persons or journeys, per ``spec.by``) that reached step ``step`` (1-based) but not the next."""
    n = len(spec.steps)
    if not 1 <= step < n:
        raise SpecError(
            f"dropped_off: step must be between 1 and {n - 1} (the last step has no next one); got {step}",
            code="invalid_step",
        )
    es = _entity_steps(ws, spec)
    here = es.filter(es._step == step).select("_e")
    nxt = es.filter(es._step == step + 1).select(_n="_e")
    out = here.anti_join(nxt, here._e == nxt._n).order_by("_e")
    return [r["_e"] for r in out.to_pyarrow().to_pylist()]


def expr(ws: Workspace, spec: PhaseFunnelSpec | FunnelSpec) -> ir.Table:
    """The aggregate expression of a phase funnel or an event funnel (all per-event work in the engine)."""
    if isinstance(spec, PhaseFunnelSpec):
        return phase_funnel_expr(ws, spec)
    if isinstance(spec, FunnelSpec):
        return funnel_expr(ws, spec)
    raise SpecError(f"funnel.expr: expected a PhaseFunnelSpec or a FunnelSpec; got {type(spec).__name__}")


def run(ws: Workspace, spec: PhaseFunnelSpec | FunnelSpec) -> Result:
    """Run a phase funnel or an event funnel."""
    if isinstance(spec, PhaseFunnelSpec):
        return run_phase_funnel(ws, spec)
    if isinstance(spec, FunnelSpec):
        return run_funnel(ws, spec)
    raise SpecError(f"funnel.run: expected a PhaseFunnelSpec or a FunnelSpec; got {type(spec).__name__}")
