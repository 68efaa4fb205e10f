"""``journeylens predict``: propensity, next phase and next best content for every open journey.

``register(app)`` adds the command to the Typer app (``journeylens.cli`` calls it).
"""

# no `from __future__ import annotations`: Typer reads the annotations at run time
import json
from typing import Annotated, Any

import typer

from journeylens.cli_common import (
    DEFAULT_WS,
    WorkspaceOpt,
    console,
    err_console,
    fail,
    open_workspace,
    print_frame,
    user_errors,
)


def predict(
    workspace: WorkspaceOpt = DEFAULT_WS,
    train: Annotated[
        bool,
        typer.Option(
            "--train",
            help="Train the propensity model again (default: use the saved one, training it when there is none).",
        ),
    ] = False,
    horizon: Annotated[
        float, typer.Option("--horizon", min=1, help="Days after now within which a purchase counts.")
    ] = 30.0,
    top: Annotated[
        int, typer.Option("--top", min=0, help="Rows to print (the highest propensity first); 0: all.")
    ] = 20,
    journey_type: Annotated[
        str | None, typer.Option("--journey-type", help="Only open journeys of this type.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    metrics: Annotated[
        bool, typer.Option("--metrics/--no-metrics", help="Print the model's held-out evaluation.")
    ] = True,
) -> None:
    """Score every open journey: purchase propensity, next phase and touchpoints, next best content."""
    from journeylens import predict as P

    if fmt not in ("table", "csv", "json"):
        raise fail(f"--format {fmt!r}: expected table, csv or json")
    with user_errors():
        ws = open_workspace(workspace)
        try:
            model = None if train else _saved(ws, horizon)
            settings = P.TrainingSettings(horizon_days=horizon)
            if model is None:
                with err_console.status("training the propensity model") as status:
                    model = P.train(
                        ws,
                        settings,
                        save=ws.path is not None,
                        progress=lambda s: status.update(f"training: {s}"),
                    )
            with err_console.status("scoring the open journeys") as status:
                result = P.predict(ws, model, progress=status.update)
        finally:
            ws.close()
    if metrics and fmt == "table":
        print_metrics(model)
    frame = result.to_pandas()
    if journey_type is not None:
        frame = frame[frame["journey_type"] == journey_type]
    if top:
        frame = frame.head(top)
    if fmt == "table":
        frame = _readable(frame)
        title = f"open journeys, by purchase propensity within {model.settings.horizon_days:g} days"
    else:
        title = None
    print_frame(frame, fmt, title=title)


def _saved(ws: Any, horizon: float) -> Any:
    from journeylens import predict as P

    if ws.path is None:
        return None
    model = P.load(ws)
    if model is not None and model.settings.horizon_days != horizon:
        err_console.print(
            f"[dim]the saved model has a {model.settings.horizon_days:g}-day horizon; training one for {horizon:g} days[/]"
        )
        return None
    return model


def print_metrics(model: Any) -> None:
    from journeylens import predict as P

    m = model.metrics
    if model.source != "model":
        err_console.print(
            f"[yellow]propensity = the phase baseline:[/] {model.reason}", highlight=False, soft_wrap=True
        )
    console.print(P.describe(model), highlight=False, soft_wrap=True)
    rows = []
    for name in ("model", "baseline"):
        if m.get(name):
            rows.append(
                {
                    "scores": "gradient boosting (calibrated)"
                    if name == "model"
                    else "baseline: rate of the current phase",
                    **m[name],
                }
            )
    if rows:
        import pandas as pd

        print_frame(pd.DataFrame(rows), "table", title="held-out period")
    if m.get("importance"):
        top = ", ".join(f"{r['feature']} ({r['importance']:.3f})" for r in m["importance"][:6])
        console.print(f"relies most on: {top}", highlight=False, soft_wrap=True)
    console.print(
        f"trained {model.trained_at} on data from {model.period['data_first'][:10]} to {model.period['data_last'][:10]}",
        style="dim",
        highlight=False,
    )


def _readable(frame: Any) -> Any:
    """The table for people: short headings, probabilities as percentages, the top next step and content."""
    import pandas as pd

    def pct(value: Any) -> str:
        return "" if value is None or pd.isna(value) else f"{value:.0%}"

    def first_step(text: str | None) -> str:
        steps = json.loads(text or "[]")
        return f"{steps[0]['touchpoint']} {steps[0]['probability']:.0%}" if steps else ""

    def content(text: str | None) -> str:
        picks = json.loads(text or "[]")
        return ", ".join(f"{c['content_type']} ×{c['lift']:.2f}" for c in picks) or "-"

    return pd.DataFrame(
        {
            "person": frame["person_id"],
            "journey": frame["journey_type"],
            "phase": frame["current_phase"],
            "buys": [pct(v) for v in frame["propensity"]],
            "next phase": [
                f"{n} {pct(p)}" if n else "" for n, p in zip(frame["next_phase"], frame["next_phase_probability"], strict=True)
            ],
            "next touchpoint": [first_step(v) for v in frame["next_touchpoints"]],
            "content to show (lift)": [content(v) for v in frame["next_best_content"]],
        }
    )


def register(app: typer.Typer) -> None:
    app.command()(predict)


__all__ = ["register"]
