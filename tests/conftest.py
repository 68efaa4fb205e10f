"""Shared fixtures: a fresh DuckDB workspace per test, and a file writer."""

from __future__ import annotations

from pathlib import Path

import pytest

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


# -- engines: one test body, DuckDB and local Spark ------------------------------------------------------


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    """A local SparkSession for the whole test session (started on first use, ~5 s)."""
    pyspark_sql = pytest.importorskip("pyspark.sql", reason="the [spark] extra is not installed")
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("journeylens-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def backend(request):
    """An empty Ibis connection on each engine; the same test body runs on both."""
    import ibis

    if request.param == "duckdb":
        con = ibis.duckdb.connect()
        yield con
        con.disconnect()
        return
    session = request.getfixturevalue("spark_session")
    con = ibis.pyspark.connect(session)
    for name in con.list_tables():
        con.drop_table(name, force=True)
    for view in [r.viewName for r in session.sql("SHOW VIEWS").collect()]:
        session.catalog.dropTempView(view)
    yield con
