"""Trace: a positive case (F0) to its F1, F2 ... cohorts, exactly by DESIGN.md's semantics. Pure core.

Each hop asks the store twice, for the whole frontier at once: the visits at the frontier's venues
around the frontier's times, then the visits of the newly placed people. Everything between is
plain Python over those lists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from qrtrace.stream_processors.batch import US_PER_MINUTE


@dataclass(frozen=True, slots=True)
class Visit:
    person: str
    venue: str
    start: int  # UTC microseconds
    end: int


@dataclass(frozen=True, slots=True)
class TraceRules:
    depth: int = 2
    grace_us: int = 30 * US_PER_MINUTE
    min_overlap_us: int = 0
    until_us: int = 2**62  # sources of F2+ start no later than this (default: now)


@dataclass(frozen=True, slots=True)
class Exposure:
    """Source visit s exposed the contact's visit t: at s's venue, from max(starts) for overlap_us."""

    venue: str
    start: int
    end: int
    overlap_us: int
    source_person: str
    source_hop: int


@dataclass(slots=True)
class Contact:
    person: str
    hop: int
    first_exposure: int
    exposures: list[Exposure] = field(default_factory=list)


@dataclass(frozen=True)
class CaseQuery:
    case_id: str
    person: str
    from_us: int
    to_us: int


@dataclass(frozen=True)
class TraceResult:
    case: CaseQuery
    rules: TraceRules
    contacts: list[Contact]  # ordered by hop, first exposure, person

    def by_hop(self) -> dict[int, list[Contact]]:
        out: dict[int, list[Contact]] = defaultdict(list)
        for c in self.contacts:
            out[c.hop].append(c)
        return dict(out)


class VisitReader(Protocol):
    """What the trace needs from a store; each call serves the whole frontier."""

    def case_visits(self, person: str, from_us: int, to_us: int) -> list[Visit]:
        """The person's visits intersecting [from, to]."""

    def venue_visits(self, windows: Mapping[str, tuple[int, int]]) -> list[Visit]:
        """Visits at each venue with start < hi and end > lo, for windows[venue] = (lo, hi)."""

    def person_visits(self, since_us: Mapping[str, int], until_us: int) -> list[Visit]:
        """Each person's visits starting in [since_us[person], until_us]."""


def exposure_between(s: Visit, t: Visit, grace_us: int) -> tuple[int, int] | None:
    """(start, overlap) when source s exposes target t at the same venue, else None."""
    if not (t.start < s.end + grace_us and s.start < t.end):
        return None
    start = max(s.start, t.start)
    return start, min(s.end + grace_us, t.end) - start


def expand_frontier(
    sources: Sequence[Visit],
    source_hop: int,
    candidates: Sequence[Visit],
    placed: set[str] | frozenset[str],
    rules: TraceRules,
) -> dict[str, list[Exposure]]:
    """Every exposure of a not-yet-placed person's candidate visit by a source visit, per person."""
    by_venue: dict[str, list[Visit]] = defaultdict(list)
    for s in sources:
        by_venue[s.venue].append(s)
    for group in by_venue.values():
        group.sort(key=lambda v: v.start)
    found: dict[str, list[Exposure]] = defaultdict(list)
    grace, min_overlap = rules.grace_us, rules.min_overlap_us
    for t in candidates:
        if t.person in placed:
            continue
        for s in by_venue.get(t.venue, ()):
            if s.start >= t.end:
                break  # sorted by start: no later source overlaps t
            hit = exposure_between(s, t, grace)
            if hit is not None and hit[1] >= min_overlap:
                start, overlap = hit
                found[t.person].append(Exposure(t.venue, start, start + overlap, overlap, s.person, source_hop))
    return dict(found)


def frontier_windows(sources: Sequence[Visit], grace_us: int) -> dict[str, tuple[int, int]]:
    """Per venue, the time range a target must touch to be exposed by any source there."""
    windows: dict[str, tuple[int, int]] = {}
    for s in sources:
        lo, hi = windows.get(s.venue, (s.start, s.end + grace_us))
        windows[s.venue] = (min(lo, s.start), max(hi, s.end + grace_us))
    return windows


def trace_case(reader: VisitReader, case: CaseQuery, rules: TraceRules) -> TraceResult:
    """F1..F(depth) of one case: each person once, at the lowest hop that reaches them."""
    placed: set[str] = {case.person}
    contacts: list[Contact] = []
    sources = reader.case_visits(case.person, case.from_us, case.to_us)
    for hop in range(1, rules.depth + 1):
        if not sources:
            break
        candidates = reader.venue_visits(frontier_windows(sources, rules.grace_us))
        found = expand_frontier(sources, hop - 1, candidates, placed, rules)
        if not found:
            break
        new = [_contact(person, hop, exposures) for person, exposures in found.items()]
        new.sort(key=lambda c: (c.first_exposure, c.person))
        contacts.extend(new)
        placed.update(found)
        if hop < rules.depth:
            sources = reader.person_visits({c.person: c.first_exposure for c in new}, rules.until_us)
    return TraceResult(case, rules, contacts)


def trace_cases(reader: VisitReader, cases: Sequence[CaseQuery], rules: TraceRules) -> list[TraceResult]:
    """Many cases at once: each hop asks the store twice for the union of all cases' frontiers.

    Results equal `trace_case` run per case; the cases only share the reads.
    """
    placed = {c.case_id: {c.person} for c in cases}
    contacts: dict[str, list[Contact]] = {c.case_id: [] for c in cases}
    sources: dict[str, list[Visit]] = {c.case_id: reader.case_visits(c.person, c.from_us, c.to_us) for c in cases}
    for hop in range(1, rules.depth + 1):
        live = {cid: s for cid, s in sources.items() if s}
        if not live:
            break
        candidates = reader.venue_visits(_union_windows(live.values(), rules.grace_us))
        by_venue: dict[str, list[Visit]] = defaultdict(list)
        for v in candidates:
            by_venue[v.venue].append(v)
        since: dict[str, int] = {}
        new_by_case: dict[str, list[Contact]] = {}
        for cid, case_sources in live.items():
            venues = {s.venue for s in case_sources}
            mine = [v for venue in venues for v in by_venue.get(venue, ())]
            found = expand_frontier(case_sources, hop - 1, mine, placed[cid], rules)
            new = sorted((_contact(p, hop, e) for p, e in found.items()), key=lambda c: (c.first_exposure, c.person))
            contacts[cid].extend(new)
            placed[cid].update(found)
            new_by_case[cid] = new
            for c in new:
                since[c.person] = min(since.get(c.person, c.first_exposure), c.first_exposure)
        sources = {}
        if hop < rules.depth and since:
            visits = reader.person_visits(since, rules.until_us)
            for cid, new in new_by_case.items():
                first = {c.person: c.first_exposure for c in new}
                sources[cid] = [v for v in visits if v.person in first and v.start >= first[v.person]]
    return [TraceResult(c, rules, contacts[c.case_id]) for c in cases]


def _union_windows(groups: Iterable[Sequence[Visit]], grace_us: int) -> dict[str, tuple[int, int]]:
    return frontier_windows([v for group in groups for v in group], grace_us)


def _contact(person: str, hop: int, exposures: list[Exposure]) -> Contact:
    exposures.sort(key=lambda e: (e.start, e.venue, e.source_person, e.end))  # total order: stable output
    return Contact(person, hop, exposures[0].start, exposures)


class InMemoryVisits:
    """A VisitReader over a list: the reference adapter for tests and small in-process traces."""

    def __init__(self, visits: Sequence[Visit]) -> None:
        self.visits = list(visits)

    def case_visits(self, person: str, from_us: int, to_us: int) -> list[Visit]:
        return [v for v in self.visits if v.person == person and v.start <= to_us and v.end >= from_us]

    def venue_visits(self, windows: Mapping[str, tuple[int, int]]) -> list[Visit]:
        return [
            v
            for v in self.visits
            if v.venue in windows and v.start < windows[v.venue][1] and v.end > windows[v.venue][0]
        ]

    def person_visits(self, since_us: Mapping[str, int], until_us: int) -> list[Visit]:
        return [v for v in self.visits if v.person in since_us and since_us[v.person] <= v.start <= until_us]
