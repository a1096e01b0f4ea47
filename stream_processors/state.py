"""Processor state, kept per venue so it can live in venue-keyed partitions (Faust tables, Kafka keys).

Everything the processors remember about a venue sits in one `VenueState`: the venue's event-time clock,
each (person, venue)'s recent check-ins (`KeyHistory`), and the occupancy windows. Nothing in it depends
on which partition, batch or process handled the venue: the venue's clock is the latest event time among
its own check-ins, so the state after a set of check-ins is the same however they were delivered.
A `PartitionState` is the venues one adapter call works on, and which of them changed.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

NEVER = -(2**62)

# A key's check-in: (event time, scan_id, is_in, zone). Tuples sort in the pairing order: event time, then
# scan_id, so two scans at the same microsecond pair the same way whatever order they arrived in (scan_ids
# are distinct within a key, so the zone never decides the order). zone is "" for a venue without zones.
Scan = tuple[int, str, bool, str]


@dataclass(slots=True)
class KeyHistory:
    """One person at one venue: their check-ins since `cut_us`, and what was open at the cut.

    Check-ins older than the cut were folded into the base (`open_start`/`open_scan`: the visit open at
    the cut, in zone `open_zone`; `expired_start`: the latest visit that ran to its cap) and forgotten;
    their outcomes and visits are final. `revision` is the version of the rows this key last emitted:
    every re-pairing that changes a row emits it with a higher one, so the store keeps the latest."""

    events: list[Scan] = field(default_factory=list)
    cut_us: int = NEVER
    open_start: int | None = None
    open_scan: str = ""
    expired_start: int | None = None
    revision: int = 0
    open_zone: str = ""


@dataclass(slots=True)
class VenueState:
    keys: dict[str, KeyHistory] = field(default_factory=dict)  # person -> recent check-ins
    clock_us: int = NEVER  # the latest accepted event time at this venue
    horizon_us: int = NEVER  # keys idle before this were forgotten: an older check-in reads the store
    present: dict[int, int] = field(default_factory=dict)  # window number -> people present
    arrivals: dict[int, int] = field(default_factory=dict)  # window number -> visits starting
    version: int = 0  # occupancy emission counter: the store keeps the highest
    pruned_at_us: int = NEVER  # the clock when the venue was last pruned

    # Pickled after every batch that touches the venue (the embedded state file, the Faust changelog), so
    # the histories go as plain columns instead of one KeyHistory object per person: slots dataclasses
    # pickle through copyreg, one call per object (~20x slower for a venue with 10,000 people).
    def __getstate__(self) -> dict[str, object]:
        keys = self.keys.values()
        return {
            "clock_us": self.clock_us, "horizon_us": self.horizon_us, "present": self.present,
            "arrivals": self.arrivals, "version": self.version, "pruned_at_us": self.pruned_at_us,
            "key_columns": (list(self.keys), [k.events for k in keys], [k.cut_us for k in keys],
                            [k.open_start for k in keys], [k.open_scan for k in keys],
                            [k.expired_start for k in keys], [k.revision for k in keys],
                            [k.open_zone for k in keys]),
        }  # fmt: skip

    def __setstate__(self, state: dict[str, object]) -> None:
        columns = state.pop("key_columns")
        persons, events, cuts, starts, scans, expired, revisions = columns[:7]  # type: ignore[index]
        zones = columns[7] if len(columns) > 7 else [""] * len(persons)  # type: ignore[arg-type]
        if len(columns) <= 7:  # saved before zones: every check-in then was at the venue as a whole
            events = [[(*e, "") if len(e) == 3 else e for e in evs] for evs in events]
        for name, value in state.items():
            setattr(self, name, value)
        self.keys = {
            p: KeyHistory(e, c, o, s, x, r, z)
            for p, e, c, o, s, x, r, z in zip(persons, events, cuts, starts, scans, expired, revisions, zones,
                                              strict=True)
        }  # fmt: skip


@dataclass
class PartitionState:
    """The venues of one input partition. `venues` may be a cache in front of a Faust table: the
    processor only touches the venues of the current batch."""

    venues: MutableMapping[str, VenueState] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)  # venues modified since the adapter last saved them

    def venue(self, venue_id: str) -> VenueState:
        state = self.venues.get(venue_id)
        if state is None:
            state = self.venues[venue_id] = VenueState()
        self.changed.add(venue_id)
        return state

    def take_changed(self) -> set[str]:
        changed, self.changed = self.changed, set()
        return changed
