"""Helpers for the analysis tests: declarative journeys -> a built workspace on any engine.

People are written as literal data (STYLE.md, example 7)::

    {"anna": [("ad_view", "2024-01-01T10:00", "display"), ("purchase", "2024-01-03T12:00")]}

Each touchpoint is ``(touchpoint, when[, channel[, more columns]])``; the channel defaults to ``website``
and the event ids are ``<person>-<nn>`` in the order written.

Journeys are built with the real ``journeylens.journeys.build`` on DuckDB, once per fixture, and the built
tables are copied into the engine under test as plain tables: a Spark test spends its time on the
analysis, not on the build (the build has its own tests), and a module builds its fixture only once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import ibis
import pyarrow as pa
import pytest

from journeylens.schema import PERSONS_BASE_SCHEMA, TOUCHPOINTS_SCHEMA
from journeylens.store import Workspace

#: the tables an analysis reads, copied to other engines
ANALYSIS_TABLES = ("touchpoints", "persons", "journey_touchpoints", "journeys", "journey_phases", "builds")

#: the columns of ``journey_touchpoints`` that random tests fill in
JT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("person_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()),
        ("touchpoint", pa.string()),
        ("content_type", pa.string()),
        ("properties", pa.string()),
        ("journey_id", pa.string()),
        ("journey_type", pa.string()),
        ("position", pa.int64()),
        ("is_conversion", pa.bool_()),
        ("phase", pa.string()),
        ("phase_index", pa.int64()),
    ]
)


def when(text: str) -> datetime:
    """An ISO date-time in UTC."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def touchpoint_rows(people: Mapping[str, Iterable[tuple[Any, ...]]]) -> pa.Table:
    rows = []
    for person, touches in people.items():
        for i, touch in enumerate(touches):
            name, at, *rest = touch
            channel = rest[0] if rest else "website"
            more = rest[1] if len(rest) > 1 else {}
            row = {f.name: None for f in TOUCHPOINTS_SCHEMA}
            row.update(
                event_id=f"{person}-{i:02d}",
                person_id=person,
                timestamp=when(at),
                channel=channel,
                touchpoint=name,
                import_id=1,
            )
            row.update(more)
            rows.append(row)
    return pa.Table.from_pylist(rows, schema=TOUCHPOINTS_SCHEMA)


def persons_rows(persons: Mapping[str, Mapping[str, Any]]) -> pa.Table:
    columns = sorted({k for attrs in persons.values() for k in attrs if k != "persona"})
    schema = PERSONS_BASE_SCHEMA
    for c in columns:
        schema = schema.append(pa.field(c, pa.string()))
    rows = [
        {"person_id": p, **{c: None for c in ["persona", *columns]}, **attrs} for p, attrs in persons.items()
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def built_tables(
    people: Mapping[str, Iterable[tuple[Any, ...]]],
    persons: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    model: str = "five-phase",
) -> dict[str, pa.Table]:
    """These people's touchpoints built into journeys with ``model`` (on DuckDB): the tables, as Arrow."""
    from journeylens.journeys import build

    con = ibis.duckdb.connect()
    ws = Workspace.from_backend(con)
    con.create_table("touchpoints", touchpoint_rows(people), overwrite=True)
    con.create_table("persons", persons_rows(persons or {}), overwrite=True)
    build(ws, model=model)
    tables = {name: con.table(name).to_pyarrow() for name in ANALYSIS_TABLES}
    con.disconnect()
    return tables


def build_workspace(
    con: ibis.BaseBackend,
    people: Mapping[str, Iterable[tuple[Any, ...]]],
    persons: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    model: str = "five-phase",
) -> Workspace:
    """A workspace on ``con`` with these people's touchpoints, built into journeys with ``model``."""
    return copy_tables(con, built_tables(people, persons, model=model))


def copy_tables(con: ibis.BaseBackend, tables: Mapping[str, pa.Table]) -> Workspace:
    """A workspace on ``con`` holding exactly these tables."""
    for name, table in tables.items():
        if con.name == "duckdb":
            con.create_table(name, table, overwrite=True)
        else:  # a temporary view over the data in memory: no write to Spark's warehouse
            con.create_view(name, ibis.memtable(table), overwrite=True)
    return Workspace.from_backend(con, create=False)


def rows_of(table: pa.Table, *columns: str) -> list[tuple[Any, ...]]:
    """The table's rows as tuples of ``columns`` (floats rounded to 6 places)."""
    out = []
    for r in table.to_pylist():
        out.append(tuple(round(r[c], 6) if isinstance(r[c], float) else r[c] for c in columns))
    return out


@pytest.fixture(scope="session")
def helpers() -> SimpleNamespace:
    """The helpers above (test modules are imported by path, so they cannot import this conftest)."""
    return SimpleNamespace(
        build=build_workspace,
        built_tables=built_tables,
        tables=copy_tables,
        when=when,
        rows=rows_of,
        touchpoint_rows=touchpoint_rows,
        JT_SCHEMA=JT_SCHEMA,
    )
