"""Touchpoints to purchase: at which contact does the first purchase happen, and after how many days?

Users quote a rule of thumb: only about 2% of purchases happen at the first contact, about 10% at the
fourth, and a customer needs 5 to 8 contacts on average. This analysis measures that distribution on the
workspace's own data and puts the rule of thumb beside it (``REFERENCE``; the columns ``reference_share``
and ``reference_*`` in the summary).

Two scopes:

``scope="person"`` (default)
    Per person (the stitched ``person_id``): all the person's touchpoints, of every journey, numbered from
    their first contact in ``(timestamp, event_id)`` order; the *purchase* is the person's first touchpoint
    that converts a journey of type ``journey_type`` (default ``purchase``: ``is_conversion`` and that
    journey type). The contact number is that touchpoint's number; the days run from the first contact to
    it. Filters select *purchases*: a person counts when the journey their first purchase closed passes the
    filters (and the breakdown is read from that journey or from the person), while the contacts are
    always counted over the person's whole history.
``scope="journey"``
    Per converting journey of type ``journey_type``: ``journeys.purchase_contact_number`` (the purchase's
    position within its journey) and the days from the journey's start to the purchase. Repeat purchases
    (each opens a new journey in the customer view) count too.

Result: one row per (breakdown value,) contact number with ``purchases``, ``share``, ``cumulative_share``
and ``reference_share``; ``TouchpointsResult.summary`` holds per breakdown value the mean, median and p90
contacts and days, the shares at the first and fourth contact, and the reference figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import Field

from journeylens.analyses.base import Filters, Result, Spec, execute
from journeylens.analyses.funnel import SECONDS_PER_DAY, breakdown_column, none_last, quantile, seconds

if TYPE_CHECKING:
    from journeylens.store import Workspace

#: the rule of thumb users quote (DOMAIN.md): share of purchases at the 1st and 4th contact, mean contacts
REFERENCE: dict[str, Any] = {
    "share_at_1": 0.02,
    "share_at_4": 0.10,
    "mean_contacts_low": 5.0,
    "mean_contacts_high": 8.0,
}
REFERENCE_SHARES = {1: REFERENCE["share_at_1"], 4: REFERENCE["share_at_4"]}


class TouchpointsSpec(Spec):
    """The distribution of the contact number of the (first) purchase."""

    kind: ClassVar[str] = "touchpoints"

    scope: Literal["person", "journey"] = "person"
    journey_type: str = Field(
        default="purchase", description="the journey type whose conversion is the purchase"
    )
    breakdown: str | None = Field(
        default=None, description="persona, involvement, first_channel, … or a persons column"
    )
    filters: Filters = Filters()


class TouchpointsResult(Result):
    """The contact-number distribution; per breakdown value a summary beside the rule of thumb."""

    @property
    def summary(self) -> pa.Table:
        return self.extra["summary"]

    @property
    def reference(self) -> dict[str, Any]:
        return dict(REFERENCE)


def purchases_expr(ws: Workspace, spec: TouchpointsSpec) -> ir.Table:
    """One row per purchase counted: _breakdown, contact_number, days (all per-event work in the engine)."""
    if spec.scope == "journey":
        j = spec.filters.journeys(ws)
        j = j.filter(
            (j.journey_type == spec.journey_type)
            & j.purchase_contact_number.notnull()
            & j.converted_at.notnull()
        )
        j = breakdown_column(ws, j, spec.breakdown, journeys=True)
        days = (seconds(j.converted_at) - seconds(j.start)).cast("float64") / SECONDS_PER_DAY
        return j.select("_breakdown", contact_number=j.purchase_contact_number.cast("int64"), days=days)
    t = ws.journey_touchpoints
    t = t.filter(t.person_id.notnull())
    w = ibis.window(group_by=t.person_id, order_by=[t.timestamp, t.event_id])
    t = t.select(
        "person_id",
        "journey_id",
        "journey_type",
        "is_conversion",
        _ts=seconds(t.timestamp),
        _contact=ibis.row_number().over(w) + 1,
        _first_ts=seconds(t.timestamp).min().over(ibis.window(group_by=t.person_id)),
    )
    bought = t.filter(t.is_conversion.fill_null(False) & (t.journey_type == spec.journey_type))
    first = bought.group_by("person_id").aggregate(
        contact_number=bought._contact.min(),
        journey_id=bought.journey_id.argmin(bought._contact),
        _buy_ts=bought._ts.min(),
        _first_ts=bought._first_ts.min(),
    )
    if not spec.filters.is_empty():
        first = first.semi_join(spec.filters.journeys(ws).select("journey_id"), "journey_id")
    first = breakdown_column(ws, first, spec.breakdown, journeys=True)
    days = (first._buy_ts - first._first_ts).cast("float64") / SECONDS_PER_DAY
    return first.select("_breakdown", contact_number=first.contact_number.cast("int64"), days=days)


def touchpoints_expr(ws: Workspace, spec: TouchpointsSpec) -> ir.Table:
    """Per (breakdown, contact number): purchases, share and cumulative share within the breakdown value."""
    p = purchases_expr(ws, spec)
    d = p.group_by(["_breakdown", "contact_number"]).aggregate(purchases=p.count())
    total = d.purchases.sum().over(ibis.window(group_by=d._breakdown))
    cum = d.purchases.sum().over(ibis.cumulative_window(group_by=d._breakdown, order_by=d.contact_number))
    return d.mutate(
        share=d.purchases.cast("float64") / total,
        cumulative_share=cum.cast("float64") / total,
    )


expr = touchpoints_expr


def summary_expr(ws: Workspace, spec: TouchpointsSpec) -> ir.Table:
    """Per breakdown value: purchases, mean / median / p90 contacts and days, share at the 1st and 4th."""
    p = purchases_expr(ws, spec)
    n = p.contact_number.cast("float64")
    return p.group_by("_breakdown").aggregate(
        purchases=p.count(),
        mean_contacts=n.mean(),
        median_contacts=quantile(n, 0.5),
        p90_contacts=quantile(n, 0.9),
        share_at_1=(p.contact_number == 1).cast("float64").mean(),
        share_at_4=(p.contact_number == 4).cast("float64").mean(),
        mean_days=p.days.mean(),
        median_days=quantile(p.days, 0.5),
        p90_days=quantile(p.days, 0.9),
    )


DISTRIBUTION_COLUMNS = [
    ("breakdown", pa.string()),
    ("contact_number", pa.int64()),
    ("purchases", pa.int64()),
    ("share", pa.float64()),
    ("cumulative_share", pa.float64()),
    ("reference_share", pa.float64()),
]
SUMMARY_COLUMNS = [
    ("breakdown", pa.string()),
    ("purchases", pa.int64()),
    ("mean_contacts", pa.float64()),
    ("median_contacts", pa.float64()),
    ("p90_contacts", pa.float64()),
    ("share_at_1", pa.float64()),
    ("share_at_4", pa.float64()),
    ("mean_days", pa.float64()),
    ("median_days", pa.float64()),
    ("p90_days", pa.float64()),
    ("reference_share_at_1", pa.float64()),
    ("reference_share_at_4", pa.float64()),
    ("reference_mean_low", pa.float64()),
    ("reference_mean_high", pa.float64()),
]


def run(ws: Workspace, spec: TouchpointsSpec) -> TouchpointsResult:
    table, sql = execute(touchpoints_expr(ws, spec))
    summary, _ = execute(summary_expr(ws, spec))
    rows = sorted(table.to_pylist(), key=lambda r: (none_last(r["_breakdown"]), r["contact_number"]))
    dist = [
        {
            "breakdown": r["_breakdown"],
            "contact_number": int(r["contact_number"]),
            "purchases": int(r["purchases"]),
            "share": r["share"],
            "cumulative_share": r["cumulative_share"],
            "reference_share": REFERENCE_SHARES.get(int(r["contact_number"])),
        }
        for r in rows
    ]
    srows = []
    for r in sorted(summary.to_pylist(), key=lambda r: none_last(r["_breakdown"])):
        out = {k: v for k, v in r.items() if k != "_breakdown"}
        out["breakdown"] = r["_breakdown"]
        out["reference_share_at_1"] = REFERENCE["share_at_1"]
        out["reference_share_at_4"] = REFERENCE["share_at_4"]
        out["reference_mean_low"] = REFERENCE["mean_contacts_low"]
        out["reference_mean_high"] = REFERENCE["mean_contacts_high"]
        srows.append(out)
    out_table = pa.Table.from_pylist(dist, schema=pa.schema(DISTRIBUTION_COLUMNS))
    out_summary = pa.Table.from_pylist(srows, schema=pa.schema(SUMMARY_COLUMNS))
    if spec.breakdown is None:
        out_table = out_table.drop_columns(["breakdown"])
        out_summary = out_summary.drop_columns(["breakdown"])
    extra = {
        "summary": out_summary,
        "scope": spec.scope,
        "breakdown": spec.breakdown,
        "reference": dict(REFERENCE),
    }
    return TouchpointsResult(spec, out_table, sql=sql, extra=extra)
