"""Content: which content serves which phase, whether it moves journeys on, and where it is out of place.

Usage::

    result = run(ws, ContentSpec())
    result.table        # per content type and phase: exposure, moving on (exposed vs not), lift, assists
    result.mismatch     # content seen in a phase other than the phase model intends it for

**Definitions** (on the journeys the filters keep; a touchpoint's phase is the one ``journey_touchpoints``
holds, carried forward within the journey):

- *exposed*: the journeys with a touchpoint of the content (type, or id with ``by="content_id"``) in phase P;
  ``touchpoints`` counts those touchpoints.
- *comparable*: the journeys that reached P (have a touchpoint in P; ``reached``). The *unexposed* are the
  journeys that reached P without that content in P. Comparing within the journeys that reached the same
  phase takes away the plain effect of getting that far; it is an association, not a causal effect.
- *moved on*: a journey that reached a later phase than P (its furthest phase index is greater than P's).
  ``moved_on_exposed`` = exposed journeys that moved on / exposed; ``moved_on_unexposed`` likewise for the
  unexposed; each with a Wilson interval. ``lift`` = the first over the second, with the MOVER-R interval
  built from the two Wilson intervals. Nothing moves on from the last phase: those rows have no lift.
- *assisted conversions*: converted journeys in which the content appeared in P before the conversion
  (its first such touchpoint has a position lower than the conversion's); ``assist_share`` = assisted /
  the converted journeys that reached P.
- ``too_thin``: fewer than ``min_n`` exposed or unexposed journeys.

**Mismatch**: per content type and phase, ``status`` is ``intended`` (the phase lists the type in its
``intended_content``), ``other_phase`` (another phase does), ``not_intended`` (no phase of the model does) or
``unassigned`` (the touchpoints have no phase). ``mismatch`` holds every row but the ``intended`` ones. The
phase model is ``model`` or, by default, the one the workspace was last built with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field

from journeylens.analyses import stats
from journeylens.analyses.base import Filters, Result, Spec, execute
from journeylens.errors import ConfigError, SpecError, WorkspaceError

if TYPE_CHECKING:
    from journeylens.journeys.models.phase_model import PhaseModel
    from journeylens.store import Workspace

UNASSIGNED = "(unassigned)"


class ContentSpec(Spec):
    """Content exposure, moving on to the next phase, assisted conversions, and misplaced content."""

    kind: ClassVar[str] = "content"

    by: Literal["content_type", "content_id"] = "content_type"
    model: str | None = Field(
        default=None,
        description="phase model (name or YAML path) whose intended_content is checked; default: the workspace's",
    )
    min_n: int = Field(
        default=30, ge=1, description="fewer exposed or unexposed journeys than this flag a row too_thin"
    )
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    filters: Filters = Filters()


class ContentResult(Result):
    def __init__(
        self, spec: ContentSpec, table: pa.Table, *, mismatch: pa.Table, phase_model: str, sql: str = ""
    ) -> None:
        super().__init__(spec, table, sql=sql, extra={"phase_model": phase_model})
        self.mismatch = mismatch
        self.phase_model = phase_model


def workspace_phase_model(ws: Workspace, model: str | None = None) -> PhaseModel:
    """``model`` (a built-in name or a YAML path), or the phase model the workspace was last built with."""
    from journeylens.journeys.build import last_build
    from journeylens.journeys.models.phase_model import load_phase_model

    if model is not None:
        return load_phase_model(model)
    built = last_build(ws)
    if built is None:
        raise WorkspaceError(f"workspace {ws.location}: no journeys built yet; run `journeylens build` first")
    try:
        return load_phase_model(built["phase_model"])
    except ConfigError:
        raise ConfigError(
            f"the workspace was built with phase model '{built['phase_model']}', which is not a built-in one; "
            "pass the path of its YAML file as the model",
            code="unknown_phase_model",
        ) from None


# -- in the engine ----------------------------------------------------------------------------------------


def _keys(spec: ContentSpec) -> list[str]:
    return ["content_type"] if spec.by == "content_type" else ["content_type", "content_id"]


def expr(ws: Workspace, spec: ContentSpec) -> ir.Table:
    """Per content and phase: touchpoints, exposed journeys, those that moved on, assisted conversions,
    and the phase's own totals (journeys that reached it, moved on, converted)."""
    keys = _keys(spec)
    j = spec.filters.journeys(ws).select("journey_id", "phase_reached", "purchase_contact_number")
    jp = ws.journey_phases.select("journey_id", "phase", "phase_index")
    jp = jp.join(j, "journey_id")
    reach = jp.group_by(["phase", "phase_index"]).aggregate(
        reached=jp.count(),
        moved_on=(jp.phase_reached > jp.phase_index).cast("int64").sum(),
        conversions=jp.purchase_contact_number.notnull().cast("int64").sum(),
    )
    t = spec.filters.touchpoints(ws)
    t = t.filter(t[spec.by].notnull() & t.phase.notnull())
    e = t.group_by(["journey_id", *keys, "phase", "phase_index"]).aggregate(
        touchpoints=t.count(), first_position=t.position.min()
    )
    e = e.join(j, "journey_id")
    assisted = e.purchase_contact_number.notnull() & (e.first_position < e.purchase_contact_number)
    exposure = e.group_by([*keys, "phase", "phase_index"]).aggregate(
        touchpoints=e.touchpoints.sum(),
        exposed=e.count(),
        exposed_moved_on=(e.phase_reached > e.phase_index).cast("int64").sum(),
        assisted_conversions=assisted.fill_null(False).cast("int64").sum(),
    )
    return exposure.join(reach, ["phase", "phase_index"])


def _placement_expr(ws: Workspace, spec: ContentSpec) -> ir.Table:
    t = spec.filters.touchpoints(ws)
    t = t.filter(t.content_type.notnull())
    return t.group_by(["content_type", "phase"]).aggregate(
        touchpoints=t.count(), journeys=t.journey_id.nunique()
    )


# -- in Python, on the aggregates -------------------------------------------------------------------------


def run(ws: Workspace, spec: ContentSpec) -> ContentResult:
    pm = workspace_phase_model(ws, spec.model)
    agg, sql = execute(expr(ws, spec))
    frame = agg.to_pandas()
    table = _lift_table(frame, spec, pm)
    placement = _placement_expr(ws, spec).to_pyarrow().to_pandas()
    _check_phases(placement, pm)
    mismatch = mismatch_table(placement, pm)
    return ContentResult(
        spec,
        pa.Table.from_pandas(table, preserve_index=False),
        mismatch=pa.Table.from_pandas(mismatch, preserve_index=False),
        phase_model=pm.name,
        sql=sql,
    )


def _check_phases(placement: pd.DataFrame, pm: PhaseModel) -> None:
    seen = sorted({p for p in placement["phase"] if isinstance(p, str)} - set(pm.phase_names))
    if seen:
        raise SpecError(
            f"content: model: phase model '{pm.name}' has the phases {', '.join(pm.phase_names)}, but the journeys "
            f"were built with phases it lacks ({', '.join(seen)}); rebuild with this model or leave model out",
            code="phase_model_mismatch",
        )


def _lift_table(frame: pd.DataFrame, spec: ContentSpec, pm: PhaseModel) -> pd.DataFrame:
    keys = _keys(spec)
    f = frame.copy()
    for c in (
        "touchpoints",
        "exposed",
        "exposed_moved_on",
        "assisted_conversions",
        "reached",
        "moved_on",
        "conversions",
    ):
        f[c] = f[c].fillna(0).astype("int64")
    f = f.sort_values([*keys, "phase_index"], kind="stable").reset_index(drop=True)
    last = f["phase_index"].to_numpy() >= len(pm.phase_names) - 1
    exposed, moved = f["exposed"].to_numpy(np.float64), f["exposed_moved_on"].to_numpy(np.float64)
    unexposed = f["reached"].to_numpy(np.float64) - exposed
    un_moved = f["moved_on"].to_numpy(np.float64) - moved
    conf = spec.confidence

    def masked(values: np.ndarray) -> np.ndarray:
        return np.where(last, np.nan, values)

    out = f[[*keys, "phase", "phase_index", "touchpoints", "reached", "exposed"]].copy()
    out["exposure_share"] = stats.share(exposed, f["reached"])
    out["unexposed"] = unexposed.astype("int64")
    out["moved_on_exposed"] = masked(stats.share(moved, exposed))
    low, high = stats.wilson(moved, exposed, conf)
    out["moved_on_exposed_low"], out["moved_on_exposed_high"] = masked(low), masked(high)
    out["moved_on_unexposed"] = masked(stats.share(un_moved, unexposed))
    low, high = stats.wilson(un_moved, unexposed, conf)
    out["moved_on_unexposed_low"], out["moved_on_unexposed_high"] = masked(low), masked(high)
    lift, low, high = stats.ratio_interval(moved, exposed, un_moved, unexposed, conf)
    out["lift"], out["lift_low"], out["lift_high"] = masked(lift), masked(low), masked(high)
    out["assisted_conversions"] = f["assisted_conversions"]
    out["conversions"] = f["conversions"]
    out["assist_share"] = stats.share(f["assisted_conversions"], f["conversions"])
    intended = {p.name: set(p.intended_content) for p in pm.phases}
    out["intended"] = [
        ct in intended.get(ph, set()) for ct, ph in zip(f["content_type"], f["phase"], strict=True)
    ]
    out["too_thin"] = (exposed < spec.min_n) | (unexposed < spec.min_n)
    return out


def mismatch_table(placement: pd.DataFrame, pm: PhaseModel) -> pd.DataFrame:
    """Content types seen in a phase the model does not intend them for (columns content_type, phase,
    touchpoints, journeys, status, intended_phases), most touchpoints first."""
    intended_in: dict[str, list[str]] = {}
    for p in pm.phases:
        for ct in p.intended_content:
            intended_in.setdefault(ct, []).append(p.name)
    rows = []
    for rec in placement.to_dict("records"):
        ct, phase = rec["content_type"], rec["phase"]
        phases = intended_in.get(ct, [])
        if phase is None or (isinstance(phase, float) and np.isnan(phase)):
            status, phase = "unassigned", UNASSIGNED
        elif phase in phases:
            status = "intended"
        elif phases:
            status = "other_phase"
        else:
            status = "not_intended"
        rows.append(
            {
                "content_type": ct,
                "phase": phase,
                "touchpoints": int(rec["touchpoints"]),
                "journeys": int(rec["journeys"]),
                "status": status,
                "intended_phases": ",".join(phases),
            }
        )
    out = pd.DataFrame(
        rows, columns=["content_type", "phase", "touchpoints", "journeys", "status", "intended_phases"]
    )
    out = out[out["status"] != "intended"]
    return out.sort_values(
        ["touchpoints", "content_type", "phase"], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)
