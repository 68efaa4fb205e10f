"""``journeylens --engine spark``: touchpoints from Parquet, the build and the analyses on Spark, from the CLI.

The command line reuses the test run's local SparkSession (``journeylens.spark.use_session``), so no test pays
for a JVM of its own. Four persons, worked out by hand on the three-phase model (orientation: ad_click;
consideration: site_visit, review_read; decision: quote_request, purchase), all purchase journeys:

- anna: ad_click (paid_search), site_visit (website), purchase (website, 100): contact 3;
- bob: ad_click (social), site_visit (website): no purchase (a null path);
- carl: site_visit (email), purchase (store, 50): contact 2, never in orientation;
- dora: ad_click (paid_search), site_visit, review_read, quote_request, purchase (all website, 200): contact 5.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from journeylens.cli import app
from journeylens.schema import TIMESTAMP_TYPE

runner = CliRunner()
_DATABASES = itertools.count()

PEOPLE = {
    "anna": [
        ("ad_click", "2024-01-01T10:00", "paid_search", None),
        ("site_visit", "2024-01-02T10:00", "website", None),
        ("purchase", "2024-01-03T10:00", "website", 100.0),
    ],
    "bob": [
        ("ad_click", "2024-01-01T11:00", "social", None),
        ("site_visit", "2024-01-05T11:00", "website", None),
    ],
    "carl": [
        ("site_visit", "2024-01-10T09:00", "email", None),
        ("purchase", "2024-01-11T09:00", "store", 50.0),
    ],
    "dora": [
        ("ad_click", "2024-03-01T08:00", "paid_search", None),
        ("site_visit", "2024-03-02T08:00", "website", None),
        ("review_read", "2024-03-03T08:00", "website", None),
        ("quote_request", "2024-03-04T08:00", "website", None),
        ("purchase", "2024-03-05T08:00", "website", 200.0),
    ],
}

#: phase funnel over the 4 purchase journeys: a phase is reached by the journeys whose furthest phase is it or later
PHASES = {"orientation": 4, "consideration": 4, "decision": 3}
#: contact number of each person's first purchase: carl 2, anna 3, dora 5
CONTACTS = {2: 1, 3: 1, 5: 1}
#: touches before the purchase, by channel (bob's journey is a null path)
LAST_TOUCH = {"website": 2.0, "email": 1.0}
FIRST_TOUCH = {"paid_search": 2.0, "email": 1.0}
LINEAR = {"paid_search": 0.5 + 0.25, "website": 0.5 + 0.75, "email": 1.0}


def write_touchpoints(path, people=PEOPLE, *, drop=()):
    rows = [
        {
            "event_id": f"{person}-{i}",
            "person_id": person,
            "timestamp": datetime.fromisoformat(ts).replace(tzinfo=UTC),
            "channel": channel,
            "touchpoint": touchpoint,
            "revenue": revenue,
            "campaign": "spring",  # not in the contract: ignored, and said so
        }
        for person, touches in people.items()
        for i, (touchpoint, ts, channel, revenue) in enumerate(touches)
    ]
    schema = pa.schema(
        [
            ("event_id", pa.string()),
            ("person_id", pa.string()),
            ("timestamp", TIMESTAMP_TYPE),
            ("channel", pa.string()),
            ("touchpoint", pa.string()),
            ("revenue", pa.float64()),
            ("campaign", pa.string()),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table.drop_columns(list(drop)), path)
    return path


@pytest.fixture
def spark_cli(spark_session, tmp_path):
    """Run the CLI with ``--engine spark`` in a fresh database of a session of its own; yields a runner."""
    from journeylens import spark

    session = spark_session.newSession()
    database = f"jl_cli_{next(_DATABASES)}"
    spark.use_session(session)

    def invoke(*args):
        result = runner.invoke(app, ["--engine", "spark", "--spark-database", database, *map(str, args)])
        return result

    try:
        yield invoke
    finally:
        spark.use_session(None)
        session.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


def records(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def phase_reached(rows):
    return {r["phase"]: r["reached"] for r in rows}


def distribution(rows):
    return {r["contact_number"]: r["purchases"] for r in rows}


def credit(rows):
    return {r["channel"]: r["attributed_conversions"] for r in rows if r["attributed_conversions"]}


def analyses(invoke, *workspace):
    return (
        records(invoke("funnel", "--phases", "--format", "json", *workspace)),
        records(invoke("touchpoints", "--format", "json", *workspace)),
        {
            model: records(invoke("attribution", "--model", model, "--format", "json", *workspace))
            for model in ("last_touch", "first_touch", "linear")
        },
    )


@pytest.mark.spark
def test_the_same_analyses_run_on_spark_from_the_cli(spark_cli, tmp_path):
    file = write_touchpoints(tmp_path / "touchpoints.parquet")

    built = spark_cli("--touchpoints", file, "build", "--model", "three-phase")
    assert built.exit_code == 0, built.output
    assert "12 rows stored in Spark table" in built.output
    assert "columns not in the contract, not stored: campaign" in built.output
    assert "built 4 journeys from 12 touchpoints with phase model three-phase" in built.output

    # later commands read the database as built: no --touchpoints again
    funnel, touch, attribution = analyses(spark_cli)
    assert phase_reached(funnel) == PHASES
    assert distribution(touch) == CONTACTS
    assert credit(attribution["last_touch"]) == LAST_TOUCH
    assert credit(attribution["first_touch"]) == FIRST_TOUCH
    assert credit(attribution["linear"]) == pytest.approx(LINEAR)

    # the same file through the DuckDB command line gives the same tables
    ws = ["-w", tmp_path / "ws"]
    assert runner.invoke(app, ["ingest", str(file), *map(str, ws)]).exit_code == 0
    assert runner.invoke(app, ["build", "--model", "three-phase", *map(str, ws)]).exit_code == 0
    d_funnel, d_touch, d_attribution = analyses(lambda *a: runner.invoke(app, list(map(str, a))), *ws)
    assert _same(funnel, d_funnel)
    assert _same(touch, d_touch)
    for model in attribution:
        assert _same(attribution[model], d_attribution[model]), model


def _same(a, b):
    """Equal record lists, numbers to 1e-9 (engines sum floats in different orders)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.keys() != y.keys():
            return False
        for key in x:
            if isinstance(x[key], float) and isinstance(y[key], float):
                if x[key] != pytest.approx(y[key], rel=1e-9, abs=1e-12):
                    return False
            elif x[key] != y[key]:
                return False
    return True


@pytest.mark.spark
def test_a_parquet_without_a_required_column_is_one_clear_error(spark_cli, tmp_path):
    file = write_touchpoints(tmp_path / "no-channel.parquet", drop=["channel"])

    result = spark_cli("--touchpoints", file, "build")

    assert result.exit_code == 2
    assert (
        f"error: {file}: the touchpoints have no column 'channel' (a non-empty channel name" in result.output
    )
    assert "found columns: event_id, person_id, timestamp, touchpoint, revenue, campaign" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


@pytest.mark.spark
def test_rows_breaking_the_contract_are_left_out_and_counted(spark_cli, tmp_path):
    people = {**PEOPLE, "eve": [("site_visit", "2024-01-04T10:00", "", None)]}  # an empty channel
    file = write_touchpoints(tmp_path / "touchpoints.parquet", people)

    result = spark_cli("--touchpoints", file, "info", "--format", "json")

    assert result.exit_code == 0, result.output
    assert "12 rows stored in Spark table" in result.output
    assert "left out 1 rows without a channel (missing_channel)" in result.output
    info = json.loads(result.stdout)
    assert info["engine"] == "pyspark" and info["tables"]["touchpoints"] == 12


def test_duckdb_only_commands_and_spark_options_say_so(tmp_path):
    result = runner.invoke(app, ["--engine", "spark", "ingest", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2
    assert (
        "error: `journeylens ingest` works on the DuckDB workspace only; on Spark, load touchpoints"
        in result.output
    )

    result = runner.invoke(app, ["--touchpoints", "x.parquet", "build", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "error: --touchpoints needs --engine spark" in result.output

    result = runner.invoke(app, ["--engine", "oracle", "info"])
    assert result.exit_code == 2 and "error: --engine 'oracle': expected duckdb or spark" in result.output

    result = runner.invoke(app, ["--engine", "spark", "--spark-conf", "nonsense", "info"])
    assert result.exit_code == 2 and "error: --spark-conf 'nonsense': expected KEY=VALUE" in result.output
