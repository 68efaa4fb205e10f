"""Query endpoints: /v1/analyses, /v1/attribution, /v1/persons/{id}/journeys, /v1/report, /v1/dimensions.

The workspace is simulated once per module (``journeylens.demo``, built) and copied for each test; the
numbers the API gives are compared with ``run(ws, spec)`` on the same workspace before the server opens it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from server_helpers import app_client, make_keys, touch

from journeylens.analyses.base import parse_spec
from journeylens.errors import SpecError
from journeylens.store import Workspace

XSS = "<script>alert(1)</script>"


def seed_workspace(path: Path, persons: int = 120) -> None:
    """Demo persons and touchpoints (built), plus one journey with a hostile touchpoint name."""
    import pyarrow as pa

    from journeylens.demo.generator import generate

    with Workspace(path) as ws:
        for tp, pe in generate(persons, seed=7, days=120):
            ws.ingest(tp)
            ws.ingest_persons(pe)
        extra = [
            {
                "event_id": f"x{i}-{k}",
                "person_id": f"xss{i}",
                "timestamp": f"2024-02-{i % 28 + 1:02d}T1{k}:00:00Z",
                "channel": "website",
                "touchpoint": name,
            }  # fmt: skip
            for i in range(25)
            for k, name in enumerate(["site_visit", XSS, "purchase"])
        ]
        ws.ingest(pa.Table.from_pylist(extra))
        ws.build()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("queries") / "ws"
    seed_workspace(path)
    return path


@pytest.fixture
def seeded(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "seeded"
    shutil.copytree(template, path)
    return path


def norm(value: Any) -> Any:
    from journeylens.server.queries import plain

    return plain(value)


def same_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert set(g) == set(e)
        for k, v in e.items():
            v = norm(v)
            if isinstance(v, float) and not isinstance(v, bool):
                assert g[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
            else:
                assert g[k] == v, k


SPECS: list[tuple[str, dict[str, Any]]] = [
    ("phase_funnel", {}),
    ("phase_funnel", {"filters": {"personas": ["low_involvement"]}}),
    ("touchpoints", {"scope": "journey"}),
    ("paths", {"level": "channel", "dfg": True}),
    ("satisfaction", {"by": "phase"}),
    ("loyalty", {"max_months": 3}),
    ("content", {}),
    ("funnel", {"steps": ["site_visit", "purchase"], "window": "30d"}),
]


def expected_results(path: Path) -> dict[int, Any]:
    from journeylens.server.queries import analyses

    kinds = analyses()
    out = {}
    with Workspace(path) as ws:
        for i, (kind, data) in enumerate(SPECS):
            cls, run = kinds[kind]
            out[i] = run(ws, parse_spec(cls, data))
    return out


def test_analyses_equal_run_on_the_same_workspace(seeded: Path) -> None:
    expected = expected_results(seeded)
    keys = make_keys(seeded)
    with app_client(seeded) as client:
        listing = client.get("/v1/analyses", headers=keys.header("read"))
        assert listing.status_code == 200
        kinds = {a["kind"]: a for a in listing.json()["analyses"]}
        assert {"phase_funnel", "funnel", "touchpoints", "paths", "satisfaction", "loyalty", "content",
                "personas", "journey_map"} <= set(kinds)  # fmt: skip
        assert "steps" in kinds["funnel"]["schema"]["properties"]
        for i, (kind, data) in enumerate(SPECS):
            answer = client.post(f"/v1/analyses/{kind}", json=data, headers=keys.header("read"))
            assert answer.status_code == 200, (kind, answer.text)
            body = answer.json()
            result = expected[i]
            assert body["kind"] == kind
            assert body["columns"] == result.table.column_names
            same_rows(body["rows"], result.table.to_pylist())
        # the extra tables and the figure travel too
        sat = client.post(
            "/v1/analyses/satisfaction", json={"by": "phase"}, headers=keys.header("read")
        ).json()
        same_rows(sat["extra"]["emotion_curve"], expected[4].emotion_curve.to_pylist())
        funnel = client.post("/v1/analyses/phase_funnel", json={}, headers=keys.header("read")).json()
        assert funnel["figure"] is not None and funnel["figure"]["data"]
        assert funnel["meta"]["model"] == expected[0].extra["model"]


def test_scopes(seeded: Path) -> None:
    keys = make_keys(seeded)
    with app_client(seeded) as client:
        calls = [
            ("GET", "/v1/analyses", None),
            ("POST", "/v1/analyses/phase_funnel", {}),
            ("POST", "/v1/attribution", {"models": ["linear"]}),
            ("GET", "/v1/persons/xss0/journeys", None),
            ("GET", "/v1/dimensions", None),
            ("GET", "/v1/report", None),
        ]
        for method, path, body in calls:
            assert client.request(method, path, json=body).status_code == 401, path
            bad = {"Authorization": "Bearer nope"}
            assert client.request(method, path, json=body, headers=bad).status_code == 401, path
            answer = client.request(method, path, json=body, headers=keys.header("ingest"))
            assert answer.status_code == 403, path
            assert answer.json()["code"] == "forbidden"
        assert client.post("/v1/analyses/loyalty", json={}, headers=keys.header("admin")).status_code == 200


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("phase_funnel", {"nonsense": 1}),
        ("paths", {"level": "planet"}),
        ("paths", {"dfg": True, "transitions": True}),
        ("loyalty", {"max_months": -1, "confidence": 2}),
        ("funnel", {}),
        ("touchpoints", {"filters": {"personas": []}}),
    ],
)
def test_invalid_specs_are_422_with_parse_specs_message(
    seeded: Path, kind: str, data: dict[str, Any]
) -> None:
    from journeylens.server.queries import analyses

    cls = analyses()[kind][0]
    with pytest.raises(SpecError) as raised:
        parse_spec(cls, data)
    keys = make_keys(seeded)
    with app_client(seeded) as client:
        answer = client.post(f"/v1/analyses/{kind}", json=data, headers=keys.header("read"))
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "invalid_spec"
    assert body["message"] == str(raised.value)
    assert body["errors"] and all(e["message"] for e in body["errors"])


def test_other_refusals(seeded: Path) -> None:
    keys = make_keys(seeded)
    read = keys.header("read")
    with app_client(seeded) as client:
        unknown = client.post("/v1/analyses/horoscope", json={}, headers=read)
        assert unknown.status_code == 404 and "phase_funnel" in unknown.json()["message"]
        not_json = client.post("/v1/analyses/loyalty", content=b"{nope", headers=read)
        assert not_json.status_code == 422 and not_json.json()["code"] == "invalid_spec"
        column = client.post(
            "/v1/analyses/loyalty", json={"filters": {"persons": {"shoe_size": "42"}}}, headers=read
        )
        assert column.status_code == 422
        assert "unknown persons column 'shoe_size'" in column.json()["message"]
        model = client.post("/v1/attribution", json={"models": ["astrology"]}, headers=read)
        assert model.status_code == 422 and "astrology" in model.json()["message"]
        field = client.post("/v1/attribution", json={"modles": ["linear"]}, headers=read)
        assert field.status_code == 422
        assert field.json()["message"].startswith("attribution: unknown field 'modles'")


def test_attribution_equals_attribute(seeded: Path) -> None:
    from journeylens.attribution import attribute, read_touches
    from journeylens.attribution import workspace as wa

    models = ["first_touch", "last_touch", "linear", "markov"]
    with Workspace(seeded) as ws:
        frame = attribute(read_touches(wa.touches(ws).to_pandas()), models=models)
        by_touchpoint = attribute(
            read_touches(wa.touches(ws, key="touchpoint").to_pandas()), models=["linear"]
        )
    keys = make_keys(seeded)
    with app_client(seeded) as client:
        answer = client.post("/v1/attribution", json={"models": models}, headers=keys.header("read"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["figure"] is not None
        same_rows(body["rows"], frame.to_dict("records"))
        tp = client.post(
            "/v1/attribution", json={"models": ["linear"], "key": "touchpoint"}, headers=keys.header("read")
        ).json()
        same_rows(tp["rows"], by_touchpoint.to_dict("records"))
        assert XSS in {r["channel"] for r in tp["rows"]}


def test_person_journeys_and_dimensions(seeded: Path) -> None:
    keys = make_keys(seeded)
    with app_client(seeded) as client:
        answer = client.get("/v1/persons/xss0/journeys", headers=keys.header("read"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["journeys_total"] == 1
        names = [t["touchpoint"] for t in body["journeys"][0]["touchpoints_list"]]
        assert names == ["site_visit", XSS, "purchase"]
        assert client.get("/v1/persons/nobody/journeys", headers=keys.header("read")).status_code == 404
        # the person endpoint itself still answers
        assert client.get("/v1/persons/xss0", headers=keys.header("read")).status_code == 200
        dims = client.get("/v1/dimensions", headers=keys.header("read")).json()
        assert "low_involvement" in dims["personas"] and "purchase" in dims["journey_types"]
        assert "five-phase" in dims["phase_models"] and "segment" in dims["persons_columns"]


def phase_funnel_reached(client, keys, **filters: Any) -> int:
    answer = client.post("/v1/analyses/phase_funnel", json={"filters": filters}, headers=keys.header("read"))
    assert answer.status_code == 200, answer.text
    rows = answer.json()["rows"]
    return int(rows[0]["reached"]) if rows else 0


def test_new_data_is_seen_after_ingest_and_gone_after_erase(seeded: Path) -> None:
    keys = make_keys(seeded)
    with app_client(seeded) as client:
        read = keys.header("read")
        before = client.post("/v1/analyses/phase_funnel", json={}, headers=read).json()["rows"][0]["reached"]
        # the same spec again comes from the cache and is equal
        again = client.post("/v1/analyses/phase_funnel", json={}, headers=read).json()["rows"][0]["reached"]
        assert again == before
        batch = [
            touch("n1", "newbie", "2024-02-10T10:00:00Z", touchpoint="ad_click", channel="display"),
            touch("n2", "newbie", "2024-02-10T10:05:00Z", touchpoint="site_visit"),
            touch("n3", "newbie", "2024-02-11T10:00:00Z", touchpoint="purchase", revenue=20.0),
        ]
        stored = client.post("/v1/touchpoints", json={"batch": batch}, headers=keys.header("ingest"))
        assert stored.json()["accepted"] == 3
        after = client.post("/v1/analyses/phase_funnel", json={}, headers=read).json()["rows"][0]["reached"]
        assert after == before + 1
        journeys = client.get("/v1/persons/newbie/journeys", headers=read).json()
        assert [t["event_id"] for t in journeys["journeys"][0]["touchpoints_list"]] == ["n1", "n2", "n3"]

        erased = client.delete("/v1/persons/newbie", headers=keys.header("admin"))
        assert erased.status_code == 200
        gone = client.post("/v1/analyses/phase_funnel", json={}, headers=read).json()["rows"][0]["reached"]
        assert gone == before
        assert client.get("/v1/persons/newbie/journeys", headers=read).status_code == 404


def test_report_download(seeded: Path, monkeypatch) -> None:
    keys = make_keys(seeded)
    with app_client(seeded) as client:
        answer = client.get("/v1/report", headers=keys.header("read"))
        assert answer.status_code == 200, answer.text[:500]
        assert answer.headers["content-type"].startswith("text/html")
        assert "attachment" in answer.headers["content-disposition"]
        assert "<html" in answer.text[:500].lower()
        assert XSS not in answer.text  # escaped where it appears

        import journeylens.report as report_pkg

        monkeypatch.delattr(report_pkg, "write_report")
        missing = client.get("/v1/report?model=three-phase", headers=keys.header("read"))
        assert missing.status_code == 501 and missing.json()["code"] == "not_implemented"


def test_journey_map_html(seeded: Path) -> None:
    keys = make_keys(seeded)
    with app_client(seeded) as client:
        answer = client.post("/v1/analyses/journey_map/html", json={"min_n": 5}, headers=keys.header("read"))
        assert answer.status_code == 200, answer.text[:300]
        assert answer.text.lower().startswith("<!doctype html>")
        bad = client.post("/v1/analyses/journey_map/html", json={"top": 0}, headers=keys.header("read"))
        assert bad.status_code == 422 and bad.json()["message"].startswith("journey_map: top:")
