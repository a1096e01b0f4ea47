"""Columnar batches that flow between the processors: numpy arrays, one per field, equal lengths."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

US_PER_MINUTE = 60_000_000
US_PER_DAY = 86_400_000_000


def _take(cls, obj, index):  # type: ignore[no-untyped-def]
    return cls(**{f.name: getattr(obj, f.name)[index] for f in fields(cls)})


def _concat(cls, parts):  # type: ignore[no-untyped-def]
    return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class CheckinBatch:
    """Validated, pseudonymised check-ins. `seq` is the delivery order, used to break event-time ties."""

    scan_id: np.ndarray  # object[str]
    venue_id: np.ndarray  # object[str]
    person: np.ndarray  # object[str]: keyed-HMAC pseudonym
    is_in: np.ndarray  # bool
    event_time_us: np.ndarray  # int64, UTC microseconds
    offset_minutes: np.ndarray  # int16, the offset the scanner wrote
    mode: np.ndarray  # object[str]
    scanner_id: np.ndarray  # object[str]
    declaration_sealed: np.ndarray  # object[str], "" when absent
    seq: np.ndarray  # int64
    zone: np.ndarray  # object[str]: the venue's zone the check-in names, "" when absent

    def __len__(self) -> int:
        return len(self.seq)

    def take(self, index: np.ndarray) -> CheckinBatch:
        return _take(CheckinBatch, self, index)

    @staticmethod
    def concat(parts: list[CheckinBatch]) -> CheckinBatch:
        return _concat(CheckinBatch, parts) if parts else empty_checkins()


def empty_checkins() -> CheckinBatch:
    obj = np.empty(0, dtype=object)
    return CheckinBatch(
        obj,
        obj,
        obj,
        np.empty(0, bool),
        np.empty(0, np.int64),
        np.empty(0, np.int16),
        obj,
        obj,
        obj,
        np.empty(0, np.int64),
        obj,
    )


# Visit close reasons, stored as small ints.
CLOSED_BY_DWELL = 0  # no check-out (yet): ends at start + dwell; provisional while the visit is open
CLOSED_BY_CHECKOUT = 1
CLOSED_BY_NEXT_CHECKIN = 2


@dataclass(frozen=True, slots=True)
class VisitBatch:
    """Visit rows keyed by (venue_id, person, start_us, opened_by): `opened_by` is the scan that opened the
    visit, so two visits starting at the same instant stay distinct. `version` grows with every change of
    a visit (the store keeps the highest); `withdrawn` = 1 says the visit no longer exists (a late check-in
    made its opening scan a repeat) and every reader drops it."""

    venue_id: np.ndarray
    person: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    closed_by: np.ndarray  # int8
    version: np.ndarray  # uint64
    withdrawn: np.ndarray  # uint8
    opened_by: np.ndarray  # object[str]: scan_id of the opening check-in
    zone: np.ndarray  # object[str]: the zone of the check-in that opened the visit, "" when none

    def __len__(self) -> int:
        return len(self.start_us)

    def take(self, index: np.ndarray) -> VisitBatch:
        return _take(VisitBatch, self, index)


@dataclass(frozen=True, slots=True)
class OutcomeBatch:
    """The current outcome of check-ins (opened, closed, repeat, unmatched_checkout, checkout_after_cap),
    keyed by scan; re-emitted with a higher `version` whenever a late check-in changes it."""

    scan_id: np.ndarray
    venue_id: np.ndarray
    person: np.ndarray
    event_time_us: np.ndarray  # int64
    outcome: np.ndarray  # object[str]
    version: np.ndarray  # uint64

    def __len__(self) -> int:
        return len(self.scan_id)


@dataclass(frozen=True, slots=True)
class OccupancyBatch:
    """Per-venue tumbling windows: people present, arrivals, and whether capacity was exceeded."""

    venue_id: np.ndarray
    window_start_us: np.ndarray
    arrivals: np.ndarray
    present: np.ndarray
    capacity: np.ndarray
    over_capacity: np.ndarray
    version: np.ndarray

    def __len__(self) -> int:
        return len(self.window_start_us)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be used, with why. `payload` is already free of raw identifiers."""

    dl_id: str
    reason: str
    detail: str
    payload_redacted: str
    payload_sealed: str = ""
