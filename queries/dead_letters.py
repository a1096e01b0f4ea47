"""Dead letters by reason: the operations page's loss view."""

from __future__ import annotations

from dataclasses import dataclass

from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


@dataclass(frozen=True)
class DeadLetterReason:
    """How many dead letters one reason had in the period, and when the last one arrived."""

    reason: str
    count: int
    last_at_us: int


def dead_letter_reasons(store: Store, since_us: int) -> list[DeadLetterReason]:
    """Dead letters received after `since_us`, per reason, most frequent first."""
    rows = store.query(load_sql("qrtrace.queries", "dead_letter_reasons"), {"since_us": since_us})
    return [DeadLetterReason(*row)
            for row in zip(rows["reason"], rows["dead_letters"], rows["last_at_us"], strict=True)]  # fmt: skip
