"""The command line, through Typer's CliRunner: exit codes and what the user reads."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from journeylens.cli import app

runner = CliRunner()
HEADER = "event_id,person_id,timestamp,channel,touchpoint"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_ingest_exit_codes(tmp_path, write):
    ws = tmp_path / "ws"
    good = write("good.csv", HEADER + "\ne1,p,2024-01-01,web,a\n")
    some_bad = write("bad.csv", HEADER + "\ne2,p,2024-01-01,web,a\ne3,p,nope,web,a\n")
    unusable = write("cols.csv", "a,b\n1,2\n")

    result = run("ingest", good, "-w", ws)
    assert result.exit_code == 0, result.output
    assert "good.csv (touchpoints): 1 accepted, 0 quarantined, 0 duplicates skipped" in result.output

    result = run("ingest", some_bad, "-w", ws)
    assert result.exit_code == 3
    assert "1 accepted, 1 quarantined" in result.output
    assert "bad.csv:3: column 'timestamp': 'nope' is not a date-time" in result.output

    result = run("ingest", unusable, "-w", ws)
    assert result.exit_code == 2
    assert "error: cols.csv: missing required column 'person_id'" in result.output
    assert "Traceback" not in result.output

    result = run("ingest", tmp_path / "missing.csv", "-w", ws)
    assert result.exit_code == 2 and "no such file" in result.output


def test_map_and_set_options(tmp_path, write):
    ws = tmp_path / "ws"
    path = write("f.csv", "uid,event,when\nu1,open,2024-01-01T00:00:00Z\n")
    result = run("ingest", path, "-w", ws, "--map", "person_id=uid,touchpoint=event,timestamp=when", "--set", "channel=email")
    assert result.exit_code == 0, result.output
    out = run("info", "-w", ws, "--format", "json")
    info = json.loads(out.output)
    assert info["tables"]["touchpoints"] == 1 and info["channels"] == 1
    assert info["first_timestamp"] == "2024-01-01T00:00:00+00:00"


def test_workspace_from_environment(tmp_path, write, monkeypatch):
    monkeypatch.setenv("JOURNEYLENS_WORKSPACE", str(tmp_path / "envws"))
    assert run("ingest", write("g.csv", HEADER + "\ne1,p,2024-01-01,web,a\n")).exit_code == 0
    assert (tmp_path / "envws" / "journeylens.duckdb").exists()


def test_quarantine_listing(tmp_path, write):
    ws = tmp_path / "ws"
    run("ingest", write("bad.csv", HEADER + "\ne1,,2024-01-01,web,a\ne2,p,x,web,a\n"), "-w", ws)
    result = run("quarantine", "-w", ws, "--format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [(r["line"], r["reason"]) for r in rows] == [(2, "missing_person"), (3, "bad_timestamp")]
    assert json.loads(rows[1]["raw"])["timestamp"] == "x"
    table = run("quarantine", "-w", ws, "--reason", "bad_timestamp")
    assert "quarantine: 1 rows" in table.output and "bad_timestamp" in table.output


def test_bad_option_values_are_one_line_errors(tmp_path, write):
    path = write("g.csv", HEADER + "\ne1,p,2024-01-01,web,a\n")
    result = run("ingest", path, "-w", tmp_path / "ws", "--map", "nonsense=uid")
    assert result.exit_code == 2
    assert "error: --map: unknown field 'nonsense'" in result.output
    result = run("ingest", path, "-w", tmp_path / "ws", "--timezone", "Mars/Olympus")
    assert result.exit_code == 2
    assert "time zone 'Mars/Olympus' is unknown" in result.output


def test_attribution_from_a_path_file(tmp_path, write):
    # one path "a > b" converting twice (value 10 each time) and one path "b" that never converts.
    # Linear: each conversion's 1 unit splits 0.5/0.5 over a and b -> a 1.0, b 1.0; value 10 and 10.
    paths = write("p.csv", 'path,conversions,value,nulls\n"a > b",2,20,0\nb,0,0,3\n')
    result = run("attribution", "--paths", paths, "--sep", ">", "--model", "linear", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["channel"]: (r["attributed_conversions"], r["attributed_value"]) for r in json.loads(result.output)}
    assert rows == {"a": (1.0, 10.0), "b": (1.0, 10.0)}


def test_attribution_markov_columns_and_missing_file(tmp_path, write):
    # order-1 chain: start->a 2/5, start->b 3/5, a->b 1, b->conversion 2/5 (2 of 5 visits), b->null 3/5.
    # P(conv) = 2/5*1*2/5 + 3/5*2/5 = 2/5.  Without a: start->a goes to null, P = 3/5*2/5 = 6/25,
    # removal effect 1 - (6/25)/(2/5) = 0.4.  Without b: P = 0, effect 1.  Credit 2 conversions 0.4:1 ->
    # a = 2*0.4/1.4 = 4/7, b = 10/7; value 20 split the same way: a 40/7, b 100/7.
    paths = write("p.csv", 'path,conversions,value,nulls\n"a > b",2,20,0\nb,0,0,3\n')
    result = run("attribution", "--paths", paths, "--model", "markov", "--format", "csv")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("channel,removal_effect,attributed_conversions,attributed_value")
    rows = [[float(x) for x in line.split(",")[1:4]] for line in lines[1:]]
    expected = [[0.4, 4 / 7, 40 / 7], [1.0, 10 / 7, 100 / 7]]
    assert [line.split(",")[0] for line in lines[1:]] == ["a", "b"]
    assert all(abs(x - y) < 1e-9 for row, exp in zip(rows, expected, strict=True) for x, y in zip(row, exp, strict=True))
    missing = run("attribution", "--paths", tmp_path / "none.csv")
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_a_command_that_runs_out_of_memory_says_what_to_do(tmp_path, monkeypatch):
    # any command, not only a build: DuckDB's out-of-memory error becomes one line and exit status 4 (as the
    # build's own OutOfResourcesError), and what to change
    import duckdb

    from journeylens import cli

    def oom(*args, **kwargs):
        raise duckdb.OutOfMemoryException(
            "Out of Memory Error: failed to allocate data of size 1.0 GiB (1.8 GiB/2.0 GiB used)\nPossible solutions: ..."
        )

    monkeypatch.setattr(cli, "open_workspace", oom)
    result = run("touchpoints", "-w", tmp_path / "ws")
    assert result.exit_code == 4
    assert "Traceback" not in result.output
    assert " ".join(result.output.split()) == (
        "error: journeylens ran out of memory (Out of Memory Error: failed to allocate data of size 1.0 GiB "
        "(1.8 GiB/2.0 GiB used)); nothing was changed. Close other programs, or set a lower memory_limit in "
        "the workspace's workspace.yaml (e.g. `memory_limit: 4GB`): DuckDB then spills to disk instead"
    )


def test_other_unexpected_errors_are_not_disguised_as_out_of_memory(tmp_path, monkeypatch):
    from journeylens import cli

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "open_workspace", broken)
    result = run("touchpoints", "-w", tmp_path / "ws")
    assert isinstance(result.exception, RuntimeError) and str(result.exception) == "a bug"


def test_build_says_what_an_incremental_build_rebuilt(tmp_path, write):
    # p's two visits and q's: a full build; then one more visit of p's, 60 days after his last one (more than
    # every timeout): only that touchpoint is rebuilt, the others keep their journeys
    ws = tmp_path / "ws"
    rows = "\ne1,p,2024-01-01,web,site_visit\ne2,p,2024-01-02,web,site_visit\ne3,q,2024-01-01,web,site_visit\n"
    first = write("first.csv", HEADER + rows)
    later = write("later.csv", HEADER + "\ne4,p,2024-03-02,web,site_visit\n")
    assert run("ingest", first, "-w", ws).exit_code == 0
    result = run("build", "-w", ws)
    assert result.exit_code == 0, result.output
    assert " ".join(result.output.split()).startswith(
        "built 2 journeys from 3 touchpoints with phase model five-phase (rebuilt everything)"
    )
    assert run("ingest", later, "-w", ws).exit_code == 0
    result = run("build", "-w", ws)
    assert result.exit_code == 0, result.output
    assert " ".join(result.output.split()).startswith(
        "built 3 journeys from 4 touchpoints with phase model five-phase (rebuilt 1 touchpoint of 1 person with "
        "new data)"
    )
