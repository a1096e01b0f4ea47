"""Drop retried deliveries: a `scan_id` seen before (within the dedupe window) is the same scan again."""

from __future__ import annotations

import numpy as np


def drop_retries(seen: dict[str, int], scan_ids: list[str], times: list[int]) -> np.ndarray:
    """Mask of first deliveries (retries of a remembered scan_id are False); remembers the new ones."""
    keep = np.ones(len(scan_ids), dtype=bool)
    for i, (scan_id, t) in enumerate(zip(scan_ids, times, strict=True)):
        if scan_id in seen:
            keep[i] = False
        else:
            seen[scan_id] = t
    return keep


def forget_scans(seen: dict[str, int], horizon_us: int) -> dict[str, int]:
    """The remembered scans at or after the horizon."""
    return {k: t for k, t in seen.items() if t >= horizon_us}
