"""Segment's tracking API: each spec field lands in its touchpoint column (hand-made spec payloads)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from journeylens.server.segment import channel_for, to_touchpoint

RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# https://segment.com/docs/connections/spec/track/ (the example, trimmed)
TRACK = {
    "anonymousId": "23adfd82-aa0f-45a7-a756-24f2a7a4c895",
    "context": {
        "library": {"name": "analytics.js", "version": "2.11.1"},
        "page": {
            "path": "/academy/",
            "referrer": "",
            "search": "",
            "title": "Analytics Academy",
            "url": "https://segment.com/academy/",
        },
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_2) AppleWebKit/537.36",
        "ip": "108.0.78.21",
        "campaign": {
            "name": "TPS Innovation Newsletter",
            "source": "Newsletter",
            "medium": "email",
            "term": "tps reports",
            "content": "image link",
        },
    },
    "event": "Course Clicked",
    "integrations": {},
    "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
    "properties": {"title": "Intro to Analytics"},
    "receivedAt": "2015-12-12T19:11:01.266Z",
    "sentAt": "2015-12-12T19:11:01.169Z",
    "timestamp": "2015-12-12T19:11:01.249Z",
    "type": "track",
    "userId": "AiUGstSDIg",
    "originalTimestamp": "2015-12-12T19:11:01.152Z",
}

# https://segment.com/docs/connections/spec/ecommerce/v2/#order-completed (trimmed)
ORDER = {
    "type": "track",
    "messageId": "m-order-1",
    "userId": "u-42",
    "event": "Order Completed",
    "timestamp": "2024-04-30T09:15:00+02:00",
    "properties": {
        "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
        "order_id": "50314b8e9bcf000000000000",
        "total": 27.50,
        "revenue": 25.00,
        "currency": "usd",
    },
}

IDENTIFY = {
    "type": "identify",
    "messageId": "m-id-1",
    "anonymousId": "507f191e810c19729de860ea",
    "userId": "97980cfea0067",
    "traits": {"name": "Peter Gibbons", "email": "peter@example.com", "plan": "premium"},
    "timestamp": "2024-04-30T10:00:00Z",
    "context": {"ip": "8.8.8.8"},
}

PAGE = {
    "type": "page",
    "messageId": "m-page-1",
    "anonymousId": "507f191e810c19729de860ea",
    "name": "Home",
    "category": "Docs",
    "properties": {
        "title": "Welcome | Initech",
        "url": "http://www.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=spring",
    },
    "timestamp": "2024-04-30T10:05:00Z",
}


def mapped(message, kind=None, **options):
    options.setdefault("received_at", RECEIVED)
    return to_touchpoint(message, kind or message["type"], **options)


def test_track_field_by_field():
    tp = mapped(TRACK)
    assert tp["event_id"] == "ajs-f8ca1e4de5024d9430b3928bd8ac6b96"
    assert tp["person_id"] == "AiUGstSDIg"
    assert tp["anonymous_id"] == "23adfd82-aa0f-45a7-a756-24f2a7a4c895"
    assert tp["touchpoint"] == "Course Clicked"
    assert tp["timestamp"] == "2015-12-12T19:11:01.249Z"  # `timestamp` wins over originalTimestamp
    assert tp["channel"] == "email"  # context.campaign.medium
    assert tp["properties"] == {
        "title": "Intro to Analytics",
        "utm_campaign": "TPS Innovation Newsletter",
        "utm_source": "Newsletter",
        "utm_medium": "email",
        "utm_term": "tps reports",
        "utm_content": "image link",
    }
    assert "revenue" not in tp and "currency" not in tp and "content_id" not in tp


def test_order_completed_carries_revenue_and_currency():
    tp = mapped(ORDER)
    assert (tp["touchpoint"], tp["revenue"], tp["currency"]) == ("Order Completed", 25.0, "USD")
    assert tp["channel"] == "website"  # no campaign, no context.channel
    assert tp["properties"]["order_id"] == "50314b8e9bcf000000000000"
    assert mapped({**ORDER, "properties": {"total": 27.5}})["revenue"] == 27.5  # no revenue: the total


def test_identify_links_the_anonymous_id_and_keeps_no_traits():
    tp = mapped(IDENTIFY)
    assert (tp["touchpoint"], tp["person_id"], tp["anonymous_id"]) == (
        "identify",
        "97980cfea0067",
        "507f191e810c19729de860ea",
    )
    assert "properties" not in tp
    assert "peter@example.com" not in json.dumps(tp)


def test_page_takes_utm_parameters_from_its_url_and_its_name_as_content():
    tp = mapped(PAGE)
    assert (tp["touchpoint"], tp["channel"]) == ("page_view", "paid_search")
    assert (tp["content_id"], tp["content_type"]) == ("Home", "Docs")
    assert tp["properties"]["utm_campaign"] == "spring" and tp["properties"]["title"] == "Welcome | Initech"
    assert "person_id" not in tp


def test_broken_urls_give_no_campaign_and_no_error():
    page = {
        **PAGE,
        "properties": {"url": "http://[::1/?utm_medium=email"},
        "context": {"page": {"search": "?utm_medium=%zz"}},
    }
    tp = mapped(page)
    assert tp["channel"] == "website"


def test_screen_calls_default_to_the_app_channel():
    tp = mapped(
        {
            "type": "screen",
            "messageId": "s1",
            "userId": "u1",
            "name": "Basket",
            "timestamp": "2024-01-01T00:00:00Z",
        }
    )
    assert (tp["touchpoint"], tp["channel"], tp["content_id"]) == ("screen_view", "app", "Basket")


def test_timestamps_without_timestamp():
    # originalTimestamp corrected by the client's clock skew: receivedAt - (sentAt - originalTimestamp)
    skewed = {
        "type": "track",
        "event": "x",
        "userId": "u",
        "originalTimestamp": "2024-05-01T11:59:50Z",
        "sentAt": "2024-05-01T11:59:55Z",
    }
    assert mapped(skewed)["timestamp"] == datetime(2024, 5, 1, 11, 59, 55, tzinfo=UTC)
    batch_sent = {k: v for k, v in skewed.items() if k != "sentAt"}
    assert mapped(batch_sent, sent_at="2024-05-01T12:00:00Z")["timestamp"] == datetime(
        2024, 5, 1, 11, 59, 50, tzinfo=UTC
    )
    assert mapped(batch_sent)["timestamp"] == "2024-05-01T11:59:50Z"  # no sentAt: taken as it is
    assert mapped({"type": "track", "event": "x", "userId": "u"})["timestamp"] == RECEIVED


def test_batch_context_applies_unless_the_message_has_its_own():
    shared = {"campaign": {"medium": "social"}, "channel": "browser"}
    assert mapped(ORDER, batch_context=shared)["channel"] == "social"
    own = {**ORDER, "context": {"campaign": {"medium": "display"}}}
    assert mapped(own, batch_context=shared)["channel"] == "display"


def test_numeric_ids_are_taken_as_text():
    tp = mapped(
        {"type": "track", "event": "x", "userId": 42, "messageId": 7, "timestamp": "2024-01-01T00:00:00Z"}
    )
    assert (tp["person_id"], tp["event_id"]) == ("42", "7")


@pytest.mark.parametrize(
    ("utm", "context", "properties", "channel"),
    [
        ({"utm_medium": "cpc"}, {}, {}, "paid_search"),
        ({"utm_medium": "PPC"}, {}, {}, "paid_search"),
        ({"utm_medium": "paid-search"}, {}, {}, "paid_search"),
        ({"utm_medium": "paidsearch"}, {}, {}, "paid_search"),
        ({"utm_medium": "email"}, {}, {}, "email"),
        ({"utm_medium": "social"}, {}, {}, "social"),
        ({"utm_medium": "display"}, {}, {}, "display"),
        ({"utm_medium": "banner"}, {}, {}, "display"),
        ({"utm_medium": "referral"}, {}, {}, "referral"),
        ({"utm_medium": "organic"}, {}, {}, "organic_search"),
        ({"utm_medium": "affiliate"}, {}, {}, "partner"),
        ({"utm_medium": "qr", "utm_source": "linkedin"}, {}, {}, "social"),
        ({"utm_medium": "qr"}, {"channel": "store"}, {}, "store"),
        ({}, {"channel": "browser"}, {}, "website"),
        ({}, {"channel": "mobile"}, {}, "app"),
        ({}, {"channel": "server"}, {}, "website"),
        ({}, {}, {}, "website"),
        ({"utm_medium": "cpc"}, {}, {"channel": "call_centre"}, "call_centre"),
    ],
)
def test_the_default_channel_mapping(utm, context, properties, channel):
    assert channel_for("track", properties, utm, context) == channel


def post(client, keys, path, body):
    return client.post(path, json=body, headers=keys.header("ingest"))


def test_segment_calls_over_http_are_stored_as_touchpoints(client, keys):
    for path, message in (("/v1/track", TRACK), ("/v1/identify", IDENTIFY), ("/v1/page", PAGE)):
        answer = post(client, keys, path, message)
        assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    answer = post(
        client,
        keys,
        "/v1/batch",
        {"batch": [ORDER, {**PAGE, "messageId": "m-page-2"}], "sentAt": "2024-04-30T10:06:00Z"},
    )
    assert answer.json()["accepted"] == 2
    service = client.app.state.service
    got = service.writer.submit(
        lambda ws: ws.con.con.execute(
            "SELECT event_id, person_id, anonymous_id, timestamp, channel, touchpoint, revenue, currency FROM touchpoints ORDER BY event_id"
        ).fetchall()
    ).result(30)
    assert [(r[0], r[1], r[2], r[4], r[5], r[6], r[7]) for r in got] == [
        (
            "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
            "AiUGstSDIg",
            "23adfd82-aa0f-45a7-a756-24f2a7a4c895",
            "email",
            "Course Clicked",
            None,
            None,
        ),
        ("m-id-1", "97980cfea0067", "507f191e810c19729de860ea", "website", "identify", None, None),
        ("m-order-1", "u-42", None, "website", "Order Completed", 25.0, "USD"),
        ("m-page-1", None, "507f191e810c19729de860ea", "paid_search", "page_view", None, None),
        ("m-page-2", None, "507f191e810c19729de860ea", "paid_search", "page_view", None, None),
    ]
    assert got[2][3] == datetime(2024, 4, 30, 7, 15, tzinfo=UTC)  # +02:00 stored in UTC
    again = post(client, keys, "/v1/track", TRACK).json()  # Segment retries with the same messageId
    assert (again["accepted"], again["duplicates"]) == (0, 1)


def test_segment_errors_name_segment_fields(client, keys):
    batch = {
        "batch": [
            {
                "type": "track",
                "messageId": "ok",
                "userId": "u",
                "event": "Signed Up",
                "timestamp": "2024-01-01T00:00:00Z",
            },
            {
                "type": "track",
                "messageId": "no-user",
                "event": "Signed Up",
                "timestamp": "2024-01-01T00:00:00Z",
            },
            {"type": "track", "messageId": "no-event", "userId": "u", "timestamp": "2024-01-01T00:00:00Z"},
            {"type": "group", "messageId": "g", "userId": "u", "groupId": "acme"},
            {"messageId": "untyped", "userId": "u", "event": "x"},
            {
                "type": "track",
                "messageId": "bad-time",
                "userId": "u",
                "event": "x",
                "timestamp": "last tuesday",
            },
            {"type": "track", "messageId": "bad-props", "userId": "u", "event": "x", "properties": [1, 2]},
            {
                "type": "track",
                "messageId": "bad-revenue",
                "userId": "u",
                "event": "x",
                "properties": {"revenue": "lots"},
            },
        ]
    }
    body = post(client, keys, "/v1/batch", batch).json()
    assert (body["accepted"], body["rejected"]) == (1, 7)
    assert [(e["index"], e["field"], e["reason"]) for e in body["errors"]] == [
        (1, "userId", "missing_person"),
        (2, "event", "missing_value"),
        (3, "type", "unsupported_type"),
        (4, "type", "missing_type"),
        (5, "timestamp", "bad_timestamp"),
        (6, "properties", "bad_json"),
        (7, "properties.revenue", "bad_number"),
    ]
    single = post(client, keys, "/v1/track", {"messageId": "x", "event": "x"})
    assert single.status_code == 422 and single.json()["errors"][0]["field"] == "userId"
    not_object = client.post("/v1/track", json=[TRACK], headers=keys.header("ingest"))
    assert not_object.status_code == 400
