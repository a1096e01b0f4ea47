"""Pair check-ins into visits by the visit rule, over each (person, venue)'s check-ins in event-time order,
whatever order they arrived in.

The rule, per (person, venue), over check-ins sorted by (event time, scan_id):
- `in` with no open visit opens one;
- `in` while open and no later than start + dwell is a repeat scan (ignored);
- `in` later than start + dwell closes the open visit at start + dwell and opens a new one;
- `out` closes the open visit at its time; `out` with nothing open is an unmatched check-out;
- a visit runs at most to start + the venue's cap: a check-in later than that finds it ended at start +
  dwell, and an `out` then (up to two caps after the start) is a check-out after the cap, which closes
  nothing: without a cap one forged or mistyped check-out makes a visit of years;
- a visit never closed ends at start + dwell.

Zones (a venue's sections, each with its own QR; "" is the venue as a whole): pairing stays local to the
(person, venue) key, and a visit keeps the zone of the check-in that opened it.
- `in` at another zone than the open visit's closes that visit at the scan's time (at start + dwell if that
  came first) and opens a new one in the new zone: moving between a market's sections is a new visit there;
- `in` at the open visit's zone follows the rule above (a repeat within dwell);
- `out` closes the open visit whatever zone it names.
With no zones anywhere every zone is "" and the rule is exactly the one above.

Order independence: a key keeps its recent check-ins (`KeyHistory`), and each batch re-pairs only the keys
it touches, from the same base, before and after adding the new check-ins. The difference is what the
store must change: new or changed visits (a higher `version`), visits that no longer exist (withdrawn
rows), and check-ins whose outcome changed. Folding the whole history twice per touched key costs a few
events per key, and makes the result a function of the set of check-ins: the batch boundaries, the
delivery order and the number of partitions cannot change a visit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qrtrace.stream_processors.batch import (
    CLOSED_BY_CHECKOUT,
    CLOSED_BY_DWELL,
    CLOSED_BY_NEXT_CHECKIN,
    VisitBatch,
)
from qrtrace.stream_processors.state import KeyHistory, Scan

# Outcome of each check-in, stored with it.
OPENED, CLOSED, REPEAT, UNMATCHED_OUT = "opened", "closed", "repeat", "unmatched_checkout"
CHECKOUT_AFTER_CAP = "checkout_after_cap"
UNPAIRED = frozenset({UNMATCHED_OUT, CHECKOUT_AFTER_CAP})  # dead letters once final

NO_CAP = 2**62

# A visit in a fold: (start, opened_by) -> (end, closed_by, zone)
Visits = dict[tuple[int, str], tuple[int, int, str]]


@dataclass(slots=True)
class Fold:
    """The visit rule run over a key's history: its visits, each check-in's outcome, and what is open."""

    visits: Visits
    outcomes: list[str]  # aligned with the history's events
    open_start: int | None
    open_scan: str
    expired_start: int | None
    open_zone: str = ""


def fold(h: KeyHistory, dwell: int, cap: int, events: list[Scan] | None = None) -> Fold:
    """The rule over `events` (default: the whole history), starting from the history's base."""
    open_start, open_scan, open_zone, expired = h.open_start, h.open_scan, h.open_zone, h.expired_start
    visits: Visits = {}
    outcomes: list[str] = []
    for t, scan, is_in, zone in h.events if events is None else events:
        if open_start is not None and t > open_start + cap:  # ran to its cap: it ended at its dwell
            visits[(open_start, open_scan)] = (open_start + dwell, CLOSED_BY_DWELL, open_zone)
            expired, open_start = open_start, None
        if is_in:
            if open_start is None:
                open_start, open_scan, open_zone, expired = t, scan, zone, None
                outcomes.append(OPENED)
            elif zone == open_zone and t <= open_start + dwell:
                outcomes.append(REPEAT)
            else:  # later than dwell, or another zone of the venue: the open visit ends, a new one opens
                end = open_start + dwell if zone == open_zone else min(t, open_start + dwell)
                visits[(open_start, open_scan)] = (end, CLOSED_BY_NEXT_CHECKIN, open_zone)
                open_start, open_scan, open_zone = t, scan, zone
                outcomes.append(OPENED)
        elif open_start is not None:
            visits[(open_start, open_scan)] = (t, CLOSED_BY_CHECKOUT, open_zone)
            open_start = None
            outcomes.append(CLOSED)
        elif expired is not None and t <= expired + 2 * cap:
            outcomes.append(CHECKOUT_AFTER_CAP)
        else:
            outcomes.append(UNMATCHED_OUT)
    if open_start is not None:
        visits[(open_start, open_scan)] = (open_start + dwell, CLOSED_BY_DWELL, open_zone)
    return Fold(visits, outcomes, open_start, open_scan, expired, open_zone if open_start is not None else "")


@dataclass
class PairingChanges:
    """What a batch changes in the store, as rows, collected across keys and then made columns."""

    # venue, person, start, end, closed_by, version, withdrawn, opened_by, zone
    visit_rows: list[tuple] = field(default_factory=list)
    outcome_rows: list[tuple] = field(default_factory=list)  # scan_id, venue, person, event_time, outcome, version
    spans: list[tuple] = field(default_factory=list)  # venue, start, end, presence sign, arrival sign (occupancy)
    # (venue, person, scan_id) -> outcome, for check-ins new to their key
    arrival_outcome: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def visits(self) -> VisitBatch:
        return visit_batch(self.visit_rows)


def repair_key(
    venue: str,
    person: str,
    h: KeyHistory,
    new: list[Scan],
    dwell: int,
    cap: int,
    out: PairingChanges,
    emit_all: bool = False,
) -> int:
    """Add `new` check-ins to a key and emit what changed; returns how many of `new` were retries (a scan_id
    the key already has). With `emit_all`, every outcome and visit from the oldest new check-in on is
    emitted, changed or not (a key re-read from the store after a crash in mid-write may find this batch's
    check-ins stored without their visits); rows before it keep what the store has: the re-read history
    starts with nothing open, so its first rows may differ from the stored ones without being better."""
    known = {e[1] for e in h.events}
    fresh: list[Scan] = []
    for e in new:
        if e[1] not in known:
            known.add(e[1])
            fresh.append(e)
    if not fresh and not emit_all:
        return len(new)
    before = fold(h, dwell, cap)
    old_outcome = dict(zip((e[1] for e in h.events), before.outcomes, strict=True))
    h.events = sorted(h.events + fresh)
    after = fold(h, dwell, cap)
    revision = h.revision + 1
    rows_before = len(out.visit_rows) + len(out.outcome_rows)
    fresh_scans = {e[1] for e in fresh}
    since = min(e[0] for e in new) if emit_all and new else NO_CAP
    for (t, scan, _, _), outcome in zip(h.events, after.outcomes, strict=True):
        if t >= since or old_outcome.get(scan) != outcome:
            out.outcome_rows.append((scan, venue, person, t, outcome, revision))
        if scan in fresh_scans:
            out.arrival_outcome[(venue, person, scan)] = outcome
    for key, (end, by, zone) in after.visits.items():
        was = before.visits.get(key)
        if was != (end, by, zone) or end >= since:
            out.visit_rows.append((venue, person, key[0], end, by, revision, 0, key[1], zone))
        if was is None:
            out.spans.append((venue, key[0], end, 1, 1))
        elif was[0] != end:
            out.spans.append((venue, key[0], was[0], -1, 0))
            out.spans.append((venue, key[0], end, 1, 0))
    for key, (end, by, zone) in before.visits.items():
        if key not in after.visits:  # a late check-in made its opener a repeat scan: the visit is gone
            out.visit_rows.append((venue, person, key[0], end, by, revision, 1, key[1], zone))
            out.spans.append((venue, key[0], end, -1, -1))
    if len(out.visit_rows) + len(out.outcome_rows) > rows_before:
        h.revision = revision
    return len(new) - len(fresh)


def cut_history(h: KeyHistory, horizon_us: int, dwell: int, cap: int) -> list[tuple[Scan, str]]:
    """Fold the check-ins before the horizon into the base and forget them; returns the forgotten ones
    that stayed unpaired (final now: no earlier check-in can still arrive within the window)."""
    n = 0
    while n < len(h.events) and h.events[n][0] < horizon_us:
        n += 1
    unpaired: list[tuple[Scan, str]] = []
    if n:  # nothing to fold otherwise: the base stays as it is
        whole = fold(h, dwell, cap)
        head = fold(h, dwell, cap, h.events[:n])
        unpaired = [(e, o) for e, o in zip(h.events[:n], whole.outcomes[:n], strict=True) if o in UNPAIRED]
        h.events = h.events[n:]
        h.open_start, h.open_scan, h.expired_start = head.open_start, head.open_scan, head.expired_start
        h.open_zone = head.open_zone
    if h.open_start is not None and horizon_us > h.open_start + cap:
        h.expired_start, h.open_start = h.open_start, None  # ran to its cap before the horizon
    h.cut_us = max(h.cut_us, horizon_us)
    return unpaired


def is_forgettable(h: KeyHistory, horizon_us: int, cap: int) -> bool:
    """Nothing of this key can meet a check-in at or after the horizon: it can be dropped."""
    return (
        not h.events
        and h.open_start is None
        and (h.expired_start is None or h.expired_start + 2 * cap < horizon_us)
    )


def visit_batch(rows: list[tuple]) -> VisitBatch:
    if not rows:
        obj = np.empty(0, dtype=object)
        i64 = np.empty(0, np.int64)
        return VisitBatch(obj, obj, i64, i64, np.empty(0, np.int8), np.empty(0, np.uint64), np.empty(0, np.uint8), obj,
                          obj)  # fmt: skip
    venue, person, start, end, by, ver, withdrawn, opened_by, zone = zip(*rows, strict=True)
    return VisitBatch(
        np.array(venue, dtype=object),
        np.array(person, dtype=object),
        np.array(start, dtype=np.int64),
        np.array(end, dtype=np.int64),
        np.array(by, dtype=np.int8),
        np.array(ver, dtype=np.uint64),
        np.array(withdrawn, dtype=np.uint8),
        np.array(opened_by, dtype=object),
        np.array(zone, dtype=object),
    )
