"""Query endpoints: the analyses, attribution, a person's journeys and the HTML report, over HTTP (read scope).

=======================================  ==========================================================
endpoint                                 does
=======================================  ==========================================================
``GET /v1/analyses``                     the analysis kinds and the JSON schema of each spec
``POST /v1/analyses/{kind}``             run one analysis; the body is its spec (``{}``: defaults)
``POST /v1/analyses/journey_map/html``   the journey map as a self-contained HTML page
``POST /v1/attribution``                 ``{"models", "key", "journey_types", "options", "filters"}``
``GET /v1/dimensions``                   personas, journey types, phase models, persons columns, period
``GET /v1/persons/{id}/journeys``        every journey of the person with all its touchpoints
``GET /v1/report``                       the HTML report (a download)
=======================================  ==========================================================

An analysis answers ``{"kind", "spec", "columns", "rows", "extra", "meta", "figure"}``: ``rows`` is the
result's table (JSON: date-times in ISO 8601, NaN as null), ``extra`` its other tables by name, ``meta`` its
scalar facts, ``figure`` the Plotly figure of :mod:`journeylens.report.figures` (``null`` when it has none).
A spec that does not validate is a 422 ``{"code": "invalid_spec", "message", "errors"}`` whose message is
the one :func:`journeylens.analyses.base.parse_spec` raises in Python.

Every query runs on the writer's thread after the lazy incremental build (:meth:`Service.ensure_built`),
so new data is seen without a restart and an erasure is seen at once. Answers are cached by
(kind, spec, the newest import id, the number of erasures): an import or an erasure changes the key.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import math
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field, ValidationError

from journeylens.analyses.base import Filters, Spec, spec_error_message
from journeylens.errors import SpecError

if TYPE_CHECKING:
    from journeylens.server.service import Service
    from journeylens.store import Workspace

_log = logging.getLogger("journeylens.server")

#: most answers kept in the cache
CACHE_SIZE = 128


def analyses() -> dict[str, tuple[type[Spec], Callable[[Any, Any], Any]]]:
    """kind -> (spec class, run function)."""
    from journeylens.analyses import (
        content,
        funnel,
        journeymap,
        loyalty,
        paths,
        personas,
        satisfaction,
        touchpoints,
    )

    out: dict[str, tuple[type[Spec], Callable[[Any, Any], Any]]] = {}
    for cls, run in (
        (funnel.PhaseFunnelSpec, funnel.run),
        (funnel.FunnelSpec, funnel.run),
        (touchpoints.TouchpointsSpec, touchpoints.run),
        (paths.PathsSpec, paths.run),
        (satisfaction.SatisfactionSpec, satisfaction.run),
        (loyalty.LoyaltySpec, loyalty.run),
        (content.ContentSpec, content.run),
        (personas.PersonasSpec, personas.run),
        (journeymap.JourneyMapSpec, journeymap.run),
    ):
        out[cls.kind] = (cls, run)
    return out


class AttributionSpec(Spec):
    """``POST /v1/attribution``: which models, what gets the credit, which journeys."""

    kind: ClassVar[str] = "attribution"

    models: list[str] | None = Field(
        default=None, description="model names (None: every model the data allows)"
    )
    key: str = Field(default="channel", description="channel, touchpoint, content_type or phase")
    journey_types: list[str] = Field(default=["purchase"], min_length=1)
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="model parameters (e.g. order, half_life_days); bootstrap as {'n': 200, 'seed': 0}",
    )
    layout: str = "long"
    filters: Filters = Filters()


# -- JSON ------------------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A value as JSON has it: date-times in ISO 8601, NaN as null, numpy scalars as Python ones."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return plain(float(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / pandas scalars
        try:
            return plain(value.item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):
        return plain(value.tolist())
    if isinstance(value, pa.Table):
        return table_rows(value)
    return str(value)


def as_arrow(table: Any) -> pa.Table | None:
    """An Arrow table from an Arrow or pandas table; None for anything else."""
    if isinstance(table, pa.Table):
        return table
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with the analyses
        return None
    if isinstance(table, pd.DataFrame):
        frame = table.reset_index(
            drop=not isinstance(table.index, pd.MultiIndex) and table.index.name is None
        )
        return pa.Table.from_pandas(frame, preserve_index=False)
    return None


def table_rows(table: Any) -> list[dict[str, Any]]:
    arrow = as_arrow(table)
    if arrow is None:
        return []
    return [{k: plain(v) for k, v in row.items()} for row in arrow.to_pylist()]


def result_payload(kind: str, spec: Spec, result: Any, figure: Any) -> dict[str, Any]:
    """The JSON answer of an analysis (see the module's docstring)."""
    extra: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for name, value in (getattr(result, "extra", None) or {}).items():
        if as_arrow(value) is not None:
            extra[name] = table_rows(value)
        else:
            meta[name] = plain(value)
    for name in dir(type(result)):
        if name.startswith("_") or name in extra or name in ("table", "spec", "sql", "extra"):
            continue
        if not isinstance(getattr(type(result), name, None), property):
            continue
        try:
            value = getattr(result, name)
        except Exception:  # noqa: BLE001 - a property that cannot be computed is left out
            continue
        if as_arrow(value) is not None:
            extra[name] = table_rows(value)
    for name, value in vars(result).items():
        if name.startswith("_") or name in extra or name in ("table", "spec", "sql", "extra"):
            continue
        if as_arrow(value) is not None:
            extra[name] = table_rows(value)
    table = as_arrow(result.table) if hasattr(result, "table") else None
    return {
        "kind": kind,
        "spec": json.loads(spec.model_dump_json()),
        "columns": list(table.column_names) if table is not None else [],
        "rows": table_rows(table) if table is not None else [],
        "extra": extra,
        "meta": meta,
        "figure": figure,
    }


def figure_json(make: Callable[[], Any]) -> dict[str, Any] | None:
    """The Plotly JSON of ``make()``, or None when the report module has no figure for it or it fails."""
    try:
        fig = make()
    except Exception as exc:  # noqa: BLE001 - a figure is an extra; the numbers still answer
        _log.info("no figure: %s", exc)
        return None
    if fig is None:
        return None
    return json.loads(fig.to_json())


def _figure_for(kind: str, result: Any) -> Callable[[], Any] | None:
    try:
        from journeylens.report import figures as f
    except ImportError:  # pragma: no cover - plotly is a dependency
        return None
    makers: dict[str, Callable[[], Any]] = {
        "phase_funnel": lambda: f.phase_funnel(result),
        "touchpoints": lambda: f.touchpoints_to_purchase(result),
        "satisfaction": lambda: f.emotion_curve(result),
        "loyalty": lambda: f.cohort_retention(result),
        "content": lambda: f.content_heatmap(result),
        "personas": lambda: f.persona_clusters(result),
        "journey_map": lambda: f.journey_map_emotion(result),
    }
    if kind == "paths":
        view = getattr(result.spec, "view", "")
        if view == "dfg":
            return lambda: f.process_map(result)
        if view == "sankey":
            return lambda: f.paths_sankey(result)
        return None
    if kind == "satisfaction" and getattr(result.spec, "by", None) != "phase":
        return None
    return makers.get(kind)


# -- the cache -------------------------------------------------------------------------------------------


def data_version(ws: Workspace) -> tuple[int, int]:
    """(newest import id, erasures so far): changes with every import and every erasure."""
    con = ws.con.con
    newest = con.execute("SELECT max(import_id) FROM imports").fetchone() if ws.has_table("imports") else None
    erased = con.execute("SELECT count(*) FROM erasures").fetchone() if ws.has_table("erasures") else None
    return (int(newest[0]) if newest and newest[0] is not None else -1, int(erased[0]) if erased else 0)


class Cache:
    """A small LRU of answers; used on the writer's thread only (a lock anyway, for safety)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


# -- validation -------------------------------------------------------------------------------------------


class Invalid(Exception):
    """A spec that does not validate: 422 invalid_spec."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


def validate(cls: type[Spec], data: Any) -> Spec:
    """``parse_spec(cls, data)`` with the errors kept apart (same message text)."""
    if not isinstance(data, dict):
        raise Invalid(f"{cls.kind}: expected a JSON object as the spec; got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errors = [
            {
                "index": None,
                "field": ".".join(str(p) for p in e["loc"]) or None,
                "reason": str(e["type"]),
                "message": str(e["msg"]),
            }
            for e in exc.errors()
        ]
        raise Invalid(spec_error_message(cls, exc), errors) from None


def _invalid_response(exc: Invalid) -> Response:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        {"code": "invalid_spec", "message": exc.message, "errors": exc.errors}, status_code=422
    )


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("the body is not JSON; expected the spec as a JSON object") from None


# -- the router --------------------------------------------------------------------------------------------


def router(
    service: Service,
    require: Callable[[str], Callable[..., Any]],
    wait: Callable[[Future[Any]], Any],
    queue: Callable[[Callable[[Any], Any]], Future[Any]],
) -> APIRouter:
    """The query endpoints, with the app's own ``require`` (auth), ``wait`` and ``queue`` (writer thread)."""
    from journeylens.server.app import ApiError

    kinds = analyses()
    cache = Cache()
    r = APIRouter(dependencies=[Depends(require("read"))], tags=["queries"])

    async def on_writer(call: Callable[[Any], Any]) -> Any:
        """``call(ws)`` on the writer's thread after the lazy build; a SpecError it raises is a 422."""

        def job(ws: Any) -> Any:
            service.ensure_built(ws)
            try:
                return call(ws)
            except SpecError as exc:
                return Invalid(exc.message if hasattr(exc, "message") else str(exc))

        out = await wait(queue(job))
        if isinstance(out, Invalid):
            raise out
        return out

    def cached(key: Any, ws: Any, compute: Callable[[], Any]) -> Any:
        full = (*key, data_version(ws))
        hit = cache.get(full)
        if hit is not None:
            return hit
        value = compute()
        cache.put(full, value)
        return value

    @r.get("/v1/analyses")
    async def list_analyses() -> Any:
        """The analysis kinds, each with its spec's JSON schema (plus attribution's)."""
        out = [
            {"kind": kind, "description": (cls.__doc__ or "").strip(), "schema": cls.model_json_schema()}
            for kind, (cls, _) in kinds.items()
        ]
        return {"analyses": out, "attribution": AttributionSpec.model_json_schema()}

    @r.get("/v1/dimensions")
    async def dimensions() -> Any:
        """What the filters can choose from."""

        def read(ws: Workspace) -> dict[str, Any]:
            from journeylens.journeys.models.phase_model import builtin_phase_model_names

            out: dict[str, Any] = {
                "personas": [],
                "journey_types": [],
                "phase_models": sorted(builtin_phase_model_names()),
                "phase_model": getattr(service.phase_model, "name", None),
                "persons_columns": [c for c in ws.persons.columns if c != "person_id"],
                "start": None,
                "end": None,
            }
            if ws.has_table("journeys"):
                j = ws.journeys
                out["personas"] = sorted(
                    p
                    for p in j.select("persona").distinct().persona.to_pyarrow().to_pylist()
                    if p is not None
                )
                out["journey_types"] = sorted(
                    t
                    for t in j.select("journey_type").distinct().journey_type.to_pyarrow().to_pylist()
                    if t is not None
                )
                span = j.aggregate(start=j.start.min(), end=j.end.max()).to_pyarrow().to_pylist()
                if span:
                    out["start"], out["end"] = plain(span[0]["start"]), plain(span[0]["end"])
            return out

        return await on_writer(lambda ws: cached(("dimensions",), ws, lambda: read(ws)))

    def run_analysis(kind: str, spec: Spec, ws: Workspace) -> dict[str, Any]:
        _, run = kinds[kind]
        result = run(ws, spec)
        maker = _figure_for(kind, result)
        return result_payload(kind, spec, result, figure_json(maker) if maker else None)

    def spec_of(kind: str, data: Any) -> Spec:
        if kind not in kinds:
            raise ApiError(
                404, "unknown_analysis", f"no analysis '{kind}'; expected one of {', '.join(kinds)}"
            )
        return validate(kinds[kind][0], data)

    @r.post("/v1/analyses/journey_map/html", response_class=HTMLResponse)
    async def journey_map_html(request: Request) -> Response:
        """The journey map (same spec as ``journey_map``) as a self-contained HTML page (no scripts)."""
        try:
            spec = spec_of("journey_map", await _body(request))

            def make(ws: Workspace) -> str:
                from journeylens.analyses.journeymap import run
                from journeylens.report.journeymap import page, render

                result = run(ws, spec)
                return page(render(result), "Journey map")

            html = await on_writer(
                lambda ws: cached(("journey_map.html", spec.model_dump_json()), ws, lambda: make(ws))
            )
        except Invalid as exc:
            return _invalid_response(exc)
        return HTMLResponse(html)

    @r.post("/v1/analyses/{kind}")
    async def post_analysis(kind: str, request: Request) -> Any:
        """Run the analysis ``kind`` with the body as its spec."""
        try:
            data = await _body(request)
            spec = spec_of(kind, data)
            return await on_writer(
                lambda ws: cached((kind, spec.model_dump_json()), ws, lambda: run_analysis(kind, spec, ws))
            )
        except Invalid as exc:
            return _invalid_response(exc)

    @r.post("/v1/attribution")
    async def post_attribution(request: Request) -> Any:
        """Attribution across models for the touches of the chosen journeys (see attribution.workspace)."""
        try:
            spec = validate(AttributionSpec, await _body(request))
            assert isinstance(spec, AttributionSpec)
            return await on_writer(
                lambda ws: cached(("attribution", spec.model_dump_json()), ws, lambda: attribution(ws, spec))
            )
        except Invalid as exc:
            return _invalid_response(exc)

    @r.get("/v1/persons/{person_id:path}/journeys")
    async def person_journeys(person_id: str) -> Any:
        """Every journey of the person (newest first) with all its touchpoints, oldest first."""

        profile = await on_writer(lambda ws: service.profile(ws, person_id, all_journeys=True, last=1_000_000))
        if profile is None:
            raise ApiError(
                404,
                "unknown_person",
                f"no person {person_id!r} in this workspace (an unidentified visitor is anon:ANONYMOUS_ID)",
            )
        journeys = []
        for j in profile["journeys"]:
            item = dict(j)
            item["touchpoints_list"] = list(reversed(item.pop("last_touchpoints")))
            journeys.append(item)
        return {"person_id": person_id, "journeys_total": profile["journeys_total"], "journeys": journeys}

    @r.get("/v1/report")
    async def get_report(model: str | None = None) -> Response:
        """The HTML report of the workspace (all analyses and journey maps), as a download."""
        try:
            from journeylens import report as report_pkg

            write = report_pkg.write_report
        except (ImportError, AttributeError):
            raise ApiError(
                501, "not_implemented", "the HTML report is not available in this installation"
            ) from None

        def make(ws: Workspace) -> str:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(write(ws, Path(tmp) / "report.html", model=model))
                return path.read_text(encoding="utf-8")

        try:
            html = await on_writer(lambda ws: cached(("report", model), ws, lambda: make(ws)))
        except Invalid as exc:
            return _invalid_response(exc)
        return HTMLResponse(
            html, headers={"Content-Disposition": 'attachment; filename="journeylens-report.html"'}
        )

    return r


def attribution(ws: Workspace, spec: AttributionSpec) -> dict[str, Any]:
    """Fit the models on the workspace's touches; rows in the layout asked for, and the figure."""
    from journeylens.attribution import Bootstrap, attribute, read_touches
    from journeylens.attribution import workspace as wa

    touches = wa.touches(ws, key=spec.key, journey_types=list(spec.journey_types), filters=spec.filters)
    payload: dict[str, Any] = {
        "kind": "attribution",
        "spec": json.loads(spec.model_dump_json()),
        "columns": [],
        "rows": [],
        "extra": {},
        "meta": {"journeys": 0},
        "figure": None,
    }
    if touches.num_rows == 0:
        return payload
    options = dict(spec.options)
    if isinstance(options.get("bootstrap"), dict):
        try:
            options["bootstrap"] = Bootstrap(**options["bootstrap"])
        except (TypeError, ValueError) as exc:
            raise SpecError(f"attribution: options.bootstrap: {exc}") from None
    try:
        frame = attribute(
            read_touches(touches.to_pandas()), models=spec.models, layout=spec.layout, **options
        )
    except TypeError as exc:
        raise SpecError(f"attribution: {exc}") from None
    arrow = as_arrow(frame)
    payload["columns"] = list(arrow.column_names) if arrow is not None else []
    payload["rows"] = table_rows(frame)
    payload["meta"] = {"journeys": len(set(touches.column("journey_id").to_pylist()))}
    if spec.layout == "long":
        from journeylens.report import figures as f

        payload["figure"] = figure_json(lambda: f.attribution(frame))
    return payload


__all__ = ["AttributionSpec", "analyses", "attribution", "router"]
