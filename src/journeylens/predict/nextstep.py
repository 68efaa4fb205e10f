"""What comes next in a journey: the next phase and the next touchpoints, with probabilities.

From the journeys' own transition statistics (counted in the engine, small tables in Python):

- *next touchpoint*: for every touchpoint of a journey, the touchpoint that follows it, or
  ``(journey ends)`` when it was the last one;
- *next phase*: for every touchpoint, the phase of the next stretch of the journey in another phase, or
  ``(journey ends)`` when the journey never leaves the current phase again. (Moving back to an earlier
  phase counts: that is where such journeys go.)

Both are conditioned on the journey type, the current phase and the last touchpoint; where that state
was seen fewer than ``min_n`` times, on the journey type and the current phase only (``basis`` says
which). The journeys still open at the data's end have no known continuation of their last touchpoint or
last phase stretch: those rows are left out, not counted as endings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import pandas as pd

if TYPE_CHECKING:
    from journeylens.store import Workspace

ENDS = "(journey ends)"
UNASSIGNED = "(unassigned)"


@dataclass
class Transitions:
    """Counts of what followed each state: ``touchpoints`` and ``phases`` have the columns
    journey_type, phase, touchpoint, next, n."""

    touchpoints: pd.DataFrame
    phases: pd.DataFrame
    min_n: int = 30

    def _dist(
        self, table: pd.DataFrame, journey_type: str, phase: str | None, touchpoint: str | None
    ) -> tuple[list[tuple[str, float]], str]:
        """What followed the state, most likely first (ties by name), and what it rests on."""
        phase = phase or UNASSIGNED
        t = table[(table["journey_type"] == journey_type) & (table["phase"] == phase)]
        exact = t[t["touchpoint"] == touchpoint]
        if exact["n"].sum() >= self.min_n:
            counts = exact.groupby("next")["n"].sum()
            basis = f"{int(counts.sum()):,} times {touchpoint} in {phase} ({journey_type} journeys)"
        else:
            counts = t.groupby("next")["n"].sum()
            basis = f"{int(counts.sum()):,} touchpoints in {phase} ({journey_type} journeys)"
        if counts.empty:
            return [], "no journey was seen in this state"
        total = float(counts.sum())
        return sorted(
            ((str(k), float(v) / total) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0])
        ), basis

    def next_phase(
        self, journey_type: str, phase: str | None, touchpoint: str | None
    ) -> tuple[str | None, float | None, str]:
        """(most likely next phase, its probability, what the estimate rests on)."""
        probs, basis = self._dist(self.phases, journey_type, phase, touchpoint)
        if not probs:
            return None, None, basis
        return probs[0][0], probs[0][1], basis

    def next_touchpoints(
        self, journey_type: str, phase: str | None, touchpoint: str | None, k: int = 3
    ) -> list[dict[str, float | str]]:
        """The ``k`` most likely next touchpoints with their probabilities."""
        probs, _ = self._dist(self.touchpoints, journey_type, phase, touchpoint)
        return [{"touchpoint": name, "probability": round(p, 4)} for name, p in probs[:k]]


def transitions(ws: Workspace, *, min_n: int = 30) -> Transitions:
    """Count, in the engine, what followed each (journey type, phase, touchpoint)."""
    jt = ws.journey_touchpoints
    status = ws.journeys.select("journey_id", _open=ws.journeys.status == "open")
    t = jt.select(
        "journey_id",
        "journey_type",
        "timestamp",
        "event_id",
        "touchpoint",
        phase=jt.phase.fill_null(UNASSIGNED),
    ).join(status, "journey_id")
    w = ibis.window(group_by=t.journey_id, order_by=[t.timestamp, t.event_id])
    t = t.mutate(
        _next_tp=t.touchpoint.lead().over(w),
        _changed=(t.phase != t.phase.lag().over(w)).fill_null(True).cast("int64"),
    )
    run = ibis.window(group_by=t.journey_id, order_by=[t.timestamp, t.event_id], preceding=None, following=0)
    t = t.mutate(_stretch=t._changed.sum().over(run))
    stretches = t.group_by(["journey_id", "_stretch"]).aggregate(_phase=t.phase.max())
    sw = ibis.window(group_by=stretches.journey_id, order_by=stretches._stretch)
    stretches = stretches.mutate(_next_phase=stretches._phase.lead().over(sw)).drop("_phase")
    t = t.join(stretches, ["journey_id", "_stretch"])

    keys = ["journey_type", "phase", "touchpoint"]
    tp = t.filter(t._next_tp.notnull() | ~t._open)
    tp = tp.group_by([*keys, tp._next_tp.fill_null(ENDS).name("next")]).aggregate(n=ibis._.count())
    ph = t.filter(t._next_phase.notnull() | ~t._open)
    ph = ph.group_by([*keys, ph._next_phase.fill_null(ENDS).name("next")]).aggregate(n=ibis._.count())
    return Transitions(touchpoints=tp.to_pandas(), phases=ph.to_pandas(), min_n=min_n)
