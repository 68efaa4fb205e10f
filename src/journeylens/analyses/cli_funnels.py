"""The ``funnel``, ``touchpoints`` and ``paths`` commands; ``cli.py`` adds them with :func:`register`.

Thin wrappers: each command builds a spec, calls the analysis's ``run`` and prints the result's table
(``--format table|csv|json``). The helpers of ``journeylens.cli`` are imported inside the functions, since
``cli.py`` imports this module.
"""

# no `from __future__ import annotations` here: Typer reads the commands' annotations at run time, and the
# workspace option of journeylens.cli is imported inside register(), where string annotations could not
# see it

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import pandas as pd

    from journeylens.analyses.base import Filters

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"]

FormatOpt = Annotated[str, typer.Option("--format", help="table, csv or json.")]
StartOpt = Annotated[
    datetime | None,
    typer.Option("--start", formats=DATE_FORMATS, help="Journeys starting on or after this date."),
]
EndOpt = Annotated[
    datetime | None, typer.Option("--end", formats=DATE_FORMATS, help="Journeys starting before this date.")
]
PersonaOpt = Annotated[list[str] | None, typer.Option("--persona", help="Only these personas (repeatable).")]
JourneyTypeOpt = Annotated[
    list[str] | None, typer.Option("--journey-type", help="Only these journey types (repeatable).")
]
ChannelOpt = Annotated[
    list[str] | None, typer.Option("--channel", help="Journeys that used one of these channels (repeatable).")
]
SegmentOpt = Annotated[
    list[str] | None,
    typer.Option("--segment", help="COLUMN=VALUE on the persons table (repeatable), e.g. segment=b2b."),
]
BreakdownOpt = Annotated[
    str | None,
    typer.Option(
        "--breakdown", help="persona, journey_type, involvement, first_channel, … or a persons column."
    ),
]


def _cli() -> Any:
    from journeylens import cli

    return cli


def _filters(
    start: datetime | None,
    end: datetime | None,
    persona: list[str] | None,
    journey_type: list[str] | None,
    channel: list[str] | None,
    segment: list[str] | None,
) -> "Filters":
    from pydantic import ValidationError

    from journeylens.analyses.base import Filters

    persons: dict[str, str] = {}
    for item in segment or []:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise _cli().fail(f"--segment {item!r}: expected COLUMN=VALUE, e.g. segment=b2b")
        persons[column.strip()] = value.strip()
    try:
        return Filters(
            start=start,
            end=end,
            personas=persona or None,
            journey_types=journey_type or None,
            channels=channel or None,
            persons=persons or None,
        )
    except ValidationError as exc:
        raise _cli().fail(str(exc.errors()[0]["msg"])) from None


def _spec(cls: type, **data: Any) -> Any:
    from journeylens.analyses.base import parse_spec

    return parse_spec(cls, data)


def _show(frame: "pd.DataFrame", fmt: str, title: str | None = None) -> None:
    _cli().print_frame(frame, fmt, title=title if fmt == "table" else None)


def _period(text: str) -> tuple[str, str]:
    start, sep, end = text.partition("..")
    if not sep or not start or not end:
        raise _cli().fail(f"--compare {text!r}: expected START..END, e.g. 2024-01-01..2024-07-01")
    return start, end


def register(app: typer.Typer) -> None:
    """Add the ``funnel``, ``touchpoints`` and ``paths`` commands to ``app``."""
    from journeylens.cli import DEFAULT_WS, WorkspaceOpt

    @app.command("funnel")
    def funnel(
        workspace: WorkspaceOpt = DEFAULT_WS,
        phases: Annotated[bool, typer.Option("--phases", help="The phase funnel of a phase model.")] = False,
        model: Annotated[
            str | None,
            typer.Option(
                "--model", "-m", help="Phase model (default: the one the workspace was built with)."
            ),
        ] = None,
        compare: Annotated[
            list[str] | None,
            typer.Option("--compare", help="Phase funnel: two periods START..END side by side (give twice)."),
        ] = None,
        steps: Annotated[
            str | None,
            typer.Option(
                "--steps",
                help="Event funnel: touchpoint names, comma-separated; a trailing ? marks an optional step.",
            ),
        ] = None,
        window: Annotated[
            str | None,
            typer.Option(
                "--window", help="Event funnel: conversion window from the first step, e.g. 7d, 12h."
            ),
        ] = None,
        by: Annotated[str, typer.Option("--by", help="Event funnel: person or journey.")] = "person",
        strict: Annotated[
            bool, typer.Option("--strict", help="Event funnel: each step must be the very next touchpoint.")
        ] = False,
        exclude: Annotated[
            list[str] | None,
            typer.Option(
                "--exclude",
                help="Event funnel: a touchpoint that disqualifies a path between steps (repeatable).",
            ),
        ] = None,
        dropped_off: Annotated[
            int | None,
            typer.Option(
                "--dropped-off",
                help="Event funnel: list the ids that reached this step (1-based) but not the next.",
            ),
        ] = None,
        breakdown: BreakdownOpt = None,
        start: StartOpt = None,
        end: EndOpt = None,
        persona: PersonaOpt = None,
        journey_type: JourneyTypeOpt = None,
        channel: ChannelOpt = None,
        segment: SegmentOpt = None,
        fmt: FormatOpt = "table",
    ) -> None:
        """A phase funnel (--phases) or an event funnel (--steps a,b,c): reached, conversion, drop-off, time."""
        from journeylens.analyses import funnel as F

        cli = _cli()
        cli.check_format(fmt)
        if phases == (steps is not None):
            raise cli.fail("expected either --phases or --steps a,b,c")
        with cli.user_errors():
            if phases:
                filters = _filters(start, end, persona, None, channel, segment)
                spec = _spec(
                    F.PhaseFunnelSpec,
                    model=model,
                    journey_types=journey_type or ["purchase"],
                    breakdown=breakdown,
                    compare_periods=[_period(p) for p in compare] if compare else None,
                    filters=filters,
                )
            else:
                names = [s.strip() for s in (steps or "").split(",") if s.strip()]
                step_specs = [
                    {"touchpoint": n[:-1], "optional": True} if n.endswith("?") else n for n in names
                ]
                spec = _spec(
                    F.FunnelSpec,
                    steps=step_specs,
                    window=window,
                    by=by,
                    order="strict" if strict else "loose",
                    exclusions=list(exclude or []),
                    breakdown=breakdown,
                    filters=_filters(start, end, persona, journey_type, channel, segment),
                )
            ws = cli.open_workspace(workspace, read_only=True)
            try:
                if dropped_off is not None:
                    if phases:
                        raise cli.fail("--dropped-off applies to an event funnel (--steps)")
                    import pandas as pd

                    ids = F.dropped_off(ws, spec, dropped_off)
                    _show(
                        pd.DataFrame({spec.by + "_id": ids}),
                        fmt,
                        f"{len(ids):,} reached step {dropped_off} but not step {dropped_off + 1}",
                    )
                    return
                result = F.run(ws, spec)
            finally:
                ws.close()
        if phases:
            title = f"phase funnel ({result.model}), {', '.join(spec.journey_types)} journeys; {spec.filters.describe()}"
        else:
            title = f"funnel per {spec.by} ({spec.order}{', window ' + spec.window if spec.window else ''}); {spec.filters.describe()}"
        _show(result.to_pandas(), fmt, title)
        if fmt == "table" and phases and result.comparison is not None:
            _show(result.comparison.to_pandas(), fmt, "periods side by side (a, b)")

    @app.command("touchpoints")
    def touchpoints(
        workspace: WorkspaceOpt = DEFAULT_WS,
        scope: Annotated[
            str,
            typer.Option(
                "--scope",
                help="person (all contacts from the first) or journey (position in the converting journey).",
            ),
        ] = "person",
        conversion_type: Annotated[
            str, typer.Option("--conversion-type", help="The journey type whose conversion is the purchase.")
        ] = "purchase",
        summary: Annotated[
            bool,
            typer.Option("--summary", help="With csv / json: print the summary instead of the distribution."),
        ] = False,
        breakdown: BreakdownOpt = None,
        start: StartOpt = None,
        end: EndOpt = None,
        persona: PersonaOpt = None,
        journey_type: JourneyTypeOpt = None,
        channel: ChannelOpt = None,
        segment: SegmentOpt = None,
        fmt: FormatOpt = "table",
    ) -> None:
        """At which contact the first purchase happens (beside the rule of thumb: 2% at 1st, 10% at 4th, mean 5-8)."""
        from journeylens.analyses import touchpoints as T

        cli = _cli()
        cli.check_format(fmt)
        with cli.user_errors():
            spec = _spec(
                T.TouchpointsSpec,
                scope=scope,
                journey_type=conversion_type,
                breakdown=breakdown,
                filters=_filters(start, end, persona, journey_type, channel, segment),
            )
            ws = cli.open_workspace(workspace, read_only=True)
            try:
                result = T.run(ws, spec)
            finally:
                ws.close()
        what = (
            "per person, from the first contact"
            if spec.scope == "person"
            else "within the converting journey"
        )
        if fmt == "table":
            _show(
                result.to_pandas(),
                fmt,
                f"contact number of the first purchase ({what}); {spec.filters.describe()}",
            )
            _show(
                result.summary.to_pandas(),
                fmt,
                "summary (reference: 2% at the 1st contact, 10% at the 4th, mean 5-8)",
            )
        else:
            _show((result.summary if summary else result.table).to_pandas(), fmt)

    @app.command("paths")
    def paths(
        workspace: WorkspaceOpt = DEFAULT_WS,
        level: Annotated[str, typer.Option("--level", help="touchpoint, channel or phase.")] = "touchpoint",
        model: Annotated[
            str | None,
            typer.Option("--model", "-m", help="Phase model at --level phase (default: the built one)."),
        ] = None,
        dfg: Annotated[bool, typer.Option("--dfg", help="The directly-follows graph.")] = False,
        transitions: Annotated[
            bool, typer.Option("--transitions", help="The transition matrix (moves back included).")
        ] = False,
        sankey_from: Annotated[
            str | None,
            typer.Option("--sankey-from", help="Sankey data of the --steps values after this one."),
        ] = None,
        sankey_to: Annotated[
            str | None,
            typer.Option("--sankey-to", help="Sankey data of the --steps values leading to this one."),
        ] = None,
        steps: Annotated[int, typer.Option("--steps", min=1, max=50, help="Sankey: how many steps.")] = 5,
        nodes: Annotated[
            bool,
            typer.Option("--nodes", help="Sankey with csv / json: print the nodes instead of the links."),
        ] = False,
        top: Annotated[int, typer.Option("--top", min=1, help="Variants: how many.")] = 20,
        collapse: Annotated[
            bool | None,
            typer.Option(
                "--collapse/--no-collapse",
                help="Count a run of equal values once (default: at the phase level).",
            ),
        ] = None,
        start: StartOpt = None,
        end: EndOpt = None,
        persona: PersonaOpt = None,
        journey_type: JourneyTypeOpt = None,
        channel: ChannelOpt = None,
        segment: SegmentOpt = None,
        fmt: FormatOpt = "table",
    ) -> None:
        """Path variants, the directly-follows graph (--dfg), Sankey data (--sankey-from/--sankey-to) or transitions."""
        from journeylens.analyses import paths as P

        cli = _cli()
        cli.check_format(fmt)
        with cli.user_errors():
            spec = _spec(
                P.PathsSpec,
                level=level,
                model=model,
                journey_types=journey_type or ["purchase"],
                collapse_repeats=collapse,
                top=top,
                dfg=dfg,
                transitions=transitions,
                sankey_from=sankey_from,
                sankey_to=sankey_to,
                steps=steps,
                filters=_filters(start, end, persona, None, channel, segment),
            )
            ws = cli.open_workspace(workspace, read_only=True)
            try:
                result = P.run(ws, spec)
            finally:
                ws.close()
        titles = {
            "variants": f"top {spec.top} of {result.extra.get('variants', 0):,} variants over {result.extra.get('journeys', 0):,} journeys",
            "dfg": "directly-follows graph",
            "transitions": "transitions",
            "sankey": f"Sankey links {'from' if spec.sankey_from else 'to'} {result.extra.get('anchor')}",
        }
        title = f"{titles[spec.view]} ({spec.level} level); {spec.filters.describe()}"
        if spec.view == "sankey" and (nodes or fmt == "table"):
            if fmt == "table":
                _show(result.to_pandas(), fmt, title)
            _show(result.nodes.to_pandas(), fmt, "Sankey nodes")
            return
        _show(result.to_pandas(), fmt, title)
