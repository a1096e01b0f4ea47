"""Per-venue tumbling windows of occupancy (people present, arrivals) with over-capacity flags.

Visits arrive as changes: a new provisional or final visit adds its span; a final row that replaces
a provisional one moves the span (from start..previous_end to start..end). Windows touched by a batch
are re-emitted with their new totals and a higher version, so the store keeps the latest.
Windows are keyed by one int64 (venue index << 32 | window number) so a batch folds in with numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qrtrace.stream_processors.batch import OccupancyBatch, VisitBatch

_SHIFT = 32


def spans_to_windows(start_us: np.ndarray, end_us: np.ndarray, window_us: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, window number) of every window each [start, end) overlaps; zero length: its start window."""
    first = start_us // window_us
    last = np.maximum(first, (end_us - 1) // window_us)
    counts = (last - first + 1).astype(np.int64)
    rows = np.repeat(np.arange(len(start_us)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, first[rows] + offsets


@dataclass
class OccupancyWindows:
    window_us: int
    capacity_by_venue: Mapping[str, int]
    present: dict[int, int] = field(default_factory=dict)
    arrivals: dict[int, int] = field(default_factory=dict)
    version: int = 0

    def __post_init__(self) -> None:
        self._venues = pd.Index(sorted(self.capacity_by_venue))
        self._capacity = np.array([self.capacity_by_venue[v] for v in self._venues], dtype=np.uint32)

    def apply(self, visits: VisitBatch) -> OccupancyBatch:
        """Fold visit changes into the windows; return the touched windows' new totals."""
        if not len(visits):
            return _empty()
        self.version += 1
        w = self.window_us
        venue = self._venues.get_indexer(visits.venue_id).astype(np.int64) << _SHIFT
        replaced = np.flatnonzero(visits.previous_end_us >= 0)
        add_rows, add_win = spans_to_windows(visits.start_us, visits.end_us, w)
        sub_rows, sub_win = spans_to_windows(visits.start_us[replaced], visits.previous_end_us[replaced], w)
        keys = np.concatenate([venue[add_rows] | add_win, venue[replaced][sub_rows] | sub_win])
        delta = np.concatenate([np.ones(len(add_rows), np.int64), -np.ones(len(sub_rows), np.int64)])
        touched_present = _fold(self.present, keys, delta)
        new = np.flatnonzero(visits.previous_end_us < 0)
        arrival_keys = venue[new] | (visits.start_us[new] // w)
        touched_arrivals = _fold(self.arrivals, arrival_keys, np.ones(len(new), np.int64))
        return self._rows(np.union1d(touched_present, touched_arrivals))

    def _rows(self, keys: np.ndarray) -> OccupancyBatch:
        venue_idx = keys >> _SHIFT
        present = np.array([self.present.get(k, 0) for k in keys.tolist()], dtype=np.uint32)
        capacity = self._capacity[venue_idx]
        return OccupancyBatch(
            venue_id=np.asarray(self._venues[venue_idx], dtype=object),
            window_start_us=(keys & ((1 << _SHIFT) - 1)) * self.window_us,
            arrivals=np.array([self.arrivals.get(k, 0) for k in keys.tolist()], dtype=np.uint32),
            present=present,
            capacity=capacity,
            over_capacity=(present > capacity) & (capacity > 0),
            version=np.full(len(keys), self.version, dtype=np.uint64),
        )

    def forget_before(self, horizon_us: int) -> None:
        oldest = horizon_us // self.window_us
        mask = (1 << _SHIFT) - 1
        if any((k & mask) < oldest for k in self.present):
            self.present = {k: v for k, v in self.present.items() if (k & mask) >= oldest}
            self.arrivals = {k: v for k, v in self.arrivals.items() if (k & mask) >= oldest}


def _fold(state: dict[int, int], keys: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Add per-key sums of `delta` into `state`; return the keys touched."""
    if not len(keys):
        return keys
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=delta, minlength=len(uniq)).astype(np.int64)
    get = state.get
    for k, d in zip(uniq.tolist(), sums.tolist(), strict=True):
        state[k] = get(k, 0) + d
    return uniq


def _empty() -> OccupancyBatch:
    i64 = np.empty(0, np.int64)
    u32 = np.empty(0, np.uint32)
    return OccupancyBatch(np.empty(0, object), i64, u32, u32, u32, np.empty(0, bool), np.empty(0, np.uint64))
