"""Access control: 401 without a valid key, 403 without the scope, for every endpoint."""

from __future__ import annotations

import base64

import pytest
from server_helpers import touch

#: endpoint -> the scope it needs
ENDPOINTS = {
    ("POST", "/v1/touchpoints"): "ingest",
    ("POST", "/v1/track"): "ingest",
    ("POST", "/v1/identify"): "ingest",
    ("POST", "/v1/page"): "ingest",
    ("POST", "/v1/screen"): "ingest",
    ("POST", "/v1/batch"): "ingest",
    ("GET", "/v1/persons/p1"): "read",
    ("DELETE", "/v1/persons/p1"): "admin",
    ("GET", "/v1/keys"): "admin",
    ("POST", "/v1/keys"): "admin",
    ("DELETE", "/v1/keys/00000000"): "admin",
}
BODIES = {
    "/v1/touchpoints": {"batch": [touch("e1")]},
    "/v1/batch": {
        "batch": [
            {
                "type": "track",
                "messageId": "m1",
                "userId": "p1",
                "event": "x",
                "timestamp": "2024-01-01T00:00:00Z",
            }
        ]
    },
    "/v1/keys": {"scope": "read"},
}


def call(client, method, path, headers):
    body = BODIES.get(path)
    if body is None and path.startswith("/v1/") and method == "POST":
        body = {"messageId": "m2", "userId": "p1", "event": "x", "timestamp": "2024-01-01T00:00:00Z"}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path"), list(ENDPOINTS))
def test_the_auth_matrix(client, keys, method, path):
    needed = ENDPOINTS[(method, path)]
    none = call(client, method, path, {})
    assert none.status_code == 401 and none.json()["code"] == "unauthorized"
    assert none.headers["WWW-Authenticate"] == "Bearer"
    wrong = call(client, method, path, {"Authorization": "Bearer jl_00000000_" + "A" * 43})
    assert wrong.status_code == 401
    for scope in ("ingest", "read", "admin"):
        answer = call(client, method, path, keys.header(scope))
        allowed = scope == needed or scope == "admin"
        if allowed:
            assert answer.status_code not in (401, 403), (scope, answer.text)
        else:
            assert answer.status_code == 403, (scope, answer.text)
            assert answer.json() == {
                "code": "forbidden",
                "message": f"the key {answer.json()['message'].split()[2]} has scope '{scope}'; this needs '{needed}' (or 'admin')",
                "errors": [],
            }


def test_health_needs_no_key(client):
    answer = client.get("/v1/health")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_the_three_ways_to_send_a_key(client, keys):
    batch = {"batch": [touch("e1")]}
    assert client.post("/v1/touchpoints", json=batch, headers={"X-API-Key": keys.ingest}).status_code == 200
    assert (
        client.post(
            "/v1/touchpoints", json=batch, headers={"Authorization": f"bearer {keys.ingest}"}
        ).status_code
        == 200
    )
    # Segment's libraries send the write key as the user name of HTTP Basic auth
    basic = base64.b64encode(f"{keys.ingest}:".encode()).decode()
    assert (
        client.post("/v1/touchpoints", json=batch, headers={"Authorization": f"Basic {basic}"}).status_code
        == 200
    )
    assert (
        client.post("/v1/touchpoints", json=batch, headers={"Authorization": "Basic !!!"}).status_code == 401
    )
    assert (
        client.post(
            "/v1/touchpoints", json=batch, headers={"Authorization": f"Token {keys.ingest}"}
        ).status_code
        == 401
    )


def test_keys_made_and_revoked_over_the_api_work_at_once(client, keys):
    made = client.post("/v1/keys", json={"scope": "ingest", "name": "shop"}, headers=keys.header("admin"))
    assert made.status_code == 201
    new = made.json()
    assert (new["scope"], new["name"], new["revoked_at"]) == ("ingest", "shop", None)
    mine = {"Authorization": f"Bearer {new['key']}"}
    assert client.post("/v1/touchpoints", json={"batch": [touch("e1")]}, headers=mine).status_code == 200
    listed = client.get("/v1/keys", headers=keys.header("admin")).json()
    assert new["prefix"] in [k["prefix"] for k in listed] and all("key" not in k for k in listed)

    revoked = client.delete(f"/v1/keys/{new['prefix']}", headers=keys.header("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.post("/v1/touchpoints", json={"batch": [touch("e2")]}, headers=mine).status_code == 401
    assert client.delete("/v1/keys/ffffffff", headers=keys.header("admin")).status_code == 404
    bad = client.post("/v1/keys", json={"scope": "root"}, headers=keys.header("admin"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "scope"


def test_cors_is_off_unless_origins_are_given(make_client, keys):
    plain = make_client()
    asked = plain.options(
        "/v1/touchpoints", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in asked.headers
    allowed = make_client(cors_origins=["https://shop.example"])
    asked = allowed.options(
        "/v1/touchpoints",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert asked.status_code == 200 and asked.headers["access-control-allow-origin"] == "https://shop.example"
    other = allowed.options(
        "/v1/touchpoints", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"
