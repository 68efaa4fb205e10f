"""The app as a whole: OpenAPI docs, error shapes, lazy imports, the `serve` command's wiring."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from journeylens.cli_server import register


def test_openapi_docs_describe_every_endpoint(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/touchpoints",
        "/v1/track",
        "/v1/identify",
        "/v1/page",
        "/v1/screen",
        "/v1/batch",
        "/v1/persons/{person_id}",
        "/v1/keys",
        "/v1/health",
    ):
        assert path in paths, path
    body = paths["/v1/touchpoints"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TouchpointBatch"}
    schemas = spec["components"]["schemas"]
    assert {
        "TouchpointBatch",
        "Touchpoint",
        "SegmentBatch",
        "SegmentMessage",
        "IngestOut",
        "PersonOut",
    } <= set(schemas)
    assert schemas["Touchpoint"]["additionalProperties"] is False
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])


def test_unknown_routes_and_methods_answer_in_the_error_shape(client, keys):
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json() == {
        "code": "not_found",
        "message": "Not Found",
        "errors": [],
    }
    wrong = client.put("/v1/touchpoints", headers=keys.header("ingest"))
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


def test_importing_the_cli_does_not_import_the_web_stack():
    code = (
        "import sys, journeylens, journeylens.cli, journeylens.cli_server, journeylens.server, journeylens.keys, journeylens.erase; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'uvicorn', 'starlette')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_register_adds_the_commands():
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert all(name in top.output for name in ("serve", "keys", "erase"))
    serve = runner.invoke(app, ["serve", "--help"], terminal_width=200)
    for option in (
        "--host",
        "--port",
        "--workspace",
        "--cors-origin",
        "--max-request-mb",
        "--max-events",
        "--queue-events",
    ):
        assert option in serve.output, option
    keys = runner.invoke(app, ["keys", "--help"])
    assert all(name in keys.output for name in ("create", "list", "revoke"))


def test_a_request_that_runs_out_of_memory_answers_503_in_the_error_shape(client):
    import duckdb

    def boom():
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block of size 256.0 KiB")

    client.app.add_api_route("/v1/_test_oom", boom)
    answer = client.get("/v1/_test_oom")
    assert answer.status_code == 503
    assert answer.json() == {
        "code": "out_of_resources",
        "message": "journeylens ran out of memory (Out of Memory Error: could not allocate block of size "
        "256.0 KiB); nothing was changed. Close other programs, or set a lower memory_limit in the "
        "workspace's workspace.yaml (e.g. `memory_limit: 4GB`): DuckDB then spills to disk instead",
        "errors": [],
    }


def test_a_query_that_runs_out_of_memory_on_the_writer_answers_the_same(client, keys, monkeypatch):
    # queries run on the writer's thread (`wait` translates their errors): the same 503 as any other request
    import duckdb

    def oom(*args, **kwargs):
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 64.0 MiB")

    monkeypatch.setattr(client.app.state.service, "profile", oom)
    answer = client.get("/v1/persons/p1/journeys", headers=keys.header("read"))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["code"] == "out_of_resources"
    assert answer.json()["message"].startswith(
        "journeylens ran out of memory (Out of Memory Error: failed to allocate data of size 64.0 MiB); "
        "nothing was changed."
    )
