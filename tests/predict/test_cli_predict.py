"""journeylens predict: trains once, then reuses the saved model; table and JSON output."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from journeylens.cli import app
from journeylens.store import Workspace

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_predict_trains_saves_and_scores_every_open_journey(tmp_path):
    ws = tmp_path / "ws"
    assert run("demo", "-w", ws, "--persons", 1500, "--seed", 4).exit_code == 0
    first = run("predict", "-w", ws, "--top", 5)
    assert first.exit_code == 0, first.output
    assert "held-out period" in first.output and "baseline: rate of the current phase" in first.output
    assert "open journeys, by purchase propensity within 30 days" in first.output
    saved = json.loads((ws / "models" / "propensity.json").read_text())
    assert saved["settings"]["horizon_days"] == 30 and saved["period"]["test_first_cutoff"]

    # the second run scores with the saved model: the same trained_at, no training
    second = run("predict", "-w", ws, "--format", "json", "--top", 0)
    assert second.exit_code == 0, second.output
    rows = json.loads(second.output)
    assert json.loads((ws / "models" / "propensity.json").read_text())["trained_at"] == saved["trained_at"]
    with Workspace(ws, read_only=True) as w:
        j = w.journeys
        open_ids = set(j.filter(j.status == "open").journey_id.to_pandas())
    assert {r["journey_id"] for r in rows} == open_ids
    scores = [r["propensity"] for r in rows if r["journey_type"] == "purchase"]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)

    # a different horizon needs another model: trained, and said so
    other = run("predict", "-w", ws, "--horizon", 14, "--top", 1)
    assert other.exit_code == 0, other.output
    assert "training one for 14 days" in other.output
    assert json.loads((ws / "models" / "propensity.json").read_text())["settings"]["horizon_days"] == 14


def test_predict_needs_built_journeys(tmp_path):
    ws = tmp_path / "empty"
    Workspace(ws).close()
    result = run("predict", "-w", ws)
    assert result.exit_code == 2
    assert "run `journeylens build`" in result.output and "Traceback" not in result.output
