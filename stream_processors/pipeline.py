"""The check-in processor: dedupe -> reorder by event time -> pair into visits -> occupancy windows.

Pure and stateful: no I/O. The embedded runner and the Faust agents feed it batches and write
its output through sinks; its state is a plain dataclass they snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import orjson

from qrtrace.stream_processors.batch import (
    US_PER_DAY,
    US_PER_MINUTE,
    CheckinBatch,
    DeadLetter,
    OccupancyBatch,
    VisitBatch,
)
from qrtrace.stream_processors.dedupe import drop_retries, forget_scans
from qrtrace.stream_processors.occupancy import fold_occupancy, forget_windows
from qrtrace.stream_processors.pairing import CHECKOUT_AFTER_CAP, LATE, UNMATCHED_OUT, forget_idle_keys, pair_visits
from qrtrace.stream_processors.reorder import in_pairing_order, release
from qrtrace.stream_processors.state import PartitionState

PRUNE_EVERY_US = 60 * US_PER_MINUTE
PAIRING_DEAD_LETTERS = {
    UNMATCHED_OUT: "a check-out with no open visit for this person at this venue",
    LATE: "arrived after later events of the same person and venue were paired (beyond the allowed lateness)",
    CHECKOUT_AFTER_CAP: "a check-out later than the longest visit this venue's category allows; it closes nothing",
}
EVENT_TIME_IN_FUTURE = "event_time_in_future"


@dataclass(frozen=True)
class ProcessorConfig:
    dwell_us_by_venue: Mapping[str, int]
    capacity_by_venue: Mapping[str, int]
    allowed_lateness_us: int = 30 * US_PER_MINUTE
    dedupe_window_us: int = 2 * US_PER_DAY
    occupancy_window_us: int = 15 * US_PER_MINUTE
    cap_us_by_venue: Mapping[str, int] | None = None  # longest visit per venue; None: uncapped
    max_future_us: int | None = None  # events further ahead of the caller's clock are refused; None: no check


@dataclass(frozen=True)
class ProcessorOutput:
    checkins: CheckinBatch  # paired check-ins, by venue then event time
    outcome: np.ndarray  # per check-in: opened / closed / repeat / unmatched_checkout / late
    visits: VisitBatch
    occupancy: OccupancyBatch
    dead_letters: list[DeadLetter]
    retried: int  # deliveries dropped as retries of a known scan_id


class CheckinProcessor:
    """Stateless logic over a `PartitionState`; the adapter owns the state and saves what changed."""

    def __init__(self, config: ProcessorConfig, state: PartitionState | None = None) -> None:
        self.config = config
        self.state = state if state is not None else PartitionState()

    def process(self, batch: CheckinBatch, now_us: int | None = None) -> ProcessorOutput:
        """Take a batch of validated check-ins; return what is now final enough to store. With `now_us`
        (the caller's clock) and a `max_future_us` bound, events from the future are dead letters: the
        edge refuses them already, this keeps the partition's clock safe from any other producer."""
        batch, refused = self._refuse_future(batch, now_us)
        retried = self._hold(batch)
        watermark = self.state.max_event_time_us - self.config.allowed_lateness_us
        out = self._pair(self._release(watermark), retried)
        if refused:
            out = replace(out, dead_letters=refused + out.dead_letters)
        return out

    def _refuse_future(self, batch: CheckinBatch, now_us: int | None) -> tuple[CheckinBatch, list[DeadLetter]]:
        limit = self.config.max_future_us
        if now_us is None or limit is None or not len(batch):
            return batch, []
        ahead = batch.event_time_us > now_us + limit
        if not ahead.any():
            return batch, []
        letters = event_dead_letters(batch.take(np.flatnonzero(ahead)), EVENT_TIME_IN_FUTURE,
                                     "an event time ahead of the processor's clock")  # fmt: skip
        return batch.take(np.flatnonzero(~ahead)), letters

    def flush(self) -> ProcessorOutput:
        """End of a finite input, or an idle partition: pair everything still held."""
        return self._pair(self._release(2**62), 0)

    def _hold(self, batch: CheckinBatch) -> int:
        """Dedupe each venue's events against its recent scan ids and add them to its held events."""
        state = self.state
        if not len(batch):
            return 0
        order = np.argsort(batch.venue_id.astype(str), kind="stable")
        venues = batch.venue_id[order]
        bounds = np.flatnonzero(np.r_[True, venues[1:] != venues[:-1], True])
        scan_ids, times = batch.scan_id[order].tolist(), batch.event_time_us[order].tolist()
        retried = 0
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            venue = str(venues[lo])
            vs = state.venue(venue)
            keep = drop_retries(vs.seen, scan_ids[lo:hi], times[lo:hi])
            retried += int(hi - lo - keep.sum())
            part = batch.take(order[lo:hi][keep])
            if len(part):
                # The clock moves with accepted first deliveries only (a retry repeats a known time).
                state.max_event_time_us = max(state.max_event_time_us, int(part.event_time_us.max()))
                vs.held = CheckinBatch.concat([vs.held, part]) if len(vs.held) else part
                state.holding.add(venue)
        return retried

    def _release(self, watermark_us: int) -> CheckinBatch:
        state = self.state
        parts = []
        for venue in sorted(state.holding):
            vs = state.venue(venue)
            ready, vs.held = release(vs.held, watermark_us)
            if len(ready):
                parts.append(ready)
            if not len(vs.held):
                state.holding.discard(venue)
        return in_pairing_order(CheckinBatch.concat(parts))

    def _pair(self, ready: CheckinBatch, retried: int) -> ProcessorOutput:
        c = self.config
        result = pair_visits(ready, self.state.venue, c.dwell_us_by_venue, c.cap_us_by_venue)
        occupancy = fold_occupancy(result.visits, self.state.venue, c.occupancy_window_us, c.capacity_by_venue)
        self._forget_old_state(set(ready.venue_id.tolist()))
        return ProcessorOutput(
            checkins=ready,
            outcome=result.outcome,
            visits=result.visits,
            occupancy=occupancy,
            dead_letters=pairing_dead_letters(ready, result.outcome),
            retried=retried,
        )

    def _forget_old_state(self, venues: set[str]) -> None:
        """Prune the dedupe window, idle keys and old windows; at most once per hour of event time per venue."""
        state = self.state
        watermark = state.max_event_time_us - self.config.allowed_lateness_us
        if watermark < state.pruned_at_us + PRUNE_EVERY_US:
            return
        state.pruned_at_us = watermark
        horizon = watermark - self.config.dedupe_window_us
        oldest_window = horizon // self.config.occupancy_window_us
        for venue in venues:
            vs = state.venue(venue)
            vs.seen = forget_scans(vs.seen, horizon)
            vs.keys = forget_idle_keys(vs.keys, horizon)
            vs.present = forget_windows(vs.present, oldest_window)
            vs.arrivals = forget_windows(vs.arrivals, oldest_window)


def pairing_dead_letters(batch: CheckinBatch, outcome: np.ndarray) -> list[DeadLetter]:
    """Dead letters for unmatched and over-cap check-outs and too-late events (already pseudonymised)."""
    idx = np.flatnonzero(np.isin(outcome, list(PAIRING_DEAD_LETTERS)))
    letters = []
    for i in idx.tolist():
        reason = str(outcome[i])
        letters.append(_event_letter(batch, i, reason, PAIRING_DEAD_LETTERS[reason]))
    return letters


def event_dead_letters(batch: CheckinBatch, reason: str, detail: str) -> list[DeadLetter]:
    """One dead letter per check-in of `batch`, all for the same reason."""
    return [_event_letter(batch, i, reason, detail) for i in range(len(batch))]


def _event_letter(batch: CheckinBatch, i: int, reason: str, detail: str) -> DeadLetter:
    payload = {
        "scan_id": batch.scan_id[i],
        "venue_id": batch.venue_id[i],
        "person": batch.person[i],
        "direction": "in" if batch.is_in[i] else "out",
        "event_time_us": int(batch.event_time_us[i]),
        "mode": batch.mode[i],
        "scanner_id": batch.scanner_id[i],
    }
    return DeadLetter(f"{reason}:{batch.scan_id[i]}", reason, detail, orjson.dumps(payload).decode())
