"""The benchmark suite's own floors and report: a floor that splits wrongly would make every ratio to it
meaningless, so DuckDB's least journey split (``SPLIT_SQL``) is checked on journeys worked out by hand."""

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from benchmarks.__main__ import SPLIT_SQL, markdown

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def test_the_least_split_numbers_journeys_by_a_gap_of_more_than_30_days(tmp_path):
    rows = [
        # (event_id, person_id, timestamp) -> expected journey number
        ("a1", "p1", T0, 1),
        ("a2", "p1", T0 + 30 * DAY, 1),  # a gap of exactly 30 days does not split
        ("a3", "p1", T0 + 60 * DAY + SECOND, 2),  # 30 days and one second does
        ("a5", "p1", T0 + 61 * DAY, 2),  # equal timestamps: a4 comes first, by event_id
        ("a4", "p1", T0 + 61 * DAY, 2),
        ("a6", "p1", T0 + 200 * DAY, 3),
        ("b1", "p2", T0 + 5 * DAY, 1),  # another person's journeys are numbered on their own
        ("b2", "p2", T0 + 100 * DAY, 2),
    ]
    source = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "event_id": [r[0] for r in rows],
                "person_id": [r[1] for r in rows],
                "timestamp": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
                "channel": ["web"] * len(rows),
            }
        ),
        source,
    )
    con = duckdb.connect()
    con.execute(SPLIT_SQL.format(table="TEMP TABLE s", source=source))
    got = dict(con.execute("SELECT event_id, journey_number FROM s").fetchall())
    assert got == {r[0]: r[3] for r in rows}
    # every touchpoint column comes through
    assert [d[0] for d in con.execute("SELECT * FROM s LIMIT 0").description] == [
        "event_id",
        "person_id",
        "timestamp",
        "channel",
        "journey_number",
    ]


def test_the_report_quotes_the_build_against_each_of_its_floors():
    report = {
        "10M": {
            "floor_sort": {"seconds": 10.0, "peak_mb": 100.0},
            "floor_split_write": {"seconds": 40.0, "peak_mb": 100.0},
            "build": {"seconds": 90.0, "peak_mb": 200.0, "events": 9_000_000},
            "build_incremental_1pct": {"seconds": 9.9, "peak_mb": 150.0},
        }
    }
    lines = markdown(report).splitlines()
    build = next(x for x in lines if "| build |" in x)
    # 90 / 10 and 90 / 40; 9M events in 90 s
    assert build == "| 10M | build | 90.00 | 100,000 | 200 | 9.00; 2.25 | floor_sort; floor_split_write |"
    incremental = next(x for x in lines if "| build_incremental_1pct |" in x)
    assert incremental.endswith("| 0.11 | build |")  # 9.9 / 90
    split = next(x for x in lines if "| floor_split_write |" in x)
    assert split.endswith("| 4.00 | floor_sort |")
    # a floor that did not run is left out, not divided by
    del report["10M"]["floor_split_write"]
    build = next(x for x in markdown(report).splitlines() if "| build |" in x)
    assert build.endswith("| 9.00 | floor_sort |")
