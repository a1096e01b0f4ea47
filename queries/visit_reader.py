"""The trace's HopReader over a store (chDB or ClickHouse server): two parameterised queries per hop."""

from __future__ import annotations

import re

import numpy as np

from qrtrace.queries.trace import BUCKET_US, VISIT_COLUMNS, Frontier, NameKeys, Table, concat_tables, empty_table
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store

# Values per statement: they travel inline (the 18.16 server has no query parameters, and on chDB a
# literal set is cheaper than a subquery); both stores raise max_query_size for this (sinks/store.py).
PERSONS_PER_QUERY = 20_000
CELLS_PER_QUERY = 50_000
# Index analysis of a tuple IN costs per cell and per part it runs on; one SELECT per day makes each
# day's cells meet one part (2.5x faster at 5,000 cells), but each SELECT has its own setup (~1-2 ms on
# chDB): a single case's F1 (a handful of cells) was 10 ms as one SELECT, 18 ms split.
SPLIT_BY_DAY_CELLS = 2_000
US_PER_DAY = 86_400_000_000
BUCKETS_PER_DAY = US_PER_DAY // BUCKET_US  # day partitions hold whole buckets
VISIT_TYPES = {"person": object, "venue_id": object, "start_us": np.int64, "end_us": np.int64, "zone": object}


# No visit lasts longer than its category's cap; the runtime passes the longest cap of its settings
# (`longest_allowed_visit_us`: a day under the defaults). A store written before caps existed may still
# hold longer visits (`qrtrace repair` shortens them).
DEFAULT_MAX_VISIT_US = US_PER_DAY
MAX_BUCKET = 2**32 - 1  # start_bucket is a UInt32


class StoreHopReader(NameKeys):
    """Reads a hop's visits; visits longer than `max_visit_us` are read as ending at start + max_visit_us,
    so a corrupt row can neither widen every look-back nor drag its person into unrelated cohorts."""

    def __init__(self, store: Store, max_visit_us: int = DEFAULT_MAX_VISIT_US) -> None:
        self.store = store
        self.max_visit_us = max_visit_us
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
            parts.append(self._capped({c: rows[c] for c in (*VISIT_COLUMNS, "zone", "withdrawn")}))
        return (concat_tables(parts) if parts else empty_table(VISIT_TYPES)), min(longest, self.max_visit_us)

    def cell_visits(self, venues: np.ndarray, buckets: np.ndarray) -> Table:
        """One statement per CELLS_PER_QUERY cells: one SELECT over the days the cells span, or, above
        SPLIT_BY_DAY_CELLS cells, a UNION ALL of one SELECT per day partition."""
        real = (buckets >= 0) & (buckets <= MAX_BUCKET)  # a source from before 1970 has no cells to read
        venues, buckets = venues[real], buckets[real]
        if not len(venues):
            return empty_table(VISIT_TYPES)
        sql = load_sql("qrtrace.queries", "trace_candidates")
        order = np.argsort(buckets, kind="stable")
        venues, buckets = venues[order], buckets[order]
        days = buckets // BUCKETS_PER_DAY
        if len(venues) <= SPLIT_BY_DAY_CELLS:
            cells = list(zip(venues.tolist(), buckets.tolist(), strict=True))
            first, last = int(days[0]), int(days[-1])
            params = {"day_start": first * US_PER_DAY, "day_end": (last + 1) * US_PER_DAY, "cells": cells}
            return self._capped(self._query(sql, params))
        parts = []
        for lo in range(0, len(venues), CELLS_PER_QUERY):
            hi = min(lo + CELLS_PER_QUERY, len(venues))
            bounds = np.flatnonzero(np.diff(days[lo:hi])) + 1
            statement, params = [], {}
            for i, (a, b) in enumerate(zip(np.r_[lo, lo + bounds], np.r_[lo + bounds, hi], strict=True)):
                statement.append(_numbered(sql, i))  # the .sql file, its placeholders suffixed _<i>
                params[f"day_start_{i}"] = int(days[a]) * US_PER_DAY
                params[f"day_end_{i}"] = (int(days[a]) + 1) * US_PER_DAY
                params[f"cells_{i}"] = list(zip(venues[a:b].tolist(), buckets[a:b].tolist(), strict=True))
            parts.append(self._capped(self._query("\nUNION ALL\n".join(statement), params)))
        return concat_tables(parts) if parts else empty_table(VISIT_TYPES)

    def _capped(self, visits: Table) -> Table:
        """The visits that exist (latest rows not withdrawn), each capped at `max_visit_us`."""
        withdrawn = visits.pop("withdrawn", None)
        if withdrawn is not None and np.asarray(withdrawn).any():
            keep = np.flatnonzero(np.asarray(withdrawn) == 0)
            visits = {name: np.asarray(column)[keep] for name, column in visits.items()}
        start, end = np.asarray(visits["start_us"], dtype=np.int64), np.asarray(visits["end_us"], dtype=np.int64)
        visits["start_us"], visits["end_us"] = start, np.minimum(end, start + self.max_visit_us)
        return visits

    def _query(self, sql: str, params: dict[str, object]) -> Table:
        self.queries += 1
        return self.store.query_columns(sql, params)


def _numbered(sql: str, i: int) -> str:
    """The statement with each `{name:Type}` placeholder renamed `{name_<i>:Type}`."""
    return re.sub(r"\{(\w+):", lambda m: "{" + m.group(1) + f"_{i}:", sql)
