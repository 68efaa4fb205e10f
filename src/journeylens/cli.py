"""The command line: thin wrappers around the Python API (Typer + Rich)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from journeylens.cli_common import (  # noqa: F401 - re-exported for the command modules
    DEFAULT_WS,
    FORMAT_CHOICES,
    WorkspaceOpt,
    check_format,
    console,
    err_console,
    fail,
    open_workspace,
    print_frame,
    progress_bar,
    user_errors,
)

app = typer.Typer(
    name="journeylens",
    help="Customer-journey analytics: touchpoints to journeys, phases, funnels, attribution and journey maps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: commands that work on the DuckDB file only (quarantining import, the HTTP server, GDPR erase, API keys)
DUCKDB_ONLY = {
    "ingest": "load touchpoints from Parquet with --touchpoints PATH (and persons with --persons PATH)",
    "demo": "run `journeylens generate` and pass the files with --touchpoints / --persons",
    "serve": "the server needs the DuckDB workspace",
    "erase": "erase on the source data, then load it again with --touchpoints",
    "keys": "API keys belong to the server, which needs the DuckDB workspace",
}


@app.callback()
def engine_options(
    ctx: typer.Context,
    engine: Annotated[str, typer.Option("--engine", envvar="JOURNEYLENS_ENGINE", help="duckdb (the workspace's embedded file) or spark.")] = "duckdb",
    spark_master: Annotated[str | None, typer.Option("--spark-master", envvar="JOURNEYLENS_SPARK_MASTER", help="Spark master URL (default: spark-submit's, else local[*]).")] = None,
    spark_conf: Annotated[list[str] | None, typer.Option("--spark-conf", help="A Spark setting KEY=VALUE for the session journeylens starts (repeatable).")] = None,
    spark_database: Annotated[str, typer.Option("--spark-database", envvar="JOURNEYLENS_SPARK_DATABASE", help="The Spark database that holds the workspace's tables.")] = "journeylens",
    touchpoints: Annotated[str | None, typer.Option("--touchpoints", help="Spark: load touchpoints from this Parquet path, glob or URI first (replaces the database's).")] = None,
    persons: Annotated[str | None, typer.Option("--persons", help="Spark: load persons from this Parquet path, glob or URI first.")] = None,
) -> None:
    from journeylens.cli_common import engine_settings

    if engine not in ("duckdb", "spark"):
        raise fail(f"--engine {engine!r}: expected duckdb or spark")
    spark_given = [name for name, value in (("--spark-master", spark_master), ("--spark-conf", spark_conf), ("--touchpoints", touchpoints), ("--persons", persons)) if value]
    if engine == "duckdb" and spark_given:
        raise fail(f"{spark_given[0]} needs --engine spark (on DuckDB, import files with `journeylens ingest`)")
    if engine == "spark" and ctx.invoked_subcommand in DUCKDB_ONLY:
        raise fail(f"`journeylens {ctx.invoked_subcommand}` works on the DuckDB workspace only; on Spark, {DUCKDB_ONLY[ctx.invoked_subcommand]}")
    conf: dict[str, str] = {}
    for item in spark_conf or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise fail(f"--spark-conf {item!r}: expected KEY=VALUE, e.g. spark.executor.memory=4g")
        conf[key.strip()] = value.strip()
    engine_settings.engine = engine
    engine_settings.spark_master = spark_master
    engine_settings.spark_conf = conf
    engine_settings.spark_database = spark_database
    engine_settings.touchpoints = touchpoints
    engine_settings.persons = persons
    ctx.call_on_close(engine_settings.reset)


# -- generate -----------------------------------------------------------------------------------


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .parquet, .csv, .tsv or .jsonl.")] = Path("demo.parquet"),
    persons: Annotated[int, typer.Option("--persons", "-n", min=1, help="Number of persons.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
) -> None:
    """Generate realistic demo touchpoints (and a persons file beside them)."""
    from journeylens.demo import write_demo

    with user_errors(), progress_bar(f"generating {persons:,} persons") as update:
        files = write_demo(out, persons, seed=seed, progress=update)
    console.print(
        f"wrote {files.n_touchpoints:,} touchpoints to [bold]{files.touchpoints}[/] "
        f"and {files.n_persons:,} persons to [bold]{files.persons}[/]"
    )


# -- ingest -------------------------------------------------------------------------------------


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Files to import (CSV, TSV, Parquet, JSON Lines).", show_default=False)],
    workspace: WorkspaceOpt = DEFAULT_WS,
    format: Annotated[str | None, typer.Option("--format", "-f", help="csv, tsv, parquet, jsonl, ga4 (BigQuery export) or segment (default: by extension).")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="FIELD=COLUMN pairs, comma-separated: --map touchpoint=event,person_id=user_id")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="FIELD=VALUE constants: --set channel=web")] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="YAML mapping file (columns, constants, timezone).")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", "--tz", help="Zone of naive timestamps (default: the workspace's, UTC).")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", "-d", help="CSV delimiter (default: detected from the header).")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV / JSON Lines files.")] = "utf-8",
    persons: Annotated[bool, typer.Option("--persons", help="The files hold persons (person_id, persona, attributes).")] = False,
    show: Annotated[int, typer.Option(help="How many quarantine messages to print.")] = 10,
) -> None:
    """Import touchpoints (or persons) into the workspace.

    Exit status: 0 all rows accepted; 3 some rows quarantined (the rest is committed);
    2 unusable input (nothing written).
    """
    from journeylens.ingest import ingest as run_ingest
    from journeylens.ingest import mapping_from_options

    status = 0
    with user_errors():
        mapping_obj = mapping_from_options(map_, set_, mapping)
        ws = open_workspace(workspace)
        try:
            for file in files:
                with progress_bar(f"importing {file.name}", transient=True) as update:
                    result = run_ingest(
                        ws,
                        file,
                        format=format,
                        mapping=mapping_obj,
                        timezone=timezone,
                        delimiter=delimiter,
                        encoding=encoding,
                        kind="persons" if persons else "touchpoints",
                        progress=update,
                    )
                report_import(result, show)
                status = max(status, result.exit_code)
        finally:
            ws.close()
    raise typer.Exit(status)


def report_import(result: Any, show: int) -> None:
    rate = result.rows_read / result.seconds if result.seconds > 0 else 0.0
    console.print(
        f"[bold]{result.source}[/] ({result.kind}): {result.accepted:,} accepted, "
        f"{result.quarantined:,} quarantined, {result.duplicates:,} duplicates skipped "
        f"in {result.seconds:.1f}s ({rate:,.0f} rows/s) [dim]import {result.import_id}[/]",
        highlight=False,
    )
    for message in result.messages[:show]:
        err_console.print(f"  [yellow]quarantined[/] {message}", highlight=False, soft_wrap=True)
    if result.quarantined > show:
        err_console.print(f"  … {result.quarantined - show:,} more: `journeylens quarantine`", highlight=False)
    if result.ignored_columns:
        err_console.print(
            f"  [dim]columns not in the contract, not stored: {', '.join(result.ignored_columns)} (map them with --map)[/]",
            highlight=False,
        )


# -- quarantine ---------------------------------------------------------------------------------


@app.command()
def quarantine(
    workspace: WorkspaceOpt = DEFAULT_WS,
    limit: Annotated[int, typer.Option(help="Rows to show (0 = all).")] = 50,
    reason: Annotated[str | None, typer.Option(help="Only this reason code, e.g. bad_timestamp.")] = None,
    import_id: Annotated[int | None, typer.Option("--import", help="Only rows of this import.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """List quarantined rows with their reasons (and the raw row with --format json)."""
    check_format(fmt)
    with user_errors():
        ws = open_workspace(workspace)
        q = ws.quarantine
        if reason:
            q = q.filter(q.reason == reason)
        if import_id is not None:
            q = q.filter(q.import_id == import_id)
        total = int(q.count().execute())
        columns = ["import_id", "source", "line", "field", "reason", "message"] + (["raw"] if fmt != "table" else [])
        q = q.order_by(["import_id", "source", "line"]).select(*columns)
        frame = (q.limit(limit) if limit else q).to_pandas()
        ws.close()
    if fmt == "table":
        if total == 0:
            console.print("the quarantine is empty")
            return
        table = Table(title=f"quarantine: {total:,} rows", header_style="bold")
        for c in ("import", "where", "reason", "message"):
            table.add_column(c, overflow="fold")
        for row in frame.itertuples(index=False):
            table.add_row(str(row.import_id), f"{row.source}:{row.line}", row.reason, row.message)
        console.print(table)
        if limit and total > limit:
            console.print(f"… {total - limit:,} more (--limit 0 for all)")
    else:
        print_frame(frame, fmt)


# -- info ---------------------------------------------------------------------------------------


@app.command()
def info(workspace: WorkspaceOpt = DEFAULT_WS, fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table") -> None:
    """Tables, row counts and the data's date range."""
    with user_errors():
        ws = open_workspace(workspace)
        details = ws.info()
        imports = ws.imports.order_by("import_id").to_pandas()
        ws.close()
    if fmt == "json":
        payload = {
            "location": details.location,
            "engine": details.engine,
            "timezone": details.timezone,
            "tables": {t.name: t.rows for t in details.tables},
            "first_timestamp": details.first_timestamp.isoformat() if details.first_timestamp else None,
            "last_timestamp": details.last_timestamp.isoformat() if details.last_timestamp else None,
            "persons_with_touchpoints": details.persons_with_touchpoints,
            "channels": details.channels,
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    print_info(details, imports)


def print_info(details: Any, imports: Any) -> None:
    console.print(f"workspace [bold]{details.location}[/] ({details.engine}, naive timestamps read as {details.timezone})")
    table = Table(header_style="bold")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for t in details.tables:
        table.add_row(t.name, f"{t.rows:,}")
    console.print(table)
    if details.first_timestamp is not None:
        console.print(
            f"touchpoints from {details.first_timestamp:%Y-%m-%d %H:%M} to {details.last_timestamp:%Y-%m-%d %H:%M} UTC, "
            f"{details.persons_with_touchpoints:,} identified persons, {details.channels} channels"
        )
    if len(imports):
        last = imports.iloc[-1]
        console.print(
            f"{len(imports)} imports; last: {Path(str(last.source)).name} at {last.finished_at:%Y-%m-%d %H:%M} UTC "
            f"({int(last.accepted):,} accepted, {int(last.quarantined):,} quarantined, {int(last.duplicates):,} duplicates)"
        )


# -- phase models and journeys -------------------------------------------------------------------

models_app = typer.Typer(help="Phase models: list the built-in ones, show one, validate your own.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """The built-in phase models and their phases."""
    from journeylens.journeys.models.phase_model import list_phase_models

    table = Table(header_style="bold")
    table.add_column("model")
    table.add_column("phases")
    table.add_column("description", overflow="fold")
    for info in list_phase_models():
        table.add_row(info.name, " → ".join(info.phases), info.description)
    console.print(table)


@models_app.command("show")
def models_show(name: Annotated[str, typer.Argument(help="A built-in model name or a YAML file.")]) -> None:
    """A phase model's phases, questions, intended content and rules."""
    from journeylens.journeys.models.phase_model import load_phase_model

    with user_errors():
        model = load_phase_model(name)
    console.print(f"[bold]{model.name}[/]: {model.description}", highlight=False)
    for i, phase in enumerate(model.phases, start=1):
        console.print(f"\n[bold]{i}. {phase.title}[/] ({phase.name}) {phase.description}", highlight=False)
        if phase.questions:
            console.print("   questions: " + " / ".join(phase.questions), highlight=False)
        if phase.intended_content:
            console.print("   intended content: " + ", ".join(phase.intended_content), highlight=False)
        for rule in phase.rules:
            console.print("   rule: " + json.dumps(rule.model_dump(exclude_none=True, by_alias=True)), highlight=False)


@models_app.command("validate")
def models_validate(
    file: Annotated[Path, typer.Argument(help="A phase model YAML file.")],
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", envvar="JOURNEYLENS_WORKSPACE", help="Check the rules against this workspace's touchpoints.")] = None,
) -> None:
    """Check a phase model file: errors with file and line; with data, unmatched and overlapping rules."""
    from journeylens.journeys.models.phase_model import (
        coverage_report,
        parse_phase_model,
        validate_phase_model_file,
    )

    problems = validate_phase_model_file(file)
    if problems:
        for problem in problems:
            err_console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    model = parse_phase_model(file.read_text(encoding="utf-8"), str(file))
    console.print(f"{file}: valid phase model '{model.name}' with {len(model.phases)} phases: {' → '.join(model.phase_names)}")
    if workspace is not None and (workspace / "journeylens.duckdb").exists():
        with user_errors():
            ws = open_workspace(workspace, read_only=True)
            summary = touchpoint_summary(ws)
            ws.close()
        warnings = coverage_report(model, summary)
        for warning in warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
        if not warnings:
            console.print("every touchpoint in the workspace matches exactly one phase")


def touchpoint_summary(ws: Any) -> Any:
    t = ws.touchpoints
    return t.group_by(["touchpoint", "channel", "content_type"]).aggregate(count=t.count()).to_pandas()


@app.command()
def build(
    workspace: WorkspaceOpt = DEFAULT_WS,
    model: Annotated[str, typer.Option("--model", "-m", help="Phase model: a built-in name or a YAML file.")] = "five-phase",
    journey_model: Annotated[str | None, typer.Option("--journey-model", help="Journey model YAML (default: the built-in one).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild everything, not only the persons with new data.")] = False,
) -> None:
    """Turn touchpoints into journeys and phases (incremental after new imports).

    Exit status: 0 built; 4 out of memory or disk space (the workspace keeps its last build).
    """
    from journeylens.journeys import build as run_build
    from journeylens.journeys.models.phase_model import coverage_report, load_phase_model

    with user_errors():
        ws = open_workspace(workspace)
        try:
            with progress_bar("building journeys", transient=True) as update:
                result = run_build(ws, model=model, journey_model=journey_model, full=full, progress=update)
            warnings = coverage_report(load_phase_model(model), touchpoint_summary(ws))
            summary = journey_summary(ws)
        finally:
            ws.close()
    report_build(result, summary)
    for warning in warnings[:5]:
        err_console.print(f"  [yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if len(warnings) > 5:
        err_console.print(f"  … {len(warnings) - 5} more: `journeylens models validate FILE -w {workspace}`", highlight=False)


def journey_summary(ws: Any) -> Any:
    j = ws.table("journeys")
    return (
        j.group_by(["journey_type", "status"])
        .aggregate(journeys=j.count(), touchpoints=j.touchpoints.sum())
        .order_by(["journey_type", "status"])
        .to_pandas()
    )


def report_build(result: Any, summary: Any) -> None:
    if result.mode == "full":
        what = "rebuilt everything"
    else:
        touchpoints, persons = result.touchpoints_rebuilt, result.persons_rebuilt
        what = (
            f"rebuilt {touchpoints:,} touchpoint{'' if touchpoints == 1 else 's'} of {persons:,} "
            f"person{'' if persons == 1 else 's'} with new data"
        )
    console.print(
        f"built {result.journeys:,} journeys from {result.touchpoints:,} touchpoints with phase model "
        f"[bold]{result.phase_model}[/] ({what}) in {result.seconds:.1f}s",
        highlight=False,
    )
    pivot = summary.pivot_table(index="journey_type", columns="status", values="journeys", aggfunc="sum", fill_value=0)
    pivot = pivot.reset_index()
    pivot.columns = [str(c) for c in pivot.columns]
    print_frame(pivot, "table", title="journeys by type and status")


@app.command()
def journeys(
    workspace: WorkspaceOpt = DEFAULT_WS,
    person: Annotated[str | None, typer.Option("--person", "-p", help="Only this person's journeys, with their touchpoints.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """List journeys (the latest first), or one person's journeys and touchpoints."""
    check_format(fmt)
    with user_errors():
        ws = open_workspace(workspace, read_only=True)
        if not ws.has_table("journeys"):
            ws.close()
            raise fail(f"workspace {workspace}: no journeys yet; run `journeylens build -w {workspace}` first")
        j = ws.table("journeys")
        cols = ["journey_id", "persona", "journey_type", "status", "repeat", "start", "touchpoints", "purchase_contact_number", "revenue", "involvement", "last_phase"]
        if person:
            frame = j.filter(j.person_id == person).order_by("start").select(*cols).to_pandas()
            t = ws.table("journey_touchpoints")
            touches = t.filter(t.person_id == person).order_by(["timestamp", "event_id"]).select(
                "timestamp", "journey_id", "position", "channel", "touchpoint", "content_type", "phase"
            ).to_pandas()
        else:
            frame = j.order_by(ibis_desc("start")).select(*cols).limit(limit).to_pandas()
            touches = None
        ws.close()
    print_frame(frame, fmt, title=f"journeys of {person}" if person else None)
    if touches is not None and fmt == "table":
        print_frame(touches, fmt, title="touchpoints")


def ibis_desc(column: str) -> Any:
    import ibis

    return ibis.desc(column)


# -- attribution --------------------------------------------------------------------------------


@app.command()
def attribution(
    workspace: WorkspaceOpt = DEFAULT_WS,
    paths: Annotated[Path | None, typer.Option("--paths", help="An aggregated path file (CSV) instead of the workspace.")] = None,
    sep: Annotated[str, typer.Option("--sep", help="Separator between channels in --paths.")] = ">",
    path_col: Annotated[str, typer.Option("--path-column", help="Column of the paths in --paths.")] = "path",
    conv_col: Annotated[str, typer.Option("--conversions-column")] = "conversions",
    value_col: Annotated[str, typer.Option("--value-column")] = "value",
    null_col: Annotated[str, typer.Option("--nulls-column")] = "nulls",
    model: Annotated[str, typer.Option("--model", "-m", help="first_touch, last_touch, linear, time_decay, position_based, markov, shapley, or all.")] = "markov",
    order: Annotated[int | None, typer.Option("--order", help="Markov chain order (1-4).")] = None,
    key: Annotated[str, typer.Option("--key", help="Credit by channel, touchpoint, content_type or phase (workspace only).")] = "channel",
    target: Annotated[str, typer.Option("--target", help="conversions or value.")] = "conversions",
    lookback: Annotated[float | None, typer.Option("--lookback", help="Only touches within N days before the conversion (workspace).")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for confidence intervals (0 = none).")] = 0,
    journey_type: Annotated[list[str] | None, typer.Option("--journey-type", help="Journey types (default: purchase).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Which channels earn the conversions: one row per channel (all models side by side with --model all)."""
    check_format(fmt)
    from journeylens.attribution import MODELS, attribute, read_paths, read_touches
    from journeylens.attribution.base import Bootstrap

    with user_errors():
        if paths is not None:
            if not paths.exists():
                raise fail(f"{paths}: no such file")
            import pandas as pd

            table = read_paths(pd.read_csv(paths), sep=sep, path_col=path_col, conv_col=conv_col, value_col=value_col, null_col=null_col)
            source = f"{paths.name}"
        else:
            from journeylens.attribution import workspace as ws_attribution

            ws = open_workspace(workspace, read_only=True)
            try:
                touches = ws_attribution.touches(ws, key=key, journey_types=journey_type)
            finally:
                ws.close()
            table = read_touches(touches.to_pandas())
            source = f"workspace {workspace}, credit by {key}"
        names = list(MODELS) if model == "all" else [m.strip() for m in model.split(",")]
        if paths is not None and model == "all":
            names = [n for n in names if not MODELS[n].needs_timestamps]
        options: dict[str, Any] = {"target": target}
        if order is not None:
            options["order"] = order
        if lookback is not None:
            options["lookback_days"] = lookback
        if bootstrap:
            options["bootstrap"] = Bootstrap(n=bootstrap)
        frame = attribute(table, models=names, layout="long", **options)
    if len(names) == 1:
        frame = frame.drop(columns=["model"]).dropna(axis=1, how="all")
    first = [c for c in ("model", "channel", "removal_effect", "attributed_conversions", "attributed_value") if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    print_frame(frame, fmt, title=f"attribution ({', '.join(names)}; {source})")


# -- demo ---------------------------------------------------------------------------------------


@app.command()
def demo(
    workspace: WorkspaceOpt = Path("journeylens-demo"),
    persons: Annotated[int, typer.Option("--persons", "-n", min=1, help="Number of demo persons.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    keep: Annotated[bool, typer.Option(help="Keep an existing workspace instead of starting fresh.")] = False,
    model: Annotated[str, typer.Option("--model", "-m", help="Phase model for the journeys.")] = "five-phase",
) -> None:
    """The main job on the embedded engine: a fresh workspace, demo data imported, journeys built, a summary."""
    from journeylens.demo import write_demo
    from journeylens.ingest import ingest as run_ingest
    from journeylens.journeys import build as run_build
    from journeylens.report import write_report

    with user_errors():
        if workspace.exists() and not keep:
            if not (workspace / "journeylens.duckdb").exists() and any(workspace.iterdir()):
                raise fail(f"{workspace} exists and is not a journeylens workspace; choose another --workspace")
            shutil.rmtree(workspace)
        with tempfile.TemporaryDirectory(prefix="journeylens-demo-") as tmp:
            with progress_bar(f"generating {persons:,} demo persons", transient=True) as update:
                files = write_demo(Path(tmp) / "demo.parquet", persons, seed=seed, progress=update)
            ws = open_workspace(workspace)
            try:
                with progress_bar("importing touchpoints", transient=True) as update:
                    result = run_ingest(ws, files.touchpoints, progress=update)
                report_import(result, 5)
                result = run_ingest(ws, files.persons, kind="persons")
                report_import(result, 5)
                with progress_bar("building journeys", transient=True) as update:
                    built = run_build(ws, model=model, progress=update)
                summary = journey_summary(ws)
                details = ws.info()
                imports = ws.imports.order_by("import_id").to_pandas()
                with err_console.status("writing the report"):
                    report_path = write_report(ws, workspace / "report.html", model=model)
            finally:
                ws.close()
    print_info(details, imports)
    report_build(built, summary)
    console.print(f"\nreport: [bold]{report_path.resolve()}[/]")
    console.print(f"next: [bold]journeylens funnel --phases -w {workspace}[/], or open the report in a browser")


def _register_commands() -> None:
    """Commands defined beside their subject (analyses, server, report), added to the one app."""
    from journeylens import cli_predict, cli_report, cli_server
    from journeylens.analyses import cli_funnels, cli_insights

    for module in (cli_funnels, cli_insights, cli_server, cli_report, cli_predict):
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
