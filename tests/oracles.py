"""Brute-force reference implementations of docs/design.md's semantics, written independently of the core.

Plain Python over whole lists: no batching, no windows, no early exits. Slow and obviously right.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Ev:
    scan_id: str
    person: str
    venue: str
    is_in: bool
    t: int
    zone: str = ""


NO_CAP = 2**62


def oracle_visits(
    events: list[Ev], dwell: dict[str, int], caps: dict[str, int] | None = None
) -> set[tuple[str, str, int, int]]:
    """(person, venue, start, end) per docs/design.md's visit rule, from the complete event list."""
    return {(p, v, s, e) for (p, v, s, e, _) in oracle_pairing(events, dwell, caps)[0]}


def oracle_pairing(
    events: list[Ev], dwell: dict[str, int], caps: dict[str, int] | None = None
) -> tuple[set[tuple[str, str, int, int, str]], dict[str, str]]:
    """Visits (person, venue, start, end, opened_by) and each scan's outcome, by the visit rule over each
    (person, venue)'s distinct scans in (event time, scan_id) order: the order they arrived in plays no part
    beyond which delivery of a retried scan_id counts (the first)."""
    visits, outcome = oracle_zoned_pairing(events, dwell, caps)
    return {v[:5] for v in visits}, outcome


def oracle_zoned_pairing(
    events: list[Ev], dwell: dict[str, int], caps: dict[str, int] | None = None
) -> tuple[set[tuple[str, str, int, int, str, str]], dict[str, str]]:
    """As `oracle_pairing`, each visit with its zone (person, venue, start, end, opened_by, zone): an `in` at
    another zone than the open visit's ends it at that scan (or at its dwell, if sooner) and opens a new
    visit in the new zone; an `in` at the same zone is the plain rule; an `out` closes whatever is open."""
    seen: set[str] = set()
    per_key: dict[tuple[str, str], list[Ev]] = defaultdict(list)
    for e in events:
        if e.scan_id in seen:
            continue
        seen.add(e.scan_id)
        per_key[(e.person, e.venue)].append(e)
    visits, outcome = set(), {}
    for (person, venue), evs in per_key.items():
        d, cap = dwell[venue], (caps or {}).get(venue, NO_CAP)
        open_start = open_scan = expired = None
        open_zone = ""
        for e in sorted(evs, key=lambda e: (e.t, e.scan_id)):
            if open_start is not None and e.t > open_start + cap:
                visits.add((person, venue, open_start, open_start + d, open_scan, open_zone))
                expired, open_start = open_start, None
            if e.is_in:
                if open_start is not None and e.zone == open_zone and e.t <= open_start + d:
                    outcome[e.scan_id] = "repeat"
                    continue
                if open_start is not None:
                    end = open_start + d if e.zone == open_zone or e.t > open_start + d else e.t
                    visits.add((person, venue, open_start, end, open_scan, open_zone))
                open_start, open_scan, open_zone, expired = e.t, e.scan_id, e.zone, None
                outcome[e.scan_id] = "opened"
            elif open_start is not None:
                visits.add((person, venue, open_start, e.t, open_scan, open_zone))
                open_start = None
                outcome[e.scan_id] = "closed"
            elif expired is not None and e.t <= expired + 2 * cap:
                outcome[e.scan_id] = "checkout_after_cap"
            else:
                outcome[e.scan_id] = "unmatched_checkout"
        if open_start is not None:
            visits.add((person, venue, open_start, open_start + d, open_scan, open_zone))
    return visits, outcome


def oracle_trace(visits, case, frm, to, depth, grace, min_overlap, until, tier=None, close_sources=False):  # type: ignore[no-untyped-def]
    """{person: (hop, first_exposure, sorted exposures)} by brute force over every pair of visits.

    With `tier(s, t, start, end) -> "close" | "casual"` every exposure ends with its tier and every
    contact's tuple with the highest of theirs; `close_sources` expands from close contacts only."""
    placed = {case}
    out = {}
    sources = [(v, 0) for v in visits if v.person == case and v.start <= to and v.end >= frm]
    for hop in range(1, depth + 1):
        found = defaultdict(list)
        for s, s_hop in sources:
            for t in visits:
                if t.venue != s.venue or t.person in placed:
                    continue
                if t.start < s.end + grace and s.start < t.end:
                    start = max(s.start, t.start)
                    overlap = min(s.end + grace, t.end) - start
                    if overlap >= min_overlap:
                        exposure = (t.venue, start, start + overlap, overlap, s.person, s_hop)
                        if tier is not None:
                            exposure += (tier(s, t, start, start + overlap),)
                        found[t.person].append(exposure)
        for person, exposures in found.items():
            out[person] = (hop, min(e[1] for e in exposures), sorted(exposures))
            if tier is not None:
                out[person] += ("close" if any(e[-1] == "close" for e in exposures) else "casual",)
        placed |= set(found)
        followed = {p for p in found if not close_sources or out[p][-1] == "close"}
        sources = [(v, hop) for v in visits if v.person in followed and out[v.person][1] <= v.start <= until]
    return out


def oracle_tier(rule, category_of, over_capacity, window):  # type: ignore[no-untyped-def]
    """DESIGN.md's risk rule, one exposure at a time: close when together >= the category's threshold in
    one zone, or at all during an over-capacity window ({(venue, window number)}); the scan-window preset:
    scans at most its window apart."""
    minute = 60_000_000

    def tier(s, t, start, end):  # type: ignore[no-untyped-def]
        if rule.kind == "scan_window":
            return "close" if abs(t.start - s.start) <= rule.scan_window_minutes * minute else "casual"
        threshold = dict(rule.category_close_overlap_minutes).get(category_of.get(t.venue, ""),
                                                                  rule.close_overlap_minutes) * minute  # fmt: skip
        # zone "": a venue-wide scan, somewhere in the venue (so in every zone of it)
        same_zone = s.zone == t.zone or "" in (s.zone, t.zone)
        if end - start >= threshold and (same_zone or not rule.same_zone):
            return "close"
        if rule.over_capacity:
            w = start // window
            while w * window < max(end, start + 1):
                if (t.venue, w) in over_capacity:
                    return "close"
                w += 1
        return "casual"

    return tier


def trace_shape(result, tiers: bool = False) -> dict:  # type: ignore[no-untyped-def]
    """A TraceResult in oracle_trace's shape: {person: (hop, first_exposure, sorted exposures)} (with
    `tiers`, each exposure's and the contact's tier too)."""
    return {
        c.person: (
            c.hop,
            c.first_exposure,
            sorted((e.venue, e.start, e.end, e.overlap_us, e.source_person, e.source_hop) + ((e.risk,) if tiers else ())
                   for e in c.exposures),
        ) + ((c.risk,) if tiers else ())
        for c in result.contacts
    }
