"""The store URL decides the mode: a directory or chdb:///path is embedded; clickhouse://host:port is a server."""

from __future__ import annotations

from qrtrace.settings import Settings
from qrtrace.sinks.store import Store


def open_store(settings: Settings) -> Store:
    if settings.is_embedded_store:
        from qrtrace.sinks.chdb_store import ChdbStore

        return ChdbStore(settings.store_path)
    from qrtrace.sinks.clickhouse_store import ClickHouseStore

    return ClickHouseStore(settings.store)
