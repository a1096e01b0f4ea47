"""Repair processor state written before event times were bounded (issue 10): a check-in from year 9999
moved the partition's clock there, so the watermark released everything at once and pruning forgot
every scan id. Pure: the adapters load the state, call this, and save the venues it reports."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qrtrace.stream_processors.batch import CheckinBatch, empty_checkins
from qrtrace.stream_processors.state import NEVER, PartitionState


@dataclass(frozen=True)
class StateRepair:
    clock_before_us: int
    clock_after_us: int
    scans_forgotten: int  # remembered scan ids with future times
    held_dropped: int  # held events from the future (the store never had them)
    open_visits_dropped: int  # pairing keys whose open visit started in the future, or with nothing open
    venues: frozenset[str]  # venues whose state changed
    held_events: CheckinBatch = field(default_factory=empty_checkins)  # the dropped held events: dead letters

    @property
    def changed(self) -> bool:
        return bool(self.venues) or self.clock_before_us != self.clock_after_us


def repair_state(state: PartitionState, latest_us: int, window_us: int, longest_visit_us: int) -> StateRepair:
    """Drop what the state remembers from after `latest_us` (the receiving clock plus its tolerance) and
    move the partition's clock back to the latest event time it still holds. An open visit that started
    in time is kept (its last event time moved back to the limit): only its future scans are dropped.
    Occupancy windows are numbered (`window_us`); a visit open now counts in windows up to its
    provisional end, at most `longest_visit_us` after the limit, so only windows beyond that go."""
    scans = keys_dropped = 0
    touched: set[str] = set()
    held_parts: list[CheckinBatch] = []
    clock = NEVER
    last_arrival = latest_us // window_us
    last_present = (latest_us + longest_visit_us) // window_us
    for venue_id, vs in state.venues.items():
        changed = False
        seen = {k: t for k, t in vs.seen.items() if t <= latest_us}
        if len(seen) != len(vs.seen):
            scans += len(vs.seen) - len(seen)
            vs.seen, changed = seen, True
        if len(vs.held):
            future = vs.held.event_time_us > latest_us
            if future.any():
                held_parts.append(vs.held.take(np.flatnonzero(future)))
                vs.held, changed = vs.held.take(np.flatnonzero(~future)), True
        for person, key in list(vs.keys.items()):
            if key.open_start is not None and key.open_start > latest_us:
                del vs.keys[person]  # a visit opened by a future scan: the store drops it too
            elif key.open_start is None and key.last_time > latest_us:
                del vs.keys[person]  # nothing open, and its last event was from the future
            elif key.last_time > latest_us:
                key.last_time = key.open_start  # an open visit of ours with a future repeat scan: keep it
                changed = True
                continue
            else:
                continue
            keys_dropped += 1
            changed = True
        present = {w: n for w, n in vs.present.items() if w <= last_present}
        arrivals = {w: n for w, n in vs.arrivals.items() if w <= last_arrival}
        if len(present) != len(vs.present) or len(arrivals) != len(vs.arrivals):
            vs.present, vs.arrivals, changed = present, arrivals, True
        if changed:
            touched.add(venue_id)
        times = [*vs.seen.values(), *(k.last_time for k in vs.keys.values())]
        if len(vs.held):
            times.append(int(vs.held.event_time_us.max()))
        if times:
            clock = max(clock, max(times))
    before_clock = state.max_event_time_us
    if before_clock > latest_us:
        state.max_event_time_us = min(before_clock, max(clock, NEVER))
    state.pruned_at_us = min(state.pruned_at_us, state.max_event_time_us)
    state.holding = {v for v in state.holding if len(state.venues[v].held)}
    state.changed |= touched
    held = CheckinBatch.concat(held_parts)
    return StateRepair(before_clock, state.max_event_time_us, scans, len(held), keys_dropped, frozenset(touched), held)
