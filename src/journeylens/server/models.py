"""Request and response bodies of the HTTP API (pydantic models, also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from journeylens.schema import Touchpoint


class EventErrorOut(BaseModel):
    index: int | None = Field(
        description="position of the event in the request's list (null: the request as a whole)"
    )
    field: str | None = Field(
        description="the field at fault, in the request's own names (e.g. userId for Segment)"
    )
    reason: str = Field(
        description="stable code, e.g. missing_value, bad_timestamp, unknown_field, duplicate_event_id"
    )
    message: str = Field(description="what was expected and what was got")


class ErrorOut(BaseModel):
    code: str = Field(
        description="stable code, e.g. unauthorized, forbidden, bad_json, payload_too_large, queue_full"
    )
    message: str
    errors: list[EventErrorOut] = Field(default_factory=list)


class IngestOut(BaseModel):
    received: int = Field(description="events in the request")
    accepted: int = Field(description="events stored by this request")
    duplicates: int = Field(
        description="events already stored (a retry) or repeated in the request: stored once"
    )
    rejected: int = Field(description="events refused; see errors")
    import_id: int | None = Field(description="the import (group of requests) that stored them")
    errors: list[EventErrorOut] = Field(description=f"one entry per problem (at most {1000} listed)")
    errors_truncated: bool = False


class TouchpointBatch(BaseModel):
    """``POST /v1/touchpoints``: touchpoints in the contract (``journeylens.schema.Touchpoint``)."""

    batch: list[Touchpoint]


class SegmentCampaign(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str | None = None
    source: str | None = None
    medium: str | None = None
    term: str | None = None
    content: str | None = None


class SegmentContext(BaseModel):
    model_config = ConfigDict(extra="allow")
    campaign: SegmentCampaign | None = None
    channel: str | None = Field(
        default=None, description="browser -> website, mobile -> app, server -> ignored, else as is"
    )
    page: dict[str, Any] | None = Field(
        default=None, description="url / search: utm_* parameters are read from the query"
    )


class SegmentMessage(BaseModel):
    """A Segment call (https://segment.com/docs/connections/spec/common/); unknown fields are ignored."""

    model_config = ConfigDict(extra="allow")
    type: Literal["track", "identify", "page", "screen"] | None = Field(
        default=None, description="needed in /v1/batch"
    )
    messageId: str | None = Field(
        default=None, description="-> event_id (retries with the same id are stored once)"
    )
    userId: str | None = Field(default=None, description="-> person_id")
    anonymousId: str | None = Field(default=None, description="-> anonymous_id")
    event: str | None = Field(default=None, description="track: -> touchpoint")
    name: str | None = Field(default=None, description="page / screen: -> content_id")
    category: str | None = Field(default=None, description="page: -> content_type")
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    properties: dict[str, Any] | None = Field(
        default=None, description="kept; revenue, currency, satisfaction, scale read from it"
    )
    traits: dict[str, Any] | None = Field(default=None, description="identify: not stored")
    context: SegmentContext | None = None


class SegmentBatch(BaseModel):
    model_config = ConfigDict(extra="allow")
    batch: list[SegmentMessage]
    context: SegmentContext | None = Field(
        default=None, description="applies to every message (a message's own wins)"
    )
    sentAt: datetime | None = None


class TouchOut(BaseModel):
    event_id: str
    timestamp: str
    channel: str
    touchpoint: str
    content_type: str | None
    content_id: str | None
    phase: str | None


class NextTouchOut(BaseModel):
    touchpoint: str
    probability: float


class ContentOut(BaseModel):
    content_type: str
    lift: float = Field(description="moving on to a later phase, exposed vs comparable unexposed journeys")
    lift_low: float
    lift_high: float
    exposed: int
    unexposed: int
    moved_on_exposed: float
    moved_on_unexposed: float
    basis: str = Field(description="which journeys the figures come from")
    why: str = Field(description="the evidence in words")


class PredictionOut(BaseModel):
    propensity: float | None = Field(
        description="probability of a purchase within the model's horizon (purchase journeys only)"
    )
    propensity_source: str | None = Field(description="model, or baseline (the phase's rate) when data are thin")
    next_phase: str | None
    next_phase_probability: float | None
    next_phase_basis: str
    next_touchpoints: list[NextTouchOut]
    next_best_content: list[ContentOut] = Field(description="best first; never content the person has seen")
    scored_at: str = Field(description="when the scores were computed (refreshed after imports)")


class JourneyOut(BaseModel):
    journey_id: str
    journey_type: str
    status: str = Field(description="open, converted, abandoned or closed (against the data's end)")
    start: str
    end: str
    touchpoints: int
    current_phase: str | None = Field(description="the phase of the journey's last touchpoint")
    phase_reached: int | None = Field(description="the furthest phase reached (0-based)")
    channels: list[str]
    revenue: float | None
    converted_at: str | None
    repeat: bool | None
    last_touchpoints: list[TouchOut] = Field(description="the latest first")
    prediction: PredictionOut | None = Field(
        default=None,
        description="open journeys, once `journeylens predict` has trained a model: propensity, next steps, content",
    )


class PersonOut(BaseModel):
    person_id: str
    identified: bool
    attributes: dict[str, Any] = Field(description="the person's columns in `persons` (persona, segment ...)")
    anonymous_ids: list[str]
    journeys_total: int = Field(description="journeys of every status")
    journeys: list[JourneyOut] = Field(description="open journeys (all with ?all=true), the latest first")


class ErasureOut(BaseModel):
    erasure_id: str
    erased_at: datetime
    rows: int = Field(description="rows removed, over all tables")
    tables: dict[str, int] = Field(description="rows removed per table")
    anonymous_ids: int = Field(description="how many anonymous ids of the person were erased with them")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["ingest", "read", "admin"]
    name: str | None = Field(default=None, max_length=200)


class KeyOut(BaseModel):
    prefix: str
    name: str | None
    scope: str
    created_at: datetime
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="the key; shown this once, stored only as a hash")


class HealthOut(BaseModel):
    status: str
    version: str
    queued_events: int
    queued_requests: int
