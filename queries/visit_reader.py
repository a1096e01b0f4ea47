"""The trace's VisitReader over a store (chDB or ClickHouse server): three parameterised queries."""

from __future__ import annotations

from collections.abc import Mapping

from qrtrace.queries.trace import Visit
from qrtrace.sinks.clickhouse_sql import chunked, load_sql
from qrtrace.sinks.store import Store


def _visits(rows: dict[str, list]) -> list[Visit]:
    return [
        Visit(p, v, s, e)
        for p, v, s, e in zip(rows["person"], rows["venue_id"], rows["start_us"], rows["end_us"], strict=True)
    ]


class StoreVisitReader:
    def __init__(self, store: Store) -> None:
        self.store = store

    def case_visits(self, person: str, from_us: int, to_us: int) -> list[Visit]:
        sql = load_sql("qrtrace.queries", "case_visits")
        return _visits(self.store.query(sql, {"person": person, "from_us": from_us, "to_us": to_us}))

    def venue_visits(self, windows: Mapping[str, tuple[int, int]]) -> list[Visit]:
        if not windows:
            return []
        sql = load_sql("qrtrace.queries", "venue_visits")
        out: list[Visit] = []
        for venues in chunked(list(windows)):
            params = {
                "venues": venues,
                "los": [windows[v][0] for v in venues],
                "his": [windows[v][1] for v in venues],
                "max_hi": max(windows[v][1] for v in venues),
            }
            out.extend(_visits(self.store.query(sql, params)))
        return out

    def person_visits(self, since_us: Mapping[str, int], until_us: int) -> list[Visit]:
        if not since_us:
            return []
        sql = load_sql("qrtrace.queries", "person_visits")
        out: list[Visit] = []
        for persons in chunked(list(since_us)):
            params = {"persons": persons, "since": [since_us[p] for p in persons], "until_us": until_us}
            out.extend(_visits(self.store.query(sql, params)))
        return out
