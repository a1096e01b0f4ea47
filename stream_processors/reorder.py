"""Event-time reordering: hold events until the watermark passes them, so late deliveries are paired in order.

Watermark = latest event time seen - allowed lateness. A finite input (a file, the demo) ends with
`flush()`, which releases everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qrtrace.stream_processors.batch import CheckinBatch, empty_checkins


@dataclass
class ReorderBuffer:
    allowed_lateness_us: int
    held: CheckinBatch = field(default_factory=empty_checkins)
    max_event_time_us: int = -(2**62)

    @property
    def watermark_us(self) -> int:
        return self.max_event_time_us - self.allowed_lateness_us

    def push(self, batch: CheckinBatch) -> CheckinBatch:
        """Add a batch; return the events now behind the watermark, in (event time, delivery) order."""
        if len(batch):
            self.max_event_time_us = max(self.max_event_time_us, int(batch.event_time_us.max()))
        pool = CheckinBatch.concat([self.held, batch]) if len(self.held) else batch
        ready = pool.event_time_us <= self.watermark_us
        self.held = pool.take(np.flatnonzero(~ready))
        return _in_event_order(pool.take(np.flatnonzero(ready)))

    def flush(self) -> CheckinBatch:
        """Release everything held (end of a finite input)."""
        out, self.held = _in_event_order(self.held), empty_checkins()
        if len(out):
            self.max_event_time_us = max(self.max_event_time_us, int(out.event_time_us.max()))
        return out


def _in_event_order(batch: CheckinBatch) -> CheckinBatch:
    if len(batch) < 2:
        return batch
    return batch.take(np.lexsort((batch.seq, batch.event_time_us)))
