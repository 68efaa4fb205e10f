"""Markov-chain attribution, exact: removal effects from linear solves on the empirical absorbing chain.

The chain
    States are ``(start)``, one transient state per observed history of the last ``order`` channels (shorter
    histories padded with ``(start)``: in order 2, the first touch ``email`` is the state ``((start), email)``), and
    two absorbing states, ``(conversion)`` and ``(null)``. Each journey walks ``start -> s1 -> ... -> sn`` and then
    into ``(conversion)`` or ``(null)``; transition probabilities are the observed counts, normalised per state.

Conversion probability
    ``P = x[start]`` where ``(I - Q) x = r``, ``Q`` the transient-to-transient block and ``r`` each state's
    probability to step into ``(conversion)``. Up to 1000 states this is a LAPACK LU solve; beyond, where an LU of
    this de Bruijn-like graph fills in to a dense matrix, the same system is solved by the convergent iteration
    ``x <- Qx + r`` (self-loops eliminated exactly first) until no entry moves by 1e-15 of its size: the same numbers
    to 1e-12 or better (a test compares the two), in milliseconds instead of minutes (17,568 states of order 4: a
    sparse LU takes 55-230 s per solve, the iteration 0.05 s). No simulation: results are deterministic.

Removal effect of a channel ``c``
    Remove every state whose history contains ``c``; what flowed into them goes to ``(null)``. Solve again:
    ``removal_effect = 1 - P(without c) / P``. Conversions are credited in proportion to the removal effects and
    scaled to the total conversions. A channel none of whose states lies on a walk from start to ``(conversion)``
    (checked on the graph) gets exactly 0, not the rounding left by a second solve.

Value
    Value is credited by its own chain, not by the conversion shares: ``r`` becomes each state's expected value
    on stepping out (the value of the conversions that ended there divided by the state's visits), ``x[start]`` the
    expected value per journey (``value_per_journey_``), and ``value_removal_effect`` its relative drop when a channel
    is removed. Both right-hand sides share one factorisation. When every conversion has the same value, the two
    chains give the same shares.

Repeats
    ``repeats="collapse"`` (default) merges runs of the same channel (``email > email > search`` becomes
    ``email > search``) before the chain is built; ``"keep"`` keeps them as self-loops. Collapse is the default
    because a repeated touch in a row (three newsletter opens, a session of page views) brings no new channel into
    the journey, and in orders 2 and up the copies would fill the history window, so the state would forget the
    channels that came before. In order 1 the two rules give identical results: a self-loop only delays the walk,
    the probabilities of where it goes next are unchanged (a test checks this).

Include nulls
    With ``include_nulls=False`` the chain is built from the converting journeys only, so ``P = 1`` and a removal
    effect is the share of the conversion probability that passes through the channel.

Order selection
    ``Markov.select_order`` scores orders by the cross-validated log-likelihood of the observed outcome of each
    journey given its path: under an order-``k`` chain that is ``P(conversion | last state)``, the chance that a
    walk which ends in the journey's last state steps into ``(conversion)`` rather than ``(null)``. States not seen
    in the training folds back off to their shorter history (each level smoothed toward the one below with one
    pseudo-journey, the bottom level being the overall conversion rate), so the score stays finite.

Note on "a channel on no converting path": in order 1 such a channel can still have a positive removal effect, since
the chain mixes paths (``a > x > b`` without conversion and ``a > b`` with one: the chain lets a walk go
``a -> x -> b -> (conversion)``). When the order is at least the longest path, every state is a whole path prefix,
the chain reproduces the observed paths exactly, and such a channel's removal effect is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse import linalg as sparse_linalg

from journeylens.attribution.base import (
    AttributionModel,
    Bootstrap,
    Credits,
    Replicator,
    check_choice,
    check_number,
    param_error,
)
from journeylens.attribution.paths import PathTable
from journeylens.errors import SpecError

ORDERS = (1, 2, 3, 4)
REPEATS = ("collapse", "keep")
#: up to this many transient states, LAPACK LU; beyond, the iteration (see _solve_iterative)
DENSE_LIMIT = 1000
MAX_ITERATIONS = 100_000
_ITERATION_CELLS = 2e7  # iterate on at most this many (state, column) cells at once
_DENSE_KEYS = 1 << 25  # keys below this are compacted with a lookup table instead of a sort


def _compact(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """``(inverse, uniques)`` of non-negative int64 keys below ``bound``, uniques sorted."""
    if bound <= _DENSE_KEYS:
        present = np.zeros(bound, dtype=bool)
        present[keys] = True
        uniques = np.flatnonzero(present)
        lookup = np.cumsum(present, dtype=np.int32) - 1
        return lookup[keys], uniques
    codes, found = pd.factorize(keys)  # a hash, not a sort; then the few uniques are sorted
    order = np.argsort(found)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[codes], np.asarray(found)[order]


@dataclass(frozen=True)
class _Layout:
    """The structure of the chain built from a table: which states and edges each touch and row uses.

    Counts are not part of it, so a bootstrap replicate only re-weights it.
    """

    order: int
    n: int  # transient states, start included (index 0)
    # (n, order): per state, the channel code + 1 in each history slot, newest first; 0 = padding
    symbols: np.ndarray
    contains: np.ndarray  # (n, channels) bool: the state's history contains the channel
    edge_from: np.ndarray  # per edge
    edge_to: np.ndarray  # per edge
    edge_of_touch: np.ndarray  # per touch: the edge walked into that touch's state
    last_state: np.ndarray  # per row
    row_of_touch: np.ndarray


def _history(table: PathTable, order: int) -> list[np.ndarray]:
    """Per touch, the channel ``j`` steps back (code + 1; 0 before the journey starts), for j < order."""
    pos = table.position_in_row()
    codes = table.codes
    out = []
    for j in range(order):
        shifted = np.zeros(len(codes), dtype=np.int32)
        if j == 0:
            shifted[:] = codes + 1
        else:
            shifted[j:] = codes[:-j] + 1
            shifted[pos < j] = 0
        out.append(shifted)
    return out


def _state_ids(history: list[np.ndarray], n_channels: int) -> tuple[np.ndarray, int]:
    """Compact state ids 1..n per touch (0 is left for start), from the history slots."""
    base = n_channels + 1
    if base ** len(history) <= _DENSE_KEYS:  # keys below 2**25: int32 holds them
        keys = np.zeros(len(history[0]), dtype=np.int32)
        for j, slot in enumerate(history):
            keys += slot * np.int32(base**j)
        inverse, uniques = _compact(keys, base ** len(history))
        return inverse + 1, len(uniques)
    ids = history[0]
    count = base
    for slot in history[1:]:
        ids, uniques = _compact(ids.astype(np.int64) * base + slot, count * base)
        count = len(uniques)
    return ids + 1, count


def _layout(table: PathTable, order: int) -> _Layout:
    history = _history(table, order)
    touch_state, n_states = _state_ids(history, table.n_channels)
    n = n_states + 1
    n_touches = len(table.codes)
    first_seen = np.full(n, -1, dtype=np.int64)
    first_seen[touch_state[::-1]] = np.arange(n_touches - 1, -1, -1, dtype=np.int64)
    symbols = np.zeros((n, order), dtype=np.int64)
    contains = np.zeros((n, table.n_channels + 1), dtype=bool)
    for j, slot in enumerate(history):
        symbols[1:, j] = slot[first_seen[1:]]
        contains[np.arange(1, n), symbols[1:, j]] = True
    contains = contains[:, 1:]
    pos = table.position_in_row()
    key_type = np.int32 if n * n < 2**31 else np.int64
    keys = np.zeros(n_touches, dtype=key_type)
    keys[1:] = touch_state[:-1]
    keys[pos == 0] = 0
    del pos
    keys *= n
    keys += touch_state
    edge_of_touch, edges = _compact(keys, n * n)
    del keys
    return _Layout(
        order=order,
        n=n,
        symbols=symbols,
        contains=contains,
        edge_from=edges // n,
        edge_to=edges % n,
        edge_of_touch=edge_of_touch,
        last_state=touch_state[table.last_touch()],
        row_of_touch=table.row_of_touch(),
    )


@dataclass(frozen=True)
class _Solution:
    probability: float  # P(conversion) from start
    value: float  # expected value per journey
    removed_probability: np.ndarray  # per channel
    removed_value: np.ndarray  # per channel


def _solve(
    layout: _Layout, edge_count: np.ndarray, conv_end: np.ndarray, null_end: np.ndarray, value_end: np.ndarray
) -> _Solution:
    """P(conversion) and value per journey from start, in the full chain and with each channel removed."""
    n = layout.n
    out = np.bincount(layout.edge_from, edge_count, minlength=n) + conv_end + null_end
    safe = np.where(out > 0, out, 1.0)
    probability = edge_count / safe[layout.edge_from]
    rhs = np.column_stack([conv_end / safe, value_end / safe])
    q = sparse.csr_matrix((probability, (layout.edge_from, layout.edge_to)), shape=(n, n))
    # column 0: the full chain; column 1 + c: the chain without channel c
    keep = np.column_stack([np.ones(n, dtype=bool), ~layout.contains])
    solver = _solve_dense if n <= DENSE_LIMIT else _solve_iterative
    start = solver(q, rhs, keep)  # (columns, 2)
    removed = start[1:].copy()
    # a channel none of whose states lies on a walk from start to (conversion) loses nothing when removed: say so
    # exactly, rather than with the rounding of a second solve
    removed[~_carries(q, layout.contains, conv_end > 0), 0] = start[0, 0]
    removed[~_carries(q, layout.contains, value_end > 0), 1] = start[0, 1]
    return _Solution(
        probability=float(start[0, 0]),
        value=float(start[0, 1]),
        removed_probability=removed[:, 0],
        removed_value=removed[:, 1],
    )


def _carries(q: sparse.csr_matrix, contains: np.ndarray, pays: np.ndarray) -> np.ndarray:
    """Per channel: whether one of its states is reachable from start and can reach a state in ``pays``."""
    n = q.shape[0]
    graph = sparse.csr_matrix(((q.data > 0).astype(np.float64), q.indices, q.indptr), shape=(n, n))
    graph.eliminate_zeros()
    reached = np.zeros(n, dtype=bool)
    reached[csgraph.breadth_first_order(graph, 0, return_predecessors=False)] = True
    # backwards from every paying state: a virtual node n pointing at them, on the reversed graph
    sources = np.flatnonzero(pays)
    reverse = sparse.vstack(
        [
            graph.T.tocsr(),
            sparse.csr_matrix((np.ones(len(sources)), (np.zeros(len(sources)), sources)), shape=(1, n)),
        ]
    )
    reverse = sparse.hstack([reverse, sparse.csr_matrix((n + 1, 1))]).tocsr()
    pays_off = np.zeros(n + 1, dtype=bool)
    pays_off[csgraph.breadth_first_order(reverse, n, return_predecessors=False)] = True
    on_the_way = reached & pays_off[:n]
    return (contains & on_the_way[:, None]).any(axis=0)


def _solve_dense(q: sparse.csr_matrix, rhs: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Row ``start`` of ``(I - Q_KK)^-1 r_K`` for each set of kept states ``K``: LAPACK LU, one per set."""
    n = q.shape[0]
    a = np.eye(n) - q.toarray()
    out = np.empty((keep.shape[1], 2))
    for column in range(keep.shape[1]):
        kept = np.flatnonzero(keep[:, column])
        if column > 0 and len(kept) == n:
            out[column] = out[0]
            continue
        out[column] = np.linalg.solve(a[np.ix_(kept, kept)], rhs[kept])[0]
    return out


def _solve_iterative(q: sparse.csr_matrix, rhs: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The same systems, solved by the convergent iteration ``x <- Q_KK x + r_K``, all sets of states at once.

    An order-k chain is a de Bruijn-like graph: a sparse LU of ``I - Q`` fills in to a nearly dense matrix (minutes
    at 17k states), while the iteration needs a few dozen sparse products. Self-loops are eliminated exactly first
    (``x_s = (sum_t q_st x_t + r_s) / (1 - q_ss)``) so that repeated touches do not slow it down. Starting from 0,
    the iterates increase to the solution; the iteration stops when an update changes no entry by more than 1e-15
    of its column's largest entry. Should it not settle within ``MAX_ITERATIONS`` it falls back to a sparse LU.
    """
    n = q.shape[0]
    diagonal = q.diagonal()
    scale = 1.0 / (1.0 - diagonal)
    q = sparse.csr_matrix(sparse.diags(scale) @ (q - sparse.diags(diagonal)))
    q.eliminate_zeros()
    rhs = rhs * scale[:, None]
    n_sets = keep.shape[1]
    out = np.empty((n_sets, 2))
    block = max(1, int(_ITERATION_CELLS // (2 * n)))
    for first in range(0, n_sets, block):
        sets = range(first, min(first + block, n_sets))
        # columns: set 0 conversion, set 0 value, set 1 conversion, ...
        mask = np.repeat(keep[:, list(sets)].astype(np.float64), 2, axis=1)
        b = mask * np.tile(rhs, (1, len(sets)))
        x = b.copy()
        for _ in range(MAX_ITERATIONS):
            new = mask * (q @ x) + b
            change = np.abs(new - x).max(axis=0)
            x = new
            if np.all(change <= 1e-15 * np.abs(x).max(axis=0)):
                break
        else:  # pragma: no cover - a chain that mixes this slowly has not been seen
            a = sparse.identity(n, format="csr") - q
            for i, column in enumerate(sets):
                kept = np.flatnonzero(keep[:, column])
                x[kept, 2 * i : 2 * i + 2] = sparse_linalg.splu(a[kept][:, kept].tocsc()).solve(rhs[kept])
        out[list(sets)] = x[0].reshape(-1, 2)
    return out


def _removal_effects(total: float, removed: np.ndarray) -> np.ndarray:
    if total <= 0:
        return np.zeros(len(removed))
    return np.clip(1.0 - removed / total, 0.0, 1.0)


def _shares(effects: np.ndarray, amount: float) -> np.ndarray:
    total = effects.sum()
    if total <= 0:
        return np.zeros(len(effects))
    return effects / total * amount


def _end_counts(layout: _Layout, table: PathTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = layout.n
    return (
        np.bincount(layout.last_state, table.conversions, minlength=n),
        np.bincount(layout.last_state, table.nulls, minlength=n),
        np.bincount(layout.last_state, table.value, minlength=n),
    )


class OrderSelection(NamedTuple):
    """The result of ``Markov.select_order``: ``report, order = Markov.select_order(journeys)``."""

    report: (
        pd.DataFrame
    )  # one row per order tried: order, heldout_loglik, heldout_loglik_per_journey, n_states
    order: int  # the chosen order


class Markov(AttributionModel):
    """Exact Markov-chain attribution by removal effects (see the module docstring for the maths).

    ``credits_`` adds ``removal_effect`` (on the conversion probability) and ``value_removal_effect`` (on the
    expected value per journey). Learned: ``conversion_probability_``, ``value_per_journey_``, ``n_states_`` (history
    states, start excluded) and ``transitions_`` (``from_state, to_state, count, probability``).
    """

    name = "markov"

    def __init__(
        self,
        *,
        order: int = 1,
        repeats: str = "collapse",
        target: str = "conversions",
        include_nulls: bool = True,
        lookback_days: float | None = None,
        key: str = "channel",
        bootstrap: Bootstrap | None = None,
    ) -> None:
        self.order = order
        self.repeats = repeats
        self.target = target
        self.include_nulls = include_nulls
        self.lookback_days = lookback_days
        self.key = key
        self.bootstrap = bootstrap

    def _validate_params(self) -> None:
        super()._validate_params()
        if not (
            isinstance(self.order, int | np.integer)
            and not isinstance(self.order, bool)
            and self.order in ORDERS
        ):
            raise param_error("Markov", "order", "an int in {1, 2, 3, 4}", self.order)
        check_choice("Markov", "repeats", self.repeats, REPEATS)

    def prepare(self, journeys: Any) -> PathTable:
        table = super().prepare(journeys)
        if self.repeats == "collapse":
            table = table.collapse_repeats()
        drop = (table.conversions + table.nulls) <= 0
        return table.drop_rows(drop) if drop.any() else table

    # ------------------------------------------------------------------ fit
    def _credits(self, table: PathTable) -> Credits:
        layout = _layout(table, self.order)
        solution = self._solve_table(layout, table)
        effects = _removal_effects(solution.probability, solution.removed_probability)
        value_effects = _removal_effects(solution.value, solution.removed_value)
        return Credits(
            conversions=_shares(effects, table.total_conversions),
            value=_shares(value_effects, table.total_value),
            extra={"removal_effect": effects, "value_removal_effect": value_effects},
            learned={
                "conversion_probability_": solution.probability,
                "value_per_journey_": solution.value,
                "n_states_": layout.n - 1,
                "transitions_": _transitions(layout, table),
            },
        )

    @staticmethod
    def _solve_table(layout: _Layout, table: PathTable) -> _Solution:
        weight = (table.conversions + table.nulls)[layout.row_of_touch]
        edge_count = np.bincount(layout.edge_of_touch, weight, minlength=len(layout.edge_from))
        return _solve(layout, edge_count, *_end_counts(layout, table))

    def _replicator(self, table: PathTable) -> Replicator:
        layout = _layout(table, self.order)
        n_rows = table.n_rows
        incidence = sparse.csr_matrix(
            (np.ones(len(layout.edge_of_touch)), (layout.edge_of_touch, layout.row_of_touch)),
            shape=(len(layout.edge_from), n_rows),
        )
        ends = sparse.csr_matrix(
            (np.ones(n_rows), (layout.last_state, np.arange(n_rows))), shape=(layout.n, n_rows)
        )
        by_value = self.target == "value"

        def resolve(conversions: np.ndarray, value: np.ndarray, nulls: np.ndarray) -> np.ndarray:
            edge_counts = np.asarray(incidence @ (conversions + nulls).T)
            conv_end = np.asarray(ends @ conversions.T)
            null_end = np.asarray(ends @ nulls.T)
            value_end = np.asarray(ends @ value.T)
            out = np.empty((conversions.shape[0], table.n_channels))
            for b in range(conversions.shape[0]):
                solution = _solve(layout, edge_counts[:, b], conv_end[:, b], null_end[:, b], value_end[:, b])
                if by_value:
                    effects = _removal_effects(solution.value, solution.removed_value)
                    out[b] = _shares(effects, float(value[b].sum()))
                else:
                    effects = _removal_effects(solution.probability, solution.removed_probability)
                    out[b] = _shares(effects, float(conversions[b].sum()))
            return out

        return resolve

    # ----------------------------------------------------- order selection
    @classmethod
    def select_order(
        cls,
        journeys: Any,
        *,
        orders: tuple[int, ...] = ORDERS,
        folds: int = 5,
        seed: int = 0,
        **params: Any,
    ) -> OrderSelection:
        """Choose the order by ``folds``-fold cross-validated log-likelihood of each journey's outcome.

        Journeys (not distinct paths) are split over the folds at random (``seed``); ``params`` are the other
        ``Markov`` parameters (``repeats``, ``include_nulls``, ``lookback_days``, ``key``). The best order is the one
        with the highest held-out log-likelihood, the lowest order on a tie (and when every journey has the same
        outcome, since there is then nothing to predict).
        """
        if "order" in params:
            raise param_error(
                "Markov.select_order", "order", "left out (it is what is being chosen)", params["order"]
            )
        check_number("Markov.select_order", "folds", folds, low=2, integer=True)
        check_number("Markov.select_order", "seed", seed, low=0, integer=True)
        if not orders or any(
            not isinstance(k, int | np.integer) or isinstance(k, bool) or k not in ORDERS for k in orders
        ):
            raise param_error(
                "Markov.select_order", "orders", "a non-empty tuple of ints in {1, 2, 3, 4}", orders
            )
        model = cls(**params)
        model._validate_params()
        table = model.prepare(journeys)
        conv, nulls = table.conversions, table.nulls
        if (conv != np.round(conv)).any() or (nulls != np.round(nulls)).any():
            raise SpecError(
                "select_order_needs_counts: order selection splits journeys over folds, so conversions and "
                "nulls must be whole numbers; got fractional counts",
                code="select_order_needs_counts",
            )
        rng = np.random.default_rng(seed)
        split = np.full(folds, 1.0 / folds)
        conv_fold = rng.multinomial(conv.astype(np.int64), split).astype(np.float64)  # (rows, folds)
        null_fold = rng.multinomial(nulls.astype(np.int64), split).astype(np.float64)
        last = table.last_touch()
        rows = []
        for k in orders:
            history = _history(table, int(k))
            # ids of the suffixes of length 1..k of each row's last state (padding included)
            suffix_ids = []
            ids = np.zeros(table.n_rows, dtype=np.int64)
            count = 1
            for j in range(int(k)):
                slot = history[j][last]
                ids, uniques = _compact(ids * (table.n_channels + 1) + slot, count * (table.n_channels + 1))
                count = len(uniques)
                suffix_ids.append(ids)
            loglik = 0.0
            for f in range(folds):
                train_conv = conv - conv_fold[:, f]
                train_n = train_conv + nulls - null_fold[:, f]
                p = np.full(table.n_rows, (train_conv.sum() + 0.5) / (train_n.sum() + 1.0))
                for ids in suffix_ids:
                    c = np.bincount(ids, train_conv)[ids]
                    m = np.bincount(ids, train_n)[ids]
                    p = (c + p) / (m + 1.0)
                loglik += float(conv_fold[:, f] @ np.log(p) + null_fold[:, f] @ np.log1p(-p))
            _, n_states = _state_ids(history, table.n_channels)
            journeys_total = float((conv + nulls).sum())
            rows.append(
                {
                    "order": int(k),
                    "heldout_loglik": loglik,
                    "heldout_loglik_per_journey": loglik / journeys_total if journeys_total else 0.0,
                    "n_states": int(n_states),
                }
            )
        report = pd.DataFrame(rows)
        if conv.sum() == 0 or nulls.sum() == 0:
            best = int(
                min(orders)
            )  # one outcome only: nothing to predict, so nothing to gain from a longer history
        else:
            best = int(
                report.sort_values(["heldout_loglik", "order"], ascending=[False, True])["order"].iloc[0]
            )
        return OrderSelection(report=report, order=best)


def _state_label(symbols: np.ndarray, channels: np.ndarray) -> str:
    names = ["(start)" if s == 0 else str(channels[s - 1]) for s in symbols[::-1]]
    while len(names) > 1 and names[0] == "(start)" and names[1] == "(start)":
        names.pop(0)
    return " > ".join(names)


def _transitions(layout: _Layout, table: PathTable) -> pd.DataFrame:
    """The chain's transitions as a table: from_state, to_state, count, probability."""
    weight = (table.conversions + table.nulls)[layout.row_of_touch]
    edge_count = np.bincount(layout.edge_of_touch, weight, minlength=len(layout.edge_from))
    conv_end, null_end, _ = _end_counts(layout, table)
    labels = ["(start)"] + [_state_label(layout.symbols[s], table.channels) for s in range(1, layout.n)]
    labels_arr = np.asarray(labels, dtype=object)
    states = np.arange(layout.n)
    frm = np.concatenate([layout.edge_from, states, states])
    to = np.concatenate(
        [labels_arr[layout.edge_to], np.full(layout.n, "(conversion)"), np.full(layout.n, "(null)")]
    )
    count = np.concatenate([edge_count, conv_end, null_end])
    keep = count > 0
    out_total = np.bincount(frm[keep], count[keep], minlength=layout.n)
    frame = pd.DataFrame(
        {
            "from_state": labels_arr[frm[keep]],
            "to_state": to[keep].astype(object),
            "count": count[keep],
            "probability": count[keep] / out_total[frm[keep]],
        }
    )
    return frame.sort_values(["from_state", "to_state"], ignore_index=True)
