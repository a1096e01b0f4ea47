"""Per-venue tumbling windows of occupancy (people present, arrivals) with over-capacity flags.

Visits arrive as changes: a new provisional or final visit adds its span; a final row that replaces
a provisional one moves the span (from start..previous_end to start..end). Windows touched by a batch
are re-emitted with their new totals and the venue's next version, so the store keeps the latest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from qrtrace.stream_processors.batch import OccupancyBatch, VisitBatch
from qrtrace.stream_processors.state import VenueState

_SHIFT = 32  # keys in a batch: venue code << 32 | window number


def spans_to_windows(start_us: np.ndarray, end_us: np.ndarray, window_us: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, window number) of every window each [start, end) overlaps; zero length: its start window."""
    first = start_us // window_us
    last = np.maximum(first, (end_us - 1) // window_us)
    counts = (last - first + 1).astype(np.int64)
    rows = np.repeat(np.arange(len(start_us)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, first[rows] + offsets


def fold_occupancy(
    visits: VisitBatch,
    venue_state: Callable[[str], VenueState],
    window_us: int,
    capacity_by_venue: Mapping[str, int],
) -> OccupancyBatch:
    """Fold visit changes into each venue's windows; return the touched windows' new totals."""
    if not len(visits):
        return _empty()
    names, codes = np.unique(visits.venue_id.astype(str), return_inverse=True)
    venue = codes.astype(np.int64) << _SHIFT
    replaced = np.flatnonzero(visits.previous_end_us >= 0)
    new = np.flatnonzero(visits.previous_end_us < 0)
    add_rows, add_win = spans_to_windows(visits.start_us, visits.end_us, window_us)
    sub_rows, sub_win = spans_to_windows(visits.start_us[replaced], visits.previous_end_us[replaced], window_us)
    present = _sum_by_key(
        np.concatenate([venue[add_rows] | add_win, venue[replaced][sub_rows] | sub_win]),
        np.concatenate([np.ones(len(add_rows), np.int64), -np.ones(len(sub_rows), np.int64)]),
    )
    arrivals = _sum_by_key(venue[new] | (visits.start_us[new] // window_us), np.ones(len(new), np.int64))
    mask = (1 << _SHIFT) - 1
    touched: dict[int, tuple[VenueState, int]] = {}  # key -> (state, version)
    versions: dict[int, tuple[VenueState, int]] = {}
    for deltas, attr in ((present, "present"), (arrivals, "arrivals")):
        for key, d in deltas:
            code = key >> _SHIFT
            if code not in versions:
                st = venue_state(str(names[code]))
                st.version += 1
                versions[code] = (st, st.version)
            st = versions[code][0]
            counts = getattr(st, attr)
            counts[key & mask] = counts.get(key & mask, 0) + d
            touched[key] = versions[code]
    keys = sorted(touched)
    venue_ids = [str(names[k >> _SHIFT]) for k in keys]
    # Never below zero: a window forgotten by pruning or `qrtrace repair` may lose a visit it never counted.
    present_now = np.array([max(0, touched[k][0].present.get(k & mask, 0)) for k in keys], dtype=np.uint32)
    capacity = np.array([capacity_by_venue.get(v, 0) for v in venue_ids], dtype=np.uint32)
    return OccupancyBatch(
        venue_id=np.array(venue_ids, dtype=object),
        window_start_us=np.array([(k & mask) * window_us for k in keys], dtype=np.int64),
        arrivals=np.array([touched[k][0].arrivals.get(k & mask, 0) for k in keys], dtype=np.uint32),
        present=present_now,
        capacity=capacity,
        over_capacity=(present_now > capacity) & (capacity > 0),
        version=np.array([touched[k][1] for k in keys], dtype=np.uint64),
    )


def forget_windows(counts: dict[int, int], oldest_window: int) -> dict[int, int]:
    return {w: c for w, c in counts.items() if w >= oldest_window}


def _sum_by_key(keys: np.ndarray, delta: np.ndarray) -> list[tuple[int, int]]:
    if not len(keys):
        return []
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=delta, minlength=len(uniq)).astype(np.int64)
    return list(zip(uniq.tolist(), sums.tolist(), strict=True))


def _empty() -> OccupancyBatch:
    i64 = np.empty(0, np.int64)
    u32 = np.empty(0, np.uint32)
    return OccupancyBatch(np.empty(0, object), i64, u32, u32, u32, np.empty(0, bool), np.empty(0, np.uint64))
