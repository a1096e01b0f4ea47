"""The pipeline step both runtimes run: one batch of one partition's check-ins, from pairing to acknowledgement.

    pair (CheckinProcessor, reading the store's history of keys it no longer remembers)
    -> write rows (check-in log, outcomes, visits, occupancy: idempotent, keyed, versioned)
    -> publish dead letters
    -> save the venues' state
    -> return: the caller acknowledges (the front door answers 202, Faust commits the offsets)

The order is the at-least-once contract, and it lives only here (Arroyo's strategy chain is the model: each
stage hands on only what the previous one finished). A crash anywhere before the save replays the batch
from the last saved state: its rows are written again with the same keys and versions, its dead letters
again with the same ids. Dead letters go before the state, because once the state has a check-in a replay
no longer re-emits it. The embedded runtime (`qrtrace/embedded.py`) and the Faust worker
(`stream_processors/faust_worker.py`) only supply the `StepSinks` and split batches by partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from qrtrace.stream_processors.batch import CheckinBatch, DeadLetter
from qrtrace.stream_processors.codec import partition_of
from qrtrace.stream_processors.pipeline import CheckinProcessor, ProcessorConfig, ProcessorOutput, StoredHistory
from qrtrace.stream_processors.state import PartitionState, VenueState


class StepSinks(Protocol):
    """Where a step's output goes; each call returns once what it was given is durable."""

    def history(self, wanted: list[tuple[str, str, int]]) -> StoredHistory:
        """Stored check-ins of (venue, person, since) keys (`sinks.history.stored_history`)."""

    def latest_stored(self, venues: set[str]) -> dict[str, int]:
        """The latest stored check-in time of venues the state does not know (`sinks.history.latest_stored`)."""

    def write(self, out: ProcessorOutput) -> None:
        """The rows: check-in log, outcomes, visits, occupancy."""

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Dead letters (embedded: the store's table; distributed: the checkins.dlq topic)."""

    def save(self, state: PartitionState, venues: set[str]) -> None:
        """The state of these venues (embedded: the SQLite state file; distributed: the changelog)."""


def run_step(
    config: ProcessorConfig,
    state: PartitionState,
    batch: CheckinBatch,
    sinks: StepSinks,
    now_us: int | None,
    letters: Sequence[DeadLetter] = (),
) -> ProcessorOutput:
    """One batch through pair -> write -> publish -> save; `letters` are the adapter's own dead letters for
    the batch (undecodable messages, unknown venues), published with the processor's. Venues are marked
    saved only once the save returned."""
    adopt_unknown_venues(state, set(batch.venue_id.tolist()), sinks, config.dedupe_window_us)
    out = CheckinProcessor(config, state).process(batch, now_us, sinks.history)
    sinks.write(out)
    sinks.publish([*letters, *out.dead_letters])
    changed = set(state.changed)
    sinks.save(state, changed)
    state.changed -= changed
    return out


def adopt_unknown_venues(state: PartitionState, venues: set[str], sinks: StepSinks, window_us: int) -> None:
    """Venues the state has no record of start with their horizon a window past their latest stored
    check-in: new venues have none, but a venue whose state was lost (or written by an earlier layout)
    re-pairs every key that could meet a stored check-in from the store."""
    unknown = {v for v in venues if v not in state.venues}
    if not unknown:
        return
    for venue, latest in sinks.latest_stored(unknown).items():
        state.venues[venue] = VenueState(horizon_us=latest + window_us)
        state.changed.add(venue)


def by_partition(batch: CheckinBatch, partitions: int) -> list[tuple[int, CheckinBatch]]:
    """The batch split as Kafka's default partitioner splits venue-keyed messages, in partition order and
    arrival order within each: the embedded runtime runs the same steps a worker would."""
    if not len(batch):
        return []
    of_venue = {v: partition_of(v, partitions) for v in set(batch.venue_id.tolist())}
    part = np.array([of_venue[v] for v in batch.venue_id.tolist()], dtype=np.int64)
    return [(int(p), batch.take(np.flatnonzero(part == p))) for p in np.unique(part)]
