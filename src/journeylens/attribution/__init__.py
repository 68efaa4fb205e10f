"""Attribution: which channels get the credit for conversions, by rule, by Markov chain, by Shapley value.

Every model follows one contract (``base``): keyword-only parameters stored as given, ``fit(journeys)`` returns the
model, learned state ends in ``_``, ``credits_`` has one row per channel with ``channel, attributed_conversions,
attributed_value``. Input is a journey table: per-touch rows or aggregated paths (``paths``).

>>> from journeylens.attribution import Markov, attribute, read_paths
>>> paths = read_paths(df)                                  # doctest: +SKIP
>>> Markov(order=2).fit(paths).credits_                     # doctest: +SKIP
>>> attribute(paths, layout="wide")                         # doctest: +SKIP
"""

from __future__ import annotations

from journeylens.attribution.base import AdditiveModel, AttributionModel, Bootstrap
from journeylens.attribution.compare import MODELS, attribute
from journeylens.attribution.heuristics import FirstTouch, LastTouch, Linear, PositionBased, TimeDecay
from journeylens.attribution.markov import Markov, OrderSelection
from journeylens.attribution.paths import PathTable, read_paths, read_touches
from journeylens.attribution.shapley import Shapley

__all__ = [
    "MODELS",
    "AdditiveModel",
    "AttributionModel",
    "Bootstrap",
    "FirstTouch",
    "LastTouch",
    "Linear",
    "Markov",
    "OrderSelection",
    "PathTable",
    "PositionBased",
    "Shapley",
    "TimeDecay",
    "attribute",
    "read_paths",
    "read_touches",
]
