"""The persona parameters compiled into integer codes and lookup arrays, once, for the vectorised generator.

Touchpoints, channels and content types are integer codes (their position in the vocabulary tuples of
``personas``); the generator only handles codes and turns them into strings when it builds Arrow tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from journeylens.demo import personas as P

TP: dict[str, int] = {name: i for i, name in enumerate(P.TOUCHPOINTS)}
CH: dict[str, int] = {name: i for i, name in enumerate(P.CHANNELS)}
CT: dict[str, int] = {name: i for i, name in enumerate(P.CONTENT_TYPES)}
PERSONA: dict[str, int] = {name: i for i, name in enumerate(P.PERSONAS)}
JOB = PERSONA["job_candidate"]
SCALES: tuple[str, ...] = ("csat", "nps", "ces")
SCALE_RANGE = np.array([[1, 5], [0, 10], [1, 7]], dtype=np.float64)

TOUCHPOINT_NAMES = pa.array(P.TOUCHPOINTS, pa.string())
CHANNEL_NAMES = pa.array(P.CHANNELS, pa.string())
CONTENT_TYPE_NAMES = pa.array(P.CONTENT_TYPES, pa.string())
PERSONA_NAMES = pa.array(P.PERSONAS, pa.string())
SCALE_NAMES = pa.array(SCALES, pa.string())
SEGMENT_NAMES = pa.array(P.SEGMENTS, pa.string())
COUNTRY_NAMES = pa.array(list(P.COUNTRIES), pa.string())
AGE_BAND_NAMES = pa.array(P.AGE_BANDS, pa.string())

IS_ONLINE = np.zeros(len(P.CHANNELS), dtype=bool)
IS_ONLINE[[CH[c] for c in P.ONLINE_CHANNELS]] = True


class Choice:
    """One categorical distribution per group, sampled for many rows at once.

    ``sample(u, group)`` maps uniform numbers ``u`` in [0, 1) to options of each row's group; a missing
    option is coded -1 (a null). Each group's distribution is a table of ``RESOLUTION`` slots, each option
    filling a share of the slots equal to its probability (rounded to a multiple of 1 / RESOLUTION), so
    that sampling is one array lookup per row.
    """

    RESOLUTION = 4096

    def __init__(self, tables: Sequence[Mapping[int, float]]) -> None:
        slots = np.empty((len(tables), self.RESOLUTION), dtype=np.int16)
        for g, table in enumerate(tables):
            probs = np.array(list(table.values()), dtype=np.float64)
            ends = np.rint(np.cumsum(probs / probs.sum()) * self.RESOLUTION).astype(np.int64)
            slots[g] = np.repeat(np.array(list(table.keys()), dtype=np.int16), np.diff(ends, prepend=0))
        self.slots = slots.ravel()

    def sample(self, u: np.ndarray, group: np.ndarray | int) -> np.ndarray:
        slot = (u * self.RESOLUTION).astype(np.int64)
        return self.slots[slot + np.asarray(group, dtype=np.int64) * self.RESOLUTION]


def _codes(table: Mapping[str | None, float], codes: Mapping[str, int]) -> dict[int, float]:
    return {(-1 if name is None else codes[name]): p for name, p in table.items()}


# --- channel and content of each touchpoint
CHANNEL_OF = Choice([_codes(P.TOUCHPOINT_CHANNELS[t], CH) for t in P.TOUCHPOINTS])
CONTENT_OF = Choice([_codes(P.TOUCHPOINT_CONTENT.get(t, {None: 1.0}), CT) for t in P.TOUCHPOINTS])

# --- per buyer persona (codes 0..2 follow personas.BUYER_PERSONAS)
BUYERS = P.BUYER_PERSONAS
assert [PERSONA[p.name] for p in BUYERS] == [0, 1, 2]
PHASE_MIX = Choice(
    [_codes(getattr(p, phase), TP) for p in BUYERS for phase in ("awareness", "consideration", "decision")]
)
ACQUISITION = Choice([_codes(p.acquisition, TP) for p in BUYERS])
PURCHASE_CHANNEL = Choice([_codes(p.purchase_channels, CH) for p in BUYERS])
ONLINE_PURCHASE_CHANNEL = Choice([_codes(P.TOUCHPOINT_CHANNELS["checkout"], CH)])
REPEAT = Choice([_codes(p.repeat, TP) for p in BUYERS])


def _per_persona(attr: str) -> np.ndarray:
    return np.array([getattr(p, attr) for p in BUYERS], dtype=np.float64)


SHARE = np.array([P.PERSONA_MIX[name] for name in P.PERSONAS])
FLAG_NAMES = tuple(P.FLAGS)
FLAG_TP = np.array([TP[P.FLAGS[f][0]] for f in FLAG_NAMES], dtype=np.int16)
FLAG_CT = np.array([CT[P.FLAGS[f][1]] for f in FLAG_NAMES], dtype=np.int16)
FLAG_MIN = np.array([P.FLAGS[f][2] for f in FLAG_NAMES], dtype=np.int64)
FLAG_WHERE = np.array([P.FLAGS[f][3] for f in FLAG_NAMES], dtype=np.float64)
FLAG_P = np.array([[p.flag_probability[f] for f in FLAG_NAMES] for p in BUYERS])
FLAG_EFFECT = np.array([[p.flag_effect[f] for f in FLAG_NAMES] for p in BUYERS])
INTERCEPT = _per_persona("intercept")
PER_LOG_CONTACT = _per_persona("per_log_contact")
REFERRED_P = _per_persona("referred_probability")
REFERRED_EFFECT = _per_persona("referred_effect")
ANONYMOUS_P = _per_persona("anonymous_probability")
CHECKOUT_P = _per_persona("checkout_probability")
SAME_SESSION_P = _per_persona("same_session_probability")
GAP_LOG_MEDIAN = np.log(_per_persona("gap_median_days"))
GAP_SIGMA = _per_persona("gap_sigma")
PHASE_BOUNDS = np.array([p.phase_bounds for p in BUYERS])
LOG_PRICE = np.log(np.array([p.price for p in BUYERS]))
PRICE_STEP = _per_persona("price_step")
DELIVERY_DAYS = np.array([p.delivery_days for p in BUYERS])
NPS_MEAN = _per_persona("nps_mean")
SURVEY_P = _per_persona("survey_probability")
MANUAL_P = _per_persona("manual_probability")
COMPLAINT_P = _per_persona("complaint_probability")
SERVICE_P = _per_persona("service_probability")
REPAIR_P = _per_persona("repair_probability")
RETURN_P = _per_persona("return_probability")
NEWSLETTER_P = _per_persona("newsletter_probability")
REPEAT_MEAN = _per_persona("repeat_mean")
REPEAT_GAP = np.array([p.repeat_gap_days for p in BUYERS])
REPEAT_STEPS = _per_persona("repeat_steps_mean")
B2B = np.array([P.B2B_SHARE[name] for name in P.PERSONAS])
AGE_BAND = Choice([dict(enumerate(P.AGE_BAND_MIX[name])) for name in P.PERSONAS])
COUNTRY = Choice([dict(enumerate(P.COUNTRIES.values()))])

#: P(L) to sample from, per buyer persona, as a cumulative distribution
CONTACTS_CDF = np.array([np.cumsum(P.contact_model(p).contacts) for p in BUYERS])
CONTACTS_CDF[:, -1] = 1.0

# --- surveys: per touchpoint code the scale code (-1: never surveyed), mean and standard deviation
SURVEY_SCALE = np.full(len(P.TOUCHPOINTS), -1, dtype=np.int8)
SURVEY_MEAN = np.zeros(len(P.TOUCHPOINTS))
SURVEY_SD = np.ones(len(P.TOUCHPOINTS))
for _name, (_scale, _mean, _sd) in P.SURVEYS.items():
    SURVEY_SCALE[TP[_name]] = SCALES.index(_scale)
    SURVEY_MEAN[TP[_name]] = _mean
    SURVEY_SD[TP[_name]] = _sd
SURVEYED_BEFORE_PURCHASE = np.array(
    [TP[t] for t in ("store_visit", "sales_call", "webinar_attend", "demo_request")]
)
NPS = SCALES.index("nps")

# --- content items: content_id strings, one block per content type
ITEM_COUNT = np.array([P.CONTENT_ITEMS[c] for c in P.CONTENT_TYPES], dtype=np.int64)
ITEM_OFFSET = np.concatenate([[0], np.cumsum(ITEM_COUNT)[:-1]])
ITEM_NAMES = pa.array(
    [f"{c}-{k + 1:03d}" for c in P.CONTENT_TYPES for k in range(P.CONTENT_ITEMS[c])], pa.string()
)

# --- properties: every JSON object the generator writes, as one table of strings with named blocks
_props: list[str] = []


def _block(objects: Sequence[dict[str, object]]) -> int:
    offset = len(_props)
    _props.extend(json.dumps(o, sort_keys=True) for o in objects)
    return offset


CAMPAIGN_COUNT = 4
CAMPAIGN_OFFSET = np.full(len(P.CHANNELS), -1, dtype=np.int64)
for _channel, (_names, _source, _medium) in P.CAMPAIGNS.items():
    assert len(_names) == CAMPAIGN_COUNT
    CAMPAIGN_OFFSET[CH[_channel]] = _block(
        [{"utm_campaign": n, "utm_medium": _medium, "utm_source": _source} for n in _names]
    )
REFERRED_PROPS = _block([{"utm_medium": "referral", "utm_source": "member_get_member"}])
SURVEY_ABOUT_OFFSET = _block([{"about": t} for t in P.TOUCHPOINTS])
STARS_OFFSET = _block([{"stars": s} for s in range(1, 6)])  # index stars - 1
COMPLAINT_TOPIC = Choice([dict(enumerate(P.COMPLAINT_TOPICS.values()))])
COMPLAINT_OFFSET = _block([{"topic": t} for t in P.COMPLAINT_TOPICS])
RETURN_REASON = Choice([dict(enumerate(P.RETURN_REASONS.values()))])
RETURN_OFFSET = _block([{"reason": r} for r in P.RETURN_REASONS])
PRODUCTS_PER_PERSONA = 20
_prefix = {"low_involvement": "L", "mid_involvement": "M", "high_involvement": "H"}
PRODUCT_OFFSET = np.array(
    [
        _block([{"product": f"{_prefix[p.name]}{k + 1:03d}"} for k in range(PRODUCTS_PER_PERSONA)])
        for p in BUYERS
    ]
)
PROPERTIES = pa.array(_props, pa.string())
