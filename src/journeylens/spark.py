"""journeylens on Apache Spark: a session, a Spark database as the workspace, touchpoints from Parquet.

A Spark *database* plays the role of the DuckDB workspace: ``touchpoints``, ``persons``, the built
``journey_*`` tables and the ``builds`` log live in it, and every analysis reads them through Ibis. The
touchpoints come from Parquet at any path Spark can read (a folder, a glob, ``s3a://``, ``abfss://``,
``hdfs://``): :func:`load_touchpoints` checks the columns against the contract, casts them to the contract's
types and writes the ``touchpoints`` table in Spark, so no event passes through Python::

    from pyspark.sql import SparkSession
    from journeylens import spark

    session = SparkSession.builder.getOrCreate()
    ws = spark.workspace(session, database="journeylens", touchpoints="s3a://bucket/touchpoints/*.parquet")
    ws.build(model="five-phase")

pyspark is imported inside the functions: ``import journeylens`` and the DuckDB command line never load it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journeylens.errors import UnusableInputError, WorkspaceError
from journeylens.schema import CONTRACT_COLUMNS, FIELDS_BY_NAME, TOUCHPOINTS_SCHEMA

if TYPE_CHECKING:
    from ibis.backends import BaseBackend
    from pyspark.sql import DataFrame, SparkSession

    from journeylens.store import Workspace

DEFAULT_DATABASE = "journeylens"
DEFAULT_MASTER = "local[*]"

#: settings every journeylens session runs with: timestamps are stored and compared in UTC, and Ibis moves
#: in-memory tables to Spark through pandas, where only Arrow keeps a NULL double NULL (not NaN)
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
#: defaults of a session journeylens starts itself (a --spark-conf of the same key wins)
START_CONF = {
    **SESSION_CONF,
    "spark.ui.showConsoleProgress": "false",
}
#: settings that say the user chose a catalog; without them a local session keeps its catalog in a folder
CATALOG_KEYS = ("spark.sql.catalogImplementation", "spark.sql.warehouse.dir")

_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTEGRAL = ("tinyint", "smallint", "int", "bigint")
_NUMERIC = (*_INTEGRAL, "float", "double")

_registered: SparkSession | None = None


# -- the session ---------------------------------------------------------------------------------------------


def use_session(session: SparkSession | None) -> None:
    """Make :func:`get_session` (and so ``journeylens --engine spark`` run in this process) use ``session``.

    ``None`` forgets it. Without a registered session, the active one is used, else one is started.
    """
    global _registered
    _registered = session


def existing_session() -> SparkSession | None:
    """The registered session, else the process's active one, else ``None`` (nothing is started)."""
    if _registered is not None:
        return _registered
    pyspark_sql = _import_pyspark()
    return pyspark_sql.SparkSession.getActiveSession()


def get_session(
    *,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    local_dir: str | Path | None = None,
) -> SparkSession:
    """The session journeylens works in: an existing one (see :func:`existing_session`), or a new one.

    A new session runs on ``master`` (default: what ``spark-submit`` set, else ``local[*]``) with ``conf``
    on top of :data:`START_CONF`. A local session with no catalog of the user's (``conf`` sets neither
    ``spark.sql.catalogImplementation`` nor ``spark.sql.warehouse.dir``) keeps its catalog and tables in
    ``local_dir`` (a Derby metastore and a warehouse folder), so that one command's build is there for the
    next command. Every session gets :data:`SESSION_CONF` (UTC, Arrow).
    """
    current = existing_session()
    if current is None:
        current = _start(master=master, conf=dict(conf or {}), local_dir=local_dir)
    for key, value in SESSION_CONF.items():
        current.conf.set(key, value)
    return current


def _start(*, master: str | None, conf: dict[str, str], local_dir: str | Path | None) -> SparkSession:
    pyspark_sql = _import_pyspark()
    builder = pyspark_sql.SparkSession.builder.appName("journeylens")
    # under spark-submit the JVM is up and spark.master is set; otherwise start local unless told otherwise
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if master is None and not under_submit:
        master = DEFAULT_MASTER
    if master is not None:
        builder = builder.master(master)
    settings = {**START_CONF, **conf}
    if (
        local_dir is not None
        and master is not None
        and master.startswith("local")
        and not any(key in conf for key in CATALOG_KEYS)
    ):
        folder = Path(local_dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        builder = builder.enableHiveSupport()
        settings.setdefault("spark.sql.warehouse.dir", (folder / "warehouse").as_uri())
        settings.setdefault(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true",
        )
        settings.setdefault("spark.driver.extraJavaOptions", f"-Dderby.system.home={folder}")
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        started = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - py4j / pyspark start errors carry no common base class
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkspaceError(
            f"cannot start Spark (master {master or 'from spark-submit'}): {first}; Spark needs Java 17 "
            "(JAVA_HOME) and, for a cluster, its settings (--spark-conf KEY=VALUE)"
        ) from None
    started.sparkContext.setLogLevel("ERROR")
    return started


def _import_pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError:
        raise WorkspaceError(
            "the Spark engine needs pyspark: pip install 'journeylens[spark]' (and Java 17)"
        ) from None
    return pyspark.sql


# -- the database that plays the workspace ---------------------------------------------------------------------


def connect(session: SparkSession, database: str = DEFAULT_DATABASE) -> BaseBackend:
    """An Ibis connection on ``session`` whose current database is ``database`` (created when missing)."""
    import ibis

    check_database(database)
    con = ibis.pyspark.connect(session)
    try:
        con.create_database(database, force=True)
    except Exception as exc:  # noqa: BLE001 - AnalysisException, Py4JJavaError
        raise WorkspaceError(f"Spark database {database!r}: cannot create it: {_first_line(exc)}") from None
    session.catalog.setCurrentDatabase(database)
    return con


def check_database(name: str) -> None:
    if not _DATABASE_NAME.match(name):
        raise UnusableInputError(
            f"--spark-database {name!r}: expected a name of letters, digits and underscores, e.g. journeylens"
        )


def attach(con: BaseBackend, *, timezone: str = "UTC") -> Workspace:
    """The workspace on ``con`` (missing base tables created), with its ``journeys`` view in place.

    ``journeys`` is a temporary view on Spark (status is computed against the data's end when read), so a new
    session that finds ``journeys_base`` from an earlier build defines it again.
    """
    from journeylens.journeys.build import journeys_view
    from journeylens.store import Workspace

    ws = Workspace.from_backend(con, timezone=timezone)
    session = con._session  # the pyspark backend's session
    session.catalog.dropTempView("journeys")
    if ws.has_table("journeys_base"):
        view = journeys_view(con.table("journeys_base"), ws.touchpoints, ws.persons)
        con.create_view("journeys", view, overwrite=True)
    return ws


def workspace(
    session: SparkSession | None = None,
    *,
    database: str = DEFAULT_DATABASE,
    touchpoints: str | None = None,
    persons: str | None = None,
    timezone: str = "UTC",
) -> Workspace:
    """A workspace in the Spark database ``database``, optionally (re)loading touchpoints and persons.

    ``touchpoints`` and ``persons`` are Parquet paths Spark can read (see :func:`load_touchpoints`); without
    them the database's tables are used as they are. ``session`` defaults to :func:`get_session`.
    """
    current = session if session is not None else get_session()
    for key, value in SESSION_CONF.items():
        current.conf.set(key, value)
    con = connect(current, database)
    if touchpoints is not None:
        load_touchpoints(current, touchpoints, database=database)
    if persons is not None:
        load_persons(current, persons, database=database)
    return attach(con, timezone=timezone)


# -- loading Parquet ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_touchpoints` / :func:`load_persons` stored, counted in Spark."""

    source: str
    table: str
    rows_read: int
    stored: int
    duplicates: int = 0
    left_out: dict[str, int] = field(default_factory=dict)  # reason -> rows
    ignored_columns: list[str] = field(default_factory=list)


#: rows that break the contract and are left out on Spark (there is no quarantine table there)
REASONS = {
    "missing_timestamp": "without a timestamp (or one that is not a date-time)",
    "missing_channel": "without a channel",
    "missing_touchpoint": "without a touchpoint",
    "missing_person": "with neither a person_id nor an anonymous_id",
    "missing_person_id": "without a person_id",
}


def read_parquet(session: SparkSession, path: str) -> DataFrame:
    """Spark's reader on ``path``; a path that is not there is one clear error."""
    try:
        return session.read.parquet(str(path))
    except Exception as exc:  # noqa: BLE001 - AnalysisException, Py4JJavaError
        raise UnusableInputError(f"{path}: cannot read it as Parquet: {_first_line(exc)}") from None


def touchpoints_frame(frame: DataFrame, source: str) -> tuple[DataFrame, list[str]]:
    """``frame`` in the touchpoint contract's columns and types (a plan, nothing runs), and the ignored columns.

    Raises :class:`UnusableInputError` naming the column when a required one is missing or a column's type
    cannot hold the contract's values.
    """
    from pyspark.sql import functions as F

    types = {f.name: f.dataType for f in frame.schema.fields}
    simple = {name: t.simpleString() for name, t in types.items()}
    for name in ("timestamp", "channel", "touchpoint"):
        if name not in types:
            raise _missing(source, name, simple)
    if "person_id" not in types and "anonymous_id" not in types:
        raise UnusableInputError(
            f"{source}: needs a 'person_id' or an 'anonymous_id' column (a touchpoint belongs to a person or a "
            f"device); found columns: {', '.join(simple)}"
        )
    columns = []
    for name in CONTRACT_COLUMNS:
        spec = FIELDS_BY_NAME[name]
        if name not in types:
            columns.append(F.lit(None).cast(_spark_type(spec.type)).alias(name))
            continue
        got = simple[name]
        col = F.col(f"`{name}`")
        if name == "timestamp":
            if got not in ("timestamp", "timestamp_ntz", "date", "string"):
                raise _bad_type(source, name, got, "a timestamp (or an ISO 8601 string)")
            columns.append(col.cast("timestamp").alias(name))
        elif name in ("revenue", "satisfaction"):
            if not (got in _NUMERIC or got.startswith("decimal")):
                raise _bad_type(source, name, got, "a number (double)")
            columns.append(col.cast("double").alias(name))
        elif name == "properties" and got.startswith(("struct", "map")):
            columns.append(F.to_json(col).alias(name))
        else:
            if got not in ("string", *_INTEGRAL) and not got.startswith(("varchar", "char")):
                raise _bad_type(source, name, got, "a string")
            columns.append(F.nullif(F.trim(col.cast("string")), F.lit("")).alias(name))
    shaped = frame.select(*columns)
    # a missing event_id is a hash of the content, as on import, so that a re-load finds the same ids
    content = F.concat_ws(
        "\x1f",
        *[F.coalesce(F.col(c).cast("string"), F.lit("\\N")) for c in CONTRACT_COLUMNS if c != "event_id"],
    )
    shaped = shaped.withColumn(
        "event_id", F.coalesce(F.col("event_id"), F.concat(F.lit("h"), F.md5(content)))
    )
    ignored = [
        name for name in types if name not in CONTRACT_COLUMNS and name not in ("row_hash", "import_id")
    ]
    return shaped, ignored


def _reason_column() -> Any:
    from pyspark.sql import functions as F

    return (
        F.when(F.col("timestamp").isNull(), "missing_timestamp")
        .when(F.col("channel").isNull(), "missing_channel")
        .when(F.col("touchpoint").isNull(), "missing_touchpoint")
        .when(F.col("person_id").isNull() & F.col("anonymous_id").isNull(), "missing_person")
    )


def load_touchpoints(
    session: SparkSession, path: str, *, database: str = DEFAULT_DATABASE, import_id: int = 1
) -> LoadResult:
    """Replace ``database.touchpoints`` with the touchpoints of the Parquet at ``path``, all in Spark.

    Columns are checked against the contract first (a clear error naming a missing or mistyped column,
    nothing written); rows that break it (no timestamp, channel, touchpoint, or person) are left out and
    counted by reason; exact duplicate rows are stored once. Only these counts reach Python.
    """
    from pyspark.sql import functions as F

    check_database(database)
    frame = read_parquet(session, path)
    shaped, ignored = touchpoints_frame(frame, str(path))
    with_reason = shaped.withColumn("_reason", _reason_column())
    counts = {
        row["_reason"]: int(row["n"])
        for row in with_reason.groupBy("_reason").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    rows_read = sum(counts.values())
    valid = counts.get(None, 0)
    good = (
        with_reason.filter(F.col("_reason").isNull())
        .drop("_reason")
        .dropDuplicates(list(CONTRACT_COLUMNS))
        .withColumn("row_hash", F.lit(None).cast("string"))
        .withColumn("import_id", F.lit(import_id).cast("long"))
        .select(*TOUCHPOINTS_SCHEMA.names)
    )
    table = f"{database}.touchpoints"
    _save(good, table, str(path))
    stored = int(session.table(table).count())
    left_out = {reason: n for reason, n in counts.items() if reason is not None}
    return LoadResult(str(path), table, rows_read, stored, valid - stored, left_out, ignored)


def load_persons(session: SparkSession, path: str, *, database: str = DEFAULT_DATABASE) -> LoadResult:
    """Replace ``database.persons`` with the persons of the Parquet at ``path`` (person_id, persona, attributes).

    A person_id that occurs more than once keeps one of its rows (counted as duplicates); rows without a
    person_id are left out.
    """
    from pyspark.sql import functions as F

    check_database(database)
    frame = read_parquet(session, path)
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    if "person_id" not in types:
        raise _missing(str(path), "person_id", types, what="persons file")
    for name in ("person_id", "persona"):
        if (
            name in types
            and types[name] not in ("string", *_INTEGRAL)
            and not types[name].startswith("varchar")
        ):
            raise _bad_type(str(path), name, types[name], "a string")
    persona = F.col("persona").cast("string") if "persona" in types else F.lit(None).cast("string")
    others = [F.col(f"`{name}`") for name in types if name not in ("person_id", "persona")]
    shaped = frame.select(
        F.nullif(F.trim(F.col("person_id").cast("string")), F.lit("")).alias("person_id"),
        persona.alias("persona"),
        *others,
    )
    rows_read = int(shaped.count())
    good = shaped.filter(F.col("person_id").isNotNull())
    valid = int(good.count())
    table = f"{database}.persons"
    _save(good.dropDuplicates(["person_id"]), table, str(path))
    stored = int(session.table(table).count())
    left_out = {"missing_person_id": rows_read - valid} if rows_read > valid else {}
    return LoadResult(str(path), table, rows_read, stored, valid - stored, left_out, [])


def _save(frame: DataFrame, table: str, source: str) -> None:
    try:
        frame.write.mode("overwrite").format("parquet").saveAsTable(table)
    except Exception as exc:  # noqa: BLE001 - AnalysisException, Py4JJavaError
        raise UnusableInputError(f"{source}: cannot store it as {table}: {_first_line(exc)}") from None


# -- messages ---------------------------------------------------------------------------------------------------


def _missing(
    source: str, name: str, found: dict[str, str], *, what: str = "touchpoints"
) -> UnusableInputError:
    expected = FIELDS_BY_NAME[name].expected if name in FIELDS_BY_NAME else "a person id"
    return UnusableInputError(
        f"{source}: the {what} have no column '{name}' ({expected}); found columns: {', '.join(found) or 'none'}"
    )


def _bad_type(source: str, name: str, got: str, expected: str) -> UnusableInputError:
    return UnusableInputError(f"{source}: column '{name}' is {got}; expected {expected}")


def _spark_type(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_floating(arrow_type):
        return "double"
    if pa.types.is_integer(arrow_type):
        return "bigint"
    return "string"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:300]
