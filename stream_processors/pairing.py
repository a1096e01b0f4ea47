"""Pair check-ins and check-outs into visits, exactly by DESIGN.md's visit rule.

Per (person, venue), in event-time order:
- `in` with no open visit opens one;
- `in` while open and no later than start + dwell is a repeat scan (ignored);
- `in` later than start + dwell closes the open visit at start + dwell and opens a new one;
- `out` closes the open visit at its time; `out` with nothing open is a dead letter;
- `out` later than start + the venue's visit cap closes nothing and is a dead letter (the visit keeps
  its dwell end): without a cap one forged or mistyped check-out makes a visit of years;
- a visit never closed ends at start + dwell (emitted provisionally while it is open).
Pairing is local to (person, venue), so it runs on venue-keyed partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
from qrtrace.stream_processors.state import KeyState, VenueState

# Outcome of each check-in, stored with it.
OPENED, CLOSED, REPEAT, UNMATCHED_OUT, LATE = "opened", "closed", "repeat", "unmatched_checkout", "late"
CHECKOUT_AFTER_CAP = "checkout_after_cap"

NO_CAP = 2**62

# venue, person, start, end, closed_by, version, previous end (-1: new row), opened_by
VisitRow = tuple[str, str, int, int, int, int, int, str]


@dataclass(frozen=True, slots=True)
class PairingResult:
    visits: VisitBatch
    outcome: np.ndarray  # object[str], one per input event


def pair_visits(
    batch: CheckinBatch,
    venue_state: Callable[[str], VenueState],
    dwell_us_by_venue: Mapping[str, int],
    cap_us_by_venue: Mapping[str, int] | None = None,
) -> PairingResult:
    """Pair a batch in pairing order (venue, time, delivery) against each venue's open visits. A venue
    without a cap in `cap_us_by_venue` has none (check-outs close whatever is open)."""
    caps = cap_us_by_venue or {}
    rows: list[VisitRow] = []
    outcome: list[str] = []
    touched: list[tuple[str, str, KeyState]] = []
    current_venue, keys, dwell, cap = None, {}, 0, NO_CAP
    for venue, person, is_in, t, scan in zip(
        batch.venue_id.tolist(), batch.person.tolist(), batch.is_in.tolist(), batch.event_time_us.tolist(),
        batch.scan_id.tolist(), strict=True,
    ):  # fmt: skip
        if venue != current_venue:
            current_venue, keys, dwell = venue, venue_state(venue).keys, dwell_us_by_venue[venue]
            cap = caps.get(venue, NO_CAP)
        st = keys.get(person)
        if st is None:
            st = keys[person] = KeyState(None, t)
        elif t < st.last_time:
            outcome.append(LATE)
            continue
        start = st.open_start
        if not is_in and start is not None and t > start + cap:
            outcome.append(CHECKOUT_AFTER_CAP)  # refused: it closes nothing and moves no clock
            continue
        st.last_time = t
        if is_in:
            if start is None:
                st.open_start, st.open_scan, st.emitted = t, scan, False
                touched.append((venue, person, st))
                outcome.append(OPENED)
            elif t <= start + dwell:
                outcome.append(REPEAT)
            else:
                prev = start + dwell if st.emitted else -1
                rows.append((venue, person, start, start + dwell, CLOSED_BY_NEXT_CHECKIN, VERSION_FINAL, prev,
                             st.open_scan))  # fmt: skip
                st.open_start, st.open_scan, st.emitted = t, scan, False
                touched.append((venue, person, st))
                outcome.append(OPENED)
        elif start is None:
            outcome.append(UNMATCHED_OUT)
        else:
            prev = start + dwell if st.emitted else -1
            rows.append((venue, person, start, t, CLOSED_BY_CHECKOUT, VERSION_FINAL, prev, st.open_scan))
            st.open_start = None
            outcome.append(CLOSED)
    # Visits still open after this batch are visible to traces now, provisionally ending at start + dwell.
    for venue, person, st in touched:
        if st.open_start is not None and not st.emitted:
            rows.append((venue, person, st.open_start, st.open_start + dwell_us_by_venue[venue], CLOSED_BY_DWELL,
                         VERSION_PROVISIONAL, -1, st.open_scan))  # fmt: skip
            st.emitted = True
    return PairingResult(_visit_batch(rows), np.array(outcome, dtype=object))


def forget_idle_keys(keys: dict[str, KeyState], horizon_us: int) -> dict[str, KeyState]:
    """Keys idle since before the horizon are dropped; their open visits keep their provisional end."""
    return {p: st for p, st in keys.items() if st.last_time >= horizon_us}


def _visit_batch(rows: list[VisitRow]) -> VisitBatch:
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
