"""The person endpoint's fast path: indexed, parameterised lookups with the data's end kept between
imports. It must give what the ``journeys`` view and the journey tables say, person by person."""

from __future__ import annotations

import random

import pytest
from server_helpers import app_client, touch

from journeylens.demo import generate
from journeylens.server.persons import ensure_indexes, person_profile, read_data_end
from journeylens.store import Workspace


def _indexed(ws: Workspace) -> set[str]:
    rows = ws.con.con.execute("SELECT table_name FROM duckdb_indexes() WHERE schema_name = 'main'").fetchall()
    return {row[0] for row in rows}


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    path = tmp_path_factory.mktemp("lookup") / "ws"
    with Workspace(path) as ws:
        for touchpoints, persons in generate(400, seed=3):
            ws.ingest_persons(persons)
            ws.ingest(touchpoints)
        ws.build()
    return path


def test_the_lookup_agrees_with_the_journeys_view_and_the_journey_touchpoints(demo_ws):
    last = 3
    with Workspace(demo_ws) as ws:
        ensure_indexes(ws)
        assert {"persons", "identities", "journeys_base", "journey_touchpoints"} <= _indexed(ws)
        view = ws.journeys.to_pandas()
        touches = ws.journey_touchpoints.to_pandas()
        end = read_data_end(ws)
        assert end == touches["timestamp"].max()
        people = sorted(view["person_id"].unique())
        for person in random.Random(0).sample(people, 40):
            profile = person_profile(ws, person, last=last, all_journeys=True, data_end=end)
            mine = view[view["person_id"] == person].sort_values(
                ["end", "journey_id"], ascending=[False, True]
            )
            assert [j["journey_id"] for j in profile["journeys"]] == list(mine["journey_id"])
            assert [j["status"] for j in profile["journeys"]] == list(mine["status"])
            assert [j["touchpoints"] for j in profile["journeys"]] == list(mine["touchpoints"])
            for journey in profile["journeys"]:
                # brute force: the journey's touchpoints, newest first (ties: larger event id first)
                rows = touches[touches["journey_id"] == journey["journey_id"]]
                ordered = sorted(zip(rows["timestamp"], rows["event_id"], strict=True), reverse=True)[:last]
                assert [t["event_id"] for t in journey["last_touchpoints"]] == [e for _, e in ordered]
            # only the open journeys without ?all
            only_open = person_profile(ws, person, last=last, data_end=end)
            assert [j["journey_id"] for j in only_open["journeys"]] == list(
                mine.loc[mine["status"] == "open", "journey_id"]
            )


def test_without_a_data_end_the_lookup_reads_it(demo_ws):
    with Workspace(demo_ws) as ws:
        person = ws.journeys.person_id.min().execute()
        assert person_profile(ws, person, all_journeys=True) == person_profile(
            ws, person, all_journeys=True, data_end=read_data_end(ws)
        )


def test_the_server_indexes_what_it_reads_and_a_later_touchpoint_closes_open_journeys(ws_dir, keys):
    first = [
        touch("b1", "bert", "2024-03-02T09:00:00Z", touchpoint="ad_view", channel="display"),
        touch("c1", "cleo", "2024-03-02T10:00:00Z", touchpoint="site_visit", channel="website"),
    ]
    with app_client(ws_dir) as client:
        service = client.app.state.service
        assert (
            client.post("/v1/touchpoints", json={"batch": first}, headers=keys.header("ingest")).json()[
                "accepted"
            ]
            == 2
        )
        bert = client.get("/v1/persons/bert", headers=keys.header("read")).json()
        assert [j["status"] for j in bert["journeys"]] == ["open"]
        indexed = service.writer.submit(_indexed).result(30)
        assert {"journeys_base", "journey_touchpoints", "identities"} <= indexed
        # a touchpoint of someone else, a year later: bert's journey has timed out (no purchase: abandoned)
        later = [touch("d1", "dora", "2025-03-02T09:00:00Z", touchpoint="ad_view", channel="display")]
        client.post("/v1/touchpoints", json={"batch": later}, headers=keys.header("ingest"))
        bert = client.get("/v1/persons/bert?all=true", headers=keys.header("read")).json()
        assert [j["status"] for j in bert["journeys"]] == ["abandoned"]
        assert client.get("/v1/persons/bert", headers=keys.header("read")).json()["journeys"] == []
        assert {"journeys_base", "journey_touchpoints"} <= service.writer.submit(_indexed).result(30)
        # erasing the person with the latest touchpoint moves the data's end back: bert is open again
        client.delete("/v1/persons/dora", headers=keys.header("admin")).raise_for_status()
        bert = client.get("/v1/persons/bert", headers=keys.header("read")).json()
        assert [j["status"] for j in bert["journeys"]] == ["open"]
