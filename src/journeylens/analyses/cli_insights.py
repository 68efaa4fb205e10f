"""CLI commands for the insight analyses: ``satisfaction``, ``loyalty``, ``content`` and ``personas``.

``register(app)`` adds them to a Typer app (``journeylens.cli`` calls it). Every command takes the
workspace, ``--format table|csv|json``, the common filters (``--start``, ``--end``, ``--persona``,
``--journey-type``, ``--channel``, ``--segment COLUMN=VALUE``), and ``--view`` to pick which of the
result's tables to print. The helpers of ``journeylens.cli`` are imported inside the functions, since that
module imports this one.
"""

# no `from __future__ import annotations` here: Typer reads the commands' annotations at run time, and the
# options of journeylens.cli are imported inside register(), where string annotations could not see them
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from journeylens.analyses.base import Result, Spec

FormatOpt = Annotated[str, typer.Option("--format", help="table, csv or json.")]
MinNOpt = Annotated[
    int | None,
    typer.Option("--min-n", help="Figures on fewer than this many are flagged too_thin (default 30)."),
]
ConfidenceOpt = Annotated[
    float | None, typer.Option("--confidence", help="Confidence level of the intervals (default 0.95).")
]

SATISFACTION_VIEWS = ("scores", "ranking", "curve", "attribution")
LOYALTY_VIEWS = ("summary", "cohorts", "retention", "cohort-summary", "advocacy", "clv")
CONTENT_VIEWS = ("lift", "mismatch")
PERSONAS_VIEWS = ("profiles", "crosstab", "selection")


def _filters(
    start: str | None,
    end: str | None,
    persona: list[str] | None,
    journey_type: list[str] | None,
    channel: list[str] | None,
    segment: list[str] | None,
) -> dict[str, Any]:
    return filters_data(start, end, persona, journey_type, channel, segment)


def _check_view(view: str, choices: tuple[str, ...]) -> str:
    from journeylens.cli import fail

    if view not in choices:
        raise fail(f"--view {view!r}: expected one of {', '.join(choices)}")
    return view


def _run(workspace: Path, spec_cls: "type[Spec]", data: dict[str, Any], runner: Any) -> "Result":
    """Validate the spec, open the workspace read-only and run the analysis; errors become messages."""
    from journeylens.analyses.base import parse_spec
    from journeylens.cli import open_workspace, user_errors

    with user_errors():
        spec = parse_spec(spec_cls, {k: v for k, v in data.items() if v is not None})
        ws = open_workspace(workspace, read_only=True)
        try:
            return runner(ws, spec)
        finally:
            ws.close()


def _common(min_n: int | None, confidence: float | None) -> dict[str, Any]:
    return {"min_n": min_n, "confidence": confidence}


def _title(name: str, result: "Result") -> str:
    filters = getattr(result.spec, "filters", None)
    return f"{name} ({filters.describe()})" if filters is not None else name


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:,.3g}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Add the ``satisfaction``, ``loyalty``, ``content`` and ``personas`` commands to ``app``."""
    from journeylens.cli import DEFAULT_WS, WorkspaceOpt

    @app.command()
    def satisfaction(
        workspace: WorkspaceOpt = DEFAULT_WS,
        by: Annotated[
            str, typer.Option("--by", "--breakdown", help="touchpoint, channel, phase or journey_type.")
        ] = "touchpoint",
        scale: Annotated[
            list[str] | None, typer.Option("--scale", help="csat, nps or ces (repeatable; default all).")
        ] = None,
        view: Annotated[
            str, typer.Option("--view", help="scores, ranking, curve (emotion curve) or attribution.")
        ] = "scores",
        min_n: MinNOpt = None,
        confidence: ConfidenceOpt = None,
        fmt: FormatOpt = "table",
        start: StartOpt = None,
        end: EndOpt = None,
        persona: PersonaOpt = None,
        journey_type: JourneyTypeOpt = None,
        channel: ChannelOpt = None,
        segment: SegmentOpt = None,
    ) -> None:
        """CSAT / NPS / CES per touchpoint, channel or phase, pain points and the emotion curve."""
        from journeylens.analyses.satisfaction import SatisfactionSpec, run
        from journeylens.cli import check_format, print_frame

        check_format(fmt)
        _check_view(view, SATISFACTION_VIEWS)
        data = {
            "by": by,
            "scales": scale,
            **_common(min_n, confidence),
            "filters": _filters(start, end, persona, journey_type, channel, segment),
        }
        result = _run(workspace, SatisfactionSpec, data, run)
        table = {
            "scores": result.table,
            "ranking": result.ranking,
            "curve": result.emotion_curve,
            "attribution": result.attribution,
        }[view]
        frame = table.to_pandas()
        if view in ("scores", "ranking") and fmt == "table":
            # on screen: the headline score with its interval; csv and json carry every column
            keep = ("score_low", "score_high")
            frame = frame.drop(
                columns=[c for c in frame.columns if c.endswith(("_low", "_high")) and c not in keep]
            )
        print_frame(frame, fmt, title=_title(f"satisfaction: {view}", result))

    @app.command()
    def loyalty(
        workspace: WorkspaceOpt = DEFAULT_WS,
        view: Annotated[
            str,
            typer.Option(
                "--view",
                help="summary, cohorts, retention (cohort x month grid), cohort-summary, advocacy or clv.",
            ),
        ] = "summary",
        purchase: Annotated[
            list[str] | None,
            typer.Option("--purchase", help="Touchpoints that are purchases (repeatable; default purchase)."),
        ] = None,
        referral: Annotated[
            list[str] | None,
            typer.Option("--referral", help="Touchpoints that are referrals (repeatable; default referral)."),
        ] = None,
        months: Annotated[
            int | None, typer.Option("--months", help="Follow each cohort this many months (default 12).")
        ] = None,
        min_n: MinNOpt = None,
        confidence: ConfidenceOpt = None,
        fmt: FormatOpt = "table",
        start: StartOpt = None,
        end: EndOpt = None,
        persona: PersonaOpt = None,
        journey_type: JourneyTypeOpt = None,
        channel: ChannelOpt = None,
        segment: SegmentOpt = None,
    ) -> None:
        """Repeat purchases, cohort retention, promoters and referrals, customer lifetime value."""
        from journeylens.analyses.loyalty import LoyaltySpec, run
        from journeylens.cli import check_format, print_frame

        check_format(fmt)
        _check_view(view, LOYALTY_VIEWS)
        data = {
            "purchase_touchpoints": purchase,
            "referral_touchpoints": referral,
            "max_months": months,
            **_common(min_n, confidence),
            "filters": _filters(start, end, persona, journey_type, channel, segment),
        }
        result = _run(workspace, LoyaltySpec, data, run)
        if view == "retention":
            cohorts = result.cohorts.to_pandas()
            frame = cohorts.pivot(index="cohort", columns="months_since", values="retention")
            frame.columns = [f"m{c}" for c in frame.columns]
            frame = frame.reset_index()
            sizes = cohorts.drop_duplicates("cohort").set_index("cohort")["customers"]
            frame.insert(1, "customers", frame["cohort"].map(sizes).astype("int64"))
        else:
            table = {
                "summary": result.table,
                "cohorts": result.cohorts,
                "cohort-summary": result.cohort_summary,
                "advocacy": result.advocacy,
                "clv": result.clv,
            }[view]
            frame = table.to_pandas()
        print_frame(frame, fmt, title=_title(f"loyalty: {view}", result))

    @app.command()
    def content(
        workspace: WorkspaceOpt = DEFAULT_WS,
        by: Annotated[
            str, typer.Option("--by", "--breakdown", help="content_type or content_id.")
        ] = "content_type",
        view: Annotated[
            str,
            typer.Option(
                "--view", help="lift (exposure, moving on, assists) or mismatch (content out of its phase)."
            ),
        ] = "lift",
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help="Phase model whose intended content is checked (default: the workspace's).",
            ),
        ] = None,
        min_n: MinNOpt = None,
        confidence: ConfidenceOpt = None,
        fmt: FormatOpt = "table",
        start: StartOpt = None,
        end: EndOpt = None,
        persona: PersonaOpt = None,
        journey_type: JourneyTypeOpt = None,
        channel: ChannelOpt = None,
        segment: SegmentOpt = None,
    ) -> None:
        """Content per phase: exposure, lift in moving on to the next phase, assisted conversions, mismatches."""
        from journeylens.analyses.content import ContentSpec, run
        from journeylens.cli import check_format, print_frame

        check_format(fmt)
        _check_view(view, CONTENT_VIEWS)
        data = {
            "by": by,
            "model": model,
            **_common(min_n, confidence),
            "filters": _filters(start, end, persona, journey_type, channel, segment),
        }
        result = _run(workspace, ContentSpec, data, run)
        table = result.table if view == "lift" else result.mismatch
        frame = table.to_pandas()
        if view == "lift" and fmt == "table":
            frame = frame.drop(
                columns=[
                    c for c in frame.columns if c.endswith(("_low", "_high")) and not c.startswith("lift")
                ]
            )
        print_frame(frame, fmt, title=_title(f"content: {view} (phase model {result.phase_model})", result))

    @app.command()
    def personas(
        workspace: WorkspaceOpt = DEFAULT_WS,
        k: Annotated[
            int | None,
            typer.Option("--k", help="Number of clusters (default: chosen by silhouette from 2 to 6)."),
        ] = None,
        seed: Annotated[
            int | None, typer.Option("--seed", help="Random seed of the k-means starts (default 0).")
        ] = None,
        view: Annotated[
            str,
            typer.Option(
                "--view",
                help="profiles, crosstab (against declared personas) or selection (silhouette per k).",
            ),
        ] = "profiles",
        fmt: FormatOpt = "table",
        start: StartOpt = None,
        end: EndOpt = None,
        persona: PersonaOpt = None,
        journey_type: JourneyTypeOpt = None,
        channel: ChannelOpt = None,
        segment: SegmentOpt = None,
    ) -> None:
        """Behavioural personas: persons clustered by their journeys, against the declared personas."""
        from journeylens.analyses.personas import PersonasSpec, run
        from journeylens.cli import check_format, console, print_frame

        check_format(fmt)
        _check_view(view, PERSONAS_VIEWS)
        data = {
            "k": k,
            "seed": seed,
            "filters": _filters(start, end, persona, journey_type, channel, segment),
        }
        result = _run(workspace, PersonasSpec, data, run)
        table = {"profiles": result.table, "crosstab": result.crosstab, "selection": result.selection}[view]
        frame = table.to_pandas()
        if view == "profiles" and fmt == "table":
            # one column per cluster reads better than one very wide row per cluster
            wide = frame.set_index("cluster").T
            frame = wide.apply(lambda col: col.map(_cell)).reset_index()
            frame.columns = ["feature", *[f"cluster {c}" for c in wide.columns]]
        print_frame(frame, fmt, title=_title(f"personas: {view}", result))
        if fmt == "table":
            console.print(
                f"k = {result.k}; against declared personas: adjusted Rand index {result.adjusted_rand:.3f}, "
                f"purity {result.purity:.3f}"
            )
