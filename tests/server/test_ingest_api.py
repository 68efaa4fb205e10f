"""POST /v1/touchpoints: per-event errors, idempotent retries, limits (413), back-pressure (429)."""

from __future__ import annotations

import gzip
import json
import threading
import time

import pytest
from server_helpers import rows, touch

from journeylens.server import ServerConfig


def post(client, keys, body, **kwargs):
    if not isinstance(body, dict):
        return client.post(
            "/v1/touchpoints",
            content=body,
            headers={**keys.header("ingest"), **kwargs.pop("headers", {})},
            **kwargs,
        )
    return client.post("/v1/touchpoints", json=body, headers=keys.header("ingest"), **kwargs)


def stored(client, sql, params=None):
    """Query the workspace that the app owns (through its writer, as the app itself does)."""
    service = client.app.state.service
    return service.writer.submit(lambda ws: ws.con.con.execute(sql, params or []).fetchall()).result(30)


def test_valid_events_are_stored_and_bad_ones_reported_by_index_and_field(client, keys):
    batch = [
        touch("e0"),
        touch("e1", at="yesterday"),
        touch("e2", person=None),  # neither person_id nor anonymous_id
        touch("e3", anonymous_id="a1", person=None, channel="email", touchpoint="newsletter_open"),
        touch("e4", colour="red"),
        touch("e5", satisfaction=11, scale="nps"),
        touch("e6", currency="euro"),
        "not an object",
        touch("e8", revenue="12.50", currency="EUR", properties={"utm_medium": "cpc"}),
    ]
    answer = post(client, keys, {"batch": batch})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["received"], body["accepted"], body["duplicates"], body["rejected"]) == (9, 3, 0, 6)
    problems = [(e["index"], e["field"], e["reason"]) for e in body["errors"]]
    assert problems == [
        (1, "timestamp", "bad_timestamp"),
        (2, "person_id", "missing_person"),
        (4, "colour", "unknown_field"),
        (5, "satisfaction", "out_of_scale"),
        (6, "currency", "bad_currency"),
        (7, None, "bad_event"),
    ]
    messages = {e["index"]: e["message"] for e in body["errors"]}
    assert messages[1] == (
        "'timestamp': Input should be a valid datetime or date, input is too short; "
        "expected an ISO 8601 date-time, e.g. 2024-03-01T10:00:00+01:00; got 'yesterday'"
    )
    assert "satisfaction 11 is outside the nps scale (0-10)" in messages[5]
    assert messages[7] == "event 7 is a JSON string; expected an object"
    got = stored(
        client,
        "SELECT event_id, person_id, anonymous_id, revenue, currency, properties FROM touchpoints ORDER BY event_id",
    )
    assert got == [
        ("e0", "p1", None, None, None, None),
        ("e3", None, "a1", None, None, None),
        ("e8", "p1", None, 12.5, "EUR", '{"utm_medium": "cpc"}'),
    ]


def test_every_event_refused_is_a_422_in_the_same_shape(client, keys):
    answer = post(client, keys, {"batch": [touch("e1", at="never"), touch(None, channel="")]})
    assert answer.status_code == 422
    body = answer.json()
    assert (body["received"], body["accepted"], body["rejected"]) == (2, 0, 2)
    assert [(e["index"], e["field"], e["reason"]) for e in body["errors"]] == [
        (0, "timestamp", "bad_timestamp"),
        (1, "channel", "missing_value"),
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"{not json", "bad_json"),
        (b"[1, 2]", "bad_body"),
        (b'{"events": []}', "bad_body"),
        (b'{"batch": {"a": 1}}', "bad_body"),
        (b'{"batch": [{"revenue": NaN}]}', "bad_json"),
        (b"\xff\xfe", "bad_json"),
        (b"[" * 100_000, "bad_json"),
    ],
)
def test_a_malformed_body_is_a_400(client, keys, body, code):
    answer = post(client, keys, body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code


def test_retries_store_nothing_twice(client, keys):
    batch = {
        "batch": [touch(f"e{i}", at=f"2024-03-01T10:{i:02d}:00Z") for i in range(50)]
        + [touch(None, person="p9")]
    }
    first = post(client, keys, batch).json()
    assert (first["accepted"], first["duplicates"]) == (51, 0)
    for _ in range(3):
        again = post(client, keys, batch).json()
        assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 51, 0)
    # a batch half old, half new; an event repeated within it
    mixed = {"batch": batch["batch"][:10] + [touch("n1"), touch("n1")]}
    answer = post(client, keys, mixed).json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 11)
    assert stored(client, "SELECT count(*), count(DISTINCT event_id) FROM touchpoints") == [(52, 52)]
    # an event without an event_id gets one from its content, so its retry is found too
    (generated,) = stored(client, "SELECT event_id FROM touchpoints WHERE person_id = 'p9'")
    assert generated[0].startswith("h") and len(generated[0]) == 33


def test_an_event_id_reused_for_other_content_is_refused(client, keys):
    post(client, keys, {"batch": [touch("e1")]})
    answer = post(client, keys, {"batch": [touch("e2"), touch("e1", touchpoint="purchase")]})
    body = answer.json()
    assert (answer.status_code, body["accepted"], body["rejected"]) == (200, 1, 1)
    (error,) = body["errors"]
    assert (error["index"], error["field"], error["reason"]) == (1, "event_id", "duplicate_event_id")
    assert error["message"].startswith(
        "column 'event_id': 'e1' is already used by a different touchpoint (in import 1)"
    )


def test_gzip_bodies_are_accepted(client, keys):
    body = gzip.compress(json.dumps({"batch": [touch("e1"), touch("e2")]}).encode())
    answer = post(
        client, keys, body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    bad = post(client, keys, b"not gzip", headers={"Content-Encoding": "gzip"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_encoding"
    other = post(client, keys, b"{}", headers={"Content-Encoding": "br"})
    assert other.status_code == 415


def test_limits_give_413(make_client, keys):
    client = make_client(ServerConfig(max_request_bytes=20_000, max_events=50))
    big = json.dumps({"batch": [touch(f"e{i}", note="x" * 100) for i in range(120)]}).encode()
    assert len(big) > 20_000
    answer = post(client, keys, big)
    assert answer.status_code == 413 and answer.json()["code"] == "payload_too_large"
    # without a Content-Length (chunked): the body is cut off while it is read
    answer = post(client, keys, iter([big[:15_000], big[15_000:]]))
    assert answer.status_code == 413
    # a small gzip body that unpacks beyond the limit
    bomb = gzip.compress(b'{"batch": [' + b" " * 1_000_000 + b"]}")
    answer = post(client, keys, bomb, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 413
    many = {"batch": [touch(f"e{i}") for i in range(51)]}
    answer = post(client, keys, many)
    assert answer.status_code == 413 and answer.json() == {
        "code": "too_many_events",
        "message": "'batch' holds 51 events; expected at most 50 per request",
        "errors": [],
    }
    assert post(client, keys, {"batch": [touch(f"e{i}") for i in range(50)]}).status_code == 200


def test_a_full_queue_gives_429_with_retry_after(make_client, keys):
    client = make_client(ServerConfig(max_queue_events=100, group_linger=0))
    writer = client.app.state.service.writer
    gate = threading.Event()
    blocker = writer.submit(lambda ws: gate.wait(30))  # hold the writer
    first: dict = {}

    def send_first():
        first["answer"] = post(client, keys, {"batch": [touch(f"a{i}") for i in range(80)]})

    sender = threading.Thread(target=send_first)
    sender.start()
    deadline = time.monotonic() + 10
    while writer.queued_events < 80:
        assert time.monotonic() < deadline, "the first request never reached the queue"
        time.sleep(0.01)
    refused = post(client, keys, {"batch": [touch(f"b{i}") for i in range(30)]})
    assert refused.status_code == 429
    assert refused.json()["code"] == "queue_full"
    assert int(refused.headers["Retry-After"]) >= 1
    gate.set()
    blocker.result(10)
    sender.join(30)
    assert first["answer"].status_code == 200 and first["answer"].json()["accepted"] == 80
    again = post(
        client, keys, {"batch": [touch(f"b{i}") for i in range(30)]}
    )  # the retry, once there is room
    assert again.status_code == 200 and again.json()["accepted"] == 30


def test_concurrent_requests_are_committed_together(make_client, keys):
    client = make_client(ServerConfig(group_linger=0))
    writer = client.app.state.service.writer
    gate = threading.Event()
    blocker = writer.submit(lambda ws: gate.wait(30))
    answers = []
    senders = [
        threading.Thread(
            target=lambda k=k: answers.append(
                post(client, keys, {"batch": [touch(f"c{k}-{i}") for i in range(20)]})
            )
        )
        for k in range(6)
    ]
    for s in senders:
        s.start()
    deadline = time.monotonic() + 10
    while writer.queued_events < 120:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gate.set()
    blocker.result(10)
    for s in senders:
        s.join(30)
    assert sorted(a.json()["accepted"] for a in answers) == [20] * 6
    assert len({a.json()["import_id"] for a in answers}) == 1  # one group, one transaction
    assert stored(client, "SELECT count(*) FROM imports") == [(1,)]


def test_data_is_durable_when_the_answer_comes(ws_dir, keys, make_client):
    client = make_client()
    assert post(client, keys, {"batch": [touch("e1"), touch("e2")]}).json()["accepted"] == 2
    client.__exit__(None, None, None)
    assert rows(ws_dir, "SELECT count(*) FROM touchpoints") == [(2,)]
