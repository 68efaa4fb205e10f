"""GET /v1/persons/{id}: attributes, open journeys with their phase and last touchpoints, lazy build."""

from __future__ import annotations

import pyarrow as pa
from server_helpers import app_client, touch

from journeylens.store import Workspace

# person -> their touchpoints: (event_id, touchpoint, channel, timestamp)
JOURNEYS = {
    "anna": [
        ("a1", "ad_click", "display", "2024-01-01T10:00:00Z"),
        ("a2", "purchase", "website", "2024-01-02T10:00:00Z"),  # converted; then 2 months of silence
        ("a3", "site_visit", "website", "2024-03-01T10:00:00Z"),
        ("a4", "whitepaper_download", "website", "2024-03-01T11:00:00Z"),
        ("a5", "product_view", "website", "2024-03-02T10:00:00Z"),
    ],
    "bert": [("b1", "ad_view", "display", "2024-03-02T09:00:00Z")],
}


def seed(ws_dir):
    batch = [
        touch(e, person, at, touchpoint=tp, channel=ch)
        for person, items in JOURNEYS.items()
        for e, tp, ch, at in items
    ]
    batch.append(
        touch(
            "v1",
            None,
            "2024-03-02T08:00:00Z",
            anonymous_id="visitor-9",
            touchpoint="article_read",
            channel="organic_search",
        )
    )
    with Workspace(ws_dir) as ws:
        ws.ingest_persons(
            pa.table(
                {
                    "person_id": ["anna", "carl"],
                    "persona": ["researcher", "bargain_hunter"],
                    "segment": ["b2b", "b2c"],
                }
            )
        )
    return {"batch": batch}


def test_a_person_with_an_open_journey(ws_dir, keys):
    batch = seed(ws_dir)
    with app_client(ws_dir) as client:
        assert (
            client.post("/v1/touchpoints", json=batch, headers=keys.header("ingest")).json()["accepted"] == 7
        )
        answer = client.get("/v1/persons/anna", headers=keys.header("read"))
        assert answer.status_code == 200, answer.text
        anna = answer.json()
        assert anna["person_id"] == "anna" and anna["identified"] is True
        assert anna["attributes"] == {"persona": "researcher", "segment": "b2b"}
        assert anna["journeys_total"] == 2
        (journey,) = anna["journeys"]
        assert journey["status"] == "open" and journey["journey_type"] == "purchase"
        assert journey["current_phase"] == "purchase"  # product_view
        assert journey["touchpoints"] == 3 and journey["start"] == "2024-03-01T10:00:00+00:00"
        assert [t["event_id"] for t in journey["last_touchpoints"]] == ["a5", "a4", "a3"]
        assert [t["phase"] for t in journey["last_touchpoints"]] == [
            "purchase",
            "consideration",
            "consideration",
        ]
        assert journey["last_touchpoints"][0] == {
            "event_id": "a5",
            "timestamp": "2024-03-02T10:00:00+00:00",
            "channel": "website",
            "touchpoint": "product_view",
            "content_type": None,
            "content_id": None,
            "phase": "purchase",
        }

        every = client.get("/v1/persons/anna?all=true", headers=keys.header("read")).json()
        assert [j["status"] for j in every["journeys"]] == ["open", "converted"]
        assert every["journeys"][1]["converted_at"] == "2024-01-02T10:00:00+00:00"

        carl = client.get(
            "/v1/persons/carl", headers=keys.header("read")
        ).json()  # known, but no touchpoints yet
        assert (carl["attributes"]["persona"], carl["journeys"], carl["journeys_total"]) == (
            "bargain_hunter",
            [],
            0,
        )
        visitor = client.get("/v1/persons/anon:visitor-9", headers=keys.header("read")).json()
        assert visitor["identified"] is False and visitor["journeys"][0]["current_phase"] == "awareness"

        missing = client.get("/v1/persons/nobody", headers=keys.header("read"))
        assert missing.status_code == 404 and missing.json()["code"] == "unknown_person"


def test_new_touchpoints_show_after_a_lazy_incremental_build(ws_dir, keys):
    batch = seed(ws_dir)
    with app_client(ws_dir) as client:
        client.post("/v1/touchpoints", json=batch, headers=keys.header("ingest"))
        before = client.get("/v1/persons/anna", headers=keys.header("read")).json()
        assert before["anonymous_ids"] == []
        later = [
            touch("a6", None, "2024-03-03T09:00:00Z", anonymous_id="dev-1", touchpoint="review_read"),
            touch("a7", "anna", "2024-03-03T09:05:00Z", anonymous_id="dev-1", touchpoint="login"),
        ]
        assert (
            client.post("/v1/touchpoints", json={"batch": later}, headers=keys.header("ingest")).json()[
                "accepted"
            ]
            == 2
        )
        after = client.get("/v1/persons/anna", headers=keys.header("read")).json()
        assert after["anonymous_ids"] == ["dev-1"]
        (journey,) = after["journeys"]
        assert [t["event_id"] for t in journey["last_touchpoints"]] == ["a7", "a6", "a5", "a4", "a3"]
        assert journey["current_phase"] == "consideration"  # review_read, and login is neutral
        builds = client.app.state.service.writer.submit(
            lambda ws: ws.con.con.execute("SELECT mode FROM builds ORDER BY build_id").fetchall()
        ).result(30)
        assert builds == [("full",), ("incremental",)]
        # reading again without new data builds nothing
        client.get("/v1/persons/anna", headers=keys.header("read"))
        assert client.app.state.service.writer.dirty is False
