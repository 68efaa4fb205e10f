"""Vectorised validation of one raw batch against the touchpoint contract.

Each check is a boolean mask over the batch (pyarrow compute); a row's first failing check, in the
contract's column order, is its reason for the quarantine. Only failing rows are visited one by one
(to write their messages), so a clean batch costs a handful of vectorised passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeylens.errors import UnusableInputError
from journeylens.ingest.mapping import Mapping
from journeylens.schema import FIELDS_BY_NAME, SATISFACTION_SCALES, TIMESTAMP_TYPE, TOUCHPOINT_FIELDS

STRING_FIELDS = tuple(f.name for f in TOUCHPOINT_FIELDS if pa.types.is_string(f.type))
NUMBER_FIELDS = ("revenue", "satisfaction")
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s?([Zz]|[+-]\d{2}(:?\d{2})?)?)?$"
_OFFSET = r"\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s?([Zz]|[+-]\d{2}(:?\d{2})?)$"


@dataclass
class Rejected:
    """One rejected row, before it becomes a quarantine record."""

    line: int
    field: str | None
    value: str | None
    reason: str
    message: str  # without the "source:line: " prefix
    raw: dict[str, Any]
    person_id: str | None = None


@dataclass
class ValidatedBatch:
    #: accepted rows: the contract's columns, plus ``_line``
    good: pa.Table
    rejected: list[Rejected]


def apply_mapping(table: pa.Table, mapping: Mapping, source_name: str) -> pa.Table:
    """Rename mapped columns to contract names and add constants; other columns are left out."""
    columns: dict[str, pa.ChunkedArray] = {}
    for name in FIELDS_BY_NAME:
        if name in mapping.constants:
            columns[name] = pa.chunked_array([pa.array([mapping.constants[name]] * table.num_rows, pa.string())])
        elif name in mapping.columns:
            src = mapping.columns[name]
            if src not in table.column_names:
                raise UnusableInputError(
                    f"{source_name}: --map {name}={src}: the input has no column '{src}'; columns: {', '.join(table.column_names)}"
                )
            columns[name] = table.column(src)
        elif name in table.column_names:
            columns[name] = table.column(name)
    return pa.table(columns) if columns else pa.table({"_empty": pa.nulls(table.num_rows)}).drop(["_empty"])


def missing_required(columns: list[str], mapping: Mapping) -> list[str]:
    """Required contract fields that neither the input nor the mapping provides."""
    provided = {f for f in FIELDS_BY_NAME if f in mapping.constants or f in mapping.columns or f in columns}
    missing = [f.name for f in TOUCHPOINT_FIELDS if f.required and f.name not in provided]
    if "person_id" not in provided and "anonymous_id" not in provided:
        missing.insert(0, "person_id")
    return missing


def _as_string(col: pa.ChunkedArray, name: str, fail: dict[str, tuple[np.ndarray, list[str | None]]]) -> pa.ChunkedArray:
    """Any column as trimmed strings with empty values as null; invalid UTF-8 is flagged, not fatal."""
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        try:
            col = col.cast(pa.string())
        except pa.ArrowInvalid:
            values = col.to_pylist()
            bad = np.zeros(len(values), dtype=bool)
            decoded: list[str | None] = []
            for i, v in enumerate(values):
                try:
                    decoded.append(None if v is None else v.decode("utf-8"))
                except UnicodeDecodeError:
                    bad[i] = True
                    decoded.append(None)
            fail[name] = (bad, [repr(v) if b else None for v, b in zip(values, bad, strict=True)])
            col = pa.chunked_array([pa.array(decoded, pa.string())])
    elif pa.types.is_dictionary(col.type):
        col = col.cast(pa.string())
    elif pa.types.is_struct(col.type) or pa.types.is_map(col.type) or pa.types.is_list(col.type):
        col = pa.chunked_array([pa.array([None if v is None else json.dumps(v, sort_keys=True, default=str) for v in col.to_pylist()], pa.string())])
    elif not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = col.cast(pa.string())
    col = pc.utf8_trim_whitespace(col.cast(pa.string()))
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)


def _parse_one_timestamp(text: str, zone: str) -> datetime | None:
    from zoneinfo import ZoneInfo

    s = text.strip().replace(" +", "+").replace(" -", "-")
    if s.endswith(("z", "Z")):
        s = s[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(s)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value


def parse_timestamps(col: pa.ChunkedArray, zone: str) -> tuple[pa.Array, np.ndarray]:
    """Parse a timestamp column to UTC; returns (values, mask of rows that are present but invalid)."""
    typ = col.type
    if pa.types.is_timestamp(typ):
        arr = col.combine_chunks()
        if typ.tz is None:
            arr = pc.assume_timezone(arr.cast(pa.timestamp("us")), timezone=zone, ambiguous="earliest", nonexistent="earliest")
        return arr.cast(TIMESTAMP_TYPE), np.zeros(len(arr), dtype=bool)
    if pa.types.is_date(typ):
        arr = pc.assume_timezone(col.combine_chunks().cast(pa.timestamp("us")), timezone=zone, ambiguous="earliest", nonexistent="earliest")
        return arr.cast(TIMESTAMP_TYPE), np.zeros(len(arr), dtype=bool)
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise UnusableInputError(f"column 'timestamp' has type {typ}; expected a timestamp column or ISO 8601 text")
    s = col.combine_chunks()
    present = pc.is_valid(s)
    looks_ok = pc.and_(present, pc.match_substring_regex(s, _ISO)).fill_null(False)
    has_offset = pc.and_(looks_ok, pc.match_substring_regex(s, _OFFSET)).fill_null(False)
    naive = pc.and_(looks_ok, pc.invert(has_offset))
    n = len(s)
    try:
        aware = pc.cast(pc.if_else(has_offset, s, pa.scalar(None, pa.string())), TIMESTAMP_TYPE)
        local = pc.cast(pc.if_else(naive, s, pa.scalar(None, pa.string())), pa.timestamp("us"))
        local = pc.assume_timezone(local, timezone=zone, ambiguous="earliest", nonexistent="earliest").cast(TIMESTAMP_TYPE)
        values = pc.if_else(has_offset, aware, local)
        bad = np.asarray(pc.and_(present, pc.invert(looks_ok)).fill_null(False), dtype=bool)
        return values, bad
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # slow path, only for a batch holding a value Arrow's parser rejects (e.g. "2024-02-30", "...z")
    parsed: list[datetime | None] = []
    bad = np.zeros(n, dtype=bool)
    for i, text in enumerate(s.to_pylist()):
        value = None if text is None else _parse_one_timestamp(text, zone)
        if text is not None and value is None:
            bad[i] = True
        parsed.append(value)
    return pa.array(parsed, TIMESTAMP_TYPE), bad


def parse_numbers(col: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    typ = col.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        arr = col.combine_chunks().cast(pa.float64())
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, pa.float64()), arr)
        return arr, np.zeros(len(arr), dtype=bool)
    s = col.combine_chunks()
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        s = s.cast(pa.string())
    ok = pc.match_substring_regex(s, _NUMBER).fill_null(True)
    bad = np.asarray(pc.invert(ok), dtype=bool)
    values = pc.cast(pc.if_else(ok, s, pa.scalar(None, pa.string())), pa.float64())
    return values, bad


def validate_batch(table: pa.Table, lines: np.ndarray, *, zone: str) -> ValidatedBatch:
    """Split a mapped batch into accepted rows (normalised) and rejected rows (with reasons)."""
    n = table.num_rows
    raw_table = table
    encoding_fail: dict[str, tuple[np.ndarray, list[str | None]]] = {}
    cols: dict[str, Any] = {}
    for f in TOUCHPOINT_FIELDS:
        if f.name not in table.column_names:
            cols[f.name] = pa.chunked_array([pa.nulls(n, f.type)])
        elif f.name == "timestamp" or f.name in NUMBER_FIELDS:
            cols[f.name] = table.column(f.name)
            if pa.types.is_binary(cols[f.name].type) or pa.types.is_string(cols[f.name].type) or pa.types.is_large_string(cols[f.name].type):
                cols[f.name] = _as_string(cols[f.name], f.name, encoding_fail)
        else:
            cols[f.name] = _as_string(table.column(f.name), f.name, encoding_fail)

    # (field, reason, mask, problem) in contract order; the first failing one names the row's reason
    checks: list[tuple[str, str, np.ndarray, str]] = []

    def add(name: str, reason: str, mask: Any, problem: str) -> None:
        arr = np.asarray(mask, dtype=bool) if not isinstance(mask, np.ndarray) else mask
        if arr.any():
            checks.append((name, reason, arr, problem))

    def is_null(name: str) -> np.ndarray:
        return np.asarray(pc.is_null(cols[name]), dtype=bool)

    for name, (mask, _) in encoding_fail.items():
        add(name, "bad_encoding", mask, "is not valid UTF-8 (pass --encoding if the file uses another one)")

    add("person_id", "missing_person", is_null("person_id") & is_null("anonymous_id"), "is empty")
    ts_text = cols["timestamp"]
    timestamps, ts_bad = parse_timestamps(cols["timestamp"], zone)
    add("timestamp", "missing_value", is_null("timestamp"), "is empty")
    add("timestamp", "bad_timestamp", ts_bad, "is not a date-time")
    add("channel", "missing_value", is_null("channel"), "is empty")
    add("touchpoint", "missing_value", is_null("touchpoint"), "is empty")
    revenue, rev_bad = parse_numbers(cols["revenue"])
    add("revenue", "bad_number", rev_bad, "is not a number")
    currency = pc.utf8_upper(cols["currency"])
    add("currency", "bad_currency", np.asarray(pc.invert(pc.match_substring_regex(currency, r"^[A-Z]{3}$")).fill_null(False), dtype=bool), "is not a currency code")
    satisfaction, sat_bad = parse_numbers(cols["satisfaction"])
    add("satisfaction", "bad_number", sat_bad, "is not a number")
    scale = pc.utf8_lower(cols["scale"])
    sat_present = np.asarray(pc.is_valid(satisfaction), dtype=bool)
    add("scale", "missing_scale", sat_present & is_null("scale"), "is empty but a satisfaction is given")
    known = pc.is_in(scale, value_set=pa.array(list(SATISFACTION_SCALES)))
    add("scale", "bad_scale", np.asarray(pc.and_(pc.is_valid(scale), pc.invert(known)), dtype=bool), "is not a satisfaction scale")
    out_of_range = np.zeros(n, dtype=bool)
    for name, (low, high) in SATISFACTION_SCALES.items():
        on_scale = pc.equal(scale, name).fill_null(False)
        outside = pc.or_(pc.less(satisfaction, low), pc.greater(satisfaction, high)).fill_null(False)
        out_of_range |= np.asarray(pc.and_(on_scale, outside), dtype=bool)
    add("satisfaction", "out_of_scale", out_of_range, "is outside the scale")
    props = cols["properties"]
    props_bad = _json_objects_bad(props, n)
    add("properties", "bad_json", props_bad, "is not a JSON object")

    first_fail = np.full(n, -1, dtype=np.int64)
    for index, (_, _, mask, _) in enumerate(checks):
        first_fail[(first_fail < 0) & mask] = index
    bad_rows = np.flatnonzero(first_fail >= 0)

    rejected: list[Rejected] = []
    if len(bad_rows):
        raw_rows = raw_table.take(pa.array(bad_rows)).to_pylist()
        ts_values = ts_text.take(pa.array(bad_rows)).to_pylist() if not pa.types.is_timestamp(ts_text.type) else None
        person_values = cols["person_id"].take(pa.array(bad_rows)).to_pylist()
        for k, row_index in enumerate(bad_rows):
            name, reason, _, problem = checks[first_fail[row_index]]
            raw = {key: _raw_text(value) for key, value in raw_rows[k].items()}
            if name in encoding_fail:
                value = encoding_fail[name][1][row_index]
            elif name == "timestamp" and ts_values is not None:
                value = ts_values[k]
            else:
                value = raw.get(name)
            if reason in ("missing_value", "missing_person"):
                message = f"column '{name}': {problem}; expected {FIELDS_BY_NAME[name].expected}"
            elif reason == "missing_scale":
                message = f"column 'scale': {problem}; expected {FIELDS_BY_NAME['scale'].expected}"
            elif reason == "out_of_scale":
                sc = str(raw.get("scale", "")).strip().lower()
                low, high = SATISFACTION_SCALES[sc]
                message = f"column 'satisfaction': {value!r} is outside the {sc} scale; expected a number from {low} to {high}"
            else:
                shown = value if reason == "bad_encoding" else repr(value)
                message = f"column '{name}': {shown} {problem}; expected {FIELDS_BY_NAME[name].expected}"
            rejected.append(Rejected(int(lines[row_index]), name, None if value is None else str(value), reason, message, raw, person_values[k]))

    keep = first_fail < 0
    keep_arr = pa.array(keep)
    out = {
        "event_id": cols["event_id"],
        "person_id": cols["person_id"],
        "anonymous_id": cols["anonymous_id"],
        "timestamp": timestamps,
        "channel": cols["channel"],
        "touchpoint": cols["touchpoint"],
        "content_type": cols["content_type"],
        "content_id": cols["content_id"],
        "journey_type": cols["journey_type"],
        "revenue": revenue,
        "currency": currency,
        "satisfaction": satisfaction,
        "scale": scale,
        "properties": props,
    }
    good = pa.table({k: _chunk(v) for k, v in out.items()}).filter(keep_arr)
    good = good.append_column("_line", pa.array(lines[keep], pa.int64()))
    return ValidatedBatch(good, rejected)


def _json_objects_bad(props: pa.ChunkedArray, n: int) -> np.ndarray:
    """Mask of values that are present but not a JSON object.

    Fast path: the values, one per line, parsed at once by Arrow's JSON reader (which accepts only
    objects); only when that fails are the values checked one by one.
    """
    bad = np.zeros(n, dtype=bool)
    if props.null_count == n:
        return bad
    values = pc.drop_null(props).to_pylist()
    if not any("\n" in v for v in values):
        text = "\n".join(values)
        import pyarrow.json as pj

        try:
            parsed = pj.read_json(pa.BufferReader(text.encode("utf-8")))
            if parsed.num_rows == len(values):
                return bad
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    for i, value in enumerate(props.to_pylist()):
        if value is None:
            continue
        try:
            obj = json.loads(value)
        except ValueError:
            obj = None
        bad[i] = not isinstance(obj, dict)
    return bad


def _chunk(value: Any) -> pa.ChunkedArray:
    return value if isinstance(value, pa.ChunkedArray) else pa.chunked_array([value])


def _raw_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, datetime):
        return value.isoformat()
    return value
