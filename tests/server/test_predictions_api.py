"""GET /v1/persons/{id} with the predictions of the person's open journeys, refreshed after imports."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from server_helpers import app_client, touch
from server_helpers import rows as rows_of

from journeylens import predict
from journeylens.journeys import build
from journeylens.server import ServerConfig
from journeylens.store import Workspace


@pytest.fixture
def scored(ws_dir, keys):
    """A demo workspace with a trained model and stored predictions (before the server starts)."""
    from journeylens.demo import write_demo

    files = write_demo(ws_dir.parent / "demo.parquet", 1500, seed=2)
    with Workspace(ws_dir) as ws:
        ws.ingest(files.touchpoints)
        ws.ingest(files.persons, kind="persons")
        build(ws, model="five-phase")
        result = predict.predict(ws, train=True)
        rows = {r["journey_id"]: r for r in result.records()}
        data_end = ws.journey_touchpoints.timestamp.max().execute()
    return rows, data_end


def test_the_person_endpoint_returns_the_stored_predictions(make_client, keys, scored):
    rows, _ = scored
    row = next(r for r in rows.values() if r["journey_type"] == "purchase" and r["next_best_content"])
    client = make_client()
    answer = client.get(f"/v1/persons/{row['person_id']}", headers=keys.header("read"))
    assert answer.status_code == 200, answer.text
    journey = next(j for j in answer.json()["journeys"] if j["journey_id"] == row["journey_id"])
    got = journey["prediction"]
    assert got["propensity"] == pytest.approx(row["propensity"])
    assert got["propensity_source"] == row["propensity_source"]
    assert (got["next_phase"], got["next_phase_probability"]) == (
        row["next_phase"],
        pytest.approx(row["next_phase_probability"]),
    )
    assert got["next_touchpoints"] == row["next_touchpoints"]
    assert [c["content_type"] for c in got["next_best_content"]] == [
        c["content_type"] for c in row["next_best_content"]
    ]
    assert got["next_best_content"][0]["why"].startswith(
        f"{round(100 * row['next_best_content'][0]['moved_on_exposed'])}% of"
    )
    # the OpenAPI document describes the new fields
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"propensity", "next_phase", "next_best_content"} <= set(schema["PredictionOut"]["properties"])


def test_predictions_are_refreshed_after_an_import_and_erased_with_the_person(ws_dir, keys, scored):
    rows, data_end = scored
    row = next(
        r for r in rows.values() if r["journey_type"] == "purchase" and r["current_phase"] == "awareness"
    )
    person = row["person_id"]
    # the person compares products one minute after the data's end: they are now in consideration
    later = (data_end + timedelta(minutes=1)).isoformat()
    event = touch("new-1", person, later, touchpoint="comparison_view", content_type="comparison")
    with app_client(ws_dir, config=ServerConfig(predictions_refresh_seconds=0)) as client:
        answer = client.post("/v1/touchpoints", json={"batch": [event]}, headers=keys.header("ingest"))
        assert answer.json()["accepted"] == 1, answer.text
        profile = client.get(f"/v1/persons/{person}", headers=keys.header("read")).json()
        journey = next(j for j in profile["journeys"] if j["journey_id"] == row["journey_id"])
        assert journey["current_phase"] == "consideration"
        got = journey["prediction"]
        assert datetime.fromisoformat(got["scored_at"]) > row["scored_at"]
        # scored again from the new phase, and the comparison they just saw is not recommended
        assert "times comparison_view in consideration" in got["next_phase_basis"]
        assert "comparison" not in {c["content_type"] for c in got["next_best_content"]}
        # erasure removes their predictions with the rest
        assert client.delete(f"/v1/persons/{person}", headers=keys.header("admin")).status_code == 200
    left = rows_of(ws_dir, "SELECT count(*) FROM predictions WHERE person_id = ?", [person])
    assert left == [(0,)]
