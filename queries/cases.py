"""Declared positive cases (F0): looked up by id for a trace, and listed newest first. Pseudonyms only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qrtrace.queries.trace import CaseQuery
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


@dataclass(frozen=True)
class DeclaredCase:
    """A declared case as listed: its pseudonym, infectious window, and who declared it when."""

    case_id: str
    person: str
    infectious_from_us: int
    infectious_to_us: int
    declared_at_us: int
    declared_by: str


def declared_cases(store: Store, case_ids: Sequence[str]) -> dict[str, CaseQuery]:
    """case_id -> the case to trace, for those of `case_ids` that are declared (the others are missing)."""
    rows = store.query(load_sql("qrtrace.queries", "cases_by_id"), {"case_ids": list(case_ids)})
    return {
        c: CaseQuery(c, p, f, t)
        for c, p, f, t in zip(rows["case_id"], rows["person"], rows["infectious_from_us"], rows["infectious_to_us"],
                              strict=True)
    }  # fmt: skip


def recent_cases(store: Store, limit: int) -> list[DeclaredCase]:
    """The `limit` most recently declared cases, newest first."""
    rows = store.query(load_sql("qrtrace.queries", "cases_list"), {"limit": limit})
    return [
        DeclaredCase(*row)
        for row in zip(rows["case_id"], rows["person"], rows["infectious_from_us"], rows["infectious_to_us"],
                       rows["declared_at_us"], rows["declared_by"], strict=True)
    ]  # fmt: skip
