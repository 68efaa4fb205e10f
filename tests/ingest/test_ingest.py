"""Ingest: every bad-input class gets its exact message, the good rows land, nothing is lost.

Expectations are worked out by hand from the literal files below.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journeylens.errors import ConfigError, UnusableInputError
from journeylens.ingest import Mapping, mapping_from_options

HEADER = "event_id,person_id,timestamp,channel,touchpoint"


def stored(ws, *columns):
    t = ws.touchpoints.order_by("event_id")
    return [tuple(r) for r in t.select(*columns).to_pyarrow().to_pylist() for r in [r.values()]]


def quarantine(ws):
    q = ws.quarantine.order_by(["import_id", "line"]).select("line", "field", "reason", "message")
    return [tuple(r.values()) for r in q.to_pyarrow().to_pylist()]


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# -- time zones ---------------------------------------------------------------------------------


def test_timestamps_with_offsets_are_converted_and_naive_ones_use_the_zone(workspace, write):
    path = write(
        "tz.csv",
        HEADER
        + "\n"
        + "e1,p,2024-03-01T10:00:00+01:00,web,a\n"  # 09:00 UTC
        + "e2,p,2024-03-01T10:00:00Z,web,a\n"  # 10:00 UTC
        + "e3,p,2024-07-01 10:00:00,web,a\n"  # naive, Amsterdam summer time (+2) -> 08:00 UTC
        + "e4,p,2024-01-15T10:00,web,a\n"  # naive, winter time (+1) -> 09:00 UTC
        + "e5,p,2024-03-01T10:00:00.250-05:00,web,a\n",  # 15:00:00.25 UTC
    )
    result = workspace.ingest(path, timezone="Europe/Amsterdam")
    assert (result.accepted, result.quarantined) == (5, 0)
    assert stored(workspace, "event_id", "timestamp") == [
        ("e1", utc(2024, 3, 1, 9)),
        ("e2", utc(2024, 3, 1, 10)),
        ("e3", utc(2024, 7, 1, 8)),
        ("e4", utc(2024, 1, 15, 9)),
        ("e5", utc(2024, 3, 1, 15, 0, 0, 250000)),
    ]


def test_naive_timestamps_default_to_utc(workspace, write):
    workspace.ingest(write("n.csv", HEADER + "\ne1,p,2024-07-01 10:00:00,web,a\n"))
    assert stored(workspace, "timestamp") == [(utc(2024, 7, 1, 10),)]


def test_the_zone_setting_is_kept_in_the_workspace(tmp_path, write):
    from journeylens.store import Workspace

    Workspace(tmp_path / "w", timezone="Asia/Tokyo").close()
    ws = Workspace(tmp_path / "w")
    ws.ingest(write("n.csv", HEADER + "\ne1,p,2024-07-01 10:00:00,web,a\n"))  # 10:00 in Tokyo = 01:00 UTC
    assert stored(ws, "timestamp") == [(utc(2024, 7, 1, 1),)]
    ws.close()


# -- unusable input: exit code 2, nothing written --------------------------------------------------


def assert_nothing_written(ws):
    assert ws.touchpoints.count().execute() == 0
    assert ws.quarantine.count().execute() == 0
    assert ws.imports.count().execute() == 0


def test_missing_required_column(workspace, write):
    path = write("m.csv", "event_id,person_id,timestamp,touchpoint\ne1,p,2024-01-01,a\n")
    with pytest.raises(UnusableInputError) as err:
        workspace.ingest(path)
    assert str(err.value) == (
        "m.csv: missing required column 'channel': expected a non-empty channel name, e.g. email; "
        "the input has: event_id, person_id, timestamp, touchpoint. Map a column to it with --map channel=COLUMN"
    )
    assert err.value.exit_code == 2
    assert_nothing_written(workspace)


def test_wrong_delimiter_names_the_likely_one(workspace, write):
    path = write("semi.csv", "event_id;person_id;timestamp;channel;touchpoint\ne1;p;2024-01-01;web;a\n")
    with pytest.raises(UnusableInputError, match=r"the header looks ';'-delimited: pass --delimiter ';'"):
        workspace.ingest(path, delimiter=",")
    assert_nothing_written(workspace)
    # without --delimiter the header's delimiter is detected
    assert workspace.ingest(path).accepted == 1


def test_missing_file_empty_file_and_unknown_format(workspace, write, tmp_path):
    with pytest.raises(UnusableInputError, match=r"^.*nope\.csv: no such file$"):
        workspace.ingest(tmp_path / "nope.csv")
    with pytest.raises(UnusableInputError) as err:
        workspace.ingest(write("empty.csv", ""))
    assert str(err.value) == "empty.csv: the file is empty; expected a header line naming the columns"
    with pytest.raises(UnusableInputError) as err:
        workspace.ingest(write("x.xlsx", "x"))
    assert str(err.value) == (
        "x.xlsx: cannot tell the format from the extension '.xlsx'; expected .csv, .tsv, .parquet or .jsonl, or pass --format"
    )
    with pytest.raises(UnusableInputError, match="format 'xml' is unknown"):
        workspace.ingest(write("x.csv", HEADER + "\n"), format="xml")
    assert_nothing_written(workspace)


def test_header_only_file_imports_nothing_and_succeeds(workspace, write):
    result = workspace.ingest(write("h.csv", HEADER + "\n"))
    assert (result.rows_read, result.accepted, result.quarantined, result.exit_code) == (0, 0, 0, 0)


# -- row-level errors: quarantined with file, line, column, value and what was expected --------------------


def test_each_bad_row_is_quarantined_with_its_exact_message(workspace, write):
    path = write(
        "bad.csv",
        "event_id,person_id,timestamp,channel,touchpoint,revenue,currency,satisfaction,scale,properties\n"
        "e1,p1,2024-01-01T10:00:00Z,web,visit,,,,,\n"  # line 2: good
        "e2,p1,yesterday,web,visit,,,,,\n"  # line 3: bad timestamp
        "e3,,2024-01-01T10:00:00Z,web,visit,,,,,\n"  # line 4: empty person_id
        "e4,p1,2024-01-01T10:00:00Z,web,survey,,,great,csat,\n"  # line 5: non-numeric satisfaction
        "e5,p1,2024-01-01T10:00:00Z,web,survey,,,11,nps,\n"  # line 6: out of scale
        "e6,p1,2024-01-01T10:00:00Z,web,survey,,,4,,\n"  # line 7: satisfaction without scale
        "e7,p1,2024-01-01T10:00:00Z,web,buy,12;50,EUR,,,\n"  # line 8: bad revenue
        'e8,p1,2024-01-01T10:00:00Z,web,buy,,,,,"{""a"": 1"\n'  # line 9: bad JSON properties
        "e9,p1,2024-01-01T10:00:00Z,,visit,,,,,\n"  # line 10: empty channel
        "e10,p1,2024-01-01T10:00:00Z,web\n"  # line 11: too few fields
        "e11,p1,2024-02-30T10:00:00Z,web,visit,,,,,\n"  # line 12: impossible date
        "e12,p1,2024-01-01T10:00:00Z,web,buy,9.5,euro,,,\n"  # line 13: bad currency
        "e13,p1,2024-01-01T11:00:00Z,web,survey,,,7,ces,\n",  # line 14: good (ces 1-7)
    )
    result = workspace.ingest(path)
    assert (result.accepted, result.quarantined, result.duplicates, result.exit_code) == (2, 11, 0, 3)
    assert stored(workspace, "event_id") == [("e1",), ("e13",)]
    assert quarantine(workspace) == [
        (3, "timestamp", "bad_timestamp", "bad.csv:3: column 'timestamp': 'yesterday' is not a date-time; expected an ISO 8601 date-time, e.g. 2024-03-01T10:00:00+01:00"),
        (4, "person_id", "missing_person", "bad.csv:4: column 'person_id': is empty; expected a non-empty person id (or an anonymous_id)"),
        (5, "satisfaction", "bad_number", "bad.csv:5: column 'satisfaction': 'great' is not a number; expected a number within the scale's range"),
        (6, "satisfaction", "out_of_scale", "bad.csv:6: column 'satisfaction': '11' is outside the nps scale; expected a number from 0 to 10"),
        (7, "scale", "missing_scale", "bad.csv:7: column 'scale': is empty but a satisfaction is given; expected one of csat (1-5), nps (0-10), ces (1-7)"),
        (8, "revenue", "bad_number", "bad.csv:8: column 'revenue': '12;50' is not a number; expected a number, e.g. 19.95 (negative on a refund)"),
        (9, "properties", "bad_json", "bad.csv:9: column 'properties': '{\"a\": 1' is not a JSON object; expected a JSON object, e.g. {\"utm_campaign\": \"spring\"}"),
        (10, "channel", "missing_value", "bad.csv:10: column 'channel': is empty; expected a non-empty channel name, e.g. email"),
        (11, None, "malformed_row", "bad.csv:11: the row has 4 fields; expected 10 (check the quoting and the delimiter ',')"),
        (12, "timestamp", "bad_timestamp", "bad.csv:12: column 'timestamp': '2024-02-30T10:00:00Z' is not a date-time; expected an ISO 8601 date-time, e.g. 2024-03-01T10:00:00+01:00"),
        (13, "currency", "bad_currency", "bad.csv:13: column 'currency': 'euro' is not a currency code; expected a three-letter ISO 4217 code, e.g. EUR"),
    ]


def test_quarantine_keeps_the_raw_row(workspace, write):
    workspace.ingest(write("r.csv", HEADER + "\ne1,p1,someday,web,visit\n"))
    raw = workspace.quarantine.raw.execute().tolist()
    assert [json.loads(r) for r in raw] == [
        {"event_id": "e1", "person_id": "p1", "timestamp": "someday", "channel": "web", "touchpoint": "visit"}
    ]


def test_byte_order_mark_is_ignored(workspace, write):
    path = write("bom.csv", b"\xef\xbb\xbf" + (HEADER + "\ne1,p,2024-01-01,web,a\n").encode())
    result = workspace.ingest(path)
    assert (result.accepted, result.quarantined) == (1, 0)


def test_non_utf8_bytes_are_quarantined_and_the_rest_lands(workspace, write):
    path = write("latin.csv", (HEADER + "\ne1,p,2024-01-01,web,a\ne2,p,2024-01-01,caf").encode() + b"\xe9" + b",a\n")
    result = workspace.ingest(path)
    assert (result.accepted, result.quarantined) == (1, 1)
    assert quarantine(workspace) == [
        (3, "channel", "bad_encoding", "latin.csv:3: column 'channel': b'caf\\xe9' is not valid UTF-8 (pass --encoding if the file uses another one); expected a non-empty channel name, e.g. email")
    ]
    # read with the right encoding, the same file is fine
    again = workspace.ingest(path, encoding="latin-1")
    assert again.accepted == 1 and stored(workspace, "channel")[-1] == ("café",)


def test_malformed_json_lines(workspace, write):
    good = {"event_id": "e1", "person_id": "p", "timestamp": "2024-01-01T00:00:00Z", "channel": "web", "touchpoint": "a", "properties": {"k": [1, 2]}}
    path = write(
        "e.jsonl",
        json.dumps(good) + "\n" + '{"event_id": "e2", "person_id": ' + "\n" + "\n" + "[1, 2]\n" + json.dumps({**good, "event_id": "e3"}) + "\n",
    )
    result = workspace.ingest(path)
    assert (result.accepted, result.quarantined) == (2, 2)
    assert [(line, reason) for line, _, reason, _ in quarantine(workspace)] == [(2, "bad_json"), (4, "bad_json")]
    assert quarantine(workspace)[1][3] == "e.jsonl:4: a JSON list; expected one JSON object per line"
    assert quarantine(workspace)[0][3].startswith("e.jsonl:2: not valid JSON (Expecting value: line 1 column 33")
    assert stored(workspace, "properties") == [('{"k": [1, 2]}',), ('{"k": [1, 2]}',)]


# -- duplicates ---------------------------------------------------------------------------------


def test_identical_duplicates_are_skipped_and_counted(workspace, write):
    path = write("d.csv", HEADER + "\ne1,p,2024-01-01,web,a\ne1,p,2024-01-01,web,a\ne2,p,2024-01-02,web,b\n")
    first = workspace.ingest(path)
    assert (first.accepted, first.duplicates, first.quarantined) == (2, 1, 0)
    second = workspace.ingest(path)
    assert (second.accepted, second.duplicates, second.quarantined) == (0, 3, 0)
    assert workspace.touchpoints.count().execute() == 2


def test_conflicting_duplicate_event_id_is_quarantined(workspace, write):
    workspace.ingest(write("a.csv", HEADER + "\ne1,p,2024-01-01,web,a\n"))
    result = workspace.ingest(write("b.csv", HEADER + "\ne1,p,2024-01-01,web,other\ne2,p,2024-01-01,web,b\ne2,p,2024-01-01,app,b\n"))
    assert (result.accepted, result.duplicates, result.quarantined) == (1, 0, 2)
    assert quarantine(workspace) == [
        (2, "event_id", "duplicate_event_id", "b.csv:2: column 'event_id': 'e1' is already used by a different touchpoint (in import 1); expected a unique id per touchpoint"),
        (4, "event_id", "duplicate_event_id", "b.csv:4: column 'event_id': 'e2' is already used by a different touchpoint (earlier in this file); expected a unique id per touchpoint"),
    ]
    assert stored(workspace, "event_id", "touchpoint") == [("e1", "a"), ("e2", "b")]


def test_rows_without_event_id_get_a_content_hash_and_reimport_changes_nothing(workspace, write):
    path = write("h.csv", "person_id,timestamp,channel,touchpoint\np,2024-01-01,web,a\np,2024-01-01,web,b\np,2024-01-01,web,a\n")
    first = workspace.ingest(path)
    assert (first.accepted, first.duplicates) == (2, 1)
    ids = sorted(workspace.touchpoints.event_id.execute())
    assert all(i.startswith("h") and len(i) == 33 for i in ids)
    before = workspace.touchpoints.order_by("event_id").to_pyarrow()
    q_before = workspace.quarantine.count().execute()
    second = workspace.ingest(path)
    assert (second.accepted, second.duplicates) == (0, 3)
    assert workspace.touchpoints.order_by("event_id").to_pyarrow().equals(before)
    assert workspace.quarantine.count().execute() == q_before


def test_reimporting_a_file_with_bad_rows_adds_nothing_to_the_quarantine(workspace, write):
    path = write("q.csv", HEADER + "\ne1,p,never,web,a\ne2,p,2024-01-01,web,a\n")
    workspace.ingest(path)
    workspace.ingest(path)
    assert workspace.quarantine.count().execute() == 1
    assert workspace.touchpoints.count().execute() == 1


# -- mapping ------------------------------------------------------------------------------------


def test_column_mapping_and_constants(workspace, write):
    path = write("f.csv", "uid,event,when\nu1,open,2024-01-01T00:00:00Z\n")
    mapping = mapping_from_options(["person_id=uid,touchpoint=event", "timestamp=when"], ["channel=email"])
    result = workspace.ingest(path, mapping=mapping)
    assert result.accepted == 1
    assert stored(workspace, "person_id", "touchpoint", "channel") == [("u1", "open", "email")]


def test_mapping_file(workspace, write):
    mapping_file = write("m.yaml", "columns:\n  person_id: uid\n  touchpoint: event\n  timestamp: when\nconstants:\n  channel: app\ntimezone: Europe/Amsterdam\n")
    path = write("f.csv", "uid,event,when\nu1,open,2024-07-01 12:00\n")
    workspace.ingest(path, mapping=mapping_from_options(file=mapping_file))
    assert stored(workspace, "channel", "timestamp") == [("app", utc(2024, 7, 1, 10))]


def test_mapping_errors(write, workspace):
    with pytest.raises(ConfigError) as err:
        mapping_from_options(["tuochpoint=event"])
    assert str(err.value) == (
        "--map: unknown field 'tuochpoint'; expected one of event_id, person_id, anonymous_id, timestamp, channel, "
        "touchpoint, content_type, content_id, journey_type, revenue, currency, satisfaction, scale, properties"
    )
    with pytest.raises(ConfigError, match=r"--map 'touchpoint': expected FIELD=VALUE"):
        mapping_from_options(["touchpoint"])
    path = write("f.csv", "uid,event,when,channel\nu1,open,2024-01-01,web\n")
    with pytest.raises(UnusableInputError, match=r"--map touchpoint=evnt: the input has no column 'evnt'"):
        workspace.ingest(path, mapping=Mapping(columns={"person_id": "uid", "touchpoint": "evnt", "timestamp": "when"}))


# -- other sources ------------------------------------------------------------------------------


def frame():
    return pd.DataFrame(
        {
            "event_id": ["a", "b", "c"],
            "person_id": ["p1", "p2", None],
            "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 10:00", "2024-01-03 10:00"]),
            "channel": ["email", "web", "web"],
            "touchpoint": ["open", "visit", "visit"],
            "revenue": [None, 10.5, None],
        }
    )


def test_pandas_polars_and_arrow_tables(workspace):
    import polars as pl

    result = workspace.ingest(frame())
    assert (result.accepted, result.quarantined) == (2, 1)
    assert quarantine(workspace)[0] == (2, "person_id", "missing_person", "table: row 2: column 'person_id': is empty; expected a non-empty person id (or an anonymous_id)")
    assert workspace.ingest(pl.from_pandas(frame())).duplicates == 2
    assert workspace.ingest(pa.Table.from_pandas(frame())).duplicates == 2
    assert stored(workspace, "event_id", "revenue") == [("a", None), ("b", 10.5)]


def test_parquet_with_typed_columns(workspace, tmp_path):
    path = tmp_path / "t.parquet"
    table = pa.Table.from_pandas(frame().dropna(subset=["person_id"]))
    table = table.set_column(2, "timestamp", table.column("timestamp").cast(pa.timestamp("ms", tz="Europe/Amsterdam")))
    pq.write_table(table, path)
    result = workspace.ingest(path)
    assert result.accepted == 2
    assert stored(workspace, "timestamp") == [(utc(2024, 1, 1, 10),), (utc(2024, 1, 2, 10),)]


def test_imports_are_logged(workspace, write):
    workspace.ingest(write("a.csv", HEADER + "\ne1,p,2024-01-01,web,a\ne2,p,bad,web,a\n"))
    log = workspace.imports.to_pyarrow().to_pylist()
    assert len(log) == 1
    entry = log[0]
    assert (entry["import_id"], entry["kind"], entry["format"], entry["rows_read"], entry["accepted"], entry["quarantined"]) == (1, "touchpoints", "csv", 2, 1, 1)
    assert entry["source"].endswith("a.csv")


# -- persons ------------------------------------------------------------------------------------


def test_persons_upsert_with_new_columns(workspace, write):
    workspace.ingest_persons(write("p.csv", "person_id,persona,segment\np1,low,b2c\np2,high,b2b\n,low,b2c\n"))
    result = workspace.ingest_persons(write("p2.csv", "person_id,persona,country\np2,high,NL\np3,low,BE\n"))
    assert (result.accepted, result.quarantined) == (2, 0)
    rows = workspace.persons.order_by("person_id").select("person_id", "persona", "segment", "country").to_pyarrow().to_pylist()
    assert [tuple(r.values()) for r in rows] == [("p1", "low", "b2c", None), ("p2", "high", None, "NL"), ("p3", "low", None, "BE")]
    assert quarantine(workspace) == [(4, "person_id", "missing_value", "p.csv:4: column 'person_id': is empty; expected a non-empty person id")]
    again = workspace.ingest_persons(write("p2.csv", "person_id,persona,country\np2,high,NL\np3,low,BE\n"))
    assert (again.accepted, again.duplicates) == (0, 2)
