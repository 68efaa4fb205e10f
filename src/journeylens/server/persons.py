"""One person, for personalisation: attributes, current journeys with their phase, last touchpoints.

Read from ``persons``, ``identities``, the ``journeys`` view and ``journey_touchpoints`` (after the
build). An unidentified visitor is found by the key the journey tables give them, ``anon:<anonymous id>``.
The id is matched by a semi-join with an in-memory table: it never becomes SQL text.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ibis

if TYPE_CHECKING:
    from journeylens.store import Workspace

JOURNEY_FIELDS = (
    "journey_id",
    "journey_type",
    "status",
    "start",
    "end",
    "touchpoints",
    "last_phase",
    "phase_reached",
    "channels",
    "revenue",
    "converted_at",
    "repeat",
)
TOUCH_FIELDS = ("event_id", "timestamp", "channel", "touchpoint", "content_type", "content_id", "phase")


def _plain(value: Any) -> Any:
    """A value as JSON has it: date-times in ISO 8601, NaN as null."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _only(table: ibis.Table, column: str, values: list[str]) -> ibis.Table:
    """``table`` filtered to ``column`` in ``values``: a semi-join with an in-memory table, so that the
    values travel as data and never become SQL text."""
    keys = ibis.memtable({column: values}, schema={column: "string"})
    return table.semi_join(keys, column)


PREDICTION_FIELDS = (
    "propensity",
    "propensity_source",
    "next_phase",
    "next_phase_probability",
    "next_phase_basis",
    "next_touchpoints",
    "next_best_content",
    "scored_at",
)


def _predictions(ws: Workspace, journey_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored predictions (``journeylens.predict``) of these journeys, by journey id."""
    from journeylens.predict.score import TABLE, decode

    if not journey_ids or not ws.has_table(TABLE):
        return {}
    rows = _only(ws.table(TABLE), "journey_id", journey_ids).select("journey_id", *PREDICTION_FIELDS)
    out = {}
    for row in rows.to_pyarrow().to_pylist():
        row = decode(row)
        out[row.pop("journey_id")] = {k: _plain(v) for k, v in row.items()}
    return out


def person_profile(
    ws: Workspace, person_id: str, *, last: int = 5, all_journeys: bool = False
) -> dict[str, Any] | None:
    """The person's profile, or None when neither ``persons`` nor the journeys know them."""
    rows = _only(ws.persons, "person_id", [person_id]).limit(1).to_pyarrow().to_pylist()
    attributes = {k: _plain(v) for k, v in rows[0].items() if k != "person_id"} if rows else None

    journeys: list[dict[str, Any]] = []
    if ws.has_table("journeys"):
        j = _only(ws.table("journeys"), "person_id", [person_id]).order_by([ibis.desc("end"), "journey_id"])
        journeys = j.select(*JOURNEY_FIELDS, "identified").to_pyarrow().to_pylist()
    if attributes is None and not journeys:
        return None

    anonymous_ids: list[str] = []
    if ws.has_table("identities"):
        ids = _only(ws.table("identities"), "person_id", [person_id])
        anonymous_ids = sorted(ids.anonymous_id.to_pyarrow().to_pylist())

    shown = journeys if all_journeys else [row for row in journeys if row["status"] == "open"]
    last_by_journey: dict[str, list[dict[str, Any]]] = {row["journey_id"]: [] for row in shown}
    if shown and last > 0:
        t = _only(ws.journey_touchpoints, "journey_id", list(last_by_journey))
        w = ibis.window(group_by=t.journey_id, order_by=[ibis.desc(t.timestamp), ibis.desc(t.event_id)])
        t = t.mutate(_rank=ibis.row_number().over(w))
        recent = t.filter(t._rank < last).order_by(
            ["journey_id", ibis.desc("timestamp"), ibis.desc("event_id")]
        )
        for row in recent.select("journey_id", *TOUCH_FIELDS).to_pyarrow().to_pylist():
            last_by_journey[row.pop("journey_id")].append({k: _plain(v) for k, v in row.items()})

    predictions = _predictions(ws, [row["journey_id"] for row in shown if row["status"] == "open"])
    out_journeys = []
    for row in shown:
        channels = row.pop("channels")
        item = {k: _plain(v) for k, v in row.items() if k != "identified"}
        item["current_phase"] = item.pop("last_phase")
        item["channels"] = channels.split(",") if channels else []
        item["last_touchpoints"] = last_by_journey[row["journey_id"]]
        item["prediction"] = predictions.get(row["journey_id"])
        out_journeys.append(item)
    return {
        "person_id": person_id,
        "identified": attributes is not None or any(bool(row["identified"]) for row in journeys),
        "attributes": attributes or {},
        "anonymous_ids": anonymous_ids,
        "journeys_total": len(journeys),
        "journeys": out_journeys,
    }
