"""--format ga4 / segment: event exports mapped to touchpoints, worked out by hand from the sample files.

Samples (tests/ingest/samples/) follow the published schemas field by field:

- ``ga4_events_20240301.jsonl``: BigQuery's JSON export of ``events_20240301`` (INT64 as strings);
  lines 1-4 good, 5 a bad event_timestamp, 6 no event_name, 7 no user ids, 8 not JSON;
- ``ga4_events_20240301.parquet``: lines 1-4 as Parquet with the export's nested types (made by
  :func:`ga4_parquet_table`);
- ``segment_export.jsonl``: one Segment message per line (identify, page, screen, track, a malformed
  line, a track without any time, a track timed by originalTimestamp, a group call).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journeylens.errors import UnusableInputError
from journeylens.ingest.channels import ga4_channel, utm_channel
from journeylens.server.segment import channel_for

SAMPLES = Path(__file__).parent / "samples"
GA4_JSONL = SAMPLES / "ga4_events_20240301.jsonl"
GA4_PARQUET = SAMPLES / "ga4_events_20240301.parquet"
SEGMENT = SAMPLES / "segment_export.jsonl"
COLUMNS = ("person_id", "anonymous_id", "timestamp", "channel", "touchpoint", "content_type", "content_id", "revenue", "currency", "properties")


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def stored(ws):
    rows = ws.touchpoints.order_by(["timestamp", "event_id"]).to_pyarrow().to_pylist()
    out = []
    for r in rows:
        r["properties"] = None if r["properties"] is None else json.loads(r["properties"])
        out.append(r)
    return out


def quarantine(ws):
    q = ws.quarantine.order_by(["import_id", "line"]).select("line", "field", "reason", "message")
    return [tuple(r.values()) for r in q.to_pyarrow().to_pylist()]


# -- GA4 ----------------------------------------------------------------------------------------------

GA4_EXPECTED = [
    # line 1: collected_traffic_source google / cpc with a gclid -> paid_search
    {
        "person_id": None, "anonymous_id": "123.456", "timestamp": utc(2024, 3, 1, 10), "channel": "paid_search",
        "touchpoint": "page_view", "content_type": None, "content_id": None, "revenue": None, "currency": None,
        "properties": {
            "ga_session_id": 1709287100, "page_location": "https://shop.example/?gclid=abc", "engagement_time_msec": 1200,
            "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring", "utm_term": "mugs",
        },
    },
    # line 2: no collected source; the session's last click newsletter / email -> email; purchase_revenue, currency param
    {
        "person_id": "u-1", "anonymous_id": "123.456", "timestamp": utc(2024, 3, 1, 11), "channel": "email",
        "touchpoint": "purchase", "content_type": None, "content_id": None, "revenue": 49.99, "currency": "EUR",
        "properties": {
            "ga_session_id": 1709287100, "currency": "EUR", "value": 49.99, "transaction_id": "T-1",
            "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "march",
            "items": [
                {"item_id": "SKU-1", "item_name": "Mug", "item_category": "Kitchen", "price": 19.99, "quantity": 1, "item_revenue": 19.99},
                {"item_id": "SKU-2", "item_name": "Teapot", "item_category": "Kitchen", "price": 30.0, "quantity": 1, "item_revenue": 30.0},
            ],
        },
    },
    # line 3: source / medium event params l.facebook.com / referral -> a social site -> social
    {
        "person_id": "u-1", "anonymous_id": "123.456", "timestamp": utc(2024, 3, 1, 12), "channel": "social",
        "touchpoint": "session_start", "content_type": None, "content_id": None, "revenue": None, "currency": None,
        "properties": {
            "ga_session_id": 1709294400, "source": "l.facebook.com", "medium": "referral",
            "utm_source": "l.facebook.com", "utm_medium": "referral",
        },
    },
    # line 4: first_open: traffic_source (direct) / (none) -> direct, on an ANDROID stream -> app
    {
        "person_id": None, "anonymous_id": "app-777", "timestamp": utc(2024, 3, 1, 13), "channel": "app",
        "touchpoint": "first_open", "content_type": None, "content_id": None, "revenue": None, "currency": None,
        "properties": {
            "firebase_event_origin": "auto", "utm_source": "(direct)", "utm_medium": "(none)", "utm_campaign": "(direct)",
        },
    },
]  # fmt: skip

GA4_QUARANTINE = [
    (5, "event_timestamp", "bad_timestamp",
     "ga4_events_20240301.jsonl:5: column 'event_timestamp': 'yesterday' is not a time; expected microseconds since "
     "1970-01-01 UTC, e.g. 1709287200000000"),
    (6, "touchpoint", "missing_value",
     "ga4_events_20240301.jsonl:6: column 'touchpoint': is empty; expected a non-empty touchpoint name, e.g. newsletter_open"),
    (7, "person_id", "missing_person",
     "ga4_events_20240301.jsonl:7: column 'person_id': is empty; expected a non-empty person id (or an anonymous_id)"),
]  # fmt: skip


def _param(key, string=None, integer=None, double=None):
    return {"key": key, "value": {"string_value": string, "int_value": integer, "float_value": None, "double_value": double}}


def ga4_parquet_table() -> pa.Table:
    """Lines 1-4 of the JSONL sample with the export's types (INT64 as numbers, nested structs and lists)."""
    value = pa.struct([("string_value", pa.string()), ("int_value", pa.int64()), ("float_value", pa.float64()), ("double_value", pa.float64())])
    item = pa.struct([
        ("item_id", pa.string()), ("item_name", pa.string()), ("item_brand", pa.string()), ("item_variant", pa.string()),
        ("item_category", pa.string()), ("price_in_usd", pa.float64()), ("price", pa.float64()), ("quantity", pa.int64()),
        ("item_revenue_in_usd", pa.float64()), ("item_revenue", pa.float64()), ("coupon", pa.string()),
    ])  # fmt: skip
    schema = pa.schema([
        ("event_date", pa.string()), ("event_timestamp", pa.int64()), ("event_name", pa.string()),
        ("event_params", pa.list_(pa.struct([("key", pa.string()), ("value", value)]))),
        ("event_bundle_sequence_id", pa.int64()), ("user_id", pa.string()), ("user_pseudo_id", pa.string()),
        ("stream_id", pa.string()), ("platform", pa.string()),
        ("traffic_source", pa.struct([("name", pa.string()), ("medium", pa.string()), ("source", pa.string())])),
        ("collected_traffic_source", pa.struct([
            ("manual_campaign_id", pa.string()), ("manual_campaign_name", pa.string()), ("manual_source", pa.string()),
            ("manual_medium", pa.string()), ("manual_term", pa.string()), ("manual_content", pa.string()), ("gclid", pa.string()),
        ])),
        ("session_traffic_source_last_click", pa.struct([("manual_campaign", pa.struct([
            ("campaign_id", pa.string()), ("campaign_name", pa.string()), ("source", pa.string()),
            ("medium", pa.string()), ("term", pa.string()), ("content", pa.string()),
        ]))])),
        ("ecommerce", pa.struct([
            ("total_item_quantity", pa.int64()), ("purchase_revenue_in_usd", pa.float64()), ("purchase_revenue", pa.float64()),
            ("refund_value", pa.float64()), ("unique_items", pa.int64()), ("transaction_id", pa.string()),
        ])),
        ("items", pa.list_(item)),
    ])  # fmt: skip
    direct = {"name": "(direct)", "medium": "(none)", "source": "(direct)"}
    rows = [
        {"event_date": "20240301", "event_timestamp": 1709287200000000, "event_name": "page_view",
         "event_params": [_param("ga_session_id", integer=1709287100), _param("page_location", "https://shop.example/?gclid=abc"),
                          _param("engagement_time_msec", integer=1200)],
         "event_bundle_sequence_id": 5, "user_id": None, "user_pseudo_id": "123.456", "stream_id": "987", "platform": "WEB",
         "traffic_source": direct,
         "collected_traffic_source": {"manual_campaign_name": "spring", "manual_source": "google", "manual_medium": "cpc",
                                      "manual_term": "mugs", "gclid": "abc"},
         "items": []},
        {"event_date": "20240301", "event_timestamp": 1709290800000000, "event_name": "purchase",
         "event_params": [_param("ga_session_id", integer=1709287100), _param("currency", "EUR"), _param("value", double=49.99),
                          _param("transaction_id", "T-1")],
         "event_bundle_sequence_id": 6, "user_id": "u-1", "user_pseudo_id": "123.456", "stream_id": "987", "platform": "WEB",
         "traffic_source": direct, "collected_traffic_source": {},
         "session_traffic_source_last_click": {"manual_campaign": {"campaign_name": "march", "source": "newsletter", "medium": "email"}},
         "ecommerce": {"total_item_quantity": 2, "purchase_revenue_in_usd": 54.2, "purchase_revenue": 49.99, "unique_items": 2,
                       "transaction_id": "T-1"},
         "items": [
             {"item_id": "SKU-1", "item_name": "Mug", "item_category": "Kitchen", "price_in_usd": 21.67, "price": 19.99,
              "quantity": 1, "item_revenue_in_usd": 21.67, "item_revenue": 19.99},
             {"item_id": "SKU-2", "item_name": "Teapot", "item_category": "Kitchen", "price_in_usd": 32.53, "price": 30.0,
              "quantity": 1, "item_revenue_in_usd": 32.53, "item_revenue": 30.0},
         ]},
        {"event_date": "20240301", "event_timestamp": 1709294400000000, "event_name": "session_start",
         "event_params": [_param("ga_session_id", integer=1709294400), _param("source", "l.facebook.com"), _param("medium", "referral")],
         "event_bundle_sequence_id": 7, "user_id": "u-1", "user_pseudo_id": "123.456", "stream_id": "987", "platform": "WEB",
         "traffic_source": direct, "items": []},
        {"event_date": "20240301", "event_timestamp": 1709298000000000, "event_name": "first_open",
         "event_params": [_param("firebase_event_origin", "auto")],
         "event_bundle_sequence_id": 1, "user_id": None, "user_pseudo_id": "app-777", "stream_id": "555", "platform": "ANDROID",
         "traffic_source": direct, "items": []},
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=schema)


def test_ga4_jsonl_maps_each_field_and_quarantines_bad_rows(workspace):
    result = workspace.ingest(GA4_JSONL, format="ga4")
    assert (result.format, result.rows_read, result.accepted, result.quarantined, result.duplicates) == ("ga4", 8, 4, 4, 0)
    rows = stored(workspace)
    assert [{k: r[k] for k in COLUMNS} for r in rows] == GA4_EXPECTED
    bad_json = quarantine(workspace)[3]
    assert quarantine(workspace)[:3] == GA4_QUARANTINE
    assert bad_json[:3] == (8, None, "bad_json")
    assert bad_json[3].startswith("ga4_events_20240301.jsonl:8: not valid JSON (")

    # the documented event_id of line 1: sha256 of the event's identity, numbers normalised
    params = GA4_EXPECTED[0]["properties"]
    params = {k: v for k, v in params.items() if not k.startswith("utm_")}
    key = ["987", "123.456", 1709287100, 5, None, 1709287200000000, "page_view", params]
    expected_id = "ga4-" + hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]
    assert rows[0]["event_id"] == expected_id
    assert len({r["event_id"] for r in rows}) == 4

    # re-import: nothing changes
    again = workspace.ingest(GA4_JSONL, format="ga4")
    assert (again.accepted, again.duplicates, again.quarantined) == (0, 4, 4)
    assert stored(workspace) == rows
    assert len(quarantine(workspace)) == 4  # the same quarantine records, not added twice


def test_ga4_parquet_sample_is_the_documented_table():
    assert pq.read_table(GA4_PARQUET).equals(ga4_parquet_table())


def test_ga4_parquet_gives_the_same_touchpoints_and_ids_as_jsonl(workspace, tmp_path):
    result = workspace.ingest(GA4_PARQUET, format="ga4")
    assert (result.format, result.rows_read, result.accepted, result.quarantined) == ("ga4", 4, 4, 0)
    rows = stored(workspace)
    assert [{k: r[k] for k in COLUMNS} for r in rows] == GA4_EXPECTED
    # the same events exported as JSON Lines are recognised: only duplicates (and the bad lines)
    again = workspace.ingest(GA4_JSONL, format="ga4")
    assert (again.accepted, again.duplicates, again.quarantined) == (0, 4, 4)
    assert stored(workspace) == rows


def test_ga4_parquet_bad_rows_are_quarantined_by_row_index(workspace, tmp_path):
    table = ga4_parquet_table()
    ts = table.column("event_timestamp").to_pylist()
    ts[1] = None  # row 1: no event_timestamp
    names = table.column("event_name").to_pylist()
    names[3] = None  # row 3: no event_name
    table = table.set_column(1, "event_timestamp", pa.array(ts, pa.int64())).set_column(2, "event_name", pa.array(names))
    path = tmp_path / "events_20240301.parquet"
    pq.write_table(table, path)
    result = workspace.ingest(path, format="ga4")
    assert (result.accepted, result.quarantined) == (2, 2)
    assert quarantine(workspace) == [
        (1, "timestamp", "missing_value",
         "events_20240301.parquet: row 1: column 'timestamp': is empty; expected an ISO 8601 date-time, e.g. 2024-03-01T10:00:00+01:00"),
        (3, "touchpoint", "missing_value",
         "events_20240301.parquet: row 3: column 'touchpoint': is empty; expected a non-empty touchpoint name, e.g. newsletter_open"),
    ]  # fmt: skip


def test_ga4_refund_is_negative_revenue_and_usd_fallback(workspace, write):
    lines = [
        {"event_timestamp": 1709287200000000, "event_name": "refund", "user_pseudo_id": "p",
         "event_params": [_param("currency", "usd")], "ecommerce": {"refund_value": 10.5}},
        {"event_timestamp": 1709287200000001, "event_name": "purchase", "user_pseudo_id": "p",
         "event_params": [], "ecommerce": {"purchase_revenue_in_usd": 12.0}},
    ]  # fmt: skip
    path = write("r.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    assert workspace.ingest(path, format="ga4").accepted == 2
    assert [(r["touchpoint"], r["revenue"], r["currency"], r["channel"]) for r in stored(workspace)] == [
        ("refund", -10.5, "USD", "website"),
        ("purchase", 12.0, "USD", "website"),
    ]


def test_ga4_rejects_a_file_that_is_not_an_export(write):
    from journeylens.ingest.readers import open_source

    path = write("x.jsonl", '{"event_id": "e1", "person_id": "p"}\n')
    with pytest.raises(UnusableInputError, match="does not look like a ga4 export: expected the keys event_name, event_timestamp"):
        open_source(path, format="ga4")


@pytest.mark.parametrize(
    ("source", "medium", "click", "expected"),
    [
        ("(direct)", "(none)", False, "website"),
        (None, None, False, "website"),
        ("google", "organic", False, "organic_search"),
        ("www.bing.com", "referral", False, "organic_search"),
        ("google", "cpc", False, "paid_search"),
        ("duckduckgo", "paid", False, "paid_search"),
        ("google", None, True, "paid_search"),
        ("facebook", "paid_social", False, "social"),
        ("linkedin", "cpc", False, "social"),
        ("t.co", "referral", False, "social"),
        ("newsletter_tool", "social", False, "social"),
        ("dv360", "display", False, "display"),
        ("ads.example", "cpm", False, "display"),
        ("partner.example", "cpc", False, "paid_other"),
        ("blog.example", "referral", False, "referral"),
        ("mailchimp", "email", False, "email"),
        ("e-mail", None, False, "email"),
        ("awin", "affiliate", False, "partner"),
        ("whatever", "seo", False, "organic_search"),  # rule 11: the Segment medium table
        ("whatever", "qr_code", False, "unassigned"),
    ],
)
def test_ga4_channel_grouping(source, medium, click, expected):
    assert ga4_channel(source, medium, click_id=click) == expected


def test_ga4_direct_on_an_app_stream_is_app():
    assert ga4_channel("(direct)", "(none)", default="app") == "app"


# -- Segment ------------------------------------------------------------------------------------------

SEGMENT_EXPECTED = [
    ("m-3", "u-1", None, utc(2024, 3, 1, 8, 10), "app", "screen_view", None, "Home", None, None, {"variation": "blue"}),
    ("m-1", "u-1", "a-1", utc(2024, 3, 1, 9), "website", "identify", None, None, None, None, None),
    ("m-2", None, "a-1", utc(2024, 3, 1, 9, 5), "paid_search", "page_view", "Docs", "Pricing", None, None,
     {"url": "https://example.com/pricing", "title": "Pricing", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"}),
    ("m-4", "u-1", None, utc(2024, 3, 1, 10), "email", "Order Completed", None, None, 49.99, "EUR",
     {"order_id": "O-1", "revenue": 49.99, "currency": "eur", "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "march"}),
    # originalTimestamp 10:59:00 sent at 11:00:00, received 11:00:05 -> 10:59:05
    ("m-7", None, "a-2", utc(2024, 3, 1, 10, 59, 5), "website", "Signed Up", None, None, None, None, None),
]  # fmt: skip


def test_segment_log_maps_each_call_type_and_quarantines_bad_lines(workspace):
    result = workspace.ingest(SEGMENT, format="segment")
    assert (result.format, result.rows_read, result.accepted, result.quarantined) == ("segment", 8, 5, 3)
    rows = stored(workspace)
    assert [tuple(r[k] for k in ("event_id", *COLUMNS)) for r in rows] == SEGMENT_EXPECTED
    q = quarantine(workspace)
    assert q[0][:3] == (5, None, "bad_json")
    assert q[0][3].startswith("segment_export.jsonl:5: not valid JSON (")
    assert q[1:] == [
        (6, "timestamp", "missing_value",
         "segment_export.jsonl:6: column 'timestamp': is empty; expected an ISO 8601 date-time, e.g. 2024-03-01T10:00:00+01:00"),
        (8, "type", "unsupported_type",
         "segment_export.jsonl:8: 'type' 'group' is not a touchpoint; expected one of track, identify, page, screen"),
    ]  # fmt: skip

    again = workspace.ingest(SEGMENT, format="segment")
    assert (again.accepted, again.duplicates, again.quarantined) == (0, 5, 3)
    assert stored(workspace) == rows
    assert len(quarantine(workspace)) == 3


def test_segment_file_reader_uses_the_servers_mapping():
    from journeylens.ingest.formats import segment_row
    from journeylens.server.segment import to_touchpoint

    message = {"type": "track", "messageId": "x", "userId": "u", "event": "E", "timestamp": "2024-01-01T00:00:00Z",
               "context": {"campaign": {"source": "facebook"}, "channel": "mobile"}, "properties": {"plan": "pro"}}  # fmt: skip
    assert segment_row(message, 1) == to_touchpoint(message, "track", received_at=utc(2024, 1, 2))
    assert segment_row(message, 1)["channel"] == "social"


def test_the_server_channel_mapping_uses_the_shared_tables():
    assert utm_channel("Paid-Search", None) == "paid_search"
    assert utm_channel(None, "LinkedIn") == "social"
    assert utm_channel("unknown", "unknown") is None
    assert channel_for("track", {}, {"utm_medium": "e_mail"}, {"channel": "mobile"}) == "email"
    assert channel_for("track", {}, {"utm_medium": "qr"}, {"channel": "mobile"}) == "app"
    assert channel_for("track", {}, {"utm_medium": "cpc"}, {}) == "paid_search"


def test_unknown_format_names_the_export_formats(write):
    from journeylens.ingest.readers import open_source

    path = write("x.jsonl", "{}\n")
    with pytest.raises(UnusableInputError, match="expected one of csv, tsv, parquet, jsonl, ga4, segment"):
        open_source(path, format="adobe")
