"""The analysis contract: a typed spec, a compiler to an Ibis expression, a typed result.

Every analysis follows the same shape (STYLE.md, example 3)::

    spec = FunnelSpec(steps=["site_visit", "quote_request", "purchase"], window="7d")
    result = run(workspace, spec)          # -> FunnelResult
    result.table                            # pyarrow.Table (small: an aggregate)
    result.to_pandas()
    result.spec                             # the spec that made it
    result.sql                              # the engine's SQL

A spec is a pydantic model with ``extra="forbid"``: an unknown field or a bad value is a
``SpecError``-style validation error naming the field and what was expected. The same spec serves the
Python API, the CLI (``--format table|csv|json``), the HTTP API and the dashboard.

``Filters`` are common to all analyses: a period, personas, journey types, channels and any persons
column = value. They apply to the journeys an analysis looks at (``Filters.journeys``) and to their
touchpoints (``Filters.touchpoints``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from journeylens.errors import SpecError

if TYPE_CHECKING:
    import pandas as pd

    from journeylens.store import Workspace


class Spec(BaseModel):
    """Base of every analysis spec: strict, immutable, JSON-serialisable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the analysis's name in the CLI, the HTTP API and the report
    kind: ClassVar[str] = "analysis"


def parse_spec(cls: type[Spec], data: dict[str, Any]) -> Spec:
    """Validate ``data`` as ``cls``; a failure becomes one SpecError naming each bad field and the bound."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise SpecError(spec_error_message(cls, exc)) from None


def spec_error_message(cls: type[Spec], exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or cls.kind
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(cls.model_fields)
            parts.append(f"{cls.kind}: unknown field '{loc}'; expected one of {allowed}")
        else:
            got = err.get("input")
            parts.append(f"{cls.kind}: {loc}: {err['msg']}; got {got!r}")
    return "; ".join(parts)


class Filters(BaseModel):
    """Which journeys (and their touchpoints) an analysis looks at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: date | datetime | None = Field(default=None, description="journeys that start on or after this")
    end: date | datetime | None = Field(default=None, description="journeys that start before this")
    personas: list[str] | None = None
    journey_types: list[str] | None = None
    channels: list[str] | None = Field(default=None, description="journeys that used one of these channels")
    involvement: list[str] | None = None
    persons: dict[str, str] | None = Field(default=None, description="persons column = value, e.g. {'segment': 'b2b'}")

    @field_validator("personas", "journey_types", "channels", "involvement")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("expected at least one value, or leave the filter out")
        return value

    def is_empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())

    def describe(self) -> str:
        """The filters in words, for reports and CLI titles."""
        parts = []
        if self.start or self.end:
            parts.append(f"journeys starting {self.start or '…'} to {self.end or '…'}")
        for name in ("personas", "journey_types", "channels", "involvement"):
            if getattr(self, name):
                parts.append(f"{name.replace('_', ' ')}: {', '.join(getattr(self, name))}")
        for k, v in (self.persons or {}).items():
            parts.append(f"{k} = {v}")
        return "; ".join(parts) or "all journeys"

    def journeys(self, ws: Workspace) -> ir.Table:
        """The workspace's ``journeys`` with the filters applied."""
        j = ws.journeys
        if self.start is not None:
            j = j.filter(j.start >= _ts(self.start))
        if self.end is not None:
            j = j.filter(j.start < _ts(self.end))
        if self.personas:
            j = j.filter(j.persona.isin(self.personas))
        if self.journey_types:
            j = j.filter(j.journey_type.isin(self.journey_types))
        if self.involvement:
            j = j.filter(j.involvement.isin(self.involvement))
        if self.channels:
            t = ws.journey_touchpoints
            used = t.filter(t.channel.isin(self.channels)).select("journey_id").distinct()
            j = j.semi_join(used, "journey_id")
        if self.persons:
            p = ws.persons
            for column, value in self.persons.items():
                if column not in p.columns:
                    raise SpecError(f"filters.persons: unknown persons column '{column}'; expected one of {', '.join(p.columns)}")
                p = p.filter(p[column].cast("string") == value)
            j = j.semi_join(p.select("person_id"), "person_id")
        return j

    def touchpoints(self, ws: Workspace) -> ir.Table:
        """``journey_touchpoints`` of the filtered journeys (all of them when no filter is set)."""
        t = ws.journey_touchpoints
        if self.is_empty():
            return t
        return t.semi_join(self.journeys(ws).select("journey_id"), "journey_id")


def _ts(value: date | datetime) -> ir.Value:
    if isinstance(value, datetime):
        return ibis.literal(value if value.tzinfo else value.replace(tzinfo=None), "timestamp('UTC')")
    return ibis.literal(datetime(value.year, value.month, value.day), "timestamp('UTC')")


class Result:
    """An analysis result: a small table, the spec that made it, and the engine's SQL."""

    def __init__(self, spec: Spec, table: pa.Table, *, sql: str = "", extra: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.table = table
        self.sql = sql
        self.extra = extra or {}

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, rows={self.table.num_rows})"


def execute(expr: ir.Table) -> tuple[pa.Table, str]:
    """Run an aggregate expression; return its Arrow table and SQL."""
    try:
        sql = str(ibis.to_sql(expr))
    except Exception:  # noqa: BLE001 - the SQL text is informative only
        sql = ""
    return expr.to_pyarrow(), sql
