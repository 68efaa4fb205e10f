"""Vocabulary and persona parameters of the synthetic demo data.

Everything the generator draws from is written down here, in the units a marketer would use (shares,
probabilities, days, euros), so that the demo data can be explained and tuned without reading the
simulation code. The generator (``generator.py``) only turns these numbers into touchpoints.

How a person is simulated
-------------------------
1. A persona is drawn from ``PERSONA_MIX``.
2. *Acquisition journey* (every persona but job candidates): the person goes through ``L`` touchpoints
   (awareness -> consideration -> decision, with a few loops back), then decides. ``L`` is drawn from a
   distribution derived from the persona's contact parameters (see below); the decision is a logistic model:

   ``logit P(buy | L, content) = intercept + per_log_contact * log(1 + L) + sum(effects of content seen)``

   A buyer's ``L + 1`` is the *contact number of the first purchase*. Content that drives conversion
   (demos, webinars, success stories, reviews) is only shown through these effects, so ``TRUE_EFFECTS``
   is exactly what the data contain.
3. After a purchase: delivery, NPS and delivery surveys, manuals, and with a persona's probabilities a
   complaint, customer-service, repair or return journey, reviews, referrals by promoters, newsletter opens
   and repeat purchase journeys (the loyalty loop: short, starting more than 30 days after the last one).
4. Anonymous browsing: a share of prospects visit the website/app on one or two devices (each its own
   anonymous_id) before a ``login`` row links device and person; some non-buyers never identify themselves.

Calibration of the contact number of the first purchase
--------------------------------------------------------
The field's rule of thumb: about 2% of first purchases happen at contact 1, about 10% at contact 4, and
a buyer needs 5 to 8 contacts on average. A persona's buyers reach their first purchase at contact 1 with
probability ``first_contact_share`` (a walk-in or impulse buy), otherwise at contact
``2 + NegativeBinomial(mean=contacts_mean, size=contacts_size)``. The generator draws ``L`` (touchpoints
before the decision) with probability proportional to ``target(L) / P(buy | L)``, so that after the buy
decision the buyers' distribution is exactly the target, whatever the conversion model. With the persona
mix below this gives (``calibration()`` computes it from the parameters; the tests measure it on
generated data, and 20k persons gave 2.1% / 9.9% / 6.7):

=================  =====  ==========  ===========================  ==============  ================
persona            share  conversion  first purchase at contact    mean contacts   share of buyers
                                      1 / 2+NB(mean, size) / mean  before deciding
=================  =====  ==========  ===========================  ==============  ================
low_involvement    0.45   0.31        2.5% / NB(3, 0.8) / 4.9      3.4             0.62
mid_involvement    0.24   0.27        1.0% / NB(7, 4) / 8.9        7.2             0.29
high_involvement   0.18   0.11        0.3% / NB(11, 3) / 13.0      9.2             0.09
job_candidate      0.13   -           -                            -               -
all buyers                            1.9% at 1, 10.2% at 4, mean 6.8
=================  =====  ==========  ===========================  ==============  ================

Low-involvement buyers mostly buy at their 2nd to 4th contact (an ad, then the shop); high-involvement
ones after weeks to months of research, demos, quotes and sales calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np

# ------------------------------------------------------------------------------------------------------------
# Vocabulary (other modules write phase-model rules against these names: change them only with them)
# ------------------------------------------------------------------------------------------------------------

CHANNELS: tuple[str, ...] = (
    "paid_search",
    "organic_search",
    "social",
    "display",
    "email",
    "website",
    "app",
    "store",
    "call_centre",
    "chat",
    "review_site",
    "referral",
    "partner",
)

#: channels whose visits are tracked with a cookie/device id: rows there carry an anonymous_id
ONLINE_CHANNELS: tuple[str, ...] = (
    "paid_search",
    "organic_search",
    "social",
    "display",
    "website",
    "app",
    "referral",
)

CONTENT_TYPES_BY_PHASE: dict[str, tuple[str, ...]] = {
    "awareness": ("ad", "blog_article", "social_post"),
    "consideration": ("tutorial", "whitepaper", "comparison", "review", "webinar"),
    "decision": ("video", "product_sheet", "success_story", "demo", "quote"),
    "service": ("manual", "support_article", "delivery_update"),
    "loyalty": ("newsletter", "referral_programme", "review_request"),
    "job": ("vacancy", "employer_story"),
}
CONTENT_TYPES: tuple[str, ...] = tuple(c for group in CONTENT_TYPES_BY_PHASE.values() for c in group)

#: how many different items (content_id values) each content type has
CONTENT_ITEMS: dict[str, int] = {
    "ad": 40,
    "blog_article": 60,
    "social_post": 80,
    "tutorial": 25,
    "whitepaper": 12,
    "comparison": 10,
    "review": 30,
    "webinar": 8,
    "video": 20,
    "product_sheet": 50,
    "success_story": 10,
    "demo": 4,
    "quote": 6,
    "manual": 15,
    "support_article": 40,
    "delivery_update": 5,
    "newsletter": 24,
    "referral_programme": 2,
    "review_request": 3,
    "vacancy": 15,
    "employer_story": 12,
}

TOUCHPOINTS_BY_PHASE: dict[str, tuple[str, ...]] = {
    "awareness": ("ad_view", "ad_click", "social_post_view", "article_read", "search_click"),
    "consideration": (
        "site_visit",
        "tutorial_view",
        "whitepaper_download",
        "comparison_view",
        "review_read",
        "webinar_attend",
        "newsletter_signup",
    ),
    "decision": (
        "video_view",
        "product_view",
        "demo_request",
        "quote_request",
        "store_visit",
        "sales_call",
        "add_to_cart",
        "checkout",
    ),
    "purchase": ("purchase",),
    "identify": ("login",),
    "service": ("delivery", "manual_view", "support_call", "support_chat"),
    "journey_openers": ("complaint", "repair_request", "return_request", "service_request"),
    "after_return": ("refund",),
    "survey": ("survey_response",),
    "loyalty": ("newsletter_open", "review_written", "referral"),
    "job": ("vacancy_view", "employer_story_view", "application_submitted", "interview", "hired"),
}
TOUCHPOINTS: tuple[str, ...] = tuple(t for group in TOUCHPOINTS_BY_PHASE.values() for t in group)

#: the touchpoint that opens each non-purchase journey type (journeys are typed later by these)
JOURNEY_OPENERS: dict[str, str] = {
    "complaint": "complaint",
    "customer_service": "service_request",
    "repair": "repair_request",
    "return": "return_request",
}
JOB_JOURNEY_TYPE = "job_application"

PERSONAS: tuple[str, ...] = ("low_involvement", "mid_involvement", "high_involvement", "job_candidate")

#: the channel each touchpoint happens in, with probabilities (an acquisition journey's purchase and logins
#: are drawn per persona and device instead)
TOUCHPOINT_CHANNELS: dict[str, dict[str, float]] = {
    "ad_view": {"display": 0.5, "social": 0.4, "partner": 0.1},
    "ad_click": {"paid_search": 0.55, "social": 0.25, "display": 0.2},
    "social_post_view": {"social": 1.0},
    "article_read": {"website": 0.8, "app": 0.05, "partner": 0.15},
    "search_click": {"organic_search": 1.0},
    "site_visit": {"website": 0.75, "app": 0.25},
    "tutorial_view": {"website": 0.6, "app": 0.15, "social": 0.25},
    "whitepaper_download": {"website": 0.7, "email": 0.3},
    "comparison_view": {"website": 0.4, "review_site": 0.35, "partner": 0.25},
    "review_read": {"review_site": 0.7, "website": 0.3},
    "webinar_attend": {"website": 0.8, "email": 0.2},
    "newsletter_signup": {"website": 0.85, "app": 0.15},
    "video_view": {"website": 0.6, "social": 0.25, "email": 0.15},
    "product_view": {"website": 0.65, "app": 0.25, "partner": 0.1},
    "demo_request": {"website": 0.6, "call_centre": 0.2, "store": 0.2},
    "quote_request": {"email": 0.45, "website": 0.35, "call_centre": 0.2},
    "store_visit": {"store": 1.0},
    "sales_call": {"call_centre": 0.8, "partner": 0.2},
    "add_to_cart": {"website": 0.7, "app": 0.3},
    "checkout": {"website": 0.7, "app": 0.3},
    "purchase": {"website": 0.6, "app": 0.2, "store": 0.2},
    "login": {"website": 0.65, "app": 0.35},
    "delivery": {"email": 0.5, "app": 0.3, "partner": 0.2},
    "manual_view": {"website": 0.7, "app": 0.3},
    "support_call": {"call_centre": 1.0},
    "support_chat": {"chat": 1.0},
    "complaint": {"call_centre": 0.35, "email": 0.25, "chat": 0.2, "social": 0.1, "review_site": 0.1},
    "repair_request": {"website": 0.4, "store": 0.35, "call_centre": 0.25},
    "return_request": {"website": 0.55, "app": 0.15, "store": 0.3},
    "service_request": {"call_centre": 0.4, "chat": 0.3, "website": 0.2, "email": 0.1},
    "refund": {"website": 0.7, "store": 0.3},
    "survey_response": {"email": 0.7, "app": 0.15, "call_centre": 0.15},
    "newsletter_open": {"email": 1.0},
    "review_written": {"review_site": 1.0},
    "referral": {"referral": 1.0},
    "vacancy_view": {"website": 0.5, "partner": 0.3, "social": 0.2},
    "employer_story_view": {"social": 0.6, "website": 0.4},
    "application_submitted": {"website": 0.85, "partner": 0.15},
    "interview": {"call_centre": 0.6, "partner": 0.4},
    "hired": {"email": 1.0},
}

#: the content type a touchpoint shows (None: no content); ``success_story`` and ``review`` only come through
#: the conversion effects (see ``TRUE_EFFECTS``)
TOUCHPOINT_CONTENT: dict[str, dict[str | None, float]] = {
    "ad_view": {"ad": 1.0},
    "ad_click": {"ad": 1.0},
    "social_post_view": {"social_post": 1.0},
    "article_read": {"blog_article": 1.0},
    "search_click": {"blog_article": 0.6, None: 0.4},
    "tutorial_view": {"tutorial": 1.0},
    "whitepaper_download": {"whitepaper": 1.0},
    "comparison_view": {"comparison": 1.0},
    "review_read": {"review": 1.0},
    "webinar_attend": {"webinar": 1.0},
    "video_view": {"video": 1.0},
    "product_view": {"product_sheet": 1.0},
    "demo_request": {"demo": 1.0},
    "quote_request": {"quote": 1.0},
    "delivery": {"delivery_update": 1.0},
    "manual_view": {"manual": 1.0},
    "support_chat": {"support_article": 0.5, None: 0.5},
    "service_request": {"support_article": 0.3, None: 0.7},
    "newsletter_open": {"newsletter": 1.0},
    "review_written": {"review_request": 0.6, None: 0.4},
    "referral": {"referral_programme": 0.6, None: 0.4},
    "vacancy_view": {"vacancy": 1.0},
    "employer_story_view": {"employer_story": 1.0},
    "application_submitted": {"vacancy": 1.0},
}

#: satisfaction surveys: the touchpoint a survey_response is about -> (scale, mean answer, standard deviation)
SURVEYS: dict[str, tuple[str, float, float]] = {
    "store_visit": ("csat", 4.2, 0.8),
    "sales_call": ("csat", 4.0, 0.9),
    "webinar_attend": ("csat", 4.1, 0.8),
    "demo_request": ("csat", 4.3, 0.7),
    "delivery": ("csat", 4.4, 0.8),
    "support_call": ("ces", 3.4, 1.5),
    "support_chat": ("ces", 4.7, 1.3),
    "service_request": ("ces", 5.0, 1.4),
    "complaint": ("csat", 2.4, 1.1),
    "repair_request": ("csat", 3.7, 1.0),
    "refund": ("csat", 3.9, 1.0),
    "interview": ("csat", 3.9, 0.9),
    # "purchase" is answered on the NPS scale with the buyer's own likelihood to recommend (Persona.nps_mean)
}
#: touchpoints that get a survey during the acquisition journey, and how often
PRE_PURCHASE_SURVEY_PROBABILITY = 0.25

#: a complaint's topic, a return's reason (properties) with probabilities
COMPLAINT_TOPICS: dict[str, float] = {
    "late_delivery": 0.35,
    "damaged": 0.2,
    "billing": 0.2,
    "staff": 0.1,
    "quality": 0.15,
}
RETURN_REASONS: dict[str, float] = {
    "wrong_size": 0.35,
    "not_as_described": 0.25,
    "damaged": 0.15,
    "changed_mind": 0.25,
}
#: utm campaigns on paid touchpoints, per paid channel: (campaign names, utm_source, utm_medium)
CAMPAIGNS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "paid_search": (("brand_search", "generic_search", "spring_sale", "black_friday"), "google", "cpc"),
    "display": (("retargeting", "spring_sale", "black_friday", "prospecting"), "dv360", "display"),
    "social": (("always_on", "spring_sale", "black_friday", "lookalike"), "meta", "paid_social"),
}

SEGMENTS: tuple[str, ...] = ("b2c", "b2b")
COUNTRIES: dict[str, float] = {"NL": 0.6, "BE": 0.2, "DE": 0.2}
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")

#: share of anonymous-browsing prospects that use two devices (website and app: two anonymous ids)
TWO_DEVICE_PROBABILITY = 0.25
#: share of anonymous-browsing non-buyers who never log in (their anonymous ids stay unlinked)
NEVER_IDENTIFY_PROBABILITY = 0.5
#: time of day of a session: a midday peak and an evening peak (hours, UTC), kept within 07:00-22:30
DAYTIME_PEAKS: tuple[tuple[float, float, float], ...] = ((0.6, 13.0, 2.5), (0.4, 20.0, 1.5))

#: content whose effect on conversion TRUE_EFFECTS documents: flag -> (touchpoint, content type, the smallest
#: L at which it can be shown, and where in the journey it is shown, as a fraction of it)
FLAGS: dict[str, tuple[str, str, int, tuple[float, float]]] = {
    "review": ("review_read", "review", 4, (0.25, 0.7)),
    "success_story": ("video_view", "success_story", 5, (0.55, 0.95)),
    "webinar": ("webinar_attend", "webinar", 6, (0.3, 0.7)),
    "demo": ("demo_request", "demo", 7, (0.6, 0.97)),
}
# the thresholds guarantee room: first touch + up to two logins + every flag below L fit in L touchpoints


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity (used as a cache key)
class Persona:
    """Everything that differs between personas. Probabilities are per person unless said otherwise."""

    name: str
    share: float  # share of all simulated persons
    # --- the contact number of the first purchase among buyers: 1 with probability first_contact_share,
    # otherwise 2 + NegBin(mean, size)
    first_contact_share: float
    contacts_mean: float
    contacts_size: float
    # --- conversion (logit scale) after L touchpoints; see TRUE_EFFECTS
    intercept: float
    per_log_contact: float
    flag_probability: Mapping[str, float]  # chance that the content is part of the person's journey
    flag_effect: Mapping[str, float]  # its effect on the logit of buying
    referred_probability: float  # new person arriving through a referral (first channel 'referral')
    referred_effect: float
    # --- the acquisition journey
    phase_bounds: tuple[float, float]  # fraction of the journey that is awareness, awareness + consideration
    acquisition: Mapping[str, float]  # first touchpoint (when not referred)
    awareness: Mapping[str, float]
    consideration: Mapping[str, float]
    decision: Mapping[str, float]
    checkout_probability: float  # the journey ends with add_to_cart + checkout (online)
    purchase_channels: Mapping[str, float]
    anonymous_probability: float  # browses anonymously before a login
    same_session_probability: float  # next touchpoint in the same session (minutes later)
    gap_median_days: float  # otherwise the next session is this many days later (lognormal, 1..29 days)
    gap_sigma: float
    # --- the purchase
    price: tuple[float, float]  # euros, log-uniform
    price_step: float  # 1: prices end on .95 (24.95); more: prices are rounded to it (350, 12_300)
    delivery_days: tuple[float, float]  # delivery after an online/remote purchase
    nps_mean: float  # likelihood to recommend, 0..10 (standard deviation 2)
    # --- after the purchase (per purchase)
    survey_probability: float  # NPS survey answered
    manual_probability: float
    complaint_probability: float  # x DETRACTOR_COMPLAINT_RATIO for detractors
    service_probability: float
    repair_probability: float
    return_probability: float
    # --- loyalty
    newsletter_probability: float  # a customer subscribes (and opens NEWSLETTER_OPEN_RATE of the issues)
    repeat_mean: float  # expected number of later purchase journeys (x PROMOTER_REPEAT_RATIO for promoters)
    repeat_gap_days: tuple[float, float]  # minimum and mean extra days between purchase journeys
    repeat_steps_mean: float  # touchpoints before a repeat purchase (1 + Poisson(mean - 1))
    repeat: Mapping[str, float] = field(default_factory=dict)  # touchpoints in a repeat journey


@dataclass(frozen=True)
class JobCandidate:
    share: float
    views_mean: float  # vacancy / employer story views before deciding (1 + Poisson)
    apply_probability: float
    interview_probability: float  # of applicants
    second_interview_probability: float
    hire_probability: float  # of interviewed candidates
    survey_probability: float  # candidate-experience survey after the interview
    gap_median_days: float


LOW = Persona(
    name="low_involvement",
    share=0.45,
    first_contact_share=0.025,
    contacts_mean=3.0,
    contacts_size=0.8,
    intercept=-1.3,
    per_log_contact=0.25,
    flag_probability={"review": 0.35, "success_story": 0.05, "webinar": 0.02, "demo": 0.02},
    flag_effect={"review": 0.9, "success_story": 0.0, "webinar": 0.0, "demo": 0.0},
    referred_probability=0.06,
    referred_effect=0.8,
    phase_bounds=(0.35, 0.6),
    acquisition={
        "ad_view": 0.2,
        "ad_click": 0.25,
        "social_post_view": 0.2,
        "search_click": 0.15,
        "site_visit": 0.1,
        "store_visit": 0.1,
    },
    awareness={"ad_view": 3, "ad_click": 3, "social_post_view": 3, "article_read": 1, "search_click": 3},
    consideration={"site_visit": 6, "tutorial_view": 1, "comparison_view": 2, "newsletter_signup": 1},
    decision={"video_view": 1, "product_view": 6, "store_visit": 1},
    checkout_probability=0.6,
    purchase_channels={"website": 0.55, "app": 0.25, "store": 0.2},
    anonymous_probability=0.5,
    same_session_probability=0.45,
    gap_median_days=1.5,
    gap_sigma=0.9,
    price=(10.0, 60.0),
    price_step=1.0,
    delivery_days=(1.0, 4.0),
    nps_mean=7.6,
    survey_probability=0.3,
    manual_probability=0.1,
    complaint_probability=0.05,
    service_probability=0.08,
    repair_probability=0.02,
    return_probability=0.12,
    newsletter_probability=0.4,
    repeat_mean=0.7,
    repeat_gap_days=(35.0, 60.0),
    repeat_steps_mean=1.5,
    repeat={
        "newsletter_open": 3,
        "ad_click": 2,
        "site_visit": 3,
        "product_view": 4,
        "search_click": 1,
        "add_to_cart": 2,
    },
)

MID = Persona(
    name="mid_involvement",
    share=0.24,
    first_contact_share=0.01,
    contacts_mean=7.0,
    contacts_size=4.0,
    intercept=-2.0,
    per_log_contact=0.35,
    flag_probability={"review": 0.35, "success_story": 0.2, "webinar": 0.12, "demo": 0.12},
    flag_effect={"review": 0.5, "success_story": 0.3, "webinar": 0.3, "demo": 0.5},
    referred_probability=0.05,
    referred_effect=0.7,
    phase_bounds=(0.25, 0.6),
    acquisition={
        "ad_view": 0.2,
        "ad_click": 0.25,
        "social_post_view": 0.1,
        "search_click": 0.25,
        "article_read": 0.1,
        "store_visit": 0.1,
    },
    awareness={"ad_view": 2, "ad_click": 3, "social_post_view": 2, "article_read": 2, "search_click": 3},
    consideration={
        "site_visit": 5,
        "tutorial_view": 2,
        "whitepaper_download": 1,
        "comparison_view": 3,
        "newsletter_signup": 1,
    },
    decision={"video_view": 2, "product_view": 5, "store_visit": 2, "quote_request": 1},
    checkout_probability=0.35,
    purchase_channels={"website": 0.5, "app": 0.1, "store": 0.35, "call_centre": 0.05},
    anonymous_probability=0.45,
    same_session_probability=0.35,
    gap_median_days=3.0,
    gap_sigma=0.9,
    price=(100.0, 2000.0),
    price_step=10.0,
    delivery_days=(2.0, 7.0),
    nps_mean=7.8,
    survey_probability=0.35,
    manual_probability=0.4,
    complaint_probability=0.06,
    service_probability=0.15,
    repair_probability=0.06,
    return_probability=0.05,
    newsletter_probability=0.4,
    repeat_mean=0.35,
    repeat_gap_days=(45.0, 90.0),
    repeat_steps_mean=2.5,
    repeat={
        "newsletter_open": 3,
        "ad_click": 1,
        "site_visit": 3,
        "product_view": 4,
        "comparison_view": 1,
        "store_visit": 1,
    },
)

HIGH = Persona(
    name="high_involvement",
    share=0.18,
    first_contact_share=0.003,
    contacts_mean=11.0,
    contacts_size=3.0,
    intercept=-3.6,
    per_log_contact=0.4,
    flag_probability={"review": 0.3, "success_story": 0.35, "webinar": 0.3, "demo": 0.35},
    flag_effect={"review": 0.1, "success_story": 0.5, "webinar": 0.6, "demo": 1.0},
    referred_probability=0.05,
    referred_effect=0.6,
    phase_bounds=(0.2, 0.6),
    acquisition={
        "ad_view": 0.15,
        "ad_click": 0.2,
        "search_click": 0.25,
        "article_read": 0.2,
        "store_visit": 0.1,
        "comparison_view": 0.1,
    },
    awareness={"ad_view": 2, "ad_click": 2, "social_post_view": 1, "article_read": 3, "search_click": 3},
    consideration={
        "site_visit": 4,
        "tutorial_view": 2,
        "whitepaper_download": 3,
        "comparison_view": 3,
        "newsletter_signup": 1,
    },
    decision={"video_view": 2, "product_view": 3, "quote_request": 2, "store_visit": 3, "sales_call": 3},
    checkout_probability=0.05,
    purchase_channels={"store": 0.35, "call_centre": 0.3, "partner": 0.15, "website": 0.2},
    anonymous_probability=0.35,
    same_session_probability=0.25,
    gap_median_days=5.0,
    gap_sigma=0.8,
    price=(5000.0, 60000.0),
    price_step=100.0,
    delivery_days=(7.0, 40.0),
    nps_mean=7.3,
    survey_probability=0.45,
    manual_probability=0.7,
    complaint_probability=0.08,
    service_probability=0.35,
    repair_probability=0.15,
    return_probability=0.01,
    newsletter_probability=0.5,
    repeat_mean=0.15,
    repeat_gap_days=(90.0, 150.0),
    repeat_steps_mean=4.0,
    repeat={
        "newsletter_open": 2,
        "site_visit": 2,
        "product_view": 2,
        "quote_request": 2,
        "sales_call": 3,
        "store_visit": 2,
    },
)

JOB = JobCandidate(
    share=0.13,
    views_mean=2.0,
    apply_probability=0.3,
    interview_probability=0.55,
    second_interview_probability=0.4,
    hire_probability=0.3,
    survey_probability=0.4,
    gap_median_days=2.0,
)

BUYER_PERSONAS: tuple[Persona, ...] = (LOW, MID, HIGH)
PERSONA_MIX: dict[str, float] = {p.name: p.share for p in BUYER_PERSONAS} | {"job_candidate": JOB.share}

#: segment b2b share, age band probabilities per persona
B2B_SHARE: dict[str, float] = {
    "low_involvement": 0.02,
    "mid_involvement": 0.15,
    "high_involvement": 0.6,
    "job_candidate": 0.0,
}
AGE_BAND_MIX: dict[str, tuple[float, ...]] = {
    "low_involvement": (0.2, 0.3, 0.2, 0.15, 0.1, 0.05),
    "mid_involvement": (0.1, 0.25, 0.25, 0.2, 0.12, 0.08),
    "high_involvement": (0.02, 0.15, 0.3, 0.3, 0.16, 0.07),
    "job_candidate": (0.3, 0.4, 0.2, 0.08, 0.02, 0.0),
}

#: NPS classes: promoters (9-10) recommend, detractors (0-6) complain more
PROMOTER_REFERRAL_PROBABILITY = 0.3  # a promoter sends referrals (1, sometimes 2) after a purchase
REVIEW_PROBABILITY: dict[str, float] = {"promoter": 0.2, "passive": 0.05, "detractor": 0.15}
DETRACTOR_COMPLAINT_RATIO = 3.0
PROMOTER_REPEAT_RATIO = 1.5
REPEAT_BUY_PROBABILITY = 0.75  # a repeat journey ends in a purchase (otherwise it is abandoned)
DELIVERY_SURVEY_PROBABILITY = 0.3
ORDER_TRACKING_PROBABILITY = 0.5  # a buyer visits the website/app to track a delivery
NEWSLETTER_EVERY_DAYS = 7  # a newsletter goes out weekly, at 09:00 UTC
NEWSLETTER_OPEN_RATE = 0.3  # a subscriber opens an issue
PROSPECT_NEWSLETTER_PROBABILITY = 0.6  # a prospect who signed up (newsletter_signup) stays subscribed
#: a touchpoint of an acquisition journey belongs to a random phase (people loop back and skip phases)
LOOP_BACK_PROBABILITY = 0.08
REFUND_PROBABILITY = 0.85  # a return is refunded (negative revenue), fully in 85% of cases
NON_BUYER_SERVICE_PROBABILITY = 0.02  # a prospect asks customer service a question

#: the most touchpoints an acquisition journey has
MAX_CONTACTS = 150


def _logit_effects() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for p in BUYER_PERSONAS:
        row = {"intercept": p.intercept, "log1p_contacts_before": p.per_log_contact}
        row |= {f"saw_{flag}": p.flag_effect[flag] for flag in FLAGS}
        row["referred"] = p.referred_effect
        out[p.name] = row
    return out


#: The known drivers in the data, for prediction and attribution work. ``purchase`` holds, per persona,
#: the coefficients of ``logit P(first purchase)`` at the end of the acquisition journey: ``saw_demo``
#: means the journey has a ``demo_request`` (content_type ``demo``), ``saw_webinar`` a ``webinar_attend``,
#: ``saw_success_story`` a ``video_view`` with content_type ``success_story``, ``saw_review`` a
#: ``review_read`` (content_type ``review``), ``referred`` that the first touchpoint came through channel
#: ``referral``, and ``log1p_contacts_before`` is ``log(1 + touchpoints before the decision)``. These
#: content types appear in acquisition journeys only through this model, so the data contain exactly these
#: effects; ``exposure_probability`` is how often each is shown (to journeys long enough, see ``FLAGS``).
#: The other entries are rate ratios and probabilities after a purchase.
TRUE_EFFECTS: dict[str, dict[str, dict[str, float]] | dict[str, float]] = {
    "purchase": _logit_effects(),
    "exposure_probability": {p.name: dict(p.flag_probability) for p in BUYER_PERSONAS},
    "after_purchase": {
        "detractor_complaint_rate_ratio": DETRACTOR_COMPLAINT_RATIO,
        "promoter_repeat_rate_ratio": PROMOTER_REPEAT_RATIO,
        "promoter_referral_probability": PROMOTER_REFERRAL_PROBABILITY,
        "promoter_review_probability": REVIEW_PROBABILITY["promoter"],
        "passive_review_probability": REVIEW_PROBABILITY["passive"],
        "detractor_review_probability": REVIEW_PROBABILITY["detractor"],
    },
}


# ------------------------------------------------------------------------------------------------------------
# Derived distributions (computed from the parameters above; the generator samples from these)
# ------------------------------------------------------------------------------------------------------------


def _negbin_pmf(mean: float, size: float, n: int) -> np.ndarray:
    """P(K = k) for k in 0..n-1 of a negative binomial with the given mean and size (dispersion)."""
    p = size / (size + mean)
    k = np.arange(n, dtype=np.float64)
    log_pmf = (
        np.array([math.lgamma(x + size) for x in k])
        - math.lgamma(size)
        - np.array([math.lgamma(x + 1) for x in k])
        + size * math.log(p)
        + k * math.log1p(-p)
    )
    pmf = np.exp(log_pmf)
    return pmf / pmf.sum()


def buy_probability(persona: Persona) -> np.ndarray:
    """P(buy | L) for L = 0..MAX_CONTACTS, averaged over which content the person happens to see.

    L = 0 means the first contact is the purchase (a walk-in or impulse buyer): probability 1.
    """
    n = MAX_CONTACTS + 1
    contacts = np.arange(n)
    names = list(FLAGS)
    base = persona.intercept + persona.per_log_contact * np.log1p(contacts)
    prob = np.zeros(n)
    # enumerate every combination of seen content and referral: 2^(flags + 1) terms
    for combo in range(2 ** (len(names) + 1)):
        weight = np.ones(n)
        logit = base.copy()
        for i, flag in enumerate(names):
            possible = contacts >= FLAGS[flag][2]
            q = np.where(possible, persona.flag_probability[flag], 0.0)
            if combo >> i & 1:
                weight *= q
                logit += persona.flag_effect[flag]
            else:
                weight *= 1.0 - q
        if combo >> len(names) & 1:
            weight *= persona.referred_probability
            logit += persona.referred_effect
        else:
            weight *= 1.0 - persona.referred_probability
        prob += weight / (1.0 + np.exp(-logit))
    prob[0] = 1.0
    return prob


@dataclass(frozen=True)
class ContactModel:
    """The derived distributions of one persona."""

    target: np.ndarray  # P(L = l | buyer): the calibrated contact distribution, contact number = l + 1
    contacts: np.ndarray  # P(L = l) over all persons of the persona, what the generator samples
    buy: np.ndarray  # P(buy | L = l)
    conversion: float  # P(buy)


@cache
def contact_model(persona: Persona) -> ContactModel:
    target = np.zeros(MAX_CONTACTS + 1)
    target[0] = persona.first_contact_share
    target[1:] = (1.0 - persona.first_contact_share) * _negbin_pmf(
        persona.contacts_mean, persona.contacts_size, MAX_CONTACTS
    )
    buy = buy_probability(persona)
    unnormalised = target / buy
    total = unnormalised.sum()
    return ContactModel(target=target, contacts=unnormalised / total, buy=buy, conversion=float(1.0 / total))


def calibration() -> dict[str, float]:
    """The expected calibration figures of the persona mix, from the parameters alone.

    Returns the share of first purchases at contact 1 and 4, the mean contact number, the overall
    conversion of buyer personas, and per persona its mean contact number and conversion.
    """
    weights = np.array([p.share * contact_model(p).conversion for p in BUYER_PERSONAS])
    weights /= weights.sum()
    mixture = sum(w * contact_model(p).target for w, p in zip(weights, BUYER_PERSONAS, strict=True))
    positions = np.arange(1, MAX_CONTACTS + 2)
    out = {
        "share_at_1": float(mixture[0]),
        "share_at_4": float(mixture[3]),
        "mean_position": float((mixture * positions).sum()),
    }
    for w, p in zip(weights, BUYER_PERSONAS, strict=True):
        model = contact_model(p)
        out[f"{p.name}.mean_position"] = float((model.target * positions).sum())
        out[f"{p.name}.conversion"] = model.conversion
        out[f"{p.name}.share_of_buyers"] = float(w)
        out[f"{p.name}.mean_contacts"] = float((model.contacts * np.arange(MAX_CONTACTS + 1)).sum())
    return out
