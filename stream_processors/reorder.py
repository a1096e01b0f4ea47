"""Event-time reordering: events wait until the watermark passes them, so late deliveries pair in order.

Watermark = latest event time seen in the partition - allowed lateness. A finite input (a file, the
demo) or an idle partition ends with a flush, which releases everything held.
"""

from __future__ import annotations

import numpy as np

from qrtrace.stream_processors.batch import CheckinBatch


def release(held: CheckinBatch, watermark_us: int) -> tuple[CheckinBatch, CheckinBatch]:
    """(events at or before the watermark, events still held)."""
    ready = held.event_time_us <= watermark_us
    if ready.all():
        return held, held.take(np.empty(0, dtype=np.int64))
    return held.take(np.flatnonzero(ready)), held.take(np.flatnonzero(~ready))


def in_pairing_order(batch: CheckinBatch) -> CheckinBatch:
    """By venue, then event time, then delivery order: the order DESIGN.md's rule reads events in."""
    if len(batch) < 2:
        return batch
    return batch.take(np.lexsort((batch.seq, batch.event_time_us, batch.venue_id.astype(str))))
