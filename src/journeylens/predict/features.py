"""Features of journeys as they stood at a cut-off time, computed in the engine.

A *snapshot* is a (journey, cut-off) pair: the journey as somebody looking at the data at the cut-off would
have seen it. Only touchpoints that were *known* before the cut-off count:

- their timestamp is before the cut-off, and
- the person they belong to was known then: an anonymous-only touchpoint stitched to a person by a later
  identify counts from the moment of that link (``identities.first_linked``), not before. (Until the link
  the touchpoints belonged to an unidentified visitor; counting them earlier would use the future.)

A journey is *open at the cut-off* when it has a known touchpoint before it, has not converted before it,
and its last known touchpoint is within the journey type's timeout of it (the same rule as the ``journeys``
view's ``open`` status at the data's end).

Per snapshot the engine returns one row (:data:`NUMERIC` and :data:`CATEGORICAL` below, plus a count per
channel ``ch_<channel>`` and per content type ``ct_<content type>`` of a :class:`Vocabulary`), and, when
asked for, the *label*: whether the person made a purchase (a conversion in a purchase journey) in the
horizon after the cut-off. Nothing else of the journeys table is used, since its other columns (status,
end, touchpoints, revenue) are facts of the whole history; ``repeat`` and ``persona`` are known when the
journey starts. Times are epoch seconds (``ENGINE.md``: no interval arithmetic with mixed units).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from journeylens.schema import SATISFACTION_SCALES

if TYPE_CHECKING:
    from journeylens.store import Workspace

DAY = 86_400
PURCHASE = "purchase"

#: numeric features of every snapshot (besides the channel and content-type counts)
NUMERIC = (
    "touchpoints",
    "distinct_channels",
    "days_active",
    "days_since_last",
    "days_in_phase",
    "phase_reached",
    "current_phase_index",
    "phase_regressions",
    "satisfaction",
    "ratings",
    "prior_purchases",
    "prior_other_journeys",
    "repeat",
)
#: categorical features, one-hot encoded with the vocabulary
CATEGORICAL = ("persona", "first_channel")


@dataclass(frozen=True)
class Vocabulary:
    """The channels, content types and personas that get a feature of their own (the most frequent ones;
    the rest count only in the totals)."""

    channels: tuple[str, ...]
    content_types: tuple[str, ...]
    personas: tuple[str, ...]

    def feature_names(self) -> list[str]:
        return [
            *NUMERIC,
            *(f"ch_{_slug(c)}" for c in self.channels),
            *(f"ct_{_slug(c)}" for c in self.content_types),
            *(f"persona_{_slug(p)}" for p in self.personas),
            *(f"first_channel_{_slug(c)}" for c in self.channels),
        ]


def _slug(value: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", value).strip("_").lower() or "x"


def vocabulary(
    ws: Workspace, *, journey_types: Sequence[str] = (PURCHASE,), channels: int = 15, content_types: int = 25
) -> Vocabulary:
    """The most frequent channels and content types in the journeys of ``journey_types``, and every persona."""
    t = ws.journey_touchpoints
    t = t.filter(t.journey_type.isin(list(journey_types)))

    def top(column: str, n: int) -> tuple[str, ...]:
        c = t.filter(t[column].notnull()).group_by(column).aggregate(n=ibis._.count())
        rows = c.order_by([ibis.desc("n"), column]).limit(n).to_pyarrow().column(column).to_pylist()
        slugs: set[str] = set()
        return tuple(r for r in rows if not (_slug(r) in slugs or slugs.add(_slug(r))))

    j = ws.journeys
    personas = j.filter(j.persona.notnull()).select("persona").distinct().order_by("persona")
    return Vocabulary(
        channels=top("channel", channels),
        content_types=top("content_type", content_types),
        personas=tuple(personas.to_pyarrow().column("persona").to_pylist()),
    )


def data_period(ws: Workspace) -> tuple[datetime, datetime]:
    """The first and last touchpoint time of the built journeys (UTC)."""
    t = ws.journey_touchpoints
    row = t.aggregate(first=t.timestamp.min(), last=t.timestamp.max()).to_pyarrow().to_pylist()[0]
    if row["first"] is None:
        from journeylens.errors import WorkspaceError

        raise WorkspaceError(
            f"workspace {ws.location}: the journeys are empty; import touchpoints and build first"
        )
    return _utc(row["first"]), _utc(row["last"])


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def epoch(value: datetime) -> int:
    """Whole epoch seconds of a cut-off; the engine's ``timestamp < cutoff`` then means the same on every
    engine (``epoch_seconds`` truncates, and a cut-off has no fraction)."""
    return int(_utc(value).timestamp())


# -- in the engine ------------------------------------------------------------------------------------------


def known_touchpoints(ws: Workspace, journey_types: Sequence[str] | None = None) -> ir.Table:
    """Journey touchpoints with ``ts`` (epoch seconds) and ``known_from``: the time from which each was
    known to belong to its person (its own time, or a later link of its anonymous id)."""
    t = ws.journey_touchpoints
    if journey_types is not None:
        t = t.filter(t.journey_type.isin(list(journey_types)))
    t = t.mutate(ts=t.timestamp.epoch_seconds().cast("int64"))
    if ws.has_table("identities"):
        ids = ws.table("identities")
        ids = ids.select(
            _anon=ids.anonymous_id, _pid=ids.person_id, _linked=ids.first_linked.epoch_seconds().cast("int64")
        )
        t = t.left_join(ids, [t.anonymous_id == ids._anon, t.person_id == ids._pid]).drop("_anon", "_pid")
        own = t.anonymous_id.isnull() | t.person_id.startswith("anon:") | t._linked.isnull()
        t = t.mutate(known_from=ibis.ifelse(own | (t._linked <= t.ts), t.ts, t._linked)).drop("_linked")
    else:
        t = t.mutate(known_from=t.ts)
    return t


def _normalised_satisfaction(t: ir.Table) -> ir.FloatingValue:
    lo = t.scale.cases(
        *((n, float(r[0])) for n, r in SATISFACTION_SCALES.items()), else_=ibis.null("float64")
    )
    hi = t.scale.cases(
        *((n, float(r[1])) for n, r in SATISFACTION_SCALES.items()), else_=ibis.null("float64")
    )
    return (t.satisfaction - lo) / (hi - lo)


def snapshots_expr(
    ws: Workspace,
    cutoffs: Sequence[datetime],
    vocab: Vocabulary,
    *,
    journey_type: str = PURCHASE,
    horizon_days: float | None = None,
    sample: float | None = None,
) -> ir.Table:
    """One row per journey of ``journey_type`` open at each cut-off, with its features as known then; with
    ``horizon_days``, also ``label``: the person made a purchase within that many days after the cut-off.

    ``sample`` (0-1) keeps only that share of the persons (all their journeys), chosen by a hash of the
    person id: the same persons at every cut-off and on every run."""
    cuts = ibis.memtable({"cutoff": [epoch(c) for c in cutoffs]}, schema={"cutoff": "int64"})
    j = ws.journeys
    j = j.filter(j.journey_type == journey_type)
    if sample is not None and sample < 1:
        bucket = ((j.person_id.hash() % 10_000) + 10_000) % 10_000
        j = j.filter(bucket < int(round(sample * 10_000)))
    j = j.select(
        "journey_id",
        "person_id",
        "persona",
        repeat=j.repeat.cast("int64"),
        start_s=j.start.epoch_seconds().cast("int64"),
        end_s=j.end.epoch_seconds().cast("int64"),
        conv_s=j.converted_at.epoch_seconds().cast("int64"),
        timeout_s=(j.timeout_days * DAY).cast("int64"),
    )
    pairs = j.join(cuts, [j.start_s < cuts.cutoff, cuts.cutoff <= j.end_s + j.timeout_s + 1])
    pairs = pairs.filter(pairs.conv_s.isnull() | (pairs.conv_s >= pairs.cutoff))

    t = known_touchpoints(ws)
    mine = t.filter(t.journey_type == journey_type).select(
        "journey_id",
        "timestamp",
        "event_id",
        "ts",
        "known_from",
        "channel",
        "content_type",
        "phase",
        "phase_index",
        "phase_regression",
        "satisfaction",
        "scale",
    )
    v = pairs.select("journey_id", "cutoff").join(mine, "journey_id")
    v = v.filter(v.known_from < v.cutoff)
    v = v.mutate(_sat=_normalised_satisfaction(v))

    counts = {f"ch_{_slug(c)}": (v.channel == c).cast("int64").sum() for c in vocab.channels}
    counts |= {f"ct_{_slug(c)}": (v.content_type == c).cast("int64").sum() for c in vocab.content_types}
    agg = v.group_by(["journey_id", "cutoff"]).aggregate(
        touchpoints=v.count(),
        distinct_channels=v.channel.nunique(),
        first_s=v.ts.min(),
        last_s=v.ts.max(),
        phase_reached=v.phase_index.max(),
        phase_regressions=v.phase_regression.cast("int64").sum(),
        satisfaction=v._sat.mean(),
        ratings=v._sat.count(),
        **counts,
    )
    key = ["journey_id", "cutoff"]
    last_w = ibis.window(group_by=key, order_by=[ibis.desc(v.timestamp), ibis.desc(v.event_id)])
    first_w = ibis.window(group_by=key, order_by=[v.timestamp, v.event_id])
    ranked = v.mutate(_last=ibis.row_number().over(last_w), _first=ibis.row_number().over(first_w))
    last = ranked.filter(ranked._last == 0).select(
        *key,
        current_phase=ranked.phase,
        current_phase_index=ranked.phase_index,
        last_touchpoint_channel=ranked.channel,
    )
    first = ranked.filter(ranked._first == 0).select(*key, first_channel=ranked.channel)
    in_phase = v.join(last, key)
    entered = (
        in_phase.filter(in_phase.phase_index == in_phase.current_phase_index)
        .group_by(key)
        .aggregate(entered_s=ibis._.ts.min())
    )

    # the person's purchases and other journeys before the cut-off
    conv = t.filter(t.is_conversion & (t.journey_type == PURCHASE)).select(
        _pid=t.person_id, _cs=t.ts, _known=t.known_from
    )
    who = pairs.select("journey_id", "cutoff", "person_id")
    before = who.join(conv, [who.person_id == conv._pid, conv._known < who.cutoff])
    prior = before.group_by(key).aggregate(prior_purchases=ibis._.count())
    others = ws.journeys
    others = others.filter(others.journey_type != journey_type).select(
        _pid=others.person_id, _os=others.start.epoch_seconds().cast("int64")
    )
    other = who.join(others, [who.person_id == others._pid, others._os < who.cutoff])
    other = other.group_by(key).aggregate(prior_other_journeys=ibis._.count())

    out = (
        pairs.join(agg, key)
        .left_join(last, key)
        .drop("journey_id_right", "cutoff_right")
        .left_join(first, key)
        .drop("journey_id_right", "cutoff_right")
        .left_join(entered, key)
        .drop("journey_id_right", "cutoff_right")
        .left_join(prior, key)
        .drop("journey_id_right", "cutoff_right")
        .left_join(other, key)
        .drop("journey_id_right", "cutoff_right")
    )
    out = out.filter(out.cutoff - out.last_s <= out.timeout_s)
    out = out.mutate(
        days_active=(out.cutoff - out.first_s) / DAY,
        days_since_last=(out.cutoff - out.last_s) / DAY,
        days_in_phase=(out.cutoff - out.entered_s) / DAY,
        prior_purchases=out.prior_purchases.fill_null(0),
        prior_other_journeys=out.prior_other_journeys.fill_null(0),
    )
    if horizon_days is not None:
        h = int(round(horizon_days * DAY))
        buys = who.join(conv, [who.person_id == conv._pid, conv._cs >= who.cutoff, conv._cs < who.cutoff + h])
        buys = buys.group_by(key).aggregate(_buys=ibis._.count())
        out = out.left_join(buys, key).drop("journey_id_right", "cutoff_right")
        out = out.mutate(label=(out._buys.fill_null(0) > 0).cast("int64")).drop("_buys")
    return out.drop("start_s", "end_s", "conv_s", "timeout_s", "first_s", "entered_s")


def snapshots(
    ws: Workspace,
    cutoffs: Sequence[datetime],
    vocab: Vocabulary,
    *,
    journey_type: str = PURCHASE,
    horizon_days: float | None = None,
    sample: float | None = None,
) -> pd.DataFrame:
    """:func:`snapshots_expr`, run, in a stable order (cut-off, journey)."""
    expr = snapshots_expr(
        ws, cutoffs, vocab, journey_type=journey_type, horizon_days=horizon_days, sample=sample
    )
    frame = expr.to_pandas()
    return frame.sort_values(["cutoff", "journey_id"], kind="stable").reset_index(drop=True)


def matrix(frame: pd.DataFrame, vocab: Vocabulary) -> pd.DataFrame:
    """The model's input: the numeric features and the one-hot categories, in :meth:`Vocabulary.feature_names`
    order (unknown satisfaction stays NaN, which the gradient boosting handles)."""
    x = pd.DataFrame(index=frame.index)
    for name in NUMERIC:
        x[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    for prefix, values in (("ch_", vocab.channels), ("ct_", vocab.content_types)):
        for value in values:
            col = f"{prefix}{_slug(value)}"
            x[col] = frame[col].fillna(0).astype("float64") if col in frame.columns else 0.0
    persona = frame["persona"].astype("object")
    for p in vocab.personas:
        x[f"persona_{_slug(p)}"] = (persona == p).astype("float64")
    first = frame["first_channel"].astype("object")
    for c in vocab.channels:
        x[f"first_channel_{_slug(c)}"] = (first == c).astype("float64")
    names = vocab.feature_names()
    for name in names:
        if name not in x.columns:
            x[name] = np.float64(0)
    return x[names]
