"""The trace index: the stored visits as integer-coded, sorted columns, so that a hop is array lookups.

Pure core (numpy, no I/O): `sinks/trace_index_files.py` builds it from the store, follows the store's
visit feed and keeps it in memory-mapped files. docs/design.md ("The trace index") describes it.

- People and venues are dictionary-encoded (`Dictionary`: a sorted base and an appended tail, so codes
  never change while the index lives).
- `Segment`: one UTC day's visits (by start), immutable. Rows are in (venue, start) order, and a table
  of offsets gives each (venue, 6-hour bucket) cell's rows: a hop's candidate read is two offset loads
  per cell. A person-sorted permutation answers a hop's source read with two binary searches per person.
- `Overlay`: the rows the feed brought since the segments were built (new visits, new versions, withdrawn
  visits), with the segment rows they replace (`dead`). A merge folds it into new day segments.
- A `TraceIndex` is an immutable snapshot: `applied` and `merged` return new ones that share the
  unchanged segments, so a reader holds one consistent snapshot for a whole trace.

The index is derived: ClickHouse/chDB stays the system of record, and `IndexHopReader` gives the trace the
same visits as `queries.visit_reader.StoreHopReader` (the latest row of each visit, withdrawn ones left
out, each capped at the longest visit allowed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from qrtrace.queries.trace import BUCKET_US, Frontier, Table, TraceBatch, _ranks

US_PER_DAY = 86_400_000_000
BUCKETS_PER_DAY = US_PER_DAY // BUCKET_US  # a day segment holds whole buckets
MAX_BUCKET = 2**32 - 1  # the store's start_bucket is a UInt32: cells outside it hold nothing there either
FEED_COLUMNS = ("venue_id", "person", "start_us", "end_us", "opened", "version", "withdrawn", "zone")


def as_bytes(values: Iterable[object] | np.ndarray) -> np.ndarray:
    """Names as a fixed-width bytes array (UTF-8): the dictionaries' dtype."""
    arr = values if isinstance(values, np.ndarray) else np.asarray(list(values), dtype=object)
    if arr.dtype.kind == "S":
        return arr
    if not len(arr):
        return np.empty(0, dtype="S1")
    try:
        return arr.astype("S")
    except UnicodeEncodeError:
        return np.char.encode(arr.astype("U"), "utf-8")


def as_text(values: np.ndarray) -> np.ndarray:
    """A bytes array back to an object array of str."""
    try:
        text = values.astype("U")
    except UnicodeDecodeError:
        text = np.char.decode(values, "utf-8")
    return text.astype(object)


@dataclass(frozen=True)
class Dictionary:
    """Names to dense codes: `base` sorted (code = position), then `tail` (codes after the base), which
    the feed appends to, so a code given out never changes. Unknown names get code -1."""

    base: np.ndarray  # bytes, sorted, unique
    tail: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="S1"))
    _tail_index: pd.Index | None = field(default=None, compare=False, repr=False)
    origin: str | None = field(default=None, compare=False)  # the file `base` is mapped from, if any

    def __len__(self) -> int:
        return len(self.base) + len(self.tail)

    def codes(self, names: np.ndarray) -> np.ndarray:
        """Each name's code (int64), -1 when unknown."""
        names = as_bytes(names)
        out = np.full(len(names), -1, dtype=np.int64)
        if len(self.base) and len(names):
            # Searched in the base's own dtype: numpy would otherwise cast the whole base to the names'.
            at = np.searchsorted(self.base, names.astype(self.base.dtype))
            clipped = np.minimum(at, len(self.base) - 1)
            hit = self.base[clipped] == names
            out[hit] = at[hit]
        if len(self.tail) and len(names):
            miss = np.flatnonzero(out < 0)
            found = self._tail().get_indexer(names[miss])
            out[miss[found >= 0]] = len(self.base) + found[found >= 0]
        return out

    def adding(self, names: np.ndarray) -> tuple[Dictionary, np.ndarray]:
        """The dictionary with every unknown name appended to the tail, and every name's code."""
        names = as_bytes(names)
        codes = self.codes(names)
        unknown = codes < 0
        if not unknown.any():
            return self, codes
        new = pd.unique(names[unknown])
        width = max(self.tail.dtype.itemsize, np.asarray(new).dtype.itemsize, 1)
        tail = np.concatenate([self.tail.astype(f"S{width}"), np.asarray(new, f"S{width}")])
        grown = Dictionary(self.base, tail, origin=self.origin)
        return grown, grown.codes(names)

    def names(self, codes: np.ndarray) -> np.ndarray:
        """Codes back to names (object array of str). Each distinct code is decoded once: a batch's
        exposure rows name the same few people and venues many times."""
        codes = np.asarray(codes, dtype=np.int64)
        if len(codes) > 64:
            positions, distinct = pd.factorize(codes)
            return self._decode(np.asarray(distinct, dtype=np.int64))[positions]
        return self._decode(codes)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        if not len(self.tail):
            return as_text(self.base[codes])
        in_base = codes < len(self.base)
        width = max(self.base.dtype.itemsize, self.tail.dtype.itemsize)
        out = np.empty(len(codes), dtype=f"S{width}")
        out[in_base] = self.base[codes[in_base]]
        out[~in_base] = self.tail[codes[~in_base] - len(self.base)]
        return as_text(out)

    def _tail(self) -> pd.Index:
        if self._tail_index is None:
            object.__setattr__(self, "_tail_index", pd.Index(self.tail.astype(object)))
        assert self._tail_index is not None
        return self._tail_index

    @classmethod
    def of(cls, names: np.ndarray) -> Dictionary:
        return cls(np.unique(as_bytes(names)))


@dataclass(frozen=True)
class Segment:
    """One UTC day's visits, in (venue, start) order. Immutable once built; a merge builds a new one."""

    day: int
    person: np.ndarray  # int32 codes
    start: np.ndarray  # int64 UTC microseconds
    end: np.ndarray  # int64
    zone: np.ndarray  # int32 zone codes (the index's zone dictionary; a venue without zones has one, "")
    cells: np.ndarray  # int32 offsets: cell (venue v, bucket b of the day) is rows cells[4v + b] : cells[4v + b + 1]
    by_person: np.ndarray  # int32 person codes, sorted
    by_person_row: np.ndarray  # int32: the row of each by_person entry
    venue_longest: np.ndarray  # int64: the longest visit of each venue code in the segment (0: none)
    longest: int  # the longest visit in the segment (end - start)
    origin: str | None = field(default=None, compare=False)  # the folder its arrays are mapped from, if any

    def __len__(self) -> int:
        return len(self.person)

    @property
    def venues(self) -> int:
        """Venue codes below this have cells here (a venue coded later has no rows in this segment)."""
        return (len(self.cells) - 1) // BUCKETS_PER_DAY

    def row_venues(self, rows: np.ndarray) -> np.ndarray:
        """The venue code of each row (from the cell offsets: no venue column is kept)."""
        # `rows` in the offsets' dtype (numpy would otherwise cast the whole offsets array on every call),
        # searched in sorted order (the searches then share their path through the offsets).
        order = np.argsort(rows)
        out = np.empty(len(rows), dtype=np.int64)
        out[order] = np.searchsorted(self.cells, rows[order].astype(self.cells.dtype), "right") - 1
        return out // BUCKETS_PER_DAY

    def venue_column(self) -> np.ndarray:
        """Every row's venue code (for a merge)."""
        return np.repeat(np.arange(len(self.cells) - 1) // BUCKETS_PER_DAY, np.diff(self.cells)).astype(np.int32)

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.ARRAYS)

    ARRAYS = ("person", "start", "end", "zone", "cells", "by_person", "by_person_row", "venue_longest")  # its files


def build_segment(day: int, venue: np.ndarray, person: np.ndarray, start: np.ndarray, end: np.ndarray,
                  venues: int, zone: np.ndarray | None = None) -> Segment:  # fmt: skip
    """A day segment from coded visits (any order) whose starts fall on `day`; `venues`: codes below it;
    `zone`: each visit's zone code (default: all code 0)."""
    day_start = day * US_PER_DAY
    venue = np.asarray(venue, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    key = venue * US_PER_DAY + (start - day_start)  # (venue, start) in one int64: one sort, not a lexsort
    order = np.argsort(key, kind="stable")
    venue, start = venue[order], start[order]
    person = np.asarray(person, dtype=np.int32)[order]
    end = np.asarray(end, dtype=np.int64)[order]
    zone = np.zeros(len(order), dtype=np.int32) if zone is None else np.asarray(zone, dtype=np.int32)[order]
    cell = venue * BUCKETS_PER_DAY + (start - day_start) // BUCKET_US
    counts = np.bincount(cell, minlength=venues * BUCKETS_PER_DAY)
    cells = np.zeros(venues * BUCKETS_PER_DAY + 1, dtype=np.int32)
    np.cumsum(counts, out=cells[1:])
    by_row = np.argsort(person, kind="stable").astype(np.int32)
    span = end - start
    venue_longest = np.zeros(venues, dtype=np.int64)
    if len(venue):
        firsts = np.flatnonzero(np.r_[True, venue[1:] != venue[:-1]])  # rows are in venue order
        venue_longest[venue[firsts]] = np.maximum.reduceat(span, firsts)
    return Segment(day, person, start, end, zone, cells, person[by_row], by_row, venue_longest,
                   int(span.max(initial=0)))  # fmt: skip


@dataclass(frozen=True)
class Overlay:
    """The feed's rows since the segments were built: the latest row of each visit (venue, person, start,
    opened-by hash), withdrawn ones kept as markers. The live rows are sorted two ways for reads."""

    rows: Table  # FEED_COLUMNS, venue and person coded
    by_person: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # live rows, person order
    person_keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # their persons, sorted
    by_cell: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # live rows, (venue, bucket) order
    cell_keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # their cell keys, sorted

    def __len__(self) -> int:
        return len(self.rows["start_us"])

    @property
    def live(self) -> int:
        """Rows that are visits (not withdrawn markers): what a merge would fold into the segments."""
        return len(self.by_person)

    @classmethod
    def of(cls, rows: Table) -> Overlay:
        live = np.flatnonzero(rows["withdrawn"] == 0)
        persons = rows["person"][live]
        by_person = live[np.argsort(persons, kind="stable")]
        keys = cell_key(rows["venue_id"][live], rows["start_us"][live] // BUCKET_US)
        order = np.argsort(keys, kind="stable")
        return cls(rows, by_person, rows["person"][by_person], live[order], keys[order])

    @classmethod
    def empty(cls) -> Overlay:
        return cls.of(empty_feed())

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (*self.rows.values(), self.by_person, self.person_keys, self.by_cell,
                                      self.cell_keys))  # fmt: skip


def cell_key(venue: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    return np.asarray(venue, dtype=np.int64) << 32 | (np.asarray(bucket, dtype=np.int64) & MAX_BUCKET)


def empty_feed() -> Table:
    types = {"venue_id": np.int64, "person": np.int64, "start_us": np.int64, "end_us": np.int64,
             "opened": np.uint64, "version": np.uint64, "withdrawn": np.uint8, "zone": np.int64}  # fmt: skip
    return {name: np.empty(0, dtype=t) for name, t in types.items()}


@dataclass(frozen=True)
class TraceIndex:
    """One consistent snapshot of the index: dictionaries, day segments, what the feed replaced in them
    (`dead`: sorted row numbers per day) and the overlay."""

    people: Dictionary
    venues: Dictionary
    segments: dict[int, Segment]
    dead: dict[int, np.ndarray] = field(default_factory=dict)
    overlay: Overlay = field(default_factory=Overlay.empty)
    # Per person code, bit (day % 64) set when the person has segment rows that day (`person_days_of`): a
    # source read searches a segment only for the people who were out that day. A code past its end (a
    # person the feed added) counts as out every day; stale bits only cost a search.
    person_days: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    # Zone names to codes; equal codes are equal zones (a visit at a venue without zones has zone "").
    zones: Dictionary = field(default_factory=lambda: Dictionary(np.array([b""], dtype="S1")))

    @classmethod
    def empty(cls) -> TraceIndex:
        return cls(Dictionary(np.empty(0, "S1")), Dictionary(np.empty(0, "S1")), {})

    def __len__(self) -> int:
        """Visits the index holds (live)."""
        dead = sum(len(d) for d in self.dead.values())
        return sum(len(s) for s in self.segments.values()) - dead + len(self.overlay.by_person)

    def nbytes(self) -> int:
        """Bytes of every array (what is resident once every page has been read)."""
        names = sum(d.base.nbytes + d.tail.nbytes for d in (self.people, self.venues, self.zones))
        names += self.person_days.nbytes
        return names + sum(s.nbytes() for s in self.segments.values()) + self.overlay.nbytes()

    def days_of(self, codes: np.ndarray) -> np.ndarray:
        """The person_days bits of these codes (every bit for a code it does not cover)."""
        known = (codes >= 0) & (codes < len(self.person_days))
        out = np.full(len(codes), np.uint64(2**64 - 1), dtype=np.uint64)
        out[known] = self.person_days[codes[known]]
        return out

    def warm(self) -> int:
        """Read one value of every memory page of every array, so that traces never wait for the disk (a
        server does this once as it starts; a CLI process lets the pages it needs come in). Returns bytes."""
        arrays = [self.people.base, self.venues.base, self.zones.base, self.person_days]
        arrays += [getattr(s, name) for s in self.segments.values() for name in Segment.ARRAYS]
        for array in arrays:
            flat = array.reshape(-1).view(np.uint8) if array.dtype.kind == "S" else array.reshape(-1)
            step = max(1, 4096 // max(1, flat.itemsize))
            flat[::step].max(initial=0)
        return sum(a.nbytes for a in arrays)

    def venue_longest(self) -> np.ndarray:
        """The longest live visit of each venue code, over every segment and the overlay (cached)."""
        cached = self.__dict__.get("_venue_longest")
        if cached is not None:
            return cached
        out = np.zeros(len(self.venues), dtype=np.int64)
        for segment in self.segments.values():
            n = len(segment.venue_longest)
            np.maximum(out[:n], segment.venue_longest, out=out[:n])
        o = self.overlay
        if len(o.by_person):
            live = o.by_person
            np.maximum.at(out, o.rows["venue_id"][live], o.rows["end_us"][live] - o.rows["start_us"][live])
        object.__setattr__(self, "_venue_longest", out)
        return out

    def longest(self) -> int:
        spans = [s.longest for s in self.segments.values()]
        o = self.overlay
        if len(o.by_person):
            spans.append(int((o.rows["end_us"][o.by_person] - o.rows["start_us"][o.by_person]).max()))
        return max(spans, default=0)

    # -- the feed -------------------------------------------------------------------------------
    def applied(self, feed: Table) -> tuple[TraceIndex, np.ndarray]:
        """The index with feed rows (FEED_COLUMNS, names as bytes or str) applied: each visit keeps its
        highest version, and segment rows with a feed row's (venue, person, start) are replaced.

        Segments keep no opened-by, so a segment row with the same (venue, person, start) as a feed row
        may be another visit (two scans at one instant, the tie broken differently after a late one).
        Returns the new index and the feed rows that replaced segment rows: the caller applies the
        store's latest rows of those (venue, person, start) once more, which puts every such visit back."""
        if not len(feed["start_us"]):
            return self, np.empty(0, dtype=np.int64)
        people, person = self.people.adding(feed["person"])
        venues, venue = self.venues.adding(feed["venue_id"])
        zones, zone = self.zones.adding(feed["zone"]) if "zone" in feed else self.zones.adding(
            np.full(len(feed["start_us"]), b""))  # fmt: skip
        new = {
            "venue_id": venue,
            "person": person,
            "start_us": np.asarray(feed["start_us"], dtype=np.int64),
            "end_us": np.asarray(feed["end_us"], dtype=np.int64),
            "opened": np.asarray(feed["opened"], dtype=np.uint64),
            "version": np.asarray(feed["version"], dtype=np.uint64),
            "withdrawn": np.asarray(feed["withdrawn"], dtype=np.uint8),
            "zone": zone,
        }
        rows = latest_rows({k: np.concatenate([self.overlay.rows[k], new[k]]) for k in FEED_COLUMNS})
        dead = dict(self.dead)
        replaced: list[np.ndarray] = []
        days = new["start_us"] // US_PER_DAY
        for day in np.unique(days).tolist():
            segment = self.segments.get(day)
            if segment is None:
                continue
            mine = np.flatnonzero(days == day)
            matched, owners = segment_matches(segment, new["venue_id"][mine], new["person"][mine],
                                              new["start_us"][mine])  # fmt: skip
            if not len(matched):
                continue
            replaced.append(mine[np.unique(owners)])
            dead[day] = np.union1d(dead.get(day, np.empty(0, np.int64)), matched)
        found = np.concatenate(replaced) if replaced else np.empty(0, dtype=np.int64)
        return TraceIndex(people, venues, self.segments, dead, Overlay.of(rows), self.person_days, zones), found

    def merged(self, days: Iterable[int] | None = None) -> TraceIndex:
        """The index with the overlay's rows of `days` (default: all) folded into new day segments."""
        o = self.overlay.rows
        row_days = o["start_us"] // US_PER_DAY
        wanted = set(np.unique(row_days).tolist()) if days is None else set(days)
        segments, dead = dict(self.segments), dict(self.dead)
        for day in sorted(wanted):
            mine = np.flatnonzero((row_days == day) & (o["withdrawn"] == 0))
            parts = [(o["venue_id"][mine], o["person"][mine], o["start_us"][mine], o["end_us"][mine], o["zone"][mine])]
            old = segments.pop(day, None)
            if old is not None:
                keep = np.setdiff1d(np.arange(len(old)), dead.pop(day, np.empty(0, np.int64)), assume_unique=True)
                parts.append((old.venue_column()[keep], old.person[keep], old.start[keep], old.end[keep],
                              old.zone[keep]))  # fmt: skip
            venue, person, start, end, zone = (np.concatenate([p[i] for p in parts]) for i in range(5))
            if len(start):
                segments[day] = build_segment(day, venue, person, start, end, len(self.venues), zone)
        # Withdrawn rows stay, as markers: an older row of the same visit applied later (a replayed batch, the
        # feed's margin read again) must not bring the visit back, and no segment row is there to say so.
        stay = ~np.isin(row_days, list(wanted)) | (o["withdrawn"] != 0)
        rest = {k: v[stay] for k, v in o.items()}
        index = TraceIndex(self.people, self.venues, segments, dead, Overlay.of(rest), zones=self.zones)
        return replace(index, person_days=person_days_of(segments, len(self.people)))

    def without_days(self, days: Iterable[int]) -> TraceIndex:
        """Retention: the index without these days' visits (whole segments, like the partitions)."""
        gone = set(days)
        o = self.overlay.rows
        keep = ~np.isin(o["start_us"] // US_PER_DAY, list(gone))
        return TraceIndex(
            self.people,
            self.venues,
            {d: s for d, s in self.segments.items() if d not in gone},
            {d: r for d, r in self.dead.items() if d not in gone},
            Overlay.of({k: v[keep] for k, v in o.items()}),
            self.person_days,  # a superset still: bits of dropped days only cost a search
            self.zones,
        )

    def days(self) -> set[int]:
        return set(self.segments) | set(np.unique(self.overlay.rows["start_us"] // US_PER_DAY).tolist())


def person_days_of(segments: dict[int, Segment], people: int) -> np.ndarray:
    """TraceIndex.person_days from the segments: bit (day % 64) of every person with rows that day."""
    out = np.zeros(people, dtype=np.uint64)
    for day, segment in segments.items():
        codes = np.asarray(segment.by_person)
        if len(codes):
            present = codes[np.r_[True, codes[1:] != codes[:-1]]]  # by_person is sorted: one entry a person
            out[present] |= np.uint64(1 << (day % 64))
    return out


def latest_rows(rows: Table) -> Table:
    """One row per visit key (venue, person, start, opened): the highest version."""
    if not len(rows["start_us"]):
        return rows
    order = np.lexsort((rows["version"], rows["opened"], rows["start_us"], rows["person"], rows["venue_id"]))
    keys = [rows[k][order] for k in ("venue_id", "person", "start_us", "opened")]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = np.logical_or.reduce([k[1:] != k[:-1] for k in keys])
    return {name: column[order][last] for name, column in rows.items()}


def segment_matches(segment: Segment, venue: np.ndarray, person: np.ndarray, start: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Segment rows with the given (venue, person, start), and for each the index of the key it matched."""
    known = np.flatnonzero(venue < segment.venues)
    cell = venue[known] * BUCKETS_PER_DAY + (start[known] - segment.day * US_PER_DAY) // BUCKET_US
    lo, hi = segment.cells[cell], segment.cells[cell + 1]
    counts = (hi - lo).astype(np.int64)
    owner = np.repeat(known, counts)
    rows = np.repeat(lo.astype(np.int64), counts) + _ranks(counts)
    hit = (segment.person[rows] == person[owner]) & (segment.start[rows] == start[owner])
    return rows[hit], owner[hit]


class IndexHopReader:
    """The trace's HopReader over a TraceIndex snapshot: people and venues travel as integer codes through
    the hops (`person_keys`), and a batch is turned back into names only when asked (`TraceBatch.named`).
    Each visit is read as ending no later than start + `max_visit_us`, as StoreHopReader reads it."""

    def __init__(self, index: TraceIndex, max_visit_us: int) -> None:
        self.index = index
        self.max_visit_us = max_visit_us
        # Visits carry their zone only when the index knows more than one (a store without zones has just ""):
        # one zone everywhere is the same zone everywhere, which is what a table without zones means to a rule.
        self.zoned = len(index.zones) > 1

    def person_keys(self, persons: Sequence[str]) -> np.ndarray:
        return self.index.people.codes(as_bytes(np.asarray(list(persons), dtype=object)))

    def named(self, batch: TraceBatch) -> TraceBatch:
        people, venues = self.index.people, self.index.venues
        c, e = batch.contacts, batch.exposures
        contacts = {**c, "person": people.names(c["person"])}
        exposures = {**e, "person": people.names(e["person"]), "venue": venues.names(e["venue"]),
                     "source_person": people.names(e["source_person"])}  # fmt: skip
        return replace(batch, contacts=contacts, exposures=exposures, namer=None)

    def source_visits(self, frontier: Frontier) -> tuple[Table, int]:
        codes = np.asarray(frontier.persons, dtype=np.int64)
        lo, hi = np.asarray(frontier.start_los, np.int64), np.asarray(frontier.start_his, np.int64)
        end_lo = np.asarray(frontier.end_los, np.int64)
        longest = min(self.index.longest(), self.max_visit_us)
        # A visit that starts before end_lo - longest ends before end_lo: no segment before that is read.
        first = int(np.maximum(lo, end_lo - longest).min()) if len(codes) else 0
        last = int(hi.max()) if len(codes) else -1
        parts: list[Table] = []
        # The frontier in code order (binary searches for sorted keys share their path through the array),
        # in the segments' dtype (a searchsorted in another would copy the segment first).
        by_code = np.argsort(codes, kind="stable")
        codes, lo, hi, end_lo = codes[by_code], lo[by_code], hi[by_code], end_lo[by_code]
        keys = codes.astype(np.int32)
        out_days = self.index.days_of(codes)
        anyone = np.bitwise_or.reduce(out_days) if len(codes) else np.uint64(0)
        for day, segment in self.index.segments.items():
            if (day + 1) * US_PER_DAY <= first or day * US_PER_DAY > last:
                continue
            bit = np.uint64(1 << (day % 64))
            if not anyone & bit:
                continue
            mine = np.flatnonzero(out_days & bit)  # only the people who were out that day are searched
            wanted = keys[mine]
            found = np.searchsorted(segment.by_person, np.concatenate([wanted, wanted + 1]))  # both bounds
            a, counts = found[: len(mine)], found[len(mine) :] - found[: len(mine)]
            if not counts.any():
                continue
            owner = np.repeat(mine, counts)
            rows = segment.by_person_row[np.repeat(a, counts) + _ranks(counts)].astype(np.int64)
            start, end = segment.start[rows], segment.end[rows]
            end = np.minimum(end, start + self.max_visit_us)
            keep = (start >= lo[owner]) & (start <= hi[owner]) & (end >= end_lo[owner])
            keep &= self._alive(day, rows)
            rows, owner = rows[keep], owner[keep]
            parts.append({"person": codes[owner], "venue_id": segment.row_venues(rows), "start_us": start[keep],
                          "end_us": end[keep]} | ({"zone": segment.zone[rows]} if self.zoned else {}))  # fmt: skip
        o = self.index.overlay
        if len(o.person_keys):
            a = np.searchsorted(o.person_keys, codes, "left")
            counts = np.searchsorted(o.person_keys, codes, "right") - a
            if counts.any():
                rows = o.by_person[np.repeat(a, counts) + _ranks(counts)]
                parts.append(self._overlay_rows(rows))
        visits = _concat(parts, self.zoned)
        # The look-back of each source: the longest visit at its venue (a market's stays are short, an
        # office's long), never more than the cap the visits are read with.
        per_venue = np.minimum(self.index.venue_longest()[visits["venue_id"]], self.max_visit_us)
        return visits, per_venue

    def cell_visits(self, venues: np.ndarray, buckets: np.ndarray) -> Table:
        venues, buckets = np.asarray(venues, dtype=np.int64), np.asarray(buckets, dtype=np.int64)
        real = (buckets >= 0) & (buckets <= MAX_BUCKET) & (venues >= 0)
        venues, buckets = venues[real], buckets[real]
        days = buckets // BUCKETS_PER_DAY
        parts: list[Table] = []
        order = np.argsort(days, kind="stable")
        days_sorted = days[order]
        bounds = np.flatnonzero(np.diff(days_sorted)) + 1
        for chunk in np.split(order, bounds) if len(order) else []:
            day = int(days[chunk[0]])
            segment = self.index.segments.get(day)
            if segment is None:
                continue
            v = venues[chunk]
            known = v < segment.venues
            v = v[known]
            cell = v * BUCKETS_PER_DAY + buckets[chunk][known] - day * BUCKETS_PER_DAY
            a = segment.cells[cell].astype(np.int64)
            counts = segment.cells[cell + 1] - a
            rows = np.repeat(a, counts) + _ranks(counts)
            keep = self._alive(day, rows)
            rows = rows[keep]
            start = segment.start[rows]
            end = np.minimum(segment.end[rows], start + self.max_visit_us)
            part = {"person": segment.person[rows].astype(np.int64), "venue_id": np.repeat(v, counts)[keep],
                    "start_us": start, "end_us": end}  # fmt: skip
            parts.append(part | ({"zone": segment.zone[rows]} if self.zoned else {}))
        o = self.index.overlay
        if len(o.cell_keys) and len(venues):
            keys = np.unique(cell_key(venues, buckets))
            a = np.searchsorted(o.cell_keys, keys, "left")
            counts = np.searchsorted(o.cell_keys, keys, "right") - a
            if counts.any():
                parts.append(self._overlay_rows(o.by_cell[np.repeat(a, counts) + _ranks(counts)]))
        return _concat(parts, self.zoned)

    def _alive(self, day: int, rows: np.ndarray) -> np.ndarray:
        dead = self.index.dead.get(day)
        if dead is None or not len(dead):
            return np.ones(len(rows), dtype=bool)
        return ~np.isin(rows, dead)

    def _overlay_rows(self, rows: np.ndarray) -> Table:
        r = self.index.overlay.rows
        start = r["start_us"][rows]
        return {"person": r["person"][rows], "venue_id": r["venue_id"][rows], "start_us": start,
                "end_us": np.minimum(r["end_us"][rows], start + self.max_visit_us)} | (
            {"zone": r["zone"][rows]} if self.zoned else {})  # fmt: skip


CODED_VISITS = {"person": np.int64, "venue_id": np.int64, "start_us": np.int64, "end_us": np.int64, "zone": np.int64}


def _concat(parts: list[Table], zoned: bool) -> Table:
    """The parts as one table of CODED_VISITS (without "zone" unless `zoned`)."""
    names = [k for k in CODED_VISITS if zoned or k != "zone"]
    if not parts:
        return {name: np.empty(0, dtype=CODED_VISITS[name]) for name in names}
    if len(parts) == 1:
        return {k: np.asarray(parts[0][k], dtype=np.int64) for k in names}
    return {k: np.concatenate([np.asarray(p[k], dtype=np.int64) for p in parts]) for k in names}


def index_of_visits(venue: np.ndarray, person: np.ndarray, start: np.ndarray, end: np.ndarray,
                    zone: np.ndarray | None = None) -> TraceIndex:  # fmt: skip
    """An index of visits given by name (the latest row of each, none withdrawn): tests and small stores."""
    zone = np.full(len(start), "", dtype=object) if zone is None else np.asarray(zone, dtype=object)
    people, venues = Dictionary.of(person), Dictionary.of(venue)
    zones = Dictionary.of(np.concatenate([np.array([""], dtype=object), zone]))
    person_codes, venue_codes = people.codes(as_bytes(person)), venues.codes(as_bytes(venue))
    zone_codes = zones.codes(as_bytes(zone))
    start, end = np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64)
    days = start // US_PER_DAY
    segments = {}
    for day in np.unique(days).tolist():
        mine = days == day
        segments[day] = build_segment(day, venue_codes[mine], person_codes[mine], start[mine], end[mine], len(venues),
                                      zone_codes[mine])  # fmt: skip
    return TraceIndex(people, venues, segments, person_days=person_days_of(segments, len(people)), zones=zones)
