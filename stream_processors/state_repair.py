"""Repair processor state written before event times were bounded (issue 10): a check-in from year 9999
moved the partition's clock there, so the watermark released everything at once and pruning forgot
every scan id. Pure: the adapters load the state, call this, and save the venues it reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qrtrace.stream_processors.state import NEVER, PartitionState


@dataclass(frozen=True)
class StateRepair:
    clock_before_us: int
    clock_after_us: int
    scans_forgotten: int  # remembered scan ids with future times
    held_dropped: int  # held events from the future (the store never had them)
    open_visits_dropped: int  # pairing keys whose open visit or last event lies in the future
    venues: frozenset[str]  # venues whose state changed

    @property
    def changed(self) -> bool:
        return bool(self.venues) or self.clock_before_us != self.clock_after_us


def repair_state(state: PartitionState, latest_us: int, window_us: int) -> StateRepair:
    """Drop everything the state remembers after `latest_us` (the receiving clock plus its tolerance)
    and move the partition's clock back to the latest event time it still holds. `window_us` is the
    occupancy window length (windows are kept by number)."""
    scans = held = keys = 0
    touched: set[str] = set()
    clock = NEVER
    for venue_id, vs in state.venues.items():
        before = (len(vs.seen), len(vs.held), len(vs.keys), len(vs.present), len(vs.arrivals))
        seen = {k: t for k, t in vs.seen.items() if t <= latest_us}
        scans += len(vs.seen) - len(seen)
        vs.seen = seen
        if len(vs.held):
            keep = np.flatnonzero(vs.held.event_time_us <= latest_us)
            held += len(vs.held) - len(keep)
            vs.held = vs.held.take(keep)
        fine = {p: k for p, k in vs.keys.items() if k.last_time <= latest_us and (k.open_start or 0) <= latest_us}
        keys += len(vs.keys) - len(fine)
        vs.keys = fine
        window_limit = latest_us // window_us
        vs.present = {w: n for w, n in vs.present.items() if w <= window_limit}
        vs.arrivals = {w: n for w, n in vs.arrivals.items() if w <= window_limit}
        if before != (len(vs.seen), len(vs.held), len(vs.keys), len(vs.present), len(vs.arrivals)):
            touched.add(venue_id)
        times = [*vs.seen.values(), *(k.last_time for k in vs.keys.values())]
        if len(vs.held):
            times.append(int(vs.held.event_time_us.max()))
        if times:
            clock = max(clock, max(times))
    before_clock = state.max_event_time_us
    state.max_event_time_us = min(before_clock, clock) if before_clock > latest_us else before_clock
    state.pruned_at_us = min(state.pruned_at_us, state.max_event_time_us)
    state.holding = {v for v in state.holding if len(state.venues[v].held)}
    state.changed |= touched
    return StateRepair(before_clock, state.max_event_time_us, scans, held, keys, frozenset(touched))
