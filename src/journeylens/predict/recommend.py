"""The next best content for an open journey, with the evidence behind it.

The evidence is the content analysis (:mod:`journeylens.analyses.content`): per journey type, phase and
content type, how often the journeys that reached the phase and saw the content there moved on to a later
phase, against the comparable journeys (same type, same phase reached) that did not see it — the *lift*,
with its interval. *Comparable* is first taken to mean the same persona as well; where that slice has too
few journeys (``too_thin``) the journey type's figures over every persona are used, and ``basis`` says so.

For a journey in phase P, the candidates are the content types with a lift above 1 in P that the person
has not seen yet (in any journey); they are ranked by the lower end of the lift's interval, so a large but
uncertain lift does not beat a solid one. Nothing is recommended where no content has that evidence: a
marketer sees the numbers and can overrule them. It is an association in past journeys, not a tested
effect (``docs``: run an experiment before spending on it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd

from journeylens.analyses import content
from journeylens.analyses.base import Filters

if TYPE_CHECKING:
    from journeylens.store import Workspace

ALL = "*"
EVIDENCE_COLUMNS = [
    "journey_type",
    "persona",
    "phase",
    "content_type",
    "lift",
    "lift_low",
    "lift_high",
    "exposed",
    "unexposed",
    "moved_on_exposed",
    "moved_on_unexposed",
    "too_thin",
]


def evidence(
    ws: Workspace,
    journey_types: Iterable[str],
    personas: Iterable[str] = (),
    *,
    by_persona: Iterable[str] | None = None,
    min_n: int = 30,
) -> pd.DataFrame:
    """The content analysis per journey type, overall (persona ``*``) and, for the journey types in
    ``by_persona`` (default: all), per persona."""
    frames = []
    for journey_type in sorted(set(journey_types)):
        split = by_persona is None or journey_type in set(by_persona)
        for persona in [None, *(sorted(set(personas)) if split else [])]:
            filters = Filters(journey_types=[journey_type], personas=[persona] if persona else None)
            table = content.run(ws, content.ContentSpec(min_n=min_n, filters=filters)).to_pandas()
            table["journey_type"] = journey_type
            table["persona"] = persona or ALL
            frames.append(table[EVIDENCE_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=EVIDENCE_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def seen_content(ws: Workspace, person_ids: Iterable[str]) -> dict[str, set[str]]:
    """The content types each person has seen, in any journey."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    t = ws.journey_touchpoints
    keys = ibis.memtable({"person_id": ids}, schema={"person_id": "string"})
    t = t.semi_join(keys, "person_id")
    pairs = t.filter(t.content_type.notnull()).select("person_id", "content_type").distinct().to_pandas()
    out: dict[str, set[str]] = {}
    for person, ctype in zip(pairs["person_id"], pairs["content_type"], strict=True):
        out.setdefault(person, set()).add(ctype)
    return out


def _usable(rows: pd.DataFrame) -> pd.DataFrame:
    ok = ~rows["too_thin"].astype(bool) & rows["lift"].notna() & (rows["lift"] > 1.0)
    return rows[ok]


def candidates(
    table: pd.DataFrame, journey_type: str, persona: str | None, phase: str | None
) -> list[dict[str, Any]]:
    """Every content type with evidence of a lift above 1 for journeys of this type and persona in
    ``phase``, best first (by the lower end of the lift's interval, then the lift, then the name)."""
    if phase is None:
        return []
    here = table[(table["journey_type"] == journey_type) & (table["phase"] == phase)]
    own = here[here["persona"] == persona] if persona else here.iloc[0:0]
    own = own[~own["too_thin"].astype(bool) & own["lift"].notna()]
    overall = here[here["persona"] == ALL]
    # the persona's own figures where they are solid (for or against), the type's figures for the rest
    rows = _usable(pd.concat([own, overall[~overall["content_type"].isin(own["content_type"])]]))
    rows = rows.sort_values(
        ["lift_low", "lift", "content_type"], ascending=[False, False, True], kind="stable"
    )
    out = []
    for row in rows.itertuples(index=False):
        who = f"{row.persona} persona" if row.persona != ALL else "all personas"
        out.append(
            {
                "content_type": row.content_type,
                "lift": _round(row.lift),
                "lift_low": _round(row.lift_low),
                "lift_high": _round(row.lift_high),
                "exposed": int(row.exposed),
                "unexposed": int(row.unexposed),
                "moved_on_exposed": _round(row.moved_on_exposed),
                "moved_on_unexposed": _round(row.moved_on_unexposed),
                "basis": f"{journey_type} journeys in {phase}, {who}",
                "why": (
                    f"{_pct(row.moved_on_exposed)} of {int(row.exposed):,} journeys that saw {row.content_type} in {phase} "
                    f"moved on, against {_pct(row.moved_on_unexposed)} of {int(row.unexposed):,} that did not "
                    f"(lift {row.lift:.2f}, {row.lift_low:.2f}–{row.lift_high:.2f}; {who})"
                ),
            }
        )
    return out


def recommend(
    table: pd.DataFrame,
    journey_type: str,
    persona: str | None,
    phase: str | None,
    seen: set[str] | None = None,
    *,
    k: int = 3,
) -> list[dict[str, Any]]:
    """Up to ``k`` content types for a journey of this type and persona in ``phase`` that the person has
    not ``seen``, best first."""
    return unseen(candidates(table, journey_type, persona, phase), seen, k)


def unseen(ranked: list[dict[str, Any]], seen: set[str] | None, k: int) -> list[dict[str, Any]]:
    """The first ``k`` of ``ranked`` (from :func:`candidates`) that are not in ``seen``."""
    seen = seen or set()
    return [c for c in ranked if c["content_type"] not in seen][:k]


def _round(value: Any) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)
    )


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"
