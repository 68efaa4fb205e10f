"""Generated request bodies never make the server fail (no 5xx), whatever they hold."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import app_client, make_keys

from journeylens.schema import CONTRACT_COLUMNS

OK_STATUSES = {200, 400, 413, 415, 422, 429}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
timestamps = (
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat())
    | st.sampled_from(
        [
            "2024-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2024-02-30",
            "",
            " ",
        ]
    )
    | st.integers(min_value=-(10**12), max_value=10**14)
    | json_values
)
texts = st.text(max_size=210) | st.sampled_from(["", " ", "\x00", "\ud800", "e1", "p1"]) | json_values


@st.composite
def touchpoints(draw):
    event = {}
    for name in CONTRACT_COLUMNS:
        if draw(st.booleans()):
            if name == "timestamp":
                event[name] = draw(timestamps)
            elif name in ("revenue", "satisfaction"):
                event[name] = draw(st.floats() | st.integers(min_value=-(10**400), max_value=10**400) | texts)
            elif name == "scale":
                event[name] = draw(st.sampled_from(["csat", "nps", "ces", "NPS", "x"]) | json_values)
            elif name == "properties":
                event[name] = draw(json_values)
            else:
                event[name] = draw(texts)
    event.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)))
    return event


@st.composite
def segment_messages(draw):
    message = draw(
        st.dictionaries(
            st.sampled_from(["type", "messageId", "userId", "anonymousId", "event", "name", "category"]),
            texts,
            max_size=7,
        )
    )
    for key in ("timestamp", "originalTimestamp", "sentAt"):
        if draw(st.booleans()):
            message[key] = draw(timestamps)
    for key in ("properties", "context", "traits"):
        if draw(st.booleans()):
            message[key] = draw(
                json_values
                | st.fixed_dictionaries({"campaign": json_values, "channel": texts, "page": json_values})
            )
    return message


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    ws_dir = tmp_path_factory.mktemp("fuzz") / "ws"
    keys = make_keys(ws_dir)
    with app_client(ws_dir) as client:
        client.headers["Authorization"] = f"Bearer {keys.admin}"
        yield client


def check(answer):
    assert answer.status_code in OK_STATUSES, (answer.status_code, answer.text[:500])
    body = answer.json()
    assert isinstance(body, dict)
    if answer.status_code in (200, 422) and "received" in body:
        assert body["accepted"] + body["duplicates"] + body["rejected"] == body["received"]


def dumps(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


@FUZZ
@given(body=st.binary(max_size=300) | json_values.map(dumps))
def test_any_bytes(fuzz_client, body):
    for path in ("/v1/touchpoints", "/v1/track", "/v1/batch"):
        check(fuzz_client.post(path, content=body))


@FUZZ
@given(batch=st.lists(touchpoints(), max_size=6))
def test_touchpoint_batches(fuzz_client, batch):
    check(fuzz_client.post("/v1/touchpoints", content=dumps({"batch": batch})))


@FUZZ
@given(
    messages=st.lists(segment_messages(), max_size=5),
    context=json_values,
    kind=st.sampled_from(["track", "identify", "page", "screen"]),
)
def test_segment_calls(fuzz_client, messages, context, kind):
    check(
        fuzz_client.post(
            "/v1/batch",
            content=dumps({"batch": messages, "context": context, "sentAt": "2024-01-01T00:00:00Z"}),
        )
    )
    for message in messages[:2]:
        check(fuzz_client.post(f"/v1/{kind}", content=dumps(message)))


@FUZZ
@given(person=st.text(max_size=40))
def test_person_ids(fuzz_client, person):
    from urllib.parse import quote

    for method in ("GET", "DELETE"):
        answer = fuzz_client.request(
            method, "/v1/persons/" + quote(person.encode("utf-8", "surrogatepass"), safe="")
        )
        assert answer.status_code in {200, 400, 404}, (answer.status_code, answer.text[:300])
