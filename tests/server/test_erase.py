"""GDPR erasure: nothing of the person is left in any table, and nobody else loses anything."""

from __future__ import annotations

import re
import shutil

import pyarrow as pa
import pytest
import typer
from server_helpers import app_client, rows, touch
from typer.testing import CliRunner

from journeylens.cli_server import register
from journeylens.erase import erase_person, erasures_of
from journeylens.store import Workspace

PERSON = "zeta-person-7"
DEVICES = ("zeta-dev-a", "zeta-dev-b")
# someone whose id contains the person's id, and others: none of them may lose a row
OTHERS = ("zeta-person-70", "omega-1", "omega-dev")

CSV = """event_id,person_id,anonymous_id,timestamp,channel,touchpoint
z1,,zeta-dev-a,2024-03-01T09:00:00Z,display,ad_click
z2,,zeta-dev-a,2024-03-01T09:05:00Z,website,site_visit
z3,zeta-person-7,zeta-dev-a,2024-03-01T09:10:00Z,website,login
z4,zeta-person-7,zeta-dev-b,2024-03-02T10:00:00Z,app,product_view
z5,zeta-person-7,,2024-03-03T10:00:00Z,website,purchase
z6,,zeta-dev-b,2024-03-04T10:00:00Z,app,manual_view
o1,zeta-person-70,,2024-03-01T09:00:00Z,email,newsletter_open
o2,omega-1,omega-dev,2024-03-01T09:00:00Z,website,site_visit
o3,,omega-dev,2024-03-02T09:00:00Z,website,product_view
q1,zeta-person-7,,not a time,website,visit
q2,omega-1,,not a time,website,visit
q3,,zeta-dev-b,2024-03-05T10:00:00Z,,visit
q4,zeta-person-70,,still not a time,website,visit
q5,zeta-person-7,x,y,z,w,v,u
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The workspace every test starts from: touchpoints, quarantined rows, persons, built journeys."""
    folder = tmp_path_factory.mktemp("erase")
    events = folder / "events.csv"
    events.write_text(CSV, encoding="utf-8")
    with Workspace(folder / "ws") as ws:
        result = ws.ingest(events)
        assert (result.accepted, result.quarantined) == (9, 5)
        ws.ingest_persons(
            pa.table({"person_id": [PERSON, "omega-1", "zeta-person-70"], "persona": ["a", "b", "c"]})
        )
        ws.build()
    return folder / "ws"


@pytest.fixture
def built(template, ws_dir):
    shutil.copytree(template, ws_dir)
    return ws_dir


def mentions(ws, values):
    """(table, column, rows) for every text column of every table and view holding one of ``values``
    as a whole token (so that zeta-person-70 does not count as zeta-person-7)."""
    con = ws.con.con
    pattern = r"(^|[^\w-])(" + "|".join(re.escape(v) for v in values) + r")($|[^\w-])"
    found = []
    columns = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND data_type = 'VARCHAR' ORDER BY table_name, column_name"
    ).fetchall()
    assert {t for t, _ in columns} >= {
        "touchpoints",
        "persons",
        "quarantine",
        "identities",
        "journey_touchpoints",
        "journeys",
    }
    for table, column in columns:
        quoted_t, quoted_c = '"' + table.replace('"', '""') + '"', '"' + column.replace('"', '""') + '"'
        (n,) = con.execute(
            f"SELECT count(*) FROM {quoted_t} WHERE regexp_matches({quoted_c}, ?)", [pattern]
        ).fetchone()
        if n:
            found.append((table, column, n))
    return found


def rows_of(ws, values):
    """Rows per table and view that mention one of ``values`` (as mentions() finds them)."""
    counts: dict[str, int] = {}
    for table, _, n in mentions(ws, values):
        counts[table] = max(counts.get(table, 0), n)
    return counts


def test_nothing_of_the_person_remains(built):
    ws_dir = built
    with Workspace(ws_dir) as ws:
        assert {t for t, _, _ in mentions(ws, [PERSON, *DEVICES])} >= {
            "touchpoints",
            "persons",
            "quarantine",
            "identities",
            "journey_touchpoints",
            "journeys_base",
            "journey_phases",
            "journeys",
        }
        others_before = {o: rows_of(ws, [o]) for o in OTHERS}
        report = erase_person(ws, PERSON)
        assert report.anonymous_ids == 2
        assert report.tables["touchpoints"] == 6  # z1..z6: their own rows and their devices' anonymous rows
        assert (
            report.tables["quarantine"] == 3
        )  # q1 (person_id), q3 (a device, in the raw row), q5 (only in the raw line)
        assert report.tables["persons"] == 1
        assert mentions(ws, [PERSON, *DEVICES]) == []
        assert {o: rows_of(ws, [o]) for o in OTHERS} == others_before

        (logged,) = ws.con.con.execute("SELECT * FROM erasures").fetchall()
        assert not any(PERSON in str(value) for value in logged)
        assert len(erasures_of(ws, PERSON)) == 1 and erasures_of(ws, "omega-1") == []
    wal = ws_dir / "journeylens.duckdb.wal"
    assert not wal.exists() or PERSON.encode() not in wal.read_bytes()


def test_the_scratch_of_a_build_killed_half_way_goes_too(built):
    # a sliced build writes the touchpoints as Parquet beside the database and removes them when it ends;
    # a process killed in between (kill -9, power loss) leaves them, with the person in them
    stale = built / ".build-slices-k1ll3d" / "_jl_slice=0"
    stale.mkdir(parents=True)
    (stale / "data_0.parquet").write_bytes(f"...{PERSON}...".encode())
    with Workspace(built) as ws:
        erase_person(ws, PERSON)
    assert not (built / ".build-slices-k1ll3d").exists()
    assert (built / "journeylens.duckdb").exists()


def test_the_id_is_never_sql(built):
    ws_dir = built
    with Workspace(ws_dir) as ws:
        before = ws.con.con.execute("SELECT count(*) FROM touchpoints").fetchone()
        for hostile in ("x' OR '1'='1", "%", "zeta%", "'; DROP TABLE touchpoints; --", "\\"):
            report = erase_person(ws, hostile)
            assert report.rows == 0, hostile
        assert ws.con.con.execute("SELECT count(*) FROM touchpoints").fetchone() == before


def test_an_erased_workspace_still_builds(built):
    ws_dir = built
    with Workspace(ws_dir) as ws:
        erase_person(ws, PERSON)
        ws.build(full=True)
        assert mentions(ws, [PERSON, *DEVICES]) == []


def test_delete_over_http(built, keys):
    ws_dir = built
    with app_client(ws_dir) as client:
        assert client.get(f"/v1/persons/{PERSON}", headers=keys.header("read")).status_code == 200
        answer = client.delete(f"/v1/persons/{PERSON}", headers=keys.header("admin"))
        assert answer.status_code == 200
        body = answer.json()
        assert (
            body["tables"]["touchpoints"] == 6
            and body["anonymous_ids"] == 2
            and body["rows"] == sum(body["tables"].values())
        )
        assert client.get(f"/v1/persons/{PERSON}", headers=keys.header("read")).status_code == 404
        # new data of someone else is still taken, and the person's erased events are not resurrected by a build
        client.post(
            "/v1/touchpoints", json={"batch": [touch("n1", "omega-1")]}, headers=keys.header("ingest")
        )
        assert client.get("/v1/persons/omega-1", headers=keys.header("read")).status_code == 200
    with Workspace(ws_dir) as ws:
        assert mentions(ws, [PERSON, *DEVICES]) == []


def test_cli_erase(built):
    ws_dir = built
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    declined = runner.invoke(app, ["erase", PERSON, "-w", str(ws_dir)], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert rows(ws_dir, "SELECT count(*) FROM touchpoints WHERE person_id = ?", [PERSON]) == [(3,)]
    (others,) = rows(ws_dir, "SELECT count(*) FROM journeys WHERE person_id <> ?", [PERSON])
    db = ws_dir / "journeylens.duckdb"
    leftovers = re.compile(rb"zeta-person-7(?!0)|zeta-dev-a|zeta-dev-b")
    assert leftovers.search(db.read_bytes())
    done = runner.invoke(app, ["erase", PERSON, "-w", str(ws_dir), "--yes"])
    assert done.exit_code == 0, done.output
    assert (
        "erased" in done.output
        and "2 anonymous ids" in done.output
        and "rewrote the database file" in done.output
    )
    # DuckDB keeps deleted bytes in free blocks; the rewrite leaves none in the file
    assert leftovers.search(db.read_bytes()) is None
    with Workspace(ws_dir) as ws:
        assert (
            ws.con.con.execute("SELECT count(*) FROM journeys").fetchone() == others
        )  # the view survives the rewrite
    compacted = runner.invoke(app, ["erase", "--compact-only", "-w", str(ws_dir)])
    assert compacted.exit_code == 0 and "rewrote" in compacted.output
    again = runner.invoke(app, ["erase", PERSON, "-w", str(ws_dir), "--yes"])
    assert again.exit_code == 0 and "nothing of 'zeta-person-7' was stored" in again.output
    empty = runner.invoke(app, ["erase", "  ", "-w", str(ws_dir), "--yes"])
    assert empty.exit_code == 2 and "the person id is empty" in empty.output


@pytest.mark.parametrize("person", ["omega-1", "zeta-person-70"])
def test_erasing_someone_else_leaves_the_person(built, person):
    ws_dir = built
    with Workspace(ws_dir) as ws:
        before = rows_of(ws, [PERSON, *DEVICES])
        erase_person(ws, person)
        assert rows_of(ws, [PERSON, *DEVICES]) == before
        assert mentions(ws, [person]) == []
