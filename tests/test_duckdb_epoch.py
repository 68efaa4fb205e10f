"""``epoch_seconds()`` of a time-zone-aware timestamp on DuckDB: no cast, and seconds since 1970 UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import ibis
import pytest

import journeylens.store  # noqa: F401 - installs the compilation rule

# 2024-03-31 is day 19,813 after 1970-01-01 (54 years with 13 leap days: 19,723 days to 2024-01-01, then
# 31 + 29 + 30): 03:00 UTC that day is 19,813 * 86,400 + 3 * 3,600 seconds. Europe/Amsterdam moves to
# summer time at 01:00 UTC that morning, so a day across it is 23 hours on the wall clock there.
BEFORE, AFTER = 1_711_767_600, 1_711_854_000


def test_an_aware_timestamp_compiles_to_epoch_without_a_cast():
    t = ibis.table({"ts": "timestamp('UTC')", "naive": "timestamp"}, name="t")
    sql = ibis.to_sql(t.select(a=t.ts.epoch_seconds(), b=t.naive.epoch_seconds()), dialect="duckdb")
    assert 'EPOCH("t0"."ts")' in sql
    assert 'EPOCH(CAST("t0"."naive" AS TIMESTAMP))' in sql


@pytest.mark.parametrize("zone", ["UTC", "Europe/Amsterdam"])
def test_epoch_seconds_count_elapsed_seconds_in_any_session_zone(zone):
    con = ibis.duckdb.connect()
    con.raw_sql(f"SET TimeZone = '{zone}'")  # a fixed name, not input
    t = ibis.memtable(
        {"ts": [datetime(2024, 3, 30, 3, tzinfo=UTC), datetime(2024, 3, 31, 3, tzinfo=UTC)]},
        schema={"ts": "timestamp('UTC')"},
    )
    got = con.to_pyarrow(t.select(s=t.ts.epoch_seconds())).column("s").to_pylist()
    assert got == [BEFORE, AFTER]
    con.disconnect()
