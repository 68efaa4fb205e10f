"""One person, for personalisation: attributes, current journeys with their phase, last touchpoints.

Read from ``persons``, ``identities``, ``journeys_base`` (with the status of the ``journeys`` view),
``journey_touchpoints`` and ``predictions`` (after the build). An unidentified visitor is found by the key
the journey tables give them, ``anon:<anonymous id>``.

A website calls this while it renders a page, so it has to answer in milliseconds on a workspace of
millions of touchpoints (``benchmarks/bench_predict.py`` measures it):

- each table is read with one prepared DuckDB statement whose only input is the person id, passed as a
  parameter (it never becomes SQL text);
- :func:`ensure_indexes` gives those tables an index on ``person_id``, so each read is an index lookup,
  not a scan. The server creates them when it opens a workspace and after its builds (a full build
  replaces the tables, and their indexes with them); an incremental build keeps them up to date;
- a journey's status needs the data's end (the latest touchpoint); the caller passes it in (the server
  keeps it between imports), so a lookup does not scan every touchpoint. The status itself is the
  ``journeys`` view's (:func:`journeylens.journeys.build.journeys_view`), compiled once per data end.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ibis

from journeylens.store import quote_identifier as _quote

if TYPE_CHECKING:
    from journeylens.store import Workspace

#: the tables the person endpoint reads by ``person_id``, each with an index on it
INDEXED_TABLES = ("persons", "identities", "journeys_base", "journey_touchpoints", "predictions")

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


def ensure_indexes(ws: Workspace) -> None:
    """An index on ``person_id`` for each of :data:`INDEXED_TABLES` that exists and has none yet.

    On a DuckDB workspace only (the server's). Names and columns are fixed; nothing here comes from a
    request. Creating them takes seconds on millions of rows (about 7 s for 10M touchpoints), once per
    full build."""
    raw = ws.con.con
    have = {
        row[0]
        for row in raw.execute(
            "SELECT table_name FROM duckdb_indexes() WHERE schema_name = 'main'"
        ).fetchall()
    }
    tables = set(ws.con.list_tables())
    for table in INDEXED_TABLES:
        if table in tables and table not in have:
            raw.execute(
                f"CREATE INDEX IF NOT EXISTS {_quote('jl_' + table + '_person_id')} ON {_quote(table)} (person_id)"
            )


def _rows(ws: Workspace, sql: str, *params: Any) -> list[dict[str, Any]]:
    """The rows of a prepared statement, as dicts (the values are parameters, never SQL text)."""
    return ws.con.con.execute(sql, list(params)).fetch_arrow_table().to_pylist()


_JOURNEYS_SQL: dict[tuple[str, Any], str] = {}


def _journeys_sql(ws: Workspace, data_end: datetime | None) -> str:
    """SQL for the journeys of one person (``?``), newest first, with the ``journeys`` view's status
    against ``data_end``. Compiled by Ibis once per workspace and data end."""
    key = (ws.location, data_end)
    if key not in _JOURNEYS_SQL:
        from journeylens.journeys.build import journeys_view

        end = ibis.literal(data_end, "timestamp('UTC')") if data_end is not None else None
        view = journeys_view(ws.con.table("journeys_base"), ws.touchpoints, ws.persons, data_end=end)
        select = str(ibis.to_sql(view.select("person_id", *JOURNEY_FIELDS, "identified"), dialect="duckdb"))
        if len(_JOURNEYS_SQL) > 16:
            _JOURNEYS_SQL.clear()
        _JOURNEYS_SQL[key] = (
            f"SELECT * EXCLUDE (person_id) FROM ({select}) AS j "  # noqa: S608 - compiled from fixed names
            'WHERE person_id = ? ORDER BY "end" DESC, journey_id'
        )
    return _JOURNEYS_SQL[key]


def read_data_end(ws: Workspace) -> datetime | None:
    """The data's end: the latest touchpoint's time (None in an empty workspace)."""
    row = ws.con.con.execute("SELECT max(timestamp) FROM touchpoints").fetch_arrow_table().to_pylist()
    return next(iter(row[0].values())) if row else None


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


def _predictions(ws: Workspace, person_id: str, journey_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The stored predictions (``journeylens.predict``) of these journeys of the person, by journey id."""
    from journeylens.predict.score import decode

    if not journey_ids:
        return {}
    columns = ", ".join(_quote(c) for c in ("journey_id", *PREDICTION_FIELDS))
    rows = _rows(ws, f"SELECT {columns} FROM predictions WHERE person_id = ?", person_id)  # noqa: S608 - fixed names
    out = {}
    for row in rows:
        if row["journey_id"] in journey_ids:
            row = decode(row)
            out[row.pop("journey_id")] = {k: _plain(v) for k, v in row.items()}
    return out


def person_profile(
    ws: Workspace,
    person_id: str,
    *,
    last: int = 5,
    all_journeys: bool = False,
    data_end: datetime | None = None,
) -> dict[str, Any] | None:
    """The person's profile, or None when neither ``persons`` nor the journeys know them.

    ``last``: how many of each journey's latest touchpoints to return. ``data_end``: the data's end
    (:func:`read_data_end`), when the caller keeps it; else it is read from the touchpoints."""
    tables = set(ws.con.list_tables())
    rows = _rows(ws, "SELECT * FROM persons WHERE person_id = ? LIMIT 1", person_id)
    attributes = {k: _plain(v) for k, v in rows[0].items() if k != "person_id"} if rows else None

    journeys: list[dict[str, Any]] = []
    if "journeys_base" in tables:
        end = data_end if data_end is not None else read_data_end(ws)
        journeys = _rows(ws, _journeys_sql(ws, end), person_id)
    if attributes is None and not journeys:
        return None

    anonymous_ids: list[str] = []
    if "identities" in tables:
        found = _rows(
            ws, "SELECT anonymous_id FROM identities WHERE person_id = ? ORDER BY anonymous_id", person_id
        )
        anonymous_ids = [row["anonymous_id"] for row in found]

    shown = journeys if all_journeys else [row for row in journeys if row["status"] == "open"]
    last_by_journey: dict[str, list[dict[str, Any]]] = {row["journey_id"]: [] for row in shown}
    if shown and last > 0:
        columns = ", ".join(_quote(c) for c in ("journey_id", *TOUCH_FIELDS))
        recent = _rows(
            ws,
            f"SELECT {columns} FROM journey_touchpoints WHERE person_id = ? "  # noqa: S608 - fixed names
            "QUALIFY row_number() OVER (PARTITION BY journey_id ORDER BY timestamp DESC, event_id DESC) <= ? "
            "ORDER BY journey_id, timestamp DESC, event_id DESC",
            person_id,
            last,
        )
        for row in recent:
            if row["journey_id"] in last_by_journey:
                last_by_journey[row.pop("journey_id")].append({k: _plain(v) for k, v in row.items()})

    open_ids = {row["journey_id"] for row in shown if row["status"] == "open"}
    predictions = _predictions(ws, person_id, open_ids) if "predictions" in tables else {}
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
