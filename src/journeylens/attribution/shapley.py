"""Shapley-value attribution: channels are players, the value of a coalition comes from the journeys it covers.

Value functions (``value_function``); ``S`` is a set of channels, a journey's *set* is the set of channels it
touched (order and repeats do not matter):

``"containment"`` (default)
    ``v(S)`` = the conversions (value) of the journeys whose set is contained in ``S``. This game is a sum of
    unanimity games, one per journey, so its Shapley value has a closed form: **each conversion is split equally
    over the distinct channels of its journey**. That is what ``fit`` computes (exactly, for any number of channels);
    a test checks it against the definition (all coalitions, plain Python). Non-converting journeys play no part.

``"conversion_rate"``
    ``v(S)`` = the conversion rate (value per journey) of the journeys whose set is contained in ``S`` (0 when there
    are none), and credit = Shapley value x number of journeys, so the credits again sum to the total conversions
    (``v`` of all channels is the overall rate). Unlike containment, this game uses the journeys that did not
    convert: a channel that mostly appears on non-converting journeys lowers the rate of the coalitions it joins and
    can get **negative** credit. It needs ``include_nulls=True``. It has no closed form; ``fit`` computes it exactly
    over all ``2**n`` coalitions (vectorised, ``O(n 2**n)``) when there are at most ``max_exact_channels`` channels
    (15 by default, 20 at most), and asks for ``n_samples`` beyond that.

Permutation sampling (``n_samples=m``)
    For many channels: ``m`` random orders of the channels (``seed``); in each, a channel's marginal contribution is
    ``v(channels before it and itself) - v(channels before it)``, and the estimate is its mean. The marginal
    contributions of one order add up to ``v(all channels)``, so the estimated credits still sum exactly to the
    totals. ``credits_`` adds, for the target column,

    - ``std_error``: the sample standard deviation of the marginal contributions / ``sqrt(m)``;
    - ``std_error_bound``: a bound that holds whatever the data (Popoviciu: a variable within a range of width
      ``w`` has standard deviation at most ``w / 2``), so the standard error is at most ``w / (2 sqrt(m))``.
      Containment: a channel's marginal contribution lies in ``[0, R]``, ``R`` the conversions (value) of the
      journeys that touched it, so the bound is ``R / (2 sqrt(m))``. Conversion rate: ``v`` lies in
      ``[0, rho]``, ``rho`` the highest rate of any one channel set, so a marginal contribution lies in
      ``[-rho, rho]`` and the bound is ``rho * journeys / sqrt(m)``.

The per-touch credit table (``journey_credit_``) exists for exact containment only (the other games are not sums
over journeys); there a channel's share of a journey is divided evenly over its touches in that journey.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd
from scipy import sparse

from journeylens.attribution.base import (
    AttributionModel,
    Bootstrap,
    Credits,
    Replicator,
    check_choice,
    check_number,
)
from journeylens.attribution.paths import PathTable, ragged_ids
from journeylens.errors import SpecError

VALUE_FUNCTIONS = ("containment", "conversion_rate")
EXACT_LIMIT = 20


class _Sets:
    """The distinct channel sets of a table, with the conversions, value and journeys of each."""

    def __init__(self, table: PathTable) -> None:
        row_offsets, row_codes = table.distinct_channels()
        ids = ragged_ids(row_offsets, row_codes, table.n_channels)
        inverse, uniques = pd.factorize(ids)
        n = len(uniques)
        first_row = np.full(n, -1, dtype=np.int64)
        first_row[inverse[::-1]] = np.arange(table.n_rows - 1, -1, -1, dtype=np.int64)
        sizes = np.diff(row_offsets)[first_row]
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.offsets[1:])
        starts = row_offsets[:-1][first_row]
        gather = np.repeat(starts - self.offsets[:-1], sizes) + np.arange(self.offsets[-1], dtype=np.int64)
        self.codes = row_codes[gather]
        self.n_channels = table.n_channels
        self.inverse = inverse
        self.aggregate(table.conversions, table.value, table.nulls)

    def aggregate(self, conversions: np.ndarray, value: np.ndarray, nulls: np.ndarray) -> None:
        n = len(self.offsets) - 1
        self.conversions = np.bincount(self.inverse, conversions, minlength=n).astype(np.float64)
        self.value = np.bincount(self.inverse, value, minlength=n).astype(np.float64)
        self.journeys = np.bincount(self.inverse, conversions + nulls, minlength=n).astype(np.float64)

    def masks(self) -> np.ndarray:
        if len(self.codes) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.add.reduceat(np.left_shift(np.int64(1), self.codes), self.offsets[:-1])


def _zeta(per_mask: np.ndarray, n: int) -> np.ndarray:
    """Subset sums: out[m] = sum of per_mask[t] over every t contained in m."""
    out = per_mask.copy()
    for i in range(n):
        view = out.reshape(-1, 2, 1 << i)
        view[:, 1, :] += view[:, 0, :]
    return out


def _exact_shapley(v: np.ndarray, n: int) -> np.ndarray:
    """Shapley values of the game ``v`` (one entry per coalition bitmask), from the definition."""
    popcount = np.bitwise_count(np.arange(1 << n, dtype=np.int64)).astype(np.int64)
    weight = np.array([1.0 / (n * comb(n - 1, s)) for s in range(n)])
    phi = np.empty(n)
    for i in range(n):
        v3 = v.reshape(-1, 2, 1 << i)
        size = popcount.reshape(-1, 2, 1 << i)[:, 0, :]
        phi[i] = float((weight[size] * (v3[:, 1, :] - v3[:, 0, :])).sum())
    return phi


def _rate(numerator: np.ndarray, journeys: np.ndarray) -> np.ndarray:
    return np.divide(numerator, journeys, out=np.zeros(np.shape(numerator)), where=journeys > 0)


class Shapley(AttributionModel):
    """Shapley-value attribution (see the module docstring for the value functions and the sampling bound)."""

    name = "shapley"

    def __init__(
        self,
        *,
        value_function: str = "containment",
        n_samples: int | None = None,
        seed: int = 0,
        max_exact_channels: int = 15,
        target: str = "conversions",
        include_nulls: bool = True,
        lookback_days: float | None = None,
        key: str = "channel",
        bootstrap: Bootstrap | None = None,
    ) -> None:
        self.value_function = value_function
        self.n_samples = n_samples
        self.seed = seed
        self.max_exact_channels = max_exact_channels
        self.target = target
        self.include_nulls = include_nulls
        self.lookback_days = lookback_days
        self.key = key
        self.bootstrap = bootstrap

    def _validate_params(self) -> None:
        super()._validate_params()
        check_choice("Shapley", "value_function", self.value_function, VALUE_FUNCTIONS)
        if self.n_samples is not None:
            check_number("Shapley", "n_samples", self.n_samples, low=2, integer=True)
        check_number("Shapley", "seed", self.seed, low=0, integer=True)
        check_number(
            "Shapley", "max_exact_channels", self.max_exact_channels, low=1, high=EXACT_LIMIT, integer=True
        )
        if self.value_function == "conversion_rate" and not self.include_nulls:
            raise SpecError(
                "invalid_model_param: Shapley(value_function='conversion_rate') needs include_nulls=True: a "
                "conversion rate needs the journeys that did not convert. Got include_nulls=False instead.",
                code="invalid_model_param",
            )

    @property
    def uses_nulls(self) -> bool:  # type: ignore[override]
        return self.value_function == "conversion_rate"

    @property
    def _closed_form(self) -> bool:
        return self.value_function == "containment" and self.n_samples is None

    # ------------------------------------------------------------- credits
    def _credits(self, table: PathTable) -> Credits:
        if self._closed_form:
            paying = table.subset(table.paying_rows())  # journeys without conversions are worth nothing here
            shares = self.share_matrix(paying)
            return Credits(
                conversions=np.asarray(shares.T @ paying.conversions).reshape(-1),
                value=np.asarray(shares.T @ paying.value).reshape(-1),
                extra={},
            )
        sets = _Sets(table)
        if self.n_samples is None:
            return self._exact_rate(sets)
        return self._sampled(sets)

    def share_matrix(self, table: PathTable) -> sparse.csr_matrix:
        """Rows x channels: 1 / (number of distinct channels of the row) for each channel of the row."""
        offsets, codes = table.distinct_channels()
        sizes = np.diff(offsets)
        data = np.repeat(1.0 / np.maximum(sizes, 1), sizes)
        return sparse.csr_matrix((data, codes, offsets), shape=(table.n_rows, table.n_channels))

    def touch_weights(self, table: PathTable) -> np.ndarray:
        """Per touch: 1 / (distinct channels of the journey x touches of this channel in the journey)."""
        row = table.row_of_touch()
        keys = row * table.n_channels + table.codes
        uniques, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        distinct = np.bincount(uniques // max(table.n_channels, 1), minlength=table.n_rows)
        return 1.0 / (distinct[row] * counts[inverse.reshape(-1)])

    def _exact_rate(self, sets: _Sets) -> Credits:
        n = sets.n_channels
        if n > self.max_exact_channels:
            raise SpecError(
                f"too_many_channels: exact Shapley over all coalitions is limited to max_exact_channels="
                f"{self.max_exact_channels} channels, got {n}; pass n_samples=... for permutation sampling",
                code="too_many_channels",
            )
        size = 1 << n
        masks = sets.masks()
        conv = _zeta(np.bincount(masks, sets.conversions, minlength=size), n)
        value = _zeta(np.bincount(masks, sets.value, minlength=size), n)
        journeys = _zeta(np.bincount(masks, sets.journeys, minlength=size), n)
        total = float(sets.journeys.sum())
        return Credits(
            conversions=_exact_shapley(_rate(conv, journeys), n) * total,
            value=_exact_shapley(_rate(value, journeys), n) * total,
            extra={},
        )

    def _sampled(self, sets: _Sets) -> Credits:
        assert self.n_samples is not None
        n = sets.n_channels
        m = int(self.n_samples)
        rng = np.random.default_rng(self.seed)
        n_sets = len(sets.offsets) - 1
        rate = self.value_function == "conversion_rate"
        total_journeys = float(sets.journeys.sum())
        scale = total_journeys if rate else 1.0
        sums = np.zeros((2, n))
        squares = np.zeros((2, n))
        batch = max(1, min(m, int(2e7 // max(len(sets.codes), n, 1))))
        done = 0
        while done < m and n > 0:
            b = min(batch, m - done)
            rank = np.argsort(np.argsort(rng.random((b, n)), axis=1), axis=1)
            if n_sets:
                completion = np.maximum.reduceat(rank[:, sets.codes], sets.offsets[:-1], axis=1)
                flat = (completion + (np.arange(b) * n)[:, None]).ravel()
            else:
                flat = np.zeros(0, dtype=np.int64)
            by_rank = [
                np.bincount(flat, np.tile(w, b), minlength=b * n).reshape(b, n).cumsum(axis=1)
                for w in (sets.conversions, sets.value, sets.journeys)
            ]
            for q, numerator in enumerate(by_rank[:2]):
                v = _rate(numerator, by_rank[2]) if rate else numerator
                delta = np.diff(v, axis=1, prepend=0.0)
                marginal = np.take_along_axis(delta, rank, axis=1) * scale
                sums[q] += marginal.sum(axis=0)
                squares[q] += (marginal**2).sum(axis=0)
            done += b
        mean = sums / m
        variance = np.maximum(squares / m - mean**2, 0.0) * m / (m - 1)
        q = 0 if self.target == "conversions" else 1
        std_error = np.sqrt(variance[q] / m)
        quantity = sets.conversions if q == 0 else sets.value
        if rate:
            highest = float(_rate(quantity, sets.journeys).max()) if n_sets else 0.0
            bound = np.full(n, highest * total_journeys / np.sqrt(m))
        else:
            touched = np.bincount(sets.codes, np.repeat(quantity, np.diff(sets.offsets)), minlength=n)
            bound = touched / (2 * np.sqrt(m))
        return Credits(
            conversions=mean[0],
            value=mean[1],
            extra={"std_error": std_error, "std_error_bound": bound},
        )

    # ---------------------------------------------------- journeys, bootstrap
    def _journey_credit(self, table: PathTable) -> pd.DataFrame | None:
        if not self._closed_form:
            return None
        weights = self.touch_weights(table)
        row = table.row_of_touch()
        assert table.journey_id is not None and table.position is not None
        return pd.DataFrame(
            {
                "journey_id": table.journey_id[row],
                "position": table.position,
                "channel": table.channels[table.codes],
                "attributed_conversions": weights * table.conversions[row],
                "attributed_value": weights * table.value[row],
            }
        )

    def _replicator(self, table: PathTable) -> Replicator:
        by_value = self.target == "value"
        if self._closed_form:
            paying = table.paying_rows()
            shares = self.share_matrix(table.subset(paying)).T.tocsr()

            def product(conversions: np.ndarray, value: np.ndarray, nulls: np.ndarray) -> np.ndarray:
                return np.asarray(shares @ (value if by_value else conversions)[:, paying].T).T

            return product
        sets = _Sets(table)

        def regame(conversions: np.ndarray, value: np.ndarray, nulls: np.ndarray) -> np.ndarray:
            out = np.empty((conversions.shape[0], table.n_channels))
            for b in range(conversions.shape[0]):
                sets.aggregate(conversions[b], value[b], nulls[b])
                credits = self._exact_rate(sets) if self.n_samples is None else self._sampled(sets)
                out[b] = credits.value if by_value else credits.conversions
            return out

        return regame
