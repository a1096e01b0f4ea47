"""The check-in processor: dedupe -> reorder by event time -> pair into visits -> occupancy windows.

Pure and stateful: no I/O. The embedded runner and the Faust agents feed it batches and write
its output through sinks; its state is a plain dataclass they snapshot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

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
from qrtrace.stream_processors.dedupe import ScanIdDeduper
from qrtrace.stream_processors.occupancy import OccupancyWindows
from qrtrace.stream_processors.pairing import LATE, REPEAT, UNMATCHED_OUT, VisitPairer
from qrtrace.stream_processors.reorder import ReorderBuffer

PRUNE_EVERY_US = 60 * US_PER_MINUTE
PAIRING_DEAD_LETTERS = {
    UNMATCHED_OUT: "a check-out with no open visit for this person at this venue",
    LATE: "arrived after later events of the same person and venue were paired (beyond the allowed lateness)",
}


@dataclass(frozen=True)
class ProcessorConfig:
    dwell_us_by_venue: Mapping[str, int]
    capacity_by_venue: Mapping[str, int]
    allowed_lateness_us: int = 30 * US_PER_MINUTE
    dedupe_window_us: int = 2 * US_PER_DAY
    occupancy_window_us: int = 15 * US_PER_MINUTE


@dataclass(frozen=True)
class ProcessorOutput:
    checkins: CheckinBatch  # paired check-ins, in event-time order
    outcome: np.ndarray  # per check-in: opened / closed / repeat / unmatched_checkout / late
    visits: VisitBatch
    occupancy: OccupancyBatch
    dead_letters: list[DeadLetter]
    retried: int  # deliveries dropped as retries of a known scan_id


@dataclass
class CheckinProcessor:
    config: ProcessorConfig
    deduper: ScanIdDeduper = field(init=False)
    reorder: ReorderBuffer = field(init=False)
    pairer: VisitPairer = field(init=False)
    occupancy: OccupancyWindows = field(init=False)
    _pruned_at: int = field(init=False, default=-(2**62))

    def __post_init__(self) -> None:
        c = self.config
        self.deduper = ScanIdDeduper(c.dedupe_window_us)
        self.reorder = ReorderBuffer(c.allowed_lateness_us)
        self.pairer = VisitPairer(c.dwell_us_by_venue)
        self.occupancy = OccupancyWindows(c.occupancy_window_us, c.capacity_by_venue)

    def process(self, batch: CheckinBatch) -> ProcessorOutput:
        """Take a batch of validated check-ins; return what became final enough to store."""
        fresh, retried = self.deduper.drop_retries(batch)
        return self._pair(self.reorder.push(fresh), retried)

    def flush(self) -> ProcessorOutput:
        """End of a finite input: pair everything still held for lateness."""
        return self._pair(self.reorder.flush(), 0)

    def _pair(self, ready: CheckinBatch, retried: int) -> ProcessorOutput:
        result = self.pairer.pair(ready)
        occupancy = self.occupancy.apply(result.visits)
        self._forget_old_state()
        return ProcessorOutput(
            checkins=ready,
            outcome=result.outcome,
            visits=result.visits,
            occupancy=occupancy,
            dead_letters=pairing_dead_letters(ready, result.outcome),
            retried=retried,
        )

    def _forget_old_state(self) -> None:
        """Prune state older than the dedupe window; at most once per hour of event time (it scans all state)."""
        watermark = self.reorder.watermark_us
        if watermark < self._pruned_at + PRUNE_EVERY_US:
            return
        self._pruned_at = watermark
        horizon = watermark - self.config.dedupe_window_us
        self.deduper.forget_before(watermark)
        self.pairer.forget_before(horizon)
        self.occupancy.forget_before(horizon)


def pairing_dead_letters(batch: CheckinBatch, outcome: np.ndarray) -> list[DeadLetter]:
    """Dead letters for unmatched check-outs and too-late events (already pseudonymised)."""
    idx = np.flatnonzero((outcome == UNMATCHED_OUT) | (outcome == LATE))
    letters = []
    for i in idx.tolist():
        reason = str(outcome[i])
        payload = {
            "scan_id": batch.scan_id[i],
            "venue_id": batch.venue_id[i],
            "person": batch.person[i],
            "direction": "in" if batch.is_in[i] else "out",
            "event_time_us": int(batch.event_time_us[i]),
            "mode": batch.mode[i],
            "scanner_id": batch.scanner_id[i],
        }
        letters.append(
            DeadLetter(
                f"{reason}:{batch.scan_id[i]}",
                reason,
                PAIRING_DEAD_LETTERS[reason],
                orjson.dumps(payload).decode(),
            )
        )
    return letters


def outcome_counts(outcome: np.ndarray) -> Counter[str]:
    return Counter(outcome.tolist())


__all__ = ["REPEAT", "CheckinProcessor", "ProcessorConfig", "ProcessorOutput", "outcome_counts"]
