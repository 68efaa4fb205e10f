"""The performance suite: ``python -m benchmarks --sizes 1M,10M``.

For each size it generates demo data once (Parquet and CSV), then runs every stage in its own process,
recording wall time and the process's peak memory (``ru_maxrss`` from ``wait4``), beside DuckDB's own
floors on the same files measured in the same run: a scan of the Parquet file, a plain read of the CSV
file, ``ORDER BY person, timestamp, event_id`` into a temporary table, and DuckDB's own least journey split
(a journey number per touchpoint from two window functions, no rules; ``floor_split``, and
``floor_split_write`` into a database file). Results go to ``benchmarks/results/<timestamp>.json`` and a
Markdown table with ratios to the floors (the build's to the sort and to the written split).

The stages that write (ingest, build) include closing the workspace: DuckDB may defer its checkpoint (writing
the changed tables into the database file) to then, and a CLI run waits for it at exit. Before the sixth
session they did not, and missed 3 s of each 10M build.

The machines are noisy (runs differ by up to 2x): each stage runs ``--repeat`` times and the median is
reported.

``--memory-limit 2GB`` sets DuckDB's ``memory_limit`` in every stage: the journeylens stages open
``Workspace(..., memory_limit=...)`` and the floors run ``SET memory_limit`` on their own connection, so the
comparison stays fair. DuckDB then spills to disk: next to the database file (``<file>.tmp``) for workspaces,
in ``<data>/<size>/floor.tmp`` for the floors' in-memory databases. The limit bounds DuckDB's buffer manager
only; the reported peak is the process's real RSS (Python, Arrow and allocator overhead on top). The limit
is recorded in the JSON and above the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"

# average touchpoints per demo person, to turn an event count into a person count
EVENTS_PER_PERSON = 7.5


def parse_size(text: str) -> int:
    text = text.strip().upper()
    factor = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


# -- stages: each is a small script run in a fresh interpreter --------------------------------------------

STAGES: dict[str, str] = {
    "generate": """
        from journeylens.demo import write_demo
        files = write_demo(DIR / "events.parquet", PERSONS, seed=1)
        RESULT["events"] = files.n_touchpoints
    """,
    "write_csv": """
        duckdb = floor_connection()
        duckdb.sql(f"COPY (SELECT * FROM read_parquet('{DIR / 'events.parquet'}')) TO '{DIR / 'events.csv'}' (HEADER)")
    """,
    "split_1pct": """
        duckdb = floor_connection()
        src = DIR / "events.parquet"
        cut = duckdb.sql(f"SELECT quantile_disc(timestamp, 0.99) FROM read_parquet('{src}')").fetchone()[0]
        duckdb.sql(f"COPY (SELECT * FROM read_parquet('{src}') WHERE timestamp < TIMESTAMPTZ '{cut}') TO '{DIR / 'base99.parquet'}'")
        duckdb.sql(f"COPY (SELECT * FROM read_parquet('{src}') WHERE timestamp >= TIMESTAMPTZ '{cut}') TO '{DIR / 'new01.parquet'}'")
    """,
    "floor_scan_parquet": """
        duckdb = floor_connection()
        duckdb.sql(f"SELECT count(person_id), count(timestamp), count(channel), count(touchpoint), count(event_id) FROM read_parquet('{DIR / 'events.parquet'}')").fetchall()
    """,
    "floor_load_parquet": """
        in_floor_database(f"CREATE TABLE t AS SELECT * FROM read_parquet('{DIR / 'events.parquet'}')")
    """,
    "floor_read_csv": """
        con = floor_connection()
        con.sql(f"CREATE TEMP TABLE t AS SELECT * FROM read_csv('{DIR / 'events.csv'}')")
    """,
    "floor_sort": """
        con = floor_connection()
        con.sql(f"CREATE TEMP TABLE s AS SELECT * FROM read_parquet('{DIR / 'events.parquet'}') ORDER BY person_id, timestamp, event_id")
    """,
    # DuckDB's own least journey split: a journey number per touchpoint (a new journey after more than 30 days
    # of inactivity, per person, ordered by timestamp and event_id), with none of the model's rules, stitching,
    # journeys or phases. Two window functions over narrow rows, joined back to every touchpoint column by
    # event_id (SPLIT_SQL; the same two windows over the wide rows took 43 s against this form's 38 s at 10M).
    # Into a temporary table, and into a table of a database file (what `journey_touchpoints` holds).
    "floor_split": """
        con = floor_connection()
        con.sql(SPLIT_SQL.format(table="TEMP TABLE s", source=DIR / "events.parquet"))
    """,
    "floor_split_write": """
        in_floor_database(SPLIT_SQL.format(table="TABLE s", source=DIR / "events.parquet"))
    """,
    "ingest_parquet": """
        import shutil
        from journeylens.store import Workspace
        shutil.rmtree(DIR / "ws-parquet", ignore_errors=True)
        ws = Workspace(DIR / "ws-parquet", memory_limit=MEMORY_LIMIT)
        r = ws.ingest(DIR / "events.parquet")
        ws.close()
        RESULT["events"] = r.accepted
    """,
    "ingest_csv": """
        import shutil
        from journeylens.store import Workspace
        shutil.rmtree(DIR / "ws-csv", ignore_errors=True)
        ws = Workspace(DIR / "ws-csv", memory_limit=MEMORY_LIMIT)
        r = ws.ingest(DIR / "events.csv")
        ws.close()
        RESULT["events"] = r.accepted
    """,
    "build": """
        from journeylens.store import Workspace
        ws = Workspace(DIR / "ws-parquet", memory_limit=MEMORY_LIMIT)
        r = ws.build(full=True)
        ws.close()
        RESULT["events"] = r.touchpoints
        RESULT["journeys"] = r.journeys
    """,
    "prepare_incremental": """
        import shutil
        from journeylens.store import Workspace
        shutil.rmtree(DIR / "ws-inc", ignore_errors=True)
        ws = Workspace(DIR / "ws-inc", memory_limit=MEMORY_LIMIT)
        ws.ingest(DIR / "base99.parquet")
        ws.build(full=True)
        ws.ingest(DIR / "new01.parquet")
        ws.close()
        shutil.copytree(DIR / "ws-inc", DIR / "ws-inc-ready", dirs_exist_ok=True)
    """,
    "build_incremental_1pct": """
        import shutil
        from journeylens.store import Workspace
        shutil.rmtree(DIR / "ws-inc", ignore_errors=True)
        shutil.copytree(DIR / "ws-inc-ready", DIR / "ws-inc")
        # the copy's 1.5 GB (at 10M) sit in the page cache until written back: without this, the build's
        # first fsync (its commit) would pay for writing the harness's copy to disk (0.3 s at 10M)
        os.sync()
        t0 = time.perf_counter()
        ws = Workspace(DIR / "ws-inc", memory_limit=MEMORY_LIMIT)
        r = ws.build()
        ws.close()
        assert r.mode == "incremental", r
        RESULT["persons_rebuilt"] = r.persons_rebuilt
        RESULT["touchpoints_rebuilt"] = r.touchpoints_rebuilt
        RESULT["events"] = r.touchpoints
    """,
    # analyses on the built workspace (each in its own process, read-only)
    "analysis_phase_funnel": """
        from journeylens.store import Workspace
        from journeylens.analyses import funnel
        ws = Workspace(DIR / "ws-parquet", read_only=True, memory_limit=MEMORY_LIMIT)
        funnel.run(ws, funnel.PhaseFunnelSpec())
    """,
    "analysis_funnel_5_steps": """
        from journeylens.store import Workspace
        from journeylens.analyses import funnel
        ws = Workspace(DIR / "ws-parquet", read_only=True, memory_limit=MEMORY_LIMIT)
        funnel.run(ws, funnel.FunnelSpec(steps=["site_visit", "product_view", "add_to_cart", "checkout", "purchase"], window="14d"))
    """,
    "analysis_dfg": """
        from journeylens.store import Workspace
        from journeylens.analyses import paths
        ws = Workspace(DIR / "ws-parquet", read_only=True, memory_limit=MEMORY_LIMIT)
        paths.run(ws, paths.PathsSpec(level="touchpoint", dfg=True))
    """,
    "analysis_step_matrix": """
        from journeylens.store import Workspace
        from journeylens.analyses import paths
        ws = Workspace(DIR / "ws-parquet", read_only=True, memory_limit=MEMORY_LIMIT)
        paths.run(ws, paths.PathsSpec(level="touchpoint", transitions=True))
    """,
    "analysis_touchpoints": """
        from journeylens.store import Workspace
        from journeylens.analyses import touchpoints
        ws = Workspace(DIR / "ws-parquet", read_only=True, memory_limit=MEMORY_LIMIT)
        touchpoints.run(ws, touchpoints.TouchpointsSpec())
    """,
    "attribution_markov_workspace": """
        from journeylens.store import Workspace
        from journeylens.attribution import Markov, read_paths
        from journeylens.attribution.workspace import paths
        ws = Workspace(DIR / "ws-parquet", read_only=True, memory_limit=MEMORY_LIMIT)
        Markov(order=1).fit(read_paths(paths(ws).to_pandas(), sep=">"))
    """,
}
SETUP_STAGES = {"generate", "write_csv", "split_1pct", "prepare_incremental"}
DEFAULT_STAGES = [
    "floor_scan_parquet",
    "floor_load_parquet",
    "floor_read_csv",
    "floor_sort",
    "floor_split",
    "floor_split_write",
    "ingest_parquet",
    "ingest_csv",
    "build",
    "build_incremental_1pct",
    "analysis_phase_funnel",
    "analysis_funnel_5_steps",
    "analysis_dfg",
    "analysis_step_matrix",
    "analysis_touchpoints",
    "attribution_markov_workspace",
]
RATIOS = {
    "ingest_parquet": ("floor_load_parquet",),
    "ingest_csv": ("floor_read_csv",),
    "floor_split": ("floor_sort",),
    "floor_split_write": ("floor_sort",),
    "build": ("floor_sort", "floor_split_write"),
    "build_incremental_1pct": ("build",),
    **{name: ("floor_sort",) for name in (
        "analysis_phase_funnel", "analysis_funnel_5_steps", "analysis_dfg", "analysis_step_matrix",
        "analysis_touchpoints", "attribution_markov_workspace",
    )},
}


SPLIT_SQL = """
CREATE {table} AS
WITH numbered AS (
    SELECT event_id,
           sum(_new) OVER (PARTITION BY person_id ORDER BY timestamp, event_id ROWS UNBOUNDED PRECEDING) AS journey_number
    FROM (
        SELECT event_id, person_id, timestamp,
               coalesce(timestamp - lag(timestamp) OVER (PARTITION BY person_id ORDER BY timestamp, event_id)
                        > INTERVAL 30 DAY, TRUE)::INTEGER AS _new
        FROM read_parquet('{source}')
    )
)
SELECT touchpoints.*, numbered.journey_number
FROM read_parquet('{source}') AS touchpoints JOIN numbered USING (event_id)
"""

# Prepended to every stage script (after DIR, PERSONS, MEMORY_LIMIT): a DuckDB connection for the floors with
# the same memory limit as the workspace stages, spilling into DIR/floor.tmp (an in-memory database would spill
# into ./.tmp of whatever directory the suite was started from), one for the floors that write a database
# file, and SPLIT_SQL.
FLOOR_CONNECTION = """
def floor_connection(database=None):
    import duckdb
    con = duckdb.connect(str(database) if database is not None else ":memory:")
    if database is None:
        con.execute(f"SET temp_directory = '{DIR / 'floor.tmp'}'")
    if MEMORY_LIMIT:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    return con


def in_floor_database(sql):
    # sql on a fresh database file (a floor that writes to disk, as a workspace does), then removed
    path = DIR / "floor.duckdb"
    path.unlink(missing_ok=True)
    con = floor_connection(path)
    con.sql(sql)
    con.close()
    path.unlink()
""" + f"SPLIT_SQL = {SPLIT_SQL!r}\n"

MEMORY_LIMIT_RE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|[KMGT]i?B)\s*$", re.IGNORECASE)


def memory_limit_arg(text: str) -> str:
    """``--memory-limit``: a size DuckDB understands, e.g. ``2GB``, ``1500MB``, ``4GiB``."""
    if not MEMORY_LIMIT_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a size such as 2GB, 1500MB or 4GiB")
    return text.strip().replace(" ", "")


class StageFailed(Exception):
    pass


def run_stage(name: str, directory: Path, persons: int, memory_limit: str | None = None) -> dict[str, float]:
    body = textwrap.dedent(STAGES[name])
    script = (
        "import json, os, sys, time\nfrom pathlib import Path\n"
        f"DIR = Path({str(directory)!r})\nPERSONS = {persons}\nMEMORY_LIMIT = {memory_limit!r}\nRESULT = {{}}\n"
        + FLOOR_CONNECTION
        + "t0 = time.perf_counter()\n"
        + body
        + "\nRESULT['seconds'] = time.perf_counter() - t0\nprint('RESULT ' + json.dumps(RESULT))\n"
    )
    os.sync()  # no stage pays, at its first fsync, for writing back what an earlier one left in the page cache
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    shutil.rmtree(directory / "floor.tmp", ignore_errors=True)
    peak_mb = usage.ru_maxrss / 1024
    if proc.returncode != 0:
        raise StageFailed(f"stage {name} failed with exit code {proc.returncode} (peak {peak_mb:,.0f} MB)")
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["peak_mb"] = peak_mb
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1M", help="event counts, e.g. 1M,10M")
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES), help="comma-separated stages")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage (the median is reported)")
    parser.add_argument(
        "--memory-limit",
        type=memory_limit_arg,
        default=None,
        help="DuckDB memory_limit for every stage, e.g. 2GB (default: DuckDB's own, 80%% of RAM)",
    )
    args = parser.parse_args(argv)
    limit = args.memory_limit
    stages = [s for s in args.stages.split(",") if s]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise SystemExit(f"unknown stage {unknown[0]!r}; expected some of {', '.join(STAGES)}")

    report: dict[str, dict[str, dict[str, float]]] = {}
    try:
        run_sizes(args, stages, limit, report)
    except StageFailed as exc:
        write_report(report, limit, args.repeat)
        raise SystemExit(f"{exc}; stages completed before it, if any, are in the report above") from None
    write_report(report, limit, args.repeat)


def run_sizes(args: argparse.Namespace, stages: list[str], limit: str | None, report: dict[str, dict[str, dict[str, float]]]) -> None:
    for size in [parse_size(s) for s in args.sizes.split(",")]:
        directory = DATA / label(size)
        directory.mkdir(parents=True, exist_ok=True)
        persons = max(1, int(size / EVENTS_PER_PERSON))
        rows: dict[str, dict[str, float]] = {}
        if not (directory / "events.parquet").exists():
            rows["generate"] = run_stage("generate", directory, persons, limit)
            print(f"[{label(size)}] generated {rows['generate']['events']:,} events in {rows['generate']['seconds']:.1f}s", flush=True)
        if any(s in stages for s in ("floor_read_csv", "ingest_csv")) and not (directory / "events.csv").exists():
            run_stage("write_csv", directory, persons, limit)
        if "build_incremental_1pct" in stages:
            if not (directory / "new01.parquet").exists():
                run_stage("split_1pct", directory, persons, limit)
            run_stage("prepare_incremental", directory, persons, limit)
        report[label(size)] = rows
        for stage in stages:
            runs = [run_stage(stage, directory, persons, limit) for _ in range(args.repeat)]
            median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows[stage] = median
            print(f"[{label(size)}] {stage}: {median['seconds']:.2f}s, peak {median['peak_mb']:,.0f} MB", flush=True)


def write_report(report: dict[str, dict[str, dict[str, float]]], memory_limit: str | None, repeat: int) -> None:
    if not any(report.values()):
        return
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    settings = {"memory_limit": memory_limit, "repeat": repeat, "cpus": os.cpu_count()}
    (RESULTS / f"{stamp}.json").write_text(json.dumps({"settings": settings, "sizes": report}, indent=2))
    table = markdown(report, memory_limit)
    (RESULTS / f"{stamp}.md").write_text(table)
    print()
    print(table)


def markdown(report: dict[str, dict[str, dict[str, float]]], memory_limit: str | None = None) -> str:
    lines = [f"DuckDB memory_limit: {memory_limit or 'default (80% of RAM)'}", "", "| size | stage | seconds (median) | events/s | peak MB | ratio | to |", "|---|---|---:|---:|---:|---:|---|"]
    for size, rows in report.items():
        for stage, r in rows.items():
            rate = f"{r['events'] / r['seconds']:,.0f}" if r.get("events") else ""
            bases = [b for b in RATIOS.get(stage, ()) if b in rows]
            ratio = "; ".join(f"{r['seconds'] / rows[b]['seconds']:.2f}" for b in bases)
            lines.append(f"| {size} | {stage} | {r['seconds']:.2f} | {rate} | {r['peak_mb']:,.0f} | {ratio} | {'; '.join(bases)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    time.sleep(0)
    main()
