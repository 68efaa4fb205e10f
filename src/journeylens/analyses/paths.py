"""Paths: the sequences journeys take, at the level of touchpoints, channels or phases.

Each journey's touchpoints, ordered by ``(timestamp, event_id)``, give a sequence of values at the chosen
``level`` (touchpoint name, channel, or phase; touchpoints without a phase are left out at the phase
level). With ``collapse_repeats`` (the default at the phase level) a run of equal values counts once (the
run's first touchpoint stands for it). One ``PathsSpec`` asks for one view:

``variants`` (default)
    The ``top`` most frequent whole sequences (``variant``: values joined by `` > ``), with journeys,
    share of all journeys, converted journeys and conversion rate. Built portably: a struct of (position,
    value) is collected per journey, the array sorted, the values mapped out and joined.
``dfg=True``: the directly-follows graph
    Per edge (``source``, ``target``): transitions, distinct persons, median and p95 seconds between the
    two touchpoints. Every journey has an edge from ``(start)`` to its first value and from its last
    value to ``(end)`` (no seconds on those).
``sankey_from=X`` / ``sankey_to=X`` with ``steps=N``: Sankey data
    From each journey's *first* X, the next N values (``from``), or the N values before it (``to``).
    Nodes are named ``"<step>:<value>"`` (step 0 is X; negative steps lead up to it). A journey that ends
    before N steps after X goes to an explicit ``(drop-off)`` node; one whose path to X is shorter than
    N comes from a ``(start)`` node. ``PathsResult.links`` (source, target, step, journeys) is the table;
    ``PathsResult.nodes`` (node, step, value, journeys).
``transitions=True``: the transition matrix
    Per (``from``, ``to``) of consecutive values: transitions, journeys, ``share`` of the moves out of
    ``from``; at the phase level ``direction`` is ``forward`` (to the next phase), ``skip`` (further
    ahead) or ``back`` (a move back, e.g. from service to consideration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from journeylens.analyses.base import Filters, Result, Spec, execute
from journeylens.analyses.funnel import phase_model_for, phased_touchpoints, quantile, seconds

if TYPE_CHECKING:
    from journeylens.store import Workspace

START = "(start)"
END = "(end)"
DROP_OFF = "(drop-off)"
SEPARATOR = " > "


class PathsSpec(Spec):
    """Which paths to show: variants (default), the directly-follows graph, Sankey data or transitions."""

    kind: ClassVar[str] = "paths"

    level: Literal["touchpoint", "channel", "phase"] = "touchpoint"
    model: str | None = Field(
        default=None, description="phase model at the phase level (default: the built one)"
    )
    journey_types: list[str] | None = Field(default=["purchase"], description="journey types (None: all)")
    collapse_repeats: bool | None = Field(
        default=None, description="count a run of equal values once (default: at the phase level)"
    )
    top: int = Field(default=20, ge=1, description="how many variants")
    dfg: bool = False
    transitions: bool = False
    sankey_from: str | None = None
    sankey_to: str | None = None
    steps: int = Field(default=5, ge=1, le=50, description="Sankey: steps after / before the chosen value")
    filters: Filters = Filters()

    @field_validator("journey_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("expected at least one journey type, or None for all")
        return value

    @model_validator(mode="after")
    def _one_view(self) -> PathsSpec:
        chosen = [
            name
            for name, on in (
                ("dfg", self.dfg),
                ("transitions", self.transitions),
                ("sankey_from", self.sankey_from is not None),
                ("sankey_to", self.sankey_to is not None),
            )
            if on
        ]
        if len(chosen) > 1:
            raise ValueError(
                f"paths_one_view: ask for one of dfg, transitions, sankey_from, sankey_to; got {', '.join(chosen)}"
            )
        if self.model is not None and self.level != "phase":
            raise ValueError(f"model applies at the phase level only; got level {self.level!r}")
        return self

    @property
    def view(self) -> str:
        if self.dfg:
            return "dfg"
        if self.transitions:
            return "transitions"
        if self.sankey_from is not None or self.sankey_to is not None:
            return "sankey"
        return "variants"

    @property
    def collapse(self) -> bool:
        return self.level == "phase" if self.collapse_repeats is None else self.collapse_repeats


class PathsResult(Result):
    """``table`` is the view asked for; Sankey data also has ``nodes`` and ``links``."""

    @property
    def view(self) -> str:
        return str(self.extra["view"])

    @property
    def nodes(self) -> pa.Table | None:
        return self.extra.get("nodes")

    @property
    def links(self) -> pa.Table | None:
        return self.table if self.view == "sankey" else None


def _journeys(ws: Workspace, spec: PathsSpec) -> ir.Table:
    j = spec.filters.journeys(ws)
    if spec.journey_types is not None:
        j = j.filter(j.journey_type.isin(spec.journey_types))
    return j


def sequence_expr(ws: Workspace, spec: PathsSpec) -> ir.Table:
    """Per journey and value (after collapsing runs): journey_id, person_id, pos (1-based), _ts, value, _idx."""
    if spec.level == "phase":
        pm, stored, _ = phase_model_for(ws, spec.model)
        t = phased_touchpoints(ws, pm, stored)
    else:
        t = ws.journey_touchpoints
    if spec.journey_types is not None:
        t = t.filter(t.journey_type.isin(spec.journey_types))
    if not spec.filters.is_empty():
        t = t.semi_join(spec.filters.journeys(ws).select("journey_id"), "journey_id")
    if spec.level == "phase":
        value, idx = t.phase, t.phase_index.cast("int64")
    else:
        value, idx = t[spec.level].cast("string"), ibis.null("int64")
    t = t.select(
        "journey_id", "person_id", "timestamp", "event_id", _ts=seconds(t.timestamp), value=value, _idx=idx
    )
    t = t.filter(t.value.notnull())
    w = ibis.window(group_by=t.journey_id, order_by=[t.timestamp, t.event_id])
    if spec.collapse:
        t = t.mutate(_new=(t.value != t.value.lag().over(w)).fill_null(True))
        t = t.filter(t._new).drop("_new")
        w = ibis.window(group_by=t.journey_id, order_by=[t.timestamp, t.event_id])
    t = t.mutate(pos=ibis.row_number().over(w) + 1)
    return t.drop("timestamp", "event_id")


def variants_expr(ws: Workspace, spec: PathsSpec) -> ir.Table:
    s = sequence_expr(ws, spec)
    per = s.group_by("journey_id").aggregate(
        _arr=ibis.struct({"p": s.pos, "v": s.value}).collect(), length=s.count()
    )
    per = per.mutate(variant=per._arr.sort().map(lambda x: x.v).join(SEPARATOR)).drop("_arr")
    j = _journeys(ws, spec)
    j = j.select(_jid="journey_id", _conv=j.converted_at.notnull().cast("int64"))
    per = per.join(j, per.journey_id == j._jid)
    g = per.group_by("variant").aggregate(
        journeys=per.count(), converted=per._conv.sum(), length=per.length.max()
    )
    everything = ibis.window()
    g = g.mutate(
        share=g.journeys.cast("float64") / g.journeys.sum().over(everything),
        conversion_rate=g.converted.cast("float64") / g.journeys,
        _all_journeys=g.journeys.sum().over(everything),
        _all_variants=g.variant.count().over(everything),
    )
    g = g.order_by([ibis.desc("journeys"), "variant"]).limit(spec.top)
    return g.select(
        "variant",
        "length",
        "journeys",
        "share",
        "converted",
        "conversion_rate",
        "_all_journeys",
        "_all_variants",
    )


def dfg_expr(ws: Workspace, spec: PathsSpec) -> ir.Table:
    s = sequence_expr(ws, spec)
    w = ibis.window(group_by=s.journey_id, order_by=s.pos)
    e = s.mutate(target=s.value.lead().over(w).fill_null(END), _next=s._ts.lead().over(w))
    edges = e.select("person_id", source=e.value, target=e.target, _secs=(e._next - e._ts).cast("float64"))
    first = s.filter(s.pos == 1)
    starts = first.select(
        "person_id", source=ibis.literal(START), target=first.value, _secs=ibis.null("float64")
    )
    u = ibis.union(edges, starts)
    g = u.group_by(["source", "target"]).aggregate(
        count=u.count(),
        persons=u.person_id.nunique(),
        median_seconds=quantile(u._secs, 0.5),
        p95_seconds=quantile(u._secs, 0.95),
    )
    return g.order_by([ibis.desc("count"), "source", "target"])


def transitions_expr(ws: Workspace, spec: PathsSpec) -> ir.Table:
    s = sequence_expr(ws, spec)
    w = ibis.window(group_by=s.journey_id, order_by=s.pos)
    e = s.mutate(_to=s.value.lead().over(w), _to_idx=s._idx.lead().over(w))
    e = e.filter(e._to.notnull())
    g = e.group_by(
        [e.value.name("from"), e._to.name("to"), e._idx.name("_fi"), e._to_idx.name("_ti")]
    ).aggregate(count=e.count(), journeys=e.journey_id.nunique())
    share = g["count"].cast("float64") / g["count"].sum().over(ibis.window(group_by=g["from"]))
    direction = ibis.cases(
        (g._ti == g._fi + 1, "forward"),
        (g._ti > g._fi + 1, "skip"),
        (g._ti < g._fi, "back"),
        (g._ti == g._fi, "stay"),
        else_=ibis.null("string"),
    )
    g = g.mutate(share=share, direction=direction)
    return g.order_by(["_fi", "from", ibis.desc("count"), "to"]).select(
        "from", "to", "count", "journeys", "share", "direction"
    )


def sankey_expr(ws: Workspace, spec: PathsSpec) -> ir.Table:
    """Links of the Sankey: source node, target node, the source's step, journeys."""
    s = sequence_expr(ws, spec)
    anchor_value = spec.sankey_from if spec.sankey_from is not None else spec.sankey_to
    n = spec.steps
    hit = s.filter(s.value == anchor_value)
    anchor = hit.group_by("journey_id").aggregate(_anchor=hit.pos.min()).rename(_ajid="journey_id")
    r = s.join(anchor, s.journey_id == anchor._ajid)
    r = r.mutate(step=(r.pos - r._anchor).cast("int64"))
    forward = spec.sankey_from is not None
    r = r.filter((r.step >= 0) & (r.step <= n)) if forward else r.filter((r.step >= -n) & (r.step <= 0))
    w = ibis.window(group_by=r.journey_id, order_by=r.pos)
    r = r.mutate(_next=r.value.lead().over(w), _first=r.step.min().over(ibis.window(group_by=r.journey_id)))

    def node(step: ir.IntegerValue, value: ir.StringValue) -> ir.StringValue:
        return step.cast("string") + ":" + value

    if forward:
        moves = r.filter(r.step < n)
        target = ibis.ifelse(
            moves._next.isnull(),
            node(moves.step + 1, ibis.literal(DROP_OFF)),
            node(moves.step + 1, moves._next),
        )
        links = moves.select(
            "journey_id", source=node(moves.step, moves.value), target=target, step=moves.step
        )
    else:
        moves = r.filter(r.step < 0)
        links = moves.select(
            "journey_id",
            source=node(moves.step, moves.value),
            target=node(moves.step + 1, moves._next),
            step=moves.step,
        )
        starts = r.filter((r.step == r._first) & (r.step > -n))
        links = ibis.union(
            links,
            starts.select(
                "journey_id",
                source=node(starts.step - 1, ibis.literal(START)),
                target=node(starts.step, starts.value),
                step=starts.step - 1,
            ),
        )
    g = links.group_by(["source", "target", "step"]).aggregate(journeys=links.count())
    return g.order_by(["step", ibis.desc("journeys"), "source", "target"])


def expr(ws: Workspace, spec: PathsSpec) -> ir.Table:
    """The aggregate expression of the view ``spec`` asks for."""
    return {
        "variants": variants_expr,
        "dfg": dfg_expr,
        "transitions": transitions_expr,
        "sankey": sankey_expr,
    }[spec.view](ws, spec)


def _nodes(links: pa.Table) -> pa.Table:
    """Sankey nodes from the links: a node's journeys are the larger of its incoming and outgoing sums."""
    incoming: dict[str, int] = {}
    outgoing: dict[str, int] = {}
    for r in links.to_pylist():
        outgoing[r["source"]] = outgoing.get(r["source"], 0) + int(r["journeys"])
        incoming[r["target"]] = incoming.get(r["target"], 0) + int(r["journeys"])
    rows = []
    for name in set(incoming) | set(outgoing):
        step, _, value = name.partition(":")
        rows.append(
            {
                "node": name,
                "step": int(step),
                "value": value,
                "journeys": max(incoming.get(name, 0), outgoing.get(name, 0)),
            }
        )
    rows.sort(key=lambda r: (r["step"], -r["journeys"], r["value"]))
    schema = pa.schema(
        [("node", pa.string()), ("step", pa.int64()), ("value", pa.string()), ("journeys", pa.int64())]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def run(ws: Workspace, spec: PathsSpec) -> PathsResult:
    table, sql = execute(expr(ws, spec))
    extra: dict[str, Any] = {"view": spec.view, "level": spec.level, "collapse_repeats": spec.collapse}
    if spec.view == "sankey":
        extra["nodes"] = _nodes(table)
        extra["anchor"] = spec.sankey_from if spec.sankey_from is not None else spec.sankey_to
    if spec.view == "variants":
        first = table.slice(0, 1).to_pylist()
        extra["journeys"] = int(first[0]["_all_journeys"]) if first else 0
        extra["variants"] = int(first[0]["_all_variants"]) if first else 0
        table = table.drop_columns(["_all_journeys", "_all_variants"])
    return PathsResult(spec, table, sql=sql, extra=extra)
