"""One edge pass over several requests' lines, and each request's share of its verdict (pure).

`KafkaFront` gathers concurrent scanner requests into one combined batch (their lines one after the
other), admits it once and produces it once, so Kafka's messages are bundles of many scans whatever the
request size. Each request is still answered with its own counts: `split_admitted` cuts the combined
`AdmittedBatch` back at the request boundaries. The edge keeps the input order of the check-ins that
passed and gives each dead letter the index of its line (`rejected_at`), which is all the split needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qrtrace.producers.edge import AdmittedBatch
from qrtrace.stream_processors.batch import CheckinBatch, DeadLetter


@dataclass(frozen=True)
class Share:
    """One request's part of a coalesced pass: its check-ins that passed and its dead letters."""

    checkins: CheckinBatch
    dead_letters: list[DeadLetter]
    received: int


def split_admitted(admitted: AdmittedBatch, sizes: Sequence[int]) -> list[Share]:
    """Cut a combined pass back per request; `sizes[k]` is how many lines request k put in, in order."""
    if sum(sizes) != admitted.received:
        raise ValueError(f"sizes add up to {sum(sizes)}, the pass had {admitted.received} lines")
    if len(admitted.rejected_at) != len(admitted.dead_letters):
        raise ValueError("the pass does not say which line each dead letter came from")
    ends = np.cumsum(np.asarray(sizes, dtype=np.int64))
    rejected = np.asarray(admitted.rejected_at, dtype=np.int64)
    # Dead letters are in line order, so request k's are one run of them: [letters_to[k-1], letters_to[k]).
    letters_to = np.searchsorted(rejected, ends, side="left")
    shares: list[Share] = []
    line0 = letter0 = valid0 = 0
    for size, line1, letter1 in zip(sizes, ends.tolist(), letters_to.tolist(), strict=True):
        valid1 = valid0 + (line1 - line0) - (letter1 - letter0)  # check-ins passed in line order too
        shares.append(Share(admitted.checkins.take(np.arange(valid0, valid1)),
                            admitted.dead_letters[letter0:letter1], size))  # fmt: skip
        line0, letter0, valid0 = line1, letter1, valid1
    if valid0 != len(admitted.checkins):
        raise ValueError("the pass's check-ins and dead letters do not add up to its lines")
    return shares


def take_pass(queue: list, max_lines: int) -> tuple[list, int]:
    """Pop waiting requests (objects with `lines`) in arrival order while they fit in one pass of
    `max_lines`, always at least one; returns them and their line count. Shared by the Kafka front's gatherer and
    the embedded group commit (api/group_commit.py)."""
    taken, lines = [], 0
    while queue and (not taken or lines + len(queue[0].lines) <= max_lines):
        item = queue.pop(0)
        taken.append(item)
        lines += len(item.lines)
    return taken, lines
