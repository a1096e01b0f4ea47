"""The store interface every sink and query uses; chDB (embedded) and the ClickHouse server implement it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

Columns = Mapping[str, Sequence[object] | np.ndarray]

# Bump when sinks/sql/schema.sql changes a table; stores of another version are refused with a sentence.
SCHEMA_VERSION = 3

# Statements may carry long inline value lists (a trace hop's frontier); both stores allow this size.
MAX_QUERY_BYTES = 256 * 1024 * 1024


class Store(Protocol):
    """A ClickHouse-dialect store. SQL text comes from .sql files; values travel in `params`."""

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None: ...

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, list]: ...

    def query_columns(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, np.ndarray]:
        """The result as numpy columns (numbers typed, strings as object arrays): for large results."""

    def insert(self, table: str, columns: Columns) -> None: ...

    def close(self) -> None: ...


def check_schema_version(store: Store, existed: bool) -> None:
    """Stamp a new store with SCHEMA_VERSION; refuse one written by another layout (unstamped = v1)."""
    found = store.query("SELECT version FROM qrtrace.schema_meta")["version"] or ([1] if existed else [])
    if not found:
        import time

        store.insert("qrtrace.schema_meta", {"version": [SCHEMA_VERSION], "created_at_us": [time.time_ns() // 1000]})
    elif found[0] != SCHEMA_VERSION:
        from qrtrace.errors import StoreError

        raise StoreError(
            f"This store has table layout v{found[0]} but this qrtrace writes v{SCHEMA_VERSION}; "
            "export what you need and re-create the store (or use another --store)."
        )


def bootstrap_schema(store: Store) -> None:
    """Create what is missing from sinks/sql/schema.sql, checking the layout version before the tables."""
    from qrtrace.sinks.clickhouse_sql import load_sql, split_statements

    statements = split_statements(load_sql("qrtrace.sinks", "schema"))
    existed = store.query("SELECT count() AS n FROM system.tables WHERE database = 'qrtrace'")["n"][0] > 0
    for statement in statements[:2]:  # the database and schema_meta come first
        store.execute(statement)
    check_schema_version(store, existed)
    for statement in statements[2:] + split_statements(load_sql("qrtrace.sinks", "trace_results")):
        store.execute(statement)
    from qrtrace.sinks.audit import add_chain_columns

    add_chain_columns(store)  # audit logs made before the hash chain get its columns
    migrate_contacts(store)


def migrate_contacts(store: Store) -> None:
    """Copy the contacts earlier versions kept in identity_vault into contact_details, while it is empty
    (an added table, so the layout version stays): cheap to check on every open, done once in effect."""
    from qrtrace.sinks.clickhouse_sql import load_sql

    if not store.query("SELECT count() AS n FROM qrtrace.contact_details")["n"][0]:
        store.execute(load_sql("qrtrace.sinks", "migrate_contacts"))
