"""CLI commands ``report`` (the HTML report) and ``map`` (a journey map as PNG, PDF or HTML).

``register(app)`` adds them to a Typer app; ``journeylens.cli`` calls it. The helpers come from
``journeylens.cli_common`` (imported inside the functions, to keep importing this module cheap).
"""

# no `from __future__ import annotations`: Typer reads the annotations at run time
from pathlib import Path
from typing import Annotated, Any

import typer

from journeylens.cli_common import (
    ChannelOpt,
    EndOpt,
    JourneyTypeOpt,
    PersonaOpt,
    SegmentOpt,
    StartOpt,
    filters_data,
)

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Phase model (default: the one the workspace was built with)."),
]
PersonaFilterOpt = PersonaOpt


def _filters(data: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from journeylens.analyses.base import Filters
    from journeylens.errors import SpecError

    try:
        return Filters.model_validate(data)
    except ValidationError as exc:
        parts = [
            f"filters: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}; got {e.get('input')!r}"
            for e in exc.errors()
        ]
        raise SpecError("; ".join(parts)) from None


def register(app: typer.Typer) -> None:
    """Add the ``report`` and ``map`` commands to ``app``."""
    from journeylens.cli_common import DEFAULT_WS, WorkspaceOpt

    @app.command()
    def report(
        workspace: WorkspaceOpt = DEFAULT_WS,
        out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
            "report.html"
        ),
        model: ModelOpt = None,
        start: StartOpt = None,
        end: EndOpt = None,
        persona: PersonaFilterOpt = None,
        journey_type: JourneyTypeOpt = None,
        channel: ChannelOpt = None,
        segment: SegmentOpt = None,
    ) -> None:
        """One self-contained HTML file: the journey map and every analysis (opens without network access)."""
        from journeylens.cli_common import console, err_console, open_workspace, user_errors
        from journeylens.report import write_report

        with user_errors():
            filters = _filters(filters_data(start, end, persona, journey_type, channel, segment))
            ws = open_workspace(workspace, read_only=True)
            try:
                with err_console.status("running the analyses"):
                    path = write_report(ws, out, model=model, filters=filters)
            finally:
                ws.close()
        size = path.stat().st_size
        console.print(f"wrote {path} ({size / 1e6:.1f} MB)", highlight=False)

    @app.command("map")
    def map_(
        workspace: WorkspaceOpt = DEFAULT_WS,
        persona: Annotated[
            str | None, typer.Option("--persona", help="The persona to map (default: everyone).")
        ] = None,
        compare: Annotated[
            str | None, typer.Option("--compare", help="A second persona, side by side.")
        ] = None,
        journey_type: Annotated[
            str, typer.Option("--journey-type", help="The journey type to map.")
        ] = "purchase",
        out: Annotated[Path, typer.Option("--out", "-o", help="map.png, map.pdf or map.html.")] = Path(
            "map.png"
        ),
        model: ModelOpt = None,
        start: StartOpt = None,
        end: EndOpt = None,
        channel: ChannelOpt = None,
        segment: SegmentOpt = None,
    ) -> None:
        """A journey map (one persona, or two side by side) as PNG or PDF, through headless Chromium."""
        from journeylens.analyses.base import parse_spec
        from journeylens.analyses.journeymap import JourneyMapSpec, compare_results, run
        from journeylens.cli_common import console, open_workspace, user_errors
        from journeylens.report.export import FORMATS, ExportError, chromium_path, export_map

        with user_errors():
            if out.suffix.lower() not in FORMATS:
                raise ExportError(
                    f"--out {out}: unknown file type; expected one of {', '.join(FORMATS)}",
                    code="unknown_format",
                )
            if out.suffix.lower() != ".html":
                chromium_path()  # fail before the work when Chromium is missing
            filters = filters_data(start, end, None, None, channel, segment)
            base = {"model": model, "journey_type": journey_type, "filters": filters}
            spec = parse_spec(JourneyMapSpec, {**base, "persona": persona})
            ws = open_workspace(workspace, read_only=True)
            try:
                item: Any = run(ws, spec)
                if compare is not None:
                    other = run(ws, parse_spec(JourneyMapSpec, {**base, "persona": compare}))
                    item = compare_results(item, other)
            finally:
                ws.close()
            path = export_map(item, out)
        console.print(f"wrote {path}", highlight=False)
