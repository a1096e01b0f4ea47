"""Per-venue tumbling windows of occupancy (people present, arrivals) with over-capacity flags.

Visits arrive as changes (pairing's spans): a new visit adds its span, a changed one moves it, a
withdrawn one takes it away. Windows touched by a batch are re-emitted with their new totals and the
venue's next version, so the store keeps the latest. The totals are sums over the visits that exist,
so they do not depend on the order the changes came in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from qrtrace.stream_processors.batch import OccupancyBatch
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
    spans: list[tuple[str, int, int, int, int]],
    venue_state: Callable[[str], VenueState],
    window_us: int,
    capacity_by_venue: Mapping[str, int],
) -> OccupancyBatch:
    """Fold visit changes into each venue's windows; return the touched windows' new totals. A change is
    (venue, start, end, presence sign, arrival sign): a new visit adds its span and an arrival, a changed
    one takes its old span away and adds the new, a withdrawn one takes its span and arrival away."""
    if not spans:
        return _empty()
    venue_ids, start_us, end_us, sign, arrival = zip(*spans, strict=True)
    names, codes = np.unique(np.array(venue_ids, dtype=str), return_inverse=True)
    venue = codes.astype(np.int64) << _SHIFT
    start, end = np.array(start_us, np.int64), np.array(end_us, np.int64)
    sign_a, arrival_a = np.array(sign, np.int64), np.array(arrival, np.int64)
    rows, win = spans_to_windows(start, end, window_us)
    present = _sum_by_key(venue[rows] | win, sign_a[rows])
    arrives = np.flatnonzero(arrival_a != 0)
    arrivals = _sum_by_key(venue[arrives] | (start[arrives] // window_us), arrival_a[arrives])
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
        arrivals=np.array([max(0, touched[k][0].arrivals.get(k & mask, 0)) for k in keys], dtype=np.uint32),
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
