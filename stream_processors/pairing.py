"""Pair check-ins and check-outs into visits, exactly by DESIGN.md's visit rule.

Per (person, venue), in event-time order:
- `in` with no open visit opens one;
- `in` while open and no later than start + dwell is a repeat scan (ignored);
- `in` later than start + dwell closes the open visit at start + dwell and opens a new one;
- `out` closes the open visit at its time; `out` with nothing open is a dead letter;
- a visit never closed ends at start + dwell (emitted provisionally while it is open).
Pairing is local to (person, venue), so it runs on venue-keyed partitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from qrtrace.stream_processors.batch import (
    CLOSED_BY_CHECKOUT,
    CLOSED_BY_DWELL,
    CLOSED_BY_NEXT_CHECKIN,
    VERSION_FINAL,
    VERSION_PROVISIONAL,
    CheckinBatch,
    VisitBatch,
)

# Outcome of each check-in, stored with it.
OPENED, CLOSED, REPEAT, UNMATCHED_OUT, LATE = "opened", "closed", "repeat", "unmatched_checkout", "late"


@dataclass(slots=True)
class KeyState:
    """One (person, venue): the open visit (start, or None) and the latest event time paired so far."""

    open_start: int | None
    last_time: int
    open_scan: str = ""  # the scan that opened the visit: its identity, with (venue, person, start)
    emitted: bool = False  # the open visit was already emitted provisionally


@dataclass(frozen=True, slots=True)
class PairingResult:
    visits: VisitBatch
    outcome: np.ndarray  # object[str], one per input event


@dataclass
class VisitPairer:
    """Stateful pairing over batches already in event-time order (see ReorderBuffer)."""

    dwell_us_by_venue: Mapping[str, int]
    keys: dict[tuple[str, str], KeyState] = field(default_factory=dict)

    def pair(self, batch: CheckinBatch) -> PairingResult:
        keys = self.keys
        dwell_of = self.dwell_us_by_venue
        # venue, person, start, end, closed_by, version, previous end, opened_by
        out_rows: list[tuple[str, str, int, int, int, int, int, str]] = []
        outcome: list[str] = []
        touched: dict[tuple[str, str], KeyState] = {}
        for venue, person, is_in, t, scan in zip(
            batch.venue_id.tolist(),
            batch.person.tolist(),
            batch.is_in.tolist(),
            batch.event_time_us.tolist(),
            batch.scan_id.tolist(),
            strict=True,
        ):
            key = (person, venue)
            st = keys.get(key)
            if st is None:
                st = keys[key] = KeyState(None, t)
            elif t < st.last_time:
                outcome.append(LATE)
                continue
            st.last_time = t
            start = st.open_start
            if is_in:
                if start is None:
                    st.open_start, st.open_scan, st.emitted = t, scan, False
                    touched[key] = st
                    outcome.append(OPENED)
                    continue
                dwell = dwell_of[venue]
                if t <= start + dwell:
                    outcome.append(REPEAT)
                    continue
                prev = start + dwell if st.emitted else -1
                out_rows.append(
                    (
                        venue,
                        person,
                        start,
                        start + dwell,
                        CLOSED_BY_NEXT_CHECKIN,
                        VERSION_FINAL,
                        prev,
                        st.open_scan,
                    )
                )
                st.open_start, st.open_scan, st.emitted = t, scan, False
                touched[key] = st
                outcome.append(OPENED)
            elif start is None:
                outcome.append(UNMATCHED_OUT)
            else:
                prev = start + dwell_of[venue] if st.emitted else -1
                out_rows.append((venue, person, start, t, CLOSED_BY_CHECKOUT, VERSION_FINAL, prev, st.open_scan))
                st.open_start = None
                outcome.append(CLOSED)
        # Visits still open after this batch are visible to traces now, provisionally ending at start + dwell.
        for (person, venue), st in touched.items():
            if st.open_start is not None and not st.emitted:
                start = st.open_start
                out_rows.append(
                    (
                        venue,
                        person,
                        start,
                        start + dwell_of[venue],
                        CLOSED_BY_DWELL,
                        VERSION_PROVISIONAL,
                        -1,
                        st.open_scan,
                    )
                )
                st.emitted = True
        return PairingResult(_visit_batch(out_rows), np.array(outcome, dtype=object))

    def forget_before(self, horizon_us: int) -> None:
        """Drop keys idle since before `horizon_us`; their open visits keep their provisional end."""
        self.keys = {k: st for k, st in self.keys.items() if st.last_time >= horizon_us}


def _visit_batch(rows: list[tuple[str, str, int, int, int, int, int, str]]) -> VisitBatch:
    if not rows:
        obj = np.empty(0, dtype=object)
        i64 = np.empty(0, np.int64)
        return VisitBatch(obj, obj, i64, i64, np.empty(0, np.int8), np.empty(0, np.uint8), i64, obj)
    venue, person, start, end, by, ver, prev, opened_by = zip(*rows, strict=True)
    return VisitBatch(
        np.array(venue, dtype=object),
        np.array(person, dtype=object),
        np.array(start, dtype=np.int64),
        np.array(end, dtype=np.int64),
        np.array(by, dtype=np.int8),
        np.array(ver, dtype=np.uint8),
        np.array(prev, dtype=np.int64),
        np.array(opened_by, dtype=object),
    )
