"""Literal journey fixtures and plain-Python reference implementations for the attribution tests.

The references share no code with ``journeylens.attribution``: dictionaries, tuples, itertools and loops only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import combinations, groupby
from math import factorial
from typing import Any

import pandas as pd

Path = tuple[str, ...]
#: one aggregated row: (channels, conversions, value, nulls)
Row = tuple[Path, float, float, float]


# ------------------------------------------------------------------------------------------------ fixtures
def journey(touches: Sequence[tuple[str, str]], *, value: float | None = None, at: str | None = None) -> dict:
    """One journey: ``touches`` as (channel, ISO time); ``value`` given means it converted (``at``: when)."""
    return {"touches": list(touches), "value": value, "at": at}


def touch_frame(journeys: dict[str, dict], *, key: str = "channel") -> pd.DataFrame:
    """Per-touch rows from ``{"anna": journey([...], value=...)}``; positions follow the listed order."""
    rows: list[dict[str, Any]] = []
    for jid, spec in journeys.items():
        converted = spec["value"] is not None
        for position, (channel, when) in enumerate(spec["touches"]):
            row: dict[str, Any] = {
                "journey_id": jid,
                "position": position,
                key: channel,
                "timestamp": pd.Timestamp(when, tz="UTC"),
                "converted": converted,
                "value": float(spec["value"]) if converted else 0.0,
            }
            if any(s["at"] is not None for s in journeys.values()):
                row["conversion_time"] = pd.Timestamp(spec["at"], tz="UTC") if spec["at"] else pd.NaT
            rows.append(row)
    return pd.DataFrame(rows)


def paths_frame(rows: Iterable[tuple[str, float, float, float]]) -> pd.DataFrame:
    """Aggregated paths from ``(path, conversions, value, nulls)`` tuples."""
    return pd.DataFrame(list(rows), columns=["path", "conversions", "value", "nulls"])


def rows_to_frame(rows: Iterable[Row]) -> pd.DataFrame:
    return paths_frame((" > ".join(p), c, v, n) for p, c, v, n in rows)


def credits(model: Any) -> dict[str, tuple[float, float]]:
    """A fitted model's credits as {channel: (conversions, value)}."""
    frame = model.credits_
    return {
        ch: (conv, val)
        for ch, conv, val in zip(
            frame["channel"], frame["attributed_conversions"], frame["attributed_value"], strict=True
        )
    }


# ------------------------------------------------------------------------------------------ Shapley, brute
def brute_shapley(players: Sequence[str], v: Callable[[frozenset[str]], float]) -> dict[str, float]:
    """Shapley values from the definition: every coalition, every player."""
    n = len(players)
    phi: dict[str, float] = {}
    for i in players:
        others = [p for p in players if p != i]
        total = 0.0
        for r in range(len(others) + 1):
            weight = factorial(r) * factorial(n - r - 1) / factorial(n)
            for coalition in combinations(others, r):
                s = frozenset(coalition)
                total += weight * (v(s | {i}) - v(s))
        phi[i] = total
    return phi


def containment_game(rows: Sequence[Row], quantity: int = 1) -> Callable[[frozenset[str]], float]:
    """v(S) = conversions (quantity=1) or value (quantity=2) of the journeys whose channel set is within S."""

    def v(s: frozenset[str]) -> float:
        return sum(row[quantity] for row in rows if set(row[0]) <= s)

    return v


def rate_game(rows: Sequence[Row], quantity: int = 1) -> Callable[[frozenset[str]], float]:
    """v(S) = conversions (or value) per journey among the journeys whose channel set is within S; 0 if none."""

    def v(s: frozenset[str]) -> float:
        inside = [row for row in rows if set(row[0]) <= s]
        journeys = sum(row[1] + row[3] for row in inside)
        return sum(row[quantity] for row in inside) / journeys if journeys else 0.0

    return v


# ------------------------------------------------------------------------------------------- Markov, slow
START = None  # the padding symbol: not a channel name


def collapse(path: Path) -> Path:
    return tuple(channel for channel, _ in groupby(path))


def markov_chain(rows: Sequence[Row], order: int, *, repeats: str = "collapse", include_nulls: bool = True):
    """Transition counts {state: Counter(next: count)}; a state is the tuple of the last ``order`` symbols.

    Also returns the value ending in each state: {state: value}.
    """
    counts: dict[Any, Counter] = defaultdict(Counter)
    value_end: dict[Any, float] = defaultdict(float)
    for path, conv, value, nulls in rows:
        if not include_nulls:
            if conv <= 0:
                continue
            nulls = 0.0
        weight = conv + nulls
        if weight <= 0:
            continue
        walk = collapse(path) if repeats == "collapse" else path
        state = (START,) * order
        for channel in walk:
            nxt = state[1:] + (channel,)
            counts[state][nxt] += weight
            state = nxt
        counts[state]["CONVERSION"] += conv
        counts[state]["NULL"] += nulls
        value_end[state] += value
    return counts, value_end


def absorption(counts, value_end, order: int, removed: str | None = None, *, tol: float = 1e-15):
    """(P(conversion), expected value) from start, by Gauss-Seidel value iteration until nothing moves.

    With ``removed``, every state containing that channel is a dead end (probability 0, value 0).
    """
    probs = {s: {t: c / sum(cs.values()) for t, c in cs.items() if c > 0} for s, cs in counts.items()}
    per_visit = {s: value_end.get(s, 0.0) / sum(cs.values()) for s, cs in counts.items()}
    dead = {s for s in probs if removed is not None and removed in s}
    x = {s: 0.0 for s in probs}
    y = {s: 0.0 for s in probs}
    for _ in range(1_000_000):
        moved = 0.0
        for s, out in probs.items():
            if s in dead:
                continue
            new_x = 0.0
            new_y = per_visit[s]
            for t, p in out.items():
                if t == "CONVERSION":
                    new_x += p
                elif t != "NULL" and t not in dead:
                    new_x += p * x[t]
                    new_y += p * y[t]
            moved = max(moved, abs(new_x - x[s]), abs(new_y - y[s]) / max(abs(new_y), 1.0))
            x[s], y[s] = new_x, new_y
        if moved <= tol:
            break
    start = (START,) * order
    return x.get(start, 0.0), y.get(start, 0.0)
