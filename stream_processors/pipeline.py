"""The check-in processor: drop retries -> re-pair the touched (person, venue) keys -> occupancy windows.

Pure and stateful: no I/O (the store's history of old keys comes in through a loader the adapter gives).
The pipeline step (`stream_processors/step.py`) feeds it batches and writes its output through sinks; its
state is a plain dataclass the adapters snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import orjson

from qrtrace.stream_processors.batch import (
    US_PER_DAY,
    US_PER_MINUTE,
    CheckinBatch,
    DeadLetter,
    OccupancyBatch,
    OutcomeBatch,
    VisitBatch,
)
from qrtrace.stream_processors.occupancy import fold_occupancy, forget_windows
from qrtrace.stream_processors.pairing import (
    CHECKOUT_AFTER_CAP,
    NO_CAP,
    UNMATCHED_OUT,
    PairingChanges,
    cut_history,
    is_forgettable,
    repair_key,
)
from qrtrace.stream_processors.state import NEVER, KeyHistory, PartitionState, Scan, VenueState

# Horizons move in whole hours of a venue's clock: the histories are cut at the same instants however the
# check-ins were batched, so which check-outs are final (and dead letters) depends on the set alone.
PRUNE_EVERY_US = 60 * US_PER_MINUTE
PAIRING_DEAD_LETTERS = {
    UNMATCHED_OUT: "a check-out with no open visit for this person at this venue, and no earlier check-in "
    "within the dedupe window",
    CHECKOUT_AFTER_CAP: "a check-out later than the longest visit this venue's category allows; it closes nothing",
}
EVENT_TIME_IN_FUTURE = "event_time_in_future"
Key = tuple[str, str]  # (venue, person)


@dataclass(frozen=True)
class ProcessorConfig:
    dwell_us_by_venue: Mapping[str, int]
    capacity_by_venue: Mapping[str, int]
    dedupe_window_us: int = 2 * US_PER_DAY  # a key's check-ins are re-paired in memory this long
    occupancy_window_us: int = 15 * US_PER_MINUTE
    cap_us_by_venue: Mapping[str, int] | None = None  # longest visit per venue; None: uncapped
    max_future_us: int | None = None  # events further ahead of the caller's clock are refused; None: no check


@dataclass(frozen=True)
class StoredHistory:
    """The stored check-ins of keys whose new check-ins are older than the processor remembers, and the
    highest version their visits have in the store (re-paired rows must go above it)."""

    events: Mapping[Key, list[Scan]]
    revision: Mapping[Key, int]


NO_HISTORY = StoredHistory({}, {})
# (venue, person, since) for each key -> what the store holds for it from `since` on
HistoryLoader = Callable[[list[tuple[str, str, int]]], StoredHistory]


@dataclass(frozen=True)
class ProcessorOutput:
    checkins: CheckinBatch  # first deliveries, as received: the check-in log
    outcome: np.ndarray  # each of those check-ins' outcome on arrival
    outcomes: OutcomeBatch  # every check-in whose current outcome is new or changed
    visits: VisitBatch  # new, changed and withdrawn visits
    occupancy: OccupancyBatch
    dead_letters: list[DeadLetter]
    retried: int  # deliveries dropped as retries of a known scan_id


class CheckinProcessor:
    """Stateless logic over a `PartitionState`; the adapter owns the state and saves what changed."""

    def __init__(self, config: ProcessorConfig, state: PartitionState | None = None) -> None:
        self.config = config
        self.state = state if state is not None else PartitionState()

    def process(
        self, batch: CheckinBatch, now_us: int | None = None, history: HistoryLoader | None = None
    ) -> ProcessorOutput:
        """Pair a batch of validated check-ins into what the store must change. With `now_us` (the caller's
        clock) and a `max_future_us` bound, events from the future are dead letters: the edge refuses them
        already, this keeps a venue's clock safe from any other producer. `history` reads the store for
        check-ins older than the state remembers (without it they pair with what the state has)."""
        batch, refused = self._refuse_future(batch, now_us)
        groups = _by_key(batch)
        reread = self._load_history(groups, history)
        c, changes, retried = self.config, PairingChanges(), 0
        caps = c.cap_us_by_venue or {}
        for (venue, person), scans in groups.items():
            vs = self.state.venue(venue)
            h = vs.keys.get(person)
            if h is None:
                h = vs.keys[person] = KeyHistory(cut_us=vs.horizon_us)
            retried += repair_key(venue, person, h, scans, c.dwell_us_by_venue[venue], caps.get(venue, NO_CAP),
                                  changes, emit_all=(venue, person) in reread)  # fmt: skip
        first = _first_deliveries(batch, changes.arrival_outcome)
        checkins = batch.take(first)
        arrival = [changes.arrival_outcome[k] for k in zip(checkins.venue_id.tolist(), checkins.person.tolist(),
                                                            checkins.scan_id.tolist(), strict=True)]  # fmt: skip
        letters = self._advance_clocks(checkins)
        occupancy = fold_occupancy(changes.spans, self.state.venue, c.occupancy_window_us, c.capacity_by_venue)
        return ProcessorOutput(
            checkins=checkins,
            outcome=np.array(arrival, dtype=object),
            outcomes=_outcome_batch(changes.outcome_rows),
            visits=changes.visits(),
            occupancy=occupancy,
            dead_letters=refused + letters,
            retried=retried,
        )

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

    def _load_history(self, groups: dict[Key, list[Scan]], history: HistoryLoader | None) -> set[Key]:
        """Keys with check-ins from before what the state remembers start again from the store: their
        stored check-ins from a dedupe window and two caps before the oldest new one. Returns those keys:
        they emit every row of their new pairing, not only what changed, because the store may already
        hold this batch's check-ins without its visits (a batch replayed after a crash in mid-write)."""
        wanted: list[tuple[str, str, int, int]] = []
        caps = self.config.cap_us_by_venue or {}
        for (venue, person), scans in groups.items():
            vs = self.state.venues.get(venue)
            if vs is None:
                continue
            h = vs.keys.get(person)
            oldest = min(e[0] for e in scans)
            if oldest < (h.cut_us if h is not None else vs.horizon_us):
                # What is open at `oldest` started at most a cap before; what opened it, a cap before that.
                lookback = self.config.dedupe_window_us + 2 * min(caps.get(venue, US_PER_DAY), US_PER_DAY)
                wanted.append((venue, person, oldest - lookback, oldest))
        if not wanted:
            return set()
        stored = history([(v, p, since) for v, p, since, _ in wanted]) if history is not None else NO_HISTORY
        for venue, person, since, oldest in wanted:
            vs = self.state.venue(venue)
            h = vs.keys.get(person)
            kept = sorted({e for e in stored.events.get((venue, person), []) if e[0] >= since})
            revision = max(h.revision if h is not None else 0, stored.revision.get((venue, person), 0))
            # The history starts with nothing open at `since`, which is right only far enough after it: a
            # check-in before `oldest` reads the store again, from further back.
            vs.keys[person] = KeyHistory(events=kept, cut_us=oldest, revision=revision)
        return {(v, p) for v, p, _, _ in wanted}

    def _advance_clocks(self, checkins: CheckinBatch) -> list[DeadLetter]:
        """Move each venue's clock to its latest accepted check-in, and cut the histories of venues whose
        horizon moved on: check-outs that stayed unpaired past it are dead letters now."""
        if not len(checkins):
            return []
        c = self.config
        caps = c.cap_us_by_venue or {}
        latest: dict[str, int] = {}
        for venue, t in zip(checkins.venue_id.tolist(), checkins.event_time_us.tolist(), strict=True):
            if t > latest.get(venue, NEVER):
                latest[venue] = t
        letters: list[DeadLetter] = []
        for venue, t in latest.items():
            vs = self.state.venue(venue)
            vs.clock_us = max(vs.clock_us, t)
            horizon = (vs.clock_us - c.dedupe_window_us) // PRUNE_EVERY_US * PRUNE_EVERY_US
            if horizon > vs.horizon_us:
                letters += _cut_venue(venue, vs, horizon, c.dwell_us_by_venue[venue], caps.get(venue, NO_CAP),
                                      c.occupancy_window_us)  # fmt: skip
        return letters



def _cut_venue(venue: str, vs: VenueState, horizon: int, dwell: int, cap: int, window_us: int) -> list[DeadLetter]:
    letters = []
    for person in list(vs.keys):
        h = vs.keys[person]
        for (t, scan, is_in, _), outcome in cut_history(h, horizon, dwell, cap):
            letters.append(pairing_letter(venue, person, t, scan, is_in, outcome))
        if is_forgettable(h, horizon, cap):
            del vs.keys[person]
    vs.horizon_us = horizon
    # Visits a late check-in can still change start after the horizon less a cap (or two, for a repeat).
    oldest_window = (horizon - 2 * min(cap, US_PER_DAY)) // window_us
    vs.present = forget_windows(vs.present, oldest_window)
    vs.arrivals = forget_windows(vs.arrivals, oldest_window)
    return letters


def _by_key(batch: CheckinBatch) -> dict[Key, list[Scan]]:
    groups: dict[Key, list[Scan]] = {}
    for venue, person, t, scan, is_in, zone in zip(
        batch.venue_id.tolist(), batch.person.tolist(), batch.event_time_us.tolist(), batch.scan_id.tolist(),
        batch.is_in.tolist(), batch.zone.tolist(), strict=True,
    ):  # fmt: skip
        groups.setdefault((venue, person), []).append((t, scan, is_in, zone))
    return groups


def _first_deliveries(batch: CheckinBatch, fresh: Mapping[tuple[str, str, str], str]) -> np.ndarray:
    """Rows of check-ins new to their key, each scan once (its first delivery in the batch)."""
    seen: set[tuple[str, str, str]] = set()
    rows = []
    keys = zip(batch.venue_id.tolist(), batch.person.tolist(), batch.scan_id.tolist(), strict=True)
    for i, key in enumerate(keys):
        if key in fresh and key not in seen:
            seen.add(key)
            rows.append(i)
    return np.array(rows, dtype=np.int64)


def _outcome_batch(rows: list[tuple]) -> OutcomeBatch:
    if not rows:
        obj = np.empty(0, dtype=object)
        return OutcomeBatch(obj, obj, obj, np.empty(0, np.int64), obj, np.empty(0, np.uint64))
    scan, venue, person, t, outcome, version = zip(*rows, strict=True)
    return OutcomeBatch(
        np.array(scan, dtype=object), np.array(venue, dtype=object), np.array(person, dtype=object),
        np.array(t, dtype=np.int64), np.array(outcome, dtype=object), np.array(version, dtype=np.uint64),
    )  # fmt: skip


def pairing_letter(venue: str, person: str, t: int, scan: str, is_in: bool, reason: str) -> DeadLetter:
    """The dead letter of a check-out that stayed unpaired (its row, with mode and scanner, is in checkins)."""
    payload = {"scan_id": scan, "venue_id": venue, "person": person, "direction": "in" if is_in else "out",
               "event_time_us": t}  # fmt: skip
    return DeadLetter(f"{reason}:{scan}", reason, PAIRING_DEAD_LETTERS[reason], orjson.dumps(payload).decode())


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
    if batch.zone[i]:
        payload["zone"] = batch.zone[i]
    return DeadLetter(f"{reason}:{batch.scan_id[i]}", reason, detail, orjson.dumps(payload).decode())
