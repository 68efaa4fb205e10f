"""Attribution input from a workspace: the touches of the built journeys, computed in the engine.

Which touches count (documented choice):

- journeys of the chosen types (default: purchase journeys);
- in a converted journey, the touches *before* its first conversion (the purchase itself is not a
  marketing touch); the journey's value is the revenue of that conversion;
- a journey that did not convert contributes all its touches, as a null path;
- ``key`` chooses what gets the credit: ``channel`` (default), ``touchpoint``, ``content_type`` or ``phase``;
  touches with no value for the key (e.g. no content type) are left out.

Two forms come back: per-touch rows (``touches``; needed for time decay, lookback windows and the
per-journey credit table) or paths aggregated in the engine (``paths``; 10M journeys collapse to the far fewer
distinct paths, so only those reach Python).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from journeylens.analyses.base import Filters
from journeylens.errors import SpecError

if TYPE_CHECKING:
    from journeylens.store import Workspace

KEYS = ("channel", "touchpoint", "content_type", "phase")
PATH_SEPARATOR = " > "


def _touches(ws: Workspace, *, key: str, journey_types: list[str], filters: Filters) -> ir.Table:
    if key not in KEYS:
        raise SpecError(f"attribution: key '{key}' is unknown; expected one of {', '.join(KEYS)}")
    j = filters.journeys(ws).filter(lambda t: t.journey_type.isin(journey_types))
    t = ws.journey_touchpoints
    conv = (
        t.filter(t.is_conversion)
        .group_by("journey_id")
        .aggregate(_conv_pos=t.position.min(), _conv_time=t.timestamp.min())
    )
    value = t.filter(t.is_conversion).join(conv, "journey_id")
    value = (
        value.filter(value.position == value._conv_pos)
        .group_by("journey_id")
        .aggregate(_value=value.revenue.sum())
    )
    x = t.semi_join(j.select("journey_id"), "journey_id")
    x = x.left_join(conv, "journey_id").drop("journey_id_right")
    x = x.left_join(value, "journey_id").drop("journey_id_right")
    x = x.filter(x._conv_pos.isnull() | (x.position < x._conv_pos))
    x = x.filter(x[key].notnull())
    return x.select(
        "journey_id",
        position=x.position - 1,
        channel=x[key],
        timestamp=x.timestamp,
        converted=x._conv_pos.notnull(),
        value=x._value.fill_null(0.0),
        conversion_time=x._conv_time,
    )


def touches(
    ws: Workspace,
    *,
    key: str = "channel",
    journey_types: list[str] | None = None,
    filters: Filters | None = None,
) -> pa.Table:
    """Per-touch rows (journey_id, position, channel, timestamp, converted, value, conversion_time)."""
    expr = _touches(ws, key=key, journey_types=journey_types or ["purchase"], filters=filters or Filters())
    return expr.order_by(["journey_id", "position"]).to_pyarrow()


def paths(
    ws: Workspace,
    *,
    key: str = "channel",
    journey_types: list[str] | None = None,
    filters: Filters | None = None,
) -> pa.Table:
    """Paths aggregated in the engine: path, conversions, value, nulls (the format of ``read_paths``)."""
    x = _touches(ws, key=key, journey_types=journey_types or ["purchase"], filters=filters or Filters())
    # portable ordered path: collect (position, key) structs, sort, keep the key, join
    per_journey = x.group_by("journey_id").aggregate(
        path=ibis.struct({"p": x.position, "k": x.channel})
        .collect()
        .sort()
        .map(lambda s: s.k)
        .join(PATH_SEPARATOR),
        converted=x.converted.max(),
        value=x.value.max(),
    )
    agg = per_journey.group_by("path").aggregate(
        conversions=per_journey.converted.cast("int64").sum(),
        value=ibis.ifelse(per_journey.converted, per_journey.value, 0.0).sum(),
        nulls=(~per_journey.converted).cast("int64").sum(),
    )
    return agg.order_by(ibis.desc("conversions")).to_pyarrow()
