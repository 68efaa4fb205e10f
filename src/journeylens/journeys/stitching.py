"""Identity stitching: touchpoints that carry only an ``anonymous_id`` join their person.

A *link* is any touchpoint that carries both a ``person_id`` and an ``anonymous_id`` (an identify call, a
login, a form fill). Once an anonymous id is linked, every touchpoint with that anonymous id belongs to the
person — also the ones before the link. A person may have several anonymous ids (devices).

**Conflicts.** When one anonymous id is linked to two or more persons (a shared computer, a family tablet),
the *first* link wins: the person of the earliest linking touchpoint (ordered by timestamp, then event_id).
The conflict is reported in ``identity_conflicts`` with every person involved. A touchpoint that carries a
``person_id`` of its own always keeps it.

Touchpoints whose anonymous id is never linked stay with an unidentified visitor whose key is
``"anon:" + anonymous_id`` (``identified`` is false on their journeys), so drop-offs before anyone logs in
are still counted.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

ANON_PREFIX = "anon:"


def identity_links(touchpoints: ir.Table) -> ir.Table:
    """One row per (anonymous_id, person_id) link: first and last time seen, number of linking rows."""
    t = touchpoints
    t = t.filter(t.person_id.notnull() & t.anonymous_id.notnull())
    # each linking touchpoint is a link of its own, merged per pair
    return merge_links(
        t.select(
            "anonymous_id",
            "person_id",
            first_linked=t.timestamp,
            last_linked=t.timestamp,
            first_event=t.event_id,
            links=ibis.literal(1, "int64"),
        )
    )


def merge_links(*parts: ir.Table) -> ir.Table:
    """Links (:func:`identity_links`' columns) merged per pair, as if computed from all their touchpoints at
    once (the incremental build merges the stored links of the devices that new touchpoints link with the
    links of those new touchpoints)."""
    columns = ("anonymous_id", "person_id", "first_linked", "last_linked", "first_event", "links")
    u = ibis.union(*[p.select(*columns) for p in parts]) if len(parts) > 1 else parts[0].select(*columns)
    # the event_id of the pair's first linking touchpoint (the lowest among those at its first time), the
    # first-link rule's tie-breaker: not the lowest event_id of all the pair's links
    first = u.first_linked.min().over(ibis.window(group_by=[u.anonymous_id, u.person_id]))
    u = u.mutate(_first_event=ibis.ifelse(u.first_linked == first, u.first_event, ibis.null("string")))
    return u.group_by(["anonymous_id", "person_id"]).aggregate(
        first_linked=u.first_linked.min(),
        last_linked=u.last_linked.max(),
        first_event=u._first_event.min(),
        links=u.links.sum(),
    )


def identity_map(touchpoints: ir.Table, *, links: ir.Table | None = None) -> ir.Table:
    """anonymous_id -> person_id, one row per anonymous id, by the first-link rule; with ``persons_linked``.

    ``links``: :func:`identity_links` of ``touchpoints`` when the caller has them already (the build
    computes them once for this map and for the conflicts)."""
    links = identity_links(touchpoints) if links is None else links
    w = ibis.window(group_by=links.anonymous_id, order_by=[links.first_linked, links.first_event])
    ranked = links.mutate(
        _rank=ibis.row_number().over(w),
        persons_linked=links.person_id.count().over(ibis.window(group_by=links.anonymous_id)),
    )
    return ranked.filter(ranked._rank == 0).select(
        "anonymous_id", "person_id", "first_linked", "persons_linked"
    )


def identity_conflicts(touchpoints: ir.Table, *, links: ir.Table | None = None) -> ir.Table:
    """Anonymous ids linked to more than one person: every link, and which person the rule chose."""
    links = identity_links(touchpoints) if links is None else links
    chosen = identity_map(touchpoints, links=links).select(
        "anonymous_id", chosen_person_id="person_id", persons_linked="persons_linked"
    )
    out = links.join(chosen, "anonymous_id")
    out = out.filter(out.persons_linked > 1)
    return out.select(
        "anonymous_id",
        "person_id",
        "first_linked",
        "links",
        "chosen_person_id",
        chosen=(out.person_id == out.chosen_person_id),
    ).order_by(["anonymous_id", "first_linked", "person_id"])


def stitch(touchpoints: ir.Table, mapping: ir.Table | None = None) -> ir.Table:
    """``touchpoints`` with ``person_key`` (the stitched person, or ``anon:<id>``) and ``identified``."""
    t = touchpoints
    m = identity_map(t) if mapping is None else mapping
    m = m.select(_anon="anonymous_id", _linked="person_id")
    j = t.left_join(m, t.anonymous_id == m._anon)
    key = j.person_id.coalesce(j._linked, ibis.literal(ANON_PREFIX) + j.anonymous_id)
    identified = j.person_id.notnull() | j._linked.notnull()
    return j.mutate(person_key=key, identified=identified).drop("_anon", "_linked")
