"""Shared fixtures: a fresh DuckDB workspace per test, a file writer, and the engines.

- ``backend``: a clean Ibis connection per test, parametrized over ``duckdb`` (in memory) and ``spark`` (a
  fresh database in a session of its own on the shared local SparkContext; marked ``spark``);
- ``module_backend``: the same, shared by the tests of one module (for a workspace built once and read by
  many tests);
- ``make_workspace(backend, people)``: a workspace whose ``touchpoints`` and ``persons`` tables hold the
  declarative fixture ``people``;
- ``touchpoint_table(people)``: the Arrow table of such a fixture (``TOUCHPOINTS_SCHEMA``), e.g. to append.

A fixture describes persons and their touchpoints as literal data::

    {"anna": [("ad_view", "2024-01-01T10:00", {"channel": "display"}),
              ("purchase", "2024-01-05T12:00", {"revenue": 50.0})]}

Each touchpoint is ``(touchpoint, timestamp, {column: value})``; the timestamp is an ISO date-time in UTC.
Unless given, ``event_id`` is ``f"{person}-{i:03d}"`` (i counts the person's touchpoints from 0),
``person_id`` is the key, ``channel`` is ``website`` and every other column is NULL. Pass
``{"person_id": None, "anonymous_id": "dev-1"}`` for an anonymous touchpoint, ``{"anonymous_id": ...}``
alone for a login that links a device to the person.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest

from journeylens.schema import PERSONS_BASE_SCHEMA, TOUCHPOINTS_SCHEMA
from journeylens.store import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture
def write(tmp_path: Path):
    """write("name.csv", text_or_bytes) -> path of a file in the test's temp dir."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return _write


# -- engines and declarative journey fixtures (one test body, DuckDB and local Spark) --------------------


People = Mapping[str, Sequence[tuple[Any, ...]]]

ENGINES = [pytest.param("duckdb", id="duckdb"), pytest.param("spark", id="spark", marks=pytest.mark.spark)]

_DATABASES = itertools.count()


def parse_ts(text: str) -> datetime:
    """An ISO date-time (no zone: UTC) as an aware datetime."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def touchpoint_rows(people: People, *, import_id: int = 1) -> list[dict[str, Any]]:
    """The fixture as rows of ``TOUCHPOINTS_SCHEMA`` columns (row_hash and import_id filled)."""
    columns = TOUCHPOINTS_SCHEMA.names
    rows = []
    for person, touches in people.items():
        for i, (touchpoint, timestamp, *rest) in enumerate(touches):
            extra = dict(rest[0]) if rest else {}
            unknown = set(extra) - set(columns)
            if unknown:
                raise ValueError(
                    f"{person}[{i}]: unknown columns {sorted(unknown)}; expected some of {columns}"
                )
            row: dict[str, Any] = dict.fromkeys(columns)
            row.update(
                event_id=f"{person}-{i:03d}",
                person_id=person,
                timestamp=parse_ts(timestamp),
                channel="website",
                touchpoint=touchpoint,
            )
            row.update(extra)
            content = {k: row[k] for k in columns if k not in ("row_hash", "import_id")}
            row["row_hash"] = hashlib.sha256(
                json.dumps(content, default=str, sort_keys=True).encode()
            ).hexdigest()[:16]
            row["import_id"] = import_id
            rows.append(row)
    return rows


def touchpoint_table(people: People, *, import_id: int = 1) -> pa.Table:
    return pa.Table.from_pylist(touchpoint_rows(people, import_id=import_id), schema=TOUCHPOINTS_SCHEMA)


def make_workspace(
    backend: ibis.BaseBackend, people: People, *, personas: Mapping[str, str] | None = None
) -> Workspace:
    """A workspace on ``backend`` holding ``people`` (touchpoints) and every person id in it (persons)."""
    table = touchpoint_table(people)
    person_ids = sorted({p for p in table.column("person_id").to_pylist() if p is not None})
    persons = pa.Table.from_pylist(
        [{"person_id": p, "persona": (personas or {}).get(p)} for p in person_ids], schema=PERSONS_BASE_SCHEMA
    )
    backend.create_table("touchpoints", table, overwrite=True)
    backend.create_table("persons", persons, overwrite=True)
    return Workspace.from_backend(backend)


@pytest.fixture(scope="session", name="make_workspace")
def make_workspace_fixture() -> Callable[..., Workspace]:
    return make_workspace


@pytest.fixture(scope="session", name="touchpoint_table")
def touchpoint_table_fixture() -> Callable[..., pa.Table]:
    return touchpoint_table


# -- engines ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One local SparkSession (and its JVM) for the whole run; every connection takes a session of its own."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("journeylens-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.memory", "1g")
        # pandas -> Spark through Arrow: a NULL double stays NULL (without Arrow it becomes NaN, and a sum of
        # revenue over a journey with a NULL in it comes out NaN); ibis loads in-memory tables through pandas
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # tiny data, deep plans (a build is dozens of windows): adaptive execution and code generation cost
        # more than they save here; the interpreted operators give the same results
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextlib.contextmanager
def _connection(engine: str, request: pytest.FixtureRequest, tmp_dir: Path) -> Iterator[ibis.BaseBackend]:
    """A clean connection: a new in-memory DuckDB, or a new Spark database in a session of its own.

    The Spark session is a ``newSession()`` of the shared one (same SparkContext, own current database, SQL
    settings and temp views), so a test's database switch never reaches another connection.
    """
    if engine == "duckdb":
        con = ibis.duckdb.connect()
        try:
            yield con
        finally:
            con.disconnect()
        return
    session = request.getfixturevalue("spark_session").newSession()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    session.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    database = f"jl_test_{next(_DATABASES)}"
    location = (tmp_dir / database).as_uri()
    session.sql(f"CREATE DATABASE {database} LOCATION '{location}'")
    session.catalog.setCurrentDatabase(database)
    try:
        yield ibis.pyspark.connect(session)
    finally:
        session.catalog.setCurrentDatabase("default")
        session.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


@pytest.fixture(params=ENGINES)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ibis.BaseBackend]:
    """A clean Ibis connection for one test, on DuckDB and on Spark."""
    with _connection(request.param, request, tmp_path) as con:
        yield con


@pytest.fixture(scope="module", params=ENGINES)
def module_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ibis.BaseBackend]:
    """A clean Ibis connection shared by one module's tests (a workspace built once, read by many)."""
    with _connection(request.param, request, tmp_path_factory.mktemp("module-backend")) as con:
        yield con


# -- a browser: Debian's Chromium through Playwright --------------------------------------------------------

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session (Playwright's sync API allows one per process).

    Skipped, with the reason, only when Chromium is absent (CI installs it; locally: apt-get install -y chromium).
    """
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(f"{CHROMIUM_PATH} is missing (CI installs it; locally: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_FLAGS)
        yield b
        b.close()
