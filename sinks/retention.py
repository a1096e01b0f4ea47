"""Retention: drop whole day partitions older than the cutoff (default 21 days). No row deletes."""

from __future__ import annotations

from qrtrace.sinks.clickhouse_sql import literal, load_sql
from qrtrace.sinks.store import Store

DAY_PARTITIONED = ("checkins", "checkin_outcomes", "visits_by_venue", "visits_by_person", "occupancy",
                   "dead_letters", "trace_runs", "trace_exposures", "exposure_sites", "notification_outbox",
                   "notification_status", "follow_ups", "follow_up_history")


def drop_expired_partitions(store: Store, cutoff_day: int) -> list[tuple[str, int]]:
    """Drop partitions (UTC day numbers) below `cutoff_day`; return what was dropped."""
    rows = store.query(load_sql("qrtrace.sinks", "day_partitions"), {"tables": list(DAY_PARTITIONED)})
    dropped = []
    for table, partition in sorted(set(zip(rows["table"], rows["partition"], strict=True))):
        day = int(partition)
        if day < cutoff_day and table in DAY_PARTITIONED:
            # Table names come from the constant above; the partition id is rendered as an integer literal.
            store.execute(f"ALTER TABLE qrtrace.{table} DROP PARTITION {literal(day, 'Int64')}")
            dropped.append((table, day))
    return dropped
