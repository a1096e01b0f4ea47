"""Drop retried deliveries: a `scan_id` seen before (within the dedupe window) is the same scan again."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qrtrace.stream_processors.batch import CheckinBatch


@dataclass
class ScanIdDeduper:
    """Remembers scan ids with their event time; forgets those older than the window behind the watermark."""

    window_us: int
    seen: dict[str, int] = field(default_factory=dict)

    def drop_retries(self, batch: CheckinBatch) -> tuple[CheckinBatch, int]:
        """The batch without retried scans (first delivery wins), and how many were dropped."""
        seen = self.seen
        keep = np.ones(len(batch), dtype=bool)
        for i, (scan_id, t) in enumerate(zip(batch.scan_id.tolist(), batch.event_time_us.tolist(), strict=True)):
            if scan_id in seen:
                keep[i] = False
            else:
                seen[scan_id] = t
        dropped = int(len(batch) - keep.sum())
        return (batch.take(np.flatnonzero(keep)) if dropped else batch), dropped

    def forget_before(self, watermark_us: int) -> None:
        horizon = watermark_us - self.window_us
        if self.seen and min(self.seen.values()) < horizon:
            self.seen = {k: t for k, t in self.seen.items() if t >= horizon}
