"""The HTTP API (FastAPI): ingest (contract and Segment-compatible), persons, erasure, keys, health.

=======================================  =======  ==========================================================
endpoint                                 scope    does
=======================================  =======  ==========================================================
``GET /v1/health``                       (none)   liveness and queue depth
``POST /v1/touchpoints``                 ingest   ``{"batch": [Touchpoint, ...]}`` in the contract
``POST /v1/track|identify|page|screen``  ingest   one Segment call
``POST /v1/batch``                       ingest   Segment batch ``{"batch": [...], "context": {...}}``
``GET /v1/persons/{id}``                 read     attributes, open journeys with phase, last touchpoints
``DELETE /v1/persons/{id}``              admin    GDPR erasure (:func:`journeylens.erase.erase_person`)
``GET|POST /v1/keys``, ``DELETE ..``     admin    list, create, revoke API keys
=======================================  =======  ==========================================================

Keys go in ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (or, as Segment's libraries send the write
key, ``Authorization: Basic base64(KEY:)``). No key or a wrong one: 401; a key without the scope: 403.

Ingest answers 200 with counts and a list of per-event errors (index, field, reason, message) while the
valid events are stored; 422 (same body) when every event was refused; 400 when the body is not a JSON
object with a list of events; 413 above ``max_request_bytes`` or ``max_events``; 429 with ``Retry-After``
when the writer's queue is full. A 2xx means committed. Events are idempotent by ``event_id``
(Segment's ``messageId``): a retried request stores nothing twice.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from fastapi import Depends, FastAPI, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from journeylens import __version__
from journeylens.errors import UnusableInputError, out_of_memory_error
from journeylens.keys import ApiKey, UnknownKeyError, create_key, list_keys, revoke_key
from journeylens.server import segment
from journeylens.server.events import (
    MAX_ERRORS,
    BodyError,
    EventError,
    Prepared,
    batch_of,
    decode_body,
    parse_json,
    prepare_segment,
    prepare_touchpoints_body,
)
from journeylens.server.models import (
    ErasureOut,
    ErrorOut,
    HealthOut,
    IngestOut,
    KeyIn,
    KeyOut,
    NewKeyOut,
    PersonOut,
    SegmentBatch,
    SegmentMessage,
    TouchpointBatch,
)
from journeylens.server.service import ServerConfig, Service
from journeylens.server.writer import QueueFull, WriterClosed

_log = logging.getLogger("journeylens.server")
#: bodies larger than this are parsed and validated off the event loop
_THREAD_BYTES = 256 * 1024
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


class ApiError(Exception):
    """An error answered as ``{"code", "message", "errors"}`` with its status."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _out_of_memory_api_error(exc: BaseException) -> ApiError:
    """Running out of memory, as every request answers it: 503 ``out_of_resources`` with what to do (the
    CLI's message), and a retry hint: nothing was changed."""
    oom = out_of_memory_error(exc)
    message = oom.message if oom is not None else "journeylens ran out of memory; nothing was changed"
    return ApiError(503, "out_of_resources", message, headers={"Retry-After": "5"})


def _error_body(code: str, message: str, errors: Sequence[EventError] = ()) -> dict[str, Any]:
    return {"code": code, "message": message, "errors": [e.__dict__ for e in errors]}


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() or None
        if scheme.lower() == "basic":
            try:
                user, _, password = (
                    base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, ValueError):
                return None
            return user or password or None
        return None
    return request.headers.get("x-api-key") or None


_BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")


def _ref(name: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }


_INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not a JSON object with a list of events"},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    413: {"model": ErrorOut, "description": "the body or the number of events is over the limit"},
    422: {"model": IngestOut, "description": "every event was refused"},
    429: {"model": ErrorOut, "description": "the writer is behind: retry after Retry-After seconds"},
}


def create_app(
    workspace_path: str | Path,
    *,
    cors_origins: Sequence[str] = (),
    config: ServerConfig | None = None,
) -> FastAPI:
    """The API on the workspace at ``workspace_path``, which it opens and owns (its only writer).

    Raises :class:`~journeylens.errors.WorkspaceLockedError` when another process holds the workspace.
    """
    service = Service(workspace_path, config)
    try:
        return _build_app(service, cors_origins)
    except BaseException:
        service.close()
        raise


def _build_app(service: Service, cors_origins: Sequence[str]) -> FastAPI:
    cfg = service.config

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="journeylens",
        version=__version__,
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = service
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Content-Encoding"],
            expose_headers=["Retry-After"],
        )

    # -- errors ----------------------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(
            _error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _out_of_memory(request: Request, exc: Exception) -> JSONResponse:
        # out of memory outside the writer's queue (which `wait` translates the same way)
        error = _out_of_memory_api_error(exc)
        return JSONResponse(
            _error_body(error.code, error.message), status_code=error.status, headers=error.headers
        )

    app.add_exception_handler(MemoryError, _out_of_memory)
    app.add_exception_handler(duckdb.OutOfMemoryException, _out_of_memory)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "header")]
            errors.append(
                EventError(None, ".".join(loc) or None, str(e.get("type", "invalid")), str(e.get("msg", "")))
            )
        return JSONResponse(
            _error_body("invalid_request", "the request does not match the API", errors), status_code=422
        )

    # -- access ----------------------------------------------------------------------------------------

    def require(scope: str) -> Callable[..., Any]:
        async def check(
            request: Request, _bearer: Any = Security(_BEARER), _key: Any = Security(_KEY_HEADER)
        ) -> ApiKey:
            presented = _presented_key(request)
            if presented is None:
                raise ApiError(
                    401,
                    "unauthorized",
                    "no API key; send Authorization: Bearer KEY or X-API-Key: KEY",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            key = service.keys.authenticate(presented)
            if key is None:
                raise ApiError(
                    401,
                    "unauthorized",
                    "the API key is not valid or has been revoked",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not key.allows(scope):
                raise ApiError(
                    403,
                    "forbidden",
                    f"the key {key.prefix} has scope '{key.scope}'; this needs '{scope}' (or 'admin')",
                )
            return key

        return check

    async def wait(future: Future[Any]) -> Any:
        """The job's result; the client's mistakes are 400, a database that cannot do it now is 503, and
        anything else is a bug: a 500, logged."""
        try:
            return await asyncio.wrap_future(future)
        except UnusableInputError as exc:
            raise ApiError(400, exc.code, exc.message) from None
        except (MemoryError, duckdb.OutOfMemoryException) as exc:
            _log.error("the workspace ran out of memory: %s", exc)
            raise _out_of_memory_api_error(exc) from None
        except (duckdb.IOException, duckdb.TransactionException) as exc:
            # the database could not do it now (disk full, a conflict): nothing was changed; try again
            _log.error("the workspace failed: %s", exc)
            raise ApiError(
                503,
                "workspace_unavailable",
                "the workspace could not do it now and nothing was changed; retry later",
                headers={"Retry-After": "5"},
            ) from None

    def queue(call: Callable[[Any], Any]) -> Future[Any]:
        try:
            return service.writer.submit(call)
        except QueueFull as exc:
            raise ApiError(
                429, "queue_full", str(exc), headers={"Retry-After": str(exc.retry_after)}
            ) from None
        except WriterClosed as exc:
            raise ApiError(503, "shutting_down", str(exc), headers={"Retry-After": "5"}) from None

    # -- queries and the dashboard (before /v1/persons/{id:path}, which would take .../journeys) --------
    from journeylens.server import dashboard, queries

    app.include_router(queries.router(service, require, wait, queue))
    app.include_router(dashboard.router())

    # -- ingest ----------------------------------------------------------------------------------------

    async def read_body(request: Request) -> bytes:
        limit = cfg.max_request_bytes
        if service.writer.queued_events >= cfg.max_queue_events:
            retry = service.writer.retry_after()
            raise ApiError(
                429,
                "queue_full",
                f"the write queue is full; retry after {retry} s",
                headers={"Retry-After": str(retry)},
            )
        length = request.headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            raise ApiError(
                413, "payload_too_large", f"the body has {int(length):,} bytes; expected at most {limit:,}"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    413,
                    "payload_too_large",
                    f"the body has more than {limit:,} bytes; expected at most {limit:,}",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def ingest(
        request: Request,
        parse: Callable[[bytes, datetime], Prepared],
        rename: Callable[[str | None], str | None],
    ) -> JSONResponse:
        writer = service.writer
        writer.incoming(+1)
        try:
            raw = await read_body(request)
            received_at = datetime.now(UTC)
            encoding = request.headers.get("content-encoding")

            def work() -> Prepared:
                return parse(decode_body(raw, encoding, limit=cfg.max_request_bytes), received_at)

            try:
                prepared = await run_in_threadpool(work) if len(raw) > _THREAD_BYTES else work()
            except BodyError as exc:
                raise ApiError(exc.status, exc.code, exc.message) from None
            future = None
            if prepared.table.num_rows:
                try:
                    future = writer.submit_rows(prepared.table)
                except QueueFull as exc:
                    raise ApiError(
                        429, "queue_full", str(exc), headers={"Retry-After": str(exc.retry_after)}
                    ) from None
                except WriterClosed as exc:
                    raise ApiError(503, "shutting_down", str(exc), headers={"Retry-After": "5"}) from None
        finally:
            writer.incoming(-1)
        errors = list(prepared.errors)
        accepted = duplicates = 0
        import_id = None
        if future is not None:
            outcome = await wait(future)
            accepted, duplicates, import_id = outcome.accepted, outcome.duplicates, outcome.import_id
            for c in outcome.conflicts:
                errors.append(EventError(prepared.indexes[c.row], rename(c.field), c.reason, c.message))
            errors.sort(key=lambda e: -1 if e.index is None else e.index)
        rejected = len({e.index for e in errors if e.index is not None})
        body = {
            "received": prepared.received,
            "accepted": accepted,
            "duplicates": duplicates,
            "rejected": rejected,
            "import_id": import_id,
            "errors": [e.__dict__ for e in errors[:MAX_ERRORS]],
            "errors_truncated": len(errors) > MAX_ERRORS,
        }
        status = 422 if prepared.received and rejected == prepared.received else 200
        return JSONResponse(body, status_code=status)

    ingest_key = [Depends(require("ingest"))]

    @app.post(
        "/v1/touchpoints",
        response_model=IngestOut,
        responses=_INGEST_RESPONSES,
        dependencies=ingest_key,
        openapi_extra=_ref("TouchpointBatch"),
        tags=["ingest"],
    )
    async def post_touchpoints(request: Request) -> JSONResponse:
        """Store touchpoints in the contract; each event is checked on its own."""

        def parse(body: bytes, received_at: datetime) -> Prepared:
            return prepare_touchpoints_body(body, max_events=cfg.max_events)

        return await ingest(request, parse, lambda f: f)

    def segment_route(path: str, kind: str | None) -> None:
        async def post_segment(request: Request) -> JSONResponse:
            def parse(body: bytes, received_at: datetime) -> Prepared:
                payload = parse_json(body)
                if kind is None:
                    items = batch_of(payload, max_events=cfg.max_events)
                    context = payload.get("context") if isinstance(payload.get("context"), dict) else None
                    sent_at = payload.get("sentAt")
                else:
                    if not isinstance(payload, dict):
                        raise BodyError(
                            "bad_body", f"the body is not a JSON object; expected one Segment {kind} call"
                        )
                    items, context, sent_at = [payload], None, None
                return prepare_segment(
                    items, kind, batch_context=context, sent_at=sent_at, received_at=received_at, body=body
                )

            return await ingest(request, parse, lambda f: segment.segment_field(f, kind or "track"))

        post_segment.__doc__ = (
            f"Segment-compatible `{kind or 'batch'}`; see journeylens.server.segment for the mapping."
        )
        app.post(
            path,
            response_model=IngestOut,
            responses=_INGEST_RESPONSES,
            dependencies=ingest_key,
            openapi_extra=_ref("SegmentBatch" if kind is None else "SegmentMessage"),
            tags=["segment"],
            name=f"segment_{kind or 'batch'}",
        )(post_segment)

    for kind in ("track", "identify", "page", "screen"):
        segment_route(f"/v1/{kind}", kind)
    segment_route("/v1/batch", None)

    # -- persons ---------------------------------------------------------------------------------------

    @app.get(
        "/v1/persons/{person_id:path}",
        response_model=PersonOut,
        responses={404: {"model": ErrorOut}},
        dependencies=[Depends(require("read"))],
        tags=["persons"],
    )
    async def get_person(person_id: str, all: bool = False) -> Any:
        """The person's attributes and current journeys (with their phase and last touchpoints).

        Runs the incremental build first when touchpoints arrived since the last one."""
        profile = await wait(queue(lambda ws: service.profile(ws, person_id, all_journeys=all)))
        if profile is None:
            raise ApiError(
                404,
                "unknown_person",
                f"no person {person_id!r} in this workspace (an unidentified visitor is anon:ANONYMOUS_ID)",
            )
        return profile

    @app.delete(
        "/v1/persons/{person_id:path}",
        response_model=ErasureOut,
        dependencies=[Depends(require("admin"))],
        tags=["persons"],
    )
    async def delete_person(person_id: str) -> Any:
        """Erase every trace of the person (GDPR), in one transaction, and log it without the id."""
        report = await wait(queue(lambda ws: service.erase(ws, person_id)))
        return {
            "erasure_id": report.erasure_id,
            "erased_at": report.erased_at,
            "rows": report.rows,
            "tables": report.tables,
            "anonymous_ids": report.anonymous_ids,
        }

    # -- keys ------------------------------------------------------------------------------------------

    admin = [Depends(require("admin"))]

    @app.get("/v1/keys", response_model=list[KeyOut], dependencies=admin, tags=["keys"])
    async def get_keys() -> Any:
        return [k.__dict__ for k in await wait(queue(list_keys))]

    @app.post("/v1/keys", response_model=NewKeyOut, status_code=201, dependencies=admin, tags=["keys"])
    async def post_key(spec: KeyIn) -> Any:
        """Create a key; the answer holds it this once."""

        def make(ws: Any) -> Any:
            new = create_key(ws, spec.scope, spec.name)
            service.reload_keys(ws)
            return new

        new = await wait(queue(make))
        return {**new.info.__dict__, "key": new.key}

    @app.delete(
        "/v1/keys/{prefix}",
        response_model=KeyOut,
        responses={404: {"model": ErrorOut}},
        dependencies=admin,
        tags=["keys"],
    )
    async def delete_key(prefix: str) -> Any:
        """Revoke a key: it is refused from now on."""

        def revoke(ws: Any) -> Any:
            try:
                return revoke_key(ws, prefix)
            finally:
                service.reload_keys(ws)

        try:
            return (await asyncio.wrap_future(queue(revoke))).__dict__
        except UnknownKeyError as exc:
            raise ApiError(404, exc.code, exc.message) from None

    # -- health ----------------------------------------------------------------------------------------

    @app.get("/v1/health", response_model=HealthOut, tags=["health"])
    async def health() -> Any:
        return {
            "status": "ok",
            "version": __version__,
            "queued_events": service.writer.queued_events,
            "queued_requests": service.writer.queued_jobs,
        }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _, defs = models_json_schema(
                [
                    (TouchpointBatch, "validation"),
                    (SegmentBatch, "validation"),
                    (SegmentMessage, "validation"),
                ],
                ref_template="#/components/schemas/{model}",
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
