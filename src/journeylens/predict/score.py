"""Scoring every open journey: propensity, next phase and touchpoints, next best content.

:func:`predict` puts the three together for the journeys open at the data's end and (by default) stores
them in the workspace's ``predictions`` table, which the server's ``GET /v1/persons/{id}`` reads, so that a
website can ask while rendering a page. ``propensity`` is only given for journeys of the model's journey
type (purchase); the other open journeys (complaints, service, ...) get their next steps and content.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd
import pyarrow as pa

from journeylens.predict import features as F
from journeylens.predict import nextstep, recommend
from journeylens.predict import propensity as P

if TYPE_CHECKING:
    from collections.abc import Callable

    from journeylens.store import Workspace

TABLE = "predictions"
SCHEMA = pa.schema(
    [
        ("journey_id", pa.string()),
        ("person_id", pa.string()),
        ("journey_type", pa.string()),
        ("persona", pa.string()),
        ("current_phase", pa.string()),
        ("last_touchpoint", pa.string()),
        ("propensity", pa.float64()),
        ("propensity_source", pa.string()),
        ("next_phase", pa.string()),
        ("next_phase_probability", pa.float64()),
        ("next_phase_basis", pa.string()),
        ("next_touchpoints", pa.string()),  # JSON list of {touchpoint, probability}
        ("next_best_content", pa.string()),  # JSON list of {content_type, lift, ..., why}
        ("scored_at", pa.timestamp("us", tz="UTC")),
        ("data_end", pa.timestamp("us", tz="UTC")),
    ]
)


class Predictions:
    """The open journeys' predictions (``table``: Arrow, one row per open journey) and the model behind them."""

    def __init__(self, table: pa.Table, model: P.PropensityModel) -> None:
        self.table = table
        self.model = model

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts, the JSON columns decoded."""
        return [decode(row) for row in self.table.to_pylist()]

    def __repr__(self) -> str:
        return f"Predictions(rows={self.table.num_rows}, propensity={self.model.source})"


def decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    for key in ("next_touchpoints", "next_best_content"):
        row[key] = json.loads(row[key]) if row.get(key) else []
    return row


def _open_journeys(ws: Workspace) -> pd.DataFrame:
    """Each open journey with its last touchpoint and the phase it is in."""
    j = ws.journeys
    j = j.filter(j.status == "open").select("journey_id", "person_id", "journey_type", "persona")
    t = ws.journey_touchpoints.semi_join(j, "journey_id")
    w = ibis.window(group_by=t.journey_id, order_by=[ibis.desc(t.timestamp), ibis.desc(t.event_id)])
    t = t.mutate(_r=ibis.row_number().over(w))
    last = t.filter(t._r == 0).select("journey_id", current_phase=t.phase, last_touchpoint=t.touchpoint)
    frame = j.join(last, "journey_id").to_pandas()
    return frame.sort_values("journey_id", kind="stable").reset_index(drop=True)


def predict(
    ws: Workspace,
    model: P.PropensityModel | None = None,
    *,
    train: bool = False,
    save: bool = True,
    top: int = 3,
    min_n: int = 30,
    progress: Callable[[str], None] | None = None,
) -> Predictions:
    """Predictions for every open journey.

    ``model``: a trained :class:`~journeylens.predict.propensity.PropensityModel`; by default the one saved
    in the workspace, trained (and saved) first when there is none or ``train`` is true. ``save`` stores the
    result as the workspace's ``predictions`` table. ``min_n``: the least number of journeys behind a
    transition or a content lift (fewer: a broader basis, or no recommendation)."""
    say = progress or (lambda _text: None)
    if model is None and not train:
        model = P.load(ws) if ws.path is not None else None
    if model is None:
        model = P.train(ws, save=save, progress=say)

    _, data_end = F.data_period(ws)
    say("scoring the open journeys")
    frame = _open_journeys(ws)
    cutoff = data_end.replace(microsecond=0) + timedelta(seconds=1)
    kind = model.settings.journey_type
    snap = F.snapshots(ws, [cutoff], model.vocabulary, journey_type=kind)
    propensity = dict(zip(snap["journey_id"], model.predict(snap), strict=True))
    frame["propensity"] = [
        propensity.get(j) if t == kind else None
        for j, t in zip(frame["journey_id"], frame["journey_type"], strict=True)
    ]
    frame["propensity_source"] = [model.source if t == kind else None for t in frame["journey_type"]]

    say("next steps and content")
    steps = nextstep.transitions(ws, min_n=min_n)
    personas = frame["persona"].dropna().unique().tolist()
    ev = recommend.evidence(
        ws, frame["journey_type"].unique().tolist(), personas, by_persona=[kind], min_n=min_n
    )
    seen = recommend.seen_content(ws, frame["person_id"].tolist())
    picks_by_state: dict[tuple[str, str | None, str | None], list[dict[str, Any]]] = {}
    nxt, nxt_p, basis, tps, content = [], [], [], [], []
    steps_by_state: dict[tuple[str, str | None, str | None], tuple[Any, ...]] = {}
    for row in frame.itertuples(index=False):
        where = (row.journey_type, row.current_phase, row.last_touchpoint)
        if where not in steps_by_state:  # a few hundred states, however many journeys
            steps_by_state[where] = (*steps.next_phase(*where), json.dumps(steps.next_touchpoints(*where)))
        phase, p, why, following = steps_by_state[where]
        nxt.append(phase)
        nxt_p.append(p)
        basis.append(why)
        tps.append(following)
        state = (row.journey_type, row.persona, row.current_phase)
        if state not in picks_by_state:
            picks_by_state[state] = recommend.candidates(ev, *state)
        content.append(json.dumps(recommend.unseen(picks_by_state[state], seen.get(row.person_id), top)))
    frame["next_phase"] = nxt
    frame["next_phase_probability"] = nxt_p
    frame["next_phase_basis"] = basis
    frame["next_touchpoints"] = tps
    frame["next_best_content"] = content
    frame["scored_at"] = pd.Timestamp(datetime.now(UTC))
    frame["data_end"] = pd.Timestamp(data_end)
    frame = frame.sort_values(
        ["propensity", "journey_id"], ascending=[False, True], na_position="last", kind="stable"
    )
    table = pa.Table.from_pandas(frame[SCHEMA.names], schema=SCHEMA, preserve_index=False)
    if save and not ws.read_only:
        ws.con.create_table(TABLE, table, overwrite=True)
    return Predictions(table, model)


def stored(ws: Workspace) -> ibis.Table | None:
    """The workspace's ``predictions`` table, or None before the first ``predict``."""
    return ws.table(TABLE) if ws.has_table(TABLE) else None
