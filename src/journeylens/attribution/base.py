"""The estimator contract every attribution model follows, and what they share.

The contract (STYLE.md, example 6; scikit-learn's estimator rules):

- the constructor takes keyword-only parameters and only stores them, unchanged; it validates nothing;
- ``fit(journeys)`` validates the parameters (``SpecError`` naming the parameter, what it must be and what it got),
  learns, and returns ``self``;
- everything learned ends in ``_``: ``credits_`` (one row per channel: ``channel``, ``attributed_conversions``,
  ``attributed_value`` and the model's own columns), ``journey_credit_``, ``channels_``, ``total_conversions_``,
  ``total_value_``, ``unattributed_conversions_``, ``unattributed_value_``;
- ``get_params()`` returns the constructor's parameters, so that ``type(m)(**m.get_params())`` is an unfitted copy.

Options every model takes:

- ``target``: ``"conversions"`` or ``"value"``. Both quantities are always attributed and reported
  (``attributed_conversions``, ``attributed_value``); ``target`` names the one the uncertainty columns describe
  (``ci_low`` / ``ci_high`` of the bootstrap, ``std_error`` of Shapley sampling).
- ``include_nulls``: whether the journeys that did not convert are part of the data. They get no credit in any
  model, but they shape Markov's chain (its conversion probabilities) and Shapley's conversion-rate game, and they are
  part of the population the bootstrap resamples.
- ``lookback_days``: keep only touches at most this many days before the conversion (per-touch input with
  timestamps; see ``paths``). A converting journey with no touch left is not credited: it is counted in
  ``unattributed_conversions_`` / ``unattributed_value_``, and ``credits_`` sums to the rest.
- ``key``: the per-touch column whose values are credited (``"channel"``, ``"touchpoint"``, ``"content_type"``, a
  phase ...). Aggregated paths carry their own channels; ``key`` does not apply to them.
- ``bootstrap``: a ``Bootstrap(n, seed, alpha)``, or ``None``. Adds ``ci_low`` / ``ci_high``: the percentile
  interval of the target column over ``n`` resamples of the journeys (the journeys the model uses: with
  ``include_nulls=False`` the converting ones only). A resample is one multinomial draw of ``N`` journeys over the
  distinct (path, outcome) pairs, made in two exact steps (how many convert, then on which paths), so it costs one
  draw per distinct path, never one per journey, and the non-converting side is not drawn at all for the models it
  cannot change. Each model then recomputes its credits from the resampled counts without re-reading the paths: a
  sparse product for the rule-based models and closed-form Shapley, new edge counts and solves for Markov.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import sparse

from journeylens.attribution.paths import PathTable, as_path_table
from journeylens.errors import SpecError

TARGETS = ("conversions", "value")
_BOOTSTRAP_CELLS = 8e6  # resampled (replicate, row) counts held at once

#: resampled (conversions, value, nulls), each (replicates, rows) -> target credits (replicates, channels)
Replicator = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
CREDIT_COLUMNS = ("channel", "attributed_conversions", "attributed_value")
JOURNEY_CREDIT_COLUMNS = ("journey_id", "position", "channel", "attributed_conversions", "attributed_value")


def param_error(owner: str, name: str, expected: str, got: Any) -> SpecError:
    return SpecError(
        f"invalid_model_param: the '{name}' parameter of {owner} must be {expected}. Got {got!r} instead.",
        code="invalid_model_param",
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def check_number(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float,
    low_open: bool = False,
    high: float | None = None,
    integer: bool = False,
) -> None:
    """Raise a ``SpecError`` unless ``value`` is a number in the stated range."""
    ok = _is_number(value) and np.isfinite(value)
    if integer:
        ok = ok and isinstance(value, int | np.integer)
    if ok:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        kind = "an int" if integer else "a number"
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        if high is not None:
            bound += f" and <= {high:g}"
        raise param_error(owner, name, f"{kind} {bound}", value)


def check_choice(owner: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if not any(value == c and type(value) is type(c) for c in choices):
        raise param_error(owner, name, "one of " + ", ".join(repr(c) for c in choices), value)


@dataclass(frozen=True)
class Bootstrap:
    """Percentile bootstrap over journeys: ``n`` resamples, a ``seed`` for the generator, level ``1 - alpha``."""

    n: int = 200
    seed: int = 0
    alpha: float = 0.05

    def __post_init__(self) -> None:
        check_number("Bootstrap", "n", self.n, low=2, integer=True)
        check_number("Bootstrap", "seed", self.seed, low=0, integer=True)
        check_number("Bootstrap", "alpha", self.alpha, low=0, low_open=True, high=0.5)


@dataclass(frozen=True)
class Credits:
    """What a model's fit computes on one table: per-channel credit and the model's own columns."""

    conversions: np.ndarray  # per channel
    value: np.ndarray  # per channel
    extra: dict[str, np.ndarray]  # more per-channel columns (removal_effect, std_error, ...)
    learned: dict[str, Any] = field(
        default_factory=dict
    )  # model-level learned state, set as attributes by fit


class AttributionModel:
    """Base class of every attribution model; see the module docstring for the contract."""

    #: the registry name (``MODELS``)
    name: ClassVar[str] = ""
    #: whether the model needs per-touch input with timestamps
    needs_timestamps: ClassVar[bool] = False
    #: whether non-converting journeys change the credits (the bootstrap skips drawing them when not)
    uses_nulls: bool = True

    target: str
    include_nulls: bool
    lookback_days: float | None
    key: str
    bootstrap: Bootstrap | None

    # ---------------------------------------------------------------- params
    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        signature = inspect.signature(cls.__init__)
        return tuple(p.name for p in signature.parameters.values() if p.name != "self")

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}

    def __repr__(self) -> str:
        signature = inspect.signature(type(self).__init__)
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name, p in signature.parameters.items()
            if name != "self" and getattr(self, name) != p.default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _validate_params(self) -> None:
        owner = type(self).__name__
        check_choice(owner, "target", self.target, TARGETS)
        check_choice(owner, "include_nulls", self.include_nulls, (True, False))
        if self.lookback_days is not None:
            check_number(owner, "lookback_days", self.lookback_days, low=0, low_open=True)
        if not isinstance(self.key, str) or not self.key:
            raise param_error(owner, "key", "a non-empty column name", self.key)
        if self.bootstrap is not None and not isinstance(self.bootstrap, Bootstrap):
            raise param_error(
                owner, "bootstrap", "a Bootstrap(n=..., seed=..., alpha=...) or None", self.bootstrap
            )

    # ------------------------------------------------------------------- fit
    def prepare(self, journeys: Any) -> PathTable:
        """The input as the table this model fits: lookback applied, nulls dropped when not included."""
        table = as_path_table(journeys, key=self.key)
        if self.needs_timestamps and table.age_seconds is None:
            raise SpecError(
                f"needs_timestamps: {type(self).__name__} needs per-touch input with a 'timestamp' column; "
                "got aggregated paths (or touches without timestamps)",
                code="needs_timestamps",
            )
        if self.lookback_days is not None:
            table = table.within(self.lookback_days)
        if not self.include_nulls:
            table = table.without_nulls()
        return table

    def fit(self, journeys: Any) -> Self:
        """Learn the credits from a journey table (per-touch rows, aggregated paths or a ``PathTable``)."""
        self._validate_params()
        table = self.prepare(journeys)
        credits = self._credits(table)
        frame = pd.DataFrame(
            {
                "channel": pd.Series(table.channels, dtype=object),
                "attributed_conversions": credits.conversions,
                "attributed_value": credits.value,
                **credits.extra,
            }
        )
        if self.bootstrap is not None:
            low, high = self._bootstrap(table, self.bootstrap)
            frame["ci_low"] = low
            frame["ci_high"] = high
        self.credits_ = frame
        self.journey_credit_ = self._journey_credit(table) if table.per_journey else None
        self.channels_ = list(table.channels)
        self.total_conversions_ = table.total_conversions
        self.total_value_ = table.total_value
        self.unattributed_conversions_ = table.unattributed_conversions
        self.unattributed_value_ = table.unattributed_value
        for name, value in credits.learned.items():
            setattr(self, name, value)
        return self

    def _credits(self, table: PathTable) -> Credits:
        raise NotImplementedError

    def _journey_credit(self, table: PathTable) -> pd.DataFrame | None:
        return None

    # ------------------------------------------------------------- bootstrap
    def _replicator(self, table: PathTable) -> Replicator:
        """A function from resampled counts to target credits, prepared once for all replicates.

        It takes counts of shape (replicates, rows) (conversions, value, nulls) and returns credits of shape
        (replicates, channels) for the target. This generic one refits on each resampled table; models override it
        with something faster (a test checks that each equals this one).
        """
        column = "conversions" if self.target == "conversions" else "value"

        def refit(conversions: np.ndarray, value: np.ndarray, nulls: np.ndarray) -> np.ndarray:
            out = np.empty((conversions.shape[0], table.n_channels))
            for b in range(conversions.shape[0]):
                credits = self._credits(table.with_counts(conversions[b], value[b], nulls[b]))
                out[b] = getattr(credits, column)
            return out

        return refit

    def _bootstrap(self, table: PathTable, spec: Bootstrap) -> tuple[np.ndarray, np.ndarray]:
        conv = table.conversions
        nulls = table.nulls
        if (conv != np.round(conv)).any() or (nulls != np.round(nulls)).any():
            raise SpecError(
                "bootstrap_needs_counts: the bootstrap resamples journeys, so conversions and nulls must be whole "
                "numbers; got fractional counts",
                code="bootstrap_needs_counts",
            )
        journeys = int(conv.sum() + nulls.sum())
        if journeys == 0:
            zeros = np.zeros(table.n_channels)
            return zeros, zeros
        # one multinomial draw of all journeys over (path, outcome), done in two exact steps: how many of the
        # resampled journeys convert, Binomial(N, C / N), then which paths they follow; the non-converting journeys
        # are drawn likewise, and only for the models that use them
        converting = int(conv.sum())
        conv_rows = np.flatnonzero(conv > 0)
        null_rows = np.flatnonzero(nulls > 0) if self.uses_nulls else np.zeros(0, dtype=np.int64)
        conv_p = conv[conv_rows] / max(converting, 1)
        null_p = nulls[null_rows] / max(journeys - converting, 1)
        value_per_conversion = np.divide(table.value, conv, out=np.zeros_like(conv), where=conv > 0)
        rng = np.random.default_rng(spec.seed)
        rows = table.n_rows
        replicate = self._replicator(table)
        estimates = np.empty((spec.n, table.n_channels))
        chunk = max(1, min(spec.n, int(_BOOTSTRAP_CELLS // max(rows, 1))))
        for start in range(0, spec.n, chunk):
            size = min(chunk, spec.n - start)
            drawn = rng.binomial(journeys, converting / journeys, size=size)
            # column-major, so that the (rows, replicates) transposes the sparse products take are contiguous
            new_conv = np.zeros((size, rows), order="F")
            new_nulls = np.zeros((size, rows), order="F")
            if len(conv_rows):
                new_conv[:, conv_rows] = rng.multinomial(drawn, conv_p)
            if len(null_rows):
                new_nulls[:, null_rows] = rng.multinomial(journeys - drawn, null_p)
            estimates[start : start + size] = replicate(new_conv, new_conv * value_per_conversion, new_nulls)
        low = np.quantile(estimates, spec.alpha / 2, axis=0)
        high = np.quantile(estimates, 1 - spec.alpha / 2, axis=0)
        return low, high


class AdditiveModel(AttributionModel):
    """A model whose credit is a sum over journeys: each journey's conversion is split over its touches.

    Non-converting journeys get nothing and change nothing. Subclasses give the split, ``touch_weights`` (per touch, summing to 1 within each row); credit, the per-touch
    credit table and a fast bootstrap (one sparse product for all replicates) follow from it.
    """

    uses_nulls = False

    def touch_weights(self, table: PathTable) -> np.ndarray:
        raise NotImplementedError

    def share_matrix(self, table: PathTable) -> sparse.csr_matrix:
        """Rows x channels: the share of a row's conversion (and value) that goes to each channel."""
        matrix = sparse.csr_matrix(
            (self.touch_weights(table), (table.row_of_touch(), table.codes)),
            shape=(table.n_rows, table.n_channels),
        )
        matrix.sum_duplicates()
        return matrix

    def _credits(self, table: PathTable) -> Credits:
        table = table.subset(table.paying_rows())  # journeys without conversions give nothing to share
        weights = self.touch_weights(table)
        row = table.row_of_touch()
        n = table.n_channels
        return Credits(
            conversions=np.bincount(table.codes, weights * table.conversions[row], minlength=n),
            value=np.bincount(table.codes, weights * table.value[row], minlength=n),
            extra={},
        )

    def _journey_credit(self, table: PathTable) -> pd.DataFrame:
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
        # a resample only ever draws conversions on rows that have some
        paying = table.paying_rows()
        shares = self.share_matrix(table.subset(paying)).T.tocsr()
        by_value = self.target == "value"

        def product(conversions: np.ndarray, value: np.ndarray, nulls: np.ndarray) -> np.ndarray:
            counts = value if by_value else conversions
            return np.asarray(shares @ counts[:, paying].T).T

        return product
