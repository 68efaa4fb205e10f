"""The demo data generator: contract, identity, journeys, and the calibration the field quotes.

The checks work on the raw rows with pandas, independently of how the generator builds them: anonymous ids
are stitched through login rows, touchpoints are ordered by (timestamp, event_id), and the contact number
of a person's first purchase is counted from their very first touchpoint.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

from journeylens.demo import TRUE_EFFECTS, generate, write_demo
from journeylens.errors import UnusableInputError

PERSONS = 20_000
SEED = 7
START = datetime(2024, 1, 1, tzinfo=UTC)

TOUCHPOINT_COLUMNS = [
    ("event_id", pa.string()),
    ("person_id", pa.string()),
    ("anonymous_id", pa.string()),
    ("timestamp", pa.timestamp("us", tz="UTC")),
    ("channel", pa.string()),
    ("touchpoint", pa.string()),
    ("content_type", pa.string()),
    ("content_id", pa.string()),
    ("journey_type", pa.string()),
    ("revenue", pa.float64()),
    ("currency", pa.string()),
    ("satisfaction", pa.float64()),
    ("scale", pa.string()),
    ("properties", pa.string()),
]
PERSON_COLUMNS = [
    "person_id",
    "persona",
    "segment",
    "country",
    "age_band",
    "acquisition_channel",
    "signup_month",
]

# content types a touchpoint may show (the phase table of DOMAIN.md); None: no content
ALLOWED_CONTENT = {
    "ad_view": {"ad"},
    "ad_click": {"ad"},
    "social_post_view": {"social_post"},
    "article_read": {"blog_article"},
    "search_click": {"blog_article", None},
    "tutorial_view": {"tutorial"},
    "whitepaper_download": {"whitepaper"},
    "comparison_view": {"comparison"},
    "review_read": {"review"},
    "webinar_attend": {"webinar"},
    "video_view": {"video", "success_story"},
    "product_view": {"product_sheet"},
    "demo_request": {"demo"},
    "quote_request": {"quote"},
    "delivery": {"delivery_update"},
    "manual_view": {"manual"},
    "support_chat": {"support_article", None},
    "service_request": {"support_article", None},
    "newsletter_open": {"newsletter"},
    "review_written": {"review_request", None},
    "referral": {"referral_programme", None},
    "vacancy_view": {"vacancy"},
    "employer_story_view": {"employer_story"},
    "application_submitted": {"vacancy"},
}
# touchpoints that only take place after a purchase
AFTER_PURCHASE = {"newsletter_open", "service_request", "support_chat", "support_call", "manual_view"}


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, pd.DataFrame]:
    chunks = list(generate(PERSONS, seed=SEED, chunk_persons=8_000))  # three chunks
    assert len(chunks) == 3
    touchpoints = pa.concat_tables([t for t, _ in chunks]).to_pandas()
    persons = pa.concat_tables([p for _, p in chunks]).to_pandas()
    return touchpoints, persons


@pytest.fixture(scope="module")
def stitched(demo: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    """Identified touchpoints with ``who`` (person, anonymous ids resolved through logins), ``persona`` and
    ``pos`` (1-based position in the person's touchpoints ordered by timestamp, event_id)."""
    touchpoints, persons = demo
    logins = touchpoints[touchpoints.touchpoint == "login"]
    link = dict(zip(logins.anonymous_id, logins.person_id, strict=True))
    df = touchpoints.assign(who=touchpoints.person_id.fillna(touchpoints.anonymous_id.map(link)))
    df = df[df.who.notna()].sort_values(["who", "timestamp", "event_id"]).reset_index(drop=True)
    df["pos"] = df.groupby("who").cumcount() + 1
    return df.merge(
        persons[["person_id", "persona"]], left_on="who", right_on="person_id", suffixes=("", "_p")
    )


@pytest.fixture(scope="module")
def first_purchases(stitched: pd.DataFrame) -> pd.DataFrame:
    first_touch = stitched.groupby("who").timestamp.min()
    buys = (
        stitched[stitched.touchpoint == "purchase"]
        .groupby("who")
        .agg(pos=("pos", "min"), at=("timestamp", "min"))
    )
    buys["days"] = (buys["at"] - first_touch.loc[buys.index]).dt.total_seconds() / 86_400
    personas = stitched.drop_duplicates("who").set_index("who").persona
    return buys.join(personas)


# --- the contract -------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_tables_and_another_seed_other_ones() -> None:
    first = list(generate(3_000, seed=1, chunk_persons=1_000))
    again = list(generate(3_000, seed=1, chunk_persons=1_000))
    other = list(generate(3_000, seed=2, chunk_persons=1_000))
    assert len(first) == 3
    for (t1, p1), (t2, p2) in zip(first, again, strict=True):
        assert t1.equals(t2)
        assert p1.equals(p2)
    assert not first[0][0].equals(other[0][0])
    assert first[0][0].column("touchpoint").to_pylist() != other[0][0].column("touchpoint").to_pylist()


def test_tables_have_the_contract_columns_and_types() -> None:
    touchpoints, persons = next(generate(500, seed=3))
    assert [(f.name, f.type) for f in touchpoints.schema] == TOUCHPOINT_COLUMNS
    assert persons.schema.names == PERSON_COLUMNS
    assert all(f.type == pa.string() for f in persons.schema)


def test_zero_persons_gives_nothing() -> None:
    assert list(generate(0)) == []


def test_tiny_chunks_work() -> None:
    """Chunks with a handful of persons (so some personas or journeys are missing) still come out whole."""
    for persons in range(1, 13):
        chunks = list(generate(persons, seed=persons, chunk_persons=5))
        assert len(chunks) == -(-persons // 5)
        assert sum(p.num_rows for _, p in chunks) <= persons
        assert all(t.schema.names == [name for name, _ in TOUCHPOINT_COLUMNS] for t, _ in chunks)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"persons": -1}, "persons must be >= 0, got -1"),
        ({"persons": 10, "days": 0}, "days must be >= 1, got 0"),
        ({"persons": 10, "chunk_persons": 0}, "chunk_persons must be >= 1, got 0"),
    ],
)
def test_bad_arguments_are_refused_at_the_call(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(**kwargs)


def test_event_ids_are_unique_and_every_row_names_someone(demo: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    touchpoints, persons = demo
    assert touchpoints.event_id.is_unique
    assert (touchpoints.person_id.notna() | touchpoints.anonymous_id.notna()).all()
    assert persons.person_id.is_unique
    assert set(touchpoints.person_id.dropna()) == set(persons.person_id)
    assert 6.0 <= len(touchpoints) / PERSONS <= 15.0


def test_timestamps_lie_within_the_window(demo: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    touchpoints, _ = demo
    assert touchpoints.timestamp.min() >= pd.Timestamp(START)
    assert touchpoints.timestamp.max() < pd.Timestamp(START + timedelta(days=365))


def test_a_short_window_holds_every_timestamp() -> None:
    start = datetime(2023, 6, 1, tzinfo=UTC)
    touchpoints, _ = next(generate(2_000, seed=4, start=start, days=20))
    ts = touchpoints.column("timestamp").to_pandas()
    assert ts.min() >= pd.Timestamp(start)
    assert ts.max() < pd.Timestamp(start + timedelta(days=20))


# --- identity -----------------------------------------------------------------------------------------------


def test_anonymous_ids_are_linked_by_login_rows(demo: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    touchpoints, _ = demo
    logins = touchpoints[touchpoints.touchpoint == "login"]
    assert logins.person_id.notna().all() and logins.anonymous_id.notna().all()
    linked = set(zip(logins.anonymous_id, logins.person_id, strict=True))
    # an anonymous id belongs to one person
    assert logins.groupby("anonymous_id").person_id.nunique().max() == 1
    both = touchpoints[touchpoints.person_id.notna() & touchpoints.anonymous_id.notna()]
    assert set(zip(both.anonymous_id, both.person_id, strict=True)) <= linked
    # anonymous rows of identified persons come before that device's login
    anonymous = touchpoints[touchpoints.person_id.isna() & touchpoints.anonymous_id.isin(logins.anonymous_id)]
    login_time = logins.groupby("anonymous_id").timestamp.min()
    assert (anonymous.timestamp < anonymous.anonymous_id.map(login_time)).all()
    assert len(anonymous) > 0.03 * len(touchpoints)
    # some persons browse on two devices
    devices = logins.groupby("person_id").anonymous_id.nunique()
    assert (devices == 2).sum() > 0.1 * len(devices)


def test_anonymous_visitors_who_never_log_in_have_no_person(demo: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    touchpoints, _ = demo
    logged_in = set(touchpoints.anonymous_id[touchpoints.touchpoint == "login"])
    unlinked = touchpoints[touchpoints.anonymous_id.notna() & ~touchpoints.anonymous_id.isin(logged_in)]
    assert len(unlinked) > 0
    assert unlinked.person_id.isna().all()
    assert not (unlinked.touchpoint == "purchase").any()


# --- values -------------------------------------------------------------------------------------------------


def test_satisfaction_lies_within_its_scale(demo: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    touchpoints, _ = demo
    answered = touchpoints[touchpoints.satisfaction.notna()]
    assert (touchpoints.touchpoint == "survey_response").sum() == len(answered)
    assert (answered.touchpoint == "survey_response").all()
    assert answered.content_type.isna().all()
    ranges = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
    assert set(answered.scale) == set(ranges)
    for scale, (low, high) in ranges.items():
        values = answered.satisfaction[answered.scale == scale]
        assert values.between(low, high).all(), scale
    assert touchpoints.scale[touchpoints.satisfaction.isna()].isna().all()


def test_satisfaction_differs_by_touchpoint(demo: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    touchpoints, _ = demo
    surveys = touchpoints[touchpoints.touchpoint == "survey_response"]
    about = surveys.properties.map(lambda p: json.loads(p)["about"])
    mean = surveys.groupby([about, surveys.scale]).satisfaction.mean()
    assert mean[("delivery", "csat")] > 4.0
    assert mean[("complaint", "csat")] < 3.0
    assert mean[("support_call", "ces")] < mean[("support_chat", "ces")]
    nps = surveys.satisfaction[surveys.scale == "nps"]
    assert (about[surveys.scale == "nps"] == "purchase").all()
    for share in ((nps >= 9).mean(), nps.between(7, 8).mean(), (nps <= 6).mean()):
        assert 0.15 < share < 0.5  # promoters, passives and detractors


def test_revenue_is_positive_on_purchases_and_negative_on_refunds(
    demo: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    touchpoints, persons = demo
    assert ((touchpoints.revenue > 0) == (touchpoints.touchpoint == "purchase")).all()
    assert ((touchpoints.revenue < 0) == (touchpoints.touchpoint == "refund")).all()
    assert (touchpoints.currency[touchpoints.revenue.notna()] == "EUR").all()
    assert touchpoints.currency[touchpoints.revenue.isna()].isna().all()
    purchases = touchpoints[touchpoints.touchpoint == "purchase"].merge(persons, on="person_id")
    low = purchases.revenue[purchases.persona == "low_involvement"]
    high = purchases.revenue[purchases.persona == "high_involvement"]
    assert low.between(10, 60).all()
    assert high.between(5_000, 60_000).all()


def test_properties_are_json_objects_and_paid_touchpoints_carry_a_campaign(
    demo: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    touchpoints, _ = demo
    props = touchpoints.properties.dropna().map(json.loads)
    assert props.map(lambda p: isinstance(p, dict)).all()
    paid = touchpoints[
        touchpoints.channel.isin(["paid_search", "display"]) & touchpoints.touchpoint.str.startswith("ad_")
    ]
    assert len(paid) > 0
    assert paid.properties.map(lambda p: "utm_campaign" in json.loads(p)).all()


def test_content_types_belong_to_their_touchpoints(demo: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    touchpoints, _ = demo
    pairs = touchpoints.groupby(["touchpoint", "content_type"], dropna=False).size().reset_index()
    for touchpoint, content_type in zip(pairs.touchpoint, pairs.content_type, strict=True):
        allowed = ALLOWED_CONTENT.get(touchpoint, {None})
        assert (None if pd.isna(content_type) else content_type) in allowed, (touchpoint, content_type)
    assert (touchpoints.content_type.isna() == touchpoints.content_id.isna()).all()


def test_journey_type_marks_only_job_applications(demo: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    touchpoints, persons = demo
    rows = touchpoints.merge(persons[["person_id", "persona"]], on="person_id")
    candidate = rows.persona == "job_candidate"
    assert (rows.journey_type[candidate] == "job_application").all()
    assert rows.journey_type[~candidate].isna().all()
    assert touchpoints.journey_type[touchpoints.person_id.isna()].isna().all()
    steps = set(rows.touchpoint[candidate])
    assert {"vacancy_view", "employer_story_view", "application_submitted", "interview", "hired"} <= steps
    assert "purchase" not in steps


# --- journeys -----------------------------------------------------------------------------------------------


def test_every_journey_type_occurs(demo: tuple[pd.DataFrame, pd.DataFrame], stitched: pd.DataFrame) -> None:
    touchpoints, persons = demo
    counts = touchpoints.touchpoint.value_counts()
    for opener in ("purchase", "complaint", "service_request", "repair_request", "return_request"):
        assert counts.get(opener, 0) > 20, opener
    assert counts["purchase"] > counts["complaint"] + counts["service_request"] + counts["return_request"]
    assert counts["refund"] > 0.5 * counts["return_request"]
    # service-type journeys come mostly after a purchase
    first_buy = stitched[stitched.touchpoint == "purchase"].groupby("who").timestamp.min()
    service = stitched[
        stitched.touchpoint.isin(["complaint", "repair_request", "return_request", "service_request"])
    ]
    after_buy = service.timestamp > service.who.map(first_buy)
    assert after_buy.mean() > 0.8


def test_buyers_come_back_refer_and_many_never_buy(
    demo: tuple[pd.DataFrame, pd.DataFrame], first_purchases: pd.DataFrame
) -> None:
    touchpoints, persons = demo
    purchases = touchpoints[touchpoints.touchpoint == "purchase"].groupby("person_id").size()
    assert (purchases >= 2).sum() > 0.1 * len(purchases)
    assert (purchases >= 3).sum() > 0
    prospects = persons[persons.persona != "job_candidate"]
    assert len(first_purchases) < 0.5 * len(prospects)
    assert (touchpoints.touchpoint == "referral").sum() > 50
    assert (touchpoints.channel[touchpoints.touchpoint == "referral"] == "referral").all()
    assert (persons.acquisition_channel == "referral").mean() > 0.02
    assert (touchpoints.channel[touchpoints.touchpoint == "review_written"] == "review_site").all()


def test_purchase_journeys_have_no_gap_of_30_days(stitched: pd.DataFrame) -> None:
    first_buy = stitched[stitched.touchpoint == "purchase"].groupby("who").timestamp.min()
    before = stitched[stitched.timestamp <= stitched.who.map(first_buy)]
    gaps = before.groupby("who").timestamp.diff().dropna()
    assert (gaps < pd.Timedelta(days=30)).mean() > 0.99


def test_first_purchase_contact_number_matches_the_rule_of_thumb(first_purchases: pd.DataFrame) -> None:
    position = first_purchases.pos
    assert len(position) > 3_000
    assert 0.01 <= (position == 1).mean() <= 0.035
    assert 0.07 <= (position == 4).mean() <= 0.13
    assert 5.0 <= position.mean() <= 8.0


def test_high_involvement_needs_more_contacts_and_time(first_purchases: pd.DataFrame) -> None:
    by_persona = first_purchases.groupby("persona")
    mean = by_persona.pos.mean()
    days = by_persona.days.median()
    assert mean["high_involvement"] >= 1.5 * mean["low_involvement"]
    assert days["high_involvement"] > 5 * days["low_involvement"]
    assert days["high_involvement"] > 14  # weeks, not days
    assert mean["low_involvement"] < mean["mid_involvement"] < mean["high_involvement"]


def test_true_effects_are_in_the_data(stitched: pd.DataFrame) -> None:
    """Within bands of journey length, seeing a demo raises a high-involvement prospect's conversion and
    reading a review a low-involvement prospect's, as TRUE_EFFECTS says."""
    effects = TRUE_EFFECTS["purchase"]
    assert effects["high_involvement"]["saw_demo"] > 0.5
    assert effects["low_involvement"]["saw_review"] > 0.5
    first_buy = stitched[stitched.touchpoint == "purchase"].groupby("who").timestamp.min()
    buy_time = stitched.who.map(first_buy)
    surveys = stitched.touchpoint == "survey_response"
    about = stitched.properties[surveys].map(lambda p: json.loads(p)["about"]).reindex(stitched.index)
    before = buy_time.isna() & ~stitched.touchpoint.isin(AFTER_PURCHASE) & ~about.isin(AFTER_PURCHASE)
    acquisition = stitched[before | (stitched.timestamp < buy_time)]
    people = pd.DataFrame(
        {
            "contacts": acquisition.groupby("who").size(),
            "demo": acquisition.touchpoint.eq("demo_request").groupby(acquisition.who).any(),
            "review": acquisition.touchpoint.eq("review_read").groupby(acquisition.who).any(),
            "persona": acquisition.groupby("who").persona.first(),
        }
    )
    people["buyer"] = people.index.isin(first_buy.index)
    for persona, seen, shortest in (("high_involvement", "demo", 7), ("low_involvement", "review", 4)):
        group = people[(people.persona == persona) & (people.contacts >= shortest)]
        band = pd.cut(group.contacts, [shortest - 1, shortest + 3, shortest + 8, 10_000])
        rates = group.groupby([band, group[seen]], observed=True).buyer.mean().unstack()
        assert (rates[True] - rates[False] > 0.04).all(), (persona, rates)


# --- files --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".parquet", ".csv", ".tsv", ".jsonl"])
def test_write_demo_round_trips(tmp_path, ext: str) -> None:
    progress: list[tuple[int, int]] = []
    written = write_demo(
        tmp_path / f"demo{ext}",
        1_500,
        seed=5,
        chunk_persons=600,
        progress=lambda d, t: progress.append((d, t)),
    )
    assert written.touchpoints == tmp_path / f"demo{ext}"
    assert written.persons == tmp_path / f"demo.persons{ext}"
    assert progress == [(600, 1_500), (1_200, 1_500), (1_500, 1_500)]
    if ext == ".parquet":
        touchpoints, persons = pq.read_table(written.touchpoints), pq.read_table(written.persons)
        assert touchpoints.schema.names == [name for name, _ in TOUCHPOINT_COLUMNS]
        expected = pa.concat_tables([t for t, _ in generate(1_500, seed=5, chunk_persons=600)])
        assert touchpoints.equals(expected)
    elif ext in (".csv", ".tsv"):
        options = pacsv.ParseOptions(delimiter="\t" if ext == ".tsv" else ",")
        touchpoints = pacsv.read_csv(written.touchpoints, parse_options=options)
        persons = pacsv.read_csv(written.persons, parse_options=options)
    else:
        touchpoints, persons = pajson.read_json(written.touchpoints), pajson.read_json(written.persons)
        first = json.loads(written.touchpoints.read_text(encoding="utf-8").splitlines()[0])
        assert list(first) == [name for name, _ in TOUCHPOINT_COLUMNS]
        assert first["timestamp"].startswith("2024-")
    assert touchpoints.num_rows == written.n_touchpoints > 0
    assert persons.num_rows == written.n_persons > 0
    assert set(persons.column_names) == set(PERSON_COLUMNS)


def test_write_demo_refuses_an_unknown_extension(tmp_path) -> None:
    with pytest.raises(UnusableInputError) as caught:
        write_demo(tmp_path / "demo.xlsx", 10)
    assert caught.value.code == "unknown_format"
    assert "\n" not in str(caught.value)
    assert ".xlsx" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_write_demo_checks_its_arguments_before_writing(tmp_path) -> None:
    with pytest.raises(ValueError, match="persons must be >= 0"):
        write_demo(tmp_path / "demo.parquet", -5)
    assert list(tmp_path.iterdir()) == []
