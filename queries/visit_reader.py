"""The trace's HopReader over a store (chDB or ClickHouse server): two parameterised queries per hop."""

from __future__ import annotations

import numpy as np

from qrtrace.queries.trace import VISIT_COLUMNS, Frontier, Table, concat_tables, empty_table
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store

# Values per statement: they travel inline (the 18.16 server has no query parameters, and on chDB a
# literal set is cheaper than a subquery); both stores raise max_query_size for this (sinks/store.py).
PERSONS_PER_QUERY = 20_000
CELLS_PER_QUERY = 50_000
VISIT_TYPES = {"person": object, "venue_id": object, "start_us": np.int64, "end_us": np.int64}


class StoreHopReader:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.queries = 0  # statements sent, for benchmarks and tests

    def source_visits(self, frontier: Frontier) -> tuple[Table, int]:
        sql = load_sql("qrtrace.queries", "trace_sources")
        parts, longest = [], 0
        for lo in range(0, len(frontier), PERSONS_PER_QUERY):
            hi = min(lo + PERSONS_PER_QUERY, len(frontier))
            params = {
                "persons": frontier.persons[lo:hi],
                "min_start": min(frontier.start_los[lo:hi]),
                "max_start": max(frontier.start_his[lo:hi]),
            }
            rows = self._query(sql, params)
            if len(rows["longest"]):
                longest = max(longest, int(rows["longest"][0]))
            parts.append({c: rows[c] for c in VISIT_COLUMNS})
        return (concat_tables(parts) if parts else empty_table(VISIT_TYPES)), longest

    def cell_visits(self, venues: np.ndarray, buckets: np.ndarray) -> Table:
        sql = load_sql("qrtrace.queries", "trace_candidates")
        parts = []
        for lo in range(0, len(venues), CELLS_PER_QUERY):
            hi = lo + CELLS_PER_QUERY
            cells = list(zip(venues[lo:hi].tolist(), buckets[lo:hi].tolist(), strict=True))
            parts.append(self._query(sql, {"cells": cells}))
        return concat_tables(parts) if parts else empty_table(VISIT_TYPES)

    def _query(self, sql: str, params: dict[str, object]) -> Table:
        self.queries += 1
        return self.store.query_columns(sql, params)
