"""Segment's HTTP tracking API (``track``, ``identify``, ``page``, ``screen``, ``batch``) -> touchpoints.

Field by field (https://segment.com/docs/connections/spec/common/):

==========================  ==========================================================================
Segment                     touchpoint
==========================  ==========================================================================
``messageId``               ``event_id`` (a number is taken as its text)
``userId``                  ``person_id``
``anonymousId``             ``anonymous_id`` (an ``identify`` carrying both links the two)
``event`` (track)           ``touchpoint``; ``identify`` -> ``"identify"``, ``page`` -> ``"page_view"``,
                            ``screen`` -> ``"screen_view"``
``timestamp``               ``timestamp``; without it ``originalTimestamp`` corrected for the client's
                            clock (``receivedAt - (sentAt - originalTimestamp)``), else the time the
                            server received the request
``properties``              ``properties``, kept as sent, plus the campaign's ``utm_*`` parameters;
                            ``revenue`` (else ``total``), ``currency`` (upper-cased), ``satisfaction``,
                            ``scale``, ``content_type``, ``content_id`` and ``journey_type`` are also read
                            into their own columns; a page's ``name`` / ``category`` are its
                            ``content_id`` / ``content_type`` unless the properties name them
``traits`` (identify)       not stored: person attributes are imported with ``journeylens ingest --persons``
``context.campaign``        ``utm_source`` / ``utm_medium`` / ``utm_campaign`` / ``utm_term`` /
                            ``utm_content`` (also read from the page URL's query and from properties)
channel                     see :func:`channel_for`
==========================  ==========================================================================

``group`` and ``alias`` calls are not touchpoints; they are reported back as per-event errors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# the channel tables live in journeylens.ingest.channels (shared with the file readers); re-exported here
from journeylens.ingest.channels import MEDIUM_CHANNELS as MEDIUM_CHANNELS
from journeylens.ingest.channels import SOURCE_CHANNELS as SOURCE_CHANNELS
from journeylens.ingest.channels import utm_channel

TOUCHPOINT_FOR_TYPE: dict[str, str | None] = {
    "track": None,
    "identify": "identify",
    "page": "page_view",
    "screen": "screen_view",
}
MESSAGE_TYPES: tuple[str, ...] = tuple(TOUCHPOINT_FOR_TYPE)

#: Segment's ``context.channel`` names the library's platform: translated; any other value is kept
LIBRARY_CHANNELS: dict[str, str | None] = {"browser": "website", "mobile": "app", "server": None}
DEFAULT_CHANNEL = "website"
SCREEN_CHANNEL = "app"

_CAMPAIGN_KEYS = {
    "name": "utm_campaign",
    "source": "utm_source",
    "medium": "utm_medium",
    "term": "utm_term",
    "content": "utm_content",
}
_UTM_KEYS = tuple(_CAMPAIGN_KEYS.values())

#: where a contract field came from, for error messages (per message type where it differs)
SEGMENT_FIELDS: dict[str, str] = {
    "event_id": "messageId",
    "person_id": "userId",
    "anonymous_id": "anonymousId",
    "timestamp": "timestamp",
    "channel": "context.channel",
    "content_type": "properties.content_type",
    "content_id": "properties.content_id",
    "journey_type": "properties.journey_type",
    "revenue": "properties.revenue",
    "currency": "properties.currency",
    "satisfaction": "properties.satisfaction",
    "scale": "properties.scale",
    "properties": "properties",
}


def segment_field(field: str | None, kind: str) -> str | None:
    """The Segment name of a contract field, for a message of type ``kind``."""
    if field is None:
        return None
    head, _, rest = field.partition(".")
    if head == "touchpoint":
        name = "event" if kind == "track" else "type"
    else:
        name = SEGMENT_FIELDS.get(head, head)
    return f"{name}.{rest}" if rest else name


class UnsupportedMessage(ValueError):
    """A message that is not a touchpoint (an unknown or unsupported ``type``)."""

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason
        self.message = message


def _text(value: Any) -> Any:
    """Ids may come as numbers from some libraries: take them as text; anything else is left to validation."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def event_time(message: dict[str, Any], *, sent_at: Any, received_at: datetime) -> Any:
    """``timestamp``; else ``originalTimestamp`` corrected for clock skew; else the time received."""
    if message.get("timestamp") is not None:
        return message["timestamp"]
    original = message.get("originalTimestamp")
    if original is None:
        return received_at
    original_t = _parse_time(original)
    sent_t = _parse_time(message.get("sentAt", sent_at))
    if original_t is None or sent_t is None:
        return original  # validated (and reported) as the timestamp
    try:
        return received_at - (sent_t - original_t)
    except OverflowError:
        return original


def campaign_params(
    message: dict[str, Any], context: dict[str, Any], properties: dict[str, Any]
) -> dict[str, str]:
    """The ``utm_*`` parameters: ``context.campaign``, then the page URL's query, then the properties."""
    out: dict[str, str] = {}
    campaign = context.get("campaign")
    if isinstance(campaign, dict):
        for key, utm in _CAMPAIGN_KEYS.items():
            value = campaign.get(key)
            if isinstance(value, str) and value.strip():
                out[utm] = value.strip()
    page = context.get("page") if isinstance(context.get("page"), dict) else {}
    for query in (page.get("search"), page.get("url"), properties.get("search"), properties.get("url")):
        if not isinstance(query, str) or "utm_" not in query:
            continue
        try:
            text = urlsplit(query).query if "://" in query or query.startswith("/") else query.lstrip("?")
            pairs = parse_qsl(text, keep_blank_values=False)
        except ValueError:  # not a URL (e.g. an unclosed IPv6 host): no parameters from it
            continue
        for key, value in pairs:
            if key in _UTM_KEYS and value.strip():
                out.setdefault(key, value.strip())
    for utm in _UTM_KEYS:
        value = properties.get(utm)
        if isinstance(value, str) and value.strip():
            out.setdefault(utm, value.strip())
    return out


def channel_for(kind: str, properties: dict[str, Any], utm: dict[str, str], context: dict[str, Any]) -> str:
    """The channel of a Segment message, by the documented default mapping.

    1. ``properties.channel`` when the sender names it;
    2. ``utm_medium`` by :data:`MEDIUM_CHANNELS` (``cpc`` / ``ppc`` / ``paidsearch`` -> paid_search,
       ``email`` -> email, ``social`` -> social, ``display`` / ``banner`` -> display, ``referral`` ->
       referral, ``organic`` -> organic_search, ``affiliate`` -> partner ...);
    3. ``utm_source`` by :data:`SOURCE_CHANNELS` (facebook, linkedin ... -> social);
    4. ``context.channel``: ``browser`` -> website, ``mobile`` -> app, ``server`` -> (skipped), anything
       else as it is;
    5. ``website`` (``app`` for screen calls).
    """
    explicit = properties.get("channel")
    if isinstance(explicit, str) and explicit.strip():
        return explicit.strip()
    from_utm = utm_channel(utm.get("utm_medium"), utm.get("utm_source"))
    if from_utm:
        return from_utm
    library = context.get("channel")
    if isinstance(library, str) and library.strip():
        mapped = LIBRARY_CHANNELS.get(library.strip().lower(), library.strip())
        if mapped:
            return mapped
    return SCREEN_CHANNEL if kind == "screen" else DEFAULT_CHANNEL


def message_type(message: dict[str, Any], endpoint_type: str | None) -> str:
    """The message's type: the endpoint's, or (for ``/v1/batch``) its own ``type``."""
    if endpoint_type is not None:
        return endpoint_type
    kind = message.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise UnsupportedMessage(
            "type", "missing_type", f"'type' is missing; expected one of {', '.join(MESSAGE_TYPES)}"
        )
    kind = kind.strip().lower()
    if kind not in TOUCHPOINT_FOR_TYPE:
        raise UnsupportedMessage(
            "type",
            "unsupported_type",
            f"'type' {kind!r} is not a touchpoint; expected one of {', '.join(MESSAGE_TYPES)}",
        )
    return kind


def to_touchpoint(
    message: dict[str, Any],
    kind: str,
    *,
    batch_context: dict[str, Any] | None = None,
    sent_at: Any = None,
    received_at: datetime,
) -> dict[str, Any]:
    """One Segment message of type ``kind`` as the fields of a touchpoint (validated by the caller)."""
    context = dict(batch_context or {})
    if isinstance(message.get("context"), dict):
        context.update(message["context"])
    raw_props = message.get("properties") if kind != "identify" else None
    properties: dict[str, Any] = dict(raw_props) if isinstance(raw_props, dict) else {}
    utm = campaign_params(message, context, properties)
    touchpoint = TOUCHPOINT_FOR_TYPE[kind] or message.get("event")
    out: dict[str, Any] = {
        "event_id": _text(message.get("messageId")),
        "person_id": _text(message.get("userId")),
        "anonymous_id": _text(message.get("anonymousId")),
        "timestamp": event_time(message, sent_at=sent_at, received_at=received_at),
        "channel": channel_for(kind, properties, utm, context),
        "touchpoint": touchpoint,
    }
    for name in ("content_type", "content_id", "journey_type", "satisfaction", "scale"):
        if properties.get(name) is not None:
            out[name] = properties[name]
    if kind in ("page", "screen"):
        if "content_id" not in out and isinstance(message.get("name"), str) and message["name"].strip():
            out["content_id"] = message["name"]
        if (
            "content_type" not in out
            and isinstance(message.get("category"), str)
            and message["category"].strip()
        ):
            out["content_type"] = message["category"]
    revenue = properties.get("revenue", properties.get("total"))
    if revenue is not None:
        out["revenue"] = revenue
    currency = properties.get("currency")
    if currency is not None:
        out["currency"] = currency.strip().upper() if isinstance(currency, str) else currency
    if isinstance(out.get("scale"), str):
        out["scale"] = out["scale"].strip().lower()
    if raw_props is not None and not isinstance(raw_props, dict):
        out["properties"] = raw_props  # reported by validation: properties must be an object
    else:
        for key, value in utm.items():
            properties.setdefault(key, value)
        out["properties"] = properties or None
    return {k: v for k, v in out.items() if v is not None}
