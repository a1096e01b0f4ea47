"""Per-venue tumbling windows of occupancy (people present, arrivals) with over-capacity flags.

Visits arrive as changes: a new provisional or final visit adds its span; a final row that replaces
a provisional one moves the span (from start..previous_end to start..end). Windows touched by a batch
are re-emitted with their new totals and a higher version, so the store keeps the latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from qrtrace.stream_processors.batch import OccupancyBatch, VisitBatch


def spans_to_windows(start_us: np.ndarray, end_us: np.ndarray, window_us: int) -> tuple[np.ndarray, np.ndarray]:
    """(row index, window start) for every window each [start, end) overlaps (zero-length: its start window)."""
    first = start_us // window_us
    last = np.maximum(first, (end_us - 1) // window_us)
    counts = (last - first + 1).astype(np.int64)
    rows = np.repeat(np.arange(len(start_us)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, (first[rows] + offsets) * window_us


@dataclass
class OccupancyWindows:
    window_us: int
    capacity_by_venue: Mapping[str, int]
    present: dict[tuple[str, int], int] = field(default_factory=dict)
    arrivals: dict[tuple[str, int], int] = field(default_factory=dict)
    version: int = 0

    def apply(self, visits: VisitBatch) -> OccupancyBatch:
        """Fold visit changes into the windows; return the touched windows' new totals."""
        if not len(visits):
            return _empty()
        self.version += 1
        w = self.window_us
        replaced = visits.previous_end_us >= 0
        # +1 over each new span, -1 over each replaced provisional span, +1 arrival for new visits only.
        add_rows, add_win = spans_to_windows(visits.start_us, visits.end_us, w)
        old_idx = np.flatnonzero(replaced)
        sub_rows, sub_win = spans_to_windows(visits.start_us[old_idx], visits.previous_end_us[old_idx], w)
        venues = np.concatenate([visits.venue_id[add_rows], visits.venue_id[old_idx][sub_rows]])
        wins = np.concatenate([add_win, sub_win])
        delta = np.concatenate([np.ones(len(add_rows), np.int64), -np.ones(len(sub_rows), np.int64)])
        touched: set[tuple[str, int]] = set()
        present = self.present
        for key, d in _sum_by_key(venues, wins, delta):
            present[key] = present.get(key, 0) + d
            touched.add(key)
        new_idx = np.flatnonzero(~replaced)
        arrivals = self.arrivals
        arr_win = (visits.start_us[new_idx] // w) * w
        for key, d in _sum_by_key(visits.venue_id[new_idx], arr_win, np.ones(len(new_idx), np.int64)):
            arrivals[key] = arrivals.get(key, 0) + d
            touched.add(key)
        return self._rows(sorted(touched))

    def _rows(self, keys: list[tuple[str, int]]) -> OccupancyBatch:
        venue = np.array([k[0] for k in keys], dtype=object)
        cap = np.array([self.capacity_by_venue.get(k[0], 0) for k in keys], dtype=np.uint32)
        present = np.array([self.present.get(k, 0) for k in keys], dtype=np.uint32)
        return OccupancyBatch(
            venue_id=venue,
            window_start_us=np.array([k[1] for k in keys], dtype=np.int64),
            arrivals=np.array([self.arrivals.get(k, 0) for k in keys], dtype=np.uint32),
            present=present,
            capacity=cap,
            over_capacity=(present > cap) & (cap > 0),
            version=np.full(len(keys), self.version, dtype=np.uint64),
        )

    def forget_before(self, horizon_us: int) -> None:
        self.present = {k: v for k, v in self.present.items() if k[1] >= horizon_us}
        self.arrivals = {k: v for k, v in self.arrivals.items() if k[1] >= horizon_us}


def _sum_by_key(venues: np.ndarray, wins: np.ndarray, delta: np.ndarray) -> list[tuple[tuple[str, int], int]]:
    """Group (venue, window) pairs and sum their deltas, vectorised."""
    if not len(wins):
        return []
    codes, uniq_venues = _factorize(venues)
    order = np.lexsort((wins, codes))
    c, wv, d = codes[order], wins[order], delta[order]
    boundary = np.ones(len(c), dtype=bool)
    boundary[1:] = (c[1:] != c[:-1]) | (wv[1:] != wv[:-1])
    starts = np.flatnonzero(boundary)
    sums = np.add.reduceat(d, starts)
    return [((uniq_venues[ci], int(wi)), int(s)) for ci, wi, s in zip(c[starts], wv[starts], sums, strict=True)]


def _factorize(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    uniq, codes = np.unique(values.astype(str), return_inverse=True)
    return codes, uniq.tolist()


def _empty() -> OccupancyBatch:
    i64 = np.empty(0, np.int64)
    u32 = np.empty(0, np.uint32)
    return OccupancyBatch(np.empty(0, object), i64, u32, u32, u32, np.empty(0, bool), np.empty(0, np.uint64))
