"""The touchpoint and person contract, used by every reader, the store and the HTTP API.

A *touchpoint* is one interaction between a person and the organisation through a channel. The
contract is written down three times over, from one source of truth below:

- ``TOUCHPOINT_FIELDS``: name, Arrow type, whether it is required, and what a value must look like;
- ``TOUCHPOINTS_SCHEMA``: the Arrow schema of the stored ``touchpoints`` table;
- ``Touchpoint``: a pydantic model of one touchpoint (the HTTP API's request body).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: satisfaction scales and their inclusive ranges
SATISFACTION_SCALES: dict[str, tuple[int, int]] = {
    "csat": (1, 5),  # customer satisfaction, 1 (very unsatisfied) .. 5 (very satisfied)
    "nps": (0, 10),  # likelihood to recommend; 9-10 promoters, 7-8 passives, 0-6 detractors
    "ces": (1, 7),  # customer effort score, 1 (very hard) .. 7 (very easy)
}

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: pa.DataType
    required: bool
    expected: str  # what a valid value looks like, for error messages


TOUCHPOINT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("event_id", pa.string(), False, "a unique id (a hash of the row is used when absent)"),
    FieldSpec("person_id", pa.string(), False, "a non-empty person id (or an anonymous_id)"),
    FieldSpec("anonymous_id", pa.string(), False, "a device or cookie id"),
    FieldSpec("timestamp", TIMESTAMP_TYPE, True, "an ISO 8601 date-time, e.g. 2024-03-01T10:00:00+01:00"),
    FieldSpec("channel", pa.string(), True, "a non-empty channel name, e.g. email"),
    FieldSpec("touchpoint", pa.string(), True, "a non-empty touchpoint name, e.g. newsletter_open"),
    FieldSpec("content_type", pa.string(), False, "a content type, e.g. whitepaper"),
    FieldSpec("content_id", pa.string(), False, "a content id"),
    FieldSpec("journey_type", pa.string(), False, "a journey type, e.g. purchase"),
    FieldSpec("revenue", pa.float64(), False, "a number, e.g. 19.95 (negative on a refund)"),
    FieldSpec("currency", pa.string(), False, "a three-letter ISO 4217 code, e.g. EUR"),
    FieldSpec("satisfaction", pa.float64(), False, "a number within the scale's range"),
    FieldSpec("scale", pa.string(), False, "one of csat (1-5), nps (0-10), ces (1-7)"),
    FieldSpec("properties", pa.string(), False, "a JSON object, e.g. {\"utm_campaign\": \"spring\"}"),
)
FIELDS_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in TOUCHPOINT_FIELDS}
CONTRACT_COLUMNS: tuple[str, ...] = tuple(f.name for f in TOUCHPOINT_FIELDS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(f.name for f in TOUCHPOINT_FIELDS if f.required)

#: columns the store adds to every stored touchpoint
STORE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("row_hash", pa.string()),  # hash of the normalised content; tells a true duplicate from a conflict
    ("import_id", pa.int64()),
)

TOUCHPOINTS_SCHEMA = pa.schema(
    [pa.field(f.name, f.type, nullable=(f.name != "event_id")) for f in TOUCHPOINT_FIELDS]
    + [pa.field(name, typ) for name, typ in STORE_COLUMNS]
)

PERSONS_BASE_SCHEMA = pa.schema([pa.field("person_id", pa.string(), nullable=False), pa.field("persona", pa.string())])

QUARANTINE_SCHEMA = pa.schema(
    [
        ("quarantine_id", pa.string()),  # hash of (source name, line, raw, reason): re-imports add nothing
        ("import_id", pa.int64()),
        ("source", pa.string()),
        ("line", pa.int64()),  # 1-based line in a file (header = line 1), or 0-based row index in a table
        ("field", pa.string()),
        ("value", pa.string()),
        ("reason", pa.string()),  # stable code, e.g. bad_timestamp
        ("message", pa.string()),  # the full human message
        ("raw", pa.string()),  # the row as received, as a JSON object of strings
        ("person_id", pa.string()),  # as far as it could be read: lets a GDPR erase find the row
        ("quarantined_at", TIMESTAMP_TYPE),
    ]
)

IMPORTS_SCHEMA = pa.schema(
    [
        ("import_id", pa.int64()),
        ("kind", pa.string()),  # touchpoints | persons
        ("source", pa.string()),
        ("format", pa.string()),
        ("started_at", TIMESTAMP_TYPE),
        ("finished_at", TIMESTAMP_TYPE),
        ("rows_read", pa.int64()),
        ("accepted", pa.int64()),
        ("quarantined", pa.int64()),
        ("duplicates", pa.int64()),
        ("options", pa.string()),  # JSON: mapping, constants, time zone
    ]
)


class Touchpoint(BaseModel):
    """One touchpoint, as the HTTP API and the Python API accept it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: str | None = Field(default=None, min_length=1, max_length=200)
    person_id: str | None = Field(default=None, min_length=1, max_length=200)
    anonymous_id: str | None = Field(default=None, min_length=1, max_length=200)
    timestamp: datetime
    channel: str = Field(min_length=1, max_length=200)
    touchpoint: str = Field(min_length=1, max_length=200)
    content_type: str | None = Field(default=None, max_length=200)
    content_id: str | None = Field(default=None, max_length=200)
    journey_type: str | None = Field(default=None, max_length=200)
    revenue: float | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    satisfaction: float | None = None
    scale: Literal["csat", "nps", "ces"] | None = None
    properties: dict[str, Any] | None = None

    @field_validator("timestamp")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        # naive date-times are taken as UTC here; readers of files apply the workspace's zone first
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the date-time is out of range after conversion to UTC") from None

    @model_validator(mode="after")
    def _check(self) -> Touchpoint:
        if not self.person_id and not self.anonymous_id:
            raise ValueError("a touchpoint needs a person_id or an anonymous_id")
        if self.satisfaction is not None:
            if self.scale is None:
                raise ValueError("satisfaction needs a scale: one of csat (1-5), nps (0-10), ces (1-7)")
            low, high = SATISFACTION_SCALES[self.scale]
            if not low <= self.satisfaction <= high:
                raise ValueError(f"satisfaction {self.satisfaction:g} is outside the {self.scale} scale ({low}-{high})")
        return self

    def to_row(self) -> dict[str, Any]:
        """The touchpoint as a row of plain values in the contract's columns."""
        row = self.model_dump()
        row["properties"] = None if self.properties is None else json.dumps(self.properties, sort_keys=True)
        return row
