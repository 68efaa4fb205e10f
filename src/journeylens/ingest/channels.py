"""Channel mapping shared by the Segment HTTP API, the Segment file reader and the GA4 reader.

Two layers:

- :func:`utm_channel`: a campaign's ``utm_medium`` / ``utm_source`` -> channel by :data:`MEDIUM_CHANNELS`
  then :data:`SOURCE_CHANNELS` (the Segment mapping; see :func:`journeylens.server.segment.channel_for`);
- :func:`ga4_channel`: Google Analytics 4's *default channel group*, simplified, onto the same channel
  names, for a source / medium pair that GA4 recorded (``collected_traffic_source`` and friends).

GA4 default channel grouping, simplified (rules in order; ``s`` = source, ``m`` = medium, both
lower-cased; "paid medium" = ``m`` matches ``^(.*cp.*|ppc|retargeting|paid.*)$``; search engines and
social sites by :data:`SEARCH_SOURCES` / :data:`SOCIAL_SOURCES`, matched on the source or its domain's
first label, so ``google``, ``www.google.com`` and ``l.facebook.com`` all count):

====  ==============================================================  ===================================
 #    condition                                                       channel (GA4's group)
====  ==============================================================  ===================================
 1    no source, medium nor click id; or ``(direct)`` with medium     ``website`` (``app`` on an app
      ``(none)`` / ``(not set)`` / empty                              stream) — GA4's Direct
 2    a Google Ads click id (``gclid``), or a search engine and a     ``paid_search`` (Paid Search)
      paid medium
 3    a social site and a paid medium                                 ``social`` (Paid Social)
 4    ``m`` in display, banner, expandable, interstitial, cpm         ``display`` (Display)
 5    a paid medium otherwise (``cpc``, ``ppc`` ... from elsewhere)   ``paid_other`` (Paid Other)
 6    a social site, or ``m`` in social, social-network,              ``social`` (Organic Social)
      social-media, sm, social network, social media
 7    a search engine, or ``m`` = organic                             ``organic_search`` (Organic Search)
 8    ``m`` in referral, app, link                                    ``referral`` (Referral)
 9    ``s`` or ``m`` is email, e-mail, e_mail, e mail, newsletter     ``email`` (Email)
 10   ``m`` = affiliate                                               ``partner`` (Affiliates)
 11   :func:`utm_channel` (the Segment tables)                        as it says
 12   anything else                                                   ``unassigned`` (Unassigned)
====  ==============================================================  ===================================

Left out of GA4's rules: shopping, video and audio sites, SMS, push and cross-network campaigns (these
fall to the later rules: a video site is a social site here, as in the Segment mapping).
"""

from __future__ import annotations

import re

#: ``utm_medium`` (lower-cased, without spaces, ``-`` and ``_``) -> channel
MEDIUM_CHANNELS: dict[str, str] = {
    "cpc": "paid_search",
    "ppc": "paid_search",
    "paidsearch": "paid_search",
    "sem": "paid_search",
    "email": "email",
    "newsletter": "email",
    "social": "social",
    "socialmedia": "social",
    "socialnetwork": "social",
    "paidsocial": "social",
    "display": "display",
    "banner": "display",
    "cpm": "display",
    "programmatic": "display",
    "referral": "referral",
    "organic": "organic_search",
    "organicsearch": "organic_search",
    "seo": "organic_search",
    "affiliate": "partner",
    "partner": "partner",
}
#: ``utm_source`` (lower-cased) -> channel, when the medium is absent or unknown
SOURCE_CHANNELS: dict[str, str] = {
    "facebook": "social",
    "instagram": "social",
    "linkedin": "social",
    "twitter": "social",
    "x": "social",
    "tiktok": "social",
    "pinterest": "social",
    "youtube": "social",
    "newsletter": "email",
}
SEPARATORS = re.compile(r"[\s_-]+")

#: search engines (a source, or its domain's first label)
SEARCH_SOURCES: frozenset[str] = frozenset(
    {"google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia", "naver", "startpage", "qwant", "ask", "aol", "seznam", "brave"}
)
#: social sites (a source, or its domain's first label)
SOCIAL_SOURCES: frozenset[str] = frozenset(
    {k for k, v in SOURCE_CHANNELS.items() if v == "social"}
    | {"fb", "ig", "lnkd", "t.co", "reddit", "snapchat", "threads", "whatsapp", "mastodon", "vimeo", "xing"}
)
_PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
_DISPLAY_MEDIA = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
_SOCIAL_MEDIA = frozenset({"social", "social-network", "social-media", "sm", "social network", "social media"})
_EMAIL = frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter"})
_NO_MEDIUM = frozenset({"", "(none)", "(not set)"})
_HOST_PREFIXES = ("www.", "m.", "l.", "lm.", "mobile.")


def utm_channel(medium: str | None, source: str | None) -> str | None:
    """The channel a campaign's ``utm_medium`` (else ``utm_source``) names, or None when neither is known."""
    key = SEPARATORS.sub("", (medium or "").lower())
    if key in MEDIUM_CHANNELS:
        return MEDIUM_CHANNELS[key]
    return SOURCE_CHANNELS.get((source or "").strip().lower())


def _site(source: str, names: frozenset[str]) -> bool:
    host = source
    for prefix in _HOST_PREFIXES:
        if host.startswith(prefix):
            host = host[len(prefix) :]
            break
    return source in names or host in names or host.split(".", 1)[0] in names


def ga4_channel(source: str | None, medium: str | None, *, click_id: bool = False, default: str = "website") -> str:
    """GA4's default channel group, simplified (see the table in this module's docstring)."""
    s = (source or "").strip().lower()
    m = (medium or "").strip().lower()
    if not click_id and ((not s and m in _NO_MEDIUM) or (s in ("(direct)", "direct") and m in _NO_MEDIUM)):
        return default
    search, social, paid = _site(s, SEARCH_SOURCES), _site(s, SOCIAL_SOURCES), bool(_PAID_MEDIUM.match(m))
    if click_id or (search and paid):
        return "paid_search"
    if social and paid:
        return "social"
    if m in _DISPLAY_MEDIA:
        return "display"
    if paid:
        return "paid_other"
    if social or m in _SOCIAL_MEDIA:
        return "social"
    if search or m == "organic":
        return "organic_search"
    if m in ("referral", "app", "link"):
        return "referral"
    if s in _EMAIL or m in _EMAIL:
        return "email"
    if m == "affiliate":
        return "partner"
    return utm_channel(m, s) or "unassigned"
