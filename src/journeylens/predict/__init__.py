"""Predict and personalise: purchase propensity, the next phase and touchpoints, the next best content.

Usage::

    from journeylens import predict

    model = predict.train(ws)                 # time-split training, evaluation beside a baseline, saved
    model.metrics["model"]["auc"], model.metrics["baseline"]["auc"]
    result = predict.predict(ws)              # every open journey, stored as the `predictions` table
    result.to_pandas()[["person_id", "current_phase", "propensity", "next_phase"]]

- :mod:`~journeylens.predict.features`: a journey's features as known at a cut-off time (in the engine);
- :mod:`~journeylens.predict.propensity`: the scikit-learn model, its evaluation and the baseline;
- :mod:`~journeylens.predict.nextstep`: next phase and next touchpoints from the transition statistics;
- :mod:`~journeylens.predict.recommend`: the next best content from the content analysis's lift;
- :mod:`~journeylens.predict.score`: all three for the open journeys.
"""

from journeylens.predict.propensity import PropensityModel, TrainingSettings, describe, load, train
from journeylens.predict.score import Predictions, predict, stored

__all__ = [
    "Predictions",
    "PropensityModel",
    "TrainingSettings",
    "describe",
    "load",
    "predict",
    "stored",
    "train",
]
