"""Properties every model must have, on generated path sets (hypothesis)."""

from __future__ import annotations

import pandas as pd
import pytest
from attribution_helpers import rows_to_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylens.attribution import MODELS, Markov, Shapley, TimeDecay

CHANNELS = "abcde"

row_strategy = st.tuples(
    st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=5).map(tuple),
    st.integers(0, 3),  # conversions
    st.integers(1, 40),  # value per conversion
    st.integers(0, 3),  # nulls
).map(lambda r: (r[0], float(r[1]), float(r[1] * r[2]), float(r[3])))
rows_strategy = st.lists(row_strategy, min_size=1, max_size=8)

# every model, with the variants that change the maths (time decay needs per-touch input: tested on touches)
VARIANTS = {
    "first_touch": MODELS["first_touch"](),
    "last_touch": MODELS["last_touch"](),
    "linear": MODELS["linear"](),
    "position_based": MODELS["position_based"](first=0.3, last=0.5),
    "markov_1": Markov(order=1),
    "markov_2_keep": Markov(order=2, repeats="keep"),
    "markov_3_no_nulls": Markov(order=3, include_nulls=False),
    "shapley": Shapley(),
    "shapley_rate": Shapley(value_function="conversion_rate"),
    "shapley_sampled": Shapley(n_samples=20),
}
ADDITIVE_OR_SHAPLEY = ("first_touch", "last_touch", "linear", "position_based", "shapley", "shapley_sampled")

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def touches_from_rows(rows) -> pd.DataFrame:
    """Per-touch journeys (one per conversion or null) with daily timestamps, from aggregated rows."""
    out = []
    n = 0
    for path, conv, value, nulls in rows:
        outcomes = [(True, value / conv if conv else 0.0)] * int(conv) + [(False, 0.0)] * int(nulls)
        for converted, journey_value in outcomes:
            for position, channel in enumerate(path):
                out.append(
                    {
                        "journey_id": f"j{n}",
                        "position": position,
                        "channel": channel,
                        "timestamp": 1_700_000_000 + 86_400 * (position + 3 * (n % 4)),
                        "converted": converted,
                        "value": journey_value,
                    }
                )
            n += 1
    return pd.DataFrame(out)


@SETTINGS
@given(rows=rows_strategy, name=st.sampled_from(sorted(VARIANTS)))
def test_credits_sum_to_the_totals(rows, name):
    model = VARIANTS[name].fit(rows_to_frame(rows))
    total_conversions = sum(r[1] for r in rows)
    total_value = sum(r[2] for r in rows)
    assert model.credits_["attributed_conversions"].sum() == pytest.approx(total_conversions, abs=1e-9)
    assert model.credits_["attributed_value"].sum() == pytest.approx(total_value, abs=1e-9)
    assert model.total_conversions_ == pytest.approx(total_conversions)


@SETTINGS
@given(rows=rows_strategy.filter(lambda rows: 1 <= sum(r[1] + r[3] for r in rows) <= 25))
def test_time_decay_sums_to_the_totals(rows):
    model = TimeDecay(half_life_days=2).fit(touches_from_rows(rows))
    assert model.credits_["attributed_conversions"].sum() == pytest.approx(sum(r[1] for r in rows), abs=1e-9)
    assert model.credits_["attributed_value"].sum() == pytest.approx(sum(r[2] for r in rows), abs=1e-9)


@SETTINGS
@given(rows=rows_strategy, name=st.sampled_from(ADDITIVE_OR_SHAPLEY))
def test_a_channel_on_no_converting_path_gets_nothing(rows, name):
    rows = [*rows, (("z",), 0.0, 0.0, 2.0), (("a", "z", "b"), 0.0, 0.0, 1.0)]
    got = VARIANTS[name].fit(rows_to_frame(rows)).credits_.set_index("channel")
    assert got.loc["z", "attributed_conversions"] == 0
    assert got.loc["z", "attributed_value"] == 0


@SETTINGS
@given(rows=rows_strategy)
def test_markov_channel_on_no_converting_path_has_no_removal_effect_when_states_are_whole_paths(rows):
    # order >= the longest path: states are whole prefixes (see the module docstring for lower orders)
    rows = [*rows, (("z",), 0.0, 0.0, 2.0), (("a", "z"), 0.0, 0.0, 1.0)]
    longest = max(len(r[0]) for r in rows)
    if longest > 4:
        rows = [r for r in rows if len(r[0]) <= 4]
    got = Markov(order=4, repeats="keep").fit(rows_to_frame(rows)).credits_.set_index("channel")
    assert got.loc["z", "removal_effect"] == 0
    assert got.loc["z", "attributed_conversions"] == 0


@SETTINGS
@given(
    rows=rows_strategy,
    name=st.sampled_from(sorted(VARIANTS)),
    permutation=st.permutations(CHANNELS),
)
def test_relabelling_channels_permutes_the_credits(rows, name, permutation):
    rename = dict(zip(CHANNELS, permutation, strict=True))
    renamed = [(tuple(rename[c] for c in path), conv, value, nulls) for path, conv, value, nulls in rows]
    model = VARIANTS[name]
    before = model.fit(rows_to_frame(rows)).credits_.set_index("channel")
    after = model.fit(rows_to_frame(renamed)).credits_.set_index("channel")
    if name == "shapley_sampled":
        # the sample is drawn over channel codes, which follow the names; only the totals are invariant
        assert after["attributed_conversions"].sum() == pytest.approx(before["attributed_conversions"].sum())
        return
    for channel in before.index:
        for column in before.columns:
            assert after.loc[rename[channel], column] == pytest.approx(before.loc[channel, column], abs=1e-9)
