"""The store interface every sink and query uses; chDB (embedded) and the ClickHouse server implement it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import pyarrow as pa

Columns = Mapping[str, Sequence[object] | np.ndarray]

# Bump when sinks/sql/schema.sql changes a table; stores of another version are refused with a sentence.
SCHEMA_VERSION = 5
MIGRATES_FROM = 3  # a store of this layout is migrated on open (sinks/sql/migrate_v4_*.sql, then v5)
MIGRATES_FROM_V4 = 4  # gets the zone columns on open (sinks/sql/migrate_v5_*.sql)
# Layout v5's added columns (table, column), in the order of migrate_v5_columns.sql's statements.
ZONE_COLUMNS = (
    ("venues", "zones"),
    ("checkins", "zone"),
    ("visits_by_venue", "zone"),
    ("visits_by_person", "zone"),
    ("visit_feed", "zone"),
)

# Statements may carry long inline value lists (a trace hop's frontier); both stores allow this size.
MAX_QUERY_BYTES = 256 * 1024 * 1024


class Store(Protocol):
    """A ClickHouse-dialect store. SQL text comes from .sql files; values travel in `params`."""

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None: ...

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, list]: ...

    def query_columns(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, np.ndarray]:
        """The result as numpy columns (numbers typed, strings as object arrays): for large results."""

    def query_arrow(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        """The result as an Arrow table: for bulk reads (the trace index's build)."""

    def insert(self, table: str, columns: Columns) -> None: ...

    def close(self) -> None: ...


def check_schema_version(store: Store, existed: bool) -> int:
    """Stamp a new store with SCHEMA_VERSION; refuse one written by another layout (unstamped = v1),
    except MIGRATES_FROM and MIGRATES_FROM_V4, which the caller migrates. Returns the layout found
    (SCHEMA_VERSION when new)."""
    found = store.query("SELECT max(version) AS version FROM qrtrace.schema_meta")["version"]
    version = int(found[0]) if found and found[0] else (1 if existed else 0)
    if not version:
        stamp_schema_version(store)
        return SCHEMA_VERSION
    if version not in (SCHEMA_VERSION, MIGRATES_FROM, MIGRATES_FROM_V4):
        from qrtrace.errors import StoreError

        raise StoreError(
            f"This store has table layout v{version} but this qrtrace writes v{SCHEMA_VERSION}; "
            "export what you need and re-create the store (or use another --store)."
        )
    return version


def stamp_schema_version(store: Store) -> None:
    import time

    store.insert("qrtrace.schema_meta", {"version": [SCHEMA_VERSION], "created_at_us": [time.time_ns() // 1000]})


def bootstrap_schema(store: Store) -> None:
    """Create what is missing from sinks/sql/schema.sql, checking the layout version before the tables
    (and migrating a store of the previous layout around the creation of the new tables)."""
    from qrtrace.sinks.clickhouse_sql import load_sql, split_statements

    statements = split_statements(load_sql("qrtrace.sinks", "schema"))
    existed = store.query("SELECT count() AS n FROM system.tables WHERE database = 'qrtrace'")["n"][0] > 0
    for statement in statements[:2]:  # the database and schema_meta come first
        store.execute(statement)
    found = check_schema_version(store, existed)
    migrating = found == MIGRATES_FROM
    visits_v3 = migrating and store.query(
        "SELECT count() AS n FROM system.tables WHERE database = 'qrtrace' AND name = 'visits_by_venue'"
    )["n"][0]
    if visits_v3:
        for statement in split_statements(load_sql("qrtrace.sinks", "migrate_v4_before")):
            store.execute(statement)
    if found in (MIGRATES_FROM, MIGRATES_FROM_V4):
        migrate_zones(store)
    for statement in statements[2:] + split_statements(load_sql("qrtrace.sinks", "trace_results")):
        store.execute(statement)
    if visits_v3:
        for statement in split_statements(load_sql("qrtrace.sinks", "migrate_v4_after")):
            store.execute(statement)
    if found in (MIGRATES_FROM, MIGRATES_FROM_V4):
        stamp_schema_version(store)
    from qrtrace.sinks.audit import add_chain_columns

    add_chain_columns(store)  # audit logs made before the hash chain get its columns
    if "risk" not in set(store.query(load_sql("qrtrace.sinks", "trace_exposures_columns"))["name"]):
        store.execute(load_sql("qrtrace.sinks", "trace_exposures_risk"))  # stored traces made before tiers
    migrate_contacts(store)


def migrate_contacts(store: Store) -> None:
    """Copy the contacts earlier versions kept in identity_vault into contact_details, while it is empty
    (an added table, so the layout version stays): cheap to check on every open, done once in effect."""
    from qrtrace.sinks.clickhouse_sql import load_sql

    if not store.query("SELECT count() AS n FROM qrtrace.contact_details")["n"][0]:
        store.execute(load_sql("qrtrace.sinks", "migrate_contacts"))


def migrate_zones(store: Store) -> None:
    """Layout v4 -> v5, before schema.sql's statements run: the zone columns added to the tables that exist
    (checked in system.columns first, then plain ADD COLUMN: ClickHouse 18.16 has no ADD COLUMN IF NOT
    EXISTS), and the two views that copy visits_by_venue dropped, so that schema.sql creates them again with
    zone in their SELECT lists. Each step is safe to run again: a migration cut short is finished by the
    next open (the layout is stamped v5 only after the views exist again)."""
    from qrtrace.sinks.clickhouse_sql import load_sql, split_statements

    rows = store.query(load_sql("qrtrace.sinks", "migrate_v5_have"))
    have = set(zip(rows["table"], rows["name"], strict=True))
    tables = {t for t, _ in have}
    adds = split_statements(load_sql("qrtrace.sinks", "migrate_v5_columns"))
    for (table, column), statement in zip(ZONE_COLUMNS, adds, strict=True):
        if table in tables and (table, column) not in have:
            store.execute(statement)
    for statement in split_statements(load_sql("qrtrace.sinks", "migrate_v5_views")):
        store.execute(statement)
