"""Purchase propensity: how likely an open journey's person buys within a horizon.

Training (:func:`train`) looks back at the data as it stood at a series of weekly *cut-offs*
(:mod:`journeylens.predict.features`): every purchase journey open at a cut-off is one example, its
features are what was known then, and its label says whether the person bought within the horizon after
it. The split is by time, so nothing from the future leaks into training:

- the *held-out period* is the last ``test_share`` of the cut-offs whose horizon has ended;
- the model is trained on the cut-offs whose horizon ends before the held-out period starts;
- it is a scikit-learn ``HistGradientBoostingClassifier`` fitted on the earlier 80% of the training
  cut-offs and calibrated with ``CalibratedClassifierCV`` on the later 20% (sigmoid; isotonic once there
  are 1,000 positives there); with too few purchases for that, three calibration folds grouped by person.

It is reported on the held-out period with AUC, log loss, Brier score and a calibration table, beside the
*baseline*: the purchase rate of the examples in the same current phase (smoothed towards the overall
rate). Permutation importance on the held-out period says which features the model relies on.

For scoring, the model is refitted on every labelled cut-off (the held-out period included), so that it
knows the most recent behaviour; the reported metrics are those of the held-out evaluation.

**Honesty**: when there are fewer than ``min_positives`` purchases in training, fewer than
``min_test_positives`` in the held-out period, fewer than ``min_cutoffs`` training cut-offs, or when the
model does not beat the baseline's AUC there, :attr:`PropensityModel.source` is ``"baseline"``: scores are
the phase rates, and :attr:`PropensityModel.reason` says why.

The model is saved in the workspace's ``models/`` folder (``propensity.joblib``, plus the metrics as
``propensity.json``), with the data period it was trained on. A saved model is only loaded from the
workspace itself (a joblib file runs code when loaded: never load one from elsewhere).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from journeylens.errors import WorkspaceError
from journeylens.predict import features as F

if TYPE_CHECKING:
    from journeylens.store import Workspace

MODEL_FILE = "propensity.joblib"
METRICS_FILE = "propensity.json"
#: the baseline's phase rates are pulled towards the overall rate as if by this many extra examples
BASELINE_SMOOTHING = 10.0


@dataclass
class TrainingSettings:
    horizon_days: float = 30.0
    step_days: float = 7.0
    test_share: float = 0.25
    journey_type: str = F.PURCHASE
    min_positives: int = 50
    min_test_positives: int = 20
    min_cutoffs: int = 2
    max_rows: int = 400_000
    #: at most this many persons' journeys become training examples (a fixed hash sample above it)
    max_persons: int = 100_000
    seed: int = 0
    #: OpenMP threads of the gradient boosting; default half the CPUs (at least one). All of them is
    #: fastest on an idle machine, but on a busy one (an ingest, a build, the server) OpenMP's threads wait
    #: for each other: on 2 busy cores one thread trained the demo model 5x faster than two.
    threads: int | None = None


@dataclass
class PropensityModel:
    """A trained propensity model, its baseline, and how it did on the held-out period."""

    settings: TrainingSettings
    vocabulary: F.Vocabulary
    source: str  # "model" or "baseline"
    reason: str  # why the baseline is used ("" when the model is)
    baseline_rates: dict[str, float]
    overall_rate: float
    metrics: dict[str, Any] = field(default_factory=dict)
    estimator: Any = None
    trained_at: str = ""
    period: dict[str, str] = field(default_factory=dict)

    # -- scoring ------------------------------------------------------------------------------------

    def baseline(self, frame: pd.DataFrame) -> np.ndarray:
        phase = frame["current_phase"].astype("object")
        return np.array([self.baseline_rates.get(p, self.overall_rate) for p in phase], dtype="float64")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The probability of a purchase within the horizon for each snapshot row of ``frame``."""
        if frame.empty:
            return np.zeros(0)
        if self.source != "model" or self.estimator is None:
            return self.baseline(frame)
        from threadpoolctl import threadpool_limits

        # on a few rows OpenMP's threads cost more than they give (much more on a busy machine)
        with threadpool_limits(limits=1 if len(frame) < 50_000 else None, user_api="openmp"):
            return self.estimator.predict_proba(F.matrix(frame, self.vocabulary))[:, 1]

    # -- persistence --------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Everything but the estimator, as JSON-ready values."""
        return {
            "source": self.source,
            "reason": self.reason,
            "trained_at": self.trained_at,
            "period": self.period,
            "settings": asdict(self.settings),
            "vocabulary": asdict(self.vocabulary),
            "overall_rate": self.overall_rate,
            "baseline_rates": self.baseline_rates,
            "metrics": self.metrics,
        }

    def save(self, directory: str | Path) -> Path:
        import joblib
        import sklearn

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump({"model": self, "sklearn": sklearn.__version__}, directory / MODEL_FILE)
        (directory / METRICS_FILE).write_text(
            json.dumps(self.summary(), indent=2, default=str), encoding="utf-8"
        )
        return directory / MODEL_FILE


def model_directory(ws: Workspace) -> Path:
    if ws.path is None:
        raise WorkspaceError(
            "this workspace has no folder (it runs on an existing engine connection); "
            "pass directory= to save or load the propensity model"
        )
    return Path(ws.path) / "models"


def load(ws: Workspace, directory: str | Path | None = None) -> PropensityModel | None:
    """The workspace's saved model, or None when there is none or it was saved by another scikit-learn
    (retrain then: ``journeylens predict --train``)."""
    import joblib
    import sklearn

    file = Path(directory or model_directory(ws)) / MODEL_FILE
    if not file.exists():
        return None
    saved = joblib.load(file)
    if saved.get("sklearn") != sklearn.__version__:
        return None
    return saved["model"]


# -- training -----------------------------------------------------------------------------------------


def cutoff_schedule(first: datetime, last: datetime, settings: TrainingSettings) -> list[datetime]:
    """Weekly cut-offs (whole seconds) from one horizon after the first touchpoint to one horizon before
    the last: the cut-offs whose label can be observed."""
    step = timedelta(days=settings.step_days)
    horizon = timedelta(days=settings.horizon_days)
    start = (first + max(horizon, timedelta(days=14))).replace(microsecond=0)
    out = []
    c = start
    while c + horizon <= last:
        out.append(c)
        c += step
    return out


def split_cutoffs(
    cutoffs: list[datetime], settings: TrainingSettings
) -> tuple[list[datetime], list[datetime]]:
    """(training, held-out): the held-out cut-offs are the latest ``test_share``; the training ones end a
    horizon before the first held-out cut-off, so no training label looks into the held-out period."""
    if not cutoffs:
        return [], []
    n_test = max(1, round(len(cutoffs) * settings.test_share))
    test = cutoffs[-n_test:]
    horizon = timedelta(days=settings.horizon_days)
    train = [c for c in cutoffs if c + horizon <= test[0]]
    return train, test


def phase_rates(frame: pd.DataFrame) -> tuple[dict[str, float], float]:
    """The baseline: the label rate per current phase, smoothed towards the overall rate."""
    overall = float(frame["label"].mean()) if len(frame) else 0.0
    g = frame.groupby(frame["current_phase"].astype("object"), dropna=True)["label"].agg(["sum", "count"])
    rates = {
        str(p): float((row["sum"] + BASELINE_SMOOTHING * overall) / (row["count"] + BASELINE_SMOOTHING))
        for p, row in g.iterrows()
    }
    return rates, overall


def _sample(frame: pd.DataFrame, settings: TrainingSettings) -> pd.DataFrame:
    if len(frame) <= settings.max_rows:
        return frame
    return frame.sample(n=settings.max_rows, random_state=settings.seed).sort_index()


def _booster(settings: TrainingSettings) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=200,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=15,
        random_state=settings.seed,
    )


def _estimator(frame: pd.DataFrame, vocab: F.Vocabulary, settings: TrainingSettings) -> tuple[Any, Any]:
    """(calibrated model, its booster). The booster learns from the earlier 80% of the cut-offs in
    ``frame``; the calibration map is fitted on the later 20%, so it is learnt on "the future" as the
    booster sees it, as in use. With too few purchases in that later part, the calibration uses three folds
    grouped by person instead (three boosters)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import GroupKFold

    x = F.matrix(frame, vocab)
    y = frame["label"].to_numpy()
    cuts = np.sort(frame["cutoff"].unique())
    late = (
        frame["cutoff"].to_numpy() >= cuts[int(len(cuts) * 0.8)] if len(cuts) >= 5 else np.zeros(len(y), bool)
    )
    if late.any() and (~late).any() and y[late].sum() >= 30 and y[~late].sum() >= 30:
        booster = _booster(settings).fit(x[~late], y[~late])
        method = "isotonic" if y[late].sum() >= 1000 else "sigmoid"
        return CalibratedClassifierCV(FrozenEstimator(booster), method=method).fit(x[late], y[late]), booster
    positives = int(y.sum())
    folds = min(3, positives, len(frame) - positives)
    groups = frame["person_id"].astype("object").to_numpy()
    splits = list(GroupKFold(n_splits=folds).split(x, y, groups))
    method = "isotonic" if positives >= 1000 else "sigmoid"
    model = CalibratedClassifierCV(_booster(settings), method=method, cv=splits).fit(x, y)
    return model, model.calibrated_classifiers_[0].estimator


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per decile of predicted probability: examples, mean prediction, observed purchase rate."""
    if len(y) == 0:
        return []
    order = np.argsort(p, kind="stable")
    rows = []
    for chunk in np.array_split(order, min(bins, len(order))):
        rows.append(
            {"n": int(len(chunk)), "predicted": float(p[chunk].mean()), "observed": float(y[chunk].mean())}
        )
    return rows


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    if len(y) == 0 or y.min() == y.max():
        return {"auc": None, "log_loss": None, "brier": None}
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return {
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, p)),
        "brier": float(brier_score_loss(y, p)),
    }


def importance(
    booster: Any, test: pd.DataFrame, vocab: F.Vocabulary, settings: TrainingSettings
) -> list[dict[str, float]]:
    """Permutation importance on the held-out period: the drop in AUC when a feature is shuffled. Measured
    on the model's booster (calibration is a monotone map: it ranks the same), on at most 5,000 held-out
    rows (a fixed sample, so that every feature is compared with the same unshuffled score), three
    shuffles each."""
    from sklearn.inspection import permutation_importance

    if len(test) > 5000:
        test = test.sample(n=5000, random_state=settings.seed)
    y = test["label"].to_numpy()
    if y.min() == y.max():
        return []
    x = F.matrix(test, vocab)
    r = permutation_importance(booster, x, y, scoring="roc_auc", n_repeats=3, random_state=settings.seed)
    rows = [
        {"feature": name, "importance": float(m), "std": float(s)}
        for name, m, s in zip(x.columns, r.importances_mean, r.importances_std, strict=True)
    ]
    return sorted(rows, key=lambda row: -row["importance"])


def train(
    ws: Workspace,
    settings: TrainingSettings | None = None,
    *,
    save: bool = True,
    directory: str | Path | None = None,
    progress: Any = None,
) -> PropensityModel:
    """Train, evaluate on the held-out period, refit on every labelled cut-off, and (by default) save.

    ``progress``, when given, is called with a short text before each step (the CLI shows it)."""
    settings = settings or TrainingSettings()
    from threadpoolctl import threadpool_limits

    threads = settings.threads or max(1, (os.cpu_count() or 2) // 2)
    with threadpool_limits(limits=threads, user_api="openmp"):
        return _train(ws, settings, save=save, directory=directory, progress=progress)


def _train(
    ws: Workspace, settings: TrainingSettings, *, save: bool, directory: str | Path | None, progress: Any
) -> PropensityModel:
    say = progress or (lambda _text: None)
    first, last = F.data_period(ws)
    vocab = F.vocabulary(ws, journey_types=[settings.journey_type])
    cutoffs = cutoff_schedule(first, last, settings)
    train_cuts, test_cuts = split_cutoffs(cutoffs, settings)
    j = ws.journeys
    persons = int(j.filter(j.journey_type == settings.journey_type).person_id.nunique().execute())
    share = min(1.0, settings.max_persons / persons) if persons else 1.0
    say(
        f"features at {len(cutoffs)} weekly cut-offs"
        + (f" ({share:.1%} of {persons:,} persons)" if share < 1 else "")
    )
    frame = (
        F.snapshots(
            ws,
            cutoffs,
            vocab,
            journey_type=settings.journey_type,
            horizon_days=settings.horizon_days,
            sample=share,
        )
        if cutoffs
        else pd.DataFrame(columns=["cutoff", "label", "current_phase", "person_id"])
    )
    train_set = set(F.epoch(c) for c in train_cuts)
    test_set = set(F.epoch(c) for c in test_cuts)
    tr = frame[frame["cutoff"].isin(train_set)]
    te = frame[frame["cutoff"].isin(test_set)]

    period = {
        "data_first": first.isoformat(),
        "data_last": last.isoformat(),
        "train_first_cutoff": train_cuts[0].isoformat() if train_cuts else "",
        "train_last_cutoff": train_cuts[-1].isoformat() if train_cuts else "",
        "test_first_cutoff": test_cuts[0].isoformat() if test_cuts else "",
        "test_last_cutoff": test_cuts[-1].isoformat() if test_cuts else "",
    }
    metrics: dict[str, Any] = {
        "train_rows": len(tr),
        "train_positives": int(tr["label"].sum()) if len(tr) else 0,
        "test_rows": len(te),
        "test_positives": int(te["label"].sum()) if len(te) else 0,
        "persons_sampled": share,
        "train_cutoffs": len(train_cuts),
        "test_cutoffs": len(test_cuts),
    }
    rates, overall = phase_rates(tr) if len(tr) else ({}, 0.0)
    base_model = PropensityModel(settings, vocab, "baseline", "", rates, overall)
    if len(te):
        metrics["baseline"] = scores(te["label"].to_numpy(), base_model.baseline(te))

    reason = ""
    if len(train_cuts) < settings.min_cutoffs:
        reason = (
            f"the data cover too short a period: {len(train_cuts)} training cut-off(s) "
            f"(expected at least {settings.min_cutoffs} weekly cut-offs whose {settings.horizon_days:g}-day horizon "
            "ends before the held-out period)"
        )
    elif metrics["train_positives"] < settings.min_positives:
        reason = f"too few purchases to learn from: {metrics['train_positives']} in training (expected at least {settings.min_positives})"
    elif metrics["test_positives"] < settings.min_test_positives:
        reason = f"too few purchases to evaluate on: {metrics['test_positives']} in the held-out period (expected at least {settings.min_test_positives})"

    model = base_model
    if not reason:
        say(f"training on {len(tr):,} snapshots, evaluating on {len(te):,}")
        est, booster = _estimator(_sample(tr, settings), vocab, settings)
        p = est.predict_proba(F.matrix(te, vocab))[:, 1]
        y = te["label"].to_numpy()
        metrics["model"] = scores(y, p)
        metrics["calibration"] = calibration_table(y, p)
        metrics["importance"] = importance(booster, te, vocab, settings)
        base_auc = (metrics.get("baseline") or {}).get("auc")
        model_auc = metrics["model"]["auc"]
        if model_auc is None or (base_auc is not None and model_auc <= base_auc):
            reason = (
                f"the model did not beat the phase baseline on the held-out period "
                f"(AUC {model_auc:.3f} vs {base_auc:.3f})"
                if model_auc is not None and base_auc is not None
                else "the held-out period has only one outcome; the model cannot be evaluated"
            )
        else:
            say("refitting on every labelled cut-off")
            labelled = frame  # every cut-off of the schedule has an observed horizon
            rates, overall = phase_rates(labelled)
            model = PropensityModel(
                settings,
                vocab,
                "model",
                "",
                rates,
                overall,
                estimator=_estimator(_sample(labelled, settings), vocab, settings)[0],
            )
    model.reason = reason
    model.metrics = metrics
    model.period = period
    model.trained_at = datetime.now(UTC).isoformat(timespec="seconds")
    if save:
        model.save(directory or model_directory(ws))
    return model


def describe(model: PropensityModel) -> str:
    """One paragraph for people: what the scores are and how far to trust them."""
    m = model.metrics
    base = (m.get("baseline") or {}).get("auc")
    if model.source != "model":
        return f"Scores are the purchase rate of the journey's current phase (the baseline): {model.reason}."
    auc = m["model"]["auc"]
    lift = f"; the phase-only baseline scores {base:.3f}" if base is not None and not math.isnan(base) else ""
    return (
        f"Held-out AUC {auc:.3f}{lift} ({m['test_rows']:,} snapshots of open journeys at {m['test_cutoffs']} weekly "
        f"cut-offs from {model.period['test_first_cutoff'][:10]}, {m['test_positives']:,} of which bought within "
        f"{model.settings.horizon_days:g} days)."
    )
