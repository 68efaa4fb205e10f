"""Touchpoints -> journeys and phases, as Ibis expressions (the same code runs on DuckDB and Spark).

The rules (see ``docs/adr/0002-journey-splitting.md``):

1. **Order.** A person's touchpoints are ordered by ``(timestamp, event_id)``.
2. **Type.** A touchpoint belongs to a non-default journey type T when it carries T as its
   ``journey_type`` hint, or opens T, or is a member of T while a T journey is running: the T candidates
   (openers and members) of a person are split where the gap exceeds T's timeout, and within such a
   stretch the touchpoints from the first opener on are T's. A touchpoint claimed by several types goes to
   the one opened most recently (ties: the order of the types in the model). Everything else belongs to the
   default type (purchase).
3. **Split.** Within (person, type) a new journey starts when the gap to the previous touchpoint exceeds the
   type's inactivity timeout (a gap exactly equal to it does not split). For types with a conversion, in the
   *buyer* view a journey ends at its conversion (the next touchpoint starts a new one); in the *customer*
   view the journey goes on after the conversion (service, use, loyalty), and a further conversion starts a
   new journey at that conversion (the loyalty loop: a repeat purchase skips the evaluation).
4. **Status.** ``converted`` when the journey reaches its conversion; otherwise ``open`` while its last
   touchpoint is within the timeout of the data's end, else ``abandoned`` (``closed`` for types without a
   conversion, such as complaints). Status is computed against the data's end each time it is read.
5. **Repeat.** A journey of a type with a conversion is a ``repeat`` when the person converted in an earlier
   journey of that type.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from journeylens.journeys.stitching import (
    ANON_PREFIX,
    identity_conflicts,
    identity_links,
    identity_map,
    merge_links,
    stitch,
)

if TYPE_CHECKING:
    from journeylens.journeys.models.journey_model import JourneyModel
    from journeylens.journeys.models.phase_model import PhaseModel
    from journeylens.store import Workspace

SECONDS_PER_DAY = 86_400

#: touchpoint-level columns kept in ``journey_touchpoints``
TOUCH_COLUMNS = (
    "event_id",
    "person_id",
    "identified",
    "anonymous_id",
    "timestamp",
    "channel",
    "touchpoint",
    "content_type",
    "content_id",
    "revenue",
    "currency",
    "satisfaction",
    "scale",
    "properties",
    "journey_id",
    "journey_type",
    "position",
    "is_conversion",
    "phase",
    "phase_index",
    "phase_regression",
)


@dataclass(frozen=True)
class BuildResult:
    build_id: int
    mode: str  # full | incremental
    phase_model: str
    journey_model: str
    persons_rebuilt: int
    journeys: int
    touchpoints: int
    seconds: float
    #: the touchpoints whose journeys were computed (all of them in a full build; in an incremental one, the
    #: rebuilt persons' touchpoints from their cut on: see :func:`clean_cuts`)
    touchpoints_rebuilt: int = -1


# -- typing: which journey type each touchpoint belongs to -------------------------------------------------


def with_journey_flags(t: ir.Table, jm: JourneyModel) -> ir.Table:
    """``t`` with the per-touchpoint facts the splitter reads, as columns (no windows), for each journey type ``i``:
    ``_jl_conv{i}`` (converts such a journey), ``_jl_ends{i}`` (closes one, per the model's view) and, for
    the non-default types, ``_jl_opens{i}`` (opens one, or is hinted to belong to one) and
    ``_jl_member{i}`` (may join a running one).

    The build computes them once from the wide touchpoint rows, so that every window pass after it sorts
    narrow rows (event id, person, timestamp, flags) instead of whole touchpoints with their properties.
    """
    # in steps, each reading the one before: the hint and the opening flags are then computed once per row
    # (inlined, the same CASE was evaluated a dozen times, and the flags cost more than the stitching join)
    t = t.mutate(_jl_hint=jm.hint_expr(t))
    unhinted = t._jl_hint.isnull()
    first: dict[str, ir.BooleanValue] = {}
    for i, jt in enumerate(jm.journey_types):
        first[f"_jl_conv{i}"] = jt.conversion_expr(t)
        first[f"_jl_ends{i}"] = jt.ends_expr(t, view=jm.view)
        if not jt.default:
            first[f"_jl_opens{i}"] = (t._jl_hint == jt.name).fill_null(False) | (unhinted & jt.opens_expr(t))
            first[f"_jl_joins{i}"] = unhinted & jt.member_expr(t)
    t = t.mutate(**first)
    members = {
        f"_jl_member{i}": t[f"_jl_opens{i}"] | t[f"_jl_joins{i}"]
        for i, jt in enumerate(jm.journey_types)
        if not jt.default
    }
    return t.mutate(**members).drop("_jl_hint", *[c for c in first if c.startswith("_jl_joins")])


FLAG_PREFIXES = ("_jl_conv", "_jl_ends", "_jl_opens", "_jl_member")


def flag_columns(t: ir.Table) -> list[str]:
    """The :func:`with_journey_flags` columns of ``t``."""
    return [c for c in t.columns if c.startswith(FLAG_PREFIXES)]


def _claims(t: ir.Table, jm: JourneyModel) -> ir.Table | None:
    """(event_id, type, segment, opened_at) for touchpoints claimed by a non-default journey type.

    ``t`` carries the :func:`with_journey_flags` columns."""
    parts = []
    for order, jt in enumerate(jm.journey_types):
        if jt.default:
            continue
        c = t.filter(t[f"_jl_member{order}"]).select(
            "event_id", "person_key", "timestamp", _open=t[f"_jl_opens{order}"], _end=t[f"_jl_ends{order}"]
        )
        c = c.mutate(_ts=c.timestamp.epoch_seconds())
        w = ibis.window(group_by=c.person_key, order_by=[c.timestamp, c.event_id])
        gap = c._ts - c._ts.lag().over(w)
        after_end = c._end.lag().over(w).fill_null(False)
        c = c.mutate(_new=(gap.isnull() | (gap > jt.timeout_seconds) | after_end).cast("int64"))
        cw = ibis.cumulative_window(group_by=c.person_key, order_by=[c.timestamp, c.event_id])
        c = c.mutate(_seg=c._new.sum().over(cw))
        sw = ibis.cumulative_window(group_by=[c.person_key, c._seg], order_by=[c.timestamp, c.event_id])
        c = c.mutate(_opened_at=ibis.ifelse(c._open, c._ts, ibis.null("int64")).max().over(sw))
        c = c.filter(c._opened_at.notnull())
        parts.append(
            c.select(
                "event_id",
                _claim_type=ibis.literal(jt.name),
                _claim_seg=c._seg,
                _claim_opened=c._opened_at,
                _claim_order=ibis.literal(order, "int64"),
            )
        )
    if not parts:
        return None
    claims = parts[0] if len(parts) == 1 else ibis.union(*parts)
    w = ibis.window(group_by=claims.event_id, order_by=[ibis.desc(claims._claim_opened), claims._claim_order])
    claims = claims.mutate(_r=ibis.row_number().over(w))
    return claims.filter(claims._r == 0).drop("_r", "_claim_order")


def _typed(t: ir.Table, jm: JourneyModel, *, stage: Any = None) -> ir.Table:
    claims = _claims(t, jm)
    if claims is not None and stage is not None:
        claims = stage("claims", claims)
    default = jm.default_type.name
    if "journey_type" in t.columns:
        t = t.drop("journey_type")  # the hint, already in the flags
    if claims is None:
        return t.mutate(journey_type=ibis.literal(default), _claim_seg=ibis.null("int64"))
    j = t.left_join(claims, "event_id").drop("event_id_right")
    return j.mutate(journey_type=j._claim_type.fill_null(default)).drop("_claim_type", "_claim_opened")


# -- splitting --------------------------------------------------------------------------------------------


def _per_type(jm: JourneyModel, t: ir.Table, attr: str, dtype: str) -> ir.Value:
    values = {jt.name: getattr(jt, attr) for jt in jm.journey_types}
    return t.journey_type.cases(*values.items(), else_=ibis.null(dtype)) if values else ibis.null(dtype)


def _by_type(jm: JourneyModel, t: ir.Table, make: Any) -> ir.BooleanValue:
    """A boolean that evaluates ``make(i, journey_type)`` for each touchpoint's own journey type."""
    branches = [(t.journey_type == jt.name, make(i, jt)) for i, jt in enumerate(jm.journey_types)]
    return ibis.cases(*branches, else_=False).fill_null(False)


def split_journeys(
    t: ir.Table,
    jm: JourneyModel,
    *,
    pm: PhaseModel | None = None,
    stage: Any = None,
    flagged: bool = False,
    seq_offsets: ir.Table | None = None,
) -> ir.Table:
    """Stitched touchpoints (with ``person_key``) -> each touchpoint's journey_id, type and position.

    ``flagged``: ``t`` already carries the :func:`with_journey_flags` columns (they are dropped from the
    result). With a phase model ``pm`` also each touchpoint's ``phase`` and ``phase_index`` (carried
    forward within its journey) and ``phase_regression``, as :meth:`PhaseModel.with_phases` defines them,
    and for :func:`journey_phases` ``_next_ts`` and ``_run_start``; ``t`` may carry its own phase index
    (``phase_index_expr``) as ``_jl_own_phase_index``.

    ``seq_offsets`` (person_key, journey_type, ``_jl_seq0``): ``t`` holds a person's touchpoints from a clean
    cut on (see :func:`clean_cuts`), after ``_jl_seq0`` journeys of that type; their numbers go on
    from there.
    """
    if not flagged:
        t = with_journey_flags(t, jm)
    if pm is not None and "_jl_own_phase_index" not in t.columns:
        t = t.mutate(_jl_own_phase_index=pm.phase_index_expr(t, person="person_key"))
    flag_names = flag_columns(t)
    t = _typed(t, jm, stage=stage)
    t = t.mutate(
        _ts=t.timestamp.epoch_seconds(),
        is_conversion=_by_type(jm, t, lambda i, jt: t[f"_jl_conv{i}"]),
        _ends=_by_type(jm, t, lambda i, jt: t[f"_jl_ends{i}"]),
        _repeat_splits=_by_type(jm, t, lambda i, jt: ibis.literal(jt.repeat_after_conversion)),
        _timeout=_per_type(jm, t, "timeout_seconds", "int64"),
        _default=(t.journey_type == jm.default_type.name),
    ).drop(*flag_names)  # read: not carried through the sorts
    # three passes over one ordering, (person, type) by (timestamp, event_id): the window expressions of a
    # pass share one sort, and the phases ride along in the third
    order = [t.timestamp, t.event_id]
    w = ibis.window(group_by=[t.person_key, t.journey_type], order_by=order)
    cw = ibis.cumulative_window(group_by=[t.person_key, t.journey_type], order_by=order)
    conv = t.is_conversion.cast("int64")
    gap = t._ts - t._ts.lag().over(w)
    gap_start = gap.isnull() | (gap > t._timeout)
    seg_start = t._claim_seg.lag().over(w).isnull() | (t._claim_seg != t._claim_seg.lag().over(w))
    t = t.mutate(
        _gap_start=ibis.ifelse(t._default, gap_start, seg_start),
        _prev_end=t._ends.lag().over(w).fill_null(False),
        _rn=ibis.row_number().over(w),
        _conv_before=conv.sum().over(cw) - conv,  # conversions of this person and type before the row
    )
    # a boundary opens a stretch: a gap, a new claim segment, or the row after an `ends` touchpoint
    # (in the buyer view also after a conversion); conversions are counted since the last boundary
    t = t.mutate(_boundary=t._gap_start | (t._default & t._prev_end))
    cw = ibis.cumulative_window(group_by=[t.person_key, t.journey_type], order_by=[t.timestamp, t.event_id])
    at_boundary = ibis.ifelse(t._boundary, t._conv_before, ibis.null("int64")).max().over(cw)
    # the default type: with repeat_after_conversion a further conversion starts a new journey (the loyalty loop)
    repeat_start = t._default & t._repeat_splits & t.is_conversion & ((t._conv_before - at_boundary) >= 1)
    t = t.mutate(_start=(t._boundary | repeat_start).cast("int64"))
    keys = [t.person_key, t.journey_type]
    order = [t.timestamp, t.event_id]
    cw = ibis.cumulative_window(group_by=keys, order_by=order)
    third = {
        "_seq": t._start.sum().over(cw),
        "_start_rn": ibis.ifelse(t._start == 1, t._rn, ibis.null("int64")).max().over(cw),
    }
    dropped = [
        "_ts",
        "_timeout",
        "_default",
        "_ends",
        "_repeat_splits",
        "_gap_start",
        "_prev_end",
        "_rn",
        "_conv_before",
        "_boundary",
        "_start",
        "_seq",
        "_start_rn",
        "_claim_seg",
    ]
    if pm is not None:
        third |= _carried_phase_windows(t, pm, keys, order)
        dropped += _CARRY_SCRATCH
    t = t.mutate(**third)
    seq = t._seq
    if seq_offsets is not None:
        o = seq_offsets.select(_jl_ok="person_key", _jl_ot="journey_type", _jl_seq0="_jl_seq0")
        t = t.left_join(o, [t.person_key == o._jl_ok, t.journey_type == o._jl_ot]).drop("_jl_ok", "_jl_ot")
        seq = t._seq + t._jl_seq0.fill_null(0)
        dropped.append("_jl_seq0")
    out = {
        "journey_id": t.person_key + "/" + t.journey_type + "/" + seq.cast("string"),
        "position": t._rn - t._start_rn + 1,
    }
    if pm is not None:
        out |= _carried_phase(t, pm)
    t = t.mutate(**out)
    return t.drop(*dropped)


#: the scratch columns of the carried phase (:func:`_carried_phase_windows`)
_CARRY_SCRATCH = ("_code", "_prev_code", "_next_start", "_jl_own_phase_index")


def _carried_phase_windows(t: ir.Table, pm: PhaseModel, keys: list, order: list) -> dict[str, ir.Value]:
    """The splitter's third pass, for the phase carried forward within each journey.

    Each row with a phase of its own (and each journey's first row, with the default phase or "none")
    gets the code ``row_number * k + phase index``: the running maximum of the codes is the latest one in
    the journey, and the maximum up to the row before gives the previous row's phase (for regressions and
    phase visits). ``t`` has ``_start`` (1 where a journey starts), ``_rn`` and ``_jl_own_phase_index``.
    """
    k = len(pm.phase_names) + 1
    start_index = ibis.literal(k - 1 if pm.default_phase is None else pm.index(pm.default_phase), "int64")
    own = t._jl_own_phase_index.cast("int64")
    code = ibis.cases(
        (t._start == 1, t._rn * k + own.fill_null(start_index)),
        (own.notnull(), t._rn * k + own),
        else_=ibis.null("int64"),
    )
    w = ibis.window(group_by=keys, order_by=order)
    return {
        "_code": code.max().over(ibis.cumulative_window(group_by=keys, order_by=order)),
        "_prev_code": code.max().over(ibis.window(group_by=keys, order_by=order, rows=(None, -1))),
        "_next_ts": t.timestamp.lead().over(w),
        "_next_start": t._start.lead().over(w),
    }


def _carried_phase(t: ir.Table, pm: PhaseModel) -> dict[str, ir.Value]:
    """``phase``, ``phase_index``, ``phase_regression``, ``_run_start`` and ``_next_ts`` (within the
    journey) from the codes of :func:`_carried_phase_windows`."""
    k = len(pm.phase_names) + 1

    def index(code: ir.IntegerValue) -> ir.IntegerValue:
        return ibis.ifelse((code % k) == k - 1, ibis.null("int64"), code % k)

    phase_index = index(t._code)
    # the previous row's phase, NULL at the journey's first row
    prev_index = ibis.ifelse(t._start == 1, ibis.null("int64"), index(t._prev_code))
    return {
        "phase_index": phase_index,
        "phase": phase_index.cases(*enumerate(pm.phase_names), else_=ibis.null("string")),
        "phase_regression": (phase_index < prev_index).fill_null(False),
        "_run_start": (t._start == 1) | (phase_index != prev_index).fill_null(True),
        "_next_ts": ibis.ifelse(t._next_start == 0, t._next_ts, ibis.null("timestamp('UTC')")),
    }


def _no_stage(name: str, expr: ir.Table) -> ir.Table:
    return expr


#: the columns of ``journey_touchpoints`` the build computes (the others are the touchpoint's own): the
#: stitched person and everything from ``journey_id`` on
_DERIVED_TOUCH_COLUMNS = ("person_id", "identified", *TOUCH_COLUMNS[TOUCH_COLUMNS.index("journey_id") :])


def with_journey_rows(touchpoints: ir.Table, rows: ir.Table) -> ir.Table:
    """``journey_touchpoints``: the touchpoints joined with their :func:`journey_rows` by ``event_id``
    (unique: ingest rejects a second row with the same id)."""
    rest = touchpoints.drop(*[c for c in touchpoints.columns if c in _DERIVED_TOUCH_COLUMNS])
    return rest.join(rows.select("event_id", *_DERIVED_TOUCH_COLUMNS), "event_id").select(*TOUCH_COLUMNS)


def flagged_rows(
    touchpoints: ir.Table,
    jm: JourneyModel,
    pm: PhaseModel,
    mapping: ir.Table | None = None,
    *,
    keep: tuple[str, ...] = (),
) -> ir.Table:
    """Stitched touchpoints as narrow rows with the rules' facts (:func:`with_journey_flags` and the own
    phase index), what :func:`split_rows` sorts; ``keep``: more columns of ``touchpoints`` to carry.
    Touchpoints that :func:`stitch` has keyed already (``person_key``) are not stitched again."""
    touchpoints = touchpoints.drop(
        *[c for c in ("row_hash", "import_id") if c in touchpoints.columns and c not in keep]
    )
    stitched = touchpoints if "person_key" in touchpoints.columns else stitch(touchpoints, mapping)
    stitched = with_journey_flags(
        stitched.mutate(_jl_own_phase_index=pm.phase_index_expr(stitched, person="person_key")), jm
    )
    return stitched.select(
        "event_id",
        "person_key",
        "identified",
        "timestamp",
        "_jl_own_phase_index",
        *flag_columns(stitched),
        *keep,
    )


def split_rows(
    t: ir.Table,
    jm: JourneyModel,
    pm: PhaseModel,
    *,
    stage: Any = _no_stage,
    seq_offsets: ir.Table | None = None,
) -> ir.Table:
    """:func:`flagged_rows` -> the rows :func:`journey_rows` describes."""
    t = split_journeys(t, jm, pm=pm, stage=stage, flagged=True, seq_offsets=seq_offsets)
    t = t.mutate(person_id=t.person_key)
    return t.select("event_id", *_DERIVED_TOUCH_COLUMNS, "timestamp", "_next_ts", "_run_start")


def journey_rows(
    touchpoints: ir.Table,
    jm: JourneyModel,
    pm: PhaseModel,
    mapping: ir.Table | None = None,
    *,
    stage: Any = _no_stage,
) -> ir.Table:
    """Stitched, typed, split and phased touchpoints as narrow rows: event_id, the columns the build
    derives (:data:`_DERIVED_TOUCH_COLUMNS`), and for :func:`journey_phases` ``timestamp``, ``_next_ts`` and
    ``_run_start``; :func:`with_journey_rows` joins them to the touchpoints (``journey_touchpoints``).

    The rules are evaluated once per touchpoint, on the wide rows; the window passes (typing, splitting,
    phases) then sort narrow rows (event id, person, timestamp and those facts). Sorting whole touchpoints,
    properties and all, in every pass took twice as long at 1M events.

    ``stage(name, expr) -> table`` may materialise intermediate steps (the build does, on DuckDB: a
    step used several times is then computed once).
    """
    t = stage("stitched", flagged_rows(touchpoints, jm, pm, mapping))
    return split_rows(t, jm, pm, stage=stage)


# -- journeys --------------------------------------------------------------------------------------------


def journeys_base(jt: ir.Table, jm: JourneyModel, *, earlier: ir.Table | None = None) -> ir.Table:
    """One row per journey from ``journey_touchpoints`` (status is added when read: see :func:`journeys_view`).

    ``earlier`` (person_key, journey_type, ``_jl_conv0``): ``jt`` holds a person's journeys from a clean cut on
    (see :func:`clean_cuts`), after ``_jl_conv0`` converted journeys of that type (for ``repeat``).

    A model without an ``involvement`` block builds like any other: ``human_contacts`` is 0 for every
    journey (the model names no human-contact channels; likewise with an empty ``human_contact_channels``)
    and ``involvement`` is NULL for every journey (no rule to classify by; ``low`` would claim a
    classification the model does not make). NULL is also what journeys outside the involvement types get.
    """
    conv_pos = ibis.ifelse(jt.is_conversion, jt.position, ibis.null("int64"))
    conv_ts = ibis.ifelse(jt.is_conversion, jt.timestamp, ibis.null("timestamp('UTC')"))
    # grouped by the journey id alone (person and type follow from it): hashing three strings per
    # touchpoint cost more than taking two of them from any row; the distinct channels are collected
    # once, and counted from that list
    agg = jt.group_by("journey_id").aggregate(
        person_id=jt.person_id.arbitrary(),
        journey_type=jt.journey_type.arbitrary(),
        identified=jt.identified.max(),
        start=jt.timestamp.min(),
        end=jt.timestamp.max(),
        touchpoints=jt.count(),
        purchase_contact_number=conv_pos.min(),
        converted_at=conv_ts.min(),
        revenue=jt.revenue.sum(),
        _channels=jt.channel.collect(distinct=True),
        first_channel=jt.channel.argmin(jt.position),
        last_channel=jt.channel.argmax(jt.position),
        first_touchpoint=jt.touchpoint.argmin(jt.position),
        human_contacts=_human_contacts(jt, jm),
        phase_reached=jt.phase_index.max(),
        last_phase=jt.phase.argmax(jt.position),
        phase_regressions=jt.phase_regression.cast("int64").sum(),
    )
    # channels and n_channels where the list was, so that the columns keep their order
    at = agg.columns.index("_channels")
    order = [*agg.columns[:at], "channels", "n_channels", *agg.columns[at + 1 :]]
    agg = agg.mutate(channels=agg._channels.sort().join(","), n_channels=agg._channels.length().fill_null(0))
    agg = agg.select(*order)
    agg = agg.mutate(
        touchpoints_before_purchase=agg.purchase_contact_number - 1,
        duration_days=(agg.end.epoch_seconds() - agg.start.epoch_seconds()) / SECONDS_PER_DAY,
        timeout_days=_per_type(jm, agg, "timeout_days", "float64"),
        has_conversion=agg.journey_type.isin([jt.name for jt in jm.journey_types if jt.conversion]),
    )
    columns = agg.columns
    offset: ir.IntegerValue = ibis.literal(0, "int64")
    if earlier is not None:
        e = earlier.select(_jl_ep="person_key", _jl_et="journey_type", _jl_conv0="_jl_conv0")
        agg = agg.left_join(e, [agg.person_id == e._jl_ep, agg.journey_type == e._jl_et])
        offset = agg._jl_conv0.fill_null(0)
    w = ibis.cumulative_window(
        group_by=[agg.person_id, agg.journey_type], order_by=[agg.start, agg.journey_id]
    )
    converted = agg.converted_at.notnull().cast("int64")
    before = converted.sum().over(w) - converted + offset
    agg = agg.mutate(repeat=(agg.has_conversion & (before > 0))).select(*columns, "repeat")
    return agg.mutate(involvement=_involvement(jm, agg))


def _human_contacts(jt: ir.Table, jm: JourneyModel) -> ir.IntegerValue:
    """Per journey (an aggregate over ``jt``): its touchpoints on a human-contact channel.

    0 when the model names no such channel (no involvement block, or an empty ``human_contact_channels``):
    ``human_contact_expr`` is then the scalar ``False``, which has no ``sum``; a constant metric is fine.
    """
    inv = jm.involvement
    if inv is None or not inv.human_contact_channels:
        return ibis.literal(0, "int64")
    return inv.human_contact_expr(jt).cast("int64").sum()


def _involvement(jm: JourneyModel, agg: ir.Table) -> ir.StringValue:
    """Low vs high involvement for the model's involvement types (NULL for other journeys).

    A journey that did not convert is judged on all its touchpoints and its whole duration.
    """
    if jm.involvement is None or not jm.involvement_types:
        return ibis.null("string")
    until = agg.converted_at.fill_null(agg.end)
    level = jm.involvement.level_expr(
        touchpoints_before_conversion=agg.touchpoints_before_purchase.fill_null(agg.touchpoints),
        duration_days=(until.epoch_seconds() - agg.start.epoch_seconds()) / SECONDS_PER_DAY,
        human_contacts=agg.human_contacts,
        revenue=agg.revenue,
    )
    return ibis.ifelse(agg.journey_type.isin(jm.involvement_types), level, ibis.null("string"))


def journeys_view(
    base: ir.Table, touchpoints: ir.Table, persons: ir.Table, *, data_end: ir.TimestampScalar | None = None
) -> ir.Table:
    """``journeys_base`` with ``status`` computed against the data's end (the latest touchpoint) and the
    person's ``persona`` (so both stay right after an import without a rebuild).

    ``data_end``: the data's end when the caller already knows it (the server caches it between imports,
    so that looking up one person does not scan every touchpoint)."""
    p = persons.select(_pid="person_id", persona="persona")
    base = base.left_join(p, base.person_id == p._pid).drop("_pid")
    end = touchpoints.timestamp.epoch_seconds().max() if data_end is None else data_end.epoch_seconds()
    age = end - base.end.epoch_seconds()
    status = ibis.cases(
        (base.converted_at.notnull(), "converted"),
        (age <= base.timeout_days * SECONDS_PER_DAY, "open"),
        (base.has_conversion, "abandoned"),
        else_="closed",
    )
    return base.mutate(status=status)


def journey_phases(jt: ir.Table) -> ir.Table:
    """Per journey and phase: first entry, exit, time spent, touchpoints, visits (runs) in the phase.

    A visit runs from its first touchpoint to the journey's next touchpoint after it (to its own last one
    at the journey's end); so a phase's time is the sum, over its touchpoints, of the time to the journey's
    next touchpoint (0 for the last), and a visit starts where the phase differs from the previous
    touchpoint's. :func:`journey_rows` carries both per touchpoint (``_next_ts``, ``_run_start``); for any
    other table they take one window pass over each journey.
    """
    if "_next_ts" not in jt.columns:
        w = ibis.window(group_by=jt.journey_id, order_by=[jt.timestamp, jt.event_id])
        prev = jt.phase.lag().over(w)
        jt = jt.mutate(_next_ts=jt.timestamp.lead().over(w), _run_start=prev.isnull() | (jt.phase != prev))
    t = jt.filter(jt.phase.notnull())
    exit_ts = t._next_ts.fill_null(t.timestamp)
    spent = exit_ts.epoch_seconds() - t.timestamp.epoch_seconds()
    return t.group_by(["journey_id", "person_id", "journey_type", "phase", "phase_index"]).aggregate(
        entered_at=t.timestamp.min(),
        exited_at=exit_ts.max(),
        seconds_in_phase=spent.sum(),
        touchpoints=t.count(),
        visits=t._run_start.cast("int64").sum(),
    )


# -- incremental builds -----------------------------------------------------------------------------------


def incremental_persons(
    new_touchpoints: ir.Table, old_ids: ir.Table, new_ids: ir.Table, old_journeys: ir.Table
) -> ir.Table:
    """The persons an incremental build rebuilds: (person_key, ``_jl_whole``).

    Those with new touchpoints, and both keys of every device whose touchpoints a new link moves from one
    key to another (from an ``anon:`` visitor, or from a person whose link an earlier one displaced):
    those are rebuilt whole (``_jl_whole``), as their old touchpoints change hands. A device first seen in
    the new rows moves nothing. ``old_ids``/``new_ids``: the identity map of the last build and of this
    one; ``old_journeys``: the last build's ``journeys_base``.
    """
    new_rows = stitch(new_touchpoints, new_ids)
    anon = new_rows.filter(new_rows.anonymous_id.notnull()).select("anonymous_id").distinct()
    o = old_ids.select(_jl_a="anonymous_id", _jl_old="person_id")
    n = new_ids.select(_jl_b="anonymous_id", _jl_new="person_id")
    m = anon.left_join(o, anon.anonymous_id == o._jl_a).left_join(n, anon.anonymous_id == n._jl_b)
    visitor = ibis.literal(ANON_PREFIX) + m.anonymous_id
    # the device had touchpoints before: it was linked, or it was an unidentified visitor's
    seen = m._jl_old.notnull() | visitor.isin(old_journeys.person_id)
    m = m.mutate(_jl_old=m._jl_old.fill_null(visitor), _jl_new=m._jl_new.fill_null(visitor), _jl_seen=seen)
    moved = m.filter(m._jl_seen & (m._jl_old != m._jl_new))
    parts = ibis.union(
        new_rows.select("person_key", _jl_whole=ibis.literal(0, "int64")),
        moved.select(person_key=moved._jl_old, _jl_whole=ibis.literal(1, "int64")),
        moved.select(person_key=moved._jl_new, _jl_whole=ibis.literal(1, "int64")),
    )
    return parts.group_by("person_key").aggregate(_jl_whole=parts._jl_whole.max() == 1)


def clean_cuts(t: ir.Table, jm: JourneyModel) -> ir.Table:
    """Where each person's rebuild starts: (person_key, ``_cut``), from the narrow flagged rows ``t`` of the
    persons :func:`incremental_persons` found (with ``_jl_new``, the row is new, and ``_jl_whole``).

    Every rule reads only a person's earlier touchpoints (a gap, the previous row's end, the conversions so
    far, the claims opened so far), so the touchpoints before a person's first new one keep their
    journeys. A rebuild can start over at a *clean* row, where every rule starts afresh: more than the
    default type's timeout after the person's previous touchpoint (a gap for that type, whatever the
    previous row's type), and, for each other type, more than its timeout after the person's previous
    touchpoint that may belong to it (its claim segment ends). The journeys before it are kept; the ones
    from it on are rebuilt, numbered on from the kept ones. ``_cut`` is the timestamp of the latest clean
    row at or before the first new one (the person's first row when there is none: everything), or NULL
    for a whole rebuild. The phase model's audience rules count purchases over the whole history: the
    caller rebuilds whole persons then.

    ``_jl_append``: the person is not rebuilt whole and all their new touchpoints come after all their
    stored ones (a later timestamp). By the same rule every stored row then comes out as it was: only the
    new rows are written, and ``_jl_from`` (the first new row's timestamp; else ``_cut``) says from where a
    person's rows are written.
    """
    w = ibis.window(group_by=t.person_key, order_by=[t.timestamp, t.event_id], rows=(None, -1))
    ts = t.timestamp.epoch_seconds()
    # how long a row holds the rules open: the default type's timeout, or the longest timeout of a type it
    # may belong to. A row is clean when it comes after every earlier row's horizon: one running maximum
    # instead of one per type (0.6 s at 10M + 1%, with six types)
    default = jm.default_type.timeout_seconds
    longer = [
        ibis.ifelse(t[f"_jl_member{i}"], jt.timeout_seconds, default)
        for i, jt in enumerate(jm.journey_types)
        if not jt.default and jt.timeout_seconds > default
    ]
    hold = ibis.greatest(*longer) if len(longer) > 1 else longer[0] if longer else ibis.literal(default)
    before = (ts + hold).max().over(w)
    clean = before.isnull() | (ts > before)
    new_before = t._jl_new.cast("int64").sum().over(w).fill_null(0)
    c = t.mutate(_jl_clean=clean & (new_before == 0))
    whole = c._jl_whole.any()
    first_new = c.timestamp.min(where=c._jl_new)
    last_old = c.timestamp.max(where=~c._jl_new)
    cut = ibis.ifelse(whole, ibis.null(c.timestamp.type()), c.timestamp.max(where=c._jl_clean))
    append = (~whole & (last_old.isnull() | (first_new > last_old))).fill_null(False)
    return c.group_by("person_key").aggregate(
        _cut=cut, _jl_append=append, _jl_from=ibis.ifelse(append, first_new, cut)
    )


# -- materialising in a workspace -------------------------------------------------------------------------

BUILDS_SCHEMA = ibis.schema(
    {
        "build_id": "int64",
        "built_at": "timestamp('UTC')",
        "mode": "string",
        "phase_model": "string",
        "journey_model": "string",
        "config_hash": "string",
        "import_watermark": "int64",
        "persons_rebuilt": "int64",
        "journeys": "int64",
        "touchpoints": "int64",
        "seconds": "float64",
    }
)
DERIVED_TABLES = (
    "journey_touchpoints",
    "journeys_base",
    "journey_phases",
    "identity_links",
    "identities",
    "identity_conflicts",
)


#: DuckDB memory a full build needs per touchpoint of a slice (measured at 10M events: 1.6M-touchpoint
#: slices under a 2 GB limit built in 127 s at 2.5 GB peak; one 10M slice took 158 s, spilling, at 2.9 GB)
BYTES_PER_SLICE_ROW = 1_300
#: the fewest touchpoints a slice holds (below that, each slice's fixed cost would dominate)
MIN_SLICE_ROWS = 500_000
#: the most touchpoints a slice holds, whatever the memory limit: at 10M events, without a limit, slices of
#: 1.5M touchpoints built faster than one piece (65.5 and 66.9 s against 75.4 and 75.9 s, interleaved) at
#: 27% of its peak memory (2.5 GB against 9.3 GB); slices of 1M took 70.5 s at 2.1 GB
MAX_SLICE_ROWS = 1_500_000

_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMGTP]?i?B|bytes)\s*$", re.IGNORECASE)
_UNIT = {
    "b": 1,
    "bytes": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "pib": 2**50,
}


def memory_limit_bytes(ws: Workspace) -> int | None:
    """DuckDB's ``memory_limit`` of the workspace's connection in bytes (None elsewhere or unreadable)."""
    if ws.engine != "duckdb":
        return None
    (text,) = ws.con.con.execute("SELECT current_setting('memory_limit')").fetchone()
    match = _SIZE.match(str(text))
    if match is None:
        return None
    return int(float(match.group(1)) * _UNIT[match.group(2).lower()])


#: a build's default DuckDB memory budget: this much per touchpoint (15 GB at 100M events) ...
BUDGET_BYTES_PER_TOUCHPOINT = 150
#: ... and at least this much (10M events: a full build peaked at 2.5 GB of the 19 GB DuckDB allows itself
#: on a 24 GB machine by default, holding what it had read; under this budget, at 1.8 GB, as fast)
MIN_BUDGET_BYTES = 1_500 * 2**20


@contextlib.contextmanager
def memory_budget(ws: Workspace) -> Iterator[int | None]:
    """Run a build under a DuckDB memory limit in proportion to the workspace's touchpoints (see
    :data:`BUDGET_BYTES_PER_TOUCHPOINT`), unless the user set one (``memory_limit``): the budget, or None.

    DuckDB's own default is 80% of the machine's memory, and it keeps what it has read while it is under
    it; a build needs far less, and the slices (:func:`_slices`) follow the budget. The limit is restored
    afterwards, for the queries that follow on the same connection."""
    limit = memory_limit_bytes(ws)
    if ws.engine != "duckdb" or ws.memory_limit is not None or limit is None:
        yield None
        return
    rows = int(_value(ws.con, ws.touchpoints.count()))
    budget = max(MIN_BUDGET_BYTES, rows * BUDGET_BYTES_PER_TOUCHPOINT)
    if budget >= limit:
        yield None
        return
    raw = ws.con.con
    # a number of our own, not user input
    raw.execute(f"SET memory_limit = '{budget // 2**20}MiB'")
    try:
        yield budget
    finally:
        import duckdb

        # after a fatal DuckDB error the connection may refuse this; it is closed then anyway
        with contextlib.suppress(duckdb.Error):
            raw.execute("RESET memory_limit")


#: an incremental build lets DuckDB compact the derived tables at its commit only once more than this share of
#: a table's stored rows are rows it deleted (see :func:`_deferred_vacuum`)
VACUUM_DEAD_SHARE = 0.25


def dead_shares(ws: Workspace) -> dict[str, float]:
    """Per derived table, the share of its stored rows that are deleted ones (DuckDB keeps a deleted row in
    its row group until a checkpoint compacts the group): 1 - live rows / stored rows, 0 when empty."""
    stored = dict(
        ws.con.con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND NOT temporary"
        ).fetchall()
    )
    shares = {}
    for name in DERIVED_TABLES:
        total = stored.get(name) or 0
        shares[name] = 1 - int(_value(ws.con, ws.con.table(name).count())) / total if total else 0.0
    return shares


@contextlib.contextmanager
def _deferred_vacuum(ws: Workspace) -> Iterator[bool]:
    """An incremental build's commit without DuckDB's vacuum, unless a derived table has more than
    :data:`VACUUM_DEAD_SHARE` deleted rows: yields whether the vacuum runs.

    At its checkpoint DuckDB merges adjacent row groups whose live rows fit in fewer groups. After an
    incremental build has deleted the journeys it replaces, a partly filled group (DuckDB's parallel
    inserts leave one per thread and slice in a full build's tables) lets it merge several: at 10M events
    + 1% it rewrote 357K rows of ``journeys_base``, 1.1 s of a 2 s commit, to reclaim the space of 70K.
    So that waits: the vacuum runs at the first incremental build that finds a quarter of a table deleted
    (DuckDB then merges what it can), and a full build writes every table anew."""
    if ws.engine != "duckdb" or max(dead_shares(ws).values(), default=0.0) > VACUUM_DEAD_SHARE:
        yield True
        return
    raw = ws.con.con
    raw.execute("SET max_vacuum_tasks = 0")
    try:
        yield False
    finally:
        import duckdb

        with contextlib.suppress(duckdb.Error):
            raw.execute("RESET max_vacuum_tasks")


def _slices(ws: Workspace, slice_rows: int | None) -> int:
    """How many slices a full build runs in: as many as it takes for each slice's touchpoints to fit in
    DuckDB's memory limit and hold at most :data:`MAX_SLICE_ROWS` (``slice_rows`` each when given); always
    1 on Spark, which partitions the work itself."""
    if ws.engine != "duckdb":
        return 1
    if slice_rows is None:
        limit = memory_limit_bytes(ws)
        slice_rows = MAX_SLICE_ROWS
        if limit is not None:
            slice_rows = min(slice_rows, max(MIN_SLICE_ROWS, limit // BYTES_PER_SLICE_ROW))
    rows = int(_value(ws.con, ws.touchpoints.count()))
    return max(1, -(-rows // max(1, slice_rows)))


def _config_hash(jm: JourneyModel, pm: PhaseModel) -> str:
    import hashlib

    text = jm.model_dump_json() + pm.model_dump_json()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _first_row(con: Any, expr: ir.Table | ir.Scalar) -> tuple[Any, ...] | None:
    """The first row of a (small) expression, a scalar's as a 1-tuple; None when there is none. On DuckDB
    fetched from DuckDB directly: Ibis's ``execute`` loads its pandas converters for it, 0.3 s of every
    build's time."""
    if con.name == "duckdb":
        return con.con.execute(str(con.compile(expr))).fetchone()
    if isinstance(expr, ir.Scalar):
        return (expr.execute(),)
    rows = expr.to_pyarrow().to_pylist()
    return tuple(rows[0].values()) if rows else None


def _value(con: Any, expr: ir.Scalar) -> Any:
    """A scalar expression's value (see :func:`_first_row`)."""
    (value,) = _first_row(con, expr)
    return value


def last_build(ws: Workspace) -> dict[str, Any] | None:
    if not ws.has_table("builds"):
        return None
    b = ws.table("builds")
    rows = b.order_by(ibis.desc("build_id")).limit(1).to_pyarrow().to_pylist()
    return rows[0] if rows else None


def _last_build_state(ws: Workspace) -> tuple[str, int] | None:
    """The last build's configuration hash and import watermark (:func:`last_build` would load pandas for
    its time stamp)."""
    if not ws.has_table("builds"):
        return None
    b = ws.table("builds")
    row = _first_row(
        ws.con, b.order_by(ibis.desc("build_id")).limit(1).select("config_hash", "import_watermark")
    )
    return None if row is None else (row[0], int(row[1]))


def _out_of_resources(func: Callable[..., BuildResult]) -> Callable[..., BuildResult]:
    """A build that runs out of memory or disk space raises :class:`OutOfResourcesError` with what to do,
    not DuckDB's error: the tables a reader sees are then still the last build's (a sliced build writes
    into ``_jl_next_*`` tables and swaps them in at the end; the others run in one transaction)."""
    import errno
    import functools

    @functools.wraps(func)
    def wrapper(ws: Workspace, **kwargs: Any) -> BuildResult:
        import duckdb

        from journeylens.errors import OutOfResourcesError

        unchanged = "nothing was changed: the workspace keeps its last build"
        try:
            with memory_budget(ws) as budget:
                try:
                    return func(ws, **kwargs)
                except (MemoryError, duckdb.OutOfMemoryException):
                    limit = memory_limit_bytes(ws)
                    if budget is not None:
                        raise OutOfResourcesError(
                            f"workspace {ws.location}: the build ran out of memory (its default budget, "
                            f"{budget / 2**30:.1f} GiB); {unchanged}. Give it more with a memory_limit (e.g. "
                            "`memory_limit: 8GB` in workspace.yaml): a build uses the limit you set"
                        ) from None
                    where = (
                        f"DuckDB's memory limit is {limit / 2**30:.1f} GiB"
                        if limit
                        else "the machine's memory"
                    )
                    raise OutOfResourcesError(
                        f"workspace {ws.location}: the build ran out of memory ({where}); {unchanged}. Close "
                        "other programs, or set a lower memory_limit (e.g. `memory_limit: 4GB` in "
                        "workspace.yaml): DuckDB then spills to disk and the build works in smaller slices of "
                        "persons"
                    ) from None
        except (OSError, duckdb.IOException) as exc:
            text = str(exc)
            if getattr(exc, "errno", None) != errno.ENOSPC and "no space left" not in text.lower():
                raise
            raise OutOfResourcesError(
                f"workspace {ws.location}: the disk ran out of space during the build ({text.splitlines()[0]}); "
                f"{unchanged}. A full build needs free space beside the database for a Parquet copy of the "
                "touchpoints (removed afterwards) and for DuckDB's spill files"
            ) from None

    return wrapper


@_out_of_resources
def build(
    ws: Workspace,
    *,
    model: str | PhaseModel = "five-phase",
    journey_model: str | JourneyModel | None = None,
    full: bool = False,
    slice_rows: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BuildResult:
    """Materialise journeys, phases and each touchpoint's journey; incremental when it can be, and only
    recorded when nothing was imported since the last build of the same models.

    A full build on DuckDB runs in slices of at most :data:`MAX_SLICE_ROWS` touchpoints, fewer when they
    would not fit in its memory limit (about :data:`BYTES_PER_SLICE_ROW` per touchpoint), or of
    ``slice_rows`` touchpoints when given: the persons are split by a hash of their stitched key into as
    many groups as needed, and each group is built and appended in turn. Every rule works within one
    person, so the result is the same; each slice's sorts fit in memory instead of spilling the whole data
    set to disk. The slices' touchpoints wait in a Parquet scratch directory beside the database (about
    the size of the touchpoints as Parquet; removed afterwards). ``progress(done, slices)`` is called
    before the first slice and after each one (an incremental build does not call it)."""
    from journeylens.journeys.models.journey_model import load_journey_model
    from journeylens.journeys.models.phase_model import load_phase_model

    started = time.perf_counter()
    pm = load_phase_model(model)
    jm = load_journey_model(journey_model or "default")
    con = ws.con
    config = _config_hash(jm, pm)
    previous = _last_build_state(ws)
    tp = ws.touchpoints
    watermark = _value(con, tp.import_id.max())
    watermark = int(watermark) if watermark is not None and watermark == watermark else 0
    can_increment = (
        not full
        and previous is not None
        and previous[0] == config
        and all(ws.has_table(name) for name in DERIVED_TABLES)
        and ws.engine == "duckdb"
    )
    if can_increment and watermark <= previous[1]:
        # nothing imported since the last build, which used the same models: its tables are up to date
        # (status and persona are computed when read), and rebuilding no one still cost 2 s of fixed work
        with ws.transaction():
            return _finish(ws, "incremental", pm, jm, config, watermark, 0, 0, started, incremental=True)
    scratch: list[str] = []

    def stage(name: str, expr: ir.Table) -> ir.Table:
        # materialise a step that later steps read more than once (DuckDB: a temporary table)
        if ws.engine != "duckdb":
            return expr
        table = f"_jl_build_{name}"
        scratch.append(table)
        return _temp_table(con, table, expr)

    # the links (rows with both ids) once, for the identity map and the conflicts
    if can_increment:
        watermark_before = previous[1]
        new_tp = tp.filter(tp.import_id > watermark_before)
        # only a device that a new row links can change hands: its links are recomputed from all its rows,
        # and the map and the conflicts of every other device stay as they are
        relinked = new_tp.filter(new_tp.person_id.notnull() & new_tp.anonymous_id.notnull())
        relinked = stage("relinked", relinked.select("anonymous_id").distinct())
        # their stored links merged with the new rows' (finding their links among all the touchpoints
        # again cost 0.3 s at 10M events)
        stored = con.table("identity_links").semi_join(relinked, "anonymous_id")
        links = stage("links", merge_links(stored, identity_links(new_tp)))
        changed = identity_map(tp, links=links)
        old_ids = con.table("identities")
        # the whole new map, for finding whom the new rows affect before the table is updated
        mapping = ibis.union(old_ids.anti_join(relinked, "anonymous_id").select(*changed.columns), changed)
    else:
        links = stage("links", identity_links(tp))
        mapping = identity_map(tp, links=links)
    conflicts = identity_conflicts(tp, links=links)
    slices = 1 if can_increment else _slices(ws, slice_rows)
    sliced = slices > 1
    if progress is not None and not can_increment:
        progress(0, slices)
    if sliced:
        _build_slices(ws, tp, links, mapping, conflicts, jm, pm, slices, stage, progress)
    vacuum = _deferred_vacuum(ws) if can_increment else contextlib.nullcontext(True)
    with vacuum, ws.transaction():
        if can_increment:
            # who is rebuilt: against the last build's identity map, before it is updated
            persons = incremental_persons(new_tp, old_ids, mapping, con.table("journeys_base"))
            if pm.audience_rules:  # they count a person's purchases over the whole history
                persons = persons.mutate(_jl_whole=ibis.literal(True))
            affected_t = stage("persons", persons)
            # the relinked devices' rows, replaced (rewriting the whole map cost 1 s at 10M events)
            for name, rows_ in (
                ("identity_links", links),
                ("identities", changed),
                ("identity_conflicts", conflicts),
            ):
                con.raw_sql(
                    f"DELETE FROM {name} WHERE anonymous_id IN (SELECT anonymous_id FROM _jl_build_relinked)"  # noqa: S608 - fixed names
                )
                con.insert(name, rows_.select(*con.table(name).columns))
            ids = con.table("identities")
        elif not sliced:
            con.create_table("identity_links", links, overwrite=True)
            con.create_table("identities", mapping, overwrite=True)
            con.create_table("identity_conflicts", conflicts, overwrite=True)
            ids = con.table("identities")
        if can_increment:
            mode = "incremental"
            n_affected, rebuilt = _rebuild_affected(ws, tp, ids, affected_t, watermark_before, jm, pm, stage)
        else:
            mode = "full"
            n_affected = -1
            rebuilt = -1
            if sliced:
                # built outside the transaction (_build_slices); swapped in here, all at once
                for name in DERIVED_TABLES:
                    con.drop_table(name, force=True)
                    con.raw_sql(f"ALTER TABLE {_NEXT}{name} RENAME TO {name}")  # fixed names
            else:
                rows = stage("rows", journey_rows(tp, jm, pm, ids, stage=stage))
                con.create_table("journey_touchpoints", with_journey_rows(tp, rows), overwrite=True)
                jt = con.table("journey_touchpoints")
                con.create_table("journey_phases", journey_phases(rows), overwrite=True)
                con.create_table("journeys_base", journeys_base(jt, jm), overwrite=True)
            if progress is not None:
                progress(slices, slices)
        for table in scratch:
            con.drop_table(table, force=True)
        _refresh_views(ws)
        return _finish(
            ws, mode, pm, jm, config, watermark, n_affected, rebuilt, started, incremental=can_increment
        )


def _finish(
    ws: Workspace,
    mode: str,
    pm: PhaseModel,
    jm: JourneyModel,
    config: str,
    watermark: int,
    n_affected: int,
    rebuilt: int,
    started: float,
    *,
    incremental: bool,
) -> BuildResult:
    """Record a build in ``builds`` (inside its transaction) and say what it built; ``n_affected`` and
    ``rebuilt`` of -1: every person and touchpoint (a full build)."""
    con = ws.con
    counts = (
        int(_value(con, con.table("journeys_base").count())),
        int(_value(con, con.table("journey_touchpoints").count())),
    )
    if n_affected < 0:
        n_affected = int(_value(con, con.table("journeys_base").person_id.nunique()))
    if rebuilt < 0:
        rebuilt = counts[1]
    if not ws.has_table("builds"):
        con.create_table("builds", schema=BUILDS_SCHEMA)
    last_id = _value(con, ws.table("builds").build_id.max())
    # an empty table's max is None on DuckDB but NaN on Spark
    build_id = (int(last_id) if last_id is not None and last_id == last_id else 0) + 1
    seconds = time.perf_counter() - started
    record = {
        "build_id": build_id,
        "built_at": datetime.now(UTC),
        "mode": mode,
        "phase_model": pm.name,
        "journey_model": jm.name,
        "config_hash": config,
        "import_watermark": watermark,
        "persons_rebuilt": n_affected,
        "journeys": counts[0],
        "touchpoints": counts[1],
        "seconds": seconds,
    }
    _record_build(ws, record, incremental=incremental)
    return BuildResult(build_id, mode, pm.name, jm.name, n_affected, counts[0], counts[1], seconds, rebuilt)


def _record_build(ws: Workspace, record: dict[str, Any], *, incremental: bool) -> None:
    """Append ``record`` to ``builds``. An incremental build used the last build's models (its configuration
    hash says so): its row takes their names from that row, and the rest are numbers and a time the
    build made, as literals. Nothing is bound from Python then: DuckDB's Python client loads pandas for a
    bound value or an Arrow table, 0.2 s of an incremental build's 6 s at 10M events."""
    con = ws.con
    if incremental:
        b = ws.table("builds")
        last = b.filter(b.build_id == record["build_id"] - 1)
        values = {
            name: last[name]
            if name in ("phase_model", "journey_model")
            else ibis.literal(record[name], dtype)
            for name, dtype in BUILDS_SCHEMA.items()
        }
        con.insert("builds", last.select(**values))
        return
    import pyarrow as pa

    con.insert("builds", ibis.memtable(pa.Table.from_pylist([record], schema=BUILDS_SCHEMA.to_pyarrow())))


def _temp_table(con: Any, name: str, expr: ir.Table) -> ir.Table:
    """``expr`` into DuckDB temporary table ``name``, replacing it. Not ``create_table(..., overwrite=True)``:
    for a temporary table Ibis writes a second table and then copies it into the first (0.2 s for 0.8M
    narrow rows; every stage of every slice of a full build paid it)."""
    con.drop_table(name, force=True)
    return con.create_table(name, expr, temp=True)


def _rebuild_affected(
    ws: Workspace,
    tp: ir.Table,
    ids: ir.Table,
    affected_t: ir.Table,
    watermark_before: int,
    jm: JourneyModel,
    pm: PhaseModel,
    stage: Any,
) -> tuple[int, int]:
    """The incremental build's work, inside its transaction: the persons of ``affected_t``
    (:func:`incremental_persons`) rebuilt from their clean cut on (:func:`clean_cuts`); the persons rebuilt
    and the touchpoints recomputed."""
    con = ws.con
    # the touchpoints that may be theirs first (a person's own id, or a device linked to an affected person
    # or an affected visitor's), then stitched: stitching every touchpoint first cost 0.3 s more at 10M
    keys = affected_t.person_key
    devices = ibis.union(
        ids.semi_join(affected_t, ids.person_id == keys).select("anonymous_id"),
        affected_t.filter(keys.startswith(ANON_PREFIX)).select(anonymous_id=keys.substr(len(ANON_PREFIX))),
    )
    candidates = tp.filter(
        tp.person_id.isin(keys) | (tp.person_id.isnull() & tp.anonymous_id.isin(devices.anonymous_id))
    )
    stitched = stitch(candidates, ids)
    subset = stitched.join(affected_t, "person_key")
    subset = subset.mutate(_jl_new=subset.import_id > watermark_before)
    # with the columns journeys_base reads beyond the rows, and the rest of the touchpoints' own columns
    # for the rows written back (none sorted by the splitter: joined back). Carried from this one scan of
    # the touchpoints, they cost 0.3 s at 10M + 1%; reading the rows written back from the stored table
    # cost 0.5 s more (DuckDB reads every column of every row it joins)
    payload = ("channel", "touchpoint", "revenue")
    own = [c for c in TOUCH_COLUMNS if c not in _DERIVED_TOUCH_COLUMNS]
    carried = (*payload, *[c for c in own if c not in ("event_id", "timestamp", *payload)])
    narrow = stage("stitched", flagged_rows(subset, jm, pm, ids, keep=("_jl_new", "_jl_whole", *carried)))
    # from where each person is rebuilt (see clean_cuts); everything before stays as it is
    # (a person rebuilt whole may have no touchpoints left: an identified visitor's all moved)
    found = clean_cuts(narrow, jm)
    cuts = affected_t.left_join(found, "person_key").select(
        affected_t.person_key, found._cut, found._jl_append, found._jl_from
    )
    _temp_table(con, "_jl_affected", cuts)
    cuts = con.table("_jl_affected")
    # per person and type: the journeys kept before the cut, and how many of them converted
    old_jb = con.table("journeys_base")
    kept = old_jb.join(cuts, old_jb.person_id == cuts.person_key)
    kept = kept.filter(kept._cut.notnull() & (kept.start < kept._cut))
    offsets = stage(
        "offsets",
        kept.group_by(["person_key", "journey_type"]).aggregate(
            _jl_seq0=kept.count(), _jl_conv0=kept.converted_at.notnull().cast("int64").sum()
        ),
    )
    todo = narrow.join(cuts, "person_key")
    todo = todo.filter(todo._cut.isnull() | (todo.timestamp >= todo._cut))
    todo = todo.drop("_cut", "_jl_append", "_jl_from", "_jl_new", "_jl_whole", *carried)
    rows = stage("rows", split_rows(todo, jm, pm, stage=stage, seq_offsets=offsets))
    if pm.audience_rules:
        fresh = _replace_changed_rows(con, rows, cuts, stage)
    else:
        # an append-only person's stored rows stay as they are (clean_cuts): only the new ones are written.
        # The others' rows (an identity move, a touchpoint older than their last one) are replaced from
        # the cut on: few, and comparing them first would read the stored rows of every affected person
        # (0.7 s at 10M + 1%, for 2.1K changed rows)
        con.raw_sql(
            "DELETE FROM journey_touchpoints USING _jl_affected a "  # fixed names
            "WHERE journey_touchpoints.person_id = a.person_key AND NOT coalesce(a._jl_append, FALSE) "
            "AND (a._jl_from IS NULL OR journey_touchpoints.timestamp >= a._jl_from)"
        )
        written = rows.join(cuts.select("person_key", "_jl_from"), rows.person_id == cuts.person_key)
        fresh = written.filter(written._jl_from.isnull() | (written.timestamp >= written._jl_from))
        # staged, so that DuckDB hashes these few rows, not the wide ones they are joined to (0.2 s)
        fresh = stage("fresh", fresh.select(*rows.columns))
    # a fresh row is new or one that changed: the affected persons' rows carry their own columns
    con.insert("journey_touchpoints", with_journey_rows(narrow.select(*own), fresh))
    # journeys and phases from the cut on, replaced
    for name, column in (("journey_phases", "entered_at"), ("journeys_base", "start")):
        con.raw_sql(
            f"DELETE FROM {name} USING _jl_affected a WHERE {name}.person_id = a.person_key "  # noqa: S608 - fixed names
            f'AND (a._cut IS NULL OR {name}."{column}" >= a._cut)'
        )
    con.insert("journey_phases", journey_phases(rows))
    extra = narrow.select("event_id", *payload)
    summary = rows.join(extra, "event_id")
    con.insert(
        "journeys_base",
        journeys_base(summary, jm, earlier=offsets).select(*con.table("journeys_base").columns),
    )
    con.drop_table("_jl_affected", force=True)
    return int(_value(con, affected_t.count())), int(_value(con, rows.count()))


def _replace_changed_rows(con: Any, rows: ir.Table, cuts: ir.Table, stage: Any) -> ir.Table:
    """Under a phase model with audience rules every affected person is rebuilt whole: their stored rows
    are compared with the rebuilt ``rows`` by the derived columns, the changed ones deleted, and the rows
    to write (new or changed) returned. Most come out as they were: deleting and appending 0.4M rows of
    10M cost DuckDB 3 s at its checkpoint, reading them whole 1 s."""
    jt = con.table("journey_touchpoints")
    # with DuckDB's row id, by which the changed ones are deleted (by event id DuckDB compares every row's
    # id string: 0.17 s against 0.05 s at 10M). Incremental builds run on DuckDB only
    jt = jt.mutate(_jl_rowid=jt.rowid())
    # each affected person's rows from the cut on (a journey lies wholly on one side of a clean row;
    # NULL: all of them, such as an identified visitor's), the derived columns only
    old = jt.join(cuts, jt.person_id == cuts.person_key)
    old = old.filter(old._cut.isnull() | (old.timestamp >= old._cut))
    old = stage("old", old.select("event_id", "_jl_rowid", *_DERIVED_TOUCH_COLUMNS))
    both = rows.join(old, "event_id")
    same = both.filter(
        ibis.and_(*[both[c].identical_to(both[f"{c}_right"]) for c in _DERIVED_TOUCH_COLUMNS])
    ).select("event_id")
    same = stage("same", same)
    con.raw_sql(
        "DELETE FROM journey_touchpoints WHERE rowid IN "  # fixed names
        "(SELECT _jl_rowid FROM _jl_build_old ANTI JOIN _jl_build_same USING (event_id))"
    )
    return rows.anti_join(same, "event_id")


#: the prefix of the tables a sliced build makes (one per :data:`DERIVED_TABLES`) before swapping them in
_NEXT = "_jl_next_"


def _build_slices(
    ws: Workspace,
    tp: ir.Table,
    links: ir.Table,
    mapping: ir.Table,
    conflicts: ir.Table,
    jm: JourneyModel,
    pm: PhaseModel,
    slices: int,
    stage: Any,
    progress: Callable[[int, int], None] | None,
) -> None:
    """A full build in ``slices`` slices of persons, into ``_jl_next_*`` tables (DuckDB only).

    Each statement commits on its own: inside one transaction DuckDB keeps every replaced temporary table
    until the commit, so the slices' scratch tables piled up on disk (at 100M events, past 46 GB of spill
    before the disk filled). Readers still see the old tables until :func:`build` swaps the new ones in,
    in one transaction; a build killed half-way leaves only ``_jl_next_*`` tables, replaced by the next.

    The touchpoints are stitched and written out by slice once, in one pass that writes a Parquet
    directory per slice (a scratch directory in the workspace, removed afterwards); each slice then reads
    only its own files. Finding each slice's touchpoints by scanning every touchpoint again cost about
    1.2 s per slice at 10M events, so the slice count was a trade between memory and time."""
    import duckdb

    con = ws.con
    con.create_table(_NEXT + "identity_links", links, overwrite=True)
    con.create_table(_NEXT + "identities", mapping, overwrite=True)
    con.create_table(_NEXT + "identity_conflicts", conflicts, overwrite=True)
    ids = con.table(_NEXT + "identities")
    stitched = stitch(tp, ids)
    bucket = ((stitched.person_key.hash() % slices) + slices) % slices
    by_slice = stitched.mutate(_jl_slice=bucket)  # keyed: a slice is not stitched again
    # beside the database when it is a file (the system's temporary directory may be small), else there
    home = ws.path if ws.path is not None and ws.path.is_dir() else None
    remove_build_scratch(ws)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=home))
    raw = con.con
    try:
        # the path is an argument, not SQL text; the query is compiled from the build's own expressions
        raw.sql(con.compile(by_slice)).write_parquet(str(scratch), partition_by=["_jl_slice"], overwrite=True)
        for k in range(slices):
            files = scratch / f"_jl_slice={k}"
            if files.is_dir():
                # a temporary table, as stage() makes; the path is a parameter
                raw.execute(
                    f"CREATE OR REPLACE TEMP TABLE {_SLICE} AS SELECT * FROM read_parquet(?)",  # noqa: S608 - a fixed name
                    [str(files / "*.parquet")],
                )
                part = con.table(_SLICE)
            else:  # no person hashed into this slice
                part = stage("slice", by_slice.drop("_jl_slice").limit(0))
            _build_slice(ws, k, part, ids, jm, pm, stage, scratch / _JOURNEYS_DIR)
            if progress is not None and k + 1 < slices:
                progress(k + 1, slices)
        # the journeys in one insert, in no particular order: appended slice by slice (or inserted in
        # order, batch by batch), each slice left a part-filled row group (about 250K journeys per slice at
        # 10M events), and DuckDB merged them at the next process's first checkpoint, 1.1-1.6 s at 10M,
        # which the next import or incremental build paid. Unordered, each thread leaves one.
        raw.execute("SET preserve_insertion_order = false")
        try:
            raw.execute(
                f"INSERT INTO {_NEXT}journeys_base BY NAME SELECT * FROM read_parquet(?)",  # noqa: S608 - a fixed name
                [str(scratch / _JOURNEYS_DIR / "*.parquet")],
            )
        finally:
            raw.execute("RESET preserve_insertion_order")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        # after a fatal DuckDB error the connection may refuse even this; the table is temporary anyway
        with contextlib.suppress(duckdb.Error):
            raw.execute(f"DROP TABLE IF EXISTS {_SLICE}")  # a fixed name


#: the temporary table of the current slice's touchpoints (:func:`_build_slices`; the name ``stage``
#: gives it)
_SLICE = "_jl_build_slice"
#: the sliced build's scratch subdirectory for each slice's journeys (:func:`_build_slice`)
_JOURNEYS_DIR = "_jl_journeys"
#: the name of a sliced build's Parquet scratch directory in the workspace (then random characters)
SCRATCH_PREFIX = ".build-slices-"


def remove_build_scratch(ws: Workspace) -> int:
    """Remove the Parquet scratch that a sliced build killed half-way left in the workspace (it holds
    touchpoints, so an erasure removes it too); the number of directories removed.

    Only one process can hold a workspace, and its builds and erasures run one at a time, so any such
    directory found before a build starts belongs to no running build."""
    if ws.path is None or not ws.path.is_dir():
        return 0
    stale = [p for p in ws.path.glob(SCRATCH_PREFIX + "*") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


def _build_slice(
    ws: Workspace,
    k: int,
    part: ir.Table,
    ids: ir.Table,
    jm: JourneyModel,
    pm: PhaseModel,
    stage: Any,
    journeys_dir: Path,
) -> None:
    """Slice ``k`` (its touchpoints ``part``) into the ``_jl_next_*`` tables, created by the first; its
    journeys into a Parquet file in ``journeys_dir``, which :func:`_build_slices` inserts at the end."""
    con = ws.con
    rows = stage("rows", journey_rows(part, jm, pm, ids, stage=stage))
    touch = with_journey_rows(part, rows)
    if k == 0:
        con.create_table(_NEXT + "journey_touchpoints", touch, overwrite=True)
    else:
        con.insert(_NEXT + "journey_touchpoints", touch)
    phases = journey_phases(rows)
    if k == 0:
        con.create_table(_NEXT + "journey_phases", phases, overwrite=True)
    else:
        con.insert(_NEXT + "journey_phases", phases.select(*con.table(_NEXT + "journey_phases").columns))
    journeys = journeys_base(touch, jm)
    if k == 0:
        con.create_table(_NEXT + "journeys_base", schema=journeys.schema(), overwrite=True)
        journeys_dir.mkdir()
    # the path is an argument, not SQL text; the query is compiled from the build's own expressions
    con.con.sql(con.compile(journeys)).write_parquet(str(journeys_dir / f"{k:06d}.parquet"))


def _refresh_views(ws: Workspace) -> None:
    con = ws.con
    view = journeys_view(con.table("journeys_base"), ws.touchpoints, ws.persons)
    con.create_view("journeys", view, overwrite=True)
