"""Rows and bytes on disk per table of the store: the operations page's store-size panel."""

from __future__ import annotations

from dataclasses import dataclass

from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


@dataclass(frozen=True)
class TableSize:
    """One table's active parts: rows and bytes on disk."""

    table: str
    rows: int
    bytes: int


def table_sizes(store: Store) -> list[TableSize]:
    """Every table of the qrtrace database that holds parts, largest first."""
    rows = store.query(load_sql("qrtrace.queries", "store_size"))
    return [TableSize(*row) for row in zip(rows["table"], rows["rows"], rows["bytes"], strict=True)]
