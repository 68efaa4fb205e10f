"""Request bodies -> validated touchpoints (an Arrow table) and per-event errors.

Each event is checked against the :class:`~journeylens.schema.Touchpoint` contract; a bad event gives one
error per problem (its index in the batch, the field, a stable reason code and a message that says what
was expected and what was got) and the good ones go on to the import. Events without an ``event_id`` get
``"h"`` + the MD5 of their content, so that sending the same event twice stores it once.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, TypeAdapter, ValidationError

from journeylens.schema import CONTRACT_COLUMNS, FIELDS_BY_NAME, TOUCHPOINT_FIELDS, Touchpoint
from journeylens.server import segment

CONTRACT_SCHEMA = pa.schema([pa.field(f.name, f.type) for f in TOUCHPOINT_FIELDS])
#: errors listed in one response (the counts cover all of them)
MAX_ERRORS = 1000
_SHOWN = 80


class BodyError(ValueError):
    """The request body as a whole cannot be used (HTTP 400, or 413 when it is too large)."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class EventError:
    index: int | None
    field: str | None
    reason: str
    message: str


@dataclass
class Prepared:
    """The valid events as rows of the contract, with their index in the request, and the errors."""

    received: int
    table: pa.Table
    indexes: list[int]
    errors: list[EventError] = field(default_factory=list)

    @property
    def rejected_indexes(self) -> set[int]:
        return {e.index for e in self.errors if e.index is not None}


# -- the body --------------------------------------------------------------------------------------------


def decode_body(body: bytes, encoding: str | None, *, limit: int) -> bytes:
    """The body, gunzipped when ``Content-Encoding: gzip`` (bounded by ``limit`` bytes unpacked)."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("identity", ""):
        return body
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise BodyError(
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported; expected gzip or none",
            status=415,
        )
    unpack = zlib.decompressobj(wbits=47 if enc != "deflate" else 15)
    try:
        out = unpack.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BodyError("bad_encoding", f"the body is not valid {enc} data ({exc})") from None
    if len(out) > limit or unpack.unconsumed_tail:
        raise BodyError(
            "payload_too_large",
            f"the body unpacks to more than {limit:,} bytes; send smaller batches",
            status=413,
        )
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """Strict JSON (no NaN / Infinity); raises BodyError for anything that is not."""
    if not body.strip():
        raise BodyError("empty_body", "the body is empty; expected a JSON object")
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise BodyError(
            "bad_json", "the body is nested too deeply; expected a JSON object of events"
        ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too-long integers
        raise BodyError("bad_json", f"the body is not valid JSON: {exc}") from None


def batch_of(payload: Any, *, max_events: int, key: str = "batch") -> list[Any]:
    """``payload[key]``: a list of events, at most ``max_events`` of them."""
    if not isinstance(payload, dict):
        raise BodyError(
            "bad_body", f"the body is a JSON {_json_type(payload)}; expected an object with a {key!r} list"
        )
    if key not in payload:
        raise BodyError(
            "bad_body", f"the body has no {key!r}; expected an object with a {key!r} list of events"
        )
    items = payload[key]
    if not isinstance(items, list):
        raise BodyError("bad_body", f"{key!r} is a JSON {_json_type(items)}; expected a list of events")
    if len(items) > max_events:
        raise BodyError(
            "too_many_events",
            f"{key!r} holds {len(items):,} events; expected at most {max_events:,} per request",
            status=413,
        )
    return items


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


# -- events -----------------------------------------------------------------------------------------------

_REASONS = {
    "missing": "missing_value",
    "extra_forbidden": "unknown_field",
    "string_too_short": "missing_value",
    "string_too_long": "too_long",
    "string_type": "bad_type",
    "literal_error": "bad_scale",
    "dict_type": "bad_json",
}


def _reason(error: dict[str, Any], field_name: str | None) -> str:
    kind = str(error["type"])
    if kind.startswith(("datetime", "date_", "time")):
        return "bad_timestamp"
    if kind.startswith(("float", "int")):
        return "bad_number"
    if kind == "string_pattern_mismatch" and field_name == "currency":
        return "bad_currency"
    if kind == "value_error":
        text = str(error.get("msg", ""))
        if "person_id or an anonymous_id" in text:
            return "missing_person"
        if "needs a scale" in text:
            return "missing_scale"
        if "outside" in text:
            return "out_of_scale"
    return _REASONS.get(kind, kind)


def _model_field(error: dict[str, Any]) -> str | None:
    text = str(error.get("msg", ""))
    if "person_id or an anonymous_id" in text:
        return "person_id"
    if "needs a scale" in text:
        return "scale"
    if "satisfaction" in text:
        return "satisfaction"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _errors(index: int, exc: ValidationError, rename: Callable[[str | None], str | None]) -> list[EventError]:
    out = []
    for error in exc.errors(include_url=False, include_context=False):
        loc = error.get("loc") or ()
        name = ".".join(str(p) for p in loc) if loc else _model_field(error)
        head = name.partition(".")[0] if name else None
        reason = _reason(error, head)
        shown = rename(name)
        text = str(error.get("msg", "")).removeprefix("Value error, ")
        if reason == "unknown_field":
            message = f"{shown!r} is not a touchpoint field; expected only {', '.join(CONTRACT_COLUMNS)}"
        elif reason in ("missing_value", "missing_person"):
            what = FIELDS_BY_NAME[head].expected if head in FIELDS_BY_NAME else "a value"
            message = f"{shown!r} is missing or empty; expected {what}"
        else:
            expected = f"; expected {FIELDS_BY_NAME[head].expected}" if head in FIELDS_BY_NAME else ""
            where = f"{shown!r}: " if shown else ""
            message = f"{where}{text}{expected}; got {_shown(error.get('input'))}"
        out.append(EventError(index, shown, reason, message))
    return out


def check_event(
    index: int, data: Any, rename: Callable[[str | None], str | None] = lambda f: f
) -> Touchpoint | list[EventError]:
    """One event against the contract: the touchpoint, or its errors."""
    if not isinstance(data, dict):
        return [
            EventError(
                index, None, "bad_event", f"event {index} is a JSON {_json_type(data)}; expected an object"
            )
        ]
    try:
        tp = Touchpoint.model_validate(data)
    except ValidationError as exc:
        return _errors(index, exc, rename)
    except RecursionError:
        return [EventError(index, rename("properties"), "bad_json", "'properties' is nested too deeply")]
    except OverflowError:  # a date-time whose offset puts it outside year 1..9999 in UTC
        shown = rename("timestamp")
        return [
            EventError(
                index,
                shown,
                "bad_timestamp",
                f"{shown!r}: {_shown(data.get('timestamp'))} is out of range in UTC; "
                f"expected {FIELDS_BY_NAME['timestamp'].expected}",
            )
        ]
    for name in ("revenue", "satisfaction"):
        value = getattr(tp, name)
        if value is not None and not math.isfinite(value):
            return [
                EventError(
                    index,
                    rename(name),
                    "bad_number",
                    f"{rename(name)!r}: {value} is not a finite number; expected {FIELDS_BY_NAME[name].expected}",
                )
            ]
    return tp


_LIST = TypeAdapter(list[Touchpoint])


class _Envelope(BaseModel):
    batch: list[Touchpoint]


_ENVELOPE = TypeAdapter(_Envelope)


def prepare_touchpoints_body(body: bytes, *, max_events: int) -> Prepared:
    """A ``{"batch": [...]}`` body of contract touchpoints -> Prepared.

    Fast path, for a body whose events are all valid: pydantic-core parses and validates the JSON in one
    pass. Anything else (an invalid event, a malformed body) goes the event-by-event way, which says
    exactly what is wrong where.
    """
    if not _may_hold_surrogates(body):
        try:
            batch = _ENVELOPE.validate_json(body).batch
        except (ValidationError, RecursionError, OverflowError, ValueError):
            batch = None
        if batch is not None and len(batch) <= max_events and _finite(batch):
            try:
                texts = [_properties_text(tp) for tp in batch]
            except (ValueError, RecursionError):
                texts = None
            if texts is not None:
                return Prepared(len(batch), to_table(batch, texts), list(range(len(batch))), [])
    return prepare(batch_of(parse_json(body), max_events=max_events), body=body)


def _finite(touchpoints: list[Touchpoint]) -> bool:
    return all(v is None or math.isfinite(v) for tp in touchpoints for v in (tp.revenue, tp.satisfaction))


def _all_valid(items: list[Any]) -> list[Touchpoint] | None:
    """The touchpoints when every event is valid (one call into pydantic-core), else None."""
    try:
        touchpoints = _LIST.validate_python(items)
    except (ValidationError, RecursionError, OverflowError):
        return None
    return touchpoints if _finite(touchpoints) else None


def _properties_text(tp: Touchpoint) -> str | None:
    # sorted keys: the same properties always give the same text, so a retry is a duplicate, not a conflict
    return (
        None
        if tp.properties is None
        else json.dumps(tp.properties, sort_keys=True, ensure_ascii=False, allow_nan=False)
    )


def _content_id(row: list[Any]) -> str:
    text = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in row], ensure_ascii=False)
    return "h" + hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def to_table(touchpoints: list[Touchpoint], properties: list[str | None]) -> pa.Table:
    """Validated touchpoints as an Arrow table in the contract's columns (UTC timestamps)."""
    values = [tp.__dict__ for tp in touchpoints]  # the validated fields (much faster than getattr)
    columns: dict[str, list[Any]] = {
        name: [v[name] for v in values] for name in CONTRACT_COLUMNS if name != "properties"
    }
    columns["properties"] = properties
    ids = columns["event_id"]
    if any(i is None for i in ids):
        others = [columns[name] for name in CONTRACT_COLUMNS if name != "event_id"]
        for k, value in enumerate(ids):
            if value is None:
                ids[k] = _content_id([col[k] for col in others])
    return pa.table(columns, schema=CONTRACT_SCHEMA)


def _may_hold_surrogates(body: bytes) -> bool:
    # a lone surrogate (\ud800-\udfff) can only come from a JSON escape; only then check events one by one
    return b"\\ud" in body or b"\\uD" in body


def prepare(
    items: list[Any],
    to_contract: Callable[[int, Any], dict[str, Any]] | None = None,
    rename: Callable[[int, Any, str | None], str | None] | None = None,
    *,
    body: bytes = b"",
) -> Prepared:
    """Validate every event; ``to_contract`` maps a foreign event (Segment) to touchpoint fields first
    (raising :class:`segment.UnsupportedMessage` for one that is not a touchpoint)."""
    errors: list[EventError] = []
    candidates: list[tuple[int, Any, Any]] = []  # (index, the event as sent, its touchpoint fields)
    for index, item in enumerate(items):
        data = item
        if to_contract is not None and isinstance(item, dict):
            try:
                data = to_contract(index, item)
            except segment.UnsupportedMessage as exc:
                errors.append(EventError(index, exc.field, exc.reason, exc.message))
                continue
        candidates.append((index, item, data))
    check_text = _may_hold_surrogates(body)
    fast = None if check_text else _all_valid([data for _, _, data in candidates])
    if fast is not None:
        try:
            texts = [_properties_text(tp) for tp in fast]
        except (ValueError, RecursionError):
            fast = None
    if fast is not None:
        return Prepared(len(items), to_table(fast, texts), [index for index, _, _ in candidates], errors)
    good: list[Touchpoint] = []
    props: list[str | None] = []
    indexes: list[int] = []
    for index, item, data in candidates:
        field_name = (lambda f, _i=index, _item=item: rename(_i, _item, f)) if rename else (lambda f: f)
        result = check_event(index, data, field_name)
        if isinstance(result, list):
            errors.extend(result)
            continue
        try:
            text = _properties_text(result)
            if check_text:
                json.dumps(result.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
        except (RecursionError, ValueError, UnicodeEncodeError) as exc:
            reason = "bad_encoding" if isinstance(exc, UnicodeEncodeError) else "bad_json"
            errors.append(
                EventError(
                    index,
                    None,
                    reason,
                    f"event {index} holds text that is not valid UTF-8 or JSON ({type(exc).__name__})",
                )
            )
            continue
        good.append(result)
        props.append(text)
        indexes.append(index)
    errors.sort(key=lambda e: -1 if e.index is None else e.index)
    return Prepared(len(items), to_table(good, props), indexes, errors)


def prepare_segment(
    items: list[Any],
    endpoint_type: str | None,
    *,
    batch_context: dict[str, Any] | None,
    sent_at: Any,
    received_at: datetime,
    body: bytes = b"",
) -> Prepared:
    """Segment messages (of the endpoint's type, or each its own ``type`` in a batch) -> Prepared."""
    kinds: dict[int, str] = {}

    def to_contract(index: int, message: dict[str, Any]) -> dict[str, Any]:
        kind = segment.message_type(message, endpoint_type)
        kinds[index] = kind
        return segment.to_touchpoint(
            message, kind, batch_context=batch_context, sent_at=sent_at, received_at=received_at
        )

    def rename(index: int, message: Any, name: str | None) -> str | None:
        return segment.segment_field(name, kinds.get(index, endpoint_type or "track"))

    return prepare(items, to_contract, rename, body=body)
