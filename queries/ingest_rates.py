"""Check-ins stored per minute of ingest time: throughput as the store saw it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


@dataclass(frozen=True)
class IngestRate:
    """The check-ins of one outcome stored in one minute (`minute` counts minutes since the epoch)."""

    minute: int
    outcome: str
    events: int


def ingest_rates(store: Store, since_us: int) -> list[IngestRate]:
    """Check-ins ingested after `since_us`, per minute and outcome, by minute."""
    rows = store.query(load_sql("qrtrace.queries", "ingest_rates"), {"since_us": since_us})
    return [IngestRate(*row) for row in zip(rows["minute"], rows["outcome"], rows["events"], strict=True)]


def events_per_minute(rates: Iterable[IngestRate]) -> dict[int, int]:
    """minute -> check-ins stored in it, whatever their outcome (minutes in the order first seen)."""
    per_minute: dict[int, int] = {}
    for rate in rates:
        per_minute[rate.minute] = per_minute.get(rate.minute, 0) + rate.events
    return per_minute
