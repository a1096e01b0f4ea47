"""`qrtrace repair`: fix a store written before event times and visit lengths were bounded (issue 10).

- check-ins from after the receiving clock's limit become dead letters (`event_time_in_future`) and
  leave the tables, with the visits and occupancy windows they made: whole future day partitions are
  dropped, rows later today are deleted by a mutation;
- visits closed by such a check-out end at start + dwell again, like any visit without a check-out;
- visits longer than their venue's cap end at start + dwell again (a row of a higher version, which
  the tables keep instead), and each is recorded as a dead letter (`visit_over_cap`);
- the longest-visit-per-day table is rebuilt, so traces stop looking back years.
Rows older than retention are `qrtrace retention`'s to drop, not this command's. A second run finds
nothing to do (occupancy windows within the longest visit after the limit are kept: an open visit
counts in them until its provisional end, so they cannot be told apart from a future check-in's).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import orjson

from qrtrace.errors import StoreError
from qrtrace.sinks.clickhouse_sql import literal, load_sql
from qrtrace.sinks.store import Store
from qrtrace.sinks.writer import StoreWriter
from qrtrace.stream_processors.batch import CLOSED_BY_DWELL, US_PER_DAY, DeadLetter, VisitBatch

# Event-time column of each table whose rows a future check-in can have made.
FUTURE_TABLES = {"checkins": "event_time_us", "checkin_outcomes": "event_time_us", "visits_by_venue": "start_us",
                 "visits_by_person": "start_us", "occupancy": "window_start_us"}  # fmt: skip
MUTATION_WAIT_S = 120


@dataclass
class StoreRepair:
    future_checkins: int = 0
    future_partitions: list[tuple[str, int]] = field(default_factory=list)
    future_rows_deleted: dict[str, int] = field(default_factory=dict)
    visits_reopened: int = 0  # closed by a check-out from the future: back to their dwell end
    visits_shortened: int = 0


def repair_store(
    store: Store,
    latest_us: int,
    dwell_us_by_category: Mapping[str, int],
    cap_us_by_category: Mapping[str, int],
    at_us: int,
) -> StoreRepair:
    """Repair rows after `latest_us` (the clock plus its tolerance) and visits over their category's cap;
    `at_us` stamps the dead letters written."""
    report = StoreRepair()
    writer = StoreWriter(store)
    longest = max(cap_us_by_category.values())
    report.future_checkins = _future_checkins_to_dead_letters(store, writer, latest_us, at_us)
    report.visits_reopened = _reopen_future_checkouts(store, writer, latest_us, dwell_us_by_category)
    report.future_partitions, report.future_rows_deleted = _remove_future_rows(store, latest_us, longest)
    report.visits_shortened = _shorten_long_visits(store, writer, dwell_us_by_category, cap_us_by_category, at_us)
    store.execute("TRUNCATE TABLE qrtrace.visit_spans")
    store.execute(load_sql("qrtrace.sinks", "repair_visit_spans"))
    return report


def _future_checkins_to_dead_letters(store: Store, writer: StoreWriter, latest_us: int, at_us: int) -> int:
    rows = store.query(load_sql("qrtrace.sinks", "repair_future_checkins"), {"latest": latest_us})
    letters = []
    for scan, venue, person, direction, t, mode, scanner in zip(*rows.values(), strict=True):
        payload = {"scan_id": scan, "venue_id": venue, "person": person, "direction": "in" if direction > 0 else "out",
                   "event_time_us": int(t), "mode": mode, "scanner_id": scanner}  # fmt: skip
        letters.append(DeadLetter(f"event_time_in_future:{scan}", "event_time_in_future",
                                  "stored before event times were bounded; removed by qrtrace repair",
                                  orjson.dumps(payload).decode()))  # fmt: skip
    writer.dead_letters(letters, "repair", at_us)
    return len(letters)


def _remove_future_rows(
    store: Store, latest_us: int, longest_visit_us: int
) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """Whole day partitions after the limit's day are dropped; rows after the limit within its day are
    deleted by a mutation (waited for, so the command's answer is the store's state). Occupancy windows
    go only beyond the longest visit after the limit: before that, open visits count in them."""
    limits = {t: latest_us + (longest_visit_us if t == "occupancy" else 0) for t in FUTURE_TABLES}
    rows = store.query(load_sql("qrtrace.sinks", "day_partitions"), {"tables": list(FUTURE_TABLES)})
    dropped = []
    for table, partition in sorted(set(zip(rows["table"], rows["partition"], strict=True))):
        if table in FUTURE_TABLES and int(partition) > limits[table] // US_PER_DAY:
            # Table names come from the constant above; the partition id is rendered as an integer literal.
            store.execute(f"ALTER TABLE qrtrace.{table} DROP PARTITION {literal(int(partition), 'Int64')}")
            dropped.append((table, int(partition)))
    deleted = {}
    for table, column in FUTURE_TABLES.items():
        # Names from the constant above, the bound rendered as an integer literal (ALTER takes no parameters).
        limit = literal(limits[table], "Int64")
        n = int(store.query(f"SELECT count() AS n FROM qrtrace.{table} WHERE {column} > {limit}")["n"][0])
        if n:
            store.execute(f"ALTER TABLE qrtrace.{table} DELETE WHERE {column} > {limit}")
            deleted[table] = n
    if deleted:
        _wait_for_mutations(store)
    return dropped, deleted


def _wait_for_mutations(store: Store) -> None:
    deadline = time.monotonic() + MUTATION_WAIT_S
    while time.monotonic() < deadline:
        if not int(store.query(load_sql("qrtrace.sinks", "pending_mutations"))["n"][0]):
            return
        time.sleep(0.2)
    raise StoreError(f"The store has not finished deleting the rows from the future after {MUTATION_WAIT_S} s; "
                     "run `qrtrace repair` again later.")  # fmt: skip


def _reopen_future_checkouts(
    store: Store, writer: StoreWriter, latest_us: int, dwell_us_by_category: Mapping[str, int]
) -> int:
    rows = store.query_columns(load_sql("qrtrace.sinks", "repair_future_checkout_visits"), {"latest": latest_us})
    n = len(rows["start_us"])
    if not n:
        return 0
    writer.visits(_ending_at_dwell(rows, np.arange(n), _per_category(rows, dwell_us_by_category)))
    return n


def _per_category(rows: Mapping[str, np.ndarray], us_by_category: Mapping[str, int]) -> np.ndarray:
    """Each row's value for its venue's category (the largest one for a venue no longer registered)."""
    fallback = max(us_by_category.values())
    return np.array([us_by_category.get(c, fallback) for c in rows["category"].tolist()], dtype=np.int64)


def _ending_at_dwell(rows: Mapping[str, np.ndarray], idx: np.ndarray, dwell_us: np.ndarray) -> VisitBatch:
    """Rows `idx` as visits without a check-out (ending at start + dwell), one version above the row read
    (ReplacingMergeTree(version) keeps the repaired row)."""
    start = rows["start_us"][idx].astype(np.int64)
    n = len(idx)
    return VisitBatch(
        venue_id=rows["venue_id"][idx], person=rows["person"][idx], start_us=start, end_us=start + dwell_us[idx],
        closed_by=np.full(n, CLOSED_BY_DWELL, np.int8), version=rows["version"][idx].astype(np.uint64) + 1,
        withdrawn=np.zeros(n, np.uint8), opened_by=rows["opened_by"][idx], zone=rows["zone"][idx],
    )


def _shorten_long_visits(
    store: Store,
    writer: StoreWriter,
    dwell_us_by_category: Mapping[str, int],
    cap_us_by_category: Mapping[str, int],
    at_us: int,
) -> int:
    shortest = min(cap_us_by_category.values())
    rows = store.query_columns(load_sql("qrtrace.sinks", "repair_long_visits"), {"shortest_cap": shortest})
    if not len(rows["start_us"]):
        return 0
    over = np.flatnonzero(rows["end_us"] - rows["start_us"] > _per_category(rows, cap_us_by_category))
    if not len(over):
        return 0
    writer.visits(_ending_at_dwell(rows, over, _per_category(rows, dwell_us_by_category)))
    letters = [
        DeadLetter(f"visit_over_cap:{v}:{p}:{s}:{o}", "visit_over_cap",
                   "a visit longer than its category's cap, stored before visits were capped; now ends at its dwell",
                   orjson.dumps({"venue_id": v, "person": p, "start_us": int(s), "end_us": int(e)}).decode())
        for v, p, s, e, o in zip(rows["venue_id"][over].tolist(), rows["person"][over].tolist(),
                                 rows["start_us"][over].tolist(), rows["end_us"][over].tolist(),
                                 rows["opened_by"][over].tolist(), strict=True)
    ]  # fmt: skip
    writer.dead_letters(letters, "repair", at_us)
    return len(over)
