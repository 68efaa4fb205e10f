"""Rule-based attribution: each conversion is split over the touches of its journey by a fixed rule.

=================  ======================================================================================
model              share of a journey's conversion (and value) per touch, for a journey of ``n`` touches
=================  ======================================================================================
``LastTouch``      all to the last touch (the plain baseline)
``FirstTouch``     all to the first touch
``Linear``         ``1 / n`` to every touch
``TimeDecay``      proportional to ``2 ** (-age / half_life_days)``, ``age`` the days from the touch to the
                   conversion (``conversion_time``, or the last touch when there is none); needs timestamps
``PositionBased``  ``first`` to the first touch, ``last`` to the last, the rest split evenly over the touches
                   in between; one touch gets everything; **two touches split evenly** (``1/2`` each, whatever
                   ``first`` and ``last`` are: with no middle there is no rule that prefers either end)
=================  ======================================================================================

Touches are counted as given: a channel touched twice gets two shares (Markov's ``repeats`` option is about its
chain's states, not about these rules).
"""

from __future__ import annotations

import numpy as np

from journeylens.attribution.base import AdditiveModel, Bootstrap, check_number
from journeylens.attribution.paths import SECONDS_PER_DAY, PathTable
from journeylens.errors import SpecError


class _Heuristic(AdditiveModel):
    def __init__(
        self,
        *,
        target: str = "conversions",
        include_nulls: bool = True,
        lookback_days: float | None = None,
        key: str = "channel",
        bootstrap: Bootstrap | None = None,
    ) -> None:
        self.target = target
        self.include_nulls = include_nulls
        self.lookback_days = lookback_days
        self.key = key
        self.bootstrap = bootstrap


def _one_hot(table: PathTable, touches: np.ndarray) -> np.ndarray:
    weights = np.zeros(len(table.codes))
    weights[touches] = 1.0
    return weights


class LastTouch(_Heuristic):
    """All credit to the last touch of each journey: the plain baseline."""

    name = "last_touch"

    def touch_weights(self, table: PathTable) -> np.ndarray:
        return _one_hot(table, table.last_touch())


class FirstTouch(_Heuristic):
    """All credit to the first touch of each journey."""

    name = "first_touch"

    def touch_weights(self, table: PathTable) -> np.ndarray:
        return _one_hot(table, table.first_touch())


class Linear(_Heuristic):
    """Each of a journey's ``n`` touches gets ``1 / n`` of its conversion."""

    name = "linear"

    def touch_weights(self, table: PathTable) -> np.ndarray:
        return np.repeat(1.0 / table.lengths, table.lengths)


class TimeDecay(AdditiveModel):
    """Credit proportional to ``2 ** (-age_days / half_life_days)``: a touch a half-life older counts half.

    ``age_days`` is measured on real timestamps from the touch to the conversion (``conversion_time`` when given,
    else the journey's last touch), so it needs per-touch input with a ``timestamp`` column.
    """

    name = "time_decay"
    needs_timestamps = True

    def __init__(
        self,
        *,
        half_life_days: float = 7.0,
        target: str = "conversions",
        include_nulls: bool = True,
        lookback_days: float | None = None,
        key: str = "channel",
        bootstrap: Bootstrap | None = None,
    ) -> None:
        self.half_life_days = half_life_days
        self.target = target
        self.include_nulls = include_nulls
        self.lookback_days = lookback_days
        self.key = key
        self.bootstrap = bootstrap

    def _validate_params(self) -> None:
        super()._validate_params()
        check_number("TimeDecay", "half_life_days", self.half_life_days, low=0, low_open=True)

    def touch_weights(self, table: PathTable) -> np.ndarray:
        if table.age_seconds is None:
            raise SpecError(
                "needs_timestamps: TimeDecay needs per-touch input with a 'timestamp' column",
                code="needs_timestamps",
            )
        if len(table.codes) == 0:
            return np.zeros(0)
        age_days = table.age_seconds / SECONDS_PER_DAY
        # relative to each journey's youngest touch, so that old journeys do not underflow to 0 / 0
        youngest = np.minimum.reduceat(age_days, table.first_touch())
        raw = np.exp2(-(age_days - np.repeat(youngest, table.lengths)) / self.half_life_days)
        totals = np.add.reduceat(raw, table.first_touch())
        return raw / np.repeat(totals, table.lengths)


class PositionBased(AdditiveModel):
    """``first`` to the first touch, ``last`` to the last, the rest evenly over the middle touches.

    One touch gets everything; two touches get ``1/2`` each (documented choice: with no middle touch, the middle
    share has nowhere to go, and neither end is preferred). ``first + last`` must be at most 1.
    """

    name = "position_based"

    def __init__(
        self,
        *,
        first: float = 0.4,
        last: float = 0.4,
        target: str = "conversions",
        include_nulls: bool = True,
        lookback_days: float | None = None,
        key: str = "channel",
        bootstrap: Bootstrap | None = None,
    ) -> None:
        self.first = first
        self.last = last
        self.target = target
        self.include_nulls = include_nulls
        self.lookback_days = lookback_days
        self.key = key
        self.bootstrap = bootstrap

    def _validate_params(self) -> None:
        super()._validate_params()
        check_number("PositionBased", "first", self.first, low=0, high=1)
        check_number("PositionBased", "last", self.last, low=0, high=1)
        if self.first + self.last > 1:
            raise SpecError(
                "invalid_model_param: the 'first' and 'last' parameters of PositionBased must add up to at most 1. "
                f"Got {self.first!r} + {self.last!r} instead.",
                code="invalid_model_param",
            )

    def touch_weights(self, table: PathTable) -> np.ndarray:
        lengths = table.lengths
        n = np.repeat(lengths, lengths)
        middle = (1.0 - self.first - self.last) / np.maximum(n - 2, 1)
        weights = np.where(n >= 3, middle, np.where(n == 2, 0.5, 1.0))
        long_rows = lengths >= 3
        weights[table.first_touch()[long_rows]] = self.first
        weights[table.last_touch()[long_rows]] = self.last
        return weights
