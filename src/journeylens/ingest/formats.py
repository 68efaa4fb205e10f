"""Readers for event exports: Google Analytics 4 (BigQuery export) and Segment / RudderStack logs.

Both stream like the plain readers (Parquet ``iter_batches``, JSON Lines a chunk of lines at a time) and
turn each batch into the contract's columns (as text), which the ordinary validation then checks: a row
that breaks the contract goes to the quarantine with its line (JSON Lines) or 0-based row (Parquet).

**GA4** (``--format ga4``; one ``events_YYYYMMDD`` row per event, as Parquet or JSON Lines, e.g. from
``bq extract``; BigQuery writes INT64 values as JSON strings, both are read):

=======================================  =================================================================
GA4 export                               touchpoint
=======================================  =================================================================
``event_name``                           ``touchpoint``
``event_timestamp`` (µs since epoch)     ``timestamp`` (UTC); a value that is not a whole number goes to the
                                         quarantine as ``bad_timestamp``
``user_id``                              ``person_id``
``user_pseudo_id``                       ``anonymous_id``
``event_params``                         ``properties``: ``{key: value}``, the value being the first set of
                                         ``string_value``, ``int_value``, ``float_value``, ``double_value``
``items``                                ``properties.items``: per item its ``item_id``, ``item_name``,
                                         ``item_brand``, ``item_variant``, ``item_category``, ``price``,
                                         ``quantity``, ``item_revenue``, ``coupon`` (those set)
``ecommerce.transaction_id``             ``properties.transaction_id`` (unless a parameter names it)
``ecommerce.purchase_revenue``           ``revenue`` on ``purchase`` (else the ``value`` parameter, else
                                         ``purchase_revenue_in_usd`` with currency USD); ``currency`` from
                                         the ``currency`` parameter. On ``refund``: minus ``refund_value``
                                         (else minus ``value``)
traffic source                           ``channel`` by :func:`journeylens.ingest.channels.ga4_channel`, and
                                         ``properties.utm_source`` / ``utm_medium`` / ``utm_campaign`` /
                                         ``utm_term`` / ``utm_content``
=======================================  =================================================================

The traffic source of an event is the first of: ``collected_traffic_source`` (``manual_source``,
``manual_medium``, ``manual_campaign_name``, ``manual_term``, ``manual_content``, ``gclid``: the event's
own); ``session_traffic_source_last_click.manual_campaign`` (the session's); the ``source`` /
``medium`` / ``campaign`` event parameters; and ``traffic_source`` (``source``, ``medium``, ``name``)
only on ``first_visit`` / ``first_open`` — it is the *user's* first acquisition, and giving it to
every later event would credit that first channel with everything. No source at all is direct:
``website``, or ``app`` on an app stream (``platform`` IOS / ANDROID).

``event_id``: GA4 exports carry no unique event id. An ``event_id`` event parameter is used when the
site sends one; otherwise the id is ``"ga4-"`` + the first 32 hex digits of the SHA-256 of
``[stream_id, user_pseudo_id, ga_session_id, event_bundle_sequence_id, batch_event_index,
event_timestamp, event_name, event_params]`` (numbers normalised, so a JSON and a Parquet export of the
same event give the same id). It does not depend on the row's position, so an overlapping re-export
(intraday, then daily) is recognised; two rows identical in all of these are one event (a duplicate).

**Segment / RudderStack** (``--format segment``; one message per line, as the S3 / warehouse exports
write them): mapped exactly as the HTTP API maps them (:func:`journeylens.server.segment.to_touchpoint`:
``messageId`` -> ``event_id``, ``userId`` -> ``person_id``, ``anonymousId`` -> ``anonymous_id``,
``event`` / ``identify`` / ``page_view`` / ``screen_view`` -> ``touchpoint``, ``context.campaign`` UTM
-> ``channel``, ``properties`` kept). Without ``timestamp`` the time is ``originalTimestamp``
corrected by ``receivedAt - sentAt``, else ``receivedAt``; with none of them the row goes to the
quarantine. ``group`` / ``alias`` and unknown types are quarantined (``unsupported_type``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from journeylens.errors import UnusableInputError
from journeylens.ingest.channels import ga4_channel
from journeylens.ingest.readers import JsonlSource, ParquetSource, RawBatch, RawError, Source
from journeylens.schema import CONTRACT_COLUMNS
from journeylens.server.segment import (
    UnsupportedMessage,
    _parse_time,
    event_time,
    message_type,
    to_touchpoint,
)

EXPORT_FORMATS = ("ga4", "segment")
GA4_BATCH_ROWS = 50_000
#: the top-level GA4 export fields read (others, e.g. device and geo, are not)
GA4_FIELDS = (
    "event_name",
    "event_timestamp",
    "event_params",
    "event_bundle_sequence_id",
    "batch_event_index",
    "user_id",
    "user_pseudo_id",
    "stream_id",
    "platform",
    "traffic_source",
    "collected_traffic_source",
    "session_traffic_source_last_click",
    "ecommerce",
    "items",
)
ITEM_FIELDS = ("item_id", "item_name", "item_brand", "item_variant", "item_category", "price", "quantity", "item_revenue", "coupon")
_INT_ITEM_FIELDS = ("quantity",)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_APP_PLATFORMS = ("IOS", "ANDROID")
_FIRST_TOUCH_EVENTS = ("first_visit", "first_open")


def open_export(path: Path, fmt: str, *, encoding: str = "utf-8") -> Source:
    """A :class:`Source` for a GA4 export (Parquet or JSON Lines) or a Segment JSON Lines log."""
    if fmt == "segment":
        return SegmentSource(path, encoding=encoding)
    if fmt == "ga4":
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"PAR1" or path.suffix.lower() in (".parquet", ".pq"):
            return Ga4ParquetSource(path)
        return Ga4JsonlSource(path, encoding=encoding)
    raise UnusableInputError(f"format '{fmt}' is unknown; expected one of {', '.join(EXPORT_FORMATS)}")


# -- shared -------------------------------------------------------------------------------------------


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


def contract_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Converted rows as a table of the contract's columns, as text (the validation parses them)."""
    return pa.table({c: pa.array([_cell(r.get(c)) for r in rows], pa.string()) for c in CONTRACT_COLUMNS})


def _raw_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)


class _ExportLines(JsonlSource):
    """JSON Lines whose objects are converted one by one into the contract's columns."""

    format_name = ""
    required_keys: tuple[str, ...] = ()

    def __init__(self, path: Path, *, encoding: str) -> None:
        super().__init__(path, encoding=encoding)
        if self.columns and not all(k in self.columns for k in self.required_keys):
            raise UnusableInputError(
                f"{path.name}: does not look like a {self.format_name} export: expected the keys "
                f"{', '.join(self.required_keys)}; the first lines have: {', '.join(self.columns)}"
            )
        self.format = self.format_name
        self.columns = list(CONTRACT_COLUMNS)

    def convert(self, obj: dict[str, Any], line: int) -> dict[str, Any] | RawError:  # pragma: no cover
        raise NotImplementedError

    def _parse_line(self, raw: bytes, number: int, rows: list[dict[str, Any]], lines: list[int], errors: list[RawError]) -> None:
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            return
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            errors.append(
                RawError(number, "bad_encoding", f"bytes {raw[exc.start : exc.end]!r} are not valid {self.encoding} (pass --encoding)", raw.decode(self.encoding, "replace"))
            )
            return
        try:
            obj = json.loads(text)
        except ValueError as exc:
            errors.append(RawError(number, "bad_json", f"not valid JSON ({exc}); expected one JSON object per line", text))
            return
        if not isinstance(obj, dict):
            errors.append(RawError(number, "bad_json", f"a JSON {type(obj).__name__}; expected one JSON object per line", text))
            return
        converted = self.convert(obj, number)
        if isinstance(converted, RawError):
            errors.append(converted)
        else:
            rows.append(converted)
            lines.append(number)

    def _batch(self, rows: list[dict[str, Any]], lines: list[int], errors: list[RawError]) -> RawBatch:
        return RawBatch(contract_table(rows), np.asarray(lines, dtype=np.int64), errors)


# -- GA4 ----------------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    """A whole number from an int, an integral float or a numeric string (BigQuery's JSON INT64)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    return None


def _param_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    if value.get("string_value") is not None:
        return value["string_value"]
    if value.get("int_value") is not None:
        number = _int(value["int_value"])
        return number if number is not None else value["int_value"]
    for key in ("float_value", "double_value"):
        if value.get(key) is not None:
            v = value[key]
            if isinstance(v, str):
                try:
                    v = float(v)
                except ValueError:
                    return v
            return v
    return None


def ga4_params(event_params: Any) -> dict[str, Any] | None:
    """``event_params`` flattened to ``{key: value}``; None when it is not a list of parameters."""
    if event_params is None:
        return {}
    if not isinstance(event_params, list):
        return None
    out: dict[str, Any] = {}
    for entry in event_params:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            return None
        out[entry["key"]] = _param_value(entry.get("value"))
    return out


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def ga4_traffic(obj: dict[str, Any], params: dict[str, Any]) -> tuple[dict[str, str], bool]:
    """The event's ``utm_*`` parameters and whether it carries a Google Ads click id (see the module doc)."""
    keys = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
    candidates: list[tuple[tuple[Any, ...], bool]] = []
    cts = obj.get("collected_traffic_source")
    if isinstance(cts, dict):
        fields = ("manual_source", "manual_medium", "manual_campaign_name", "manual_term", "manual_content")
        candidates.append((tuple(cts.get(f) for f in fields), bool(_text(cts.get("gclid")))))
    last = obj.get("session_traffic_source_last_click")
    manual = last.get("manual_campaign") if isinstance(last, dict) else None
    if isinstance(manual, dict):
        fields = ("source", "medium", "campaign_name", "term", "content")
        candidates.append((tuple(manual.get(f) for f in fields), False))
    candidates.append((tuple(params.get(f) for f in ("source", "medium", "campaign", "term", "content")), False))
    first = obj.get("traffic_source")
    if obj.get("event_name") in _FIRST_TOUCH_EVENTS and isinstance(first, dict):
        candidates.append(((first.get("source"), first.get("medium"), first.get("name"), None, None), False))
    for values, click in candidates:
        utm = {k: t for k, v in zip(keys, values, strict=True) if (t := _text(v)) is not None}
        if "utm_source" in utm or "utm_medium" in utm or click:
            return utm, click
    return {}, False


def _ga4_event_id(obj: dict[str, Any], params: dict[str, Any], micros: int | None) -> str:
    given = params.get("event_id")
    if isinstance(given, str | int) and not isinstance(given, bool) and str(given).strip():
        return str(given).strip()
    key = [
        _cell(obj.get("stream_id")),
        _cell(obj.get("user_pseudo_id")),
        _int(params.get("ga_session_id")),
        _int(obj.get("event_bundle_sequence_id")),
        _int(obj.get("batch_event_index")),
        micros,
        _cell(obj.get("event_name")),
        params,
    ]
    return "ga4-" + hashlib.sha256(_raw_json(key).encode()).hexdigest()[:32]


def _items(items: Any) -> list[dict[str, Any]] | None:
    if not isinstance(items, list) or not items:
        return None
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kept = {k: item[k] for k in ITEM_FIELDS if item.get(k) is not None and item.get(k) != ""}
        for k in _INT_ITEM_FIELDS:
            if k in kept and _int(kept[k]) is not None:
                kept[k] = _int(kept[k])
        for k in ("price", "item_revenue"):
            if isinstance(kept.get(k), str) and _number(kept[k]) is not None:
                kept[k] = _number(kept[k])
        out.append(kept)
    return out


def ga4_row(obj: dict[str, Any], line: int) -> dict[str, Any] | RawError:
    """One GA4 export row as the contract's fields (validated by the caller), or why it cannot be read."""
    params = ga4_params(obj.get("event_params"))
    if params is None:
        return RawError(
            line, "bad_event_params",
            "column 'event_params': is not a list of {key, value} parameters; expected the GA4 export's event_params",
            _raw_json(obj), field="event_params", value=_cell(obj.get("event_params")),
        )  # fmt: skip
    raw_ts = obj.get("event_timestamp")
    micros = None
    timestamp = None
    if raw_ts is not None:
        micros = _int(raw_ts)
        try:
            timestamp = None if micros is None else (_EPOCH + timedelta(microseconds=micros)).isoformat()
        except OverflowError:
            timestamp = None
        if timestamp is None:
            return RawError(
                line, "bad_timestamp",
                f"column 'event_timestamp': {raw_ts!r} is not a time; expected microseconds since 1970-01-01 UTC, e.g. 1709287200000000",
                _raw_json(obj), field="event_timestamp", value=_cell(raw_ts),
            )  # fmt: skip
    name = obj.get("event_name")
    utm, click = ga4_traffic(obj, params)
    default = "app" if str(obj.get("platform") or "").upper() in _APP_PLATFORMS else "website"
    channel = ga4_channel(utm.get("utm_source"), utm.get("utm_medium"), click_id=click, default=default)

    ecommerce = obj.get("ecommerce") if isinstance(obj.get("ecommerce"), dict) else {}
    revenue: Any = None
    currency = params.get("currency")
    if name == "purchase":
        revenue = ecommerce.get("purchase_revenue")
        if revenue is None:
            revenue = params.get("value")
        if revenue is None and ecommerce.get("purchase_revenue_in_usd") is not None:
            revenue, currency = ecommerce["purchase_revenue_in_usd"], "USD"
    elif name == "refund":
        refund = ecommerce.get("refund_value")
        if refund is None:
            refund = params.get("value")
        if refund is not None:
            number = _number(refund)
            revenue = -abs(number) if number is not None else refund
    properties = dict(params)
    for key, value in utm.items():
        properties.setdefault(key, value)
    items = _items(obj.get("items"))
    if items is not None:
        properties.setdefault("items", items)
    if _text(ecommerce.get("transaction_id")) and ecommerce["transaction_id"] != "(not set)":
        properties.setdefault("transaction_id", ecommerce["transaction_id"])
    return {
        "event_id": _ga4_event_id(obj, params, micros),
        "person_id": _cell(obj.get("user_id")),
        "anonymous_id": _cell(obj.get("user_pseudo_id")),
        "timestamp": timestamp,
        "channel": channel,
        "touchpoint": name,
        "revenue": revenue if revenue is None or isinstance(revenue, str) else _number(revenue),
        "currency": currency.strip().upper() if isinstance(currency, str) else currency,
        "properties": properties or None,
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class Ga4JsonlSource(_ExportLines):
    format_name = "ga4"
    required_keys = ("event_name", "event_timestamp")

    def convert(self, obj: dict[str, Any], line: int) -> dict[str, Any] | RawError:
        return ga4_row(obj, line)


class Ga4ParquetSource(ParquetSource):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        names = self.file.schema_arrow.names
        missing = [c for c in ("event_name", "event_timestamp") if c not in names]
        if missing:
            raise UnusableInputError(
                f"{path.name}: does not look like a GA4 export: missing column '{missing[0]}'; the file has: {', '.join(names)}"
            )
        self._read = [c for c in GA4_FIELDS if c in names]
        self.format = "ga4"
        self.columns = list(CONTRACT_COLUMNS)

    def batches(self) -> Iterator[RawBatch]:
        start = 0
        for batch in self.file.iter_batches(batch_size=GA4_BATCH_ROWS, columns=self._read):
            rows: list[dict[str, Any]] = []
            lines: list[int] = []
            errors: list[RawError] = []
            for i, obj in enumerate(batch.to_pylist()):
                converted = ga4_row(obj, start + i)
                if isinstance(converted, RawError):
                    errors.append(converted)
                else:
                    rows.append(converted)
                    lines.append(start + i)
            yield RawBatch(contract_table(rows), np.asarray(lines, dtype=np.int64), errors)
            start += batch.num_rows
            self._done = start


# -- Segment ------------------------------------------------------------------------------------------


def segment_row(obj: dict[str, Any], line: int) -> dict[str, Any] | RawError:
    """One Segment / RudderStack message as the contract's fields, mapped as the HTTP API maps it."""
    try:
        kind = message_type(obj, None)
    except UnsupportedMessage as exc:
        return RawError(line, exc.reason, exc.message, _raw_json(obj), field=exc.field, value=_cell(obj.get("type")))
    received = _parse_time(obj.get("receivedAt"))
    row = to_touchpoint(obj, kind, received_at=received or _EPOCH)
    if obj.get("timestamp") is not None:
        row["timestamp"] = obj["timestamp"]
    elif received is not None:
        row["timestamp"] = event_time(obj, sent_at=None, received_at=received)
    else:
        row["timestamp"] = obj.get("originalTimestamp")
    return row


class SegmentSource(_ExportLines):
    format_name = "segment"
    required_keys = ("type",)

    def convert(self, obj: dict[str, Any], line: int) -> dict[str, Any] | RawError:
        return segment_row(obj, line)
