"""Trace: positive cases (F0) to their F1, F2 ... cohorts, exactly by docs/design.md's semantics. Pure core.

One code path serves one case and a batch of thousands. Each hop asks the store two set-based
questions for the whole frontier (every case at once): the frontier people's visits (one index range
per person), then every visit in the (venue, 6-hour bucket) cells around those visits (one index range
per cell). Everything between is columnar work here, without I/O: each case's own sources, the overlap
join on venue with docs/design.md's rules, dropping people a case has already placed, each new contact's
first exposure, and the next frontier (a person reached by several cases is read once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from qrtrace.queries.risk import CLOSE, TIERS, RiskContext, RiskRule, exposure_risk
from qrtrace.stream_processors.batch import US_PER_MINUTE

NO_BOUND = 2**62  # "unbounded" for Int64 time bounds (UTC microseconds)

BUCKET_US = 6 * 60 * US_PER_MINUTE  # the store's start_bucket: visits_by_venue's key is (venue_id, start_bucket)
VISIT_COLUMNS = ("person", "venue_id", "start_us", "end_us")  # and "zone" when the reader has zones

# A columnar table: equal-length numpy arrays by column name (strings as object arrays). The core
# works on these, not on DataFrames: per-call overhead matters when a single trace takes milliseconds.
Table = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class Visit:
    person: str
    venue: str
    start: int  # UTC microseconds
    end: int
    zone: str = ""  # the venue's zone ("" at a venue without zones)


SOURCES = ("all", "close")


@dataclass(frozen=True, slots=True)
class TraceRules:
    depth: int = 2
    grace_us: int = 30 * US_PER_MINUTE
    min_overlap_us: int = 0
    until_us: int = NO_BOUND  # sources of F2+ start no later than this (default: now)
    risk: RiskRule | None = None  # the rule set that labels exposures close/casual (None: no tiers)
    sources: str = "all"  # F(k+1) sources: every contact ("all", the contract) or close contacts only


@dataclass(frozen=True, slots=True)
class Exposure:
    """Source visit s exposed the contact's visit t: at s's venue, from max(starts) for overlap_us."""

    venue: str
    start: int
    end: int
    overlap_us: int
    source_person: str
    source_hop: int
    risk: str = ""  # "close" or "casual" ("" when the trace ran without a rule)


@dataclass(slots=True)
class Contact:
    person: str
    hop: int
    first_exposure: int
    exposures: list[Exposure] = field(default_factory=list)
    risk: str = ""  # the highest tier among the exposures that placed them


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
        out: dict[int, list[Contact]] = {}
        for c in self.contacts:
            out.setdefault(c.hop, []).append(c)
        return out


@dataclass(frozen=True)
class Frontier:
    """The source selections of one hop. `selections` has one row per (case, person): the person's
    visits with start in [start_lo, start_hi] and end >= end_lo are that case's sources. The store is
    asked once per distinct person (`persons`, with the union of their bounds), shared by all cases."""

    selections: Table  # case, person, start_lo, start_hi, end_lo
    persons: list[str]
    start_los: list[int]
    start_his: list[int]
    end_los: list[int]

    @classmethod
    def of(cls, selections: Table) -> Frontier:
        codes, persons = pd.factorize(selections["person"])
        n = len(persons)
        lo = np.full(n, NO_BOUND, dtype=np.int64)
        hi = np.full(n, -NO_BOUND, dtype=np.int64)
        end_lo = np.full(n, NO_BOUND, dtype=np.int64)
        np.minimum.at(lo, codes, selections["start_lo"])
        np.maximum.at(hi, codes, selections["start_hi"])
        np.minimum.at(end_lo, codes, selections["end_lo"])
        return cls(selections, list(persons), lo.tolist(), hi.tolist(), end_lo.tolist())

    def __len__(self) -> int:
        return len(self.persons)


class HopReader(Protocol):
    """What the trace needs from a store: two set-based reads per hop (tables of VISIT_COLUMNS).

    People and venues travel through the hops as the reader's keys: names for a store, integer codes for
    the trace index (`person_keys` turns the cases' pseudonyms into keys, `named` a batch back to names)."""

    def person_keys(self, persons: Sequence[str]) -> np.ndarray:
        """The reader's keys for these pseudonyms."""

    def named(self, batch: TraceBatch) -> TraceBatch:
        """The batch with its keys turned back into pseudonyms and venue ids."""

    def source_visits(self, frontier: Frontier) -> tuple[Table, int]:
        """Each frontier person's visits within their bounds (a superset is fine), and the length of
        the longest visit stored (how far back an overlapping visit can have started): one number, or an
        array with one per returned visit (the longest at that visit's venue: a tighter look-back)."""

    def cell_visits(self, venues: np.ndarray, buckets: np.ndarray) -> Table:
        """Every visit whose (venue_id, start_bucket) is one of the given cells."""


@dataclass
class TraceBatch:
    """The columnar result of a batch: one row per (case, contact) and one per exposure."""

    cases: list[CaseQuery]
    rules: TraceRules
    contacts: Table  # case, person, hop, first_exposure, risk
    exposures: Table  # case, person, venue, start, end, overlap, source_person, source_hop, risk
    # Set while people and venues are still the reader's keys (HopReader.named turns them into names).
    namer: Callable[[TraceBatch], TraceBatch] | None = None

    def named(self) -> TraceBatch:
        """This batch with pseudonyms and venue ids (itself when it has them already)."""
        return self if self.namer is None else self.namer(self)

    def results(self) -> list[TraceResult]:
        """One TraceResult per case, in the order the cases were given."""
        if self.namer is not None:
            return self.named().results()
        e = self.exposures
        tiers = TIERS if self.rules.risk is not None else ("", "")
        order = np.lexsort((e["end"], e["source_person"], e["venue"], e["start"], e["person"], e["case"]))
        evidence: dict[tuple[int, str], list[Exposure]] = {}
        columns = ("case", "person", "venue", "start", "end", "overlap", "source_person", "source_hop", "risk")
        for case, person, venue, start, end, overlap, source, source_hop, risk in zip(
            *(e[c][order].tolist() for c in columns), strict=True
        ):
            evidence.setdefault((case, person), []).append(
                Exposure(venue, start, end, overlap, source, source_hop, tiers[risk])
            )
        c = self.contacts
        order = np.lexsort((c["person"], c["first_exposure"], c["hop"], c["case"]))
        per_case: list[list[Contact]] = [[] for _ in self.cases]
        for case, person, hop, first, risk in zip(
            *(c[k][order].tolist() for k in ("case", "person", "hop", "first_exposure", "risk")), strict=True
        ):
            per_case[case].append(Contact(person, hop, first, evidence[(case, person)], tiers[risk]))
        return [TraceResult(q, self.rules, found) for q, found in zip(self.cases, per_case, strict=True)]


def trace_case(reader: HopReader, case: CaseQuery, rules: TraceRules, risk: RiskContext | None = None
               ) -> TraceResult:  # fmt: skip
    """F1..F(depth) of one case: each person once, at the lowest hop that reaches them."""
    return trace_batch(reader, [case], rules, risk=risk).results()[0]


def trace_cases(
    reader: HopReader, cases: Sequence[CaseQuery], rules: TraceRules, on_hop: Callable[[int], None] | None = None,
    risk: RiskContext | None = None,
) -> list[TraceResult]:
    """Many cases at once; results equal `trace_case` run per case, the cases share the reads."""
    return trace_batch(reader, cases, rules, on_hop, risk).results()


def trace_chunks(
    reader: HopReader,
    cases: Sequence[CaseQuery],
    rules: TraceRules,
    max_rows: int,
    on_progress: Callable[[float], None] | None = None,
    risk: RiskContext | None = None,
) -> Iterator[tuple[int, TraceBatch]]:
    """Trace the cases a chunk at a time: (index of the chunk's first case, the chunk's TraceBatch).

    Memory is bounded by the chunk, not the batch: the caller writes each chunk out before asking for the
    next. A chunk's cases still share reads. The size adapts: the first chunk is one case, then each
    chunk holds as many cases as, at the exposures per case seen so far, make about `max_rows` exposures
    (at most twice the previous chunk, so one light case does not let a heavy run through). Cases are
    independent, so the results per case are those of `trace_case`. `on_progress(fraction)` after each hop.
    """
    cases = list(cases)
    done, size, rows_seen = 0, 1, 0
    while done < len(cases):
        chunk = cases[done : done + size]

        def hop_done(hop: int, done: int = done, n: int = len(chunk)) -> None:
            if on_progress:
                on_progress((done + n * hop / rules.depth) / len(cases))

        batch = trace_batch(reader, chunk, rules, hop_done, risk)
        yield done, batch
        done += len(chunk)
        rows_seen += len(batch.exposures["case"])
        per_case = max(1, rows_seen // done)
        size = max(1, min(2 * size, max_rows // per_case))
        if on_progress:
            on_progress(done / len(cases))


def exposure_rows(batch: TraceBatch, first_case: int = 0) -> Table:
    """A batch's exposures as rows to store, each with its contact's hop and first exposure and its case's
    index in the whole run (`first_case` + index in the chunk)."""
    batch = batch.named()
    e, c = batch.exposures, batch.contacts
    codes, uniques = pd.factorize(np.concatenate([c["person"], e["person"]]))
    width = len(uniques) + 1
    contact_keys = c["case"] * width + codes[: len(c["person"])]
    ci, ei = join_indices(contact_keys, e["case"] * width + codes[len(c["person"]) :])
    order = np.argsort(ei, kind="stable")  # one contact per exposure: back in the exposures' order
    ci, ei = ci[order], ei[order]
    return {
        "case_index": (e["case"] + first_case).astype(np.uint32),
        "person": e["person"],
        "hop": c["hop"][ci].astype(np.uint8),
        "first_exposure_us": c["first_exposure"][ci],
        "venue_id": e["venue"],
        "start_us": e["start"],
        "end_us": e["end"],
        "overlap_us": e["overlap"],
        "source_person": e["source_person"],
        "source_hop": e["source_hop"].astype(np.uint8),
        "risk": e["risk"].astype(np.uint8),
    }


def trace_batch(
    reader: HopReader, cases: Sequence[CaseQuery], rules: TraceRules, on_hop: Callable[[int], None] | None = None,
    risk: RiskContext | None = None,
) -> TraceBatch:
    """Trace every case: two store reads per hop for the whole batch; `on_hop(hop)` after each hop.

    With `rules.risk`, every exposure gets its tier by `risk` (what the rule knows of the venues, keyed like
    the reader's venues; default: the rule's plain thresholds), and every contact the highest of theirs."""
    cases = list(cases)
    if rules.sources not in SOURCES or (rules.sources == "close" and rules.risk is None):
        raise ValueError(f"sources={rules.sources!r} needs one of {SOURCES}, and 'close' needs a risk rule")
    if rules.risk is None:
        risk = None
    elif risk is None:
        risk = RiskContext.plain(rules.risk)  # the rule's own thresholds, no venue known (tests, small traces)
    elif risk.rule != rules.risk:
        raise ValueError(f"the risk context is for rule {risk.rule.name!r}, the trace's is {rules.risk.name!r}")
    keys = reader.person_keys([c.person for c in cases])
    placed: Table = {"case": np.arange(len(cases), dtype=np.int64), "person": keys}
    frontier = case_frontier(cases, keys)
    found_contacts: list[Table] = []
    found_exposures: list[Table] = []
    for hop in range(1, rules.depth + 1):
        if not len(frontier):
            break
        exposures = expand_frontier(reader, frontier, placed, hop, rules, risk)
        if on_hop:
            on_hop(hop)
        if not len(exposures["case"]):
            break
        contacts = first_exposures(exposures, hop)
        found_exposures.append(exposures)
        found_contacts.append(contacts)
        placed = concat_tables([placed, {"case": contacts["case"], "person": contacts["person"]}])
        if hop < rules.depth:
            if rules.sources == "close":  # contact tracing by hand: only close contacts are followed further
                contacts = {k: v[contacts["risk"] == CLOSE] for k, v in contacts.items()}
            frontier = contact_frontier(contacts, rules.until_us)
    return TraceBatch(
        cases,
        rules,
        concat_tables(found_contacts) if found_contacts else empty_table(CONTACT_COLUMNS, keys.dtype),
        concat_tables(found_exposures) if found_exposures else empty_table(EXPOSURE_COLUMNS, keys.dtype),
        None if keys.dtype == object else reader.named,
    )


CONTACT_COLUMNS = {"case": np.int64, "person": object, "hop": np.int64, "first_exposure": np.int64, "risk": np.uint8}
EXPOSURE_COLUMNS = {
    "case": np.int64,
    "person": object,
    "venue": object,
    "start": np.int64,
    "end": np.int64,
    "overlap": np.int64,
    "source_person": object,
    "source_hop": np.int64,
    "risk": np.uint8,
}


def case_frontier(cases: Sequence[CaseQuery], keys: np.ndarray) -> Frontier:
    """F1 sources: each case's visits intersecting its infectious window [from, to] (`keys`: the cases'
    people as the reader's keys)."""
    n = len(cases)
    return Frontier.of(
        {
            "case": np.arange(n, dtype=np.int64),
            "person": keys,
            "start_lo": np.full(n, -NO_BOUND, dtype=np.int64),
            "start_hi": np.array([c.to_us for c in cases], dtype=np.int64),
            "end_lo": np.array([c.from_us for c in cases], dtype=np.int64),
        }
    )


def contact_frontier(contacts: Table, until_us: int) -> Frontier:
    """F(k+1) sources: each new contact's visits from their first exposure until `until`."""
    n = len(contacts["case"])
    return Frontier.of(
        {
            "case": contacts["case"],
            "person": contacts["person"],
            "start_lo": contacts["first_exposure"],
            "start_hi": np.full(n, until_us, dtype=np.int64),
            "end_lo": np.full(n, -NO_BOUND, dtype=np.int64),
        }
    )


def expand_frontier(reader: HopReader, frontier: Frontier, placed: Table, hop: int, rules: TraceRules,
                    risk: RiskContext | None = None) -> Table:  # fmt: skip
    """One hop: every exposure of a person not yet placed by a case, by one of that case's sources."""
    visits, longest = reader.source_visits(frontier)
    if np.ndim(longest):
        visits = {**visits, "longest": np.asarray(longest, dtype=np.int64)}
    sources = case_sources(visits, frontier.selections)
    longest = sources.pop("s_longest", longest)
    if not len(sources["case"]):
        return empty_table(EXPOSURE_COLUMNS, frontier.selections["person"].dtype)
    cells = source_cells(sources, longest, rules.grace_us)
    venue_codes = _venue_codes(sources["venue_id"], sources["venue_id"][:0])[0]
    distinct = np.unique(venue_codes[cells["source"]] << 32 | cells["bucket"], return_index=True)[1]
    candidates = reader.cell_visits(sources["venue_id"][cells["source"][distinct]], cells["bucket"][distinct])
    return hop_exposures(sources, cells, candidates, placed, hop, rules, longest, risk)


def case_sources(visits: Table, selections: Table) -> Table:
    """(case, s_person, venue_id, s_start, s_end): each case's sources, by that case's own bounds."""
    vi, si = join_indices(visits["person"], selections["person"])
    start, end = visits["start_us"][vi], visits["end_us"][vi]
    own = (start >= selections["start_lo"][si]) & (start <= selections["start_hi"][si])
    own &= end >= selections["end_lo"][si]
    vi, si = vi[own], si[own]
    return {
        "case": selections["case"][si],
        "s_person": visits["person"][vi],
        "venue_id": visits["venue_id"][vi],
        "s_start": visits["start_us"][vi],
        "s_end": visits["end_us"][vi],
    } | ({"s_longest": visits["longest"][vi]} if "longest" in visits else {}) | (
        {"s_zone": visits["zone"][vi]} if "zone" in visits else {})


def source_cells(sources: Table, longest_us: int | np.ndarray, grace_us: int) -> Table:
    """Each source's (venue, start bucket) cells, one row per (source, cell): the buckets a visit it
    exposes can have started in, from its start minus the longest visit (one for all, or per source) to
    its end plus grace."""
    first = (sources["s_start"] - longest_us) // BUCKET_US
    last = (sources["s_end"] + grace_us) // BUCKET_US
    counts = last - first + 1
    return {"source": np.repeat(np.arange(len(first)), counts), "bucket": np.repeat(first, counts) + _ranks(counts)}


MAX_PAIRS = 2_000_000  # (source cell, candidate) pairs examined at once: bounds a hop's memory in a chunk


def hop_exposures(sources: Table, cells: Table, candidates: Table, placed: Table, hop: int, rules: TraceRules,
                  longest: int | np.ndarray | None = None, risk: RiskContext | None = None) -> Table:  # fmt: skip
    """docs/design.md's exposure rule over (source, candidate) pairs at one venue, per case, minus people the
    case has already placed (which includes the case itself). Pairs are made by `interval_pairs` (the
    candidates that started within a source's look-back `longest` and before its end + grace), or, when
    `longest` is not given or the keys do not fit, by the (venue, bucket) cells both share. They are
    examined at most MAX_PAIRS at a time: a busy venue can pair millions, most of them no exposure."""
    source_codes, candidate_codes = _venue_codes(sources["venue_id"], candidates["venue_id"])
    known = PlacedSet(placed)
    slices = None if longest is None else interval_pairs(sources, source_codes, candidates, candidate_codes,
                                                          longest, rules.grace_us)  # fmt: skip
    if slices is None:
        candidates, candidate_codes = _near_sources(sources, source_codes, candidates, candidate_codes,
                                                    rules.grace_us)  # fmt: skip
        # Exact (venue, bucket) keys: venue codes of one numbering on both sides, bucket in the low 32 bits.
        cell_keys = source_codes[cells["source"]] << 32 | cells["bucket"]
        candidate_keys = candidate_codes << 32 | candidates["start_us"] // BUCKET_US
        slices = ((cells["source"][ci], ti) for ci, ti in join_slices(cell_keys, candidate_keys, MAX_PAIRS))
    found = [_pair_exposures(sources, si, candidates, ti, known, hop, rules, risk) for si, ti in slices]
    return concat_tables(found) if found else empty_table(EXPOSURE_COLUMNS, sources["s_person"].dtype)


Pairs = Iterator[tuple[np.ndarray, np.ndarray]]  # slices of (source index, candidate index) pairs


def interval_pairs(sources: Table, source_codes: np.ndarray, candidates: Table, candidate_codes: np.ndarray,
                   longest: int | np.ndarray, grace_us: int) -> Pairs | None:  # fmt: skip
    """(source, candidate) index pairs, in slices of at most MAX_PAIRS: for each source, the candidates at
    its venue that started in [start - longest, end + grace), the only ones that can overlap it. One sorted
    key (venue, start) and two binary searches per source: far fewer pairs than whole 6-hour cells. Venues
    are ranked among the sources' own (a hop meets thousands, not the country's millions), so the packed
    key fits 64 bits; None when even that would not (a hop spanning centuries: then the cells pair them)."""
    s_lo = sources["s_start"] - longest
    s_hi = sources["s_end"] + grace_us
    t_start = candidates["start_us"]
    if not len(t_start) or not len(s_lo):
        return iter(())
    venues, source_rank = np.unique(source_codes, return_inverse=True)
    candidate_rank = np.searchsorted(venues, candidate_codes)  # a candidate elsewhere meets no source
    elsewhere = (candidate_rank >= len(venues)) | (venues[np.minimum(candidate_rank, len(venues) - 1)]
                                                   != candidate_codes)  # fmt: skip
    candidate_rank[elsewhere] = len(venues)  # ranked after every source's venue: no source range holds it
    base = int(min(t_start.min(), s_lo.min()))
    span = int(max(t_start.max(), s_hi.max())) - base + 1
    if (len(venues) + 1) * span >= 2**62:
        return None
    keys = candidate_rank * span + (t_start - base)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    lo = sorted_search(keys, source_rank * span + (s_lo - base))
    counts = sorted_search(keys, source_rank * span + (s_hi - base)) - lo
    return range_slices(order, lo, counts, MAX_PAIRS)


def range_slices(order: np.ndarray, lo: np.ndarray, counts: np.ndarray, max_pairs: int | None) -> Pairs:
    """Pairs (i, order[lo[i] + k]) for k < counts[i], in slices of consecutive i of at most `max_pairs`
    pairs each (an i with more is a slice of its own; None: one slice)."""
    if max_pairs is None:
        yield np.repeat(np.arange(len(lo)), counts), order[np.repeat(lo, counts) + _ranks(counts)]
        return
    total = np.cumsum(counts)
    i = 0
    while i < len(counts):
        before = int(total[i - 1]) if i else 0
        j = max(i + 1, int(np.searchsorted(total, before + max_pairs, "right")))
        c = counts[i:j]
        yield np.repeat(np.arange(i, j), c), order[np.repeat(lo[i:j], c) + _ranks(c)]
        i = j


def _venue_codes(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Venue keys of both sides as dense int64 codes of one numbering: the reader's own codes when it
    gives integers (the trace index), else one factorisation of the names."""
    if a.dtype != object and b.dtype != object:
        return a.astype(np.int64, copy=False), b.astype(np.int64, copy=False)
    codes = pd.factorize(np.concatenate([a, b]))[0].astype(np.int64)
    return codes[: len(a)], codes[len(a) :]


def _near_sources(sources: Table, source_codes: np.ndarray, candidates: Table, candidate_codes: np.ndarray,
                  grace_us: int) -> tuple[Table, np.ndarray]:  # fmt: skip
    """The candidates that can overlap some source at their venue at all: ending after the venue's earliest
    source start and starting before its latest source end + grace. Exact (no exposure is lost), and it
    drops most of the look-back cells' visits, which ended long before any source came."""
    n = int(max(source_codes.max(initial=-1), candidate_codes.max(initial=-1))) + 1
    earliest = np.full(n, NO_BOUND, dtype=np.int64)
    latest = np.full(n, -NO_BOUND, dtype=np.int64)
    np.minimum.at(earliest, source_codes, sources["s_start"])
    np.maximum.at(latest, source_codes, sources["s_end"] + grace_us)
    near = (candidates["end_us"] > earliest[candidate_codes]) & (candidates["start_us"] < latest[candidate_codes])
    if near.all():
        return candidates, candidate_codes
    return {name: column[near] for name, column in candidates.items()}, candidate_codes[near]


class PlacedSet:
    """The (case, person) pairs placed so far, asked about many pairs at once. With integer keys (the trace
    index) a sorted array of packed pairs, built once per hop; with names, `contains_pairs`."""

    def __init__(self, placed: Table) -> None:
        self.placed = placed
        self.coded = placed["person"].dtype != object
        if self.coded:
            self.keys = np.sort(_pair_key(placed["case"], placed["person"]))

    def contains(self, case: np.ndarray, person: np.ndarray) -> np.ndarray:
        if not self.coded:
            return contains_pairs(self.placed, case, person)
        keys = _pair_key(case, person)
        at = np.minimum(sorted_search(self.keys, keys), len(self.keys) - 1)
        return self.keys[at] == keys


def sorted_search(haystack: np.ndarray, needles: np.ndarray, side: str = "left") -> np.ndarray:
    """np.searchsorted, with many needles searched in sorted order: binary searches for sorted needles
    share their path through the haystack (6x faster for millions of needles in a haystack of millions)."""
    if len(needles) < 4096 or len(haystack) < 65536:
        return np.searchsorted(haystack, needles, side)  # type: ignore[call-overload]
    order = np.argsort(needles)
    out = np.empty(len(needles), dtype=np.int64)
    out[order] = np.searchsorted(haystack, needles[order], side)  # type: ignore[call-overload]
    return out


def _pair_key(case: np.ndarray, person: np.ndarray) -> np.ndarray:
    """(case, person code) packed in one int64: codes are below 2**31 (an unknown person's -1 packs to -1)."""
    return np.asarray(case, dtype=np.int64) << 31 | np.asarray(person, dtype=np.int64)


def _pair_exposures(
    sources: Table, si: np.ndarray, candidates: Table, ti: np.ndarray, placed: PlacedSet, hop: int, rules: TraceRules,
    risk: RiskContext | None = None,
) -> Table:
    """The exposures among (source si[k], candidate ti[k]) pairs, each with its tier when `risk` is given."""
    s_start, s_end = sources["s_start"][si], sources["s_end"][si] + rules.grace_us
    t_start, t_end = candidates["start_us"][ti], candidates["end_us"][ti]
    start, end = np.maximum(s_start, t_start), np.minimum(s_end, t_end)
    hit = (t_start < s_end) & (s_start < t_end) & (end - start >= rules.min_overlap_us)
    hit &= candidates["person"][ti] != sources["s_person"][si]
    si, ti, start, end = si[hit], ti[hit], start[hit], end[hit]
    case, person = sources["case"][si], candidates["person"][ti]
    fresh = ~placed.contains(case, person)
    si, ti, start, end = si[fresh], ti[fresh], start[fresh], end[fresh]
    venue = candidates["venue_id"][ti]
    if risk is None:
        tier = np.zeros(len(si), dtype=np.uint8)
    else:
        same_zone = None  # a reader without zones: every venue has one
        if "s_zone" in sources and "zone" in candidates:
            s_zone, t_zone = sources["s_zone"][si], candidates["zone"][ti]
            same_zone = (s_zone == t_zone) | (s_zone == risk.wide_zone) | (t_zone == risk.wide_zone)
        tier = exposure_risk(risk, venue, sources["s_start"][si], candidates["start_us"][ti], start, end, same_zone)
    return {
        "case": case[fresh],
        "person": person[fresh],
        "venue": venue,
        "start": start,
        "end": end,
        "overlap": end - start,
        "source_person": sources["s_person"][si],
        "source_hop": np.full(len(si), hop - 1, dtype=np.int64),
        "risk": tier,
    }


GROUP_BY_HASH_ROWS = 200_000


def first_exposures(exposures: Table, hop: int) -> Table:
    """One row per (case, newly placed person) with their earliest exposure start."""
    if exposures["person"].dtype != object and len(exposures["person"]) > GROUP_BY_HASH_ROWS:
        # integer keys, many rows: a hash group-by of the packed pair beats sorting (pandas costs ~1 ms a call)
        keys = _pair_key(exposures["case"], exposures["person"])
        groups = pd.DataFrame({"start": exposures["start"], "risk": exposures["risk"]}).groupby(keys, sort=False)
        first = groups.agg({"start": "min", "risk": "max"})
        keys = first.index.to_numpy()
        return {
            "case": keys >> 31,
            "person": keys & (2**31 - 1),
            "hop": np.full(len(keys), hop, dtype=np.int64),
            "first_exposure": first["start"].to_numpy(),
            "risk": first["risk"].to_numpy().astype(np.uint8),
        }
    codes, _ = pd.factorize(exposures["person"])
    key = exposures["case"] * (int(codes.max(initial=0)) + 1) + codes
    order = np.lexsort((exposures["start"], key))
    starts = np.r_[True, key[order][1:] != key[order][:-1]] if len(order) else np.empty(0, dtype=bool)
    head = order[starts]
    # the highest tier of each group (rows are grouped by key in `order`)
    risk = np.maximum.reduceat(exposures["risk"][order], np.flatnonzero(starts)) if len(order) else \
        np.empty(0, dtype=np.uint8)
    return {
        "case": exposures["case"][head],
        "person": exposures["person"][head],
        "hop": np.full(len(head), hop, dtype=np.int64),
        "first_exposure": exposures["start"][head],
        "risk": risk.astype(np.uint8),
    }


def join_indices(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with left[i] == right[j]: an inner equi-join of two key columns."""
    if left.dtype != object and right.dtype != object:  # integer keys: sort both sides, no hashing
        order, lorder = np.argsort(right, kind="stable"), np.argsort(left, kind="stable")
        ordered, wanted = right[order], left[lorder]
        lo = np.searchsorted(ordered, wanted, "left")
        counts = np.searchsorted(ordered, wanted, "right") - lo
        return np.repeat(lorder, counts), order[np.repeat(lo, counts) + _ranks(counts)]
    parts = list(join_slices(left, right, None))
    if len(parts) == 1:
        return parts[0]
    empty = np.empty(0, dtype=np.int64)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])) if parts else (empty, empty)


def join_slices(left: np.ndarray, right: np.ndarray, max_pairs: int | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`join_indices` in slices of consecutive left rows of at most `max_pairs` pairs each (a left row
    with more matches is a slice of its own; None: one slice), in the order join_indices gives them."""
    codes, _ = pd.factorize(np.concatenate([left, right]))
    left_codes, right_codes = codes[: len(left)], codes[len(left) :]
    order = np.argsort(right_codes, kind="stable")
    ordered = right_codes[order]
    lo = np.searchsorted(ordered, left_codes, "left")
    counts = np.searchsorted(ordered, left_codes, "right") - lo
    yield from range_slices(order, lo, counts, max_pairs)


def contains_pairs(table: Table, case: np.ndarray, person: np.ndarray) -> np.ndarray:
    """For each (case[i], person[i]): is that pair a row of `table` (columns case, person)?"""
    codes, _ = pd.factorize(np.concatenate([table["person"], person]))
    width = int(codes.max(initial=0)) + 1
    known = table["case"] * width + codes[: len(table["person"])]
    return np.isin(case * width + codes[len(table["person"]) :], known)


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., counts[i] - 1 for each i, concatenated."""
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def _objects(values: Sequence[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def empty_table(columns: Mapping[str, type], keys: np.dtype | type = object) -> Table:
    """No rows; object (name) columns take the `keys` dtype (the reader's: names or integer codes)."""
    return {name: np.empty(0, dtype=keys if dtype is object else dtype) for name, dtype in columns.items()}


def concat_tables(tables: Sequence[Table]) -> Table:
    if len(tables) == 1:
        return tables[0]
    return {name: np.concatenate([t[name] for t in tables]) for name in tables[0]}


class NameKeys:
    """HopReader keys for readers whose tables hold the names themselves (the store, a list)."""

    def person_keys(self, persons: Sequence[str]) -> np.ndarray:
        return _objects(list(persons))

    def named(self, batch: TraceBatch) -> TraceBatch:
        return batch


class InMemoryVisits(NameKeys):
    """A HopReader over a list: the reference adapter for tests and small in-process traces."""

    def __init__(self, visits: Sequence[Visit]) -> None:
        self.visits = list(visits)

    def source_visits(self, frontier: Frontier) -> tuple[Table, int]:
        columns = (frontier.persons, frontier.start_los, frontier.start_his, frontier.end_los)
        bounds = {p: (lo, hi, end_lo) for p, lo, hi, end_lo in zip(*columns, strict=True)}
        mine = [v for v in self.visits if v.person in bounds and _within(v, *bounds[v.person])]
        return visit_table(mine), max((v.end - v.start for v in self.visits), default=0)

    def cell_visits(self, venues: np.ndarray, buckets: np.ndarray) -> Table:
        cells = set(zip(venues.tolist(), buckets.tolist(), strict=True))
        return visit_table([v for v in self.visits if (v.venue, v.start // BUCKET_US) in cells])


def _within(v: Visit, start_lo: int, start_hi: int, end_lo: int) -> bool:
    return start_lo <= v.start <= start_hi and v.end >= end_lo


def visit_table(visits: Sequence[Visit]) -> Table:
    return {
        "person": _objects([v.person for v in visits]),
        "venue_id": _objects([v.venue for v in visits]),
        "start_us": np.array([v.start for v in visits], dtype=np.int64),
        "end_us": np.array([v.end for v in visits], dtype=np.int64),
        "zone": _objects([v.zone for v in visits]),
    }
