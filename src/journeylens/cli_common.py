"""What every command shares: consoles, the --workspace option, errors, progress bars, table output.

Kept apart from ``journeylens.cli`` (which registers the commands) so that command modules can import it
without an import cycle.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from journeylens.errors import JourneyLensError, out_of_memory_error

console = Console()
err_console = Console(stderr=True)

WorkspaceOpt = Annotated[
    Path,
    typer.Option(
        "--workspace",
        "-w",
        envvar="JOURNEYLENS_WORKSPACE",
        help="Workspace directory (created when missing).",
        show_default=True,
    ),
]
DEFAULT_WS = Path("journeylens-workspace")


FORMAT_CHOICES = ("table", "csv", "json")


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn journeylens's own errors, and running out of memory, into a one-line message and the error's exit
    code."""
    try:
        yield
    except JourneyLensError as exc:
        raise fail(exc.message, exc.exit_code) from None
    except Exception as exc:
        oom = out_of_memory_error(exc)
        if oom is None:
            raise
        raise fail(oom.message, oom.exit_code) from None


@dataclass
class EngineSettings:
    """The engine the commands of this run work on, as the global options chose it (``journeylens --engine``)."""

    engine: str = "duckdb"
    spark_master: str | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)
    spark_database: str = "journeylens"
    #: Parquet paths to load into the Spark database before the first workspace opens (then cleared)
    touchpoints: str | None = None
    persons: str | None = None

    def reset(self) -> None:
        """Back to DuckDB (after a command, so that a later one in the same process starts clean)."""
        self.__init__()  # type: ignore[misc]


engine_settings = EngineSettings()


def open_workspace(path: Path, **kwargs: Any) -> Any:
    """The workspace a command works on: the DuckDB directory ``path``, or the Spark database of ``--engine spark``."""
    if engine_settings.engine == "spark":
        return _open_spark_workspace(path)
    from journeylens.store import Workspace

    return Workspace(path, **kwargs)


def _open_spark_workspace(path: Path) -> Any:
    """The Spark database as a workspace; starts a session when none runs, loads --touchpoints / --persons once.

    A local session keeps its catalog under ``path/spark`` so that the next command finds what this one built.
    """
    from journeylens import spark

    settings = engine_settings
    session = spark.existing_session()
    if session is None:
        where = settings.spark_master or "local[*]"
        with err_console.status(f"starting Spark ({where}); this takes a few seconds"):
            session = spark.get_session(
                master=settings.spark_master, conf=settings.spark_conf, local_dir=Path(path) / "spark"
            )
    else:
        session = spark.get_session()
    con = spark.connect(session, settings.spark_database)
    if settings.touchpoints is not None:
        with err_console.status(f"loading touchpoints from {settings.touchpoints} into Spark"):
            result = spark.load_touchpoints(session, settings.touchpoints, database=settings.spark_database)
        settings.touchpoints = None
        _report_load(result)
    if settings.persons is not None:
        with err_console.status(f"loading persons from {settings.persons} into Spark"):
            result = spark.load_persons(session, settings.persons, database=settings.spark_database)
        settings.persons = None
        _report_load(result)
    return spark.attach(con)


def _report_load(result: Any) -> None:
    from journeylens.spark import REASONS

    err_console.print(
        f"[bold]{result.source}[/]: {result.stored:,} rows stored in Spark table {result.table} "
        f"({result.rows_read:,} read, {result.duplicates:,} exact duplicates stored once)",
        highlight=False,
        soft_wrap=True,
    )
    for reason, n in sorted(result.left_out.items()):
        err_console.print(
            f"  [yellow]left out[/] {n:,} rows {REASONS.get(reason, reason)} ({reason})", highlight=False, soft_wrap=True
        )
    if result.ignored_columns:
        err_console.print(f"  [dim]columns not in the contract, not stored: {', '.join(result.ignored_columns)}[/]", highlight=False)


@contextlib.contextmanager
def progress_bar(description: str, *, transient: bool = False) -> Iterator[Callable[[int, int | None], None]]:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def print_frame(frame: Any, fmt: str, *, title: str | None = None) -> None:
    """Print a pandas DataFrame as a Rich table, CSV or JSON records."""
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
        return
    if fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", force_ascii=False) + "\n")
        return
    table = Table(title=title, show_lines=False, header_style="bold")
    for column in frame.columns:
        numeric = frame[column].dtype.kind in "if"
        table.add_column(str(column), justify="right" if numeric else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    try:
        import pandas as pd

        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def check_format(fmt: str) -> str:
    if fmt not in FORMAT_CHOICES:
        raise fail(f"--format {fmt!r}: expected one of {', '.join(FORMAT_CHOICES)}")
    return fmt


# -- the filters every analysis command takes -----------------------------------------------------------

StartOpt = Annotated[str | None, typer.Option("--start", help="Journeys starting on or after this date (ISO 8601).")]
EndOpt = Annotated[str | None, typer.Option("--end", help="Journeys starting before this date (ISO 8601).")]
PersonaOpt = Annotated[list[str] | None, typer.Option("--persona", help="Only persons of this persona (repeatable).")]
JourneyTypeOpt = Annotated[list[str] | None, typer.Option("--journey-type", help="Only journeys of this type (repeatable).")]
ChannelOpt = Annotated[list[str] | None, typer.Option("--channel", help="Only journeys that used this channel (repeatable).")]
SegmentOpt = Annotated[
    list[str] | None,
    typer.Option("--segment", help="Only persons whose COLUMN equals VALUE, as COLUMN=VALUE (repeatable)."),
]


def filters_data(
    start: str | None,
    end: str | None,
    persona: list[str] | None,
    journey_type: list[str] | None,
    channel: list[str] | None,
    segment: list[str] | None,
) -> dict[str, Any]:
    """The ``Filters`` fields the filter options name (validated by ``parse_spec`` / ``Filters``)."""
    data: dict[str, Any] = {}
    for key, value in (
        ("start", start),
        ("end", end),
        ("personas", persona),
        ("journey_types", journey_type),
        ("channels", channel),
    ):
        if value:
            data[key] = value
    if segment:
        persons: dict[str, str] = {}
        for item in segment:
            column, sep, value = item.partition("=")
            if not sep or not column.strip():
                raise fail(f"--segment {item!r}: expected COLUMN=VALUE, e.g. segment=b2b")
            persons[column.strip()] = value.strip()
        data["persons"] = persons
    return data
