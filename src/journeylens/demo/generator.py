"""The synthetic demo data generator: persons and their touchpoints, vectorised with numpy, chunk by chunk.

A chunk of persons is simulated in a fixed number of array passes (no Python loop per person or event):

1. persons and their personas (``_persons``);
2. the acquisition journey of every prospect up to the buy decision (``_acquisition``), and the
   employer-branding journey of every job candidate (``_job_candidates``);
3. what follows a purchase: repeat purchase journeys (``_repeat_journeys``), delivery, surveys, complaint,
   customer-service, repair and return journeys, reviews and referrals (``_after_purchases``), and
   newsletter opens (``_newsletters``);
4. the rows are put in time order and turned into Arrow tables (``_tables``).

Every random draw comes from one ``numpy.random.Generator`` per chunk, seeded by
``SeedSequence(seed, spawn_key=(chunk,))``, so a chunk's bytes depend only on the seed, the chunk size
and the chunk's position. The parameters (and what each step means) are in ``personas.py``.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeylens.demo import _tables as T
from journeylens.demo import personas as P
from journeylens.schema import TIMESTAMP_TYPE, TOUCHPOINT_FIELDS

__all__ = ["PERSONS_SCHEMA", "TOUCHPOINTS_SCHEMA", "generate"]

#: the touchpoints table the generator writes: exactly the contract's columns
TOUCHPOINTS_SCHEMA = pa.schema(
    [pa.field(f.name, f.type, nullable=(f.name != "event_id")) for f in TOUCHPOINT_FIELDS]
)
#: the persons table: id, persona and attributes
PERSONS_SCHEMA = pa.schema(
    [pa.field("person_id", pa.string(), nullable=False)]
    + [
        pa.field(name, pa.string())
        for name in ("persona", "segment", "country", "age_band", "acquisition_channel", "signup_month")
    ]
)

SECOND = 1_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_TIME = -1
_WORKERS = 2  # simulation threads (at most the number of CPUs)
_ANONYMOUS_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # scrambles anonymous ids (a bijection mod 2^48)
_ANONYMOUS_MASK = np.uint64(2**48 - 1)

# kinds of rows in an acquisition journey, for placing them in order
_FIRST, _LOGIN1, _LOGIN2, _FLAG, _TAIL, _FILL, _PURCHASE = range(7)


def generate(
    persons: int,
    *,
    seed: int = 0,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    days: int = 365,
    chunk_persons: int = 50_000,
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Yield ``(touchpoints_chunk, persons_chunk)`` Arrow tables for ``persons`` simulated persons.

    Deterministic per seed: the same ``persons``, ``seed``, ``start``, ``days`` and ``chunk_persons`` give
    identical tables (another chunk size gives other, equally valid data). Timestamps lie within
    ``[start, start + days)`` (a naive ``start`` is taken as UTC). Persons who browse anonymously and never
    log in have touchpoints with an ``anonymous_id`` only and no row in the persons table. Chunks are
    simulated ahead in up to two worker threads, so at most three chunks are held in memory.
    """
    if persons < 0:
        raise ValueError(f"persons must be >= 0, got {persons}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if chunk_persons < 1:
        raise ValueError(f"chunk_persons must be >= 1, got {chunk_persons}")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start_us = (start - _EPOCH) // timedelta(microseconds=1)
    specs = [
        _ChunkSpec(seed, chunk, first, min(chunk_persons, persons - first), start_us, days * DAY)
        for chunk, first in enumerate(range(0, persons, chunk_persons))
    ]
    return _chunks(specs, seed)


def _chunks(specs: list[_ChunkSpec], seed: int) -> Iterator[tuple[pa.Table, pa.Table]]:
    # chunks are independent: simulate the next ones in worker threads (numpy and Arrow release the GIL)
    # while the caller handles this one; only the event ids, numbered across chunks, are given in order
    workers = min(_WORKERS, os.cpu_count() or 1)
    todo = iter(specs)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="journeylens-demo")
    pending: deque[Future[tuple[pa.Table, pa.Table]]] = deque()
    try:
        for spec in itertools.islice(todo, workers):
            pending.append(pool.submit(_simulate_chunk, spec))
        events_done = 0
        while pending:
            touchpoints, people = pending.popleft().result()
            for spec in itertools.islice(todo, 1):
                pending.append(pool.submit(_simulate_chunk, spec))
            n = touchpoints.num_rows
            event_ids = _ids(f"e{seed}-", np.arange(events_done, events_done + n, dtype=np.int64))
            events_done += n
            yield touchpoints.add_column(0, TOUCHPOINTS_SCHEMA.field("event_id"), event_ids), people
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class _ChunkSpec:
    seed: int
    chunk: int
    first_person: int
    n: int
    start: int
    window: int


def _simulate_chunk(spec: _ChunkSpec) -> tuple[pa.Table, pa.Table]:
    """One chunk's touchpoints (without event ids) and persons."""
    seed_sequence = np.random.SeedSequence(spec.seed, spawn_key=(spec.chunk,))
    rng = np.random.Generator(np.random.PCG64(seed_sequence))
    sim = _Chunk(rng=rng, n=spec.n, first_person=spec.first_person, start=spec.start, window=spec.window)
    rows = sim.simulate()
    return _touchpoints_table(rows, sim, spec.seed), _persons_table(sim, spec.seed)


# ------------------------------------------------------------------------------------------------------------
# Rows
# ------------------------------------------------------------------------------------------------------------


@dataclass
class _Rows:
    """Touchpoint rows as parallel arrays of codes (-1 / NaN: null)."""

    owner: np.ndarray  # person index within the chunk
    t: np.ndarray  # microseconds since the epoch
    tp: np.ndarray  # touchpoint code
    ch: np.ndarray  # channel code
    ct: np.ndarray  # content type code
    item: np.ndarray  # content item code (content_id)
    revenue: np.ndarray
    sat: np.ndarray
    scale: np.ndarray
    props: np.ndarray  # properties code
    device: np.ndarray  # 0: no anonymous_id, 1 or 2: the person's first or second device
    known: np.ndarray  # person_id is set
    job: np.ndarray  # journey_type job_application

    @staticmethod
    def concat(parts: list[_Rows]) -> _Rows:
        return _Rows(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_Rows)})

    def take(self, index: np.ndarray) -> _Rows:
        return _Rows(**{f.name: getattr(self, f.name)[index] for f in fields(_Rows)})


@dataclass
class _Chunk:
    """One chunk of persons being simulated; person-level state lives in arrays of length ``n``."""

    rng: np.random.Generator
    n: int
    first_person: int
    start: int
    window: int
    persona: np.ndarray = field(init=False)
    segment: np.ndarray = field(init=False)
    country: np.ndarray = field(init=False)
    age_band: np.ndarray = field(init=False)
    devices: np.ndarray = field(init=False)  # anonymous devices (0: browses identified only)
    buyer: np.ndarray = field(init=False)
    nps: np.ndarray = field(init=False)  # the buyer's likelihood to recommend (latent, -1: not a buyer)
    acquisition_channel: np.ndarray = field(init=False)
    first_known: np.ndarray = field(init=False)  # time of the first row with a person_id (-1: never)

    @property
    def end(self) -> int:
        return self.start + self.window

    def simulate(self) -> _Rows:
        self._persons()
        acquisition, purchases, last, signup = self._acquisition()
        parts = [acquisition, self._job_candidates()]
        repeats, repeat_purchases = self._repeat_journeys(purchases)
        parts.append(repeats)
        parts.append(self._after_purchases(_concat_purchases(purchases, repeat_purchases)))
        parts.append(self._newsletters(purchases, signup))
        parts.append(self._prospect_questions(last))
        rows = _Rows.concat(parts)
        inside = np.flatnonzero(rows.t < self.end)
        t = rows.t[inside]
        return rows.take(inside[_argsort(t - t.min())] if t.size else inside)

    # --- helpers --------------------------------------------------------------------------------------------

    def _rows(
        self,
        owner: np.ndarray,
        t: np.ndarray,
        tp: np.ndarray,
        *,
        ch: np.ndarray | None = None,
        ct: np.ndarray | None = None,
        revenue: np.ndarray | None = None,
        about: np.ndarray | None = None,
        sat: np.ndarray | None = None,
        props: np.ndarray | None = None,
        device: np.ndarray | None = None,
        known: np.ndarray | None = None,
        job: bool = False,
    ) -> _Rows:
        """Rows with the defaults filled in: channel and content drawn per touchpoint, campaign properties on
        paid ads, survey answers for survey rows (``about``: the touchpoint surveyed), an anonymous_id on
        online channels of persons who browse anonymously."""
        rng = self.rng
        m = owner.size
        tp = tp.astype(np.int16)
        if ch is None:
            ch = T.CHANNEL_OF.sample(rng.random(m), tp)
        if ct is None:
            ct = T.CONTENT_OF.sample(rng.random(m), tp)
        item = np.where(
            ct >= 0, T.ITEM_OFFSET[ct] + (T.ITEM_COUNT[ct] * rng.random(m) ** 2).astype(np.int32), -1
        )
        item = item.astype(np.int32)
        if props is None:
            props = np.full(m, -1, dtype=np.int64)
        props = self._campaigns(tp, ch, props)
        scale = np.full(m, -1, dtype=np.int8)
        if about is not None:
            s = np.flatnonzero(about >= 0)
            props[s] = T.SURVEY_ABOUT_OFFSET + about[s]
            # NPS surveys are about the purchase and come with their answer; the others are drawn here
            scale[s] = np.where(T.SURVEY_SCALE[about[s]] >= 0, T.SURVEY_SCALE[about[s]], T.NPS)
            sat = np.full(m, np.nan) if sat is None else sat.copy()
            drawn = np.isnan(sat[s])
            if (T.SURVEY_SCALE[about[s[drawn]]] < 0).any():
                raise AssertionError("a survey about a touchpoint without a survey in personas.SURVEYS")
            sat[s[drawn]] = self._survey_answers(about[s[drawn]])
        if device is None:
            device = self._device(owner, ch)
        return _Rows(
            owner=owner.astype(np.int32),
            t=t.astype(np.int64),
            tp=tp,
            ch=ch.astype(np.int16),
            ct=ct.astype(np.int16),
            item=item,
            revenue=np.full(m, np.nan) if revenue is None else revenue,
            sat=np.full(m, np.nan) if sat is None else sat,
            scale=scale,
            props=props.astype(np.int32),
            device=device.astype(np.int8),
            known=np.ones(m, dtype=bool) if known is None else known,
            job=np.full(m, job),
        )

    def _campaigns(self, tp: np.ndarray, ch: np.ndarray, props: np.ndarray) -> np.ndarray:
        paid = ((tp == T.TP["ad_view"]) | (tp == T.TP["ad_click"])) & (T.CAMPAIGN_OFFSET[ch] >= 0)
        campaign = T.CAMPAIGN_OFFSET[ch] + self.rng.integers(0, T.CAMPAIGN_COUNT, ch.size)
        return np.where(paid & (props < 0), campaign, props)

    def _survey_answers(self, about: np.ndarray) -> np.ndarray:
        """Answers on each touchpoint's scale: a rounded normal around the touchpoint's mean, clipped."""
        scale = np.maximum(T.SURVEY_SCALE[about], 0)
        value = np.rint(T.SURVEY_MEAN[about] + T.SURVEY_SD[about] * self.rng.standard_normal(about.size))
        return np.clip(value, T.SCALE_RANGE[scale, 0], T.SCALE_RANGE[scale, 1])

    def _device(self, owner: np.ndarray, ch: np.ndarray) -> np.ndarray:
        """The device (1 or 2) of an online row of a person who browses anonymously, else 0; app rows are
        the second device of two-device persons."""
        devices = self.devices[owner]
        online = T.IS_ONLINE[ch] & (devices > 0)
        return np.where(online, np.where((devices == 2) & (ch == T.CH["app"]), 2, 1), 0)

    def _daytime(self, m: int) -> np.ndarray:
        """Microseconds after midnight of a session start: a midday and an evening peak."""
        (w, mu1, sd1), (_, mu2, sd2) = P.DAYTIME_PEAKS
        evening = self.rng.random(m) >= w
        hours = np.where(evening, mu2, mu1) + np.where(evening, sd2, sd1) * self.rng.standard_normal(m)
        return (np.clip(hours, 7.0, 22.5) * HOUR).astype(np.int64) + self.rng.integers(0, SECOND, m)

    def _price(self, persona: np.ndarray) -> np.ndarray:
        log_lo, log_hi = T.LOG_PRICE[persona, 0], T.LOG_PRICE[persona, 1]
        price = np.exp(log_lo + (log_hi - log_lo) * self.rng.random(persona.size))
        step = T.PRICE_STEP[persona]
        # small prices end on .95 (24.95), large ones are rounded to the step (349 -> 350, 12_300)
        return np.where(step <= 1.0, np.floor(price) + 0.95, np.round(price / step) * step)

    def _product(self, persona: np.ndarray) -> np.ndarray:
        k = (T.PRODUCTS_PER_PERSONA * self.rng.random(persona.size) ** 1.5).astype(np.int64)
        return T.PRODUCT_OFFSET[persona] + k

    def _day_after(self, t: np.ndarray, lo: float, hi: float) -> np.ndarray:
        """Midnight of a day ``lo``..``hi`` whole days after ``t`` (``lo >= 1``: always a later day)."""
        days = self.rng.integers(int(lo), int(hi) + 1, t.size)
        return (t // DAY + days) * DAY

    # --- 1. persons -----------------------------------------------------------------------------------------

    def _persons(self) -> None:
        rng, n = self.rng, self.n
        self.persona = np.searchsorted(np.cumsum(T.SHARE)[:-1], rng.random(n), side="right").astype(np.int64)
        self.segment = (rng.random(n) < T.B2B[self.persona]).astype(np.int64)
        self.country = T.COUNTRY.sample(rng.random(n), 0).astype(np.int64)
        self.age_band = T.AGE_BAND.sample(rng.random(n), self.persona).astype(np.int64)
        self.devices = np.zeros(n, dtype=np.int64)
        self.buyer = np.zeros(n, dtype=bool)
        self.nps = np.full(n, -1, dtype=np.int64)
        self.acquisition_channel = np.full(n, -1, dtype=np.int64)
        self.first_known = np.full(n, _NO_TIME, dtype=np.int64)

    # --- 2a. acquisition journeys ---------------------------------------------------------------------------

    def _acquisition(self) -> tuple[_Rows, _Purchases, np.ndarray, np.ndarray]:
        """Every prospect's touchpoints up to the buy decision, and the first purchase of the buyers.

        Returns the rows, the first purchases, and per person the time of the last acquisition row and of the
        newsletter signup (-1: none).
        """
        rng = self.rng
        people = np.flatnonzero(self.persona != T.JOB)
        persona = self.persona[people]
        m = people.size
        contacts = np.empty(m, dtype=np.int64)  # L: touchpoints before the decision
        for k in range(len(T.BUYERS)):
            sel = persona == k
            contacts[sel] = np.searchsorted(T.CONTACTS_CDF[k], rng.random(int(sel.sum())), side="right")
        contacts = np.minimum(contacts, P.MAX_CONTACTS)

        # content that drives conversion, shown when the journey is long enough (see personas.FLAGS)
        seen = (rng.random((m, len(T.FLAG_NAMES))) < T.FLAG_P[persona]) & (contacts[:, None] >= T.FLAG_MIN)
        referred = (rng.random(m) < T.REFERRED_P[persona]) & (contacts >= 1)
        logit = (
            T.INTERCEPT[persona]
            + T.PER_LOG_CONTACT[persona] * np.log1p(contacts)
            + (seen * T.FLAG_EFFECT[persona]).sum(axis=1)
            + referred * T.REFERRED_EFFECT[persona]
        )
        buy = (contacts == 0) | (rng.random(m) * (1.0 + np.exp(-logit)) < 1.0)

        # anonymous browsing on one or two devices, each linked by its own login row
        devices = np.where(
            rng.random(m) < T.ANONYMOUS_P[persona], 1 + (rng.random(m) < P.TWO_DEVICE_PROBABILITY), 0
        )
        devices = np.minimum(devices, np.maximum(contacts - 1, 0))
        budget = contacts - (contacts >= 1) - devices - seen.sum(axis=1)
        # online buyers end with add_to_cart and checkout, after at least one other touchpoint of the journey
        tail = np.clip(budget - 1, 0, np.where(rng.random(m) < T.CHECKOUT_P[persona], 2, 0))
        fill = budget - tail

        # the rows, each with a key in [0, 1.5] that orders it within its person's journey
        owner_parts: list[np.ndarray] = []
        key_parts: list[np.ndarray] = []
        tp_parts: list[np.ndarray] = []
        kind_parts: list[np.ndarray] = []
        ct_parts: list[np.ndarray] = []

        def add(
            owner: np.ndarray, key: np.ndarray | float, tp: np.ndarray | int, kind: int, ct: int = -2
        ) -> None:
            owner_parts.append(owner)
            key_parts.append(np.broadcast_to(np.asarray(key, dtype=np.float64), owner.shape))
            tp_parts.append(np.broadcast_to(np.asarray(tp, dtype=np.int16), owner.shape))
            kind_parts.append(np.full(owner.size, kind, dtype=np.int8))
            ct_parts.append(np.full(owner.size, ct, dtype=np.int16))

        o = np.flatnonzero(contacts >= 1)
        first_tp = np.where(
            referred[o], T.TP["site_visit"], T.ACQUISITION.sample(rng.random(o.size), persona[o])
        )
        add(o, 0.0, first_tp, _FIRST)
        login_key = np.full((m, 3), np.inf)  # per person and device (column 0 unused)
        o = np.flatnonzero(devices >= 1)
        login_key[o, 1] = 0.08 + 0.6 * rng.random(o.size)
        add(o, login_key[o, 1], T.TP["login"], _LOGIN1)
        o = np.flatnonzero(devices == 2)
        login_key[o, 2] = login_key[o, 1] + (0.97 - login_key[o, 1]) * rng.random(o.size)
        add(o, login_key[o, 2], T.TP["login"], _LOGIN2)
        for f in range(len(T.FLAG_NAMES)):
            o = np.flatnonzero(seen[:, f])
            lo, hi = T.FLAG_WHERE[f]
            add(o, lo + (hi - lo) * rng.random(o.size), T.FLAG_TP[f], _FLAG, int(T.FLAG_CT[f]))
        add(np.flatnonzero(tail >= 1), 0.985, T.TP["add_to_cart"], _TAIL)
        add(np.flatnonzero(tail >= 2), 0.99, T.TP["checkout"], _TAIL)
        o = np.repeat(np.arange(m), fill)
        key = 0.02 + 0.96 * rng.random(o.size)
        bounds = T.PHASE_BOUNDS[persona[o]]
        phase = (key >= bounds[:, 0]).astype(np.int64) + (key >= bounds[:, 1])
        loop = rng.random(o.size) < P.LOOP_BACK_PROBABILITY  # people loop back and skip phases
        phase = np.where(loop, rng.integers(0, 3, o.size), phase)
        add(o, key, T.PHASE_MIX.sample(rng.random(o.size), persona[o] * 3 + phase), _FILL)
        add(np.flatnonzero(buy), 1.5, T.TP["purchase"], _PURCHASE)

        owner = np.concatenate(owner_parts)
        key = np.concatenate(key_parts)
        order = _argsort((owner.astype(np.int64) << 22) + (key * 2**21).astype(np.int64))
        owner, key = owner[order], key[order]
        tp = np.concatenate(tp_parts)[order]
        kind = np.concatenate(kind_parts)[order]
        ct_override = np.concatenate(ct_parts)[order]
        r = owner.size
        first_row = np.ones(r, dtype=bool)
        first_row[1:] = owner[1:] != owner[:-1]
        last_row = np.ones(r, dtype=bool)
        last_row[:-1] = first_row[1:]
        row_persona = persona[owner]

        # a survey now and then right after a store visit, sales call, webinar or demo
        previous = np.roll(tp, 1)
        about = np.full(r, -1, dtype=np.int64)
        survey = (
            (kind == _FILL)
            & ~first_row
            & np.isin(previous, T.SURVEYED_BEFORE_PURCHASE)
            & (rng.random(r) < P.PRE_PURCHASE_SURVEY_PROBABILITY)
        )
        tp = np.where(survey, T.TP["survey_response"], tp).astype(np.int16)
        about[survey] = previous[survey]

        # channels: drawn per touchpoint, then the journey's own rules
        ch = T.CHANNEL_OF.sample(rng.random(r), tp)
        ch = np.where((kind == _FIRST) & referred[owner], T.CH["referral"], ch)
        ch = np.where((kind == _LOGIN1) & (devices[owner] == 2), T.CH["website"], ch)
        ch = np.where(kind == _LOGIN2, T.CH["app"], ch)
        is_purchase = kind == _PURCHASE
        b = np.flatnonzero(is_purchase)
        online_purchase = T.ONLINE_PURCHASE_CHANNEL.sample(rng.random(b.size), 0)
        persona_purchase = T.PURCHASE_CHANNEL.sample(rng.random(b.size), row_persona[b])
        ch[b] = np.where(tail[owner[b]] >= 1, online_purchase, persona_purchase)
        ct = np.where(ct_override >= -1, ct_override, T.CONTENT_OF.sample(rng.random(r), tp))

        # time: sessions of a few minutes on separate days; surveys an hour or two after what they are about
        same = (
            (rng.random(r) < T.SAME_SESSION_P[row_persona])
            | (kind == _TAIL)
            | (is_purchase & (tail[owner] >= 1))
        )
        same = (same & ~_enters_or_leaves_store(ch, first_row)) | survey
        day_gap = np.exp(T.GAP_LOG_MEDIAN[row_persona] + T.GAP_SIGMA[row_persona] * rng.standard_normal(r))
        day_gap = np.clip(np.rint(day_gap), 1, 29).astype(np.int64)
        within = np.where(
            survey,
            rng.integers(20 * 60, 3 * 3600, r) * SECOND,
            np.minimum(20 * SECOND + rng.exponential(150 * SECOND, r).astype(np.int64), 15 * 60 * SECOND),
        )
        rel = _timeline(first_row, ~same, day_gap, within, self._daytime(r))
        t = self._place(rel, first_row, last_row)

        # identity: online rows of anonymous browsers carry only the device's anonymous_id until its login
        device = np.where(
            T.IS_ONLINE[ch] & (devices[owner] > 0),
            np.where((devices[owner] == 2) & (ch == T.CH["app"]), 2, 1),
            0,
        )
        device = np.where(kind == _LOGIN1, 1, np.where(kind == _LOGIN2, 2, device))
        anonymous = (device > 0) & (key < login_key[owner, device])
        # some anonymous non-buyers never log in: all their rows stay anonymous (if they are all online)
        offline = np.bincount(owner[~T.IS_ONLINE[ch] | (tp == T.TP["newsletter_signup"])], minlength=m) > 0
        never = (devices > 0) & ~buy & ~offline & (rng.random(m) < P.NEVER_IDENTIFY_PROBABILITY)
        never_row = never[owner]
        tp = np.where(never_row & (tp == T.TP["login"]), T.TP["site_visit"], tp)
        known = ~(anonymous | never_row)

        # the purchase
        revenue = np.full(r, np.nan)
        revenue[is_purchase] = self._price(row_persona[is_purchase])
        props = np.full(r, -1, dtype=np.int64)
        props[is_purchase] = self._product(row_persona[is_purchase])
        props = np.where((kind == _FIRST) & referred[owner], T.REFERRED_PROPS, props)

        person = people[owner]
        rows = self._rows(
            person, t, tp, ch=ch, ct=ct, revenue=revenue, about=about, props=props, device=device, known=known
        )

        # person-level results
        self.devices[people] = devices
        self.buyer[people] = buy
        buyers = people[buy]
        nps = np.rint(T.NPS_MEAN[self.persona[buyers]] + 2.0 * rng.standard_normal(buyers.size))
        self.nps[buyers] = np.clip(nps, 0, 10).astype(np.int64)
        self.acquisition_channel[person[first_row]] = ch[first_row]
        k = np.flatnonzero(known)
        first_known = k[np.r_[True, owner[k][1:] != owner[k][:-1]]] if k.size else k
        self.first_known[person[first_known]] = t[first_known]
        purchases = _Purchases(
            owner=person[is_purchase],
            t=t[is_purchase],
            revenue=revenue[is_purchase],
            ch=ch[is_purchase].astype(np.int64),
            first=np.ones(int(is_purchase.sum()), dtype=bool),
        )
        last = np.full(self.n, _NO_TIME, dtype=np.int64)
        last[person[last_row]] = t[last_row]
        last[people[never]] = _NO_TIME  # unknown persons get no later contact
        signup = np.full(self.n, _NO_TIME, dtype=np.int64)
        s = (tp == T.TP["newsletter_signup"]) & ~buy[owner]
        signup[person[s]] = t[s]  # the last signup row wins: any is fine
        return rows, purchases, last, signup

    def _place(self, rel: np.ndarray, first_row: np.ndarray, last_row: np.ndarray) -> np.ndarray:
        """Place each person's journey (``rel``: microseconds after its first day) at a random day of the
        window, so that it ends before the window does; journeys longer than the window are compressed."""
        span = rel[last_row].astype(np.float64)
        scale = np.minimum(1.0, 0.98 * self.window / np.maximum(span, 1.0))
        latest = np.floor((self.window - span * scale - 1) / DAY).astype(np.int64)
        day = (self.rng.random(span.size) * (latest + 1)).astype(np.int64)
        segment = np.cumsum(first_row) - 1
        return self.start + day[segment] * DAY + (rel * scale[segment]).astype(np.int64)

    # --- 2b. job candidates ---------------------------------------------------------------------------------

    def _job_candidates(self) -> _Rows:
        """Employer branding: views of vacancies and employer stories, then an application, interviews, a
        candidate-experience survey and sometimes a hire; every row has journey_type job_application."""
        rng, job = self.rng, P.JOB
        people = np.flatnonzero(self.persona == T.JOB)
        m = people.size
        views = 1 + rng.poisson(job.views_mean, m)
        applied = rng.random(m) < job.apply_probability
        interviews = np.where(
            applied & (rng.random(m) < job.interview_probability),
            1 + (rng.random(m) < job.second_interview_probability),
            0,
        )
        surveyed = (interviews > 0) & (rng.random(m) < job.survey_probability)
        hired = (interviews > 0) & (rng.random(m) < job.hire_probability)
        count = views + applied + interviews + surveyed + hired
        owner = np.repeat(np.arange(m), count)
        step = _ranks(count)
        r = owner.size
        first_row = step == 0
        last_row = np.ones(r, dtype=bool)
        last_row[:-1] = first_row[1:]

        browse = T.Choice(
            [{T.TP["vacancy_view"]: 0.55, T.TP["employer_story_view"]: 0.25, T.TP["site_visit"]: 0.2}]
        )
        opener = np.where(rng.random(r) < 0.45, T.TP["employer_story_view"], T.TP["vacancy_view"])
        tp = np.where(first_row, opener, browse.sample(rng.random(r), 0))
        after = step - views[owner]  # 0: application, 1..k: interviews, then survey, then hire
        k = interviews[owner]
        tp = np.where(after == 0, T.TP["application_submitted"], tp)
        tp = np.where((after >= 1) & (after <= k), T.TP["interview"], tp)
        tp = np.where((after == k + 1) & surveyed[owner], T.TP["survey_response"], tp)
        tp = np.where((after == k + 1 + surveyed[owner]) & hired[owner], T.TP["hired"], tp).astype(np.int16)
        about = np.where(tp == T.TP["survey_response"], T.TP["interview"], -1)

        same = (tp == T.TP["survey_response"]) | (
            (tp == T.TP["application_submitted"]) & (rng.random(r) < 0.5)
        )
        gap = np.exp(np.log(job.gap_median_days) + 0.8 * rng.standard_normal(r))
        gap = np.where(tp == T.TP["interview"], rng.integers(5, 21, r), gap)
        gap = np.where(tp == T.TP["hired"], rng.integers(3, 15, r), gap)
        day_gap = np.clip(np.rint(gap), 1, 29).astype(np.int64)
        within = (
            np.where(tp == T.TP["survey_response"], rng.integers(3600, 3 * 3600, r), rng.integers(60, 900, r))
            * SECOND
        )
        t = self._place(_timeline(first_row, ~same, day_gap, within, self._daytime(r)), first_row, last_row)

        rows = self._rows(people[owner], t, tp, about=about, job=True)
        # a candidate applies to a vacancy they looked at: one vacancy per candidate
        vacancy = T.ITEM_OFFSET[T.CT["vacancy"]] + rng.integers(0, T.ITEM_COUNT[T.CT["vacancy"]], m)
        rows.item = np.where(rows.ct == T.CT["vacancy"], vacancy[owner], rows.item)
        self.acquisition_channel[people[owner[first_row]]] = rows.ch[first_row]
        self.first_known[people[owner[first_row]]] = t[first_row]
        return rows

    # --- 3. after a purchase --------------------------------------------------------------------------------

    def _repeat_journeys(self, first: _Purchases) -> tuple[_Rows, _Purchases]:
        """The loyalty loop: later purchase journeys of buyers, short (they skip most evaluation), each
        starting more than ``repeat_gap_days[0]`` days after the previous one; some end without a purchase."""
        rng = self.rng
        persona = self.persona[first.owner]
        promoter = self.nps[first.owner] >= 9
        mean = T.REPEAT_MEAN[persona] * np.where(promoter, P.PROMOTER_REPEAT_RATIO, 1.0)
        journeys = rng.poisson(mean * rng.gamma(2.0, 0.5, first.owner.size))  # overdispersed: some buy often
        j = np.repeat(np.arange(first.owner.size), journeys)
        jp = persona[j]
        gap_days = T.REPEAT_GAP[jp, 0] + rng.exponential(T.REPEAT_GAP[jp, 1])
        begin = first.t[j] + _segment_cumsum((gap_days * DAY).astype(np.int64), _ranks(journeys) == 0)
        keep = begin < self.end
        j, jp, begin = j[keep], jp[keep], begin[keep]
        steps = 1 + rng.poisson(np.maximum(T.REPEAT_STEPS[jp] - 1.0, 0.0))
        bought = rng.random(j.size) < P.REPEAT_BUY_PROBABILITY
        count = steps + bought
        seg = np.repeat(np.arange(j.size), count)
        step = _ranks(count)
        r = seg.size
        first_row = step == 0
        is_purchase = bought[seg] & (step == count[seg] - 1)
        row_persona = jp[seg]
        tp = np.where(is_purchase, T.TP["purchase"], T.REPEAT.sample(rng.random(r), row_persona))
        ch = T.CHANNEL_OF.sample(rng.random(r), tp)
        ch[is_purchase] = T.PURCHASE_CHANNEL.sample(
            rng.random(int(is_purchase.sum())), row_persona[is_purchase]
        )
        same = rng.random(r) < np.where(is_purchase, 0.6, T.SAME_SESSION_P[row_persona])
        same &= ~first_row & ~_enters_or_leaves_store(ch, first_row)
        day_gap = rng.integers(1, 5, r)
        within = np.minimum(20 * SECOND + rng.exponential(150 * SECOND, r).astype(np.int64), 15 * 60 * SECOND)
        rel = _timeline(first_row, ~same, day_gap, within, self._daytime(r))
        t = (begin[seg] // DAY) * DAY + rel
        revenue = np.where(is_purchase, self._price(row_persona), np.nan)
        props = np.where(is_purchase, self._product(row_persona), -1)
        owner = first.owner[j][seg]
        rows = self._rows(owner, t, tp, ch=ch, revenue=revenue, props=props)
        purchases = _Purchases(
            owner=owner[is_purchase],
            t=t[is_purchase],
            revenue=revenue[is_purchase],
            ch=ch[is_purchase].astype(np.int64),
            first=np.zeros(int(is_purchase.sum()), dtype=bool),
        )
        return rows, purchases

    def _after_purchases(self, bought: _Purchases) -> _Rows:
        """Per purchase: delivery, surveys, manuals, and the service-type journeys, reviews and referrals."""
        rng = self.rng
        keep = bought.t < self.end
        owner, t, revenue, ch = bought.owner[keep], bought.t[keep], bought.revenue[keep], bought.ch[keep]
        m = owner.size
        persona = self.persona[owner]
        nps = self.nps[owner]
        parts: list[_Rows] = []
        tp_ = T.TP

        delivered = np.isin(ch, [T.CH["website"], T.CH["app"], T.CH["call_centre"], T.CH["partner"]])
        lo, hi = T.DELIVERY_DAYS[persona, 0], T.DELIVERY_DAYS[persona, 1]
        delivery_day = (t // DAY + np.rint(lo + (hi - lo) * rng.random(m)).astype(np.int64)) * DAY
        delivery_t = delivery_day + self._daytime(m)
        anchor = np.where(delivered, delivery_t, t)
        d = np.flatnonzero(delivered)
        parts.append(self._rows(owner[d], delivery_t[d], np.full(d.size, tp_["delivery"])))
        # order tracking: a visit to the website or app on a day between the purchase and the delivery
        waiting = delivery_day // DAY - t // DAY - 1  # whole days in between
        d = np.flatnonzero(delivered & (waiting >= 1) & (rng.random(m) < P.ORDER_TRACKING_PROBABILITY))
        day = t[d] // DAY + 1 + (waiting[d] * rng.random(d.size)).astype(np.int64)
        when = day * DAY + self._daytime(d.size)
        parts.append(self._rows(owner[d], when, np.full(d.size, tp_["site_visit"])))
        d = np.flatnonzero(delivered & (rng.random(m) < P.DELIVERY_SURVEY_PROBABILITY))
        parts.append(
            self._survey(owner[d], delivery_t[d] + rng.integers(HOUR, 30 * HOUR, d.size), tp_["delivery"])
        )

        # NPS: the buyer's own likelihood to recommend, a point up or down after a repeat purchase
        s = np.flatnonzero(rng.random(m) < T.SURVEY_P[persona])
        answer = nps[s] + np.where(bought.first[keep][s], 0, rng.integers(-1, 2, s.size))
        when = self._day_after(t[s], 7, 21) + self._daytime(s.size)
        parts.append(
            self._survey(owner[s], when, tp_["purchase"], sat=np.clip(answer, 0, 10).astype(np.float64))
        )

        manuals = np.where(
            rng.random(m) < T.MANUAL_P[persona],
            1 + rng.poisson(np.where(persona == T.PERSONA["high_involvement"], 1.0, 0.2)),
            0,
        )
        i = np.repeat(np.arange(m), manuals)
        when = self._day_after(anchor[i], 1, 30) + self._daytime(i.size)
        parts.append(self._rows(owner[i], when, np.full(i.size, tp_["manual_view"])))

        # service-type journeys, each opened by its own touchpoint
        detractor = nps <= 6
        p = T.COMPLAINT_P[persona] * np.where(detractor, P.DETRACTOR_COMPLAINT_RATIO, 1.0)
        c = np.flatnonzero(rng.random(m) < p)
        soon = rng.random(c.size) < 0.5  # within a week of the delivery, or months later
        day = np.where(soon, self._day_after(anchor[c], 1, 7), self._day_after(t[c], 30, 150))
        parts.append(self._complaints(owner[c], day))
        s = np.flatnonzero(rng.random(m) < T.SERVICE_P[persona])
        parts.append(self._service_journeys(owner[s], self._day_after(t[s], 35, 250)))
        s = np.flatnonzero(rng.random(m) < T.REPAIR_P[persona])
        parts.append(self._repairs(owner[s], self._day_after(t[s], 60, 330)))
        s = np.flatnonzero(rng.random(m) < T.RETURN_P[persona])
        parts.append(self._returns(owner[s], self._day_after(anchor[s], 1, 20), revenue[s]))

        # advocacy: reviews (stars follow the NPS class), referrals by promoters
        promoter = nps >= 9
        review_p = np.where(
            promoter,
            P.REVIEW_PROBABILITY["promoter"],
            np.where(detractor, P.REVIEW_PROBABILITY["detractor"], P.REVIEW_PROBABILITY["passive"]),
        )
        s = np.flatnonzero(rng.random(m) < review_p)
        top = np.where(promoter[s], 5, np.where(detractor[s], 2, 4))
        stars = top - (rng.random(s.size) < np.where(promoter[s], 0.3, 0.5))
        when = self._day_after(anchor[s], 5, 40) + self._daytime(s.size)
        parts.append(
            self._rows(
                owner[s], when, np.full(s.size, tp_["review_written"]), props=T.STARS_OFFSET + stars - 1
            )
        )
        referrals = np.where(
            promoter & (rng.random(m) < P.PROMOTER_REFERRAL_PROBABILITY), 1 + (rng.random(m) < 0.25), 0
        )
        i = np.repeat(np.arange(m), referrals)
        when = self._day_after(t[i], 7, 120) + self._daytime(i.size)
        parts.append(self._rows(owner[i], when, np.full(i.size, tp_["referral"])))
        return _Rows.concat(parts)

    def _survey(self, owner: np.ndarray, t: np.ndarray, about: int, sat: np.ndarray | None = None) -> _Rows:
        tp = np.full(owner.size, T.TP["survey_response"])
        return self._rows(owner, t, tp, about=np.full(owner.size, about), sat=sat)

    def _chain(
        self,
        owner: np.ndarray,
        day: np.ndarray,
        steps: list[tuple[np.ndarray, np.ndarray, tuple[int, int], bool]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A short journey per owner starting at midnight ``day``: ``steps`` lists, in order, (whether the
        step happens per journey, its touchpoint codes per journey, a (low, high) gap, and whether the gap is
        in days, else in minutes). The first step always happens. Returns owner, t, tp and the journey of
        each row."""
        rng = self.rng
        happens = np.stack([s[0] for s in steps], axis=1)
        codes = np.stack([s[1] for s in steps], axis=1)
        journey, position = np.nonzero(happens)
        r = journey.size
        first_row = np.r_[True, journey[1:] != journey[:-1]] if r else np.zeros(0, dtype=bool)
        gaps = np.array([s[2] for s in steps])
        in_days = np.array([s[3] for s in steps])
        lo, hi = gaps[position, 0], gaps[position, 1]
        gap = lo + ((hi - lo + 1) * rng.random(r)).astype(np.int64)
        new_session = in_days[position]
        rel = _timeline(first_row, new_session, np.maximum(gap, 1), gap * 60 * SECOND, self._daytime(r))
        return owner[journey], day[journey] + rel, codes[journey, position], journey

    def _complaints(self, owner: np.ndarray, day: np.ndarray) -> _Rows:
        rng, m = self.rng, owner.size
        yes = np.ones(m, dtype=bool)

        def follow() -> np.ndarray:
            return np.where(rng.random(m) < 0.55, T.TP["support_call"], T.TP["support_chat"])

        o, t, tp, j = self._chain(
            owner,
            day,
            [
                (yes, np.full(m, T.TP["complaint"]), (0, 0), False),
                (yes, follow(), (60, 180), False),
                (rng.random(m) < 0.4, follow(), (1, 3), True),
                (rng.random(m) < 0.5, np.full(m, T.TP["survey_response"]), (60, 240), False),
            ],
        )
        topic = T.COMPLAINT_OFFSET + T.COMPLAINT_TOPIC.sample(rng.random(m), 0)
        props = np.where(tp == T.TP["complaint"], topic[j], -1)
        about = np.where(tp == T.TP["survey_response"], T.TP["complaint"], -1)
        return self._rows(o, t, tp, props=props, about=about)

    def _service_journeys(self, owner: np.ndarray, day: np.ndarray) -> _Rows:
        rng, m = self.rng, owner.size
        helps = T.Choice([{T.TP["manual_view"]: 0.3, T.TP["support_chat"]: 0.35, T.TP["support_call"]: 0.35}])
        first_help = helps.sample(rng.random(m), 0)
        second_help = helps.sample(rng.random(m), 0)
        has1 = rng.random(m) < 0.6
        has2 = has1 & (rng.random(m) < 0.3)
        last = np.where(has2, second_help, np.where(has1, first_help, T.TP["service_request"]))
        # after self-service (a manual) the survey is about the request
        last = np.where(last == T.TP["manual_view"], T.TP["service_request"], last)
        o, t, tp, j = self._chain(
            owner,
            day,
            [
                (np.ones(m, dtype=bool), np.full(m, T.TP["service_request"]), (0, 0), False),
                (has1, first_help, (10, 120), False),
                (has2, second_help, (1, 2), True),
                (rng.random(m) < 0.4, np.full(m, T.TP["survey_response"]), (60, 240), False),
            ],
        )
        # the survey is about the last contact (a support call is hard work, a self-service answer is easy)
        about = np.where(tp == T.TP["survey_response"], last[j], -1)
        return self._rows(o, t, tp, about=about)

    def _repairs(self, owner: np.ndarray, day: np.ndarray) -> _Rows:
        rng, m = self.rng, owner.size
        o, t, tp, _ = self._chain(
            owner,
            day,
            [
                (np.ones(m, dtype=bool), np.full(m, T.TP["repair_request"]), (0, 0), False),
                (rng.random(m) < 0.5, np.full(m, T.TP["store_visit"]), (1, 5), True),
                (rng.random(m) < 0.6, np.full(m, T.TP["delivery"]), (5, 20), True),
                (rng.random(m) < 0.35, np.full(m, T.TP["survey_response"]), (60, 240), False),
            ],
        )
        about = np.where(tp == T.TP["survey_response"], T.TP["repair_request"], -1)
        return self._rows(o, t, tp, about=about)

    def _returns(self, owner: np.ndarray, day: np.ndarray, paid: np.ndarray) -> _Rows:
        rng, m = self.rng, owner.size
        refunded = rng.random(m) < P.REFUND_PROBABILITY
        o, t, tp, j = self._chain(
            owner,
            day,
            [
                (np.ones(m, dtype=bool), np.full(m, T.TP["return_request"]), (0, 0), False),
                (refunded, np.full(m, T.TP["refund"]), (3, 14), True),
                (refunded & (rng.random(m) < 0.3), np.full(m, T.TP["survey_response"]), (60, 240), False),
            ],
        )
        share = np.where(rng.random(m) < 0.85, 1.0, 0.3 + 0.6 * rng.random(m))  # sometimes a partial refund
        refund = -np.round(paid * share, 2)
        revenue = np.where(tp == T.TP["refund"], refund[j], np.nan)
        reason = T.RETURN_OFFSET + T.RETURN_REASON.sample(rng.random(m), 0)
        props = np.where(tp == T.TP["return_request"], reason[j], -1)
        about = np.where(tp == T.TP["survey_response"], T.TP["refund"], -1)
        return self._rows(o, t, tp, revenue=revenue, props=props, about=about)

    def _newsletters(self, first: _Purchases, signup: np.ndarray) -> _Rows:
        """Newsletter opens: a newsletter goes out every ``NEWSLETTER_EVERY_DAYS``; subscribers (customers who
        opted in, and prospects who signed up) open some of the issues sent after they subscribed."""
        rng = self.rng
        opted_in = rng.random(first.owner.size) < T.NEWSLETTER_P[self.persona[first.owner]]
        prospects = np.flatnonzero(
            (signup != _NO_TIME) & (rng.random(self.n) < P.PROSPECT_NEWSLETTER_PROBABILITY)
        )
        subscriber = np.concatenate([first.owner[opted_in], prospects])
        since = np.concatenate([first.t[opted_in], signup[prospects]])
        issue_every = P.NEWSLETTER_EVERY_DAYS * DAY
        first_issue = self.start // DAY * DAY + 2 * DAY + 9 * HOUR  # sent at 09:00 UTC
        issues = (self.end - first_issue) // issue_every + 1
        next_issue = np.clip((since - first_issue) // issue_every + 1, 0, issues)
        opens = rng.binomial(issues - next_issue, P.NEWSLETTER_OPEN_RATE)
        i = np.repeat(np.arange(subscriber.size), opens)
        issue = next_issue[i] + (rng.random(i.size) * (issues - next_issue[i])).astype(np.int64)
        sent = first_issue + issue * issue_every
        t = sent + np.minimum(rng.exponential(8 * HOUR, i.size), 5 * DAY).astype(np.int64) + 1
        rows = self._rows(subscriber[i], t, np.full(i.size, T.TP["newsletter_open"]))
        rows.item = T.ITEM_OFFSET[T.CT["newsletter"]] + issue % T.ITEM_COUNT[T.CT["newsletter"]]
        return rows

    def _prospect_questions(self, last: np.ndarray) -> _Rows:
        """A few prospects who did not buy ask customer service a question."""
        asks = ~self.buyer & (last != _NO_TIME) & (self.persona != T.JOB)
        o = np.flatnonzero(asks & (self.rng.random(self.n) < P.NON_BUYER_SERVICE_PROBABILITY))
        return self._service_journeys(o, self._day_after(last[o], 1, 30))


# ------------------------------------------------------------------------------------------------------------
# Purchases and array helpers
# ------------------------------------------------------------------------------------------------------------


@dataclass
class _Purchases:
    owner: np.ndarray
    t: np.ndarray
    revenue: np.ndarray
    ch: np.ndarray
    first: np.ndarray  # the person's first purchase


def _concat_purchases(a: _Purchases, b: _Purchases) -> _Purchases:
    return _Purchases(
        **{f.name: np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in fields(_Purchases)}
    )


def _argsort(values: np.ndarray) -> np.ndarray:
    """A stable argsort of non-negative int64 values: a least-significant-digit radix sort, 16 bits a pass
    (numpy sorts uint16 keys by counting), about twice as fast as a comparison sort here."""
    index = np.arange(values.size)
    if values.size == 0:
        return index
    bits = int(values.max()).bit_length()
    for shift in range(0, bits, 16):
        digit = ((values[index] >> shift) & 0xFFFF).astype(np.uint16)
        index = index[np.argsort(digit, kind="stable")]
    return index


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def _segment_cumsum(x: np.ndarray, first_row: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``x`` restarting at every ``first_row``."""
    total = np.cumsum(x)
    start = np.maximum.accumulate(np.where(first_row, np.arange(x.size), 0))
    return total - total[start] + x[start]


def _enters_or_leaves_store(ch: np.ndarray, first_row: np.ndarray) -> np.ndarray:
    """Rows whose channel is the store while the previous row's is not, or the other way round: a store
    visit is never minutes after (or before) a website visit."""
    store = ch == T.CH["store"]
    switch = np.zeros(ch.size, dtype=bool)
    switch[1:] = store[1:] != store[:-1]
    return switch & ~first_row


def _timeline(
    first_row: np.ndarray,
    new_session: np.ndarray,
    day_gap: np.ndarray,
    within: np.ndarray,
    daytime: np.ndarray,
) -> np.ndarray:
    """Microseconds after the first day's midnight of each row of consecutive journeys.

    A journey's first row and every ``new_session`` row start a session ``day_gap`` (>= 1) whole days after
    the previous session, at ``daytime``; other rows follow the previous row by ``within`` microseconds.
    Sessions start between 07:00 and 22:30 and last far less than 8.5 hours, so times strictly increase.
    """
    n = first_row.size
    session = new_session | first_row
    day = _segment_cumsum(np.where(session & ~first_row, day_gap, 0), first_row)
    index = np.arange(n)
    session_start = np.maximum.accumulate(np.where(session, index, 0))
    within = np.where(session, 0, within)
    total = np.cumsum(within)
    elapsed = total - total[session_start]
    return day * DAY + daytime[session_start] + elapsed


# ------------------------------------------------------------------------------------------------------------
# Arrow tables
# ------------------------------------------------------------------------------------------------------------


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _take(names: pa.Array, codes: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``names[codes]``, null where a code is -1 (or where ``valid`` is false)."""
    null = len(names)  # the index of a null appended to the names
    index = np.where(codes < 0, null, codes) if valid is None else np.where(valid, codes, null)
    return pa.concat_arrays([names, pa.nulls(1, names.type)]).take(pa.array(index))


def _person_ids(sim: _Chunk, seed: int) -> pa.Array:
    return _ids(f"p{seed}-", np.arange(sim.first_person, sim.first_person + sim.n, dtype=np.int64))


def _touchpoints_table(rows: _Rows, sim: _Chunk, seed: int) -> pa.Table:
    """The touchpoints in the contract's columns, but for event_id (added in order by ``generate``)."""
    m = rows.owner.size
    person_ids = _person_ids(sim, seed)
    device_number = (sim.first_person + np.arange(sim.n, dtype=np.uint64)) * np.uint64(2)
    # anonymous ids look random: a bijective scramble of (person, device), so they are unique and stable
    scrambled = (
        np.concatenate([device_number, device_number + np.uint64(1)]) * _ANONYMOUS_MULTIPLIER
    ) & _ANONYMOUS_MASK
    anonymous_ids = _ids(f"a{seed}-", scrambled)
    device_index = np.where(rows.device > 0, (rows.device.astype(np.int64) - 1) * sim.n + rows.owner, -1)
    has_revenue = ~np.isnan(rows.revenue)
    has_sat = ~np.isnan(rows.sat)
    columns = {
        "person_id": _take(person_ids, rows.owner, rows.known),
        "anonymous_id": _take(anonymous_ids, device_index),
        "timestamp": pa.array(rows.t, TIMESTAMP_TYPE),
        "channel": _take(T.CHANNEL_NAMES, rows.ch),
        "touchpoint": _take(T.TOUCHPOINT_NAMES, rows.tp),
        "content_type": _take(T.CONTENT_TYPE_NAMES, rows.ct),
        "content_id": _take(T.ITEM_NAMES, rows.item),
        "journey_type": _take(_JOURNEY_TYPES, np.zeros(m, dtype=np.int64), rows.job),
        "revenue": pa.array(rows.revenue, pa.float64(), mask=~has_revenue),
        "currency": _take(_CURRENCIES, np.zeros(m, dtype=np.int64), has_revenue),
        "satisfaction": pa.array(rows.sat, pa.float64(), mask=~has_sat),
        "scale": _take(T.SCALE_NAMES, rows.scale),
        "properties": _take(T.PROPERTIES, rows.props),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=_TOUCHPOINTS_WITHOUT_ID)


def _persons_table(sim: _Chunk, seed: int) -> pa.Table:
    """Persons with at least one identified touchpoint (anonymous visitors who never log in are left out)."""
    keep = np.flatnonzero(sim.first_known != _NO_TIME)
    persona = sim.persona[keep]
    months = sim.first_known[keep].astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    year, month = 1970 + months // 12, months % 12 + 1
    signup_month = pc.binary_join_element_wise(
        pc.cast(pa.array(year), pa.string()), pc.utf8_lpad(pc.cast(pa.array(month), pa.string()), 2, "0"), "-"
    )
    columns = [
        _person_ids(sim, seed).take(pa.array(keep)),
        _take(T.PERSONA_NAMES, persona),
        _take(T.SEGMENT_NAMES, sim.segment[keep]),
        _take(T.COUNTRY_NAMES, sim.country[keep]),
        _take(T.AGE_BAND_NAMES, sim.age_band[keep]),
        _take(T.CHANNEL_NAMES, sim.acquisition_channel[keep]),
        signup_month,
    ]
    return pa.Table.from_arrays(columns, schema=PERSONS_SCHEMA)


_TOUCHPOINTS_WITHOUT_ID = TOUCHPOINTS_SCHEMA.remove(TOUCHPOINTS_SCHEMA.get_field_index("event_id"))
_JOURNEY_TYPES = pa.array([P.JOB_JOURNEY_TYPE], pa.string())
_CURRENCIES = pa.array(["EUR"], pa.string())
