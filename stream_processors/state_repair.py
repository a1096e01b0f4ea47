"""Repair processor state written before event times were bounded (issue 10): a check-in from year 9999
moved a venue's clock there, so every key's history was cut and forgotten at once. Pure: the adapters load
the state, call this, and save the venues it reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from qrtrace.stream_processors.batch import CheckinBatch, empty_checkins
from qrtrace.stream_processors.state import NEVER, PartitionState


@dataclass(frozen=True)
class StateRepair:
    clock_before_us: int  # the latest venue clock before
    clock_after_us: int
    scans_forgotten: int  # remembered check-ins with future times
    held_dropped: int  # kept for the report's shape: the processor no longer holds events
    open_visits_dropped: int  # keys forgotten: all their check-ins (and so their visits) were from the future
    venues: frozenset[str]  # venues whose state changed
    held_events: CheckinBatch = field(default_factory=empty_checkins)

    @property
    def changed(self) -> bool:
        return bool(self.venues) or self.clock_before_us != self.clock_after_us


def repair_state(state: PartitionState, latest_us: int, window_us: int, longest_visit_us: int) -> StateRepair:
    """Drop what the state remembers from after `latest_us` (the receiving clock plus its tolerance) and
    move each venue's clock back to the latest event time it still holds. Occupancy windows are numbered
    (`window_us`); a visit open now counts in windows up to its end, at most `longest_visit_us` after the
    limit, so only windows beyond that go."""
    scans = keys_dropped = 0
    touched: set[str] = set()
    before = after = NEVER
    last_arrival = latest_us // window_us
    last_present = (latest_us + longest_visit_us) // window_us
    for venue_id, vs in state.venues.items():
        changed = False
        before = max(before, vs.clock_us)
        for person, h in list(vs.keys.items()):
            kept = [e for e in h.events if e[0] <= latest_us]
            if len(kept) != len(h.events):
                scans += len(h.events) - len(kept)
                h.events, changed = kept, True
            if h.open_start is not None and h.open_start > latest_us:
                h.open_start, changed = None, True  # a visit opened by a future scan: the store drops it too
            if not h.events and h.open_start is None and h.expired_start is None:
                del vs.keys[person]  # only future scans: the visit they opened goes with them
                keys_dropped += 1
        present = {w: n for w, n in vs.present.items() if w <= last_present}
        arrivals = {w: n for w, n in vs.arrivals.items() if w <= last_arrival}
        if len(present) != len(vs.present) or len(arrivals) != len(vs.arrivals):
            vs.present, vs.arrivals, changed = present, arrivals, True
        if vs.clock_us > latest_us:
            times = [e[0] for h in vs.keys.values() for e in h.events]
            vs.clock_us = max(times) if times else NEVER
            vs.horizon_us = min(vs.horizon_us, vs.clock_us)
            vs.pruned_at_us = min(vs.pruned_at_us, vs.clock_us)
            changed = True
        after = max(after, vs.clock_us)
        if changed:
            touched.add(venue_id)
    state.changed |= touched
    return StateRepair(before, after, scans, 0, keys_dropped, frozenset(touched))
