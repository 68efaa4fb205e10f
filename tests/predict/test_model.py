"""The propensity model on generated data whose true drivers are known, its time split, its baseline and
its honesty when the data are thin; next steps and content recommendations on hand-made inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from journeylens.demo import TRUE_EFFECTS
from journeylens.journeys import build
from journeylens.predict import TrainingSettings, load, predict, recommend, train
from journeylens.predict import propensity as P
from journeylens.store import Workspace

# -- the time split -----------------------------------------------------------------------------------------


@given(
    days=st.integers(min_value=0, max_value=800),
    horizon=st.integers(min_value=1, max_value=90),
    step=st.integers(min_value=1, max_value=30),
    share=st.floats(min_value=0.05, max_value=0.9),
)
def test_no_training_label_reaches_into_the_held_out_period(days, horizon, step, share):
    first = datetime(2024, 1, 1, 9, 30, 15, 123456, tzinfo=UTC)
    last = first + timedelta(days=days)
    settings = TrainingSettings(horizon_days=horizon, step_days=step, test_share=share)
    cutoffs = P.cutoff_schedule(first, last, settings)
    # every cut-off's horizon ends inside the data, whole seconds, one step apart
    assert all(c + timedelta(days=horizon) <= last and c.microsecond == 0 for c in cutoffs)
    assert all(b - a == timedelta(days=step) for a, b in zip(cutoffs, cutoffs[1:], strict=False))
    train_cuts, test_cuts = P.split_cutoffs(cutoffs, settings)
    if not cutoffs:
        assert (train_cuts, test_cuts) == ([], [])
        return
    assert test_cuts == cutoffs[-len(test_cuts) :] and len(test_cuts) >= 1
    # the training labels (cut-off + horizon) end before the first held-out cut-off
    assert all(c + timedelta(days=horizon) <= test_cuts[0] for c in train_cuts)
    assert set(train_cuts).isdisjoint(test_cuts)


def test_the_baseline_is_the_smoothed_purchase_rate_of_the_current_phase():
    frame = pd.DataFrame(
        {"current_phase": ["awareness"] * 10 + ["purchase"] * 10, "label": [0] * 9 + [1] + [1] * 6 + [0] * 4}
    )
    rates, overall = P.phase_rates(frame)
    assert overall == pytest.approx(7 / 20)
    # (positives + 10 * overall) / (n + 10)
    assert rates["awareness"] == pytest.approx((1 + 3.5) / 20)
    assert rates["purchase"] == pytest.approx((6 + 3.5) / 20)


def test_the_calibration_table_bins_by_predicted_probability():
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    table = P.calibration_table(y, p, bins=3)
    assert [row["n"] for row in table] == [2, 2, 2]
    assert [row["observed"] for row in table] == [0.0, 0.5, 1.0]
    assert [row["predicted"] for row in table] == pytest.approx([0.15, 0.45, 0.8])


# -- on generated data: the true drivers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    from journeylens.demo import write_demo

    tmp = tmp_path_factory.mktemp("predict")
    files = write_demo(tmp / "demo.parquet", 5000, seed=0)
    ws = Workspace(tmp / "ws")
    ws.ingest(files.touchpoints)
    ws.ingest(files.persons, kind="persons")
    build(ws, model="five-phase")
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def trained(demo_ws):
    return train(demo_ws)


@pytest.mark.slow
def test_the_model_beats_the_phase_baseline_on_the_held_out_period(trained):
    m = trained.metrics
    assert trained.source == "model", trained.reason
    assert m["test_positives"] >= 100 and m["train_positives"] >= 300
    assert m["model"]["auc"] > m["baseline"]["auc"] + 0.1
    assert m["model"]["log_loss"] < m["baseline"]["log_loss"]
    # calibrated: over the deciles, predicted and observed rates agree to within a few points
    cal = pd.DataFrame(m["calibration"])
    assert (cal["predicted"] - cal["observed"]).abs().max() < 0.06
    assert cal["observed"].iloc[-1] > 3 * cal["observed"].iloc[0]
    # the training period ends a horizon before the held-out one
    period = trained.period
    last_train = datetime.fromisoformat(period["train_last_cutoff"])
    assert last_train + timedelta(days=30) <= datetime.fromisoformat(period["test_first_cutoff"])


@pytest.mark.slow
def test_the_model_relies_on_the_true_drivers(trained):
    """The generator's purchase model (TRUE_EFFECTS) has persona, the four flagged content types (demo,
    webinar, success story, review) and the number of contacts as its drivers; every other content type
    only comes with the journey's length and phase. Shuffling a persona feature costs the most AUC of the
    person's attributes, and the driver content types matter more than the other content types."""
    assert set(TRUE_EFFECTS["purchase"]) >= {"low_involvement", "mid_involvement", "high_involvement"}
    imp = {row["feature"]: row["importance"] for row in trained.metrics["importance"]}
    drivers = ["ct_demo", "ct_webinar", "ct_success_story", "ct_review"]
    others = [f for f in imp if f.startswith("ct_") and f not in drivers]
    assert max(imp[f"persona_{p}"] for p in ("low_involvement", "mid_involvement", "high_involvement")) > 0.01
    assert np.mean([imp[f] for f in drivers]) > np.mean([imp[f] for f in others])
    ranked = sorted((f for f in imp if f.startswith("ct_")), key=lambda f: -imp[f])
    assert len(set(ranked[:4]) & set(drivers)) >= 2, ranked[:6]


@pytest.mark.slow
def test_the_model_is_saved_with_its_period_and_predictions_cover_every_open_journey(demo_ws, trained):
    saved = load(demo_ws)
    assert (
        saved is not None
        and saved.period == trained.period
        and saved.metrics["model"] == trained.metrics["model"]
    )
    assert (demo_ws.path / "models" / "propensity.json").exists()
    result = predict(demo_ws)
    frame = result.to_pandas()
    j = demo_ws.journeys
    open_ids = set(j.filter(j.status == "open").journey_id.to_pandas())
    assert set(frame["journey_id"]) == open_ids
    purchase = frame[frame["journey_type"] == "purchase"]
    assert purchase["propensity"].between(0, 1).all() and purchase["propensity_source"].eq("model").all()
    assert frame.loc[frame["journey_type"] != "purchase", "propensity"].isna().all()
    # sorted by propensity, and stored in the workspace
    assert list(purchase["propensity"]) == sorted(purchase["propensity"], reverse=True)
    assert demo_ws.table("predictions").count().execute() == len(frame)
    # a recommendation is never content the person has already seen
    seen = recommend.seen_content(demo_ws, frame["person_id"])
    for row in result.records():
        assert not {c["content_type"] for c in row["next_best_content"]} & seen.get(row["person_id"], set())
        assert all(
            c["lift"] > 1 and c["exposed"] >= 30 and c["unexposed"] >= 30 for c in row["next_best_content"]
        )


def test_thin_data_fall_back_to_the_baseline_and_say_why(tmp_path):
    from journeylens.demo import write_demo

    files = write_demo(tmp_path / "demo.parquet", 120, seed=5)
    ws = Workspace(tmp_path / "ws")
    ws.ingest(files.touchpoints)
    build(ws, model="five-phase")
    model = train(ws, save=False)
    assert model.source == "baseline" and model.estimator is None
    assert "too few purchases" in model.reason
    frame = pd.DataFrame({"current_phase": ["awareness", "purchase", "nowhere"]})
    expected = [model.baseline_rates.get(p, model.overall_rate) for p in frame["current_phase"]]
    assert list(model.predict(frame)) == expected
    assert "baseline" in P.describe(model)
    ws.close()


# -- next best content ------------------------------------------------------------------------------------


def _evidence(rows):
    cols = recommend.EVIDENCE_COLUMNS
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])


EVIDENCE = _evidence(
    [
        # type, persona, phase, content, lift, low, high, exposed, unexposed, moved exp, moved unexp, thin
        ("purchase", "*", "consideration", "webinar", 1.5, 1.2, 1.8, 200, 800, 0.6, 0.4, False),
        ("purchase", "*", "consideration", "review", 1.9, 1.1, 2.7, 60, 900, 0.76, 0.4, False),
        ("purchase", "*", "consideration", "whitepaper", 1.3, 1.25, 1.35, 500, 500, 0.52, 0.4, False),
        ("purchase", "*", "consideration", "tutorial", 0.9, 0.8, 1.0, 300, 700, 0.36, 0.4, False),
        ("purchase", "*", "consideration", "demo", 3.0, 0.9, 5.0, 10, 990, 1.0, 0.33, True),
        ("purchase", "high", "consideration", "webinar", 2.0, 1.6, 2.4, 100, 100, 0.8, 0.4, False),
        ("purchase", "high", "consideration", "review", 0.8, 0.5, 1.1, 40, 160, 0.3, 0.4, False),
        ("purchase", "*", "awareness", "blog", 1.4, 1.3, 1.5, 300, 300, 0.7, 0.5, False),
    ]
)


def test_content_is_ranked_by_the_lower_end_of_its_lift():
    picks = recommend.recommend(EVIDENCE, "purchase", None, "consideration", set(), k=5)
    # tutorial (lift below 1) and demo (too thin) are never recommended
    assert [p["content_type"] for p in picks] == ["whitepaper", "webinar", "review"]
    assert picks[0]["basis"] == "purchase journeys in consideration, all personas"
    assert "52% of 500 journeys that saw whitepaper" in picks[0]["why"]


def test_a_persona_uses_its_own_evidence_where_it_is_solid_and_skips_what_was_seen():
    picks = recommend.recommend(EVIDENCE, "purchase", "high", "consideration", {"whitepaper"}, k=5)
    # the high persona's own webinar figures replace the overall ones; its own review lift (0.8, on enough
    # journeys) is evidence against review, which the overall 1.9 does not overrule; whitepaper was seen
    assert [(p["content_type"], p["lift"]) for p in picks] == [("webinar", 2.0)]
    assert picks[0]["basis"].endswith("high persona")
    # another persona without figures of its own gets the overall ones
    other = recommend.recommend(EVIDENCE, "purchase", "low", "consideration", set(), k=5)
    assert [p["content_type"] for p in other] == ["whitepaper", "webinar", "review"]
    assert all(p["basis"].endswith("all personas") for p in other)
    assert recommend.recommend(EVIDENCE, "purchase", "high", "loyalty", set()) == []
    assert recommend.recommend(EVIDENCE, "purchase", None, None, set()) == []


def test_a_person_sample_keeps_whole_persons_and_their_features(demo_ws):
    from journeylens.predict import features as F

    vocab = F.vocabulary(demo_ws)
    first, last = F.data_period(demo_ws)
    cutoffs = [first + (last - first) * share for share in (0.3, 0.6)]
    cutoffs = [c.replace(microsecond=0) for c in cutoffs]
    full = F.snapshots(demo_ws, cutoffs, vocab, horizon_days=30)
    part = F.snapshots(demo_ws, cutoffs, vocab, horizon_days=30, sample=0.3)
    persons, kept = set(full["person_id"]), set(part["person_id"])
    assert kept < persons and 0.2 < len(kept) / len(persons) < 0.4
    # the same rows as in the full set, for exactly the persons kept (at every cut-off)
    expected = full[full["person_id"].isin(kept)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.reset_index(drop=True), expected)
