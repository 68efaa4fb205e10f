"""Features at a cut-off: hand-worked values on both engines, and no look into the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from journeylens.journeys import build
from journeylens.predict import features as F
from journeylens.store import Workspace

PEOPLE = {
    "ann": [
        ("ad_view", "2024-03-01T10:00:00", {"channel": "social", "content_type": "ad"}),
        ("site_visit", "2024-03-02T10:00:00"),
        ("comparison_view", "2024-03-04T10:00:00", {"content_type": "comparison"}),
        ("purchase", "2024-03-11T10:00:00", {"revenue": 100.0}),
    ],
    # browses anonymously on 03-03; the login on 03-06 links the device
    "ben": [
        ("site_visit", "2024-03-03T10:00:00", {"person_id": None, "anonymous_id": "dev-b"}),
        ("login", "2024-03-06T10:00:00", {"anonymous_id": "dev-b"}),
        ("product_view", "2024-03-07T10:00:00", {"content_type": "product_sheet"}),
    ],
    # bought in January; an ad 52 days later opens a repeat purchase journey
    "cat": [
        ("purchase", "2024-01-10T10:00:00", {"revenue": 50.0, "channel": "store"}),
        ("ad_view", "2024-03-03T10:00:00", {"channel": "social", "content_type": "ad"}),
    ],
}
C1, C2, C3 = (datetime(2024, 3, d, tzinfo=UTC) for d in (5, 8, 12))
H14 = 14 / 24  # ten o'clock to midnight, in days


@pytest.fixture
def ws(backend, make_workspace):
    ws = make_workspace(backend, PEOPLE)
    build(ws, model="five-phase")
    return ws


def rows(frame, cutoff):
    at = frame[frame["cutoff"] == F.epoch(cutoff)]
    return {r["person_id"]: r for r in at.to_dict("records")}


def test_features_at_three_cut_offs_worked_by_hand(ws):
    vocab = F.vocabulary(ws)
    assert set(vocab.channels) == {"social", "website", "store"}
    frame = F.snapshots(ws, [C1, C2, C3], vocab, horizon_days=30)

    at1 = rows(frame, C1)
    # ben's only touchpoint before C1 is anonymous and linked to him only on 03-06: not known at C1
    assert set(at1) == {"ann", "cat"}
    ann = at1["ann"]
    assert ann["touchpoints"] == 3 and ann["distinct_channels"] == 2
    assert ann["days_active"] == pytest.approx(3 + H14)  # 03-01 10:00 -> 03-05 00:00
    assert ann["days_since_last"] == pytest.approx(H14)  # 03-04 10:00
    # site_visit and comparison_view are consideration (index 1), entered on 03-02 10:00
    assert (ann["current_phase"], ann["phase_reached"]) == ("consideration", 1)
    assert ann["days_in_phase"] == pytest.approx(2 + H14)
    assert (ann["ch_social"], ann["ch_website"], ann["ct_ad"], ann["ct_comparison"]) == (1, 2, 1, 1)
    assert ann["first_channel"] == "social" and ann["prior_purchases"] == 0 and ann["repeat"] == 0
    assert ann["label"] == 1  # buys on 03-11, within 30 days
    cat = at1["cat"]
    assert (cat["touchpoints"], cat["prior_purchases"], cat["repeat"], cat["label"]) == (1, 1, 1, 0)
    assert cat["current_phase"] == "awareness"

    at2 = rows(frame, C2)
    assert set(at2) == {"ann", "ben", "cat"}
    ben = at2["ben"]
    # now known: the anonymous visit (linked 03-06), the login and the product view
    assert ben["touchpoints"] == 3
    assert ben["days_active"] == pytest.approx(4 + H14)  # from the visit's own time, 03-03 10:00
    assert (ben["current_phase"], ben["phase_reached"], ben["label"]) == ("purchase", 2, 0)
    assert at2["ann"]["days_since_last"] == pytest.approx(3 + H14)

    # ann bought on 03-11: her journey is no longer open at C3
    assert set(rows(frame, C3)) == {"ben", "cat"}


def test_the_label_counts_purchases_within_the_horizon_only(ws):
    vocab = F.vocabulary(ws)
    # ann buys 6 days 10 hours after C1
    short = rows(F.snapshots(ws, [C1], vocab, horizon_days=6), C1)
    longer = rows(F.snapshots(ws, [C1], vocab, horizon_days=6.5), C1)
    assert (short["ann"]["label"], longer["ann"]["label"]) == (0, 1)
    # without a horizon there is no label (scoring the present)
    assert "label" not in F.snapshots(ws, [C1], vocab).columns


def test_the_matrix_has_one_column_per_feature_in_order(ws):
    vocab = F.vocabulary(ws)
    frame = F.snapshots(ws, [C2], vocab, horizon_days=30)
    x = F.matrix(frame, vocab)
    assert list(x.columns) == vocab.feature_names()
    ann = x[frame["person_id"] == "ann"].iloc[0]
    assert (ann["first_channel_social"], ann["first_channel_website"], ann["touchpoints"]) == (1.0, 0.0, 3.0)


@pytest.fixture(scope="module")
def demo_events(tmp_path_factory):
    """Generated touchpoints of identified persons (anonymous-only rows dropped: see the next test)."""
    from journeylens.demo import write_demo

    files = write_demo(tmp_path_factory.mktemp("leak") / "demo.parquet", 600, seed=11)
    import pyarrow.parquet as pq

    table = pq.read_table(files.touchpoints)
    return table.filter(pc.is_valid(table["person_id"])), pq.read_table(files.persons)


def _workspace(path, events, persons):
    ws = Workspace(path)
    ws.ingest(events)
    ws.ingest(persons, kind="persons")
    build(ws, model="five-phase")
    return ws


def test_no_feature_uses_information_from_after_the_cut_off(tmp_path, demo_events):
    """Features at a cut-off are the same whether or not the data after it exist: a workspace holding only
    the touchpoints before the cut-off gives identical rows (the label, which is about the future, aside)."""
    events, persons = demo_events
    full = _workspace(tmp_path / "full", events, persons)
    first, last = F.data_period(full)
    cutoffs = [(first + (last - first) * share).replace(microsecond=0) for share in (0.4, 0.7)]
    vocab = F.vocabulary(full)
    for cutoff in cutoffs:
        before = events.filter(
            pc.less(events["timestamp"], pa.scalar(cutoff, type=events.schema.field("timestamp").type))
        )
        cut = _workspace(tmp_path / f"cut-{F.epoch(cutoff)}", before, persons)
        seen = F.snapshots(full, [cutoff], vocab, horizon_days=30).drop(columns="label")
        then = F.snapshots(cut, [cutoff], vocab)
        assert len(seen) > 50
        key = ["journey_id"]
        seen = seen.sort_values(key).reset_index(drop=True)
        then = then.sort_values(key).reset_index(drop=True)[list(seen.columns)]
        # every column, every row
        assert seen.equals(then) or seen.compare(then).empty, seen.compare(then)
        cut.close()
    # and the cut-offs were inside the data, with journeys still to come after them
    assert cutoffs[-1] + timedelta(days=30) < last
